-- starvideos: a client for the StarVideos asynchronous video-generation API.
-- The C module starvideos.core validates and speaks HTTP (libcurl); this file
-- is the public face: clients, create / query / wait, errors, the default client.
-- Workflows (download, generate, wait_all, journal, jobs) live in sibling modules
-- and extend the same Client class.

local core = require "starvideos.core"
local journal = require "starvideos.journal"

local type, pairs, ipairs, tostring, setmetatable, error, next =
  type, pairs, ipairs, tostring, setmetatable, error, next
local math_type, math_min, os_getenv, string_format = math.type, math.min, os.getenv, string.format
local core_sleep = core.sleep

local M = { _VERSION = "starvideos 0.1.0" }

M.DEFAULT_BASE_URL = "https://zcbservice.aizfw.cn/kyyReactApiServer"

-- ------------------------------------------------------------------ errors

local error_mt = core.error_mt

-- new_error(kind, message, fields): an error object like the core's.
local function new_error(kind, message, fields)
  local e = fields or {}
  e.kind, e.message = kind, message
  return setmetatable(e, error_mt)
end
M.new_error = new_error

-- ------------------------------------------------------ the models table

local function readonly(t, name)
  local proxy = {}
  for k, v in pairs(t) do
    if type(v) == "table" then t[k] = readonly(v, name .. "." .. tostring(k)) end
  end
  return setmetatable(proxy, {
    __index = t,
    __newindex = function(_, k)
      error(string_format("%s is read-only (tried to set %s)", name, tostring(k)), 2)
    end,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
end

M.models = readonly(core.models, "starvideos.models")

-- validate(params) -> true | nil, err   (no network)
function M.validate(params)
  if type(params) ~= "table" then
    error("bad argument #1 to 'validate' (table expected, got " .. type(params) .. ")", 2)
  end
  return core.validate(params)
end

-- ------------------------------------------------------------------ client

local Client = {}
Client.__index = Client
M.Client = Client

-- option name -> checker(value) returning an error text or nil
local function positive(v) if type(v) ~= "number" or v ~= v or v <= 0 then return "a positive number" end end
local function nonneg_int(v) if math_type(v) ~= "integer" or v < 0 then return "a whole number >= 0" end end
local function pos_int(v) if math_type(v) ~= "integer" or v < 1 then return "a whole number >= 1" end end
local function str(v) if type(v) ~= "string" then return "a string" end end
local function fn(v) if type(v) ~= "function" then return "a function" end end
local function url(v)
  if type(v) ~= "string" or not (v:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#%s]")) then return "an http(s) URL" end
end
local function nonneg(v) if type(v) ~= "number" or v ~= v or v < 0 then return "a number >= 0" end end
M._checkers = { positive = positive, nonneg_int = nonneg_int, pos_int = pos_int, str = str, fn = fn,
  url = url, nonneg = nonneg }

local OPTIONS = {
  api_key = str, base_url = url, timeout = positive, connect_timeout = positive,
  max_retries = nonneg_int, journal = str, sleep = fn, on_event = fn, ca_file = str,
  max_connections = pos_int, retry_backoff = nonneg, max_retry_wait = nonneg,
  user_agent = str, requests_per_second = positive,
}

local function check_options(opts, where, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string_format("bad argument to '%s' (options table expected, got %s)", where, type(opts)), 3)
  end
  for k, v in pairs(opts) do
    local check = known[k]
    if not check then
      error(string_format("bad option to '%s': unknown option '%s'", where, tostring(k)), 3)
    end
    local want = check(v)
    if want then
      error(string_format("bad option '%s' to '%s' (%s expected, got %s)", k, where, want,
        type(v) == "string" and string_format("%q", v) or tostring(v)), 3)
    end
  end
  return opts
end
M._check_options = check_options

-- starvideos.new(opts) -> client
function M.new(opts)
  opts = check_options(opts, "new", OPTIONS)
  local key = opts.api_key or os_getenv("STARVIDEOS_API_KEY")
  if key == "" then key = nil end
  local base = opts.base_url or os_getenv("STARVIDEOS_BASE_URL")
  if base == nil or base == "" then base = M.DEFAULT_BASE_URL end
  if url(base) then
    error(string_format("bad base URL %q (an http(s) URL expected; check STARVIDEOS_BASE_URL)", base), 2)
  end
  base = base:gsub("/+$", "")
  local self = setmetatable({
    base_url = base,
    timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout or 10,
    max_retries = opts.max_retries or 2,
    max_connections = opts.max_connections or 16,
    journal = opts.journal,
    sleep = opts.sleep,
    on_event = opts.on_event,
    requests_per_second = opts.requests_per_second,
    jobs = {},
  }, Client)
  -- the key lives in the C client only: never in a Lua table a user might print;
  -- without one, the C client refuses every API request before sending it
  self._c = core.new_client {
    base_url = base, api_key = key or "", ca_file = opts.ca_file,
    user_agent = opts.user_agent or (M._VERSION:gsub(" ", "/") .. " (Lua)"),
    timeout = self.timeout, connect_timeout = self.connect_timeout,
    max_retries = self.max_retries, max_connections = self.max_connections,
    retry_backoff = opts.retry_backoff, max_retry_wait = opts.max_retry_wait,
  }
  return self
end

function Client:close()
  if self._c then self._c:close() end
end
Client.__close = Client.close

function Client:__tostring()
  return string_format("starvideos client (%s)", self.base_url)
end

-- on_event(event) for request / response / retry events from the core, and the
-- status / progress events of the helpers.
function Client:_emit(ev)
  local f = self.on_event
  if f then f(ev) end
end

function Client:_flush_events()
  local evs = self._c:events()
  if self.on_event then
    for _, ev in ipairs(evs) do self.on_event(ev) end
  end
end

-- Let up to `wait` seconds pass while the transfers make progress.  With a
-- sleep function (a coroutine scheduler's), never block inside libcurl:
-- perform(0), then sleep.  While transfers run, come back within 0.25 s so
-- progress and deadlines stay live; a finished transfer ends the wait early.
function Client:_pause(wait, sleep)
  local c = self._c
  local busy = c:active() > 0
  if busy then wait = math_min(wait, 0.25) end
  if sleep then
    c:perform(0)
    sleep(busy and math_min(wait, 0.01) or wait)
  elseif busy then
    c:perform(wait)
  elseif wait > 0 then
    core_sleep(wait)
  end
end

-- Drive the transfers until req is done.
function Client:_run(req)
  while not req:done() do
    self:_pause(0.25, self.sleep)
    self:_flush_events()
  end
  self:_flush_events()
  return req:result()
end

local function task_id(v, where)
  if type(v) == "string" then return v end
  if type(v) == "table" and type(v.id) == "string" then return v.id end
  error(string_format("bad argument #1 to '%s' (task id or task table expected, got %s)", where,
    type(v) == "table" and "a table without an id" or type(v)), 3)
end
M._task_id = task_id

-- A paid task is on disk before create returns; when it cannot be, the caller
-- still gets the id in the error.
function Client:_journal_created(task, params)
  if not self.journal then return true end
  local ok, err = journal.append(self.journal, {
    event = "created", id = task.id, model = params.model, prompt = params.prompt })
  if ok then return true end
  return nil, new_error("io", string_format("task %s was created but %s", task.id, err),
    { task = task, id = task.id, field = "journal" })
end

-- A create that failed after the server may have taken it, with the task's id
-- read from the garbled answer: journalled too, so resume can still find it.
function Client:_journal_maybe(err, params)
  if self.journal and err.maybe_created and type(err.id) == "string" then
    journal.append(self.journal, { event = "created", id = err.id, model = params.model,
      prompt = params.prompt, uncertain = true })
  end
end

-- client:create(params) -> task | nil, err
function Client:create(params)
  if type(params) ~= "table" then
    error("bad argument #1 to 'create' (table expected, got " .. type(params) .. ")", 2)
  end
  local req, err = self._c:create(params)
  if not req then return nil, err end
  local task
  task, err = self:_run(req)
  req:close()
  if not task then
    self:_journal_maybe(err, params)
    return nil, err
  end
  local ok, jerr = self:_journal_created(task, params)
  if not ok then return nil, jerr end
  self:_emit { type = "status", id = task.id, status = task.status, task = task }
  return task
end

-- client:query(id) -> task | nil, err
function Client:query(id)
  id = task_id(id, "query")
  local req, err = self._c:query(id)
  if not req then return nil, err end
  local task
  task, err = self:_run(req)
  req:close()
  if not task then err.id = id end
  return task, err
end

-- Errors after which polling again cannot help.
M._FATAL = { auth = true, not_found = true, invalid_request = true, io = true }

-- ---------------------------------------------------------- default client

local default_client
local function default()
  if not default_client then default_client = M.new() end
  return default_client
end
M.default = default

function M.create(params) return default():create(params) end
function M.query(id) return default():query(id) end
function M.wait(id, opts) return default():wait(id, opts) end

-- jobs and the workflows built on them extend the Client class
require("starvideos.jobs").install(M, Client)
require("starvideos.workflows").install(M, Client)

return M
