-- The promises held by jobs stepped in a frame loop (the matrix's job column: client:start and client:watch, then
-- client:step until each job is done, as a game's frame does), against the emulator: a keyed job run again pays
-- nothing; create_limit, tenant_limit and spend_limit refuse the jobs past them, nothing sent; the racing jobs of a
-- cap reserve exactly its worth, say 50%, 80% and 100% once, and the spend in a journal outlives the client; a rate
-- limit one job is told holds every job of the key; each exchange carries the X-Request-Id a failed job's error
-- names; a cut download goes on from its .part with Range; the jobs' exchanges counted (metrics) and spanned under
-- the job's traceparent (traces, read by a real OTLP collector).
local helper = require "spec.helper"
local places = require "spec.support.places"
local event_client = require "spec.support.event_client"
local Otlp = places.fixture("otlp")

local PRICES = { videos = 0.4, videos_fast = 0.5, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }
local UUID4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function cat(prompt) return { model = "videos", prompt = prompt or "a cat", duration = 5 } end

-- A client on emu (event_client's: its events in client.events), opts over fast polls and PRICES.
local function new_client(emu, opts)
  local o = { interval = 0.05, prices = PRICES }
  for k, v in pairs(opts or {}) do o[k] = v end
  return event_client.new(emu, o)
end

-- The frame loop: each client stepped with step(0.01) until every job is done (at most `seconds`, 30).
local function frames(clients, jobs, seconds)
  if clients.step then clients = { clients } end
  assert(helper.wait_until(function()
    for _, c in ipairs(clients) do c:step(0.01) end
    for _, j in ipairs(jobs) do if not j.done then return false end end
    return true
  end, seconds or 30), "the jobs did not end")
end

-- n jobs of c started at once (none stepped yet), each with opts (a table, or a function of i giving one).
local function start_all(c, n, opts)
  local jobs = {}
  for i = 1, n do
    jobs[i] = assert(c:start(cat("job " .. i), type(opts) == "function" and opts(i) or opts))
  end
  return jobs
end

-- The jobs of list by how they ended: the completed, and the refused (each err.kind .. " " .. err.field).
local function ended(list)
  local ok, refused = 0, {}
  for _, j in ipairs(list) do
    if j.err then refused[#refused + 1] = j.err.kind .. " " .. tostring(j.err.field) else ok = ok + 1 end
  end
  return ok, refused
end

describe("jobs stepped in a frame loop", function()
  local emu
  setup(function() emu = helper.emulator { queued = 0.05, processing = 0.2 } end)
  teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)
  before_each(function() emu:reset() end)

  describe("a keyed job run again with its journal", function()
    -- A game's run: a client on dir's journal, a keyed job of out stepped until `until_` (else its end), the
    -- client closed.  The job.
    local function run(dir, out, until_)
      local c = new_client(emu, { journal = dir .. "/tasks.jsonl" })
      local job = assert(c:start(cat(), { out = out }))
      assert(helper.wait_until(function()
        c:step(0.01)
        return (until_ or function(j) return j.done end)(job)
      end, 30), "the job did not get there")
      c:close()
      return job
    end

    it("after it completed: the rerun job sends nothing, its file is there", function()
      local dir = helper.tmpdir()
      local out = dir .. "/cat.mp4"
      local job = run(dir, out)
      assert.is_nil(job.err)
      local video = helper.read_file(out)
      assert.equal(1, emu:creates())
      emu:clear()
      local again = run(dir, out)
      assert.is_nil(again.err)
      assert.same({ job.id, out, video }, { again.id, again.path, helper.read_file(out) })
      assert.same({}, emu:requests())
    end)

    it("after its create, before its download (the game quit): the rerun follows its task, 0 new creates",
      function()
      local dir = helper.tmpdir()
      local out = dir .. "/cat.mp4"
      local job = run(dir, out, function(j) return j.id ~= nil end) -- the game quits while its task is made
      assert.is_false(helper.exists(out))
      assert.same({}, emu:video_ranges(), "a download began")
      assert.equal(1, emu:creates())
      emu:clear()
      local again = run(dir, out)
      assert.is_nil(again.err)
      assert.same({ job.id, out }, { again.id, again.path })
      assert.is_true(helper.whole_mp4(out, 5))
      assert.equal(0, emu:creates())
    end)
  end)

  for _, on in ipairs { { "process", "in the process" }, { "journal", "on a journal" } } do
    local place, where = on[1], on[2]
    describe("(the ledger " .. where .. ")", function()
      local ledger, lemu -- (an emulator of a key of the case's own: the process counts a key's creates)
      before_each(function()
        ledger = places.ledger(place, helper.tmpdir())
        lemu = helper.emulator { key = "k-jobs-" .. require("starvideos.core").random_id(), queued = 0.05,
          processing = 0.2 }
      end)
      after_each(function() lemu:stop() end)

      local function client(opts)
        local o = ledger.options()
        for k, v in pairs(opts) do o[k] = v end
        return new_client(lemu, o)
      end

      it("create_limit " .. where .. ": jobs started past it end rate_limited, their creates never sent", function()
        local c = client { create_limit = { count = 2, per = 60 } }
        local jobs = start_all(c, 5)
        frames(c, jobs)
        c:close()
        local ok, refused = ended(jobs)
        assert.equal(2, ok)
        local limited = "rate_limited create_limit"
        assert.same({ limited, limited, limited }, refused)
        for _, j in ipairs(jobs) do
          if j.err then assert.matches("next create is allowed in %d+ s", j.err.message) end
        end
        assert.equal(2, lemu:creates())
      end)

      it("tenant_limit " .. where .. ": a tenant's jobs past it end rate_limited, another tenant's go on", function()
        local c = client { tenant_limit = { count = 1, per = 60 } }
        local jobs = start_all(c, 4, function(i) return { tenant = i <= 3 and "alice" or "bob" } end)
        frames(c, jobs)
        c:close()
        assert.same({ true, false, false, true }, { not jobs[1].err, not jobs[2].err, not jobs[3].err,
          not jobs[4].err })
        for i = 2, 3 do
          assert.same({ "rate_limited", "tenant_limit", "alice" }, { jobs[i].err.kind, jobs[i].err.field,
            jobs[i].err.tenant })
        end
        assert.equal(2, lemu:creates())
      end)

      it("spend_limit " .. where .. ": eight jobs started at once against five creates' worth: five sent, three "
        .. "refused spend_limited with nothing sent; 50%, 80% and 100% said once each", function()
        local c = client { spend_limit = { amount = 2, per = "day" } }
        local jobs = start_all(c, 8)
        frames(c, jobs)
        local spend = c:spend()[1]
        c:close()
        local ok, refused = ended(jobs)
        assert.equal(5, ok)
        local limited = "spend_limited spend_limit"
        assert.same({ limited, limited, limited }, refused)
        assert.equal(5, lemu:creates())
        assert.same({ 2, 0, 2 }, { spend.spent, spend.reserved, spend.amount })
        local said = {}
        for _, e in ipairs(c.events) do
          if e.type == "warning" and e.field == "spend_limit" and e.percent then said[#said + 1] = e.percent end
        end
        assert.same({ 50, 80, 100 }, said)
      end)
    end)
  end

  it("the jobs' spend on a journal outlives their client: a new client's next job past spend_limit is refused, "
    .. "nothing sent", function()
    local dir = helper.tmpdir()
    local opts = { journal = dir .. "/tasks.jsonl", spend_limit = { amount = 1.2, per = "day" } }
    local c = new_client(emu, opts)
    local jobs = start_all(c, 2)
    frames(c, jobs)
    c:close()
    assert.equal(2, (ended(jobs)))
    c = new_client(emu, opts)
    local one = start_all(c, 2)
    frames(c, one)
    c:close()
    local ok, refused = ended(one)
    assert.equal(1, ok)
    assert.same({ "spend_limited spend_limit" }, refused)
    assert.equal(3, emu:creates())
  end)

  it("a 429 with Retry-After one job is told holds every job of the key (two clients): none sent until it ends",
    function()
    local HOLD = 2
    emu:config { processing = 1.5 }
    local events = {} -- (both clients', in the order they came)
    local function on_event(e) events[#events + 1] = e end
    local a, b = new_client(emu, { on_event = on_event }), new_client(emu, { on_event = on_event })
    local jobs = start_all(a, 2)
    for _, j in ipairs(start_all(b, 2)) do jobs[#jobs + 1] = j end
    assert(helper.wait_until(function()
      a:step(0.01)
      b:step(0.01)
      for _, j in ipairs(jobs) do if j.state ~= "polling" then return false end end
      return true
    end, 10), "the jobs were not created")
    emu:fault { method = "GET", status = 429, retry_after = HOLD, count = 1 }
    frames({ a, b }, jobs)
    a:close()
    b:close()
    for _, j in ipairs(jobs) do assert.is_nil(j.err, j.err and j.err.message) end
    local at, told = {}, nil -- request id -> when the emulator took it; when it took the one answered 429
    for _, r in ipairs(emu:api_requests()) do
      at[r.headers["x-request-id"]] = r.at
      if r.status == 429 then told = r.at end
    end
    assert.truthy(told, "no 429 answered")
    local heard, after = false, 0 -- (the 429's answer heard: every request of either client sent since waited)
    for _, e in ipairs(events) do
      if heard and e.type == "request" and e.request_id then
        after = after + 1
        assert.is_true(at[e.request_id] >= told + HOLD - 0.1,
          string.format("a request %.2f s after the 429", at[e.request_id] - told))
      end
      if e.type == "response" and e.status == 429 then heard = true end
    end
    assert.is_true(heard, "no 429 heard")
    assert.is_true(after >= 4, "every job polled again after the hold: " .. after)
  end)

  it("request ids: a job's create and polls each carry a new X-Request-Id the emulator saw; a failed job's error "
    .. "names its last", function()
    local c = new_client(emu)
    local job = assert(c:start(cat()))
    frames(c, { job })
    assert.is_nil(job.err)
    local logged, seen = emu:api_requests(), {}
    assert.is_true(#logged >= 2, "a create and a poll")
    local requests = {}
    for _, e in ipairs(c.events) do if e.type == "request" then requests[#requests + 1] = e.request_id end end
    assert.equal(#logged, #requests)
    for i, r in ipairs(logged) do
      local id = r.headers["x-request-id"]
      assert.truthy(id and id:find(UUID4), "request " .. i .. ": X-Request-Id " .. tostring(id))
      assert.is_nil(seen[id], "an id sent twice")
      seen[id] = true
      assert.equal(id, requests[i])
    end
    emu:clear()
    emu:config { outcome = "failed" }
    local failed = assert(c:start(cat("fails")))
    frames(c, { failed })
    c:close()
    assert.equal("task_failed", failed.err.kind)
    logged = emu:api_requests()
    assert.equal(logged[#logged].headers["x-request-id"], failed.err.request_id)
    emu:clear()
    emu:fault { method = "POST", status = 400, count = 1 }
    c = new_client(emu)
    local refused = assert(c:start(cat("refused")))
    frames(c, { refused })
    c:close()
    assert.equal("invalid_request", refused.err.kind)
    logged = emu:api_requests()
    assert.equal(1, #logged)
    assert.equal(logged[1].headers["x-request-id"], refused.err.request_id)
  end)

  it("resumable: a job's download cut twice goes on from its .part with Range and ends whole", function()
    local dir = helper.tmpdir()
    local out = dir .. "/cut.mp4"
    local c = new_client(emu)
    local whole = assert(c:start(cat(), { out = dir .. "/whole.mp4" }))
    frames(c, { whole })
    emu:clear()
    emu:fault { { path = "/videos/", drop_after_bytes = 5000 }, { path = "/videos/", drop_after_bytes = 5000 } }
    local job = c:watch(whole.id, { out = out })
    frames(c, { job })
    c:close()
    assert.is_nil(job.err)
    assert.equal(helper.read_file(dir .. "/whole.mp4"), helper.read_file(out))
    assert.same({ "none", "bytes=5000-", "bytes=10000-" }, emu:video_ranges())
    assert.same({ "cut.mp4", "cut.mp4.json", "whole.mp4", "whole.mp4.json" }, helper.listing(dir))
  end)

  it("metrics: the jobs' exchanges, creates, videos and bytes counted as the emulator saw them", function()
    local dir = helper.tmpdir()
    local c = new_client(emu, { metrics = true })
    local function value(text, series)
      return tonumber(text:match("\n" .. series:gsub("%p", "%%%0") .. " (%S+)")) or 0
    end
    local before = c:metrics()
    local jobs = start_all(c, 3, function(i) return { out = dir .. "/" .. i .. ".mp4" } end)
    frames(c, jobs)
    local text = c:metrics()
    c:close()
    local function grew(series) return value(text, series) - value(before, series) end
    local polls, bytes = 0, 0
    for _, r in ipairs(emu:requests()) do
      if r.path:find("^/v1/result/") then polls = polls + 1 end
    end
    for i = 1, 3 do bytes = bytes + helper.video_size(dir .. "/" .. i .. ".mp4") end -- (the bytes served)
    assert.equal(3, grew('starvideos_requests_total{operation="create",code="2xx"}'))
    assert.equal(polls, grew('starvideos_requests_total{operation="query",code="2xx"}'))
    assert.equal(3, grew('starvideos_requests_total{operation="download",code="2xx"}'))
    assert.equal(3, grew('starvideos_creates_total{model="videos",outcome="created"}'))
    assert.equal(3, grew('starvideos_videos_total{model="videos"}'))
    assert.equal(bytes, grew("starvideos_downloaded_bytes_total"))
  end)

  local why = Otlp.missing()
  it("traces: a task span under each job's traceparent, a CLIENT span under it for each of its exchanges", function()
    if why then return pending(why) end
    local dir = helper.tmpdir()
    local col = Otlp.start(dir)
    finally(function() col:stop() end)
    local c = new_client(emu, { trace = { endpoint = col.url, service_name = "game" } })
    local parents = { "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }
    local jobs = start_all(c, 2, function(i) return { out = dir .. "/" .. i .. ".mp4", traceparent = parents[i] } end)
    frames(c, jobs)
    c:close() -- what is queued goes now
    assert.same({}, col:errors())
    local spans = col:spans()
    local polls = {} -- task id -> the emulator's polls of it
    for _, r in ipairs(emu:requests()) do
      local id = r.path:match("^/v1/result/([^/?]+)")
      if id then polls[id] = (polls[id] or 0) + 1 end
    end
    for i, job in ipairs(jobs) do
      local root
      for _, sp in ipairs(spans) do
        if sp.attrs["starvideos.task.id"] == job.id and sp.kind == 1 then root = sp end
      end
      assert.truthy(root, "no task span for job " .. i)
      assert.same({ parents[i]:sub(4, 35), parents[i]:sub(37, 52) }, { root.trace, root.parent })
      local ops = {}
      for _, sp in ipairs(spans) do
        if sp.parent == root.id then
          assert.same({ 3, root.trace }, { sp.kind, sp.trace })
          ops[sp.attrs["starvideos.operation"]] = (ops[sp.attrs["starvideos.operation"]] or 0) + 1
        end
      end
      assert.equal(1, ops.create)
      assert.equal(1, ops.download)
      assert.equal(polls[job.id], ops.query)
      assert.equal(polls[job.id], root.attrs["starvideos.polls"])
    end
  end)
end)
