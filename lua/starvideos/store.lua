-- The store: a Redis server that the processes and hosts of one key share
-- (issue 14).  One interface over two clients:
--   inside nginx  resty.redis on cosockets (OpenResty's), or Debian's
--                 lua-nginx-redis, the same module under the name nginx.redis;
--   outside       starvideos.redis (csrc/lsv_redis.c, hiredis), non-blocking,
--                 loaded only here, so that a library without hiredis loads and
--                 works; only a store says what is missing.
--
--   store.open(url[, {timeout = s}]) -> store | nil, err
--       url "redis://[[user]:password@]host[:port][/db]" (port 6379, db 0 when
--       absent; the password %XX-decoded).  A bad URL raises, naming `store` and
--       what is wrong, never the password.  Connects, AUTH and SELECT, and a PING:
--       Redis unreachable or refusing gives nil, err with err.kind == "io",
--       err.field == "store" and a message naming host:port (never the password).
--       timeout: the longest Redis may stay silent on a command
--       (options.DEFAULTS.connect_timeout when absent).
--   store.new(url[, opts]) -> store   as open, but nothing sent yet (no PING):
--       it connects at the first send (a client's store, E:store_for)
--   store.key_hash(base_url, api_key) -> the store's name of a key (no key in it)
--   The async form, for a drive loop (outside nginx nothing in it blocks; inside,
--   a command runs on a cosocket at send, which yields only its light thread):
--     store:send(cmd, ...) -> n | nil, err      queues a command (strings, numbers)
--     store:send_script(name, keys, args) -> n  one of store.SCRIPTS by EVALSHA
--         (EVAL until its SHA1 is known), by EVAL again on NOSCRIPT; its result
--         is the script's answer: a string of seconds, "0..." when allowed
--     store:step(wait) -> true | nil, err        moves bytes, waits at most `wait` s
--     store:ready(n) -> boolean                  whether result(n) has its answer
--     store:result(n) -> value | nil, err        once: bulk/status -> string,
--         integer -> integer, nil reply -> store.null, array -> table; a Redis
--         error reply -> nil, err (kind "io", err.reply the server's words)
--     store:send_token(key_hash, rate), store:send_create_allowed(key_hash,
--         count, per) -> n: token and create_allowed below, sent; store:seconds(n)
--         -> seconds (0: taken / allowed) | nil, err, their answer once ready(n)
--   Blocking conveniences (for the CLI; inside nginx a cosocket's wait):
--     store:call(cmd, ...) -> value | nil, err   send, then step until the answer
--                                                or the timeout
--     store:token(key_hash, rate) -> nil (a token taken) | seconds to wait
--         | nil, err: the key's token bucket (rate tokens a second, as many,
--         at least 1, in a burst), taken atomically on the server with Redis'
--         clock.  key_hash: a hash of the API key, never the key
--     store:create_allowed(key_hash, count, per) -> true | false, seconds
--         | nil, err: at most `count` creates in any `per` seconds; an allowed
--         create is counted in the same atomic step
--     store:close()
--   store.client: the client in use ("starvideos.redis", "resty.redis" or
--   "nginx.redis"); store.null (once a store is open): the nil reply, equal
--   to ngx.null.
-- A broken connection (Redis gone, reset, silent past the timeout) fails every
-- command in flight with err; the next send connects again.

local options = require "starvideos.options"
local core = require "starvideos.core"

local type, tostring, tonumber, select, setmetatable, rawget, pcall, error, string_format, math_floor =
  type, tostring, tonumber, select, setmetatable, rawget, pcall, error, string.format, math.floor
local new_error = options.new_error

local M = {}

-- The Redis Lua scripts, run atomically on the server, with its clock (TIME),
-- so that every process and host of the key agrees.  They answer a string (a
-- Lua number would be truncated to an integer by Redis): "0" allowed, else the
-- seconds to wait.  redis.replicate_commands lets a script write after TIME on
-- Redis 3.2 to 4 (effects replication is the rule from 5 on).
M.SCRIPTS = {
  -- KEYS[1] the key's bucket; ARGV[1] the rate (tokens a second; as many, at
  -- least 1, in a burst: the engine's local bucket's rule)
  token = [[
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate = tonumber(ARGV[1])
local burst = math.max(1, rate)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * rate) end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * burst / rate) + 1000) -- full again by then
return string.format('%.6f', wait)
]],
  -- KEYS[1] the key's creates (a sorted set of times); ARGV[1] count, ARGV[2] per
  create = [[
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local count, per = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now - per))
local n = redis.call('ZCARD', KEYS[1])
if n < count then
  redis.call('ZADD', KEYS[1], string.format('%.6f', now), string.format('%.6f-%d', now, n))
  redis.call('PEXPIRE', KEYS[1], math.ceil(per * 1000) + 1000)
  return '0'
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return string.format('%.6f', math.max(0.000001, tonumber(first[2]) + per - now))
]],
}

-- The store's name of a key (base URL and API key): a hash of the base URL
-- and of a hash of the API key (never the key itself), the same in every
-- process, for the token bucket and the ledger's keys.
function M.key_hash(base_url, api_key)
  return core.hash(tostring(base_url) .. "\0" .. core.hash(api_key or ""))
end

-- The keys of one API key (key_hash: never the key itself), in one hash slot.
local function key_of(key_hash, what)
  return "starvideos:{" .. key_hash .. "}:" .. what
end

---------------------------------------------------------------------------
-- the URL

local function bad_url(url, what)
  -- the URL with all before its last @ hidden (a password, however malformed)
  local shown = tostring(url)
  local at = type(url) == "string" and url:match(".*()@")
  if at then shown = (url:match("^%a[%w+.-]*://") or "") .. "***" .. url:sub(at) end
  error(string_format("store %q: %s (expected redis://[:password@]host:port[/db])", shown, what), 0)
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "redis://[[user]:password@]host[:port][/db]" -> {host, port, db, user, password, where}
function M.parse(url)
  if type(url) ~= "string" then bad_url(url, "a string expected, got " .. type(url)) end
  local rest = url:match("^redis://(.*)$")
  if not rest then bad_url(url, "the scheme is not redis://") end
  local cfg = { db = 0, port = 6379 }
  local userinfo, hostpart = rest:match("^([^@/]*)@(.*)$")
  if userinfo then
    local user, pass = userinfo:match("^([^:]*):(.*)$")
    if not user then bad_url(url, "the part before @ is not [user]:password") end
    if pass == "" then bad_url(url, "the password is empty") end
    cfg.user = user ~= "" and unescape(user) or nil
    cfg.password = unescape(pass)
    rest = hostpart
  end
  local host, tail = rest:match("^%[([%x:.]+)%](.*)$") -- [IPv6]
  if not host then host, tail = rest:match("^([%w.-]+)(.*)$") end
  if not host then bad_url(url, "no host") end
  local port, db = tail:match("^:(%d+)(.*)$")
  if port then
    port = tonumber(port)
    if port < 1 or port > 65535 then bad_url(url, "the port is not 1 to 65535") end
    cfg.port = port
    tail = db
  elseif tail:match("^:") then
    bad_url(url, "the port is not a number")
  end
  if tail ~= "" then
    local d = tail:match("^/(%d+)$")
    if not d and tail ~= "/" then bad_url(url, "after host:port only /db (a number) may follow") end
    cfg.db = tonumber(d or 0)
  end
  cfg.host = host
  cfg.where = string_format("redis://%s:%d/%d", host:find(":", 1, true) and "[" .. host .. "]" or host,
    cfg.port, cfg.db)
  return cfg
end

---------------------------------------------------------------------------
-- the clients under one face: connect(cfg, timeout) -> b | nil, msg;
-- b:send(args) -> cn | nil, msg; b:poll(wait) -> true[, answers read] | nil, msg;
-- b:reply(cn) -> "wait" | "ok", value | "error", msg | "broken", msg; b:close()

local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- The commands that start every connection: AUTH, SELECT.
local function hello(cfg)
  local list = {}
  if cfg.password then
    list[#list + 1] = cfg.user and { "AUTH", cfg.user, cfg.password } or { "AUTH", cfg.password }
  end
  if cfg.db ~= 0 then list[#list + 1] = { "SELECT", tostring(cfg.db) } end
  return list
end

-- starvideos.redis' messages start with "redis host:port: ", which the store's name says
local function bare(msg)
  return (tostring(msg):gsub("^redis %S+: ", ""))
end

local Hiredis = {}
Hiredis.__index = Hiredis

local function hiredis_connect(cfg, timeout)
  local ok, redis = pcall(require, "starvideos.redis")
  if not ok then
    if not tostring(redis):find("module 'starvideos.redis' not found", 1, true) then return nil, tostring(redis) end
    return nil, "starvideos.redis is not installed (it needs hiredis: Debian libhiredis-dev, then make; "
      .. "LuaRocks: luarocks make rockspec/redis/starvideos-redis-scm-1.rockspec)"
  end
  local conn, err = redis.connect(cfg.host, cfg.port, { timeout = timeout })
  if not conn then return nil, bare(err) end
  local b = setmetatable({ name = "starvideos.redis", conn = conn, null = redis.null, hello = {} }, Hiredis)
  for i, cmd in ipairs(hello(cfg)) do b.hello[i] = { cmd[1], assert(conn:send(unpack(cmd))) } end
  return b
end

function Hiredis:send(args)
  local cn, err = self.conn:send(unpack(args, 1, args.n))
  if not cn then return nil, bare(err) end
  return cn
end

function Hiredis:poll(wait)
  local n, err = self.conn:poll(wait)
  if not n then return nil, bare(err) end
  return true, n
end

-- Whether commands are waiting for their answers (what a pause can wait on).
function Hiredis:waiting()
  return self.conn:pending() > 0
end

function Hiredis:reply(cn)
  for i, h in ipairs(self.hello) do -- AUTH and SELECT answered first, in order
    local v, msg = self.conn:reply(h[2])
    if v == nil then return msg and "broken" or "wait", msg and bare(msg) end
    if v == false then
      self.failed = h[1] .. " failed: " .. tostring(msg)
      self.conn:close()
    end
    self.hello[i] = nil
  end
  if self.failed then return "broken", self.failed end
  local v, msg = self.conn:reply(cn)
  if v == nil then return msg and "broken" or "wait", msg and bare(msg) end
  if v == false then return "error", msg end
  return "ok", v
end

function Hiredis:close()
  self.conn:close()
end

-- resty.redis: one cosocket per command from nginx's keepalive pool (named by
-- the database and a hash of the password, so that connections are not mixed);
-- AUTH and SELECT when the pool's connection is new.
local Cosocket = {}
Cosocket.__index = Cosocket

local function cosocket_connect(cfg, timeout, ngx)
  local name = "resty.redis"
  local ok, redis = pcall(require, name)
  if not ok then
    name = "nginx.redis"
    ok, redis = pcall(require, name)
  end
  if not ok then
    return nil, "neither resty.redis nor nginx.redis is installed (OpenResty has resty.redis; "
      .. "Debian: apt-get install lua-nginx-redis)"
  end
  return setmetatable({ name = name, redis = redis, cfg = cfg, timeout = timeout, ms = math_floor(timeout * 1000 + 0.5),
    pool = string_format("starvideos:%s:%d:%d:%s", cfg.host, cfg.port, cfg.db, ngx.md5(cfg.password or "")),
    null = ngx.null, seq = 0, results = {} }, Cosocket)
end

-- the cosocket's words, in starvideos.redis' where they differ
function Cosocket:said(err)
  if err == "timeout" then return string_format("no answer within %g s", self.timeout) end
  return tostring(err)
end

function Cosocket:run(args)
  local red = self.redis:new()
  red:set_timeout(self.ms)
  local ok, err = red:connect(self.cfg.host, self.cfg.port, { pool = self.pool })
  if not ok then return "broken", "connect: " .. self:said(err) end
  if red:get_reused_times() == 0 then
    for _, cmd in ipairs(hello(self.cfg)) do
      local res, herr = red[cmd[1]:lower()](red, unpack(cmd, 2))
      if not res then
        red:close()
        return "broken", res == false and cmd[1] .. " failed: " .. tostring(herr) or self:said(herr)
      end
    end
  end
  local res, rerr = red[args[1]:lower()](red, unpack(args, 2, args.n))
  if res == nil then
    red:close()
    return "broken", self:said(rerr)
  end
  red:set_keepalive(60000, 64)
  if res == false then return "error", rerr end
  return "ok", res
end

function Cosocket:send(args)
  local cn = self.seq + 1 -- taken before run yields: another light thread may send meanwhile
  self.seq = cn
  local status, value = self:run(args)
  self.results[cn] = { status, value }
  return cn
end

function Cosocket.poll()
  return true
end

function Cosocket:reply(cn)
  local r = self.results[cn]
  self.results[cn] = nil
  return r[1], r[2]
end

function Cosocket.close() end

local function nginx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" and type(ngx.socket) == "table" then return ngx end
end

---------------------------------------------------------------------------
-- the store

local S = {}
S.__index = S

local function make(url, opts, where)
  local cfg = M.parse(url)
  if opts ~= nil and type(opts) ~= "table" then options.argerror(2, where, "table", type(opts), 4) end
  local timeout = opts and opts.timeout or options.DEFAULTS.connect_timeout
  if type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0 then
    error(where .. ": timeout must be a number of seconds > 0, got " .. tostring(timeout), 3)
  end
  -- got: answers read so far (S:step), for an engine that waits on them (E:await_store)
  return setmetatable({ cfg = cfg, timeout = timeout, ngx = nginx(), seq = 0, jobs = {}, shas = {}, got = 0 }, S)
end

-- store.new(url[, opts]) -> store: as open, but nothing is sent yet (no PING):
-- the connection is made at the first send (a client's store: Redis down is
-- not an error until a record must be written; inside nginx, no PING per
-- request on top of the keepalive pool).
function M.new(url, opts)
  return make(url, opts, "store.new")
end

function M.open(url, opts)
  local self = make(url, opts, "store.open")
  local _, err = self:call("PING")
  if err then return nil, err end
  return self
end

function S:_err(msg, reply)
  return new_error("io", string_format("store %s: %s", self.cfg.where, msg), { field = "store", reply = reply })
end

-- The connection, made again when the last one broke.
function S:_backend()
  if self.b and not self.b.broken then return self.b end
  if self.b then self.b:close() end
  local b, err
  if self.ngx then b, err = cosocket_connect(self.cfg, self.timeout, self.ngx)
  else b, err = hiredis_connect(self.cfg, self.timeout) end
  self.b = b
  if b then M.null, self.client = b.null, b.name end
  return b, err
end

-- A command to the backend: n, or nil, err.  job: what result(n) needs.  A
-- connection found broken at send (Redis restarted while it was idle) is made
-- again once: the command was not sent.
function S:_queue(job)
  local cn, serr, b
  for _ = 1, 2 do
    local err
    b, err = self:_backend()
    if not b then return nil, self:_err(err) end
    cn, serr = b:send(job.args)
    if cn then break end
    b.broken = true
  end
  if not cn then return nil, self:_err(serr) end
  self.seq = self.seq + 1
  job.b, job.cn = b, cn
  self.jobs[self.seq] = job
  return self.seq
end

local function pack(...)
  return { n = select("#", ...), ... }
end

function S:send(...)
  local args = pack(...)
  if type(args[1]) ~= "string" then options.argerror(1, "store:send", "a command name", type(args[1]), 3) end
  return self:_queue({ args = args })
end

function S:send_script(name, keys, args)
  local body = M.SCRIPTS[name]
  if not body then error("store:send_script: no script " .. tostring(name), 2) end
  local list = { n = 0 }
  local function add(v) list.n = list.n + 1; list[list.n] = v end
  local sha = self.shas[name]
  add(sha and "EVALSHA" or "EVAL"); add(sha or body); add(tostring(#keys))
  for _, k in ipairs(keys) do add(k) end
  for _, a in ipairs(args) do add(a) end
  return self:_queue({ args = list, script = name })
end

function S:step(wait)
  local b = self.b
  if not b or b.broken then return true end
  local ok, v = b:poll(wait or 0) -- v: an error, or (the C backend's) a count of answers read
  if not ok then
    b.broken = true
    return nil, self:_err(v)
  end
  if v then self.got = self.got + v end
  return true
end

-- Whether a pause can wait on this store's socket (step(wait) returns at
-- the first answer): commands in flight on the C backend.  A cosocket's
-- (inside nginx) cannot be waited on with the transport's: false.
function S:waiting()
  local b = self.b
  return b and not b.broken and b.waiting and b:waiting() or false
end

-- The answer of job n, once it is there: {status, value}.
function S:_answer(n)
  local job = self.jobs[n]
  if not job then error("store: no command " .. tostring(n) .. " in flight (or its result was taken)", 3) end
  if job.answer then return job.answer end
  local status, value = job.b:reply(job.cn)
  if status == "wait" then return nil end
  if status == "broken" then job.b.broken = true end
  if status == "error" and job.script and not job.retried and tostring(value):match("^NOSCRIPT") then
    -- the server lost the script (restarted, flushed): EVAL sends its body, which caches it
    local args = job.args
    args[1], args[2] = "EVAL", M.SCRIPTS[job.script]
    job.retried = true -- (the SHA1 stays: the same body, cached again by this EVAL)
    local b, err = self:_backend()
    local cn, serr
    if b then cn, serr = b:send(args) end
    if not cn then
      if b then b.broken = true end
      job.answer = { "broken", err or serr }
      return job.answer
    end
    job.b, job.cn = b, cn
    return self:_answer(n)
  end
  job.answer = { status, value }
  return job.answer
end

function S:ready(n)
  return self:_answer(n) ~= nil
end

function S:result(n)
  local a = self:_answer(n)
  if not a then return nil end
  self.jobs[n] = nil
  local status, value = a[1], a[2]
  if status == "ok" then return value end
  if status == "error" then return nil, self:_err("Redis answered: " .. tostring(value), value) end
  return nil, self:_err(value)
end

-- Waits for job n: the backend's timeout bounds each silence, so this ends.
function S:_wait(n, err)
  if not n then return nil, err end
  while not self:ready(n) do
    local ok, serr = self:step(self.timeout)
    if not ok and not self:ready(n) then
      self.jobs[n] = nil
      return nil, serr
    end
  end
  return self:result(n)
end

function S:call(...)
  return self:_wait(self:send(...))
end

-- A script of M.SCRIPTS, waited for: its answer, or nil, err.  Its SHA1 is
-- learned once a connection (SCRIPT LOAD), so that its body is sent once; it
-- runs by EVAL until then.
function S:script(name, keys, args)
  if not self.shas[name] then
    local sha = self:call("SCRIPT", "LOAD", M.SCRIPTS[name])
    if type(sha) == "string" then self.shas[name] = sha end
  end
  return self:_wait(self:send_script(name, keys, args))
end

-- A script whose answer is a number of seconds: seconds, or nil, err.
function S:_script(name, keys, args)
  return self:_seconds(name, self:script(name, keys, args))
end

function S:_seconds(name, v, err)
  if v == nil then return nil, err end
  local seconds = tonumber(v)
  if not seconds then return nil, self:_err("the " .. name .. " script answered " .. tostring(v)) end
  return seconds
end

local function positive(v, what, where)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    error(string_format("store:%s: %s must be a number > 0, got %s", where, what, tostring(v)), 3)
  end
end

local function check_hash(h, where)
  if type(h) ~= "string" or h == "" or h:find("[{}%s]") then
    error(string_format("store:%s: key_hash must be a non-empty string without braces or spaces", where), 3)
  end
end

-- The key and arguments of the token and create scripts, checked.
local function token_args(key_hash, rate)
  check_hash(key_hash, "token")
  positive(rate, "rate", "token")
  return { key_of(key_hash, "bucket") }, { string_format("%.17g", rate) }
end

local function create_args(key_hash, count, per)
  check_hash(key_hash, "create_allowed")
  positive(count, "count", "create_allowed")
  positive(per, "per", "create_allowed")
  if count ~= math_floor(count) then error("store:create_allowed: count must be a whole number", 3) end
  return { key_of(key_hash, "creates") }, { string_format("%d", count), string_format("%.17g", per) }
end

function S:token(key_hash, rate)
  local wait, err = self:_script("token", token_args(key_hash, rate))
  if not wait then return nil, err end
  if wait > 0 then return wait end
  return nil
end

function S:create_allowed(key_hash, count, per)
  local wait, err = self:_script("create", create_args(key_hash, count, per))
  if not wait then return nil, err end
  if wait > 0 then return false, wait end
  return true
end

-- The async forms (a drive loop's): send_token / send_create_allowed -> n |
-- nil, err; store:seconds(n) -> the answer as seconds (0: a token taken, a
-- create allowed; else the seconds to wait) | nil, err, once ready(n).
function S:send_token(key_hash, rate)
  return self:send_script("token", token_args(key_hash, rate))
end

function S:send_create_allowed(key_hash, count, per)
  return self:send_script("create", create_args(key_hash, count, per))
end

function S:seconds(n)
  local job = self.jobs[n]
  return self:_seconds(job and job.script, self:result(n))
end

function S:close()
  if self.b then self.b:close(); self.b = nil end
end

return M
