-- Polls placed where tasks end (issue 48): the optimal plan by dynamic programming
-- (placement.lua) on literal distributions, and the learned schedule using it:
-- within reach of the optimum on the true distribution, its polls counted, a
-- tail for tasks slower than any learned, tasks it knows nothing of unchanged.

local helper = require "spec.helper"
local Schedule = require "starvideos.schedule"
local placement = require "starvideos.placement"

local exp, sqrt = math.exp, math.sqrt

local normals = helper.normals

local function near(want, got, what)
  assert.is_true(math.abs(want - got) < 1e-9, (what or "") .. ": " .. got .. " against " .. want)
end

describe("the optimal placement of polls", function()
  -- Tasks end at 1 s (half of them), 2 s (a fifth) or 3 s (three tenths): F = 0.5, 0.7, 1 at 1, 2, 3;
  -- the partial means M = 0.5, 0.5 + 0.4, 0.9 + 0.9.  A plan polls at some of 1, 2, 3 and ends at 3; a
  -- poll is paid by the tasks still running at the one before (all of them for the first):
  --   {3}:       1 poll;                      lag 0.5 * 2 + 0.2 * 1 = 1.2
  --   {2, 3}:    1 + 0.3 = 1.3 polls;         lag 0.5 * 1 = 0.5
  --   {1, 3}:    1 + 0.5 = 1.5 polls;         lag 0.2 * 1 = 0.2
  --   {1, 2, 3}: 1 + 0.5 + 0.3 = 1.8 polls;   lag 0
  -- each on the lower hull of (polls, lag) (slopes -7/3, -3/2, -2/3): the best within each budget
  local x, F, M = { 1, 2, 3 }, { 0.5, 0.7, 1 }, { 0.5, 0.9, 1.8 }

  it("finds the hand-computed optimum for each budget", function()
    for _, case in ipairs {
      { 1, { 3 }, 1, 1.2 }, { 1.3, { 2, 3 }, 1.3, 0.5 }, { 1.4, { 2, 3 }, 1.3, 0.5 }, { 1.5, { 1, 3 }, 1.5, 0.2 },
      { 1.7, { 1, 3 }, 1.5, 0.2 }, { 2, { 1, 2, 3 }, 1.8, 0 },
    } do
      local ages, polls, lag = placement.optimal(x, F, M, case[1], 0)
      local what = "budget " .. case[1]
      assert.same(case[2], ages, what)
      near(case[3], polls, what); near(case[4], lag, what)
    end
  end)

  it("keeps polls m apart, the first not before m", function()
    -- m = 1.5: {2, 3} and {1, 2, 3} have polls 1 s apart, {1, 3} its first under 1.5 s: only {3}, whatever
    -- the budget
    assert.same({ 3 }, (placement.optimal(x, F, M, 2, 1.5)))
    -- m = 1: {1, 3} has its first poll at 1 and 2 s between: kept at 1.5 polls
    assert.same({ 1, 3 }, (placement.optimal(x, F, M, 1.5, 1)))
    assert.has_error(function() placement.optimal(x, F, { 1 }, 1.5, 1) end,
      "placement.optimal: x, F, M must be tables of one length")
  end)

  it("probes: one first poll in `rate` earlier, by shares spread evenly (0.5, 0.25, 0.75, ...)", function()
    local got = {}
    for k = 1, 16 do got[k] = placement.probe(8, k, 4, 0.5) end
    -- the 4th, 8th, 12th and 16th: u = 1/2, 1/4, 3/4, 1/8 of van der Corput's sequence, at 8 (1 - u / 2)
    assert.same({ 8, 8, 8, 6, 8, 8, 8, 7, 8, 8, 8, 5, 8, 8, 8, 7.5 }, got)
  end)
end)

-- n draws of a log-normal (median, sigma) or a mixture { {weight, median, sigma}, ... }.
local function drawer(seed, parts)
  local normal, u = normals(seed), normals(seed + 1)
  return function()
    local part = parts[1]
    if parts[2] and u() > 0 then part = parts[2] end -- (u() > 0: half the time)
    return part[2] * exp(part[3] * normal())
  end
end

-- The schedule's lag and polls on these durations, its first poll at once, as a job waits; nothing learned.
local function follow_all(s, durations)
  local polls, lag = 0, 0
  for _, d in ipairs(durations) do
    local age = 0
    polls = polls + 1
    while age < d do
      age = age + s:delay("k", "m", age)
      polls = polls + 1
    end
    lag = lag + age - d
  end
  return polls / #durations, lag / #durations
end

-- The optimum on these durations taken as the true distribution (each 1/n), at `polls` per task
-- (the first at once apart), polls m apart: its mean lag.
local function optimum_on(durations, polls, m)
  local x, F, M, n = {}, {}, {}, #durations
  for i, d in ipairs(durations) do x[i] = d end
  table.sort(x)
  for i = 1, n do F[i], M[i] = i / n, (M[i - 1] or 0) + x[i] / n end
  x[n + 1], F[n + 1], M[n + 1] = x[n] + m, 1, M[n]
  local tolerance = placement.TOLERANCE
  placement.TOLERANCE = 1.0001 -- (the schedule's own is coarser: a plan spending its budget more nearly)
  local _, p, lag = placement.optimal(x, F, M, polls - 1, m)
  placement.TOLERANCE = tolerance
  return lag, p + 1
end

-- The lag of the densest fixed interval spending no more than `polls` per task on these durations (its
-- first poll at once too).
local function fixed_on(durations, polls)
  local function fixed(g)
    local fp, fl = 0, 0
    for _, d in ipairs(durations) do
      local k = math.floor(d / g) + 1
      fp, fl = fp + 1 + k, fl + k * g - d
    end
    return fp / #durations, fl / #durations
  end
  local lo, hi = 0.01, 1e4
  for _ = 1, 80 do
    local mid = sqrt(lo * hi)
    if fixed(mid) > polls then lo = mid else hi = mid end
  end
  return select(2, fixed(hi))
end

describe("the learned schedule's polls placed where tasks end", function()
  local function learned(draw, n, interval, m)
    local s = Schedule.new { interval = interval, min_interval = m }
    for _ = 1, n do s:learn("k", "m", draw(), 0) end
    return s
  end

  it("notices within 1.25x the optimum on the true distribution, far sooner than fixed polls", function()
    -- 6 s tasks, sigma 0.1, min_interval 0.15 (seed 52): learned from 100, then 1000 fresh draws; the
    -- old schedule's plan polled every 30 s past the last learned end (1.48x the optimum here)
    for _, case in ipairs {
      { "6 s, sigma 0.1", { { 1, 6, 0.1 } }, 0.15 },
      { "30 s or 90 s", { { 0.5, 30, 0.1 }, { 0.5, 90, 0.1 } }, 5 },
    } do
      local draw = drawer(52, case[2])
      local s = learned(draw, 100, 30, case[3])
      local durations = {}
      for i = 1, 1000 do durations[i] = draw() end
      local polls, lag = follow_all(s, durations)
      local best, best_polls = optimum_on(durations, polls, case[3])
      local what = string.format("%s: learned %.3f s at %.3f polls, optimum %.3f s at %.3f", case[1], lag, polls, best,
        best_polls)
      print(what)
      assert.is_true(best_polls <= polls + 1e-9, what)
      assert.is_true(lag <= 1.25 * best, what)
      assert.is_true(lag < fixed_on(durations, polls), what) -- a fixed interval of as many polls lags more
    end
  end)

  it("taught only by its own polls, notices within 1.25x the optimum, sooner than fixed polls", function()
    -- 100 tasks waited on by the schedule itself (the first five every 30 s), each learned as a job learns
    -- it, to within its last gap (Schedule:took); then 1000 fresh draws.
    -- 6 s tasks, sigma 0.02, min_interval 0.15 (seed 64): each sample spread evenly over its gap, as
    -- before the censored estimate, the plan never narrowed below the gaps it learned from: 1.16 s, 14x
    -- the optimum here (0.95 to 14x on seeds 61-72).
    -- 30 s or 90 s, min_interval 5 (seed 64): without the probes before the plan's first poll and the
    -- rounds' start from the samples told apart (censored.lua), the first peak's tasks were known only as
    -- "done by" a first poll that stayed past them: 14.5 s, 2.4x the optimum here (1.0 to 2.4x on seeds
    -- 64-71; now 0.94 to 1.55x, two of the eight over 1.25: 1.30 and 1.55).
    for _, case in ipairs {
      { "6 s, sigma 0.02", 64, { { 1, 6, 0.02 } }, 0.15 },
      { "30 s or 90 s", 64, { { 0.5, 30, 0.1 }, { 0.5, 90, 0.1 } }, 5 },
    } do
      local draw, m = drawer(case[2], case[3]), case[4]
      local s = Schedule.new { interval = 30, min_interval = m }
      for _ = 1, 100 do
        local d, age, before = draw(), 0, nil
        while age < d do
          before, age = age, age + s:delay("k", "m", age)
        end
        s:took("k", "m", age, before, 0)
      end
      local durations = {}
      for i = 1, 1000 do durations[i] = draw() end
      local polls, lag = follow_all(s, durations)
      local best, best_polls = optimum_on(durations, polls, m)
      local fixed = fixed_on(durations, polls)
      local what = string.format("%s: learned %.3f s at %.3f polls, optimum %.3f s at %.3f, fixed %.3f s", case[1],
        lag, polls, best, best_polls, fixed)
      print(what)
      assert.is_true(best_polls <= polls + 1e-9, what)
      assert.is_true(lag <= 1.25 * best and lag < fixed, what)
    end
  end)

  it("spends no more than its budget, none before the earliest learned end, the optimum on its grid", function()
    local draw = drawer(7, { { 1, 120, 0.15 } })
    local s = learned(draw, 60, 30, 5)
    local p, d = s:plan("k", "m"), s:estimate("k")
    -- the budget: the fixed interval's polls on the learned tasks, less 4%
    local polls = Schedule.evaluate(d, p.pieces)
    assert.is_true(polls <= p.fixed_polls * Schedule.MARGIN + 1e-9, polls .. " polls")
    assert.is_true(p.pieces[1][1] >= d.first, "first poll " .. p.pieces[1][1] .. " before " .. d.first)
    -- the plan is the dynamic programme's on the learned distribution's grid, at least as good
    local x, F, M = placement.grid(d, Schedule.GRID, 5)
    local _, _, dp_lag = placement.optimal(x, F, M, p.fixed_polls * Schedule.MARGIN, 5)
    assert.is_true(p.lag <= dp_lag + 1e-9, p.lag .. " s against " .. dp_lag .. " s")
  end)

  it("polls a task slower than any learned at doubling gaps, not every interval", function()
    local draw = drawer(9, { { 1, 6, 0.1 } })
    local s = learned(draw, 100, 30, 0.15)
    local d = s:estimate("k")
    -- from the last learned end: gaps at least doubling up to 30 s, then every 30 s
    local age, gaps = d.last, {}
    while #gaps < 12 do
      local g = s:delay("k", "m", age)
      gaps[#gaps + 1], age = g, age + g
    end
    assert.is_true(gaps[1] < 1, "the first gap past the learned end: " .. gaps[1])
    for i = 2, #gaps do
      assert.is_true(gaps[i] >= gaps[i - 1] - 1e-9 and gaps[i] <= math.max(2 * gaps[i - 1], 30) + 1e-9,
        table.concat(gaps, ", "))
    end
    near(30, gaps[#gaps], "at last every interval")
  end)

  it("leaves tasks it knows nothing of as before: every interval, no eta", function()
    local s = Schedule.new { interval = 30, min_interval = 5 }
    for _ = 1, Schedule.MIN_SAMPLES - 1 do s:learn("k", "m", 6, 0) end
    for _, age in ipairs { 0, 3, 29, 100 } do assert.are.equal(30, s:delay("k", "m", age)) end
    assert.is_nil(s:eta("k", "m", 0))
    assert.are.equal(30, s:delay("other", "other", 0))
    assert.are.equal(40, Schedule.new({ interval = 40, min_interval = 5 }):delay("k", "m", 0))
  end)
end)
