-- The engine: everything the clients of one key share, and the one drive loop.
--
-- One engine per (base URL, API key) in a process: a weak-valued registry keyed
-- by the base URL and a hash of the key (the key itself is never kept here, nor
-- printed).  A custom `transport` object (the test seam) keeps an engine of its
-- own.  `starvideos.new` returns a light client bound to it (client.lua); jobs
-- (job.lua) and requests (request.lua) are handed the engine and the client's
-- ledger (ledger.lua), and never call back into a client.
--
-- It holds the timer heap, the admission queue (at most 4 * max_connections
-- exchanges handed to the transport at once), the in-flight map, the budget (a
-- token bucket of requests_per_second shared by every client of the key), the
-- births (when this process's creates were answered), the learned schedule
-- (schedule.lua: the key's samples, whichever client's job or journal they
-- came from), the transport, and the drive loop that moves them all: tick
-- (what is ready now), pause (wait for the transport or a timer), drive (until
-- a condition).
--
-- The rule for options that differ between live clients of one key (init.lua's
-- reference and the README say it too): the key's requests_per_second and
-- max_connections are the smallest any live client asked for (the strictest:
-- the service limits the key, not a client), worked out again whenever a
-- client joins or leaves (closed or collected).  connect_timeout, ca_file and
-- user_agent stay each client's own and go with each of its exchanges (the
-- transport sets them per exchange).  Every other option (timeout,
-- max_retries, interval, journal, on_event, ...) is the client's own too.
--
-- Inside nginx a cosocket belongs to the request that made it, so an engine's
-- transport cannot serve two requests: there each client gets a drive loop and
-- a transport of its own (made in its request), while the key's budget, births,
-- schedule and connection slots (a semaphore: at most max_connections exchanges
-- of the key at once in the worker) are shared by every request of the worker.
-- With `lua_shared_dict starvideos <size>;` declared, the token bucket itself
-- lives in that dict, shared by every worker of the host (shared_token below).
-- A client closes its engine's transport when it is the last one on it.
--
-- With a `store` (store.lua, Redis): outside nginx one store per (store URL,
-- key) in the process, kept on the key's budget and shared by the key's
-- clients of that URL (E:store_for); inside nginx a store per client (its
-- commands run on cosockets from nginx's keepalive pool).  The engine's
-- first store takes the key's tokens from Redis (store_token below: sent,
-- never waited for); a client's ledger on it (ledger_redis.lua) writes its
-- records asynchronously, moved once a tick while it has any in flight
-- (E:pumping), so that no frame is blocked outside nginx.

local core = require "starvideos.core"
local transport = require "starvideos.transport"
local options = require "starvideos.options"
local Store = options.lazy "starvideos.store" -- loaded by the first engine
local Schedule = options.lazy "starvideos.schedule" -- by the first ledger (the key's schedule)

local setmetatable, next, pairs, ipairs, tostring, rawget, type, math_min, math_max, string_format =
  setmetatable, next, pairs, ipairs, tostring, rawget, type, math.min, math.max, string.format
local now = core.now

local E = {}
E.__index = E

local engines = setmetatable({}, { __mode = "v" }) -- key -> engine (outside nginx)
local WEAK_KEYS = { __mode = "k" }
-- key -> budget (shared by the engines of a key): kept while the process lives,
-- so that what the key learned (the schedule, the births, the bucket) outlasts
-- its clients, as a client per request in nginx needs; a custom transport's
-- (the test seam) only while an engine uses it
local budgets, seam_budgets = {}, setmetatable({}, { __mode = "v" })

-- Inside nginx (a request's cosockets are its own): the engine is not shared,
-- only its budget.
local function ngx_of(cfg)
  if cfg.transport then return nil end
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.socket) == "table" and type(ngx.get_phase) == "function" then return ngx end
end

local function key_of(cfg)
  local key = cfg.base_url .. "\0" .. core.hash(cfg.api_key or "")
  if cfg.transport then key = key .. "\0" .. tostring(cfg.transport) end
  return key
end

local BORN_KEEP = 4096

local dict_token, store_token -- where the key's tokens come from first (E:token)

local function new_budget(cfg, key, ngx)
  local b = { rate = cfg.requests_per_second, conns = cfg.max_connections, last = now(),
    tokens = math_max(1, cfg.requests_per_second), told = 0, claim = 0, born_at = {}, born_ring = {}, born_next = 1,
    members = setmetatable({}, { __mode = "k" }), -- the live clients' cfgs
    engines = setmetatable({}, { __mode = "k" }), -- the key's engines (inside nginx: one per client)
    kinds = {}, views = {}, journals = {}, learners = {}, -- the learned schedule (E:schedule)
    hash = Store.key_hash(cfg.base_url, cfg.api_key), stores = false, -- the store's name of the key; E:store_for's
    side = 0 } -- entries of learners (join, leave)
  if ngx then
    b.slots, b.slots_n, b.slots_debt = require("ngx.semaphore").new(cfg.max_connections), cfg.max_connections, 0
    local dict = ngx.shared and ngx.shared.starvideos
    if dict then b.dict, b.dict_key = dict, "budget:" .. core.hash(key); b.dict_lock = b.dict_key .. ":lock" end
  end
  return b
end

-- Inside nginx: the worker's connection slots of the key follow b.conns.  More
-- are posted at once; fewer are taken back as they come free: a slot in use
-- cannot be taken, so what is owed is taken at this and the next joins (in a
-- request, where a semaphore may be waited on; never from a collected client).
local function resize_slots(b, joining)
  local want = b.conns - b.slots_n
  b.slots_n = b.conns
  if want > 0 then
    local paid = math_min(want, b.slots_debt)
    b.slots_debt = b.slots_debt - paid
    if want > paid then b.slots:post(want - paid) end
  else
    b.slots_debt = b.slots_debt - want
  end
  while joining and b.slots_debt > 0 and b.slots:count() > 0 and b.slots:wait(0) do
    b.slots_debt = b.slots_debt - 1
  end
end

-- The key's shared options, worked out again from its live clients (the
-- smallest each asked for), and handed to its engines and their transports.
local function rejoin(b, joining)
  local rate, conns
  for cfg in pairs(b.members) do
    rate = math_min(rate or cfg.requests_per_second, cfg.requests_per_second)
    conns = math_min(conns or cfg.max_connections, cfg.max_connections)
  end
  if not rate then return end -- no client left: the budget waits for the next one as it is
  if rate ~= b.rate then
    b.rate = rate
    b.tokens = math_min(b.tokens, math_max(1, rate))
  end
  b.conns = conns
  if b.slots then resize_slots(b, joining) end
  for engine in pairs(b.engines) do
    engine.max_sending = 4 * conns
    local t = engine.transport
    if t and t.set_max_connections then t:set_max_connections(conns) end
  end
end

-- The engine for a client's configuration (options.client's cfg, with its
-- api_key and transport still in it): the key's, made at the first client.
-- The client's cfg joins the key's members until E:release(cfg).
function E.for_client(cfg)
  local key = key_of(cfg)
  local ngx = ngx_of(cfg)
  local registry = cfg.transport and seam_budgets or budgets
  local budget = registry[key]
  if not budget then budget = new_budget(cfg, key, ngx); registry[key] = budget end
  local self = not ngx and engines[key]
  if self and not self.closed then
    self.clients = self.clients + 1
  else
    local tcfg = cfg
    if budget.slots then -- the worker's connection slots of this key
      tcfg = setmetatable({ slots = budget.slots }, { __index = cfg })
    end
    self = setmetatable({
      budget = budget, clients = 1, transport = cfg.transport or transport.new(tcfg),
      inflight = {}, downloads = {}, timers = {}, commits = {}, learners = budget.learners,
      sending = 0, queue = {}, qhead = 1, qtail = 0, max_sending = 4 * cfg.max_connections,
      side = 0, -- entries of downloads and commits (join, leave)
      spare = {}, nspare = 0, -- request tables for reuse (request.lua's Request.release)
      spare_job = false, -- a lone query's job table for reuse (job.lua's Job:release)
      pumps = {}, -- ledgers with store commands in flight (E:pumping), entries of side too
      remote = budget.dict and dict_token or false, -- where the key's tokens come from first (E:token)
      store = false, token_n = false, token_down = false, ngx = ngx and true or false,
      -- jobs waiting on the store's answer -> the time they look again anyway (E:await_store)
      store_waiters = setmetatable({}, WEAK_KEYS), store_got = 0,
      polled_id = false, polled_path = false, polled_url = false, -- job.lua's latest poll's path and URL
    }, E)
    budget.engines[self] = true
    if not ngx then engines[key] = self end
  end
  budget.members[cfg] = true -- once its engine is there (making a transport may raise)
  cfg.key_hash = budget.hash -- the store's name of the key, for its ledger (no API key in it)
  rejoin(budget, true)
  return self
end

-- A client let go of the engine (closed or collected): its options no longer
-- count for the key; the last one closes the transport.
function E:release(cfg)
  local b = self.budget
  if cfg and b.members[cfg] then
    b.members[cfg] = nil
    rejoin(b)
  end
  self.clients = self.clients - 1
  if self.clients > 0 or self.closed then return end
  self.closed = true
  b.engines[self] = nil
  local t = self.transport
  self.transport = nil
  if t then t:close() end
end

-- The learned schedule of the key for a client's interval and min_interval
-- (schedule.lua): one set of samples per key, one plan cache per spacing.
function E:schedule(cfg)
  local b = self.budget
  local vk = tostring(cfg.interval) .. "/" .. tostring(cfg.min_interval)
  local s = b.views[vk]
  if not s then s = Schedule.new(cfg, b.kinds); b.views[vk] = s end
  return s
end

-- Whether the samples of the journal at `path` are still to be read into the
-- key's schedule: true the first time it is asked for a path (the caller
-- reads them), false after.
function E:first_read(path)
  local b = self.budget
  if b.journals[path] then return false end
  b.journals[path] = true
  return true
end

-- ------------------------------------------------------------ timers

-- A binary heap of {at, obj}; obj.wake says which entry is current, and
-- obj:advance(t) is called when it falls due.
function E:at(at, obj)
  obj.wake = at
  local h = self.timers
  local i = #h + 1
  h[i] = { at, obj }
  while i > 1 do
    local p = (i - i % 2) / 2
    if h[p][1] <= at then break end
    h[p], h[i] = h[i], h[p]
    i = p
  end
end

local function pop(h)
  local top, n = h[1], #h
  local last = h[n]
  h[n] = nil
  n = n - 1
  if n == 0 then return top end
  h[1] = last
  local i = 1
  while true do
    local l, small = i * 2, i
    if l <= n and h[l][1] < h[small][1] then small = l end
    if l + 1 <= n and h[l + 1][1] < h[small][1] then small = l + 1 end
    if small == i then break end
    h[i], h[small] = h[small], h[i]
    i = small
  end
  return top
end

-- ------------------------------------------------------------ the budget

-- With `lua_shared_dict starvideos <size>;` (nginx), the key's bucket is kept
-- in the dict, for every worker of the host: GCRA, the token bucket's exact
-- twin, keeps one number, the theoretical arrival time `tat` (on the
-- monotonic clock, which every process of the host reads alike).  A poll at t
-- may go when t >= tat - (burst - 1) / rate, and then tat = max(tat, t) + 1 / rate.
-- The dict offers no compare-and-set, and a read and a write are two steps
-- another worker could come between (two workers reading one tat would both
-- take the last token).  So the step holds a lock: `add` is atomic and fails
-- when the key is there, so exactly one worker at a time holds it.  Inside, get
-- and set never yield, so it is held for microseconds; its 10 ms expiry frees
-- it should a worker die in between.  A worker that finds it taken is told to
-- come back 2 ms later, as when no token is there: token() never waits.
local LOCK_TTL, LOCK_RETRY = 0.01, 0.002

-- nil (a token taken), the time to come back, or false: the dict cannot be
-- used (full beyond what it may evict): the worker's own bucket stands in.
local function shared_token(b, t)
  local dict, key = b.dict, b.dict_key
  local locked, err = dict:add(b.dict_lock, true, LOCK_TTL)
  if not locked then
    if err == "exists" then return t + LOCK_RETRY end
    return false
  end
  local rate = b.rate
  local gap = 1 / rate
  local tat = dict:get(key) or 0
  local allowed = tat - (math_max(1, rate) - 1) * gap -- a burst of one second's worth, as the local bucket
  local at
  if t >= allowed then
    dict:set(key, math_max(tat, t) + gap)
  else
    at = allowed
  end
  dict:delete(b.dict_lock)
  return at
end

function dict_token(self, t)
  return shared_token(self.budget, t)
end

-- A warning to every live client of the key (their on_event), said once
-- until things are well again.
function E:warn(message)
  for cfg in pairs(self.budget.members) do
    local on_event = cfg.on_event
    if on_event then on_event({ type = "warning", message = message }) end
  end
end

-- With a store: the key's bucket in Redis (store.lua's token script, on
-- Redis' clock, for every process and host of the store).  Never waited for:
-- the script is sent and the caller told to come back (E:await_store) until
-- its answer is there, which then stands for whoever asks first; an answer
-- "none before w" stands for every caller until w (one script per wait, not
-- one per waiting job).  Redis
-- failing: false, and the host's dict or the engine's own bucket stands in
-- (said once, tried again STORE_AGAIN later).
local STORE_AGAIN = 1

function store_token(self, t, obj)
  local st, n = self.store, self.token_n
  local failed
  if n then
    st:step(0)
    if not st:ready(n) then return self:await_store(obj, t) end
    self.token_n = false
    local wait, err = st:seconds(n)
    if wait then
      if self.token_down then self.token_down = false; self:warn("store " .. st.cfg.where
        .. " answers again: the key's budget is taken from it again") end
      if wait <= 0 then return nil end
      self.token_at = t + wait -- no token before then: nobody of this engine asks again until then
      return t + wait
    end
    failed = err
  elseif self.token_down and t < self.token_down then
    failed = true
  elseif self.token_at and t < self.token_at then
    return self.token_at
  else
    local sent, err = st:send_token(self.budget.hash, self.budget.rate)
    if sent then self.token_n = sent; return self:await_store(obj, t) end
    failed = err
  end
  if failed ~= true then
    if not self.token_down then
      self:warn(string_format("%s: the key's budget is this process's own until it answers",
        type(failed) == "table" and failed.message or tostring(failed)))
    end
    self.token_down = t + STORE_AGAIN
  end
  if self.budget.dict then return shared_token(self.budget, t) end
  return false
end

-- The engine's store for a client's `store` URL (timeout: the client's
-- connect_timeout): the key's shared one of that URL outside nginx, a new
-- one inside.  The engine's first store gives the key's tokens.
function E:store_for(url, timeout)
  local st
  if self.ngx then
    st = Store.new(url, { timeout = timeout })
  else
    local b = self.budget
    local stores = b.stores
    if not stores then stores = {}; b.stores = stores end
    st = stores[url]
    if not st then st = Store.new(url, { timeout = timeout }); stores[url] = st end
  end
  if not self.store then self.store, self.remote = st, store_token end
  return st
end

-- obj (a job) waits, from t, for an answer of a store (a token, a ledger
-- record): it looks again STORE_RETRY later (the time returned, for the
-- caller's timer), or as soon as the engine's store has read an answer,
-- whichever comes first (a tick reads the store first and wakes the waiters
-- at its end, after the pumps took the answers: wake_store_waiters; the pause
-- waits on the store's socket while nothing else is in flight: E:drive).
-- E:at_store sets obj's timer to that time too.
E.STORE_RETRY = 0.002

function E:await_store(obj, t)
  local at = t + E.STORE_RETRY
  if obj then self.store_waiters[obj] = at end
  return at
end

function E:at_store(obj, t)
  return self:at(self:await_store(obj, t), obj)
end

-- The waiters are looked at again now when the store read an answer since
-- the last look (in the pause, a pump or a token's look); those whose timer
-- already fired or changed are let go.
local function wake_store_waiters(self)
  local st, w = self.store, self.store_waiters
  local t, news = now(), st and st.got ~= self.store_got
  if news then self.store_got = st.got end
  for obj, at in pairs(w) do
    if obj.wake ~= at or at <= t then
      w[obj] = nil
    elseif news then
      w[obj] = nil
      self:at(t, obj)
    end
  end
end

-- Polls and creates of every task of the key together stay under
-- requests_per_second (a token bucket holding one second's worth; with a
-- store, the fleet's bucket in Redis; inside nginx with the shared dict, the
-- host's bucket above).  nil when a token was taken, else the time one will be
-- there.  `create`: a create asks; in the local bucket it goes before the
-- polls waiting.
local CLAIM = 0.05

function E:token(t, create, obj)
  local remote = self.remote
  if remote then
    local at = remote(self, t, obj)
    if at ~= false then return at end
  end
  local b = self.budget
  local rate = b.rate
  local tokens, most = b.tokens + (t - b.last) * rate, rate > 1 and rate or 1 -- (math.min/max: no C calls)
  if tokens > most then tokens = most end
  b.last = t
  if tokens >= 1 and (create or t >= b.claim) then b.tokens = tokens - 1; return nil end
  b.tokens = tokens
  -- the waiters are told times a microsecond apart, in the order they asked:
  -- they come back in that order and take turns (told one time, the heap's
  -- order among equals could pass one over for ever)
  local at, told = t + (1 - tokens) / rate, b.told
  if tokens >= 1 then at = b.claim end -- a poll while a create holds the next token
  if at <= told then at = told + 1e-6 end
  b.told = at
  -- a create waiting holds the token due at `at` (and CLAIM after it, should
  -- its job be cancelled meanwhile): polls, which can wait, leave it to the
  -- create, which a caller waits for (polls of many tasks would else starve it)
  if create then b.claim = at + CLAIM end
  return at
end

-- When this process's creates were answered, by task id, for a later wait or
-- watch of the same task (the service's `created` counts whole seconds): the
-- newest 4096.  born(id) -> time | nil; born(id, t) records it.
function E:born(id, t)
  local b = self.budget
  if t == nil then return b.born_at[id] end
  local old = b.born_ring[b.born_next]
  if old then b.born_at[old] = nil end
  b.born_ring[b.born_next], b.born_at[id] = id, t
  b.born_next = b.born_next % BORN_KEEP + 1
end

-- ------------------------------------------------------------ admission

-- At most 4 * max_connections exchanges are handed to the transport at once;
-- the requests beyond wait here in order, so thousands of polls falling due
-- together cost a queue entry each, not a transport's buffers each.  A request
-- that waited is sent (req:send again) as soon as an exchange finishes; one
-- with a deadline is looked at again then (a timer), so waiting never outlasts it.
function E:admit(req)
  if self.sending < self.max_sending then return true end
  if not req.queued then
    req.queued = true
    local tail = self.qtail + 1
    self.queue[tail], self.qtail = req, tail
    if req.deadline then self:at(req.deadline, req) end
  end
  return false
end

-- The side work of a tick (downloads' progress, commits; and the key's
-- learners): a set is joined or left through these two, which count its
-- entries in counts.side (the engine's own, or for the learners, which are the
-- key's, its budget's), so that a tick or pause with none looks at no set at all.
local function join(counts, set, obj)
  if set[obj] then return end
  set[obj] = true
  counts.side = counts.side + 1
end

local function leave(counts, set, obj)
  if not set[obj] then return end
  set[obj] = nil
  counts.side = counts.side - 1
end

function E:track(req)
  self.inflight[req.handle] = req
  self.sending = self.sending + 1
  if req.op == "download" then join(self, self.downloads, req) end
end

function E:untrack(req)
  local h = req.handle
  if h and self.inflight[h] then self.inflight[h] = nil; self.sending = self.sending - 1 end
  if req.op == "download" then leave(self, self.downloads, req) end
end

-- A finished download whose commit thread runs (request.lua): polled each tick.
function E:committing(req)
  join(self, self.commits, req)
end

-- A ledger still learning the schedule from its journal (ledger.lua): one
-- bounded slice per tick until it is done.  The set is the key's (every engine
-- of the key has it), so a read goes on when the client that began it closes.
function E:learning(ledger)
  join(self.budget, self.learners, ledger)
end

-- A ledger with store commands in flight (ledger_redis.lua): its pump() is
-- called once a tick (moving its store's bytes: store:step(0)) until it says
-- it is done, and the pause is then at most 5 ms.
function E:pumping(ledger)
  join(self, self.pumps, ledger)
end

-- Send the waiting requests there is room for.
function E:unqueue()
  local q, i = self.queue, self.qhead
  while i <= self.qtail and self.sending < self.max_sending do
    local req = q[i]
    q[i] = nil
    i = i + 1
    self.qhead = i
    req.queued = false
    if not req.done and not req.handle then req:send(now()) end
  end
  if i > self.qtail then self.qhead, self.qtail = 1, 0 end
end

-- ------------------------------------------------------------ the drive loop

-- Everything that is ready, without waiting: timers that fell due, network work
-- (unless `polled`: the transport's poll just did it), exchanges that finished,
-- download progress, commits, a slice of a journal.
local side_work

local function tick(self, polled)
  -- what the store answered meanwhile, read (a step(0) of a frame loop has no
  -- pause that would have): the pumps below take it, the waiters wake after
  if self.store and next(self.store_waiters) then self.store:step(0) end
  local h = self.timers
  if h[1] then
    local t = now()
    while h[1] and h[1][1] <= t do
      local e = pop(h)
      local obj = e[2]
      if obj.wake == e[1] then obj:advance(t) end
    end
  end
  local tr = self.transport
  if not polled then tr:poll(0) end
  local x = tr:finished()
  while x do
    local req = self.inflight[x]
    if req then
      req:finished(now()) -- untracks it
    else
      tr:result(x)
    end
    -- none of ours left in flight: the transport is not asked again (an
    -- exchange nobody tracks any more is taken at the next tick)
    if self.sending == 0 then break end
    x = tr:finished()
  end
  if self.qtail >= self.qhead then self:unqueue() end
  local b = self.budget
  if b.side > 0 then
    for ledger in pairs(self.learners) do
      if ledger:learn_more() then leave(b, self.learners, ledger) end
    end
  end
  if self.side > 0 then side_work(self, tr) end
  -- after the pumps took what the store answered (a ledger's record): the
  -- jobs waiting on it look again at the next turn's timers (only a job of an
  -- engine with a store ever waits on one: E:store_for)
  if self.store and next(self.store_waiters) then wake_store_waiters(self) end
end

-- The ledgers' store commands, downloads' progress, commits (tick).
function side_work(self, tr)
  if next(self.pumps) then
    for ledger in pairs(self.pumps) do
      if ledger:pump() then leave(self, self.pumps, ledger) end
    end
  end
  if next(self.downloads) then
    for req in pairs(self.downloads) do
      if req.handle then req.owner:progress(tr:progress(req.handle)) end
    end
  end
  if next(self.commits) then
    local done = {}
    for req in pairs(self.commits) do
      local ok, cerr = req.commit:poll()
      if ok ~= nil then done[#done + 1] = { req, ok, cerr } end
    end
    for _, d in ipairs(done) do
      leave(self, self.commits, d[1])
      d[1]:committed(d[2], d[3])
    end
  end
end

E.tick = tick

-- The one drive loop: until done(arg) (done nil: until arg.done, a job's) or
-- the time `stop` (monotonic).  `acted`: the caller has just sent (or set a
-- timer), so the loop begins with the pause: what is already due makes it
-- return at once, and a finished exchange waiting to be taken too (every
-- transport's poll), so nothing is held up.
-- The pause lets up to `wait` seconds pass while the transport works: inside
-- the transport (which returns as soon as an exchange finishes; then the tick
-- does not poll it again), or through a `sleep` given by the caller (a
-- coroutine scheduler's), coming back often while exchanges run.
function E:drive(done, arg, stop, sleep, acted)
  local polled = false
  while true do
    if acted then
      acted = false
    else
      tick(self, polled)
      if done then
        if done(arg) then return end
      elseif arg.done then
        return
      end
    end
    local wake, wait = self.timers[1], 1 -- the clock is read only when a time is to be waited for
    if wake or stop then
      local t = now()
      if stop and t >= stop then return end
      if wake then wait = math_max(0, wake[1] - t) end
      if stop then wait = math_min(wait, stop - t) end
    end
    polled = false
    if self.side > 0 then
      if next(self.downloads) then wait = math_min(wait, 0.25) end -- progress stays live
      if next(self.commits) or next(self.pumps) then wait = math_min(wait, 0.005) end
    end
    if self.budget.side > 0 then wait = math_min(wait, 0.005) end -- a journal being read
    if wait > 0 then
      if sleep then
        if next(self.inflight) then self.transport:poll(0); wait = math_min(wait, 0.01) end
        sleep(wait)
      elseif self.store and next(self.store_waiters) and not next(self.inflight) and self.store:waiting() then
        self.store:step(wait) -- returns at the store's first answer (wake_store_waiters takes it)
      else
        self.transport:poll(wait)
        polled = true
      end
    end
  end
end

-- What drive waits for (no closure made per call).
local function group_done(group) return group.left == 0 end
local function records_settled(self)
  for ledger in pairs(self.pumps) do
    if not ledger:settled() then return false end
  end
  return true
end

-- A blocking call's records (ledger_redis.lua's, written asynchronously) are
-- known written, or the store failing, before it returns.
local function settle(self, sleep)
  if next(self.pumps) then self:drive(records_settled, self, nil, sleep) end
end
local function has_finished(fin) return fin[1] ~= nil end

-- The unfinished jobs of one client (those made with its cfg): on a timer, or
-- owning a request in flight, waiting in the queue or committing.  Walked only
-- when a client closes, so that a job costs no entry in a set of its client's.
function E:jobs_of(cfg)
  local seen, out = {}, {}
  local function add(obj)
    local job = obj.owner or obj -- a request's owner is its job
    if job.cfg == cfg and not job.done and not seen[job] then seen[job] = true; out[#out + 1] = job end
  end
  for _, e in ipairs(self.timers) do if e[2].wake == e[1] then add(e[2]) end end
  for _, req in pairs(self.inflight) do add(req) end
  for i = self.qhead, self.qtail do if self.queue[i] then add(self.queue[i]) end end
  for req in pairs(self.commits) do add(req) end
  return out
end

-- A step of `seconds` (0: tick once), returning early once `fin` (a list jobs
-- add themselves to when they end) holds one: the jobs taken from it, or nil.
function E:step(fin, seconds)
  if seconds and seconds > 0 then
    self:drive(has_finished, fin, now() + seconds)
  else
    self:tick()
  end
  if not fin[1] then return nil end
  local out = {}
  for i = 1, #fin do out[i], fin[i] = fin[i], nil end
  return out
end

-- A group of jobs, each at once on the heap; driven until all are done:
-- {task=, err=, path=} for each, in order.
function E:run(jobs, sleep)
  local group = { left = #jobs }
  sleep = sleep or (jobs[1] and jobs[1].cfg.sleep)
  for _, job in ipairs(jobs) do
    job.group = group
    self:at(now(), job)
  end
  self:drive(group_done, group, nil, sleep)
  settle(self, sleep)
  local out = {}
  for i, job in ipairs(jobs) do out[i] = { task = job.task, err = job.err, path = job.path } end
  return out
end

-- One job (or nil, err: a job that could not be made), its first step taken at
-- once (a lone query with a token never touches the heap), then driven to its
-- end from the pause (its request was just sent), pausing through `sleep` (nil:
-- the job's client's): its task, or nil, err.  client:query, create, wait,
-- download and generate all come this one way.
function E:run_one(job, err, sleep)
  if not job then return nil, err end
  sleep = sleep or job.cfg.sleep
  job:advance(now())
  if not job.done then E.drive(self, nil, job, nil, sleep, true) end
  if self.side > 0 then settle(self, sleep) end
  local task, failed = job.task, job.err
  job:release() -- read: a lone query's table may serve the next one
  if failed then return nil, failed end
  return task
end

return E
