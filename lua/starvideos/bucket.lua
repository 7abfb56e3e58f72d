-- The key's token bucket and create_limit's rule: a key's object (key.lua) has one.  A remote backend
-- (b:use: Redis, nginx's dict) is asked first; when it cannot answer, the process's own bucket stands in.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local B = {}
B.__index = B

-- Plain Lua 5.1, as Redis runs it.  take: the bucket as one number, the time the next token is due
-- in full (GCRA), a burst of a second's worth (one at least) -> the new tat and 0, or tat and the wait.
-- limit: at most count creates in any per seconds (times: the window's, newest first) -> 0, or the wait.
B.RULES = [[
local function take(tat, now, rate)
  local gap = 1 / rate
  local burst = rate > 1 and rate or 1
  local due = tat - (burst - 1) * gap
  if now < due then return tat, due - now end
  return (tat > now and tat or now) + gap, 0
end
local function limit(times, now, count, per)
  if #times < count then return 0 end
  local wait = times[count] + per - now
  return wait > 0 and wait or 0.000001
end
]]
local take, limit = (rawget(_G, "loadstring") or load)(B.RULES .. "return take, limit")()
B.take_rule, B.limit_rule = take, limit

local CLAIM = 0.05 -- a waiting create's hold on the token due, past it

-- A bucket of `rate` tokens a second (b:set_rate changes it).
function B.new(rate)
  return setmetatable({ rate = rate, tat = 0, told = 0, claim = 0, creates = {}, remote = false }, B)
end

function B:set_rate(rate) self.rate = rate end

-- Where the tokens come from first: remote:take(t, obj) -> nil (taken),
-- a time to come back, or false (it cannot answer: the process's own bucket).
function B:use(remote) self.remote = self.remote or remote end

-- A token at t: nil when taken, else when one will be there.  A create holds the
-- token due for it (CLAIM past it, should its job be cancelled) before the polls waiting;
-- callers told to wait get times a microsecond apart, so they come back in turn.
local function token(self, t, create, obj)
  local at = self.remote and self.remote:take(t, obj) -- false: no remote, or one that cannot answer
  if at ~= false then return at end
  if create or t >= self.claim then
    local tat, wait = take(self.tat, t, self.rate)
    if wait == 0 then self.tat = tat; return nil end
    at = t + wait
  else
    at = self.claim -- a poll while a create holds the next token
  end
  if at <= self.told then at = self.told + 1e-6 end
  self.told = at
  if create then self.claim = at + CLAIM end
  return at
end
function B:token(t, create, obj)
  local at = token(self, t, create, obj)
  local o = obj and obj.cfg and obj.cfg.observe -- (the time waited, in metrics: extras/observe.lua)
  if o then o:budget(obj, t, at) end
  return at
end

-- When the last caller told to wait comes back: a patient caller (a batch's feeder) asks after it.
function B:queue_end() return self.told end

-- The times of list (oldest first) in lim's window at t, newest first, at most lim.count (those out of it dropped).
function B.window(list, lim, t)
  local kept = {}
  while list[1] and list[1] < t - lim.per do table.remove(list, 1) end
  for i = #list, math.max(1, #list - lim.count + 1), -1 do kept[#kept + 1] = list[i] end
  return kept
end

-- create_limit and tenant_limit with no ledger to count them (ledger.lua's limits: {lim, name}s): in the remote's
-- count when it keeps one (nginx's dict: every worker), else in this process.  true (counted in each), or false, the
-- seconds until the next create is allowed, the count in the window and the limit that holds.
function B:count_creates(checks, t)
  if self.remote and self.remote.count_creates then return self.remote:count_creates(checks, t) end
  for _, c in ipairs(checks) do
    local kept = B.window(self.creates[c.name] or {}, c.lim, t)
    local wait = limit(kept, t, c.lim.count, c.lim.per)
    if wait > 0 then return false, wait, #kept, c end
  end
  for _, c in ipairs(checks) do
    local list = self.creates[c.name] or {}
    self.creates[c.name], list[#list + 1] = list, t
  end
  return true
end

return B
