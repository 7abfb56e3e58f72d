-- The key's bucket in nginx's `lua_shared_dict starvideos`, for every worker: bucket.lua's rule under
-- a lock (`add`: the dict has no compare-and-set) held for microseconds, which expires should a worker die.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Bucket = require "starvideos.bucket"

local D = {}
D.__index = D

local LOCK_TTL, LOCK_RETRY = 0.01, 0.002 -- the lock's expiry, and a worker's wait when it is taken

-- The dict's bucket of the key k (key.lua), or nil without the dict.
function D.new(ngx, k)
  local dict = ngx.shared and ngx.shared.starvideos
  if not dict then return nil end
  local key = "budget:" .. core.hash(k.name)
  return setmetatable({ dict = dict, key = key, lock = key .. ":lock", bucket = k.bucket }, D)
end

-- nil (a token taken), the time to come back, or false: the dict is full, the worker's own bucket stands in.
function D:take(t)
  local dict = self.dict
  local locked, err = dict:add(self.lock, true, LOCK_TTL)
  if not locked then return err == "exists" and t + LOCK_RETRY end
  local tat, wait = Bucket.take_rule(dict:get(self.key) or 0, t, self.bucket.rate)
  if wait == 0 then dict:set(self.key, tat) end
  dict:delete(self.lock)
  return wait > 0 and t + wait or nil
end

return D
