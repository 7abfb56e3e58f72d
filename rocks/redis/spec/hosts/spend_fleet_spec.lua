-- spend_limit on a store, with real processes (spec/support/spend_runs.lua) on a real redis-server: 50 processes at
-- once, each asking 10 creates of 0.40 against a key limit of 8.00, exactly 20 reach the service (counted at the
-- emulator), 480 refused, each step said once whichever process says it (against 7.90, 19, and the refusals' 100%
-- said once in all); and 30 reserving processes killed with kill -9 at random moments, then rerun: no
-- reservation held past the lease (1 s), the pending creates the kills left settled as a user does, and the spent
-- total the price of the tasks the service made, none made twice.  The seed is printed.
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local runs = require "spec.support.spend_runs"

local why = redis_run.missing()
if why then
  pending("spend_limit on a store: " .. why)
  return
end

describe("spend_limit on a store shared by a fleet's processes", function()
  local redis, db = redis_run.start(), 0
  teardown(function()
    redis.stop()
    helper.cleanup()
  end)
  runs.cases("spend_fleet_spec", function(dir, emu)
    db = db + 1
    return runs.new(dir, "store", redis.url .. "/" .. db, emu)
  end, 50, { setup = setup, teardown = teardown, it = it, assert = assert })
end)
