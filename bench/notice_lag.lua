-- Notice lag: the time from a task's completion to the client seeing it, with
-- the learned schedule (no `interval`) against a fixed interval spending as
-- many polls per task, for distributions of several shapes.  On simulated
-- time: a clock this script moves drives the schedule's code
-- (schedule.lua: delay and learn, as job.lua calls them), no sleeping.
--
-- Each shape, as a user meets it: tasks created and waited on one after
-- another (the wait polls once at once, as client:wait does, then when the
-- schedule says); each finished task teaches the schedule as job.lua's took()
-- does (the middle of the last two polls' gap, give or take half of it).  A
-- warm-up (polled every `warm` s, or by the schedule itself) comes first; the
-- tasks after it are measured.  The baseline, in the same run on the same
-- task durations: the densest fixed interval whose polls per task (its first
-- at once too) are no more than the learned run's.
--   lua5.4 bench/notice_lag.lua      (BENCH_QUICK=1: fewer tasks)
package.path = dofile("tools/lua_dirs.lua")() .. "bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local B = require "common"
local polling = require "lib.polling"
local Schedule = require "starvideos.schedule"

local SEED = 20261125
print(string.format("notice lag on simulated time, seed %d", SEED))

local uniform, normal = polling.draws(SEED)
local function lognormal(median, sigma) return function() return median * math.exp(sigma * normal()) end end

-- The shapes: durations (service seconds), the client's interval and
-- min_interval, the warm-up (n tasks polled every `warm` s; nil: by the schedule).
local SHAPES = {
  { name = "6 s tasks, sigma 0.1, min_interval 0.15 (issue 27)", draw = lognormal(6, 0.1), interval = 30,
    min_interval = 0.15, warm = 0.1, target = 0.4 },
  { name = "6 s tasks, sigma 0.1 (short, tight; issue 16)", draw = lognormal(6, 0.1), interval = 30, min_interval = 5,
    warm = 0.1 },
  { name = "20 s tasks, sigma 0.5 (short, wide)", draw = lognormal(20, 0.5), interval = 30, min_interval = 5 },
  { name = "120 s tasks, sigma 0.15 (long, tight)", draw = lognormal(120, 0.15), interval = 30, min_interval = 5 },
  { name = "120 s tasks, sigma 0.5 (long, wide)", draw = lognormal(120, 0.5), interval = 30, min_interval = 5 },
  { name = "60 s or 300 s, half each, sigma 0.1 (two-peaked)", interval = 30, min_interval = 5,
    draw = function() return (uniform() < 0.5 and 60 or 300) * math.exp(0.1 * normal()) end },
  { name = "Pareto, 40 s and up, alpha 1.5 (heavy-tailed)", interval = 30, min_interval = 5,
    draw = function() return math.min(40 * uniform() ^ (-1 / 1.5), 20000) end },
  { name = "30 min tasks, sigma 0.3 (long)", draw = lognormal(1800, 0.3), interval = 30, min_interval = 5 },
}
local WARM, MEASURED = 30, B.quick and 100 or 400

-- A task of d seconds waited on with the schedule s (or every `fixed` s): its polls and lag; s learns.
local function follow(s, d, fixed)
  local age, polls, before = 0, 1, 0 -- the wait's first poll, at once
  while age < d do
    before = age
    age = age + (fixed or s:delay("kind", "model", age))
    polls = polls + 1
  end
  s:learn("kind", "model", (before + age) / 2, (age - before) / 2)
  return polls, age - d
end

local fixed_on, interval_for = polling.fixed_on, polling.interval_for

local t0 = os.clock()
for _, shape in ipairs(SHAPES) do
  local s = Schedule.new { interval = shape.interval, min_interval = shape.min_interval }
  for _ = 1, WARM do follow(s, shape.draw(), shape.warm) end
  local durations, polls, lag = {}, 0, 0
  for i = 1, MEASURED do
    local d = shape.draw()
    local p, l = follow(s, d)
    durations[i], polls, lag = d, polls + p, lag + l
  end
  polls, lag = polls / MEASURED, lag / MEASURED
  local every = interval_for(durations, polls)
  local fpolls, flag = fixed_on(durations, every)
  local dpolls, dlag = fixed_on(durations, shape.interval)
  local ratio = lag / flag
  local target = shape.target or 1
  print(string.format("  %s: learned %.2f s lag, %.3f polls/task; fixed every %.2f s %.2f s lag, %.3f polls/task;"
    .. " ratio %.2f (every %g s, the default: %.2f s, %.3f polls/task)", shape.name, lag, polls, every, flag, fpolls,
    ratio, shape.interval, dlag, dpolls))
  B.row {
    scenario = "notice lag, learned schedule: " .. shape.name,
    baseline = "fixed interval, same polls per task", unit = "s", ours = lag, theirs = flag, ratio = ratio,
    target = string.format("<= %g, at as many polls (within 1%%)", target),
    ok = ratio <= target and fpolls >= 0.99 * polls,
    note = string.format("%d tasks measured after %d warm-up%s; polls/task %.3f vs %.3f (fixed every %.2f s); every"
      .. " %g s (the default) %.2f s lag at %.3f polls/task; min_interval %g s; simulated time, seed %d", MEASURED,
      WARM, shape.warm and string.format(" polled every %g s", shape.warm) or "", polls, fpolls, every,
      shape.interval, dlag, dpolls, shape.min_interval, SEED),
  }
end
print(string.format("  (%.1f CPU s)", os.clock() - t0))
