-- `starvideos store`'s work in the starvideos-redis rock: an extension of the core's command point
-- (docs/architecture.md, "Extension points").  run(url, opts) -> the report of `store check` (fleet/check.lua);
-- hold(url, key_hash, clear) -> the key's rate-limit hold in the store (`store hold`).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local check = require "starvideos.fleet.check"

local M = { run = check.run }

-- The hold the service's rate limit left on the key of key_hash (key.lua's hash_of) in the store at url: the
-- seconds left on Redis' clock (0: none), or nil, err; with clear, it is deleted (the seconds it had left).
function M.hold(url, key_hash, clear)
  local st = require("starvideos.fleet.store").new(url, { timeout = 5 })
  local name = require("starvideos.fleet.budget").key(key_hash, "hold")
  local t, err = st:call("TIME")
  local untl = t and st:call("GET", name)
  if t and clear and untl then st:call("DEL", name) end
  st:close()
  if not t then return nil, err end
  local left = tonumber(untl) and tonumber(untl) - (tonumber(t[1]) + tonumber(t[2]) / 1e6)
  return left and left > 0 and left or 0
end

return M
