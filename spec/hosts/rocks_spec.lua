-- The rocks of this repository (CONTRACT.md "Rocks", rockspec/ and rocks/<rock>/), each in fresh LuaRocks trees, under
-- Lua 5.4 and LuaJIT: every rock is built once per VM (`luarocks make` at the top of a copy of the checkout, then
-- packed), and installed from its pack into the trees below, each with --deps-mode=none (Debian's cjson and LuaSocket
-- are the system's, not rocks):
--   * a tree per rock beside the core: it holds those two rocks, the files the rockspec declares and no other,
--     and each of its modules loads there;
--   * the core alone: no argparse among its dependencies nor in its tree, and none needed: the library, its command
--     line (its help, refusals and completion) and, in LuaJIT's tree, nginx run with no argparse reachable;
--   * the core alone: a generate to a file against the emulator started from the emulator's tree; store =
--     "redis://...", out = "s3://...", metrics = true, trace = {...} and `starvideos emulator` each refused
--     naming its rock, with 0 requests at the emulator;
--   * every rock: the fleet on Redis (redis-server on a loopback port), the bucket on s3rver
--     (rocks/s3/spec/support/s3_run.lua) and the metrics text checked by promtool, every module from the tree.
local helper = require "spec.helper"
local ccache = require "spec.hosts.support.ccache"
local trees = require "spec.hosts.support.trees"
local redis_run = require "rocks.redis.spec.support.redis_run"
local nginx_run = require "spec.support.nginx_run"
local S3run = require "rocks.s3.spec.support.s3_run"

local q = helper.shell_quote
local ROCKS = { "redis", "s3", "observe", "emulator" }
local SAMPLE = assert(require("starvideos.emulator.files").video(5))
local KEY = "k-rocks"

local cache = ccache.dir(true)
teardown(function() ccache.remove(cache) end)

local function sh(cmd) return helper.capture(cmd .. " 2>&1") end

local files = trees.files

-- The files a rock's rockspec installs, as the tree holds them: share/lua/V/... and lib/lua/V/..., sorted.
local function declared(luav, rock)
  local path = helper.root .. "/rocks/" .. rock .. "/starvideos-" .. rock .. "-scm-1.rockspec"
  local env = assert(dofile(helper.root .. "/tools/rockspec.lua")(path), path)
  local out, modules = {}, {}
  for name in pairs(env.build.install.lua) do
    out[#out + 1] = "share/lua/" .. luav .. "/" .. name:gsub("%.", "/") .. ".lua"
    modules[#modules + 1] = name
  end
  for name in pairs(env.build.install.lib or {}) do
    out[#out + 1] = "lib/lua/" .. luav .. "/" .. name:gsub("%.", "/") .. ".so"
    modules[#modules + 1] = name
  end
  table.sort(out)
  table.sort(modules)
  return out, modules
end

-- The Lua modules and C modules of a tree (share/lua/V and lib/lua/V), as relative names.
local function modules_of(tree, luav)
  local list = {}
  for _, sub in ipairs { "share/lua/" .. luav, "lib/lua/" .. luav } do
    for _, f in ipairs(files(tree .. "/" .. sub)) do list[#list + 1] = sub .. "/" .. f end
  end
  table.sort(list)
  return list
end

-- An emulator started by tree's `starvideos emulator` (helper.Emulator's methods: requests, creates, stop), every
-- video files.video's (as helper.emulator's).
local function emulator_from(t, tree)
  local log = helper.tmpdir() .. "/emulator.log"
  local pipe = assert(io.popen("echo $$; exec " .. trees.env(t, tree) .. q(tree .. "/bin/starvideos")
    .. " emulator --port 0 --max-lifetime 600 --key " .. KEY .. " --queued 0.1 --processing 0.1"
    .. " --video-colours fixed 2>>" .. q(log), "r"))
  local pid = tonumber(pipe:read("*l"))
  local line = pipe:read("*l")
  local url = line and line:match("^starvideos emulator listening on (http://127%.0%.0%.1:%d+)$")
  if not (pid and url) then
    pipe:close()
    error("the emulator of " .. tree .. " did not start: " .. tostring(line) .. "\n" .. (helper.read_file(log) or ""))
  end
  return setmetatable({ url = url, key = KEY, pid = pid, pipe = pipe, log_path = log }, helper.Emulator)
end

-- Where each module named on the command line is found, first: what require would load (LuaJIT and 5.1 have
-- no package.searchpath).
local WHERE = [[
local function where(name)
  local file = name:gsub("%.", "/")
  for _, path in ipairs { package.path, package.cpath } do
    for template in path:gmatch("[^;]+") do
      local p = template:gsub("%?", file)
      local f = io.open(p, "rb")
      if f then f:close() return p end
    end
  end
  return "(not found)"
end
]]

-- With the core alone: each other rock's feature refused (kind, field, message), then a generate to a file.
local CORE_ALONE = WHERE .. [[
local s = require "starvideos"
local url, key, out = arg[1], arg[2], arg[3]
local function show(what, ok, a, b)
  local err = ok and b or a
  print(what, tostring(ok and a ~= nil), type(err) == "table" and err.kind or "-",
    type(err) == "table" and tostring(err.field) or "-", type(err) == "table" and err.message or tostring(err))
end
local opts = function(extra)
  local t = { api_key = key, base_url = url }
  for k, v in pairs(extra) do t[k] = v end
  return t
end
show("store", pcall(s.new, opts { store = "redis://127.0.0.1:1" }))
show("metrics", pcall(s.new, opts { metrics = true }))
show("trace", pcall(s.new, opts { trace = {} }))
local c = s.new(opts {})
show("s3", pcall(c.generate, c, { model = "videos", prompt = "a cat", duration = 5 }, { out = "s3://vids/cat.mp4" }))
io.stdout:flush()
if out == "-" then return end
local task = assert(c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = out, interval = 0.05 }))
print("generated", task.status, task.path)
for _, m in ipairs { "starvideos", "starvideos.core", "starvideos.curl", "starvideos.sink.s3", "starvideos.redis",
  "starvideos.observe", "starvideos.emulator" } do print("module", m, where(m)) end
]]

-- With every rock: a generate on the fleet (store on Redis) to a file, one to the bucket, the metrics text.
local ALL = WHERE .. [[
local s = require "starvideos"
local url, key, store, s3port, dir = arg[1], arg[2], arg[3], arg[4], arg[5]
local c = assert(s.new { api_key = key, base_url = url, store = store, metrics = true,
  storage = { endpoint = "http://127.0.0.1:" .. s3port, access_key = "S3RVER", secret_key = "S3RVER" } })
local p = { model = "videos", prompt = "a cat", duration = 5 }
local t1 = assert(c:generate(p, { out = dir .. "/cat.mp4", interval = 0.05 }))
print("file", t1.status, t1.path)
p.prompt = "a dog"
local t2 = assert(c:generate(p, { out = "s3://vids/dog.mp4", interval = 0.05 }))
print("bucket", t2.status, t2.path)
local f = assert(io.open(dir .. "/metrics.txt", "w"))
f:write(assert(c:metrics()))
f:close()
c:close()
for _, m in ipairs { "starvideos", "starvideos.core", "starvideos.fleet.store", "starvideos.ledger.redis",
  "starvideos.redis", "starvideos.sink.s3", "starvideos.storage.s3", "starvideos.sigv4", "starvideos.observe",
  "starvideos.observe.metrics" } do
  print("module", m, where(m), package.loaded[m] ~= nil)
end
]]

-- A sink rock of the spec's own (issue "One core in substance"): toy://NAME is the file $TOY_DIR/NAME, written
-- by the core's file sink; the rock names no file of the core's rockspec and the core names no toy.
local TOY_ROCKSPEC = [=[
rockspec_format = "3.0"
package = "starvideos-toy"
version = "scm-1"
source = { url = "git+file://." }
dependencies = { "starvideos" }
build = { type = "builtin", modules = { ["starvideos.sink.toy"] = "toy.lua" } }
]=]
local TOY_SINK = [=[
local D = require "starvideos.download"
local function file(out) return os.getenv("TOY_DIR") .. "/" .. out:gsub("^%a[%w+.-]*://", "") end
local sink = setmetatable({
  check_out = function(out, cfg) return D.check_out(file(out), cfg) end,
  check_dir = function(dir, field, cfg) return D.check_dir(file(dir), field, cfg) end,
  fetch = function(seat, t, url, path, d)
    d.part, d.dest = file(seat.out) .. ".part", file(seat.out)
    return D.fetch(seat, t, url, path, d)
  end,
}, { __index = D })
return { sink = sink }
]=]
local TOY_RUN = WHERE .. [=[
local s = require "starvideos"
local c = s.new { api_key = arg[2], base_url = arg[1] }
local p = { model = "videos", prompt = "a cat", duration = 5 }
local task, err = c:generate(p, { out = "gs://bucket/key.mp4" })
print("gs", tostring(task), err.kind, err.field, err.message)
task = assert(c:generate(p, { out = "toy://cat.mp4", interval = 0.05 }))
print("toy", task.status, "toy://cat.mp4", task.path)
print("module", "starvideos.sink.toy", where("starvideos.sink.toy"))
]=]

for _, vm in ipairs { "lua5.4", "luajit" } do
  describe("the rocks in fresh LuaRocks trees (" .. vm .. ")", function()
    if not helper.execute("command -v luarocks >/dev/null 2>&1 && command -v " .. vm .. " >/dev/null 2>&1") then
      pending("luarocks or " .. vm .. " is not installed (make deps)")
      return
    end
    local tmp, t, packs
    local function luarocks(args) return "env " .. ccache.env(cache) .. "luarocks " .. t.flags .. " " .. args end
    -- a tree holding the core rock and the rocks named (their packs, built once)
    local function tree_with(name, rocks)
      local tree = tmp .. "/" .. name
      for _, r in ipairs(rocks) do
        local out, ok = sh(luarocks("--tree " .. q(tree) .. " install --deps-mode=none " .. q(packs[r])))
        assert(ok, out)
      end
      return tree
    end

    lazy_setup(function()
      tmp = helper.tmpdir()
      t = trees.vm(vm, tmp)
      local src = tmp .. "/src"
      assert(helper.execute("mkdir " .. q(src) .. " " .. q(tmp .. "/packs") .. " && cd " .. q(helper.root)
        .. " && cp -R rockspec csrc lua rocks bin types README.md LICENSE " .. q(src)))
      packs = {}
      -- each rock made once, into a tree of its own beside the core, then packed
      for _, r in ipairs { "starvideos", "redis", "s3", "observe", "emulator" } do
        local name = r == "starvideos" and r or "starvideos-" .. r
        local tree = tmp .. "/build-" .. r
        if r ~= "starvideos" then tree_with("build-" .. r, { "starvideos" }) end
        local spec = r == "starvideos" and "" or (" rocks/" .. r .. "/" .. name .. "-scm-1.rockspec")
        local out, ok = sh("cd " .. q(src) .. " && " .. luarocks("make --tree " .. q(tree) .. " --deps-mode=none"
          .. spec))
        assert(ok, out)
        out, ok = sh("cd " .. q(tmp .. "/packs") .. " && " .. luarocks("--tree " .. q(tree) .. " pack " .. name))
        assert(ok, out)
        packs[r] = out:match("Packed: (%S+%.rock)")
        assert(packs[r], out)
      end
    end)
    lazy_teardown(helper.cleanup)

    it("installs each rock with only its declared dependencies: the core and it, its declared files alone", function()
      local core = modules_of(tree_with("core", { "starvideos" }), t.luav)
      assert.is_nil(table.concat(core, " "):find("fleet/", 1, true))
      for _, r in ipairs(ROCKS) do
        local tree = tree_with("only-" .. r, { "starvideos", r })
        local out = sh(luarocks("--tree " .. q(tree) .. " list --porcelain"))
        local names = {}
        for name in out:gmatch("(starvideos[%w-]*)\tscm%-1") do names[#names + 1] = name end
        table.sort(names)
        assert.same({ "starvideos", "starvideos-" .. r }, names, out)
        -- the tree's modules: the core's and exactly what the rockspec declares
        local want, mods = declared(t.luav, r)
        local extra, seen = {}, {}
        for _, f in ipairs(core) do seen[f] = true end
        for _, f in ipairs(modules_of(tree, t.luav)) do if not seen[f] then extra[#extra + 1] = f end end
        assert.same(want, extra, r)
        -- and each of its modules loads there, with nothing of the checkout on the paths
        local quoted = {}
        for i, m in ipairs(mods) do quoted[i] = string.format("%q", m) end
        local code = "for _, m in ipairs { " .. table.concat(quoted, ", ") .. " } do require(m) end print('loaded "
          .. #mods .. "')"
        out = sh("cd " .. q(tmp) .. " && " .. trees.env(t, tree) .. t.lua .. " -e " .. q(code))
        assert.equal("loaded " .. #mods .. "\n", out, r)
      end
    end)

    it("with the core rock alone, generates to a file against the emulator of its own tree, and refuses each "
      .. "other rock's feature naming the rock, sending nothing", function()
      local core = tree_with("alone", { "starvideos" })
      local emu = emulator_from(t, tree_with("emu", { "starvideos", "emulator" }))
      finally(function() emu:stop() end)
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/alone.lua", CORE_ALONE)
      local run = "cd " .. q(dir) .. " && " .. trees.env(t, core) .. t.lua .. " alone.lua " .. q(emu.url) .. " "
        .. KEY .. " "
      local out, ok = sh(run .. "-")
      assert.is_true(ok, out)
      local function refused(what, field, rock, asked)
        local line = out:match("\n?(" .. what .. "\t[^\n]*)")
        local short = rock:gsub("^starvideos%-", "")
        assert.equal(table.concat({ what, "false", "invalid_request", field, asked .. " needs the " .. rock
          .. " rock (luarocks make --deps-mode=none rocks/" .. short .. "/" .. rock .. "-scm-1.rockspec at the top "
          .. "of the checkout starvideos came from: docs/install.md, \"The other rocks\")" }, "\t"), line, out)
      end
      refused("store", "store", "starvideos-redis", "store = redis://127.0.0.1:1")
      refused("metrics", "metrics", "starvideos-observe", "metrics = true")
      refused("trace", "trace", "starvideos-observe", "trace = {...}")
      refused("s3", "out", "starvideos-s3", "s3:// outs")
      local cmd
      cmd, ok = sh("cd " .. q(dir) .. " && " .. trees.env(t, core) .. q(core .. "/bin/starvideos")
        .. " emulator --port 0")
      assert.is_falsy(ok, cmd)
      assert.matches("starvideos emulator needs the starvideos-emulator rock (luarocks make --deps-mode=none "
        .. "rocks/emulator/starvideos-emulator-scm-1.rockspec at the top of the checkout", cmd, 1, true)
      assert.same({}, emu:requests())
      -- then a video, from the core's tree alone
      out, ok = sh(run .. q(dir .. "/cat.mp4"))
      assert.is_true(ok, out)
      assert.matches("generated\tcompleted\t" .. dir .. "/cat.mp4", out, 1, true)
      assert.is_true(helper.read_video(dir .. "/cat.mp4") == SAMPLE, "the video differs from the emulator's")
      assert.equal(1, emu:creates())
      for m, file in out:gmatch("module\t(%S+)\t([^\n]+)") do
        if m == "starvideos" or m == "starvideos.core" or m == "starvideos.curl" then
          assert.equal(1, file:find(core .. "/", 1, true), m .. " from " .. file)
        else
          assert.equal("(not found)", file, m)
        end
      end
    end)

    it("with the core rock alone: no argparse in its dependencies or its tree, and the library, the command line and "
      .. "(LuaJIT's tree) nginx run with none on their paths", function()
      local core = tree_with("no-argparse", { "starvideos" })
      local rockspec = core .. "/lib/luarocks/rocks-" .. t.luav .. "/starvideos/scm-1/starvideos-scm-1.rockspec"
      local spec = assert(dofile(helper.root .. "/tools/rockspec.lua")(rockspec), rockspec)
      for _, d in ipairs(spec.dependencies) do assert.is_nil(d:find("argparse", 1, true), d) end
      for _, f in ipairs(files(core)) do assert.is_nil(f:find("argparse", 1, true), f) end
      -- the tree's Lua and the system's C modules (Debian's cjson) alone: Debian's argparse.lua is out of reach
      local lib = core .. "/lib/lua/" .. t.luav
      local share = core .. "/share/lua/" .. t.luav
      local env = trees.env_paths(share .. "/?.lua;" .. share .. "/?/init.lua", lib .. "/?.so;"
        .. trees.system_dirs(t.lua, "cpath"))
      local out, ok = sh(env .. t.lua .. " -e " .. q('local s = require "starvideos" assert(s.new) '
        .. 'print("argparse", (pcall(require, "argparse")))'))
      assert.is_true(ok, out)
      assert.equal("argparse\tfalse\n", out)
      local cmd = env .. q(core .. "/bin/starvideos") .. " "
      out, ok = sh(cmd .. "validate --model videos --prompt 'a cat' --duration 5")
      assert.is_true(ok, out)
      out, ok = sh(cmd .. "validate --model videos --duraton 5")
      assert.is_falsy(ok, out)
      assert.matches("^starvideos validate: unknown option %-%-duraton %(did you mean %-%-duration%?%)\n", out)
      out, ok = sh(cmd .. "generate --help")
      assert.is_true(ok, out)
      assert.matches("usage: " .. core .. "/bin/starvideos generate [options]", out, 1, true) -- (as invoked)
      out, ok = sh(cmd .. "completion bash")
      assert.is_true(ok, out)
      assert.matches("complete -F _starvideos starvideos", out, 1, true)
      if vm ~= "luajit" then return end
      local why = nginx_run.missing_nginx()
      if why then pending(why) return end
      -- nginx's LuaJIT on the tree's modules: a create through nginx's sockets, and no argparse loaded there
      local emu = emulator_from(t, tree_with("emu-nginx", { "starvideos", "emulator" }))
      local dir = helper.tmpdir()
      local n = nginx_run.serve(dir, function(port)
        local lines = nginx_run.conf_head(dir, 1)
        lines[#lines - 1] = '    lua_package_path "' .. share .. "/?.lua;" .. share .. '/?/init.lua;;";'
        lines[#lines] = '    lua_package_cpath "' .. lib .. '/?.so;;";'
        lines[#lines + 1] = "    server { listen 127.0.0.1:" .. port .. "; location = /create { content_by_lua_block {"
        lines[#lines + 1] = "      local s = require 'starvideos'"
        lines[#lines + 1] = "      local c = s.new { api_key = '" .. KEY .. "', base_url = '" .. emu.url .. "' }"
        lines[#lines + 1] = "      local task, err = c:create { model = 'videos', prompt = 'a cat', duration = 5 }"
        lines[#lines + 1] = "      ngx.say(task and task.id or tostring(err), ' ', package.loaded.argparse == nil, ' ',"
        lines[#lines + 1] = "        package.searchpath('starvideos', package.path))"
        lines[#lines + 1] = "    } } }\n}\n"
        return table.concat(lines, "\n")
      end)
      finally(function() n.stop() emu:stop() end)
      out = helper.capture("curl -s " .. q("http://127.0.0.1:" .. n.port .. "/create"))
      assert.matches("^video_%S+ true " .. (share .. "/starvideos/init.lua"):gsub("%p", "%%%0") .. "\n$", out)
      assert.equal(1, emu:creates())
    end)

    it("a sink rock of the spec's own (toy://, a scheme the project does not ship), installed from its rockspec "
      .. "into the core's tree, takes an out with no core edit; gs:// with no rock is refused, 0 sent", function()
      local tree = tree_with("toy", { "starvideos" })
      local emu = emulator_from(t, tree_with("toy-emu", { "starvideos", "emulator" }))
      finally(function() emu:stop() end)
      local rock, dir = helper.tmpdir(), helper.tmpdir()
      helper.write_file(rock .. "/starvideos-toy-scm-1.rockspec", TOY_ROCKSPEC)
      helper.write_file(rock .. "/toy.lua", TOY_SINK)
      local out, ok = sh("cd " .. q(rock) .. " && " .. luarocks("make --tree " .. q(tree)
        .. " --deps-mode=none starvideos-toy-scm-1.rockspec"))
      assert.is_true(ok, out)
      helper.write_file(dir .. "/toy_run.lua", TOY_RUN)
      out, ok = sh("cd " .. q(dir) .. " && TOY_DIR=" .. q(dir) .. " " .. trees.env(t, tree) .. t.lua
        .. " toy_run.lua " .. q(emu.url) .. " " .. KEY)
      assert.is_true(ok, out)
      assert.matches("gs\tnil\tinvalid_request\tout\tgs:// outs: no sink for gs:// is installed", out, 1, true)
      assert.matches("toy\tcompleted\ttoy://cat.mp4\ttoy://cat.mp4", out, 1, true) -- (its path: the out)
      assert.is_true(helper.read_video(dir .. "/cat.mp4") == SAMPLE, "the video differs from the emulator's")
      assert.matches("module\tstarvideos.sink.toy\t" .. tree .. "/", out, 1, true)
      assert.equal(1, emu:creates()) -- (the toy's: the gs:// create was never sent)
    end)

    it("a product rock installed with --deps-mode=none beside a 0.3.0 core (outside its range) refuses to load, "
      .. "naming both versions and the install line: no client made", function()
      local old = tmp .. "/src-0.3.0"
      local out, ok = sh("cp -R " .. q(tmp .. "/src") .. " " .. q(old) .. " && sed -i "
        .. q('s/^M.VERSION = ".*"/M.VERSION = "0.3.0"/') .. " " .. q(old .. "/lua/starvideos/config.lua"))
      assert.is_true(ok, out)
      local tree = tmp .. "/core-0.3.0"
      out, ok = sh("cd " .. q(old) .. " && " .. luarocks("make --tree " .. q(tree) .. " --deps-mode=none"))
      assert.is_true(ok, out)
      out, ok = sh(luarocks("--tree " .. q(tree) .. " install --deps-mode=none " .. q(packs.redis)))
      assert.is_true(ok, out) -- (LuaRocks installs it: the range is not checked with --deps-mode=none)
      local code = "local ok, err = pcall(require('starvideos').new, { api_key = 'k', base_url = 'http://127.0.0.1:9', "
        .. "store = 'redis://127.0.0.1:9' }) print(require('starvideos')._VERSION, ok, err)"
      out = sh("cd " .. q(tmp) .. " && " .. trees.env(t, tree) .. t.lua .. " -e " .. q(code))
      assert.matches("starvideos 0.3.0\tfalse\tstarvideos-redis needs starvideos >= 0.4, < 0.5, and the starvideos "
        .. "loaded is 0.3.0 (" .. tree .. "/", out, 1, true)
      assert.matches("luarocks make --deps-mode=none rockspec/starvideos-0.4.0-1.rockspec", out, 1, true)
    end)

    it("with every rock, runs the fleet on Redis, the bucket on s3rver and promtool-checked metrics from the "
      .. "tree", function()
      local why = redis_run.missing() or S3run.missing()
      if why then pending(why) return end
      local all = tree_with("all", { "starvideos", "redis", "s3", "observe", "emulator" })
      local emu = emulator_from(t, all)
      local srv = redis_run.start()
      local st = S3run.start {}
      finally(function() emu:stop() srv.stop() st.stop() end)
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/all.lua", ALL)
      local out, ok = sh("cd " .. q(dir) .. " && " .. trees.env(t, all) .. t.lua .. " all.lua " .. q(emu.url) .. " "
        .. KEY .. " " .. q(srv.url) .. " " .. st.port .. " " .. q(dir))
      assert.is_true(ok, out)
      assert.matches("file\tcompleted\t" .. dir .. "/cat.mp4", out, 1, true)
      assert.is_true(helper.read_video(dir .. "/cat.mp4") == SAMPLE, "the video differs from the emulator's")
      assert.matches("bucket\tcompleted\ts3://vids/dog.mp4", out, 1, true)
      assert.is_true(st.exists("dog.mp4"), "no dog.mp4 in the bucket")
      -- (as the AWS SDK's client reads it; the served video in it: up to the mark's box)
      local back = st.video("dog.mp4")
      assert.same({ #SAMPLE, require("starvideos.sign").sha256(SAMPLE) }, { back.served, back.served_sha256 })
      assert.equal(2, emu:creates())
      -- the fleet's records are in Redis
      local keys = redis_run.cli(srv.port, "DBSIZE")[1]
      assert.is_true((tonumber(keys) or 0) > 0, keys)
      -- the metrics text passes promtool, and counts the two creates
      if helper.execute("command -v promtool >/dev/null 2>&1") then
        local check, good = sh("promtool check metrics < " .. q(dir .. "/metrics.txt"))
        assert.is_true(good, check)
      end
      assert.matches("starvideos_", helper.read_file(dir .. "/metrics.txt") or "")
      local n = 0
      for m, file, loaded in out:gmatch("module\t(%S+)\t(%S+)\t(%a+)") do
        n = n + 1
        assert.equal(1, file:find(all .. "/", 1, true), m .. " from " .. file)
        assert.equal("true", loaded, m .. " was not loaded")
      end
      assert.equal(10, n, out)
    end)
  end)
end
