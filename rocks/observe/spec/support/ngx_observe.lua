-- A location of rocks/observe/spec/hosts/observe_nginx_spec.lua: GET /loop?n=N&from=I puts N tasks (numbered from I)
-- through the metrics hook (observe/observer.lua) as a job and its requests call it (their events: the core's
-- observed.lua), each with its own id, URL and prompt, into the worker's registry (the shared dict); answers the time
-- it took.
local ngx = rawget(_G, "ngx")
local Observe = require "starvideos.observe.observer"
local Metrics = require "starvideos.observe.metrics"
local E = require "starvideos.observed"

local n, from = tonumber(ngx.var.arg_n) or 1, tonumber(ngx.var.arg_from) or 1
local o = Observe.new(Metrics.registry(), nil)
local MODELS = { "videos", "videos_fast", "starvideos_o3", "videos_stable" }
local CFG = { prices = { videos = 0.4, videos_fast = 0.25 } } -- (the client's cfg: the cost family too)
local t0 = ngx.now()
for i = from, from + n - 1 do
  local id = "task-" .. i
  local url = "http://127.0.0.1:9/v1/result/" .. id .. "?sig=" .. i
  local job = { state = "creating", model = MODELS[i % 4 + 1], id = id, unfinished_at = 0,
    params = { prompt = "prompt number " .. i, duration = 5 } }
  o:state(E.job(job), 0)
  o:budget(job, 0, 0.5)
  o:budget(job, 0.5, nil)
  local req = { op = "create", owner = job, cfg = CFG, url = url, started = 0.5, attempt = 1, task = { id = id } }
  o:exchange(E.exchange(req, 0.6, i % 50 == 0 and 503 or 200, nil, "none"))
  o:created(E.created(req))
  job.state = "polling"
  o:state(E.job(job), 0.6)
  if i % 10 == 0 then o:retry({ kind = "timeout" }) end
  o:exchange(E.exchange({ op = "query", owner = job, url = url, started = 1, attempt = 1 }, 1.1, 200, nil, "none"))
  o:noticed(E.job(job), 2)
  job.state = "downloading"
  o:state(E.job(job), 2)
  o:exchange(E.exchange({ op = "download", owner = job, url = url, started = 2, attempt = 1, offset = 0 }, 2.5, 200,
    nil, "none", 1000))
  o:saved(E.job(job))
  job.done = true
  o:state(E.job(job), 2.5)
end
ngx.update_time()
ngx.say(ngx.now() - t0)
