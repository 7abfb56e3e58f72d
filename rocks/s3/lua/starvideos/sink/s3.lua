-- The s3:// sink: an extension of the core's sink point (docs/architecture.md, "Extension points"; the
-- starvideos-s3 rock).  An out s3://bucket/key is an object in the user's bucket (storage/object.lua); keep sweeps
-- the uploads a dead process left in the bucket; a folder's s3://bucket/prefix is read by storage/s3.lua.  (Local
-- files given as references are the rock's references point: references.lua.)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
require "starvideos.needs.s3" -- (a core outside this rock's range refused: rocks/needs.lua)

local S = {}

S.sink = require "starvideos.storage.object"

-- What the ledger keeps with a saved object's record beside its bytes and SHA-256: the names of its commit's note
-- (storage/commit.lua), listed with the task.
S.noted = { "etag" }
S.parse = require("starvideos.storage.s3").parse

-- keep's and resume's sweep (ctx: the client's; dir, name: the journal's folder and file name): the stale uploads
-- of ours a process left in the bucket.
function S.sweep(ctx, dir, name)
  require("starvideos.storage.sweep").run(ctx, dir, name)
end

-- What a listing shows of an upload in progress (the ledger's sink_state "upload", storage/object.lua's text):
-- {parts = the parts the store took, id = its upload id}, or nil.
function S.describe(text)
  local up = require("cjson.safe").decode(text)
  if type(up) ~= "table" or type(up.parts) ~= "table" then return nil end
  return { parts = #up.parts, id = up.upload }
end

-- The shell commands that fetch the object at url and its provenance record (url.json) into file and file.json
-- (the AWS CLI's, which reads the same AWS_* variables): what `starvideos verify s3://...` names.
function S.fetch(url, file)
  local function w(s) -- (a shell word: bare when plain, else single-quoted)
    if s:find("^[%w%./_+,:@%-]+$") then return s end
    return "'" .. s:gsub("'", [['\'']]) .. "'"
  end
  return string.format("aws s3 cp %s %s && aws s3 cp %s %s", w(url), w(file), w(url .. ".json"), w(file .. ".json"))
end

return S
