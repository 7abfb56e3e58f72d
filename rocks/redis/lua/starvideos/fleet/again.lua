-- What a ledger on a store (fleet/ledger.lua) sends first when the store lost its data or another server answers
-- behind its address (fleet/identity.lua), and the keys of a created record.  The ledger's own object
-- (ledger.again = M.new(ledger)), holding the tasks it holds not yet settled.
--   again:hold(id, keys, args), again:part(id, part, path), again:let_go(id): a created record kept, and its part
--   again:records(told) -> {{script, keys, args[, wait]}...}, said: the ledger's records_again (wait: a created
--       record, acknowledged by the store's replicas; said(): the event told, to be called once they are written)
--   M.task_keys(ledger, id, lid, key_hash)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Ask = require "starvideos.fleet.ask"
local leases = require "starvideos.fleet.leases"
local Scripts = require "starvideos.fleet.scripts" -- (spend_keys)

local pairs, ipairs, setmetatable, string_format = pairs, ipairs, setmetatable, string.format

local M = {}

local A = {}
A.__index = A

-- mine: id -> {keys, args, part}: the created records of the tasks this ledger holds, until each is settled.
function M.new(ledger) return setmetatable({ ledger = ledger, mine = {} }, A) end

function A:hold(id, keys, args) self.mine[id] = { keys = keys, args = args } end
function A:let_go(id) self.mine[id] = nil end
function A:part(id, part, path)
  if self.mine[id] then self.mine[id].part = { part, path } end
end

-- The keys of the created script (fleet/scripts.lua) of task id, created under lid ("" none; spend: its
-- reservation's spec, spend.lua's, if known: its keys declared).
function M.task_keys(self, id, lid, key_hash, spend)
  local pre = self.prefix
  local keys = { pre .. "task:" .. id, pre .. "unfinished", pre .. "pend:" .. lid, pre .. "pending", pre .. "tasks",
    key_hash and pre .. "key:" .. key_hash, more = { pre .. "tasks:seq" } }
  if lid ~= "" then Scripts.spend_keys(pre, spend, lid, keys.more) end
  return keys
end

-- What ledger knows of task id that its records' keys follow from (the store's scripts ask for them else,
-- fleet/declared.lua): its kind (samples:<kind>), its key's hash (key:<hash>), its create (lid) and its
-- reservation's spec (spend: a failure's cost, status_keys); forgotten once it is settled.
function M.knows(ledger, id, kind, key_hash, spend, lid)
  if kind or key_hash or lid then
    ledger.known[id] = { kind = kind, key_hash = key_hash, spend = spend, lid = lid }
  end
end

-- The keys of the abandoned script of create lid: its reservation's too, when its spec is known (ledger.spends).
function M.abandoned_keys(ledger, lid)
  local pre = ledger.prefix
  local keys = { pre .. "pend:" .. lid, pre .. "pending", pre .. "gone:" .. lid, more = { pre .. "spend:log" } }
  Scripts.spend_keys(pre, ledger.spends[lid], lid, keys.more)
  ledger.spends[lid] = nil
  return keys
end

-- The keys of the status script of task id (its kind's samples, when known; costed: a failure counted at its
-- failed price, its reservation's and the log); settled: forgotten after.
function M.status_keys(ledger, id, settled, costed)
  local pre, known = ledger.prefix, ledger.known[id] or {}
  if settled then ledger.known[id] = nil end
  local keys = { pre .. "task:" .. id, pre .. "unfinished", pre .. "kinds", pre .. "refused",
    more = { known.kind and pre .. "samples:" .. known.kind or nil } }
  if costed then
    keys.more[#keys.more + 1] = pre .. "spend:log"
    if known.lid then Scripts.spend_keys(pre, known.spend, known.lid, keys.more) end -- (none: its res: alone)
  end
  return keys
end

-- The keys of the downloaded script of task id (its key:<hash>, when known), forgotten after.
function M.downloaded_keys(ledger, id)
  local pre, known = ledger.prefix, ledger.known[id] or {}
  ledger.known[id] = nil
  return { pre .. "task:" .. id, pre .. "unfinished", more = { known.key_hash and pre .. "key:" .. known.key_hash } }
end

-- The store lost its data (fleet/identity.lua: a script found its identity gone or new): the records the store
-- sends before anything else (this ledger's leases, every task it holds not yet settled: its creates, its keepers'
-- claims at their numbers, which a keep finds; and its creates within create_limit's window, counted again), and
-- said(), which tells it at error level (told; "failover": another server answers there, a warning) once the store
-- wrote them all: an app that ends at the event loses none.  What other processes wrote is lost
-- (docs/keep-and-fleet.md).
function A:records(told)
  local mine, l = self.mine, self.ledger
  local list, n, lim = {}, 0, l.cfg.create_limit
  local function add(name, keys, args, wait) list[#list + 1] = { "ledger_" .. name, keys, args, wait } end
  if l.lease then add("lease", leases.lease_keys(l, l.lease.id), { l.lease_ms }) end
  for _, rec in pairs(mine) do
    n = n + 1
    add("created", rec.keys, rec.args, true)
    if rec.part then add("part", { rec.keys[1] }, rec.part) end
  end
  for k in l.leases:each_keeper() do
    add("lease", leases.lease_keys(l, k.id), { l.lease_ms })
    for id in pairs(k.carrying) do
      local h = k.claims[id]
      if h then
        n = n + 1
        local rec = {}
        for f, v in pairs(h) do rec[f] = v end
        rec.claimed, rec.owner, rec.fence = nil, k.id, h.claimed
        add("created", M.task_keys(l, id, "", h.key_hash), Ask.pairs_of(rec, id, ""), true)
      end
    end
  end
  local t = core.now()
  local counted = l:counted_creates(t)
  local recount = {} -- (each count's script ARGV: the window, then each create's age)
  local function again(on, c, per)
    local args = recount[on] or { string_format("%.17g", per) }
    recount[on], args[#args + 1] = args, string_format("%.6f", t - c.at)
  end
  for _, c in ipairs(counted) do
    if lim and t - c.at < lim.per then again("", c, lim.per) end
    if c.tenant then again(c.tenant, c, l.cfg.tenant_limit.per) end
  end
  for on, args in pairs(recount) do
    add("recount", { on == "" and l.prefix .. "creates" or Ask.tenant_key(l, on) }, args)
  end
  local on_event, ev = told and l.cfg.on_event, nil
  if on_event and told == "failover" then -- (its data may be whole: told as a warning)
    ev = { type = "warning", where = l.where, tasks = n, message = string_format("store %s: another Redis "
      .. "server answers there now (a failover, or a restart: its run id changed): %d unsettled tasks of this client "
      .. "recorded again", l.where, n) }
  elseif on_event then
    ev = { type = "store_reset", where = l.where, tasks = n, creates = #counted,
      message = string_format("store %s lost its data (its identity is gone or new: a FLUSHALL, a restart without "
        .. "its files or a failover to a replica that lagged): %d unsettled tasks of this client recorded again, %d "
        .. "of its creates counted again for create_limit; what other processes wrote before is lost", l.where,
        n, #counted) }
  end
  return list, ev and function() on_event(ev) end
end

return M
