-- The ledger on Redis: an extension of the core's ledger point (docs/architecture.md, "Extension points"; the
-- starvideos-redis rock), for every store URL of Redis (redis://, rediss://, unix://, redis+sentinel://, ...).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
require "starvideos.needs.redis" -- (a core outside this rock's range refused: rocks/needs.lua)

local R = {}

-- The store option read (fleet/url.lua's parse, once for a client: config.lua through store_option.read, the core
-- reading only its scheme): its table, or raises what is wrong (never a password); where, for a person: the URL
-- without its user and password.
R.parse = require("starvideos.fleet.url").parse
function R.where(store) return R.parse(store).where end

-- The ledger of cfg.store (read: R.parse's table of it; fleet/ledger.lua on the key's store, fleet/store.lua), the
-- key's tokens taken from Redis first (fleet/budget.lua, over nginx's dict when there is one: dict).
function R.open(cfg, loop, key, dict, read)
  local st = require("starvideos.fleet.store").for_key(read or cfg.store, key, cfg.connect_timeout)
  st.observe = st.observe or cfg.metrics and cfg.observe -- (its commands' metrics: a client that counts)
  loop:source(st) -- (its answers wake the loop's waiters)
  key.bucket:use(require("starvideos.fleet.budget").new(st, key, loop, dict))
  return require("starvideos.fleet.ledger").new(st, cfg, loop, key)
end

return R
