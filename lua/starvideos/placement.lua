-- Polls placed where tasks end (docs/polling.md): for a distribution of durations given on a grid
-- (ages x ascending; F, the share done, and M, the partial mean int_0^x t f(t) dt, at each; F = 1 at
-- the last), the poll ages of least mean lag from completion to notice for the polls a task may spend,
-- none closer than a floor.  The exact optimum among plans that poll at the grid's ages, by dynamic
-- programming; the schedule (schedule.lua) hands it its learned distribution, the bench the true one.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local floor, min, huge = math.floor, math.min, math.huge

local P = {}

P.TOLERANCE = 1.02 -- the bisection on lambda stops within this ratio

-- The smallest j > i with x[j] >= v (#x + 1 when none).
local function from(x, v, i)
  local a, b = i + 1, #x + 1
  while a < b do
    local mid = floor((a + b) / 2)
    if x[mid] >= v then b = mid else a = mid + 1 end
  end
  return a
end

-- The plan of least lag + lambda * polls, both per task.  A poll at x[j] next after one at x[i] (i = 0:
-- the start, age 0) is paid by every task still running at x[i], lambda * (1 - F[i]), and the tasks
-- done in between wait for it, x[j] (F[j] - F[i]) - (M[j] - M[i]).  V[i] is the least cost after a poll
-- at x[i]; its next poll is at least m later; the search for it stops where the wait alone, with the
-- least cost after any later poll, reaches the best found (both only grow with j).
local function solve(x, F, M, lambda, m)
  local K = #x
  local V, nxt, low, steps = {}, {}, {}, 0 -- low[j]: the least of V[j..K]
  V[K], low[K] = 0, 0
  for i = K - 1, 0, -1 do
    local xi, Fi, Mi = x[i] or 0, F[i] or 0, M[i] or 0
    local pay, best, arg = lambda * (1 - Fi), huge, nil
    if Fi >= 1 - 1e-12 then best = 0 end -- nothing left to notice: no more polls
    for j = from(x, xi + m, i), K do
      steps = steps + 1
      local wait = x[j] * (F[j] - Fi) - (M[j] - Mi)
      if pay + wait + low[j] >= best then break end
      if pay + wait + V[j] < best then best, arg = pay + wait + V[j], j end
    end
    V[i], nxt[i], low[i] = best, arg, min(best, low[i + 1] or huge)
  end
  local ages, polls, lag, i = {}, 0, 0, 0
  while nxt[i] do
    local j, Fi = nxt[i], F[i] or 0
    polls, lag = polls + (1 - Fi), lag + x[j] * (F[j] - Fi) - (M[j] - (M[i] or 0))
    ages[#ages + 1], i = x[j], j
  end
  return ages, polls, lag, steps
end

-- The plan spending at most `budget` polls per task (its ages, polls and lag), the densest such, by
-- bisection on lambda (the lag a poll must save): about a dozen solves, their steps counted.  The grid's
-- last age must be reachable from every other at the floor m (an age m past the last learned end, say).
function P.optimal(x, F, M, budget, m)
  if type(x) ~= "table" or type(F) ~= "table" or type(M) ~= "table" or #x < 1 or #F ~= #x or #M ~= #x then
    error("placement.optimal: x, F, M must be tables of one length", 2)
  end
  local lo, hi = 1e-6 * x[#x], 1e3 * x[#x]
  local ages, polls, lag, work = solve(x, F, M, hi, m)
  while hi / lo > P.TOLERANCE do
    local mid = math.sqrt(lo * hi)
    local a, p, l, steps = solve(x, F, M, mid, m)
    work = work + steps
    if p > budget then lo = mid else hi, ages, polls, lag = mid, a, p, l end
  end
  return ages, polls, lag, work
end

-- The grid of the learned distribution d (schedule.lua's): its own points, `n` + 1 quantiles evenly
-- apart in p, and an age m past its last end; F and M there.
function P.grid(d, n, m)
  local points = {}
  for j = 1, #d.x do points[#points + 1] = d.x[j] end
  for k = 0, n do points[#points + 1] = d.q(k / n) end
  table.sort(points)
  local x, F, M = {}, {}, {}
  for _, t in ipairs(points) do
    if not x[1] or t > x[#x] then x[#x + 1], F[#x + 1], M[#x + 1] = t, d.F(t), d.partial_mean(d.first, t) end
  end
  x[#x + 1], F[#x + 1], M[#x + 1] = d.last + m, 1, M[#M]
  return x, F, M
end

-- The plan's pieces (schedule.lua's form) for poll ages: each a piece of one, its gap the one to the
-- next, and from the last, every `interval`.
function P.pieces(ages, interval)
  local pieces, n = {}, #ages
  for k = 1, n - 1 do pieces[k] = { ages[k], ages[k + 1] - ages[k], 1 } end
  pieces[math.max(n, 1)] = { ages[n] or interval, interval, huge }
  return pieces
end

-- The pieces with their endless last (every `interval` from the last learned end on) turned into a
-- tail for tasks slower than any learned, about one in n + 1 of n samples: from that poll, gaps
-- doubling from the plan's last (at least m) up to `interval`, then every `interval`.
function P.tail(pieces, m, interval)
  local n, out = #pieces, {}
  for k = 1, n - 1 do out[k] = pieces[k] end
  local at, gap = pieces[n][1], math.max(m, n > 1 and pieces[n - 1][2] or m)
  while 2 * gap < interval do
    out[#out + 1] = { at, 2 * gap, 1 }
    at, gap = at + 2 * gap, 2 * gap
  end
  out[#out + 1] = { at, interval, huge }
  return out
end

-- The plan spending at most `polls` per task that polls every g, g the shortest such (not under m), by
-- bisection (evaluate(plan): its polls per task on the learned distribution).
function P.even(polls, m, tmax, evaluate)
  local lo, hi = m, math.max(tmax, m)
  while hi / lo > 1.0001 do
    local mid = math.sqrt(lo * hi)
    if evaluate { { mid, mid, huge } } > polls then lo = mid else hi = mid end
  end
  return { { hi, hi, huge } }
end

-- The age of the k-th task's first poll (the schedule counts them), the plan's first age a for most: one
-- task in `rate` polls first at a (1 - share u), u the next of a fixed sequence spread evenly over [0, 1)
-- (van der Corput's), then at a if it still runs, and on with the plan.
-- Tasks done before a plan's first poll are known only as "done by then": without such probes nothing
-- tells the learned distribution where they ended, and a first poll placed late stays late.
function P.probe(a, k, rate, share)
  local j = k / rate
  if j % 1 ~= 0 then return a end
  local u, f = 0, 0.5
  while j > 0 do
    if j % 2 == 1 then u = u + f end
    j, f = floor(j / 2), f / 2
  end
  return a * (1 - share * u)
end

return P
