-- Traces read as OpenTelemetry reads them: a generate against the emulator exports its spans to a real OTLP/HTTP
-- collector (spec/npm/otlp_collector.js, node) that decodes each export with OpenTelemetry's own OTLP
-- definitions and names the attributes by the semantic conventions' own constants (npm); and a collector that
-- accepts and never answers costs step(0) nothing, its spans dropped and counted.  (Inside nginx:
-- rocks/observe/spec/hosts/observe_nginx_spec.lua.)

local helper = require "spec.helper"
local Otlp = require "rocks.observe.spec.support.otlp_run"
local starvideos = require "starvideos"
local core = require "starvideos.core"

local why = Otlp.missing()
if why then
  describe("traces read by OpenTelemetry's definitions", function() it("needs node and npm's packages", function()
    pending(why) end) end)
  return
end

local TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

describe("traces read by OpenTelemetry's definitions", function()
  local emu, col, dir
  setup(function()
    dir = helper.tmpdir()
    emu = helper.emulator { queued = 0.05, processing = 0.3 }
    col = Otlp.start(dir)
  end)
  teardown(function()
    if col then col:stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("a generate: a task span under the traceparent, a CLIENT span per exchange with the stable HTTP attributes",
    function()
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, interval = 0.1,
      trace = { endpoint = col.url, headers = { ["x-collector-token"] = "t0k3n" }, service_name = "video-app" } }
    emu:clear()
    local task = assert(client:generate({ model = "videos", prompt = "a fox", duration = 5 },
      { out = dir .. "/fox.mp4", traceparent = TRACEPARENT }))
    client:close() -- what is queued goes now
    assert.are.same({}, col:errors())
    local exports = col:exports()
    assert.is_true(#exports >= 1)
    assert.are.equal("t0k3n", exports[1].headers["x-collector-token"])
    local n = col.names
    local root, clients = col:task(task.id)
    assert.truthy(root, "no task span")
    assert.are.equal("4bf92f3577b34da6a3ce929d0e0e4736", root.trace)
    assert.are.equal("00f067aa0ba902b7", root.parent)
    assert.are.equal(1, root.kind) -- INTERNAL
    assert.are.equal("video-app", root.resource[n.service].stringValue)
    local polls, creates, downloads = 0, 0, 0
    for _, r in ipairs(emu:requests()) do
      if r.path:find("^/v1/result/") then polls = polls + 1 end
      if r.method == "POST" then creates = creates + 1 end
      if r.path:find("^/videos/") then downloads = downloads + 1 end
    end
    assert.are.equal(polls, root.attrs["starvideos.polls"])
    assert.are.equal(polls + creates + downloads, #clients)
    local port = tonumber(emu.url:match(":(%d+)$"))
    for _, sp in ipairs(clients) do
      assert.are.equal(root.id, sp.parent)
      assert.are.equal(root.trace, sp.trace)
      assert.are.equal(sp.name, sp.attrs[n.method])
      assert.are.equal("127.0.0.1", sp.attrs[n.address])
      assert.are.equal(port, sp.attrs[n.port])
      assert.are.equal(200, sp.attrs[n.status])
      assert.truthy(sp.attrs[n.url]:find("^" .. emu.url:gsub("%p", "%%%0") .. "/"), sp.attrs[n.url])
      assert.falsy(sp.attrs[n.url]:find(emu.key, 1, true))
      assert.is_nil(sp.attrs[n.error])
      assert.is_true(tonumber(sp.start) >= tonumber(root.start) and tonumber(sp["end"]) >= tonumber(sp.start))
    end
  end)

  it("a collector that never answers: step(0) as fast as without tracing, the spans dropped and counted", function()
    local silent = Otlp.start(helper.tmpdir(), true)
    finally(function() silent:stop() end)
    helper.with_defaults({ trace_timeout = 2, trace_delay = 0.05 }, function()
      local function client(trace)
        return starvideos.new { api_key = emu.key, base_url = emu.url, metrics = true, requests_per_second = 1e6,
          trace = trace and { endpoint = silent.url } or false }
      end
      local on, off = client(true), client(false)
      local jobs = {}
      for i = 1, 20 do -- tasks polled every hour: nothing is due while step(0) is timed
        jobs[#jobs + 1] = on:start({ model = "videos", prompt = "on " .. i, duration = 5 }, { interval = 3600 })
        jobs[#jobs + 1] = off:start({ model = "videos", prompt = "off " .. i, duration = 5 }, { interval = 3600 })
      end
      assert(on:create { model = "videos", prompt = "spans now", duration = 5 }) -- its spans: the export
      assert.is_true(helper.wait_until(function()
        on:step(0.01)
        off:step(0.01)
        return on.tracer.req and not on.tracer.req.done and true or false
      end, 10), "no export in flight")
      local function median(c)
        local t = {}
        for i = 1, 501 do
          local t0 = core.now()
          c:step(0)
          t[i] = core.now() - t0
        end
        table.sort(t)
        return t[251]
      end
      local m_off, m_on = median(off), median(on)
      print(string.format("step(0) median: trace off %.1f us, on with an export hanging %.1f us", m_off * 1e6,
        m_on * 1e6))
      assert.is_true(m_on < 2 * m_off + 50e-6, string.format("%.6f against %.6f", m_on, m_off))
      assert.is_true(helper.wait_until(function()
        on:step(0.05)
        return on.tracer.dropped > 0
      end, 10), "the spans of the export that timed out were not counted")
      local text = on:metrics()
      assert.are.equal(on.tracer.dropped, tonumber(text:match("\nstarvideos_spans_dropped_total (%S+)")))
      on:close()
      off:close()
    end)
  end)
end)
