-- The ledger: what a client records about the tasks it pays for, and what it
-- learned from them.  Jobs (job.lua) and the client are handed one; they never
-- touch the journal themselves.  This one keeps its records in a journal file
-- (journal.lua: JSON lines, one write under a lock each); with no journal it
-- records nothing and only keeps the schedule learned in this process.
--
-- The interface a second backend implements (ledger_redis.lua: on a store,
-- chosen by the client's `store`, L.open):
--
--   L.new(path, cfg[, engine]) -> ledger  path: the journal (nil: records nothing);
--                                       with an engine, learning the schedule
--                                       from it starts at once (learn_more)
--   ledger.records                      true when records are kept (a journal)
--   ledger:before_create(params, lid, out) -> true | false | nil, err: a synced
--                                       "pending" record before a create is sent;
--                                       a ledger that cannot be written stops the
--                                       create; false (the Redis ledger on a drive
--                                       loop): not known yet, the job asks again on
--                                       a later turn, sending nothing meanwhile
--   ledger:created(task, params, lid)   -> true | false | nil, err (kind io,
--                                       created=true): the task's id, synced, once
--                                       it is known; false (Redis, as above): the
--                                       job holds the task, state "creating", and
--                                       asks again (job.lua's _created)
--   ledger:forget(lid, id)              a job cancelled: what the ledger held for
--                                       its ask (lid) or its created record (id)
--                                       let go of (this one holds nothing)
--   ledger:create_failed(err, params, lid)  a create that failed: "created"
--                                       (uncertain) when an id was read, "abandoned"
--                                       when surely nothing was created, else it
--                                       stays pending (err.pending = lid)
--   ledger:status(id, status, took, within) a task's status changed (a completion
--                                       with how long it took, which teaches the schedule)
--   ledger:downloaded(id, path)         its video is whole at path
--   ledger:part(id, part, path)         a download stopped by close() left `part`
--                                       (for `path`): the next download, resume
--                                       or keep of the task continues it with Range
--   ledger:unfinished() -> list | nil, err   the tasks not yet downloaded nor
--                                       failed: {id=, model=, out=} (out: where a
--                                       .part of it was left, when one still is)
--   ledger:pending() -> list | nil, err the creates whose answer never came
--   ledger:owner() -> id[, file] | nil, err  this process's lease on the ledger, taken
--                                       at its first record, held until the
--                                       process's last ledger of that journal
--                                       closes; pending and created records
--                                       name it (a process that dies lets go
--                                       of it at once: its tasks are orphans);
--                                       file: where it is when not under
--                                       <journal>.owners/ (records say `lease`)
--   ledger:close([collected])           its client closed: its share of the
--                                       lease goes (what it left unfinished is
--                                       nobody's: keep takes it); collected: in a
--                                       GC step, nothing may wait (the Redis one
--                                       then does no round trip)
--   ledger:keeper() -> keeper | nil, err  a lease of its own for one `keep`
--                                       (keeper.id), let go by keeper:close();
--                                       the tasks it claims are carried by it.
--                                       keeper.carrying[id]: being carried;
--                                       keeper.again[id] = t (core.now()): one
--                                       it failed to carry, offered again by
--                                       orphans from t on
--   ledger:orphans(keeper) -> tasks, pendings, behind | nil, err  claims for keeper
--                                       every unfinished task whose owner's
--                                       lease is let go (each claim made after
--                                       checking, under one hold of the ledger,
--                                       that nobody claimed it meanwhile: two
--                                       keepers never take one task), and the
--                                       keeper's own tasks due again: tasks
--                                       {id=, model=, out=} (out: the file the
--                                       create named, or where a .part of it
--                                       was left); pendings: the orphaned
--                                       creates whose answer never came (never
--                                       re-sent: for `pending`), each once;
--                                       behind: the journal is read 1 MiB a
--                                       call, nothing is claimed until all of
--                                       it is: look again at once
--   ledger:before_create also enforces cfg.create_limit {count=, per=}: with
--                                       records, over every process of the
--                                       ledger (counted and recorded under one
--                                       hold); else over the key's clients in
--                                       this process.  Over it: nil, err
--                                       (rate_limited, field create_limit)
--   ledger:owe(wid, task_id, body) -> true | nil, err  a webhook event
--                                       (notify.lua) recorded owed, named by
--                                       this process's lease: here synced
--                                       before it is sent; on a store queued
--                                       (written in order, before its
--                                       delivered record, once Redis answers:
--                                       the process dying first loses it)
--   ledger:delivered(wid[, status])     its receiver took it (or refused it
--                                       for good with status: never again)
--   ledger:owed_orphans(keeper) -> list  claims for keeper every owed event
--                                       not delivered whose owner let go of
--                                       its lease: {wid=, task=, body=}; or
--                                       nil, err (words) when it could not look
--   ledger:schedule() -> schedule       the learned polling schedule (schedule.lua):
--                                       the key's (engine.lua), which this
--                                       ledger feeds; its own with no engine
--   ledger:learn(kind, model, took, within)  a sample seen in this process
--   ledger:learn_more() -> done         one bounded slice of the journal's
--                                       samples (J.samples' reader, 64 KiB); the
--                                       engine calls it once per drive-loop turn
--                                       until done, never a whole read in a step
--
-- A journal larger than COMPACT_LIMIT (64 MB) is compacted when a client opens
-- it (J.maybe_compact), keeping what resume, pending and the schedule need.

local core = require "starvideos.core"
local journal = require "starvideos.journal"
local options = require "starvideos.options"
local Schedule = require "starvideos.schedule"

local type, ipairs, pairs, next, tostring, setmetatable = type, ipairs, pairs, next, tostring, setmetatable
local string_format, io_open, os_time, os_remove, os_date, os_getenv =
  string.format, io.open, os.time, os.remove, os.date, os.getenv
local math_max, math_floor, tonumber = math.max, math.floor, tonumber
local new_error = options.new_error
local cjson = require("cjson.safe").new()

local L = {}
L.__index = L

L.COMPACT_LIMIT = 64 * 1024 * 1024 -- bytes: a larger journal is compacted on open
L.SLICE = 65536                    -- bytes of the journal read for samples per drive-loop turn
L.FOLLOW = 1024 * 1024             -- bytes of the journal a keeper reads per look (more looks at once while behind)

-- The key of a kind of task in the learned schedule (schedule.lua).
local function kind_of(model, duration, resolution)
  if type(model) ~= "string" then return nil end
  if type(duration) == "number" then duration = string_format("%.14g", duration) end
  return model .. "|" .. tostring(duration or "") .. "|" .. tostring(resolution or "")
end
L.kind_of = kind_of

-- The file name (no folder, no ".mp4") for a task id: journal.lua's injective one.
L.file_name = journal.file_name

function L.new(path, cfg, engine)
  local self = setmetatable({ path = path, records = path ~= nil, cfg = cfg, outs = {},
    budget = engine and engine.budget }, L)
  if path then journal.maybe_compact(path, L.COMPACT_LIMIT) end
  -- the key's schedule; its journal read while the first creates and polls go
  -- out, so that the first delays are learned ones
  if engine then self:schedule(engine) end
  return self
end

-- A client's ledger (the one choice of backend): on cfg.store (ledger_redis.lua,
-- on the engine's store of that URL), else on cfg.journal (never both: options.lua).
function L.open(cfg, engine)
  if cfg.store then
    return require("starvideos.ledger_redis").new(engine:store_for(cfg.store, cfg.connect_timeout), cfg, engine)
  end
  return L.new(cfg.journal, cfg, engine)
end

local function append(self, rec, sync)
  if self.path then return journal.append(self.path, rec, sync) end
  return true
end

-- ------------------------------------------------------------ leases

-- A lease is an exclusive flock on <journal>.owners/<id> (core.try_lock): held
-- while its holder lives, dropped by the kernel the moment it dies.  One per
-- process and journal for the records its ledgers write (taken at the first
-- one, so never in nginx's master: records are written by workers; let go
-- when the last of those ledgers closes, its client closing: what a closed
-- client left unfinished is nobody's), and one per running keep.
local leases = {} -- journal path -> { id =, lock =, users = } of this process

local function lease_path(path, id) return path .. ".owners/" .. id end

-- A new lease: <journal>.owners/<id>, else (a folder the process may not
-- write in, a journal given to nginx's `nobody`) in a folder of the user's
-- under /tmp, whose path the records then carry (`lease`).
local function new_lease(path)
  local id = core.random_id()
  local file = lease_path(path, id)
  local lock, err = core.try_lock(file, true)
  local elsewhere
  if not lock then
    elsewhere = string_format("%s/starvideos-leases-%d/%s", os_getenv("TMPDIR") or "/tmp", core.uid(), id)
    local lock2, err2 = core.try_lock(elsewhere, true)
    if not lock2 then return nil, tostring(err) .. "; " .. tostring(err2) end
    lock, file = lock2, elsewhere
  end
  return { id = id, lock = lock, path = path, file = file, elsewhere = elsewhere, users = 0 }
end

local function let_go_of(lease)
  os_remove(lease.file) -- first: a name is never locked again once let go
  lease.lock:unlock()
end

function L:owner()
  local path = self.path
  if not path then return nil, "no journal" end
  if self.lease then return self.lease.id, self.lease.elsewhere end
  if self.closed then return nil, "the ledger is closed" end
  local held = leases[path]
  if not held then
    local err
    held, err = new_lease(path)
    if not held then return nil, err end
    leases[path] = held
  end
  held.users = held.users + 1
  self.lease = held
  return held.id, held.elsewhere
end

-- The ledger's client closed: its share of the process's lease goes (a
-- journal's close never waits: collected or not, the same).
function L:close()
  local held = self.lease
  self.lease, self.closed = nil, true
  if not held then return end
  held.users = held.users - 1
  if held.users > 0 then return end
  if leases[held.path] == held then leases[held.path] = nil end
  let_go_of(held)
end

-- A job cancelled: nothing held for it here (every record is written at once).
function L.forget() end

local Keeper = {}
Keeper.__index = Keeper
function Keeper:close()
  if self.lock then let_go_of(self) end
  self.lock = nil
end

function L:keeper()
  if not self.path then return nil, "no journal" end
  local k, err = new_lease(self.path)
  if not k then return nil, err end
  k.told, k.carrying, k.again, k.swept = {}, {}, {}, {}
  return setmetatable(k, Keeper)
end

-- Is the owner's lease let go?  Taken for a moment to see; a lease found let go
-- is removed (its holder is gone: the name is never used again).  A record
-- without an owner (written before leases) has nobody carrying it.
local function let_go(path, owner, elsewhere, cache)
  if not owner then return true end
  local seen = cache[owner]
  if seen ~= nil then return seen end
  local file = elsewhere or lease_path(path, owner)
  local lock, _, missing = core.try_lock(file)
  if lock then os_remove(file); lock:unlock() end
  seen = lock and true or missing == "missing"
  cache[owner] = seen
  return seen
end

local parts

function L:orphans(k)
  local path = self.path
  if not path then return nil, "no journal" end
  if not k.lock then return nil, "the keeper is closed" end
  local st, err = journal.follow(path, k.state, L.FOLLOW)
  if not st then return nil, err end
  k.state = st
  if st.behind then return {}, {}, true end -- a claim needs the whole story: catch up first
  local cache, candidates, pendings, out = {}, {}, {}, {}
  local t_now, left = core.now(), nil
  local function carry(t)
    left = left or parts(path)
    local part = left[t.id]
    if part and core.file_kind(part .. ".part") ~= "file" then part = nil end
    out[#out + 1] = { id = t.id, model = t.model, out = t.out, part = part }
  end
  for _, t in ipairs(st.list) do
    if (t.path or t.status == "failed") and t.owner and not k.swept[t.owner] then
      -- settled: its owner's lease is looked at once, and removed if let go (a
      -- process that exited without closing its client leaves its file)
      k.swept[t.owner] = true
      let_go(path, t.owner, t.lease, cache)
    elseif not t.path and t.status ~= "failed" then
      if t.owner ~= k.id then
        if let_go(path, t.owner, t.lease, cache) then candidates[#candidates + 1] = { id = t.id, owner = t.owner } end
      elseif not k.carrying[t.id] and k.again[t.id] and k.again[t.id] <= t_now then -- its own, to try again
        k.again[t.id] = nil
        carry(t)
      end
    end
  end
  for _, p in ipairs(st.open) do
    if not k.told[p["local"]] and let_go(path, p.owner, p.lease, cache) then
      k.told[p["local"]] = true
      pendings[#pendings + 1] = p
    end
  end
  if not candidates[1] then return out, pendings end
  -- the claims, under one hold: what another keeper appended meanwhile first
  local lock, lerr = core.lock_journal(path, true)
  if not lock then return nil, lerr end
  local ok, perr = pcall(function()
    st = assert(journal.follow(path, k.state))
    k.state = st
    local lines, claimed = {}, {}
    for _, c in ipairs(candidates) do
      local t = st.by_id[c.id]
      if t and not t.path and t.status ~= "failed" and t.owner == c.owner then
        lines[#lines + 1] = assert(journal.line { event = "claim", id = t.id, owner = k.id, lease = k.elsewhere })
        claimed[#claimed + 1] = t
      end
    end
    if not lines[1] then return end
    local done, werr = lock:append(path, table.concat(lines), true) -- one write, one fsync
    if not done then error(werr, 0) end
    for _, t in ipairs(claimed) do
      t.owner, t.lease = k.id, k.elsewhere
      carry(t)
    end
  end)
  lock:unlock()
  if not ok then return nil, tostring(perr) end
  -- the claims are in the file: st follows on from past them next time
  return out, pendings
end

-- ------------------------------------------------------------ create_limit

local limits = setmetatable({}, { __mode = "k" }) -- a key's budget -> its recent creates' times (no records)

local function refused(limit, n, oldest, t)
  local wait = math_max(0, oldest + limit.per - t)
  return nil, new_error("rate_limited", string_format("create_limit: %d creates in the last %.14g s (at most %d):"
    .. " the next create is allowed in %d s (at %s)", n, limit.per, limit.count, math_floor(wait + 0.999),
    os_date("!%Y-%m-%d %H:%M:%S UTC", math_floor(oldest + limit.per + 0.999))),
    { field = "create_limit", retry_after = wait })
end

-- The times of the pending records of the last `per` seconds, newest first, at
-- most count of them, read from the journal's end backwards (one slice at a
-- time, stopping at the first record older than the window).
local function recent_creates(path, limit, t)
  local f = io_open(path, "rb")
  local times = {}
  if not f then return times end
  local pos = f:seek("end") or 0
  local carry, cutoff = "", t - limit.per
  while pos > 0 do
    local n = math.min(L.SLICE, pos)
    pos = pos - n
    f:seek("set", pos)
    local chunk = (f:read(n) or "") .. carry
    local lines = {}
    for line in chunk:gmatch("[^\n]+") do lines[#lines + 1] = line end
    carry = pos > 0 and table.remove(lines, 1) or ""
    for i = #lines, 1, -1 do
      local line = lines[i]
      local when = tonumber(line:match('"time":(%d+)'))
      if when and when < cutoff - 5 then f:close(); return times end -- past the window (5 s: writers' clocks)
      if when and when >= cutoff and line:find('"event":"pending"', 1, true) then
        times[#times + 1] = when
        if #times >= limit.count then f:close(); return times end
      end
    end
  end
  f:close()
  return times
end

-- The create may go (and, with records, its pending record is written under
-- the same hold), or nil, err.
local function limited(self, rec)
  local limit = self.cfg.create_limit
  local t = os_time()
  if not self.path then
    local key = self.budget or self
    local kept = {} -- oldest first, those still in the window
    for _, when in ipairs(limits[key] or kept) do
      if when >= t - limit.per then kept[#kept + 1] = when end
    end
    limits[key] = kept
    if #kept >= limit.count then return refused(limit, #kept, kept[#kept - limit.count + 1], t) end
    kept[#kept + 1] = t
    return true
  end
  local lock, err = core.lock_journal(self.path, true)
  if not lock then return nil, err end
  local ok, times = pcall(recent_creates, self.path, limit, t)
  if not ok then lock:unlock(); return nil, tostring(times) end
  if #times >= limit.count then
    lock:unlock()
    return refused(limit, #times, times[#times], t)
  end
  rec.time = t
  local line, lerr = journal.line(rec)
  local done, werr
  if line then done, werr = lock:append(self.path, line, true) end
  lock:unlock()
  if not done then return nil, lerr or werr end
  return true
end

function L:before_create(params, lid, out)
  if not self.path and not self.cfg.create_limit then return true end
  local ok, err, owner, elsewhere
  if self.path then
    ok, err = journal.check(self.path)
    if ok then owner, elsewhere = self:owner(); ok, err = owner ~= nil, elsewhere end
  else
    ok = true
  end
  if ok then
    local rec = { event = "pending", ["local"] = lid, model = params.model, owner = owner, lease = elsewhere, out = out,
      prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil }
    if self.cfg.create_limit then
      ok, err = limited(self, rec)
      if not ok and type(err) == "table" then return nil, err end
    else
      ok, err = append(self, rec, true)
    end
  end
  if ok then
    if lid then self.outs[lid] = out end -- for the created record
    return true
  end
  return nil, new_error("io", tostring(err) .. " (nothing was sent)", { field = "journal" })
end

function L:created(task, params, lid)
  local out = lid and self.outs[lid]
  if lid then self.outs[lid] = nil end
  local owner, elsewhere
  if self.path then owner, elsewhere = self:owner() end
  local ok, err = append(self, { event = "created", id = task.id, ["local"] = lid, model = params.model,
    duration = params.duration, resolution = params.resolution, prompt = params.prompt,
    owner = owner, lease = owner and elsewhere or nil, out = out }, true)
  if ok then return true end
  return nil, new_error("io", string_format("task %s was created but %s", task.id, err),
    { task = task, id = task.id, field = "journal", created = true })
end

-- A create that failed, as the core's verdict decided it: `created` (a task
-- may exist and its id was read), else `maybe_created` (one may exist, id
-- unknown: the pending record stands), else nothing was created.
function L:create_failed(err, params, lid)
  local out = lid and self.outs[lid]
  if lid then self.outs[lid] = nil end
  if not self.path then return end
  if err.created then
    local owner, elsewhere = self:owner()
    append(self, { event = "created", id = err.id, ["local"] = lid, model = params.model, prompt = params.prompt,
      uncertain = true, owner = owner, lease = owner and elsewhere or nil, out = out }, true)
  elseif not err.maybe_created then
    append(self, { event = "abandoned", ["local"] = lid })
  else
    err.pending = lid
  end
end

function L:status(id, status, took, within)
  if self.path then append(self, { event = "status", id = id, status = status, took = took, within = within }) end
end

function L:downloaded(id, path)
  if self.path then append(self, { event = "downloaded", id = id, path = path }) end
end

function L:part(id, part, path)
  if self.path then return append(self, { event = "part", id = id, part = part, path = path }, true) end
end

-- ------------------------------------------------------------ webhooks owed

-- Each record of the journal at path whose line holds one of marks (only those
-- lines are decoded), oldest first: fn(rec).
local function each_record(path, marks, fn)
  local f = io_open(path, "r")
  if not f then return end
  for line in f:lines() do
    for _, mark in ipairs(marks) do
      if line:find(mark, 1, true) then
        local rec = cjson.decode(line)
        if type(rec) == "table" then fn(rec) end
        break
      end
    end
  end
  f:close()
end

-- Records without an `id` (a task's): compaction keeps them as they are.
function L:owe(wid, task_id, body)
  if not self.path then return true end
  local owner, elsewhere = self:owner()
  return append(self, { event = "owed", wid = wid, task = task_id, body = body, owner = owner,
    lease = owner and elsewhere or nil }, true)
end

function L:delivered(wid, status)
  if self.path then append(self, { event = "delivered", wid = wid, status = status }) end
end

-- The webhooks owed whose owner let go, claimed for keeper k (an owed record
-- naming it, under the journal's hold), read from the tail k follows (the
-- journal's follow state, shared with L:orphans: only what is new is read);
-- while k is behind (a long journal read a slice a look), none yet; k.whole
-- (resume's: one look) reads all there is at once.
function L:owed_orphans(k)
  local path = self.path
  if not path then return nil, "no journal" end
  if not k.lock then return nil, "the keeper is closed" end
  local st, ferr = journal.follow(path, k.state, not k.whole and L.FOLLOW or nil)
  if not st then return nil, ferr end
  k.state = st
  if st.behind then return {} end
  local cache, candidates = {}, {}
  for wid, rec in pairs(st.owed) do
    if rec and rec.owner ~= k.id and let_go(path, rec.owner, rec.lease, cache) then candidates[wid] = rec end
  end
  if not next(candidates) then return {} end
  local lock, lerr = core.lock_journal(path, true)
  if not lock then return nil, lerr end
  local out, lines = {}, {}
  local ok, perr = pcall(function() -- under the hold: what another keeper claimed meanwhile is left to it
    st = assert(journal.follow(path, k.state))
    k.state = st
    for wid, rec in pairs(candidates) do
      local cur = st.owed[wid]
      if cur and cur.owner == rec.owner then
        lines[#lines + 1] = assert(journal.line { event = "owed", wid = wid, task = rec.task, body = rec.body,
          owner = k.id, lease = k.elsewhere })
        out[#out + 1] = { wid = wid, task = rec.task, body = rec.body }
      end
    end
    if lines[1] then
      local appended, aerr = lock:append(path, table.concat(lines), true)
      if not appended then error(aerr or "cannot append to the journal", 0) end
    end
  end)
  lock:unlock()
  if not ok then return nil, tostring(perr) end
  return out
end

-- The .parts recorded for tasks (task id -> the download's path), newest last:
-- only lines that name the event are decoded.
local PART_MARKS = { '"event":"part"' }
function parts(path)
  local out = {}
  each_record(path, PART_MARKS, function(rec)
    if type(rec.id) == "string" and type(rec.path) == "string" then out[rec.id] = rec.path end
  end)
  return out
end

function L:unfinished()
  if not self.path then return nil, "no journal" end
  local list, err = journal.read(self.path)
  if not list then return nil, err end
  local left = parts(self.path)
  local out = {}
  for i, t in ipairs(journal.unfinished(list)) do
    local dest = left[t.id]
    if dest and core.file_kind(dest .. ".part") ~= "file" then dest = nil end -- gone since: a fresh start
    out[i] = { id = t.id, model = t.model, out = dest }
  end
  return out
end

function L:pending()
  if not self.path then return nil, "no journal" end
  local list, err, pending = journal.read(self.path)
  if not list then return nil, err end
  return pending
end

-- ------------------------------------------------------------ the schedule

-- The schedule belongs to the key (engine.lua: E:schedule, one set of samples
-- for every client of the key); the ledger feeds it what its jobs learn and,
-- once per key and journal path (E:first_read), the journal's samples.  A
-- ledger with no engine (one opened only to read records) keeps a schedule of
-- its own.

function L:learn(kind, model, took, within)
  (self.sched or self:schedule()):learn(kind, model, took, within)
end

-- The learned schedule.  The journal's samples are read from the end
-- backwards, one slice per drive-loop turn (learn_more, called by the engine),
-- never all at once inside a step; asked with no engine, all at once.
function L:schedule(engine)
  local s = self.sched
  if s then
    if not engine and self.reader then repeat until self:learn_more() end -- asked outside a drive loop
    return s
  end
  s = engine and engine:schedule(self.cfg) or Schedule.new(self.cfg)
  self.sched = s
  if self.path and (not engine or engine:first_read(self.path)) then
    self.reader = journal.samples(self.path)
    if engine then engine:learning(self) else repeat until self:learn_more() end -- no engine: all now
  end
  return s
end

function L:learn_more()
  local r = self.reader
  if not r then return true end
  local list, done = r:next(L.SLICE)
  local s = self.sched
  for _, t in ipairs(list or {}) do
    if t.took then s:learn(kind_of(t.model, t.duration, t.resolution), t.model, t.took, t.within) end
  end
  if done or not list then self.reader = nil; return true end
  return false
end

return L
