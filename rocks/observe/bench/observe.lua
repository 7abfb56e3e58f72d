-- Row of make bench: what metrics and tracing add to a query.  Sequential client:query(id) on the bench's nginx
-- (as row 1), one client with `metrics = true` and `trace` on against one with both off: each of its own key
-- (its own loop and connections: the exports of one are never driven by the other's queries), the spans
-- exported to the same nginx, whose /v1/traces answers 200 once it has read the body, as a collector does.
-- The two take turns in short rounds (the machine's load moves; a round's two runs see the same machine), after
-- warm-up queries each; the row gives the median throughputs and, as its ratio, the median of the rounds'
-- ratios; the note the process's CPU time per query of each (user + system).  Target: an absolute guard, the
-- client's CPU per query with both on under 1 ms (the API allows a few requests a second: the path needs no more).
local B = require "bench.common"
local starvideos = require "starvideos"

B.need_nginx()
local id = "task_0001"
local seconds, rounds, warm = B.quick and 0.1 or 0.1, B.quick and 2 or 60, B.quick and 100 or 1000

local function client(on)
  return starvideos.new { api_key = B.key .. (on and "-on" or "-off"), base_url = B.nginx, requests_per_second = 1e6,
    metrics = on, trace = on and { endpoint = B.nginx .. "/v1/traces", service_name = "bench" } or false }
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
local cpu = { on = {}, off = {} }
local function run(name, q)
  return function()
    local n, t, c = B.loop(seconds, q)
    cpu[name][#cpu[name] + 1] = c / n * 1e6
    return n / t
  end
end
local res = B.rounds(rounds, { { name = "on", run = run("on", q_on) }, { name = "off", run = run("off", q_off) } })
local ratio, ratios = B.paired(res.on, res.off)
local cpu_ratio = B.paired(cpu.on, cpu.off)
local tr = on.cfg.observe.tr
on:close() -- (what is still queued goes now)
print(string.format("queries/s with metrics and tracing on %.0f, both off %.0f (ratio %.3f); CPU per query %.1f "
  .. "and %.1f us (ratio %.3f); %d spans exported, %d dropped", B.median(res.on), B.median(res.off), ratio,
  B.median(cpu.on), B.median(cpu.off), cpu_ratio, tr.exported, tr.dropped))
B.row { scenario = "CPU per sequential client:query(id), HTTP, metrics and tracing on",
  baseline = "the same, metrics and tracing off", ours = B.median(cpu.on), theirs = B.median(cpu.off),
  ratio = cpu_ratio, unit = "us", target = "on < 1000 us", ok = B.median(cpu.on) < 1000,
  note = string.format("the process's CPU time per query (user + system), medians of %d rounds of %.2f s per "
    .. "contender, taking turns, after %d warm-up queries each; the ratio is the median of the rounds' ratios; "
    .. "throughput on %.0f, off %.0f queries/s (median of the rounds' ratios %.3f, sorted: %s); each client its own "
    .. "key (loop, connections); each query a CLIENT span (a lone query has no task span): %d spans exported to the "
    .. "bench's nginx in batches, %d dropped", rounds, seconds, warm, B.median(res.on), B.median(res.off), ratio,
    B.list((function() table.sort(ratios) return ratios end)(), "%.3f"), tr.exported, tr.dropped) }
off:close()
