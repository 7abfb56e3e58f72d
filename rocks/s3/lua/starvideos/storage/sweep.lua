-- The multipart uploads the library started and left in the user's bucket (a process killed between its
-- CreateMultipartUpload and the ledger's record of it; a record since replaced), aborted by keep and resume
-- (docs/storage.md, "Nothing left behind").  Only at the keys the ledger names (each task's out and saved path,
-- and keep's or resume's dir/<name>.mp4 when that is a bucket's), only uploads no unfinished task holds as its
-- record (keep and resume go on from those), and only those the store says began more than STALE seconds ago
-- (a live process's upload is recorded within a request of its start).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local Object = require "starvideos.storage.object"
local S3 = require "starvideos.storage.s3"

local next, ipairs, pairs, tonumber, tostring, os_time, string_format, table_concat, math_floor =
  next, ipairs, pairs, tonumber, tostring, os.time, string.format, table.concat, math.floor
local now = core.now

local W = {}

W.STALE = 24 * 3600 -- seconds an upload no task holds is left alone (S3's lifecycle rules count in days too)

-- Seconds since the epoch of an ISO 8601 time in UTC ("2026-11-25T22:00:00.000Z"), or nil: read by core.http_date
-- (the C core's calendar) as the HTTP date of the same time.
function W.iso_time(text)
  local y, mo, d, hms = (text or ""):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d:%d%d:%d%d)")
  local month = y and ("JanFebMarAprMayJunJulAugSepOctNovDec"):sub(3 * tonumber(mo) - 2, 3 * tonumber(mo))
  local t = month and core.http_date(string_format("Sun, %s %s %s %s GMT", d, month, y, hms))
  return t and math_floor(t) or nil
end

-- The keys of ours in each bucket (bucket -> key -> true; name(id): a task's file name in dir) and the uploads the
-- ledger holds (id -> true).
local function ours(ctx, dir, name)
  local keys, held = {}, {}
  local function add(url) -- (S3.parse refuses a file's path)
    local bucket, key = S3.parse(url, "out")
    if bucket then keys[bucket] = keys[bucket] or {}; keys[bucket][key] = true end
  end
  for _, t in ipairs(ctx:tasks() or {}) do
    add(t.out)
    add(t.path)
    if t.id and X.scheme(dir) then -- (an object's URL, not a folder)
      add(dir:gsub("/*$", "/") .. name(t.id) .. ".mp4")
    end
    if t.uploading and t.state ~= "downloaded" then held[t.uploading.id or ""] = true end
  end
  return keys, held
end

-- The longest prefix the keys share (one listing a bucket).
local function shared(keys)
  local p = next(keys) or ""
  for k in pairs(keys) do
    while k:sub(1, #p) ~= p do p = p:sub(1, -2) end
  end
  return p
end

-- Bucket's stale uploads at its keys of ours: {key, id}s (a failed listing: nil, its error).
local function stale(ctx, st, bucket, keys, held, before)
  local list, marker, id_marker = {}, nil, nil
  repeat
    local req = Object.ask(ctx, st, bucket, "", "uploads", { prefix = shared(keys), key_marker = marker,
      id_marker = id_marker }, now() + 60)
    if req.err then return nil, req.err end
    local body = req.task and req.task.body
    for _, u in ipairs(S3.xml_list(body, "Upload", { "Key", "UploadId", "Initiated" })) do
      local began = W.iso_time(u.Initiated)
      if u.Key and keys[u.Key] and u.UploadId and not held[u.UploadId] and began and began < before then
        list[#list + 1] = { key = u.Key, id = u.UploadId }
      end
    end
    local more = S3.xml(body, "IsTruncated") == "true"
    marker, id_marker = S3.xml(body, "NextKeyMarker"), S3.xml(body, "NextUploadIdMarker")
  until not (more and marker)
  return list
end

-- keep's and resume's sweep (ctx: their client's, host.lua's methods; dir: their dir, name: a task's file name there):
-- the count aborted.  What failed is a warning (the next keep tries again).
function W.run(ctx, dir, name)
  if not ctx:records() then return 0 end
  local keys, held = ours(ctx, dir, name)
  local st = next(keys) and S3.store_of(ctx:storage())
  if not st then return 0 end
  local n, failed, before = 0, {}, os_time() - W.STALE
  for bucket, set in pairs(keys) do
    local list, err = stale(ctx, st, bucket, set, held, before)
    if not list then failed[#failed + 1] = string_format("s3://%s: %s", bucket, tostring(err and err.message)) end
    for _, u in ipairs(list or {}) do
      local req = Object.ask(ctx, st, bucket, u.key, "abort", { upload = u.id }, now() + 60)
      if req.err and req.err.status ~= 404 then
        failed[#failed + 1] = string_format("s3://%s/%s upload %s: %s", bucket, u.key, u.id, tostring(req.err.message))
      elseif not req.err then
        n = n + 1
      end
    end
  end
  if failed[1] then
    ctx:tell { type = "warning", message = "an unfinished upload of ours could not be looked at or aborted (keep "
      .. "tries again): " .. table_concat(failed, "; ") }
  end
  return n
end

return W
