-- The key cases (spec/support/keys_cases.lua) on a store: a real redis-server
-- (rocks/redis/spec/support/redis_run.lua), where one script asks the key and writes the
-- pending record, so two processes racing on one key create once.
local redis_run = require "rocks.redis.spec.support.redis_run"

local why = redis_run.missing()
if why then
  pending("keys on a store: " .. why)
  return
end

describe("a redis-server", function()
  local redis = redis_run.start()
  teardown(function() redis.stop() end)
  require "spec.support.keys_cases"("store", redis.url,
    { describe = describe, it = it, pending = pending, before_each = before_each, assert = assert })
end)
