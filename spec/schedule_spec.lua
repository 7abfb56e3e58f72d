-- The learned polling schedule: its arithmetic (literal values), a simulation
-- of thousands of tasks with no clock, and the client using it against the
-- emulator (counted in polls, never in time).

local helper = require "spec.helper"
local starvideos = require "starvideos"
local Schedule = require "starvideos.schedule"
local core = require "starvideos.core"

local log, exp, sqrt, cos, pi = math.log, math.exp, math.sqrt, math.cos, math.pi

-- A seeded standard normal generator (Park-Miller), the same on every VM.
local function normals(seed)
  local state = seed
  local function uniform()
    state = state * 48271 % 2147483647
    return state / 2147483647
  end
  return function() return sqrt(-2 * log(uniform())) * cos(2 * pi * uniform()) end
end

describe("schedule arithmetic", function()
  it("has the normal distribution function right", function()
    assert.is_true(math.abs(Schedule.Phi(0) - 0.5) < 1e-7)
    assert.is_true(math.abs(Schedule.Phi(1.959964) - 0.975) < 1e-6)
    assert.is_true(math.abs(Schedule.Phi(-1) - 0.158655) < 1e-6)
    local d = Schedule.lognormal(log(120), 0.3)
    assert.is_true(math.abs(d.F(120) - 0.5) < 1e-7) -- the median
  end)

  it("spends no more polls than the fixed interval and notices within a third of its lag (sigma 0.15)", function()
    local p = Schedule.make_plan(log(120), 0.15, 30, 5)
    assert.is_true(p.polls <= p.fixed_polls, p.polls .. " polls against " .. p.fixed_polls)
    assert.is_true(p.lag <= p.fixed_lag / 3, p.lag .. " s against " .. p.fixed_lag)
    assert.is_true(math.abs(p.fixed_lag - 15) < 0.1) -- half the interval
    for i = 2, #p.ages do assert.is_true(p.ages[i] - p.ages[i - 1] >= 5 - 1e-9) end
    assert.is_true(p.ages[1] > 30, "no poll early: the first at " .. p.ages[1])
  end)

  it("still beats the fixed interval for a wide spread (sigma 0.5), with no more polls", function()
    local p = Schedule.make_plan(log(120), 0.5, 30, 5)
    assert.is_true(p.polls <= p.fixed_polls)
    assert.is_true(p.lag < 0.8 * p.fixed_lag)
  end)

  it("is the fixed interval until it has seen a few tasks, then follows the plan", function()
    local s = Schedule.new { interval = 30, min_interval = 5 }
    for i = 1, Schedule.MIN_SAMPLES - 1 do
      s:learn("videos|5|", "videos", 100 + i, 2)
      assert.are.equal(30, s:delay("videos|5|", "videos", 0))
    end
    s:learn("videos|5|", "videos", 100, 2)
    assert.is_true(s:delay("videos|5|", "videos", 0) > 60, "few polls early")
    assert.is_true(s:delay("videos|5|", "videos", 96) <= 10, "dense near 100 s")
    for age = 0, 300, 0.7 do assert.is_true(s:delay("videos|5|", "videos", age) >= 5) end -- the floor
    -- a poll made a moment before a planned age stands for it: the next is the one after
    local wide = Schedule.new { interval = 30, min_interval = 5 }
    for _, d in ipairs { 60, 80, 100, 125, 160 } do wide:learn("k", "m", d, 1) end
    local ages = wide:plan("k", "m").ages
    assert.is_true(ages[4] - ages[3] > 6)
    assert.is_true(math.abs(wide:delay("k", "m", ages[3] - 0.01) - (ages[4] - ages[3] + 0.01)) < 1e-9)
    assert.is_true(math.abs(wide:delay("k", "m", ages[3] + 0.01) - (ages[4] - ages[3] - 0.01)) < 1e-9)
    assert.are.equal(30, s:delay("videos|5|", "videos", 1e5)) -- far slower than any plan: fixed
    assert.are.equal(30, s:delay("videos|5|", "videos", nil)) -- age unknown: fixed
    -- another kind of the same model borrows the model's plan; another model has none
    assert.is_true(s:delay("videos|10|", "videos", 0) > 60)
    assert.are.equal(30, s:delay("videos_fast|5|", "videos_fast", 0))
  end)

  it("falls back to the fixed interval where the spread is too wide to use, and plans in bounded time", function()
    for _, pair in ipairs { { 20, 600 }, { 10, 10000 }, { 2, 9e6 } } do
      local s = Schedule.new { interval = 30, min_interval = 5 }
      for _ = 1, 3 do s:learn("k", "m", pair[1], 1); s:learn("k", "m", pair[2], 1) end
      local p = s:plan("k", "m")
      assert.is_true(p.lag <= p.fixed_lag + 1e-9, "never worse than the fixed interval on its own estimate")
      assert.is_true(#p.ages <= 7 * 86400 / 5 + 1, "a week's horizon at most")
      local d = s:delay("k", "m", 0)
      assert.is_true(d >= 5 and d <= 600, "a first poll within reason: " .. d)
    end
  end)

  it("keeps an interval reaching down to 0 as an interval", function()
    local s = Schedule.new { interval = 30, min_interval = 5 }
    s:learn("k", "m", 15.000000000000002, 15.000000000000004) -- rounding made half > seconds
    assert.is_nil(s.kinds.k.lo[1]) -- open below: it may have been done at once
  end)

  it("ignores samples that are not durations", function()
    local s = Schedule.new { interval = 30, min_interval = 5 }
    for _ = 1, 10 do s:learn("k", "m", 0 / 0) s:learn("k", "m", -1) s:learn("k", "m", "100") end
    assert.is_nil(s:plan("k", "m"))
  end)
end)

describe("schedule simulation (no clock)", function()
  -- n tasks with log-normal durations; each polled by the fixed schedule and by
  -- the learned one, which learns as the tasks finish (in order).
  local function simulate(sigma, n)
    local normal = normals(12345)
    local s = Schedule.new { interval = 30, min_interval = 5 }
    local fixed = { polls = 0, lag = 0 }
    local auto = { polls = 0, lag = 0 }
    for i = 1, n do
      local d = 120 * exp(sigma * normal())
      -- fixed: every 30 s from creation
      local k = math.floor(d / 30) + 1
      if i > 20 then fixed.polls, fixed.lag = fixed.polls + k, fixed.lag + (k * 30 - d) end
      -- learned
      local age, polls, before = 0, 0, 0
      while true do
        age = age + s:delay("kind", "model", age)
        polls = polls + 1
        if age >= d then break end
        before = age
      end
      s:learn("kind", "model", (before + age) / 2, (age - before) / 2)
      if i > 20 then auto.polls, auto.lag = auto.polls + polls, auto.lag + (age - d) end
    end
    local m = n - 20
    return fixed.polls / m, fixed.lag / m, auto.polls / m, auto.lag / m
  end

  it("at sigma 0.15: no more polls per task, a third of the lag or less", function()
    local fp, fl, ap, al = simulate(0.15, 2000)
    assert.is_true(ap <= fp, string.format("%.2f polls against %.2f", ap, fp))
    assert.is_true(al <= fl / 3, string.format("%.2f s against %.2f s", al, fl))
  end)

  it("at sigma 0.5: no more polls per task, and less lag", function()
    local fp, fl, ap, al = simulate(0.5, 2000)
    assert.is_true(ap <= fp * 1.02, string.format("%.2f polls against %.2f", ap, fp))
    assert.is_true(al < fl, string.format("%.2f s against %.2f s", al, fl))
  end)
end)

describe("the client's learned schedule", function()
  local emu, dir
  setup(function()
    emu = helper.emulator { queued = 0, processing = 1.1 }
    emu:config { spread = 0.1, seed = 42 }
    dir = helper.tmpdir()
  end)
  teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)

  local PARAMS = { model = "videos", prompt = "schedule", duration = 5 }

  -- The polls (GETs) the emulator saw for one task.
  local function polls_of(id)
    local n = 0
    for _, r in ipairs(emu:requests()) do
      if r.method == "GET" and r.path:find(id, 1, true) then n = n + 1 end
    end
    return n
  end

  local function client(opts)
    local o = { api_key = emu.key, base_url = emu.url, interval = 0.25, min_interval = 0.05,
      requests_per_second = 1000 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return starvideos.new(o)
  end

  -- Create n tasks at once and wait for them all.  Returns, per task on average:
  -- the polls in the first 0.7 s of the wait (a fixed 0.25 s interval makes two
  -- there, with room for timers a slow machine fires late; its third is at
  -- 0.75 s at the earliest), the polls made while the task was
  -- younger than 0.55 s (when it surely still runs: the learned schedule makes
  -- none), and all its polls.  wait_all's first poll of each task, made at once,
  -- counts in neither.  Both windows leave out how long the creates took (each
  -- writes a synced journal record, slow on some disks).
  local function batch(c, n, opts)
    local ids, born, polled, in_wait, young = {}, {}, {}, {}, {}
    for i = 1, n do
      ids[i] = assert(c:create(PARAMS)).id
      born[i], polled[i], in_wait[i], young[i] = core.now(), 0, 0, 0
    end
    local start = core.now()
    opts = opts or {}
    opts.on_progress = function(ev)
      if ev.type ~= "status" then return end
      local i, t = ev.index, core.now()
      polled[i] = polled[i] + 1
      if polled[i] == 1 then return end
      if t - start < 0.7 then in_wait[i] = in_wait[i] + 1 end
      if t - born[i] < 0.55 then young[i] = young[i] + 1 end
    end
    for _, r in ipairs(assert(c:wait_all(ids, opts))) do assert.is_truthy(r.task, r.err) end
    local w, y, all = 0, 0, 0
    for i = 1, n do w, y, all = w + in_wait[i], y + young[i], all + polls_of(ids[i]) end
    return { in_wait = w / n, young = y / n, all = all / n }
  end

  it("spends a seen kind's polls near its end, not while it surely runs", function()
    local c = client { journal = dir .. "/j.jsonl" }
    local fixed = batch(c, Schedule.MIN_SAMPLES)
    assert.is_true(fixed.in_wait >= 1.5, "the fixed 0.25 s interval: " .. fixed.in_wait .. " polls early")
    local learned = batch(c, 6)
    assert.are.equal(0, learned.young)
    local all, fixed_all = learned.all, fixed.all
    -- five samples leave the estimate rough (the simulation above holds the budget
    -- over 2000 tasks): here only no runaway of polls at the floor
    assert.is_true(all <= fixed_all + 2, string.format("%.2f polls per task against %.2f", all, fixed_all))
    -- the journal keeps what was learned: each first completed record says how long it took
    local took = 0
    for line in io.lines(dir .. "/j.jsonl") do
      local t = line:match('"took":([%d.e+-]+)')
      if t then took = took + 1; assert.is_true(tonumber(t) > 0.5 and tonumber(t) < 3) end
    end
    assert.are.equal(Schedule.MIN_SAMPLES + 6, took)
    c:close()
  end)

  it("starts from the journal's tasks: a new client polls its first tasks the learned way", function()
    assert.is_true(batch(client(), 4).in_wait >= 1.5)
    assert.are.equal(0, batch(client { journal = dir .. "/j.jsonl" }, 4).young)
  end)

  it("files the journal's tasks under the same kind as live ones (a duration read back as 5.0 is 5)", function()
    local j = dir .. "/kinds.jsonl"
    local f = assert(io.open(j, "w"))
    for i = 1, Schedule.MIN_SAMPLES do
      f:write(string.format('{"event":"created","id":"t%d","model":"videos","duration":5.0,"resolution":"720p",'
        .. '"time":1}\n{"event":"status","id":"t%d","status":"completed","took":100,"within":1,"time":2}\n', i, i))
    end
    f:close()
    local c = client { journal = j }
    local kind = require("starvideos.job").kind_of("videos", 5, "720p")
    assert.are.equal("videos|5|720p", kind)
    assert.is_truthy(c:_scheduler():estimate(kind))
    c:close()
  end)

  it("refuses bad polling options with errors that name them, and fits a default floor to a short interval", function()
    local function fails(opts, msg)
      opts.api_key = "k"
      local ok, err = pcall(starvideos.new, opts)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(msg, 1, true), tostring(err))
    end
    fails({ min_interval = -1 },
      "bad option 'min_interval' to 'new' (a number of seconds in [0, 86400] expected, got -1)")
    fails({ min_interval = "5" }, "bad option 'min_interval' to 'new'")
    fails({ interval = math.huge }, "bad option 'interval' to 'new'")
    fails({ interval = 0 / 0 }, "bad option 'interval' to 'new'")
    fails({ interval = 5, min_interval = 10 },
      "bad options to 'new' (min_interval 10 is longer than interval 5: the floor between two polls")
    local c = starvideos.new { api_key = "k", interval = 2 }
    assert.equal(2, c.cfg.min_interval) -- the default 5 would be above the interval
    assert.equal(5, starvideos.new({ api_key = "k" }).cfg.min_interval)
    assert.has_error(function() c:wait("task_1", { interval = "abc" }) end,
      "bad option 'interval' to 'wait' (a number of seconds in [0, 86400] expected, got \"abc\")")
  end)

  it("keeps a fixed interval when one is given", function()
    local c = client { journal = dir .. "/j.jsonl" }
    assert.is_true(batch(c, 4, { interval = 0.25 }).in_wait >= 1.5)
    c:close()
  end)
end)
