-- What a ledger on a store (fleet/ledger.lua) sends first when the store lost its data or another server answers
-- behind its address (fleet/identity.lua), and the keys of a created record.
--   A.records(ledger, told) -> {{script, keys, args[, wait]}...}: the ledger's records_again (wait: a created
--       record, acknowledged by the store's replicas)
--   A.task_keys(ledger, id, lid, key_hash)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Ask = require "starvideos.fleet.ask"
local leases = require "starvideos.fleet.leases"

local pairs, ipairs, string_format = pairs, ipairs, string.format

local A = {}

-- The keys of the created script (fleet/scripts.lua) of task id, created under lid ("" none).
function A.task_keys(self, id, lid, key_hash)
  return { self.prefix .. "task:" .. id, self.prefix .. "unfinished", self.prefix .. "pend:" .. lid,
    self.prefix .. "pending", self.prefix .. "tasks", key_hash and self.prefix .. "key:" .. key_hash }
end

-- The store lost its data (fleet/identity.lua: a script found its identity gone or new): said at error level
-- (told; "failover": another server answers there, a warning), and the records the store sends before anything
-- else: this ledger's leases, every task it holds not yet settled (its creates, its keepers' claims at their
-- numbers: a keep finds them) and its creates within create_limit's window, counted again.  What other processes
-- wrote is lost (docs/keep-and-fleet.md).
function A.records(self, told)
  local list, n, lim = {}, 0, self.cfg.create_limit
  local function add(name, keys, args, wait) list[#list + 1] = { "ledger_" .. name, keys, args, wait } end
  if self.lease then add("lease", leases.lease_keys(self, self.lease.id), { self.lease_ms }) end
  for _, rec in pairs(self.mine) do
    n = n + 1
    add("created", rec.keys, rec.args, true)
    if rec.part then add("part", { rec.keys[1] }, rec.part) end
  end
  for k in pairs(self.keepers) do
    add("lease", leases.lease_keys(self, k.id), { self.lease_ms })
    for id in pairs(k.carrying) do
      local h = k.claims[id]
      if h then
        n = n + 1
        local rec = {}
        for f, v in pairs(h) do rec[f] = v end
        rec.claimed, rec.owner, rec.fence = nil, k.id, h.claimed
        add("created", A.task_keys(self, id, "", h.key_hash), Ask.pairs_of(rec, id, ""), true)
      end
    end
  end
  local t = core.now()
  local counted = self:_counted(t)
  local recount = {} -- (each count's script ARGV: the window, then each create's age)
  local function again(on, c, per)
    local args = recount[on] or { string_format("%.17g", per) }
    recount[on], args[#args + 1] = args, string_format("%.6f", t - c.at)
  end
  for _, c in ipairs(counted) do
    if lim and t - c.at < lim.per then again("", c, lim.per) end
    if c.tenant then again(c.tenant, c, self.cfg.tenant_limit.per) end
  end
  for on, args in pairs(recount) do
    add("recount", { on == "" and self.prefix .. "creates" or Ask.tenant_key(self, on) }, args)
  end
  local on_event = told and self.cfg.on_event
  if on_event and told == "failover" then -- (its data may be whole: told as a warning)
    on_event { type = "warning", where = self.where, tasks = n, message = string_format("store %s: another Redis "
      .. "server answers there now (a failover, or a restart: its run id changed): %d unsettled tasks of this client "
      .. "recorded again", self.where, n) }
  elseif on_event then
    on_event { type = "store_reset", where = self.where, tasks = n, creates = #counted,
      message = string_format("store %s lost its data (its identity is gone or new: a FLUSHALL, a restart without "
        .. "its files or a failover to a replica that lagged): %d unsettled tasks of this client recorded again, %d "
        .. "of its creates counted again for create_limit; what other processes wrote before is lost", self.where,
        n, #counted) }
  end
  return list
end

return A
