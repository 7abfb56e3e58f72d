-- The store option (store = a URL or a table {url = ...}, docs/keep-and-fleet.md) as the core reads it: its scheme
-- only (extension.lua's ledger point); the ledger of that scheme parses the rest (its check, its where).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension"

local M = {}

-- A URL without its user and password, for a person.
local function hidden(url)
  return (tostring(url):gsub("^(%a[%w+.-]*://)[^/@]*@", "%1***@"))
end

-- nil, or what is wrong with the store option v (never a password).  A scheme no installed ledger serves passes
-- here: the client refuses it, naming the rock (client.lua's extensions).
function M.check(v)
  local url = type(v) == "table" and v.url or v
  if type(url) ~= "string" then return "store: a URL or a table {url = URL, ...} expected, got " .. type(url) end
  local scheme = X.store_scheme(url)
  if not scheme then return string.format("store %q: a URL of the form scheme://... expected", hidden(url)) end
  local point = X.optional("ledger", scheme) -- (the ledger point's module, not a ledger)
  if point and point.check then return point.check(v) end
end

-- The store as a person reads it (messages, hints): its ledger's where (never a password), else its URL with the
-- user and password hidden.
function M.where(v)
  local url = type(v) == "table" and v.url or v
  local point = type(url) == "string" and X.optional("ledger", X.store_scheme(url) or "")
  local ok, where = false, nil
  if point and point.where then ok, where = pcall(point.where, v) end
  return ok and where or hidden(url)
end

return M
