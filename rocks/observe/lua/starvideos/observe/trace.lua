-- Traces in OpenTelemetry's format, without an SDK (docs/observability.md): spans made by observe/observer.lua
-- wait in a bounded queue (more are dropped, counted) and go in batches as OTLP/HTTP JSON, a POST like a
-- webhook's (a request of op notify: no key, its header lines, a 2xx is taken).  Outside nginx the key's loop
-- sends them (the tracer is a timer object of it: the loop never waits for an export); inside nginx a timer of
-- the worker's does, on a loop and transport of its own (nginx's sockets, made by the client's function).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local config = X.config
local Request = X.request
local otlp = require "starvideos.observe.otlp"

local now, wall = core.now, core.wall
local D = config.DEFAULTS

local T = {}
T.__index = T

-- The key's tracer of these settings (otel.lua's; its part: inside nginx the worker's), exporting on the key's loop,
-- or inside nginx on a loop of its own, nginx_loop(cfg) (client.lua's: on nginx's sockets), in a timer.
function T.of(key, cfg, s, loop, nginx_loop)
  return key:part("trace " .. s.endpoint .. "\0" .. s.headers .. "\0" .. s.service, function()
    -- the exports' own cfg: no events, no metrics of them, no key
    local xcfg = setmetatable({ on_event = false, observe = false, base_url = s.endpoint, max_connections = 1,
      requests_per_second = 1e6, api_key = false, transport = false }, { __index = cfg })
    return setmetatable({ s = s, xcfg = xcfg, key = key, loop = not nginx_loop and loop, cols = { {}, {} },
      cap = D.trace_queue, batch = D.trace_batch, head = 1, tail = 0, dropped = 0, exported = 0, req = false,
      armed = false, nginx_loop = nginx_loop, on_drop = false, told = -math.huge,
      offset = wall() - now() }, T)
  end)
end

-- Ids, attributes and a task span's JSON: observe/otlp.lua's (the tracer's offset: every span on one clock).
T.id, T.trace_id, T.attr = otlp.id, otlp.trace_id, otlp.attr
function T:encode(trace, id, parent, name, kind, t0, t1, attrs, err)
  return otlp.span(trace, id, parent, name, kind, t0, t1, self.offset, attrs, err)
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

-- The queue: a ring of TRACE_QUEUE slots (more spans are dropped) in two columns: the span (a task span's
-- JSON, written by T:encode, or a CLIENT span's values, T:client's, written at the export) and its end.  A span's
-- slot comes from slot() (nil: dropped), with its end; its export soon (armed: a timer or an export is set,
-- which sends it; again at once when a batch's worth waits).
local function slot(self, t)
  local i = self.tail + 1
  if i - self.head >= self.cap then return drop(self, 1, "the export queue is full") end
  local k = (i - 1) % self.cap + 1
  self.tail, self.cols[2][k] = i, t -- (its end: when it is due, due() below)
  if not self.armed or i - self.head + 1 == self.batch then self:schedule(t) end
  return k
end

-- A task span that ended at t: its JSON (T:encode's).
function T:finish(json_text, t)
  local k = slot(self, t)
  if k then self.cols[1][k] = json_text end
end

-- The CLIENT span of an exchange that ended (ev: the core's exchange event, observed.lua's; op: its operation):
-- its status if its wire ended "none" (else how the wire ended), its error, under parent {trace =, id =} (nil: a
-- root).  error.type: the status when an answer came, else how the wire ended, else the error's kind.
function T:client(ev, op, parent)
  local k = slot(self, ev.t)
  if not k then return end
  local wire, err = ev.wire, ev.err
  local status = wire == "none" and type(ev.status) == "number" and ev.status > 0 and ev.status or nil
  local etype = err and (status and string.format("%d", status) or wire ~= "none" and wire or err.kind or "error")
  self.cols[1][k] = { url = ev.url or "", method = ev.method, op = op, t0 = ev.started,
    t1 = ev.t, status = status, resend = (ev.attempt or 1) - 1, etype = etype,
    emsg = err and err.message, parent = parent, rid = ev.request_id, sid = ev.server_request_id }
end

-- The next batch out of the queue: the OTLP/HTTP JSON body of its spans, and their number (0: none queued).
local function batch(self)
  local first = self.head
  local n = math.min(self.tail - first + 1, self.batch)
  if n < 1 then return nil, 0 end
  if not self.prefix then
    self.prefix = '{"resourceSpans":[{"resource":{"attributes":[' .. T.attr("service.name", self.s.service) .. ","
      .. T.attr("telemetry.sdk.name", "starvideos") .. "," .. T.attr("telemetry.sdk.language", "lua")
      .. ']},"scopeSpans":[{"scope":{"name":"starvideos","version":' .. otlp.string(config.VERSION)
      .. '},"spans":['
  end
  self.head = first + n
  local out, spans = {}, self.cols[1]
  for i = first, first + n - 1 do
    local k = (i - 1) % self.cap + 1
    local sp = spans[k]
    out[#out + 1] = type(sp) == "table" and otlp.client(sp, self.offset) or sp
    spans[k] = false
  end
  return self.prefix .. table.concat(out, ",") .. "]}]}]}", n
end

-- An export of the next batch on loop, now: its request (nil: nothing queued).
local function export(self, loop, t, deadline)
  local text, n = batch(self)
  if not text then return nil end
  local req = Request.new { loop = loop, key = loop.key, cfg = self.xcfg, owner = self, op = "exchange",
    what = "notify", url = self.s.endpoint, path = self.s.path, body = text, headers = Request.JSON .. self.s.headers,
    retries = Request.UNTIL_DEADLINE, deadline = deadline or t + D.trace_timeout } -- (retried until its deadline)
  req.spans = n
  req:send(t)
  return req
end

local function ended(self, req)
  if req.err then return drop(self, req.spans, "the export failed: " .. req.err.message) end
  self.exported = self.exported + req.spans
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

-- When the next export is due: now with a batch's worth queued (or the client closing), else TRACE_DELAY after
-- the oldest queued span ended (nil: none queued).
local function due(self, t)
  local queued = self.tail - self.head + 1
  if queued < 1 then return nil end
  if queued >= self.batch or self.flushing then return t end
  return (self.cols[2][(self.head - 1) % self.cap + 1] or t) + D.trace_delay
end

-- Inside nginx: the worker's timer, on a loop of its own: a batch, and the next ones while a batch's worth waits
-- (premature, or the worker exiting: nginx stops or reloads: one batch more within TRACE_FLUSH); the rest later.
local function pump(premature, self)
  self.timer, self.armed = false, false
  local loop = self.nginx_loop(self.xcfg)
  local ngx = config.nginx()
  local req
  repeat
    local t = now()
    req = export(self, loop, t, premature and t + D.trace_flush)
    if req then
      loop:drive(over, req)
      ended(self, req)
    end
  until not req or premature or ngx.worker.exiting() or (due(self, now()) or math.huge) > now()
  loop:release()
  if req and not premature and not ngx.worker.exiting() then self:schedule(now()) end
end

-- A span was queued at t: its export is due (due()); a timer for it unless one is set, or an export in flight
-- (whose end looks again).
function T:schedule(t)
  local at = due(self, t) or t
  if self.nginx_loop then
    if self.timer then return end
    self.timer = config.nginx().timer.at(math.max(0, at - t), pump, self) and true or false -- (none free: later)
    self.armed = self.timer
    return
  end
  self.armed = true
  if self.req then return end
  if (self.loop.due[self] or math.huge) > at then self.loop:at(at, self) end
end

-- Outside nginx: its timer fell due, or the export in flight ended: the next batch when it is due, else a timer.
function T:advance(t)
  if self.nginx_loop then return end -- (the timer's loop drives its own request)
  local req = self.req
  if req then
    if not req.done then return end
    self.req = false
    ended(self, req)
  end
  if self.loop.due[self] then return end
  local at = due(self, t)
  self.armed = at ~= nil
  if at and at > t then return self.loop:at(at, self) end
  self.req = at and export(self, self.loop, t) or false
end

-- A client closes: what is queued goes now, waited for at most TRACE_FLUSH seconds.
function T:flush()
  if self.nginx_loop or (self.tail < self.head and not self.req) then return end
  self.flushing = true
  if not self.req then self.loop:at(now(), self) end
  self.loop:drive(function(s) return not s.req and s.tail < s.head end, self, now() + D.trace_flush)
  self.flushing = false
end

return T
