-- The key's bucket in nginx's `lua_shared_dict starvideos <size>;`, for every
-- worker of the host: budget.lua's one rule (GCRA: one number, the `tat`, on
-- the monotonic clock every process of the host reads alike) over the dict.
-- The dict has no compare-and-set, and a read and a write are two steps
-- another worker could come between, so the step holds a lock: `add` is
-- atomic and fails when the key is there.  Inside, get and set never yield,
-- so it is held for microseconds; its 10 ms expiry frees it should a worker
-- die in between.  A worker that finds it taken comes back 2 ms later: a
-- token is never waited for here.

local core = require "starvideos.core"
local Budget = require "starvideos.budget"

local setmetatable = setmetatable

local D = {}
D.__index = D

local LOCK_TTL, LOCK_RETRY = 0.01, 0.002

-- The dict's budget of the key whose budget is b, or nil without the dict.
function D.new(ngx, b)
  local dict = ngx.shared and ngx.shared.starvideos
  if not dict then return nil end
  local key = "budget:" .. core.hash(b.key)
  return setmetatable({ dict = dict, key = key, lock = key .. ":lock", budget = b }, D)
end

-- nil (a token taken), the time to come back, or false: the dict cannot be
-- used (full beyond what it may evict): the worker's own bucket stands in.
function D:take(t)
  local dict = self.dict
  local locked, err = dict:add(self.lock, true, LOCK_TTL)
  if not locked then
    if err == "exists" then return t + LOCK_RETRY end
    return false
  end
  local tat, wait = Budget.take_rule(dict:get(self.key) or 0, t, self.budget.rate)
  if wait == 0 then dict:set(self.key, tat) end
  dict:delete(self.lock)
  if wait > 0 then return t + wait end
  return nil
end

return D
