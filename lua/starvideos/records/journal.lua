-- The journal (docs/batch.md): one JSON record a line, each written whole in one write() under
-- a lock (J.writer).  A task's records name their writer's lease ("owner"; "lease": its file,
-- when not under <journal>.owners/).  Reading skips a torn line and unknown events.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local rule = require "starvideos.lease"
local Bucket = require "starvideos.bucket" -- (its store: spend_limit's reservations, spend.lua's rule)
-- spend.lua, loaded at its first use (a spend limit set, or reservations read back), as the optional layers are
local function Spend() return require "starvideos.spend" end
local Refusal = require "starvideos.refusal"
local cjson = require("cjson.safe").new()
local Sink = require "starvideos.sink"
local interrupted = require("starvideos.interrupt").is

local io_open, os_time, ipairs, pairs, type, tostring, math_min, string_format, error =
  io.open, os.time, ipairs, pairs, type, tostring, math.min, string.format, error

local J = {}

function J.line(rec)
  rec.time = rec.time or os_time()
  local line, jerr = cjson.encode(rec)
  if not line then return nil, "cannot encode a journal line: " .. tostring(jerr) end
  return line .. "\n"
end

-- The journal's writer (core.journal_writer), one per journal file and kind in the process: what every record
-- goes through, in order.  Threaded (a ledger with a loop), a loop's turn takes what it wrote (failures of records
-- nobody waits for: their ledger's journal_error); inline (nginx's worker, no loop, J.append), each put is
-- written before it returns.  A blocking call waits until its ticket is settled.
local W = {}
W.__index = W
local writers = { [true] = setmetatable({}, { __mode = "v" }), [false] = setmetatable({}, { __mode = "v" }) }

function J.writer(path, inline)
  inline = inline == true
  local w = writers[inline][path] or setmetatable({ c = core.journal_writer(path, inline), inline = inline,
    sent = 0, done = 0, failed = {}, by = {} }, W)
  writers[inline][path] = w
  return w
end

-- A record's lines queued for ledger (expect: written only if nobody else wrote after that offset; await:
-- its failure is told to the one who asks for its ticket, else to ledger: ledger:lost(why)).  Its ticket.
function W:put(lines, sync, expect, ledger, await)
  local t = self.c:put(lines, sync, expect)
  self.sent, self.by[t] = t, not await and ledger or nil
  if self.inline then self:turn() else ledger.loop:turning(self) end
  return t
end

-- One record appended, as a ledger's are (the inline writer): true, or nil, why.
function J.append(path, rec, sync)
  local line, err = J.line(rec)
  if not line then return nil, err end
  local w = J.writer(path, true)
  local ok, why = w:result(w:put(line, sync, nil, nil, true))
  return ok or nil, why
end

function W:turn()
  local done, failed = self.c:poll()
  for t, why in pairs(failed or {}) do
    local by = self.by[t]
    if by then by:lost(why) else self.failed[t] = why end
  end
  for t = self.done + 1, done do self.by[t] = nil end
  self.done = done
  return done >= self.sent
end

function W:settled() return self.done >= self.sent end

-- Ticket t's outcome: nil (not yet), true, or false and why (true: written by another after it was decided).
function W:result(t)
  if t > self.done then self:turn() end
  if t > self.done then return nil end
  local why = self.failed[t]
  self.failed[t] = nil
  return why == nil, why
end

-- The loop has nothing else to do for seconds: it waits here, back once what was queued is written (not at its
-- next turn's poll, up to 5 ms later: a journalled create's two records waited 10 ms so).
function W:pause(seconds)
  if self.sent > self.done then self.c:wait(self.sent, seconds) end
end

-- Everything queued written (a read, a close, or a record whose ordering asks for it); waited for seconds at most
-- when given (a Ctrl-C's: another process may hold the journal's lock).
function W:flush(seconds)
  if self.sent > self.done then self.c:wait(self.sent, seconds); self:turn() end
end

-- What the records say so far, taken a line at a time (take: the line's record, or nil).
-- owed: webhook id -> {task, body, owner, lease} while owed, false once delivered (for good).
-- keys: a job's key -> its latest pending create or task, with key, fp and body (docs/batch.md).
-- spec_of(rec, price, spec): a pending record's price and spend spec as the reader's limits count it (spend.lua's
-- counts; nil: as recorded).
function J.new_state(head, spec_of)
  return { list = {}, by_id = {}, bad = 0, bad_at = {}, line = 0, pending = {}, by_local = {}, settled = {},
    owed = {}, keys = {}, abandoned = {}, told = {}, head = head, pos = 0, spec_of = spec_of, refused = {} }
end

local function keyed(st, rec, entry)
  if type(rec.key) ~= "string" then return end
  entry.key, entry.fp, entry.body = rec.key, rec.fp, rec.body
  st.keys[rec.key] = entry
end

-- A record of each kind, taken into st: a create not yet answered (by its local id), a webhook (by its wid), a
-- task (by its id: t, its entry).  A kind not listed is skipped (a newer library's: read as far as known).
local BY_LOCAL, BY_WEBHOOK, BY_TASK = {}, {}, {}

-- The reservations of spend_limit the records hold (spend.lua's rule, on the store st.spend), at the wall clock.
function J.spent(st)
  st.spend = st.spend or Bucket.store()
  st.spend.now = Spend().clock()
  return st.spend
end

function BY_LOCAL.pending(st, rec, lid, owner, lease)
  if not st.by_local[lid] then
    local price, spec = tonumber(rec.price), type(rec.spend) == "string" and rec.spend or nil
    if st.spec_of then price, spec = st.spec_of(rec, price, spec) end
    local p = { ["local"] = lid, model = rec.model, prompt_hash = rec.prompt_hash, time = rec.time, owner = owner,
      lease = lease, out = rec.out, prompt = rec.prompt, tenant = rec.tenant, price = price, spend = spec,
      parent = rec.parent, relation = rec.relation }
    st.by_local[lid], st.pending[#st.pending + 1] = p, p
    keyed(st, rec, p)
    st.crossed = p.price and p.spend and tonumber(rec.time)
      and Spend().take(J.spent(st), lid, p.price, p.spend, rec.time, rec.tenant) or nil
  end
  -- (a compacted create: its time and tenant, counted; its price, paid)
  if rec.settled == true then st.settled[lid] = true; if st.spend then Spend().finish(J.spent(st), lid, true) end end
end

function BY_LOCAL.abandoned(st, _, lid)
  st.settled[lid], st.abandoned[lid] = true, true
  if st.spend then Spend().finish(J.spent(st), lid, false) end
end

function BY_WEBHOOK.delivered(st, rec) st.owed[rec.wid] = false end

function BY_WEBHOOK.owed(st, rec, owner, lease)
  if st.owed[rec.wid] ~= false and type(rec.body) == "string" then
    st.owed[rec.wid] = { task = rec.task, body = rec.body, owner = owner, lease = lease }
  end
end

-- (a created's and a sample's: what the task is)
local function born(t, rec, st)
  t.model, t.prompt, t.created = rec.model, rec.prompt, rec.time
  t.duration, t.resolution, t.tenant, t.cost = rec.duration, rec.resolution, rec.tenant, rec.cost
  t.parent, t.relation = t.parent or rec.parent, t.relation or rec.relation -- (lineage: kept once known)
  keyed(st, rec, t)
  for _, k in ipairs { "body", "addr" } do if type(rec[k]) == "string" then t[k] = rec[k] end end -- (refusal.lua's)
end

function BY_TASK.created(t, rec, st, owner, lease)
  born(t, rec, st)
  t.lid = type(rec["local"]) == "string" and rec["local"] or t.lid -- (its reservation's: a failure's cost counted)
  t.status = t.status or "queued"
  if not t.fence then t.owner, t.lease = owner, lease end -- (written again: a claim since stays)
  if type(rec.out) == "string" then t.out = rec.out end
end

function BY_TASK.claim(t, rec, _, owner, lease) -- a keeper carries it from here, at the task's next number
  t.owner, t.lease, t.fence = owner, lease, tonumber(rec.fence) or rule.claimed(t.fence)
end

function BY_TASK.status(t, rec, st)
  if type(rec.status) ~= "string" then return end
  t.status, t.error, t.reason, t.input = rec.status, rec.error, rec.reason, rec.input -- (reason: failure.lua's)
  if type(rec.took) == "number" then t.took, t.within = rec.took, rec.within end
  Refusal.fold(st.refused, t, rec) -- (its content's refusal kept, or cleared)
  if rec.status == "failed" and type(rec.cost) == "number" and rec.event == "status" then -- (failed_prices')
    t.cost = rec.cost
    local p = t.lid and st.by_local[t.lid]
    if p then p.failed = rec.cost end -- (compact.lua's: what it paid)
    if st.spend and t.lid then Spend().finish(J.spent(st), t.lid, true, Spend().in_units(rec.cost)) end
  end
end

function BY_TASK.part(t, rec) if type(rec.path) == "string" then t.part = rec.path end end

-- A sink's state (the bucket's upload, a task's reference objects): text the journal keeps, never reads.
local function sink_text(t, rec) -- (false: none)
  local k = rec.event
  t[k] = type(rec[k]) == "string" and rec[k] or nil
end
BY_TASK.upload, BY_TASK.refs = sink_text, sink_text

-- Whether kind is a state of a rock's the journal keeps as text (records/ledger.lua's sink_state writes it).
function J.sink_kind(kind) return BY_TASK[kind] == sink_text end

function BY_TASK.downloaded(t, rec)
  if type(rec.path) ~= "string" then return end
  t.path, t.bytes, t.sha256, t.upload = rec.path, rec.bytes, rec.sha256, nil
  for _, k in ipairs(Sink.noted(rec.path)) do t[k] = rec[k] end -- (what its sink keeps with it: its note)
end

function BY_TASK.sample(t, rec, st) -- a settled task, compacted: its created, status and downloaded in one
  born(t, rec, st)
  BY_TASK.status(t, rec, st)
  BY_TASK.downloaded(t, rec)
end

-- The task of id in st, made at its first record.
local function task_of(st, id)
  local t = st.by_id[id]
  if not t then
    t = { id = id }
    st.by_id[id], st.list[#st.list + 1] = t, t
  end
  return t
end

function J.take(st, line)
  local rec = line ~= "" and cjson.decode(line)
  st.line = st.line + 1
  if type(rec) ~= "table" then -- a torn or foreign line: skipped, counted (the first ten named: bad_at)
    if line ~= "" then st.bad, st.bad_at[#st.bad_at + 1] = st.bad + 1, #st.bad_at < 10 and st.line or nil end
    return nil
  end
  local lid = type(rec["local"]) == "string" and rec["local"] or nil
  local owner = type(rec.owner) == "string" and rec.owner or nil
  local lease = owner and type(rec.lease) == "string" and rec.lease or nil
  local ev = rec.event
  if ev == "told" and type(rec.told) == "string" and tonumber(rec.percent) then -- a warning said (records/said.lua)
    local pct = string_format("%d", tonumber(rec.percent)) -- (JSON's 100.0: the rule's 100)
    st.told[rec.told .. ":" .. pct] = true
    Spend().told(J.spent(st), { key = rec.told, ends = tonumber(rec.ends) or 0 }, pct, Spend().clock())
  elseif lid and BY_LOCAL[ev] then
    BY_LOCAL[ev](st, rec, lid, owner, lease)
  elseif type(rec.wid) == "string" then -- a webhook (notify.lua)
    if BY_WEBHOOK[ev] then BY_WEBHOOK[ev](st, rec, owner, lease) end
  elseif type(rec.id) == "string" then
    if lid then
      st.settled[lid] = true
      if st.spend then Spend().finish(J.spent(st), lid, true) end
    end
    local t = task_of(st, rec.id)
    if BY_TASK[ev] then BY_TASK[ev](t, rec, st, owner, lease) end
  end
  return rec
end

-- st's lines that could not be read, as every reader names them (the first ten as FILE:LINE), or nil.
local function unreadable(st, path)
  if st.bad == 0 then return nil end
  local at = {}
  for i, n in ipairs(st.bad_at) do at[i] = path .. ":" .. n end
  return string_format("%d unreadable line%s in %s (%s%s): skipped", st.bad, st.bad == 1 and "" or "s", path,
    table.concat(at, ", "), st.bad > #st.bad_at and ", ..." or "")
end

-- st (made when nil) brought up to date with the lines appended since (a torn last line
-- waits), at most max bytes a call (st.behind: there is more; st.unreadable: what its lines it
-- could not read say).  A compaction starts st over.  None yet reads as empty, unless `existing`.
function J.follow(path, st, max, existing)
  local kind, _, errno = core.file_kind(path) -- a FIFO or a device is refused unopened (opening one may wait)
  if kind == "folder" or kind == "other" then
    return nil, "cannot read the journal: " .. tostring(path) .. " is not a regular file"
  end
  local f, err = io_open(path, "rb") -- none yet (errno 2) is empty: a keeper may come before the first create
  if not f and (errno ~= 2 or existing) then return nil, "cannot read the journal: " .. tostring(err) end
  local head = f and f:read("*l") or ""
  local size = f and f:seek("end") or 0
  -- (a head unlike st's: another file, a compaction; unless st read none yet: the file's first lines are new, and
  -- st keeps the records its writer took before they were written, each taken once)
  if not st or (st.head ~= head and st.pos > 0) or size < st.pos then st = J.new_state(head, st and st.spec_of) end
  st.head = head
  local upto = max and math_min(size, st.pos + max) or size
  if upto > st.pos and f:seek("set", st.pos) then
    local chunk = f:read(upto - st.pos) or ""
    if upto < size and not chunk:find("\n", 1, true) then -- one line longer than max: all the rest
      chunk, upto = chunk .. (f:read(size - upto) or ""), size
    end
    local at = 1
    for line, after in chunk:gmatch("([^\n]*)\n()") do
      J.take(st, line)
      at = after
    end
    st.pos = st.pos + at - 1
  end
  if f then f:close() end
  st.behind, st.open, st.size, st.unreadable = upto < size, {}, size, unreadable(st, path)
  for _, p in ipairs(st.pending) do
    if not st.settled[p["local"]] then st.open[#st.open + 1] = p end
  end
  return st
end

-- fn(lock) under the journal's lock (made when missing, unless `existing`): its returns, or nil, why.
function J.locked(path, fn, existing)
  local lock, err = core.lock_journal(path, not existing)
  if not lock then return nil, err end
  local ok, a, b = pcall(fn, lock)
  lock:unlock()
  if not ok and interrupted(a) then error(a, 0) end -- (Ctrl-C goes on up, the lock let go)
  if not ok then return nil, tostring(a) end
  return a, b
end

-- read(path) -> tasks (oldest first), the count of unreadable lines, the open pending creates.
function J.read(path)
  local st, err = J.follow(path, nil, nil, true)
  if not st then return nil, err end
  return st.list, st.bad, st.open
end

-- The tasks of list neither downloaded nor failed, as resume carries them (lists.lua's carried).
function J.unfinished(list)
  local out, carried = {}, require("starvideos.lists").carried
  for _, t in ipairs(list) do
    if not t.path and t.status ~= "failed" then out[#out + 1] = carried(t, t.part) end
  end
  return out
end

return J
