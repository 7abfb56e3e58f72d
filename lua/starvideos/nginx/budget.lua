-- The key's bucket in nginx's `lua_shared_dict starvideos`, for every worker: bucket.lua's rule under
-- a lock held for microseconds.  Without a ledger, create_limit and tenant_limit are counted there too
-- (count_creates).  Every write is a safe_ one: a full dict refuses it rather than evicting what another key
-- holds (a tenant's count).  What a full dict still does: the lock and each count, once made, keep their slot
-- (the dict rewrites a value of the same size in place, and frees a value it cannot replace by a larger one), so
-- that the tenants the dict holds are counted on; a tenant it cannot make room for is refused (io).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Bucket = require "starvideos.bucket"
-- spend.lua, loaded at its first use (a spend limit set, or reservations read back), as the optional layers are
local function Spend() return require "starvideos.spend" end
local cjson = require("cjson.safe").new()

local D = {}
D.__index = D

local LOCK_RETRY = 0.002 -- a worker's wait when the lock is taken
local LOCK_WAIT = 1 -- seconds a count waits for the lock at most
local LOCK_STALE = 0.1 -- a lock taken this long ago, twice seen so by a worker: its holder died (it is freed)
local TIME_WIDTH = 11 -- a count's time (os.time(): 10 digits) and its space: a count is count * this long

-- The dict's bucket of the key k (key.lua), or nil without the dict.
function D.new(ngx, k)
  local dict = ngx.shared and ngx.shared.starvideos
  if not dict then return nil end
  local key = "budget:" .. core.hash(k.name)
  return setmetatable({ ngx = ngx, dict = dict, key = key, lock = key .. ":lock", lock_at = key .. ":lock_at",
    bucket = k.bucket }, D)
end

-- The key's lock: a number kept in the dict (made once, never deleted: taking it needs no free memory), how many
-- workers try it now; the one that made it 1 holds it, and writes when (lock_at).  true (held), false (another
-- holds it), or nil, why (the dict too full to make it).  A lock whose holder died (a worker killed in the
-- microseconds it holds it) is freed once a worker saw the same lock_at older than LOCK_STALE twice.
local function lock(self)
  local dict = self.dict
  local n, err = dict:incr(self.lock, 1)
  if not n and err == "not found" then -- (made once: add's free memory, never incr's init, which evicts)
    local ok, aerr = dict:safe_add(self.lock_at, 0)
    if ok or aerr == "exists" then ok, aerr = dict:safe_add(self.lock, 0) end
    if not ok and aerr ~= "exists" then return nil, aerr end
    n, err = dict:incr(self.lock, 1)
  end
  if not n then return nil, err end
  local now = core.now()
  if n == 1 then
    dict:safe_set(self.lock_at, now) -- (a number in a number's slot: in place)
    return true
  end
  dict:incr(self.lock, -1)
  local at = dict:get(self.lock_at)
  if at and now - at > LOCK_STALE then
    if self.stale ~= at then self.stale = at; return false end
    dict:safe_set(self.lock, 0)
    self.stale = nil
    return lock(self)
  end
  return false
end

local function unlock(self) self.dict:incr(self.lock, -1) end

-- The rules' store (bucket.lua's kv) on the dict, under the key's names; full: it refuses (self.full).
local function store(self)
  local dict, pre, kv = self.dict, self.key .. ":", {}
  function kv.set(k, v, ttl)
    if not dict:safe_set(pre .. k, v, ttl) then self.full = true end
  end
  function kv.get(k) return dict:get(pre .. k) end
  function kv.add(k, ttl)
    local ok, err = dict:safe_add(pre .. k, true, ttl)
    if not ok and err ~= "exists" then self.full = true end
    return ok
  end
  function kv.incr(k, ttl) kv.set(k, (tonumber(dict:get(pre .. k)) or 0) + 1, ttl) end
  return kv
end

-- The service said none is left for `seconds` (bucket.lua's B:hold): every worker's take waits until then (the
-- rules' hold, on the wall clock's time, kept in the dict).
function D:hold(_, seconds)
  self.kv = self.kv or store(self)
  Bucket.hold_rule(self.kv, core.wall(), seconds, Bucket.MAX_HOLD)
end

-- nil (a token taken for tenant, an id: bucket.lua's share), the time to come back (and whether it is a hold's end,
-- and whether it is only the lock awaited: B:use), or false: the dict is full, the worker's own bucket stands in.
function D:take(t, _, tenant)
  self.kv = self.kv or store(self)
  local left = Bucket.held_rule(self.kv, core.wall())
  if left then return t + left, true end
  local locked = lock(self)
  if locked == false then return t + LOCK_RETRY, false, true end
  if not locked then return false end
  self.full = false
  local wait = Bucket.share_rule(self.kv, tenant or "", t, self.bucket.rate)
  unlock(self)
  if self.full then return false end
  return wait > 0 and t + wait or nil
end

-- A count not had or not kept (why; c: the limit, nil: spend_limit's reservation): the create refused, nothing sent.
local function uncounted(c, why)
  return nil, errors.new_error("io", string.format("nginx's lua_shared_dict starvideos: %s (nothing was sent)", why),
    { field = not c and "spend_limit" or c.tenant and "tenant_limit" or "create_limit" })
end

-- The counts of checks written, each its times (the newest count of them) padded to count * TIME_WIDTH, so that
-- each write of it has the size of the first (the dict rewrites it in place, needing no free memory): true, or nil,
-- err (one did not fit: a count the dict did not hold yet; one written before it stays: a create more counted,
-- never one fewer).
local function keep_counts(dict, names, lists, checks)
  for i, c in ipairs(checks) do
    local text = table.concat(lists[i], " ", math.max(1, #lists[i] - c.lim.count + 1))
    if not dict:safe_set(names[i], text .. string.rep(" ", c.lim.count * TIME_WIDTH - #text), c.lim.per + 1) then
      return uncounted(c, "it is full, " .. (c.tenant and "tenant_limit's" or "create_limit's") .. " count was not "
        .. "kept: make it larger")
    end
  end
  return true
end

-- The dict's lock held for fn(kv) (waited for, at most LOCK_WAIT: a create is no hot path): fn's returns, or nil,
-- err (io: the lock not had; c: the limit named).
local function locked(self, c, fn)
  local stop = core.now() + LOCK_WAIT
  while true do
    local got, err = lock(self)
    if got then break end
    if got == nil then
      return uncounted(c, "it is full (" .. tostring(err) .. "), its lock could not be made: make it larger")
    end
    if core.now() > stop then return uncounted(c, "its lock was not had in 1 s") end
    self.ngx.sleep(0.001)
  end
  self.kv = self.kv or store(self)
  local a, b, n, d = fn(self.kv)
  unlock(self)
  return a, b, n, d
end

-- bucket.lua's count_creates in the dict, under the bucket's lock: true (counted in each, spend_limit's
-- reservation made: ask) and the steps it crossed, false, the wait, the count and the limit that holds (or
-- spend_limit's); or nil, err (io: the lock not had, or the dict full: the create refused, nothing sent).
function D:count_creates(checks, t, ask)
  local dict = self.dict
  return locked(self, checks[1], function(kv)
    local names, lists = {}, {}
    for i, c in ipairs(checks) do -- (a count's times: a string of numbers in the dict, oldest first)
      names[i], lists[i] = self.key .. ":creates:" .. core.hash(c.name), {}
      for n in (dict:get(names[i]) or ""):gmatch("%S+") do lists[i][#lists[i] + 1] = tonumber(n) end
    end
    self.full = false
    local ok, wait, n, c = Bucket.count_on(lists, checks, t or os.time(), kv, ask)
    if ok ~= false and self.full then -- (its reservation, or part of it, not written)
      ok, wait = uncounted(nil, "it is full, the reservation was not kept: make it larger")
    end
    if ok then -- (nil, err: one did not fit; else the steps the reservation crossed, said by the ledger)
      local kept, err = keep_counts(dict, names, lists, checks)
      if not kept then ok, wait = kept, err end
    end
    if ok == nil and ask then Spend().finish(kv, ask.lid, false) end
    return ok, wait, n, c
  end)
end

-- Create lid's reservation settled or released, or its task's failure counted (bucket.lua's end_spend), under the
-- lock.
function D:end_spend(lid, paid, to)
  return locked(self, nil, function(kv) Spend().finish(kv, lid, paid, to); return true end)
end

-- The dict's reservations as client:spend() reads them (get).
-- A refusal kept by a create's content address (bucket.lua's refusal and refuse), in the dict for every worker:
-- JSON text, kept until the dict must make room (safe_set: a full dict keeps what it holds and refuses it, told).
function D:refusal(name)
  local text = self.dict:get("refused:" .. name)
  return text and cjson.decode(text) or nil
end
function D:refuse(name, e)
  local ok, err = self.dict:safe_set("refused:" .. name, cjson.encode(e))
  if not ok then return nil, err end
  return true
end

function D:spend_get()
  self.kv = self.kv or store(self)
  return self.kv.get
end

return D
