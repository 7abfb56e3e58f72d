-- The queue on a store (client:submit's, docs/keep-and-fleet.md "A batch bigger than one host"): entries not yet
-- created, each keyed by its out (its id: the hash of that key, as key:<hash> names the key's create), claimed by
-- the keepers of every host one at a time by the queue's rule (the ledger interface's queue.RULES: priority, then the
-- tenants' weights).  Keys, under the fleet's prefix (one hash slot; fleet/scripts.lua has the rest):
--   q:data       hash: id -> the entry (JSON: params, out, tenant, priority)
--   q:state      hash: id -> "q <score> <th>" queued, "c <keeper> <score> <th>" claimed, "d" its create asked (the
--                ledger's key:<id> follows it), "s" saved, "f" failed
--   q:t:<th>     sorted set: tenant th's line (th: the tenant's hash, "-" none), by score (queue.score: priority,
--                then its number from q:seq)
--   q:waiting    hash: th -> 1 while its line may hold entries; q:names: th -> the tenant's name
--   q:pass       hash: th -> its pass (the rule's), "~" -> the pass of the last entry taken
--   q:claimed    set of the ids claimed and not yet created; a claim whose keeper's lease (owner:<keeper>) is gone
--                goes back to its line, or to "d" when its key names a create (it was asked: never asked again)
--   q:batches    hash: batch id -> its size; q:b:<batch> set of its ids

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local Store = require "starvideos.fleet.store"
local cjson = require("cjson.safe").new()
local RULES = X.ledger.queue.RULES

local type, ipairs, tostring, tonumber = type, ipairs, tostring, tonumber

local M = {}

local SCRIPTS = {
  -- KEYS q:data, q:state, q:names, q:waiting, q:seq, q:batches, q:b:<batch> (more: each entry's line and key:<id>);
  -- ARGV batch, its size, then per entry id, th, tenant, priority, data: {queued, known}
  submit = RULES .. [=[
local rows = {}
for i = 3, #ARGV, 5 do
  rows[#rows + 1] = { ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], key('q:t:' .. ARGV[i + 1]),
    key('key:' .. ARGV[i]) }
end
local stop = needed()
if stop then return stop end
local queued, known = 0, 0
redis.call('HSETNX', KEYS[6], ARGV[1], ARGV[2])
for _, r in ipairs(rows) do
  redis.call('SADD', KEYS[7], r[1])
  if redis.call('HEXISTS', KEYS[2], r[1]) == 1 or redis.call('EXISTS', r[7]) == 1 then
    known = known + 1
  else
    local score = string.format('%.0f', queue_score(r[4], redis.call('INCR', KEYS[5])))
    redis.call('ZADD', r[6], score, r[1])
    redis.call('HSET', KEYS[1], r[1], r[5])
    redis.call('HSET', KEYS[2], r[1], 'q ' .. score .. ' ' .. r[2])
    redis.call('HSET', KEYS[3], r[2], r[3])
    redis.call('HSET', KEYS[4], r[2], '1')
    queued = queued + 1
  end
end
return { queued, known }
]=],
  -- KEYS q:data, q:state, q:names, q:waiting, q:pass, q:claimed, owner:<keeper> (more: lines, leases, key:<id>s);
  -- ARGV keeper, lease ms, then weights (tenant, weight)...: the claims of keepers gone let go of, then the next
  -- entry claimed for the keeper (its lease renewed): {id, data}, or {} when none is queued
  claim = RULES .. [=[
local me, weights, back, over, lines = ARGV[1], {}, {}, {}, {}
for i = 3, #ARGV - 1, 2 do weights[ARGV[i]] = tonumber(ARGV[i + 1]) end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  local owner, score, th = string.match(redis.call('HGET', KEYS[2], id) or '', '^c (%S+) (%S+) (%S+)$')
  if not owner then
    over[#over + 1] = id
  elseif owner ~= me then
    local lease, named, line = key('owner:' .. owner), key('key:' .. id), key('q:t:' .. th)
    if lease and named and line and redis.call('EXISTS', lease) == 0 then
      back[#back + 1] = { id, score, th, line, redis.call('EXISTS', named) == 1 }
      lines[th] = line
    end
  end
end
for _, th in ipairs(redis.call('HKEYS', KEYS[4])) do lines[th] = key('q:t:' .. th) end
local stop = needed()
if stop then return stop end
redis.call('SET', KEYS[7], '1', 'PX', tonumber(ARGV[2]))
for _, id in ipairs(over) do redis.call('SREM', KEYS[6], id) end
for _, b in ipairs(back) do
  redis.call('SREM', KEYS[6], b[1])
  if b[5] then redis.call('HSET', KEYS[2], b[1], 'd') else
    redis.call('ZADD', b[4], b[2], b[1])
    redis.call('HSET', KEYS[2], b[1], 'q ' .. b[2] .. ' ' .. b[3])
    redis.call('HSET', KEYS[4], b[3], '1')
  end
end
local heads, pass = {}, {}
for th, line in pairs(lines) do
  local h = redis.call('ZRANGE', line, 0, 0, 'WITHSCORES')
  if h[1] then
    local s = tonumber(h[2])
    local priority = math.floor(s / QUEUE_SCORE)
    heads[#heads + 1] = { tenant = th, priority = priority, seq = s - priority * QUEUE_SCORE, id = h[1], score = h[2],
      line = line }
    pass[th] = redis.call('HGET', KEYS[5], th)
  else
    redis.call('HDEL', KEYS[4], th)
  end
end
local vnow = tonumber(redis.call('HGET', KEYS[5], '~')) or 0
local best, after, taken = queue_pick(heads, pass, vnow, function(th)
  return weights[redis.call('HGET', KEYS[3], th) or ''] or 1
end)
if not best then return {} end
redis.call('ZREM', best.line, best.id)
redis.call('HSET', KEYS[5], best.tenant, string.format('%.17g', after), '~', string.format('%.17g', taken))
redis.call('HSET', KEYS[2], best.id, 'c ' .. me .. ' ' .. best.score .. ' ' .. best.tenant)
redis.call('SADD', KEYS[6], best.id)
return { best.id, redis.call('HGET', KEYS[1], best.id) or '' }
]=],
  -- KEYS q:state, q:claimed, q:waiting (more: the entry's line, for "q"); ARGV id, keeper, state ("d", "s", "f":
  -- while the keeper's claim, or after "d"; "q": its claim back to its line): 1, or 0 (not the keeper's)
  state = [=[
local st = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local owner, score, th = string.match(st, '^c (%S+) (%S+) (%S+)$')
local line = ARGV[3] == 'q' and th and key('q:t:' .. th)
local stop = needed()
if stop then return stop end
if owner ~= ARGV[2] and not (st == 'd' and ARGV[3] ~= 'q') then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[3] == 'q' then
  redis.call('ZADD', line, score, ARGV[1])
  redis.call('HSET', KEYS[1], ARGV[1], 'q ' .. score .. ' ' .. th)
  redis.call('HSET', KEYS[3], th, '1')
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
]=],
  -- KEYS q:batches, q:b:<batch>, q:state (more: key:<id> of each, the tasks they name); ARGV batch: {queued,
  -- created, saved, failed, total}, or 0 (no such batch).  A key's task read first, the entry's state after it.
  batch = [=[
local total = redis.call('HGET', KEYS[1], ARGV[1])
if not total then return 0 end
local rows = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local named = key('key:' .. id)
  local ref = named and redis.call('GET', named)
  local at = ref and string.sub(ref, 1, 1) == 'T' and key('task:' .. string.sub(ref, 2))
  rows[#rows + 1] = { redis.call('HGET', KEYS[3], id) or '', ref, at }
end
local stop = needed()
if stop then return stop end
local c = { 0, 0, 0, 0 } -- queued, created, saved, failed
for _, r in ipairs(rows) do
  local st, ref, at = r[1], r[2], r[3]
  local t = at and redis.call('HMGET', at, 'path', 'status')
  local i = 2
  if t and t[1] then i = 3
  elseif t and t[2] == 'failed' then i = 4
  elseif not ref then
    local s = string.sub(st, 1, 1)
    i = (s == 'q' or s == 'c') and 1 or s == 's' and 3 or s == 'f' and 4 or 2
  end
  c[i] = c[i] + 1
end
c[5] = #rows
return c
]=],
}
for name, body in pairs(SCRIPTS) do Store.define("queue_" .. name, body) end

local function message(err) return type(err) == "table" and err.message or tostring(err) end

local function names(l, list)
  local out = {}
  for i, n in ipairs(list) do out[i] = l.prefix .. n end
  return out
end

local function tenant_hash(tenant) return tenant and core.hash(tenant) or "-" end

-- The entries (submit.lua's: id, tenant, priority, data) queued for batch (of total entries): {queued, known}, or
-- nil, why (with the store's replicas: also when they did not acknowledge it, the entries queued on the primary).
function M.submit(l, batch, entries, total)
  l:flush()
  local keys = names(l, { "q:data", "q:state", "q:names", "q:waiting", "q:seq", "q:batches", "q:b:" .. batch })
  local args, lines, more = { batch, tostring(total) }, {}, {}
  for _, e in ipairs(entries) do
    local th = tenant_hash(e.tenant)
    if not lines[th] then lines[th], more[#more + 1] = true, l.prefix .. "q:t:" .. th end
    more[#more + 1] = l.prefix .. "key:" .. e.id
    for _, a in ipairs { e.id, th, e.tenant or "", tostring(e.priority), e.data } do args[#args + 1] = a end
  end
  keys.more = more
  local st = l.store
  local v, err, short = st:script("queue_submit", keys, args, true) -- (waited for: a failover keeps what it said)
  if type(v) ~= "table" then return nil, message(err) end
  if short then
    local what = "the queued entries of batch " .. batch
    return nil, message(st:refused_wait(what, short) or st:unreplicated(what, short, nil,
      "submit again (what is queued is known, never queued twice)"))
  end
  return { queued = tonumber(v[1]) or 0, known = tonumber(v[2]) or 0 }
end

-- Batch id's counts, nil (none such), or nil, why.
function M.batch(l, id)
  l:flush()
  local v, err = l.store:script("queue_batch", names(l, { "q:batches", "q:b:" .. id, "q:state" }), { id })
  if v == 0 then return nil end
  if type(v) ~= "table" then return nil, message(err) end
  return { queued = v[1], created = v[2], saved = v[3], failed = v[4], total = v[5] }
end

M.LINES = 64 -- the tenants' lines a ledger names in its claims at most (more: the script asks for them)

-- The next entry claimed for keeper k (weights: tenant_weights): {id, params, out, tenant, priority, th}, false
-- (none queued), or nil, why.  The lines of the tenants its claims took from are named in its next claims (keys.more:
-- the script reads every waiting tenant's line; one it was not given it asks for, a round trip more).
function M.claim(l, k, weights)
  if k.closed then return nil, "the keeper is closed" end
  local keys = names(l, { "q:data", "q:state", "q:names", "q:waiting", "q:pass", "q:claimed", "owner:" .. k.id })
  local lines = l.queue_lines or {} -- (a list of the lines' keys, and th -> true)
  l.queue_lines, keys.more = lines, lines
  local args = { k.id, tostring(l.lease_ms) }
  for tenant, w in pairs(weights or {}) do args[#args + 1], args[#args + 2] = tenant, string.format("%.17g", w) end
  local v, err = l.store:script("queue_claim", keys, args)
  if type(v) ~= "table" then return nil, message(err) end
  if not v[1] then return false end
  local e = cjson.decode(v[2]) or {}
  local th = tenant_hash(e.tenant)
  if not lines[th] and #lines < M.LINES then lines[th], lines[#lines + 1] = true, l.prefix .. "q:t:" .. th end
  return { id = v[1], params = e.params, out = e.out, tenant = e.tenant, priority = e.priority, th = th }
end

-- Entry e's state told by keeper k (the queue's states above); whether written (nil, why: the store failed, the
-- claim lapses to another keeper with k's lease).
function M.state(l, k, e, state)
  local keys = names(l, { "q:state", "q:claimed", "q:waiting" })
  keys.more = state == "q" and { l.prefix .. "q:t:" .. e.th } or nil
  local v, err = l.store:script("queue_state", keys, { e.id, k.id, state })
  if v == nil then return nil, message(err) end
  return v == 1
end

return M
