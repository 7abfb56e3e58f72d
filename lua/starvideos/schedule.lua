-- The learned schedule (docs/polling.md): a view of the key's samples for one `interval` and
-- `min_interval`, with its plans and its estimates of the time left.  A kind's learned distribution is
-- the most likely given its samples' intervals (S:estimate, censored.lua), on a bounded grid; a plan places polls
-- on it (S.make_plan, placement.lua) in bounded work, whatever the spread, the tail or the floor.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local config = require "starvideos.config"
local placement = require "starvideos.placement"
local censored = require "starvideos.censored"

local floor, max, min, sqrt = math.floor, math.max, math.min, math.sqrt

local S = {}
S.__index = S

S.MIN_SAMPLES = 5   -- until a kind has this many, the fixed interval
S.KEEP = config.DEFAULTS.samples -- samples kept per kind (the newest)
S.MARGIN = 0.96     -- a plan's expected polls, as a share of the fixed interval's
S.QUANTILES = 32    -- the grid: the distribution at S.QUANTILES + 1 quantiles (evenly apart in p),
S.LOG_POINTS = 16   -- and at S.LOG_POINTS + 1 times evenly apart in log time (the tails)
S.SHORT_GAPS = 5    -- short-task plans try gaps m * (interval / m)^(k / 5), k = 0..5
S.RUN = 40          -- and keep such a gap for this many polls, then `interval`
S.STEPS = 10        -- their first poll at the quantiles k / 10, then 0.01 apart around the best
S.FLOOR = 0.01      -- the shortest gap between polls a plan makes (seconds), min_interval 0 too
S.MIN_WIDTH = 0.02  -- a sample spreads over its duration +- this share at least
S.GRID = 64         -- the optimal plan polls at the learned distribution's points and 65 quantiles
S.PROBE = 4         -- one task in 4 has its first poll earlier than the plan's (placement.probe) while
S.EXPLORE = 64      -- its kind has fewer samples than this (none after: a probe costs lag),
S.PROBE_SHARE = 0.5 -- by up to this share of the plan's first age

-- The key of a kind of task in the learned schedule and the records.
function S.kind_of(model, duration, resolution)
  if type(model) ~= "string" then return nil end
  if type(duration) == "number" then duration = string.format("%.14g", duration) end
  return model .. "|" .. tostring(duration or "") .. "|" .. tostring(resolution or "")
end

-- The largest j with x[j] <= v (0 when v < x[1]).
local function below(x, v)
  local a, b = 0, #x
  while a < b do
    local mid = a + floor((b - a + 1) / 2)
    if x[mid] <= v then a = mid else b = mid - 1 end
  end
  return a
end

-- The distribution F(x[j]) = Fx[j] (x ascending), linear between: F(t), the partial mean
-- int_a^b x f(x) dx, the quantile q(p), its ends first and last, and its cells (between x[j] and x[j + 1]
-- the density is dens[j]; Mx[j] = int x f(x) dx up to x[j]).
local function piecewise(x, Fx)
  local K, dens, Mx = #x, {}, { 0 }
  for j = 1, K - 1 do
    dens[j] = (Fx[j + 1] - Fx[j]) / (x[j + 1] - x[j])
    Mx[j + 1] = Mx[j] + dens[j] * (x[j + 1] * x[j + 1] - x[j] * x[j]) / 2
  end
  local d = { first = x[1], last = x[K], x = x, Fx = Fx, Mx = Mx, dens = dens }
  function d.F(t)
    local j = below(x, t)
    if j == 0 then return 0 elseif j == K then return 1 end
    return min(1, Fx[j] + dens[j] * (t - x[j]))
  end
  local function M(t)
    local j = below(x, t)
    if j == 0 or j == K then return Mx[max(j, 1)] end
    return Mx[j] + dens[j] * (t * t - x[j] * x[j]) / 2
  end
  function d.partial_mean(a, b) return M(b) - M(a) end
  function d.q(p)
    local j = below(Fx, p)
    if j == 0 then return x[1] elseif j == K then return x[K] end
    return dens[j] > 0 and x[j] + (p - Fx[j]) / dens[j] or x[j] -- (the largest such j: its segment has mass)
  end
  return d
end

-- The distribution of durations uniform over [lo[i], hi[i]] for piece i, of mass w[i] (default: each as
-- likely; S.evaluate's d), on the grid: its quantiles and points evenly apart in log time, F exact there
-- and linear between.
function S.distribution(lo, hi, w)
  local n, at, step = #hi, {}, {} -- the ends of the samples' intervals, where the density steps by step[t]
  local function add(t, by)
    if not step[t] then at[#at + 1], step[t] = t, 0 end
    step[t] = step[t] + by
  end
  for i = 1, n do
    local rate = (w and w[i] or 1 / n) / (hi[i] - lo[i])
    add(lo[i], rate)
    add(hi[i], -rate)
  end
  table.sort(at)
  local Fx, rate = { 0 }, 0
  for j = 2, #at do
    rate = rate + step[at[j - 1]]
    Fx[j] = Fx[j - 1] + rate * (at[j] - at[j - 1])
  end
  local exact, points = piecewise(at, Fx), {}
  for i = 0, S.QUANTILES do points[#points + 1] = exact.q(i / S.QUANTILES) end
  local a, b = exact.q(1 / S.QUANTILES), exact.last
  for i = 0, a > 0 and S.LOG_POINTS or -1 do points[#points + 1] = a * (b / a) ^ (i / S.LOG_POINTS) end
  table.sort(points)
  local gx, gF = {}, {}
  for _, t in ipairs(points) do
    if not gx[1] or t > gx[#gx] then
      gx[#gx + 1] = t
      gF[#gx] = exact.F(t)
    end
  end
  return piecewise(gx, gF)
end

-- int_0^u ceil(s) ds
local function C(u)
  local k = floor(u)
  return k * (k + 1) / 2 + (u - k) * (k + 1)
end

-- A plan is pieces { first, gap, count }: polls at the ages first, first + gap, ... (count of them;
-- math.huge: forever), each piece after the one before.  Its expected polls per task and lag (completion
-- to notice) on the distribution d, in closed form, and the steps taken: one pass over the pieces and
-- d's cells together.
function S.evaluate(d, plan)
  local x, Fx, Mx, dens, K = d.x, d.Fx, d.Mx, d.dens, #d.x
  local polls, lag, steps, before, prev, j = 0, 0, 0, 0, 0, 1
  for _, p in ipairs(plan) do
    if prev >= d.last then break end
    local first, gap = p[1], p[2]
    local hi = min(first + (p[3] - 1) * gap, d.last)
    -- tasks done in (prev, hi]: seen at `first` if done by then, else at the piece's next poll,
    -- first + gap * ceil((t - first) / gap): their mass, mean duration and of that ceil (I / gap)
    local mass, mean, I, lo, Ca = 0, 0, 0, prev, nil
    if j < K and first >= x[j + 1] then -- the cells from prev's to first's, all seen at `first`: at once
      local k, a = min(below(x, first), K - 1), max(prev, x[j])
      mass = Fx[k] - Fx[j] - dens[j] * (a - x[j])
      mean = Mx[k] - Mx[j] - dens[j] * (a * a - x[j] * x[j]) / 2
      j, lo = k, x[k]
    end
    while j < K and x[j] < hi do
      local a, b, c = x[j], x[j + 1], dens[j]
      if a < lo then a = lo end
      if b > hi then b = hi end
      if b > a then
        mass, mean = mass + c * (b - a), mean + c * (b * b - a * a) / 2
        local Cb = b > first and C((b - first) / gap) or 0
        Ca = Ca or (a > first and C((a - first) / gap) or 0)
        I, Ca = I + c * (Cb - Ca), Cb
      end
      steps = steps + 1
      if x[j + 1] > hi then break end -- (the cell goes on past the piece)
      j = j + 1
    end
    polls = polls + (before + 1) * mass + I * gap
    lag = lag + first * mass + I * gap * gap - mean
    before, prev, steps = before + p[3], first + (p[3] - 1) * gap, steps + 1
  end
  return polls, lag, steps
end

-- The density walk: on each cell of d's grid, a gap proportional to sqrt((1 - F) / f) at its middle
-- (not under m), carried from cell to cell; after the last learned end, every `interval`.
local function density_plan(d, lambda, m, interval)
  local x, Fx, dens = d.x, d.Fx, d.dens
  local plan, acc, last = {}, 0, 0 -- acc: the share of a gap gone since the last poll
  for j = 1, #x - 1 do
    local a, b = x[j], x[j + 1]
    local gap = math.huge
    if dens[j] > 0 then gap = max(m, sqrt(2 * lambda * (1 - Fx[j] - dens[j] * (b - a) / 2) / dens[j])) end
    local first = a + (1 - acc) * gap
    if first <= b then
      local n = floor((b - first) / gap) + 1
      plan[#plan + 1] = { first, gap, n }
      last = first + (n - 1) * gap
      acc = (b - last) / gap
    else
      acc = acc + (b - a) / gap
    end
  end
  plan[#plan + 1] = { max(d.last, last + m), interval, math.huge }
  return plan
end

-- Where the floor `m` binds (a narrow spread), a first poll at t1 then every g can beat the density walk:
-- for each g, the t1 of least lag within the budget, on a coarse grid of quantiles from the last down as
-- long as within the budget (a later first poll spends fewer polls); then 0.01 apart around the best.
local function short_plan(d, interval, m, budget, evaluate)
  local best, best_polls, best_lag
  local function try(p, g) -- the lag of the plan, nil if it is over the budget or starts under the floor
    local t1 = d.q(p)
    if t1 < m then return end
    local plan = { { t1, g, S.RUN + 1 }, { t1 + S.RUN * g + interval, interval, math.huge } } -- then every `interval`
    local polls, lag = evaluate(plan)
    if polls > budget then return end
    if not best or lag < best_lag then best, best_polls, best_lag = plan, polls, lag end
    return lag
  end
  local p0, g0, lag0
  for k = 0, S.SHORT_GAPS do
    local g = m * (interval / m) ^ (k / S.SHORT_GAPS)
    for i = S.STEPS, 0, -1 do
      local lag = try(i / S.STEPS, g)
      if not lag then break end
      if not lag0 or lag < lag0 then p0, g0, lag0 = i / S.STEPS, g, lag end
    end
  end
  for i = -10, 10 do
    if p0 and i ~= 0 then try(min(1, max(0, p0 + i / 100)), g0) end
  end
  return best, best_polls, best_lag
end

-- The optimal plan within the budget among those polling at the points of a grid of d (placement.lua):
-- its pieces, polls and lag, and the steps its dynamic programme took.
local function optimal_plan(d, interval, m, budget, evaluate)
  local x, F, M = placement.grid(d, S.GRID, m)
  local ages, _, _, steps = placement.optimal(x, F, M, budget, m)
  local plan = placement.pieces(ages, interval)
  local polls, lag = evaluate(plan)
  return plan, polls, lag, steps
end

-- The plan on the learned distribution d: the polls per task of the fixed interval (less MARGIN; for
-- tasks mostly done within `interval`, up to 1 + the share done within it), placed where tasks end:
-- the optimal plan on a grid of d (dynamic programming), the density walk, gaps proportional to
-- sqrt((1 - F(t)) / f(t)) (the optimum's shape where gaps are small), or a first poll at a quantile then
-- even gaps, whichever notices sooner.  Never one that notices later than the fixed interval, or than
-- even gaps spending as many polls.  Past the last learned end, gaps doubling up to `interval`
-- (placement.tail).  Its work (the steps of its evaluations and of the dynamic programme) is bounded by
-- the grids, neither by the tail's length nor by the floor.
function S.make_plan(d, interval, m)
  m = max(m, S.FLOOR) -- (min_interval = 0: no gap of no length)
  local work = 0
  local function evaluate(plan)
    local polls, lag, steps = S.evaluate(d, plan)
    work = work + steps
    return polls, lag
  end
  local fixed = { { interval, interval, math.huge } }
  local fixed_polls, fixed_lag = evaluate(fixed)
  local budget = max(fixed_polls * S.MARGIN, 1 + d.F(interval))
  -- the smallest lambda (densest polls) whose expected polls stay within the budget
  local lo, hi = 1e-6 * interval, 1e3 * interval
  local best, polls, lag = fixed, fixed_polls, fixed_lag
  while hi / lo > 1.01 do
    local mid = sqrt(lo * hi)
    local plan = density_plan(d, mid, m, interval)
    local p, l = evaluate(plan)
    work = work + #d.x
    if p > budget then lo = mid else hi, best, polls, lag = mid, plan, p, l end
  end
  local dp, dp_polls, dp_lag, steps = optimal_plan(d, interval, m, budget, evaluate)
  work = work + steps
  if dp_polls <= budget * (1 + 1e-9) and dp_lag < lag then best, polls, lag = dp, dp_polls, dp_lag end
  if budget > fixed_polls * S.MARGIN then -- tasks that mostly finish within `interval`
    local plan, p, l = short_plan(d, interval, m, budget, evaluate)
    if plan and l < lag then best, polls, lag = plan, p, l end
  end
  local even = placement.even(polls, m, d.last, evaluate)
  local even_polls, even_lag = evaluate(even)
  if even_lag < lag then best, polls, lag = even, even_polls, even_lag end
  if lag > fixed_lag then best, polls, lag = fixed, fixed_polls, fixed_lag end -- a spread no plan can use
  if best ~= fixed then best = placement.tail(best, m, interval) end
  return { pieces = best, polls = polls, lag = lag, fixed_polls = fixed_polls, fixed_lag = fixed_lag, work = work }
end

-- kinds: the samples (shared with the other schedules of a key; nil: a new set).
function S.new(cfg, kinds)
  return setmetatable({ interval = cfg.interval, min_interval = cfg.min_interval, kinds = kinds or {}, plans = {},
    probes = 0 }, S)
end

function S:learn(kind, model, seconds, half)
  if type(seconds) ~= "number" or not (seconds > 0 and seconds < 1e7) then return end
  if type(half) ~= "number" or half ~= half or half < 0 then half = 0 end
  if half > seconds then half = seconds end -- it may have been done at once
  for _, key in pairs { kind, model } do
    local k = self.kinds[key]
    if not k then k = { seen = 0, mid = {}, half = {} }; self.kinds[key] = k end
    local at = k.seen % S.KEEP + 1 -- over the oldest once KEEP are seen
    k.mid[at], k.half[at] = seconds, half
    k.seen = k.seen + 1
  end
end

-- A poll at t saw a task of the kind completed: how long it took (from origin, on a clock off by up to
-- coarse s), to within half the gap since `before`, the last poll that saw it unfinished; learned.  Nothing
-- without such a poll.
function S:took(kind, model, t, before, origin, coarse)
  if not (before and origin) then return nil end
  local secs, half = (before + t) / 2 - origin, (t - before) / 2 + (coarse or 0)
  self:learn(kind, model, secs, half)
  return secs, half
end

-- The learned distribution of the key's tasks (S.distribution), or nil before MIN_SAMPLES: the most likely
-- distribution given each sample's interval (censored.lua: a task first polled long after it finished is
-- not taken for a quick one, nor spread over that gap where narrower samples say when tasks end), widened
-- to a bandwidth (Silverman's rule on the logarithms, narrower where the samples crowd) so that a few
-- samples stand for the tasks between.
function S:estimate(key)
  local k = key and self.kinds[key]
  if not k or k.seen < S.MIN_SAMPLES then return nil end
  return S.distribution(censored.spread(k.mid, k.half, S.MIN_WIDTH))
end

-- The key's learned distribution and plan (the model's samples stand in for a new kind): a new one with
-- each early sample, then with each eighth more.
function S:learned(kind, model)
  for _, key in ipairs { kind or model, model } do
    local k = self.kinds[key]
    if k and k.seen >= S.MIN_SAMPLES then
      local p = self.plans[key]
      if not p or k.seen >= p.seen + max(1, floor(p.seen / 8)) then
        p = { d = self:estimate(key), seen = k.seen }
        self.plans[key] = p
      end
      return p
    end
  end
end

function S:plan(kind, model)
  local p = self:learned(kind, model)
  if not p then return nil end
  p.plan = p.plan or S.make_plan(p.d, self.interval, self.min_interval)
  return p.plan
end

-- The seconds left for a task `age` seconds old: { p50 =, p90 = } among the learned tasks that ran at
-- least as long (0 past the last), and the 99th percentile of all; nil until a kind has its samples.
function S:eta(kind, model, age)
  local p = self:learned(kind, model)
  if not p then return nil end
  local d = p.d
  local done = d.F(age)
  local function left(share) return max(0, d.q(done + share * (1 - done)) - age) end
  return { p50 = left(0.5), p90 = left(0.9) }, d.q(0.99)
end

-- The first age of the plan's pieces after t, and the one before it (0: none).
function S.next_age(pieces, t)
  local prev = 0
  for _, p in ipairs(pieces) do -- (the last never ends)
    local first, gap = p[1], p[2]
    if t < first then return first, prev end
    local k = floor((t - first) / gap + 1e-9) + 1 -- (t may be an age of the piece, rounded down)
    if k < p[3] then return first + k * gap, first + (k - 1) * gap end
    prev = first + (p[3] - 1) * gap
  end
end

-- Seconds until the next poll of a task `age` seconds old polled just now.
function S:delay(kind, model, age)
  local m = self.min_interval
  local plan = age and self:plan(kind, model)
  if not plan then return max(self.interval, m) end
  local next_age, prev = S.next_age(plan.pieces, age)
  -- a poll nearer the next planned age than the one before stands for it (the plan moved): no extra poll;
  -- but not a poll before the plan's first (a probe): a task it saw running is polled at that first age,
  -- so that it is learned to within the gap from the probe, not within a gap over the next peak's start
  if prev > 0 and next_age - age < 0.5 * (next_age - prev) then next_age = S.next_age(plan.pieces, next_age) end
  -- (before the plan's first poll; counted once a task: a probe's own poll comes past (1 - PROBE_SHARE) of it)
  if prev == 0 and age < next_age * (1 - S.PROBE_SHARE) and self:learned(kind, model).seen < S.EXPLORE then
    self.probes = self.probes + 1 -- (placement.probe: one task in S.PROBE polls first earlier, to learn)
    local probe = placement.probe(next_age, self.probes, S.PROBE, S.PROBE_SHARE)
    if probe > age then return max(probe - age, m) end
  end
  return max(next_age - age, m)
end

-- The key's part (key.lua): the samples of each kind, the views of them, the records read.
local function part() return { kinds = {}, views = {}, read = {} } end

function S.of(key, cfg)
  local k = key:part("schedule", part)
  local vk = tostring(cfg.interval) .. "/" .. tostring(cfg.min_interval)
  local s = k.views[vk]
  if not s then s = S.new(cfg, k.kinds); k.views[vk] = s end
  return s
end

-- True the first time only: the caller reads the samples of the records `name`.
function S.first_read(key, name)
  local k = key:part("schedule", part)
  if k.read[name] then return false end
  k.read[name] = true
  return true
end

return S
