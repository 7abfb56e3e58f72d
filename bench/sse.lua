-- Rows of make bench for client:sse (issue 69): its events a second, and what an idle stream costs nginx.
--   1. Events a second through the writer: a client's window (the process's) holding 1000 events of its jobs'
--      kind, a stream from the window's start writing them all (their SSE text, filtered by tenant); against the
--      same 1000 events made into SSE text by hand (cjson and string.format: a stream of one's own, with no window).
--   2. Memory a stream costs: an nginx worker of this script's own (1 worker, its window in the dict), 1000 idle
--      streams of client:sse held open, the worker's resident memory before and after; against 1000 connections
--      held by a bare handler (headers, then ngx.sleep in a loop: what any held answer costs).
local B = require "bench.common"
local starvideos = require "starvideos"
local cjson = require "cjson"
local socket = require "socket"
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"

local str_format = string.format
local N = 1000
local STREAMS = B.quick and 100 or 1000

-- An event as a job tells it (job.lua's fields), the i-th of a download.
local function event(i)
  return { type = "progress", id = "video_bench_0123456789", status = "completed", bytes = i * 4096,
    total = N * 4096, path = "/srv/videos/bench.mp4", eta = { p50 = 40, p90 = 75 } }
end

local function events_row()
  local client = starvideos.new { api_key = "bench-sse", base_url = "http://127.0.0.1:9" }
  local record = client.cfg.on_stream
  local ours = function()
    for i = 1, N do record(event(i), "bench") end
    local last = require("starvideos.sse").window(client.key):last()
    local wrote = 0
    local t0 = B.now()
    local job = client:sse { tenant = "bench", last_event_id = last - N, write = function(chunk)
      wrote = wrote + select(2, chunk:gsub("\nevent: ", ""))
      return true
    end }
    job.stream:turn(B.now())
    local secs = B.now() - t0
    assert(wrote == N, "the stream wrote " .. wrote)
    return N / secs
  end
  local theirs = function()
    local t0 = B.now()
    local out = {}
    for i = 1, N do
      local ev = event(i)
      out[i] = str_format("id: %d\nevent: %s\ndata: %s\n\n", i, ev.type, cjson.encode(ev))
    end
    local _ = table.concat(out)
    return N / (B.now() - t0)
  end
  local rounds = B.quick and 3 or 15
  local res = B.rounds(rounds, { { name = "ours", run = ours }, { name = "theirs", run = theirs } })
  client:close()
  local o, t = B.median(res.ours), B.median(res.theirs)
  local ratio = B.paired(res.ours, res.theirs)
  B.row { scenario = "client:sse's events a second (the writer, the process's window)",
    baseline = "the same events made SSE by hand (cjson, string.format)", ours = o, theirs = t, ratio = ratio,
    unit = "events/s", target = ">= 0.2x", ok = ratio >= 0.2,
    note = str_format("%d progress events recorded by a client's jobs' hook, then a stream from the window's start "
      .. "(its tenant's) writing them in one turn; the baseline encodes and formats the same events with no window; "
      .. "medians of %d rounds taking turns, the ratio the median of the rounds'; each round (events/s): ours %s; "
      .. "theirs %s", N, rounds, B.list(res.ours), B.list(res.theirs)) }
end

local function rss_kb(pid)
  return tonumber((helper.read_file("/proc/" .. pid .. "/status") or ""):match("VmRSS:%s*(%d+) kB"))
end

-- The worker's kB for STREAMS connections held open at path (each begun: `line` read).
local function held(server, pid, path, line)
  collectgarbage()
  local before, socks = rss_kb(pid), {}
  for i = 1, STREAMS do
    local c = assert(socket.tcp())
    c:settimeout(10)
    assert(c:connect("127.0.0.1", server.port))
    assert(c:send("GET " .. path .. " HTTP/1.1\r\nHost: t\r\n\r\n"))
    socks[i] = c
  end
  for _, c in ipairs(socks) do repeat local l = assert(c:receive("*l")) until l == line end
  local after = rss_kb(pid)
  for _, c in ipairs(socks) do c:close() end
  return after - before
end

local function memory_row()
  local dir = helper.tmpdir()
  local server = nginx_run.serve_lua(dir, {
    { "/events", [[local c = require("starvideos").new { api_key = "bench-sse", base_url = "http://127.0.0.1:9" }
      c:sse { tenant = "idle" }
      c:close()]] },
    { "/hold", [[ngx.header.content_type = "text/event-stream"
      ngx.print("retry: 1000\n\n")
      ngx.flush(true)
      while ngx.flush(true) and not ngx.worker.exiting() do ngx.sleep(0.25) end]] },
    { "/pid", "ngx.say(ngx.worker.pid())" } }, 1,
    { "lua_shared_dict starvideos_events 4m;", "lua_check_client_abort on;" }, STREAMS + 100)
  local ok, err = pcall(function()
    local pid = assert(tonumber(server.get("/pid")))
    local theirs = held(server, pid, "/hold", "retry: 1000")
    socket.sleep(0.5) -- (the held requests ended: their pools freed before the next count)
    local ours = held(server, pid, "/events", "retry: 1000")
    local ratio = ours / math.max(theirs, 1)
    B.row { scenario = str_format("client:sse inside nginx: a worker's memory for %d idle streams", STREAMS),
      baseline = "as many connections held by a bare handler (ngx.sleep in a loop)", ours = ours / STREAMS,
      theirs = theirs / STREAMS, ratio = ratio, unit = "kB/stream", target = "< 50 MB in all",
      ok = ours < 50 * 1024,
      note = str_format("the worker's VmRSS before and after %d streams began (each its first line read), 1 worker, "
        .. "its window in lua_shared_dict starvideos_events; ours %d kB in all (a client made per stream, as the "
        .. "docs' location does), the bare handler's %d kB", STREAMS, ours, theirs) }
  end)
  server.stop()
  helper.cleanup()
  if not ok then error(err, 0) end
end

events_row()
local why = nginx_run.unavailable()
if why then print("client:sse inside nginx: not measured: " .. why) else memory_row() end
