-- The restart cases (spec/support/restart_cases.lua) on Redis with its AOF (appendonly, appendfsync always, as
-- docs/keep-and-fleet.md asks): a cap reached, redis-server stopped and started on its folder, a new client refuses
-- the next create, 0 past the cap at the emulator.
local cases = require "spec.support.restart_cases"

cases.run("redis", { describe = describe, it = it, before_each = before_each, after_each = after_each,
  assert = assert, pending = pending }, { aof = true })
