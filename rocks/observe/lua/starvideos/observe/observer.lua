-- What a client with `metrics` or `trace` measures (docs/observability.md): the hook `cfg.observe` its jobs,
-- requests, bucket and store call (client.lua wires it; without either option nothing here is loaded), turned
-- into metrics (observe/metrics.lua) and spans (observe/trace.lua): a span per task, its job's life, with a CLIENT
-- span per HTTP exchange under it.  Labels only from bounded sets: never an id, URL, key or prompt.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local config = X.config

local O = {}
O.__index = O

-- A request's op (an exchange's: its word) as the metrics name it (storage: a request to the user's bucket,
-- storage/object.lua).
local OPS = { create = "create", query = "query", download = "download", media = "media", notify = "webhook",
  storage = "upload" }

local function weak() return setmetatable({}, { __mode = "k" }) end

-- metrics: the registry (observe/metrics.lua) or nil; tracer: observe/trace.lua's, or nil.
function O.new(metrics, tracer)
  local self = setmetatable({ m = metrics, tr = tracer, states = weak(), spans = weak(), polls = weak(),
    waits = weak() }, O)
  if tracer and metrics then tracer.on_drop = function(n) metrics:add("starvideos_spans_dropped_total", n) end end
  return self
end

-- A model as a label: one of the capability table's, else "other".
local function model(m) return core.models[m] and m or "other" end

local DURATION, WAIT = "starvideos_request_duration_seconds", "starvideos_budget_wait_seconds"

-- What an operation counts as when a job's exchange makes it: a media GET (an upload's part of the video,
-- storage/object.lua) as a download.
local AS_JOBS = { media = "download" }

-- The operation an exchange of req counts as (nil: none observed).
local function operation(req)
  local name = OPS[req.what or req.op]
  if type(req.owner) == "table" and req.owner.job then return AS_JOBS[name] or name end
  return name
end

-- An exchange of req ended at t: its status (nil: no answer), error, how the wire ended, bytes (a download's,
-- counted from its offset): its duration by operation and status class (the answer's when the wire ended well,
-- else "error"), its bytes; its CLIENT span to the tracer, under its task span: its owner's, else (the owner no
-- job) the span of a bucket upload's job (storage/object.lua), a media check's job's (preflight), a webhook
-- delivery's job's (notify.lua: its ctx); false: its task's trace is not sampled; nil: none (a root).
function O:exchange(req, t, status, err, wire, bytes)
  local started, name = req.started, operation(req)
  if name and self.m then self:count(req, name, t - (started or t), wire == "none" and status, bytes) end
  local m, tr = self.m, self.tr
  if m and m.timer == false then m:start() end
  if not (name and tr and started) then return end
  local o = req.owner
  local parent = self.spans[o]
  if parent == nil then
    local job = o.job or o.pf and o.pf.owner or o.ctx
    parent = job and self.spans[job]
  end
  if parent == false then return end
  tr:client(req, t, name, status, wire, err, parent)
  if parent and req.api and not req.paid then self.polls[o] = (self.polls[o] or 0) + 1 end -- (its task's: a query)
end

-- The duration (seconds) of an exchange of req counted as the operation name, with its answer's status (false:
-- none) and bytes (a transfer into a file counted from its offset).
local BYTES = { download = true }
function O:count(req, name, seconds, status, bytes)
  local code = type(status) == "number" and status >= 100 and status < 600 and math.floor(status / 100) .. "xx"
  self.m:observe(DURATION, seconds, name, code or "error")
  if not BYTES[name] or type(bytes) ~= "number" then return end
  bytes = bytes - (req.file and tonumber(req.offset) or 0)
  if bytes > 0 then self.m:add("starvideos_downloaded_bytes_total", bytes) end
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
  local m, waits = self.m, self.waits
  if not m then return end
  local since = waits[obj]
  if at then
    if not since then waits[obj] = t end
  elseif since then
    waits[obj] = nil
    m:observe(WAIT, t - since)
  else
    m.zeros = m.zeros + 1 -- (no wait: what most are; added to the histogram's first bucket when it is read)
  end
end

-- An answer said the key's rate limit (key.lua's K:limits: seen.remaining, when it said it): the gauge moved to it
-- (the registry keeps the value it last set; inside nginx the dict sums the workers' own).
function O:rate_limit(seen)
  local m = self.m
  if not (m and seen.remaining) then return end
  m:add("starvideos_rate_limit_remaining", seen.remaining - (m.rate_limit_last or 0))
  m.rate_limit_last = seen.remaining
end

-- A store command answered (ok: not an error, not a broken connection) after `seconds`.
function O:store(seconds, ok)
  if self.m then self.m:observe(DURATION, seconds, "store", ok and "2xx" or "error") end -- (requests_total: its counts)
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

-- The task span of job, from t (false: its parent is not sampled): its trace, id, parent's id, name, start.
function O:begin(job, t)
  local tid, sid, sampled = X.otel.traceparent(traceparent(job))
  if tid and not sampled then self.spans[job] = false; return end
  local what = WHAT[job.goal] or job.params and "generate" or job.url and "download" or "wait"
  local tr = self.tr -- (observe/trace.lua's functions: loaded only when tracing)
  self.spans[job] = { trace = tid or tr.trace_id(), id = tr.id(), parent = sid, name = "starvideos " .. what,
    t0 = t }
end

-- The task span of job ends at t.
function O:close(job, t)
  local sp = self.spans[job]
  if not sp then return end
  local a, tr = {}, self.tr
  for _, kv in ipairs { { "starvideos.task.id", job.id }, { "starvideos.model", job.model },
    { "starvideos.polls", self.polls[job] or 0 }, { "starvideos.task.status", job.status },
    { "starvideos.job.state", job.state }, { "starvideos.path", job.path },
    { "error.type", job.err and job.err.kind }, { "starvideos.failure.reason", job.err and job.err.reason },
    { "starvideos.failure.input", job.err and job.err.input } } do
    if kv[2] ~= nil then a[#a + 1] = tr.attr(kv[1], kv[2]) end
  end
  tr:finish(tr:encode(sp.trace, sp.id, sp.parent, sp.name, 1, sp.t0, t, table.concat(a, ","),
    job.err and job.err.message), t)
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
    local why = not is and job.err and job.err.reason -- (a failed task's, a refused create's: failure.lua's)
    if why then self.m:add("starvideos_failures_total", 1, model(job.model), why) end
  end
  if not is and self.tr then self:close(job, t) end
end

return O
