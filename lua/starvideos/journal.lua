-- The journal: a JSON-lines file recording every task this client paid for, so
-- that neither a killed process nor a second process writing the same file
-- loses one.  Each record reaches the file whole, in one write() under a lock
-- (core.append).  A create leaves two records:
--   {"event":"pending","local":"<16 hex>","model":"...","prompt_hash":"...","time":...}
--       written and synced before the request is sent;
--   {"event":"created","local":"...","id":"...","model":"...","prompt":"...","time":...}
--       once the answer names the task (with "uncertain":true when the answer
--       was unusable but still named it), or {"event":"abandoned","local":"..."}
--       when the server surely created nothing.
-- A pending record with neither is a create whose answer never came: the task
-- may exist; `starvideos pending` lists them for the user to reconcile.
-- Later records: {"event":"status",...} on each change (the first "completed"
-- one with "took": the seconds from create to completion, to within "within",
-- which teaches the polling schedule), {"event":"downloaded",...}.
-- Reading skips a torn line (a crash mid-write) and unknown events.

local core = require "starvideos.core"
local cjson = require("cjson.safe").new()

local io_open, os_time, ipairs, type, tostring = io.open, os.time, ipairs, type, tostring

local J = {}

-- append(path, record[, sync]) -> true | nil, message
function J.append(path, rec, sync)
  rec.time = rec.time or os_time()
  local line, jerr = cjson.encode(rec)
  if not line then return nil, "cannot encode a journal line: " .. tostring(jerr) end
  return core.append(path, line .. "\n", sync)
end

-- check(path) -> true | nil, message: can records be appended (before paying)?
J.check = core.writable

-- read(path) -> tasks, bad, pending: the tasks in the order they were created,
-- each {id=, model=, prompt=, status=, path=, created=, duration=, resolution=,
-- took=, within=}; the count of unreadable
-- lines; the creates whose answer never came, each {["local"]=, model=,
-- prompt_hash=, time=}.  Or nil, message when the file cannot be read.
function J.read(path)
  local kind = core.file_kind(path) -- a FIFO or a device is refused unopened (opening one may wait)
  if kind == "folder" or kind == "other" then
    return nil, "cannot read the journal: " .. tostring(path) .. " is not a regular file"
  end
  local f, err = io_open(path, "r")
  if not f then return nil, "cannot read the journal: " .. tostring(err) end
  local list, by_id, bad = {}, {}, 0
  local pending, by_local, settled = {}, {}, {}
  for line in f:lines() do
    local rec = line ~= "" and cjson.decode(line)
    if type(rec) ~= "table" then
      if line ~= "" then bad = bad + 1 end -- a torn or foreign line: skip it, keep the rest
    else
      local lid = type(rec["local"]) == "string" and rec["local"] or nil
      if rec.event == "pending" and lid then
        if not by_local[lid] then
          local p = { ["local"] = lid, model = rec.model, prompt_hash = rec.prompt_hash, time = rec.time }
          by_local[lid] = p
          pending[#pending + 1] = p
        end
      elseif rec.event == "abandoned" and lid then
        settled[lid] = true
      elseif type(rec.id) == "string" then
        if lid then settled[lid] = true end
        local t = by_id[rec.id]
        if not t then
          t = { id = rec.id }
          by_id[rec.id] = t
          list[#list + 1] = t
        end
        if rec.event == "created" then
          t.model, t.prompt, t.created = rec.model, rec.prompt, rec.time
          t.duration, t.resolution = rec.duration, rec.resolution
          t.status = t.status or "queued"
        elseif rec.event == "status" and type(rec.status) == "string" then
          t.status = rec.status
          if type(rec.took) == "number" then t.took, t.within = rec.took, rec.within end
        elseif rec.event == "downloaded" and type(rec.path) == "string" then
          t.path = rec.path
        end
      end
    end
  end
  f:close()
  local open = {}
  for _, p in ipairs(pending) do
    if not settled[p["local"]] then open[#open + 1] = p end
  end
  return list, bad, open
end

-- The tasks a resume must still carry to a file: not downloaded, not failed.
function J.unfinished(list)
  local out = {}
  for _, t in ipairs(list) do
    if not t.path and t.status ~= "failed" then out[#out + 1] = t end
  end
  return out
end

return J
