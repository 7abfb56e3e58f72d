-- starvideos inside nginx: the handlers examples/openresty/nginx.conf names.
-- Nothing here is nginx-specific in the library's use: starvideos.new picks
-- the transport on nginx's own sockets by itself, and a client waiting yields
-- the worker, which keeps serving other requests meanwhile.
--
--   GET /generate?prompt=...[&model=&duration=&interval=]
--       create, wait, download into $starvideos_dir; answers the task as JSON
--   GET /start?prompt=...   answers at once; a timer (ngx.timer.at) generates
--   GET /jobs?id=N          how that background job is doing

local starvideos = require "starvideos"
local cjson = require "cjson.safe"

local ngx = rawget(_G, "ngx")
local tonumber, tostring = tonumber, tostring

local M = {}

local function reply(status, t)
  ngx.status = status
  ngx.header.content_type = "application/json"
  ngx.say(cjson.encode(t))
end

-- The request's generation parameters and poll interval, from its query.
local function params()
  local a = ngx.req.get_uri_args()
  return { model = a.model or "videos", prompt = a.prompt or "a cat", duration = tonumber(a.duration) or 5 },
    tonumber(a.interval) or 10
end

-- Where the video goes: $starvideos_dir (relative to nginx's prefix), named
-- after the request.
local function out_path()
  local dir = ngx.var.starvideos_dir
  if dir:sub(1, 1) ~= "/" then dir = ngx.config.prefix() .. dir end
  return dir .. "/" .. ngx.var.request_id .. ".mp4"
end

local function task_json(task, path)
  return { id = task.id, status = task.status, model = task.model, video_url = task.video_url, path = path }
end

-- GET /generate: the whole generation within this request.
function M.generate()
  local p, interval = params()
  local out = out_path()
  local client = starvideos.new() -- the key and base URL from STARVIDEOS_API_KEY / _BASE_URL
  local task, err = client:generate(p, { out = out, interval = interval, timeout = 900 })
  client:close()
  if not task then
    return reply(502, { error = err.message, kind = err.kind, id = err.id })
  end
  return reply(200, task_json(task, out))
end

-- Background jobs, in a shared dict so that every worker can report them.
local function save(n, t)
  ngx.shared.starvideos_jobs:set(tostring(n), cjson.encode(t))
end

local function background(premature, n, p, interval, out)
  if premature then return end -- nginx is shutting down
  local client = starvideos.new()
  local task, err = client:generate(p, { out = out, interval = interval, timeout = 1800,
    on_progress = function(ev)
      if ev.type == "status" then save(n, { state = "waiting", id = ev.id, status = ev.status }) end
    end })
  client:close()
  if task then
    save(n, { state = "done", task = task_json(task, out) })
  else
    save(n, { state = "failed", error = err.message, kind = err.kind, id = err.id })
  end
end

-- GET /start: a job in a timer, which outlives this request.
function M.start()
  local p, interval = params()
  local n = ngx.shared.starvideos_jobs:incr("count", 1, 0)
  save(n, { state = "starting" })
  local ok, err = ngx.timer.at(0, background, n, p, interval, out_path())
  if not ok then return reply(503, { error = "cannot start the job: " .. tostring(err) }) end
  return reply(202, { job = n, status = "/jobs?id=" .. n })
end

-- GET /jobs?id=N
function M.job()
  local n = tonumber(ngx.var.arg_id)
  local t = n and ngx.shared.starvideos_jobs:get(tostring(n))
  if not t then return reply(404, { error = "no such job" }) end
  ngx.header.content_type = "application/json"
  ngx.say(t)
end

return M
