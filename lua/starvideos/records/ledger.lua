-- The ledger on a journal file (the interface: docs/architecture.md).  With no journal it
-- records nothing (create_limit is then counted by the key's bucket in this process).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local config = require "starvideos.config"
local errors = require "starvideos.errors"
local Bucket = require "starvideos.bucket"
local Rules = require "starvideos.rules"
-- spend.lua, loaded at its first use (a spend limit set, or reservations read back), as the optional layers are
local function Spend() return require "starvideos.spend" end
-- the journal's records and the process's flock leases (records/journal.lua, records/leases.lua), loaded with the
-- first journal: a process's own ledger (no journal) keeps none
local function journal() return require "starvideos.records.journal" end
local function leases() return require "starvideos.records.leases" end
local function rule() return require "starvideos.lease" end -- (the leases' rule: a journal's, a task's fences)

local type, ipairs, tostring, tonumber, setmetatable, require = type, ipairs, tostring, tonumber, setmetatable, require
local string_format = string.format
local new_error = errors.new_error

local L = {}

-- Its leases (records/leases.lua: its keepers, their claims, the holds it asks) and its tasks' fences (lease.lua's),
-- the objects it owns, made at their first use: a process's own ledger that never keeps nor confirms makes none.
local OWNED = { leases = function(self) return leases().new(self) end, fences = function() return rule().fences() end }
-- The journal read back (records/reads.lua: read_all, saw, unfinished, tasks, pending, spend), its methods given
-- to L at the first read: a client that reads nothing back never loads them.
local READS = { read_all = true, saw = true, unfinished = true, tasks = true, pending = true, spend = true }
function L.__index(self, k)
  local make = OWNED[k]
  if not make then
    if READS[k] and L[k] == nil then require("starvideos.records.reads")(L) end
    return L[k]
  end
  local v = make(self)
  rawset(self, k, v)
  return v
end

L.SLICE = 65536 -- bytes of samples read per turn of a loop

function L.new(path, cfg, loop, key)
  local self = setmetatable({ path = path, records = path ~= nil, cfg = cfg, outs = {}, key = key or false,
    field = "journal", asks = {}, waits = {}, loop = loop, made = {} }, L)
  if path then -- (inside nginx, or with no loop, the caller's own thread writes)
    self.writer, self.leases = journal().writer(path, not loop or loop.own), self.leases -- (a journal's leases: made
    -- with it, not in a frame's step at a task's first confirm)
    self.said = require("starvideos.records.said").new(path, cfg, function() return self:follow() end)
    self.counts = cfg.spend and Spend().counts(cfg) or nil
    require("starvideos.records.compact").maybe_compact(path, config.DEFAULTS.compact_at) -- (docs/batch.md)
    local Schedule = require "starvideos.schedule"
    if key and Schedule.first_read(key, path) then
      self.schedule, self.reader = Schedule.of(key, cfg), require("starvideos.records.samples").reader(path)
      -- its first slice now (a small journal's every sample): learned before any answer is read; the rest a
      -- slice a turn of the loop
      if not self:turn() then key:share(self) end
    end
  end
  return self
end

function L:turn()
  local list, done = self.reader:next(L.SLICE)
  for _, t in ipairs(list) do
    self.schedule:learn(self.schedule.kind_of(t.model, t.duration, t.resolution), t.model, t.took, t.within)
  end
  return done
end

-- A record given to the writer: true and its ticket (await: nobody is told of its failure but the one that asks
-- for its ticket), or nil, err.  sign: it names this process's lease (when it can be had).
local function append(self, rec, sync, sign, await)
  if not self.path then return true end
  if sign then
    local owner, elsewhere = self:owner()
    rec.owner, rec.lease = owner, owner and elsewhere or nil
  end
  local line, err = journal().line(rec)
  if not line then return nil, err end
  local ticket = self.writer:put(line, sync, nil, self, await)
  if rec.event == "status" then self.status_upto = ticket end -- (a refusal, a completion: refusals.lua reads it back)
  return true, ticket
end

-- A record that could not be written, that nobody waited for (the writer's word, journal.lua): an error (event
-- journal_error).
function L:lost(why)
  local on_event = self.cfg.on_event
  if on_event then on_event { type = "journal_error", path = self.path, message = "a record was not written: "
    .. tostring(why) } end
end

-- The lease's id and where it is when not under <journal>.owners/, or nil, err (asked only with a journal).
function L:owner()
  if self.closed then return nil, "the ledger is closed" end
  local err
  if not self.lease then self.lease, err = leases().hold(self.path) end
  if not self.lease then return nil, err end
  return self.lease.id, self.lease.elsewhere
end

-- Every record queued so far written, waited for seconds at most when given (the interface's: docs/architecture.md).
function L:flush(seconds) if self.path then self.writer:flush(seconds) end end

function L:close(collected)
  if not collected then self:flush() end
  if self.lease then leases().release(self.lease) end
  self.lease, self.closed = nil, true
end

-- A cancelled job's question let go (its record is written all the same).
function L:forget(lid, id)
  if lid and self.asks[lid] then self.said:settled(self.asks[lid].ticket, false) end -- (its steps: not said)
  if lid then self.asks[lid] = nil end
  if id then self.waits[id] = nil end
end

-- (its leases': records/leases.lua's, the interface's: docs/architecture.md)
function L:keeper(look) return self.leases:keeper(look) end

-- The queue (client:submit, docs/batch.md): kept in a store; a journal refuses it, naming the option.
local function no_queue()
  return nil, new_error("invalid_request", "submit's queue is kept in a store: starvideos.new{store = URL}; a journal "
    .. "keeps none yet (generate_all runs a list on this host)", { field = "store" })
end
L.enqueue, L.batch = no_queue, no_queue

function L:let_go(id, ended)
  if ended then self.fences:let_go(id) end
end

-- The times of the journal's (st) pending records of the last `per` s (of tenant, when given), newest first, at
-- most count.
local function recent_creates(st, limit, t, tenant)
  local times = {}
  for i = #st.pending, 1, -1 do
    local p = st.pending[i]
    local when = tonumber(p.time)
    if #times >= limit.count or (when and when < t - limit.per - 5) then break end -- (5 s: writers' clocks)
    if when and when >= t - limit.per and (not tenant or p.tenant == tenant) then times[#times + 1] = when end
  end
  return times
end

-- What the journal says now (read on from the last look, self.st): st, or nil, err.
function L:follow()
  local st, err = journal().follow(self.path, self.st or journal().new_state(false, self.counts))
  self.st = st or self.st
  return st, err
end

-- What the journal (st) says of a keyed create's key: the rules' key_answer.
local function ask_key(self, st, want)
  local e = st.keys[want.key]
  if e and e.id == nil and st.settled[e["local"]] then
    e = { gone = true }
  elseif e and e.status == "failed" then
    e = { failed = e.id }
  elseif e and not want.fresh then
    e.alive = e.owner ~= (self.lease and self.lease.id) and self.leases:alive(e.owner, e.lease) or nil
  end
  return Rules.key_answer(e, want, "--journal " .. self.path)
end

-- client:sse's window of key k in the journal (records/events.lua: <journal>.events), size events kept at least.
function L:events(k, size) return self.path and require("starvideos.records.events").of(k, self, size) end

-- The task a keyed job follows instead of creating, read without the lock (a create asks again); else nil and
-- why it creates, or nil and the error a create will be refused with.
function L:peek(want)
  local st = self.path and self:follow()
  if st then return ask_key(self, st, want) end
  return nil, "no ledger"
end

-- The pending record decided by what the journal says (the key's task: then returned, nothing written; bucket.lua's
-- rule; spend.lua's reservation, in the journal's records read again: st.spend) and given to the writer, written
-- only if the journal did not change since: true, a task, false and the record's ticket, or nil, err.
local function decided(self, rec, want)
  local spend = self.cfg.spend and Spend() -- (nil without a spend limit: spend.lua not loaded)
  local limits, t = Rules.limits(self.cfg, rec.tenant), spend and spend.clock() or os.time()
  local price, spec, which
  if spend then price, spec, which = spend.covering(self.cfg, rec.model, rec.tenant, t) end
  local ask = price and { lid = rec["local"], price = price, spec = spec, tenant = rec.tenant }
  if not self.path then
    local ok, wait, n, c = self.key.bucket:count_creates(limits, t, ask)
    if ok then
      if spend then spend.tell(self.cfg, wait, which) end
      return true
    end
    if ok == nil then return nil, wait end -- (nginx's dict could not be locked: an io error)
    if c.spend then return Spend().refusal(which[c.spend], n, t, nil, c.told, self.cfg) end
    return Rules.limited(c.lim, n, wait, nil, c.tenant)
  end
  local st, err
  if ask then self.writer:flush() end -- (a release this process queued counted out first)
  if want or limits[1] or ask then st, err = self:follow(); if not st then return nil, err end end
  if want then
    local task, kerr = ask_key(self, st, want)
    if task or type(kerr) == "table" then return task, kerr end
  end
  for _, c in ipairs(limits) do
    local times = recent_creates(st, c.lim, t, c.tenant)
    local wait = Bucket.limit_rule(times, t, c.lim.count, c.lim.per)
    if wait > 0 then return Rules.limited(c.lim, #times, wait, nil, c.tenant) end
  end
  if ask then
    local i, total, told = Spend().over(journal().spent(st), price, spec, t, rec["local"])
    if i then
      if told then self.said:refused(which[i]) end -- (after the steps decided before it; once a window)
      return Spend().refusal(which[i], total, t, "the journal " .. self.path, nil, self.cfg)
    end
    rec.price, rec.spend = price, spec
  end
  rec.time = t
  local line = assert(journal().line(rec))
  if st then journal().take(st, line:sub(1, -2)) end -- (read again from the file: taken once)
  return false, self.writer:put(line, true, st and st.size, self, true), which, st and st.crossed
end

-- A create's pending record asked for (self.asks[lid]): nil (ask it), false (not written yet), true (written),
-- or nil, err.  A record another process's decided against is asked again (the journal read again).
local function asked(self, lid)
  local ask = lid and self.asks[lid]
  if not ask then return nil end
  local ok, why = self.writer:result(ask.ticket)
  if ok == nil then return false end
  self.asks[lid] = nil
  self.said:settled(ask.ticket, ok)
  if ok then self.outs[lid] = ask.rec; return true end
  self.st = nil -- (it took the record that was not written)
  if why ~= true then return nil, new_error("io", tostring(why) .. " (nothing was sent)", { field = "journal" }) end
end

-- want (a keyed job's): key, fp, body, out, fresh; tenant: whom the create is for (nil: nobody named); addr: its
-- content address (refusal.lua's).  true (send it), a task to follow, false (asked: ask again later), or nil, err.
function L:before_create(params, lid, out, want, tenant, addr)
  if not self.path and not self.cfg.create_limit and not (tenant and self.cfg.tenant_limit) and not self.cfg.spend then
    return true
  end
  local answer, aerr = asked(self, lid)
  if answer ~= nil or aerr then return answer, aerr end
  want = self.path and want or nil
  local rec = Rules.pending(params, lid, out, want, tenant, addr)
  rec.event = "pending"
  local ok, err = true, nil
  if self.path then rec.owner, rec.lease = self:owner(); ok, err = rec.owner, rec.lease end -- (nil, why: no lease)
  local which, crossed
  if ok then ok, err, which, crossed = decided(self, rec, want) end
  if ok == false then -- (an inline writer's is settled already; one another process decided against: asked again)
    self.asks[lid] = { ticket = err, rec = rec }
    self.said:after(err, crossed, which)
    answer, aerr = asked(self, lid)
    if answer == nil and not aerr then return false end
    return answer, aerr
  end
  if type(ok) == "table" or type(err) == "table" then return ok, err end -- a task of the key, or a refusal
  if not ok then return nil, new_error("io", tostring(err) .. " (nothing was sent)", { field = "journal" }) end
  if lid then self.outs[lid] = rec end -- for the created record
  return true
end

-- Without a journal: create lid's reservation settled (paid) or released in the key's bucket; one that could not
-- be (nginx's dict not had) told (journal_error's words: a record of it was not kept).
-- to: its task known failed, what it cost in units (failed_prices).
local function end_spend(self, lid, paid, to)
  local ok, err = self.key.bucket:end_spend(lid, paid, Spend().clock(), to)
  if not ok then
    local on_event = self.cfg.on_event
    if on_event then on_event { type = "warning", field = "spend_limit", message = string_format("spend_limit: "
      .. "create %s's reservation was not %s: %s", lid, to and "counted at its failed price" or paid and "settled"
      or "released", tostring(err and err.message or err)) } end
  end
end

-- p: before_create's record (out, key, fp, body, tenant); await: its failure is the caller's (a writer's ticket);
-- ids: the create's request_id and server_request_id (its answer's, or its error's; nil: none).
local function record_created(self, id, params, lid, p, uncertain, await, ids)
  if self.path then self.fences:take(id, rule().FIRST, self.lease) end
  if not self.path and lid and self.cfg.spend then
    end_spend(self, lid, true)
    if self.cfg.failed_prices then self.made[id] = lid end -- (its failure's cost counted: L:status)
  end
  local rec = Rules.created(self.cfg, id, params, lid, p, uncertain, ids)
  rec.event = "created"
  return append(self, rec, true, true, await)
end

local function abandoned(self, lid)
  if not self.path and self.cfg.spend then end_spend(self, lid, false) end
  append(self, { event = "abandoned", ["local"] = lid })
end

-- (false until the record is written)  ids: the create's request ids ({request_id, server_request_id}, or nil).
function L:created(task, params, lid, ids)
  local ok, err = true, self.waits[task.id]
  if not err then ok, err = record_created(self, task.id, params, lid, Rules.taken(self, lid), nil, true, ids) end
  if ok and err then -- (its ticket)
    self.waits[task.id] = err
    ok, err = self.writer:result(err)
    if ok == nil then return false end
    self.waits[task.id] = nil
  end
  if ok then return true end
  return nil, new_error("io", string_format("task %s was created but %s", task.id, err),
    { task = task, id = task.id, field = "journal", created = true })
end


-- (reason, input: a failed task's, failure.lua's; model: its task's, whose failed_prices entry it then costs)
function L:status(id, status, took, within, why, reason, input, model)
  local cost = status == "failed" and Rules.failed_cost(self.cfg, model) or nil
  if not self.path then -- (without a journal: the key's bucket counts the spend of the tasks this client made)
    local lid = self.made[id]
    if status == "failed" or status == "completed" then self.made[id] = nil end
    if lid and cost then end_spend(self, lid, true, Spend().in_units(cost)) end
    return
  end
  if status == "failed" then self.fences:let_go(id) end
  append(self, { event = "status", id = id, status = status, took = took, within = within, error = why,
    reason = reason, input = input, cost = cost })
end

-- Written under the journal's lock, only at the holder's number, when its lease lapsed (else no claim came).
function L:downloaded(id, path, sha256, bytes, note)
  local rec = { event = "downloaded", id = id, path = path, sha256 = sha256,
    bytes = bytes }
  for k, v in pairs(note or {}) do if rec[k] == nil then rec[k] = v end end -- (the sink's: sink.lua's noted)
  local lapsed = self:lapsed(id)
  local n, by = self.fences:let_go(id)
  if lapsed then -- (nil: the journal could not be locked; written all the same)
    self.writer:flush() -- (the records before it first)
    local line = assert(journal().line(rec))
    if self.leases:holds(id, n, by, function(lock) return lock:append(self.path, line) end) ~= nil then return end
  end
  append(self, rec)
end

-- An upload to an object in progress (state: its record, storage/object.lua's), or ended (nil): its ticket, for
-- written (true once the record is written or failed for good); a task's reference objects in the user's bucket
-- (refs: storage/refs.lua's text), or none left (nil).
-- A sink's state of task id by its kind (state: its text, nil once none is left; where: the path its video goes
-- to), the record each kind is kept as: the journal keeps the text, never reads it.
local SINK_STATE = {
  part = function(id, state, where) return { event = "part", id = id, part = state, path = where } end,
}
-- Any other kind (a rock's: the journal's reader knows it, journal.lua's BY_TASK): {event = kind, [kind] = its text,
-- false once none is left, path = where}.
local function rock_state(kind)
  return function(id, state, where) return { event = kind, id = id, [kind] = state or false, path = where } end
end

function L:sink_state(id, kind, state, where)
  local record = SINK_STATE[kind] or journal().sink_kind(kind) and rock_state(kind)
    or error("sink_state: no kind " .. tostring(kind), 2)
  local ok, ticket = append(self, record(id, state, where), true)
  return ok and ticket or nil -- (a record that cannot be made: no ticket, never its message)
end
function L:written(ticket) return not ticket or self.writer:result(ticket) ~= nil end

-- (written before the webhook is sent: a writer's waited for)
function L:owe(wid, task_id, body)
  local ok, ticket = append(self, { event = "owed", wid = wid, task = task_id, body = body }, true, true, true)
  if not (ok and ticket) then return ok, ticket end
  self.writer.c:wait(ticket)
  return self.writer:result(ticket)
end

function L:delivered(wid, status)
  append(self, { event = "delivered", wid = wid, status = status })
end

-- A pending create p settled by hand (the rules' settle_pending): forgotten, or task id adopted.
local function settle(self, p, id)
  if not id then return append(self, { event = "abandoned", ["local"] = p["local"], forgot = true }, true) end
  local rec = Rules.created(self.cfg, id, { model = p.model, prompt = p.prompt }, p["local"], p)
  rec.event, rec.adopted = "created", true
  return append(self, rec, true)
end

-- (confirm, lapsed, create_failed and settle_pending: every ledger's, the interface's: docs/architecture.md)
Rules.implement(L, { record = record_created, abandon = abandoned, settle = settle,
  where = function(self) return self.path, "--journal " .. self.path end })

require("starvideos.records.refusals")(L, append) -- (refusal, refused: a policy or input failure kept)

return L
