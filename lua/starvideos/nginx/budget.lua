-- The key's bucket in nginx's `lua_shared_dict starvideos`, for every worker: bucket.lua's rule under
-- a lock (`add`: the dict has no compare-and-set) held for microseconds, which expires should a worker die.
-- Without a ledger, create_limit and tenant_limit are counted there too (count_creates).  Every write is a
-- safe_ one: a full dict refuses it rather than evicting what another key holds (a tenant's count).

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
    local ok = dict:safe_set(pre .. k, v, ttl)
    if not ok then self.full = true end
  end
  function kv.get(k) return dict:get(pre .. k) end
  kv.set = put
  function kv.add(k, ttl)
    local ok, err = dict:safe_add(pre .. k, true, ttl)
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
  local locked, err = dict:safe_add(self.lock, true, LOCK_TTL)
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

-- A count not had or not kept (why): the create refused, nothing sent.
local function uncounted(c, why)
  return nil, errors.new_error("io", string.format("nginx's lua_shared_dict starvideos: %s (nothing was sent)", why),
    { field = c.tenant and "tenant_limit" or "create_limit" })
end

-- The counts of checks written: true, or nil, err (one did not fit; one written before it stays: a create more
-- counted, never one fewer).
local function keep_counts(dict, names, lists, checks)
  for i, c in ipairs(checks) do
    if not dict:safe_set(names[i], table.concat(lists[i], " "), c.lim.per + 1) then
      return uncounted(c, "it is full, " .. (c.tenant and "tenant_limit's" or "create_limit's") .. " count was not "
        .. "kept: make it larger")
    end
  end
  return true
end

-- bucket.lua's count_creates in the dict, under the bucket's lock (waited for: a create is no hot path): true
-- (counted in each), false, the wait, the count and the limit that holds; or nil, err (io: the lock not had, or
-- the dict full: the create refused, nothing sent).
function D:count_creates(checks)
  local dict, stop = self.dict, core.now() + LOCK_WAIT
  while true do
    local locked, err = dict:safe_add(self.lock, true, LOCK_TTL)
    if locked then break end
    if err ~= "exists" then return uncounted(checks[1], "it is full, its lock was not had: make it larger") end
    if core.now() > stop then return uncounted(checks[1], "its lock was not had in 1 s") end
    self.ngx.sleep(0.001)
  end
  local names, lists = {}, {}
  for i, c in ipairs(checks) do
    names[i] = self.key .. ":creates:" .. core.hash(c.name)
    lists[i] = times_of(dict:get(names[i]))
  end
  local ok, wait, n, c = Bucket.count_on(lists, checks, os.time())
  local err
  if ok then ok, err = keep_counts(dict, names, lists, checks) end
  dict:delete(self.lock)
  if ok == nil then return nil, err end
  return ok, wait, n, c
end

return D
