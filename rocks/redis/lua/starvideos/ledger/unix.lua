-- The ledger of a unix:// store (and its +sentinel, +cluster forms): the Redis one (ledger/redis.lua), for the core's
-- ledger point, which tries starvideos.ledger.<scheme> for each store URL's scheme.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

return require "starvideos.ledger.redis"
