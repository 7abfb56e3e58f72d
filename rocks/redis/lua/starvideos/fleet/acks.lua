-- The records of tasks already paid for that the store's replicas are to acknowledge (store = {replicas = N}: a
-- created record, the records written again after a reset or a failover), fleet/store.lua's (st.acks).  Each is
-- written as any other record, followed by no WAIT of its own: a WAIT holds its connection (every answer behind
-- it) until the replicas acknowledge or replica_timeout passes, so one per record made each command of the
-- store wait replica_timeout × the records ahead of it (issue 55 item 3: 10 tasks paid for, none saved in 60 s
-- after a failover to a primary with no replica).  Here one WAIT covers every record written before it: sent
-- after a write of its own on the records' slot (SET PREFIX.."acked": the WAIT's connection then counts every
-- write the server made before it, of any connection), at most one in flight per prefix, and when it is short
-- sent again only replica_timeout × AGAIN later (at least 1 s), so that the other answers go on meanwhile.
--   acks:add(key, what, tell[, done]): a record on key, written (its job goes on: only a create's pending record
--       waits for the replicas); done(true) once acknowledged, done(false) when WAIT is refused for good (said
--       once, then not waited for)
--   acks:turn(): the covers' answers read, the next sent when due (at each store:step)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local pairs, ipairs, next, type, setmetatable, math_max = pairs, ipairs, next, type, setmetatable, math.max

local A = {}
A.__index = A

A.AGAIN, A.LEAST = 3, 1 -- a cover not acknowledged: sent again max(LEAST, replica_timeout × AGAIN) s later (its
-- connection free 3/4 of the time)
A.RETRY = 0.5 -- seconds: a cover the store could not send or answer is sent again this much later

-- The seconds between a WAIT of st that was short and the next (a create's pending record's too, fleet/ask.lua).
function A.spacing(st) return math_max(A.LEAST, A.AGAIN * st.replica_timeout) end

-- queue(job) -> n, or nil, err: the store's own send of a job as built (its post WAIT when job.wait).
function A.new(st, queue)
  return setmetatable({ st = st, queue = queue, groups = {}, refused = false }, A)
end

function A:add(key, what, tell, done)
  if self.refused then return done and done(false) end
  local pre = type(key) == "string" and key:match("^starvideos:{[^}]*}:") or "starvideos:"
  local g = self.groups[pre]
  if not g then g = { pre = pre, members = {}, at = 0 }; self.groups[pre] = g end
  g.members[#g.members + 1] = { what = what, tell = tell, done = done }
end

-- Whether records wait for a cover (a spec's look).
function A:waiting() return next(self.groups) ~= nil end

-- (inside nginx a send may yield, and another coroutine of the worker turn the acks: g.sending marks it)
local function send(self, g, t)
  g.sending = t
  local covers = #g.members
  local n = self.queue({ args = { "SET", g.pre .. "acked", "1", "PX", "60000", n = 5 }, wait = true })
  g.sending = nil
  if n then g.n, g.covers = n, covers else g.at = t + A.RETRY end
end

-- The members g.covers covered, done (ok: acknowledged; else WAIT refused).
local function settle(g, ok)
  local m, k, rest = g.members, g.covers, {}
  for i = k + 1, #m do rest[#rest + 1] = m[i] end -- (written after the cover was sent: the next one's)
  g.members = rest
  for i = 1, k do if m[i].done then m[i].done(ok) end end
end

-- Cover g answered (store:result's v, err, short) at t.
local function answered(self, g, t, v, short)
  local st, first = self.st, g.members[1]
  if v == nil then g.at = t + A.RETRY; return end
  local final = short and st:refused_wait(first.what, short)
  if final then
    self.refused = true
    if first.tell then first.tell { type = "warning", message = final.message } end
  elseif short then
    st:unreplicated(first.what, short, first.tell, "waited for again")
    g.short = t
    return
  end
  g.short = nil
  settle(g, not final)
end

function A:turn()
  if not next(self.groups) then return end
  local st, t, list = self.st, core.now(), {}
  for pre, g in pairs(self.groups) do list[#list + 1] = { pre, g } end -- (a send may yield: another may add one)
  for _, pg in ipairs(list) do
    local pre, g = pg[1], pg[2]
    local n = g.n
    if n and not st:job(n) then g.n, g.at = nil, t + A.RETRY end -- (dropped: the connection broke)
    if n and g.n == n and st:ready(n) and g.n == n then -- (reading may yield: another may have taken it)
      g.n = nil
      local v, _, short = st:result(n)
      answered(self, g, t, v, short)
    end
    local due = g.short and g.short + A.spacing(st) or g.at
    if not g.n and not st:held(g.sending) and g.members[1] and t >= due then send(self, g, t) end
    if not (g.n or g.members[1]) and self.groups[pre] == g then self.groups[pre] = nil end
  end
end

return A
