-- Why a task failed (failure.lua, CONTRACT "Failures that say why"): the docs' own failure text is input, a user's
-- failure_patterns are tried first and honoured on a failed task, nothing matched is unknown, and a malformed
-- pattern is refused when the client is made, naming it.
local helper = require "spec.helper"
local failure = require "starvideos.failure"

describe("failure reasons", function()
  it("classifies the docs' own failure text as input, anything unmatched as unknown", function()
    assert.same({ "input", "referenceImages" }, { failure.classify("Reference image resolution is too low.") })
    assert.same({ "unknown" }, { failure.classify("something new went wrong") })
    assert.same({ "unknown" }, { failure.classify(nil) })
  end)

  it("lists in docs/failures.md every pattern of PATTERNS, in order, and no other", function()
    local docs = assert(helper.read_file(helper.root .. "/docs/failures.md"))
    local rows = {}
    for m, r, i in docs:gmatch("\n| `([^`]+)` | `(%a+)` | `?([%w_]*)`? |") do
      rows[#rows + 1] = { match = m, reason = r, input = i ~= "" and i or nil }
    end
    assert.same(failure.PATTERNS, rows)
  end)

  it("classifies each text the emulator writes as its kind, naming the input a policy refusal names", function()
    local fail = require "starvideos.emulator.fail"
    local list = fail.texts()
    assert.is_true(#list >= 30, #list)
    for _, t in ipairs(list) do
      local named = t.kind == "policy" and (t.field or "prompt") or t.kind == "input" and t.field ~= "prompt"
        and t.field or nil
      assert.same({ t.kind, named }, { failure.classify(t.text) }, t.text)
    end
  end)

  it("tries the user's patterns first", function()
    local mine = { { match = "too low", reason = "service" } }
    assert.same({ "service" }, { failure.classify("Reference image resolution is too low.", mine) })
  end)

  it("refuses a malformed failure_patterns when the client is made, naming what is wrong", function()
    local sv = require "starvideos"
    local function new(p) return select(2, pcall(sv.new, { api_key = "k", base_url = "http://127.0.0.1:9",
      failure_patterns = p })) end
    assert.matches("failure_patterns%[1%]%.match: a Lua pattern expected, got a malformed one", new { { match = "(",
      reason = "policy" } })
    assert.matches("failure_patterns%[1%]%.reason: policy, input, service or unknown expected, got polite",
      new { { match = "x", reason = "polite" } })
    assert.matches("failure_patterns%[1%]%.input: prompt, first_image", new { { match = "x", reason = "policy",
      input = "face" } })
    assert.matches("unknown field 'why'", new { { match = "x", reason = "policy", why = 1 } })
  end)

  it("honours a user's pattern on a failed task: err.reason and err.input", function()
    local emu = helper.emulator()
    finally(function() emu:stop() end)
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "Prompt flagged by the moderation model" }
    local client = require("starvideos").new { api_key = emu.key, base_url = emu.url,
      failure_patterns = { { match = "flagged by the moderation", reason = "policy", input = "prompt" } } }
    local t = assert(client:create { model = "videos_fast", prompt = "a cat", duration = 4 })
    local _, err = client:wait(t.id, { interval = 0.05, timeout = 10 })
    assert.equal("task_failed", err.kind)
    assert.equal("policy", err.reason)
    assert.equal("prompt", err.input)
  end)
end)

-- The emulator's failures (its config's `failures`, emulator/fail.lua) through a client: each kind at create (an HTTP
-- answer, no task) and after processing (task_failed), its reason found and, for policy, the input it names.
describe("the emulator's failures, as the service's", function()
  local emu, client
  setup(function()
    emu = helper.emulator()
    client = require("starvideos").new { api_key = emu.key, base_url = emu.url }
  end)
  teardown(function() client:close(); emu:stop() end)
  before_each(function() emu:reset(); emu:config { queued = 0, processing = 0 } end)

  local IMAGES = { "http://127.0.0.1:9/a.png", "http://127.0.0.1:9/flagged/b.png" }

  local function generate(params)
    local p = { model = "videos_fast", prompt = "a cat on a meadow", duration = 4 }
    for k, v in pairs(params or {}) do p[k] = v end
    return client:generate(p, { interval = 0.05, timeout = 20, resend = true }) -- (the same content, each time sent)
  end

  it("refuses a flagged prompt at create: policy, the prompt named, one create and no task", function()
    emu:config { failures = { { kind = "policy", at = "create", prompt = "forbidden" } } }
    local t, err = generate { prompt = "A Forbidden cat" }
    assert.is_nil(t)
    assert.equal("invalid_request", err.kind)
    assert.equal(400, err.status)
    assert.matches("The prompt was rejected by content moderation.", err.message, 1, true)
    assert.same({ "policy", "prompt" }, { err.reason, err.input })
    assert.equal(1, emu:creates())
    assert.equal(0, #emu:tasks())
    assert(generate()) -- (a prompt the rule does not find: made)
  end)

  it("fails a task whose reference is flagged after processing: policy, that reference named", function()
    emu:config { failures = { { kind = "policy", references = "/flagged/" } } }
    local _, err = generate { referenceImages = IMAGES }
    assert.equal("task_failed", err.kind)
    assert.same({ "policy", "referenceImages" }, { err.reason, err.input })
    _, err = generate { first_image = IMAGES[2], last_image = IMAGES[1], prompt = "a dog" }
    assert.same({ "policy", "first_image" }, { err.reason, err.input })
  end)

  it("gives an input refusal its reason, at create and after processing, naming the reference", function()
    emu:config { failures = { { kind = "input", at = "create", prompt = "nine" },
      { kind = "input", references = "/flagged/" } } }
    local _, err = generate { prompt = "nine cats" }
    assert.equal(400, err.status)
    assert.same({ "input" }, { err.reason, err.input })
    _, err = generate { referenceVideos = { "http://127.0.0.1:9/flagged/v.mp4" } }
    assert.equal("task_failed", err.kind)
    assert.same({ "input", "referenceVideos" }, { err.reason, err.input })
  end)

  it("gives a service failure its reason: an HTTP 500 at create, a failed task after processing", function()
    emu:config { failures = { { kind = "service", at = "create", prompt = "first" }, { kind = "service" } } }
    local _, err = generate { prompt = "first try" }
    assert.equal("server", err.kind)
    assert.equal(500, err.status)
    assert.equal("service", err.reason)
    _, err = generate()
    assert.equal("task_failed", err.kind)
    assert.equal("service", err.reason)
    assert.matches("internal error, please retry", err.message, 1, true)
  end)

  it("fails at a rate drawn from the seed: none at 0, the same tasks for the same seed", function()
    emu:config { failures = { { kind = "service", rate = 0 } } }
    assert(generate())
    local function run()
      emu:config { seed = 7, failures = { { kind = "policy", rate = 0.5 } } }
      local out = {}
      for i = 1, 6 do out[i] = select(2, generate()) and "failed" or "ok" end
      return table.concat(out, " ")
    end
    local first = run()
    assert.equal(first, run())
    assert.matches("failed", first, 1, true)
    assert.matches("ok", first, 1, true)
  end)

  it("refuses a malformed rule, naming it", function()
    local ok, err = pcall(emu.config, emu, { failures = { { kind = "policy", prompt = "(" } } })
    assert.is_false(ok)
    assert.matches("rule 1.prompt: a Lua pattern", tostring(err), 1, true)
    ok, err = pcall(emu.config, emu, { failures = { { kind = "maybe" } } })
    assert.is_false(ok)
    assert.matches('rule 1.kind: \\"policy\\", \\"input\\" or \\"service\\"', tostring(err), 1, true)
  end)

  it("is unknown for words no pattern knows", function()
    emu:config { outcome = "failed", error = "Something odd happened." }
    local _, err = generate()
    assert.equal("task_failed", err.kind)
    assert.same({ "unknown" }, { err.reason, err.input })
  end)
end)
