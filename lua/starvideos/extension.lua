-- The core's extension points (docs/architecture.md, "Extension points"): what another rock adds is found by a
-- module name made from the point and a key, never by a module's name written in the core:
--   sink        starvideos.sink.<scheme>     any out's URL scheme (scheme://...); a file is the core's own
--   ledger      starvideos.ledger.<scheme>   a store URL's scheme (its +suffix the ledger's to read)
--   references  starvideos.references        local files given as references, put where the service reads them
--   observe     starvideos.observe           the one observer: metrics and traces hang on it
--   command     starvideos.command.<name>    a command of bin/starvideos
-- The points are open: any scheme tries its module, and a rock serves each scheme it takes.  A feature whose
-- module is not installed is refused before anything is sent: an invalid_request naming the rock (HINTS, the one
-- table that words a refusal) and how to install it from where the library was loaded.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local X = {}

-- The rocks this project ships, by point and key: used only to word a refusal (a key not here: "no sink for
-- gs:// is installed").
X.HINTS = {
  sink = { s3 = "starvideos-s3" },
  references = { [""] = "starvideos-s3" },
  ledger = { redis = "starvideos-redis", rediss = "starvideos-redis", unix = "starvideos-redis" },
  observe = { [""] = "starvideos-observe" },
  command = { emulator = "starvideos-emulator", store = "starvideos-redis" },
}

-- The scheme of a URL (lowercase, "+suffix" dropped: redis+sentinel:// is redis's), or nil for a file's path.
function X.scheme(url)
  local s = type(url) == "string" and url:match("^(%a[%w+.-]*)://")
  return s and s:lower():match("^[^+]*") or nil
end

-- A store's scheme (store: a URL or a table {url =}): the key of its ledger.
function X.store_scheme(store)
  return X.scheme(type(store) == "table" and store.url or store)
end

-- The module name of point's key (nil key: the point's one module); a key's characters outside [%w_] are "_".
function X.name(point, key)
  return "starvideos." .. point .. (key and "." .. tostring(key):gsub("[^%w_]", "_") or "")
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

-- How to install rock (install_hint.lua, beside this file: loaded only when a rock is missing).
local function install_hint(rock)
  local here = debug.getinfo(1, "S").source:match("^@(.*/)extension%.lua$")
  local ok, hint = pcall(dofile, (here or "") .. "install_hint.lua")
  if not (here and ok) then hint = require "starvideos.install_hint" end -- (a build that embeds its modules)
  return hint(rock)
end

-- Why point's key is refused (what: the feature as the user asked for it), and the rock named, if one is known.
function X.why(point, key, what)
  local rock = X.HINTS[point] and X.HINTS[point][key or ""]
  if rock then return string.format("%s needs the %s rock (%s)", what, rock, install_hint(rock)), rock end
  local shown = key and (point == "sink" or point == "ledger") and key .. "://" or tostring(key or point)
  return string.format("%s: no %s for %s is installed (a rock giving the module %s would take it)", what, point,
    shown, X.name(point, key))
end

-- The module of point's key for `what` (the feature as the user asked for it, e.g. "store = redis://..."): it, or
-- nil, an invalid_request naming its rock (field: the option that asked).
function X.find(point, key, what, field)
  local mod = X.optional(point, key)
  if mod then return mod end
  local message, rock = X.why(point, key, what)
  -- (errors.lua loaded here, not before: the emulator's command works without the C core)
  local new_error = require("starvideos.errors").new_error
  return nil, new_error("invalid_request", message, { field = field, rock = rock })
end

-- The window: what a product rock may use of the core beyond C (starvideos.core, starvideos.sign) and these points,
-- by the core module it comes from and its names there (docs/architecture.md, "What a rock may require of the
-- core"): four parts, the error's shape, the defaults, an exchange with another host and the ledger's interface.  A
-- rock reads X.<window> (X.errors.new_error, X.ledger.lease ...): a view of the module, its listed names alone; any
-- other raises, naming the page.  The rest of the core may change without a rock knowing.
X.WINDOW = {
  errors = { "new_error", "argerror" }, -- the error shape, a wrong argument
  config = { "DEFAULTS", "VERSION", "env", "nginx" }, -- the defaults, $NAME, nginx's ngx (nil outside it)
  request = { "new", "JSON", "UNTIL_DEADLINE" }, -- an exchange with another host (a bucket, a collector)
  ledger = { "implement", "record", "answer", "limited", "lease", "spend", "budget", "schedule", "lists",
    "key_hash", "queue" }, -- the ledger's interface (ledger.lua): what both ledgers share
}

setmetatable(X, { __index = function(_, name)
  local names = X.WINDOW[name]
  if not names then return nil end
  local module, listed = "starvideos." .. name, {}
  for _, n in ipairs(names) do listed[n] = true end
  local mod = require(module)
  local view = setmetatable({}, { __index = function(_, n)
    if listed[n] then return mod[n] end
    error(string.format("%s gives a rock no %s: the window is extension.lua's X.WINDOW (docs/architecture.md, "
      .. "\"What a rock may require of the core\")", module, tostring(n)), 2)
  end })
  rawset(X, name, view)
  return view
end })

-- X.find's module, else raises its error (at level: a wrong option of a call that raises).
function X.need(point, key, what, field, level)
  local mod, err = X.find(point, key, what, field)
  if mod then return mod end
  error(err, level and level + 1 or 2)
end

return X
