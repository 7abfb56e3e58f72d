-- The ledger on a store read back (fleet/ledger.lua's methods, its own as it loads; records/reads.lua's on a
-- journal): the key's sets as the scripts list them, the unfinished tasks, every task (client:tasks), the pending
-- creates and client:spend()'s list.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local Ask = require "starvideos.fleet.ask"
local Spent = require "starvideos.fleet.spent"
local leases = require "starvideos.fleet.leases"

local I = X.ledger -- (the ledger's interface)
local lists, Spend = I.lists, I.spend
local type, ipairs, tonumber, table_sort = type, ipairs, tonumber, table.sort

local R = {}

-- A record as the scripts list it (flat): a table, its time a number.
local function record(r)
  local h = {}
  for i = 1, #r, 2 do h[r[i]] = r[i + 1] end
  h.time = tonumber(h.time)
  return h
end

-- The key's sets read (after the queued records): per set, its records, or
-- nil, err.  With keeper k, those it claims (fleet/scripts.lua's records).
function R.read_sets(self, sets, k, due)
  self:flush()
  local claim = k and k.id ~= "?" and k.id
  local keys, args = { more = { claim and self.prefix .. "owner:" .. claim or nil } },
    { k and k.id or "", self.lease_ms, self.lease and self.lease.id or "" }
  for i, set in ipairs(sets) do keys[i] = self.prefix .. set end
  for _, id in ipairs(due or {}) do args[#args + 1] = id end
  local v, err = self.store:script("ledger_records", keys, args)
  if v == nil then return nil, leases.message(err) end
  for _, rows in ipairs(v) do
    for i, r in ipairs(rows) do rows[i] = record(r) end
  end
  return v
end

function R.unfinished(self)
  local v, err = self:read_sets { "unfinished" }
  if not v then return nil, err end
  for i, h in ipairs(v[1]) do v[1][i] = lists.carried(h, h.part_dest) end
  return v[1]
end

-- The store's tasks (settled ones for DEFAULTS.retain s) and pending creates, as journal.tasks lists; or nil, err.
function R.tasks(self)
  local v, err = self:read_sets { "tasks", "pending" }
  if not v then return nil, err end
  for _, h in ipairs(v[1]) do
    h.created, h.bytes, h.status, h.cost = h.time, tonumber(h.bytes), h.status or "queued", tonumber(h.cost)
  end
  return lists.tasks { list = v[1], pending = v[2], settled = {}, abandoned = {} }
end

-- client:spend()'s list (spend.lua's report, of the store's spend: names, recounted), a pending create whose owner's
-- lease lapsed counted spent (maybe paid); or nil, err.
function R.spend(self, tenant)
  local list, err = self:pending()
  if not list then return nil, err end
  local st, alive, me, failed = self.store, {}, self.lease and self.lease.id, nil
  local function get(k)
    local v, gerr = st:call("GET", self.prefix .. "spend:" .. k)
    failed = failed or (v == nil and gerr)
    return type(v) == "string" and v or nil -- (none: the reply's null)
  end
  local function gone(p) -- (each owner asked once)
    local o = p.owner
    if not o or o == me then return false end
    if alive[o] == nil then alive[o] = st:call("EXISTS", self.prefix .. "owner:" .. o) == 1 end
    return not alive[o]
  end
  local now = Spend.clock() + (Ask.clock(st, true) or 0) -- (the store's clock, as the creates read their windows)
  local counted = Spent.recounted(self, get, now, function(e) failed = failed or e end)
  local out = Spend.report(self.cfg, counted, now, tenant, Spend.moved(list, gone))
  if failed then return nil, leases.message(failed) end
  return out
end

function R.pending(self)
  local v, err = self:read_sets { "pending" }
  if not v then return nil, err end
  table_sort(v[1], function(a, b) return (a.time or 0) < (b.time or 0) end)
  return v[1]
end

return R
