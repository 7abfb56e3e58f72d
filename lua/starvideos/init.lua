--- starvideos: a client for the StarVideos asynchronous video-generation API.
-- This file is the module's face: starvideos.new, validate, models and the
-- default client.  The client itself is lua/starvideos/client.lua, a handle on
-- its key's engine (engine.lua) and its ledger (ledger.lua); the C core
-- (starvideos.core) validates requests and moves bytes with libcurl.
--
--     local starvideos = require "starvideos"
--     local client = starvideos.new { api_key = os.getenv "STARVIDEOS_API_KEY" }
--     local task = assert(client:generate({ model = "videos", prompt = "A kitten on a meadow",
--       duration = 5 }, { out = "kitten.mp4" }))
--
-- Errors are tables: `err.kind` is one of `invalid_request`, `auth`, `not_found`,
-- `rate_limited`, `server`, `network`, `timeout`, `task_failed`, `protocol`, `io`,
-- with `message`, `field`, `status`, `retry_after`, `task`, `id` and
-- `maybe_created`; `tostring(err)` is one readable line, and the API key is never
-- in it.
-- @module starvideos

local core = require "starvideos.core"
local options = require "starvideos.options"
local Client = require "starvideos.client"
local journal = require "starvideos.journal" -- (ledger.lua's too)

local type, pairs, ipairs, next, tostring, tonumber, setmetatable, error, string_format =
  type, pairs, ipairs, next, tostring, tonumber, setmetatable, error, string.format
local argerror = options.argerror

local M = {
  _VERSION = "starvideos " .. options.VERSION,
  DEFAULT_BASE_URL = options.DEFAULT_BASE_URL,
  Client = Client,
  new_error = options.new_error,
}

--- A new client.  Every option is checked: a wrong type or value raises.
-- @function new
-- @tparam[opt] table opts
--
-- * `api_key`: default `$STARVIDEOS_API_KEY`; it lives in the transport only
-- * `base_url`: http(s) only; default `$STARVIDEOS_BASE_URL`, else `DEFAULT_BASE_URL`
-- * `timeout` (30), `connect_timeout` (10): seconds, one HTTP exchange
-- * `max_retries` (2): retries of one request (0 to 10)
-- * `journal`: a file path; every create is recorded there (see `client:resume`)
-- * `store`: `"redis://[:password@]host:port[/db]"` (default `$STARVIDEOS_STORE` when no
--   `journal` is given): the
--   ledger is then Redis' (lua/starvideos/ledger_redis.lua: the records, leases and
--   learned samples of every process and host using it), and so is the key's budget of
--   `requests_per_second`; a client has one ledger, so `journal` and `store` together
--   raise, naming both.  Redis failing: creates are refused before sending (`kind ==
--   "io"`, `field == "store"`), created tasks go on under this process's own budget,
--   their records queued until Redis answers
-- * `sleep`: `function(seconds)`, every pause goes through it (a coroutine scheduler's)
-- * `on_event`: `function(event)`, for `status`, `progress`, `request`, `response`, `retry`,
--   `warning` (`{type = "warning", message = ...}`: said once, e.g. a store that stopped
--   answering, or one whose `appendfsync` is not `always`)
-- * `ca_file`: CA bundle for https
-- * `max_connections` (16: API requests and downloads together; each download has its own
--   thread and connection, and one connection is always left to API requests, so with 1 a
--   download and an API request may both be open), `requests_per_second` (10, polls of all
--   tasks of the key together),
--   `min_interval` (5, the closest two polls of one task; never above `interval`), `interval` (30: the polls'
--   spacing until the learned schedule knows better, and the number of polls per task
--   that schedule spends, see `client:wait`), `retry_backoff` (0.5),
--   `max_retry_wait` (60), `user_agent`
-- * `transport`: a transport table (lua/starvideos/transport.lua) in place of libcurl's
--
-- Clients of one key share an engine (lua/starvideos/engine.lua): every client of one
-- (`base_url`, `api_key`) in a process shares one budget of `requests_per_second`, one set
-- of `max_connections`, one learned schedule and one transport (inside nginx: the budget,
-- the schedule and the connections of every request of the worker; with `lua_shared_dict
-- starvideos <size>;` declared, the budget of every worker of the host).  Where live
-- clients of a key ask for different values, the key gets the smallest
-- `requests_per_second` and the smallest `max_connections` any of them asked for (the
-- strictest: the service limits the key), worked out again whenever a client is made,
-- closed or collected.  `connect_timeout`, `ca_file` and `user_agent` stay each client's
-- own and go with each of its exchanges; so does every other option.  A `transport`
-- given in the options keeps an engine of its own.  `client:close()` cancels that
-- client's jobs only; the engine's last client closes the transport.
-- @treturn starvideos.client the client
M.new = Client.new

--- Check a request against its model's rules, with no network.
-- @tparam table params what `client:create` takes: `model`, `prompt`, `duration`,
-- `ratio`, `resolution`, `first_image`, `last_image`, `referenceImages`,
-- `referenceVideos`, `referenceAudios`, `extra`
-- @return `true`, or `nil` and an error (`kind` `invalid_request`, `field` the culprit)
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

--- The capability table of the five models, read-only: for each model name, what
-- it accepts (`duration`, `ratios`, `resolutions`, `max_images`, `max_videos`,
-- `max_audios`, `prompt_max`, ...) and its `endpoint`.  Writing to it raises.
-- @table models
M.models = readonly(core.models, "starvideos.models")

--- The file name (without folder or ".mp4") that `resume`, `wait_all`'s `out_dir`
-- and the command line's `download ID DIR` give a task's video: different ids give
-- different names, within the file system's 255 bytes (`A-Z a-z 0-9 - _ .` kept,
-- other bytes as `%XX`; a long id cut, with a hash of the whole).
-- @string id a task id
-- @treturn string
M.file_name = journal.file_name

--- The creates of a journal whose answer never came (the task may exist, and be
-- paid for), with no network.
-- @string path the journal file
-- @return a list of `{["local"]=, model=, prompt_hash=, time=}`, or `nil` and an error
function M.pending(path)
  if type(path) ~= "string" or path == "" then argerror(1, "pending", "journal path", type(path)) end
  local list, err, pending = journal.read(path)
  if not list then return nil, options.new_error("io", err, { field = "journal" }) end
  return pending
end

-- A webhook header's value, named in any case: a string, nil when absent; a
-- header sent more than once (ngx.req.get_headers gives a list) joined by
-- spaces, which only webhook-signature may be.
local function header(headers, name)
  local found
  for k, v in pairs(headers) do
    if type(k) == "string" and k:lower() == name then
      if type(v) == "table" then
        for _, x in ipairs(v) do
          if type(x) ~= "string" then return nil, "not a string" end
        end
        if #v > 1 and name ~= "webhook-signature" then return nil, "sent more than once" end
        v = table.concat(v, " ")
      end
      if type(v) ~= "string" then return nil, "not a string" end
      if found then return nil, "sent more than once" end
      found = v
    end
  end
  return found
end

local function refused(name, what)
  return nil, options.new_error("invalid_request", name .. ": " .. what, { field = name })
end

--- Check a webhook signed as Standard Webhooks (the events `notify` sends, or any
-- sender's): `webhook-id`, `webhook-timestamp` within `tolerance` seconds of now,
-- and one of the `v1,<base64>` values of `webhook-signature` (HMAC-SHA256 of
-- "id.timestamp.body", compared in constant time in C).  Header names in any case.
-- @string secret `whsec_<base64 key>`, or the key's bytes
-- @tparam table headers name -> value (ngx.req.get_headers() as it is)
-- @string body the raw body, before any JSON decoding
-- @tparam[opt] table opts `tolerance` (seconds, default 300)
-- @return `true`, or `nil` and an error (kind `invalid_request`, `field` the header or `secret`)
function M.verify_webhook(secret, headers, body, opts)
  if type(secret) ~= "string" then argerror(1, "verify_webhook", "string", type(secret)) end
  if type(headers) ~= "table" then argerror(2, "verify_webhook", "table", type(headers)) end
  if type(body) ~= "string" then argerror(3, "verify_webhook", "string", type(body)) end
  if opts ~= nil and type(opts) ~= "table" then argerror(4, "verify_webhook", "table or nil", type(opts)) end
  local tolerance = opts and opts.tolerance or 300
  if type(tolerance) ~= "number" or tolerance ~= tolerance or tolerance < 0 then
    argerror(4, "verify_webhook", "tolerance: seconds, not below 0", tostring(tolerance))
  end
  local values = {}
  for _, name in ipairs { "webhook-id", "webhook-timestamp", "webhook-signature" } do
    local v, bad = header(headers, name)
    if bad then return refused(name, bad) end
    if not v or v == "" then return refused(name, "missing") end
    values[#values + 1] = v
  end
  local id, ts, signatures = values[1], values[2], values[3]
  if not ts:find("^%d+$") or #ts > 15 then return refused("webhook-timestamp", "not a whole number of seconds") end
  local off = tonumber(ts) - os.time()
  if off > tolerance or -off > tolerance then
    return refused("webhook-timestamp", string_format("%d s %s now, outside the tolerance of %g s",
      off < 0 and -off or off, off < 0 and "before" or "after", tolerance))
  end
  local ok, err = options.sign.match(secret, id, ts, body, signatures)
  if ok == nil then return nil, err end
  if not ok then
    return refused("webhook-signature",
      "no v1 signature matches the body (a changed body or signature, or another secret)")
  end
  return true
end

-- The default client, configured from the environment on first use.
local default_client
--- The default client, made by `new` from the environment
-- (`STARVIDEOS_API_KEY`, `STARVIDEOS_BASE_URL`) on first use.
-- @treturn starvideos.client
function M.default()
  if not default_client then default_client = Client.new() end
  return default_client
end

--- `client:create` on the default client.
-- @tparam table params
function M.create(params) return M.default():create(params) end
--- `client:query` on the default client.
-- @param id a task id or task
function M.query(id) return M.default():query(id) end
--- `client:wait` on the default client.
-- @param id a task id or task
-- @tparam[opt] table opts
function M.wait(id, opts) return M.default():wait(id, opts) end

return M
