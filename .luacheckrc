-- luacheck config: `luacheck --std lua54 lua bin spec`
std = "lua54"
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

include_files = { "**/*.lua", "bin/starvideos", "*.rockspec", ".luacheckrc" }
