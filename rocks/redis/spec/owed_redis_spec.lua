-- The ledger's owed webhooks on a store (fleet/ledger.lua): spec/support/owed_cases.lua against a redis-server of
-- the spec's own, when there is one (else pending); the journal's run: the core's spec/extras/notify_spec.lua.
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local R = require "starvideos.fleet.ledger"

describe("owed webhooks in the store", function()
  local redis

  setup(function() if not redis_run.missing() then redis = redis_run.start() end end)
  teardown(function()
    if redis then redis.stop() end
    helper.cleanup()
  end)

  local cfg
  require("spec.support.owed_cases").run("redis", { it = it, pending = pending, assert = assert }, {
    new = function() return R.new(redis.url, cfg) end,
    -- (Redis not started, or its module not built for this VM); each case a key of its own
    unready = function()
      if not redis then return redis_run.missing() end
      if not pcall(require, "starvideos.redis") then
        return "starvideos.redis is not built for this VM (make build/<vm>/starvideos/redis.so)"
      end
      cfg = { base_url = "http://fleet", api_key = "k-" .. require("starvideos.core").random_id(), lease = 1,
        connect_timeout = 5 }
    end,
    -- the key of the owed events made a string (a script error), then put back
    broken = function(ledger)
      local port = assert(redis.url:match(":(%d+)$"))
      local key = helper.shell_quote(ledger.prefix .. "owed")
      local away = helper.shell_quote(ledger.prefix .. "owed.away")
      local function cli(args) assert(helper.execute("redis-cli -p " .. port .. " " .. args .. " >/dev/null")) end
      return function()
        cli("RENAME " .. key .. " " .. away)
        cli("SET " .. key .. " x")
      end, function()
        cli("DEL " .. key)
        cli("RENAME " .. away .. " " .. key)
      end
    end })
end)
