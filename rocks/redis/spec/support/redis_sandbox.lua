-- Redis as the store's scripts use it, in plain Lua tables, with no server (rocks/redis/spec/scripts_keys_spec.lua,
-- spec/lease_spec.lua): strings, hashes, sets, sorted sets and lists that expire on a clock, the commands the
-- scripts run (fleet/check.lua's list), and a script's redis.call refused on any key that is not one of its KEYS
-- (as Dragonfly refuses it, and Cluster when the key is another slot's).
--   sandbox.new([now]) -> r (now: the clock, core.now's by default; TIME answers it as the wall clock's)
--   r:call(cmd, ...)              a command sent as such (its keys not checked)
--   r:eval(text, keys, args)      a script's text run as EVAL runs it: its value, or {err = message}
--   r:run(name, keys, args)       a script the store defined (store.script_text: guarded when keys[1] is a fleet's),
--                                 sent as the store sends it: the keys it asks for (fleet/declared.lua) declared,
--                                 run again; its value, and the runs it took
--   r.db, r.touched, r.refused    the values by key; every key a script touched, by script name; each refusal of a
--                                 key not declared ("name: key"), whether or not its caller looked at the answer
--   r.sent, r.asked               by script name: the EVALs sent through the backend, those answered STARVIDEOS_KEYS
--   r.ran                         the commands the scripts ran (upper case -> true)
--   sandbox.backend(r)            a route's face (fleet/route.lua's) on r, for a store's connection (Route.open)

local core = require "starvideos.core"
local Store = require "starvideos.fleet.store"
local Declared = require "starvideos.fleet.declared"

local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
local M = {}

local R = {}
R.__index = R

function M.new(now)
  now = now or core.now
  return setmetatable({ db = {}, now = now, touched = {}, refused = {}, sent = {}, asked = {}, ran = {},
    identity = nil, wall = core.wall() - now() }, R) -- (wall: TIME's, the wall clock where the clock starts)
end

-- The value at k ({type, v, exp}) if it did not expire, else nil.
local function at(r, k)
  local e = r.db[k]
  if e and e.exp and e.exp <= r.now() then r.db[k], e = nil, nil end
  return e
end

local function of(r, k, kind)
  local e = at(r, k)
  if e and e.type ~= kind then error("WRONGTYPE " .. k .. " holds a " .. e.type .. ", not a " .. kind) end
  if not e then e = { type = kind, v = {} }; r.db[k] = e end
  return e.v
end

local function sorted_members(z)
  local list = {}
  for m, s in pairs(z) do list[#list + 1] = { m, s } end
  table.sort(list, function(a, b) if a[2] ~= b[2] then return a[2] < b[2] end return a[1] < b[1] end)
  return list
end

local function score(s)
  if s == "+inf" then return math.huge elseif s == "-inf" then return -math.huge end
  return tonumber(s)
end

-- Whether score s is within lo and hi as Redis reads them ("(5": 5 excluded).
local function within(s, lo, hi)
  local xlo, xhi = tostring(lo):sub(1, 1) == "(", tostring(hi):sub(1, 1) == "("
  lo, hi = score(xlo and tostring(lo):sub(2) or tostring(lo)), score(xhi and tostring(hi):sub(2) or tostring(hi))
  return (xlo and s > lo or not xlo and s >= lo) and (xhi and s < hi or not xhi and s <= hi)
end

local function expire_in(r, k, secs)
  local e = at(r, k)
  if not e then return 0 end
  e.exp = r.now() + secs
  return 1
end

-- Each command: its function, and the positions of its keys (all: every argument; nil: its first).
local C, KEYS_AT = {}, { DEL = "all", EXISTS = "all", TIME = "none", WAIT = "none", CONFIG = "none", PING = "none" }

function C.TIME(r)
  local t = r.wall + r.now()
  return { string.format("%d", math.floor(t)), string.format("%d", math.floor((t % 1) * 1e6)) }
end
function C.GET(r, k)
  local e = at(r, k)
  if e and e.type ~= "string" then error("WRONGTYPE") end
  return e and e.v or false
end
function C.SET(r, k, v, ...)
  local opts, exp, nx = { ... }, nil, false
  for i = 1, #opts do
    local o = tostring(opts[i]):upper()
    if o == "PX" then exp = r.now() + tonumber(opts[i + 1]) / 1000
    elseif o == "EX" then exp = r.now() + tonumber(opts[i + 1])
    elseif o == "NX" then nx = true end
  end
  if nx and at(r, k) then return false end
  r.db[k] = { type = "string", v = tostring(v), exp = exp }
  return { ok = "OK" }
end
function C.INCR(r, k)
  local e = at(r, k)
  local v = (e and tonumber(e.v) or 0) + 1
  r.db[k] = { type = "string", v = tostring(v), exp = e and e.exp }
  return v
end
function C.EXISTS(r, ...)
  local n = 0
  for _, k in ipairs { ... } do if at(r, k) then n = n + 1 end end
  return n
end
function C.DEL(r, ...)
  local n = 0
  for _, k in ipairs { ... } do if at(r, k) then n = n + 1 end; r.db[k] = nil end
  return n
end
function C.TYPE(r, k)
  local e = at(r, k)
  return { ok = e and e.type or "none" }
end
function C.EXPIRE(r, k, s) return expire_in(r, k, tonumber(s)) end
function C.PEXPIRE(r, k, ms) return expire_in(r, k, tonumber(ms) / 1000) end
function C.PTTL(r, k)
  local e = at(r, k)
  if not e then return -2 end
  return e.exp and math.floor((e.exp - r.now()) * 1000) or -1
end
function C.HSET(r, k, ...)
  local h, a, n = of(r, k, "hash"), { ... }, 0
  for i = 1, #a, 2 do
    if h[a[i]] == nil then n = n + 1 end
    h[a[i]] = tostring(a[i + 1])
  end
  return n
end
function C.HSETNX(r, k, f, v)
  local h = of(r, k, "hash")
  if h[f] then return 0 end
  h[f] = tostring(v)
  return 1
end
function C.HGET(r, k, f) local e = at(r, k); return e and e.v[f] or false end
function C.HEXISTS(r, k, f) local e = at(r, k); return e and e.v[f] ~= nil and 1 or 0 end
local function names_of(r, k) -- (a hash's fields, a set's members: sorted)
  local e, out = at(r, k), {}
  for f in pairs(e and e.v or {}) do out[#out + 1] = f end
  table.sort(out)
  return out
end
C.HKEYS = names_of
function C.HMGET(r, k, ...)
  local e, out = at(r, k), {}
  for i, f in ipairs { ... } do out[i] = e and e.v[f] or false end
  return out
end
function C.HGETALL(r, k)
  local e, out = at(r, k), {}
  local names = {}
  for f in pairs(e and e.v or {}) do names[#names + 1] = f end
  table.sort(names)
  for _, f in ipairs(names) do out[#out + 1], out[#out + 2] = f, e.v[f] end
  return out
end
function C.HDEL(r, k, ...)
  local e = at(r, k)
  for _, f in ipairs { ... } do if e then e.v[f] = nil end end
  if e and next(e.v) == nil then r.db[k] = nil end
  return 1
end
function C.HINCRBY(r, k, f, n)
  local h = of(r, k, "hash")
  h[f] = tostring(math.floor((tonumber(h[f]) or 0) + tonumber(n)))
  return tonumber(h[f])
end
function C.SADD(r, k, ...)
  local s = of(r, k, "set")
  for _, m in ipairs { ... } do s[tostring(m)] = true end
  return 1
end
function C.SREM(r, k, ...)
  local e = at(r, k)
  for _, m in ipairs { ... } do if e then e.v[tostring(m)] = nil end end
  if e and next(e.v) == nil then r.db[k] = nil end
  return 1
end
C.SMEMBERS = names_of
function C.ZADD(r, k, s, m) of(r, k, "zset")[tostring(m)] = tonumber(s); return 1 end
function C.ZSCORE(r, k, m) local e = at(r, k); local s = e and e.v[m]; return s and tostring(s) or false end
function C.ZCARD(r, k) local e = at(r, k); local n = 0; for _ in pairs(e and e.v or {}) do n = n + 1 end; return n end
function C.ZREM(r, k, m) local e = at(r, k); if e then e.v[m] = nil end; return 1 end
function C.ZRANGE(r, k, a, b, with)
  local e = at(r, k)
  local list, out = sorted_members(e and e.v or {}), {}
  a, b = tonumber(a), tonumber(b)
  if b < 0 then b = #list + b end
  for i = a + 1, math.min(b + 1, #list) do
    out[#out + 1] = list[i][1]
    if with then out[#out + 1] = string.format("%.17g", list[i][2]) end
  end
  return out
end
function C.ZREMRANGEBYSCORE(r, k, lo, hi)
  local e = at(r, k)
  for m, s in pairs(e and e.v or {}) do if within(s, lo, hi) then e.v[m] = nil end end
  return 1
end
-- A stream as the window of client:sse uses it (fleet/events.lua): XADD k MAXLEN ~ n * field value, its ids
-- "<ms>-<seq>" on the sandbox's clock; XRANGE k from + COUNT n; XREVRANGE k + - COUNT n.
function C.XADD(r, k, ...)
  local a, v = { ... }, of(r, k, "stream")
  local i, keep = 1, nil
  if tostring(a[1]):upper() == "MAXLEN" then
    i = a[2] == "~" and 3 or 2
    keep, i = tonumber(a[i]), i + 1
  end
  local ms = math.floor((r.now() + r.wall) * 1000)
  local last = v[#v]
  local lms, lseq = nil, nil
  if last then lms, lseq = last.id:match("^(%d+)%-(%d+)$") end
  local seq = lms and tonumber(lms) >= ms and tonumber(lseq) + 1 or 0
  ms = lms and math.max(ms, tonumber(lms)) or ms
  local entry = { id = ms .. "-" .. seq, fields = {} }
  for j = i + 1, #a do entry.fields[#entry.fields + 1] = a[j] end
  v[#v + 1] = entry
  while keep and #v > keep do table.remove(v, 1) end
  return entry.id
end
local function stream_id(id)
  local ms, seq = tostring(id):match("^(%d+)%-?(%d*)$")
  return ms and { tonumber(ms), tonumber(seq) or 0 }
end
local function id_less(a, b) return a[1] < b[1] or a[1] == b[1] and a[2] < b[2] end
function C.XRANGE(r, k, from, _, _, n)
  local e, out = at(r, k), {}
  local lo = from == "-" and { -1, -1 } or stream_id(from)
  for _, entry in ipairs(e and e.v or {}) do
    if #out >= (tonumber(n) or math.huge) then break end
    if not id_less(stream_id(entry.id), lo) then out[#out + 1] = { entry.id, entry.fields } end
  end
  return out
end
function C.XREVRANGE(r, k, _, _, _, n)
  local e, out = at(r, k), {}
  local v = e and e.v or {}
  for i = #v, math.max(1, #v - (tonumber(n) or #v) + 1), -1 do out[#out + 1] = { v[i].id, v[i].fields } end
  return out
end
function C.ZRANGEBYSCORE(r, k, lo, hi, with)
  local e, out = at(r, k), {}
  for _, p in ipairs(sorted_members(e and e.v or {})) do
    if within(p[2], lo, hi) then
      out[#out + 1] = p[1]
      if tostring(with):upper() == "WITHSCORES" then out[#out + 1] = string.format("%.17g", p[2]) end
    end
  end
  return out
end
function C.ZREVRANGEBYSCORE(r, k, hi, lo, ...)
  local e, opts, out = at(r, k), { ... }, {}
  local with, limit = false, math.huge
  for i = 1, #opts do
    local o = tostring(opts[i]):upper()
    if o == "WITHSCORES" then with = true elseif o == "LIMIT" then limit = tonumber(opts[i + 2]) end
  end
  local list = sorted_members(e and e.v or {})
  for i = #list, 1, -1 do
    local m, s = list[i][1], list[i][2]
    if s <= score(hi) and s >= score(lo) and limit > 0 then
      limit = limit - 1
      out[#out + 1] = m
      if with then out[#out + 1] = string.format("%.17g", s) end
    end
  end
  return out
end
function C.LPUSH(r, k, ...)
  local l = of(r, k, "list")
  for _, v in ipairs { ... } do table.insert(l, 1, tostring(v)) end
  return #l
end
function C.LTRIM(r, k, a, b)
  local e = at(r, k)
  if not e then return { ok = "OK" } end
  local l, out = e.v, {}
  a, b = tonumber(a), tonumber(b)
  if b < 0 then b = #l + b end
  for i = a + 1, math.min(b + 1, #l) do out[#out + 1] = l[i] end
  e.v = out
  return { ok = "OK" }
end
function C.LRANGE(r, k, a, b)
  local e, out = at(r, k), {}
  local l = e and e.v or {}
  a, b = tonumber(a), tonumber(b)
  if b < 0 then b = #l + b end
  for i = a + 1, math.min(b + 1, #l) do out[#out + 1] = l[i] end
  return out
end
function C.CONFIG(_, _, name) return { name, name == "appendfsync" and "always" or name == "maxmemory" and "0"
  or name == "appendonly" and "yes" or "noeviction" } end
function C.PING() return { ok = "PONG" } end
function C.WAIT() return 0 end

-- The keys of a command's arguments (args: its name first).
local function keys_of(args)
  local name = tostring(args[1]):upper()
  local where = KEYS_AT[name]
  if where == "none" then return {} end
  if where == "all" then return { select(2, unpack(args)) } end
  return { args[2] }
end
M.keys_of = keys_of

function R:call(cmd, ...)
  local f = C[tostring(cmd):upper()]
  if not f then error("ERR unknown command '" .. tostring(cmd) .. "' (the sandbox's)") end
  return f(self, ...)
end

-- text run as EVAL runs it, redis.call refused on a key not in KEYS (as given, before the script changes them);
-- its value, or {err = message} (an error of the script, or its error_reply).  name: whose touches are counted.
function R:eval(text, keys, args, name)
  local declared, touched = {}, self.touched
  for _, k in ipairs(keys) do declared[k] = true end
  touched[name or "?"] = touched[name or "?"] or {}
  local function call(cmd, ...)
    local a = { cmd, ... }
    for _, k in ipairs(keys_of(a)) do
      if not declared[k] then
        self.refused[#self.refused + 1] = (name or "?") .. ": " .. tostring(k)
        error(string.format("the script touched key %s, not one of its KEYS (%s)", tostring(k), tostring(cmd)), 0)
      end
      touched[name or "?"][k] = true
    end
    self.ran[tostring(cmd):upper()] = true
    return self:call(cmd, ...)
  end
  local redis = {
    call = call,
    pcall = function(...)
      local ok, v = pcall(call, ...)
      if ok then return v end
      return { err = tostring(v) }
    end,
    error_reply = function(msg) return { err = msg } end,
  }
  local K, A = {}, {}
  for i, k in ipairs(keys) do K[i] = k end
  for i, a in ipairs(args) do A[i] = tostring(a) end
  -- (no unpack of its own: on Lua 5.4, as Dragonfly runs them, the scripts find table.unpack)
  local env = setmetatable({ KEYS = K, ARGV = A, redis = redis }, { __index = _G })
  local setfenv = rawget(_G, "setfenv") -- (Lua 5.1, LuaJIT)
  local f = assert((setfenv and rawget(_G, "loadstring") or load)(text, "=" .. (name or "script"), "t", env))
  if setfenv then setfenv(f, env) end
  local ok, v = pcall(f)
  if not ok then return { err = tostring(v) } end
  return v
end

-- A script the store defined, sent as the store sends it (fleet/store.lua's send_script, fleet/declared.lua's
-- list: the identity guarded, the keys it asks for declared and run again): its value, and the runs it took.
function R:run(name, keys, args)
  local pre = type(keys[1]) == "string" and keys[1]:match("^starvideos:{[^}]*}:")
  local body = assert(Store.script_text(name, pre ~= nil), "no script " .. name)
  self.identity = self.identity or core.random_id()
  local job = { name = name, body = body, keys = keys, args_in = args, pre = pre }
  local id = pre and { pre .. "identity", "+" .. self.identity }
  job.args, job.at = Declared.list(body, keys, nil, args, id, tostring)
  for runs = 1, Declared.ROUNDS do
    local list = job.args
    local n = tonumber(list[3])
    local v = self:eval(list[2], { unpack(list, 4, 3 + n) }, { unpack(list, 4 + n, list.n) }, name)
    local labels = type(v) == "table" and v.err and Declared.asked(v.err)
    if not labels then return v, runs end
    local why = Declared.extend(job, labels, tostring)
    if why then return { err = why }, runs end
  end
end

-- A route's face (fleet/route.lua's) on the sandbox: every command answered as it is sent, a script's keys checked
-- (an EVAL's answer its error when it touched another key: the spec sees it as Redis' refusal).
function M.backend(r)
  local b, names = { null = false, name = "sandbox", answers = {}, n = 0 }, {}
  for _, name in ipairs(Store.script_names()) do
    names[Store.script_text(name)], names[Store.script_text(name, true)] = name, name
  end
  function b:send(args, post)
    self.n = self.n + 1
    local cmd = tostring(args[1]):upper()
    local ok, v
    if cmd == "EVAL" then
      local n, name = tonumber(args[3]), names[args[2]] or "?"
      ok, v = true, r:eval(args[2], { unpack(args, 4, 3 + n) }, { unpack(args, 4 + n, args.n or #args) }, name)
      r.sent[name] = (r.sent[name] or 0) + 1
      if type(v) == "table" and v.err and Declared.asked(v.err) then r.asked[name] = (r.asked[name] or 0) + 1 end
    else
      ok, v = pcall(r.call, r, unpack(args, 1, args.n or #args))
    end
    if ok and type(v) == "table" and v.err then ok, v = false, v.err end
    self.answers[self.n] = { ok and "ok" or "error", ok and (type(v) == "table" and v.ok or v) or tostring(v),
      post and 0 or nil }
    return self.n
  end
  function b.poll() return true end
  function b:reply(n)
    local a = self.answers[n]
    self.answers[n] = nil
    return a[1], a[2], a[3]
  end
  function b.pending() return 0 end
  function b.close() end
  return b
end

return M
