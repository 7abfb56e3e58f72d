-- The core's extension points (docs/architecture.md, "Extension points"): what another rock adds is found by a
-- module name made from the point and a key, never by a module's name written in the core:
--   sink      starvideos.sink.<scheme>     an out's URL scheme (s3: s3://bucket/key); a file is the core's own
--   ledger    starvideos.ledger.<kind>     a store URL's kind (redis: redis://, rediss://, unix://, redis+...://)
--   observe   starvideos.observe           the one observer: metrics and traces hang on it
--   command   starvideos.command.<name>    a command of bin/starvideos (emulator, store)
-- A feature whose rock is not installed is refused before anything is sent: an invalid_request naming the rock
-- and the command that installs it.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local X = {}

-- The rock that gives each point's key (what the refusal names).
X.ROCKS = {
  sink = { s3 = "starvideos-s3" },
  ledger = { redis = "starvideos-redis" },
  observe = { [""] = "starvideos-observe" },
  command = { emulator = "starvideos-emulator", store = "starvideos-redis" },
}

-- A store's ledger kind, by its URL's scheme (store: a URL or a table {url =}; config.store_url read it): every
-- form the core reads is one of Redis (redis, rediss, unix, their +sentinel and +cluster).
local LEDGERS = { redis = "redis", rediss = "redis", unix = "redis" }
function X.ledger_kind(store)
  local url = type(store) == "table" and store.url or store
  return LEDGERS[(tostring(url):match("^(%a+)") or ""):lower()]
end

-- The module name of point's key (nil key: the point's one module).
function X.name(point, key)
  return "starvideos." .. point .. (key and "." .. key or "")
end

-- The module of point's key: it, or nil when it is not installed (a missing module; an error while loading an
-- installed one is raised as it is).
function X.optional(point, key)
  local name = X.name(point, key)
  local ok, mod = pcall(require, name)
  if ok then return mod end
  if tostring(mod):find("module '" .. name .. "' not found", 1, true) then return nil end
  error(mod, 0)
end

-- The module of point's key for `what` (the feature as the user asked for it, e.g. "store = redis://..."): it, or
-- nil, an invalid_request naming its rock (field: the option that asked).
function X.find(point, key, what, field)
  local mod = X.optional(point, key)
  if mod then return mod end
  local rock = X.ROCKS[point] and X.ROCKS[point][key or ""] or "starvideos-" .. tostring(key)
  -- (errors.lua loaded here, not before: the emulator's command works without the C core)
  local new_error = require("starvideos.errors").new_error
  return nil, new_error("invalid_request", string.format("%s needs the %s rock: luarocks install %s", what, rock,
    rock), { field = field, rock = rock })
end

-- X.find's module, else raises its error (at level: a wrong option of a call that raises).
function X.need(point, key, what, field, level)
  local mod, err = X.find(point, key, what, field)
  if mod then return mod end
  error(err, level and level + 1 or 2)
end

return X
