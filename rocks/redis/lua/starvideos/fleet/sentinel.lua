-- Sentinel's master as fleet/route.lua's way (redis+sentinel://s1,s2,.../service[/db]): the sentinels asked in
-- turn (SENTINEL get-master-addr-by-name service, with sentinel_user/sentinel_password), the address named
-- confirmed by ROLE on every new connection before any command goes there.  A master that says it is not one,
-- refuses, or stops answering sends the way back to the sentinels (never to the old address unasked), each
-- round of them after a pause, until the store's timeout.  The master last confirmed is remembered per store
-- settings (a process's, inside nginx a worker's), forgotten when it fails.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Conn = require "starvideos.fleet.conn"

local type, tostring, tonumber, setmetatable, string_format, math_min =
  type, tostring, tonumber, setmetatable, string.format, math.min
local now = core.now

local S = {}
S.__index = S
S.PAUSE = 0.1 -- seconds between two rounds of the sentinels

-- (What the process knows of the store's server, server = store.server, fleet/store.lua: server.master
-- {host =, port =}, the master last confirmed; server.named, the index of the sentinel that named it: asked
-- first next time.)

-- The longest one host (a sentinel asked, a master named confirming its ROLE) may take before the next is
-- asked: a share of the store's timeout, so that a first sentinel that hangs, or names an address where nothing
-- answers as Redis, leaves time for the others.
function S.budget(timeout, hosts)
  return math.max(0.25, timeout / (hosts + 1))
end

-- ROLE's answer of a master, else why not.
local function master_role(v)
  local role = type(v) == "table" and v[1]
  if role ~= "master" then return string_format("the server is a %s, not the master", tostring(role)) end
end

function S.new(cfg, timeout, ngx, server)
  server = server or {}
  local self = setmetatable({ cfg = cfg, timeout = timeout, ngx = ngx, state = "ask", server = server,
    i = (server.named or 1) - 1, per = S.budget(timeout, #cfg.hosts),
    sleep = ngx and ngx.sleep or core.sleep, deadline = now() + timeout, ask = { command = { "SENTINEL",
    "get-master-addr-by-name", cfg.service, n = 3 }, user = cfg.sentinel_user, password = cfg.sentinel_password,
    host = "sentinel", failed = "no master for " .. cfg.service .. " from the sentinels" } }, S)
  local m = server.master
  if m then self:_master(m) else Conn.ask_next(self) end
  local c = self.mc or self.sc
  if not c then return nil, self.failed end
  self.name, self.null = c.name, c.null
  return self
end

-- The connection to the master named (its hello: AUTH, SELECT, ROLE checked).
function S:_master(m)
  local cfg = self.cfg
  self.m, self.state = m, "master"
  local c, err = Conn.open({ host = m.host, port = m.port }, Conn.options(cfg, cfg.user, cfg.password, cfg.db,
    { "ROLE", n = 1, check = master_role }), self.timeout, self.ngx)
  if not c then return self:_unconfirmed(string_format("master %s:%d: %s", m.host, m.port, tostring(err))) end
  self.mc, self.mc_due = c, now() + self.per
end

-- The master a sentinel named could not be confirmed (why): the next sentinel asked (in a round, then a pause).
function S:_unconfirmed(why)
  if self.server.master == self.m then self.server.master = nil end -- (the remembered one: forgotten)
  if self.mc then self.mc:close() end
  self.mc, self.m, self.why, self.state = nil, nil, why, "ask"
  if self.from then self.i = self.from end -- (the one that named it: the next one asked)
  return Conn.ask_next(self)
end

-- Until when the host asked now may take (a sentinel's answer, a master's hello), or nil (a pause).
function S:_due()
  if self.state == "ask" then
    if self.sc and self.timed ~= self.sc then self.timed, self.sc_due = self.sc, now() + self.per end
    return self.sc and self.sc_due
  end
  return self.state == "master" and self.mc_due or nil
end

-- The master found failing (why): forgotten, the sentinels asked again.
function S:_lost(why)
  self.server.master, self.state = nil, "ask"
  if self.mc then self.mc:close() end
  self.mc, self.m, self.why, self.i = nil, nil, why, #self.cfg.hosts -- (a pause, then the sentinels again)
  return Conn.ask_next(self)
end

-- The sentinel's answer: the master's address, or the next sentinel.
function S:_heard()
  local due = self:_due()
  local status, v, h = Conn.asked(self)
  if status == false and due and now() > due then -- (a sentinel that does not answer: the next)
    h, status, v = self.cfg.hosts[self.i], "broken", string_format("no answer within %g s", self.per)
    self.sc:close()
    self.sc = nil
  end
  if not status then return status end
  if status == "ok" and type(v) == "table" and v[1] and tonumber(v[2]) then
    self.from = self.i
    return self:_master { host = v[1], port = tonumber(v[2]) }
  end
  self.why = string_format("sentinel %s:%d: %s", h.host, h.port, status == "ok"
    and "it knows no master " .. self.cfg.service or tostring(v))
  return Conn.ask_next(self)
end

-- As far as the answers there allow: the master's connection, false (not yet), or nil, why.
function S:_advance()
  while true do
    if self.failed then return nil, self.failed end
    if self.state == "up" then
      return self.mc
    elseif self.state == "ask" then
      if self:_heard() == false then return false end
    else
      local ok, why = self.mc:ready()
      if ok == false and now() > self.mc_due then ok, why = nil, string_format("no answer within %g s", self.per) end
      if ok == false then return false end
      if ok then
        self.state, self.server.master, self.server.named = "up", self.m, self.from or self.server.named
      else
        self:_unconfirmed(string_format("master %s:%d: %s", self.m.host, self.m.port, tostring(why)))
      end
    end
  end
end

S.conn_for, S.conn_at = S._advance, S._advance

function S:poll(wait)
  self:_advance()
  local c = self.state == "ask" and self.sc or self.mc
  if not c then -- a pause between two rounds
    if self.due then self.sleep(math_min(wait, math.max(0, self.due - now()))) end
    self:_advance()
    return 0
  end
  local due = self:_due() -- (a host that does not answer is waited for its budget at most)
  local n, err = c:poll(due and math_min(wait, math.max(0, due - now())) or wait)
  if not n and c ~= self.mc or not n and self.state ~= "up" then n = 0 end -- (its reply says it: the next one)
  self:_advance()
  return n, err
end

function S.moved() end

-- A READONLY or MASTERDOWN from the master: the sentinels asked again.
function S:find(c)
  if c ~= self.mc then return true end -- (an old master's: the way is being found already)
  self.deadline = now() + self.timeout
  self:_lost("the master answered as a replica")
  return true
end

function S:broke(c)
  if c == self.mc then self.server.master = nil end
end

function S:pending()
  local c = self.state == "ask" and self.sc or self.mc
  return c and c:pending() or 0
end

function S:close()
  if self.sc then self.sc:close() end
  if self.mc then self.mc:close() end
end

return S
