-- The records of a store's ledger waiting to be written, in order, kept in
-- memory while Redis fails: the process's queue per store and key; inside
-- nginx a client's own (its commands run on its request's cosockets), left to
-- the worker's when it closes.  Whether the store is down: q.link, the process's (held by what the process
-- knows of the store's server, store.server.links, fleet/store.lua).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Route = require "starvideos.fleet.route"

local Q = {}
Q.__index = Q

Q.RETRY = 0.5 -- seconds: a store that failed is tried again this much later

-- server.links: "store's id prefix" -> { queue = (the process's), down =, down_at =, again = }; id: the store's
-- fleet/url.lua's id (what a connection is shared by).
function Q.for_key(server, where, prefix, own, id)
  local key, links = id .. " " .. prefix, server.links
  local link = links[key]
  if not link then
    link = { down = false, down_at = 0, again = 0 }
    link.queue, links[key] = setmetatable({ link = link, where = where }, Q), link
  end
  return own and setmetatable({ link = link, where = where, own = true }, Q) or link.queue
end

function Q:failed(err)
  local link, t = self.link, core.now()
  link.down, link.down_at, link.again = err or true, t, t + Q.RETRY
end

function Q:answered() self.link.down = false end

-- The failure, while the store is not to be tried again yet.
function Q:down_now(t)
  local link = self.link
  if link.down and t < link.again then return link.down end
end

function Q:failed_since(e)
  return self.link.down and self.link.down_at >= e.at or false
end

-- e.written once it is (wait: a record naming a paid task, that the store's replicas are to acknowledge: one
-- WAIT covers it with the others, fleet/acks.lua, while its job and the records behind it go on), e.refused if
-- Redis refused it for good.
function Q:push(name, keys, args, wait)
  local e = { name, keys, args, at = core.now(), wait = wait }
  self[#self + 1] = e
  return e
end

-- Inside nginx, the records closed clients left, taken after this one's own (never by a closed one).
function Q:adopt()
  local from = self.link.queue
  if not self.own or self.handed or not from[1] then return end
  for i = 1, #from do self[#self + 1], from[i] = from[i], nil end
end

-- An entry's answer in flight dropped: it is sent again.
local function forget(e)
  if e.n then e.st:forget(e.n); e.n, e.st = nil, nil end
  e.answer = nil
end

-- A closed client's records go to the worker's queue, answers in flight dropped.
function Q:hand_over()
  if not self.own then return end
  self.handed = true
  local to = self.link.queue
  for i = 1, #self do
    forget(self[i])
    to[#to + 1], self[i] = self[i], nil
  end
end

-- Redis errors that pass (Redis' answers, fleet/route.lua's ANSWERS, but a final one): a record refused for one is
-- sent again later.
local function passing(word) local a = Route.ANSWERS[word]; return a ~= nil and not a.final end

-- Whether Redis refused entry e for good (its script ran and failed): warned of, and true, so that the
-- records behind it are written.
function Q:refused(e, err, on_event)
  local reply = type(err) == "table" and err.reply
  if type(reply) ~= "string" then return false end
  if not reply:find("@user_script", 1, true) and not Route.final(reply) then return false end
  for word in reply:gmatch("%u%u+") do -- Redis 6 wraps a script's error: a passing code anywhere passes
    if passing(word) then return false end
  end
  if on_event then
    on_event { type = "warning", message = string.format("store %s: Redis refused the %s record of %s (%s): it is "
      .. "dropped, the records after it are written", self.where, tostring(e[1]), tostring(e[3][1]), reply) }
  end
  e.refused = true
  return true
end

-- Entry e sent on st (its answer, store:take's, kept on e for every waiter: inside nginx a client's coroutines
-- share its queue, a loop-less ledger's the worker's): n, or nil, err.  One send of e at a time (a send yields).
local function send(e, st)
  local n, err = st:send_for(e, "ledger_" .. e[1], e[2], e[3])
  if n then e.st = st end
  return n, err
end

-- The first entry e answered on st, by the waiter that took its answer: taken off the queue (true), or left first
-- when the store failed (false, err).  Written, one that waits for the replicas is theirs to acknowledge (st.acks,
-- that says it while they do not, and a WAIT refused for good).
local function answered(self, st, on_event, e, v, err)
  e.n = nil
  if v == nil and not self:refused(e, err, on_event) then
    self:failed(err)
    return false, err
  end
  self.link.down, e.written = false, v ~= nil
  if v ~= nil and e.wait and st.replicas > 0 then
    st.acks:add(e[2][1], string.format("the %s record of %s", e[1], tostring(e[3][1])), on_event)
  end
  if self[1] == e then table.remove(self, 1) end
  return true
end

-- Every queued record written, waiting for each: true, or nil, err at the first that fails.
function Q:flush(st, on_event)
  self:adopt()
  while self[1] do
    local e = self[1]
    if not e.n and not st:held(e.sending) and not e.answer then
      local n, serr = send(e, st)
      if not n then self:failed(serr); return nil, serr end
    end
    local v, err, _, first = (e.st or st):wait(e)
    if first then
      local ok, ferr = answered(self, e.st or st, on_event, e, v, err)
      if not ok then return nil, ferr end
    elseif self[1] == e and not e.n and not st:held(e.sending) then
      e.answer = nil -- (another waiter took it and left it first: sent again)
    end
  end
  return true
end

-- One turn: unsent records sent on st (one connection: written in order), answers taken.  Whether none left.
function Q:pump(st, on_event)
  self:adopt()
  if self[1] and not self:down_now(core.now()) then
    for _, e in ipairs(self) do
      if not e.n and not st:held(e.sending) then
        local n, err = send(e, st)
        if not n then self:failed(err); break end
      end
    end
  end
  st:step(0)
  while self[1] do
    local e = self[1]
    local got, first
    if e.st then got, first = e.st:take(e) end
    if not got or not first and self[1] == e then break end -- (not there; or another waiter's, acting on it)
    if first then
      if not answered(self, e.st, on_event, e, got[1], got[2]) then
        for i = 2, #self do forget(self[i]) end -- (those behind sent again: a record's script may run twice)
        break
      end
    end
  end
  return self[1] == nil
end

-- Whether every record is written, or the store failed since the last was queued (a blocking call returns).
function Q:settled()
  return not self[1] or self:failed_since(self[#self])
end

return Q
