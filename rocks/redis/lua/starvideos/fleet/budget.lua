-- The key's budget in Redis: bucket.lua's rules as scripts on the server's clock.  Never waited for: the
-- asker comes back (loop:await).  Redis failing: the host's dict, else the process's own bucket,
-- stands in, said once, for AGAIN s.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local Bucket = X.ledger.budget
local Store = require "starvideos.fleet.store"

local F = {}
F.__index = F

local AGAIN = 1 -- seconds

-- Each answers a string (Redis truncates a Lua number): "0..." allowed, else the seconds to wait ("h" before them:
-- a hold's, budget_hold).
-- redis.replicate_commands lets a script write after TIME on Redis 3.2 to 4.
local HEAD = "if redis.replicate_commands then redis.replicate_commands() end\n"
  .. "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1e6\n" .. Bucket.RULES
-- The rules' store (kv) on the keys declared (F.keys: the key's bucket, its window, its hold, the tenant's bucket and
-- window; fleet/declared.lua).  The names of a window (w, on Redis' clock: 'fair:n:<w>', 'fair:seen:<w>:<tenant>')
-- the client cannot know: each kept on a key of its own with the window written before its value, one that is not
-- the one asked for read as none (the rules read the window now and the one before: fair:n:<w mod 2>).
local KV = [[
local function ms(ttl) return math.ceil(ttl * 1000) end
local function slot(k)
  local w, tenant = string.match(k, '^fair:seen:(%-?%d+):(.*)$')
  if w then return 'fair:seen:' .. tenant, w end
  w = string.match(k, '^fair:n:(%-?%d+)$')
  if w then return 'fair:n:' .. string.format('%d', tonumber(w) % 2), w end
  return k
end
local function get(k)
  local label, w = slot(k)
  local v = redis.call('GET', declared(label))
  if not v then return nil end -- (Redis' nil is false in a script: read as present, no tenant was ever counted)
  if not w then return v end
  local vw, x = string.match(v, '^(%S+) (.*)$')
  if vw == w then return x end
  return nil -- (another window's: none, a value still, as tonumber() takes it)
end
local function set(k, v, ttl)
  local label, w = slot(k)
  v = type(v) == 'string' and v or string.format('%.17g', v)
  redis.call('SET', declared(label), w and w .. ' ' .. v or v, 'PX', ms(ttl))
end
local kv = {
  get = get, set = set,
  add = function(k, ttl)
    if get(k) ~= nil then return false end
    set(k, '1', ttl)
    return true
  end,
  incr = function(k, ttl) set(k, (tonumber(get(k)) or 0) + 1, ttl) end,
}
]]
-- ARGV[1] the rate, ARGV[2] the tenant's id ('' none): a token ("0..."), the wait, or a hold's ("h" before it).
Store.define("budget_token", HEAD .. KV .. [[
local left = held(kv, now)
if left then return string.format('h%.6f', left) end
return string.format('%.6f', share(kv, ARGV[2] or '', now, tonumber(ARGV[1])))
]])
-- The service said none is left for ARGV[1] s, at most ARGV[2] s (the rules' hold, on Redis' clock): budget_token
-- gives no token before its end.
Store.define("budget_hold", HEAD .. KV .. [[
hold(kv, now, tonumber(ARGV[1]), tonumber(ARGV[2]))
return 'ok'
]])
-- create_limit's and tenant_limit's count on `key` (a sorted set of times): creates_wait, 0 (room for one) or
-- the seconds to wait; creates_add counts one now; count_create both (0: counted).  keyed's (fleet/scripts.lua).
F.CREATE = HEAD .. [[
local function creates_wait(key, count, per)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.6f', now - per))
  local times = {}
  for i, v in ipairs(redis.call('ZREVRANGEBYSCORE', key, '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, count)) do
    if i % 2 == 0 then times[#times + 1] = tonumber(v) end
  end
  return limit(times, now, count, per)
end
local function creates_add(key, per)
  redis.call('ZADD', key, string.format('%.6f', now), string.format('%.6f-%d', now, redis.call('ZCARD', key)))
  redis.call('PEXPIRE', key, math.ceil(per * 1000) + 1000)
end
local function count_create(key, count, per)
  local wait = creates_wait(key, count, per)
  if wait == 0 then creates_add(key, per) end
  return wait
end
]]

-- (key_hash: never the key itself; in one hash slot)
function F.key(key_hash, what)
  return "starvideos:{" .. key_hash .. "}:" .. what
end

-- The keys budget_token and budget_hold touch (KV's), for tenant (an id, "" none).
function F.keys(key_hash, tenant)
  local keys = {}
  for i, what in ipairs { "tat", "hold", "win", "fair:n:0", "fair:n:1", "fair:t:" .. tenant, "fair:seen:" .. tenant } do
    keys[i] = F.key(key_hash, what)
  end
  return keys
end

-- fallback: nginx's dict, or nil.  asks[tenant]: {n = its script in flight, sending = since when it is being sent,
-- at = no token before then}.
function F.new(store, key, loop, fallback)
  return setmetatable({ store = store, key = key, loop = loop, fallback = fallback, asks = {} }, F)
end

local function failed(self, t, err, tenant)
  if err ~= true and not self.down then
    self.key:warn(string.format("%s: the key's budget is this process's own until it answers",
      type(err) == "table" and err.message or tostring(err)))
  end
  if err ~= true then self.down = t + AGAIN end
  if self.fallback then return self.fallback:take(t, nil, tenant) end
  return false
end

-- nil (a token taken for tenant, an id: bucket.lua's share), the time to come back (and whether it is a hold's end,
-- and whether it is only the store's answer awaited: B:use), or false (the process's own bucket).  One script in
-- flight per tenant; the others of that tenant wait for its answer, whose token is the waiter's that takes it
-- (store:take: inside nginx the coroutines of a worker share the ask).
function F:take(t, obj, tenant)
  tenant = tenant or ""
  local st, a = self.store, self.asks[tenant]
  if a and not (a.n or a.at or st:held(a.sending)) then a = nil end -- (its sender killed: inside nginx, aborted)
  if a and a.sending then
    return self.loop:await(obj, t), false, true
  elseif a and a.n then
    st:step(0)
    local got, first = st:take(a)
    if not got then return self.loop:await(obj, t), false, true end
    if not first then return self:take(t, obj, tenant) end -- (another waiter's token: the ask as it left it)
    local v, err = got[1], got[2]
    self.asks[tenant] = nil
    local hold = type(v) == "string" and v:sub(1, 1) == "h"
    local wait = tonumber(hold and v:sub(2) or v)
    if not wait and v ~= nil then err = st:error("the budget's script answered " .. tostring(v)) end
    if not wait then return failed(self, t, err, tenant) end
    if self.down then
      self.down = false
      self.key:warn("store " .. st.where .. " answers again: the key's budget is taken from it again")
    end
    if wait <= 0 then return nil end
    self.asks[tenant] = { at = t + wait, held = hold } -- no token before then: none of the tenant asks again
    return t + wait, hold
  elseif self.down and t < self.down then
    return failed(self, t, true, tenant)
  elseif a and t < a.at then
    return a.at, a.held
  end
  a = {}
  self.asks[tenant] = a -- (before the send, which yields inside nginx: one script in flight)
  local sent, err = st:send_for(a, "budget_token", F.keys(self.key.hash, tenant),
    { string.format("%.17g", self.key.bucket.rate), tenant })
  if not sent then
    if self.asks[tenant] == a then self.asks[tenant] = nil end
    return failed(self, t, err, tenant)
  end
  return self.loop:await(obj, t), false, true
end

-- What one member learned, for the fleet: no token for anyone of the key for `seconds` (bucket.lua's B:hold).
-- Sent and not waited for (its answer dropped); the store failing: the host's dict holds it, if there is one.
function F:hold(t, seconds)
  if self.fallback then self.fallback:hold(t, seconds) end
  if self.down and t < self.down then return end
  local n = self.store:send_script("budget_hold", F.keys(self.key.hash, ""), { string.format("%.3f", seconds),
    Bucket.MAX_HOLD })
  if n then self.store:forget(n) end
end

return F
