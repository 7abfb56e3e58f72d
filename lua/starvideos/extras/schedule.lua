-- The learned schedule (docs/polling.md): a view of the key's samples for one `interval` and
-- `min_interval`, with its plans and its estimates of the time left.  A kind's learned distribution is
-- its samples, each spread evenly over its interval (S:estimate); a plan places polls on it (S.make_plan).

local config = require "starvideos.config"

local S = {}
S.__index = S

S.MIN_SAMPLES = 5   -- until a kind has this many, the fixed interval
S.KEEP = config.DEFAULTS.samples -- samples kept per kind (the newest)
S.MARGIN = 0.96     -- a plan's expected polls, as a share of the fixed interval's
S.HORIZON = 7 * 86400 -- a plan reaches no further (seconds)
S.SHORT_GAPS = 5    -- short-task plans try gaps m * (interval / m)^(k / 5), k = 0..5
S.RUN = 40          -- and keep such a gap for this many polls, then `interval`
S.FLOOR = 0.01      -- the shortest gap between polls a plan makes (seconds), min_interval 0 too
S.MIN_WIDTH = 0.02  -- a sample spreads over its duration +- this share at least

-- The largest j with x[j] <= v (0 when v < x[1]).
local function below(x, v)
  local a, b = 0, #x
  while a < b do
    local mid = a + math.floor((b - a + 1) / 2)
    if x[mid] <= v then a = mid else b = mid - 1 end
  end
  return a
end

-- The distribution of durations uniform over [lo[i], hi[i]] for sample i, each as likely: F(t), the
-- density f(t), the partial mean int_a^b x f(x) dx, the quantile q(p), and its ends first and last.
-- Piecewise: between the breakpoints x[j] and x[j + 1] the density is dens[j].
function S.distribution(lo, hi)
  local n, ends = #hi, {}
  for i = 1, n do
    local w = 1 / (n * (hi[i] - lo[i]))
    ends[2 * i - 1], ends[2 * i] = { lo[i], w }, { hi[i], -w }
  end
  table.sort(ends, function(a, b) return a[1] < b[1] end)
  local x, Fx, Mx, dens, rate = { ends[1][1] }, { 0 }, { 0 }, {}, 0
  for _, e in ipairs(ends) do
    local j = #x
    if e[1] > x[j] then
      dens[j], x[j + 1] = rate, e[1]
      Fx[j + 1] = Fx[j] + rate * (e[1] - x[j])
      Mx[j + 1] = Mx[j] + rate * (e[1] * e[1] - x[j] * x[j]) / 2
    end
    rate = rate + e[2]
  end
  local K = #x
  local d = { first = x[1], last = x[K] }
  function d.F(t)
    local j = below(x, t)
    if j == 0 then return 0 elseif j == K then return 1 end
    return math.min(1, Fx[j] + dens[j] * (t - x[j]))
  end
  function d.f(t)
    local j = below(x, t)
    return (j == 0 or j == K) and 0 or dens[j]
  end
  local function M(t)
    local j = below(x, t)
    if j == 0 or j == K then return Mx[math.max(j, 1)] end
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

-- Expected polls per task and lag (completion to notice) of polls at the ages ts.  A task
-- slower than the last age counts no lag: plans must reach past the likely end.
function S.evaluate(d, ts)
  local polls, lag, prev, Fprev = 0, 0, 0, 0
  for _, t in ipairs(ts) do
    local Ft = d.F(t)
    polls = polls + (1 - Fprev)
    lag = lag + t * (Ft - Fprev) - d.partial_mean(prev, t)
    prev, Fprev = t, Ft
  end
  return polls, lag
end

local function density_plan(d, lambda, m, tmax)
  local ts, t, acc, last, gap = {}, 0, 0, 0, tmax
  while t < tmax do
    local dt = math.max(m / 4, math.min(t / 50, gap / 4)) -- coarser late, but a few steps to a gap
    local mid = t + dt / 2
    local f = d.f(mid)
    gap = math.max(m, f > 0 and math.sqrt(2 * lambda * (1 - d.F(mid)) / f) or tmax)
    acc = acc + dt / gap
    t = t + dt
    if acc >= 1 and t - last >= m then
      ts[#ts + 1] = t
      last, acc = t, acc - 1
    end
  end
  -- the last at tmax or past it: a plan must not end early (S.evaluate)
  if #ts == 0 or last < tmax then ts[#ts + 1] = math.max(t, last + m) end
  return ts
end

-- A first poll at t1, then every g for S.RUN polls, then every `interval`.
local function first_poll_plan(t1, g, interval, tmax)
  local ts, t = {}, t1
  while true do
    ts[#ts + 1] = t
    if t >= tmax then return ts end
    t = t + (#ts <= S.RUN and g or interval)
  end
end

function S.fixed_plan(interval, tmax)
  return first_poll_plan(interval, interval, interval, tmax)
end

-- Where the floor `m` binds (a narrow spread), a first poll at t1 then every g can beat the density walk:
-- for each g, the t1 of least lag within the budget (a coarse grid on the quantiles, then a finer one).
local function short_plan(d, interval, m, tmax, budget)
  local best, best_polls, best_lag
  local function try(p, g)
    local t1 = d.q(p)
    if t1 < m or t1 > tmax then return end
    local ts = first_poll_plan(t1, g, interval, tmax)
    local polls, lag = S.evaluate(d, ts)
    if polls <= budget and (not best or lag < best_lag) then best, best_polls, best_lag = ts, polls, lag end
    return lag
  end
  for k = 0, S.SHORT_GAPS do
    local g = m * (interval / m) ^ (k / S.SHORT_GAPS)
    local p0, lag0
    for p = 0, 1, 0.02 do
      local lag = try(p, g)
      if lag and (not lag0 or lag < lag0) then p0, lag0 = p, lag end
    end
    if p0 then
      for p = math.max(0, p0 - 0.02), math.min(1, p0 + 0.02), 0.002 do try(p, g) end
    end
  end
  return best, best_polls, best_lag
end

-- The plan spending at most `polls` per task that polls every g, g the shortest such (not under m).
local function every_plan(d, polls, m, tmax)
  local lo, hi = m, math.max(tmax, m)
  while hi / lo > 1.0001 do
    local mid = math.sqrt(lo * hi)
    if S.evaluate(d, first_poll_plan(mid, mid, mid, tmax)) > polls then lo = mid else hi = mid end
  end
  return first_poll_plan(hi, hi, hi, tmax)
end

-- The plan on the learned distribution d: the polls per task of the fixed interval (less MARGIN; for
-- tasks mostly done within `interval`, up to 1 + the share done within it), placed where tasks end:
-- the density walk, gaps proportional to sqrt((1 - F(t)) / f(t)), which minimises the mean lag for a
-- number of polls, or a first poll at a quantile then even gaps, whichever notices sooner.  Never one
-- that notices later than the fixed interval, or than even gaps spending as many polls.
function S.make_plan(d, interval, m)
  m = math.max(m, S.FLOOR) -- (min_interval = 0: the walks below would take steps of no length)
  -- to where every learned task has finished (not before the floor m), never past a week (or 4 intervals)
  local tmax = math.min(math.max(d.last, m), math.max(S.HORIZON, 4 * interval))
  local fixed_polls, fixed_lag = S.evaluate(d, S.fixed_plan(interval, tmax))
  local budget = math.max(fixed_polls * S.MARGIN, 1 + d.F(interval))
  -- the smallest lambda (densest polls) whose expected polls stay within the budget
  local lo, hi = 1e-6 * interval, 1e3 * interval
  local best
  for _ = 1, 40 do
    local mid = math.sqrt(lo * hi)
    local ts = density_plan(d, mid, m, tmax)
    if S.evaluate(d, ts) > budget then lo = mid else hi, best = mid, ts end
    if hi / lo < 1.01 then break end
  end
  best = best or S.fixed_plan(interval, tmax)
  local polls, lag = S.evaluate(d, best)
  if budget > fixed_polls * S.MARGIN then -- tasks that mostly finish within `interval`
    local ts, p, l = short_plan(d, interval, m, tmax, budget)
    if ts and l < lag then best, polls, lag = ts, p, l end
  end
  local even = every_plan(d, polls, m, tmax)
  local even_polls, even_lag = S.evaluate(d, even)
  if even_lag < lag then best, polls, lag = even, even_polls, even_lag end
  if lag > fixed_lag then -- a spread the plan cannot use: the fixed schedule
    best, polls, lag = S.fixed_plan(interval, tmax), fixed_polls, fixed_lag
  end
  return { ages = best, polls = polls, lag = lag, fixed_polls = fixed_polls, fixed_lag = fixed_lag }
end

-- kinds: the samples (shared with the other schedules of a key; nil: a new set).
function S.new(cfg, kinds)
  return setmetatable({ interval = cfg.interval, min_interval = cfg.min_interval, kinds = kinds or {}, plans = {} }, S)
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

-- The learned distribution of the key's tasks (S.distribution), or nil before MIN_SAMPLES: each sample
-- over its interval (a task first polled long after it finished is not taken for a quick one), widened
-- to a bandwidth (Silverman's rule on the logarithms) so that a few samples stand for the tasks between.
function S:estimate(key)
  local k = key and self.kinds[key]
  if not k or k.seen < S.MIN_SAMPLES then return nil end
  local mid, half, n = k.mid, k.half, #k.mid
  local logs, mean, sq = {}, 0, 0
  for i = 1, n do logs[i] = math.log(mid[i]); mean = mean + logs[i] / n end
  for i = 1, n do sq = sq + (logs[i] - mean) ^ 2 / n end
  table.sort(logs)
  local iqr = (logs[math.ceil(0.75 * n)] - logs[math.ceil(0.25 * n)]) / 1.34
  local spread = math.sqrt(sq)
  if iqr > 0 then spread = math.min(spread, iqr) end
  local h = math.max(0.9 * spread * n ^ -0.2, S.MIN_WIDTH)
  local lo, hi = {}, {}
  for i = 1, n do
    local w = math.max(half[i], h * mid[i])
    lo[i], hi[i] = math.max(0, mid[i] - w), mid[i] + w
  end
  return S.distribution(lo, hi)
end

-- The key's learned distribution and plan (the model's samples stand in for a new kind): a new one with
-- each early sample, then with each eighth more.
function S:learned(kind, model)
  for _, key in ipairs { kind or model, model } do
    local k = self.kinds[key]
    if k and k.seen >= S.MIN_SAMPLES then
      local p = self.plans[key]
      if not p or k.seen >= p.seen + math.max(1, math.floor(p.seen / 8)) then
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
  local function left(share) return math.max(0, d.q(done + share * (1 - done)) - age) end
  return { p50 = left(0.5), p90 = left(0.9) }, d.q(0.99)
end

-- Seconds until the next poll of a task `age` seconds old polled just now.
function S:delay(kind, model, age)
  local m = self.min_interval
  local plan = age and self:plan(kind, model)
  if not plan then return math.max(self.interval, m) end
  local ages, lo = plan.ages, 1
  while ages[lo] and ages[lo] <= age do lo = lo + 1 end -- (a few polls a second: a walk will do)
  -- a poll nearer the next planned age than the one before stands for it (the plan moved): no extra poll
  if lo <= #ages and ages[lo] - age < 0.5 * (ages[lo] - (ages[lo - 1] or 0)) then lo = lo + 1 end
  if lo > #ages then -- slower than the plan foresaw: gaps growing from the floor to `interval`
    return math.max(m, math.min(self.interval, age - ages[#ages]))
  end
  return math.max(ages[lo] - age, m)
end

-- By budget: the samples of each kind, the views of them, the records read.
local keys = setmetatable({}, { __mode = "k", __index = function(t, budget)
  t[budget] = { kinds = {}, views = {}, read = {} }
  return t[budget]
end })

function S.of(budget, cfg)
  local k = keys[budget]
  local vk = tostring(cfg.interval) .. "/" .. tostring(cfg.min_interval)
  local s = k.views[vk]
  if not s then s = S.new(cfg, k.kinds); k.views[vk] = s end
  return s
end

-- True the first time only: the caller reads the samples of the records `name`.
function S.first_read(budget, name)
  local k = keys[budget]
  if k.read[name] then return false end
  k.read[name] = true
  return true
end

return S
