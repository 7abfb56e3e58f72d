-- The loop: one transport, the timers, admission and the drive loop; the clients of a
-- key share one (its key's part), but inside nginx (a cosocket belongs to its request) each has its own.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
-- Ctrl-C's watch over a blocking drive (interrupt.lua), loaded at the first one: a frame loop's steps never need it
local function guard(...) return require("starvideos.interrupt").guard(...) end

local setmetatable, next, pairs, ipairs, math_min, math_max = setmetatable, next, pairs, ipairs, math.min, math.max
local now = core.now

local L = {}
L.__index = L

-- own: a client's own loop (inside nginx), not the key's; transport: the one the client
-- chose (client.lua), else libcurl's (core.curl in the static library; curl: true, it sends
-- a body of starvideos.bytes as it is).
local function new(cfg, key, own, transport)
  local curl = not transport
  transport = transport or (core.curl or require("starvideos.curl").new) { api_key = cfg.api_key,
    ca_file = cfg.ca_file, user_agent = cfg.user_agent, connect_timeout = cfg.connect_timeout,
    max_connections = key.conns, keepalive_timeout = cfg.keepalive_timeout } -- (the key's first client's)
  return setmetatable({ key = key, clients = 0, own = own, transport = transport, curl = curl,
    inflight = {}, sending = 0, max_sending = 4 * key.conns, queue = {}, qhead = 1, qtail = 0, queued = {},
    timers = {}, due = {}, downloads = {}, busy = {}, sources = {}, heard = {},
    waiters = setmetatable({}, { __mode = "k" }), stands = setmetatable({}, { __mode = "k" }) }, L)
end

-- The loop of a client (cfg with its api_key still in it) of its key (key.lua), on the
-- transport the client chose: the key's, made by its first client, outside nginx.
function L.for_client(cfg, key, transport)
  local self = config.nginx() and new(cfg, key, true, transport)
    or key:part("loop", function() return new(cfg, key, false, transport) end)
  self.clients = self.clients + 1
  return self
end

-- The key's max_connections changed (key.lua): admission and the transport follow.
function L:limit(conns, joining)
  self.max_sending = 4 * conns
  local t = self.transport
  if t and t.set_max_connections then t:set_max_connections(conns, joining) end
end

-- A client let go of the loop; the last one closes the transport.
function L:release()
  self.clients = self.clients - 1
  if self.clients > 0 or self.closed then return end
  self.closed = true
  local t = self.transport
  self.transport = nil
  if t then t:close() end
end

-- obj:advance(t) at `at` (its timer: a later call moves it); the timers are a heap.
function L:at(at, obj)
  self.due[obj] = at
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
  h[1] = h[n]
  h[n] = nil
  n = n - 1
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

-- A source of answers the loop's waiters wait for (a ledger's connection, another rock's: its server's socket):
-- src.got, how many answers it has read (news when it grew); src:step(wait), what is ready moved, waiting at most
-- `wait` s for an answer; src:waiting(), whether commands of it are in flight (a pause may wait on it).  A tick
-- steps each source that has waiters or commands in flight; the pause waits on one when nothing else is.
function L:source(src)
  for _, s in ipairs(self.sources) do if s == src then return end end
  self.sources[#self.sources + 1], self.heard[src] = src, src.got or 0
end

L.ASK_AGAIN = 0.002 -- seconds a waiter looks again when no answer woke it

-- obj waits, from t, for an answer of a source (a token, a record): it looks
-- again ASK_AGAIN (or `later`) s later (the time returned: obj's timer), or as
-- soon as a source has read an answer, whichever is first.
function L:await(obj, t, later)
  local at = t + (later or L.ASK_AGAIN)
  if obj then self.waiters[obj] = at end
  return at
end

-- obj waits so and its timer is set (one place for what each waiter did itself: a waiter that kept its first time
-- while an answer woke it early waited for good).
function L:wait_for(obj, t, later) self:at(self:await(obj, t, later), obj) end

-- Whether a source read an answer since the last look (each one's count taken).
local function news_of(self)
  local news = false
  for _, src in ipairs(self.sources) do
    if src.got ~= self.heard[src] then self.heard[src], news = src.got, true end
  end
  return news
end

-- The waiters look again now when a source read an answer since the last
-- look, or a busy object (a journal's writer) settled; those whose timer fired
-- or changed meanwhile are let go.
local function wake_waiters(self)
  local w = self.waiters
  local t, news = now(), news_of(self)
  news = news or self.settled
  self.settled = false
  for obj, at in pairs(w) do
    local stale = self.due[obj] ~= at or at <= t
    if stale or news then w[obj] = nil end
    if news and not stale then self:at(t, obj) end
  end
end

-- True when req may go to the transport now; else it waits in order (sent once an
-- exchange finishes; one with a deadline is looked at then, so waiting never outlasts it).
function L:admit(req)
  if self.sending < self.max_sending then return true end
  if not self.queued[req] then
    self.queued[req] = true
    local tail = self.qtail + 1
    self.queue[tail], self.qtail = req, tail
    if req.deadline then self:at(req.deadline, req) end
  end
  return false
end

function L:track(req)
  self.inflight[req.handle] = req
  self.sending = self.sending + 1
  if req.file then self.downloads[req] = true end -- (a transfer into a file: its progress told)
end

function L:untrack(req)
  local h = req.handle
  if h and self.inflight[h] then self.inflight[h], self.sending = nil, self.sending - 1 end
  self.downloads[req] = nil
end

-- obj:turn() once a turn until it says it is done (a ledger's records to write).
function L:turning(obj) self.busy[obj] = true end

local function unqueue(self)
  local q, i = self.queue, self.qhead -- a head and a tail: taking from the front shifts nothing
  while i <= self.qtail and self.sending < self.max_sending do
    local req = q[i]
    q[i], i = nil, i + 1
    self.qhead, self.queued[req] = i, nil
    if not req.done and not req.handle then req:send(now()) end
  end
  if i > self.qtail then self.qhead, self.qtail = 1, 0 end
end

local function side_work(self, tr)
  for obj in pairs(self.busy) do
    if obj:turn() then self.busy[obj], self.settled = nil, true end -- (news for the waiters: a record written)
  end
  for req in pairs(self.downloads) do
    if req.handle then req.owner:progress(tr:progress(req.handle)) end
  end
end

-- Everything that is ready, without waiting: timers due, network work (unless
-- `polled`: the pause just did it), finished exchanges, the side work.
function L:tick(polled)
  -- what each source answered meanwhile (a frame loop has no pause), and what was sent to it moved on: a command no
  -- one waits for (a rate limit's hold, for the fleet) is written now, not at the next ask
  local waited = next(self.waiters) ~= nil
  for _, src in ipairs(self.sources) do
    if waited or src:waiting() then src:step(0) end
  end
  local h, t = self.timers, now()
  while h[1] and h[1][1] <= t do
    local e = pop(h)
    local obj = e[2]
    if self.due[obj] == e[1] then -- fired: let go (a timer set later is due anew)
      self.due[obj] = nil
      self.current = obj
      obj:advance(t)
    end
  end
  self.current = nil
  local tr = self.transport
  if not tr then return end -- a timer's work closed the last client (a callback's close): nothing more to do
  if not polled then tr:poll(0) end
  local x = tr:finished()
  while x do -- (an exchange nobody tracks any more, cancelled, is taken too: one a turn at least)
    local req = self.inflight[x]
    self.current = req
    if req then req:finished(now()) else tr:result(x) end
    x = not self.closed and self.sending > 0 and tr:finished() -- (an answer's callback may close the transport)
  end
  self.current = nil
  if self.qtail >= self.qhead then unqueue(self) end
  self.key:turn()
  side_work(self, tr)
  -- after the pumps took the sources' answers, and the writers settled (waiters of this very tick too)
  if (self.sources[1] or self.settled) and next(self.waiters) then wake_waiters(self) end
end

-- The first source with commands in flight, or nil.
local function waiting_source(self)
  for _, src in ipairs(self.sources) do if src:waiting() then return src end end
end

-- The one drive loop: until done(arg) or the time `stop` (`acted`: the caller just
-- sent, so it begins with the pause).  The pause waits in the transport (until an
-- exchange finishes), on a source's socket when only a source is awaited, on a
-- journal's writer when only it is busy, or through a caller's `sleep` (a
-- coroutine scheduler's), coming back often.
local function drive(self, done, arg, stop, sleep, acted)
  local polled = false
  while true do
    if acted then
      acted = false
    else
      self:tick(polled)
      if done(arg) or self.closed then return end
    end
    local t, wake, wait = now(), self.timers[1], 1
    if stop and t >= stop then return end
    if wake then wait = math_max(0, wake[1] - t) end
    if stop then wait = math_min(wait, stop - t) end
    if next(self.downloads) then wait = math_min(wait, 0.25) end -- progress stays live
    if next(self.busy) or self.key:sharing() then wait = math_min(wait, 0.005) end
    polled = false
    local src = wait > 0 and not sleep and not next(self.inflight) and waiting_source(self)
    if wait > 0 then
      if sleep then
        if next(self.inflight) then self.transport:poll(0); wait = math_min(wait, 0.01) end
        sleep(wait)
      elseif src then
        src:step(wait) -- returns at its first answer
      elseif not next(self.inflight) and next(self.busy) and next(self.busy).pause then
        next(self.busy):pause(wait) -- (a journal's writer: returns once its records are written)
      else
        self.transport:poll(wait)
        polled = true
      end
    end
  end
end

-- The drive, watched for Ctrl-C (interrupt.lua) unless a caller's `sleep` (a coroutine scheduler's: Lua 5.1
-- yields across no pcall) or nginx (no SIGINT there) runs it.
function L:drive(done, arg, stop, sleep, acted)
  if sleep or self.own then return drive(self, done, arg, stop, sleep, acted) end
  return guard(self, drive, self, done, arg, stop, sleep, acted)
end

local function settled(self)
  for obj in pairs(self.busy) do
    if obj.settled and not obj:settled() then return false end
  end
  return true
end

-- A blocking call returns once its records are written, or their ledger failing.
function L:settle(sleep)
  if next(self.busy) then self:drive(settled, self, nil, sleep) end
end

-- The unfinished jobs of one client (those made with its cfg; nil: every client's): walked only
-- when a client closes (or Ctrl-C stops a call), so that a job costs no entry in a set of its client's.
-- A timer of the loop's own (a store's lease renewer, a trace exporter) is no client's job: it has no cfg.
function L:jobs_of(cfg)
  local seen, out = {}, {}
  local function add(obj)
    -- a request's owner is its job, or an object a job owns (a preflight's), its owner's owner ... ; one a rock's
    -- host registered (its requests and timers: host.lua's) works for the host's job while it runs, else its top
    -- owner stands for itself (a release after its job's end, a sweep's), for the client of its host
    local job, host = obj, self.stands[obj]
    while rawget(job, "owner") do job = job.owner; host = self.stands[job] or host end -- (a seat has none)
    if host and host.job and not host.job.done then job = host.job end
    local of = host and host.cfg or rawget(job, "cfg") -- (a seat reached: no client's object, nothing asked of it)
    if of ~= nil and (cfg == nil or of == cfg) and not job.done and not seen[job] then
      seen[job] = true
      out[#out + 1] = job
    end
  end
  for _, e in ipairs(self.timers) do if self.due[e[2]] == e[1] then add(e[2]) end end
  for _, req in pairs(self.inflight) do add(req) end
  if self.current then add(self.current) end -- (the one whose turn it is: a callback in it closed its client)
  for i = self.qhead, self.qtail do if self.queue[i] then add(self.queue[i]) end end
  return out
end

-- (predicates of drive, batch.lua's and keep's too)
function L.has_finished(fin) return fin[1] ~= nil end

-- A step of `seconds` (0: one tick), ending once a job ends (into `fin`): the jobs taken, or nil.
function L:step(fin, seconds)
  if seconds and seconds > 0 then self:drive(L.has_finished, fin, now() + seconds) else self:tick() end
  if not fin[1] then return nil end
  local out = {}
  for i = 1, #fin do out[i], fin[i] = fin[i], nil end
  return out
end

function L.group_done(group) return group.left == 0 end
local function job_done(job) return job.done end

-- Jobs driven until all are done: {task=, err=, path=} for each, in order.
function L:run(jobs, sleep)
  local group = { left = #jobs }
  sleep = sleep or (jobs[1] and jobs[1].cfg.sleep)
  for _, job in ipairs(jobs) do
    job:join(group)
    self:at(now(), job)
  end
  self:drive(L.group_done, group, nil, sleep)
  self:settle(sleep)
  local out = {}
  for i, job in ipairs(jobs) do out[i] = { task = job.task, err = job.err, path = job.path, sha256 = job.sha256 } end
  return out
end

-- One job (or nil, err), its first step taken now, driven to its end: task, or nil, err.
function L:run_one(job, err, sleep)
  if not job then return nil, err end
  sleep = sleep or job.cfg.sleep
  job:advance(now())
  if not job.done then self:drive(job_done, job, nil, sleep, true) end
  self:settle(sleep)
  if job.err then return nil, job.err end
  return job.task
end

return L
