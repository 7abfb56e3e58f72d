-- A Redis Cluster as fleet/route.lua's way (redis+cluster://n1,n2,...): the slot map learned from the nodes
-- named (CLUSTER SLOTS, each asked in turn), each command sent to the node of its key's slot (native.slot;
-- a fleet's keys share one slot, "starvideos:{<key's hash>}:", so every script's keys are on one node; a
-- command without a key goes to the node of the last slot used), a connection per node.  MOVED teaches a
-- slot's node (route.lua follows it), ASK is followed once with ASKING; a node that answers as a replica, or
-- breaks, has the map learned again.  The map is remembered per store settings (a process's, inside nginx a
-- worker's).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local native = require "starvideos.fleet.native"
local Conn = require "starvideos.fleet.conn"

local type, tostring, tonumber, setmetatable, pairs, ipairs, string_format, math_min, math_max =
  type, tostring, tonumber, setmetatable, pairs, ipairs, string.format, math.min, math.max
local now, redis_slot = core.now, native.slot

local K = {}
K.__index = K
K.PAUSE = 0.1 -- seconds between two rounds of the nodes named

-- (server: what the process knows of the store's server, store.server, fleet/store.lua: server.map, the slot map
-- {ranges = {{first, last, "host:port"}...}, moved = {[slot] = addr}}.)
function K.new(cfg, timeout, ngx, server)
  server = server or {}
  local self = setmetatable({ cfg = cfg, timeout = timeout, ngx = ngx, nodes = {}, i = 0, server = server,
    sleep = ngx and ngx.sleep or core.sleep, deadline = now() + timeout, ask = { command = { "CLUSTER", "SLOTS",
    n = 2 }, user = cfg.user, password = cfg.password, host = "node", failed = "no slot map from the nodes" } }, K)
  self.map = server.map
  local c, err
  if self.map then -- (a map known: the way is up; none: it is being learned)
    c, err = self:node(self.map.ranges[1][3])
  else
    Conn.ask_next(self)
    c, err = self.sc, self.failed
  end
  if not c then return nil, err end
  self.name, self.null = c.name, c.null
  return self
end

-- The connection to node addr ("host:port"), made at its first use: conn | nil, why.
function K:node(addr)
  local c = self.nodes[addr]
  if c then return c end
  local host, port = tostring(addr):match("^%[?(.-)%]?:(%d+)$")
  if not host then return nil, "a node's address cannot be read: " .. tostring(addr) end
  local cfg, err = self.cfg
  c, err = Conn.open({ host = host, port = tonumber(port) }, Conn.options(cfg, cfg.user, cfg.password), self.timeout,
    self.ngx)
  if not c then return nil, string_format("node %s: %s", addr, tostring(err)) end
  self.nodes[addr] = c
  return c
end

-- CLUSTER SLOTS' answer as ranges (an empty address: the node asked), or nil.
local function ranges_of(v, asked)
  if type(v) ~= "table" or not v[1] then return nil end
  local list = {}
  for _, r in ipairs(v) do
    local master = type(r) == "table" and r[3]
    if type(master) ~= "table" or not tonumber(r[1]) or not tonumber(r[2]) or not tonumber(master[2]) then
      return nil
    end
    local host = master[1] ~= "" and tostring(master[1]) or asked
    list[#list + 1] = { tonumber(r[1]), tonumber(r[2]), (host:find(":", 1, true) and "[" .. host .. "]" or host)
      .. ":" .. tonumber(master[2]) }
  end
  return list
end

function K:_heard()
  local status, v, h = Conn.asked(self)
  if not status then return status end
  local ranges = status == "ok" and ranges_of(v, h.host)
  if ranges then
    self.map = { ranges = ranges, moved = {} }
    self.server.map = self.map
    return true
  end
  self.why = string_format("node %s:%d: %s", h.host, h.port, status == "ok" and "no slot map" or tostring(v))
  return Conn.ask_next(self)
end

-- As far as the answers there allow: true (the map known), false (not yet), or nil, why.
function K:_advance()
  while true do
    if self.failed then return nil, self.failed end
    if self.map then return true end
    if self:_heard() == false then return false end
  end
end

-- The node of slot (nil: the last slot used, else the first range's).
function K:addr_of(slot)
  slot = slot or self.home
  local m = self.map
  if not slot then return m.ranges[1][3] end
  self.home = slot
  if m.moved[slot] then return m.moved[slot] end
  for _, r in ipairs(m.ranges) do
    if slot >= r[1] and slot <= r[2] then return r[3] end
  end
  return m.ranges[1][3] -- (a slot no node serves: its answer says where, or CLUSTERDOWN)
end

-- The connection to node addr, else to the node of key's slot, once the map is known (false: not yet; nil, why).
function K:conn_at(addr, key)
  local ok, why = self:_advance()
  if not ok then return ok, why end
  return self:node(addr or self:addr_of(key and redis_slot(tostring(key))))
end

function K:conn_for(key) return self:conn_at(nil, key) end

-- MOVED slot addr: the slot's node from now on (for every route of these settings).
function K:moved(slot, addr)
  if self.map then self.map.moved[slot] = addr end
end

-- A node answered as a replica (READONLY: a failover): the map learned again.
function K:find()
  if not self.map then return true end
  self.server.map, self.map, self.i, self.deadline = nil, nil, 0, now() + self.timeout
  Conn.ask_next(self)
  return true
end

function K:broke(c)
  for addr, n in pairs(self.nodes) do
    if n == c then self.nodes[addr] = nil; c:close() end
  end
  self.server.map = nil
end

-- Every connection with answers awaited polled, the first waiting at most `wait` (a few ms at a time when
-- several are awaited): the answers read, or nil, err (a node's connection broke).
function K:poll(wait)
  local deadline = now() + wait
  repeat
    self:_advance()
    local busy = {}
    if self.sc and self.sc:pending() > 0 then busy[1] = self.sc end
    for _, c in pairs(self.nodes) do
      if c:pending() > 0 then busy[#busy + 1] = c end
    end
    if not busy[1] then
      if self.due then self.sleep(math_max(0, math_min(deadline, self.due) - now())) end
      self:_advance()
      return 0
    end
    local left = math_max(0, deadline - now())
    local n = 0
    for i, c in ipairs(busy) do
      local k, err = c:poll(i == 1 and (busy[2] and math_min(left, 0.005) or left) or 0)
      if not k and c ~= self.sc then return nil, err end
      n = n + (k == true and 0 or k or 0)
    end
    self:_advance()
    if n > 0 then return n end
  until now() >= deadline
  return 0
end

function K:pending()
  local n = self.sc and self.sc:pending() or 0
  for _, c in pairs(self.nodes) do n = n + c:pending() end
  return n
end

function K:close()
  if self.sc then self.sc:close() end
  for _, c in pairs(self.nodes) do c:close() end
  self.nodes = {}
end

return K
