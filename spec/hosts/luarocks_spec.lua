-- LuaRocks anywhere.  Under each VM that runs the suite (make test: lua5.4;
-- make test-all: every VM, LuaJIT through `--lua-version=5.1 --lua-dir`):
--   * `luarocks make` with no argument and no flag but the tree builds a copy of
--     the checkout (it picks rockspec/starvideos-scm-1.rockspec) into a fresh
--     tree; then a child process that sees only that tree (and Debian's system
--     directories, for lua-cjson) creates a task on the emulator, waits for it
--     and downloads the video;
--   * the library needs no LuaSocket; the emulator says how to install it;
--   * (lua5.4 only) `make` calls no package manager, and builds where there is none.
--   * (lua5.4 only) docs/install.md's LuaRocks lines, run as written (see below).

local helper = require "spec.helper"

local q = helper.shell_quote
-- absolute: children run in other directories
local root = assert(helper.capture("cd " .. q(helper.root) .. " && pwd")):match("^(.-)\n?$")
local vm = helper.vm
-- make as a user runs it, not as the make running this suite (no MAKEFLAGS, MAKELEVEL)
local MAKE = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make"
local SAMPLE = assert(require("starvideos.emulator.files").video(5))

-- Lua's version directory name (5.1 for LuaJIT)
local LUAV = vm == "luajit" and "5.1" or vm:match("^lua(%d%.%d)$")

local function sh(cmd)
  return helper.capture(cmd .. " 2>&1")
end

-- the builds compile through ccache, into one cache of this file's run (spec/hosts/support/ccache.lua): the
-- first describe's rock fills it for 5.4, and the later rocks compile only their VM's headers' files
local ccache = require "spec.hosts.support.ccache"
local cache = ccache.dir(true)
teardown(function() ccache.remove(cache) end)

local write = helper.write_file

local exists = helper.exists

local trees = require "spec.hosts.support.trees"
local list = trees.files -- (every file under a folder, relative names, sorted)

-- The environment of a child that must see no Lua module but those named, and the VM's own system
-- directories (Debian's /usr/share/lua, /usr/lib/...): spec/hosts/support/trees.lua
local env = trees.env_paths
local function system_dirs(which) return trees.system_dirs(helper.lua, which) end

-- The child script: a create, a wait and a download through the installed
-- module, then a webhook checked (starvideos.sign, loaded only then: no
-- libcrypto mapped before); first it prints where each starvideos module is
-- found (the first hit on package.path / package.cpath, as require takes it).
local CLIENT = [[
local function where(name, path)
  local file = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local p = template:gsub("%?", file)
    local f = io.open(p, "rb")
    if f then f:close() return p end
  end
  return "(not found)"
end
for _, m in ipairs { "starvideos", "starvideos.client", "starvideos.job", "starvideos.request",
    "starvideos.config", "starvideos.loop", "starvideos.records.journal" } do
  print("module " .. m .. " " .. where(m, package.path))
end
print("module starvideos.core " .. where("starvideos.core", package.cpath))
print("module starvideos.sign " .. where("starvideos.sign", package.cpath))
local function crypto()
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("*a")
  f:close()
  return maps:find("/libcrypto", 1, true) and "mapped" or "not mapped"
end
local starvideos = require "starvideos"
print("libcrypto after require: " .. crypto())
local url, key, out = assert(arg[1]), assert(arg[2]), assert(arg[3])
assert(url:match("^http://127%.0%.0%.1:%d+$"), "not the local emulator: " .. url)
local client = starvideos.new { api_key = key, base_url = url, retry_backoff = 0.01 }
local t = assert(client:create { model = "videos", prompt = "a kitten on a meadow", duration = 5 })
print("created " .. t.id)
local done = assert(client:wait(t.id, { interval = 0.05, timeout = 20 }))
print("status " .. done.status)
print("downloaded " .. assert(client:download(done, out)))
client:close()
local secret, ts = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", tostring(os.time())
local h = { ["webhook-id"] = "evt_1", ["webhook-timestamp"] = ts,
  ["webhook-signature"] = assert(require("starvideos.sign").sign(secret, "evt_1", ts, "{}")) }
print("webhook " .. tostring(starvideos.verify_webhook(secret, h, "{}")) .. " "
  .. tostring(starvideos.verify_webhook(secret, h, "{ }")))
]]

describe("luarocks make (" .. vm .. ")", function()
  if not helper.execute("command -v luarocks >/dev/null 2>&1") then
    pending("luarocks is not installed (Debian: apt-get install luarocks, or make deps)")
    return
  end

  local tmp, src, tree, build_out, build_ok
  local flags = "--lua-version=" .. LUAV

  lazy_setup(function()
    tmp = helper.tmpdir()
    src, tree = tmp .. "/starvideos", tmp .. "/tree"
    -- a checkout's files, copied: luarocks make builds in place (csrc/*.o,
    -- starvideos/core.so), and the checkout stays as it is
    assert(helper.execute("mkdir " .. q(src) .. " && cd " .. q(root)
      .. " && cp -R rockspec csrc lua bin types README.md LICENSE " .. q(src)))
    flags = trees.vm(vm, tmp).flags -- (LuaJIT: OpenResty's luajit2 through a prefix, --lua-dir)
    build_out, build_ok = sh("cd " .. q(src) .. " && env " .. ccache.env(cache) .. "luarocks " .. flags
      .. " make --tree " .. q(tree) .. " --deps-mode=none")
  end)

  lazy_teardown(helper.cleanup)

  it("builds and installs the scm rockspec with no flag (the compiler finds curl.h itself)", function()
    assert.is_true(build_ok, build_out)
    assert.matches("starvideos scm%-1 is now installed in", build_out)
    assert.is_nil(build_out:find("CURL_INCDIR", 1, true), build_out)
    assert.is_true(exists(tree .. "/lib/lua/" .. LUAV .. "/starvideos/core.so"))
    assert.is_true(exists(tree .. "/lib/lua/" .. LUAV .. "/starvideos/curl.so"))
    assert.is_true(exists(tree .. "/lib/lua/" .. LUAV .. "/starvideos/sign.so"))
    if vm == "luajit" then
      assert.matches("%-I[^ ]*/include/luajit%-2%.1 ", build_out) -- LuaJIT's own lua.h
    end
  end)

  it("installs every Lua file of lua/starvideos, the command, the LICENSE and the annotations", function()
    assert.is_true(build_ok, build_out)
    local installed = list(tree .. "/share/lua/" .. LUAV .. "/starvideos")
    assert.same(list(root .. "/lua/starvideos"), installed)
    assert.is_true(exists(tree .. "/bin/starvideos"))
    local rock = tree .. "/lib/luarocks/rocks-" .. LUAV .. "/starvideos/scm-1"
    assert.is_true(exists(rock .. "/doc/LICENSE"))
    -- conf/types/ under `luarocks show --rock-dir starvideos` (docs/reference.md#editors), as in the checkout
    local types = helper.read_file(rock .. "/conf/types/starvideos.lua")
    assert.is_true(types ~= nil and types == helper.read_file(root .. "/types/starvideos.lua"),
      "the rock has no types/starvideos.lua, or another one")
    local dir = sh("luarocks " .. flags .. " --tree " .. q(tree) .. " show --rock-dir starvideos")
    assert.equal(rock, dir:match("^(.-)\n?$"))
  end)

  it("creates, waits, downloads and checks a webhook with only the installed tree", function()
    assert.is_true(build_ok, build_out)
    local emu = helper.emulator { queued = 0.1, processing = 0.1 }
    finally(function() emu:stop() end)
    local dir = helper.tmpdir()
    write(dir .. "/client.lua", CLIENT)
    local share, lib = tree .. "/share/lua/" .. LUAV, tree .. "/lib/lua/" .. LUAV
    local path = share .. "/?.lua;" .. share .. "/?/init.lua;" .. system_dirs("path")
    local cpath = lib .. "/?.so;" .. system_dirs("cpath")
    assert.is_nil(path:find(root, 1, true))
    assert.is_nil(cpath:find(root, 1, true))
    local out, ok = sh("cd " .. q(dir) .. " && " .. env(path, cpath) .. q(helper.lua) .. " client.lua "
      .. q(emu.url) .. " " .. q(emu.key) .. " " .. q(dir .. "/video.mp4"))
    assert.is_true(ok, out)
    local modules = 0
    for name, file in out:gmatch("module (%S+) (%S+)") do
      modules = modules + 1
      assert.equal(1, file:find(tree .. "/", 1, true), name .. " came from " .. file)
    end
    assert.equal(9, modules, out)
    assert.matches("libcrypto after require: not mapped", out, 1, true)
    assert.matches("webhook true nil", out, 1, true)
    assert.matches("status completed", out)
    assert.matches("downloaded " .. dir .. "/video.mp4", out, 1, true)
    local video = helper.read_video(dir .. "/video.mp4") -- (up to the mark's box its commit appended)
    assert.equal(#SAMPLE, video and #video)
    assert.is_true(video == SAMPLE, "the downloaded file differs from the emulator's MP4")
  end)

  it("runs the installed command under this VM", function()
    assert.is_true(build_ok, build_out)
    local share, lib = tree .. "/share/lua/" .. LUAV, tree .. "/lib/lua/" .. LUAV
    local path = share .. "/?.lua;" .. share .. "/?/init.lua;" .. system_dirs("path")
    local cpath = lib .. "/?.so;" .. system_dirs("cpath")
    local wrapper = helper.read_file(tree .. "/bin/starvideos") or ""
    assert.matches(vm == "luajit" and "/luajit'" or ("/" .. vm .. "'"), wrapper)
    local out, ok = sh("cd " .. q(tree) .. " && " .. env(path, cpath) .. "bin/starvideos validate --model videos"
      .. " --prompt kitten --duration 5")
    assert.is_true(ok, out)
  end)

  it("the installed command runs a batch, lists its tasks, and a rerun of it creates nothing", function()
    assert.is_true(build_ok, build_out)
    local emu = helper.emulator { queued = 0.1, processing = 0.1 }
    finally(function() emu:stop() end)
    local share, lib = tree .. "/share/lua/" .. LUAV, tree .. "/lib/lua/" .. LUAV
    local path = share .. "/?.lua;" .. share .. "/?/init.lua;" .. system_dirs("path")
    local cpath = lib .. "/?.so;" .. system_dirs("cpath")
    local dir = helper.tmpdir()
    write(dir .. "/prompts.txt", "a cat\na dog\n# not a prompt\na bird\n")
    local cmd = "cd " .. q(dir) .. " && " .. env(path, cpath) .. "STARVIDEOS_API_KEY=" .. q(emu.key)
      .. " STARVIDEOS_BASE_URL=" .. q(emu.url) .. " " .. q(tree .. "/bin/starvideos")
    local batch = cmd .. " batch --prompts-file prompts.txt --out-dir out --model videos --duration 5 --interval 0.1"
    local out, ok = sh(batch .. " 2>&1")
    assert.is_true(ok, out)
    for i = 1, 3 do assert.equal(SAMPLE, helper.read_video(string.format("%s/out/%04d.mp4", dir, i)), i) end
    out, ok = sh(cmd .. " list --journal out/starvideos.jsonl --json")
    assert.is_true(ok, out)
    local states = {}
    for line in out:gmatch("[^\n]+") do states[#states + 1] = require("cjson").decode(line).state end
    assert.same({ "downloaded", "downloaded", "downloaded" }, states)
    out, ok = sh(batch .. " 2>&1")
    assert.is_true(ok, out)
    assert.equal(3, emu:creates())
  end)

  it("has rockspecs that agree: the release's version is the module's, neither needs luasocket", function()
    local options = require "starvideos.config"
    local rel = helper.read_file(root .. "/rockspec/starvideos-" .. options.VERSION .. "-1.rockspec")
    local scm = helper.read_file(root .. "/rockspec/starvideos-scm-1.rockspec")
    assert.is_string(rel, "no rockspec/starvideos-" .. options.VERSION .. "-1.rockspec")
    assert.is_string(scm)
    assert.matches('version = "' .. options.VERSION .. '%-1"', rel)
    -- the same build, dependencies and description; only version and source differ
    local function body(s) return (s:match("\ndescription = .*$")) end
    assert.equal(body(scm), body(rel))
    local deps = scm:match("\ndependencies = (%b{})")
    assert.is_string(deps)
    assert.matches('"lua%-cjson', deps)
    assert.is_nil(deps:find("luasocket", 1, true))
    assert.is_nil(scm:find("header =", 1, true))
    assert.matches('license = "MIT"', scm)
    -- the C modules' sources and defines are mk/sources.mk's (a rock's, its rocks/<rock>/rock.mk's):
    -- spec/hosts/build_spec.lua
    assert.is_nil(scm:match('%["starvideos%.core"%] = (%b{})'):find('"curl"', 1, true))
    assert.matches("Copyright %(c%) 2026 the starvideos authors", helper.read_file(root .. "/LICENSE"))
  end)
end)

-- A folder of its own holding argparse.lua (the one this VM's path finds), so that a path can reach it and not what
-- lies beside it in Lua's own folder (LuaSocket's socket.lua).
local function argparse_alone()
  local dir = helper.tmpdir()
  for template in package.path:gmatch("[^;]+") do
    local file = template:gsub("%?", "argparse")
    if file:find("^/") and helper.exists(file) then
      assert(helper.execute("ln -s " .. q(file) .. " " .. q(dir .. "/argparse.lua")))
      return dir .. "/?.lua"
    end
  end
  error("no argparse.lua on this VM's path (Debian: apt-get install lua-argparse)")
end

describe("without LuaSocket (" .. vm .. ")", function()
  -- only the checkout's lua/ and argparse on the path, and the C modules (this VM's core,
  -- Debian's cjson) on the cpath: LuaSocket's socket.lua is out of reach
  local path = helper.lua_path(root)
  local core = helper.cpath:gsub("^%./", "")
  if core:sub(1, 1) ~= "/" then core = root .. "/" .. core end
  local cpath = core .. ";" .. system_dirs("cpath")

  local function run(args)
    return sh("cd " .. q(helper.tmpdir()) .. " && " .. env(path .. ";" .. argparse_alone(), cpath) .. q(helper.lua)
      .. " " .. args)
  end

  after_each(helper.cleanup)

  it("really has no LuaSocket there", function()
    local out = run("-e " .. q('local ok = pcall(require, "socket") io.write(ok and "socket" or "none")'))
    assert.equal("none", out)
  end)

  it("the library creates and queries a task", function()
    local emu = helper.emulator { queued = 0.1, processing = 0.1 }
    finally(function() emu:stop() end)
    local dir = helper.tmpdir()
    write(dir .. "/query.lua", [[
local url, key = assert(arg[1]), assert(arg[2])
assert(url:match("^http://127%.0%.0%.1:%d+$"), "not the local emulator: " .. url)
local s = require "starvideos"
local c = s.new { api_key = key, base_url = url }
local t = assert(c:create { model = "videos", prompt = "a kitten", duration = 5 })
print("queried " .. assert(c:query(t.id)).id, package.loaded.socket == nil)
]])
    local out, ok = run(q(dir .. "/query.lua") .. " " .. q(emu.url) .. " " .. q(emu.key))
    assert.is_true(ok, out)
    assert.matches("^queried %S+\ttrue\n$", out)
  end)

  it("the emulator says how to install it, and fails", function()
    local out, ok, code = run(q(root .. "/bin/starvideos") .. " emulator --port 0")
    assert.is_nil(ok)
    assert.equal(1, code)
    assert.matches("starvideos emulator: LuaSocket is missing (the emulator needs it; the library does not): "
      .. "install it with `apt-get install lua-socket` (Debian, Ubuntu) or `luarocks install luasocket`", out, 1, true)
    assert.is_nil(out:find("listening", 1, true))
  end)

  it("the emulator's help needs no LuaSocket", function()
    local out, ok = run(q(root .. "/bin/starvideos") .. " emulator --help")
    assert.is_true(ok, out)
    assert.matches("usage: " .. root .. "/bin/starvideos emulator", out, 1, true) -- (as invoked: the tree's command)
  end)
end)

describe("make without a package manager", function()
  if vm ~= "lua5.4" then
    pending("Makefile checks: they run once, under lua5.4")
    return
  end

  local tmp, src, nopm, fake, log

  lazy_setup(function()
    tmp = helper.tmpdir()
    src, nopm, fake, log = tmp .. "/src", tmp .. "/nopm", tmp .. "/fake", tmp .. "/calls.log"
    assert(helper.execute("mkdir " .. q(src) .. " && cd " .. q(root) .. " && cp -R Makefile csrc rocks tools mk "
      .. q(src)))
    -- PATH without apt*, dpkg* or sudo: every other command of the usual directories
    assert(helper.execute("mkdir " .. q(nopm) .. " && for d in /usr/local/bin /usr/bin /bin /usr/sbin /sbin; do "
      .. "[ -d \"$d\" ] && ls \"$d\" | grep -vE '^(apt|dpkg|sudo)' | sed \"s|^|$d/|\"; done "
      .. "| awk -F/ '!seen[$NF]++' | xargs ln -s -t " .. q(nopm)))
    -- and a PATH whose apt-get, dpkg-query and sudo only write down that they were called
    -- (dpkg-query says nothing is installed)
    assert(helper.execute("mkdir " .. q(fake)))
    for _, name in ipairs { "apt-get", "dpkg-query", "sudo" } do
      write(fake .. "/" .. name, "#!/bin/sh\necho \"" .. name .. " $*\" >>" .. q(log) .. "\nexit 1\n")
      assert(helper.execute("chmod +x " .. q(fake .. "/" .. name)))
    end
  end)

  lazy_teardown(helper.cleanup)

  it("has no apt-get nor dpkg-query on the hiding PATH", function()
    local out = sh("PATH=" .. q(nopm)
      .. " sh -c 'command -v apt-get; command -v dpkg-query; command -v make; command -v cc'")
    assert.equal(nopm .. "/make\n" .. nopm .. "/cc\n", out)
  end)

  it("make builds there", function()
    local out, ok = sh("cd " .. q(src) .. " && env " .. ccache.env(cache, q(nopm)) .. MAKE)
    assert.is_true(ok, out)
    assert.is_true(exists(src .. "/build/starvideos/core.so"))
    assert.is_true(exists(src .. "/build/test_core"))
    assert.is_nil(out:find("deps", 1, true), out)
  end)

  it("make calls no package manager, even where one would answer", function()
    local out, ok = sh("cd " .. q(src) .. " && env " .. ccache.env(cache, q(fake) .. ':"$PATH"') .. MAKE .. " -B")
    assert.is_true(ok, out)
    assert.is_nil(helper.read_file(log))
  end)

  it("make deps names the packages and fails there", function()
    local out, ok = sh("cd " .. q(src) .. " && PATH=" .. q(nopm) .. " " .. MAKE .. " deps")
    assert.is_nil(ok)
    assert.matches("deps: no apt-get here: install these (Debian names) or their equivalents by hand: lua5.4 ",
      out, 1, true)
  end)

  it("an install goal installs first (where there is no apt-get, says so and goes on), then makes itself again",
    function()
    local out, ok = sh("cd " .. q(src) .. " && PATH=" .. q(nopm) .. " sh tools/deps.sh --if-possible lua5.4")
    assert.is_true(ok, out)
    assert.matches("deps: no apt-get here: installing nothing", out, 1, true)
    -- make -n runs the line of $(MAKE): the second make's commands follow the install's two lines
    for _, goal in ipairs { "test", "test-hosts", "test-all", "demo", "check", "bench" } do
      out = sh("cd " .. q(src) .. " && PATH=" .. q(nopm) .. " " .. MAKE .. " -n " .. goal)
      assert.matches("^sh tools/deps.sh %-%-if%-possible [^\n]+\nSV_DEPS_DONE=1 make [^\n]* " .. goal:gsub("%-", "%%-")
        .. "\n", out)
    end
    -- a plain make, and the second make, install nothing
    out = sh("cd " .. q(src) .. " && PATH=" .. q(nopm) .. " " .. MAKE .. " -n -B all")
    assert.is_nil(out:find("deps.sh", 1, true), out)
    out = sh("cd " .. q(src) .. " && PATH=" .. q(nopm) .. " " .. MAKE .. " -n -B SV_DEPS_DONE=1 test")
    assert.is_nil(out:find("deps.sh", 1, true), out)
    -- and under make -n test demo, the install comes once (both goals' packages), before anything is built
    out = sh("cd " .. q(src) .. " && PATH=" .. q(nopm) .. " " .. MAKE .. " -B -n test demo")
    local _, n = out:gsub("tools/deps.sh %-%-if%-possible", "")
    assert.equal(1, n, out)
    assert.matches("^sh tools/deps.sh %-%-if%-possible ", out)
  end)

  it("where apt-get answers, make deps asks it for what dpkg-query says is missing", function()
    os.remove(log)
    sh("cd " .. q(src) .. " && PATH=" .. q(fake) .. ":\"$PATH\" " .. MAKE .. " deps")
    local calls = helper.read_file(log) or ""
    assert.matches("dpkg-query -W -f=${Status} lua5.4\n", calls, 1, true)
    assert.matches("apt-get update -qq", calls, 1, true)
  end)
end)

-- docs/install.md's "LuaRocks" section, line by line, as a user types it: the
-- lines of its ```sh blocks (comments stripped) run in one shell each, under
-- a fresh HOME, then the section's `starvideos models`, `validate` and
-- `generate` lines against the emulator.  The root lines of the first block
-- install into /usr/local: the spec runs them as the per-VM tree block has
-- them (the same lines with `--tree ~/rocks-...`, which it checks), and for
-- 5.1, 5.2 and 5.3 the 5.4 lines with their version ("5.1, 5.2, 5.3 alike").
-- The user lines (--local, luarocks path) run as nobody when the suite is
-- root.  Once, under lua5.4: 9 builds of the rock, one to two minutes.
describe("docs/install.md's LuaRocks lines", function()
  if vm ~= "lua5.4" then
    pending("docs checks: they run once, under lua5.4")
    return
  end
  if not helper.execute("command -v luarocks >/dev/null 2>&1") then
    pending("luarocks is not installed (Debian: apt-get install luarocks, or make deps)")
    return
  end

  -- the section's fenced blocks, in order: { lang =, lines = { ... } }
  local section = assert((helper.read_file(root .. "/docs/install.md") or ""):match("\n## LuaRocks\n(.-)\n## "),
    "docs/install.md has no LuaRocks section")
  local blocks = {}
  for lang, body in section:gmatch("```(%w*)\n(.-)```") do
    local lines = {}
    for line in body:gmatch("[^\n]+") do
      lines[#lines + 1] = lang == "sh" and line:gsub("%s+#.*$", "") or line
    end
    blocks[#blocks + 1] = { lang = lang, lines = lines }
  end
  local sh_blocks = {}
  for _, b in ipairs(blocks) do
    if b.lang == "sh" then sh_blocks[#sh_blocks + 1] = b.lines end
  end
  -- the roles, by what each line says
  local function find(lines, pattern, plain)
    local hits = {}
    for _, line in ipairs(lines or {}) do
      if line:find(pattern, 1, plain) then hits[#hits + 1] = line end
    end
    return hits
  end
  local INSTALL, TRY, USER, TREES = sh_blocks[1], sh_blocks[2], sh_blocks[3], sh_blocks[4]
  local WARNING
  for _, b in ipairs(blocks) do
    if b.lang == "text" then WARNING = table.concat(b.lines, "\n") .. "\n" end
  end

  local luajit = sh("command -v luajit"):match("^(%S+)")
  local emu
  lazy_setup(function()
    -- (one emulator for every session: the cases took 21 min on a box loaded 14, past the default 15 min lifetime)
    emu = helper.emulator { queued = 0.1, processing = 0.1, lifetime = 3600 }
  end)
  lazy_teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)

  -- A fresh HOME and a copy of the checkout in it (owned by `user` when given).
  local function fresh(user)
    local home = helper.tmpdir()
    assert(helper.execute("cd " .. q(root) .. " && mkdir " .. q(home .. "/starvideos")
      .. " && cp -R rockspec csrc lua bin types README.md LICENSE " .. q(home .. "/starvideos")))
    if user then assert(helper.execute("chmod 755 " .. q(home) .. " && chown -R " .. user .. " " .. q(home))) end
    return home
  end

  -- Runs lines in one sh (set -e) at the top of the copy, HOME=home, with no
  -- Lua path of this suite's: its output (each line announced by ">>> ") and
  -- whether all succeeded.
  -- (start: in the background, its output into home/session.out; finish: waits for it, then what session returns)
  local function start(home, lines, user, path)
    local script = { "set -e", "cd " .. q(home .. "/starvideos") }
    for _, line in ipairs(lines) do
      script[#script + 1] = "echo " .. q(">>> " .. line)
      script[#script + 1] = line
    end
    write(home .. "/session.sh", table.concat(script, "\n") .. "\n")
    local run = user and ("runuser -u " .. user .. " -- ") or ""
    local out = home .. "/session.out"
    return { out = out, proc = helper.spawn(helper.UNINSTRUMENTED .. run .. "env -u LUA_INIT -u LUA_PATH -u LUA_CPATH "
      .. "-u LUA_PATH_5_2 -u LUA_CPATH_5_2 -u LUA_PATH_5_3 -u LUA_CPATH_5_3 -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
      .. "-u STARVIDEOS_LUA -u STARVIDEOS_CPATH -u STARVIDEOS_STORE -u STARVIDEOS_LOG -u LUAROCKS_CONFIG "
      .. ccache.env(cache, path and q(path)) .. "HOME=" .. q(home)
      .. " STARVIDEOS_API_KEY=" .. q(emu.key) .. " STARVIDEOS_BASE_URL=" .. q(emu.url)
      .. " sh " .. q(home .. "/session.sh") .. " >" .. q(out) .. " 2>&1") }
  end
  local function finish(started)
    started.proc.pipe:read("*a")
    local ok = started.proc:close()
    return helper.read_file(started.out) or "", ok and true or nil
  end
  local function session(home, lines, user, path)
    return finish(start(home, lines, user, path))
  end

  -- what a line printed: the output after its ">>> " up to the next line's
  local function after(out, line)
    local at = out:find(">>> " .. line .. "\n", 1, true)
    assert.is_number(at, "did not run: " .. line .. "\n" .. out)
    local from = at + #line + 5
    return out:sub(from, (out:find("\n>>> ", from - 1, true) or #out))
  end

  -- the try lines, with `starvideos` as given (default: the one on PATH)
  local function try_lines(command)
    local lines = {}
    for i, line in ipairs(TRY) do
      lines[i] = command and (line:gsub("^starvideos ", function() return q(command) .. " " end)) or line
    end
    return lines
  end

  -- what each try line must have done; the video in the copy is the emulator's
  local function check_try(home, out, command)
    local lines = try_lines(command)
    assert.matches("videos_fast", after(out, lines[1]))
    assert.matches("valid", after(out, lines[2]))
    local video = helper.read_video(home .. "/starvideos/kitten.mp4") -- (up to the mark's box)
    assert.is_true(video == SAMPLE, "kitten.mp4 is not the emulator's video\n" .. out)
    os.remove(home .. "/starvideos/kitten.mp4")
  end

  -- a script through the library on LuaJIT: a generate, and where the transport came from
  local LUAJIT_SCRIPT = "luajit -e " .. q([[
local s = require "starvideos"
local t = assert(s.new {}:generate({ model = "videos", prompt = "a kitten", duration = 5 },
  { out = "kitten.mp4", interval = 0.2 }))
print(jit.version, t.status, package.searchpath("starvideos.curl", package.cpath))]])

  local function check_luajit_script(home, tree, out, ok)
    assert.is_true(ok, out)
    assert.matches("\nLuaJIT [^\t\n]*\tcompleted\t", out)
    assert.matches("\tcompleted\t" .. tree .. "/lib/lua/5.1/starvideos/curl.so\n", out, 1, true)
    assert.is_true(helper.read_video(home .. "/starvideos/kitten.mp4") == SAMPLE)
    os.remove(home .. "/starvideos/kitten.mp4")
  end

  -- where a VM finds a module with the session's paths
  local function where(name, which)
    return "$(cd / && " .. which .. " -e " .. q("local n = (" .. string.format("%q", name) .. [[):gsub("%.", "/")
for t in package.cpath:gmatch("[^;]+") do
  local p = t:gsub("%?", n) local f = io.open(p) if f then f:close() print(p) return end
end
print("(not found)")]]) .. ")"
  end

  it("has the install, try, user and per-VM tree blocks, and the root lines are the trees' without --tree", function()
    assert.equal(4, #sh_blocks)
    assert.equal(3, #INSTALL)
    local luajit_line = find(INSTALL, "LUA_INCDIR=/usr/include/luajit-2.1", true)[1]
    local offline = find(INSTALL, "^luarocks %-%-lua%-version=5%.4 make %-%-deps%-mode=none$")[1]
    assert.is_string(luajit_line, "no LuaJIT line")
    assert.is_string(offline, "no offline 5.4 line")
    assert.matches("^luarocks %-%-lua%-version=5%.1 make ", luajit_line)
    -- the online line (it needs the LuaRocks server: not run here) is the offline one without --deps-mode
    assert.same({ "luarocks --lua-version=5.4 make", offline, luajit_line }, INSTALL)
    assert.matches("5%.1, 5%.2, 5%.3 alike", section)
    -- the per-VM trees: the same two lines with a --tree each, then an eval of each tree's path
    local installs = find(TREES, "^luarocks .* make ")
    assert.equal(2, #installs)
    assert.equal(offline, (installs[1]:gsub(" %-%-tree %S+", "")))
    assert.equal(luajit_line, (installs[2]:gsub(" %-%-tree %S+", "")))
    assert.equal(2, #find(TREES, '^eval "%$%(luarocks %-%-lua%-version=5%.[14] %-%-tree %S+ path%)"$'))
    assert.equal(4, #TREES)
    assert.same({ "starvideos models", "starvideos validate", "starvideos generate" },
      { TRY[1], TRY[2]:match("^%S+ %S+"), TRY[3]:match("^%S+ %S+") })
    assert.matches("%-%-out kitten%.mp4$", TRY[3])
    assert.is_string(WARNING, "no quoted warning")
  end)

  -- The sessions that build a rock, each in a HOME of its own: registered below beside their cases
  -- (name, prepare: a function that makes the HOME and starts the session, returning what the case needs), they
  -- all start together at the first case that asks for one (the builds run side by side); each case waits
  -- for its own (finish).
  local builds, runs = {}, nil
  local function build(name)
    if not runs then
      runs = {}
      for _, b in ipairs(builds) do runs[b.name] = b.prepare() end
    end
    return assert(runs[name], "no build registered before the first case: " .. name)
  end

  -- the per-VM tree lines: 5.4's, and for 5.3, 5.2, 5.1 the same with their version
  local VERSIONS = { "5.4", "5.3", "5.2", "5.1" }
  for _, w in ipairs(VERSIONS) do
    builds[#builds + 1] = { name = w, prepare = function()
      assert.is_nil(io.open("/usr/local/lib/luarocks/rocks-" .. w .. "/starvideos"),
        "a starvideos rock in /usr/local would answer for the tree's")
      local home = fresh()
      local lines = {
        (find(TREES, "^luarocks %-%-lua%-version=5%.4 ")[1]:gsub("5%.4", w)),
        (find(TREES, "^eval .*5%.4")[1]:gsub("5%.4", w)),
      }
      for _, line in ipairs(TRY) do lines[#lines + 1] = line end
      lines[#lines + 1] = "echo cjson " .. where("cjson", "lua" .. w)
      lines[#lines + 1] = "echo core " .. where("starvideos.core", "lua" .. w)
      lines[#lines + 1] = "echo command $(command -v starvideos)"
      return { home = home, lines = lines, started = start(home, lines) }
    end }
  end
  for _, v in ipairs(VERSIONS) do
    it("Lua " .. v .. ": into a tree of its own, then models, validate and generate", function()
      local run = build(v)
      local home, lines = run.home, run.lines
      local out, ok = finish(run.started)
      assert.is_true(ok, out)
      local tree = home .. "/rocks-" .. v
      assert.matches("starvideos scm-1 is now installed in " .. tree, out, 1, true)
      -- --deps-mode=none's warning is the docs', word for word, and false: Debian's cjson is used
      assert.matches(WARNING, out, 1, true)
      assert.matches("\ncjson /usr/lib/[^\n]*/lua/" .. v .. "/cjson%.so\n", out)
      assert.matches("\ncore " .. tree .. "/lib/lua/" .. v .. "/starvideos/core.so\n", out, 1, true)
      assert.matches("\ncommand " .. tree .. "/bin/starvideos\n", out, 1, true)
      assert.matches("exec '" .. sh("command -v lua" .. v):match("^(%S+)") .. "' ",
        helper.read_file(tree .. "/bin/starvideos"), 1, true)
      check_try(home, out)
      if v == "5.1" and luajit then
        -- the core built with lua5.1's headers, under LuaJIT
        check_luajit_script(home, tree, session(home, { lines[2], LUAJIT_SCRIPT }))
      end
    end)
  end

  -- the per-VM tree block as written: 5.4's tree and LuaJIT's, in one HOME (registered here: a describe's
  -- body runs only when its turn comes)
  if luajit then
    builds[#builds + 1] = { name = "beside", prepare = function()
      local dir = fresh()
      return { home = dir, started = start(dir, find(TREES, "^luarocks ")) }
    end }
  end
  describe("LuaJIT beside Lua 5.4, a tree each", function()
    if not luajit then
      pending("luajit is not installed (Debian: apt-get install luajit2, or make deps)")
      return
    end
    local home, tree54, treejit, install_out, install_ok
    lazy_setup(function()
      local run = build("beside")
      home = run.home
      tree54, treejit = home .. "/rocks-5.4", home .. "/rocks-luajit"
      install_out, install_ok = finish(run.started)
    end)

    it("installs both, LuaJIT's core with LuaJIT's headers", function()
      assert.is_true(install_ok, install_out)
      assert.matches("%-I/usr/include/luajit%-2%.1 ", after(install_out, find(TREES, "^luarocks .*luajit")[1]))
      assert.matches("starvideos scm-1 is now installed in " .. treejit, install_out, 1, true)
      assert.matches("starvideos scm-1 is now installed in " .. tree54, install_out, 1, true)
    end)

    it("each tree's eval gives that tree's command, on its VM: models, validate and generate", function()
      assert.is_true(install_ok, install_out)
      for _, case in ipairs { { "5.4", tree54 }, { "5.1", treejit } } do
        local v, tree = case[1], case[2]
        local lines = { find(TREES, "^eval .*" .. v:gsub("%.", "%%."))[1] }
        for _, line in ipairs(TRY) do lines[#lines + 1] = line end
        lines[#lines + 1] = "echo command $(command -v starvideos)"
        local out, ok = session(home, lines)
        assert.is_true(ok, out)
        assert.matches("\ncommand " .. tree .. "/bin/starvideos\n", out, 1, true)
        assert.matches("exec '" .. sh("command -v lua" .. v):match("^(%S+)") .. "' ",
          helper.read_file(tree .. "/bin/starvideos"), 1, true)
        assert.is_false(exists(tree .. "/bin/starvideos~"))
        check_try(home, out)
      end
    end)

    it("LuaJIT's tree: the command and a script run on luajit too", function()
      assert.is_true(install_ok, install_out)
      local eval = find(TREES, "^eval .*5%.1")[1]
      -- LuaRocks' wrapper with luajit in place of the interpreter it found (lua5.1)
      local wrapper = assert(helper.read_file(treejit .. "/bin/starvideos"))
      local on_luajit, n = wrapper:gsub("exec '[^']+' ", function() return "exec " .. q(luajit) .. " " end)
      assert.equal(1, n, wrapper)
      write(home .. "/starvideos-luajit", on_luajit)
      assert(helper.execute("chmod +x " .. q(home .. "/starvideos-luajit")))
      local lines = { eval }
      for _, line in ipairs(try_lines(home .. "/starvideos-luajit")) do lines[#lines + 1] = line end
      local out, ok = session(home, lines)
      assert.is_true(ok, out)
      check_try(home, out, home .. "/starvideos-luajit")
      check_luajit_script(home, treejit, session(home, { eval, LUAJIT_SCRIPT }))
    end)

    it("in one tree instead, LuaJIT's rock moves 5.4's command aside to bin/starvideos~ (as the docs say)",
      function()
      assert.is_true(install_ok, install_out)
      local first = helper.read_file(tree54 .. "/bin/starvideos")
      local out, ok = session(home, { find(INSTALL, "luajit")[1] .. " --tree " .. q(tree54) })
      assert.is_true(ok, out)
      assert.equal(first, helper.read_file(tree54 .. "/bin/starvideos~"))
      assert.matches("/lua5.1' ", helper.read_file(tree54 .. "/bin/starvideos"), 1, true)
      local said = section:gsub("%s+", " ")
      assert.matches("which LuaRocks moves aside to `bin/starvideos~`", said, 1, true)
    end)
  end)

  if luajit then
    builds[#builds + 1] = { name = "no lua5.1", prepare = function()
      local home = fresh()
      -- a PATH of every command of the usual directories but lua5.1
      local farm = home .. "/bin"
      assert(helper.execute("mkdir " .. q(farm) .. " && for d in /usr/local/bin /usr/bin /bin /usr/sbin /sbin; do "
        .. "[ -d \"$d\" ] && ls \"$d\" | grep -vx 'lua5\\.1' | sed \"s|^|$d/|\"; done "
        .. "| awk -F/ '!seen[$NF]++' | xargs ln -s -t " .. q(farm)))
      local lines = { find(TREES, "^luarocks %-%-lua%-version=5%.1 ")[1], find(TREES, "^eval .*5%.1")[1] }
      for _, line in ipairs(TRY) do lines[#lines + 1] = line end
      lines[#lines + 1] = "echo lua5.1 $(command -v lua5.1 || echo none)"
      return { home = home, farm = farm, started = start(home, lines, nil, farm) }
    end }
  end
  it("where there is no lua5.1, LuaJIT's tree's command runs on luajit (as the docs say)", function()
    if not luajit then
      pending("luajit is not installed (Debian: apt-get install luajit2, or make deps)")
      return
    end
    local run = build("no lua5.1")
    local home, farm = run.home, run.farm
    local out, ok = finish(run.started)
    assert.is_true(ok, out)
    assert.matches("\nlua5.1 none\n", out, 1, true)
    assert.matches("exec '" .. farm .. "/luajit' ", helper.read_file(home .. "/rocks-luajit/bin/starvideos"), 1, true)
    check_try(home, out)
    assert.matches("the installed `starvideos` command runs on the interpreter LuaRocks found for 5.1: `lua5.1` "
      .. "where it is installed, else `luajit`", (section:gsub("%s+", " ")), 1, true)
  end)

  builds[#builds + 1] = { name = "user", prepare = function()
    local user = sh("id -u"):match("^0\n") and helper.execute("command -v runuser >/dev/null") and "nobody" or nil
    local home = fresh(user)
    local lines = {}
    for _, line in ipairs(USER) do lines[#lines + 1] = line end
    for _, line in ipairs(TRY) do lines[#lines + 1] = line end
    lines[#lines + 1] = "echo command $(command -v starvideos) $(id -un)"
    lines[#lines + 1] = "echo core " .. where("starvideos.core", "lua5.4")
    return { home = home, user = user, started = start(home, lines, user) }
  end }
  it("as a user, not root: --local, then luarocks path finds the command and the modules", function()
    local run = build("user")
    local home, user = run.home, run.user
    local out, ok = finish(run.started)
    assert.is_true(ok, out)
    assert.matches("\ncommand " .. home .. "/.luarocks/bin/starvideos " .. (user or ""), out, 1, true)
    assert.matches("\ncore " .. home .. "/.luarocks/lib/lua/5.4/starvideos/core.so\n", out, 1, true)
    check_try(home, out)
  end)
end)
