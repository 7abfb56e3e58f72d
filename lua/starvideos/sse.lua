-- Server-Sent Events of a client's tasks (client:sse, docs/reference.md#clientsse), loaded at the first client:sse.
-- A stream reads the key's window of what its jobs told (told.lua) past the last id its reader saw (the request's
-- Last-Event-ID, or opts.last_event_id), keeps its tenant's or its task's events, and writes each as
-- `id:`, `event:`, `data:` (the event as JSON), a comment every `heartbeat` seconds when nothing else was written.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local Told = require "starvideos.told"

local now, tonumber, ipairs, setmetatable = core.now, tonumber, ipairs, setmetatable
local DEFAULTS = config.DEFAULTS
local parse, digits = Told.parse, Told.digits

-- (the window's: told.lua's, kept by every client from its first job)
local E = { TYPES = Told.TYPES, GAP_WAIT = Told.GAP_WAIT, window = Told.window, flush = Told.flush,
  recorder = Told.recorder, refused = Told.refused }

E.RETRY = 1000 -- milliseconds an EventSource waits before it comes back (the stream's first line, `retry:`)

-- A stream's state: its window, filters, writer, the last id it wrote or skipped.
local Stream = {}
Stream.__index = Stream

-- A Last-Event-ID's text as a number (nil: none, or not ours).
function E.id_of(v)
  local n = tonumber(v)
  if n and n >= 0 and n == math.floor(n) then return n end
end

local function frame(id, kind, data)
  return "id: " .. digits(id) .. "\nevent: " .. kind .. "\ndata: " .. data .. "\n\n"
end

-- The events past the last one seen, kept by the filters, as one chunk ("" for none).  A window's since(seen, t,
-- who) gives its entries past seen in order, and the last id it looked past: below seen only when seen was past its
-- newest id (a reader's id of no event yet: 2^63 - 1, 1e300), which it gives then, so that the reader is told what
-- comes from now, once.
function Stream:read(t)
  local out = {}
  local list, upto = self.window:since(self.seen, t, self)
  for _, e in ipairs(list) do
    local tenant, task, kind, data = parse(e[2])
    -- (a tenant's stream: its tasks' events, and the warnings of none, such as a key's spend limit's step)
    local mine = not self.tenant or tenant == self.tenant or tenant == "" and task == "" and kind == "warning"
    if mine and (not self.task or task == self.task) then
      out[#out + 1] = frame(e[1], kind, data)
    end
  end
  if upto then self.seen = upto end
  return table.concat(out)
end

-- One turn at t: the new events written, else a heartbeat when due.  false once the writer refused (the reader went).
function Stream:turn(t)
  local chunk = self:read(t)
  if chunk == "" and t >= self.beat then chunk = ": heartbeat\n\n" end
  if not self.begun then self.begun, chunk = true, "retry: " .. E.RETRY .. "\n\n" .. chunk end
  if chunk == "" then return true end
  self.beat = t + self.heartbeat
  return self.write(chunk) and true or false
end

-- The stream ended: what its window holds for it let go (a store's read under way).
function Stream:gone()
  if self.window.drop then self.window:drop(self) end
end

-- A stream of window for opts (tenant, task, heartbeat, last_event_id) written by write(chunk).
local function stream(window, opts, write)
  local t = now()
  local st = setmetatable({ window = window, tenant = opts.tenant, task = opts.task, write = write,
    heartbeat = opts.heartbeat or DEFAULTS.heartbeat, seen = E.id_of(opts.last_event_id) or 0 }, Stream)
  st.beat = t + st.heartbeat
  return st
end

-- The plain-Lua form: a job of the client's loop (ctx), advanced every DEFAULTS.events_poll s until its writer
-- returns nil or false (then done), or it is cancelled (its client's close).
local Job = {}
Job.__index = Job

function Job:advance(t)
  if self.done then return end
  if not self.stream:turn(t) then return self:finish() end
  self.loop:at(t + DEFAULTS.events_poll, self)
end

function Job:finish(state)
  self.done, self.state = true, state or "done"
  self.stream:gone()
  if self.fin then self.fin[#self.fin + 1] = self end
end

function Job:cancel() if not self.done then self:finish("cancelled") end end

-- The nginx form: the request answered here until its reader goes (a write refused, the client's abort) or nginx
-- stops; ngx.sleep between turns, so the worker serves everything else meanwhile.
local function answer(ngx, window, opts)
  if not ngx.headers_sent then -- (a handler may have begun the answer itself)
    ngx.header.content_type = "text/event-stream"
    ngx.header["Cache-Control"] = "no-store"
    ngx.header["X-Accel-Buffering"] = "no"
  end
  local gone = false
  pcall(ngx.on_abort, function() gone = true end) -- (an error without lua_check_client_abort: a write tells then)
  local last = opts.last_event_id or ngx.req.get_headers()["last-event-id"] or ngx.var.arg_last_event_id
  local st = stream(window, { tenant = opts.tenant, task = opts.task, heartbeat = opts.heartbeat,
    last_event_id = last }, function(chunk)
      return ngx.print(chunk) and ngx.flush(true)
    end)
  while not (gone or ngx.worker.exiting()) do
    if not st:turn(now()) then break end
    ngx.sleep(DEFAULTS.events_poll)
  end
  st:gone()
  return true
end

-- client:sse(opts) of the client whose ctx this is (opts checked): inside nginx's content phase without
-- opts.write the request answered (true once its reader went); else the stream's job, its first turn due now.
function E.serve(ctx, opts, finished)
  local window = E.window(ctx.key, ctx.ledger)
  local ngx = config.nginx()
  if not opts.write and ngx and ngx.get_phase() == "content" then return answer(ngx, window, opts) end
  if not opts.write then
    error("bad option 'write' to 'sse' (a function given each chunk expected outside nginx's content phase)", 3)
  end
  local job = setmetatable({ cfg = ctx.cfg, loop = ctx.loop, done = false, state = "streaming", fin = finished,
    stream = stream(window, opts, opts.write) }, Job)
  ctx.loop:at(now(), job)
  return job
end

return E
