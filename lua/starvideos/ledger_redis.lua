-- The ledger on a store (store.lua: Redis), for a fleet: the same interface as
-- ledger.lua (its header is the reference; only what differs is said here), so
-- that choosing it is a choice of backend: a client with `store` has this
-- ledger (client.lua), on its engine's store (engine.lua's E:store_for).
--
--   R.new(store_or_url, cfg[, engine]) -> ledger   a store (store.open, or
--       store.new: not connected yet) or its URL (opened at the first need; a
--       Redis that is down then is not an error until a record must be
--       written).  With an engine (a drive loop's: E:pumping), the async form
--       below; without (the CLI, a keep's reads), every call waits
--   ledger:renew()       the process's lease renewed when a third of it has
--       passed (without an engine each record calls it; with one, the Renewer
--       timer on the engine's heap has pump send it: _renew_async)
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
--   gone:<local>    a create abandoned (never sent): its pending script, run
--                   late (sent before a timeout), writes nothing; RETAIN s
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
--   while the process lives: a client closing with records queued (inside
--   nginx each client's own) leaves them to the process's shared queue, which
--   the next ledger of the key and store (pump, ask or flush) writes.  A
--   process that dies with records queued loses them: the task stays
--   "pending" in Redis, listed by pending(), never sent again.  created then
--   returns true (once the store failed after its record was queued): the job
--   goes on.  A create refused after its pending script was sent (no answer
--   in time) queues "abandoned": should Redis run the pending script late, it
--   writes nothing (gone:<local>).
--
-- What blocks.  Without an engine, every method waits for its store:calls.
-- With one (a client's), nothing a job calls waits, so no frame is blocked
-- outside nginx (inside, a cosocket yields only its light thread):
--   before_create / created return false while their answer is not there:
--       the job asks again on a later drive-loop turn (a create is sent only
--       once its pending record is known written; a job reports its task only
--       once its created record is, or Redis failed and it waits queued);
--       before_create is two round trips: the lease, create_limit (and once
--       per store per process CONFIG GET appendfsync), then the pending record
--   status, downloaded, part: queued, sent by pump (once a drive-loop turn
--       while anything is in flight: the engine's E:pumping), written in order
--   the lease: renewed by pump when due, a timer on the engine's heap having
--       the ledger pumped every lease / 3
--   learn_more: the samples sent at its first call, read when ready
--   a blocking call (client:generate, wait...) returns once its records are
--       written or Redis failed (engine.lua's settle)
--   owe: queued, its lease taken as above (not waited for)
-- flush, unfinished, pending, orphans, keeper, samples and close still wait
-- (keep, resume, pending, the CLI); close(true), in a GC step, does not.

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
  -- KEYS pend:<local>, pending, gone:<local>; ARGV local, field, value, ...
  -- (a local already abandoned: nothing written, 0)
  pending = [[
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
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
  -- KEYS pend:<local>, pending, gone:<local>; ARGV local, retain
  abandoned = [[
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], '1', 'EX', tonumber(ARGV[2]))
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

-- The key's name in the store (store.key_hash); a client's cfg no longer
-- holds its API key, but the name of it (client.lua).
local function key_hash(cfg)
  return cfg.key_hash or store_mod.key_hash(cfg.base_url, cfg.api_key)
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
    -- inside nginx a client's records are its own (a store per client, whose
    -- commands yield its light thread: no other request's pump may send them)
    where = where, shared = sh, queue = engine and engine.ngx and {} or sh.queue, outs = {}, records = true,
    asks = {}, held = {},
    engine = engine and engine.pumping and engine or false, -- a drive loop's: the async form
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

local function strings(args)
  local out = {}
  for i, a in ipairs(args) do out[i] = tostring(a) end
  return out
end

-- One script, waited for: its answer, or nil, err (kind io, field store).
function R:_eval(name, keys, args)
  local st, err = self:_store()
  if not st then return nil, err end
  return st:script("ledger_" .. name, keys, strings(args)) -- by EVALSHA once loaded
end

R.RETRY = 0.5 -- seconds: a store that failed is tried again this much later (the async form)

-- The store failed (err): said in shared.down until Redis answers again
-- (a record written, an ask or a renewal answered); shared.down_at: when.
function R:_down(err)
  local sh, t = self.shared, core.now()
  sh.down, sh.down_at, sh.again = err or true, t, t + R.RETRY
end

-- Whether the store failed since the record e was queued (a failure older
-- than it says nothing of it: Redis may be back).
function R:_failed_since(e)
  local sh = self.shared
  return sh.down and sh.down_at >= e.at or false
end

-- Inside nginx, the records a closed client left (R:close moved them to the
-- worker's shared queue): taken by this ledger, after its own, to be written
-- on its store (never by a closed one: its store is its finished request's).
function R:_adopt()
  local sq, q = self.shared.queue, self.queue
  if q == sq or not sq[1] or self.closed then return end
  for i = 1, #sq do q[#q + 1], sq[i] = sq[i], nil end
end

-- The queued records, oldest first, until one fails (it stays first); one
-- already sent by pump is waited for.
function R:flush()
  self:_adopt()
  local q = self.queue
  while q[1] do
    local e = q[1]
    local ok, err
    if e.n then
      ok, err = e.st:_wait(e.n)
      e.n = nil
    else
      ok, err = self:_eval(e[1], e[2], e[3])
    end
    if ok == nil and not self:_refused(e, err) then self:_down(err); return nil, err end
    self.shared.down, e.written = false, ok ~= nil
    table_remove(q, 1)
  end
  return true
end

-- Redis errors that pass (OOM, a replica loading or read-only, a busy
-- script...): a record refused for one is sent again R.RETRY later.
local PASSING = { OOM = true, LOADING = true, BUSY = true, READONLY = true, MASTERDOWN = true, TRYAGAIN = true,
  CLUSTERDOWN = true, NOREPLICAS = true, MISCONF = true }

-- Whether Redis refused record e for good: its script ran and failed (a key of
-- another type, say), which sending it again cannot change.  Said through
-- on_event {type = "warning"}, and true: the caller drops it, so that the
-- records behind it are written (a stuck queue would lose them all).
function R:_refused(e, err)
  local reply = type(err) == "table" and err.reply
  if type(reply) ~= "string" or not reply:find("@user_script", 1, true) then return false end
  -- Redis 6 wraps a script's error ("ERR Error running script ...: -OOM ..."):
  -- a passing code anywhere in it passes
  for word in reply:gmatch("%u%u+") do
    if PASSING[word] then return false end
  end
  local on_event = self.cfg.on_event
  if on_event then
    on_event({ type = "warning", message = string_format("store %s: Redis refused the %s record of %s (%s): it "
      .. "is dropped, the records after it are written", self.where, tostring(e[1]), tostring(e[3][1]), reply) })
  end
  e.refused = true
  return true
end

-- A record after a create: queued, then (with a drive loop) sent by pump, or
-- (without) everything queued written while Redis answers.  The queue's entry
-- (entry.written once it is, entry.refused if Redis refused it for good).
function R:_record(name, keys, args)
  local q = self.queue
  local e = { name, keys, args, at = core.now() }
  q[#q + 1] = e
  if self.engine then
    self.engine:pumping(self)
  else
    self:renew()
    self:flush()
  end
  return e
end

-- The async form, once a drive-loop turn while the ledger has anything in
-- flight (engine.lua's E:pumping): the store's bytes moved (step(0)), every
-- queued record not sent yet sent (in order, on one connection: written in
-- order), the answers there taken oldest first, and the lease renewed when
-- due.  A failure leaves the records queued, sent again R.RETRY later.
-- true when nothing is left to do.
function R:pump()
  local st = self.store
  if not st then return true end
  self:_adopt()
  local sh, q, t = self.shared, self.queue, core.now()
  if q[1] and not (sh.down and t < sh.again) then
    for i = 1, #q do
      local e = q[i]
      if not e then break end
      if not e.n then
        local n, err = st:send_script("ledger_" .. e[1], e[2], strings(e[3]))
        if not n then self:_down(err); break end
        e.n, e.st = n, st
      end
    end
  end
  st:step(0)
  while q[1] and q[1].n and q[1].st:ready(q[1].n) do
    local e = q[1]
    local v, err = e.st:result(e.n)
    e.n = nil
    if v == nil and not self:_refused(e, err) then
      self:_down(err)
      for i = 2, #q do -- those behind it are sent again (each record's script may run twice: the same record)
        local o = q[i]
        if o.n then o.st.jobs[o.n], o.n = nil, nil end
      end
      break
    end
    sh.down, e.written = false, v ~= nil
    table_remove(q, 1)
  end
  local renewed = self:_renew_async(t)
  return not q[1] and renewed
end

-- Whether every queued record is written, or the store failing (a blocking
-- call returns then: engine.lua's settle).
function R:settled()
  local q = self.queue
  return not q[1] or self:_failed_since(q[#q])
end

-- ------------------------------------------------------------ leases

function R:_set_lease(id)
  return self:_eval("lease", { self.prefix .. "owner:" .. id }, { self.lease_ms })
end
SCRIPTS.lease = [[
return redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]))
]]

-- This ledger's share of the process's lease (nothing sent).
function R:_hold()
  local held = self.lease
  if held then return held end
  held = self.shared.lease
  if not held then
    held = { id = core.random_id(), users = 0, renewed = -1e9 }
    self.shared.lease = held
  end
  held.users = held.users + 1
  self.lease = held
  return held
end

function R:owner()
  if self.lease then return self.lease.id end
  if self.closed then return nil, "the ledger is closed" end
  local held = self:_hold()
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

-- The async renewal (pump's): the lease sent when a third of it passed, its
-- answer taken when there.  true when nothing is in flight.
function R:_renew_async(t)
  local held = self.lease
  if not held then return true end
  local n = held.n
  if n then
    if not held.st:ready(n) then return false end
    held.n = nil
    if held.st:result(n) ~= nil then held.renewed, self.shared.down = held.sent_at, false end
    return true
  end
  local sh = self.shared
  if t - held.renewed < self.lease_ms / 3000 or (sh.down and t < sh.again) then return true end
  n = self.store:send_script("ledger_lease", { self.prefix .. "owner:" .. held.id }, { tostring(self.lease_ms) })
  if not n then return true end
  held.n, held.st, held.sent_at = n, self.store, t
  return false
end

-- With a drive loop: a timer (engine.lua's heap) that has the ledger pumped
-- when its lease is due, once a third of it, while the ledger holds one.
local Renewer = {}
Renewer.__index = Renewer
function Renewer:advance(t)
  local l = self.ledger
  if l.closed or not l.lease then return end
  l.engine:pumping(l)
  l.engine:at(t + l.lease_ms / 3000, self)
end

-- The Renewer started, once per ledger (the async form).
function R:_renewing()
  if self.engine and not self.renewer then
    self.renewer = setmetatable({ ledger = self }, Renewer)
    self.engine:at(core.now() + self.lease_ms / 3000, self.renewer)
  end
end

-- The client closed (collected: in a GC step, where nothing may wait: no
-- round trip then).  Its records are written first (not when collected);
-- those left (Redis failing, or collected) stay in the process's shared
-- queue: inside nginx, where the queue was the client's own, they move there
-- (its answers in flight dropped: each is sent again, the same record), for
-- the next pump, ask or flush of any ledger of the key and store in the
-- worker to write.  Its share of the lease goes: the last one's key deleted
-- (collected: it just expires).
function R:close(collected)
  local held = self.lease
  self.lease, self.closed = nil, true
  if not collected then self:flush() end
  local q, sq = self.queue, self.shared.queue
  if q ~= sq then
    for i = 1, #q do
      local e = q[i]
      if e.n then e.st.jobs[e.n], e.n, e.st = nil, nil, nil end
      sq[#sq + 1] = e
    end
    self.queue = {}
  end
  if not held then return end
  held.users = held.users - 1
  if held.users > 0 then return end
  if self.shared.lease == held then self.shared.lease = nil end
  if self.store and not collected then self.store:call("DEL", self.prefix .. "owner:" .. held.id) end
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

-- Whether the store keeps every write (appendfsync always): asked once per
-- store per process, at a ledger's first create; anything else (or CONFIG
-- refused) is said through on_event {type = "warning"}.
local fsync_asked = {}

function R:_fsync_answer(st, n)
  local v, err = st:result(n)
  local mode = type(v) == "table" and v[2]
  if mode == "always" then return end
  local on_event = self.cfg.on_event
  if on_event then
    on_event({ type = "warning", message = string_format("store %s: appendfsync is %s, not always: the last records "
      .. "written before a crash of Redis (or of its host) can be lost", self.where,
      mode and tostring(mode) or "unknown (CONFIG GET refused: " .. tostring(err and err.message or v) .. ")") })
  end
end

-- An ask let go of (refused, or its job cancelled): the answers nobody will read dropped.
local function drop_ask(self, lid, a)
  a = a or self.asks[lid]
  self.asks[lid] = nil
  if a then
    for _, k in ipairs { "lease", "limit", "fsync", "pend" } do if a[k] then a.st.jobs[a[k]] = nil end end
  end
end

-- A create surely never sent (lid): its pending record removed, and its
-- pending script made a no-op should Redis run it later (gone:<local>).
function R:_abandoned(lid)
  self:_record("abandoned", { self.prefix .. "pend:" .. lid, self.prefix .. "pending", self.prefix .. "gone:" .. lid },
    { lid, R.RETAIN })
end

-- A job cancelled (job.lua): its ask in flight (lid) and its created record
-- waited for (id) forgotten; the records queued stay queued (written).
function R:forget(lid, id)
  if lid then drop_ask(self, lid) end
  if id then self.held[id] = nil end
end

-- One step of asking the store before a create (the async form): the lease
-- and create_limit in one round trip, then the pending record.  true when
-- written, false when not known yet (ask again on a later turn), nil, err.
function R:_ask(params, lid, out)
  local a = self.asks[lid]
  local function refuse(err)
    drop_ask(self, lid, a)
    -- its pending script sent, Redis may still run it: the create (never
    -- sent) abandoned after it, so that pending() does not list it
    if a and a.pend then self:_abandoned(lid) end
    return nil, io_error(err, " (nothing was sent)")
  end
  local limit = self.cfg.create_limit
  if not a then
    local st, err = self:_store()
    if not st then return refuse(err) end
    self:_adopt()
    local q = self.queue
    if q[1] then -- the records of earlier tasks first: Redis failing, no create
      local sh = self.shared
      if sh.down and core.now() < sh.again then return refuse(sh.down) end
      if self.engine then self.engine:pumping(self); return false end
      local ok, ferr = self:flush()
      if not ok then return refuse(ferr) end
    end
    local held = self:_hold()
    a = { st = st, held = held }
    local lerr
    a.lease, lerr = st:send_script("ledger_lease", { self.prefix .. "owner:" .. held.id }, { tostring(self.lease_ms) })
    if not a.lease then return refuse(lerr) end
    if limit then
      a.limit, lerr = st:send_create_allowed(self.hash, limit.count, limit.per)
      if not a.limit then return refuse(lerr) end
    end
    if not fsync_asked[self.where] then
      fsync_asked[self.where] = true
      a.fsync = st:send("CONFIG", "GET", "appendfsync")
    end
    self.asks[lid] = a
  end
  local st = a.st
  st:step(0)
  if not a.pend then
    if not st:ready(a.lease) or (a.limit and not st:ready(a.limit)) or (a.fsync and not st:ready(a.fsync)) then
      return false
    end
    if a.fsync then self:_fsync_answer(st, a.fsync) end
    local leased, err = st:result(a.lease)
    if leased == nil then return refuse(err) end
    a.held.renewed = core.now()
    if a.limit then
      local wait, werr = st:seconds(a.limit)
      if wait == nil then return refuse(werr) end
      if wait > 0 then
        self.asks[lid] = nil
        return nil, new_error("rate_limited", string_format("create_limit: %d creates in the last %.14g s "
          .. "(at most %d, counted in the store %s): the next create is allowed in %d s", limit.count, limit.per,
          limit.count, self.where, math_floor(wait + 0.999)), { field = "create_limit", retry_after = wait })
      end
    end
    local rec = { ["local"] = lid, model = params.model, owner = a.held.id, out = out, time = os_time(),
      prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil }
    local args = pairs_of(rec)
    table.insert(args, 1, lid)
    local perr
    a.pend, perr = st:send_script("ledger_pending", { self.prefix .. "pend:" .. lid, self.prefix .. "pending",
      self.prefix .. "gone:" .. lid }, args)
    if not a.pend then return refuse(perr) end
    st:step(0)
  end
  if not st:ready(a.pend) then return false end
  local done, werr = st:result(a.pend)
  if done == nil then return refuse(werr) end
  self.asks[lid] = nil
  self.shared.down = false -- Redis answered
  self.outs[lid] = out or false
  self:_renewing()
  return true
end

-- A pending record before a create: with a drive loop, asked across its turns
-- (false until known: the job asks again); without, waited for.
function R:before_create(params, lid, out)
  lid = lid or core.random_id()
  while true do
    local ok, err = self:_ask(params, lid, out)
    if ok ~= false or self.engine then return ok, err end
    self.store:step(self.store.timeout)
  end
end

function R:_created(id, params, lid, out, uncertain)
  local owner = self.lease and self.lease.id or self:owner() -- (a lease Redis could not renew: still ours)
  local rec = { id = id, model = params.model, duration = params.duration, resolution = params.resolution,
    kind = Ledger.kind_of(params.model, params.duration, params.resolution), out = out or nil, owner = owner,
    prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil,
    uncertain = uncertain and "1" or nil }
  local args = pairs_of(rec)
  table.insert(args, 1, lid or "")
  table.insert(args, 1, id)
  return self:_record("created", { self.prefix .. "task:" .. id, self.prefix .. "unfinished",
    self.prefix .. "pend:" .. (lid or ""), self.prefix .. "pending" }, args)
end

-- The task's record is written, or queued until Redis answers: true either
-- way; with a drive loop, false while its answer is not there yet (the job
-- asks again on a later turn, and goes on once it is written or Redis failed).
function R:created(task, params, lid)
  local e = self.held[task.id]
  if not e then
    local out = lid and self.outs[lid]
    if lid then self.outs[lid] = nil end
    e = self:_created(task.id, params, lid, out)
    if not self.engine then return true end
    self.held[task.id] = e
  end
  if e.written or e.refused or self:_failed_since(e) then self.held[task.id] = nil; return true end
  return false
end

function R:create_failed(err, params, lid)
  local out = lid and self.outs[lid]
  if lid then self.outs[lid] = nil end
  if err.created and err.id then
    self:_created(err.id, params, lid, out, true)
  elseif not err.maybe_created then
    if lid then self:_abandoned(lid) end
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

-- Its owner: with a drive loop, the lease taken without waiting (sent by
-- pump: _renew_async), else owner() (waited for).
function R:owe(wid, task_id, body)
  local owner = self.lease and self.lease.id
  if not owner and not self.closed then
    if self.engine then
      owner = self:_hold().id
      self:_renewing()
    else
      owner = self:owner()
    end
  end
  return self:_record("owe", { self.prefix .. "owed:" .. wid, self.prefix .. "owed" },
    { wid, task_id, body, owner or "" })
end

function R:delivered(wid)
  self:_record("delivered", { self.prefix .. "owed:" .. wid, self.prefix .. "owed" }, { wid })
end

function R:owed_orphans(k)
  if k.closed then return nil, "the keeper is closed" end
  self:flush()
  local v, err = self:_eval("owed_orphans", { self.prefix .. "owed" }, { self.prefix, k.id })
  if v == nil then return nil, io_error(err).message end
  local out = {}
  for i, r in ipairs(type(v) == "table" and v or {}) do out[i] = { wid = r[1], task = r[2], body = r[3] } end
  return out
end

-- The scripts join the store's own (store.SCRIPTS), so that each runs by EVALSHA
-- once its connection loaded it, its body sent once.
for name, body in pairs(SCRIPTS) do store_mod.SCRIPTS["ledger_" .. name] = body end

return R
