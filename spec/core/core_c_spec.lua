-- The C core's own tests (csrc/test/test_core.c, no Lua inside), one busted test
-- per TAP line, so a broken validator or retry rule fails here even without Lua.
local helper = require "spec.helper"

require("spec.support.c_tap").describe({ describe = describe, it = it, assert = assert }, "the C core tested from C",
  helper.root .. "/build/test_core", 30)
