-- A stand-in for nginx's lua_shared_dict (get, set, add, their safe_ forms, incr without init, delete; values
-- expire; full when the spec says) on a clock the spec moves (dict.now), for the fast specs of what
-- nginx/budget.lua keeps there; spec/hosts/ runs the real one.
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

D.safe_set, D.safe_add = D.set, D.add -- (it never fills, until dict.full)

-- dict.full = true: as nginx's dict with no free memory, a safe_ write of a new key, or of a value of another size
-- than the key's (a number counts 8 bytes), fails "no memory", and the latter drops the old value (nginx's module
-- frees it before it looks for room); a value of the same size is rewritten in place.
local function size(v) return type(v) == "number" and 8 or #tostring(v) end
function D:safe_set(k, v, ttl)
  if not self.full then return self:set(k, v, ttl) end
  local old = self:get(k)
  if old ~= nil and size(old) == size(v) then return self:set(k, v, ttl) end
  self.values[k] = nil
  return false, "no memory"
end
function D:safe_add(k, v, ttl)
  if self:get(k) ~= nil then return false, "exists" end
  return self:safe_set(k, v, ttl)
end

function D:incr(k, n)
  local v = self:get(k)
  if v == nil then return nil, "not found" end
  if type(v) ~= "number" then return nil, "not a number" end
  self.values[k].v = v + n
  return v + n
end

function D:delete(k) self.values[k] = nil end

return D
