-- The key's token bucket and create_limit's rule: a key's object (key.lua) has one.  A remote backend
-- (b:use: Redis, nginx's dict) is asked first; when it cannot answer, the process's own bucket stands in.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
-- spend.lua, loaded at its first use (a spend limit set, or reservations read back), as the optional layers are
local function Spend() return require "starvideos.spend" end

local B = {}
B.__index = B

-- Plain Lua 5.1, as Redis runs it.  take: the bucket as one number, the time the next token is due
-- in full (GCRA), a token every PER / rate s, a burst of `burst` (default a second's worth, one at least) -> the new
-- tat and 0, or tat and the wait; a tat further ahead than the burst and a second (a store's clock stepped back:
-- Redis' TIME behind the time it kept) is repaired to now, not waited out.
-- recent: the key's last second ('win': "time count ..." oldest first): no more than the rate's whole tokens (one
-- at least) in any PER s (a second and 50 ms to spare for the way to the service: issue 55, 12) -> 0 or the wait,
-- and what granted adds a token to.  A token's time there is its slot in the bucket (tat), not when it went: a
-- burst's tokens leave the window one slot after another, so that the next come one at a time, not all at once.
-- Up to RING a second, each token has its own time; above, RING groups of rate / RING, each counted until its
-- newest token leaves (a few fewer in a second, never more).  A time further ahead than PER (a clock stepped back)
-- counts as now + PER.
-- limit: at most count creates in any per seconds (times: the window's, newest first) -> 0, or the wait.
-- share: a token of the key's bucket (kv's 'tat') for a tenant (an id; "" none), fairly shared between the
-- tenants waiting: n, those that asked in this window (a second; more below 2 tokens a second) or the last, each
-- held to rate / n by a bucket of its own ('fair:t:<tenant>'), so that one that asks for thousands leaves the
-- others their share -> 0 (taken) or the wait; sharers: that n.  kv: get(k), set(k, v, ttl), add(k, ttl)
-- (whether it was new), incr(k, ttl), the key's store (this process's table, nginx's dict, Redis).
-- hold: the service said none is left for secs (a rate limit's reset, a 429's Retry-After), at most `most` s (a
-- longer one is a malformed header's: capped) -> no token before now + secs, the latest said kept; held: the seconds
-- left of the hold at now, or nil.  One rule, where the budget is kept: this process, nginx's dict, Redis' script.
B.RULES = [[
local function hold(kv, now, secs, most)
  if secs > most then secs = most end
  local untl = now + secs
  if untl > (tonumber(kv.get('hold')) or 0) then kv.set('hold', untl, secs + 1) end
end
local function held(kv, now)
  local untl = tonumber(kv.get('hold'))
  if untl and untl > now then return untl - now end
end
local PER, RING = 1.05, 64
local function take(tat, now, rate, burst)
  local gap = PER / rate
  burst = burst or (rate > 1 and rate or 1)
  if tat > now + burst * gap + 1 then tat = now end
  local due = tat - (burst - 1) * gap
  if now < due then return tat, due - now end
  return (tat > now and tat or now) + gap, 0
end
local function recent(kv, now, rate)
  local most, times, counts, n = math.max(1, math.floor(rate)), {}, {}, 0
  for xs, cs in string.gmatch(kv.get('win') or '', '(%S+) (%S+)') do
    local x, c = math.min(tonumber(xs), now + PER), tonumber(cs)
    if x > now - PER then times[#times + 1], counts[#counts + 1], n = x, c, n + c end
  end
  local i, wait = 0, 0
  while n >= most do i, n = i + 1, n - counts[i + 1] end
  if i > 0 then wait = math.max(times[i] + PER - now, 0.000001) end
  return wait, times, counts, math.ceil(most / RING)
end
local function granted(kv, now, times, counts, g)
  local k = #times
  if k > 0 and counts[k] < g then times[k], counts[k] = now, counts[k] + 1 else times[k + 1], counts[k + 1] = now, 1 end
  local parts = {}
  for i = 1, #times do parts[i] = string.format('%.6f %d', times[i], counts[i]) end
  kv.set('win', table.concat(parts, ' '), 2 * PER + 1)
end
local function limit(times, now, count, per)
  if #times < count then return 0 end
  local wait = times[count] + per - now
  return wait > 0 and wait or 0.000001
end
local function sharers(kv, now, rate)
  local w = math.floor(now / (2 / rate))
  return math.max(tonumber(kv.get('fair:n:' .. w)) or 1, tonumber(kv.get('fair:n:' .. (w - 1))) or 1)
end
local function share(kv, tenant, now, rate)
  local window = 2 / rate
  local w = math.floor(now / window)
  if kv.add('fair:seen:' .. w .. ':' .. tenant, 2 * window) then kv.incr('fair:n:' .. w, 2 * window) end
  local n = sharers(kv, now, rate)
  local mine, wait = take(tonumber(kv.get('fair:t:' .. tenant)) or 0, now, rate / n, n > 1 and 1 or nil)
  local tat, key_wait = take(tonumber(kv.get('tat')) or 0, now, rate)
  local full, times, counts, g = recent(kv, now, rate)
  wait = math.max(wait, key_wait, full)
  if wait > 0 then return wait end
  kv.set('tat', tat, tat - now + 1)
  kv.set('fair:t:' .. tenant, mine, mine - now + 1)
  granted(kv, tat - PER / rate, times, counts, g)
  return 0
end
]]
local limit, share, sharers, hold_rule, held_rule, PER = (rawget(_G, "loadstring") or load)(B.RULES
  .. "return limit, share, sharers, hold, held, PER")()
B.limit_rule, B.share_rule, B.hold_rule, B.held_rule, B.PER = limit, share, hold_rule, held_rule, PER

B.MAX_HOLD = 3600 -- seconds: the longest hold the service is believed (docs/polling.md, "Rate limits")

local CLAIM = 0.05 -- a waiting create's hold on the token due, past it
local SWEEP = 1024 -- values set in a process's store between two sweeps of those expired

-- A store of values that expire, as the rules read one (kv), on the clock kv.now.
function B.store()
  local kv, values, sets = { now = 0 }, {}, 0
  function kv.get(k)
    local e = values[k]
    if e and e[2] > kv.now then return e[1] end
    return nil -- (a value: tonumber takes it)
  end
  function kv.set(k, v, ttl)
    sets = sets + 1
    if sets % SWEEP == 0 then
      for name, e in pairs(values) do if e[2] <= kv.now then values[name] = nil end end
    end
    values[k] = { v, kv.now + ttl }
  end
  function kv.add(k, ttl)
    if kv.get(k) ~= nil then return false end
    kv.set(k, true, ttl)
    return true
  end
  function kv.incr(k, ttl) kv.set(k, (tonumber(kv.get(k)) or 0) + 1, ttl) end
  return kv
end

-- A bucket of `rate` tokens a second (b:set_rate changes it).
function B.new(rate)
  return setmetatable({ rate = rate, kv = B.store(), creates = {}, remote = false, lines = {}, spend = B.store() },
    B)
end

function B:set_rate(rate) self.rate = rate end

-- Where the tokens come from first: remote:take(t, obj, tenant) -> nil (taken),
-- a time to come back (and true when it is a hold's end: B:hold; and true again when it is no token's time, only
-- when to ask again: the store's answer, a lock), or false (it cannot answer: the process's own bucket).
function B:use(remote) self.remote = self.remote or remote end

-- The id of a tenant in the rules' keys (nil: "", no tenant).
function B.tenant_id(tenant) return tenant and core.hash(tenant) or "" end

-- The callers told to wait queue, creates and polls of each tenant in a line of their own, so that one caller
-- comes back for each token rather than every caller waiting (a hundred jobs on a full bucket woke a hundred
-- times a token): a line's newcomer is told a token's gap (its tenant's: n / rate, n tenants sharing the key's
-- bucket in this process) after the last caller waiting in it; one back
-- at its time that finds the token taken (another process's, another tenant's share, a clock's rounding) is told
-- the next at the line's front, a gap after the last one told so.  A line: {slots = caller -> the time it was
-- told, tail, front, swept}.
local WEAK = { __mode = "k" }
local EPSILON = 1e-9 -- past a token's time, told: the gaps added up, a slot may fall a rounding short of it

local function line_of(self, create, id)
  local name = (create and "c:" or "p:") .. id
  local l = self.lines[name]
  if not l then
    l = { slots = setmetatable({}, WEAK), tail = 0, front = 0, swept = -1, id = create and id }
    self.lines[name] = l
  end
  return l
end

-- The line's tail anew, at most once a second, or at once after a caller left (B:leave): a caller gone (done:
-- cancelled, ended at its deadline, a closed client's) or not back a second past its time holds no place.  A
-- caller's leaving also lets go of the creates' claim (due) past the last create still waiting.
local function sweep(self, l, t)
  if t < l.swept + 1 and not l.left then return end
  local tail = 0
  for o, at in pairs(l.slots) do
    if o.done or at < t - 1 then l.slots[o] = nil elseif at > tail then tail = at end
  end
  if l.left then
    local claim = l.id and self.kv.get("claim:" .. l.id)
    if claim and claim > tail + CLAIM then self.kv.set("claim:" .. l.id, tail + CLAIM, math.max(tail - t, 0) + 1) end
    l.front = math.min(l.front, tail)
  end
  l.tail, l.swept, l.left = tail, t, nil
end

-- A caller gone (its job ended: cancelled, done, its deadline) leaves its line at once: the callers after it are
-- told the tokens it would have had (issue 66, 10: 60 jobs cancelled held the next 9.6 s behind them).
function B:leave(obj)
  for _, l in pairs(self.lines) do
    if l.slots[obj] then l.slots[obj], l.left = nil, true end
  end
end

-- A token at t for tenant (nil: none named; share's fair share): nil when taken, else when one will be there.
-- A create holds the token due for it (CLAIM past it, should its job be cancelled) before the polls of its
-- tenant waiting in this process, a remote's token too (without, a fleet's polls took 87% of a shared second).
local function due(self, t, create, obj, id)
  local kv, creates = self.kv, self.lines["c:" .. id]
  if creates and creates.left then sweep(self, creates, t) end -- (a create gone: its claim with it)
  local claim = kv.get("claim:" .. id) or 0
  if not create and t < claim then return claim end -- a poll while a create of its tenant holds the next token
  local at, held, again = false, nil, nil
  if self.remote then at, held, again = self.remote:take(t, obj, id) end -- false: none, or one that cannot answer
  if at ~= false then return at, held, again end
  local wait = share(kv, id, t, self.rate)
  if wait > 0 then return t + wait end
end

local function token(self, t, create, obj, tenant)
  local id, kv = B.tenant_id(tenant), self.kv
  kv.now = t
  obj = type(obj) == "table" and obj or nil
  local at, held, again = due(self, t, create, obj, id)
  if not at then -- taken: out of its line
    local l = obj and self.lines[(create and "c:" or "p:") .. id]
    if l then l.slots[obj] = nil end
    return nil
  end
  if held or again then return at, held end -- (asked again then, not in a line)
  local l = line_of(self, create, id)
  local gap = (self.remote and 1 or sharers(kv, t, self.rate)) * PER / self.rate -- (a tenant's share of the rate)
  sweep(self, l, t)
  local mine = obj and l.slots[obj]
  if mine and t >= mine - gap / 2 then
    at = math.max(at, l.front + gap) + EPSILON
    l.front = at
  else
    at = math.max(at, l.tail + gap) + EPSILON
  end
  if at > l.tail then l.tail = at end
  if obj then l.slots[obj] = at end
  if create then kv.set("claim:" .. id, at + CLAIM, at - t + 1) end
  return at
end
-- nil when taken, else the time to come back and whether it is a hold's end (the service said none is left).
function B:token(t, create, obj, tenant)
  self.kv.now = t
  local left = held_rule(self.kv, t)
  local at, held
  if left then at, held = t + left, true else at, held = token(self, t, create, obj, tenant) end
  local o = obj and obj.cfg and obj.cfg.observe -- (the time waited, in metrics: observe/observer.lua)
  if o then o:budget(obj, t, at) end
  return at, held == true
end

-- The error of a request that would wait for a hold (B:token's: at, held) past its call's deadline (a job's:
-- generate, batch, wait), or with none (a lone create or query) past the longest wait the client takes, cfg's
-- max_retry_wait; else nil.  It ends at once rather than block until the reset, as a Retry-After over
-- max_retry_wait does.  Nothing was sent.
function B.too_long(t, at, held, cfg, what, deadline)
  if not held then return nil end
  local wait, most = at - t, cfg.max_retry_wait or 60
  if deadline and at <= deadline or not deadline and wait <= most then return nil end
  local e = errors.new_error("rate_limited", string.format("%s not sent: the service said no request of the key for "
    .. "%.0f s more (its rate limit), %s", what, wait, deadline and string.format("past the call's timeout (%.0f s "
    .. "left)", math.max(0, deadline - t)) or string.format("longer than max_retry_wait (%s s)", tostring(most))))
  e.retry_after = wait
  return e
end

-- The service said no request before t + seconds (a rate limit's reset with none left, a 429's Retry-After): no
-- token until then, in this process and in the remote's (every worker, every process of the store) when it keeps
-- holds.
function B:hold(t, seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds <= 0 then return end
  self.kv.now = t
  hold_rule(self.kv, t, seconds, B.MAX_HOLD)
  if self.remote and self.remote.hold then self.remote:hold(t, seconds) end
end

-- When the last poll of tenant waiting at t comes back: a patient caller (a batch's feeder) asks after it.
function B:queue_end(tenant, t)
  local l = self.lines["p:" .. B.tenant_id(tenant)]
  if not l then return 0 end
  sweep(self, l, t)
  return l.tail
end

-- A create at t counted against checks (ledger.lua's limits: {lim, name}s) on lists (lists[i]: check i's times,
-- oldest first; those out of its window dropped), and its price reserved in kv (ask: {lid, price, spec, tenant},
-- spend.lua's, or nil): true (t added to each) and the steps the reservation crossed (nil, why: its store could
-- not keep it, nothing counted); or false, the seconds until
-- the next create is allowed, the count in the window and the limit that holds; or false, nil, the total and
-- {spend = i, told}: spend limit i (of ask's spec) would be passed (told: its 100% to be said).  One decision:
-- nothing counted unless all allow it.
function B.count_on(lists, checks, t, kv, ask)
  if ask then
    kv.now = t
    local i, total, told = Spend().over(kv, ask.price, ask.spec, t, ask.lid)
    if i then return false, nil, total, { spend = i, told = told } end
  end
  for i, c in ipairs(checks) do
    local list, kept = lists[i], {} -- (kept: the times in the window, newest first, at most lim.count)
    while list[1] and list[1] < t - c.lim.per do table.remove(list, 1) end
    for j = #list, math.max(1, #list - c.lim.count + 1), -1 do kept[#kept + 1] = list[j] end
    local wait = limit(kept, t, c.lim.count, c.lim.per)
    if wait > 0 then return false, wait, #kept, c end
  end
  local crossed = ask and Spend().take(kv, ask.lid, ask.price, ask.spec, t, ask.tenant)
  if ask and crossed == nil then return nil, "the reservation could not be kept (nothing was counted)" end
  for _, list in ipairs(lists) do list[#list + 1] = t end
  return true, crossed
end

-- create_limit and tenant_limit with no ledger to count them, and spend_limit's reservation (ask): in the remote's
-- count when it keeps one (nginx's dict: every worker), else in this process.  B.count_on's answer (the remote's:
-- or nil, err).
function B:count_creates(checks, t, ask)
  if self.remote and self.remote.count_creates then return self.remote:count_creates(checks, t, ask) end
  local lists = {}
  for i, c in ipairs(checks) do
    lists[i] = self.creates[c.name] or {}
    self.creates[c.name] = lists[i]
  end
  return B.count_on(lists, checks, t, self.spend, ask)
end

-- Create lid's reservation settled (paid: its task made, or maybe) or released, where count_creates made it, or
-- its task known failed at `to` units (spend.lua's spend_end): true, or nil, err (nginx's dict not had).
-- spend_get: its store (get) for client:spend().
function B:end_spend(lid, paid, t, to)
  if self.remote and self.remote.end_spend then return self.remote:end_spend(lid, paid, to) end
  self.spend.now = t
  Spend().finish(self.spend, lid, paid, to)
  return true
end

-- A refusal kept by a create's content address with no ledger (refusal.lua; records/ledger.lua's refusal and
-- refused; name: the key's hash and the address): in the remote when it keeps them (nginx's dict: every worker),
-- else in this process (past its clients: a key's next client makes a new bucket).
local REFUSED = {}
function B:refusal(name)
  if self.remote and self.remote.refusal then return self.remote:refusal(name) end
  return REFUSED[name]
end
function B:refuse(name, e)
  if self.remote and self.remote.refuse then return self.remote:refuse(name, e) end
  REFUSED[name] = e
end

function B:spend_get(t)
  if self.remote and self.remote.spend_get then return self.remote:spend_get(t) end
  self.spend.now = t
  return self.spend.get
end

return B
