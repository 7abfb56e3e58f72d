-- starvideos: a client for the StarVideos asynchronous video-generation API.
-- This file is the module's face: starvideos.new, validate, models and the
-- default client.  The client itself is lua/starvideos/client.lua; the C core
-- (starvideos.core) validates requests and moves bytes with libcurl.

local core = require "starvideos.core"
local options = require "starvideos.options"
local Client = require "starvideos.client"
local journal = require "starvideos.journal"

local type, pairs, ipairs, next, tostring, setmetatable, error, string_format =
  type, pairs, ipairs, next, tostring, setmetatable, error, string.format
local argerror = options.argerror

local M = {
  _VERSION = "starvideos " .. options.VERSION,
  DEFAULT_BASE_URL = options.DEFAULT_BASE_URL,
  Client = Client,
  new_error = options.new_error,
}

-- starvideos.new(opts) -> client
M.new = Client.new

-- starvideos.validate(params) -> true | nil, err   (no network)
function M.validate(params)
  if type(params) ~= "table" then argerror(1, "validate", "table", type(params)) end
  local text, err = options.extra_json(params)
  if err then return nil, err end
  return core.validate(params, text)
end

-- The capability table, read-only.  Where the VM honours __pairs (5.2 and later)
-- it is a proxy that refuses every write; on 5.1 and LuaJIT, where a proxy could
-- not be iterated, a copy whose fields are read-only.
local pairs_honoured = false
for _ in pairs(setmetatable({}, { __pairs = function() return next, { true }, nil end })) do
  pairs_honoured = true
end

local function readonly(t, name)
  for k, v in pairs(t) do
    if type(v) == "table" then t[k] = readonly(v, name .. "." .. tostring(k)) end
  end
  local function refuse(_, k)
    error(string_format("%s is read-only (tried to set %s)", name, tostring(k)), 2)
  end
  if not pairs_honoured then return setmetatable(t, { __newindex = refuse, __metatable = false }) end
  return setmetatable({}, {
    __index = t, __newindex = refuse, __len = function() return #t end,
    __pairs = function() return next, t, nil end, __metatable = false,
    __ipairs = function() return ipairs(t) end, -- 5.2's ipairs does not follow __index
  })
end

M.models = readonly(core.models, "starvideos.models")

-- starvideos.pending(journal_path) -> the creates whose answer never came, each
-- {["local"]=, model=, prompt_hash=, time=} | nil, err   (no network)
function M.pending(path)
  if type(path) ~= "string" or path == "" then argerror(1, "pending", "journal path", type(path)) end
  local list, err, pending = journal.read(path)
  if not list then return nil, options.new_error("io", err, { field = "journal" }) end
  return pending
end

-- The default client, configured from the environment on first use.
local default_client
function M.default()
  if not default_client then default_client = Client.new() end
  return default_client
end

function M.create(params) return M.default():create(params) end
function M.query(id) return M.default():query(id) end
function M.wait(id, opts) return M.default():wait(id, opts) end

return M
