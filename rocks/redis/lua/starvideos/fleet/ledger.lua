-- The ledger on a store (Redis), records/ledger.lua's interface (docs/keep-and-fleet.md).
--   R.new(store_or_url, cfg[, loop[, key]]): with a loop nothing a job calls waits; without, all do.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local config, errors, I = X.config, X.errors, X.ledger -- (I: the ledger's interface)
local Store = require "starvideos.fleet.store"
local Ask = require "starvideos.fleet.ask"
local Queue = require "starvideos.fleet.queue"
local Again = require "starvideos.fleet.again"
local leases = require "starvideos.fleet.leases"
local rule, Record, Spend, Schedule = I.lease, I.record, I.spend, I.schedule
local Events = require "starvideos.fleet.events"
local Queued = require "starvideos.fleet.queued"
require "starvideos.fleet.scripts" -- (they join the store's)

local type, ipairs, tonumber, setmetatable, require, string_format, math_floor, os_time =
  type, ipairs, tonumber, setmetatable, require, string.format, math.floor, os.time
local new_error = errors.new_error

local R = {}
R.__index = R

-- The store's samples taught: sent at the first turn, taken when there (without a loop: waited for).  The reader
-- is the key's shared work (inside nginx every client's of the worker may turn it): its answer is store:take's.
local function read_samples(self)
  local l, st = self.ledger, self.ledger.store
  if not self.n and not st:held(self.sending) and not self.answer then
    local n = st:send_for(self, "ledger_samples", { l.prefix .. "kinds" }, {})
    if l.loop or not n then return not n end
  end
  st:step(0)
  local a, first = st:take(self)
  if not (a or l.loop) then -- (without a loop: waited for, store:wait's fourth value)
    first = select(4, st:wait(self))
    a = self.answer
  end
  if not a then return false end
  if not first then return true end -- (another turn took it)
  for _, r in ipairs(type(a[1]) == "table" and a[1] or {}) do
    for i = #r[3], 1, -1 do -- oldest first
      local took, within = r[3][i]:match("^(%S+) ?(%S*)$")
      l.schedule:learn(r[1], r[2] ~= "" and r[2] or nil, tonumber(took), tonumber(within))
    end
  end
  return true
end

function R.new(store, cfg, loop, key)
  if type(store) ~= "table" or not store.cfg then store = Store.new(store, { timeout = cfg.connect_timeout }) end
  local sc = store:unverified(cfg.on_event).cfg
  local hash = I.key_hash(cfg, key)
  local where, prefix = store.where, "starvideos:{" .. hash .. "}:"
  local self = setmetatable({ store = store, cfg = cfg, hash = hash, prefix = prefix,
    where = where, field = "store", queue = Queue.for_key(store.server, where, prefix, loop and loop.own, sc.id),
    outs = {}, records = true, asks = {}, held = {}, loop = loop or false, counted = {}, spends = {}, known = {},
    lease_ms = math_floor((cfg.lease or config.DEFAULTS.lease) * 1000 + 0.5) }, R)
  -- the objects it owns: the numbers it holds, its keepers and holds, its peeks, what it sends again after a reset
  self.fences, self.leases, self.peeks, self.again = rule.fences(self.lease_ms), leases.new(self), Ask.peeks(self),
    Again.new(self)
  self.refusals = require("starvideos.fleet.refusals").new(self)
  store:watch(prefix, self, true)
  self.schedule = Schedule.learner(key, cfg, where .. " " .. prefix)
  if self.schedule then
    local reader = { ledger = self, turn = read_samples }
    if loop then key:share(reader) else reader:turn() end
  end
  return self
end

function R:flush() return self.queue:flush(self.store, self.cfg.on_event) end

-- A record after a create, queued: sent a turn at a time (with a loop), else written now (wait: one naming a paid
-- task, acknowledged by the store's replicas too).  Its entry.
function R:_record(name, keys, args, wait)
  local e = self.queue:push(name, keys, args, wait)
  if self.loop then
    self.loop:turning(self)
  else
    self:renew()
    self:flush()
  end
  return e
end

-- A loop's turn: the records sent and their answers taken, the lease renewed when due.  Whether done.
function R:turn()
  local renewed = not self.lease or self.lease:renew_async(self, core.now())
  local empty = self.queue:pump(self.store, self.cfg.on_event)
  return empty and renewed
end

-- What the store sends first after a reset (fleet/again.lua).
function R:records_again(told) return self.again:records(told) end

function R:settled() return self.queue:settled() end

-- This client's creates ({at (core.now), tenant}) within create_limit's or their tenant_limit's window, the older
-- ones let go (a tenant's forgotten once out of its window).
function R:counted_creates(t)
  local lim, tlim, kept = self.cfg.create_limit, self.cfg.tenant_limit, {}
  for _, c in ipairs(self.counted) do
    if c.tenant and not (tlim and t - c.at < tlim.per) then c.tenant = nil end
    if c.tenant or (lim and t - c.at < lim.per) then kept[#kept + 1] = c end
  end
  self.counted = kept
  return kept
end

function R:_hold()
  if not self.lease then self.lease = leases.hold(self.where .. " " .. self.prefix) end
  return self.lease
end

function R:owner()
  if self.lease then return self.lease.id end
  if self.closed then return nil, "the ledger is closed" end
  local lease = self:_hold()
  local ok, err = lease:renew(self, true)
  if not ok then return nil, err end
  return lease.id
end

function R:renew() return not self.lease or self.lease:renew(self) end

function R:_renewing() if self.loop and not self.renewer then self.renewer = leases.renewer(self, self.loop) end end

-- The client closed (collected: in a GC step, where nothing may wait): its records written first, those
-- left queued for the process; the lease's last share deletes its key (collected: it just expires).
function R:close(collected)
  local lease = self.lease
  self.lease, self.closed = nil, true
  self.store:watch(self.prefix, self, false)
  if not collected then self:flush() end
  self.queue:hand_over()
  if lease and lease:release() and not collected then
    self.store:call("DEL", self.prefix .. "owner:" .. lease.id)
  end
end

-- (its leases' keepers: records/ledger.lua's, docs/architecture.md)
function R:keeper(look) return self.leases:keeper(look) end

-- The queue (client:submit's, fleet/queued.lua): entries queued for a batch; a batch's counts.
function R:enqueue(batch, entries, total) return Queued.submit(self, batch, entries, total) end
function R:batch(id) return Queued.batch(self, id) end

R.knows = Again.knows

-- A create surely never sent: its pending record removed, its script a no-op if Redis runs it late.
local function abandoned(self, lid)
  self:_record("abandoned", Again.abandoned_keys(self, lid), { lid, config.DEFAULTS.retain, "1" })
end

function R:forget(lid, id)
  local ask = lid and self.asks[lid]
  if ask then ask:drop(); self.asks[lid] = nil end
  if id then self.held[id] = nil end
end

-- One step of a create's ask: true (or the task its key names), false (not yet), or nil, err.
function R:_ask(params, lid, out, want, tenant, addr)
  local ask = self.asks[lid]
  local function refuse(err)
    if ask then ask:drop() end
    self.asks[lid] = nil
    if type(err) == "table" and (err.kind == "rate_limited" or err.kind == "spend_limited") then return nil, err end
    -- its pending script sent, Redis may still run it: abandoned after it
    if ask then abandoned(self, lid) end
    return nil, new_error("io", leases.message(err) .. " (nothing was sent)", { field = "store" })
  end
  if not ask then
    self.queue:adopt()
    if self.queue[1] then -- the records of earlier tasks first: Redis failing, no create
      local down = self.queue:down_now(core.now())
      if down then return refuse(down) end
      if self.loop then self.loop:turning(self); return false end
      local ok, ferr = self:flush()
      if not ok then return refuse(ferr) end
    end
    local err
    ask, err = Ask.new(self, params, lid, out, want, self:_hold(), tenant)
    if not ask then return refuse(err) end
    self.asks[lid] = ask
    return false
  end
  local ok, aerr = ask:step()
  if ok == nil then return refuse(aerr) end
  if not ok then return false end
  self.asks[lid] = nil
  self.queue:answered()
  self:_renewing()
  if (self.cfg.create_limit or tenant and self.cfg.tenant_limit) and not ask.verdict then
    local counted = self:counted_creates(core.now())
    counted[#counted + 1] = { at = core.now(), tenant = self.cfg.tenant_limit and tenant }
  end
  if ask.verdict then return I.answer(ask.verdict, want, "--store " .. self.where) end
  self.outs[lid] = Record.pending(params, lid, out, want, tenant, addr) -- (addr: its task's record's)
  return true
end

-- As records/ledger.lua's (without a loop: waited for).
function R:before_create(params, lid, out, want, tenant, addr)
  lid = lid or core.random_id()
  while true do
    local ok, err = self:_ask(params, lid, out, want, tenant, addr)
    if ok ~= false or self.loop then return ok, err end
    self.store:step(self.store.timeout)
  end
end

-- p: what before_create kept of the create (its pending record, the rules').
local function record_created(self, id, params, lid, p, uncertain)
  local rec = Record.created(self.cfg, id, params, lid, p, uncertain and "1") -- (local: its failure's, Spent.FAILED)
  local key_hash = rec.key and core.hash(rec.key)
  rec.owner = self.lease and self.lease.id or self:owner() -- (a lease Redis could not renew: still ours)
  rec.kind, rec.time, rec.key_hash = Schedule.kind_of(params.model, params.duration, params.resolution), os_time(),
    key_hash
  rec.prompt_hash, rec.prompt = type(params.prompt) == "string" and core.hash(params.prompt) or nil,
    Record.head(params.prompt)
  local args = Ask.pairs_of(rec, id, lid or "")
  local spend = lid and (self.spends[lid] or p and p.spend)
  local keys = Again.task_keys(self, id, lid or "", key_hash, spend)
  if lid then self.spends[lid] = nil end
  self:knows(id, rec.kind, key_hash, spend, lid)
  self.again:hold(id, keys, args) -- (until it is settled: recorded again after a reset)
  if self.lease then self.fences:take(id, rule.FIRST, self.lease) end
  return self:_record("created", keys, args, true)
end

-- True once its record is written (and acknowledged by the replicas asked), or queued while Redis fails.
function R:created(task, params, lid)
  local e = self.held[task.id]
  if not e then
    e = record_created(self, task.id, params, lid, Record.taken(self, lid))
    if not self.loop then return true end
    self.held[task.id] = e
  end
  if self:written(e) then self.held[task.id] = nil; return true end
  return false
end

function R:peek(want) return self.peeks:peek(want) end
function R:refusal(addr) return self.refusals:get(addr) end -- (refusal.lua's: fleet/refusals.lua)
function R:refused(...) return self.refusals:put(...) end -- (id, addr, reason, input, words, tenant)
function R:events(k, size) -- client:sse's window of key k: a Redis stream under k's prefix (fleet/events.lua)
  return k:part("sse " .. self.where .. k.hash, function() return Events.new(self.store, k.hash, size) end)
end

-- A pending create p settled by hand (the rules' settle_pending): forgotten, or task id adopted.
local function settle(self, p, id)
  if id then record_created(self, id, { model = p.model, prompt = p.prompt }, p["local"], p)
  else abandoned(self, p["local"]) end
  local ok, ferr = self:flush()
  return ok, ferr and leases.message(ferr)
end

-- (confirm, lapsed, create_failed and settle_pending: every ledger's, the interface's)
I.implement(R, { record = record_created, abandon = abandoned, settle = settle,
  where = function(self) return "the store " .. self.where, "--store " .. self.where end })

-- (one the rules keep: its addr's content refused; a failed one of a model in failed_prices: counted at that price)
function R:status(id, status, took, within, why, reason, input, model)
  if status == "failed" then self:let_go(id, true) end
  local units = status == "failed" and Spend.units_of(self.cfg, model, true) -- (its failed_prices entry: a number)
  self:_record("status", Again.status_keys(self, id, status == "failed", units), { id, status,
    took and string_format("%.17g", took) or "", within and string_format("%.17g", within) or "",
    config.DEFAULTS.samples, config.DEFAULTS.retain, why or "", reason or "", input or "",
    Record.kept(status, reason) and self.refusals.entry(id, reason, input, why) or "",
    units and string_format("%d", units) or "", units and string_format("%.17g", self.cfg.failed_prices[model]) or "" })
end

-- (note: what the sink keeps with the record, sink.lua's noted: the bucket's etag, the one the task's hash holds)
function R:downloaded(id, path, sha256, bytes, note)
  local n = self:let_go(id, true)
  self:_record("downloaded", Again.downloaded_keys(self, id), { id, path, config.DEFAULTS.retain,
    bytes or "", sha256 or "", n and tostring(n) or "", note and note.etag or "" })
end

-- An upload to an object in progress (state: its record, storage/object.lua's), or ended (nil); a task's reference
-- objects (refs: storage/refs.lua's text), or none left (nil).
-- A sink's state (records/ledger.lua's sink_state): each kind's script and its arguments; a part also kept to
-- record again after a reset (again.lua).
local function text_only(_, _, state) return { state or "" } end
local SINK_STATE = {
  upload = text_only,
  refs = text_only,
  part = function(self, id, state, where)
    self.again:part(id, state, where)
    return { state, where }
  end,
}

function R:sink_state(id, kind, state, where)
  local args = SINK_STATE[kind] or error("sink_state: no kind " .. tostring(kind), 2)
  return self:_record(kind, { self.prefix .. "task:" .. id }, args(self, id, state, where))
end
function R:written(e) return not e or e.written ~= nil or e.refused or self.queue:failed_since(e) end -- (L:written)


-- A task another holds now (a keeper's claim): no longer recorded again after a reset; its number forgotten
-- (and returned) once its job ended.
function R:let_go(id, ended)
  self.again:let_go(id)
  if ended then return self.fences:let_go(id) end
end


-- Its owner the process's lease (with a loop, taken without waiting).
function R:owe(wid, task_id, body)
  local owner = self.lease and self.lease.id
  if not owner and not self.closed then
    owner = self.loop and self:_hold().id or self:owner()
    self:_renewing()
  end
  return self:_record("owe", { self.prefix .. "owed:" .. wid, self.prefix .. "owed" },
    Ask.pairs_of({ wid = wid, task = task_id, body = body, owner = owner or "" }, wid, "", "", "", "", "", "", ""))
end

function R:delivered(wid)
  self:_record("delivered", { self.prefix .. "owed:" .. wid, self.prefix .. "owed" }, { wid })
end

local Reads = require "starvideos.fleet.reads" -- (its reads: the key's sets, unfinished, tasks, pending, spend)
R.read_sets, R.unfinished, R.tasks, R.pending, R.spend = Reads.read_sets, Reads.unfinished, Reads.tasks,
  Reads.pending, Reads.spend

return R
