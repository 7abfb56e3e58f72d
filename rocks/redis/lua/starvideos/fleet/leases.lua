-- Leases and claims on a store: an owner id per process and key (until its last ledger closes) and per
-- keeper, each a key `owner:<id>` expiring after the lease, renewed every third of it.  A task whose
-- owner's key is gone is an orphan, claimed by a keeper in one script (fleet/scripts.lua), its number (fence)
-- one more.  A holder counts its lapses (starvideos.lease): what it held may have been claimed meanwhile (a
-- hold asks the store, confirm).  A ledger's own (ledger.leases = M.new(ledger)): its keepers, their claims
-- and the holds it asks.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local I = X.ledger -- (the ledger's interface)
local lists, rule = I.lists, I.lease

local type, ipairs, pairs, next, tostring, setmetatable = type, ipairs, pairs, next, tostring, setmetatable

local M = {}

local Lease = {}
Lease.__index = Lease

function M.message(err)
  return type(err) == "table" and err.message or tostring(err)
end

local function new()
  return setmetatable(rule.holder { id = core.random_id(), ask = false, identity = false }, Lease)
end

-- The process's lease of the key ("where prefix"), one more user of it (nothing sent yet).
function M.hold(key) return rule.hold(key, new) end

-- One user fewer: whether it was the last (its key is then the caller's to delete).
function Lease:release() return rule.release(self) end

-- The lease renewed, the store's identity answered (fleet/scripts.lua's lease): the script for id sent on
-- ledger's store (h: a renewal's ask, its answer shared: store:send_for), n, or nil, err.
local function send(ledger, id, h)
  local keys, args = M.lease_keys(ledger, id), { tostring(ledger.lease_ms) }
  if h then return ledger.store:send_for(h, "ledger_lease", keys, args) end
  return ledger.store:send_script("ledger_lease", keys, args)
end

function M.lease_keys(ledger, id) return { ledger.prefix .. "owner:" .. id, ledger.prefix .. "identity" } end

-- A renewal sent at `sent` answered at t (its lapse counted), with the store's identity (a reset the store's to
-- notice: every script checks it, fleet/store.lua).
function Lease:heard(identity, sent, t, ms)
  rule.answered(self, sent, t, ms)
  if type(identity) == "string" then self.identity = identity end
end

-- Renewed now (force), or when a third of it passed: true, or nil, err.
function Lease:renew(ledger, force)
  local t = core.now()
  if not force and not rule.due(self, t, ledger.lease_ms) then return true end
  local v, err = ledger.store:wait(send(ledger, self.id))
  if v == nil then return nil, err end
  self:heard(v, t, core.now(), ledger.lease_ms)
  return true
end

-- The async renewal (a loop's turn): sent when due, its answer taken when there (store:take: inside nginx the
-- process's lease is every client's of the worker, their coroutines waiting on one renewal).  Whether none in
-- flight.
function Lease:renew_async(ledger, t)
  local a = self.ask
  if a and not a.n and not a.st:held(a.sending) then a, self.ask = nil, nil end -- (its sender killed: aborted)
  if a then
    local got, first = a.st:take(a)
    if not got then return false end
    if first then
      self.ask = nil
      if got[1] ~= nil then
        self:heard(got[1], a.sent_at, t, ledger.lease_ms)
        ledger.queue:answered()
      end
    end
    return true
  end
  if not rule.due(self, t, ledger.lease_ms) or ledger.queue:down_now(t) then return true end
  a = { st = ledger.store, sent_at = t }
  self.ask = a -- (before the send, which yields inside nginx: one renewal in flight)
  local sent = send(ledger, self.id, a)
  if not sent then self.ask = nil; return true end
  return false
end

-- A timer that has the ledger take a turn every third of its lease, while it holds one.
function M.renewer(ledger, loop)
  local every = rule.part(ledger.lease_ms, rule.RENEW)
  local r = { advance = function(self, t)
    if ledger.closed or not ledger.lease then return end
    loop:turning(ledger)
    loop:at(t + every, self)
  end }
  loop:at(core.now() + every, r)
  return r
end

-- The ledger's leases: its keepers (weakly held: a keep gone, its keeper with it).
local Leases = {}
Leases.__index = Leases

function M.new(ledger)
  return setmetatable({ ledger = ledger, keepers = setmetatable({}, { __mode = "k" }) }, Leases)
end

-- The keepers open, in no order.
function Leases:each_keeper() return next, self.keepers end

local Keeper = rule.keeper({})
Keeper.__index = Keeper

function Keeper:close()
  if self.closed then return end
  self.closed = true
  self.leases.keepers[self] = nil
  self.ledger.store:call("DEL", self.ledger.prefix .. "owner:" .. self.id)
end

-- claims[id]: the record of a task claimed (as the store answered it), recorded again after a reset while carried.
-- (look: one that claims nothing, lease.lua's onlooker)
function Leases:keeper(look)
  if look then return rule.onlooker(self) end
  local ledger = self.ledger
  local k = setmetatable(rule.holder({ id = core.random_id(), ledger = ledger, leases = self, told = {}, carrying = {},
    again = {}, claims = {} }, core.now()), Keeper)
  self.keepers[k] = true
  local ok, err = ledger.store:wait(send(ledger, k.id))
  if ok == nil then return nil, M.message(err) end
  return k
end

-- The store asked whether the process still holds task id at its number (ledger.fences), polled (a job's turn,
-- a download's commit): nil (not answered yet), true (its holder's lease renewed with it), or false and
-- {by = the holder now, path = its file once saved} (or {timeout = true} once past the deadline).
local Hold = {}
Hold.__index = Hold

function Leases:confirm(id, deadline)
  local ledger = self.ledger
  local n, by = ledger.fences:holder(id)
  return n and setmetatable({ ledger = ledger, id = id, fence = n, by = by, deadline = deadline, retry = 0 }, Hold)
end

function Hold:drop()
  if self.n then self.ledger.store:forget(self.n) end
  self.n = nil
end

function Hold:poll()
  local l, t = self.ledger, core.now()
  local st = l.store
  if self.n then
    st:step(0)
    if not st:ready(self.n) then return nil end
    local v = st:result(self.n)
    self.n = nil
    if type(v) == "table" and v[1] == 1 and l.fences:renewed(self.id, self.sent) then -- (a late yes: asked again)
      return true
    elseif type(v) == "table" and v[1] == 0 then
      return false, { by = v[2], path = v[3] ~= "" and v[3] or nil, sha256 = v[4] ~= "" and v[4] or nil }
    end
    self.retry = t + (v == nil and 0.5 or 0) -- the store failing: asked again in a while
  end
  if self.deadline and t >= self.deadline then return false, { timeout = true } end
  if t >= self.retry then
    local keys = { l.prefix .. "task:" .. self.id, l.prefix .. "owner:" .. self.by.id }
    self.n, self.sent = st:send_script("ledger_hold", keys, { tostring(self.fence), tostring(l.lease_ms) }), t
    if not self.n then self.retry = t + 0.5 end
  end
  return nil
end

-- Claims for keeper k the unfinished tasks whose owner's lease is gone and its own due again ({id=, model=,
-- out=, part=, from=}), the orphaned creates (each once), false (never behind); or nil, err.
function Leases:orphans(k)
  local ledger = self.ledger
  if k.closed then return nil, "the keeper is closed" end
  local due, t = {}, core.now()
  for id in pairs(k.claims) do
    if not k.carrying[id] then k.claims[id] = nil end
  end
  for id, when in pairs(k.again) do
    if when <= t and not k.carrying[id] then
      due[#due + 1] = id
      k.again[id] = nil
    end
  end
  local v, err = ledger:read_sets({ "unfinished", "pending" }, k, due)
  if not v then return nil, err end
  rule.answered(k, t, core.now(), ledger.lease_ms) -- (the script renewed its lease)
  local tasks, pendings = {}, {}
  for i, h in ipairs(v[1]) do
    tasks[i] = lists.carried(h, h.part_dest, h.owner ~= "" and h.owner or nil)
    ledger.fences:take(h.id, tonumber(h.claimed), k)
    k.claims[h.id] = h
    ledger:knows(h.id, h.kind, h.key_hash)
  end
  for _, p in ipairs(v[2]) do
    if not k.told[p["local"]] then
      k.told[p["local"]] = true
      pendings[#pendings + 1] = p
    end
  end
  return tasks, pendings, false
end

-- The unfinished tasks and pending creates whose owner's lease is gone, as orphans would claim them now, claimed
-- by none (keep's dry run): tasks, pendings; or nil, err.
function Leases:orphaned()
  local v, err = self.ledger:read_sets({ "unfinished", "pending" }, { id = "?" })
  if not v then return nil, err end
  for i, h in ipairs(v[1]) do v[1][i] = lists.carried(h, h.part_dest, h.owner ~= "" and h.owner or nil) end
  return v[1], v[2]
end

-- What a keep cannot take yet: {tasks = the unfinished tasks and pending creates under another process's live
-- lease, owners = how many processes hold them, first, last = the seconds until the first and the last of their
-- leases lapse}, or nil, err.
function Leases:leased()
  local ledger = self.ledger
  ledger:flush()
  local v, err = ledger.store:script("ledger_leased", { ledger.prefix .. "unfinished", ledger.prefix .. "pending" },
    { ledger.lease and ledger.lease.id or "" })
  if type(v) ~= "table" then return nil, M.message(err) end
  return { tasks = tonumber(v[1]) or 0, owners = tonumber(v[2]) or 0, first = (tonumber(v[3]) or 0) / 1000,
    last = (tonumber(v[4]) or 0) / 1000 }
end

-- The queue's next entry claimed for keeper k, and an entry's state it tells (fleet/queued.lua).
function Leases:queued(k, weights) return require("starvideos.fleet.queued").claim(self.ledger, k, weights) end
function Leases:queue_state(k, e, state) return require("starvideos.fleet.queued").state(self.ledger, k, e, state) end

-- Claims for keeper k the owed webhooks whose owner's lease is gone: {wid=, task=, body=}; or nil, err.
function Leases:owed_orphans(k)
  if k.closed then return nil, "the keeper is closed" end
  local v, err = self.ledger:read_sets({ "owed" }, k)
  if not v then return nil, err end
  for i, r in ipairs(v[1]) do v[1][i] = { wid = r.wid, task = r.task, body = r.body } end
  return v[1]
end

return M
