-- What the notice-lag benches share (notice_lag.lua, poll_placement.lua): seeded
-- draws, the same on every VM, and polling at a fixed interval on simulated time.
local P = {}

-- Seeded uniform (Park-Miller) and standard normal draws.
function P.draws(seed)
  local state = seed
  local function uniform()
    state = state * 48271 % 2147483647
    return state / 2147483647
  end
  local function normal() return math.sqrt(-2 * math.log(uniform())) * math.cos(2 * math.pi * uniform()) end
  return uniform, normal
end

-- Polling every g from a first poll at once, on these durations: polls per task and mean lag.
function P.fixed_on(durations, g)
  local polls, lag = 0, 0
  for _, d in ipairs(durations) do
    local k = math.floor(d / g) + 1
    polls, lag = polls + 1 + k, lag + (k * g - d)
  end
  return polls / #durations, lag / #durations
end

-- The densest fixed interval spending no more than `polls` per task on these durations.
function P.interval_for(durations, polls)
  local lo, hi = 1e-4, 1e6
  for _ = 1, 200 do
    local mid = math.sqrt(lo * hi)
    if P.fixed_on(durations, mid) > polls then lo = mid else hi = mid end
  end
  return hi
end

return P
