-- Metrics and traces through their seams (observe/metrics.lua, observe/trace.lua, observe/observer.lua): the text
-- format written by a registry of its own, and the spans a generate makes on the fake transport, whose exports
-- (a POST of op notify) the spec takes instead of a collector.  The real collector, promtool, prometheus and
-- nginx: rocks/observe/spec/hosts/observe_*_spec.lua.

local helper = require "spec.helper"
local starvideos = require "starvideos"
local config = require "starvideos.config"
local Fake = require "spec.support.fake_transport"
local Metrics = require "starvideos.observe.metrics"
local Observe = require "starvideos.observe.observer"
local otlp = require "starvideos.observe.otlp"
local cjson = require "cjson"

local TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
local ENDPOINT = "http://127.0.0.1:4318/v1/traces"

-- A fake transport whose exports land in t.exports (the body decoded); with `silent`, never answered.
local function collecting(opts, silent)
  local t = Fake.new(opts)
  t.exports = {}
  local send = t.send
  function t.send(self, r)
    if r.what ~= "notify" then return send(self, r) end
    if r.url ~= ENDPOINT then -- (a webhook's delivery: answered, 200)
      local x = { op = "exchange", body = "" }
      self.done[#self.done + 1], self.hooks = x, (self.hooks or 0) + 1
      return x
    end
    self.exports[#self.exports + 1] = { url = r.url, headers = r.headers, body = cjson.decode(r.body) }
    local x = { op = "exchange", body = "" }
    if not silent then self.done[#self.done + 1] = x end
    return x
  end
  return t
end

-- Every span of every export, by span id; and the list.
local function spans_of(t)
  local by, list = {}, {}
  for _, e in ipairs(t.exports) do
    for _, rs in ipairs(e.body.resourceSpans) do
      for _, ss in ipairs(rs.scopeSpans) do
        for _, sp in ipairs(ss.spans) do
          local a = {}
          for _, kv in ipairs(sp.attributes or {}) do
            local v = kv.value
            a[kv.key] = v.stringValue or v.intValue and tonumber(v.intValue) or v.doubleValue or v.boolValue
          end
          sp.attrs = a
          by[sp.spanId], list[#list + 1] = sp, sp
        end
      end
    end
  end
  return by, list
end

-- Every line of the text format: a comment (HELP, TYPE) or a sample `name{labels} value`.
local function samples(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if not line:find("^# ") then
      local name, labels, value = line:match('^([%a_:][%w_:]*)(%b{}) (%S+)$')
      if not name then name, value = line:match("^([%a_:][%w_:]*) (%S+)$") end
      assert(name and tonumber(value == "+Inf" and "inf" or value), "not a sample line: " .. line)
      out[#out + 1] = { name = name, labels = labels or "", value = tonumber(value) }
    end
  end
  return out
end

local function value(text, series)
  for _, s in ipairs(samples(text)) do
    if s.name .. s.labels == series then return s.value end
  end
end

describe("metrics in Prometheus's text format", function()
  it("writes counters, gauges and histograms with HELP and TYPE, buckets cumulative, label values escaped",
    function()
    local m = Metrics.new()
    m:add("starvideos_creates_total", 1, "videos", "created")
    m:add("starvideos_creates_total", 2, "videos", "created")
    m:add("starvideos_retries_total", 1, 'a"b\\c\nd')
    m:add("starvideos_tasks", 1, "polling")
    m:add("starvideos_tasks", -1, "polling")
    for _, v in ipairs { 0.003, 0.2, 0.2, 7, 1000 } do
      m:observe("starvideos_request_duration_seconds", v, "query", "2xx")
    end
    local text = m:text()
    assert.are.equal(3, value(text, 'starvideos_creates_total{model="videos",outcome="created"}'))
    assert.are.equal(0, value(text, 'starvideos_tasks{state="polling"}'))
    assert.truthy(text:find('starvideos_retries_total{reason="a\\"b\\\\c\\nd"} 1', 1, true))
    local h = 'starvideos_request_duration_seconds_bucket{operation="query",code="2xx",le="%s"}'
    assert.are.equal(1, value(text, h:format("0.005")))
    assert.are.equal(1, value(text, h:format("0.1")))
    assert.are.equal(3, value(text, h:format("0.25")))
    assert.are.equal(4, value(text, h:format("10")))
    assert.are.equal(5, value(text, h:format("+Inf")))
    assert.are.equal(5, value(text, 'starvideos_request_duration_seconds_count{operation="query",code="2xx"}'))
    assert.near(1007.403, value(text, 'starvideos_request_duration_seconds_sum{operation="query",code="2xx"}'), 1e-9)
    for _, f in ipairs(Metrics.FAMILIES) do -- every family: HELP and TYPE, once, in order
      local _, n = text:gsub("\n# TYPE " .. f[1] .. " " .. f[2] .. "\n", "")
      assert.are.equal(1, n, f[1])
    end
    assert.are.equal(0, value(text, "starvideos_metrics_dropped_total"))
  end)

  it("counts a generate's exchanges, create, video and bytes; never an id, URL, key or prompt in a label",
    function()
    local fake = Fake.new { status = function(_, n) return n < 3 and "processing" or "completed" end }
    local client = starvideos.new { api_key = "sk-secret-key", base_url = "http://fake", transport = fake,
      metrics = true, interval = 0.01 }
    local before = client:metrics()
    local out = helper.tmpdir() .. "/v.mp4"
    local task = assert(client:generate({ model = "videos_fast", prompt = "prompt-text-here", duration = 7 },
      { out = out }))
    local text = client:metrics()
    client:close()
    local function grew(series) return (value(text, series) or 0) - (value(before, series) or 0) end
    assert.are.equal(1, grew('starvideos_requests_total{operation="create",code="2xx"}'))
    assert.are.equal(3, grew('starvideos_requests_total{operation="query",code="2xx"}'))
    assert.are.equal(1, grew('starvideos_requests_total{operation="download",code="2xx"}'))
    assert.are.equal(1, grew('starvideos_creates_total{model="videos_fast",outcome="created"}'))
    assert.are.equal(1, grew('starvideos_videos_total{model="videos_fast"}'))
    assert.are.equal(7, grew('starvideos_video_seconds_total{model="videos_fast"}'))
    assert.are.equal(Fake.VIDEO_SIZE, grew("starvideos_downloaded_bytes_total"))
    assert.are.equal(1, grew('starvideos_notice_lag_seconds_count{model="videos_fast"}'))
    assert.are.equal(4, grew("starvideos_budget_wait_seconds_count")) -- a token per API request (a create, 3 polls)
    for _, state in ipairs { "creating", "polling", "downloading" } do
      assert.are.equal(0, value(text, 'starvideos_tasks{state="' .. state .. '"}') or 0, state)
    end
    for _, secret in ipairs { task.id, "sk-secret-key", "prompt-text-here", "http://fake", out } do
      assert.falsy(text:find(secret, 1, true), secret)
    end
    assert.are.equal(0, select(2, text:gsub("[%c]", "")) - select(2, text:gsub("\n", "")))
  end)

  it("counts retries by the kind of error, a refused create and the tasks gauge while a job runs", function()
    local n = 0
    local fake = Fake.scripted(function(r)
      n = n + 1
      if r.op == "create" and n == 1 then return { status = 429, body = '{"error":"slow down"}' } end
      if r.op == "create" then return { status = 400, body = '{"error":"bad prompt"}' } end
    end)
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake, metrics = true,
      retry_backoff = 0.01 }
    local before = client:metrics()
    local _, err = client:create { model = "videos", prompt = "x", duration = 5 }
    assert.are.equal("invalid_request", err.kind)
    local text = client:metrics()
    client:close()
    local function grew(series) return (value(text, series) or 0) - (value(before, series) or 0) end
    assert.are.equal(1, grew('starvideos_retries_total{reason="rate_limited"}'))
    assert.are.equal(2, grew('starvideos_requests_total{operation="create",code="4xx"}'))
    assert.are.equal(1, grew('starvideos_creates_total{model="videos",outcome="refused"}'))
  end)

  it("counts the price of each create that made a task (prices), as its record's cost; none without a price",
    function()
    local fake = Fake.new {}
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake, metrics = true,
      prices = { videos = 0.4 }, journal = helper.tmpdir() .. "/j.jsonl" }
    local before = client:metrics()
    for i = 1, 3 do assert(client:create { model = "videos", prompt = "x " .. i, duration = 5 }) end
    assert(client:create { model = "videos_fast", prompt = "y", duration = 5 })
    local text = client:metrics()
    local recorded = 0
    for _, t in ipairs(client:tasks()) do recorded = recorded + (t.cost or 0) end
    client:close()
    local cost = 'starvideos_cost_total{model="videos"}'
    assert.near(1.2, value(text, cost) - (value(before, cost) or 0), 1e-9)
    assert.near(recorded, value(text, cost) - (value(before, cost) or 0), 1e-9)
    assert.is_nil(value(text, 'starvideos_cost_total{model="videos_fast"}')) -- unknown, never 0
  end)

  it("counts a create's last answer as created, refused (surely nothing made) or unknown (maybe made)", function()
    local o, E = Observe.new(Metrics.new()), require "starvideos.observed"
    local model = { model = "videos" }
    o:created(E.created { owner = model, task = { id = "t1" } })
    o:created(E.created { owner = model, err = { kind = "invalid_request" } })
    o:created(E.created { owner = model, err = { kind = "network", maybe_created = true } })
    o:created(E.created { owner = model, err = { kind = "timeout", maybe_created = true } })
    local text = o.m:text()
    for outcome, n in pairs { created = 1, refused = 1, unknown = 2 } do
      assert.are.equal(n, value(text, 'starvideos_creates_total{model="videos",outcome="' .. outcome .. '"}'), outcome)
    end
  end)

  it("counts each exchange's duration by operation, status class and bucket; a download's bytes from its offset, "
    .. "a job's media GET as a download; an op it does not know, not at all", function()
    local o = Observe.new(Metrics.new())
    local function exchange(op, started, t, status, wire, bytes, req)
      req = req or {}
      local word = ({ media = true, notify = true, storage = true })[op] and op -- (an exchange's word)
      req.op, req.what, req.started, req.owner = word and "exchange" or op, word or nil, started, req.owner or {}
      req.polls = op == "query" or nil -- (request.lua's: a query's)
      if op == "download" then req.file = "v.mp4.part" end -- (a request into a file, as request.lua makes one)
      o:exchange(require("starvideos.observed").exchange(req, t, status, nil, wire, bytes)) -- (the core's event)
    end
    exchange("query", 10, 10.05, 200, "none")
    exchange("query", 10, 10.5, 204, "none")
    exchange("query", 10, 12, 503, "none")
    exchange("query", 10, 10.05, nil, "timeout") -- no answer: error
    exchange("query", 10, 10.05, 200, "reset") -- a status but the wire broke: error
    exchange("notify", nil, 3, 200, "none") -- never sent: 0 s
    exchange("download", 1, 1.5, 206, "none", 1100, { offset = 100 })
    exchange("media", 1, 1.5, 200, "none", 50, { job = {} }) -- (a job's host made it: host.lua's req.job)
    exchange("media", 1, 1.5, 200, "none", 70)
    exchange("bogus", 1, 2, 200, "none")
    local text = o.m:text()
    local D = "starvideos_request_duration_seconds"
    for series, v in pairs { [D .. '_bucket{operation="query",code="2xx",le="0.1"}'] = 1,
      [D .. '_bucket{operation="query",code="2xx",le="0.5"}'] = 2,
      [D .. '_count{operation="query",code="5xx"}'] = 1, [D .. '_count{operation="query",code="error"}'] = 2,
      [D .. '_bucket{operation="webhook",code="2xx",le="0.005"}'] = 1,
      [D .. '_count{operation="download",code="2xx"}'] = 2, [D .. '_count{operation="media",code="2xx"}'] = 1,
      ['starvideos_requests_total{operation="query",code="2xx"}'] = 2,
      ["starvideos_downloaded_bytes_total"] = 1050 } do
      assert.are.equal(v, value(text, series), series)
    end
    assert.is_true(math.abs(value(text, D .. '_sum{operation="query",code="2xx"}') - 0.55) < 1e-9)
    assert.falsy(text:find("bogus", 1, true))
  end)

  it("counts failed tasks and refused creates by model and reason (failure.lua's), on the emulator", function()
    local emu = helper.emulator()
    finally(function() emu:stop() end)
    emu:config { queued = 0, processing = 0, failures = { { kind = "policy", at = "create", prompt = "forbidden" },
      { kind = "policy", references = "/flagged/" }, { kind = "service", prompt = "boom" } } }
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, metrics = true }
    local function run(p)
      p.model, p.duration = "videos_fast", 4
      return select(2, client:generate(p, { interval = 0.05, timeout = 20 }))
    end
    assert.equal("policy", run({ prompt = "a forbidden cat" }).reason)
    assert.equal("policy", run({ prompt = "a cat", referenceImages = { "http://127.0.0.1:9/flagged/a.png" } }).reason)
    assert.equal("service", run({ prompt = "boom" }).reason)
    local text = client:metrics()
    client:close()
    assert.are.equal(2, value(text, 'starvideos_failures_total{model="videos_fast",reason="policy"}'))
    assert.are.equal(1, value(text, 'starvideos_failures_total{model="videos_fast",reason="service"}'))
  end)

  it("moves the tasks gauge with the job's states", function()
    local fake = Fake.new { status = function() return "processing" end }
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake, metrics = true }
    local job = client:start({ model = "videos", prompt = "x", duration = 5 }, { interval = 3600 })
    for _ = 1, 50 do client:step(0.01) if job.state == "polling" and job.task then break end end
    local polling = 'starvideos_tasks{state="polling"}'
    assert.are.equal(1, value(client:metrics(), polling))
    client:close()
    assert.are.equal(0, value(client.cfg.observe.m:text(), polling))
  end)
end)

describe("traces in OTLP/HTTP JSON", function()
  it("a failed task's span carries its reason and the input its words named", function()
    local got
    local tracer = { attr = otlp.attr, encode = function(_, _, _, _, _, _, _, _, attrs) return attrs end,
      finish = function(_, text) got = text end }
    local o = Observe.new(nil, tracer)
    local job = { id = "t1", model = "videos", status = "failed", state = "done", err = { kind = "task_failed",
      reason = "policy", input = "referenceImages", message = "A reference image was flagged" } }
    o.spans[job] = { trace = "x", id = "y", t0 = 0 }
    o:close(require("starvideos.observed").job(job), 1) -- (the core's event of it)
    local attrs = cjson.decode("[" .. got .. "]")
    local by = {}
    for _, kv in ipairs(attrs) do by[kv.key] = kv.value.stringValue end
    assert.are.equal("policy", by["starvideos.failure.reason"])
    assert.are.equal("referenceImages", by["starvideos.failure.input"])
    assert.are.equal("task_failed", by["error.type"])
  end)

  it("a generate: a task span under the traceparent, a CLIENT span per exchange (polls, webhook included) under it",
    function()
    local fake = collecting { status = function(_, n) return n < 2 and "processing" or "completed" end }
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake, interval = 0.01,
      trace = { endpoint = ENDPOINT, headers = { ["x-token"] = "t0k" }, service_name = "svc" },
      notify = { url = "http://hook.example/h", secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" } }
    local out = helper.tmpdir() .. "/v.mp4"
    local task = assert(client:generate({ model = "videos", prompt = "x", duration = 5 },
      { out = out, traceparent = TRACEPARENT }))
    client:close() -- the spans still queued go now
    assert.is_true(#fake.exports >= 1)
    assert.are.equal(ENDPOINT, fake.exports[1].url)
    assert.are.equal("Content-Type: application/json\nAccept: application/json\nx-token: t0k\n",
      fake.exports[1].headers)
    local rs = fake.exports[1].body.resourceSpans[1]
    assert.are.same({ key = "service.name", value = { stringValue = "svc" } }, rs.resource.attributes[1])
    local _, list = spans_of(fake)
    local root, clients = nil, {}
    for _, sp in ipairs(list) do
      if sp.kind == 1 then root = sp else clients[#clients + 1] = sp end
    end
    assert.are.equal("0af7651916cd43dd8448eb211c80319c", root.traceId)
    assert.are.equal("b7ad6b7169203331", root.parentSpanId)
    assert.are.equal(task.id, root.attrs["starvideos.task.id"])
    assert.are.equal(2, root.attrs["starvideos.polls"])
    assert.are.equal(1, fake.hooks)
    assert.are.equal(5, #clients) -- create, 2 polls, download, the webhook's delivery
    local ops = {}
    for _, sp in ipairs(clients) do
      local hook = sp.attrs["starvideos.operation"] == "webhook"
      assert.are.equal(3, sp.kind)
      assert.are.equal(root.spanId, sp.parentSpanId)
      assert.are.equal(root.traceId, sp.traceId)
      assert.are.equal(hook and "hook.example" or "fake", sp.attrs["server.address"])
      assert.are.equal(80, sp.attrs["server.port"])
      assert.are.equal(200, sp.attrs["http.response.status_code"])
      assert.are.equal(sp.name, sp.attrs["http.request.method"])
      assert.truthy(sp.attrs["url.full"]:find(hook and "^http://hook%.example/h$" or "^http://fake/"))
      assert.is_true(tonumber(sp.startTimeUnixNano) <= tonumber(sp.endTimeUnixNano))
      assert.is_true(tonumber(root.startTimeUnixNano) <= tonumber(sp.startTimeUnixNano))
      ops[#ops + 1] = sp.attrs["starvideos.operation"]
    end
    table.sort(ops)
    assert.are.same({ "create", "download", "query", "query", "webhook" }, ops)
    assert.truthy(#fake.exports[1].body.resourceSpans[1].scopeSpans[1].spans[1].traceId == 32)
  end)

  it("a CLIENT span of a create or a query: the X-Request-Id it sent and the server's own id; a download's none",
    function()
    local fake = collecting { status = function(_, n) return n < 2 and "processing" or "completed" end }
    local sent, send = {}, fake.send
    function fake.send(self, r)
      local x = send(self, r)
      if r.what ~= "notify" then sent[#sent + 1] = { op = r.op, request_id = r.request_id, x = x } end
      return x
    end
    function fake.server_request_id(_, x) return "srv-" .. tostring(x.n) end
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake, interval = 0.01,
      trace = { endpoint = ENDPOINT } }
    assert(client:generate({ model = "videos", prompt = "x", duration = 5 }, { out = helper.tmpdir() .. "/v.mp4" }))
    client:close()
    local _, list = spans_of(fake)
    local by_request, clients = {}, 0
    for _, sp in ipairs(list) do
      if sp.kind == 3 then
        clients = clients + 1
        local rid = sp.attrs["starvideos.request_id"]
        if rid then by_request[rid] = sp.attrs["starvideos.server_request_id"] end
        if sp.attrs["starvideos.operation"] == "download" then assert.is_nil(rid) end
      end
    end
    assert.are.equal(#sent, clients)
    local api = 0
    for _, s in ipairs(sent) do
      if s.op == "download" then
        assert.is_nil(s.request_id)
      else
        api = api + 1
        assert.truthy(s.request_id and s.request_id:find("^%x+%-%x+%-4%x+%-%x+%-%x+$"), tostring(s.request_id))
        assert.are.equal("srv-" .. s.x.n, by_request[s.request_id])
      end
    end
    assert.are.equal(3, api) -- the create and two polls
  end)

  it("a CLIENT span's JSON: url.full without credentials, query values nor fragment; server.address and port; "
    .. "the status, resend_count and error.type; ids; times as Unix nanoseconds", function()
    local texts = { otlp.client({ url = "https://user:pass@h.example:8443/v.mp4?X-Sig=abc&e=1&flag#frag",
      method = "GET", op = "download", t0 = 1, t1 = 2, resend = 2, etype = "broken", emsg = 'cut "short"\n' }, 1000),
      otlp.client({ url = "http://[::1]/x", method = "HEAD", op = "media", t0 = 1, t1 = 1.5, status = 200,
        resend = 0, parent = { trace = "0af7651916cd43dd8448eb211c80319c", id = "b7ad6b7169203331" } }, 0) }
    local text = "[" .. table.concat(texts, ",") .. "]"
    -- (the query's value sought after its "=": "abc" alone may be in a random trace or span id's hex)
    assert.falsy(text:find("pass", 1, true) or text:find("=abc", 1, true) or text:find("frag", 1, true), text)
    local _, written = spans_of { exports = { { body = { resourceSpans = { { scopeSpans = { {
      spans = cjson.decode(text) } } } } } } } }
    local b, a = written[1], written[2]
    assert.are.equal("0af7651916cd43dd8448eb211c80319c", a.traceId)
    assert.are.equal("b7ad6b7169203331", a.parentSpanId)
    assert.are.same({ "::1", 80, 200, "HEAD" }, { a.attrs["server.address"], a.attrs["server.port"],
      a.attrs["http.response.status_code"], a.name })
    assert.is_nil(a.status)
    assert.is_nil(a.attrs["error.type"])
    assert.is_nil(a.attrs["http.request.resend_count"])
    assert.truthy(b.traceId:find("^%x+$") and #b.traceId == 32 and b.traceId ~= a.traceId, b.traceId)
    assert.truthy(b.spanId:find("^%x+$") and #b.spanId == 16 and b.spanId ~= a.spanId, b.spanId)
    assert.is_nil(b.parentSpanId)
    assert.are.same({ "GET", 3, "1001000000000", "1002000000000" }, { b.name, b.kind, b.startTimeUnixNano,
      b.endTimeUnixNano }) -- (offset 1000 s: Unix nanoseconds)
    assert.are.equal("https://REDACTED:REDACTED@h.example:8443/v.mp4?X-Sig=REDACTED&e=REDACTED&flag",
      b.attrs["url.full"])
    assert.are.same({ "h.example", 8443, 2, "broken", "download", "GET" }, { b.attrs["server.address"],
      b.attrs["server.port"], b.attrs["http.request.resend_count"], b.attrs["error.type"],
      b.attrs["starvideos.operation"], b.attrs["http.request.method"] })
    assert.is_nil(b.attrs["http.response.status_code"]) -- (no answer: the wire broke)
    assert.are.same({ code = 2, message = 'cut "short"\n' }, b.status)
  end)

  it("server.address and port from an http(s) URL's origin, its default port by scheme; none from another", function()
    local cases = { { "http://a.example/v1/result/t1", "a.example", 80 }, { "HTTPS://b.example/x", "b.example", 443 },
      { "http://u:p@c.example:81/?k=v", "c.example", 81 }, { "http://[2001:db8::1]:8080/", "2001:db8::1", 8080 },
      { "https://d.example:/p", "d.example", 443 }, { "ftp://e.example/x" }, { "http://f.example:99999/" },
      { "http://a:b:c/" }, { "not a url" } }
    for _, c in ipairs(cases) do
      assert.are.same({ c[2], c[3] }, { otlp.server(c[1]) }, c[1])
    end
    assert.are.equal("http://h/p?a=REDACTED&b=REDACTED&c", otlp.redacted("http://h/p?a=1&b=x=y&c#f"))
    assert.are.equal("http://REDACTED:REDACTED@h/a@b", otlp.redacted("http://u@v:w@h/a@b"))
  end)

  it("error.type and resend_count on a retried exchange", function()
    local n = 0
    local fake = Fake.scripted(function(r)
      if r.what == "notify" then return { status = 200, body = "" } end
      n = n + 1
      if n == 1 then return { status = 429, body = "{}" } end
      return { status = 200, body = '{"id":"t1","status":"queued","model":"videos"}' }
    end)
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake, retry_backoff = 0.01,
      trace = { endpoint = ENDPOINT } }
    assert(client:create { model = "videos", prompt = "x", duration = 5 })
    client:close()
    local bodies = {}
    for _, s in ipairs(fake.sent) do if s.r.what == "notify" then bodies[#bodies + 1] = s.r.body end end
    local t = { exports = {} }
    for _, b in ipairs(bodies) do t.exports[#t.exports + 1] = { body = cjson.decode(b) } end
    local _, list = spans_of(t)
    local first, second
    for _, sp in ipairs(list) do
      if sp.kind == 3 and sp.attrs["http.response.status_code"] == 429 then first = sp end
      if sp.kind == 3 and sp.attrs["http.response.status_code"] == 200 then second = sp end
    end
    assert.are.equal("429", first.attrs["error.type"])
    assert.are.equal(2, first.status.code)
    assert.is_nil(first.attrs["http.request.resend_count"])
    assert.are.equal(1, second.attrs["http.request.resend_count"])
    assert.is_nil(second.status)
  end)

  it("a traceparent not sampled: no span; a malformed one ignored (a trace of its own, as W3C and the nginx path "
    .. "do); one not a string refused naming it", function()
    local fake = collecting {}
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake,
      trace = { endpoint = ENDPOINT } }
    assert(client:create({ model = "videos", prompt = "x", duration = 5 },
      { traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00" }))
    client:close()
    assert.are.equal(0, #fake.exports)
    for _, bad in ipairs { "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", "xx", "",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01" } do
      local got = collecting {}
      local c2 = starvideos.new { api_key = "k", base_url = "http://fake", transport = got,
        trace = { endpoint = ENDPOINT } }
      assert(c2:create({ model = "videos", prompt = "x", duration = 5 }, { traceparent = bad }))
      c2:close()
      local _, list = spans_of(got)
      local root
      for _, sp in ipairs(list) do if sp.kind == 1 then root = sp end end
      assert.truthy(root, bad)
      assert.is_nil(root.parentSpanId ~= "" and root.parentSpanId or nil, bad) -- (a root: no parent)
      assert.matches("^%x+$", root.traceId)
      assert.are_not.equal("0af7651916cd43dd8448eb211c80319c", root.traceId:lower(), bad)
    end
    local c3 = starvideos.new { api_key = "k", base_url = "http://fake", transport = collecting {},
      trace = { endpoint = ENDPOINT } }
    for _, bad in ipairs { 5, {}, true } do
      local ok, msg = pcall(c3.create, c3, { model = "videos", prompt = "x", duration = 5 }, { traceparent = bad })
      assert.is_false(ok)
      assert.truthy(tostring(msg):find("traceparent", 1, true), tostring(msg))
    end
    c3:close()
  end)

  it("a collector that never answers: the queue stays bounded, the spans beyond it dropped and counted",
    function()
    local old = config.DEFAULTS.trace_queue
    config.DEFAULTS.trace_queue = 5
    finally(function() config.DEFAULTS.trace_queue = old end)
    local fake = collecting({}, true)
    local events = {}
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake, metrics = true,
      trace = { endpoint = ENDPOINT },
      on_event = function(ev) if ev.type == "warning" then events[#events + 1] = ev end end }
    local before = value(client:metrics(), "starvideos_spans_dropped_total")
    for i = 1, 10 do assert(client:create { model = "videos", prompt = "x " .. i, duration = 5 }) end
    client:step(0)
    local tracer = client.tracer
    assert.is_true(tracer.tail - tracer.head + 1 <= 5)
    assert.is_true(tracer.dropped >= 10) -- 20 spans made (a task and its create each), 5 queued at most, one export
    assert.are.equal(tracer.dropped, value(client:metrics(), "starvideos_spans_dropped_total") - before)
    assert.are.equal(1, #events) -- told once a minute
    assert.truthy(events[1].message:find("spans dropped", 1, true))
    client:close()
  end)

  it("reads OTEL_* where the option gives none; a bad $OTEL_EXPORTER_OTLP_HEADERS raises naming it, not its value",
    function()
    local src = [[
local ok, c = pcall(require("starvideos").new, { api_key = "k", base_url = "http://127.0.0.1:9" })
if not ok then print("error: " .. tostring(c)) return end
local s = c.tracer.s
print(s.endpoint .. "|" .. s.headers:gsub("\n", ";") .. "|" .. s.service)
c:close()
]]
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/otel.lua", src)
    local function run(env)
      return (helper.capture("env -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT -u OTEL_SERVICE_NAME "
        .. "-u OTEL_EXPORTER_OTLP_HEADERS " .. env .. " " .. helper.CHILD_ENV .. " " .. helper.lua .. " "
        .. dir .. "/otel.lua 2>&1"))
    end
    assert.are.equal("http://127.0.0.1:4318/v1/traces|authorization: Bearer t0k;x-b: 1;|svc\n",
      run("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318/ OTEL_SERVICE_NAME=svc "
        .. "OTEL_EXPORTER_OTLP_HEADERS='authorization=Bearer%20t0k, x-b=1'"))
    local out = run("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_HEADERS='x=a%0Asecret'")
    assert.truthy(out:find("^error: [^\n]*bad OTEL_EXPORTER_OTLP_HEADERS"), out)
    assert.falsy(out:find("secret", 1, true), out)
    out = run("OTEL_EXPORTER_OTLP_ENDPOINT=ftp://127.0.0.1:4318")
    assert.truthy(out:find("^error: [^\n]*bad trace endpoint"), out)
  end)

  it("is off without an endpoint, and refuses a bad trace option naming the field, never a header's value",
    function()
    local client = starvideos.new { api_key = "k", base_url = "http://fake", transport = Fake.new {} }
    assert.is_nil(client.cfg.observe)
    client:close()
    for _, case in ipairs {
      { { endpoint = "ftp://x/v1/traces" }, "trace.endpoint" },
      { { endpoint = ENDPOINT, headers = { ["bad name"] = "v" } }, "trace.headers" },
      { { endpoint = ENDPOINT, headers = { x = "secret\nvalue" } }, "trace.headers" },
      { { endpoint = ENDPOINT, colour = 1 }, "trace.colour" },
      { "yes", "trace" },
    } do
      local ok, msg = pcall(starvideos.new, { api_key = "k", trace = case[1] })
      assert.is_false(ok)
      assert.truthy(tostring(msg):find(case[2], 1, true), tostring(msg))
      assert.falsy(tostring(msg):find("secret", 1, true))
    end
  end)
end)
