-- spend_limit on a store, with real processes (spec/support/spend_runs.lua) on a real redis-server: 50 processes at
-- once, each asking 10 creates of 0.40 against a key limit of 8.00, exactly 20 reach the service (counted at the
-- emulator), 480 refused; and 30 reserving processes killed with kill -9 at random moments, then rerun: no
-- reservation held past the lease (1 s), the pending creates the kills left settled as a user does, and the spent
-- total the price of the tasks the service made, none made twice.  The seed is printed.  And one process per
-- spelling of the base URL (localhost, HTTP://, LOCALHOST, /./, a port's leading 0): one key, one spend.
local helper = require "spec.helper"
local redis_run = require "spec.support.redis_run"
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

describe("spend_limit on a store, the base URL spelled five ways by five processes", function()
  local redis, emu
  setup(function()
    redis = redis_run.start()
    emu = helper.emulator { key = runs.KEY, queued = 30, processing = 30 }
  end)
  teardown(function()
    emu:stop()
    redis.stop()
    helper.cleanup()
  end)

  it("is one key's spend: 5 creates of 0.40 under 2.00 reach the service, not 25", function()
    local port = emu.url:match(":(%d+)$")
    local procs = {}
    for i, url in ipairs { "http://localhost:" .. port, "HTTP://127.0.0.1:" .. port, "http://LOCALHOST:" .. port,
        "http://127.0.0.1:" .. port .. "/./", "http://127.0.0.1:0" .. port } do
      local spelled = setmetatable({ url = url }, { __index = emu })
      procs[i] = runs.new(helper.tmpdir(), "store", redis.url .. "/1", spelled).start(5, "s" .. i, 2)
    end
    local tally, text = runs.tally(procs)
    assert.same({ ok = 5, ["spend_limited spend_limit"] = 20 }, tally, text)
    assert.equal(5, emu:creates())
  end)
end)
