-- Issue 82 in the process's budget: tenant B's 5 creates beside 100 of tenant A's in one process
-- (spec/support/fair_runs.lua), alone and on a journal (which keeps no budget: the process's is shared), three runs
-- each (FAIR_RUNS=10 for more): B's creates go in turn with A's at the server, never behind A's backlog.
local helper = require "spec.helper"
local Runs = require "spec.support.fair_runs"

local RUNS = tonumber(os.getenv("FAIR_RUNS") or "") or 3

describe("tenant B beside tenant A's backlog in the process's budget", function()
  teardown(function() helper.cleanup() end)

  it(string.format("B's 5 creates in turn with 100 of A's in one process on a journal (%d runs)", RUNS), function()
    for i = 1, RUNS do
      Runs.check(assert, Runs.run("one", function(dir) return "journal", dir .. "/journal" end), "journal run " .. i)
    end
  end)

  it(string.format("B's 5 creates in turn with 100 of A's in one process alone, no ledger (%d runs)", RUNS), function()
    for i = 1, RUNS do
      Runs.check(assert, Runs.run("one", function() return "none" end), "process run " .. i)
    end
  end)
end)
