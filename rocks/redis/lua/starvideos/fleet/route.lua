-- The way from a store to the Redis server that answers each command (docs/keep-and-fleet.md#connecting-to-redis):
-- one server (a URL's host, or a unix socket), the master Sentinel names (fleet/sentinel.lua), or a Cluster's
-- node of the command's slot (fleet/cluster.lua).  Redis' answers that say "not here, not now" are read here,
-- from one table (ANSWERS, docs/keep-and-fleet.md#redis-answers): followed (MOVED, ASK), sent again after the
-- way is found again (READONLY, MASTERDOWN), sent again after a pause (LOADING, BUSY, TRYAGAIN, CLUSTERDOWN)
-- until the store's timeout, or given to the caller (NOREPLICAS, OOM, NOSCRIPT, any other).
--
--   R.open(cfg, timeout[, ngx[, server]]) -> route (server: what the process knows of it, store.server), with
--       fleet/conn.lua's face: route:send(args[, post]) -> n | nil, msg
--   (post: a command sent after args on the same connection, WAIT: sent again with it wherever it goes);
--   route:poll(wait); route:reply(n) -> "wait" | "ok", v[, post's answer] | "error", msg | "broken", msg;
--   route:pending(); route.run, route.run_at: the run id the last new connection heard (INFO server: conn.lua's
--   hello) and its server's address, until fleet/identity.lua takes them;
--   route:close(); route.name, route.null
--   R.told(msg) -> what the store adds to an error answer of the table, or nil
--   R.wrap(way, timeout[, ngx]) -> a route over a way of one's own (its face below, One's)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Conn = require "starvideos.fleet.conn"

local tostring, tonumber, setmetatable, pairs, require, math_min, math_max =
  tostring, tonumber, setmetatable, pairs, require, math.min, math.max
local now = core.now

local R = {}

-- Redis' error answers by their code: what the route does (move: to the node named, ask: there once with
-- ASKING, find: the way found again then sent again, pause: sent again after a pause, ends: the caller's),
-- and what the caller is told beside Redis' words; final: a record a script of the store wrote is refused with it
-- for good (fleet/queue.lua: with any other, the record is written again).
R.ANSWERS = {
  MOVED = { "move", "the slot is another node's: followed, the slot's node learned (5 in a row, then a pause)" },
  ASK = { "ask", "the slot is moving: followed once with ASKING (5 in a row, then a pause)" },
  READONLY = { "find", "the server is a replica now: the master found again (Sentinel, Cluster), then sent again" },
  MASTERDOWN = { "find", "the replica lost its master: the master found again (Sentinel), then sent again" },
  LOADING = { "pause", "Redis is loading its data: sent again until the store's timeout" },
  BUSY = { "pause", "a script of another client runs too long: sent again until the store's timeout" },
  TRYAGAIN = { "pause", "the slot is moving under a command of several keys (or a script's key not among its "
    .. "KEYS): sent again until the store's timeout" },
  CLUSTERDOWN = { "pause", "the cluster is down: sent again until the store's timeout" },
  NOREPLICAS = { "ends", "fewer replicas than min-replicas-to-write are connected: the primary refuses writes" },
  OOM = { "ends", "Redis is full (maxmemory) and refuses writes: give it more memory" },
  MISCONF = { "ends", "Redis cannot save its data (stop-writes-on-bgsave-error) and refuses writes: see its log" },
  NOSCRIPT = { "ends", "a script Redis does not know (the store sends EVAL, never EVALSHA: not its own)",
    final = true },
}
R.HOPS = 5       -- redirections (MOVED, ASK) of one command at the most
R.PAUSE = 0.05   -- the first pause before a command is sent again (doubled each time, at most 1 s)

-- The table's row of an error answer: its code is the first word, or (a script's error, Redis 6 wrapping
-- it) a code of the table anywhere in it.
local function row_of(msg)
  msg = tostring(msg)
  local first = msg:match("^(%u+)")
  if R.ANSWERS[first] then return first, R.ANSWERS[first] end
  if msg:find("attempted to access a non local key", 1, true) then return "TRYAGAIN", R.ANSWERS.TRYAGAIN end
  for word in msg:gmatch("%-?(%u%u+)") do
    if R.ANSWERS[word] and word ~= "MOVED" and word ~= "ASK" then return word, R.ANSWERS[word] end
  end
end

-- Whether an error answer is one no retry changes: the user may not run the command (an ACL's NOPERM, a script's
-- "can't run this command"), or the server does not know it (renamed away, or too old).
function R.final(msg)
  msg = tostring(msg)
  local low = msg:lower()
  return msg:find("^NOPERM") ~= nil or msg:find("can't run this command", 1, true) ~= nil
    or low:find("unknown command", 1, true) ~= nil or low:find("unknown redis command", 1, true) ~= nil
end

function R.told(msg)
  local _, row = row_of(msg)
  return row and row[2]
end

-- The key a command is routed by: EVAL's first key, none for the commands of the server itself, else its
-- first argument.
local KEYLESS = { PING = true, CONFIG = true, INFO = true, ROLE = true, WAIT = true, TIME = true, DBSIZE = true,
  KEYS = true, SCAN = true, FLUSHALL = true, FLUSHDB = true, CLUSTER = true, SCRIPT = true, CLIENT = true,
  ACL = true, SENTINEL = true, SELECT = true, AUTH = true, HELLO = true, COMMAND = true, DEBUG = true,
  ECHO = true, LASTSAVE = true, SAVE = true, BGSAVE = true, BGREWRITEAOF = true, MEMORY = true, LATENCY = true }
function R.key_of(args)
  local cmd = tostring(args[1]):upper()
  if cmd == "EVAL" or cmd == "EVALSHA" then return (tonumber(args[3]) or 0) > 0 and args[4] or nil end
  if KEYLESS[cmd] then return nil end
  return args[2]
end

local Route = {}
Route.__index = Route

-- The way of a form: its conn_for(key) -> conn | false (not yet) | nil, msg; conn_at(addr); poll(wait);
-- moved(slot, addr); find(conn) -> whether it looks again; broke(conn); pending(); close().
local One = {}
One.__index = One

function One.new(cfg, timeout, ngx)
  local ep = cfg.path and { path = cfg.path } or { host = cfg.host, port = cfg.port }
  local c, err = Conn.open(ep, Conn.options(cfg, cfg.user, cfg.password, cfg.db), timeout, ngx)
  if not c then return nil, err end
  return setmetatable({ c = c, name = c.name, null = c.null }, One)
end
function One:conn_for() return self.c end
function One:poll(wait) return self.c:poll(wait) end
function One.find() return false end
function One.moved() end
function One.broke() end
function One:pending() return self.c:pending() end
function One:close() self.c:close() end

function R.open(cfg, timeout, ngx, server)
  local way, err = (cfg.kind == "sentinel" and require("starvideos.fleet.sentinel")
    or cfg.kind == "cluster" and require("starvideos.fleet.cluster") or One).new(cfg, timeout, ngx, server)
  if not way then return nil, err end
  return R.wrap(way, timeout, ngx)
end

-- A route over a way (the seam rocks/redis/spec/route_spec.lua drives with a way of its own).
function R.wrap(way, timeout, ngx)
  return setmetatable({ way = way, name = way.name, null = way.null, timeout = timeout, seq = 0, cmds = {},
    sleep = ngx and ngx.sleep or core.sleep }, Route)
end

-- Command e sent on the way (now, or held until the way is known): false (held), or an answer {status, v}.
function Route:_go(e)
  local c, err
  if e.at then c, err = self.way:conn_at(e.at) else c, err = self.way:conn_for(e.key) end
  if c == nil then return { "broken", err } end
  if not c then return false end
  local cn, serr = c:send(e.args, e.pre, e.post)
  if not cn then self.way:broke(c); return { "broken", serr } end
  e.c, e.cn = c, cn
  return false
end

-- n, or nil, msg when the command could not be sent at all (a connection found closed: none was sent).
function Route:send(args, post)
  local e = { args = args, post = post, key = R.key_of(args), hops = 0, pause = R.PAUSE,
    deadline = now() + self.timeout }
  local a = self:_go(e) -- (sent or held: false; else {"broken", msg})
  if a then return nil, a[2] end
  self.seq = self.seq + 1
  self.cmds[self.seq] = e
  return self.seq
end

-- Command e sent when it is held (neither sent nor answered: the way not known yet) and its pause, if any, ended
-- at t.
function Route:_retry(e, t)
  if not e.c and not e.answer and (not e.due or e.due <= t) then e.due = nil; e.answer = self:_go(e) or nil end
end

-- The way polled, at most until the first paused command is due: a pause with nothing else to wait for
-- sleeps (inside nginx ngx.sleep: a cosocket's answers are there at once, nothing else would wait).
function Route:poll(wait)
  local t, due = now(), nil
  for _, e in pairs(self.cmds) do
    if e.due and (not due or e.due < due) then due = e.due end
  end
  local limit = due and math_max(0, math_min(wait, due - t)) or wait
  local n, err = self.way:poll(limit)
  if n and due and (n == true or n == 0) and self.way:pending() == 0 and limit > 0 then
    self.sleep(math_min(limit, due - now()))
  end
  t = now()
  for _, e in pairs(self.cmds) do self:_retry(e, t) end
  return n, err
end

-- Command e's error answer msg, as the table says: nil (sent again, or held), or the answer.
function Route:_again(e, msg)
  local _, row = row_of(msg)
  local what, t = row and row[1], now()
  if (what == "move" or what == "ask") and e.hops >= R.HOPS then
    what, e.hops, e.at, e.pre = "pause", 0, nil, nil -- (nodes that disagree for a moment: asked after a pause)
  end
  if what == "move" or what == "ask" then -- (their code is the answer's first word: row_of)
    local slot, addr = tostring(msg):match("^%u+ (%d+) (%S+)$")
    if addr then
      e.hops, e.c, e.cn = e.hops + 1, nil, nil
      if what == "move" then self.way:moved(tonumber(slot), addr); e.at, e.pre = nil, nil
      else e.at, e.pre = addr, { { "ASKING", n = 1 } } end
      return self:_go(e) or nil
    end
  end
  if what == "find" and t < e.deadline and self.way:find(e.c) then
    e.c, e.cn, e.at, e.pre = nil, nil, nil, nil
    return self:_go(e) or nil
  end
  if what == "pause" and t + e.pause < e.deadline then
    e.c, e.cn, e.due, e.pause = nil, nil, t + e.pause, math_min(e.pause * 2, 1)
    return nil
  end
  return { "error", msg }
end

function Route:reply(n)
  local e = self.cmds[n]
  if not e then return "broken", "no command " .. tostring(n) end
  while not e.answer do
    if not e.c then
      self:_retry(e, now())
      if not e.answer and not e.c then return "wait" end
    else
      local status, v, post = e.c:reply(e.cn)
      if status == "wait" then return "wait" end
      if e.c.run ~= nil then self.run, self.run_at, e.c.run = e.c.run, e.c.at, nil end
      if status == "error" then e.answer = self:_again(e, v)
      else
        if status == "broken" then self.way:broke(e.c) end
        e.answer = { status, v, post }
      end
    end
  end
  self.cmds[n] = nil
  return e.answer[1], e.answer[2], e.answer[3]
end

-- The commands awaited on the way's sockets, or 1 when none is but one is held (the way being found, or a
-- pause): a loop's pause then waits in poll, which knows until when.
function Route:pending()
  local n = self.way:pending()
  if n > 0 then return n end
  for _, e in pairs(self.cmds) do
    if not e.c and not e.answer then return 1 end
  end
  return 0
end

function Route:close() self.way:close() end

-- The TLS of the connection a keyless command goes to (fleet/check.lua's), or nil (none, or not there yet).
function Route:tls()
  local c = self.way:conn_for(nil)
  return c and c.tls and c:tls() or nil
end

return R
