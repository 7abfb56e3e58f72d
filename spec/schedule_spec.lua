-- The learned polling schedule: its arithmetic (literal values), a simulation
-- of thousands of tasks with no clock, and the client using it against the
-- emulator (counted in polls, never in time).

local helper = require "spec.helper"
local starvideos = require "starvideos"
local Schedule = require "starvideos.schedule"
local core = require "starvideos.core"

local exp, sqrt = math.exp, math.sqrt

local normals = helper.normals

describe("schedule arithmetic", function()
  it("has the learned distribution right: samples spread evenly over their intervals", function()
    -- two samples, U(0, 2) and U(2, 6), half the mass each: F(1) = 0.5 * 1/2, F(4) = 0.5 + 0.5 * 2/4;
    -- int_0^2 x f = 0.5 * 1 (U(0, 2)'s mean), int_2^6 = 0.5 * 4
    local d = Schedule.distribution({ 0, 2 }, { 2, 6 })
    local function near(want, got) assert.is_true(math.abs(want - got) < 1e-12, got .. " against " .. want) end
    near(0.25, d.F(1)); near(0.5, d.F(2)); near(0.75, d.F(4)); near(0, d.F(-1)); near(1, d.F(7))
    near(0.5, d.partial_mean(0, 2)); near(2, d.partial_mean(2, 6)); near(2.5, d.partial_mean(-5, 50))
    near(2, d.q(0.5)); near(4, d.q(0.75)); near(1, d.q(0.25)); near(0, d.first); near(6, d.last)
    -- polls at 2 and 6 (a piece: from 2, every 4 s, twice): one for every task, a second for the half
    -- still running at 2; the lag of the first half 2 - 1, of the second 6 - 4: (1 + 2) / 2
    local polls, lag = Schedule.evaluate(d, { { 2, 4, 2 } })
    near(1.5, polls); near(1.5, lag)
    -- every 3 s, never ending: the first half seen at 3 (lag 3 - 1), the eighth in (2, 3] at 3 too
    -- (3 - 2.5), the rest in (3, 6] at 6 with a second poll (6 - 4.5): 0.5 * 2 + 0.125 * 0.5 + 0.375 * 1.5
    polls, lag = Schedule.evaluate(d, { { 3, 3, math.huge } })
    near(0.625 + 0.375 * 2, polls); near(1.625, lag)
  end)

  -- A view with the samples (seconds, half) learned for kind "k" of model "m".
  local function learned(samples, interval, min_interval)
    local s = Schedule.new { interval = interval or 30, min_interval = min_interval or 5 }
    for _, x in ipairs(samples) do s:learn("k", "m", x[1], x[2]) end
    return s
  end

  it("estimates the time left from the learned distribution, among tasks that ran as long", function()
    local s = learned { { 10, 10 }, { 10, 10 }, { 10, 10 }, { 10, 10 } }
    assert.is_nil(s:eta("k", "m", 0)) -- four samples: none yet
    s:learn("k", "m", 10, 10)
    -- five alike: each over [0, 20] (their spread is 0: the bandwidth is MIN_WIDTH, 0.2 s here, under
    -- the half of 10 s): U(0, 20); at age 0, p50 = 10, p90 = 18; p99 = 19.8
    local eta, p99 = s:eta("k", "m", 0)
    assert.same({ p50 = 10, p90 = 18 }, eta)
    assert.is_true(math.abs(p99 - 19.8) < 1e-9, p99)
    -- five more over [20, 40] (the bandwidth 0.9 * 0.549 * 10^-0.2 = 0.312 of 30 s, 9.4 s, is under
    -- the half): U(0, 40).  At age 10, a quarter done: the rest U(10, 40): p50 = 25 - 10, p90 = 37 - 10
    for _ = 1, 5 do s:learn("k", "m", 30, 10) end
    eta, p99 = s:eta("k", "m", 10)
    assert.is_true(math.abs(eta.p50 - 15) < 1e-9 and math.abs(eta.p90 - 27) < 1e-9, eta.p50 .. " " .. eta.p90)
    assert.is_true(math.abs(p99 - 39.6) < 1e-9, p99)
    -- at 39 s, the rest U(39, 40): 0.5 and 0.9 s left; past the last sample, none (never negative)
    eta = s:eta("k", "m", 39)
    assert.is_true(math.abs(eta.p50 - 0.5) < 1e-9 and math.abs(eta.p90 - 0.9) < 1e-9, eta.p50 .. " " .. eta.p90)
    assert.same({ p50 = 0, p90 = 0 }, (s:eta("k", "m", 50)))
    -- another kind of the model borrows the model's samples; another model has none
    assert.same({ p50 = 15, p90 = 27 }, (s:eta(nil, "m", 10)))
    assert.is_nil(s:eta("j", "other", 10))
  end)

  -- Samples of n tasks drawn by draw(), each seen within +- half (a share of it).
  local function samples_of(draw, n, half)
    local out = {}
    for i = 1, n do
      local d = draw()
      out[i] = { d, d * half }
    end
    return out
  end

  it("never plans worse than the fixed interval, nor than even gaps spending as many polls", function()
    local normal = normals(777)
    print("seed 777")
    local shapes = {
      { "tight", function() return 120 * exp(0.1 * normal()) end },
      { "wide", function() return 120 * exp(0.7 * normal()) end },
      { "short", function() return 6 * exp(0.2 * normal()) end },
      { "two-peaked", function() return (normal() < 0 and 60 or 400) * exp(0.05 * normal()) end },
      { "heavy-tailed", function() return math.min(40 * exp(math.abs(normal()) ^ 2), 86400) end },
    }
    for _, shape in ipairs(shapes) do
      local name, draw = shape[1], shape[2]
      for _, m in ipairs { 0, 0.15, 5 } do
        local s = learned(samples_of(draw, 60, 0.01), 30, m)
        local p, d = s:plan("k", "m"), s:estimate("k")
        local what = string.format("%s, min_interval %g: %.3f polls, %.3f s lag (fixed: %.3f, %.3f s)", name, m,
          p.polls, p.lag, p.fixed_polls, p.fixed_lag)
        assert.is_true(p.lag <= p.fixed_lag + 1e-9, what)
        -- even gaps g: the densest spending no more polls lags no less
        local lo, hi = math.max(m, 0.01), 1e5
        for _ = 1, 60 do
          local g = (lo + hi) / 2
          if Schedule.evaluate(d, { { g, g, math.huge } }) > p.polls then lo = g else hi = g end
        end
        local _, even_lag = Schedule.evaluate(d, { { hi, hi, math.huge } })
        assert.is_true(p.lag <= even_lag + 1e-6, what .. string.format("; every %.3f s: %.3f s", hi, even_lag))
        -- polls never closer than the floor, within a piece or from one to the next
        local last = -math.huge
        for _, piece in ipairs(p.pieces) do
          assert.is_true(piece[2] >= math.max(m, 0.01) - 1e-9 and piece[1] - last >= math.max(m, 0.01) - 1e-9, what)
          last = piece[1] + (piece[3] - 1) * piece[2]
        end
        assert.are.equal(math.huge, last, what) -- a plan never ends: past the learned tasks, every `interval`
      end
    end
  end)

  it("is the fixed interval until it has seen a few tasks, then follows the plan", function()
    local s = Schedule.new { interval = 30, min_interval = 5 }
    for i = 1, Schedule.MIN_SAMPLES - 1 do
      s:learn("videos|5|", "videos", 100 + i, 2)
      assert.are.equal(30, s:delay("videos|5|", "videos", 0))
    end
    s:learn("videos|5|", "videos", 100, 2)
    assert.is_true(s:delay("videos|5|", "videos", 0) > 60, "few polls early")
    -- dense near 100 s (a poll at 100 s stands for the plan's at 103 s: the next at 108 s)
    assert.is_true(s:delay("videos|5|", "videos", 100) <= 10, "dense near 100 s")
    for age = 0, 300, 0.7 do assert.is_true(s:delay("videos|5|", "videos", age) >= 5) end -- the floor
    -- a poll made a moment before a planned age stands for it: the next is the one after
    local wide = Schedule.new { interval = 30, min_interval = 5 }
    for _, d in ipairs { 60, 80, 100, 125, 160 } do wide:learn("k", "m", d, 1) end
    local ages, pieces = { 0 }, wide:plan("k", "m").pieces
    for i = 2, 5 do ages[i] = Schedule.next_age(pieces, ages[i - 1]) end
    table.remove(ages, 1)
    assert.is_true(ages[4] - ages[3] > 6)
    assert.is_true(math.abs(wide:delay("k", "m", ages[3] - 0.01) - (ages[4] - ages[3] + 0.01)) < 1e-9)
    assert.is_true(math.abs(wide:delay("k", "m", ages[3] + 0.01) - (ages[4] - ages[3] - 0.01)) < 1e-9)
    -- far slower than any plan: every `interval`
    local slow = 1e5 + s:delay("videos|5|", "videos", 1e5)
    assert.is_true(math.abs(s:delay("videos|5|", "videos", slow) - 30) < 1e-6)
    assert.are.equal(30, s:delay("videos|5|", "videos", nil)) -- age unknown: fixed
    -- another kind of the same model borrows the model's plan; another model has none
    assert.is_true(s:delay("videos|10|", "videos", 0) > 60)
    assert.are.equal(30, s:delay("videos_fast|5|", "videos_fast", 0))
  end)

  it("probes one task in PROBE while a kind has few samples, counted per task, not per call", function()
    local s = Schedule.new { interval = 30, min_interval = 1 }
    for i = 1, Schedule.MIN_SAMPLES do s:learn("k", "m", 100 + i, 2) end
    local first = Schedule.next_age(s:plan("k", "m").pieces, 0)
    local probed = 0
    for _ = 1, 40 do
      local d = s:delay("k", "m", 0)
      if d < first - 1e-9 then
        probed = probed + 1
        -- the probe's poll found it running: its next poll is the plan's first, and no second probe
        assert.is_true(math.abs(s:delay("k", "m", d) - (first - d)) < 1e-9)
      end
    end
    assert.equal(40 / Schedule.PROBE, probed)
  end)

  it("falls back to the fixed interval where the spread is too wide to use", function()
    for _, pair in ipairs { { 20, 600 }, { 10, 10000 }, { 2, 9e6 } } do
      local s = Schedule.new { interval = 30, min_interval = 5 }
      for _ = 1, 3 do s:learn("k", "m", pair[1], 1); s:learn("k", "m", pair[2], 1) end
      local p = s:plan("k", "m")
      assert.is_true(p.lag <= p.fixed_lag + 1e-9, "never worse than the fixed interval on its own estimate")
      local d = s:delay("k", "m", 0)
      assert.is_true(d >= 5 and d <= 600, "a first poll within reason: " .. d)
    end
  end)

  it("plans in bounded work: a grid of a fixed size, as many steps whatever the tail and the floor", function()
    -- 200 samples with tails to a day and to 100 days, a week's tasks alike, and 6 s tasks, on floors of
    -- 0, 0.15 and 5 s: the steps of a plan's evaluations stay under a bound set by the grid alone (some
    -- 170 candidate plans at most, each one pass over the grid's cells and its pieces, fewer than 200),
    -- and the optimal placement's (12 solves on at most 50 + 65 + 1 points, each under 116 * 117 / 2 steps)
    local normal = normals(99)
    print("seed 99")
    local shapes = {
      { "tail to a day", function() return math.min(40 * exp(math.abs(normal()) ^ 2), 86400) end },
      { "tail to 100 days", function() return math.min(10 * exp(3 * math.abs(normal())), 8.64e6) end },
      { "a week, sigma 0.3", function() return 7 * 86400 * exp(0.3 * normal()) end },
      { "6 s, sigma 0.1", function() return 6 * exp(0.1 * normal()) end },
    }
    local cells, most = Schedule.QUANTILES + Schedule.LOG_POINTS + 1, 0
    for _, shape in ipairs(shapes) do
      for _, m in ipairs { 0, 0.15, 5 } do
        local s = learned(samples_of(shape[2], 200, 0.01), 10, m)
        local p, d = s:plan("k", "m"), s:estimate("k")
        local what = string.format("%s, min_interval %g: %d cells, %d pieces, %d steps", shape[1], m, #d.x - 1,
          #p.pieces, p.work)
        -- pieces: a poll at each point of the grid at most, and a tail doubling from 0.01 s to 10 s
        assert.is_true(#d.x - 1 <= cells and #p.pieces <= cells + Schedule.GRID + 2 + 10 + 1, what)
        assert.is_true(p.work <= 20000 + 12 * 116 * 117 / 2, what)
        most = math.max(most, p.work)
      end
    end
    print(string.format("the most steps of a plan: %d", most))
  end)

  it("keeps an interval reaching down to 0 as an interval", function()
    local s = Schedule.new { interval = 30, min_interval = 5 }
    s:learn("k", "m", 15.000000000000002, 15.000000000000004) -- rounding made half > seconds
    assert.are.equal(15.000000000000002, s.kinds.k.half[1]) -- down to 0: it may have been done at once
  end)

  it("ignores samples that are not durations", function()
    local s = Schedule.new { interval = 30, min_interval = 5 }
    for _ = 1, 10 do s:learn("k", "m", 0 / 0) s:learn("k", "m", -1) s:learn("k", "m", "100") end
    assert.is_nil(s:plan("k", "m"))
  end)
end)

describe("schedule simulation (no clock)", function()
  -- A task of d seconds polled on the learned schedule of s, which learns from
  -- it: its polls and its lag (completion to notice).
  local function follow(s, d)
    local age, polls, before = 0, 0, 0
    while true do
      age = age + s:delay("kind", "model", age)
      polls = polls + 1
      if age >= d then break end
      before = age
    end
    s:learn("kind", "model", (before + age) / 2, (age - before) / 2)
    return polls, age - d
  end

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
      local polls, lag = follow(s, d)
      if i > 20 then auto.polls, auto.lag = auto.polls + polls, auto.lag + lag end
    end
    local m = n - 20
    return fixed.polls / m, fixed.lag / m, auto.polls / m, auto.lag / m
  end

  -- Tasks shorter than the interval, as issue 16 found them: a warm-up of 30
  -- tasks waited every 0.1 s, then n tasks on the learned schedule (interval 30,
  -- min_interval 5).  Per task: the learned polls and lag, and those of the fixed
  -- interval that spends as many polls on these same tasks.
  local function short_tasks(median, n, min_interval)
    local normal = normals(4242)
    local s = Schedule.new { interval = 30, min_interval = min_interval or 5 }
    for _ = 1, 30 do
      local d = median * exp(0.1 * normal())
      s:learn("kind", "model", (math.floor(d / 0.1) + 0.5) * 0.1, 0.05)
    end
    local durations, polls, lag = {}, 0, 0
    for i = 1, n do
      local d = median * exp(0.1 * normal())
      local p, l = follow(s, d)
      durations[i], polls, lag = d, polls + p, lag + l
    end
    local function fixed(interval)
      local fp, fl = 0, 0
      for _, d in ipairs(durations) do
        local k = math.floor(d / interval) + 1
        fp, fl = fp + k, fl + (k * interval - d)
      end
      return fp / n, fl / n
    end
    local lo, hi = 0.01, 1e4
    for _ = 1, 80 do
      local mid = sqrt(lo * hi)
      if fixed(mid) > polls / n then lo = mid else hi = mid end
    end
    local fp, fl = fixed(hi)
    return polls / n, lag / n, fp, fl, select(2, fixed(30))
  end

  it("6 s tasks: noticed after about 2.5 s instead of 24 s, below an equal-polls fixed interval", function()
    local ap, al, fp, fl, f30 = short_tasks(6, 400)
    local what = string.format("learned %.3f polls, %.2f s; fixed %.3f polls, %.2f s; every 30 s %.2f s",
      ap, al, fp, fl, f30)
    print("6 s tasks, min_interval 5, seed 4242: " .. what)
    assert.is_true(f30 > 23, what)
    assert.is_true(al <= 2.6 and ap <= 1.6, what)
    assert.is_true(fp <= ap + 1e-9 and fp >= ap - 0.01, what)
    -- below fixed polling at as many polls; not by 15% (this case's guard until issue 48): the plan now
    -- spends about 1.17 polls a task, not 1.53, and at 1.04 to 1.6 polls the optimal plan on the true
    -- distribution (first poll 7.14 s, then 14.9 s: min_interval 5 leaves no better use of a poll) lags
    -- 1.43 s, 0.85 of fixed polling's 1.68 s: no plan learned from samples could keep that margin
    assert.is_true(al < fl, what)
  end)

  it("20 s tasks: noticed within 3 s under the default interval, for about two polls", function()
    local ap, al, fp, fl = short_tasks(20, 400)
    local what = string.format("learned %.3f polls, %.2f s; fixed %.3f polls, %.2f s", ap, al, fp, fl)
    print("20 s tasks, min_interval 5, seed 4242: " .. what)
    assert.is_true(al <= 3 and ap <= 2.05, what)
    assert.is_true(al <= 0.5 * fl, what)
  end)

  it("issue 27's case: 6 s tasks, min_interval 0.15, within 0.4x an equal-polls fixed interval", function()
    local ap, al, fp, fl = short_tasks(6, 100, 0.15)
    local what = string.format("learned %.3f polls, %.2f s; fixed %.3f polls, %.2f s", ap, al, fp, fl)
    print("6 s tasks, min_interval 0.15, seed 4242: " .. what)
    assert.is_true(al <= 0.4 * fl and al <= 0.5, what)
    assert.is_true(ap <= 2.2, what)
  end)

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
  -- there on a quiet machine, its third at 0.75 s at the earliest; a loaded one
  -- fires its timers late, 0.8 a task seen at load 13: the controls below ask
  -- only for some), the polls made while the task was
  -- younger than 0.55 s (when it surely still runs: the learned schedule makes
  -- none; its age counted from the create's sending, as the schedule counts it),
  -- and all its polls.  wait_all's first poll of each task, made at once,
  -- counts in neither.  The wait's window leaves out how long the creates took
  -- (each writes a synced journal record, slow on some disks).
  local function batch(c, n, opts)
    local ids, born, polled, in_wait, young = {}, {}, {}, {}, {}
    for i = 1, n do
      born[i], polled[i], in_wait[i], young[i] = core.now(), 0, 0, 0 -- (a loaded box took 0.3 s to send one)
      ids[i] = assert(c:create(PARAMS)).id
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

  it("spends a seen kind's polls near its end, not while it surely runs #hosts", function()
    local c = client { journal = dir .. "/j.jsonl" }
    local fixed = batch(c, Schedule.MIN_SAMPLES)
    assert.is_true(fixed.in_wait > 0, "the fixed 0.25 s interval: " .. fixed.in_wait .. " polls early")
    local learned = batch(c, 6)
    assert.are.equal(0, learned.young)
    local all, fixed_all = learned.all, fixed.all
    -- five samples leave the estimate rough (the simulation above holds the budget
    -- over 2000 tasks): here only no runaway of polls at the floor
    assert.is_true(all <= fixed_all + 2, string.format("%.2f polls per task against %.2f", all, fixed_all))
    -- the journal keeps what was learned: each first completed record says how long it took (read once the
    -- client closed: its records go to the journal's writer thread, which may still hold some under load)
    c:close()
    local took = 0
    for line in io.lines(dir .. "/j.jsonl") do
      local t = line:match('"took":([%d.e+-]+)')
      if t then took = took + 1; assert.is_true(tonumber(t) > 0.5 and tonumber(t) < 3) end
    end
    assert.are.equal(Schedule.MIN_SAMPLES + 6, took)
  end)

  it("starts from the journal's tasks: a new key's client polls its first tasks the learned way #hosts", function()
    -- the schedule is the key's, which the test before taught: a key of its own
    -- (an emulator of its own), first without the journal, then with it
    local other = helper.emulator { queued = 0, processing = 1.1 }
    local ok, err = pcall(function()
      other:config { spread = 0.1, seed = 42 }
      local key = { api_key = other.key, base_url = other.url }
      assert.is_true(batch(client(key), 4).in_wait > 0)
      key.journal = dir .. "/j.jsonl"
      assert.are.equal(0, batch(client(key), 4).young)
    end)
    other:stop()
    assert(ok, err)
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
    for _ = 1, 5 do c:step(0) end -- the journal's samples are read a slice a turn
    local kind = require("starvideos.schedule").kind_of("videos", 5, "720p")
    assert.are.equal("videos|5|720p", kind)
    assert.is_truthy(Schedule.of(c.key, c.cfg):estimate(kind))
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
    assert.is_true(batch(c, 4, { interval = 0.25 }).in_wait > 0)
    c:close()
  end)
end)

describe("the client's learned schedule, tasks shorter than the interval", function()
  -- issue 16's setup in time compressed 10x: tasks of 0.6 s (6 s) with a spread
  -- of 0.1, the default interval (3 s here, 30 s in service time) and floor
  -- (0.5 s, 5 s); a warm-up of 30 tasks waited every 0.02 s.
  local emu
  setup(function()
    emu = helper.emulator { queued = 0, processing = 0.6 }
    emu:config { spread = 0.1, seed = 7 }
  end)
  teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)

  local PARAMS = { model = "videos_fast", prompt = "short", duration = 5 }

  it("notices them well before the interval, for about one poll each after wait_all's first", function()
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, interval = 3, min_interval = 0.5,
      requests_per_second = 1000 }
    local function batch(n, opts)
      local ids, born, noticed = {}, {}, {}
      for i = 1, n do
        ids[i] = assert(c:create(PARAMS)).id
        born[i] = core.now()
      end
      opts.on_progress = function(ev)
        if ev.type == "status" and ev.status == "completed" and not noticed[ev.index] then
          noticed[ev.index] = core.now() - born[ev.index]
        end
      end
      for _, r in ipairs(assert(c:wait_all(ids, opts))) do assert.is_truthy(r.task, r.err) end
      return ids, noticed
    end
    batch(30, { interval = 0.02 })
    local ids, noticed = batch(6, {})
    local polls = 0
    for _, r in ipairs(emu:requests()) do
      for _, id in ipairs(ids) do
        if r.method == "GET" and r.path:find(id, 1, true) then polls = polls + 1 end
      end
    end
    -- the fixed interval notices each at 3 s; the plan's first poll is near 0.7 s,
    -- the next 0.5 s later (2 s of room for a loaded machine's late timers)
    for i = 1, #ids do assert.is_true(noticed[i] < 2, "task " .. i .. " noticed at " .. noticed[i] .. " s") end
    -- wait_all's first poll, at once, then the plan's: one, and a second for the slow few
    assert.is_true(polls / #ids <= 2.5, polls / #ids .. " polls per task")
    c:close()
  end)
end)

-- The schedule as the client's jobs use it, through a scripted transport
-- (spec/support/fake_transport.lua): no server, each task completed exactly
-- `took` seconds after its create was sent, every poll's time kept.
describe("the learned schedule through a fake transport (no server)", function()
  local Fake = require "spec.support.fake_transport"
  local PARAMS = { model = "videos", prompt = "schedule", duration = 5 }

  -- A client whose tasks take `took` s; fake.born[id] is when each was created,
  -- fake.polls[id] the ages at which it was polled.
  local function setup_client(took, opts)
    local born, polls, kinds, n = {}, {}, {}, 0
    local fake = Fake.scripted(function(r)
      if r.op == "create" then
        n = n + 1
        local id = "task_" .. n
        born[id], polls[id], kinds[id] = core.now(), {}, string.format('"model":"videos","duration":%s',
          r.body:match('"duration":(%d+)'))
        return { status = 200, body = '{"id":"' .. id .. '","status":"queued",' .. kinds[id] .. '}' }
      end
      local id = r.url:match("/v1/result/([^/?]+)$")
      local age = core.now() - born[id]
      polls[id][#polls[id] + 1] = age
      local status = age >= took and "completed" or "processing"
      return { status = 200, body = string.format('{"id":"%s","status":"%s",%s%s}', id, status, kinds[id],
        status == "completed" and ',"video_url":"http://video.test/' .. id .. '.mp4"' or "") }
    end)
    local o = { api_key = "k", base_url = "http://api.test", transport = fake, interval = 0.25, min_interval = 0.05,
      requests_per_second = 1000 }
    for k, v in pairs(opts or {}) do o[k] = v end
    fake.born, fake.polls = born, polls
    return starvideos.new(o), fake
  end

  -- n tasks created at once and waited for: their ids.
  local function batch(c, n, opts)
    local ids = {}
    for i = 1, n do ids[i] = assert(c:create(PARAMS)).id end
    for _, r in ipairs(assert(c:wait_all(ids, opts or {}))) do assert.is_truthy(r.task, r.err) end
    return ids
  end

  -- Per task on average: the polls after wait_all's first while younger than
  -- `young` s, all polls, and the age at which it was seen completed (worst).
  local function tally(fake, ids, young)
    local early, all, worst = 0, 0, 0
    for _, id in ipairs(ids) do
      local ages = fake.polls[id]
      for i = 2, #ages do if ages[i] < young then early = early + 1 end end
      all, worst = all + #ages, math.max(worst, ages[#ages])
    end
    return { early = early / #ids, all = all / #ids, noticed = worst }
  end

  it("polls a kind it has seen near its end: none while it surely runs, no more polls than fixed ones", function()
    local c, fake = setup_client(1.0)
    local fixed = tally(fake, batch(c, Schedule.MIN_SAMPLES), 0.7)
    assert.is_true(fixed.early >= 2, "the fixed 0.25 s interval polls early: " .. fixed.early)
    local ids = batch(c, 6)
    local learned = tally(fake, ids, 0.7)
    -- none but the probes (Schedule:probe): while a kind has few samples, one task in Schedule.PROBE polls
    -- first earlier than the plan, by up to half its first age, to learn what ends before it
    assert.is_true(learned.early <= math.ceil(#ids / Schedule.PROBE) / #ids, "early polls per task " .. learned.early)
    -- the fixed polls saw each task done between 0.75 and 1 s: learned as 0.875 s
    -- +- 0.125, the plan covers that span at the floor; a task at its edge (all of
    -- them here) costs a poll or two more, never a runaway
    assert.is_true(learned.all <= fixed.all + 2, string.format("%.2f polls per task against %.2f", learned.all,
      fixed.all))
    assert.is_true(learned.noticed < 1.0 + 0.25, "noticed at " .. learned.noticed .. " s")
    -- every poll went out as the schedule said: authenticated GETs of the task
    for _, x in ipairs(fake.sent) do
      if x.r.op == "query" then
        assert.is_true(x.r.service)
        assert.is_nil(x.r.body)
      end
    end
    c:close()
  end)

  it("a kind not seen yet follows its model's estimate; an interval given to a wait is kept", function()
    local c, fake = setup_client(1.0)
    batch(c, Schedule.MIN_SAMPLES)
    local other = { model = "videos", prompt = "schedule", duration = 10 }
    local ids = {}
    for i = 1, 3 do ids[i] = assert(c:create(other)).id end
    assert(c:wait_all(ids))
    -- the model's estimate stands in for the kind (schedule.lua): no early polls
    -- for it either; a fixed interval given to the wait overrides both
    assert.are.equal(0, tally(fake, ids, 0.7).early)
    local fixed = batch(c, 3, { interval = 0.25 })
    assert.is_true(tally(fake, fixed, 0.7).early >= 2)
    c:close()
  end)
end)
