-- Where a job's video goes: a sink.  Two implement one interface (docs/architecture.md, "The sink interface"):
-- a file (download.lua) and an object in the user's bucket (storage/object.lua, a layer above the core, loaded
-- through the cfg's on_object hook: client.lua).  The job, the ledger, keep and list --check use only these.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local Download = require "starvideos.download"

local type = type

local K = {}

-- Whether out names an object (s3://bucket/key), not a file.
function K.object(out) return type(out) == "string" and out:find("^[sS]3://") ~= nil end

-- The key of a job that makes out (docs/batch.md "Keys"): an object's URL (s3:// in lowercase), a file's real
-- path (core.file_key: nil when its folder is not there).
function K.key(out)
  if K.object(out) then return "s3://" .. out:sub(6) end
  return require("starvideos.core").file_key(out)
end

-- The sink of out (a file path or an object URL) for a client's cfg.
function K.of(cfg, out)
  if K.object(out) then return cfg.on_object() end
  return Download
end

return K
