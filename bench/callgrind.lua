-- Row 8 of make bench: instructions per call (valgrind --tool=callgrind, Ir),
-- for the work the client does in Lua and C around every request and answer:
-- validating a create, building one, and reading an answer (bench/lib/cg_child.lua
-- says exactly what each runs).  Each runs N1 and N2 calls in a fresh lua5.4
-- under callgrind; (Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one call, the
-- process's start cancelled out.  No target and no baseline: the rows are
-- there so that a regression shows as a number.
local B = require "bench.common"

local n1, n2 = 1000, 5000
if B.quick then n1, n2 = 100, 300 end
local out_dir = B.tmp or "/tmp"

-- Ir of a whole process under callgrind; `done` is a word its output must hold.
local function callgrind(name, n, cmd, done)
  local cg_out = string.format("%s/callgrind.%s.%d.out", out_dir, name, n)
  local out, ok = B.sh(string.format("valgrind --tool=callgrind --callgrind-out-file=%s %s 2>&1", B.q(cg_out), cmd))
  os.remove(cg_out)
  local ir = tonumber((out:match("Collected%s*:%s*(%d+)")))
  if not ok or not ir or not out:find(done, 1, true) then
    error(string.format("callgrind %s %d failed: %s", name, n, out))
  end
  return ir
end

local function instructions(mode, n, url)
  return callgrind(mode, n, string.format("%s bench/lib/cg_child.lua %s %d %s", B.lua, mode, n, url or ""),
    "DONE " .. mode)
end

local what = {
  { "validate", "starvideos.validate(params) (a create of model videos, 2 reference images)" },
  { "build", "a create's request built: options.extra_json + core.build_create (validation included)" },
  { "answer", "a query's answer read: core.verdict, which builds the task table in C (nulls, integers)" },
}
for _, w in ipairs(what) do
  local mode = w[1]
  local a = instructions(mode, n1)
  local b = instructions(mode, n2)
  local per = (b - a) / (n2 - n1)
  print(string.format("%-8s Ir(%d) = %d, Ir(%d) = %d: %.0f instructions per call", mode, n1, a, n2, b, per))
  B.row { scenario = "callgrind, per call: " .. mode, baseline = "none (tracked)", ours = per, theirs = nil,
    unit = "Ir", target = "none", ok = true,
    note = string.format("%s; (Ir(%d) - Ir(%d)) / %d with Ir(%d) = %d, Ir(%d) = %d", w[2], n2, n1, n2 - n1, n1, a,
      n2, b) }
end

-- A whole sequential query over HTTP against the runner's nginx, in
-- instructions (the wall-clock rows 1 and 2 are noisy on a shared machine; this
-- is not): client:query(id), the floor under it (the client's transport and
-- the core's reading, with no client logic), and the C baseline of row 1
-- (build/bench/easy_loop: WARMUP requests, then none timed).
if B.nginx then
  local q1, q2 = 500, 2500
  if B.quick then q1, q2 = 50, 150 end
  local url = B.nginx .. "/v1/result/task_0001"
  local per = {}
  for _, mode in ipairs { "query", "floor" } do
    local a, b = instructions(mode, q1, B.nginx), instructions(mode, q2, B.nginx)
    per[mode] = (b - a) / (q2 - q1)
  end
  local function c_loop(n)
    return callgrind("easy_loop", n, string.format("build/bench/easy_loop %s %s %s 0 %d", B.q(url), B.q(B.key),
      B.q("starvideos"), n), "REQUESTS")
  end
  local ca, cb = c_loop(q1), c_loop(q2)
  per.c = (cb - ca) / (q2 - q1)
  print(string.format("query: ours %.0f Ir, floor (transport + reading) %.0f Ir, C easy_loop %.0f Ir per request",
    per.query, per.floor, per.c))
  B.row { scenario = "callgrind, per sequential query over HTTP: client:query(id)",
    baseline = "C: one reused libcurl easy handle (row 1's)", ours = per.query, theirs = per.c,
    ratio = per.query / per.c, unit = "Ir", target = "none", ok = true,
    note = string.format("the floor under ours, the client's transport and the core's reading (the task table "
      .. "built in C) with no client logic: %.0f Ir; so of the %.0f Ir ours spends beyond C, %.0f are the "
      .. "transport and the core's reading, and %.0f the client; (Ir(%d) - Ir(%d)) / %d for each",
      per.floor, per.query - per.c, per.floor - per.c, per.query - per.floor, q2, q1, q2 - q1) }
end
