-- The key's bucket in nginx's `lua_shared_dict starvideos`, for every worker: bucket.lua's rule under
-- a lock (`add`: the dict has no compare-and-set) held for microseconds, which expires should a worker die.
-- Without a ledger, create_limit and tenant_limit are counted there too (count_creates).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Bucket = require "starvideos.bucket"

local D = {}
D.__index = D

local LOCK_TTL, LOCK_RETRY = 0.01, 0.002 -- the lock's expiry, and a worker's wait when it is taken
local LOCK_WAIT = 1 -- seconds a count waits for the lock at most (its holder died: it expires after LOCK_TTL)

-- The dict's bucket of the key k (key.lua), or nil without the dict.
function D.new(ngx, k)
  local dict = ngx.shared and ngx.shared.starvideos
  if not dict then return nil end
  local key = "budget:" .. core.hash(k.name)
  return setmetatable({ ngx = ngx, dict = dict, key = key, lock = key .. ":lock", bucket = k.bucket }, D)
end

-- The rules' store (bucket.lua's kv) on the dict, under the key's names; full: it refuses (self.full).
local function store(self)
  local dict, pre, kv = self.dict, self.key .. ":", {}
  local function put(k, v, ttl)
    local ok = dict:set(pre .. k, v, ttl)
    if not ok then self.full = true end
  end
  function kv.get(k) return dict:get(pre .. k) end
  kv.set = put
  function kv.add(k, ttl)
    local ok, err = dict:add(pre .. k, true, ttl)
    if not ok and err ~= "exists" then self.full = true end
    return ok
  end
  function kv.incr(k, ttl) put(k, (tonumber(dict:get(pre .. k)) or 0) + 1, ttl) end
  return kv
end

-- nil (a token taken for tenant, an id: bucket.lua's share), the time to come back, or false: the dict is full,
-- the worker's own bucket stands in.
function D:take(t, _, tenant)
  local dict = self.dict
  local locked, err = dict:add(self.lock, true, LOCK_TTL)
  if not locked then return err == "exists" and t + LOCK_RETRY end
  self.kv, self.full = self.kv or store(self), false
  local wait = Bucket.share_rule(self.kv, tenant or "", t, self.bucket.rate)
  dict:delete(self.lock)
  if self.full then return false end
  return wait > 0 and t + wait or nil
end

-- The times of a count in the dict (a string of numbers, oldest first) as a list.
local function times_of(text)
  local list = {}
  for n in (text or ""):gmatch("%S+") do list[#list + 1] = tonumber(n) end
  return list
end

-- bucket.lua's count_creates in the dict, under the bucket's lock (waited for: a create is no hot path): true
-- (counted in each), false, the wait, the count and the limit that holds; or nil, err (io: the lock not had, the
-- create refused, nothing sent).
function D:count_creates(checks)
  local dict, stop = self.dict, core.now() + LOCK_WAIT
  while not dict:add(self.lock, true, LOCK_TTL) do
    if core.now() > stop then
      return nil, errors.new_error("io", "nginx's lua_shared_dict starvideos: its lock was not had in 1 s (nothing "
        .. "was sent)", { field = checks[1].tenant and "tenant_limit" or "create_limit" })
    end
    self.ngx.sleep(0.001)
  end
  local t = os.time()
  local lists = {}
  for i, c in ipairs(checks) do
    local name = self.key .. ":creates:" .. core.hash(c.name)
    lists[i] = { name = name, times = times_of(dict:get(name)) }
    local kept = Bucket.window(lists[i].times, c.lim, t)
    local wait = Bucket.limit_rule(kept, t, c.lim.count, c.lim.per)
    if wait > 0 then dict:delete(self.lock); return false, wait, #kept, c end
  end
  for i, c in ipairs(checks) do
    local times = lists[i].times
    times[#times + 1] = t
    dict:set(lists[i].name, table.concat(times, " "), c.lim.per + 1)
  end
  dict:delete(self.lock)
  return true
end

return D
