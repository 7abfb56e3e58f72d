-- Where a job's video goes: a sink (docs/architecture.md, "The sink interface").  A file is the core's own
-- (download.lua); an out with a URL scheme is the sink point's extension of that scheme (docs/architecture.md,
-- "Extension points": s3://bucket/key, an object in the user's bucket, is the starvideos-s3 rock's).  The job,
-- the ledger, keep and list --check use only the interface.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension"

local type = type

local K = {}

-- The URL scheme of out (lowercase), or nil: a file's path.  Any scheme is a sink's (extension.lua: the point is
-- open), installed or not.
local scheme = X.scheme

-- Whether out names an object (s3://bucket/key), not a file.
function K.object(out) return scheme(out) ~= nil end

-- The key of a job that makes out (docs/batch.md "Keys"): an object's URL (its scheme in lowercase), a file's
-- real path (core.file_key: nil when its folder is not there).
function K.key(out)
  local s = scheme(out) and out:match("^[^:]*")
  if s then return s:lower() .. out:sub(#s + 1) end
  return require("starvideos.core").file_key(out)
end

-- What a ledger records of out, so that it reads the same wherever its reader stands (list --check, resume and
-- keep run from another folder): an object's URL as given, a file's absolute path (a relative one: its folder's
-- real path, core.file_key; as given when that folder is not there).
function K.recorded(out)
  if type(out) ~= "string" or scheme(out) or out:sub(1, 1) == "/" then return out end
  return require("starvideos.core").file_key(out) or out
end

-- A sink that refuses every out and folder with err (its rock is not installed): found before anything is paid
-- (Job.new refuses a job of such an out: K.refusal; check_out, check_dir and check refuse; nothing is kept).
local function missing(err)
  local function refuse() return nil, err end
  local function none() return nil end
  return { check_out = refuse, check_dir = refuse, left = none, keeps = none, source = refuse, record_of = none,
    check = function() return "missing", err.message end }
end

-- The extension of out's scheme, or nil, why (an invalid_request naming its rock: not installed).
local function extension(out)
  local s = scheme(out)
  return X.find("sink", s, s .. ":// outs", "out")
end

-- The names of what the sink of path keeps with a saved video's record beside its bytes and SHA-256 (its extension's
-- noted: the names of its commit's note), looked for once per scheme; a file's: none.
local noted_by, NONE = {}, {}
function K.noted(path)
  local s = scheme(path)
  if not s then return NONE end
  if noted_by[s] == nil then
    local ext = X.optional("sink", s)
    noted_by[s] = ext and ext.noted or NONE
  end
  return noted_by[s]
end

-- The sink of out (a file path or an object URL).
function K.of(_, out)
  if not scheme(out) then return require "starvideos.download" end -- (the file sink: loaded with its first out)
  local ext, err = extension(out)
  return ext and ext.sink or missing(err)
end

-- Why out cannot be a job's out here (its scheme's rock not installed), or nil.
function K.refusal(out)
  if not scheme(out) then return nil end
  local _, err = extension(out)
  return err
end

return K
