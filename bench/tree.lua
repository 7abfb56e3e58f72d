-- `list --tree` of one chain of many generations (issue: 7.6 s at 1,000, over 120 s at 3,000): the command line
-- run on a journal of 3,000 generations (1,000 when quick, bench/lib/chain_journal.lua), its output to /dev/null,
-- against the flat `list` of the same journal (the same tasks read, a line each, no tree).  The best of 3 each.
-- Target: ours <= 2x the flat list (a tree in the time of its length); the note gives a third of the chain too.
local B = require "bench.common"
local core = require "starvideos.core"
local chain = require "bench.lib.chain_journal"

local n = B.quick and 1000 or 3000
local third_n = math.floor(n / 3)
local dir = (B.tmp or "/tmp") .. "/tree-" .. core.random_id()
local path = dir .. "/chain.jsonl"

-- The best of 3 runs of `bin/starvideos list --journal JOURNAL` and the words given, in seconds.
local function best(journal, words)
  local cmd = string.format("%s bin/starvideos list --journal %s %s >/dev/null", B.lua, B.q(journal), words)
  local t = math.huge
  for _ = 1, 3 do
    local t0 = core.now()
    assert(os.execute(cmd), cmd)
    t = math.min(t, core.now() - t0)
  end
  return t
end

local ok, err = pcall(function()
  assert(os.execute("mkdir -p " .. B.q(dir)))
  chain.write(path, n, dir)
  local ours, flat = best(path, "--tree"), best(path, "")
  local third = dir .. "/third.jsonl"
  chain.write(third, third_n, dir)
  local small = best(third, "--tree")
  print(string.format("list --tree of %d generations %.3f s, flat list %.3f s; %d generations %.3f s", n, ours, flat,
    third_n, small))
  B.row { scenario = string.format("list --tree of one chain of %d generations", n),
    baseline = "the flat list of the same journal", ours = ours, theirs = flat, unit = "s",
    target = "ours <= 2x the flat list", ok = ours <= 2 * flat,
    note = string.format("%d generations (a third): %.3f s, so %d take %.2fx a third's time (3x: linear)", third_n,
      small, n, ours / small) }
end)
os.execute("rm -rf " .. B.q(dir))
assert(ok, err)
