-- luacheck config: `luacheck -q lua bin spec` (make lint).
--
-- The code runs unchanged on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT, so the standard
-- is "min": only the globals and fields all of them have.  A 5.2+ name
-- (table.unpack, table.move, math.type, math.tointeger, utf8, string.pack,
-- package.searchpath, rawlen ...) is flagged wherever it is used.  Where one is
-- used behind a fallback, the line says so and why:
--   local unpack = table.unpack or unpack -- luacheck: ignore 113 143 (unpack: 5.1, LuaJIT)
--   local math_type = math.type -- luacheck: ignore 143 (5.3+; nil checked before use)
-- and a global only some VMs have is read as rawget(_G, "jit").
-- luacheck reads 5.4 syntax whatever the standard (//, goto, <close>, 0x7p1,
-- bitwise operators): `make lint` also parses every file with luac5.1.
std = "min"
max_line_length = 120

-- busted's globals for the specs (listed here so that they survive a --std on the command line)
local busted = {
  "describe", "context", "insulate", "expose", "it", "spec", "test", "pending", "finally",
  "setup", "teardown", "lazy_setup", "lazy_teardown", "strict_setup", "strict_teardown",
  "before_each", "after_each", "randomize",
  assert = { other_fields = true }, spy = { other_fields = true },
  stub = { other_fields = true }, mock = { other_fields = true },
}
files["spec"] = { std = "+busted", read_globals = busted }
files["rocks/*/spec"] = { std = "+busted", read_globals = busted }

include_files = { "**/*.lua", "bin/starvideos", "*.rockspec", ".luacheckrc" }

-- types/starvideos.lua (written by tools/types.lua): LuaCATS stubs, empty functions that use no
-- argument, the client's and the job's tables declared for their methods only, long annotation lines
files["types/starvideos.lua"] = { ignore = { "212", "241", "631" } }
