-- The store option (store = a URL or a table {url = ...}, docs/keep-and-fleet.md) as the core reads it: its scheme
-- only (extension.lua's ledger point); the ledger of that scheme parses the rest (its parse, its where), once for
-- a client (read, by config.lua).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension"

local M = {}

local function url_of(v) return type(v) == "table" and v.url or v end

-- The store option's URL (v: a URL or a table {url =}) without its user and password, for a person.
function M.hidden(v)
  return (tostring(url_of(v)):gsub("^(%a[%w+.-]*://)[^/@]*@", "%1***@"))
end

-- nil, or what is wrong with the store option's form (a URL of some scheme, alone or as a table's url; never a
-- password).  The rest is its ledger's to read (M.read).
function M.form(v)
  local url = url_of(v)
  if type(url) ~= "string" then return "store: a URL or a table {url = URL, ...} expected, got " .. type(url) end
  if not X.store_scheme(url) then
    return string.format("store %q: a URL of the form scheme://... expected", M.hidden(url))
  end
end

-- The store option read by the ledger of its scheme: point, its parse (or nil: a ledger that reads cfg.store
-- itself); false when no installed ledger serves the scheme (the client refuses it, naming the rock); nil, what
-- is wrong (never a password).
function M.read(v)
  local why = M.form(v)
  if why then return nil, why end
  local point = X.optional("ledger", X.store_scheme(url_of(v))) -- (the ledger point's module, not a ledger)
  if not point then return false end
  if not point.parse then return point end
  local ok, read = pcall(point.parse, v)
  if not ok then return nil, tostring(read) end
  return point, read
end

-- A client's store (cfg.store: the option when given, else $STARVIDEOS_STORE) read once, what its ledger read kept
-- for its ledger to open on (cfg.store_read); raises what is wrong at level, naming the option or the variable.
function M.keep(cfg, given, level)
  local point, read = M.read(cfg.store)
  if point == nil then
    error(string.format(given and "bad option 'store' to 'new' (%s)" or "bad STARVIDEOS_STORE (%s)", read), level)
  end
  cfg.store_read = point and read or nil
end

-- nil, or what is wrong with the store option v (its ledger's read, when installed).
function M.check(v)
  local ok, why = M.read(v)
  if ok == nil then return why end
end

-- The store as a person reads it (messages, hints): its ledger's where (never a password), else its URL with the
-- user and password hidden.
function M.where(v)
  local url = url_of(v)
  local point = type(url) == "string" and X.optional("ledger", X.store_scheme(url) or "")
  local ok, where = false, nil
  if point and point.where then ok, where = pcall(point.where, v) end
  return ok and where or M.hidden(url)
end

return M
