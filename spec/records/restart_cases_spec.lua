-- The restart cases (spec/support/restart_cases.lua) on the process alone and on a journal: a cap reached, the
-- place restarted as a user's would be (a process run again), what a new client counts; Redis with its AOF:
-- rocks/redis/spec/hosts/restart_cases_redis_spec.lua.
local cases = require "spec.support.restart_cases"

local b = { describe = describe, it = it, before_each = before_each, after_each = after_each, assert = assert,
  pending = pending }
cases.run("process", b)
cases.run("journal", b)
