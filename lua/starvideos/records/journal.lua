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
-- Records that carry a task name the lease of their writer ("owner", see
-- records/leases.lua; "lease": its file, when not under <journal>.owners/); the
-- created one names the file the create asked for ("out").
-- {"event":"claim","id":"...","owner":"..."}: a keeper took the task over.
-- Later records: {"event":"status",...} on each change (the first "completed"
-- one with "took": the seconds from create to completion, to within "within",
-- which teaches the polling schedule), {"event":"downloaded",...}.
-- Reading skips a torn line (a crash mid-write) and unknown events.

-- Compaction is records/compact.lua; the schedule's samples are read by
-- records/samples.lua.

local core = require "starvideos.core"
local cjson = require("cjson.safe").new()

local io_open, os_time, ipairs, type, tostring, math_min, string_format, error =
  io.open, os.time, ipairs, type, tostring, math.min, string.format, error

local J = {}

-- line(record) -> the record's JSON line (with its time) | nil, message
function J.line(rec)
  rec.time = rec.time or os_time()
  local line, jerr = cjson.encode(rec)
  if not line then return nil, "cannot encode a journal line: " .. tostring(jerr) end
  return line .. "\n"
end

-- append(path, record[, sync]) -> true | nil, message
function J.append(path, rec, sync)
  local line, err = J.line(rec)
  if not line then return nil, err end
  return core.append(path, line, sync)
end

-- check(path) -> true | nil, message: can records be appended (before paying)?
J.check = core.writable

-- What the records say so far (read, and the tail a keeper follows): one line
-- at a time, into st = {list=, by_id=, bad=, pending=, by_local=, settled=,
-- owed=}.  owed: webhook id -> {task=, body=, owner=, lease=} while owed, false
-- once delivered (a later owed record of it, a late claim, changes nothing).
local function new_state()
  return { list = {}, by_id = {}, bad = 0, pending = {}, by_local = {}, settled = {}, owed = {} }
end

local function take(st, line)
  local rec = line ~= "" and cjson.decode(line)
  if type(rec) ~= "table" then
    if line ~= "" then st.bad = st.bad + 1 end -- a torn or foreign line: skip it, keep the rest
    return
  end
  local lid = type(rec["local"]) == "string" and rec["local"] or nil
  local owner = type(rec.owner) == "string" and rec.owner or nil
  local lease = owner and type(rec.lease) == "string" and rec.lease or nil
  if rec.event == "pending" and lid then
    if not st.by_local[lid] then
      local p = { ["local"] = lid, model = rec.model, prompt_hash = rec.prompt_hash, time = rec.time, owner = owner,
        lease = lease }
      st.by_local[lid] = p
      st.pending[#st.pending + 1] = p
    end
  elseif rec.event == "abandoned" and lid then
    st.settled[lid] = true
  elseif type(rec.wid) == "string" then -- a webhook (notify.lua)
    if rec.event == "delivered" then
      st.owed[rec.wid] = false
    elseif rec.event == "owed" and st.owed[rec.wid] ~= false and type(rec.body) == "string" then
      st.owed[rec.wid] = { task = rec.task, body = rec.body, owner = owner, lease = lease }
    end
  elseif type(rec.id) == "string" then
    if lid then st.settled[lid] = true end
    local t = st.by_id[rec.id]
    if not t then
      t = { id = rec.id }
      st.by_id[rec.id] = t
      st.list[#st.list + 1] = t
    end
    if rec.event == "created" then
      t.model, t.prompt, t.created = rec.model, rec.prompt, rec.time
      t.duration, t.resolution = rec.duration, rec.resolution
      t.status = t.status or "queued"
      t.owner, t.lease = owner, lease
      if type(rec.out) == "string" then t.out = rec.out end
    elseif rec.event == "claim" then -- a keeper carries it from here
      t.owner, t.lease = owner, lease
    elseif rec.event == "status" and type(rec.status) == "string" then
      t.status = rec.status
      if type(rec.took) == "number" then t.took, t.within = rec.took, rec.within end
    elseif rec.event == "downloaded" and type(rec.path) == "string" then
      t.path = rec.path
    elseif rec.event == "sample" then -- a settled task, compacted
      t.model, t.created, t.duration, t.resolution = rec.model, rec.time, rec.duration, rec.resolution
      t.status, t.took, t.within = rec.status, rec.took, rec.within
      if type(rec.path) == "string" then t.path = rec.path end
    end
  end
end

-- The creates of st whose answer never came.
local function open_pending(st)
  local open = {}
  for _, p in ipairs(st.pending) do
    if not st.settled[p["local"]] then open[#open + 1] = p end
  end
  return open
end

-- read(path) -> tasks, bad, pending: the tasks in the order they were created,
-- each {id=, model=, prompt=, status=, path=, created=, duration=, resolution=,
-- took=, within=, owner=, out=}; the count of unreadable lines; the creates
-- whose answer never came, each {["local"]=, model=, prompt_hash=, time=,
-- owner=}.  Or nil, message when the file cannot be read.  owner: the lease
-- (see `follow`) of whoever carries the task, out: the file its create named.
function J.read(path)
  local kind = core.file_kind(path) -- a FIFO or a device is refused unopened (opening one may wait)
  if kind == "folder" or kind == "other" then
    return nil, "cannot read the journal: " .. tostring(path) .. " is not a regular file"
  end
  local f, err = io_open(path, "r")
  if not f then return nil, "cannot read the journal: " .. tostring(err) end
  local st = new_state()
  for line in f:lines() do take(st, line) end
  f:close()
  return st.list, st.bad, open_pending(st)
end

-- follow(path[, st[, max]]) -> st | nil, message: st (made when nil) brought
-- up to date with the lines appended since its last call, read from where that
-- one stopped (a torn last line waits for its end): a keeper looking every few
-- seconds reads only what is new, at most max bytes a call (st.behind: there
-- is more to read; nil max: all of it).  A compaction (the first line changed, or
-- the file shrank) starts st over from the top; no file yet: nothing in st.  st.list, st.by_id as read's;
-- st.open: the creates whose answer never came; st.owed: the webhooks (new_state).
function J.follow(path, st, max)
  local kind, _, errno = core.file_kind(path)
  if kind == "folder" or kind == "other" then
    return nil, "cannot read the journal: " .. tostring(path) .. " is not a regular file"
  end
  local f, err = io_open(path, "rb")
  if not f and errno == 2 then -- none yet (a keeper may start before the first create)
    st = new_state()
    st.head, st.pos, st.open = "", 0, {}
    return st
  end
  if not f then return nil, "cannot read the journal: " .. tostring(err) end
  local head = f:read("*l") or ""
  local size = f:seek("end") or 0
  if not st or st.head ~= head or size < st.pos then
    st = new_state()
    st.head, st.pos = head, 0
  end
  local upto = max and math_min(size, st.pos + max) or size
  if upto > st.pos and f:seek("set", st.pos) then
    local chunk = f:read(upto - st.pos) or ""
    if upto < size and not chunk:find("\n", 1, true) then -- one line longer than max: all the rest
      chunk, upto = chunk .. (f:read(size - upto) or ""), size
    end
    local at = 1
    while true do
      local nl = chunk:find("\n", at, true)
      if not nl then break end
      take(st, chunk:sub(at, nl - 1))
      at = nl + 1
    end
    st.pos = st.pos + at - 1
  end
  f:close()
  st.behind = upto < size
  st.open = open_pending(st)
  return st
end

-- The .parts recorded for tasks (task id -> the download's path), newest
-- last: only lines that name the event are decoded.
function J.parts(path)
  local out, f = {}, io_open(path, "r")
  if not f then return out end
  for line in f:lines() do
    if line:find('"event":"part"', 1, true) then
      local rec = cjson.decode(line)
      if type(rec) == "table" and type(rec.id) == "string" and type(rec.path) == "string" then
        out[rec.id] = rec.path
      end
    end
  end
  f:close()
  return out
end

-- The tasks a resume must still carry to a file: not downloaded, not failed.
function J.unfinished(list)
  local out = {}
  for _, t in ipairs(list) do
    if not t.path and t.status ~= "failed" then out[#out + 1] = t end
  end
  return out
end

-- ------------------------------------------------------------ file names

-- file_name(id) -> the file name (no folder, no ".mp4") for a task id:
-- different ids give different names, each within 246 bytes (255, the usual
-- file-name limit, with ".mp4.part").  A-Z a-z 0-9 - _ . stay as they are
-- (but a leading "."); every other byte is %XX.  A name longer than that keeps
-- its first 229 bytes (no %XX cut) and ends "~" and 16 hex digits of
-- core.hash(id): "~" is escaped in every shorter name, so the two forms never meet.
local NAME_MAX = 255 - #".mp4.part"
local NAME_CUT = NAME_MAX - 17
J.NAME_MAX = NAME_MAX

local function escape(c) return string_format("%%%02X", c:byte()) end

function J.file_name(id)
  if type(id) ~= "string" or id == "" then
    error("file_name: expected a task id (a non-empty string), got " .. (id == "" and '""' or type(id)), 2)
  end
  local name = id:gsub("[^A-Za-z0-9_.%-]", escape):gsub("^%.", escape)
  if #name <= NAME_MAX then return name end
  local cut = name:sub(1, NAME_CUT)
  local pct = cut:find("%%[^%%]?$") -- a %XX the cut would split
  if pct then cut = cut:sub(1, pct - 1) end
  return cut .. "~" .. core.hash(id)
end

return J
