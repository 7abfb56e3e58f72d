-- What a client with `metrics` or `trace` measures (docs/observability.md): the hook `cfg.observe` its jobs,
-- requests, bucket and store call (client.lua wires it; without either option nothing here is loaded), turned
-- into metrics (extras/metrics.lua) and spans (extras/trace.lua): a span per task, its job's life, with a CLIENT
-- span per HTTP exchange under it.  Labels only from bounded sets: never an id, URL, key or prompt.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local Request = require "starvideos.request"

local O = {}
O.__index = O

-- A request's op as the metrics name it (storage: a request to the user's bucket, storage/object.lua).
local OPERATION = { create = "create", query = "query", download = "download", media = "media", notify = "webhook",
  storage = "upload" }

local function weak() return setmetatable({}, { __mode = "k" }) end

-- metrics: the registry (extras/metrics.lua) or nil; tracer: extras/trace.lua's, or nil.
function O.new(metrics, tracer)
  local self = setmetatable({ m = metrics, tr = tracer, states = weak(), spans = weak(), polls = weak(),
    waits = weak() }, O)
  if tracer and metrics then tracer.on_drop = function(n) metrics:add("starvideos_spans_dropped_total", n) end end
  return self
end

-- A model as a label: one of the capability table's, else "other".
local function model(m) return core.models[m] and m or "other" end

-- An exchange's status class, or "error" when the exchange did not end with an answer.
local function class(status, wire)
  if wire == "none" and type(status) == "number" and status >= 100 and status < 600 then
    return math.floor(status / 100) .. "xx"
  end
  return "error"
end

-- A URL as url.full carries it: credentials and the query's values REDACTED (a video URL's query signs it).
function O.redact(url)
  url = url:gsub("#.*$", ""):gsub("^(%a[%w+.-]*://)[^/?]*@", "%1REDACTED:REDACTED@")
  return (url:gsub("([?&][^=&]*)=[^&]*", "%1=REDACTED"))
end

local function push(a, k, v) if v ~= nil then a[#a + 1], a[#a + 2] = k, v end end

-- The task span a request belongs to: its job's, a media check's job's (preflight), a webhook's job's (notify);
-- false: its task's trace is not sampled; nil: none (a root).
function O:parent_of(req)
  local o = req.owner
  local job = self.spans[o] ~= nil and o or o.job or o.pf and o.pf.owner or o.ctx
  return job and self.spans[job]
end

-- A CLIENT span of the exchange req ended at t (stable HTTP semantic conventions).
function O:client_span(req, t, status, err, wire)
  local parent = self:parent_of(req)
  if parent == false then return end
  local u = core.check_url(req.url, "url")
  local method = req.method or req.head and "HEAD" or Request.METHOD[req.op] or "POST"
  local sp = require("starvideos.extras.trace").span(method, 3, parent, req.started or t)
  local a = sp.attrs
  push(a, "http.request.method", method)
  push(a, "server.address", u and (u.host:match("^%[(.*)%]$") or u.host))
  push(a, "server.port", u and tonumber(u.port))
  push(a, "url.full", O.redact(req.url))
  if wire == "none" then push(a, "http.response.status_code", status) end
  if req.attempt > 1 then push(a, "http.request.resend_count", req.attempt - 1) end
  if err then
    push(a, "error.type", wire == "none" and status and tostring(status) or wire ~= "none" and wire or err.kind)
    sp.error = err.message
  end
  push(a, "starvideos.operation", OPERATION[req.op])
  self.tr:finish(sp, t)
end

-- An exchange of req ended at t: its status (nil: no answer), error, how the wire ended, bytes (a download's,
-- counted from its offset).
function O:exchange(req, t, status, err, wire, bytes)
  local video = req.op == "download" or req.op == "media" and req.owner.job -- (an upload's GET: a part's bytes)
  local op = video and "download" or OPERATION[req.op]
  if not op then return end
  local m = self.m
  if m then
    local c = class(status, wire)
    m:add("starvideos_requests_total", 1, op, c)
    m:observe("starvideos_request_duration_seconds", t - (req.started or t), op, c)
    local got = video and bytes and bytes - (req.op == "download" and req.offset or 0)
    if got and got > 0 then m:add("starvideos_downloaded_bytes_total", got) end
  end
  if req.op == "query" then self.polls[req.owner] = (self.polls[req.owner] or 0) + 1 end
  if self.tr and req.started then self:client_span(req, t, status, err, wire) end
end

-- A request will be sent again after err.
function O:retry(_, err)
  if self.m then self.m:add("starvideos_retries_total", 1, err.kind or "error") end
end

-- A create ended (its last attempt): created, refused (surely nothing made) or unknown (maybe made).
function O:created(req)
  if not self.m then return end
  local outcome = req.task and "created" or req.err and req.err.maybe_created and "unknown" or "refused"
  self.m:add("starvideos_creates_total", 1, model(req.owner.model), outcome)
end

-- A task's cost as its ledger records it (records/ledger.lua's cost: `prices`; unknown: never called).
function O:cost(name, price)
  if self.m then self.m:add("starvideos_cost_total", price, model(name)) end
end

-- The key's budget asked by obj at t: at, when it must come back (nil: a token taken; the wait observed).
function O:budget(obj, t, at)
  if not self.m then return end
  local since = self.waits[obj]
  if at then
    if not since then self.waits[obj] = t end
    return
  end
  self.waits[obj] = nil
  self.m:observe("starvideos_budget_wait_seconds", since and t - since or 0)
end

-- A store command answered (ok: not an error, not a broken connection) after `seconds`.
function O:store(seconds, ok)
  if not self.m then return end
  local c = ok and "2xx" or "error"
  self.m:add("starvideos_requests_total", 1, "store", c)
  self.m:observe("starvideos_request_duration_seconds", seconds, "store", c)
end

-- job saw its task completed at t: the notice lag, half the gap since the last poll that saw it unfinished.
function O:noticed(job, t)
  if self.m and job.unfinished_at then
    self.m:observe("starvideos_notice_lag_seconds", (t - job.unfinished_at) / 2, model(job.model))
  end
end

-- job saved its video.
function O:saved(job)
  if not self.m then return end
  local m = model(job.model)
  self.m:add("starvideos_videos_total", 1, m)
  local task, params = job.task or {}, job.params or {}
  local secs = tonumber(task.actualDuration) or tonumber(task.duration) or tonumber(params.duration)
  if secs then self.m:add("starvideos_video_seconds_total", secs, m) end
end

-- The parent of a job's span: its traceparent, else inside nginx the request's `traceparent` header.
local function traceparent(job)
  if job.traceparent then return job.traceparent end
  local ngx = config.nginx()
  local ok, v = pcall(function() return ngx and ngx.var.http_traceparent end) -- (none in a timer)
  return ok and v or nil
end

local WHAT = { created = "create" }

-- The task span of job, from t (false: its parent is not sampled).
function O:begin(job, t)
  local tid, sid, sampled = require("starvideos.otel").traceparent(traceparent(job))
  if tid and not sampled then self.spans[job] = false; return end
  local what = WHAT[job.goal] or job.params and "generate" or job.url and "download" or "wait"
  local parent = tid and { trace = tid, id = sid }
  self.spans[job] = require("starvideos.extras.trace").span("starvideos " .. what, 1, parent, t)
end

-- The task span of job ends at t.
function O:close(job, t)
  local sp = self.spans[job]
  if not sp then return end
  local a = sp.attrs
  push(a, "starvideos.task.id", job.id)
  push(a, "starvideos.model", job.model)
  push(a, "starvideos.polls", self.polls[job] or 0)
  push(a, "starvideos.task.status", job.status)
  push(a, "starvideos.job.state", job.state)
  push(a, "starvideos.path", job.path)
  if job.err then
    push(a, "error.type", job.err.kind)
    sp.error = job.err.message
  end
  self.tr:finish(sp, t)
end

-- A job's state (job.lua's STATES) as of t: the tasks gauge moved, its span begun at first sight, ended with it.
-- A lone query or check is no task.
function O:state(job, t)
  if job.goal == "queried" or job.goal == "checked" then return end
  local was, is = self.states[job], not job.done and job.state or false
  if was == is then return end
  self.states[job] = is
  if was == nil and self.tr then self:begin(job, t) end
  if self.m then
    if was then self.m:add("starvideos_tasks", -1, was) end
    if is then self.m:add("starvideos_tasks", 1, is) end
  end
  if not is and self.tr then self:close(job, t) end
end

return O
