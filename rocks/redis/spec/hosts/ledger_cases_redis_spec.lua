-- The ledger cases (spec/support/ledger_cases.lua) on a store: a real redis-server
-- (rocks/redis/spec/support/redis_run.lua), a lease of 2 s (a box loaded 14 took 0.9 s between a create and its lease's
-- check); spec/records/ledger_cases_spec.lua runs them on a journal.
local redis_run = require "rocks.redis.spec.support.redis_run"
local cases = require "spec.support.ledger_cases"
local helper = require "spec.helper"

local why = redis_run.missing()
if why then
  pending("the ledger cases on a store: " .. why)
  return
end

describe("a redis-server", function()
  local redis = redis_run.start()
  teardown(function() redis.stop() end)
  cases.run("a store", true, cases.env(function() return { store = redis.url, lease = 2 } end,
    function() helper.sleep(2.2) end), -- (nothing renews the lease meanwhile: no loop is stepped)
    { describe = describe, it = it, after_each = after_each, assert = assert }, "redis")
end)
