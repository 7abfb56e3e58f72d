-- What the observe rock's option loads, and when (the core's spec/require_spec.lua: a plain client loads no module of
-- another rock).  Each case a child process on this checkout's modules (spec/support/child_state.lua).
local helper = require "spec.helper"
local child = require("spec.support.child_state").child

describe("require \"starvideos\" with the observe rock", function()
  teardown(helper.cleanup)

  it("loads the metrics with the metrics option, the traces with an endpoint ($OTEL_*), and not before", function()
    local out, st = child([[
local starvideos = require "starvideos"
local c = starvideos.new { base_url = BASE, api_key = "k", metrics = true, trace = false }
state("metrics")
local c2 = starvideos.new { base_url = BASE, api_key = "k" }
state("traced")
c:close()
c2:close()
]], "env -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9 " .. helper.CHILD_ENV)
    local s = assert(st.metrics, out)
    assert.is_true(s.loaded["starvideos.observe.metrics"] and s.loaded["starvideos.observe.observer"] or false, out)
    assert.is_nil(s.loaded["starvideos.observe.trace"], out) -- (trace = false: off whatever $OTEL_* say)
    assert.is_true(assert(st.traced, out).loaded["starvideos.observe.trace"], out)
  end)
end)
