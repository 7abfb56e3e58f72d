-- A stand-in for nginx's lua_shared_dict (get, set, add, their safe_ forms, delete; values expire) on a clock the
-- spec moves (dict.now), for the fast specs of what nginx/budget.lua keeps there; spec/hosts/ runs the real one.
local D = {}
D.__index = D

function D.new() return setmetatable({ now = 0, values = {} }, D) end

function D:get(k)
  local e = self.values[k]
  if e and (not e.exp or e.exp > self.now) then return e.v end
  return nil
end

function D:set(k, v, ttl)
  self.values[k] = { v = v, exp = ttl and ttl > 0 and self.now + ttl or nil }
  return true
end

function D:add(k, v, ttl)
  if self:get(k) ~= nil then return false, "exists" end
  return self:set(k, v, ttl)
end

D.safe_set, D.safe_add = D.set, D.add -- (it never fills)

function D:delete(k) self.values[k] = nil end

return D
