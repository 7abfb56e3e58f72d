-- `starvideos emulator`: an extension of the core's command point (docs/architecture.md, "Extension points"; the
-- starvideos-emulator rock): summary, its line in the command line's help; main(argv, invoked) -> the exit status
-- (the emulator parses its own flags and gives its own --help); options(cmd): its flags added to an argparse
-- command, for the core's `starvideos completion`.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
require "starvideos.needs.emulator" -- (a core outside this rock's range refused: rocks/needs.lua)

return {
  summary = "run a local stand-in for the service (see `starvideos emulator --help`)",
  main = function(argv, invoked) return require("starvideos.emulator").main(argv, invoked) end,
  options = function(cmd) return require("starvideos.emulator.args").options(cmd) end,
}
