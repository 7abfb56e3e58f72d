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
-- ledger.lua; "lease": its file, when not under <journal>.owners/); the
-- created one names the file the create asked for ("out").
-- {"event":"claim","id":"...","owner":"..."}: a keeper took the task over.
-- Later records: {"event":"status",...} on each change (the first "completed"
-- one with "took": the seconds from create to completion, to within "within",
-- which teaches the polling schedule), {"event":"downloaded",...}.
-- Reading skips a torn line (a crash mid-write) and unknown events.
--
-- Compaction (J.compact) rewrites the file keeping every record of the tasks
-- not settled yet (a pending create without answer, a task neither downloaded
-- nor failed: verbatim, prompt included), every line it cannot attribute to a
-- task (verbatim), and of each settled task (downloaded or failed) only what
-- the schedule learns, as one record without the prompt:
--   {"event":"sample","id":"...","model":"...","duration":5,"resolution":"...",
--    "status":"completed","took":42.5,"within":2.5,"path":"...","time":<created>}
-- for the newest SAMPLE_KEEP tasks of each kind (model, duration, resolution);
-- the rest of them goes.  Its first line is {"event":"compacted","bytes":N,...}
-- (N: the size of what follows), which J.maybe_compact reads.

local core = require "starvideos.core"
local cjson = require("cjson.safe").new()

local io_open, os_time, os_remove, ipairs, pairs, type, tostring, setmetatable =
  io.open, os.time, os.remove, ipairs, pairs, type, tostring, setmetatable
local math_min, string_format, table_concat, table_sort, pcall, error, next =
  math.min, string.format, table.concat, table.sort, pcall, error, next

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

-- The tasks a resume must still carry to a file: not downloaded, not failed.
function J.unfinished(list)
  local out = {}
  for _, t in ipairs(list) do
    if not t.path and t.status ~= "failed" then out[#out + 1] = t end
  end
  return out
end

-- ------------------------------------------------------------ samples

-- What the learned schedule reads, from the end of the journal backwards, a
-- bounded slice per call.  The caps: at most SAMPLE_KEEP samples per kind (the
-- schedule keeps no more), SAMPLE_MAX in all, and SAMPLE_BYTES read in all.
J.SAMPLE_KEEP = 200
J.SAMPLE_MAX = 2000
J.SAMPLE_BYTES = 8 * 1024 * 1024

local Reader = {}
Reader.__index = Reader

-- samples(path) -> reader: reader:next(max_bytes) -> list, done.  A journal
-- that is missing or not a regular file gives no samples.
function J.samples(path)
  local r = setmetatable({ pos = 0, read = 0, count = 0, done = true, per_kind = {}, waiting = {} }, Reader)
  local kind = core.file_kind(path)
  if kind ~= "file" and kind ~= "link" then return r end
  local f = io_open(path, "rb")
  if not f then return r end
  local size = f:seek("end")
  if not size then f:close(); return r end
  r.f, r.pos, r.done = f, size, false
  return r
end

local function add_sample(r, out, model, duration, resolution, took, within)
  if type(took) ~= "number" or type(model) ~= "string" then return end
  local key = model .. "|" .. tostring(duration) .. "|" .. tostring(resolution)
  local n = (r.per_kind[key] or 0) + 1
  if n > J.SAMPLE_KEEP then return end
  r.per_kind[key] = n
  r.count = r.count + 1
  out[#out + 1] = { model = model, duration = duration, resolution = resolution, took = took,
    within = type(within) == "number" and within or nil }
end

-- One line, newest first: a completion record (status with took) waits for its
-- task's created record (further back) to name the kind, unless it names it.
local WORDS = { '"took"', '"created"' }
local function sample_line(r, line, out)
  local waiting = r.waiting
  if not (line:find('"took"', 1, true) or (next(waiting) and line:find('"created"', 1, true))) then return end
  local rec = cjson.decode(line)
  if type(rec) ~= "table" or type(rec.id) ~= "string" then return end
  local ev = rec.event
  if ev == "sample" or (ev == "status" and rec.model ~= nil) then
    add_sample(r, out, rec.model, rec.duration, rec.resolution, rec.took, rec.within)
  elseif ev == "status" and type(rec.took) == "number" then
    if not waiting[rec.id] then waiting[rec.id] = rec end
  elseif ev == "created" and waiting[rec.id] then
    local w = waiting[rec.id]
    waiting[rec.id] = nil
    add_sample(r, out, rec.model, rec.duration, rec.resolution, w.took, w.within)
  end
end

function Reader:next(max_bytes)
  if self.done then return {}, true end
  if type(max_bytes) ~= "number" or max_bytes < 1 then
    error("reader:next: expected a number of bytes >= 1, got " .. tostring(max_bytes), 2)
  end
  local n = math_min(max_bytes, self.pos, J.SAMPLE_BYTES - self.read)
  local start = self.pos - n
  local out, chunk = {}, ""
  if n > 0 and self.f:seek("set", start) then chunk = self.f:read(n) or "" end
  self.pos, self.read = start, self.read + n
  -- segments of the chunk between newlines: the first ends a line begun in an
  -- earlier slice (kept for the next call, unless this is the start), the last
  -- begins the line the previous call kept; those between are whole lines, cut
  -- out (sub) only when they hold a word a sample needs
  local firsts, lasts, k, at = { 1 }, {}, 1, 1
  while true do
    local nl = chunk:find("\n", at, true)
    if not nl then break end
    lasts[k], k, at = nl - 1, k + 1, nl + 1
    firsts[k] = at
  end
  lasts[k] = #chunk
  local tail = chunk:sub(firsts[k]) .. (self.carry or "")
  self.carry = nil
  if k > 1 or start == 0 then
    sample_line(self, tail, out)
  else
    self.carry = tail -- no newline in the slice: all of it belongs to one line
  end
  local wanted = {}
  for _, word in ipairs(WORDS) do
    local seg, pos = 1, 1
    while true do
      pos = chunk:find(word, pos, true)
      if not pos then break end
      while lasts[seg] < pos do seg = seg + 1 end
      wanted[seg], pos = true, lasts[seg] + 2
    end
  end
  for i = k - 1, 2, -1 do
    if self.count >= J.SAMPLE_MAX then break end
    if wanted[i] then sample_line(self, chunk:sub(firsts[i], lasts[i]), out) end
  end
  if k > 1 then
    if start > 0 then self.carry = chunk:sub(1, lasts[1]) else sample_line(self, chunk:sub(1, lasts[1]), out) end
  end
  if start == 0 or self.read >= J.SAMPLE_BYTES or self.count >= J.SAMPLE_MAX then
    self.done = true
    self.f:close()
    self.f, self.carry, self.waiting = nil, nil, {}
  end
  return out, self.done
end

-- Stop reading early (the file is closed; later calls give nothing).
function Reader:close()
  if self.f then self.f:close() end
  self.f, self.done = nil, true
end

-- ------------------------------------------------------------ compaction

-- Pass 1 over the locked file: what each line is, and what each task became.
local function survey(path)
  local lines, tasks, settled_lids, stats = {}, {}, {}, { before_records = 0, bad = 0 }
  local i, f = 0, assert(io_open(path, "rb"))
  for line in f:lines() do
    i = i + 1
    if line ~= "" then
      stats.before_records = stats.before_records + 1
      local rec = cjson.decode(line)
      if type(rec) ~= "table" then
        lines[i] = false -- torn or foreign: dropped
        stats.bad = stats.bad + 1
      else
        local lid = type(rec["local"]) == "string" and rec["local"] or nil
        local ev = rec.event
        if type(rec.id) == "string" then
          if lid then settled_lids[lid] = true end
          local t = tasks[rec.id]
          if not t then t = {}; tasks[rec.id] = t end
          lines[i] = rec.id
          if ev == "created" or ev == "sample" then
            if not t.at then
              t.at, t.model, t.duration, t.resolution, t.time = i, rec.model, rec.duration, rec.resolution, rec.time
            end
          end
          if ev == "status" or ev == "sample" then
            if type(rec.status) == "string" then t.status = rec.status end
            if type(rec.took) == "number" and not t.took then t.took, t.within = rec.took, rec.within end
          end
          if (ev == "downloaded" or ev == "sample") and type(rec.path) == "string" then t.path = rec.path end
        elseif ev == "pending" and lid then
          lines[i] = { pending = lid }
        elseif ev == "abandoned" and lid then
          settled_lids[lid] = true
          lines[i] = false
        elseif ev == "compacted" then
          lines[i] = false -- a new one heads the new file
        else
          lines[i] = true -- not a task's: kept as it is
        end
      end
    end
  end
  stats.before_bytes = f:seek("end")
  f:close()
  return lines, tasks, settled_lids, stats
end

-- The settled tasks whose sample is kept: the newest SAMPLE_KEEP per kind.
local function keep_samples(tasks)
  local order = {}
  for id, t in pairs(tasks) do
    t.settled = t.path ~= nil or t.status == "failed"
    if t.settled and t.at and type(t.took) == "number" and type(t.model) == "string" then
      order[#order + 1] = id
    end
  end
  table_sort(order, function(a, b) return tasks[a].at > tasks[b].at end)
  local per_kind = {}
  for _, id in ipairs(order) do
    local t = tasks[id]
    local key = t.model .. "|" .. tostring(t.duration) .. "|" .. tostring(t.resolution)
    per_kind[key] = (per_kind[key] or 0) + 1
    if per_kind[key] <= J.SAMPLE_KEEP then t.sample = true end
  end
end

-- Pass 2: the new file's lines, in the old order.
local function rewrite(path, tmp, lines, tasks, settled_lids, stats)
  local out, n, bytes = {}, 0, 0
  local i = 0
  local function put(line)
    n = n + 1
    out[n] = line
    bytes = bytes + #line + 1
  end
  stats.samples, stats.unsettled = 0, 0
  for line in io.lines(path) do
    i = i + 1
    local what = lines[i]
    if what == true then
      put(line)
    elseif type(what) == "table" then
      if not settled_lids[what.pending] then put(line) end
    elseif type(what) == "string" then
      local t = tasks[what]
      if not t.settled then
        put(line)
      elseif t.sample and t.at == i then
        put(cjson.encode { event = "sample", id = what, model = t.model, duration = t.duration,
          resolution = t.resolution, status = t.status, took = t.took, within = t.within, path = t.path,
          time = t.time })
        stats.samples = stats.samples + 1
      end
    end
  end
  for _, t in pairs(tasks) do
    if not t.settled then stats.unsettled = stats.unsettled + 1 end
  end
  local f, err = io_open(tmp, "wb")
  if not f then return nil, "cannot compact the journal: " .. tostring(err) end
  local head = cjson.encode { event = "compacted", bytes = bytes, records = n, time = os_time() }
  local ok, werr = f:write(head, "\n")
  if ok and n > 0 then ok, werr = f:write(table_concat(out, "\n", 1, n), "\n") end
  local closed, cerr = f:close()
  if not ok or not closed then return nil, "cannot compact the journal: " .. tostring(werr or cerr) end
  stats.after_records, stats.after_bytes = n + 1, #head + 1 + bytes
  return true
end

-- compact(path) -> stats | nil, message.  Under the appenders' lock (they wait,
-- and those that opened the old file before the rename reopen the new one):
-- stats = {before_bytes=, after_bytes=, before_records=, after_records=,
-- samples=, unsettled=, bad=}.
function J.compact(path)
  local kind = core.file_kind(path)
  if kind == "link" then
    return nil, "cannot compact the journal " .. tostring(path) .. ": it is a symbolic link (compact the file it names)"
  elseif kind ~= "file" then
    return nil, "cannot compact the journal " .. tostring(path) .. ": "
      .. (kind and "it is not a regular file" or "no such file")
  end
  local lock, lerr = core.lock_journal(path)
  if not lock then return nil, lerr end
  local tmp = path .. ".compact-" .. core.random_id()
  local ok, stats, err = pcall(function()
    local lines, tasks, settled_lids, st = survey(path)
    keep_samples(tasks)
    local done, werr = rewrite(path, tmp, lines, tasks, settled_lids, st)
    if not done then return nil, werr end
    done, werr = lock:replace(tmp, path)
    if not done then return nil, werr end
    return st
  end)
  lock:unlock()
  if not ok then stats, err = nil, "cannot compact the journal " .. tostring(path) .. ": " .. tostring(stats) end
  if not stats then os_remove(tmp) end
  return stats, err
end

-- maybe_compact(path, limit_bytes) -> stats | false | nil, message: compacts
-- when the file is over limit_bytes and at least twice what the last
-- compaction left (so a journal of unsettled tasks alone is not rewritten on
-- every open); false when it did not.
function J.maybe_compact(path, limit_bytes)
  if type(limit_bytes) ~= "number" then
    error("maybe_compact: expected a number of bytes, got " .. type(limit_bytes), 2)
  end
  if core.file_kind(path) ~= "file" then return false end
  local f = io_open(path, "rb")
  if not f then return false end
  local size = f:seek("end") or 0
  local first = size > limit_bytes and f:seek("set", 0) and f:read(512)
  f:close()
  if not first then return false end
  local head = cjson.decode(first:match("^[^\n]*"))
  if type(head) == "table" and head.event == "compacted" and type(head.bytes) == "number"
    and size < 2 * head.bytes then
    return false
  end
  return J.compact(path)
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
