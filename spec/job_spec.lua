-- job.lua on its own: a job handed a loop and a budget over a scripted
-- transport (spec/support/fake_transport.lua) and a ledger (records/ledger.lua),
-- no server.  A task's way from create through polls to a file, as one table of
-- cases: what the service answers, what the job must end with, what the
-- ledger recorded.

local cjson = require "cjson.safe"
local Fake = require "spec.support.fake_transport"
local Ctx = require "spec.support.ctx"
local Job = require "starvideos.job"
local helper = require "spec.helper"

local SIZE = 120000
local VIDEO = Fake.mp4(SIZE)
local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

-- A service the case scripts: svc.create(r) and svc.query(id, n) (n: the
-- task's polls so far) give answers; downloads get svc.download(r, n) (n: the
-- downloads so far), by default the video.
local function service(svc)
  local polls, downloads = {}, 0
  return Fake.scripted(function(r)
    if r.op == "create" then
      return (svc.create or function()
        return { status = 200, body = '{"id":"task_1","status":"queued","model":"videos"}' }
      end)(r)
    elseif r.op == "query" then
      local id = r.url:match("/v1/result/([^/?]+)$")
      polls[id] = (polls[id] or 0) + 1
      return svc.query(id, polls[id])
    end
    downloads = downloads + 1
    return (svc.download or function() return { video = VIDEO } end)(r, downloads)
  end)
end

local function task(id, status, extra)
  local t = { id = id, status = status, model = "videos" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return { status = 200, body = assert(cjson.encode(t)) }
end

local function completed(url) return task("task_1", "completed", { video_url = url or "http://video.test/1.mp4" }) end

-- The service of a task completed at each poll with a fresh URL (/1.mp4, /2.mp4, ...; its
-- actualDuration `seconds`, when given), whose downloads get answers[n] (the last one again).
local function fresh_urls(answers, seconds)
  return { query = function(id, n)
    return task(id, "completed", { video_url = "http://video.test/" .. n .. ".mp4", actualDuration = seconds })
  end, download = function(_, n) return answers[math.min(n, #answers)] end }
end

local HTML = { video = "<!DOCTYPE html><html><body>Please sign in to the proxy</body></html>\n" }

-- The file's SHA-256 as sha256sum(1) says it.
local function sha256sum(path)
  return (helper.capture("sha256sum " .. helper.shell_quote(path)):match("^(%x+)"))
end

-- What a download that failed its checks twice leaves: nothing at out, no .part, a
-- fresh URL asked for and fetched from byte 0.
local function nothing_kept(job, fake, spec)
  assert.is_false(helper.exists(spec.out), "a file was kept at out")
  assert.is_false(helper.exists(spec.out .. ".part"), "the .part was kept")
  assert.is_nil(job.path)
  local last = fake.sent[#fake.sent].r
  assert.equal("http://video.test/2.mp4", last.url)
  assert.equal(0, last.offset)
end

-- The journal's records, as {event, id, status} lines.
local function records(path)
  local out = {}
  for line in (helper.read_file(path) or ""):gmatch("[^\n]+") do
    local r = cjson.decode(line)
    out[#out + 1] = r.event .. (r.status and (":" .. r.status) or "")
  end
  return out
end

-- svc: the service's answers; spec: Job.new's spec (out, when true, a new path
-- in the spec's folder); then what the job ends with: ok (its task's status),
-- kind, message (a plain substring), field, created; the exchanges of each op
-- sent (sent = {create =, query =, download =}); the journal's records; more(job, fake, spec).
local CASES = {
  { "creates, polls until completed and downloads the video to out", spec = { params = PARAMS, out = true },
    svc = { query = function(id, n) return n < 3 and task(id, "processing") or completed() end },
    ok = "completed", sent = { create = 1, query = 3, download = 1 },
    journal = { "pending", "created", "status:processing", "status:completed", "downloaded" },
    more = function(job, fake, spec)
      assert.equal(spec.out, job.path)
      assert.is_true(helper.read_file(spec.out) == VIDEO, "the file is not the video")
      assert.is_false(helper.exists(spec.out .. ".part"))
      assert.equal("http://video.test/1.mp4", fake.sent[#fake.sent].r.url)
      for _, x in ipairs(fake.sent) do
        assert.equal(x.r.op ~= "download", not not x.r.service, x.r.op .. ": the key where it does not belong")
      end
    end },
  { "goal created stops after the create", spec = { params = PARAMS, goal = "created" },
    svc = {}, ok = "queued", sent = { create = 1 } },
  { "goal queried stops after one poll", spec = { id = "task_1", goal = "queried" },
    svc = { query = function(id) return task(id, "processing") end }, ok = "processing", sent = { query = 1 } },
  { "a create answered with no task is a protocol error, recorded as created when the id can be read",
    spec = { params = PARAMS }, svc = { create = function() return { status = 200, body = '{"id":"task_9","status":7,'
      .. '"x":' } end }, kind = "protocol", created = true, sent = { create = 1 },
    journal = { "pending", "created" } },
  { "a transient poll error polls again: the task still completes", spec = { id = "task_1" },
    opts = { max_retries = 0 },
    svc = { query = function(id, n) return n == 1 and { status = 503 } or n == 2 and task(id, "processing")
      or completed() end },
    ok = "completed", sent = { query = 3 } },
  { "a poll answered 404 ends the job (not_found), no more polls", spec = { id = "task_1" },
    svc = { query = function() return { status = 404 } end }, kind = "not_found", sent = { query = 1 } },
  { "a failed task ends with kind task_failed and the service's reason", spec = { id = "task_1" },
    svc = { query = function(id) return task(id, "failed", { error = "the cat has six legs" }) end },
    kind = "task_failed", message = "task task_1 failed: the cat has six legs", sent = { query = 1 } },
  { "a completed task without video_url is a protocol error", spec = { id = "task_1", out = true },
    svc = { query = function(id) return task(id, "completed") end }, kind = "protocol",
    message = "task task_1 is completed but has no video_url", sent = { query = 1 } },
  { "a video_url that is not http(s) is refused before any download", spec = { id = "task_1", out = true },
    svc = { query = function() return completed("file:///etc/passwd") end }, kind = "invalid_request",
    field = "video_url", sent = { query = 1 } },
  { "an expired video URL (403) is refreshed once by a query, then downloaded", spec = { id = "task_1", out = true },
    svc = { query = function(_, n) return completed("http://video.test/" .. n .. ".mp4") end,
      download = function(_, n) return n == 1 and { status = 403, video = "", tr = "none" } or { video = VIDEO } end },
    ok = "completed", sent = { query = 2, download = 2 },
    more = function(_, fake)
      assert.equal("http://video.test/2.mp4", fake.sent[#fake.sent].r.url)
    end },
  { "an HTML page with 200 for a video keeps nothing, asks the task for a fresh URL, and that one is saved from "
    .. "byte 0 with its SHA-256 in the result and the journal", spec = { id = "task_1", out = true },
    svc = fresh_urls({ HTML, { video = VIDEO } }), ok = "completed", sent = { query = 2, download = 2 },
    journal = { "status:completed", "downloaded" },
    more = function(job, fake, spec)
      assert.is_true(helper.read_file(spec.out) == VIDEO, "the file is not the video")
      assert.equal("http://video.test/2.mp4", fake.sent[#fake.sent].r.url)
      assert.equal(0, fake.sent[#fake.sent].r.offset)
      local sum = sha256sum(spec.out)
      assert.equal(64, #sum)
      assert.equal(sum, job.sha256)
      assert.equal(sum, job.task.sha256)
      local last = cjson.decode(helper.read_file(job.cfg.journal):match("([^\n]+)\n$"))
      assert.same({ event = "downloaded", id = "task_1", path = spec.out, bytes = SIZE, sha256 = sum },
        { event = last.event, id = last.id, path = last.path, bytes = last.bytes, sha256 = last.sha256 })
    end },
  { "an HTML page twice: protocol, naming the check, and nothing under out", spec = { id = "task_1", out = true },
    svc = fresh_urls({ HTML }), kind = "protocol", message = "is not a whole video: not an MP4",
    sent = { query = 2, download = 2 }, journal = { "status:completed" }, more = nothing_kept },
  { "a body cut short with a Content-Length to match (its mdat runs past the end), twice: protocol",
    spec = { id = "task_1", out = true }, svc = fresh_urls({ { video = VIDEO:sub(1, 50000) } }), kind = "protocol",
    message = "runs past the end", sent = { query = 2, download = 2 }, more = nothing_kept },
  { "an MP4 with a box that runs past the end, twice: protocol", spec = { id = "task_1", out = true },
    svc = fresh_urls({ { video = require("starvideos.emulator.media").mp4 { seconds = 5, bytes = SIZE,
      box_overrun = true } } }), kind = "protocol", message = "runs past the end", sent = { query = 2, download = 2 },
    more = nothing_kept },
  { "a video of 5 s where the task says 9 s, twice: protocol, naming both durations",
    spec = { id = "task_1", out = true }, svc = fresh_urls({ { video = VIDEO } }, 9), kind = "protocol",
    message = "the task says 9 s", sent = { query = 2, download = 2 }, more = nothing_kept },
  { "a bare URL whose answer is an HTML page is asked again once from byte 0, then protocol, nothing kept",
    spec = { url = "http://video.test/bare.mp4", out = true }, svc = fresh_urls({ HTML }), kind = "protocol",
    message = "not an MP4", sent = { download = 2 },
    more = function(job, fake, spec)
      assert.is_false(helper.exists(spec.out) or helper.exists(spec.out .. ".part"), "a file was kept")
      assert.is_nil(job.path)
      for _, x in ipairs(fake.sent) do
        assert.same({ "http://video.test/bare.mp4", 0 }, { x.r.url, x.r.offset })
      end
    end },
  { "a video of 5 s where the task says 5.8 s is whole (within 1 s)", spec = { id = "task_1", out = true },
    svc = fresh_urls({ { video = VIDEO } }, 5.8), ok = "completed", sent = { query = 1, download = 1 } },
  { "a task that does not finish before the timeout ends with kind timeout and its last status",
    spec = { id = "task_1", timeout = 0.3 },
    svc = { query = function(id) return task(id, "processing") end }, kind = "timeout",
    message = "task task_1 not finished before the deadline (last status: processing)" },
}

describe("a job (job.lua) over a scripted transport and a ledger", function()
  local dir, n = nil, 0
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.cleanup() end)

  for _, case in ipairs(CASES) do
    it(case[1], function()
      n = n + 1
      local fake = service(case.svc)
      local o = { api_key = "k", base_url = "http://api.test", transport = fake, retry_backoff = 0.01,
        interval = 0.02, min_interval = 0.01, requests_per_second = 1000, journal = dir .. "/j-" .. n .. ".jsonl" }
      for k, v in pairs(case.opts or {}) do o[k] = v end
      local c = Ctx.new(o)
      local spec = {}
      for k, v in pairs(case.spec) do spec[k] = v end
      if spec.out then spec.out = dir .. "/out-" .. n .. ".mp4" end
      if spec.id and not spec.timeout then spec.timeout = 10 end
      local job = assert(Job.new(c, spec.goal, spec.id, spec))
      local res, err = c.loop:run_one(job)
      assert.is_true(job.done)
      if case.ok then
        assert.is_nil(err, err and err.message)
        assert.equal(case.ok, res.status)
      else
        assert.is_nil(res)
        assert.equal(case.kind, err.kind, err.message)
        if case.message then assert.truthy(err.message:find(case.message, 1, true), err.message) end
        if case.field then assert.equal(case.field, err.field) end
        if case.created then assert.is_true(err.created, err.message) end
      end
      if case.sent then
        local sent = {}
        for _, x in ipairs(fake.sent) do sent[x.r.op] = (sent[x.r.op] or 0) + 1 end
        assert.same(case.sent, sent)
      end
      if case.journal then assert.same(case.journal, records(c.cfg.journal)) end
      if case.more then case.more(job, fake, spec) end
      c:release()
    end)
  end

  it("a job cancelled while its create is out ends once the answer is in, the task recorded", function()
    local fake = service { create = function() return { status = 200, after = 0.2,
      body = '{"id":"task_1","status":"queued"}' } end }
    local c = Ctx.new { api_key = "k", base_url = "http://api.test", transport = fake,
      journal = dir .. "/cancel.jsonl" }
    local job = assert(Job.new(c, nil, nil, { params = PARAMS }))
    job:advance(require("starvideos.core").now())
    c.loop:drive(function() return job.req end) -- (its pending record written first, off the loop's thread)
    job:cancel()
    assert.is_false(job.done, "a create already sent was abandoned")
    c.loop:drive(function() return job.done end)
    assert.equal("cancelled", job.state)
    assert.is_true(job.err.created)
    assert.equal("task_1", job.id)
    assert.same({ "pending", "created" }, records(c.cfg.journal))
    c:release()
  end)

  it("a job cancelled by a listener of its completed status (a client's close) starts no download", function()
    local url = { video_url = "http://v.test/v.mp4" }
    local fake = service { query = function(id) return task(id, "completed", url) end }
    local c = Ctx.new { api_key = "k", base_url = "http://api.test", transport = fake }
    local job
    job = assert(Job.new(c, nil, "task_1", { out = dir .. "/listener.mp4", interval = 0.1,
      on_status = function(j) if j.status == "completed" then job:cancel(true) end end }))
    job:advance(require("starvideos.core").now())
    c.loop:drive(function() return job.done end)
    assert.equal("cancelled", job.state)
    for _, x in ipairs(fake.sent) do assert.are_not.equal("download", x.r.op) end
    c:release()
  end)

  it("a job cancelled while its create waits to be sent again (a 429 made nothing) ends at once, never resent",
    function()
      local creates = 0
      local fake = service { create = function()
        creates = creates + 1
        return { status = 429, headers = { ["Retry-After"] = "1" }, body = '{"error":"slow down"}' }
      end }
      local c = Ctx.new { api_key = "k", base_url = "http://api.test", transport = fake,
        journal = dir .. "/cancel429.jsonl" }
      local job = assert(Job.new(c, nil, nil, { params = PARAMS }))
      c.loop:at(0, job)
      c.loop:drive(function() return creates == 1 and job.req and not job.req.handle end, nil,
        require("starvideos.core").now() + 5)
      assert.equal(1, creates)
      job:cancel()
      assert.is_true(job.done, "a create waiting to be resent was left to go out")
      assert.equal("cancelled", job.state)
      assert.matches("its create made nothing and was not sent again", job.err.message, 1, true)
      assert.falsy(job.err.created)
      c.loop:drive(function() return false end, nil, require("starvideos.core").now() + 1.5) -- past Retry-After
      assert.equal(1, creates)
      assert.same({ "pending", "abandoned" }, records(c.cfg.journal)) -- `pending` lists nothing
      c:release()
    end)
end)

-- The key's line of callers waiting for a token (bucket.lua) on a fake clock: a job that ends leaves it at once.
describe("a job cancelled while it waits for the key's token", function()
  it("leaves the key's line at once (issue 66, 10): 60 polls cancelled, the next job told the next token", function()
    local c = Ctx.new { api_key = "k", base_url = "http://line.test", requests_per_second = 5,
      transport = Fake.scripted(function() end) }
    local jobs = {}
    for i = 1, 60 do -- at 0: 5 polls sent (the burst), 55 told to come back, up to some 11 s
      jobs[i] = assert(Job.new(c, nil, "task_" .. i, {}))
      jobs[i]:advance(0)
    end
    assert.is_true(c.loop.due[jobs[60]] > 10, "the last told " .. tostring(c.loop.due[jobs[60]]))
    for _, job in ipairs(jobs) do job:cancel() end
    local next_job = assert(Job.new(c, nil, "task_next", {}))
    next_job:advance(0.5)
    -- the bucket's next token (no more than 5 in any 1.05 s: at 1.05 s), not the cancelled jobs' 11 s
    local told = c.loop.due[next_job]
    assert.is_true(told <= 1.1, "told " .. tostring(told) .. " at 0.5 s")
    c:release()
  end)
end)

-- job.eta and the `late` event on a fake clock: the job is handed each answer with the time it came
-- (its advance(t), as the loop calls it), times this spec chooses; no transport, no waiting.
describe("a job's time left (job.eta) and late event, on a fake clock", function()
  local Schedule = require "starvideos.schedule"
  local Log = require "starvideos.extras.log"

  -- A job following task_1 (created at t = 1000 on the fake clock), and its events.
  local function follow()
    local c = Ctx.new { api_key = "k", base_url = "http://eta.test", transport = Fake.scripted(function() end) }
    local events, lines = {}, {}
    c.cfg.on_event = Log.logger(function(line) lines[#lines + 1] = line end)
    c.key:born("task_1", 1000)
    local job = assert(Job.new(c, nil, "task_1", { on_progress = function(ev) events[#events + 1] = ev end }))
    -- the answer of a poll at t: the task with this status
    local function answer(t, status)
      job.req = { done = true, task = { id = "task_1", status = status, model = "videos" } }
      job:advance(t)
      return events[#events]
    end
    return c, job, events, lines, answer
  end

  local function near(want, got, what)
    assert.is_true(type(got) == "number" and math.abs(got - want) < 1e-9, what .. ": " .. tostring(got))
  end

  it("is nil before the kind has samples, then the seconds left among tasks that ran as long", function()
    local c, job, events, _, answer = follow()
    local ev = answer(1005, "processing")
    assert.is_nil(job.eta)
    assert.equal("status", ev.type)
    assert.is_nil(ev.eta)
    -- five tasks of the model, each seen done between 0 and 20 s: learned as U(0, 20) (schedule_spec)
    local s = Schedule.of(c.key, c.cfg)
    for _ = 1, 5 do s:learn("videos|5|", "videos", 10, 10) end
    -- at 5 s (F = 0.25): the rest U(5, 20); p50 = 12.5 - 5, p90 = 18.5 - 5
    ev = answer(1005, "processing")
    near(7.5, job.eta.p50, "p50 at 5 s")
    near(13.5, job.eta.p90, "p90 at 5 s")
    assert.equal(job.eta, ev.eta) -- the status event carries it
    -- at 19 s: the rest U(19, 20): 0.5 and 0.9 s left
    ev = answer(1019, "processing")
    near(0.5, ev.eta.p50, "p50 at 19 s")
    near(0.9, ev.eta.p90, "p90 at 19 s")
    -- done: no time left to tell
    ev = answer(1021, "completed")
    assert.is_nil(job.eta)
    assert.is_nil(ev.eta)
    assert.equal("completed", ev.status)
    for _, e in ipairs(events) do assert.are_not.equal("late", e.type) end
    c:release()
  end)

  it("fires late once, past the 99th percentile (19.8 s of U(0, 20)), never before", function()
    local c, job, events, lines, answer = follow()
    local s = Schedule.of(c.key, c.cfg)
    for _ = 1, 5 do s:learn("videos|5|", "videos", 10, 10) end
    local function lates()
      local out = {}
      for _, e in ipairs(events) do if e.type == "late" then out[#out + 1] = e end end
      return out
    end
    answer(1019.7, "processing") -- 19.7 s: under p99
    assert.equal(0, #lates())
    answer(1019.9, "processing") -- 19.9 s: past it
    local late = lates()
    assert.equal(1, #late)
    assert.equal("task_1", late[1].id)
    near(19.9, late[1].elapsed, "elapsed")
    near(19.8, late[1].p99, "p99")
    -- past the learned end: no time left, and no negative one
    answer(1025, "processing")
    assert.same({ p50 = 0, p90 = 0 }, job.eta)
    answer(1040, "queued")
    assert.equal(1, #lates(), "late fires once per job")
    local logged = {}
    for _, l in ipairs(lines) do if l:find("late", 1, true) then logged[#logged + 1] = l end end
    assert.same({ "starvideos: late task_1: running 20 s, longer than 99% of its kind (20 s)" }, logged)
    c:release()
  end)
end)

describe("a job's download (video.lua: downloading, confirming, taken) over a scripted transport", function()
  local dir
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.cleanup() end)

  it("a .part that is not a whole video is refused by the commit's thread (the loop's has no MP4 check): "
    .. "nothing at out, err.check", function()
    local fake = service(fresh_urls({ HTML }))
    local c = Ctx.new { api_key = "k", base_url = "http://api.test", transport = fake, journal = dir .. "/h.jsonl" }
    local out = dir .. "/h.mp4"
    local job = assert(Job.new(c, nil, nil, { url = "http://video.test/bare.mp4", out = out }))
    local res, err = c.loop:run_one(job)
    assert.is_nil(res)
    assert.equal("protocol", err.kind)
    assert.truthy(err.check and err.check:find("not an MP4", 1, true), err.message)
    assert.is_false(helper.exists(out) or helper.exists(out .. ".part"), "a file was kept")
    c:release()
  end)

  -- A job whose holder's lease was not renewed for half a lease (its ledger says so) at the end of its
  -- download: seen confirming while the store's question (q, answered when q.answer is set) is pending.
  local function confirming(name)
    local q = { asked = 0 }
    -- (with a part: asked at the end of the download only, its lease half lapsed)
    function q.confirm(_, _, deadline, part)
      if part and part ~= 0.5 then return nil end
      q.asked, q.deadline = q.asked + 1, deadline
      return q
    end
    function q.poll() if q.answer then return q.answer[1], q.answer[2] end end
    function q.drop() q.dropped = true end
    local c = Ctx.new { api_key = "k", base_url = "http://api.test", transport = service { query = function()
      return completed() end }, interval = 0.02, requests_per_second = 1000, lease = 1,
      journal = dir .. "/" .. name .. ".jsonl" }
    c.ledger.confirm = q.confirm
    local out = dir .. "/" .. name .. ".mp4"
    local job = assert(Job.new(c, nil, "task_1", { out = out, timeout = 10 }))
    c.loop:at(0, job)
    c.loop:drive(function() return job.state ~= "polling" and job.state ~= "downloading" end, nil,
      require("starvideos.core").now() + 5)
    assert.same({ "confirming", false, 1, job.deadline }, { job.state, job.done, q.asked, q.deadline })
    assert.equal(SIZE, helper.file_size(out .. ".part"))
    assert.is_false(helper.exists(out), "committed before the store confirmed")
    c.loop:drive(function() return false end, nil, require("starvideos.core").now() + 0.2)
    assert.same({ "confirming", false }, { job.state, job.done }, "the question's wait")
    return c, job, q, out
  end

  -- The store answers the question of a confirming job: held, why; the job's end and its journal's last record.
  local function answered(name, held, why)
    local c, job, q, out = confirming(name)
    q.answer = { held, why }
    c.loop:drive(function() return job.done end, nil, require("starvideos.core").now() + 5)
    c.loop:settle() -- (its records written: the journal's writer thread)
    local recs = records(c.cfg.journal)
    c:release()
    return job, out, recs[#recs]
  end

  it("confirming: the store's yes commits the whole .part", function()
    local job, out, last = answered("yes", true)
    assert.same({ "done", nil, out, "downloaded" }, { job.state, job.err, job.path, last })
    assert.is_true(helper.read_file(out) == VIDEO, "the file is not the video")
    assert.equal(sha256sum(out), job.sha256)
    assert.is_false(helper.exists(out .. ".part"))
  end)

  it("confirming: a refusal leaves the .part and the job taken, until the holder's file is there", function()
    local c, job, q, out = confirming("no")
    q.answer = { false, { by = "keeper-1" } }
    c.loop:drive(function() return job.state == "taken" end, nil, require("starvideos.core").now() + 5)
    assert.equal(SIZE, helper.file_size(out .. ".part"))
    assert.is_false(helper.exists(out))
    assert.is_false(job.done)
    q.answer = { false, { by = "keeper-1", path = out, sha256 = "ab" } }
    c.loop:drive(function() return job.done end, nil, require("starvideos.core").now() + 5)
    assert.same({ "taken", nil, out, "ab" }, { job.state, job.err, job.path, job.sha256 })
    c:release()
  end)

  it("confirming: past the deadline the whole .part stays, recorded, with a timeout naming it", function()
    local job, out, last = answered("late", false, { timeout = true })
    assert.same({ "timeout", "part" }, { job.err.kind, last })
    assert.truthy(job.err.message:find("its whole video stays at " .. out .. ".part", 1, true), job.err.message)
    assert.equal(SIZE, helper.file_size(out .. ".part"))
  end)

  it("confirming: a cancelled job drops its question; the whole .part stays", function()
    local c, job, q, out = confirming("cancel")
    job:cancel()
    assert.same({ true, "cancelled", true }, { job.done, job.state, q.dropped })
    assert.equal(SIZE, helper.file_size(out .. ".part"))
    assert.is_false(helper.exists(out))
    c:release()
  end)
end)

