-- The store: a Redis server that the processes and hosts of one key share, reached by its URL or table
-- (fleet/url.lua; docs/keep-and-fleet.md#connecting) over a connection of fleet/conn.lua (inside nginx
-- its cosockets; outside, starvideos.redis, non-blocking), loaded only when a store is used, so that a
-- library without it loads and works: only a store says what is missing.
--
--   store.new(url[, {timeout = s}]) -> store   nothing sent yet: it connects at the first send; the URL's
--       table's replicas (fleet/url.lua's): a create's pending record WAITs for them; a record of a task
--       already paid for is covered by one WAIT with the others (fleet/acks.lua: st.acks)
--   store.for_key(url, key, timeout) -> the key's store of that URL (outside
--       nginx one per key and URL in the process; inside, one per client)
--   store.define(name, body): a script the store runs (EVAL), every key it touches declared (fleet/declared.lua:
--       keys.more, key(label), needed()); one on a fleet's keys checks the store's identity as it runs
--       (fleet/identity.lua), and a reset it finds has the watchers' records sent first
--   store:watch(prefix, w, on): w:records_again(told) -> {{script, keys, args[, wait]}...} called at a reset
--   async: store:send(cmd, ...), store:send_script(name, keys, args) -> n;
--       store:step(wait); store:ready(n); store:result(n) -> value[, nil, short] | nil, err (one taker);
--       store:take(h) -> {value, err, short}, first | nil: h = {n = n}'s answer for every waiter of h (inside nginx
--       the coroutines of a worker share a budget's ask, the lease's renewal, a queue's record), sent by
--       store:send_for(h, name, keys, args) -> n
--   blocking (the CLI, keep's reads): store:call(cmd, ...), store:script(name, keys, args)
-- A bad URL raises, naming `store`, never the password.  A broken connection
-- (Redis gone, reset, silent past the timeout) fails every command in flight
-- with err (kind "io", field "store", naming redis://host:port/db); the next
-- send connects again.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local config = X.config
local errors = X.errors
local Route = require "starvideos.fleet.route"
local Identity = require "starvideos.fleet.identity"
local Acks = require "starvideos.fleet.acks"
local Url = require "starvideos.fleet.url"
local Declared = require "starvideos.fleet.declared"

local type, tostring, select, setmetatable, error, string_format, math_floor, math_max =
  type, tostring, select, setmetatable, error, string.format, math.floor, math.max
local new_error = errors.new_error

local M = {}

-- A number as Redis reads one: a whole one as an integer ("1000", never Lua 5.3's "1000.0", which Redis refuses
-- where a count or milliseconds go: WAIT, SET PX, EXPIRE), any other in its exact shortest form.  Else v.
function M.wire(v)
  if type(v) ~= "number" then return v end
  if v == math_floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return string_format("%d", v) end
  return string_format("%.17g", v)
end
local wire = M.wire

local SCRIPTS = {} -- name -> Declared.PRELUDE .. body
local GUARDED = {} -- name -> the identity's GUARD .. that

function M.define(name, body)
  SCRIPTS[name] = Declared.PRELUDE .. body
  GUARDED[name] = Identity.GUARD .. SCRIPTS[name]
end

-- The text a script runs as (its PRELUDE and body; guarded: the identity's GUARD first), or nil; the names defined.
function M.script_text(name, guarded) return (guarded and GUARDED or SCRIPTS)[name] end
function M.script_names()
  local list = {}
  for name in pairs(SCRIPTS) do list[#list + 1] = name end
  table.sort(list)
  return list
end

local S = {}
S.__index = S

local queue, answer -- (below: a job sent as built, a job's answer read: the store's own, given to its identity)

-- Nothing sent yet: Redis down is no error until a record must be written (nginx: no PING a request).
function M.new(url, opts)
  local cfg = Url.parse(url)
  if opts ~= nil and type(opts) ~= "table" then errors.argerror(2, "store.new", "table", type(opts)) end
  local timeout = opts and opts.timeout or config.DEFAULTS.connect_timeout
  local replicas, rt = cfg.replicas, cfg.replica_timeout
  if type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0 then
    error("store.new: timeout must be a number of seconds > 0, got " .. tostring(timeout), 2)
  end
  -- got: answers read so far (S:step), for a loop that waits on them (loop:await)
  -- identity: its own part, what it heard of the store's identity (fleet/identity.lua); wait_cmd: the WAIT
  -- after a record naming a paid task (none without replicas); its time adds to a silence's
  local ms = math_max(1, math_floor(rt * 1000 + 0.5))
  local st = setmetatable({ cfg = cfg, where = cfg.where, timeout = timeout, ngx = config.nginx(), seq = 0,
    jobs = {}, got = 0, replicas = replicas, replica_timeout = rt,
    wait_cmd = replicas > 0 and { "WAIT", wire(replicas), wire(ms) } or nil,
    silence = timeout + (replicas > 0 and rt or 0) }, S)
  st.server = M.server(cfg.where)
  local function send(job) return queue(st, job) end
  st.identity, st.acks = Identity.new(st, send, function(n) return answer(st, n) end), Acks.new(st, send)
  return st
end

-- What the process (inside nginx a worker) knows of the server behind an address (where), shared by every store
-- of that address (store.server): one table of it in the process, each field its user's --
--   settings_asked: its settings asked by a first create (fleet/ask.lua); unverified_said: verify = false said
--   master, named: Sentinel's master last confirmed, the index of the sentinel that named it (fleet/sentinel.lua)
--   map: Cluster's slot map (fleet/cluster.lua)
--   runs, epoch: the run ids heard there, by node, and how many others were heard after the first
--       (fleet/identity.lua)
--   links: the queues of the ledgers' records and whether it is down, by store id and key (fleet/queue.lua)
local servers = {}

function M.server(where)
  local s = servers[where]
  if not s then s = { where = where, runs = {}, epoch = 0, links = {} }; servers[where] = s end
  return s
end

-- The key's store of url (a URL, a table, or url.parse's table; its part, key.lua, named by what a connection may
-- be shared by and the replicas its records wait for), outside nginx.
function M.for_key(url, key, timeout)
  local c = Url.parse(url) -- (a client's: parsed already, passed on)
  local function make() return M.new(c, { timeout = timeout }) end
  if config.nginx() then return make() end
  return key:part(string_format("store %s\0%d\0%.17g\0%s", c.id, c.replicas, c.replica_timeout,
    tostring(c.key_locking)), make)
end

-- A store of verify = false said to on_event at warning level, once in a process (its server's).  The store.
function S:unverified(on_event)
  local sc = self.cfg
  if sc.tls and not sc.verify and not self.server.unverified_said and on_event then
    self.server.unverified_said = true
    on_event { type = "warning", message = string_format("store %s: verify = false: the server's certificate and "
      .. "name are not checked (whoever is on the path can read and change the records)", sc.where) }
  end
  return self
end

-- (starvideos.redis' messages start with "redis host:port: ", which the store's name says)
function S:error(msg, reply)
  msg = tostring(msg):gsub("^redis %S+: ", "")
  return new_error("io", string_format("store %s: %s", self.cfg.where, msg), { field = "store", reply = reply })
end

-- The store's connection (its route, made again once found broken): b, or nil, err.
local function backend(st)
  if st.b and not st.b.broken then return st.b end
  if st.b then st.b:close() end
  local b, err = Route.open(st.cfg, st.silence, st.ngx, st.server)
  st.b = b
  if b then M.null, st.client = b.null, b.name end
  return b, err
end

-- job.args sent (job.b, job.cn: what result(n) needs; job.wait: WAIT after them): n, or nil, err.  A connection
-- found broken at send (Redis restarted while it was idle) is made again once: the command was not sent.
function queue(st, job)
  local b, err
  job.sent = st.observe and core.now() -- (st.observe: the metrics of the client's, client.lua)
  for _ = 1, 2 do
    b, err = backend(st)
    if not b then break end
    job.b, job.cn, err = b, b:send(job.args, job.wait and st.wait_cmd)
    if job.cn then
      st.seq = st.seq + 1
      st.jobs[st.seq] = job
      return st.seq
    end
    b.broken = true
  end
  return nil, st:error(err)
end

-- A job refused by a reset (its identity's again) sent again as it is, on the connection now: its answer not
-- there yet, or the broken connection's.
local function resend(st, job)
  local b, err = backend(st)
  if b then job.cn, err = b:send(job.args, job.wait and st.wait_cmd) end
  if b and job.cn then job.b = b; return end
  if b then b.broken = true end
  job.answer = { "broken", err }
end

function S:send(...)
  local args = { n = select("#", ...), ... }
  for i = 1, args.n do args[i] = wire(args[i]) end
  return queue(self, { args = args })
end

-- Script name sent for h (S:take's; h.n its number): h.sending marks it while the send yields, so that inside
-- nginx another waiter of h waits for it rather than sending it again.  n, or nil, err.
function S:send_for(h, name, keys, args, wait)
  h.sending = core.now()
  local n, err = self:send_script(name, keys, args, wait)
  h.sending = nil
  if n then h.n, h.answer = n, nil end
  return n, err
end

-- wait: a record naming a paid task, acknowledged by the store's replicas (S:result's third value says whether).
-- (key_locking: Upstash locks only a script's KEYS when its first line says so, a line Redis refuses)
M.KEY_LOCKING = "#!lua flags=allow-key-locking\n"

function S:send_script(name, keys, args, wait)
  local body = SCRIPTS[name]
  if not body then error("store:send_script: no script " .. tostring(name), 2) end
  local pre = type(keys[1]) == "string" and keys[1]:match("^starvideos:{[^}]*}:")
  if pre then body = GUARDED[name] end
  if self.cfg.key_locking then body = M.KEY_LOCKING .. body end
  local list, at = Declared.list(body, keys, nil, args, pre and { pre .. "identity", self.identity:arg(pre) }, wire)
  return queue(self, { args = list, pre = pre, at = at, wait = wait, name = name, body = body, keys = keys,
    args_in = args })
end

function S:watch(pre, w, on) self.identity:watch(pre, w, on) end

function S:step(wait)
  local b = self.b
  if not b or b.broken then self.identity:reap(); self.acks:turn(); return true end
  local n, err = b:poll(wait or 0) -- n: true, or (the C backend's) a count of answers read
  if not n then b.broken = true end
  self.identity:reap()
  self.acks:turn()
  if not n then return nil, self:error(err) end
  if n ~= true then self.got = self.got + n end
  return true
end

-- Whether a pause can wait on this store's socket (step(wait) returns at the first answer): commands in
-- flight on the C backend (a cosocket's cannot be waited on with the transport's).
function S:waiting()
  local b = self.b
  return b and not b.broken and b:pending() > 0 or false
end

-- The answer of job n, once it is there: {status, value, short}; short (a record waited for, not acknowledged
-- by the replicas asked): how many did, or WAIT's error.  The count is checked here, never assumed.
function answer(st, n)
  local job = st.jobs[n]
  if not job then error("store: no command " .. tostring(n) .. " in flight (or its result was taken)", 3) end
  if not job.answer then
    -- (inside nginx reading it may yield, a reset's records or the command sent again: one reader at a time, the
    -- other coroutines of the worker find it not there yet)
    if st:held(job.reading) then return nil end
    job.reading = core.now()
    local status, value, acked = job.b:reply(job.cn)
    if status == "wait" then job.reading = nil; return nil end
    st.identity:master(job.b)
    local cur = status == "error" and job.pre and tostring(value):match("^STARVIDEOS_RESET ?(%S*)")
    local labels = status == "error" and Declared.asked(value)
    local why = labels and Declared.extend(job, labels, wire)
    if labels and not why then
      resend(st, job) -- (its keys declared: run again; nothing was written)
    elseif cur then
      if st.identity:again(job, cur) then resend(st, job) else job.answer = { "ok" } end
    else
      if why then value = why end
      if status == "broken" then job.b.broken = true end
      if job.sent then st.observe:store(core.now() - job.sent, status == "ok") end
      st.identity:heard(job, status)
      local waited = job.wait and st.wait_cmd and status == "ok"
      local short = waited and not (type(acked) == "number" and acked >= st.replicas)
      if waited and not short then st.told_short = nil end
      job.answer = { status, value, short and (acked or 0) or nil }
    end
    job.reading = nil
  end
  -- (the records a reset or a failover sent first are answered before any other)
  if job.relay or not st.identity:relaying() then return job.answer end
end

M.RETELL = 60 -- seconds: a shortage of replicas that lasts is said again this often

-- A record (what) written but not acknowledged by the replicas asked (short: S:result's third value): the
-- error that says so (again: what is done with it, "written again" unless said), told through on_event (a
-- warning) once, then again at most every RETELL s while no record is acknowledged.
function S:unreplicated(what, short, on_event, again)
  local err = self:error(string_format("%s: not acknowledged by %d replicas within %g s (%s); %s until it is", what,
    self.replicas, self.replica_timeout, type(short) == "number" and short .. " did"
    or "WAIT answered " .. tostring(short), again or "written again"))
  if on_event and not (self.told_short and core.now() - self.told_short < M.RETELL) then
    self.told_short = core.now()
    on_event { type = "warning", message = err.message }
  end
  return err
end

-- A record (what) written but its WAIT refused for good (short: WAIT's error words, Route.final's): the error
-- that says so, naming what the user needs, or nil when the refusal may pass.
function S:refused_wait(what, short)
  if type(short) ~= "string" or not Route.final(short) then return nil end
  return self:error(string_format("%s: WAIT is refused (%s): with replicas = %d every record naming a paid task "
    .. "waits for it; allow the user +wait (docs/keep-and-fleet.md#the-acl-of-a-fleets-user) or set replicas = 0",
    what, short, self.replicas), short)
end

-- Command n's answer will not be read: dropped when it comes.
function S:forget(n)
  self.jobs[n] = nil
end

-- Command n in flight (what was sent, its answer once read), or nil.
function S:job(n) return self.jobs[n] end

function S:ready(n)
  return answer(self, n) ~= nil
end

function S:result(n)
  local a = answer(self, n)
  if not a then return nil end
  self.jobs[n] = nil
  local status, value = a[1], a[2]
  if status == "ok" then return value, nil, a[3] end
  if status == "error" then
    local told = Route.told(value)
    return nil, self:error("Redis answered: " .. tostring(value) .. (told and " (" .. told .. ")" or ""), value)
  end
  return nil, self:error(value)
end

-- Whether mark (the time a coroutine began to send or read a command: answer's, h.sending) still holds: inside
-- nginx the coroutine may have been killed meanwhile (its request aborted), so no longer than twice a silence.
function S:held(mark)
  return mark and core.now() - mark < 2 * self.silence or false
end

-- The answer of the command h names (h.n, sent by one of its waiters; h: the caller's object of it, a budget's
-- ask, a lease's renewal, a queue's record), for every waiter of h: inside nginx the coroutines of a worker wait
-- on one command, and reading it may yield to another.  nil while it is not there (nor sent: h.n nil, or
-- forgotten); else its answer {value, err, short} (result's), taken off the store by the first waiter that finds
-- it and kept on h (h.answer: nil it before h is sent again), and whether this caller is that first one (it acts
-- on the answer; the others look again at what it left).
function S:take(h)
  if h.answer then return h.answer, false end
  local n = h.n
  if not (n and self.jobs[n] and self:ready(n)) then return nil end
  if h.answer then return h.answer, false end -- (taken by another while ready yielded)
  if h.n ~= n or not self.jobs[n] then return nil end -- (forgotten, or sent again, meanwhile)
  h.answer = { self:result(n) }
  return h.answer, true
end

-- Waits for the command n (or h, S:take's: every waiter of h is answered, the fourth value true for the one that
-- took it): the backend's timeout bounds each silence, so this ends.
function S:wait(n, err)
  if not n then return nil, err end
  local shared = type(n) == "table"
  local h = shared and n or { n = n }
  while true do
    local a, first = self:take(h)
    if a and shared then return a[1], a[2], a[3], first end
    if a then return a[1], a[2], a[3] end
    local job = h.n and self.jobs[h.n]
    if not job and not (self.ngx and self:held(h.sending)) then
      return nil, self:error("the command's answer was dropped")
    end
    local ok, serr = self:step(self.timeout)
    a, first = self:take(h)
    if a and shared then return a[1], a[2], a[3], first end
    if a then return a[1], a[2], a[3] end
    if not ok then
      if job and self.jobs[h.n] == job then self.jobs[h.n] = nil end
      return nil, serr
    end
    -- (another coroutine of the worker sends it or reads its answer: let it)
    if self.ngx and (self:held(h.sending) or job and self:held(job.reading)) then self.ngx.sleep(0.001) end
  end
end

function S:call(...)
  return self:wait(self:send(...))
end

-- A script, waited for.  (EVAL, never EVALSHA: a few short scripts a second,
-- and a Redis restarted or flushed never answers NOSCRIPT.)
function S:script(name, keys, args, wait)
  return self:wait(self:send_script(name, keys, args, wait))
end

-- The TLS of the store's connection (fleet/check.lua's), or nil.
function S:tls() return self.b and self.b.tls and self.b:tls() or nil end

function S:close()
  if self.b then self.b:close(); self.b = nil end
end

return M
