-- Why a task failed (failure.lua, CONTRACT "Failures that say why"): the docs' own failure text is input, a user's
-- failure_patterns are tried first and honoured on a failed task, nothing matched is unknown, and a malformed
-- pattern is refused when the client is made, naming it.
local helper = require "spec.helper"
local failure = require "starvideos.failure"

describe("failure reasons", function()
  it("classifies the docs' own failure text as input, anything unmatched as unknown", function()
    assert.same({ "input" }, { failure.classify("Reference image resolution is too low.") })
    assert.same({ "unknown" }, { failure.classify("something new went wrong") })
    assert.same({ "unknown" }, { failure.classify(nil) })
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
