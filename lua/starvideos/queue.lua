-- The queue's rule (docs/keep-and-fleet.md, "A batch bigger than one host"): which queued entry a keeper takes
-- next, for every ledger that keeps a queue (a store's, in its script).  One text (RULES), run where the queue is
-- kept: priority first (1 before 5), then between the tenants waiting at that priority a weighted fair share
-- (stride scheduling: each tenant's pass grows by 1 / its weight at each entry taken; a tenant that starts waiting
-- starts at the pass of the last entry taken, never with credit saved while it was idle), then the oldest.
--   queue_pick(heads, pass, vnow, weight): heads, one per waiting tenant, its first entry {tenant =, priority =,
--   seq =}; pass[tenant], its pass (nil: none yet); vnow, the pass of the last entry taken; weight(tenant), its
--   weight -> the head taken, the tenant's pass after it, the new vnow.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local Q = {}

Q.PRIORITY = 3 -- an entry's priority when none is given (1 first, 5 last)
Q.LOWEST = 5

Q.RULES = [[
local QUEUE_SCORE = 1e12
local function queue_score(priority, seq) return priority * QUEUE_SCORE + seq end
local function queue_pick(heads, pass, vnow, weight)
  local best, best_p
  for _, h in ipairs(heads) do
    local p = math.max(tonumber(pass[h.tenant]) or 0, vnow)
    if not best or h.priority < best.priority or (h.priority == best.priority
        and (p < best_p or (p == best_p and h.seq < best.seq))) then
      best, best_p = h, p
    end
  end
  if not best then return nil end
  return best, best_p + 1 / weight(best.tenant), best_p
end
]]

-- The rule in this process (its spec's): queue_pick; score(priority, seq), an entry's order in its tenant's line
-- (QUEUE_SCORE: a priority's span of sequence numbers).
Q.pick, Q.score = (rawget(_G, "loadstring") or load)(Q.RULES .. "return queue_pick, queue_score")()

-- The check of tenant_weights (config.lua's): nil when fine, else what was expected.
function Q.check_weights(v)
  if type(v) ~= "table" then
    return "tenant_weights: a table {tenant = weight, ...} expected, got a " .. type(v), true
  end
  for k, w in pairs(v) do
    if type(k) ~= "string" or k == "" or #k > 200 or k:find("[%c\127]") then
      return "tenant_weights: a key that is not a tenant name: " .. tostring(k), true
    end
    if type(w) ~= "number" or w ~= w or w <= 0 or w == math.huge then
      return string.format("tenant_weights[%q]: a positive number expected, got %s", k, tostring(w)), true
    end
  end
end

return Q
