-- request.lua on its own: one request handed a loop (loop.lua) whose
-- transport is scripted (spec/support/fake_transport.lua), no server.  The
-- retry policy, the wire it asks for, download resumes, deadlines and cancel,
-- as one table of cases: what each attempt meets, what the request must end
-- with.

-- (the table's cases on a clock of their own, moved by the scripted transport's waits: first, before the library;
-- a retry's wait and a deadline counted at any pace, issue 78, 2)
local clock = require "spec.support.fake_clock"
local Fake = require "spec.support.fake_transport"
local Ctx = require "spec.support.ctx"
local Request = require "starvideos.request"
local Download = require "starvideos.download"
local core = require "starvideos.core"
local helper = require "spec.helper"

local now = core.now
local SIZE = 200000
local VIDEO = Fake.mp4(SIZE)
local TASK = '{"id":"task_1","status":"queued"}'

-- A loop over a scripted transport: attempt k of the request meets answers[k].
local function ctx_for(answers, opts)
  local k = 0
  local fake = Fake.scripted(function()
    k = k + 1
    return answers[math.min(k, #answers)]
  end, { fake_clock = clock })
  local o = { api_key = "k", base_url = "http://api.test", transport = fake, retry_backoff = 0.01 }
  for key, v in pairs(opts or {}) do o[key] = v end
  return Ctx.new(o), fake
end

-- The owner a request reports to (a job, elsewhere): counts its calls.
local function owner()
  local o = { advanced = 0, progressed = {} }
  function o:advance() self.advanced = self.advanced + 1 end
  function o:progress(bytes) if bytes then self.progressed[#self.progressed + 1] = bytes end end
  return o
end

-- A request from a spec {op, url, path, auth, body, deadline; a download's part,
-- dest, resume_limit}, as a job makes them.
local function new_request(c, who, spec)
  spec.loop, spec.key, spec.cfg, spec.owner = c.loop, c.key, c.cfg, who
  return Request.new(spec)
end

-- Send a request and drive the loop until it is done (at most `limit` s); a download that ended whole
-- (req.whole) is then committed as its job commits it (download.lua), and that commit is done too.
local function run(c, spec, limit)
  local who = owner()
  local req = new_request(c, who, spec)
  local t0 = now()
  req:send(t0)
  c.loop:drive(function() return req.done end, nil, t0 + (limit or 10))
  local took = now() - t0
  if req.done and req.whole ~= nil then
    local commit = Download.commit(req, who)
    c.loop:drive(function() return commit.done end, nil, t0 + (limit or 10))
    assert.is_nil(commit.err, commit.err and commit.err.message)
  end
  return req, who, took
end

local API = "http://api.test/v1/result/task_1"
local CREATE = "http://api.test/v1/videos/videos"

local function ok(body) return { status = 200, body = body or TASK } end

-- op, the answers met one attempt after another, the client's options; then
-- what the request ends with: ok, or kind, status, maybe_created (true; false
-- for "not"); attempts (the exchanges sent), waited (seconds between the first
-- two at least), more(req, fake, who, dir).
local CASES = {
  { "a query goes through two 503s to its answer", op = "query",
    answers = { { status = 503 }, { status = 503 }, ok() }, ok = true, attempts = 3 },
  { "a query gives up after max_retries with kind server and the last status", op = "query",
    answers = { { status = 503 } }, opts = { max_retries = 2 }, kind = "server", status = 503, attempts = 3 },
  { "a query waits as long as Retry-After says", op = "query",
    answers = { { status = 429, retry_after = "1" }, ok() }, ok = true, attempts = 2, waited = 0.9 },
  { "a query goes through a timeout and a broken wire", op = "query",
    answers = { { tr = "timeout", message = "slow" }, { tr = "broken", message = "reset" }, ok() }, ok = true,
    attempts = 3 },
  { "a query stops at once on a 404 (not_found)", op = "query", answers = { { status = 404 } },
    kind = "not_found", attempts = 1 },
  { "a query that cannot wait for a long Retry-After ends at its deadline", op = "query",
    answers = { { status = 503, retry_after = "5" }, ok() }, deadline = 0.5, kind = "server", attempts = 1,
    more = function(_, _, _, _, took) assert.is_true(took < 0.5, "it waited " .. took .. " s") end },
  { "a create is never resent once it may have reached the server (a broken wire)", op = "create",
    answers = { { tr = "broken", message = "reset" }, ok() }, kind = "network", maybe = true, attempts = 1 },
  { "a create is never resent after a 500, maybe created", op = "create", answers = { { status = 500 }, ok() },
    kind = "server", status = 500, maybe = true, attempts = 1 },
  { "a create that was never sent (not_sent) is sent again, and is not maybe created", op = "create",
    answers = { { tr = "not_sent", message = "refused" } }, opts = { max_retries = 2 }, kind = "network",
    maybe = false, attempts = 3 },
  { "a create is resent after a 429, the same body, on a fresh connection", op = "create",
    answers = { { status = 429 }, ok() }, ok = true, attempts = 2,
    more = function(_, fake)
      local a, b = fake.sent[1].r, fake.sent[2].r
      assert.equal(a.body, b.body)
      assert.is_true(a.fresh and b.fresh and a.service and b.service)
      assert.equal(CREATE, b.url)
    end },
  { "a create is resent after a 503 with Retry-After", op = "create",
    answers = { { status = 503, retry_after = "1" }, ok() }, ok = true, attempts = 2, waited = 0.9 },
  { "a download broken after 100000 bytes goes on from there with the next attempt", op = "download",
    answers = { { video = VIDEO, upto = 100000, tr = "broken", message = "reset" }, { video = VIDEO } },
    ok = true, attempts = 2,
    more = function(req, fake)
      assert.same({ 0, 100000 }, { fake.sent[1].r.offset, fake.sent[2].r.offset })
      assert.is_true(helper.read_file(req.dest) == VIDEO, "the file is not the video")
      assert.is_false(helper.exists(req.part))
      assert.falsy(fake.sent[1].r.service, "a download asked for the key")
      assert.is_true(fake.sent[1].r.follow)
      assert.same({ { part = req.part, path = req.dest } }, fake.commits)
    end },
  { "a download that keeps failing stops after resume_limit and leaves no .part", op = "download",
    answers = { { video = VIDEO, upto = 5000, status = 500, tr = "none" } }, resume_limit = 2, kind = "server",
    attempts = 3,
    more = function(req)
      assert.is_false(helper.exists(req.part), "the .part is left")
      assert.is_false(helper.exists(req.dest))
    end },
}

describe("a request (request.lua) over a scripted transport", function()
  local dir, n = nil, 0
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.cleanup() end)

  for _, case in ipairs(CASES) do
    it(case[1], function()
      clock.start()
      finally(clock.stop)
      local c, fake = ctx_for(case.answers, case.opts)
      n = n + 1
      local spec = { op = case.op, path = "/p", auth = case.op ~= "download" }
      if case.op == "query" then spec.url = API
      elseif case.op == "create" then spec.url, spec.body = CREATE, '{"model":"videos"}'
      else
        spec.url, spec.dest = "http://video.test/v.mp4", dir .. "/v-" .. n .. ".mp4"
        spec.part, spec.resume_limit = spec.dest .. ".part", case.resume_limit or 3
      end
      if case.deadline then spec.deadline = now() + case.deadline end
      local req, who, took = run(c, spec)
      assert.is_true(req.done)
      assert.equal(1, who.advanced, "the owner was told other than once")
      if case.ok then
        assert.is_nil(req.err, req.err and req.err.message)
        assert.is_not_nil(req.task)
      else
        assert.is_nil(req.task)
        assert.equal(case.kind, req.err.kind, req.err.message)
        if case.status then assert.equal(case.status, req.err.status) end
        if case.maybe then assert.is_true(req.err.maybe_created) end
        if case.maybe == false then assert.falsy(req.err.maybe_created) end
      end
      assert.equal(case.attempts, #fake.sent)
      for _, x in ipairs(fake.sent) do assert.equal(case.op, x.r.op) end
      if case.waited then
        local gap = fake.sent[2].at - fake.sent[1].done
        assert.is_true(gap >= case.waited, "the retry came after " .. gap .. " s")
      end
      if case.more then case.more(req, fake, who, dir, took) end
      c:release()
    end)
  end

  it("cancel stops a download in flight: the exchange is cancelled and the .part removed", function()
    local c, fake = ctx_for({ { video = VIDEO, after = 5 } })
    local dest = dir .. "/cancel.mp4"
    helper.write_file(dest .. ".part", "") -- as the transport makes it
    local who = owner()
    local req = new_request(c, who, { op = "download", url = "http://video.test/v.mp4", path = "/v.mp4",
      dest = dest, part = dest .. ".part" })
    req:send(now())
    c.loop:tick()
    req:cancel()
    assert.is_true(req.done)
    assert.equal("io", req.err.kind)
    assert.is_true(fake.sent[1].cancelled)
    assert.equal(0, fake.open)
    assert.is_false(helper.exists(dest .. ".part"))
    c:release()
  end)

  it("a download asks for the rest of a .part left by an earlier call, 64 KiB back, and checks those bytes", function()
    for _, same in ipairs { true, false } do
      local c, fake = ctx_for({ { video = VIDEO } })
      n = n + 1
      local dest = dir .. "/left-" .. n .. ".mp4"
      local left = VIDEO:sub(1, 150000)
      if not same then left = string.rep("x", 150000) end -- another video's .part
      helper.write_file(dest .. ".part", left)
      local req = run(c, { op = "download", url = "http://video.test/v.mp4", path = "/v.mp4",
        dest = dest, part = dest .. ".part", resume_limit = 1 })
      assert.is_nil(req.err, req.err and req.err.message)
      assert.equal(150000 - 65536, fake.sent[1].r.offset)
      -- another video's .part is started again from byte 0
      assert.equal(same and 1 or 2, #fake.sent)
      if not same then assert.equal(0, fake.sent[2].r.offset) end
      assert.is_true(helper.read_file(dest) == VIDEO, "the file is not the video")
      c:release()
    end
  end)
  describe("an exchange (op exchange: what differs is its data)", function()
    local function exchange(answers, spec, opts)
      local c, fake = ctx_for(answers, opts)
      spec.op, spec.url, spec.path = "exchange", spec.url or "http://hook.test/h", "/h"
      local req = run(c, spec)
      c:release()
      return req, fake
    end

    it("its retry budget is its own (retries), not max_retries; its lines, a function, are made anew at each "
      .. "attempt", function()
      local signed = 0
      local req, fake = exchange({ { status = 503 } }, { what = "notify", body = "{}", retries = 3,
        headers = function() signed = signed + 1; return "webhook-id: msg_" .. signed .. "\n" end },
        { max_retries = 0 })
      assert.equal(4, #fake.sent)
      for i, x in ipairs(fake.sent) do
        assert.same({ "exchange", "POST", "webhook-id: msg_" .. i .. "\n" }, { x.r.op, x.r.method, x.r.headers })
      end
      assert.equal("server", req.err.kind)
      assert.truthy(req.err.message:find("^notify: HTTP 503"), req.err.message) -- its word, not the op's
      req = exchange({ { status = 503 } }, { body = "{}" }, { max_retries = 1 })
      assert.truthy(req.err.message:find("^exchange: HTTP 503"), req.err.message)
    end)

    it("its answer: {status, body, headers}, the bytes and the file's size; a range asks those bytes and a garbled "
      .. "answer to it is final, another is asked again", function()
      local req, fake = exchange({ { status = 206, body = "abc" } }, { what = "media", range = { 10, 12 } })
      assert.same({ status = 206, body = "abc" }, req.task)
      assert.same({ "GET", { 10, 12 }, 3, 10 }, { fake.sent[1].r.method, fake.sent[1].r.range,
        fake.sent[1].r.max_body, req.offset })
      req, fake = exchange({ { tr = "garbled", message = "the server did not send the bytes from 10" } },
        { what = "media", range = { 10, 12 } })
      assert.same({ 1, "protocol" }, { #fake.sent, req.err.kind })
      req, fake = exchange({ { tr = "garbled", message = "the answer is larger" } }, { method = "GET" },
        { max_retries = 2 })
      assert.same({ 3, "protocol", "GET" }, { #fake.sent, req.err.kind, fake.sent[1].r.method })
    end)

    it("a hold is asked of the transport for a ranged GET alone (the hold's one rule: the transports pause where "
      .. "told)", function()
      local asked = {}
      for i, spec in ipairs { { range = { 0, 9 } }, { range = { 0, 9 }, method = "HEAD" }, { range = { 0, 9 },
        method = "PUT", body = "x" }, { method = "GET" } } do
        spec.what, spec.hold = "media", true
        local _, fake = exchange({ { status = 206, body = "abcdefghij" } }, spec)
        asked[i] = fake.sent[1].r.hold or false
      end
      assert.same({ true, false, false, false }, asked)
    end)
  end)
end)
