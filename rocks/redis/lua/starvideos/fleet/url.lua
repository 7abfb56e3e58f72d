-- A store's URL or table form read (CONTRACT.md's "Redis as operators run it"; docs/keep-and-fleet.md): the
-- URL by starvideos.fleet.native's store_url (this rock's C: rocks/redis/csrc/url.c, fuzzed), the table's fields here:
-- the Redis ledger's own parse (the core reads a store URL's scheme only: extension.lua), for ledger/redis.lua's
-- parse and where and the store.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local native = require "starvideos.fleet.native"

local M = {}

local function show(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end

-- The store's forms, by scheme (docs/keep-and-fleet.md#connecting), for what a refusal expected.
local STORE_FORMS = {
  redis = "redis://[[user]:password@]host[:port][/db]", rediss = "rediss://[[user]:password@]host[:port][/db]",
  unix = "unix://[[user]:password@]/path/redis.sock[?db=N]",
  ["redis+sentinel"] = "redis+sentinel://[[user]:password@]h1[:p1][,h2[:p2]...]/service[/db]",
  ["rediss+sentinel"] = "rediss+sentinel://[[user]:password@]h1[:p1][,h2[:p2]...]/service[/db]",
  ["redis+cluster"] = "redis+cluster://[[user]:password@]h1[:p1][,h2[:p2]...]",
  ["rediss+cluster"] = "rediss+cluster://[[user]:password@]h1[:p1][,h2[:p2]...]",
}

-- The table form's fields besides url: the check of each (nil: fine, else what was expected), and the forms
-- it goes with (tls: rediss..., sentinel: ...+sentinel://).
local function readable(v)
  if type(v) ~= "string" or v == "" then return "a file name" end
  local f, err = io.open(v, "rb")
  if not f then return "a file that can be read (" .. tostring(err) .. ")" end
  f:close()
end
local function bool(v) if type(v) ~= "boolean" then return "true or false" end end
local function replicas(v)
  if type(v) ~= "number" or v ~= math.floor(v) or v < 0 or v > 100 then return "a whole number from 0 to 100" end
end
local function seconds(v)
  if type(v) ~= "number" or not (v > 0 and v <= 60) then return "a number of seconds in (0, 60]" end
end
local function text(v) if type(v) ~= "string" or v == "" then return "a non-empty string" end end
local STORE_FIELDS = {
  ca_file = { readable, "tls" }, cert_file = { readable, "tls" }, key_file = { readable, "tls" },
  verify = { bool, "tls" }, server_name = { text, "tls" },
  sentinel_user = { text, "sentinel" }, sentinel_password = { text, "sentinel" },
  replicas = { replicas }, replica_timeout = { seconds }, key_locking = { bool },
}
M.FIELDS = STORE_FIELDS -- the table form's fields (tools/types.lua: the annotations)

local function unescape(v) return v and (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

-- A URL refused: raises naming `store` (field: "store.url" in a table), never the password.
local function bad_url(field, url, why)
  local at = type(url) == "string" and url:match(".*()@")
  local scheme = type(url) == "string" and url:match("^(%a[%w+.-]*)://")
  local shown = at and (scheme and scheme .. "://" or "") .. "***" .. url:sub(at) or tostring(url)
  local form = STORE_FORMS[tostring(scheme):lower()]
  error(string.format("%s %q: %s%s", field, shown, why, form and " (expected " .. form .. ")" or ""), 0)
end

-- The table form's fields checked into cfg (raises naming store.FIELD).
local function store_fields(v, cfg)
  for k, val in pairs(v) do
    local f = STORE_FIELDS[k]
    if k ~= "url" and not f then
      error(string.format("store: no field %s (url, ca_file, cert_file, key_file, verify, server_name, "
        .. "sentinel_user, sentinel_password, replicas, replica_timeout, key_locking)", show(k)), 0)
    end
    local want = f and f[1](val)
    if want then error(string.format("store.%s: expected %s, got %s", k, want, show(val)), 0) end
    if f and f[2] == "tls" and not cfg.tls then
      error(string.format("store.%s: for TLS only, and %s is not rediss://", k, cfg.where), 0)
    end
    if f and f[2] == "sentinel" and cfg.kind ~= "sentinel" then
      error(string.format("store.%s: for Sentinel only, and %s is not redis+sentinel://", k, cfg.where), 0)
    end
    if f then cfg[k] = val end
  end
  if (cfg.cert_file == nil) ~= (cfg.key_file == nil) then
    error("store: cert_file and key_file go together (a client certificate and its key)", 0)
  end
  if cfg.sentinel_user and not cfg.sentinel_password then error("store.sentinel_user: needs sentinel_password", 0) end
end

-- store = a URL (STORE_FORMS) or {url =, ca_file =, cert_file =, key_file =, verify =, server_name =,
-- sentinel_user =, sentinel_password =, replicas =, replica_timeout =} -> native.store_url's table with the
-- table's fields, user and password unescaped, verify (true unless false), replicas and replica_timeout
-- (DEFAULTS'), and id: what a connection may be shared by (the endpoints, db, TLS settings, users and
-- passwords: a key, never shown).  A bad one raises, naming `store`, never a password.  A table this returned is
-- returned as it is (a client's store is parsed once, by its config: store_option.read).
local PARSED = {} -- (the metatable of a parse's table: parsed once, passed on whole)

function M.parse(v)
  if getmetatable(v) == PARSED then return v end
  local config = X.config
  local url, field = v, "store"
  if type(v) == "table" then url, field = v.url, "store.url" end
  local cfg, why = nil, "a URL or a table {url = URL, ...} expected, got " .. type(url)
  if type(url) == "string" then cfg, why = native.store_url(url) end
  if not cfg then bad_url(field, url, why) end
  cfg.user, cfg.password = unescape(cfg.user), unescape(cfg.password)
  if type(v) == "table" then store_fields(v, cfg) end
  cfg.verify = cfg.verify ~= false
  cfg.replicas = cfg.replicas or config.DEFAULTS.replicas
  cfg.replica_timeout = cfg.replica_timeout or config.DEFAULTS.replica_timeout
  local id = { cfg.where, tostring(cfg.verify) }
  for _, k in ipairs { "user", "password", "ca_file", "cert_file", "key_file", "server_name", "sentinel_user",
    "sentinel_password" } do
    id[#id + 1] = cfg[k] or ""
  end
  cfg.id = table.concat(id, "\0")
  return setmetatable(cfg, PARSED)
end

return M
