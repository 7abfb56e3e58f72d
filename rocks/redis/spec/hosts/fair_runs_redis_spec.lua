-- Issue 82: tenant B's 5 creates beside tenant A's 200 on one Redis store, in two processes and in one, by a Lua
-- script's calls and by the command line (spec/support/fair_runs.lua), three runs each (FAIR_RUNS=10 for more): B's
-- creates go in turn with A's at the server, never behind A's backlog.  Before the fix the budget's script counted
-- no tenant as waiting (a missing key's false read as present), and B had either every token (A none) or none while
-- A asked.
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local Runs = require "spec.support.fair_runs"

local RUNS = tonumber(os.getenv("FAIR_RUNS") or "") or 3
local why = redis_run.missing(true)

describe("tenant B beside tenant A's backlog on one Redis store", function()
  if why then return pending(why) end
  local srv
  setup(function() srv = redis_run.start() end)
  teardown(function() srv.stop(); helper.cleanup() end)

  local SAID = { two = "A's 200 and B's 5 in two processes", one = "B's 5 beside 100 of A's in one process",
    calls = "a Lua script's calls: A's generate_all of 200 and B's client:create five times, in two processes",
    cli = "the command line: A's batch of 200 with --tenant A and B's batch of 5 with --tenant B" }
  for _, form in ipairs { "two", "one", "calls", "cli" } do
    it(string.format("B's 5 creates in turn with A's, %s (%d runs)", SAID[form], RUNS), function()
      for i = 1, RUNS do
        redis_run.cli(srv.port, "FLUSHALL")
        Runs.check(assert, Runs.run(form, function() return "store", srv.url end), form .. " run " .. i)
      end
    end)
  end
end)
