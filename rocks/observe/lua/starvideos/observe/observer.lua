-- What a client with `metrics` or `trace` measures (docs/observability.md): the hook `cfg.observe` its jobs,
-- requests, bucket and store call (client.lua wires it; without either option nothing here is loaded), told in
-- events (the core's observed.lua: no job or request is read here), turned into metrics (observe/metrics.lua) and
-- spans (observe/trace.lua): a span per task, its job's life, with a CLIENT span per HTTP exchange under it.
-- Labels only from bounded sets: never an id, URL, key or prompt.

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

-- An exchange ended (observed.lua's exchange event ev): its duration by operation (its op's name, a media GET of
-- a job's helper as a download) and status class (the answer's when the wire ended well, else "error"), its bytes;
-- its CLIENT span to the tracer, under its task's span (false: its task's trace is not sampled; nil: a root).
local BYTES = { download = true }
function O:exchange(ev)
  local started, name = ev.started, OPS[ev.op]
  if name and ev.of_job then name = AS_JOBS[name] or name end
  local m, tr = self.m, self.tr
  if name and m then
    local status = ev.wire == "none" and type(ev.status) == "number" and ev.status
    local code = status and status >= 100 and status < 600 and math.floor(status / 100) .. "xx"
    m:observe(DURATION, ev.t - (started or ev.t), name, code or "error")
    if BYTES[name] and ev.bytes and ev.bytes > 0 then m:add("starvideos_downloaded_bytes_total", ev.bytes) end
  end
  if m and m.timer == false then m:start() end
  if not (name and tr and started) then return end
  local parent = ev.task and self.spans[ev.task]
  if parent == false then return end
  tr:client(ev, name, parent)
  if parent and ev.poll then self.polls[ev.task] = (self.polls[ev.task] or 0) + 1 end -- (its task's: a query)
end

-- A request will be sent again after err.
function O:retry(err)
  if self.m then self.m:add("starvideos_retries_total", 1, err.kind or "error") end
end

-- A create ended (its last attempt, observed.lua's created event): created, refused (surely nothing made) or
-- unknown (maybe made).
function O:created(ev)
  if not self.m then return end
  local outcome = ev.made and "created" or ev.made == nil and "unknown" or "refused"
  self.m:add("starvideos_creates_total", 1, model(ev.model), outcome)
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

-- A job (its event ev: observed.lua's job) saw its task completed at t: the notice lag, half the gap since the
-- last poll that saw it unfinished.
function O:noticed(ev, t)
  if self.m and ev.unfinished_at then
    self.m:observe("starvideos_notice_lag_seconds", (t - ev.unfinished_at) / 2, model(ev.model))
  end
end

-- A job (its event ev) saved its video.
function O:saved(ev)
  if not self.m then return end
  local m = model(ev.model)
  self.m:add("starvideos_videos_total", 1, m)
  if ev.seconds then self.m:add("starvideos_video_seconds_total", ev.seconds, m) end
end

-- The parent of a job's span (its event ev): its traceparent, else inside nginx the request's `traceparent` header;
-- read as W3C's ("00-<32 hex>-<16 hex>-<2 hex>"): its trace id, span id and whether it is sampled, or nil.
local function traceparent(ev)
  local v = ev.traceparent
  if not v then
    local ngx = config.nginx()
    local ok, h = pcall(function() return ngx and ngx.var.http_traceparent end) -- (none in a timer)
    v = ok and h or nil
  end
  local ver, tid, sid, flags = (type(v) == "string" and v or ""):match("^(%x%x)%-(%x+)%-(%x+)%-(%x%x)$")
  if not ver or ver == "ff" or #tid ~= 32 or #sid ~= 16 or v:find("%u") or not tid:find("[^0]")
      or not sid:find("[^0]") then return nil end
  return tid, sid, tonumber(flags, 16) % 2 == 1
end

-- The task span of a job (its event ev), from t (false: its parent is not sampled): its trace, id, parent's id,
-- name, start.
function O:begin(ev, t)
  local tid, sid, sampled = traceparent(ev)
  if tid and not sampled then self.spans[ev.task] = false; return end
  local tr = self.tr -- (observe/trace.lua's functions: loaded only when tracing)
  self.spans[ev.task] = { trace = tid or tr.trace_id(), id = tr.id(), parent = sid, name = "starvideos " .. ev.what,
    t0 = t }
end

-- The task span of a job (its event ev) ends at t.
function O:close(ev, t)
  local sp = self.spans[ev.task]
  if not sp then return end
  local a, tr, err = {}, self.tr, ev.err or {}
  for _, kv in ipairs { { "starvideos.task.id", ev.id }, { "starvideos.model", ev.model },
    { "starvideos.polls", self.polls[ev.task] or 0 }, { "starvideos.task.status", ev.status },
    { "starvideos.job.state", ev.state }, { "starvideos.path", ev.path },
    { "error.type", err.kind }, { "starvideos.failure.reason", err.reason },
    { "starvideos.failure.input", err.input } } do
    if kv[2] ~= nil then a[#a + 1] = tr.attr(kv[1], kv[2]) end
  end
  tr:finish(tr:encode(sp.trace, sp.id, sp.parent, sp.name, 1, sp.t0, t, table.concat(a, ","), err.message), t)
end

-- A job's state as of t (its event ev: observed.lua's job): the tasks gauge moved, its span begun at first sight,
-- ended with it.  A lone query or check is no task.
function O:state(ev, t)
  if not ev.what then return end
  local was, is = self.states[ev.task], not ev.done and ev.state or false
  if was == is then return end
  self.states[ev.task] = is
  if was == nil and self.tr then self:begin(ev, t) end
  if self.m then
    if was then self.m:add("starvideos_tasks", -1, was) end
    if is then self.m:add("starvideos_tasks", 1, is) end
    local why = not is and ev.err and ev.err.reason -- (a failed task's, a refused create's: failure.lua's)
    if why then self.m:add("starvideos_failures_total", 1, model(ev.model), why) end
  end
  if not is and self.tr then self:close(ev, t) end
end

return O
