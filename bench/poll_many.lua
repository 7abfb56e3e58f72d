-- Row 4 of make bench: 1000 tasks polled once each, every answer 20 ms late
-- (nginx's /slow location, ngx.sleep), every task completed at its first poll.
--   ours      client:wait_all(ids) on a client with max_connections = 16 (and
--             requests_per_second raised to 1e6), base_url the /slow prefix;
--             a new client for each run, made before the clock starts
--   baseline  build/bench/multi_poll: libcurl's multi interface, all 1000
--             requests added at once, CURLMOPT_MAX_TOTAL_CONNECTIONS 16, the
--             same URLs and headers, every body read whole; the clock runs
--             inside it, from before the first handle to the last answer
-- One untimed run of each first, then 5 rounds taking turns; the row shows
-- the median walls and, as its ratio, the median of the rounds' ratios.
-- The floor is 1000 / 16 x 20 ms = 1.25 s.
local B = require "bench.common"
local starvideos = require "starvideos"
local options = require "starvideos.config"

B.need_nginx()
local count = 1000
local conns = 16
local rounds = B.quick and 1 or 5
local base = B.nginx .. "/slow"
local ids = {}
for i = 1, count do ids[i] = string.format("task_%04d", i) end

local function ours()
  local sent = 0
  local client = starvideos.new { api_key = B.key, base_url = base, max_connections = conns,
    requests_per_second = 1e6, on_event = function(ev) if ev.type == "request" then sent = sent + 1 end end }
  local t0 = B.now()
  local res = client:wait_all(ids, { interval = 1 })
  local wall = B.now() - t0
  client:close()
  for i, r in ipairs(res) do
    if not (r.task and r.task.status == "completed") then
      error(string.format("task %d: %s", i, tostring(r.err)))
    end
  end
  if sent ~= count then error(string.format("%d requests sent for %d tasks", sent, count)) end
  return wall
end

local c_args = { base .. "/v1/result/", B.key, options.DEFAULTS.user_agent, tostring(count), tostring(conns) }
local function theirs()
  local _, s = B.run_c("multi_poll", c_args)
  return s
end

ours()
theirs()
local res = B.rounds(rounds, {
  { name = "ours", run = ours },
  { name = "c", run = theirs },
})
local o, c = B.median(res.ours), B.median(res.c)
local ratio, ratios = B.paired(res.ours, res.c)
print(string.format("%d polls, 20 ms each, %d connections: ours %.3f s, C %.3f s (floor %.2f s)", count, conns,
  o, c, count / conns * 0.02))
B.row { scenario = "1000 tasks polled once, 20 ms server delay, 16 connections",
  baseline = "C: curl_multi, all added at once, CURLMOPT_MAX_TOTAL_CONNECTIONS 16",
  ours = o, theirs = c, ratio = ratio, unit = "s", target = "<= 1.3x", ok = ratio <= 1.3,
  note = string.format("ours = client:wait_all(ids) (all completed at their first poll, 1000 requests sent); "
    .. "wall, %d rounds taking turns after one untimed run each; medians, the ratio the median of the rounds'; "
    .. "the floor is 1000 / 16 x 20 ms = 1.25 s; each round (s): ours %s; C %s; ratios %s", rounds,
    B.list(res.ours, "%.3f"), B.list(res.c, "%.3f"), B.list(ratios, "%.3f")) }
