-- The key's budget, shared by the clients of one (base URL, API key) in a process: its
-- limits, its bucket, create_limit's rule, births and shared work.  A remote backend
-- (b:use) is asked first; when it cannot answer, the process's own bucket stands in.

local core = require "starvideos.core"

local setmetatable, pairs, next, tostring, load, math_min, string_format =
  setmetatable, pairs, next, tostring, load, math.min, string.format

local B = {}
B.__index = B

-- Plain Lua 5.1, as Redis runs it.  take: the bucket as one number, the time the next token is due
-- in full (GCRA), a burst of a second's worth (one at least) -> the new tat and 0, or tat and the wait.
-- limit: at most count creates in any per seconds (times: the window's, newest first) -> 0, or the wait.
B.RULES = [[
local function take(tat, now, rate)
  local gap = 1 / rate
  local burst = rate > 1 and rate or 1
  local due = tat - (burst - 1) * gap
  if now < due then return tat, due - now end
  return (tat > now and tat or now) + gap, 0
end
local function limit(times, now, count, per)
  if #times < count then return 0 end
  local wait = times[count] + per - now
  return wait > 0 and wait or 0.000001
end
]]
local take, limit = (rawget(_G, "loadstring") or load)(B.RULES .. "return take, limit")()
B.take_rule, B.limit_rule = take, limit

local BORN_KEEP = 4096 -- births remembered per key
local CLAIM = 0.05     -- a waiting create's hold on the token due, past it

local budgets = {}                                       -- key -> budget, for the process's life
local seam_budgets = setmetatable({}, { __mode = "v" }) -- a custom transport's, while in use

-- The store's name of a key: a hash of the base URL and the API key's hash, the same in every process.
function B.hash_of(base_url, api_key)
  return core.hash(tostring(base_url) .. "\0" .. core.hash(api_key or ""))
end

-- The budget of a client's key (cfg with its api_key still in it), made by its first
-- client; b.hash is the store's name of the key, b.key the process's (a custom transport's apart).
function B.for_client(cfg)
  local hash = B.hash_of(cfg.base_url, cfg.api_key)
  local key = cfg.transport and hash .. "\0" .. tostring(cfg.transport) or hash
  local registry = cfg.transport and seam_budgets or budgets
  local b = registry[key]
  if not b then
    b = setmetatable({ key = key, hash = hash,
      rate = cfg.requests_per_second, conns = cfg.max_connections, tat = 0, told = 0, claim = 0,
      members = setmetatable({}, { __mode = "k" }), listeners = setmetatable({}, { __mode = "k" }),
      born_at = {}, born_ring = {}, born_next = 1, creates = {}, shared = {}, remote = false, clock_at = 0,
      skew = false }, B)
    registry[key] = b
  end
  return b
end

-- A client joins (until leave): the key's limits worked out again, each loop told.
function B:join(cfg)
  self.members[cfg] = true
  self:rejoin(true)
end

function B:leave(cfg)
  if not self.members[cfg] then return end
  self.members[cfg] = nil
  self:rejoin(false)
end

function B:listen(obj) self.listeners[obj] = true end
function B:unlisten(obj) self.listeners[obj] = nil end

function B:rejoin(joining)
  local rate, conns
  for cfg in pairs(self.members) do
    rate = math_min(rate or cfg.requests_per_second, cfg.requests_per_second)
    conns = math_min(conns or cfg.max_connections, cfg.max_connections)
  end
  if not rate then return end -- none left: the budget waits for the next client as it is
  self.rate, self.conns = rate, conns
  for obj in pairs(self.listeners) do obj:limit(conns, joining) end
end

-- The live clients' cfgs, for a warning to each (their on_event).
function B:warn(message)
  for cfg in pairs(self.members) do
    local on_event = cfg.on_event
    if on_event then on_event { type = "warning", message = message } end
  end
end

local SKEW = 60 -- seconds: how often the service's clock is looked at, and a skew worth a warning

-- The service's clock against ours from its answers' Date (tr:clock()): `skew`, its
-- time minus ours, dates webhooks (notify.lua); over SKEW a warning, once.
function B:clock(tr, t)
  self.clock_at = t + SKEW
  local skew = tr.clock and tr:clock()
  if not skew then return end
  self.skew = skew
  if (skew > SKEW or -skew > SKEW) and not self.skew_told then
    self.skew_told = true
    self:warn(string_format("this clock is %.0f s %s the service's (the Date of its answers): webhook timestamps "
      .. "use the service's time", skew < 0 and -skew or skew, skew < 0 and "ahead of" or "behind"))
  end
end

-- Where the key's tokens come from first: remote:take(t, obj) -> nil (taken),
-- a time to come back, or false (it cannot answer: the process's own bucket).
function B:use(remote)
  if not self.remote then self.remote = remote end
end

-- A token of the key at t: nil when taken, else when one will be there.  A create holds the
-- token due for it (CLAIM past it, should its job be cancelled) before the polls waiting;
-- callers told to wait get times a microsecond apart, so they come back in turn.
function B:token(t, create, obj)
  local at = self.remote and self.remote:take(t, obj) -- false: no remote, or one that cannot answer
  if at ~= false then return at end
  if create or t >= self.claim then
    local tat, wait = take(self.tat, t, self.rate)
    if wait == 0 then self.tat = tat; return nil end
    at = t + wait
  else
    at = self.claim -- a poll while a create holds the next token
  end
  if at <= self.told then at = self.told + 1e-6 end
  self.told = at
  if create then self.claim = at + CLAIM end
  return at
end

-- When the last caller told to wait comes back: a patient caller (a batch's feeder) asks after it.
function B:queue_end() return self.told end

-- create_limit in this process (no ledger counts it): true, or false, the seconds
-- until the next create is allowed and the count in the window.
function B:count_create(lim, t)
  local creates, kept = self.creates, {}
  while creates[1] and creates[1] < t - lim.per do table.remove(creates, 1) end -- out of the window
  for i = #creates, math.max(1, #creates - lim.count + 1), -1 do kept[#kept + 1] = creates[i] end
  local wait = limit(kept, t, lim.count, lim.per)
  if wait > 0 then return false, wait, #kept end
  creates[#creates + 1] = t
  return true
end

-- born(id) -> when this process's create of task id was answered, or nil; born(id, t) records it.
function B:born(id, t)
  if t == nil then return self.born_at[id] end
  local old = self.born_ring[self.born_next]
  if old then self.born_at[old] = nil end
  self.born_ring[self.born_next], self.born_at[id] = id, t
  self.born_next = self.born_next % BORN_KEEP + 1
end

-- Work any loop of the key may do a slice of each turn (obj:turn() -> done),
-- so that it goes on when the client that began it closes.
function B:share(obj) self.shared[obj] = true end

function B:sharing() return next(self.shared) ~= nil end

-- One turn of the shared work.
function B:turn()
  for obj in pairs(self.shared) do
    if obj:turn() then self.shared[obj] = nil end
  end
end

return B
