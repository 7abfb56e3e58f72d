-- The store: a Redis server that the processes and hosts of one key share.
-- Inside nginx resty.redis on cosockets (or Debian's nginx.redis); outside,
-- starvideos.redis (hiredis, non-blocking), loaded only here, so that a
-- library without hiredis loads and works: only a store says what is missing.
--
--   store.new(url[, {timeout = s}]) -> store   nothing sent yet: it connects at the first send
--   store.for_key(url, key, timeout) -> the key's store of that URL (outside
--       nginx one per key and URL in the process; inside, one per client)
--   store.define(name, body): a script the store runs (EVAL)
--   async: store:send(cmd, ...), store:send_script(name, keys, args) -> n;
--       store:step(wait); store:ready(n); store:result(n) -> value | nil, err
--   blocking (the CLI, keep's reads): store:call(cmd, ...), store:script(name, keys, args)
-- A bad URL raises, naming `store`, never the password.  A broken connection
-- (Redis gone, reset, silent past the timeout) fails every command in flight
-- with err (kind "io", field "store", naming redis://host:port/db); the next
-- send connects again.

local config = require "starvideos.config"
local errors = require "starvideos.errors"

local type, tostring, select, setmetatable, rawget, pcall, error, string_format, math_floor, table_remove =
  type, tostring, select, setmetatable, rawget, pcall, error, string.format, math.floor, table.remove
local new_error = errors.new_error

local M = {}

local SCRIPTS = {} -- name -> body

function M.define(name, body)
  SCRIPTS[name] = body
end

-- The two clients under one face: connect(cfg, timeout) -> b | nil, msg;
-- b:send(args) -> cn | nil, msg; b:poll(wait) -> true | answers read | nil, msg;
-- b:reply(cn) -> "wait" | "ok", value | "error", msg | "broken", msg; b:close()

local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

local function hello(cfg)
  local list = {}
  if cfg.password then
    list[#list + 1] = cfg.user and { "AUTH", cfg.user, cfg.password } or { "AUTH", cfg.password }
  end
  if cfg.db ~= 0 then list[#list + 1] = { "SELECT", tostring(cfg.db) } end
  return list
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
  if not conn then return nil, err end
  local b = setmetatable({ name = "starvideos.redis", conn = conn, null = redis.null, hello = {} }, Hiredis)
  for i, cmd in ipairs(hello(cfg)) do b.hello[i] = { cmd[1], assert(conn:send(unpack(cmd))) } end
  return b
end

function Hiredis:send(args)
  return self.conn:send(unpack(args, 1, args.n))
end

function Hiredis:poll(wait) return self.conn:poll(wait) end

function Hiredis:reply(cn)
  while self.hello[1] and not self.failed do -- AUTH and SELECT answered first, in order (each reply once)
    local name, v, msg = self.hello[1][1], self.conn:reply(self.hello[1][2])
    if v == nil then return msg and "broken" or "wait", msg end
    if v == false then
      self.failed = name .. " failed: " .. tostring(msg)
      self.conn:close()
    end
    table_remove(self.hello, 1)
  end
  if self.failed then return "broken", self.failed end
  local v, msg = self.conn:reply(cn)
  if v == nil then return msg and "broken" or "wait", msg end
  if v == false then return "error", msg end
  return "ok", v
end

function Hiredis:close() self.conn:close() end

-- resty.redis: a cosocket per command from nginx's keepalive pool (named by the database and a hash of
-- the password: connections are never mixed); AUTH and SELECT when the pool's connection is new.
local Cosocket = {}
Cosocket.__index = Cosocket

local function cosocket_connect(cfg, timeout, ngx)
  for _, name in ipairs { "resty.redis", "nginx.redis" } do
    local ok, redis = pcall(require, name)
    if ok then
      return setmetatable({ name = name, redis = redis, cfg = cfg, timeout = timeout,
        pool = string_format("starvideos:%s:%d:%d:%s", cfg.host, cfg.port, cfg.db, ngx.md5(cfg.password or "")),
        ms = math_floor(timeout * 1000 + 0.5), null = ngx.null }, Cosocket)
    end
  end
  return nil, "neither resty.redis nor nginx.redis is installed (OpenResty has resty.redis; "
    .. "Debian: apt-get install lua-nginx-redis)"
end

-- The cosocket's words, in starvideos.redis' where they differ.
function Cosocket:said(err)
  if err == "timeout" then return string_format("no answer within %g s", self.timeout) end
  return tostring(err)
end

-- The command's handle is its answer: {status, value}, there before send returns.
function Cosocket:send(args)
  local red = self.redis:new()
  red:set_timeout(self.ms)
  local ok, err = red:connect(self.cfg.host, self.cfg.port, { pool = self.pool })
  if not ok then return { "broken", "connect: " .. self:said(err) } end
  if red:get_reused_times() == 0 then
    for _, cmd in ipairs(hello(self.cfg)) do
      local res, herr = red[cmd[1]:lower()](red, unpack(cmd, 2))
      if not res then
        red:close()
        return { "broken", res == false and cmd[1] .. " failed: " .. tostring(herr) or self:said(herr) }
      end
    end
  end
  local res, rerr = red[args[1]:lower()](red, unpack(args, 2, args.n))
  if res == nil then
    red:close()
    return { "broken", self:said(rerr) }
  end
  red:set_keepalive(60000, 64)
  if res == false then return { "error", rerr } end
  return { "ok", res }
end

function Cosocket.poll() return true end

function Cosocket.reply(_, answer) return answer[1], answer[2] end

function Cosocket.close() end

local S = {}
S.__index = S

-- Nothing sent yet: Redis down is no error until a record must be written (nginx: no PING a request).
function M.new(url, opts)
  local cfg = config.store_url(url)
  if opts ~= nil and type(opts) ~= "table" then errors.argerror(2, "store.new", "table", type(opts)) end
  local timeout = opts and opts.timeout or config.DEFAULTS.connect_timeout
  if type(timeout) ~= "number" or timeout ~= timeout or timeout <= 0 then
    error("store.new: timeout must be a number of seconds > 0, got " .. tostring(timeout), 2)
  end
  -- got: answers read so far (S:step), for a loop that waits on them (loop:await_store)
  return setmetatable({ cfg = cfg, where = cfg.where, timeout = timeout, ngx = config.nginx(), seq = 0, jobs = {},
    got = 0 }, S)
end

-- The key's store of url (its part, key.lua), outside nginx.
function M.for_key(url, key, timeout)
  local function make() return M.new(url, { timeout = timeout }) end
  return config.nginx() and make() or key:part("store " .. url, make)
end

-- (starvideos.redis' messages start with "redis host:port: ", which the store's name says)
function S:error(msg, reply)
  msg = tostring(msg):gsub("^redis %S+: ", "")
  return new_error("io", string_format("store %s: %s", self.cfg.where, msg), { field = "store", reply = reply })
end

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

-- job.args sent (job.b, job.cn: what result(n) needs): n, or nil, err.  A connection found broken at send
-- (Redis restarted while it was idle) is made again once: the command was not sent.
function S:_queue(job)
  local b, err
  for _ = 1, 2 do
    b, err = self:_backend()
    if not b then break end
    job.b, job.cn, err = b, b:send(job.args)
    if job.cn then
      self.seq = self.seq + 1
      self.jobs[self.seq] = job
      return self.seq
    end
    b.broken = true
  end
  return nil, self:error(err)
end

function S:send(...)
  return self:_queue({ args = { n = select("#", ...), ... } })
end

function S:send_script(name, keys, args)
  local body = SCRIPTS[name]
  if not body then error("store:send_script: no script " .. tostring(name), 2) end
  local list = { "EVAL", body, tostring(#keys) }
  for _, k in ipairs(keys) do list[#list + 1] = k end
  for _, a in ipairs(args) do list[#list + 1] = tostring(a) end
  list.n = #list
  return self:_queue({ args = list })
end

function S:step(wait)
  local b = self.b
  if not b or b.broken then return true end
  local n, err = b:poll(wait or 0) -- n: true, or (the C backend's) a count of answers read
  if not n then
    b.broken = true
    return nil, self:error(err)
  end
  if n ~= true then self.got = self.got + n end
  return true
end

-- Whether a pause can wait on this store's socket (step(wait) returns at the first answer): commands in
-- flight on the C backend (a cosocket's cannot be waited on with the transport's).
function S:waiting()
  local b = self.b
  return b and not b.broken and b.conn and b.conn:pending() > 0 or false
end

-- The answer of job n, once it is there: {status, value}.
function S:_answer(n)
  local job = self.jobs[n]
  if not job then error("store: no command " .. tostring(n) .. " in flight (or its result was taken)", 3) end
  if job.answer then return job.answer end
  local status, value = job.b:reply(job.cn)
  if status == "wait" then return nil end
  if status == "broken" then job.b.broken = true end
  job.answer = { status, value }
  return job.answer
end

-- Command n's answer will not be read: dropped when it comes.
function S:forget(n)
  self.jobs[n] = nil
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
  if status == "error" then return nil, self:error("Redis answered: " .. tostring(value), value) end
  return nil, self:error(value)
end

-- Waits for job n: the backend's timeout bounds each silence, so this ends.
function S:wait(n, err)
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
  return self:wait(self:send(...))
end

-- A script, waited for.  (EVAL, never EVALSHA: a few short scripts a second,
-- and a Redis restarted or flushed never answers NOSCRIPT.)
function S:script(name, keys, args)
  return self:wait(self:send_script(name, keys, args))
end

function S:close()
  if self.b then self.b:close(); self.b = nil end
end

return M
