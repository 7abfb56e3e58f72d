-- The scripts of the ledger on a store (fleet/ledger.lua), so each change is
-- atomic.  Every key a script touches is one of its KEYS (fleet/declared.lua): the ones a script finds by what it
-- reads (a key's task, a set's records, an owner's lease, a kind's samples, a reservation's limits) it asks for
-- by label (key(label): "task:<id>", the name under the prefix), and says needed() before it writes anything.
-- Keys, all under "starvideos:{KEY}:" (KEY: key.lua's k.hash; one hash slot):
--   task:<id>       hash: id, model, duration, resolution, kind, out, owner, fence (1 at its
--                   create, one more at each claim: the holder's number), prompt_hash,
--                   prompt (its head), time, uncertain, status, error, reason, input, path and bytes
--                   (downloaded), part and part_dest, tenant, cost, addr (its create's content address:
--                   refusal.lua's); a settled one expires after DEFAULTS.retain s
--   unfinished      set of the ids neither downloaded nor failed
--   tasks           sorted set of the ids created, by tasks:seq (an expired one leaves when listed); tasks:seq
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
--   spend:*         spend_limit's reservations (spend.lua's rule: spend:sp:, held:, res:, told:, who:); spend:log
--                   every create's price, model and tenant by its time (SPEND's spend_log)
-- A created record moves the local from pending to the task at once; a claim is one script (two keepers
-- never take one task).  Reads go through the sets, never every task.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local Store = require "starvideos.fleet.store"
local FleetBudget = require "starvideos.fleet.budget" -- (CREATE: create_limit's count)
local FIRST = string.format("local FIRST = '%d'\n", X.ledger.lease.FIRST) -- (a task's first number)

-- spend.lua's rule on the store, its kv and keys, and the log a limit is counted again from (fleet/spent.lua)
local Spent = require "starvideos.fleet.spent"
local SPEND = Spent.SCRIPT

-- What key:<hash> (at k) names, asked by the owner key me (nil: none): a create still pending ({'pending',
-- local, time}), a task not failed ({'task', id, fp, body, bytes, model, '1' when another live process holds it,
-- sha256, path: where its video was saved, the rules' `whole` of an object out});
-- and when `all` (a peek), a create abandoned ({'gone'}) or a task failed ({'failed', id}).  The keys it follows
-- (pend:, task:, owner:) asked for with key(): nil while one is not declared (needed() says it).
local KEY_NAMES = [[
local function key_names(k, me, all)
  local ref = redis.call('GET', k)
  local at = ref and key((ref:sub(1, 1) == 'L' and 'pend:' or 'task:') .. ref:sub(2))
  if not at then return end
  if ref:sub(1, 1) == 'L' then
    local p = redis.call('HMGET', at, 'local', 'time')
    if p[1] then return { 'pending', p[1], p[2] or '' } end
    if all then return { 'gone' } end
  else
    local t = redis.call('HMGET', at, 'status', 'fp', 'body', 'bytes', 'model', 'owner', 'sha256', 'path')
    if all and t[1] == 'failed' then return { 'failed', ref:sub(2) } end
    if t[2] and t[1] ~= 'failed' then
      local holder = t[6] and t[6] ~= '' and key('owner:' .. t[6])
      if t[6] and t[6] ~= '' and not holder then return end
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
  -- KEYS a record, the set of its ids[, gone:<local>, owner:<id>, creates, tcreates:<tenant's hash>[, key:<hash>]]
  -- (more: the reservation's, M.spend_labels; the key's create or task and its holder's lease, asked for);
  -- ARGV its id, fresh ('1' or ''), '' (unused), lease ms, create_limit's count and per, tenant_limit's count and per
  -- ('' none), field, value, ...  A create's asking (fleet/ask.lua) in one round trip: its owner's lease renewed;
  -- nothing written (0) when the create was abandoned (its script run late); with a key, what it names
  -- (KEY_NAMES), whatever the limits, counted in none; create_limit's and tenant_limit's counts ({'limited',
  -- seconds, '' or 't'} when one is full: counted in neither); else the record written.  pending and owe: the
  -- same, keyless
  keyed = FleetBudget.CREATE .. KEY_NAMES .. SPEND .. [[
local gone = KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1
local named = not gone and KEYS[7] and ARGV[2] ~= '1' and key_names(KEYS[7], KEYS[4])
local price, spec, at, kv = spend_field('price'), spend_field('spend'), spend_field('time'), nil
price, at = price and tonumber(price), at and tonumber(at)
if price and spec and at then spend_need(spec, ARGV[1]) end
local model = spend_field('model')
local log = model and at and key('spend:log')
local stop = needed()
if stop then return stop end
if KEYS[4] then redis.call('SET', KEYS[4], '1', 'PX', tonumber(ARGV[4])) end
if gone then return 0 end
if named then return named end
local counts = {}
if ARGV[5] ~= '' then counts[1] = { KEYS[5], tonumber(ARGV[5]), tonumber(ARGV[6]), '' } end
if ARGV[7] ~= '' then counts[#counts + 1] = { KEYS[6], tonumber(ARGV[7]), tonumber(ARGV[8]), 't' } end
for _, c in ipairs(counts) do
  local wait = creates_wait(c[1], c[2], c[3])
  if wait > 0 then return { 'limited', string.format('%.6f', wait), c[4] } end
end
if price and spec and at then
  kv = spend_kv()
  spend_recount(kv, log, spec, at, model, spend_field('tenant'))
  local i, total, told = spend_over(kv, price, spec, at, ARGV[1])
  if i then return { 'spend', tostring(i), string.format('%d', total), told and '1' or '' } end
end
for _, c in ipairs(counts) do creates_add(c[1], c[3]) end
local crossed = kv and spend_take(kv, ARGV[1], price, spec, at, spend_field('tenant'))
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('SADD', KEYS[2], ARGV[1])
if log then spend_log(log, ARGV[1], at, price and string.format('%d', price), model, spend_field('tenant')) end
if KEYS[7] then redis.call('SET', KEYS[7], 'L' .. ARGV[1]) end
if crossed and crossed ~= '' then return { 'spent', crossed } end
return 1
]],
  -- KEYS key:<hash>[, the asker's owner key]: what the key names (KEY_NAMES, all), or 0; nothing written
  peek = KEY_NAMES .. [[
local named = key_names(KEYS[1], KEYS[2], true)
return needed() or named or 0
]],
  -- KEYS task:<id>, unfinished, pend:<local>, pending, tasks[, key:<hash>] (more: tasks:seq, the reservation's
  -- keys); ARGV id, local ('' none), fields (with fence: a keeper's claim, recorded again after a reset)
  created = FIRST .. SPEND .. [[
if ARGV[2] ~= '' then spend_end_need(ARGV[2]) end
local stop = needed()
if stop then return stop end
local held = redis.call('HMGET', KEYS[1], 'owner', 'fence') -- (written again: a claim since stays)
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if held[2] then redis.call('HSET', KEYS[1], 'owner', held[1] or '', 'fence', held[2])
else redis.call('HSETNX', KEYS[1], 'fence', FIRST) end -- (a keeper's, recorded again: its claim's number)
if not redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  redis.call('ZADD', KEYS[5], redis.call('INCR', declared('tasks:seq')), ARGV[1])
end
if KEYS[6] then redis.call('SET', KEYS[6], 'T' .. ARGV[1]) end
local done = redis.call('HMGET', KEYS[1], 'path', 'status')
if not done[1] and done[2] ~= 'failed' then redis.call('SADD', KEYS[2], ARGV[1]) end
if ARGV[2] ~= '' then
  redis.call('DEL', KEYS[3])
  redis.call('SREM', KEYS[4], ARGV[2])
  spend_end(spend_kv(), ARGV[2], true)
end
return 1
]],
  -- KEYS a record, the set of its ids[, gone:<local>]; ARGV its id[, retain, '1': its reservation released]: the
  -- record gone.  abandoned: pend:<local>, pending, gone:<local> (DEFAULTS.retain s; more: the reservation's
  -- keys); delivered: owed:<wid>, owed
  abandoned = SPEND .. [[
if ARGV[3] then spend_end_need(ARGV[1]) end
local log = ARGV[3] and key('spend:log')
local stop = needed()
if stop then return stop end
local at = log and tonumber(redis.call('HGET', KEYS[1], 'time'))
if at then spend_unlog(log, ARGV[1], at) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'EX', tonumber(ARGV[2])) end
if ARGV[3] then spend_end(spend_kv(), ARGV[1], false) end
return 1
]],
  -- KEYS task:<id>, unfinished, kinds, refused (fleet/refusals.lua's; more: samples:<kind>, its reservation's); ARGV
  -- id, status, took ('' none), within, samples, retain, error, reason, input ('' none), its addr's refusal ('' none;
  -- completed: none), a failed one's cost in units and as given ('' none: its price stands; Spent.FAILED)
  status = SPEND .. Spent.FAILED .. [[
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local r = redis.call('HMGET', KEYS[1], 'kind', 'model', 'addr', 'tenant')
local list, addr = ARGV[3] ~= '' and r[1] and key('samples:' .. r[1]), KEYS[4] and r[3]
local failed = ARGV[2] == 'failed' and (ARGV[11] or '') ~= '' and spend_failing(KEYS[1])
local stop = needed()
if stop then return stop end
if failed then redis.call('HSET', KEYS[1], 'cost', ARGV[12]); spend_failed(failed, tonumber(ARGV[11])) end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if ARGV[7] and ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[7]) end
if ARGV[8] and ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[8]) end
if ARGV[9] and ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'input', ARGV[9]) end
if addr and ARGV[2] == 'completed' then redis.call('HDEL', KEYS[4], addr, addr .. ' tenant') -- (passed since)
elseif addr and (ARGV[10] or '') ~= '' then redis.call('HSET', KEYS[4], addr, ARGV[10], addr .. ' tenant', r[4] or '')
end
if ARGV[2] == 'failed' then
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
end
if list then
  redis.call('LPUSH', list, ARGV[3] .. ' ' .. ARGV[4])
  redis.call('LTRIM', list, 0, tonumber(ARGV[5]) - 1)
  redis.call('HSET', KEYS[3], r[1], r[2] or '')
end
return 1
]],
  -- KEYS task:<id>, unfinished (more: key:<its key's hash>, asked for); ARGV id, path, retain, bytes ('' unknown),
  -- sha256 ('' unknown), fence ('' any), etag ('' none):
  -- written only by the task's holder at that number (0: another holds it, or no record)
  downloaded = FIRST .. [[
local fence = redis.call('HGET', KEYS[1], 'fence')
if redis.call('EXISTS', KEYS[1]) == 0 or (ARGV[6] ~= '' and (fence or FIRST) ~= ARGV[6]) then return 0 end
local kh = redis.call('HGET', KEYS[1], 'key_hash')
local named = kh and key('key:' .. kh)
local stop = needed()
if stop then return stop end
redis.call('HSET', KEYS[1], 'path', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'bytes', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'sha256', ARGV[5]) end
if ARGV[7] and ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'etag', ARGV[7]) end
if named then redis.call('EXPIRE', named, tonumber(ARGV[3])) end
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
  -- KEYS sets of ids (tasks: the sorted one), owner:<keeper> (a keeper's); ARGV keeper id ('' none; '?' a look: no
  -- keeper), lease ms, the keeper's process's lease ('' none), ids due again...: per set its records, flat (an id
  -- whose record expired leaves tasks).  With a keeper (its lease renewed) or a look: only those whose owner's lease
  -- is gone (never its own process's) or its own tasks due again, claimed for the keeper (not pendings; a look
  -- claims nothing).  Its records and their owners' leases asked for (the ids known only here): read first, written
  -- after, so that a run that lacks one writes nothing.
  records = FIRST .. [=[
local me, alive, due, out, found = ARGV[1], {}, {}, {}, {}
local claim = me ~= '' and me ~= '?'
local RECORD = { tasks = 'task:', unfinished = 'task:', pending = 'pend:', owed = 'owed:' }
local sets = {}
for i, set in ipairs(KEYS) do
  local name = string.match(set, '^starvideos:{[^}]*}:(.*)$') or set
  if RECORD[name] then sets[#sets + 1] = { i, set, name } end
end
for i = 4, #ARGV do due[ARGV[i]] = true end
local function orphan(owner, id)
  if me == '' then return true end
  if owner == me then return due[id] end
  if owner == ARGV[3] then return false end -- (this process lives: its jobs carry its tasks)
  if not owner or owner == '' then return true end
  if alive[owner] == nil then
    local lease = key('owner:' .. owner)
    if not lease then return false end
    alive[owner] = redis.call('EXISTS', lease) == 1
  end
  return not alive[owner]
end
for _, s in ipairs(sets) do -- (read: what each set holds, what is whose)
  local sorted, rows = redis.call('TYPE', s[2]).ok == 'zset', {}
  for _, id in ipairs(sorted and redis.call('ZRANGE', s[2], 0, -1) or redis.call('SMEMBERS', s[2])) do
    local at = key(RECORD[s[3]] .. id)
    if at and orphan(redis.call('HGET', at, 'owner'), id) then rows[#rows + 1] = { id, at } end
  end
  found[#found + 1] = { s, sorted, rows }
end
local stop = needed()
if stop then return stop end
if claim then redis.call('SET', declared('owner:' .. me), '1', 'PX', tonumber(ARGV[2])) end
for _, f in ipairs(found) do
  local s, sorted, rows = f[1], f[2], {}
  for _, c in ipairs(f[3]) do
    local id, at = c[1], c[2]
    local r = redis.call('HGETALL', at)
    if r[1] then
      rows[#rows + 1] = r
      if claim and s[3] ~= 'pending' then redis.call('HSET', at, 'owner', me) end
      if claim and RECORD[s[3]] == 'task:' then -- a claim: the task's number one more, the claim's
        redis.call('HSETNX', at, 'fence', FIRST) -- (a record of an older version: FIRST all the same)
        r[#r + 1], r[#r + 2] = 'claimed', tostring(redis.call('HINCRBY', at, 'fence', 1))
      end
    elseif sorted then
      redis.call('ZREM', s[2], id)
    end
  end
  out[s[1]] = rows
end
return out
]=],
  -- KEYS unfinished, pending; ARGV me (a lease of this process's, '' none): what a keep cannot take yet, the
  -- unfinished tasks and pending creates whose owner's lease lives (another's than me): {their count, the count of
  -- those owners, the ms until the first lease lapses, until the last does}.  Nothing written (their records and
  -- owners' leases asked for).
  leased = [[
local me, n, owners, count, first, last = ARGV[1], 0, {}, 0, -1, -1
for i, set in ipairs(KEYS) do
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local at = key((i == 1 and 'task:' or 'pend:') .. id)
    local owner = at and redis.call('HGET', at, 'owner')
    local lease = owner and owner ~= '' and owner ~= me and key('owner:' .. owner)
    if lease then
      if owners[owner] == nil then
        local ms = redis.call('PTTL', lease)
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
return needed() or { n, count, first, last }
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
  -- KEYS kinds (more: samples:<kind> of each, asked for)
  samples = [[
local out, kinds = {}, redis.call('HGETALL', KEYS[1])
for i = 1, #kinds, 2 do
  local list = key('samples:' .. kinds[i])
  if list then out[#out + 1] = { kinds[i], kinds[i + 1], redis.call('LRANGE', list, 0, -1) } end
end
return needed() or out
]],
}

SCRIPTS.delivered = SCRIPTS.abandoned -- (its two keys and one id: no gone:<local> to mark)
SCRIPTS.pending, SCRIPTS.owe = SCRIPTS.keyed, SCRIPTS.keyed
for name, body in pairs(SCRIPTS) do Store.define("ledger_" .. name, body) end

-- (and each script's text by name, as the store runs it: its PRELUDE first)
return setmetatable({ spend_keys = Spent.keys }, {
  __index = function(_, name) return Store.script_text("ledger_" .. name) end })
