-- Test helper: starts the local emulator and drives its control API.
--
--   local helper = require "spec.helper"
--   local emu = helper.emulator { queued = 0.1, processing = 0.1 }
--   ... emu.url, emu.key, emu:requests(), emu:fault{ status = 500 } ...
--   emu:stop()
--
-- Everything here talks to 127.0.0.1 only.

local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson.safe"

local assert, error, ipairs, setmetatable, tonumber, tostring, type =
  assert, error, ipairs, setmetatable, tonumber, tostring, type
local io_open, io_popen, os_execute, os_getenv, os_remove, os_tmpname =
  io.open, io.popen, os.execute, os.getenv, os.remove, os.tmpname
local str_format, tbl_concat = string.format, table.concat

local helper = {}

-- The repository root, found from this file's own path.
helper.root = (debug.getinfo(1, "S").source:match("^@(.*)/spec/helper%.lua$")) or "."

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function helper.read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end

function helper.sleep(seconds)
  socket.sleep(seconds)
end

---------------------------------------------------------------------------
-- temporary directories

local tmpdirs = {}

-- A fresh empty directory, removed by helper.cleanup().
function helper.tmpdir()
  local p = assert(io_popen("mktemp -d /tmp/starvideos-spec.XXXXXX"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir:match("^/tmp/starvideos%-spec%.%w+$"), "mktemp -d failed")
  tmpdirs[#tmpdirs + 1] = dir
  return dir
end

function helper.cleanup()
  for _, dir in ipairs(tmpdirs) do
    os_execute("rm -rf " .. shell_quote(dir))
  end
  tmpdirs = {}
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
-- { method =, path = (raw, with query), headers = { lowercased = value }, body = }.
function Emulator:requests()
  return self:call("GET", "/_emulator/requests")
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
  if not os_execute(str_format("kill %d 2>/dev/null", self.pid)) then
    io.stderr:write(str_format("spec.helper: the emulator (pid %d) had exited before stop(); its log:\n%s\n",
      self.pid, self:log()))
  end
  self.pipe:close()
  if not self.keep_log then os_remove(self.log_path) end
end

Emulator.__gc = Emulator.stop   -- never leave one behind (nor block on its pipe)
Emulator.__close = Emulator.stop

-- Start an emulator on a port chosen by the system. opts: key (default
-- "test-key"), queued, processing (seconds).
function helper.emulator(opts)
  opts = opts or {}
  local key = opts.key or "test-key"
  -- STARVIDEOS_EMULATOR_LOG=path keeps every emulator's stderr in that file.
  local keep_log = os_getenv("STARVIDEOS_EMULATOR_LOG")
  local log_path = keep_log or os_tmpname()
  local args = {
    "echo $$; exec lua5.4", shell_quote(helper.root .. "/bin/starvideos"), "emulator",
    "--port 0 --max-lifetime 900 --key", shell_quote(key),
  }
  if opts.queued then args[#args + 1] = "--queued " .. tonumber(opts.queued) end
  if opts.processing then args[#args + 1] = "--processing " .. tonumber(opts.processing) end
  args[#args + 1] = "2>>" .. shell_quote(log_path)
  local pipe = assert(io_popen(tbl_concat(args, " "), "r"))
  local pid = tonumber(pipe:read("l"))
  local line = pipe:read("l")
  local url = line and line:match("^starvideos emulator listening on (http://127%.0%.0%.1:%d+)$")
  if not (pid and url) then
    pipe:close()
    local log = helper.read_file(log_path) or ""
    if not keep_log then os_remove(log_path) end
    error("the emulator did not start: " .. tostring(line) .. "\n" .. log, 2)
  end
  return setmetatable({ url = url, key = key, pid = pid, pipe = pipe, log_path = log_path,
    keep_log = keep_log ~= nil }, Emulator)
end

helper.Emulator = Emulator

-- Decode JSON text, turning it into a Lua value (nil on bad JSON).
function helper.json(text)
  if type(text) ~= "string" then return nil end
  return (cjson.decode(text))
end

return helper
