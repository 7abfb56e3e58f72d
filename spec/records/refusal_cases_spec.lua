-- The refusal cases (spec/support/refusal_cases.lua) on a journal and on the process alone: a policy failure kept
-- wherever it is learned, counted at the emulator; Redis: rocks/redis/spec/hosts/refusal_cases_redis_spec.lua.
local cases = require "spec.support.refusal_cases"

local b = { describe = describe, it = it, before_each = before_each, after_each = after_each, assert = assert,
  pending = pending }
cases.run("journal", b)
cases.run("process", b)
