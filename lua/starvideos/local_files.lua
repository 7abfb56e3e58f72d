-- A create's local files as the references point sees them through a job's seat (seat.lua: references, body;
-- docs/architecture.md, "What a rock may require of the core"): each as the check read it, and the create as sent
-- once each is where the service reads it.  Loaded at the first upload of local files.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Create = require "starvideos.create"

local type, ipairs, pairs = type, ipairs, pairs

local M = {}

-- The local files among params' references, each once, as the check read them (sums: job.file_sums,
-- preflight's): {field =, file =, sha256 =, type = (nil: not checked), max = MAX_FILE}: what a job's seat gives the
-- references point (a seat's references).
function M.local_files(params, sums)
  local list, seen = {}, {}
  for _, r in ipairs((Create.references(params))) do
    if r.file and not seen[r.file] then
      local checked = sums and sums[r.file] or {}
      seen[r.file], list[#list + 1] = true, { field = r.field, file = r.file, sha256 = checked.sha256,
        type = checked.type, max = Create.MAX_FILE }
    end
  end
  return list
end

-- The reference v as a create sends it: each local file's URL in its place (url_of: file -> URL).
local function sent_form(v, url_of)
  if type(v) ~= "table" then return v end
  if v.file then return url_of[v.file] end
  local list = {}
  for i, r in ipairs(v) do list[i] = sent_form(r, url_of) end
  return list
end

-- The create of params as sent once its local files are where the service reads them (url_of: file -> URL, the
-- references point's): its path and body, or nil, err (a seat's body).
function M.body_with(params, url_of)
  local sent = {}
  for k, v in pairs(params) do sent[k] = v end
  for _, name in ipairs(Create.MEDIA_FIELDS) do sent[name] = sent_form(params[name], url_of) end
  local extra, err = Create.extra_json(params)
  if err then return nil, err end
  return core.build_create(sent, extra, true)
end

return M
