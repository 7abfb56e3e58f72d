-- The learned schedule (docs/polling.md): a view of the key's samples for one `interval` and
-- `min_interval`, with its plans.  A plan's gap around age t is proportional to sqrt((1 - F(t)) / f(t)),
-- which minimises the mean time from completion to notice for a number of polls.

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
local SQRT2PI = math.sqrt(2 * math.pi)
local MIN_SIGMA = 0.02

-- Abramowitz & Stegun 7.1.26: absolute error under 1.5e-7.
local function Phi(x)
  local z = math.abs(x) / 1.4142135623730951
  local t = 1 / (1 + 0.3275911 * z)
  local y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592)
    * t * math.exp(-z * z)
  return 0.5 * (1 + (x >= 0 and y or -y))
end
S.Phi = Phi

local function phi(z) return math.exp(-0.5 * z * z) / SQRT2PI end

-- The log-normal (mu, sigma): F(t), f(t), and the partial mean int_a^b x f(x) dx.
function S.lognormal(mu, sigma)
  local d = { mu = mu, sigma = sigma }
  function d.F(t, m) -- (m: the logarithms' mean, mu unless given)
    return t > 0 and Phi((math.log(t) - (m or mu)) / sigma) or 0
  end
  function d.f(t)
    return t > 0 and phi((math.log(t) - mu) / sigma) / (t * sigma) or 0
  end
  local mean = math.exp(mu + 0.5 * sigma * sigma)
  function d.partial_mean(a, b) -- x f(x) is mean times the density of (mu + sigma^2, sigma)
    return mean * (d.F(b, mu + sigma * sigma) - d.F(a, mu + sigma * sigma))
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
  local ts, t, acc, last = {}, 0, 0, 0
  while t < tmax do
    local dt = math.max(m / 4, t / 50) -- finer early, coarser late: the density is smooth in log-time
    local mid = t + dt / 2
    local f = d.f(mid)
    local gap = math.max(m, f > 0 and math.sqrt(2 * lambda * (1 - d.F(mid)) / f) or tmax)
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
  local function try(t1, g)
    if t1 < m or t1 > tmax then return end
    local ts = first_poll_plan(t1, g, interval, tmax)
    local polls, lag = S.evaluate(d, ts)
    if polls <= budget and (not best or lag < best_lag) then best, best_polls, best_lag = ts, polls, lag end
    return lag
  end
  for k = 0, S.SHORT_GAPS do
    local g = m * (interval / m) ^ (k / S.SHORT_GAPS)
    local z0, lag0
    for z = -3, 3.5, 0.1 do
      local lag = try(math.exp(d.mu + z * d.sigma), g)
      if lag and (not lag0 or lag < lag0) then z0, lag0 = z, lag end
    end
    if z0 then
      for z = z0 - 0.1, z0 + 0.1, 0.01 do try(math.exp(d.mu + z * d.sigma), g) end
    end
  end
  return best, best_polls, best_lag
end

function S.make_plan(mu, sigma, interval, m)
  local d = S.lognormal(mu, sigma)
  m = math.max(m, S.FLOOR) -- (min_interval = 0: the walks below would take steps of no length)
  -- to where almost every task has finished (not before the floor m), never past a week (or 4 intervals)
  local tmax = math.min(math.max(math.exp(mu + 3.5 * sigma), m), math.max(S.HORIZON, 4 * interval))
  local fixed_polls, fixed_lag = S.evaluate(d, S.fixed_plan(interval, tmax))
  -- MARGIN less for the estimate's error; but a task done by the fixed first poll (one poll) may have two
  local budget = math.max(fixed_polls * S.MARGIN, 1 + d.F(interval))
  local short = budget > fixed_polls * S.MARGIN -- tasks that mostly finish within `interval`
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
  if short then
    local ts, p, l = short_plan(d, interval, m, tmax, budget)
    if ts and l < lag then best, polls, lag = ts, p, l end
  end
  if lag > fixed_lag then -- a spread the plan cannot use: the fixed schedule
    best = S.fixed_plan(interval, tmax)
    polls, lag = fixed_polls, fixed_lag
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
    if not k then k = { seen = 0, lo = {}, hi = {} }; self.kinds[key] = k end
    -- the interval, in logarithms (lo nil: it may have been done at once), over the oldest once KEEP are seen
    local low, at = seconds - half, k.seen % S.KEEP + 1
    k.lo[at], k.hi[at] = low > 0 and math.log(low) or nil, math.log(seconds + half)
    k.seen = k.seen + 1
  end
end

-- mu, sigma | nil: a maximum-likelihood fit to the samples' intervals (EM on the logarithms, a truncated
-- normal per sample), so that a task first polled long after it finished does not pass for a quick one.
function S:estimate(key)
  local k = key and self.kinds[key]
  if not k or k.seen < S.MIN_SAMPLES then return nil end
  local n, lo, hi = #k.hi, k.lo, k.hi
  local mu, sq = 0, 0
  for i = 1, n do mu = mu + (hi[i] + (lo[i] or hi[i])) / 2 end
  mu = mu / n
  for i = 1, n do local d = (hi[i] + (lo[i] or hi[i])) / 2 - mu; sq = sq + d * d end
  local sigma = math.max(math.sqrt(sq / n), 0.1)
  for _ = 1, 50 do
    local s1, s2 = 0, 0
    for i = 1, n do
      local l, h, x, x2 = lo[i], hi[i]
      if l == h then
        x, x2 = h, h * h
      else
        local a, b = l and (l - mu) / sigma, (h - mu) / sigma
        local z = Phi(b) - (a and Phi(a) or 0)
        if z < 1e-6 then -- far in a tail: the nearest end of the interval
          x = math.min(math.max(mu, l or h), h)
          x2 = x * x
        else
          local pa, pb = a and phi(a) or 0, phi(b)
          local m1 = (pa - pb) / z
          x = mu + sigma * m1
          x2 = sigma * sigma * (1 + ((a and a * pa or 0) - b * pb) / z - m1 * m1) + x * x
        end
      end
      s1, s2 = s1 + x, s2 + x2
    end
    local new_mu = s1 / n
    local new_sigma = math.sqrt(math.max(s2 / n - new_mu * new_mu, MIN_SIGMA * MIN_SIGMA))
    local moved = math.abs(new_mu - mu) + math.abs(new_sigma - sigma)
    mu, sigma = new_mu, new_sigma
    if moved < 1e-6 then break end
  end
  -- never below the typical gap's width (alike coarse gaps hide a narrow spread); widened by mu's error
  local widths = {}
  for i = 1, n do widths[i] = hi[i] - (lo[i] or hi[i] - 1) end
  table.sort(widths)
  local floor = widths[math.floor((n + 1) / 2)] / 2 / math.sqrt(3)
  sigma = math.max(sigma, floor, MIN_SIGMA) * math.sqrt(1 + 1 / n)
  return mu, sigma
end

function S:plan(kind, model)
  for _, key in ipairs { kind or model, model } do -- (the model's samples stand in for a new kind)
    local k = self.kinds[key]
    if k and k.seen >= S.MIN_SAMPLES then
      -- a new plan with each early sample, then with each eighth more
      local p = self.plans[key]
      if not p or k.seen >= p.seen + math.max(1, math.floor(p.seen / 8)) then
        local mu, sigma = self:estimate(key)
        p = { plan = S.make_plan(mu, sigma, self.interval, self.min_interval), seen = k.seen }
        self.plans[key] = p
      end
      return p.plan
    end
  end
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
