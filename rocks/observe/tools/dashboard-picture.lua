-- rocks/observe/dashboards/starvideos.json's panels drawn as Grafana lays them out (dashboard_svg.lua, beside this
-- file), the picture taken by headless Chromium: from a run of its own (the default), or from a Prometheus of
-- yours (--prometheus URL: Debian has no Grafana).
--
-- Its own run (docs/img/dashboard.png is one: `--out docs/img/dashboard.png` draws it again): it starts the
-- emulator, a Redis (when redis-server is there: the client's store), and a real Prometheus on loopback ports
-- scraping a client's client:metrics() every second, while the client runs tasks of four models with `prices`, a
-- small `requests_per_second`, a `spend_limit` of the key's and one of a model's (never reached) and a trace endpoint
-- nobody listens on, and the emulator refuses some creates, answers some polls 429 or 503, cuts some downloads and
-- never answers one create (its answers carry RateLimit fields).  Then it asks Prometheus's HTTP API each panel's
-- query (Grafana's variables as Grafana fills them: $__rate_interval 30s, $__range the run, $job and $instance all,
-- or --job and --instance), and draws the answers.
-- With --prometheus URL it starts nothing and runs nothing: the same queries over the last --seconds (3600)
-- of that Prometheus.  Run from a checkout, after `make`:
--
--   lua5.4 rocks/observe/tools/dashboard-picture.lua [--seconds N] [--out PATH] [--html PATH]
--                                      [--prometheus URL [--job REGEX] [--instance REGEX]]
--
-- It prints each panel's series and last values and where the picture went, and stops every process it started.
package.path = ("lua rocks/redis/lua rocks/s3/lua rocks/observe/lua rocks/emulator/lua")
  :gsub("(%S+)%s*", "%1/?.lua;%1/?/init.lua;") .. "./?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local helper = require "spec.helper"
local R = require "rocks.observe.tools.dashboard_svg"

local q, fmt = helper.shell_quote, string.format
local USAGE = [==[
usage: lua5.4 rocks/observe/tools/dashboard-picture.lua [--seconds N] [--out PATH] [--html PATH]
                                          [--prometheus URL [--job REGEX] [--instance REGEX]]
  --seconds N        its own run's length (default 150, at least 40); with --prometheus the window
                     drawn, ending now (default 3600)
  --out PATH         the PNG (default build/dashboard.png; docs/img/dashboard.png is the docs' own)
  --html PATH        keep the page Chromium drew there
  --prometheus URL   draw from that Prometheus (http://host:9090), which scrapes your clients: nothing
                     is started nor run
  --job REGEX, --instance REGEX   the dashboard's two variables (default .*: all)
  -h, --help         print this and exit
]==]
local opts = { out = "build/dashboard.png", job = ".*", instance = ".*" }
do
  local function usage(msg) io.stderr:write("dashboard-picture: ", msg, "\n", USAGE); os.exit(2) end
  local known = { seconds = true, out = true, html = true, prometheus = true, job = true, instance = true }
  local i = 1
  while arg[i] do
    if arg[i] == "-h" or arg[i] == "--help" then io.write(USAGE); os.exit(0) end
    local k = arg[i]:match("^%-%-(%a+)$")
    if not known[k] then usage("unknown option " .. arg[i]) end
    if not arg[i + 1] then usage("--" .. k .. " needs a value") end
    opts[k] = arg[i + 1]
    i = i + 2
  end
  local seconds = opts.seconds
  opts.seconds = tonumber(seconds or (opts.prometheus and 3600 or 150))
  if not opts.seconds or opts.seconds < 40 then usage("--seconds: a number, at least 40, got " .. seconds) end
  if opts.prometheus then
    opts.prometheus = opts.prometheus:gsub("/+$", "")
    if not opts.prometheus:find("^http://[^/]") then
      usage("--prometheus: an http:// URL (the Prometheus' own address, e.g. http://127.0.0.1:9090), got "
        .. opts.prometheus)
    end
  elseif opts.job ~= ".*" or opts.instance ~= ".*" then
    usage("--job and --instance filter a Prometheus of yours: with --prometheus only")
  end
end

local dir = helper.tmpdir()
local procs = {} -- what it started: stopped at the end, by their pid

local function stop_all()
  for _, p in ipairs(procs) do os.execute("kill " .. p.pid .. " 2>/dev/null"); p:close() end
  procs = {}
end

local function get(url)
  local out = {}
  local _, code = http.request { url = url, sink = ltn12.sink.table(out) }
  return code, table.concat(out)
end

local function urlencode(s) return (s:gsub("[^%w%-_.~]", function(c) return fmt("%%%02X", c:byte()) end)) end

-- A Redis on a free port for the client's store, or nil (no redis-server, or no starvideos.redis built).
local function redis()
  if not (helper.execute("command -v redis-server >/dev/null 2>&1") and pcall(require, "starvideos.redis")) then
    print("no redis-server or starvideos.redis: the client runs without a store (the store panel stays empty)")
    return nil
  end
  local port = helper.free_ports(1)[1]
  procs[#procs + 1] = helper.spawn(fmt("redis-server --bind 127.0.0.1 --port %d --save '' --appendonly yes "
    .. "--appendfsync always --dir %s > %s 2>&1", port, q(dir), q(dir .. "/redis.log")))
  assert(helper.wait_until(function() return socket.connect("127.0.0.1", port) ~= nil end, 10), "redis did not start")
  return "redis://127.0.0.1:" .. port
end

-- A real Prometheus scraping 127.0.0.1:target every second: its URL.
local function prometheus(target)
  local port = helper.free_ports(1)[1]
  helper.write_file(dir .. "/prometheus.yml", fmt("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
    .. "scrape_configs:\n  - job_name: video-app\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n", target))
  procs[#procs + 1] = helper.spawn(fmt("prometheus --config.file=%s --storage.tsdb.path=%s --web.listen-address="
    .. "127.0.0.1:%d > %s 2>&1", q(dir .. "/prometheus.yml"), q(dir .. "/tsdb"), port, q(dir .. "/prometheus.log")))
  assert(helper.wait_until(function() return get(fmt("http://127.0.0.1:%d/-/ready", port)) == 200 end, 30),
    "prometheus did not start: " .. tostring(helper.read_file(dir .. "/prometheus.log")))
  return "http://127.0.0.1:" .. port
end

-- The faults the emulator is given while tasks start (at a share of that time, so that a short run has them too):
-- refused creates, 429 and 503 polls, cut downloads, a create never answered (its outcome unknown).
local FAULTS = {
  { 0.1, { method = "POST", path = "/v1/videos/videos", status = 400, count = 2 } },
  { 0.2, { method = "GET", path = "/v1/result/", status = 429, retry_after = 1, count = 6 } },
  { 0.35, { method = "GET", path = "/videos/", drop_after_bytes = 4000, count = 3 } },
  { 0.5, { method = "POST", path = "/v1/videos/videos", status = 500, count = 1 } },
  { 0.65, { method = "GET", path = "/v1/result/", status = 503, count = 8 } },
  { 0.8, { method = "POST", path = "/v1/videos/videos", status = 400, count = 3 } },
}
local MODELS = { "videos", "videos_fast", "videos_stable", "videos_stable_fast" }

-- Answers one scrape waiting on server (if any) with the client's metrics.
local function serve(server, client)
  local conn = server:accept()
  if not conn then return end
  conn:settimeout(2)
  repeat local line = conn:receive("*l") until not line or line == ""
  local body = client:metrics()
  conn:send(fmt("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\nConnection: "
    .. "close\r\n\r\n%s", #body, body))
  conn:close()
end

-- The run: a task every 2 s of the first `seconds` - 30, the faults at their time, until every job ended.
local function run(client, emu, server)
  local t0, jobs, faults, n = socket.gettime(), {}, 0, 0
  local starting = opts.seconds - 30
  while true do
    local t = socket.gettime() - t0
    local f = FAULTS[faults + 1]
    if f and t >= f[1] * starting then faults = faults + 1; emu:fault(f[2]) end
    if t < starting and t >= n * 2 then
      n = n + 1
      local job = assert(client:start({ model = MODELS[(n - 1) % #MODELS + 1], prompt = "a fox, take " .. n,
        duration = 5 }, { out = fmt("%s/videos/%d.mp4", dir, n) }))
      jobs[#jobs + 1] = job
    end
    client:step(0.05)
    serve(server, client)
    local left = 0
    for _, j in ipairs(jobs) do if not j.done then left = left + 1 end end
    if t > starting and left == 0 or t > opts.seconds + 120 then break end
  end
  local finish = socket.gettime() + 4 -- (the last scrapes)
  while socket.gettime() < finish do client:step(0.05); serve(server, client) end
  return t0, socket.gettime(), jobs
end

-- Grafana's variables as Grafana fills them for this window.
local function filled(expr, span)
  return (expr:gsub("%$__rate_interval", "30s"):gsub("%$__range", fmt("%ds", math.ceil(span)))
    :gsub("%$job", (opts.job:gsub("%%", "%%%%"))):gsub("%$instance", (opts.instance:gsub("%%", "%%%%"))))
end

-- Each panel's answers from the Prometheus at base: {legend =, points =} per series of each query (a stat panel:
-- its value at the end); a point every 2 s, or 1/1000 of a longer window.
local function ask(dash, base, from, to)
  local results = {}
  local step = math.max(2, math.ceil((to - from) / 1000))
  for _, p in ipairs(dash.panels) do
    local list = {}
    for _, t in ipairs(p.targets or {}) do
      local expr = filled(t.expr, to - from)
      local url = p.type == "stat"
        and fmt("%s/api/v1/query?query=%s&time=%.3f", base, urlencode(expr), to)
        or fmt("%s/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%d", base, urlencode(expr), from, to, step)
      local code, body = get(url)
      assert(code == 200, fmt("prometheus %s at %s on %s: %s", tostring(code), base, expr, body))
      for _, r in ipairs(cjson.decode(body).data.result) do
        local points = {}
        for _, v in ipairs(r.values or { r.value }) do
          local x = tonumber(v[2])
          points[#points + 1] = { v[1], x and x == x and x ~= math.huge and x ~= -math.huge and x or nil }
        end
        local legend = (t.legendFormat or ""):gsub("{{%s*([%w_]+)%s*}}", function(l) return r.metric[l] or "" end)
        list[#list + 1] = { legend = legend ~= "" and legend or expr, points = points }
      end
    end
    results[p.id] = list
  end
  return results
end

-- The picture of page (html) by headless Chromium, at the page's size.
local function screenshot(html, height)
  local page = opts.html or dir .. "/dashboard.html"
  helper.write_file(page, html)
  local abs = page:sub(1, 1) == "/" and page or helper.root .. "/" .. page
  local out = opts.out:sub(1, 1) == "/" and opts.out or helper.root .. "/" .. opts.out
  os.execute("mkdir -p " .. q(out:match("^(.*)/[^/]*$")))
  local cmd = fmt("chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=%s "
    .. "--window-size=%d,%d --screenshot=%s %s > %s 2>&1", q(dir .. "/chromium"), R.WIDTH, height, q(out),
    q("file://" .. abs), q(dir .. "/chromium.log"))
  assert(helper.execute(cmd), "chromium: " .. tostring(helper.read_file(dir .. "/chromium.log")))
  return out
end

-- Its own run against the emulator, scraped by a Prometheus of its own: that Prometheus' URL, the run's window
-- and a title's words.
local function own_run()
  local starvideos = require "starvideos"
  local emu = helper.emulator { queued = 2, processing = 6, key = "picture-key" }
  procs[#procs + 1] = { pid = emu.pid, close = function() emu:stop() end }
  emu:config { spread = 0.5, rate_limit = { count = 150, per = 60 } } -- (its RateLimit fields: the gauge's data)
  local store = redis()
  local server = assert(socket.bind("127.0.0.1", 0))
  server:settimeout(0)
  local base = prometheus(select(2, server:getsockname()))
  local client = starvideos.new { api_key = emu.key, base_url = emu.url, metrics = true, store = store,
    prices = { videos = 0.5, videos_fast = 0.25, videos_stable = 1, videos_stable_fast = 0.6, starvideos_o3 = 1.5 },
    spend_limit = { { amount = 50, per = "day" },
      { amount = 20, per = "day", scope = "model", model = "videos_stable" } },
    requests_per_second = 2, interval = 2, min_interval = 1, max_retries = 3,
    trace = { endpoint = fmt("http://127.0.0.1:%d/v1/traces", helper.free_ports(1)[1]) } }
  os.execute("mkdir -p " .. q(dir .. "/videos"))
  local from, to, jobs = run(client, emu, server)
  local done = 0
  for _, j in ipairs(jobs) do if j.state == "done" and not j.err then done = done + 1 end end
  client:close()
  server:close()
  return base, from, to, fmt("a real scrape (Prometheus, every 1 s) of a client running %d tasks (%d saved) against "
    .. "the emulator", #jobs, done)
end

local function main()
  local dash = cjson.decode((assert(helper.read_file(helper.root .. "/rocks/observe/dashboards/starvideos.json"))))
  local base, from, to, what
  if opts.prometheus then
    to = socket.gettime()
    base, from, what = opts.prometheus, to - opts.seconds, "the Prometheus at " .. opts.prometheus
    local code, body = get(base .. "/api/v1/query?query=vector(1)")
    assert(code == 200, fmt("--prometheus %s does not answer Prometheus' API (/api/v1/query): %s %s", base,
      tostring(code), tostring(body):sub(1, 200)))
  else
    base, from, to, what = own_run()
  end
  local results = ask(dash, base, from, to)
  local panels = 0
  for _, p in ipairs(dash.panels) do panels = panels + (p.type == "row" and 0 or 1) end
  local title = fmt("starvideos: the dashboard's %d panels from %s, %s to %s UTC", panels, what,
    os.date("!%H:%M:%S", math.floor(from)), os.date("!%H:%M:%S", math.floor(to)))
  local html, height = R.page(dash, results, { title = title, from = from, to = to })
  print(title)
  for _, p in ipairs(dash.panels) do
    for _, s in ipairs(results[p.id] or {}) do
      local v
      for i = #s.points, 1, -1 do v = v or s.points[i][2] end
      print(fmt("  %-46s %-32s %s", p.title, s.legend, R.format(v, p.fieldConfig.defaults.unit)))
    end
    if p.type ~= "row" and not (results[p.id] or {})[1] then print(fmt("  %-46s no data", p.title)) end
  end
  print("picture: " .. screenshot(html, height))
end

local ok, err = xpcall(main, debug.traceback)
stop_all()
helper.cleanup()
if not ok then io.stderr:write(tostring(err), "\n"); os.exit(1) end
