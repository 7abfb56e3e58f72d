-- The child process of bench/require_time.lua: the wall time of one
-- `require(NAME)` in this fresh process, measured inside it with LuaSocket's
-- clock (socket.core, loaded first: it shares nothing with the module timed).
--   require_child.lua NAME    prints  REQUIRE <microseconds>
local gettime = require("socket.core").gettime
local name = arg[1]
local t0 = gettime()
require(name)
local t1 = gettime()
io.write(string.format("REQUIRE %.1f\n", (t1 - t0) * 1e6))
