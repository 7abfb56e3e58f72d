-- `starvideos store check`'s report: an extension of the core's command point (docs/architecture.md, "Extension
-- points"; the starvideos-redis rock): run(url, opts) -> the report cli/store.lua prints.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
return require "starvideos.fleet.check"
