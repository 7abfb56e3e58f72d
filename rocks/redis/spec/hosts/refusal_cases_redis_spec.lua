-- The refusal cases (spec/support/refusal_cases.lua) on a store, a real redis-server: a policy failure kept wherever
-- it is learned, counted at the emulator; a journal and the process alone: spec/records/refusal_cases_spec.lua.
local cases = require "spec.support.refusal_cases"

cases.run("redis", { describe = describe, it = it, before_each = before_each, after_each = after_each,
  assert = assert, pending = pending })
