-- The Redis rock's grammar tested from C alone (rocks/redis/csrc/test/url_test.c: a store's URL read, a key's
-- Cluster slot; no Lua inside), one busted test per TAP line.
local helper = require "spec.helper"

require("spec.support.c_tap").describe({ describe = describe, it = it, assert = assert },
  "the redis rock's grammar tested from C", helper.root .. "/build/redis_url_test", 30)
