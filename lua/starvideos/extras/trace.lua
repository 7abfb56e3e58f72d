-- Traces in OpenTelemetry's format, without an SDK (docs/observability.md): spans made by extras/observe.lua
-- wait in a bounded queue (more are dropped, counted) and go in batches as OTLP/HTTP JSON, a POST like a
-- webhook's (a request of op notify: no key, its header lines, a 2xx is taken).  Outside nginx the key's loop
-- sends them (the tracer is a timer object of it: the loop never waits for an export); inside nginx a timer of
-- the worker's does, on a loop and transport of its own (nginx's sockets, made by the client's function).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local Request = require "starvideos.request"
local Loop = require "starvideos.loop"
local Key = require "starvideos.key"
local cjson = require("cjson.safe").new()
pcall(cjson.encode_escape_forward_slash, false) -- (lua-cjson 2.1.0.6 and later: URLs as they are)

local now, wall = core.now, core.wall
local D = config.DEFAULTS

local T = {}
T.__index = T

T.SCOPE = { name = "starvideos", version = config.VERSION }

-- The key's tracer of these settings (otel.lua's; its part: inside nginx the worker's), exporting on the key's loop,
-- or inside nginx on a loop of its own with nginx_transport(cfg, key) (client.lua's: nginx's sockets) in a timer.
function T.of(key, cfg, s, loop, nginx_transport)
  return key:part("trace " .. s.endpoint .. "\0" .. s.headers .. "\0" .. s.service, function()
    -- the exports' own cfg: no events, no metrics of them, no key
    local xcfg = setmetatable({ on_event = false, observe = false, base_url = s.endpoint, max_connections = 1,
      requests_per_second = 1e6, api_key = false, transport = false }, { __index = cfg })
    return setmetatable({ s = s, xcfg = xcfg, key = key, loop = not nginx_transport and loop, queue = {}, head = 1,
      tail = 0, dropped = 0, req = false, nginx_transport = nginx_transport, on_drop = false, told = -math.huge,
      offset = wall() - now() }, T)
  end)
end

-- Ids: 32-bit words of a linear congruential generator (exact in doubles on every VM) seeded once from the
-- system's randomness, without a system call per span (core.random_id takes ~7 us); a trace id opens with 64
-- random bits of the process's, so that two processes' traces never meet.
local word, PROCESS = tonumber(core.random_id():sub(1, 8), 16), core.random_id()
local function id(words)
  local s = ""
  for _ = 1, words do
    word = (1664525 * word + 1013904223) % 4294967296
    s = s .. string.format("%08x", word)
  end
  return s
end

-- A new span (kind: 1 internal, 3 client) under parent {trace =, id =} (nil: a root of a new trace), from t.
function T.span(name, kind, parent, t)
  return { trace = parent and parent.trace or PROCESS .. id(2), id = id(2), parent = parent and parent.id, name = name,
    kind = kind, t0 = t, attrs = {} }
end

local function drop(self, n, why)
  self.dropped = self.dropped + n
  if self.on_drop then self.on_drop(n) end
  local t = now()
  if t - self.told < 60 then return end
  self.told = t
  local ngx = config.nginx()
  local msg = string.format("trace: %d spans dropped (%s; %d in all)", n, why, self.dropped)
  if ngx then ngx.log(ngx.WARN, "starvideos: ", msg) else self.key:warn(msg) end
end

-- A span that ended at t goes in the queue (dropped when TRACE_QUEUE wait), its export soon.
function T:finish(span, t)
  span.t1 = t
  if self.tail - self.head + 1 >= D.trace_queue then return drop(self, 1, "the export queue is full") end
  self.tail = self.tail + 1
  self.queue[self.tail] = span
  self:schedule(t)
end

local KIND = { string = "stringValue", boolean = "boolValue" }

local function value(v)
  if type(v) == "number" then
    if v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return { intValue = string.format("%.0f", v) } end
    return { doubleValue = v }
  end
  return { [KIND[type(v)] or "stringValue"] = type(v) == "boolean" and v or tostring(v) }
end

local function nanos(t, offset) -- a monotonic time as Unix nanoseconds, as a decimal string
  local u = t + offset
  local s = math.floor(u)
  return string.format("%.0f%09.0f", s, math.floor((u - s) * 1e9))
end

-- The OTLP/HTTP JSON body of spans (a list) for a service; offset: the wall clock minus the monotonic one (the
-- tracer's, read once: every span on one clock).
function T.body(spans, service, offset)
  local list = {}
  for i, sp in ipairs(spans) do
    local attrs = {}
    for j = 1, #sp.attrs, 2 do attrs[#attrs + 1] = { key = sp.attrs[j], value = value(sp.attrs[j + 1]) } end
    list[i] = { traceId = sp.trace, spanId = sp.id, parentSpanId = sp.parent, name = sp.name, kind = sp.kind,
      startTimeUnixNano = nanos(sp.t0, offset), endTimeUnixNano = nanos(sp.t1 or sp.t0, offset),
      attributes = attrs[1] and attrs or nil, status = sp.error and { code = 2, message = sp.error } or nil }
  end
  return cjson.encode { resourceSpans = { {
    resource = { attributes = { { key = "service.name", value = { stringValue = service } },
      { key = "telemetry.sdk.name", value = { stringValue = "starvideos" } },
      { key = "telemetry.sdk.language", value = { stringValue = "lua" } } } },
    scopeSpans = { { scope = T.SCOPE, spans = list } } } } }
end

-- The next batch out of the queue: its spans (at most TRACE_BATCH).
local function batch(self)
  local out, q = {}, self.queue
  while self.head <= self.tail and #out < D.trace_batch do
    out[#out + 1], q[self.head] = q[self.head], nil
    self.head = self.head + 1
  end
  return out
end

-- request.lua asks at each attempt: the export's header lines.
function T:headers() return self.s.headers end

-- An export of the next batch on loop, now: its request (nil: nothing queued).
local function export(self, loop, t, deadline)
  local spans = batch(self)
  if not spans[1] then return nil end
  local req = Request.new(loop, loop.key, self.xcfg, self, "notify", self.s.endpoint, self.s.path, false,
    T.body(spans, self.s.service, self.offset), deadline or t + D.trace_timeout)
  req.spans = #spans
  req:send(t)
  return req
end

local function ended(self, req)
  if req.err then drop(self, req.spans, "the export failed: " .. req.err.message) end
end

-- Whether an export inside nginx is over: ended, or cut TRACE_FLUSH s after its worker began to exit (a
-- reload, a stop: the worker leaves no socket open behind it).
local function over(req)
  if req.done then return true end
  if not config.nginx().worker.exiting() then return false end
  req.cut = req.cut or now() + D.trace_flush
  if now() < req.cut then return false end
  req:cancel()
  return true
end

-- Inside nginx: the worker's timer, on a loop of its own, until the queue is empty (premature, or the worker
-- exiting: nginx stops or reloads: one batch more within TRACE_FLUSH).
local function pump(premature, self)
  self.timer = false
  local xkey = Key.for_client(self.xcfg)
  local loop = Loop.for_client(self.xcfg, xkey, self.nginx_transport(self.xcfg, xkey))
  local ngx = config.nginx()
  repeat
    local t = now()
    local req = export(self, loop, t, premature and t + D.trace_flush)
    if req then
      loop:drive(over, req)
      ended(self, req)
    end
  until not req or premature or ngx.worker.exiting()
  loop:release()
end

-- The export is due by t + TRACE_DELAY (at once with a batch's worth queued).
function T:schedule(t)
  local full = self.tail - self.head + 1 >= D.trace_batch
  if self.nginx_transport then
    if self.timer then return end
    self.timer = true
    local ngx = config.nginx()
    if not ngx.timer.at(full and 0 or D.trace_delay, pump, self) then self.timer = false end -- (none free: later)
    return
  end
  if self.req then return end -- its end sends the next batch
  local at = full and t or t + D.trace_delay
  if (self.loop.due[self] or math.huge) > at then self.loop:at(at, self) end
end

-- Outside nginx: its timer fell due, or the export in flight ended: the next batch, unless a timer is set.
function T:advance(t)
  if self.nginx_transport then return end -- (the timer's loop drives its own request)
  local req = self.req
  if req then
    if not req.done then return end
    self.req = false
    ended(self, req)
  end
  if self.loop.due[self] then return end
  self.req = export(self, self.loop, t) or false
end

-- A client closes: what is queued goes now, waited for at most TRACE_FLUSH seconds.
function T:flush()
  if self.nginx_transport or (self.tail < self.head and not self.req) then return end
  if not self.req then self.loop:at(now(), self) end
  self.loop:drive(function(s) return not s.req and s.tail < s.head end, self, now() + D.trace_flush)
end

return T
