-- The ledger on a store (store.lua: Redis), for a fleet: the same interface as
-- ledger.lua (its header is the reference; only what differs is said here), so
-- that choosing it is a choice of backend.  NOT YET CHOSEN by the client's
-- `store` option: engine.lua, job.lua and client.lua do not use it yet.
--
--   R.new(store_or_url, cfg[, engine]) -> ledger   an open store (store.open) or
--       its URL (opened at the first need; a Redis that is down then is not an
--       error until a record must be written)
--   ledger:renew()       the process's lease renewed when a third of it has
--       passed (each record calls it; the wiring calls it once a drive-loop turn)
--   ledger:flush() -> true | nil, err   the records queued while Redis failed
--   ledger:samples() -> {kind = {model =, {took, within}...}}  all the learned
--       samples, in one call
--
-- Keys (KEY: a hash of base_url and of a hash of the API key, as engine.lua's
-- key_of; every key in one hash slot, "starvideos:{KEY}:"):
--   task:<id>       hash: id, model, duration, resolution, kind, out, owner,
--                   prompt_hash, uncertain, status, path (downloaded), part and
--                   part_dest (a .part left for part_dest); settled (downloaded
--                   or failed) ones expire after RETAIN seconds
--   unfinished      set of the ids created and neither downloaded nor failed
--   pend:<local>    hash: local, model, owner, out, time, prompt_hash: a create
--                   sent whose answer did not come yet
--   pending         set of those locals
--   owner:<id>      a lease: present while its owner renews it (PX lease)
--   samples:<kind>  list of "took within", newest first, at most SAMPLES
--   kinds           hash kind -> model: the kinds with samples
--   creates         store:create_allowed's sorted set (create_limit)
-- Each change is one script (EVAL), so atomic: a created record moves the
-- local from pending to the task and the unfinished set at once; a claim
-- (orphans) checks the owner's lease is gone and sets the claimer in one
-- script, so two keepers never take one task.  unfinished(), pending() and
-- orphans() read the two sets, never every task.
--
-- Leases: one owner id per process and store key (shared by its ledgers of
-- that key, let go when the last closes: DEL), one per keeper; each a key with
-- PX expiry cfg.lease, renewed every lease / 3.  A task whose owner's key is
-- gone is an orphan.  A process that cannot renew for a whole lease (Redis
-- down longer than that, a process stopped) may see a keeper take its tasks:
-- nothing is created twice, but a task may then be downloaded by both.
--
-- Redis unreachable or failing:
--   before_create returns nil, err (kind "io", field "store", naming the store
--   as redis://host:port/db, never the password): no create is sent;
--   a create counted by create_limit whose pending record then cannot be
--   written stays counted (refused, never sent: the limit errs on spending less);
--   the records after a create (created, create_failed, status, downloaded,
--   part) are queued in this process's memory, in order, and written when
--   Redis answers again (at the next record, flush or before_create, which
--   writes them first), so a created task goes on polling and nothing is lost
--   while the process lives (a process that dies with records queued loses
--   them: the task stays "pending" in Redis, listed by pending(), never sent
--   again).  created then returns true: the job goes on.
--
-- What blocks: every method but learn_more waits for its store:calls (one
-- round trip each: before_create makes up to four, the lease, create_limit,
-- the queued records and the pending record; a connect and PING when the
-- store is not open yet), which blocks the frame
-- outside nginx (inside nginx a cosocket yields only its light thread).  For a
-- game's frame loop the wiring would use the async form for the records after
-- a create (status, downloaded, part: store:send of the same EVAL, the
-- queue kept until store:ready/result says it was written, store:step(0) once
-- a drive-loop turn) and for renew; before_create and created must be known
-- written before the create is sent / the job goes on, so they wait for the
-- answer across turns the same way.  learn_more already does this: the
-- samples are sent at its first call and read when ready, store:step(0) each
-- turn.

local core = require "starvideos.core"
local options = require "starvideos.options"
local Schedule = require "starvideos.schedule"
local Ledger = require "starvideos.ledger"
local store_mod = require "starvideos.store"

local type, ipairs, pairs, tostring, tonumber, setmetatable, string_format, os_time, math_floor =
  type, ipairs, pairs, tostring, tonumber, setmetatable, string.format, os.time, math.floor
local table_remove = table.remove
local new_error = options.new_error

local R = {}
R.__index = R

R.SAMPLES = 64          -- samples kept per kind
R.RETAIN = 7 * 86400    -- seconds a settled task's record stays

-- ------------------------------------------------------------ the scripts
-- Each is run by EVAL (Redis caches it by its SHA1).  `P` (ARGV) is the key's
-- prefix, for the keys named by a task or a kind.

local SCRIPTS = {
  -- KEYS pend:<local>, pending; ARGV local, field, value, ...
  pending = [[
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
]],
  -- KEYS task:<id>, unfinished, pend:<local>, pending; ARGV id, local ('' none), field, value, ...
  created = [[
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local done = redis.call('HMGET', KEYS[1], 'path', 'status')
if not done[1] and done[2] ~= 'failed' then redis.call('SADD', KEYS[2], ARGV[1]) end
if ARGV[2] ~= '' then
  redis.call('DEL', KEYS[3])
  redis.call('SREM', KEYS[4], ARGV[2])
end
return 1
]],
  -- KEYS pend:<local>, pending; ARGV local
  abandoned = [[
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
]],
  -- KEYS task:<id>, unfinished, kinds; ARGV id, status, took ('' none), within, P, samples kept, retain
  status = [[
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
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
  -- KEYS task:<id>, unfinished; ARGV id, path, retain
  downloaded = [[
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'path', ARGV[2])
redis.call('HDEL', KEYS[1], 'part', 'part_dest')
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
]],
  -- KEYS task:<id>; ARGV part, part_dest
  part = [[
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'part', ARGV[1], 'part_dest', ARGV[2])
return 1
]],
  -- KEYS unfinished; ARGV P
  unfinished = [[
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = redis.call('HMGET', ARGV[1] .. 'task:' .. id, 'model', 'part_dest')
  out[#out + 1] = { id, r[1] or '', r[2] or '' }
end
return out
]],
  -- KEYS unfinished, pending; ARGV P, keeper id, lease ms, ids due again...
  -- The keeper's lease renewed, then every unfinished task whose owner's
  -- lease is gone claimed for it, its own due again, and the pendings whose
  -- owner is gone.
  orphans = [[
local P, me = ARGV[1], ARGV[2]
redis.call('SET', P .. 'owner:' .. me, '1', 'PX', tonumber(ARGV[3]))
local alive = {}
local function gone(owner)
  if not owner or owner == '' then return true end
  if alive[owner] == nil then alive[owner] = redis.call('EXISTS', P .. 'owner:' .. owner) == 1 end
  return not alive[owner]
end
local tasks, pend = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = P .. 'task:' .. id
  local r = redis.call('HMGET', key, 'owner', 'model', 'out', 'part_dest')
  if r[1] ~= me and gone(r[1]) then
    redis.call('HSET', key, 'owner', me)
    tasks[#tasks + 1] = { id, r[2] or '', r[3] or '', r[4] or '' }
  end
end
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('SISMEMBER', KEYS[1], id) == 1 then
    local r = redis.call('HMGET', P .. 'task:' .. id, 'owner', 'model', 'out', 'part_dest')
    if r[1] == me then tasks[#tasks + 1] = { id, r[2] or '', r[3] or '', r[4] or '' } end
  end
end
for _, lid in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local r = redis.call('HMGET', P .. 'pend:' .. lid, 'owner', 'model', 'time', 'prompt_hash', 'out')
  if gone(r[1]) then pend[#pend + 1] = { lid, r[2] or '', r[3] or '', r[4] or '', r[1] or '', r[5] or '' } end
end
return { tasks, pend }
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
SCRIPTS.pending_list = [[
local out = {}
for _, lid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = redis.call('HMGET', ARGV[1] .. 'pend:' .. lid, 'owner', 'model', 'time', 'prompt_hash', 'out')
  out[#out + 1] = { lid, r[2] or '', r[3] or '', r[4] or '', r[1] or '', r[5] or '' }
end
return out
]]
R.SCRIPTS = SCRIPTS

-- ------------------------------------------------------------ the store

-- What this process shares per store and key: the queue of records not yet
-- written, and the process's lease.
local shared = {}

-- The key's hash: engine.lua's key_of (base URL and a hash of the API key), hashed.
local function key_hash(cfg)
  return core.hash(tostring(cfg.base_url) .. "\0" .. core.hash(cfg.api_key or ""))
end

function R.new(store, cfg, engine)
  local url = type(store) == "string" and store or nil
  if url then store_mod.parse(url) -- a bad URL raises here, naming `store`
  elseif type(store) ~= "table" then options.argerror(1, "ledger_redis.new", "a store or its URL", type(store), 3) end
  local hash = key_hash(cfg)
  local prefix = "starvideos:{" .. hash .. "}:"
  local where = url and store_mod.parse(url).where or store.cfg.where
  local share_key = where .. " " .. prefix
  local sh = shared[share_key]
  if not sh then sh = { queue = {} }; shared[share_key] = sh end
  local self = setmetatable({ url = url, store = not url and store or nil, cfg = cfg, hash = hash, prefix = prefix,
    where = where, shared = sh, queue = sh.queue, outs = {}, records = true,
    lease_ms = math_floor((cfg.lease or options.DEFAULTS.lease) * 1000 + 0.5) }, R)
  if engine then self:schedule(engine) end
  return self
end

local function io_error(err, suffix)
  local msg = type(err) == "table" and err.message or tostring(err)
  return new_error("io", msg .. (suffix or ""), { field = "store" })
end

function R:_store()
  if self.store then return self.store end
  local st, err = store_mod.open(self.url, { timeout = self.cfg.connect_timeout })
  if not st then return nil, err end
  self.store = st
  return st
end

-- One script, waited for: its answer, or nil, err (kind io, field store).
function R:_eval(name, keys, args)
  local st, err = self:_store()
  if not st then return nil, err end
  local strings = {}
  for i, a in ipairs(args) do strings[i] = tostring(a) end
  return st:script("ledger_" .. name, keys, strings) -- by EVALSHA once loaded
end

-- The queued records, oldest first, until one fails (it stays first).
function R:flush()
  local q = self.queue
  while q[1] do
    local r = q[1]
    local ok, err = self:_eval(r[1], r[2], r[3])
    if ok == nil then return nil, err end
    table_remove(q, 1)
  end
  return true
end

-- A record after a create: queued, then everything queued written while
-- Redis answers.  true when written, else false (it waits in the queue).
function R:_record(name, keys, args)
  local q = self.queue
  q[#q + 1] = { name, keys, args }
  self:renew()
  return self:flush() == true
end

-- ------------------------------------------------------------ leases

function R:_set_lease(id)
  return self:_eval("lease", { self.prefix .. "owner:" .. id }, { self.lease_ms })
end
SCRIPTS.lease = [[
return redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
]]

function R:owner()
  if self.lease then return self.lease.id end
  if self.closed then return nil, "the ledger is closed" end
  local held = self.shared.lease
  if not held then
    held = { id = core.random_id(), users = 0, renewed = -1e9 }
    self.shared.lease = held
  end
  held.users = held.users + 1
  self.lease = held
  local ok, err = self:renew(true)
  if not ok then return nil, err end
  return held.id
end

-- The process's lease renewed when a third of it passed (now: force).
function R:renew(force)
  local held = self.lease
  if not held then return true end
  local t = core.now()
  if not force and t - held.renewed < self.lease_ms / 3000 then return true end
  local ok, err = self:_set_lease(held.id)
  if ok == nil then return nil, err end
  held.renewed = t
  return true
end

function R:close()
  local held = self.lease
  self.lease, self.closed = nil, true
  self:flush()
  if not held then return end
  held.users = held.users - 1
  if held.users > 0 then return end
  if self.shared.lease == held then self.shared.lease = nil end
  if self.store then self.store:call("DEL", self.prefix .. "owner:" .. held.id) end
end

local Keeper = {}
Keeper.__index = Keeper
function Keeper:close()
  if self.closed then return end
  self.closed = true
  local st = self.ledger.store
  if st then st:call("DEL", self.ledger.prefix .. "owner:" .. self.id) end
end

function R:keeper()
  local k = setmetatable({ id = core.random_id(), ledger = self, told = {}, carrying = {}, again = {} }, Keeper)
  local ok, err = self:_set_lease(k.id)
  if ok == nil then return nil, io_error(err).message end
  return k
end

-- Where a .part of the task still is (its download's path), or nil.
local function part_of(dest)
  if dest ~= "" and core.file_kind(dest .. ".part") == "file" then return dest end
end

local function nonempty(v) if v ~= "" then return v end end

local function pending_entry(r)
  return { ["local"] = r[1], model = nonempty(r[2]), time = tonumber(r[3]), prompt_hash = nonempty(r[4]),
    owner = nonempty(r[5]), out = nonempty(r[6]) }
end

function R:orphans(k)
  if k.closed then return nil, "the keeper is closed" end
  self:flush()
  local args, t = { self.prefix, k.id, self.lease_ms }, core.now()
  for id, when in pairs(k.again) do
    if when <= t and not k.carrying[id] then
      args[#args + 1] = id
      k.again[id] = nil
    end
  end
  local v, err = self:_eval("orphans", { self.prefix .. "unfinished", self.prefix .. "pending" }, args)
  if v == nil then return nil, io_error(err).message end
  local tasks, pendings = {}, {}
  for _, r in ipairs(v[1]) do
    tasks[#tasks + 1] = { id = r[1], model = nonempty(r[2]), out = nonempty(r[3]), part = part_of(r[4]) }
  end
  for _, r in ipairs(v[2]) do
    if not k.told[r[1]] then
      k.told[r[1]] = true
      pendings[#pendings + 1] = pending_entry(r)
    end
  end
  return tasks, pendings, false
end

-- ------------------------------------------------------------ records

local function pairs_of(rec)
  local list = {}
  for k, v in pairs(rec) do
    if v ~= nil then list[#list + 1] = k; list[#list + 1] = type(v) == "number" and string_format("%.17g", v)
      or tostring(v) end
  end
  return list
end

function R:before_create(params, lid, out)
  local function refuse(err)
    return nil, io_error(err, " (nothing was sent)")
  end
  local st, err = self:_store()
  if not st then return refuse(err) end
  local ok, ferr = self:flush() -- the records of earlier tasks first: Redis failing, no create
  if not ok then return refuse(ferr) end
  local owner, oerr = self:owner()
  if not owner then return refuse(oerr) end
  local limit = self.cfg.create_limit
  if limit then
    local allowed, wait = st:create_allowed(self.hash, limit.count, limit.per)
    if allowed == nil then return refuse(wait) end
    if not allowed then
      return nil, new_error("rate_limited", string_format("create_limit: %d creates in the last %.14g s "
        .. "(at most %d, counted in the store %s): the next create is allowed in %d s", limit.count, limit.per,
        limit.count, self.where, math_floor(wait + 0.999)), { field = "create_limit", retry_after = wait })
    end
  end
  lid = lid or core.random_id()
  local rec = { ["local"] = lid, model = params.model, owner = owner, out = out, time = os_time(),
    prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil }
  local args = pairs_of(rec)
  table.insert(args, 1, lid)
  local done, werr = self:_eval("pending", { self.prefix .. "pend:" .. lid, self.prefix .. "pending" }, args)
  if done == nil then return refuse(werr) end
  self.outs[lid] = out or false
  return true
end

function R:_created(id, params, lid, out, uncertain)
  local owner = self:owner() or (self.lease and self.lease.id) -- (a lease Redis could not renew: still ours)
  local rec = { id = id, model = params.model, duration = params.duration, resolution = params.resolution,
    kind = Ledger.kind_of(params.model, params.duration, params.resolution), out = out or nil, owner = owner,
    prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil,
    uncertain = uncertain and "1" or nil }
  local args = pairs_of(rec)
  table.insert(args, 1, lid or "")
  table.insert(args, 1, id)
  self:_record("created", { self.prefix .. "task:" .. id, self.prefix .. "unfinished",
    self.prefix .. "pend:" .. (lid or ""), self.prefix .. "pending" }, args)
end

-- The task's record is written, or queued until Redis answers: true either way.
function R:created(task, params, lid)
  local out = lid and self.outs[lid]
  if lid then self.outs[lid] = nil end
  self:_created(task.id, params, lid, out)
  return true
end

function R:create_failed(err, params, lid)
  local out = lid and self.outs[lid]
  if lid then self.outs[lid] = nil end
  if err.created and err.id then
    self:_created(err.id, params, lid, out, true)
  elseif not err.maybe_created then
    if lid then self:_record("abandoned", { self.prefix .. "pend:" .. lid, self.prefix .. "pending" }, { lid }) end
  else
    err.pending = lid
  end
end

local function num(v)
  if v == nil then return "" end
  return string_format("%.17g", v)
end

function R:status(id, status, took, within)
  self:_record("status", { self.prefix .. "task:" .. id, self.prefix .. "unfinished", self.prefix .. "kinds" },
    { id, status, num(took), num(within), self.prefix, R.SAMPLES, R.RETAIN })
end

function R:downloaded(id, path)
  self:_record("downloaded", { self.prefix .. "task:" .. id, self.prefix .. "unfinished" }, { id, path, R.RETAIN })
end

function R:part(id, part, path)
  self:_record("part", { self.prefix .. "task:" .. id }, { part, path })
  return true
end

-- A read of one of the key's sets (after the queued records): its rows
-- mapped by f, or nil, err.
function R:_read(name, set, f)
  self:flush()
  local v, err = self:_eval(name, { self.prefix .. set }, { self.prefix })
  if v == nil then return nil, io_error(err).message end
  local out = {}
  for i, r in ipairs(v) do out[i] = f(r) end
  return out
end

function R:unfinished()
  return self:_read("unfinished", "unfinished", function(r)
    return { id = r[1], model = nonempty(r[2]), out = part_of(r[3]) }
  end)
end

function R:pending()
  local out, err = self:_read("pending_list", "pending", pending_entry)
  if out then table.sort(out, function(a, b) return (a.time or 0) < (b.time or 0) end) end
  return out, err
end

-- ------------------------------------------------------------ the schedule

local function parse_samples(v)
  local out = {}
  for _, r in ipairs(v) do
    local list = { model = nonempty(r[2]) }
    for i, s in ipairs(r[3]) do
      local took, within = s:match("^(%S+) ?(%S*)$")
      list[i] = { tonumber(took), tonumber(within) }
    end
    out[r[1]] = list
  end
  return out
end

function R:samples()
  local v, err = self:_eval("samples", { self.prefix .. "kinds" }, { self.prefix })
  if v == nil then return nil, io_error(err).message end
  return parse_samples(v)
end

function R:learn(kind, model, took, within)
  (self.sched or self:schedule()):learn(kind, model, took, within)
end

local function teach(s, samples)
  for kind, list in pairs(samples) do
    for i = #list, 1, -1 do -- oldest first
      if list[i][1] then s:learn(kind, list.model, list[i][1], list[i][2]) end
    end
  end
end

-- The key's schedule, fed the store's samples once per key and store: read
-- across drive-loop turns (learn_more) with an engine, at once without.
function R:schedule(engine)
  local s = self.sched
  if s then return s end
  s = engine and engine:schedule(self.cfg) or Schedule.new(self.cfg)
  self.sched = s
  if not engine or engine:first_read(self.where .. " " .. self.prefix) then
    if engine then
      self.reading = true
      engine:learning(self)
    else
      local samples = self:samples()
      if samples then teach(s, samples) end
    end
  end
  return s
end

-- One step of reading the samples: sent at the first call, taken when ready.
function R:learn_more()
  if not self.reading then return true end
  local st = self.store
  if not st then
    st = self:_store()
    if not st then self.reading = nil; return true end
  end
  if not self.sample_n then
    local n = st:send_script("ledger_samples", { self.prefix .. "kinds" }, { self.prefix })
    if not n then self.reading = nil; return true end
    self.sample_n = n
    return false
  end
  st:step(0)
  if not st:ready(self.sample_n) then return false end
  local v = st:result(self.sample_n)
  self.reading, self.sample_n = nil, nil
  if type(v) == "table" then teach(self.sched, parse_samples(v)) end
  return true
end

-- ------------------------------------------------------------ webhooks owed
-- (notify.lua; ledger.lua's owe, delivered, owed_orphans)
--   owed:<wid>  hash: wid, task, body, owner: an event recorded before it is sent
--   owed        set of those wids, until delivered (or refused for good)

-- KEYS owed:<wid>, owed; ARGV wid, task, body, owner
SCRIPTS.owe = [[
redis.call('HSET', KEYS[1], 'wid', ARGV[1], 'task', ARGV[2], 'body', ARGV[3], 'owner', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
]]
-- KEYS owed:<wid>, owed; ARGV wid
SCRIPTS.delivered = [[
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
]]
-- KEYS owed; ARGV P, keeper id: every owed event whose owner's lease is gone,
-- claimed for the keeper in the same script (two keepers never take one).
SCRIPTS.owed_orphans = [[
local P, me, out = ARGV[1], ARGV[2], {}
for _, wid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = P .. 'owed:' .. wid
  local r = redis.call('HMGET', key, 'owner', 'task', 'body')
  if r[3] and r[1] ~= me and (not r[1] or r[1] == '' or redis.call('EXISTS', P .. 'owner:' .. r[1]) == 0) then
    redis.call('HSET', key, 'owner', me)
    out[#out + 1] = { wid, r[2] or '', r[3] }
  end
end
return out
]]

function R:owe(wid, task_id, body)
  local owner = self:owner()
  return self:_record("owe", { self.prefix .. "owed:" .. wid, self.prefix .. "owed" },
    { wid, task_id, body, owner or "" })
end

function R:delivered(wid)
  self:_record("delivered", { self.prefix .. "owed:" .. wid, self.prefix .. "owed" }, { wid })
end

function R:owed_orphans(k)
  if k.closed then return {} end
  self:flush()
  local v = self:_eval("owed_orphans", { self.prefix .. "owed" }, { self.prefix, k.id })
  local out = {}
  for i, r in ipairs(type(v) == "table" and v or {}) do out[i] = { wid = r[1], task = r[2], body = r[3] } end
  return out
end

-- The scripts join the store's own (store.SCRIPTS), so that each runs by EVALSHA
-- once its connection loaded it, its body sent once.
for name, body in pairs(SCRIPTS) do store_mod.SCRIPTS["ledger_" .. name] = body end

return R
