-- One create's asking of the store before it is sent (the ledger's before_create): the lease,
-- create_limit's count and the pending record in one round trip, never waited for (step() answers false
-- until Redis has); once per store in a process, whether Redis syncs every write.  And a key's (peek).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local I = X.ledger -- (the ledger's interface: what a pending record holds, limited, a key's answer)
local Spend, rule = I.spend, I.lease
local Acks = require "starvideos.fleet.acks" -- (spacing)
local Scripts = require "starvideos.fleet.scripts" -- (spend_keys)
local Spent = require "starvideos.fleet.spent" -- (log_terms)

local A = {}
A.__index = A

-- The settings the first create asks (CONFIG GET each: a Redis before 7 takes one name a command).
local SETTINGS = { "appendfsync", "maxmemory-policy", "maxmemory", "appendonly" }

-- The scripts' ARGV: ..., then rec's fields as field, value, ...
function A.pairs_of(rec, ...)
  local list = { ... }
  for k, v in pairs(rec) do
    list[#list + 1] = k
    list[#list + 1] = type(v) == "number" and string.format("%.17g", v) or tostring(v)
  end
  return list
end

-- tenant_limit's count of tenant in the store (fleet/scripts.lua's tcreates:<hash>; without a tenant, a name the
-- scripts never write, in the key's hash slot).
function A.tenant_key(l, tenant)
  return l.prefix .. "tcreates:" .. (tenant and core.hash(tenant) or "")
end

-- The answers nobody will read dropped (refused, or its job cancelled).
function A:drop()
  for _, n in ipairs(self.settings or {}) do if n then self.st:forget(n) end end
  if self.pend then self.st:forget(self.pend) end
end

-- Whether every command of list (false: not sent) is answered.
local function settled(st, list)
  for _, n in ipairs(list) do
    if n and not st:ready(n) then return false end
  end
  return true
end

-- Whether the store keeps every write (appendfsync always) and never evicts one (noeviction, or no maxmemory):
-- warned of once each when not, or (appendfsync) when it cannot say.  An evicting Redis is told, not refused:
-- volatile-* policies evict only the keys that expire (leases, settled records), and a store with room to spare
-- never evicts; the user decides (docs/keep-and-fleet.md#redis-settings).
local function settings_answer(self)
  local l, got = self.ledger, {}
  for i, n in ipairs(self.settings) do got[i] = n and { self.st:result(n) } or {} end
  self.settings = nil
  local on_event = l.cfg.on_event
  if not on_event then return end
  local mode, policy, most, aof = got[1][1], got[2][1], got[3][1], got[4][1]
  mode, policy, most, aof = type(mode) == "table" and mode[2], type(policy) == "table" and policy[2],
    type(most) == "table" and most[2], type(aof) == "table" and aof[2]
  if aof and aof ~= "yes" then -- (as store check says it: fleet/check.lua)
    on_event({ type = "warning", message = string.format("store %s: appendonly is %s: a restart of Redis loses every "
      .. "record written since its last snapshot%s (appendonly yes keeps them)", l.where, tostring(aof),
      l.cfg.spend and ", and with them what spend_limit counted: a Redis restarted empty counts the spend from 0"
      or "") })
  elseif mode ~= "always" then
    local err = got[1][2]
    on_event({ type = "warning", message = string.format("store %s: appendfsync is %s, not always: the last records "
      .. "written before a crash of Redis (or of its host) can be lost", l.where,
      mode and tostring(mode) or "unknown (CONFIG GET refused: " .. tostring(err and err.message or got[1][1])
      .. ")") })
  end
  if policy and policy ~= "noeviction" and most ~= "0" then
    on_event({ type = "warning", message = string.format("store %s: maxmemory-policy is %s (maxmemory %s): Redis "
      .. "may evict the fleet's records when its memory is full, and a task whose records are gone is paid again by "
      .. "a rerun; set maxmemory-policy noeviction", l.where, tostring(policy), tostring(most)) })
  end
end

-- The store's clock less ours, in whole seconds, asked once per server in a process (TIME): spend_limit's windows
-- are read on it, as the budget's are (every host of a fleet in one window whatever its own clock says); nil
-- while asked (block: waited for), nil and err when it cannot be asked now.  A TIME refused: ours (0).
function A.clock(st, block)
  local s = st.server
  if s.clock_off then return s.clock_off end
  if not s.time_n then
    local n, err = st:send("TIME")
    if not n then return nil, err end
    s.time_n, s.time_sent = n, core.wall()
  end
  if not (block or st:ready(s.time_n)) then return nil end
  local n = s.time_n
  s.time_n = nil
  local v, err
  if block then v, err = st:wait(n) else v, err = st:result(n) end
  local at = type(v) == "table" and tonumber(v[1]) and tonumber(v[1]) + (tonumber(v[2]) or 0) / 1e6
  if not at and not (err and err.reply) then return nil, err end -- (not answered: asked again next time)
  s.clock_off = at and math.floor(at - (s.time_sent + core.wall()) / 2 + 0.5) or 0
  return s.clock_off
end

-- A limit's count and per as the scripts' ARGV take them ('' '': none).
local function limit_args(lim)
  if not lim then return "", "" end
  return math.floor(lim.count), string.format("%.17g", lim.per)
end

-- The ask of create lid (for tenant, nil: nobody named), sent on the ledger's store under lease
-- (fleet/scripts.lua's keyed), answered at a later step at the earliest: the ask, or nil, what refused it.
function A.new(l, p, lid, out, want, lease, tenant)
  local st = l.store
  local self = setmetatable({ ledger = l, st = st, lease = lease, sent = core.now(), tenant = tenant, lid = lid }, A)
  if not st.server.settings_asked then -- (once per server in a process)
    st.server.settings_asked = true
    self.settings = {}
    for i, name in ipairs(SETTINGS) do self.settings[i] = st:send("CONFIG", "GET", name) or false end
  end
  if l.cfg.spend then -- (the windows wait for the store's clock: sent at a later step until it is known)
    local off, err = A.clock(st)
    if err then return nil, err end
    if not off then self.deferred = { p, out, want }; return self end
  end
  return self:send(p, out, want)
end

-- The pending record's script sent (A.new's, or its first step once the store's clock is known): self, or nil, err.
function A:send(p, out, want)
  local l, st, lid, lease, tenant = self.ledger, self.st, self.lid, self.lease, self.tenant
  local pre, w = l.prefix, want or {}
  local count, per = limit_args(l.cfg.create_limit)
  local tcount, tper = limit_args(tenant and l.cfg.tenant_limit)
  local rec = I.record.pending(p, lid, out, want, tenant)
  rec.owner, rec.time = lease.id, Spend.clock() + (st.server.clock_off or 0)
  rec.price, rec.spend, self.which = Spend.covering(l.cfg, p.model, tenant, rec.time) -- (spend.lua's reservation)
  -- (its price logged whatever the limits, and what the script counts the limits again from: scripts.lua's log)
  rec.price = rec.price or Spend.units_of(l.cfg, p.model)
  rec.spend = rec.spend and rec.spend .. " " .. Spent.log_terms(l.cfg, self.which)
  self.args_time = rec.time
  local args = A.pairs_of(rec, lid, w.fresh and "1" or "", "", l.lease_ms, count, per, tcount, tper)
  local err
  self.script, self.keys, self.args = want and "ledger_keyed" or "ledger_pending", { pre .. "pend:" .. lid,
    pre .. "pending", pre .. "gone:" .. lid, pre .. "owner:" .. lease.id, pre .. "creates",
    A.tenant_key(l, tenant), w.key and pre .. "key:" .. core.hash(w.key) }, args
  l.spends[lid] = rec.spend -- (its reservation's keys: declared by the records that settle it)
  self.keys.more = rec.spend and Scripts.spend_keys(pre, rec.spend, lid, { pre .. "spend:log" })
    or { pre .. "spend:log" }
  self.pend, err = st:send_script(self.script, self.keys, args, true)
  if not self.pend then
    self:drop()
    return nil, err
  end
  st:step(0)
  return self
end

-- One step: true (the pending record written, or in self.verdict the create or task a keyed create's key
-- names, as L.key_answer takes it), false (not yet), or nil, err (err.kind: a whole refusal, no suffix).
function A:step()
  local st = self.st
  st:step(0)
  if self.settings and settled(st, self.settings) then settings_answer(self) end
  if self.deferred then
    local off, err = A.clock(st)
    if err then return nil, err end
    if not off then return false end
    local d = self.deferred
    self.deferred = nil
    local ok, serr = self:send(d[1], d[2], d[3])
    if not ok then return nil, serr end
    return false
  end
  if self.short_at then return self:again() end
  if self.settings or not st:ready(self.pend) then return false end
  local done, err, short = st:result(self.pend)
  self.pend = nil
  if done == nil then return nil, err end
  if type(done) == "table" and done[1] == "spent" then self.crossed, done = done[2], 1 end
  if done == 1 and short then
    local final = st:refused_wait("the pending record of create " .. self.lid, short)
    if final then return nil, final end -- (no retry changes it: the create ends, never sent)
    -- The pending record written, not acknowledged by the replicas asked: written again (fresh and uncounted:
    -- the same record, counted again in no limit nor found by its own key) and waited on again, a while later
    -- (its WAIT holds the store's connection: the other answers go on meanwhile).
    st:unreplicated("the pending record of create " .. self.lid, short, self.ledger.cfg.on_event)
    self.args[2], self.args[5], self.args[7] = "1", "", ""
    self.short_at = core.now()
    return false
  end
  -- Redis set it: this round trip took it along (but for the first: the lease's own renewal learns the
  -- store's identity, fleet/leases.lua)
  if self.lease.identity then rule.answered(self.lease, self.sent, core.now(), self.ledger.lease_ms) end
  if type(done) == "table" and done[1] == "spend" then
    return Spend.refusal(self.which[tonumber(done[2])], tonumber(done[3]), self.args_time, "the store "
      .. self.ledger.where, done[4] == "1", self.ledger.cfg)
  end
  Spend.tell(self.ledger.cfg, self.crossed, self.which)
  if type(done) == "table" and done[1] == "limited" then
    local tenant = done[3] == "t" and self.tenant or nil
    local lim = self.ledger.cfg[tenant and "tenant_limit" or "create_limit"]
    return I.limited(lim, lim.count, tonumber(done[2]), self.ledger.where, tenant)
  end
  self.verdict = A.named(done)
  return true
end

-- The pending record written again once due (A:step's): false, or nil, err when it cannot be sent.
function A:again()
  if core.now() < self.short_at + Acks.spacing(self.st) then return false end
  self.short_at, self.sent = nil, core.now()
  local err
  self.pend, err = self.st:send_script(self.script, self.keys, self.args, true)
  if not self.pend then return nil, err end
  return false
end

-- What a key names as the scripts answer it (fleet/scripts.lua's KEY_NAMES), as L.key_answer takes it, or nil.
function A.named(v)
  if type(v) ~= "table" then return nil end
  if v[1] == "gone" then return { gone = true } end
  if v[1] == "failed" then return { failed = v[2] } end
  if v[1] == "task" then
    return { id = v[2], fp = v[3], body = v[4], bytes = tonumber(v[5]), model = v[6] ~= "" and v[6] or nil,
      alive = v[7] == "1", sha256 = v[8] ~= "" and v[8] or nil, path = v[9] ~= "" and v[9] or nil }
  end
  return { ["local"] = v[2], time = tonumber(v[3]) }
end

-- The ledger's peeks (ledger.peeks = A.peeks(ledger)): the questions of keys it sent, by the want that asked
-- (weakly held: a job gone, its question with it).
local Peeks = {}
Peeks.__index = Peeks

function A.peeks(l) return setmetatable({ ledger = l, sent = setmetatable({}, { __mode = "k" }) }, Peeks) end

-- The ledger's peek (records/ledger.lua's, on a store): the task a keyed job's key names, asked in a round trip
-- of its own, nothing written: with a loop false until the store answered; else the rules' key_answer (a store
-- failing: nil and the store's error, the create asking again under the keyed script).
function Peeks:peek(want)
  if want.fresh then return I.answer(nil, want) end
  local l = self.ledger
  local st = l.store
  local n, err = self.sent[want], nil
  if not n then
    n, err = st:send_script("ledger_peek", { l.prefix .. "key:" .. core.hash(want.key),
      l.lease and l.prefix .. "owner:" .. l.lease.id }, {})
  end
  if not n then return nil, err end
  self.sent[want] = n
  st:step(0)
  if l.loop and not st:ready(n) then return false end
  self.sent[want] = nil
  local v, werr = st:wait(n)
  if v == nil and werr then return nil, werr end
  return I.answer(A.named(v), want, "--store " .. l.where)
end

return A
