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

local function instructions(mode, n)
  local cg_out = string.format("%s/callgrind.%s.%d.out", out_dir, mode, n)
  local out, ok = B.sh(string.format("valgrind --tool=callgrind --callgrind-out-file=%s %s bench/lib/cg_child.lua "
    .. "%s %d 2>&1", B.q(cg_out), B.lua, mode, n))
  os.remove(cg_out)
  local ir = tonumber((out:match("Collected%s*:%s*(%d+)")))
  if not ok or not ir or not out:find("DONE " .. mode, 1, true) then
    error(string.format("callgrind %s %d failed: %s", mode, n, out))
  end
  return ir
end

local what = {
  { "validate", "starvideos.validate(params) (a create of model videos, 2 reference images)" },
  { "build", "a create's request built: options.extra_json + core.build_create (validation included)" },
  { "answer", "a query's answer read: core.verdict + job.lua's decode_task (cjson, nulls, integers)" },
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
