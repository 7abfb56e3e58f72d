-- The docs' nginx, run: the whole nginx.conf under "## The whole nginx.conf" in
-- docs/openresty.md, run as its "## Run it" says (Debian's /usr/sbin/nginx, its
-- own prefix) with only its placeholders filled in; and the commands of
-- examples/openresty/README.md, run line by line against the emulator they
-- start.  Each ends with a whole video on disk.  Ports are the system's, and
-- every address is 127.0.0.1 (the emulator's video URLs too: no name is ever
-- resolved, so the configs' `resolver` is never asked).  Started as root, the
-- spec does what the READMEs tell root to do for the workers, who are nobody.

local cjson = require "cjson.safe"
local http = require "socket.http"
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"

local q = helper.shell_quote
local str_format = string.format
-- as a user types them: nothing instrumented (make check's preloaded ASan
-- runtime would only slow nginx, and hangs curl), not inside make's own make
local AS_TYPED = helper.UNINSTRUMENTED .. "-u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
local NGINX = "/usr/sbin/nginx"
local KEY = "k-readme"
local ROOT = nginx_run.ROOT
local AS_ROOT = helper.capture("id -u"):match("^0%s*$") ~= nil

local function plain(s) return (s:gsub("%p", "%%%0")) end

-- text with every `from` replaced by `to`; raises when there is none (a
-- placeholder the README no longer has).
local function fill(text, from, to, where)
  local out, n = text:gsub(plain(from), (to:gsub("%%", "%%%%")))
  assert(n > 0, str_format("%s has no %s", where, from))
  return out
end

-- The part of a markdown text under `heading` (a whole line), up to the next
-- heading of the same level or above.
local function section(text, heading)
  local level = #heading:match("^#+")
  local start = assert(text:find("\n" .. heading .. "\n", 1, true), "no section " .. heading)
  local body = text:sub(start + #heading + 2)
  local stop
  for pos, hashes in body:gmatch("()\n(#+) ") do
    if #hashes <= level then stop = pos break end
  end
  return stop and body:sub(1, stop) or body
end

-- The fenced blocks of a markdown text in language `lang`, in order.
local function blocks(text, lang)
  local list = {}
  for body in text:gmatch("\n *```" .. lang .. "\n(.-)\n *```") do list[#list + 1] = body end
  return list
end

-- The commands of a shell block: one per line, without comments.
local function commands(block)
  local list = {}
  for each in block:gmatch("[^\n]+") do
    local line = each:gsub("%s+#.*$", ""):gsub("^%s+", "")
    if line ~= "" then list[#list + 1] = line end
  end
  return list
end

-- Every Debian package an `apt-get install` line names is a real one, installed
-- here (when this is Debian).
local function installed(line)
  local names = assert(line:match("apt%-get install (.+)$"), "not an apt-get install line: " .. line)
  if not helper.execute("command -v dpkg-query >/dev/null 2>&1") then return end
  for name in names:gmatch("%S+") do
    local status = helper.capture("dpkg-query -W -f='${Status}' " .. q(name) .. " 2>/dev/null")
    assert.equal("install ok installed", status, "the README names the package " .. name)
  end
end

local listening = nginx_run.listening

-- Is process pid running (not gone, nor a zombie waiting to be reaped)?
local function alive(pid)
  local stat = helper.read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("%) (%a)") ~= "Z"
end

-- Without `env STARVIDEOS_BASE_URL;` nginx would hide the emulator's URL from
-- the library, which would then look the service's name up: stop before that.
local function passes_base_url(conf, where)
  assert(conf:find("\nenv STARVIDEOS_BASE_URL;"), where .. " has no `env STARVIDEOS_BASE_URL;`")
  assert(conf:find("\nenv STARVIDEOS_API_KEY;"), where .. " has no `env STARVIDEOS_API_KEY;`")
end

-- A command line run in the background in `dir` (its output in `log`): the
-- process, once it listens on `port`; raises with its output when it dies first.
local function start(dir, cmd, log, port)
  local proc = helper.spawn("sh -c " .. q("cd " .. q(dir) .. " && exec " .. AS_TYPED .. cmd
    .. " >" .. q(log) .. " 2>&1"))
  local up = helper.wait_until(function() return listening(port) or not alive(proc.pid) end, 30)
  if not (up and listening(port)) then
    helper.execute(str_format("kill %d 2>/dev/null", proc.pid))
    proc:close()
    error(str_format("`%s` did not listen on %d:\n%s", cmd, port, helper.read_file(log) or ""), 2)
  end
  return proc
end

-- Stops a process started above (SIGTERM, as `kill` does); whether it ended.
local function stop(proc)
  if not proc or proc.stopped then return true end
  proc.stopped = true
  helper.execute(str_format("kill %d 2>/dev/null", proc.pid))
  local ended = helper.wait_until(function() return not alive(proc.pid) end, 15)
  if not ended then helper.execute(str_format("kill -9 %d 2>/dev/null", proc.pid)) end
  proc:close()
  return ended
end

-- A command line run in `dir`: its output; raises when it fails.
local function run(dir, cmd)
  local out, ok, code = helper.capture("cd " .. q(dir) .. " && " .. AS_TYPED .. cmd .. " 2>&1")
  assert(ok, str_format("`%s` failed (%s):\n%s", cmd, tostring(code), out))
  return out
end

-- The video of task `id`, as the emulator at `base` (accepting `key`) gives it.
local function emulator_video(base, key, id)
  local answer = {}
  local _, code = http.request { url = base .. "/v1/result/" .. id, headers = { authorization = "Bearer " .. key },
    sink = require("ltn12").sink.table(answer) }
  assert.equal(200, code)
  local task = assert(cjson.decode(table.concat(answer)))
  -- an address, not a name: nginx asks no DNS server for it
  assert.truthy(task.video_url:find("^http://127%.0%.0%.1:%d+/"), task.video_url)
  local video = assert(http.request(task.video_url))
  assert.is_true(#video > 1000, "the emulator's video is " .. #video .. " bytes")
  return video
end

-- `path` holds the emulator's video of task `id`, whole (up to the mark's box its commit appended: helper.read_video).
local function whole_video(path, base, key, id)
  assert.is_true(helper.exists(path), "no video at " .. path)
  assert.is_false(helper.exists(path .. ".part"))
  assert.is_true(helper.read_video(path) == emulator_video(base, key, id), path .. " is not the emulator's video")
end

local OPENRESTY = assert(helper.read_file(ROOT .. "/docs/openresty.md"))
local EXAMPLE = assert(helper.read_file(ROOT .. "/examples/openresty/README.md"))

describe("examples/openresty/README.md's table of statuses", function()
  it("names every error kind once, with the status handler.lua answers", function()
    local handler = dofile(ROOT .. "/examples/openresty/handler.lua")
    local listed = {}
    for kinds, status in section(EXAMPLE, "## What each error answers"):gmatch("\n| ([^|]+) | (%d+) |") do
      for kind in kinds:gmatch("`([%w_]+)`") do
        assert.is_nil(listed[kind], kind .. " is listed twice")
        listed[kind] = tonumber(status)
      end
    end
    local kinds = { "invalid_request", "auth", "not_found", "rate_limited", "server", "network", "timeout",
      "task_failed", "protocol", "io" } -- every kind the library has
    for _, kind in ipairs(kinds) do
      assert.equal(handler.STATUS[kind], listed[kind], kind)
    end
    local n = 0
    for _ in pairs(handler.STATUS) do n = n + 1 end
    assert.equal(#kinds, n, "handler.STATUS has kinds the library does not")
  end)
end)

local why = nginx_run.missing { NGINX, "curl" }
if why then
  describe("the READMEs' nginx", function()
    it("needs Debian's nginx with its lua module", function() pending(why) end)
  end)
  return
end

describe("docs/openresty.md's nginx.conf (\"## The whole nginx.conf\")", function()
  local emu, nginx, dir
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.5 }
    dir = helper.tmpdir()
  end)
  teardown(function()
    stop(nginx)
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("runs as pasted, with its placeholders filled in, and a request gets a whole video", function()
    local setup_text = section(OPENRESTY, "## Run it")
    local sh = blocks(setup_text, "sh")
    assert.equal(2, #sh, "two shell blocks under ## Run it")
    local install = commands(sh[1])
    assert.equal(3, #install, "docs/openresty.md's install block")
    installed(install[1])
    assert.equal("make", install[2]) -- the emulator's core (Lua 5.4)
    assert.equal("make luajit", install[3]) -- every C module a LuaJIT host loads
    run(ROOT, install[2])
    run(ROOT, install[3])
    local launch, ask = commands(sh[2])[1], commands(sh[2])[2]
    local nginx_cmd = assert(launch:match("^STARVIDEOS_API_KEY=%.%.%. (/usr/sbin/nginx .*)$"), launch)

    local confs = blocks(section(OPENRESTY, "## The whole nginx.conf"), "nginx")
    assert.equal(1, #confs, "one nginx block under ## The whole nginx.conf")
    local port = helper.free_ports(1)[1]
    local out = dir .. "/out"
    local conf = fill(confs[1], "/path/to/starvideos", ROOT, "docs/openresty.md's nginx.conf")
    conf = fill(conf, "/path/to/out", out, "docs/openresty.md's nginx.conf")
    conf = fill(conf, "127.0.0.1:8080", "127.0.0.1:" .. port, "docs/openresty.md's nginx.conf")
    passes_base_url(conf, "docs/openresty.md's nginx.conf")
    helper.write_file(dir .. "/nginx.conf", conf)
    assert(helper.execute("mkdir " .. q(out)))
    if AS_ROOT then -- "nobody ... must then be able to ... write /path/to/out"
      assert.truthy(setup_text:gsub("%s+", " "):find(
        "`nobody`, who must then be able to read the checkout and write `/path/to/out`", 1, true))
      assert(helper.execute("chmod 755 " .. q(dir) .. " && chown nobody " .. q(out)))
    end

    nginx = start(dir, str_format("STARVIDEOS_API_KEY=%s STARVIDEOS_BASE_URL=%s %s", KEY, emu.url, nginx_cmd),
      dir .. "/nginx.out", port)
    ask = fill(ask, "127.0.0.1:8080", "127.0.0.1:" .. port, "docs/openresty.md's curl line")
    -- the library's first poll comes after 30 s when nothing was learned yet
    local path = run(dir, fill(ask, "curl ", "curl -sS -m 120 ", "docs/openresty.md's curl line")):match("^(.-)\n?$")
    assert.truthy(path:find("^" .. plain(out) .. "/%x+%.mp4$"), "the answer: " .. path)
    local created = emu:tasks()
    assert.equal(1, #created)
    whole_video(path, emu.url, KEY, created[1].id)

    -- no prompt: the library's message, as a 400
    local answer = run(dir, str_format("curl -sS -w ' %%{http_code}' 'http://127.0.0.1:%d/generate'", port))
    assert.equal("prompt: required, expected a non-empty string\n 400", answer)
    assert.equal(1, #emu:tasks(), "a request without a prompt created a task")
    assert.is_true(stop(nginx), "nginx did not stop on SIGTERM")
    assert.is_nil((helper.read_file(dir .. "/nginx.out") or ""):find("%[emerg%]"))
  end)
end)

describe("examples/openresty/README.md's commands", function()
  local procs, dir = {}, nil
  teardown(function()
    for i = #procs, 1, -1 do stop(procs[i]) end
    helper.cleanup()
  end)

  -- The checkout as the commands see it: the real one, but for build/openresty
  -- (made by the commands) and nginx.conf's port (and what `edit` changes).
  local function checkout(port, edit)
    dir = helper.tmpdir()
    assert(helper.execute("chmod 755 " .. q(dir) .. " && mkdir " .. q(dir .. "/build") .. " "
      .. q(dir .. "/examples") .. " " .. q(dir .. "/examples/openresty")))
    local function link_all(from, to, except)
      for name in helper.capture("ls -A " .. q(from)):gmatch("[^\n]+") do
        if not except[name] then assert(helper.execute("ln -s " .. q(from .. "/" .. name) .. " " .. q(to .. "/"))) end
      end
    end
    link_all(ROOT, dir, { build = true, examples = true })
    link_all(ROOT .. "/build", dir .. "/build", { openresty = true })
    link_all(ROOT .. "/examples", dir .. "/examples", { openresty = true })
    link_all(ROOT .. "/examples/openresty", dir .. "/examples/openresty", { ["nginx.conf"] = true })
    local conf = assert(helper.read_file(ROOT .. "/examples/openresty/nginx.conf"))
    passes_base_url(conf, "examples/openresty/nginx.conf")
    conf = fill(conf, "listen 127.0.0.1:8080;", "listen 127.0.0.1:" .. port .. ";", "examples/openresty/nginx.conf")
    helper.write_file(dir .. "/examples/openresty/nginx.conf", edit and edit(conf) or conf)
  end

  it("run line by line, they start the emulator and nginx, and curl gets a whole video", function()
    local usage = section(EXAMPLE, "## Against the local emulator")
    local sh = blocks(usage, "sh")
    assert.equal(2, #sh, "two shell blocks under ## Against the local emulator")
    installed(commands(sh[1])[1])
    -- the emulator needs the Lua 5.4 core (else it exits "run make first"), nginx the LuaJIT modules
    assert.same({ "make", "make luajit" }, { commands(sh[2])[1], commands(sh[2])[2] })
    local ports = helper.free_ports(2)
    local emu_port, ngx_port = ports[1], ports[2]
    checkout(ngx_port)
    local as_root = AS_ROOT and commands(blocks(section(EXAMPLE, "## Users: who writes the videos"), "sh")[1])
    local task, key
    for _, line in ipairs(commands(sh[2])) do
      line = line:gsub("%f[%d]8090%f[%D]", emu_port):gsub("%f[%d]8080%f[%D]", ngx_port)
      local jobs = line:match("^kill (%%.*)$")
      if jobs then -- `kill %2 %1`: the shell's jobs, numbered as started
        for n in jobs:gmatch("%%(%d+)") do
          assert.is_true(stop(procs[tonumber(n)]), "job " .. n .. " did not stop")
        end
      elseif line:find(" &$") then
        local cmd = line:sub(1, -3)
        local port = tonumber(cmd:match("%-%-port (%d+)")) or ngx_port
        key = key or cmd:match("%-%-key (%S+)")
        procs[#procs + 1] = start(dir, cmd, str_format("%s/job%d.out", dir, #procs + 1), port)
      elseif line:find("^curl ") then
        local answer = run(dir, (line:gsub("^curl ", "curl -sS -m 60 ")))
        task = assert(cjson.decode(answer), "curl printed: " .. answer)
        assert.equal("completed", task.status, answer)
        assert.equal(str_format("%s/build/openresty/videos/%s", dir, task.path:match("[^/]*$")), task.path)
        whole_video(task.path, "http://127.0.0.1:" .. emu_port, key, task.id) -- while the emulator runs
      else
        run(dir, line)
        if as_root and line:find("^mkdir ") then -- "as root, see Users first"
          for _, cmd in ipairs(as_root) do run(dir, cmd) end
        end
      end
    end
    assert.is_table(task, "no curl line")
    assert.equal(2, #procs, "the emulator and nginx")
    for i, p in ipairs(procs) do assert.is_true(p.stopped, "job " .. i .. " was not stopped") end
    -- "nginx's log is build/openresty/error.log"
    assert.truthy((helper.read_file(dir .. "/build/openresty/error.log") or ""):find("[notice]", 1, true))
  end)

  it("with the journal line uncommented, each create is recorded first (as root, once nobody may write it)", function()
    local emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.3 }
    finally(function() emu:stop() end)
    local port = helper.free_ports(1)[1]
    checkout(port, function(conf)
      return fill(conf, "#set $starvideos_journal", "set $starvideos_journal", "examples/openresty/nginx.conf")
    end)
    local users = blocks(section(EXAMPLE, "## Users: who writes the videos"), "sh")
    run(dir, "mkdir -p build/openresty/videos")
    if AS_ROOT then run(dir, commands(users[1])[1]) end
    procs[#procs + 1] = start(dir, str_format("STARVIDEOS_API_KEY=%s STARVIDEOS_BASE_URL=%s %s -p \"$PWD/\" -c %s",
      KEY, emu.url, NGINX, "examples/openresty/nginx.conf"), dir .. "/nginx.out", port)
    local function generate()
      local out = run(dir, str_format("curl -sS -m 60 -w '\\n%%{http_code}' "
        .. "'http://127.0.0.1:%d/generate?prompt=fox&interval=0.3'", port))
      local body, code = out:match("^(.*)\n(%d+)$")
      return assert(cjson.decode(body or ""), out), tonumber(code)
    end
    local journal = dir .. "/build/openresty/tasks.jsonl"
    if AS_ROOT then -- "Otherwise each request answers 500 (io, naming the journal), and nothing is sent"
      local o, code = generate()
      assert.equal(500, code, cjson.encode(o))
      assert.equal("io", o.kind)
      assert.truthy(o.error:find(journal, 1, true), o.error)
      assert.same({}, emu:requests())
      run(dir, commands(users[2])[1])
    end
    local o, code = generate()
    assert.equal(200, code, cjson.encode(o))
    whole_video(o.path, emu.url, KEY, o.id)
    local events = {}
    for line in (helper.read_file(journal) or ""):gmatch("[^\n]+") do
      local r = assert(cjson.decode(line), line)
      if r.event == "pending" or r.id == o.id then events[#events + 1] = r.event end
    end
    assert.equal("pending", events[1], cjson.encode(events))
    assert.equal("created", events[2], cjson.encode(events))
    assert.is_true(stop(procs[#procs]), "nginx did not stop")
  end)
end)
