-- starvideos: the module's face; the client is client.lua, every call in docs/reference.md.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local Create = require "starvideos.create"
local errors = require "starvideos.errors"
local Client = require "starvideos.client"
-- (the journal's records, records/journal.lua, loaded at their first use: a client with no journal reads none)
local function journal() return require "starvideos.records.journal" end

local argerror, new_error = errors.argerror, errors.new_error

local M = {
  _VERSION = "starvideos " .. config.VERSION,
  DEFAULT_BASE_URL = config.DEFAULT_BASE_URL,
  Client = Client,
  new = Client.new,
  new_error = new_error,
}

-- Check a request against its model's rules, with no network.
function M.validate(params)
  if type(params) ~= "table" then argerror(1, "validate", "table", type(params)) end
  local text, err = Create.extra_json(params)
  if err then return nil, err end
  return core.validate(params, text)
end

-- The capability table, read-only: a proxy refusing every write where the VM honours
-- __pairs (5.2 and later), else (5.1, LuaJIT) the table with its fields read-only.
local pairs_honoured = select(2, pairs(setmetatable({}, { __pairs = function() return next, true end }))) == true

local function readonly(t, name)
  for k, v in pairs(t) do
    if type(v) == "table" then t[k] = readonly(v, name .. "." .. tostring(k)) end
  end
  local function refuse(_, k)
    error(string.format("%s is read-only (tried to set %s)", name, tostring(k)), 2)
  end
  if not pairs_honoured then return setmetatable(t, { __newindex = refuse, __metatable = false }) end
  return setmetatable({}, {
    __index = t, __newindex = refuse, __len = function() return #t end,
    __pairs = function() return next, t, nil end, __metatable = false,
    __ipairs = function() return ipairs(t) end, -- 5.2's ipairs does not follow __index
  })
end

M.models = readonly(core.models, "starvideos.models")

-- The file name a batch gives a task's video (names.lua's).
M.file_name = require("starvideos.names").file_name

-- An Ed25519 private key in PEM read now, for new's provenance = {sign_key = KEY} (signer.lua, loaded at its first
-- use): before any client, where no client may be made (nginx's init_by_lua).
function M.sign_key(path) return require("starvideos.signer").read(path) end

-- The creates of a journal whose answer never came, with no network.
function M.pending(path)
  if type(path) ~= "string" or path == "" then argerror(1, "pending", "journal path", type(path)) end
  local list, err, pending = journal().read(path)
  if not list then return nil, new_error("io", err, { field = "journal" }) end
  return pending
end

-- A webhook header's value, named in any case (nil when absent); one sent more than
-- once (a list, from ngx.req.get_headers) joined by spaces: only webhook-signature may be.
local function header(headers, name)
  local values = {}
  for k, v in pairs(headers) do
    if type(k) == "string" and k:lower() == name then
      for _, x in ipairs(type(v) == "table" and v or { v }) do
        if type(x) ~= "string" then return nil, "not a string" end
        values[#values + 1] = x
      end
    end
  end
  if #values > 1 and name ~= "webhook-signature" then return nil, "sent more than once" end
  return values[1] and table.concat(values, " ")
end

local function refused(name, what) return nil, new_error("invalid_request", name .. ": " .. what, { field = name }) end

-- Check a webhook signed as Standard Webhooks (compared in constant time, starvideos.sign).
function M.verify_webhook(secret, headers, body, opts)
  if type(secret) ~= "string" then argerror(1, "verify_webhook", "string", type(secret)) end
  if type(headers) ~= "table" then argerror(2, "verify_webhook", "table", type(headers)) end
  if type(body) ~= "string" then argerror(3, "verify_webhook", "string", type(body)) end
  if opts ~= nil and type(opts) ~= "table" then argerror(4, "verify_webhook", "table or nil", type(opts)) end
  local tolerance = opts and opts.tolerance or config.DEFAULTS.tolerance
  if type(tolerance) ~= "number" or tolerance ~= tolerance or tolerance < 0 then
    argerror(4, "verify_webhook", "tolerance: seconds, not below 0", tostring(tolerance))
  end
  local values = {}
  for _, name in ipairs { "webhook-id", "webhook-timestamp", "webhook-signature" } do
    local v, bad = header(headers, name)
    if bad or not v or v == "" then return refused(name, bad or "missing") end
    values[#values + 1] = v
  end
  local id, ts, signatures = values[1], values[2], values[3]
  if not ts:find("^%d+$") or #ts > 15 then return refused("webhook-timestamp", "not a whole number of seconds") end
  local off = tonumber(ts) - os.time()
  if off > tolerance or -off > tolerance then
    return refused("webhook-timestamp", string.format("%d s %s now, outside the tolerance of %g s",
      off < 0 and -off or off, off < 0 and "before" or "after", tolerance))
  end
  local ok, err = require("starvideos.notify_option").sign().match(secret, id, ts, body, signatures)
  if ok == nil then return nil, err end
  if not ok then
    return refused("webhook-signature",
      "no v1 signature matches the body (a changed body or signature, or another secret)")
  end
  return true
end

-- The default client, made by `new` from the environment on first use.
local default_client
function M.default()
  if not default_client then default_client = Client.new() end
  return default_client
end

function M.create(params) return M.default():create(params) end
function M.query(id) return M.default():query(id) end
function M.wait(id, opts) return M.default():wait(id, opts) end

return M
