-- The scripts of the ledger on a store (fleet/ledger.lua), so each change is
-- atomic.  `P` (an ARGV) is the key's prefix, for the keys named by a task or a kind.
-- Keys, all under "starvideos:{KEY}:" (KEY: key.lua's k.hash; one hash slot):
--   task:<id>       hash: id, model, duration, resolution, kind, out, owner, fence (1 at its
--                   create, one more at each claim: the holder's number), prompt_hash,
--                   prompt (its head), time, uncertain, status, error, path and bytes
--                   (downloaded), part and part_dest, tenant, cost; a settled one expires after DEFAULTS.retain s
--   unfinished      set of the ids neither downloaded nor failed
--   tasks           sorted set of the ids created, by tasks:seq (an expired one leaves when listed)
--   pend:<local>    hash: local, model, owner, out, time, prompt_hash, prompt, key, fp, body,
--                   tenant: a create sent whose answer did not come yet; pending: their set
--   gone:<local>    a create abandoned: its pending script, run late, writes nothing
--   owner:<id>      a lease: present while its owner renews it (PX lease)
--   identity        the store's: a random id written at its first use, checked by every script as it runs
--                   (fleet/identity.lua's GUARD, before the KEYS and ARGV below); a store that lost its data
--                   (FLUSHALL, an empty restart) has none, then a new one
--   samples:<kind>  list of "took within", newest first, at most SAMPLES; kinds: kind -> model
--   owed:<wid>      hash: wid, task, body, owner: a webhook event owed; owed: their set
--   key:<hash>      what a key (docs/batch.md) names: "L<local>" a create sent, "T<id>" its task
--   creates, tat    fleet/budget.lua's: create_limit's count, the bucket
--   tcreates:<hash> tenant_limit's count of the tenant whose hash it is
--   spend:*         spend_limit's reservations (spend.lua's rule: spend:sp:, held:, res:, told:, who:)
-- A created record moves the local from pending to the task at once; a claim is one script (two keepers
-- never take one task).  Reads go through the sets, never every task.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local Store = require "starvideos.fleet.store"
local FleetBudget = require "starvideos.fleet.budget" -- (CREATE: create_limit's count)
local FIRST = string.format("local FIRST = '%d'\n", require("starvideos.lease").FIRST) -- (a task's first number)

-- spend.lua's rule on the store: its kv under P .. 'spend:', values kept as strings (spend_kv(P)).
local SPEND = require("starvideos.spend").RULES .. [[
local function spend_kv(P)
  local pre = P .. 'spend:'
  local function ms(ttl) return math.ceil(ttl * 1000) end
  return {
    get = function(k) return redis.call('GET', pre .. k) end,
    set = function(k, v, ttl)
      redis.call('SET', pre .. k, type(v) == 'string' and v or string.format('%.17g', v), 'PX', ms(ttl))
    end,
    add = function(k, ttl) return redis.call('SET', pre .. k, '1', 'NX', 'PX', ms(ttl)) ~= false end,
  }
end
local function spend_field(name)
  for i = 9, #ARGV - 1, 2 do if ARGV[i] == name then return ARGV[i + 1] end end
end
]]

-- What key:<hash> (at key) names, asked by the owner key me (P: the prefix): a create still pending ({'pending',
-- local, time}), a task not failed ({'task', id, fp, body, bytes, model, '1' when another live process holds it,
-- sha256, path: where its video was saved, the rules' `whole` of an object out});
-- and when `all` (a peek), a create abandoned ({'gone'}) or a task failed ({'failed', id}).
local KEY_NAMES = [[
local function key_names(key, P, me, all)
  local ref = redis.call('GET', key)
  if ref and ref:sub(1, 1) == 'L' then
    local p = redis.call('HMGET', P .. 'pend:' .. ref:sub(2), 'local', 'time')
    if p[1] then return { 'pending', p[1], p[2] or '' } end
    if all then return { 'gone' } end
  elseif ref then
    local t = redis.call('HMGET', P .. 'task:' .. ref:sub(2), 'status', 'fp', 'body', 'bytes', 'model', 'owner',
      'sha256', 'path')
    if all and t[1] == 'failed' then return { 'failed', ref:sub(2) } end
    if t[2] and t[1] ~= 'failed' then
      local holder = t[6] and P .. 'owner:' .. t[6]
      local alive = holder and holder ~= me and redis.call('EXISTS', holder) == 1
      return { 'task', ref:sub(2), t[2], t[3] or '', t[4] or '', t[5] or '', alive and '1' or '', t[7] or '',
        t[8] or '' }
    end
  end
end
]]

-- The script of a task's field f: ARGV[1] its value, '' deletes it (0: no record).
local function field(f)
  return (([[
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'F') else redis.call('HSET', KEYS[1], 'F', ARGV[1]) end
return 1
]]):gsub("'F'", "'" .. f .. "'"))
end

local SCRIPTS = {
  -- KEYS a record, the set of its ids[, gone:<local>, owner:<id>, creates, tcreates:<tenant's hash>[, key:<hash>]];
  -- ARGV its id, fresh ('1' or ''), P, lease ms, create_limit's count and per, tenant_limit's count and per
  -- ('' none), field, value, ...  A create's asking (fleet/ask.lua) in one round trip: its owner's lease renewed;
  -- nothing written (0) when the create was abandoned (its script run late); with a key, what it names
  -- (KEY_NAMES), whatever the limits, counted in none; create_limit's and tenant_limit's counts ({'limited',
  -- seconds, '' or 't'} when one is full: counted in neither); else the record written.  pending and owe: the
  -- same, keyless
  keyed = FleetBudget.CREATE .. KEY_NAMES .. SPEND .. [[
if KEYS[4] then redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[4])) end
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local named = KEYS[7] and ARGV[2] ~= '1' and key_names(KEYS[7], ARGV[3], KEYS[4])
if named then return named end
local counts = {}
if ARGV[5] ~= '' then counts[1] = { KEYS[5], tonumber(ARGV[5]), tonumber(ARGV[6]), '' } end
if ARGV[7] ~= '' then counts[#counts + 1] = { KEYS[6], tonumber(ARGV[7]), tonumber(ARGV[8]), 't' } end
for _, c in ipairs(counts) do
  local wait = creates_wait(c[1], c[2], c[3])
  if wait > 0 then return { 'limited', string.format('%.6f', wait), c[4] } end
end
local price, spec, at, kv = spend_field('price'), spend_field('spend'), spend_field('time'), nil
price, at = price and tonumber(price), at and tonumber(at)
if price and spec and at then
  kv = spend_kv(ARGV[3])
  local i, total, told = spend_over(kv, price, spec, at, ARGV[1])
  if i then return { 'spend', tostring(i), string.format('%d', total), told and '1' or '' } end
end
for _, c in ipairs(counts) do creates_add(c[1], c[3]) end
local crossed = kv and spend_take(kv, ARGV[1], price, spec, at, spend_field('tenant'))
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('SADD', KEYS[2], ARGV[1])
if KEYS[7] then redis.call('SET', KEYS[7], 'L' .. ARGV[1]) end
if crossed and crossed ~= '' then return { 'spent', crossed } end
return 1
]],
  -- KEYS key:<hash>; ARGV P, the asker's owner key ('' none): what the key names (KEY_NAMES, all), or 0; nothing
  -- written
  peek = KEY_NAMES .. "return key_names(KEYS[1], ARGV[1], ARGV[2], true) or 0",
  -- KEYS task:<id>, unfinished, pend:<local>, pending, tasks[, key:<hash>]; ARGV id, local ('' none), fields
  -- (with fence: a keeper's claim, recorded again after a reset)
  created = FIRST .. SPEND .. [[
local held = redis.call('HMGET', KEYS[1], 'owner', 'fence') -- (written again: a claim since stays)
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if held[2] then redis.call('HSET', KEYS[1], 'owner', held[1] or '', 'fence', held[2])
else redis.call('HSETNX', KEYS[1], 'fence', FIRST) end -- (a keeper's, recorded again: its claim's number)
if not redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  redis.call('ZADD', KEYS[5], redis.call('INCR', KEYS[5] .. ':seq'), ARGV[1])
end
if KEYS[6] then redis.call('SET', KEYS[6], 'T' .. ARGV[1]) end
local done = redis.call('HMGET', KEYS[1], 'path', 'status')
if not done[1] and done[2] ~= 'failed' then redis.call('SADD', KEYS[2], ARGV[1]) end
if ARGV[2] ~= '' then
  redis.call('DEL', KEYS[3])
  redis.call('SREM', KEYS[4], ARGV[2])
  spend_end(spend_kv(string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[1] - 5)), ARGV[2], true) -- (P: task:<id>'s prefix)
end
return 1
]],
  -- KEYS a record, the set of its ids[, gone:<local>]; ARGV its id[, retain]: the record
  -- gone.  abandoned: pend:<local>, pending, gone:<local> (DEFAULTS.retain s); delivered: owed:<wid>, owed
  abandoned = SPEND .. [[
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'EX', tonumber(ARGV[2])) end
if ARGV[3] then spend_end(spend_kv(ARGV[3]), ARGV[1], false) end
return 1
]],
  -- KEYS task:<id>, unfinished, kinds; ARGV id, status, took ('' none), within, P, samples kept, retain,
  -- error ('' none)
  status = [[
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[8] and ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[8]) end
if ARGV[2] == 'failed' then
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
end
if ARGV[3] ~= '' then
  local r = redis.call('HMGET', KEYS[1], 'kind', 'model')
  if r[1] then
    local list = ARGV[5] .. 'samples:' .. r[1]
    redis.call('LPUSH', list, ARGV[3] .. ' ' .. ARGV[4])
    redis.call('LTRIM', list, 0, tonumber(ARGV[6]) - 1)
    redis.call('HSET', KEYS[3], r[1], r[2] or '')
  end
end
return 1
]],
  -- KEYS task:<id>, unfinished; ARGV id, path, retain, bytes ('' unknown), P, sha256 ('' unknown), fence ('' any),
  -- etag ('' none):
  -- written only by the task's holder at that number (0: another holds it, or no record)
  downloaded = FIRST .. [[
local fence = redis.call('HGET', KEYS[1], 'fence')
if redis.call('EXISTS', KEYS[1]) == 0 or (ARGV[7] ~= '' and (fence or FIRST) ~= ARGV[7]) then return 0 end
redis.call('HSET', KEYS[1], 'path', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'bytes', ARGV[4]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'sha256', ARGV[6]) end
if ARGV[8] and ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'etag', ARGV[8]) end
local key = redis.call('HGET', KEYS[1], 'key_hash')
if key then redis.call('EXPIRE', ARGV[5] .. 'key:' .. key, tonumber(ARGV[3])) end
redis.call('HDEL', KEYS[1], 'part', 'part_dest', 'upload')
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
]],
  -- KEYS task:<id>; ARGV an upload's record ('' : it ended) (storage/object.lua); a task's reference objects ('' :
  -- none left) (storage/refs.lua)
  upload = field("upload"),
  refs = field("refs"),
  -- KEYS task:<id>; ARGV part, part_dest
  part = [[
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'part', ARGV[1], 'part_dest', ARGV[2])
return 1
]],
  -- KEYS sets of ids (tasks: the sorted one); ARGV P, keeper id ('' none; '?' a look: no keeper), lease ms, the
  -- keeper's process's lease ('' none), ids due again...: per set its records, flat (an id whose record expired
  -- leaves tasks).  With a keeper (its lease renewed) or a look: only those whose owner's lease is gone (never its
  -- own process's) or its own tasks due again, claimed for the keeper (not pendings; a look claims nothing).
  records = FIRST .. [=[
local P, me, alive, due, out = ARGV[1], ARGV[2], {}, {}, {}
local claim = me ~= '' and me ~= '?'
local RECORD = { tasks = 'task:', unfinished = 'task:', pending = 'pend:', owed = 'owed:' }
if claim then redis.call('SET', P .. 'owner:' .. me, '1', 'PX', tonumber(ARGV[3])) end
for i = 5, #ARGV do due[ARGV[i]] = true end
local function orphan(owner, id)
  if me == '' then return true end
  if owner == me then return due[id] end
  if owner == ARGV[4] then return false end -- (this process lives: its jobs carry its tasks)
  if not owner or owner == '' then return true end
  if alive[owner] == nil then alive[owner] = redis.call('EXISTS', P .. 'owner:' .. owner) == 1 end
  return not alive[owner]
end
for i, set in ipairs(KEYS) do
  local name, sorted, rows = set:sub(#P + 1), redis.call('TYPE', set).ok == 'zset', {}
  for _, id in ipairs(sorted and redis.call('ZRANGE', set, 0, -1) or redis.call('SMEMBERS', set)) do
    local key = P .. RECORD[name] .. id
    local r = orphan(redis.call('HGET', key, 'owner'), id) and redis.call('HGETALL', key)
    if r and r[1] then
      rows[#rows + 1] = r
      if claim and name ~= 'pending' then redis.call('HSET', key, 'owner', me) end
      if claim and RECORD[name] == 'task:' then -- a claim: the task's number one more, the claim's
        redis.call('HSETNX', key, 'fence', FIRST) -- (a record of an older version: FIRST all the same)
        r[#r + 1], r[#r + 2] = 'claimed', tostring(redis.call('HINCRBY', key, 'fence', 1))
      end
    elseif r and sorted then
      redis.call('ZREM', set, id)
    end
  end
  out[i] = rows
end
return out
]=],
  -- KEYS unfinished, pending; ARGV P, me (a lease of this process's, '' none): what a keep cannot take yet, the
  -- unfinished tasks and pending creates whose owner's lease lives (another's than me): {their count, the count of
  -- those owners, the ms until the first lease lapses, until the last does}.  Nothing written.
  leased = [[
local P, me, n, owners, count, first, last = ARGV[1], ARGV[2], 0, {}, 0, -1, -1
for i, set in ipairs(KEYS) do
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local owner = redis.call('HGET', P .. (i == 1 and 'task:' or 'pend:') .. id, 'owner')
    if owner and owner ~= '' and owner ~= me then
      if owners[owner] == nil then
        local ms = redis.call('PTTL', P .. 'owner:' .. owner)
        owners[owner] = ms
        if ms > 0 then
          count = count + 1
          if first < 0 or ms < first then first = ms end
          if ms > last then last = ms end
        end
      end
      if owners[owner] > 0 then n = n + 1 end
    end
  end
end
return { n, count, first, last }
]],
  -- KEYS task:<id>, owner:<holder>; ARGV its number (fence), lease ms: {1} while the task is held at that
  -- number (the holder's lease renewed with it: no claim for a lease more), else {0, its holder, its path and
  -- sha256 ('' not downloaded yet)}.  No record: held (nobody claims a task the store has no record of)
  hold = FIRST .. [[
local r = redis.call('HMGET', KEYS[1], 'fence', 'owner', 'path', 'sha256')
if r[2] and (r[1] or FIRST) ~= ARGV[1] then return { 0, r[2], r[3] or '', r[4] or '' } end
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[2]))
return { 1 }
]],
  -- KEYS owner:<id>, identity; ARGV lease ms: the lease renewed; the store's identity
  lease = [[
redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
return redis.call('GET', KEYS[2])
]],
  -- KEYS creates; ARGV per, then the age (s) of each of the process's creates within it: create_limit's
  -- count of a store that lost its data made again of what this process knows (fleet/ledger.lua)
  recount = FleetBudget.CREATE .. [[
for i = 2, #ARGV do
  local t = now - tonumber(ARGV[i])
  redis.call('ZADD', KEYS[1], string.format('%.6f', t), string.format('%.6f-again%d', t, i))
end
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
return 1
]],
  -- KEYS kinds; ARGV P
  samples = [[
local out, kinds = {}, redis.call('HGETALL', KEYS[1])
for i = 1, #kinds, 2 do
  out[#out + 1] = { kinds[i], kinds[i + 1], redis.call('LRANGE', ARGV[1] .. 'samples:' .. kinds[i], 0, -1) }
end
return out
]],
}

SCRIPTS.delivered = SCRIPTS.abandoned -- (its two keys and one id: no gone:<local> to mark)
SCRIPTS.pending, SCRIPTS.owe = SCRIPTS.keyed, SCRIPTS.keyed
for name, body in pairs(SCRIPTS) do Store.define("ledger_" .. name, body) end

return SCRIPTS
