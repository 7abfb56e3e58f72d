-- `starvideos emulator`: an extension of the core's command point (docs/architecture.md, "Extension points"; the
-- starvideos-emulator rock): main(argv) -> the exit status.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
return require "starvideos.emulator"
