-- Row of make bench: what metrics and tracing add to a query.  Sequential client:query(id) on the bench's nginx
-- (as row 1), one client with `metrics = true` and `trace` on (its spans exported to the same nginx, a POST
-- each batch, whatever it answers: the export's cost is counted, its answer is not), against one with both
-- off; the two take turns, 16 rounds of 0.25 s each after 500 warm-up queries each; the row gives the median
-- throughputs and, as its ratio, the median of the rounds' ratios.  Target: within 5% (>= 0.95x).
local B = require "bench.common"
local starvideos = require "starvideos"

B.need_nginx()
local id = "task_0001"
local seconds, rounds, warm = B.quick and 0.2 or 0.25, B.quick and 1 or 16, B.quick and 50 or 500

local function client(on)
  return starvideos.new { api_key = B.key, base_url = B.nginx, requests_per_second = 1e6, metrics = on,
    trace = on and { endpoint = B.nginx .. "/v1/traces", service_name = "bench" } or false }
end
local on, off = client(true), client(false)
local function one(c)
  return function()
    local task, err = c:query(id)
    if not task then error("client:query: " .. tostring(err)) end
  end
end
local q_on, q_off = one(on), one(off)
for _ = 1, warm do q_on(); q_off() end
local res = B.rounds(rounds, {
  { name = "on", run = function() local n, t = B.loop(seconds, q_on) return n / t end },
  { name = "off", run = function() local n, t = B.loop(seconds, q_off) return n / t end },
})
local ratio, ratios = B.paired(res.on, res.off)
local spans = on.cfg.observe.tr
print(string.format("queries/s with metrics and tracing on %.0f, both off %.0f (ratio %.3f); spans exported in "
  .. "batches, %d dropped", B.median(res.on), B.median(res.off), ratio, spans.dropped))
B.row { scenario = "sequential client:query(id), HTTP, metrics and tracing on",
  baseline = "the same, metrics and tracing off", ours = B.median(res.on), theirs = B.median(res.off),
  ratio = ratio, unit = "queries/s", target = ">= 0.95x", ok = ratio >= 0.95,
  note = string.format("%d rounds of %.2f s per contender, taking turns, after %d warm-up queries each; medians; "
    .. "the ratio is the median of the rounds' ratios: %s; each query a CLIENT span (a lone query has no task "
    .. "span), exported to the bench's nginx; %d spans dropped (the queue full while an export was in flight)",
    rounds, seconds, warm, B.list(ratios, "%.3f"), spans.dropped) }
on:close()
off:close()
