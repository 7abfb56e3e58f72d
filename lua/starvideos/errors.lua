-- Errors: the one shape (core.error_mt), `transient` from the core's table of kinds,
-- the one way a wrong argument raises, and the one "did you mean" of a misspelt name.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
-- (the C core required when an error is first made: the command line's parser, which may run without it, uses
-- M.nearest)
local type, pairs, ipairs, tostring, require, setmetatable = type, pairs, ipairs, tostring, require, setmetatable
local math_min, table_sort = math.min, table.sort

local M = {}

M.NO_KEY = "no API key: set STARVIDEOS_API_KEY or pass api_key to starvideos.new"

local core, stopped

-- The metatable of an error with `interrupted` (Ctrl-C, interrupt.lua): the core's, but that its one line is its
-- message alone ("interrupted (Ctrl-C): ..."), not "timeout: ..." (its kind is the contract's, its words a
-- person's).
local function stopped_mt()
  if not stopped then
    stopped = { __tostring = function(e) return tostring(e.message) end }
    for k, v in pairs(core.error_mt) do if stopped[k] == nil then stopped[k] = v end end -- (its __concat)
  end
  return stopped
end

-- new_error(kind, message[, fields]) -> the error, as the core makes them.
function M.new_error(kind, message, fields)
  core = core or require "starvideos.core"
  local e = fields or {}
  e.kind, e.message = kind, message
  if e.transient == nil and core.transient[kind] then e.transient = true end
  return setmetatable(e, e.interrupted and stopped_mt() or core.error_mt)
end

-- s lower-cased, letters and digits only, as the core folds a field's name ("reference_images" ~
-- "referenceImages", csrc/core/models.c).
local function fold(s) return (s:lower():gsub("[^%w]", "")) end

-- The edit distance of a and b: insertions, deletions, changes, and swaps of two neighbours, each one edit.
local function distance(a, b)
  local before, prev = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur, ai = { [0] = i }, a:byte(i)
    for j = 1, #b do
      local bj = b:byte(j)
      local d = math_min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ai == bj and 0 or 1))
      if i > 1 and j > 1 and ai == b:byte(j - 1) and a:byte(i - 1) == bj then d = math_min(d, before[j - 2] + 1) end
      cur[j] = d
    end
    before, prev = prev, cur
  end
  return prev[#b]
end

-- The one name of list whose start is w (folded, three letters or more: `complet` ~ `completion`), or nil.
local function started(w, list)
  local found
  if #w < 3 then return nil end
  for _, name in ipairs(list) do
    if type(name) == "string" and fold(name):sub(1, #w) == w then
      if found then return nil end
      found = name
    end
  end
  return found
end

-- The name a misspelt word likely meant, of names (a list of strings, or a table keyed by them): one equal to it
-- but for case and punctuation (`first_image` ~ `first-image`), else the one name it starts (of three letters or
-- more: `lis` ~ `list`), else the one nearest within one edit (two for a word of six letters or more; none for two
-- or fewer); nil when none is, or when two are as near.
function M.nearest(word, names)
  if type(word) ~= "string" or type(names) ~= "table" then return nil end
  local list = {}
  for k, v in pairs(names) do list[#list + 1] = type(k) == "string" and k or v end
  table_sort(list, function(x, y) return tostring(x) < tostring(y) end)
  local w = fold(word)
  for _, name in ipairs(list) do
    if type(name) == "string" and name ~= word and fold(name) == w then return name end
  end
  local prefix = started(w, list)
  if prefix and prefix ~= word then return prefix end
  local most = #w >= 6 and 2 or #w >= 3 and 1 or 0
  local best, best_d, tied = nil, most + 1, false
  for _, name in ipairs(list) do
    if type(name) == "string" and name ~= word then
      local d = distance(w, fold(name))
      if d < best_d then best, best_d, tied = name, d, false elseif d == best_d then tied = true end
    end
  end
  if tied then return nil end
  return best
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
