-- Notice lag: the time from a task's completion (on the server) to the client
-- seeing it, with the learned schedule (no `interval`) against fixed
-- intervals, per task and in polls per task.
--
-- Rows 10 and 11, long tasks: time is compressed 20x: the service's 30 s
-- interval is 1.5 s here, min_interval 5 s is 0.25 s, and tasks take a median
-- of 120 s (6 s here) with a log-normal spread.  Both policies run at once,
-- each against its own emulator with the same seed, so task k takes the same
-- time under both.  Tasks arrive at random (seeded); the ones measured (under
-- both policies) are those created once the learned run's schedule had a
-- plan: before, it is the fixed schedule by design.  The baseline: the fixed
-- 30 s interval; the learned plan spends no more polls.
--
-- The short-task rows (issue 16): time compressed 10x, tasks of 6 s and of 20 s
-- (sigma 0.1), the default interval 30 s and min_interval 5 s.  The first 30
-- tasks are a warm-up waited every 0.1 s; the later ones are measured.  First
-- the learned runs (and, beside the 6 s one, the fixed 30 s interval); then,
-- on new emulators with the same seeds (the same tasks, checked), the fixed
-- interval that spends as many polls per task on those tasks as the learned
-- run did (the densest such interval, from their durations).
-- Figures are printed in service seconds (scaled back up).
--   lua5.4 bench/notice_lag.lua      (BENCH_QUICK=1: fewer tasks)
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local B = require "common"
local cjson = require "cjson"
local socket = require "socket"
local http = require "socket.http"
local starvideos = require "starvideos"
local Schedule = require "starvideos.extras.schedule"

local quick = os.getenv("BENCH_QUICK") == "1"
local KIND = "videos|5|"

-- seeded exponential gaps between arrivals (the same for every run)
local state = 7
local function uniform()
  state = state * 48271 % 2147483647
  return state / 2147483647
end
local function arrivals_of(n, mean)
  local list, t = {}, 0
  for i = 1, n do t = t + -math.log(uniform()) * mean; list[i] = t end
  return list
end

local all_runs = {}

-- A run: its own emulator (tasks of `median` seconds, real time, spread
-- `sigma`, seed 99) and client; `interval_of(k)` is task k's fixed interval, or
-- nil for the learned schedule.
local function new_run(r)
  r.emu = B.emulator("bench-key", string.format("--queued 0 --processing %g", r.median))
  r.emu.config { spread = r.sigma, seed = 99 }
  r.notice, r.jobs, r.planned = {}, {}, {}
  r.client = starvideos.new { api_key = r.emu.key, base_url = r.emu.url, interval = r.interval,
    min_interval = r.min_interval, requests_per_second = 1000 }
  all_runs[#all_runs + 1] = r
  return r
end

-- Start task k of every run at arrivals[k] (all runs at once), and step them
-- all until every task is done.
local function drive(runs, arrivals)
  local params = { model = "videos", prompt = "notice lag", duration = 5 }
  local t0 = B.now()
  local next_task = 1
  while true do
    local now = B.now() - t0
    while next_task <= #arrivals and arrivals[next_task] <= now do
      for _, run in ipairs(runs) do
        local k = next_task
        local sched = Schedule.of(run.client.budget, run.client.cfg)
        run.planned[k] = sched and sched:plan(KIND, "videos") ~= nil
        run.jobs[k] = assert(run.client:start(params, {
          interval = run.interval_of(k),
          on_status = function(job)
            if job.status == "completed" and not run.notice[k] then run.notice[k] = socket.gettime() end
          end,
        }))
      end
      next_task = next_task + 1
    end
    local busy = next_task <= #arrivals
    for _, run in ipairs(runs) do
      run.client:step(0)
      for k = 1, next_task - 1 do
        if not run.jobs[k].done then busy = true; break end
      end
    end
    if not busy then break end
    socket.sleep(0.001)
  end
end

-- The tasks k with counted[k]: mean lag (service seconds), polls per task,
-- how many, and their durations (real seconds, by k); the durations of all
-- tasks, sorted; the run's emulator stops.
local function measure(run, counted)
  local tasks = cjson.decode((assert(http.request(run.emu.url .. "/_emulator/tasks"))))
  local polls = {}
  for _, r in ipairs(run.emu.requests()) do
    local id = r.method == "GET" and r.path:match("^/v1/result/(.+)$")
    if id then polls[id] = (polls[id] or 0) + 1 end
  end
  -- by id: two tasks due in one round are created side by side, and reach the
  -- emulator in either order
  local by_id = {}
  for _, task in ipairs(tasks) do by_id[task.id] = task end
  local lag, n, p, durations, all = 0, 0, 0, {}, {}
  for k = 1, #run.jobs do
    local job = run.jobs[k]
    local task = job.task and by_id[job.task.id]
    assert(task, "the emulator has the run's task " .. k)
    assert(run.notice[k], "task " .. k .. " completed")
    all[k] = task.queued + task.processing
    if counted[k] then
      lag, n, p = lag + (run.notice[k] - task.ends_at), n + 1, p + polls[task.id]
      durations[k] = all[k]
    end
  end
  table.sort(all)
  run.emu.stop()
  run.stopped = true
  return lag / n * run.scale, p / n, n, durations, all
end

-- Rows 10 and 11: tasks of 120 s against the fixed 30 s interval.
local function long_tasks()
  local SCALE = 20
  local MEDIAN, INTERVAL, MIN_INTERVAL = 120 / SCALE, 30 / SCALE, 5 / SCALE
  local N = quick and 70 or 240
  local SIGMAS = { 0.15, 0.5 }
  local arrivals = arrivals_of(N, quick and 0.15 or 0.2) -- mean seconds between arrivals
  local runs = {}
  for _, sigma in ipairs(SIGMAS) do
    for _, policy in ipairs { "fixed", "learned" } do
      runs[#runs + 1] = new_run { sigma = sigma, policy = policy, median = MEDIAN, scale = SCALE,
        interval = INTERVAL, min_interval = MIN_INTERVAL,
        interval_of = function() return policy == "fixed" and INTERVAL or nil end }
    end
  end
  drive(runs, arrivals)

  local results, measured = {}, {}
  for i = 1, #runs, 2 do -- fixed, then learned, for each sigma: the learned run says which tasks count
    local fixed, learned = runs[i], runs[i + 1]
    local r = {}
    for _, run in ipairs { fixed, learned } do
      local lag, polls, n = measure(run, learned.planned)
      r[run.policy] = { lag = lag, polls = polls }
      measured[run.sigma] = n
    end
    results[fixed.sigma] = r
  end

  print(string.format("notice lag, %d tasks, time compressed %dx, shown in service seconds", N, SCALE))
  print(string.format("  median task 120 s, log-normal; fixed interval 30 s; min_interval 5 s"))
  for _, sigma in ipairs(SIGMAS) do
    local f, l = results[sigma].fixed, results[sigma].learned
    -- the best any schedule that knows only a task's age could do, on the true distribution
    local bound = Schedule.make_plan(math.log(120), sigma, 30, 5)
    print(string.format("  sigma %.2f, %d tasks measured: fixed %.2f s lag, %.2f polls/task;"
      .. " learned %.2f s lag, %.2f polls/task; ratio %.2f (the plan on the true spread: %.2f)",
      sigma, measured[sigma], f.lag, f.polls, l.lag, l.polls, l.lag / f.lag, bound.lag / bound.fixed_lag))
    local third = sigma <= 0.2
    local ratio = l.lag / f.lag
    local ok = l.polls <= f.polls * 1.02 and (third and ratio <= 1 / 3 or ratio < 1)
    print("BENCH " .. cjson.encode {
      scenario = string.format("notice lag, learned vs fixed polling (log-normal sigma %.2f)", sigma),
      baseline = "fixed 30 s interval, same tasks", unit = "s", ours = l.lag, theirs = f.lag, ratio = ratio,
      target = third and "<= 0.33, polls <= fixed" or "< 1, polls <= fixed (1/3 out of reach: see note)",
      ok = ok,
      note = string.format("polls/task %.2f vs %.2f; a plan on the true spread gives %.2f", l.polls, f.polls,
        bound.lag / bound.fixed_lag),
    })
  end
end

-- Fixed polling every `interval` from creation, on tasks of these durations:
-- polls per task and mean lag.
local function fixed_on(durations, interval)
  local polls, lag, n = 0, 0, 0
  for _, d in pairs(durations) do
    local k = math.floor(d / interval) + 1
    polls, lag, n = polls + k, lag + (k * interval - d), n + 1
  end
  return polls / n, lag / n
end

-- The densest fixed interval spending no more than `polls` per task on these
-- durations (fixed polling's polls fall as its interval grows).
local function interval_for(durations, polls)
  local lo, hi = 1e-4, 1e4
  for _ = 1, 100 do
    local mid = math.sqrt(lo * hi)
    if fixed_on(durations, mid) > polls then lo = mid else hi = mid end
  end
  return hi
end

-- The same on the log-normal d (expected polls), for the note's bound.
local function interval_on(d, polls)
  local lo, hi = 0.01, 1e4
  for _ = 1, 80 do
    local mid = math.sqrt(lo * hi)
    if Schedule.evaluate(d, Schedule.fixed_plan(mid, 1e5)) > polls then lo = mid else hi = mid end
  end
  return hi, select(2, Schedule.evaluate(d, Schedule.fixed_plan(hi, 1e5)))
end

-- The short-task rows of issue 16.
local function short_tasks()
  local SCALE, SIGMA, WARM = 10, 0.1, 30
  local INTERVAL, MIN_INTERVAL, WARM_INTERVAL = 30 / SCALE, 5 / SCALE, 0.1 / SCALE
  local N = WARM + (quick and 20 or 100)
  local arrivals = arrivals_of(N, quick and 0.12 or 0.2)
  local counted = {}
  for k = WARM + 1, N do counted[k] = true end
  local function run(median, interval)
    return new_run { median = median / SCALE, sigma = SIGMA, scale = SCALE, interval = INTERVAL,
      min_interval = MIN_INTERVAL, interval_of = function(k) return k <= WARM and WARM_INTERVAL or interval end }
  end
  local MEDIANS = { 6, 20 }
  local learned, default = {}, run(6, INTERVAL)
  for _, median in ipairs(MEDIANS) do learned[median] = run(median) end
  local first = { default }
  for _, median in ipairs(MEDIANS) do first[#first + 1] = learned[median] end
  drive(first, arrivals)
  local d30 = { measure(default, counted) }
  local got, fixed = {}, {}
  for _, median in ipairs(MEDIANS) do
    got[median] = { measure(learned[median], counted) }
    local interval = interval_for(got[median][4], got[median][2])
    fixed[median] = run(median, interval)
    fixed[median].every = interval * SCALE
  end
  local second = {}
  for _, median in ipairs(MEDIANS) do second[#second + 1] = fixed[median] end
  drive(second, arrivals)

  print(string.format("notice lag, short tasks: %d warm-up tasks waited every 0.1 s, then %d measured; time"
    .. " compressed %dx, shown in service seconds; interval 30 s, min_interval 5 s, log-normal sigma %.2f",
    WARM, N - WARM, SCALE, SIGMA))
  for _, median in ipairs(MEDIANS) do
    local l = got[median]
    local f = { measure(fixed[median], counted) }
    -- the same tasks (the same seed); two created side by side may reach the
    -- emulator in either order, and so swap durations
    for i, d in ipairs(l[5]) do
      assert(math.abs(f[5][i] - d) < 1e-6, "the fixed run's tasks are not the learned run's")
    end
    local ratio = l[1] / f[1]
    -- on the true spread: the plan, and the fixed interval with as many polls
    local dist = Schedule.lognormal(math.log(median), SIGMA)
    local plan = Schedule.make_plan(math.log(median), SIGMA, 30, 5)
    local _, eq_lag = interval_on(dist, plan.polls)
    local every = fixed[median].every
    print(string.format("  %g s tasks, %d measured: learned %.2f s lag, %.3f polls/task; fixed every %.2f s"
      .. " %.2f s lag, %.3f polls/task; ratio %.2f (the plan on the true spread: %.2f s for %.3f polls, %.2f of"
      .. " the fixed interval with as many)", median, l[3], l[1], l[2], every, f[1], f[2], ratio, plan.lag,
      plan.polls, plan.lag / eq_lag))
    local polls_ok = l[2] <= f[2] * 1.02 + 1e-9 and l[2] <= 2
    local note = string.format("polls/task %.3f vs %.3f (fixed every %.2f s: the densest interval spending no more"
      .. " on these tasks); a plan on the true spread: %.2f s lag, %.2f of the fixed interval with as many polls",
      l[2], f[2], every, plan.lag, plan.lag / eq_lag)
    local row = {
      scenario = string.format("notice lag, learned vs fixed polling (%g s tasks, sigma %.2f)", median, SIGMA),
      baseline = "fixed interval at equal polls/task, same tasks", unit = "s", ours = l[1], theirs = f[1],
      ratio = ratio,
    }
    if median == 6 then
      -- issue 16 asked 0.4: out of reach for any plan whose polls are 5 s apart or more
      row.target, row.ok = "< 1, polls <= fixed (0.4 out of reach: see note)", polls_ok and ratio < 1
      row.note = note .. "; a first poll at t1 then every g >= 5 s comes to 0.82 at best, so 0.4 is out of"
        .. " reach with min_interval 5 s"
    else
      row.target, row.ok = "lag <= 3 s and <= 0.4, polls <= fixed", polls_ok and l[1] <= 3 and ratio <= 0.4
      row.note = note
    end
    print("BENCH " .. cjson.encode(row))
  end
  local l6 = got[6]
  print(string.format("  6 s tasks against the default interval: learned %.2f s lag, %.3f polls/task; every 30 s"
    .. " %.2f s lag, %.3f polls/task", l6[1], l6[2], d30[1], d30[2]))
  print("BENCH " .. cjson.encode {
    scenario = string.format("notice lag, learned vs fixed polling (6 s tasks, sigma %.2f), default interval", SIGMA),
    baseline = "fixed 30 s interval (the default), same tasks", unit = "s", ours = l6[1], theirs = d30[1],
    ratio = l6[1] / d30[1], target = "<= 0.1, polls <= 1 + share done within 30 s (2)",
    ok = l6[1] / d30[1] <= 0.1 and l6[2] <= 2,
    note = string.format("polls/task %.3f vs %.3f", l6[2], d30[2]),
  })
end

local ok, err = xpcall(function() long_tasks(); short_tasks() end, debug.traceback)
if not ok then
  for _, run in ipairs(all_runs) do if not run.stopped then run.emu.stop() end end
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
