-- The s3:// sink: an extension of the core's sink point (docs/architecture.md, "Extension points"; the
-- starvideos-s3 rock).  An out s3://bucket/key is an object in the user's bucket (storage/object.lua); local files
-- given as references are uploaded there (storage/refs.lua); keep sweeps what a dead process left in the bucket;
-- a folder's s3://bucket/prefix is read by storage/s3.lua.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local S = {}

S.sink = require "starvideos.storage.object"
S.references = require "starvideos.storage.refs"
S.parse = require("starvideos.storage.s3").parse

-- keep's and resume's sweep (ctx: the client's; dir, name: the journal's folder and file name): the reference
-- objects of ended tasks a process left in the bucket, and the stale uploads of ours.
function S.sweep(ctx, dir, name)
  S.references.sweep(ctx)
  require("starvideos.storage.sweep").run(ctx, dir, name)
end

return S
