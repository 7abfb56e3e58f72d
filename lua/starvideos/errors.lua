-- Errors: the one shape (core.error_mt), `transient` from the core's table of kinds,
-- and the one way a wrong argument raises.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local M = {}

M.NO_KEY = "no API key: set STARVIDEOS_API_KEY or pass api_key to starvideos.new"

-- new_error(kind, message[, fields]) -> the error, as the core makes them.
function M.new_error(kind, message, fields)
  local e = fields or {}
  e.kind, e.message = kind, message
  if e.transient == nil and core.transient[kind] then e.transient = true end
  return setmetatable(e, core.error_mt)
end

-- Raise "bad argument #n to 'fname' (... expected, got ...)" at `level` (default 3).
function M.argerror(n, fname, expected, got, level)
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, got), level or 3)
end

-- The command line as the library's hints name it (`... resume ...`, `... pending ...`), so that pasted they run:
-- "starvideos" when a file of that name is on $PATH, else the bin/starvideos beside where this module was loaded
-- from (a checkout's lua/, a LuaRocks tree's share/lua/5.x/), else "starvideos".  M.command(name) sets it (the
-- command line: as it was invoked).  Looked up once, when a hint is first made.
local command
function M.command(name)
  if name then command = name end
  if command then return command end
  command = "starvideos"
  for d in ((os.getenv("PATH") or "") .. ":"):gmatch("([^:]*):") do
    local f = d ~= "" and io.open(d .. "/starvideos")
    if f then f:close(); return command end
  end
  local src = debug.getinfo(1, "S").source
  local root = src:match("^@(.-)lua/starvideos/errors%.lua$")
    or src:match("^@(.-)share/lua/[^/]+/starvideos/errors%.lua$")
  local f = root and io.open(root .. "bin/starvideos")
  if f then f:close(); command = root .. "bin/starvideos" end
  return command
end

-- s with each command it names (`starvideos ...`) as M.command() names the command line.
function M.hint(s)
  local c = M.command()
  if c == "starvideos" then return s end
  return (s:gsub("`starvideos ", function() return "`" .. c .. " " end))
end

-- The errors a request may end with because its host was not the one meant (the emulator's, say).
local NOTE_KINDS = { network = true, timeout = true, auth = true, not_found = true, protocol = true }

-- err, its message saying where the request went when the base URL was nobody's choice.
function M.note_default_host(cfg, err)
  if cfg.base_url_unset and type(err) == "table" and NOTE_KINDS[err.kind] and type(err.message) == "string"
      and not err.message:find("STARVIDEOS_BASE_URL is not set", 1, true) then
    err.message = err.message .. " (STARVIDEOS_BASE_URL is not set: using " .. cfg.base_url
      .. "; for the local emulator, export the lines `" .. M.command() .. " emulator` prints)"
  end
  return err
end

-- A failed task's error, as text (the service sends a string, or an object); nil for another status.
function M.reason(task)
  if task.status ~= "failed" then return nil end
  local e = task.error
  if type(e) == "table" then e = e.message or e.code end
  return e ~= nil and tostring(e) or "no reason given"
end

return M
