-- The store's identity (fleet/store.lua's): every script on a fleet's keys (its first key under
-- "starvideos:{KEY}:") checks it as it runs (GUARD); a reset it finds has the store's watchers' records
-- sent first, then the refused script again.  And the server behind the store's address (its run id, heard
-- on each new connection): another one (a failover, a restart) has the watchers' records sent again too.
-- The store's own part of it (st.identity = I.new(st, queue, answer_of): the store's two ways of its own to
-- send a job as built and to read a job's answer, not taken; the rest it asks of st is st's public face),
-- holding its state (what it heard, who watches, what it sent first, the epoch of the server it heard last):
--   identity:arg(pre): the GUARD's ARGV[1] for prefix pre
--   identity:watch(pre, w, on): store:watch
--   identity:again(job, cur): a script refused by a reset: whether the store sends it again (after the
--       watchers' records, its GUARD's argument set anew), or it is answered "ok" (superseded)
--   identity:heard(job, status): a job's answer on its first use of an identity it wrote
--   identity:master(b): at each answer read from b: a new server noticed (b.run)
--   identity:reap(): the records a reset or a new server sent first, answered (at each store:step)
--   identity:relaying(): whether some are not answered yet (then only theirs are given)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local pairs, ipairs, next, setmetatable, tostring = pairs, ipairs, next, setmetatable, tostring

local I = {}

local Id = {}
Id.__index = Id

-- ids: prefix -> its identity as heard (ident's); watchers: prefix -> (weak) set; relays: n -> what the record
-- n was sent first for (first's); epoch: the store's address's (I.master's).
-- queue(job) -> n, or nil, err: job ({args, pre, at, wait, ...}) sent as built; answer_of(n): job n's answer
-- ({status, value, short}) once there, or nil (relays' first), left for result to take.
function I.new(st, queue, answer_of)
  return setmetatable({ st = st, queue = queue, answer_of = answer_of, ids = {}, watchers = {}, relays = {},
    epoch = false }, Id)
end

function Id:relaying() return next(self.relays) ~= nil end

-- A script runs only on the store whose identity (KEYS[1], "identity" under the prefix: a random id written
-- at its first use) is the one ARGV[1] names: "=" .. the one heard, or "+" .. one to write when the store has
-- none (none heard yet).  None or another (a FLUSHALL, a restart without its files, a failover to a lagging
-- replica): nothing written, the answer RESET and the identity now ("" none).  (Redis 3.2 to 4: effects
-- replicated before a write, as after TIME)
I.GUARD = [[
local IDK, ID = table.remove(KEYS, 1), table.remove(ARGV, 1)
local cur = redis.call('GET', IDK)
if not cur and ID:sub(1, 1) == '+' then
  if redis.replicate_commands then redis.replicate_commands() end
  cur = ID:sub(2)
  redis.call('SET', IDK, cur)
end
if cur ~= ID:sub(2) then return redis.error_reply('STARVIDEOS_RESET ' .. (cur or '')) end
]]

-- The store's identity under prefix pre as heard: {heard = id | false, fresh = the one to write while none is
-- heard, old = the one heard before a reset, plus = records sent first under fresh}.
local function ident(self, pre)
  local i = self.ids[pre]
  if not i then i = { heard = false }; self.ids[pre] = i end
  return i
end

local function id_arg(i)
  if i.heard then return "=" .. i.heard end
  i.fresh = i.fresh or core.random_id()
  return "+" .. i.fresh
end

function Id:arg(pre) return id_arg(ident(self, pre)) end

-- w (a ledger of the prefix's) told of a reset (on), or no longer (weakly held).
function Id:watch(pre, w, on)
  self.watchers[pre] = self.watchers[pre] or setmetatable({}, { __mode = "k" })
  self.watchers[pre][w] = on or nil
end

-- The watchers' records (told: a reset, "failover", or nil), sent before anything else (their answers read by
-- reap, that finds in self.relays what they were sent for: the identity i, or FAILOVER), none followed by a WAIT
-- of its own (r[4], one the replicas are to acknowledge: the store's acks cover it once written).  A watcher's
-- event (said) is told once its round of records is all written (reap: the round's last answer), at once if none
-- was sent; a round one of whose records was not written tells nothing (they are all sent again, with their event).
local FAILOVER = {}
local function first(self, pre, i, told)
  if told ~= "failover" then i.plus = not i.heard end
  for w in pairs(self.watchers[pre] or {}) do
    local list, said = w:records_again(told)
    local round = said and { left = 0, said = said }
    for _, r in ipairs(list) do
      local n = self.st:send_script(r[1], r[2], r[3])
      if n then
        local job = self.st:job(n)
        job.relay, job.tell, job.acks, job.round = true, w.cfg and w.cfg.on_event, r[4], round
        job.after = told == "failover" and "a failover" or "a reset"
        self.relays[n] = told == "failover" and FAILOVER or i
        if round then round.left = round.left + 1 end
      end
    end
    if round and round.left == 0 then said() end
  end
end

-- (The servers last heard behind the store's address, st.server's, fleet/store.lua: runs = their run id by the
-- server's address (a Cluster's nodes each; "" for one server or Sentinel's master, whose address may change),
-- epoch = how many other run ids were heard after the first; a process's, inside nginx a worker's.)

-- An answer read from b (fleet/route.lua's, a connection of st's): the run id a new connection heard (b.run,
-- once; its server's address b.run_at) another than the one heard before there: a failover (or a restart), one
-- more epoch.  A store behind the epoch (this one, or another of the same address that heard it first) has its
-- watchers' records sent again, first.
function Id:master(b)
  local st = self.st
  local m = st.server
  if b.run then
    local at = st.cfg.kind == "cluster" and tostring(b.run_at) or ""
    if m.runs[at] and m.runs[at] ~= b.run then m.epoch = m.epoch + 1 end
    m.runs[at], b.run = b.run, nil
  end
  self.epoch = self.epoch or m.epoch
  if self.epoch >= m.epoch then return end
  self.epoch = m.epoch
  for pre in pairs(self.watchers) do first(self, pre, ident(self, pre), "failover") end
end

-- Job's script found another identity than it was sent with (cur: the store's, "" none).  Sent with the one
-- heard: a reset, seen here first (the watchers' records sent first).  Sent with a new one while none was heard:
-- the store's learned (the records sent first under the new one, if any, sent again).  The job then to send
-- again (true: its GUARD's argument the identity now), but a record sent first (superseded: false, its answer
-- "ok").
function Id:again(job, cur)
  local i, sent = ident(self, job.pre), job.args[job.at]
  local reset = i.heard and sent == "=" .. i.heard
  if reset then i.old, i.fresh = i.heard, nil end
  if reset or (not i.heard and sent:sub(1, 1) == "+") then
    local plus = i.plus
    i.heard = cur ~= "" and cur or false
    if reset or plus then first(self, job.pre, i, reset) end
  end
  if job.relay then return false end
  job.args[job.at] = id_arg(i)
  return true
end

-- A job's answer on its first use of the identity it wrote (none was heard): that one heard from now on.
function Id:heard(job, status)
  local i, sent = job.pre and self.ids[job.pre], job.pre and job.args[job.at]
  if status == "ok" and i and not i.heard and sent == "+" .. tostring(i.fresh) then -- (its first use, or after)
    i.heard, i.plus = i.fresh, false
  end
end

-- The records a reset or a new server sent first, answered: one not written (the connection broke, Redis
-- refused it) has the identity heard (or the epoch) set back, so that the next answer finds the reset (or the
-- new server) again and they are sent again; one written that the replicas are to acknowledge: the store's acks
-- (only what needs the replicas waits for them: the other answers, a budget's token, a lease, the records of
-- the tasks already paid for, are read meanwhile).
function Id:reap()
  if not next(self.relays) then return end
  local st, list = self.st, {}
  for n in pairs(self.relays) do list[#list + 1] = n end
  for _, n in ipairs(list) do
    -- (inside nginx another coroutine of the worker may have reaped it while this one yielded)
    local i, job = self.relays[n], st:job(n)
    local a = i and job and self.answer_of(n)
    if a and self.relays[n] then
      st:forget(n)
      self.relays[n] = nil
      if a[1] ~= "ok" and i == FAILOVER then self.epoch = self.epoch - 1
      elseif a[1] ~= "ok" and i.old then i.heard = i.old end
      if a[1] == "ok" and job.acks and st.replicas > 0 then
        st.acks:add(job.pre, "a record written again after " .. job.after, job.tell)
      end
      local g = job.round
      if g then
        g.left, g.failed = g.left - 1, g.failed or a[1] ~= "ok"
        if g.left == 0 and not g.failed then g.said() end
      end
    end
  end
end

return I
