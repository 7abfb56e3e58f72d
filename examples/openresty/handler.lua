-- starvideos inside nginx: the handlers examples/openresty/nginx.conf names.
-- Nothing here is nginx-specific in the library's use: starvideos.new picks
-- the transport on nginx's own sockets by itself, and a client waiting yields
-- the worker, which keeps serving other requests meanwhile.
--
--   GET /generate?prompt=...[&model=&duration=&ratio=&resolution=&interval=]
--       create, wait, download into $starvideos_dir; answers the task as JSON
--   GET /start?prompt=...   answers 202 at once; a timer (ngx.timer.at) generates
--   GET /jobs?id=N          how that background job is doing
--   GET /metrics            every worker's metrics, in Prometheus's text format
--
-- With $starvideos_journal set, every create is recorded there first: a task
-- paid for is never lost, even when nginx stops while it waits.
-- A failure answers {"error": message, "kind": kind, "id": task id, "field": ..., "reason": ..., "input": ...}
-- with the status STATUS names; a failed background job is logged.

local starvideos = require "starvideos"
-- The JSON of the answers keeps "/" as it is ("s3://b/k.mp4", not "s3:\/\/b\/k.mp4"), from a cjson of its
-- own (the host's shared one left as it was): OpenResty's cjson has the switch; Debian's lua-cjson escapes
-- every "/", and its "\/" is undone (each "/" of its output is escaped, so each "\/" is one).
local cjson = require("cjson.safe").new()
local encode = cjson.encode
if cjson.encode_escape_forward_slash then
  cjson.encode_escape_forward_slash(false)
else
  encode = function(v)
    local text, err = cjson.encode(v)
    if not text then return nil, err end
    return (text:gsub("\\/", "/"))
  end
end

local ngx = rawget(_G, "ngx")
local tonumber, tostring, type, math_ceil = tonumber, tostring, type, math.ceil

local M = {}

-- The HTTP status answering each error kind (examples/openresty/README.md).
-- Only a bad request is the caller's doing; the service's refusals and
-- failures are a bad gateway; the disk is this server's own.
M.STATUS = {
  invalid_request = 400, -- a parameter is wrong: the message names it, nothing was sent
  rate_limited = 429,    -- the key's budget (or create_limit) is spent: Retry-After when known
  timeout = 504,         -- the task did not complete in time: its id is in the answer
  io = 500,              -- the video or the journal could not be written here
  auth = 502,            -- the service refused nginx's key: a fault of this server's setup
  not_found = 502,       -- the service lost a task it had given us (no id comes from the caller)
  task_failed = 502,     -- the service failed the task: its message says why
  server = 502, network = 502, protocol = 502,
}

local function reply(status, t)
  ngx.status = status
  ngx.header.content_type = "application/json"
  ngx.say(encode(t))
end

-- A failure's answer: its kind's status, and what the caller needs to act.
local function fail(err)
  if err.retry_after then ngx.header["Retry-After"] = tostring(math_ceil(err.retry_after)) end
  return reply(M.STATUS[err.kind] or 502, { error = err.message, kind = err.kind, field = err.field, id = err.id,
    reason = err.reason, input = err.input }) -- (reason: a failed task's, a refused create's: docs/failures.md)
end

-- The request's generation parameters and poll interval, from its query; or
-- nil, err for a request that cannot be sent (before anything is paid for).
local function params()
  local a = ngx.req.get_uri_args()
  local p = { model = a.model or "videos", prompt = a.prompt, duration = a.duration or 5,
    ratio = a.ratio, resolution = a.resolution }
  p.duration = tonumber(p.duration) or p.duration -- "abc" stays a string, for validate to name
  local interval = a.interval and tonumber(a.interval)
  if a.interval and not (interval and interval > 0) then
    return nil, { kind = "invalid_request", field = "interval",
      message = "interval: expected seconds between polls, got " .. encode(a.interval) }
  end
  local ok, err = starvideos.validate(p)
  if not ok then return nil, err end
  return p, interval or 10
end

-- Where the video goes: $starvideos_dir (relative to nginx's prefix), named
-- after the request.
local function in_prefix(path)
  if path and path:sub(1, 1) ~= "/" then path = ngx.config.prefix() .. path end
  return path
end

local function out_path()
  return in_prefix(ngx.var.starvideos_dir) .. "/" .. ngx.var.request_id .. ".mp4"
end

-- A client: the key and base URL from STARVIDEOS_API_KEY / _BASE_URL (the
-- `env` lines of nginx.conf); the journal, when $starvideos_journal is set.
local function client()
  return starvideos.new { journal = in_prefix(ngx.var.starvideos_journal) }
end

local function task_json(task, path)
  return { id = task.id, status = task.status, model = task.model, video_url = task.video_url, path = path }
end

-- GET /generate: the whole generation within this request.
function M.generate()
  local p, interval = params()
  if not p then return fail(interval) end
  local out = out_path()
  local c = client()
  local task, err = c:generate(p, { out = out, interval = interval, timeout = 900 })
  c:close()
  if not task then return fail(err) end
  return reply(200, task_json(task, out))
end

-- Background jobs, in a shared dict so that every worker can report them.
local function save(n, t)
  ngx.shared.starvideos_jobs:set(tostring(n), encode(t))
end

local function background(premature, n, p, interval, out, journal)
  if premature then return end -- nginx is shutting down; the journal has any task created
  local c = starvideos.new { journal = journal }
  local task, err = c:generate(p, { out = out, interval = interval, timeout = 1800,
    on_progress = function(ev)
      if ev.type == "status" then save(n, { state = "waiting", id = ev.id, status = ev.status }) end
    end })
  c:close()
  if task then
    return save(n, { state = "done", task = task_json(task, out) })
  end
  save(n, { state = "failed", error = err.message, kind = err.kind, id = err.id, reason = err.reason,
    input = err.input })
  -- nobody may ask /jobs again: the error log keeps it, with the task's id
  local id = err.id or (err.maybe_created and "unknown (it may exist: starvideos pending)" or "none created")
  ngx.log(ngx.ERR, "starvideos: background job ", n, " failed: task ", id, ", ", err.kind, ": ", err.message)
end

-- GET /start: a job in a timer, which outlives this request.
function M.start()
  local p, interval = params()
  if not p then return fail(interval) end
  local n = ngx.shared.starvideos_jobs:incr("count", 1, 0)
  save(n, { state = "starting" })
  local ok, err = ngx.timer.at(0, background, n, p, interval, out_path(), in_prefix(ngx.var.starvideos_journal))
  if not ok then return reply(503, { error = "cannot start the job: " .. tostring(err) }) end
  return reply(202, { job = n, status = "/jobs?id=" .. n })
end

-- GET /metrics: what every worker counted (lua_shared_dict starvideos_metrics); a client that sends nothing.
function M.metrics()
  ngx.header.content_type = "text/plain; version=0.0.4"
  local c = starvideos.new()
  ngx.print(c:metrics())
  c:close()
end

-- GET /jobs?id=N
function M.job()
  local n = tonumber(ngx.var.arg_id)
  local t = n and ngx.shared.starvideos_jobs:get(tostring(n))
  if type(t) ~= "string" then return reply(404, { error = "no such job" }) end
  ngx.header.content_type = "application/json"
  ngx.say(t)
end

M.encode = encode -- (spec/docs_setup_spec.lua)
return M
