-- Local files as references: the starvideos-s3 rock's extension of the core's references point
-- (docs/architecture.md, "Extension points"): each file put once into the user's bucket under storage.refs and
-- named in the create by a presigned GET (storage/refs.lua: start, release, sweep).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
require "starvideos.needs.s3" -- (a core outside this rock's range refused: rocks/needs.lua)

return require "starvideos.storage.refs"
