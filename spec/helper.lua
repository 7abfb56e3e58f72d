-- Test helper: starts the local emulator and drives its control API.
--
--   local helper = require "spec.helper"
--   local emu = helper.emulator { queued = 0.1, processing = 0.1 }
--   ... emu.url, emu.key, emu:requests(), emu:fault{ status = 500 } ...
--   emu:stop()
--
-- Everything here talks to 127.0.0.1 only.  Child processes (the emulator, the
-- command line, fixtures) run under helper.lua, the VM running the specs.

local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson.safe"

local assert, error, ipairs, setmetatable, tonumber, tostring, type =
  assert, error, ipairs, setmetatable, tonumber, tostring, type
local math_floor = math.floor
local io_open, io_popen, os_execute, os_getenv, os_remove, os_tmpname =
  io.open, io.popen, os.execute, os.getenv, os.remove, os.tmpname
local str_format, tbl_concat = string.format, table.concat

local helper = {}

-- The repository root, found from this file's own path.
helper.root = (debug.getinfo(1, "S").source:match("^@(.*)/spec/helper%.lua$")) or "."

-- The Lua search templates of a checkout at root: the core's lua/, then each other rock's rocks/<rock>/lua/
-- (tools/lua_dirs.lua: the rocks found in this checkout), no trailing ';'.
helper.LUA_DIRS = select(2, dofile(helper.root .. "/tools/lua_dirs.lua")(helper.root))
function helper.lua_path(root)
  local t = {}
  for _, d in ipairs(helper.LUA_DIRS) do
    t[#t + 1] = root .. "/" .. d .. "/?.lua;" .. root .. "/" .. d .. "/?/init.lua"
  end
  return table.concat(t, ";")
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
helper.shell_quote = shell_quote

-- The interpreter for child processes: $STARVIDEOS_LUA (make test-all sets it
-- to each VM in turn), else the one running busted (`lua5.1 /usr/bin/busted`,
-- `busted --lua=luajit`), else lua5.4.
local function interpreter()
  local env = os_getenv("STARVIDEOS_LUA")
  if env and env ~= "" then return env end
  local a = rawget(_G, "arg")
  if type(a) == "table" then
    local i = 0
    while a[i - 1] ~= nil do i = i - 1 end
    if i < 0 and type(a[i]) == "string" then return a[i] end
  end
  return "lua5.4"
end
helper.lua = interpreter()

-- The VM running the specs: "lua5.1" .. "lua5.4" or "luajit".  Integers
-- (math.type, 3 // 2, "%d" of 3.0) exist from 5.3 on: helper.integers.
helper.vm = (type(rawget(_G, "jit")) == "table" and "luajit") or ("lua" .. _VERSION:match("%d+%.%d+"))
helper.integers = math.type ~= nil -- luacheck: ignore 143 (5.3+ only, checked here)

-- Where this VM's C modules are, as a package.cpath entry (absolute), for child
-- processes: $STARVIDEOS_CPATH (make test-all), else as .busted chooses:
-- build/?.so for 5.4 (`make`), build/<vm>/?.so for the others.
do
  local cpath = os_getenv("STARVIDEOS_CPATH")
  if not cpath or cpath == "" then
    cpath = helper.vm == "lua5.4" and "build/?.so" or ("build/" .. helper.vm .. "/?.so")
  end
  if cpath:sub(1, 1) ~= "/" then cpath = helper.root .. "/" .. cpath end
  helper.cpath = cpath
end

-- true when path can be opened for reading
function helper.exists(path)
  local f = io_open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The size of a file in bytes, or nil when it cannot be opened.
function helper.file_size(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- n ports on 127.0.0.1 that the system picks (bound, then released for a
-- server started afterwards: nginx, say).
function helper.free_ports(n)
  local socks, ports = {}, {}
  for i = 1, n do
    socks[i] = assert(socket.bind("127.0.0.1", 0))
    local _, port = socks[i]:getsockname()
    ports[i] = tonumber(port)
  end
  for _, s in ipairs(socks) do s:close() end
  return ports
end

-- A port of 127.0.0.1 that refuses every connection while the spec runs: bound and never listening (held until
-- helper.cleanup), so that no server of a spec running beside it can take it, as it can a free port's.
local refusing = {}
function helper.refusing_port()
  local s = assert(socket.tcp())
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  refusing[#refusing + 1] = s
  return tonumber(port)
end

-- A port of 127.0.0.1 where a connection attempt hangs: a listener whose accept queue (of 1) is full, filled by
-- connections of its own.  Its port, and a function that lets all of them go.
function helper.hanging_port()
  local srv = assert(socket.bind("127.0.0.1", 0, 1))
  local _, port = srv:getsockname()
  local fill = {}
  for i = 1, 4 do
    fill[i] = socket.tcp()
    fill[i]:settimeout(0)
    fill[i]:connect("127.0.0.1", port)
  end
  return tonumber(port), function()
    for _, s in ipairs(fill) do s:close() end
    srv:close()
  end
end

-- Put before a command that runs a program not built with the sanitizers:
-- `make check` preloads the ASan runtime into the suite (for its instrumented
-- core.so) and sends reports to its log folder; an uninstrumented program must
-- inherit neither (one hangs at exit under the preloaded runtime).
helper.UNINSTRUMENTED = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u TSAN_OPTIONS "

-- The names in a directory, sorted (hidden ones included).
function helper.listing(dir)
  local p = assert(io.popen("ls -A " .. shell_quote(dir)))
  local names = {}
  for name in p:lines() do names[#names + 1] = name end
  p:close()
  table.sort(names)
  return names
end

function helper.write_file(path, text)
  local f = assert(io_open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

function helper.read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

-- os.execute(cmd) as 5.2+ answers it, on every VM: true or nil, and the exit
-- status (128 + N when a signal N ended it).  5.1 and LuaJIT return the raw
-- wait status instead.
function helper.execute(cmd)
  local ok, how, code = os_execute(cmd)
  if type(ok) == "number" then
    local status = ok
    if status % 256 == 0 then code = math_floor(status / 256) else code = 128 + status % 128 end
  elseif how == "signal" then
    code = 128 + code
  end
  return code == 0 or nil, code
end

-- Does a pipe's close() give the exit status (5.2+)?  5.1 and LuaJIT: no, so
-- there the status goes through a file: the shell's $?, 128 + N for signal N.
local CLOSE_GIVES_STATUS = (function()
  local p = assert(io_popen("exit 3", "r"))
  local _, _, code = p:close()
  return code == 3
end)()

-- A shell command reading its stdout: .pipe, and :close(), which waits for it
-- and returns what a 5.2+ pipe's close() does: true or nil, "exit" or
-- "signal", the status or the signal number.
local Process = {}
Process.__index = Process

local function open_process(cmd)
  if CLOSE_GIVES_STATUS then return setmetatable({ pipe = assert(io_popen(cmd, "r")) }, Process) end
  local status_file = os_tmpname()
  local pipe = assert(io_popen("(" .. cmd .. "\n); echo $? >" .. shell_quote(status_file), "r"))
  return setmetatable({ pipe = pipe, status_file = status_file }, Process)
end

-- Starts a program (a shell command line, run with exec); .pid is its pid.
function helper.spawn(cmd)
  local proc
  if CLOSE_GIVES_STATUS then
    proc = open_process("echo $$; exec " .. cmd)
  else
    proc = open_process("sh -c " .. shell_quote("echo $$; exec " .. cmd))
  end
  proc.pid = tonumber(proc.pipe:read("*l"))
  return proc
end

-- A Lua program src, written as dir/name.lua and run by the specs' interpreter with args, on this checkout's
-- modules (CHILD_ENV: whatever VM runs the specs): its process (stdout and stderr in .pipe).
function helper.run_lua(dir, name, src, args)
  local path = dir .. "/" .. name .. ".lua"
  helper.write_file(path, src)
  local cmd = { helper.CHILD_ENV .. shell_quote(helper.lua), shell_quote(path) }
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = shell_quote(a) end
  return helper.spawn(tbl_concat(cmd, " ") .. " 2>&1")
end

function Process:close()
  if not self.status_file then return self.pipe:close() end
  self.pipe:close()
  local status = tonumber((helper.read_file(self.status_file) or ""):match("^(%d+)"))
  os_remove(self.status_file)
  if not status then return nil, "exit", -1 end
  if status > 128 then return nil, "signal", status - 128 end
  return status == 0 or nil, "exit", status
end

-- Runs cmd under sh; returns its stdout, true or nil, and its exit status
-- (128 + N when signal N ended it).
function helper.capture(cmd)
  local proc = open_process(cmd)
  local out = proc.pipe:read("*a")
  local ok, how, code = proc:close()
  if how == "signal" then code = 128 + code end
  return out, ok and true or nil, code
end

-- Seeds math.random for a spec's random choices (kill points, delays): the
-- seed is $STARVIDEOS_SEED when set, else 1, and is printed, so that a failure
-- can be run again with the same choices.
function helper.seed(what)
  local seed = tonumber(os_getenv("STARVIDEOS_SEED") or "") or 1
  math.randomseed(seed)
  io.stderr:write(str_format("%s: seed %d (STARVIDEOS_SEED=%d repeats it)\n", what, seed, seed))
  return seed
end

function helper.sleep(seconds)
  socket.sleep(seconds)
end

-- The whole lines of a file another process may be appending to, as an iterator:
-- a line still being written (no "\n" yet: a reader can see a write's first bytes) is left out.
function helper.whole_lines(path)
  return (helper.read_file(path) or ""):gmatch("([^\n]+)\n")
end

-- Calls pred() until it returns true, for at most `seconds` (10), every `every` seconds (0.01); whether it did.
function helper.wait_until(pred, seconds, every)
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    if pred() then return true end
    socket.sleep(every or 0.01)
  end
  return pred() and true or false
end

-- This process' pid (Linux: /proc/self/stat, read by this process itself).
local function own_pid()
  local f = io_open("/proc/self/stat", "rb")
  local pid = f and tonumber(f:read("*l"):match("^(%d+)"))
  if f then f:close() end
  return pid
end

-- The processes below this one but those of skip (a set of pids) and below them: pid -> its CPU ticks (utime +
-- stime), from /proc (Linux; an empty table elsewhere).
local function descendants(skip)
  local me, kids, ticks = own_pid(), {}, {}
  local p = io_popen("echo $$; exec cat /proc/[0-9]*/stat 2>/dev/null")
  local reader = tonumber(p:read("*l")) -- (this read's own process, a child too: not one of the case's)
  for line in p:lines() do
    -- pid (comm) state ppid ... utime stime: fields 14 and 15, counted after the comm's ")"
    local pid, rest = line:match("^(%d+) %(.*%) (.*)$")
    if pid then
      local f = {}
      for w in rest:gmatch("%S+") do f[#f + 1] = w end
      local ppid = tonumber(f[2])
      kids[ppid] = kids[ppid] or {}
      kids[ppid][#kids[ppid] + 1] = tonumber(pid)
      ticks[tonumber(pid)] = (tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)
    end
  end
  p:close()
  local out, todo = {}, { me }
  while #todo > 0 do
    local pid = table.remove(todo)
    for _, kid in ipairs(kids[pid] or {}) do
      if not skip[kid] and kid ~= reader then
        out[kid] = ticks[kid]
        todo[#todo + 1] = kid
      end
    end
  end
  return out
end

-- Calls pred() until it returns true, as long as the case's work moves: false once nothing moved for 10 seconds,
-- where moving is watched() (the state the case drives: a job's) taking another value, or a process below this one
-- (a job's commands: ffmpeg, ffprobe, which a helper thread runs at the lowest priority, starved on a busy machine)
-- beginning, ending or using CPU; but the servers' (a list of pids: the emulator's, whose answers to a stuck job's
-- polls are no move of its own) and those below them.  A hang fails; a slow machine only waits longer: what the
-- case waits for is its event, not a number of seconds.
function helper.wait_moving(pred, watched, servers)
  local skip = {}
  for _, pid in ipairs(servers or {}) do skip[pid] = true end
  local function mark()
    local t = {}
    for pid, n in pairs(descendants(skip)) do t[#t + 1] = pid .. ":" .. n end
    table.sort(t)
    return tostring(watched and watched()) .. " " .. tbl_concat(t, ",")
  end
  local last, moved, looked = mark(), socket.gettime(), socket.gettime()
  while true do
    if pred() then return true end
    local t = socket.gettime()
    if t - looked >= 0.25 then
      local now_mark = mark()
      looked = t
      if now_mark ~= last then
        last, moved = now_mark, t
      elseif t - moved >= 10 then
        return pred() and true or false
      end
    end
    socket.sleep(0.01)
  end
end

---------------------------------------------------------------------------
-- temporary directories

local tmpdirs = {}

-- A fresh empty directory, removed by helper.cleanup(), under $TMPDIR (tools/run-specs.sh gives each spec file
-- a TMPDIR of its own, removed once the file ran: a spec that does not clean up leaves nothing in /tmp).
function helper.tmpdir()
  local p = assert(io_popen('mktemp -d "${TMPDIR:-/tmp}/starvideos-spec.XXXXXX"'))
  local dir = p:read("*l")
  p:close()
  assert(dir and dir:match("^/.*/starvideos%-spec%.%w+$"), "mktemp -d failed")
  tmpdirs[#tmpdirs + 1] = dir
  return dir
end

function helper.cleanup()
  for _, dir in ipairs(tmpdirs) do
    os_execute("rm -rf " .. shell_quote(dir))
  end
  tmpdirs = {}
  for _, s in ipairs(refusing) do s:close() end
  refusing = {}
end

---------------------------------------------------------------------------
-- the emulator

local Emulator = {}
Emulator.__index = Emulator

-- One control call; returns the decoded JSON answer, raises on failure.
function Emulator:call(method, path, value)
  local body = value ~= nil and assert(cjson.encode(value)) or nil
  local chunks = {}
  local ok, code = http.request {
    url = self.url .. path,
    method = method,
    headers = body and { ["content-type"] = "application/json", ["content-length"] = #body } or nil,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  local text = tbl_concat(chunks)
  if not ok then error(str_format("emulator %s %s: %s", method, path, tostring(code)), 2) end
  if code ~= 200 then error(str_format("emulator %s %s: HTTP %s %s", method, path, code, text), 2) end
  local decoded, err = cjson.decode(text)
  if err then error(str_format("emulator %s %s: bad JSON: %s", method, path, err), 2) end
  return decoded
end

-- Every request the emulator received (control calls excepted), in order:
-- { method =, path = (raw, with query), headers = { lowercased = value }, body =,
-- connection = (numbers the TCP connection), at = (seconds, the emulator's clock), fault = (true: a fault answered) }.
function Emulator:requests()
  return self:call("GET", "/_emulator/requests")
end

-- The Range header of each video GET logged, in order ("none" when it had none).
function Emulator:video_ranges()
  local list = {}
  for _, r in ipairs(self:requests()) do
    if r.path:find("^/videos/") then list[#list + 1] = r.headers.range or "none" end
  end
  return list
end

-- The bytes the video answers logged after the first `since` requests gave the sockets (`sent`: a GET let go of
-- early counts what was read, or buffered), and how many video requests those were.
function Emulator:video_served(since)
  local bytes, n = 0, 0
  for k, r in ipairs(self:requests()) do
    if k > (since or 0) and r.path:find("^/videos/") then bytes, n = bytes + (r.sent or 0), n + 1 end
  end
  return bytes, n
end

-- The API requests (creates and queries, under /v1/) the emulator received, in order.
function Emulator:api_requests()
  local list = {}
  for _, r in ipairs(self:requests()) do
    if r.path:find("^/v1/") then list[#list + 1] = r end
  end
  return list
end

-- How many creates (POST /v1/...) the emulator received.
function Emulator:creates()
  local n = 0
  for _, r in ipairs(self:requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then n = n + 1 end
  end
  return n
end

function Emulator:clear()
  self:call("DELETE", "/_emulator/requests")
end

-- Queue one fault, or a list of faults. Returns the fault queue.
function Emulator:fault(f)
  return self:call("POST", "/_emulator/faults", f)
end

function Emulator:clear_faults()
  self:call("DELETE", "/_emulator/faults")
end

-- Merge into the config (queued, processing, outcome, error, video_size,
-- expired_status, url_ttl; cjson.null resets). Returns the whole config.
function Emulator:config(t)
  if t == nil then return self:call("GET", "/_emulator/config") end
  return self:call("POST", "/_emulator/config", t)
end

-- Invalidate every video URL issued so far.
function Emulator:expire()
  return self:call("POST", "/_emulator/expire")
end

-- The task id ends now, as its outcome (POST /_emulator/end): its view.
function Emulator:finish(id)
  return self:call("POST", "/_emulator/end", { id = id })
end

function Emulator:tasks()
  return self:call("GET", "/_emulator/tasks")
end

-- Clear the request log, the faults and the video tokens; restore the config
-- the emulator started with. Tasks are kept.
function Emulator:reset()
  self:call("POST", "/_emulator/reset")
end

-- What the emulator wrote to stderr so far.
function Emulator:log()
  return helper.read_file(self.log_path) or ""
end

-- Kill the emulator and reap it. Idempotent. Says so on stderr when the
-- emulator had already exited (it should live until stopped).
function Emulator:stop()
  if self.stopped then return end
  self.stopped = true
  if not helper.execute(str_format("kill %d 2>/dev/null", self.pid)) then
    io.stderr:write(str_format("spec.helper: the emulator (pid %d) had exited before stop(); its log:\n%s\n",
      self.pid, self:log()))
  end
  self.pipe:close()
  if not self.keep_log then os_remove(self.log_path) end
end

Emulator.__gc = Emulator.stop   -- never leave one behind (nor block on its pipe)
Emulator.__close = Emulator.stop
-- 5.1 and LuaJIT run no __gc for tables: a userdata from newproxy does it there.
local newproxy = rawget(_G, "newproxy")

-- Start an emulator on a port chosen by the system. opts: key (default
-- "test-key"), queued, processing (seconds), lifetime (seconds it lives at most, default 900),
-- video_colours ("fixed", the default here: every video is files.video's, whatever its
-- prompt, so that a spec compares a download with it; "prompt": the emulator's own default).
function helper.emulator(opts)
  opts = opts or {}
  local key = opts.key or "test-key"
  -- STARVIDEOS_EMULATOR_LOG=path keeps every emulator's stderr in that file.
  local keep_log = os_getenv("STARVIDEOS_EMULATOR_LOG")
  local log_path = keep_log or os_tmpname()
  local args = {
    "echo $$; exec", shell_quote(helper.lua), shell_quote(helper.root .. "/bin/starvideos"), "emulator",
    "--port 0 --max-lifetime", tonumber(opts.lifetime) or 900, "--key", shell_quote(key),
  }
  if opts.queued then args[#args + 1] = "--queued " .. tonumber(opts.queued) end
  if opts.processing then args[#args + 1] = "--processing " .. tonumber(opts.processing) end
  if opts.host then args[#args + 1] = "--host " .. shell_quote(opts.host) end -- (its URL's: 127.0.0.1 still)
  -- every video in the same colours, files.video's, unless asked for each prompt's own ("prompt")
  args[#args + 1] = "--video-colours " .. (opts.video_colours == "prompt" and "prompt" or "fixed")
  args[#args + 1] = "2>>" .. shell_quote(log_path)
  local pipe = assert(io_popen(tbl_concat(args, " "), "r"))
  local pid = tonumber(pipe:read("*l"))
  local line = pipe:read("*l")
  local url = line and line:match("^starvideos emulator listening on (http://127%.0%.0%.1:%d+)$")
  if not (pid and url) then
    pipe:close()
    local log = helper.read_file(log_path) or ""
    if not keep_log then os_remove(log_path) end
    error("the emulator did not start: " .. tostring(line) .. "\n" .. log, 2)
  end
  local emu = setmetatable({ url = url, key = key, pid = pid, pipe = pipe, log_path = log_path,
    keep_log = keep_log ~= nil }, Emulator)
  if newproxy then
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function() emu:stop() end
    emu.gc_proxy = proxy
  end
  return emu
end

helper.Emulator = Emulator

---------------------------------------------------------------------------
-- hostile HTTP servers (spec/support/hostile.lua, one process each)
--
--   local hs = helper.hostile()
--   local base = hs:url("truncated")     -- http://127.0.0.1:PORT/s/truncated/t1
--   ... hs:requests(base) (what reached the server under base), hs:raw_log() ...
--   hs:stop()
--
-- The server runs under env STARVIDEOS_LUA (default lua5.4).

local Hostile = {}
Hostile.__index = Hostile

local function slurp(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  return data
end

-- A base URL for one scenario, with a tag of its own so that its requests
-- can be told from every other's.
function Hostile:url(scenario)
  self.tags = self.tags + 1
  return str_format("http://127.0.0.1:%d/s/%s/t%d", self.port, scenario, self.tags)
end

-- The whole log: one JSON line per request.
function Hostile:raw_log()
  return slurp(self.log_path) or ""
end

-- Every request logged, in order, as { method, path, headers = { lowercased = value },
-- raw (the head as received), body }; only those under `under` (a URL from
-- :url(), or a path prefix) when given.
function Hostile:requests(under)
  local prefix = under and (under:gsub("^https?://[^/]+", "")) or ""
  local list = {}
  for line in (self:raw_log()):gmatch("[^\n]+") do
    local r = cjson.decode(line)
    if type(r) == "table" and r.path:sub(1, #prefix) == prefix then list[#list + 1] = r end
  end
  return list
end

-- Ask the server to quit (GET /quit), else kill it; then reap it. Idempotent.
function Hostile:stop()
  if self.stopped then return end
  self.stopped = true
  local c = socket.tcp()
  c:settimeout(2)
  local told = c:connect("127.0.0.1", self.port)
    and c:send("GET /quit HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    and c:receive("*l")
  c:close()
  if not told then os_execute(str_format("kill %d 2>/dev/null", self.pid)) end
  self.pipe:close()
  local err = slurp(self.err_path) or ""
  if err ~= "" then io.stderr:write("spec.helper: the hostile server said:\n", err) end
  os_remove(self.log_path)
  os_remove(self.err_path)
  os_remove(self.port_path)
end

Hostile.__gc = Hostile.stop
Hostile.__close = Hostile.stop

-- Start a hostile server on a port the system picks and wait until it listens
-- (it writes its port file, then a line on stdout). opts.lifetime: seconds
-- before it exits by itself (at most 120, the default).
function helper.hostile(opts)
  opts = opts or {}
  local lua = os_getenv("STARVIDEOS_LUA") or "lua5.4"
  local port_path, log_path, err_path = os_tmpname(), os_tmpname(), os_tmpname()
  os_remove(port_path) -- the server makes it, whole, once it listens
  local pipe = assert(io_popen(tbl_concat({
    "echo $$; exec", lua, shell_quote(helper.root .. "/spec/support/hostile.lua"),
    shell_quote(port_path), shell_quote(log_path), tostring(tonumber(opts.lifetime) or 120),
    "2>>" .. shell_quote(err_path) }, " "), "r"))
  local pid = tonumber(pipe:read("*l"))
  local line = pipe:read("*l") -- blocks until the server listens, or dies
  local port = tonumber(slurp(port_path) or "")
  if not (pid and port and line == "hostile listening on " .. port) then
    pipe:close()
    local err = slurp(err_path) or ""
    os_remove(port_path); os_remove(log_path); os_remove(err_path)
    error("the hostile server (" .. lua .. ") did not start: " .. tostring(line) .. "\n" .. err, 2)
  end
  return setmetatable({ port = port, pid = pid, pipe = pipe, log_path = log_path, err_path = err_path,
    port_path = port_path, tags = 0 }, Hostile)
end

helper.Hostile = Hostile


-- What a commit handle (core.commit_start) says once its thread is done: true,
-- or false, why and (when its MP4 check refused it) true (polled, as the engine polls it).
function helper.committed(c)
  local ok, why, notwhole
  assert(helper.wait_until(function() ok, why, notwhole = c:poll() return ok ~= nil end, 30),
    "the commit did not finish")
  return ok, why, notwhole
end

-- The file at path is a whole MP4 (of seconds, within 1 s, when given): true, or false and why, as the
-- commit's check finds a copy of it (core.commit_start).
function helper.whole_mp4(path, seconds)
  local core = require "starvideos.core"
  local dir = helper.tmpdir()
  local copy = dir .. "/whole.mp4"
  local fh = assert(core.part_open(copy .. ".part", 0))
  assert(fh:write(assert(helper.read_file(path))))
  local ok, why = helper.committed(assert(core.commit_start(fh, copy, nil, seconds or true)))
  os_remove(copy)
  os_remove(copy .. ".part")
  os_remove(dir)
  return ok, why
end

-- A saved video's bytes without the mark its commit appended (lua/starvideos/mark.lua: a last top-level uuid box of
-- the XMP UUID), for a comparison with the bytes the service sent; bytes as they are when they end with no such box.
function helper.unmarked(bytes)
  local uuid = require("starvideos.mark").UUID
  local at = bytes and bytes:find("uuid" .. uuid, 1, true)
  while at do
    local b1, b2, b3, b4 = bytes:byte(at - 4, at - 1)
    if b1 and at - 5 + ((b1 * 256 + b2) * 256 + b3) * 256 + b4 == #bytes then return bytes:sub(1, at - 5) end
    at = bytes:find("uuid" .. uuid, at + 1, true)
  end
  return bytes
end

-- The saved video at path, unmarked (helper.unmarked).
function helper.read_video(path) return helper.unmarked(helper.read_file(path)) end

-- The size of the saved video at path without the mark at its end (helper.unmarked), its last 4 KiB read alone; nil
-- when there is no file at path (as helper.file_size).
function helper.video_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  local n = math.min(size, 4096)
  f:seek("set", size - n)
  local tail = f:read(n) or ""
  f:close()
  return size - (#tail - #helper.unmarked(tail))
end

-- Decode JSON text, turning it into a Lua value (nil on bad JSON).
function helper.json(text)
  if type(text) ~= "string" then return nil end
  return (cjson.decode(text))
end

-- "env LUA_PATH=... LUA_CPATH=... ": the start of a command line running a
-- child Lua program on this checkout's modules.
helper.CHILD_ENV = "env LUA_PATH=" .. shell_quote(helper.lua_path(helper.root) .. ";;")
  .. " LUA_CPATH=" .. shell_quote(helper.cpath .. ";;") .. " "

-- fn() with config.DEFAULTS[k] = v for each pair of `over`, restored after (a client made
-- meanwhile takes them).
function helper.with_defaults(over, fn)
  local defaults, saved = require("starvideos.config").DEFAULTS, {}
  for k, v in pairs(over) do saved[k], defaults[k] = defaults[k], v end
  local ok, err = pcall(fn)
  for k, v in pairs(saved) do defaults[k] = v end
  if not ok then error(err, 0) end
end

-- A seeded standard normal generator (Park-Miller), the same on every VM.
function helper.normals(seed)
  local state = seed
  local function uniform()
    state = state * 48271 % 2147483647
    return state / 2147483647
  end
  return function() return math.sqrt(-2 * math.log(uniform())) * math.cos(2 * math.pi * uniform()) end
end

return helper
