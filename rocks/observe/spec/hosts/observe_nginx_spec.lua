-- Metrics and traces inside nginx, as an operator runs them: the example's nginx.conf (examples/openresty/,
-- two workers, `lua_shared_dict starvideos_metrics`, /metrics) scraped by a real prometheus during a batch of 50
-- (/start), its counts against the emulator's; promtool on /metrics and on client:metrics(); 1,000,000 tasks
-- through the counters; a dict too small; spans from a request's traceparent, read by OpenTelemetry's own
-- definitions (spec/npm); and a collector that never answers while nginx reloads and stops.

local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local Otlp = require "rocks.observe.spec.support.otlp_run"
local starvideos = require "starvideos"

if nginx_run.pending_unless_ready("metrics and traces inside nginx") then return end
local missing = not helper.execute("command -v promtool prometheus >/dev/null 2>&1")
  and "prometheus is not installed (apt-get install prometheus)" or Otlp.missing()
if missing then
  describe("metrics and traces inside nginx", function() it("needs prometheus and node", function()
    pending(missing) end) end)
  return
end

local q, str_format = helper.shell_quote, string.format
http.TIMEOUT = 60

local function get(port, path, headers)
  local out = {}
  local _, code = http.request { url = str_format("http://127.0.0.1:%d%s", port, path), sink = ltn12.sink.table(out),
    headers = headers }
  return code, table.concat(out)
end

-- The example's nginx.conf with its files in dir, `workers` workers, the dict of `dict` size, /loop; env: nginx's.
local function start(dir, workers, dict, env)
  helper.execute("mkdir -p " .. q(dir .. "/videos"))
  local text = assert(helper.read_file(nginx_run.ROOT .. "/examples/openresty/nginx.conf"))
  return nginx_run.serve(dir, function(port)
    for _, sub in ipairs {
      { "build/openresty/", dir .. "/" }, { "127.0.0.1:8080", "127.0.0.1:" .. port },
      { "worker_processes 1;", "worker_processes " .. workers .. ";" },
      { "starvideos_metrics 1m;", "starvideos_metrics " .. dict .. ";" },
      { "env STARVIDEOS_BASE_URL;", "env STARVIDEOS_BASE_URL;\nenv OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;" },
      { "\n    }\n}\n", "\n        location = /loop { content_by_lua_file rocks/observe/spec/support/ngx_observe.lua; }"
        .. "\n    }\n}\n" },
    } do
      local k
      text, k = text:gsub(sub[1]:gsub("%p", "%%%0"), (sub[2]:gsub("%%", "%%%%")))
      assert(k > 0, "the example's nginx.conf has no " .. sub[1])
    end
    return text
  end, nil, env)
end

local function value(text, series) -- the sum of a family's samples whose line starts with series
  local sum = 0
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, #series) == series and not line:find("^#") then sum = sum + tonumber(line:match(" (%S+)$")) end
  end
  return sum
end

local function promtool(text, dir)
  helper.write_file(dir .. "/metrics.txt", text)
  return helper.capture("promtool check metrics < " .. q(dir .. "/metrics.txt") .. " 2>&1")
end

local function bad_lines(log) -- error.log lines at level error or above
  local list = {}
  for line in (log or ""):gmatch("[^\n]+") do
    if line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]") or line:find("%[emerg%]") then
      list[#list + 1] = line
    end
  end
  return list
end

describe("metrics and traces inside nginx", function()
  local emu, col, dir, ngx1
  setup(function()
    dir = helper.tmpdir()
    emu = helper.emulator { queued = 0.05, processing = 0.3 }
    col = Otlp.start(dir)
    ngx1 = start(dir, 2, "1m", { STARVIDEOS_API_KEY = emu.key, STARVIDEOS_BASE_URL = emu.url,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = col.url })
  end)
  teardown(function()
    if ngx1 then ngx1.stop() end
    if col then col:stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("a real prometheus scraping during a batch of 50 reports the emulator's creates, videos and bytes; "
    .. "promtool accepts /metrics and client:metrics()", function()
    local pport = helper.free_ports(1)[1]
    helper.write_file(dir .. "/prometheus.yml", str_format("global:\n  scrape_interval: 1s\nscrape_configs:\n"
      .. "  - job_name: starvideos\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n", ngx1.port))
    local prom = helper.spawn(str_format("prometheus --config.file=%s --storage.tsdb.path=%s "
      .. "--web.listen-address=127.0.0.1:%d > %s 2>&1", q(dir .. "/prometheus.yml"), q(dir .. "/tsdb"), pport,
      q(dir .. "/prometheus.log")))
    finally(function() helper.execute("kill " .. prom.pid); prom:close() end)
    emu:clear()
    for i = 1, 50 do assert.are.equal(202, (get(ngx1.port, "/start?interval=0.2&prompt=fox+" .. i))) end
    assert.is_true(helper.wait_until(function()
      for i = 1, 50 do
        local _, body = get(ngx1.port, "/jobs?id=" .. i)
        if not body:find('"state":"done"', 1, true) then return false end
      end
      return true
    end, 120), "the batch did not finish")
    local creates, videos, bytes = 0, 0, 0
    for _, r in ipairs(emu:requests()) do
      if r.method == "POST" and r.path:find("^/v1/") then creates = creates + 1 end
      if r.path:find("^/videos/") and r.status == 200 then videos, bytes = videos + 1, bytes + r.bytes end
    end
    assert.are.equal(50, creates)
    local function query(expr)
      local _, body = get(pport, "/api/v1/query?query=" .. expr:gsub("[^%w]", function(c)
        return str_format("%%%02X", c:byte()) end))
      local r = cjson.decode(body).data.result[1]
      return r and tonumber(r.value[2])
    end
    local want = { ["sum(starvideos_creates_total)"] = creates, ["sum(starvideos_videos_total)"] = videos,
      ["sum(starvideos_downloaded_bytes_total)"] = bytes }
    assert.is_true(helper.wait_until(function()
      for expr, n in pairs(want) do if query(expr) ~= n then return false end end
      return true
    end, 30), "prometheus: " .. cjson.encode { creates = query("sum(starvideos_creates_total)"),
      videos = query("sum(starvideos_videos_total)"), bytes = query("sum(starvideos_downloaded_bytes_total)"),
      want = { creates, videos, bytes } })
    local _, text = get(ngx1.port, "/metrics")
    local out, ok = promtool(text, dir)
    assert(ok, "promtool on /metrics: " .. out)
    assert.are.equal(0, value(text, "starvideos_tasks{"))
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, metrics = true, interval = 0.2 }
    assert(client:generate({ model = "videos", prompt = "one", duration = 5 }, { out = dir .. "/one.mp4" }))
    out, ok = promtool(client:metrics(), dir)
    client:close()
    assert(ok, "promtool on client:metrics(): " .. out)
  end)

  it("1,000,000 tasks through the counters leave the number of series unchanged; a scrape under 50 ms", function()
    local function series()
      local _, text = get(ngx1.port, "/metrics")
      local n = 0
      for line in text:gmatch("[^\n]+") do if not line:find("^#") then n = n + 1 end end
      return n, text
    end
    assert.are.equal(200, (get(ngx1.port, "/loop?n=1000&from=1")))
    helper.sleep(1.5)
    local before = series()
    local took = 0
    for k = 0, 9 do
      local code, body = get(ngx1.port, str_format("/loop?n=100000&from=%d", 1001 + k * 100000))
      assert.are.equal(200, code, body)
      took = took + tonumber(body)
    end
    print(str_format("1,000,000 tasks through the counters in %.1f s (in the dict)", took))
    helper.sleep(1.5) -- each worker adds its sums into the dict every second
    local after, text = series()
    assert.are.equal(before, after)
    assert.falsy(text:find("task-", 1, true))
    assert.falsy(text:find("prompt number", 1, true))
    assert.falsy(text:find("sig=", 1, true))
    assert.is_true(value(text, 'starvideos_creates_total{model="videos_fast",outcome="created"}') >= 250000)
    local best = math.huge
    for _ = 1, 5 do
      local t0 = socket.gettime()
      get(ngx1.port, "/metrics")
      best = math.min(best, socket.gettime() - t0)
    end
    print(str_format("a scrape of %d series: %.1f ms", after, best * 1000))
    assert.is_true(best < 0.05, str_format("%.3f s", best))
  end)

  it("spans of a generate in nginx: the request's traceparent their parent, read by OpenTelemetry's definitions",
    function()
    local code, body = get(ngx1.port, "/generate?interval=0.2&prompt=traced", {
      traceparent = "00-11112222333344445555666677778888-1234567812345678-01" })
    assert.are.equal(200, code, body)
    local id = cjson.decode(body).id
    local root
    assert.is_true(helper.wait_until(function()
      for _, sp in ipairs(col:spans()) do if sp.attrs["starvideos.task.id"] == id then root = sp end end
      return root ~= nil
    end, 15), "no span of task " .. tostring(id))
    assert.are.same({}, col:errors())
    assert.are.equal("11112222333344445555666677778888", root.trace)
    assert.are.equal("1234567812345678", root.parent)
    local n, clients = col.names, 0
    for _, sp in ipairs(col:spans()) do
      if sp.parent == root.id then
        clients = clients + 1
        for _, k in ipairs { n.method, n.address, n.port, n.url, n.status } do assert.is_not_nil(sp.attrs[k], k) end
      end
    end
    assert.are.equal(root.attrs["starvideos.polls"] + 2, clients) -- the create, the polls, the download
  end)

  it("a dict too small: updates dropped and counted, one log line a minute; a collector that never answers: "
    .. "nginx reloads and stops with no error line", function()
    local d2 = helper.tmpdir()
    local silent, n2 = Otlp.start(d2, true), nil
    finally(function() -- (busted keeps one finally a test)
      if n2 then n2.stop() end
      silent:stop()
    end)
    n2 = start(d2, 2, "12k", { STARVIDEOS_API_KEY = emu.key, STARVIDEOS_BASE_URL = emu.url,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = silent.url })
    for k = 0, 4 do assert.are.equal(200, (get(n2.port, str_format("/loop?n=200&from=%d", 1 + k * 200)))) end
    helper.sleep(1.5) -- each worker adds its sums into the dict every second
    local _, text = get(n2.port, "/metrics")
    assert.is_true(value(text, "starvideos_metrics_dropped_total") > 0)
    local log = helper.read_file(d2 .. "/error.log")
    local _, full = log:gsub("starvideos_metrics is full", "")
    assert.are.equal(1, full)
    local code, body = get(n2.port, "/generate?interval=0.2&prompt=spans")
    assert.are.equal(200, code, body)
    helper.sleep(1.5) -- the export under way: the collector reads it and never answers
    assert(helper.execute("kill -HUP " .. n2.pid))
    helper.sleep(3)
    assert.are.equal(200, (get(n2.port, "/metrics")))
    n2.stop()
    assert.are.same({}, bad_lines(helper.read_file(d2 .. "/error.log")))
  end)
end)
