-- Why a task failed, in each place it is told (issue 67, docs/failures.md): the events (`status` and `failed`, with
-- reason and input), the error, the ledger's list (a journal, a store: spec/support/ledger_cases.lua records it,
-- here through a client), a job stepped in a frame loop, and the command line (what to do, a REASON column in
-- `list`, `reason` under --json).  Against the emulator's failures (its config's `failures`).

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local places = require "spec.support.places"
local C = require "spec.support.cli_run"
local starvideos = require "starvideos"

local PARAMS = { model = "videos_fast", prompt = "a cat on a meadow", duration = 4,
  referenceImages = { "http://127.0.0.1:9/a.png", "http://127.0.0.1:9/flagged/b.png" } }
local RULES = { { kind = "policy", at = "create", prompt = "forbidden" },
  { kind = "policy", references = "/flagged/" } }
local WORDS = "A reference image was flagged by content moderation; no video was generated."

for _, name in ipairs(places.LEDGERS) do
  describe("a failure's reason on a ledger: " .. name, function()
    local why = places.missing(name) or name == "redis" and places.fixture("redis").missing(true)
    if why then pending(why) return end

    it("a failed task: its reason and input on the error, the status and failed events, and the ledger's list ("
      .. name .. ")", function()
      places.run(name, { queued = 0, processing = 0 }, function(place, emu)
        emu:config { failures = RULES }
        local events = {}
        local opts = place.options()
        opts.api_key, opts.base_url = emu.key, emu.url
        opts.on_event = function(ev) if ev.type == "failed" or ev.type == "status" then events[#events + 1] = ev end end
        local client = starvideos.new(opts)
        local _, err = client:generate(PARAMS, { interval = 0.05, timeout = 20 })
        client:close()
        assert.same({ "task_failed", "policy", "referenceImages" }, { err.kind, err.reason, err.input })
        local last, failed = events[#events - 1], events[#events]
        assert.same({ "status", "failed", "policy", "referenceImages" }, { last.type, last.status, last.reason,
          last.input })
        assert.same({ "failed", err.id, "policy", "referenceImages" }, { failed.type, failed.id, failed.reason,
          failed.input })
        assert.matches(WORDS, failed.message, 1, true)
        if name == "process" then return end -- (no list without a ledger)
        local other = starvideos.new(opts)
        local list = assert(other:tasks { state = "failed" })
        other:close()
        assert.same({ { err.id, "policy", "referenceImages", WORDS } }, { { list[1].id, list[1].reason,
          list[1].input, list[1].error } })
      end)
    end)

    it("a create the service refused: its reason and input, one create and no task (" .. name .. ")", function()
      places.run(name, { queued = 0, processing = 0 }, function(place, emu)
        emu:config { failures = RULES }
        local opts = place.options()
        opts.api_key, opts.base_url = emu.key, emu.url
        local client = starvideos.new(opts)
        local _, err = client:create { model = "videos_fast", prompt = "A forbidden cat", duration = 4 }
        client:close()
        assert.same({ "invalid_request", 400, "policy", "prompt" }, { err.kind, err.status, err.reason, err.input })
        assert.equal(1, emu:creates())
        assert.equal(0, #emu:tasks())
      end)
    end)
  end)
end

describe("a failure's reason on the other ways to follow a task", function()
  it("wait_all and resume: each failed task's error carries its reason and the input named", function()
    local emu = helper.emulator { queued = 0, processing = 0.3 }
    finally(function() emu:stop() end)
    emu:config { failures = { { kind = "policy", prompt = "flag" }, { kind = "service", prompt = "boom" } } }
    local dir = helper.tmpdir()
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, journal = dir .. "/j.jsonl" }
    local a = assert(client:create { model = "videos_fast", prompt = "flag this", duration = 4 })
    local b = assert(client:create { model = "videos_fast", prompt = "boom", duration = 4 })
    local results = client:wait_all({ a.id, b.id }, { interval = 0.05, timeout = 20 })
    assert.same({ { "policy", "prompt" }, { "service" } }, { { results[1].err.reason, results[1].err.input },
      { results[2].err.reason, results[2].err.input } })
    local c = assert(client:create { model = "videos_fast", prompt = "flag that", duration = 4 })
    client:close()
    local again = starvideos.new { api_key = emu.key, base_url = emu.url, journal = dir .. "/j.jsonl" }
    local list = assert(again:resume { dir = dir, interval = 0.05, timeout = 20 })
    again:close()
    assert.same({ { c.id, "task_failed", "policy", "prompt" } }, { { list[1].task.id, list[1].err.kind,
      list[1].err.reason, list[1].err.input } })
  end)
end)

describe("a failure's reason in a job stepped in a frame loop", function()
  it("job.err carries the reason and input once the job is done; the failed event comes to on_progress", function()
    local emu = helper.emulator { queued = 0, processing = 0 }
    finally(function() emu:stop() end)
    emu:config { failures = RULES }
    local client = starvideos.new { api_key = emu.key, base_url = emu.url }
    local seen = {}
    local job = client:start(PARAMS, { interval = 0.05, on_progress = function(ev) seen[ev.type] = ev end })
    assert(helper.wait_until(function() client:step(0.01) return job.done end, 20), "the job never ended")
    client:close()
    assert.same({ "task_failed", "policy", "referenceImages" }, { job.err.kind, job.err.reason, job.err.input })
    assert.same({ "policy", "referenceImages" }, { seen.failed.reason, seen.failed.input })
  end)
end)

describe("a failure's reason on the command line", function()
  local emu
  local env = C.session(function(e) emu = e end)
  local GEN = { "generate", "--model", "videos_fast", "--duration", "4", "--interval", "0.05",
    "--ref-image", PARAMS.referenceImages[1], "--ref-image", PARAMS.referenceImages[2], "--preflight", "off" }

  it("says what to do for each reason: the named reference's or the prompt's flag, try again; --json and list",
    function()
    emu:config { queued = 0, processing = 0, failures = { RULES[1], RULES[2], { kind = "service", prompt = "boom" } } }
    local dir = helper.tmpdir()
    local journal = dir .. "/tasks.jsonl"
    local r = C.run(C.with(GEN, "--prompt", "a cat", "--out", dir .. "/a.mp4", "--journal", journal), env())
    assert.equal(1, r.code, r.err)
    assert.matches("why: policy: the service refused the content: change --ref-image", r.err, 1, true)
    r = C.run({ "create", "--model", "videos_fast", "--duration", "4", "--prompt", "a forbidden cat" }, env())
    assert.equal(1, r.code, r.err)
    assert.matches("why: policy: the service refused the content: change --prompt", r.err, 1, true)
    r = C.run({ "generate", "--model", "videos_fast", "--duration", "4", "--prompt", "boom", "--interval", "0.05",
      "--out", dir .. "/b.mp4", "--journal", journal, "--json" }, env())
    assert.equal(1, r.code, r.err)
    assert.matches("why: service: the service's own failure: try again", r.err, 1, true)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.same({ "task_failed", "service" }, { doc.error.kind, doc.error.reason })
    r = C.run({ "list", "--journal", journal }, env())
    assert.equal(0, r.code, r.err)
    assert.matches("REASON", r.out, 1, true)
    assert.matches("policy (referenceImages)", r.out, 1, true)
    r = C.run({ "list", "--journal", journal, "--json" }, env())
    local reasons = {}
    for line in r.out:gmatch("[^\n]+") do -- (an object a line)
      local t = assert(cjson.decode(line), line)
      reasons[#reasons + 1] = t.reason .. ":" .. tostring(t.input)
    end
    table.sort(reasons)
    assert.same({ "policy:referenceImages", "service:nil" }, reasons)
  end)
end)
