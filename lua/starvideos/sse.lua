-- Server-Sent Events of a client's tasks (client:sse, docs/reference.md#clientsse).  Every job of a key tells its
-- events (job.lua's created, status, progress, warning, late, taken, saved, failed) to the key's window: a bounded
-- list of numbered events, inside nginx in the shared dict `starvideos_events` (every worker numbers from one
-- counter there, so that an id means the same event in any worker, and a worker killed loses none of it), else in
-- the process's memory (the key's part).  A stream reads the window past the last id its reader saw (the request's
-- Last-Event-ID, or opts.last_event_id), keeps its tenant's or its task's events, and writes each as
-- `id:`, `event:`, `data:` (the event as JSON), a comment every `heartbeat` seconds when nothing else was written.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local cjson = require("cjson.safe").new()

local now, tostring, tonumber, type, pairs, ipairs = core.now, tostring, tonumber, type, pairs, ipairs
local DEFAULTS = config.DEFAULTS

local E = {}

-- The event types a stream carries: the task's (job.lua tells these to the window).
E.TYPES = { created = true, status = true, progress = true, warning = true, late = true, taken = true,
  saved = true, failed = true }

E.RETRY = 1000 -- milliseconds an EventSource waits before it comes back (the stream's first line, `retry:`)
E.GAP_WAIT = 1 -- seconds a reader waits for an event numbered but not yet kept (its worker between the two) at most

-- The event as its stream's data: its fields but the service's whole task (`task`: its video_url is the key's).
local ERROR = { "message", "kind", "reason", "field", "status", "request_id", "server_request_id" }
local function data_of(ev)
  local out = {}
  for k, v in pairs(ev) do
    if k ~= "task" and type(v) ~= "function" and type(v) ~= "userdata" then out[k] = v end
  end
  if type(ev.error) == "table" then -- (a failed task's error: its words, not its task)
    out.error = {}
    for _, k in ipairs(ERROR) do out.error[k] = ev.error[k] end
  end
  return cjson.encode(out) or cjson.encode { type = ev.type, id = ev.id }
end

-- An entry of a window: tenant, task id, type and data, one text (tenants have no control characters: config.lua).
local SEP = "\31"
local function entry(ev, tenant)
  return (tenant or "") .. SEP .. (type(ev.id) == "string" and ev.id or "") .. SEP .. ev.type .. SEP .. data_of(ev)
end

local function parse(text)
  local tenant, task, kind, data = text:match("^([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)$")
  return tenant, task, kind, data
end

-- A window's first id less one: its start's microsecond on the wall clock (past the last id this process gave),
-- so that the ids of a window made again (a process or nginx started again, the dict emptied, even within the same
-- second; a key's last client closed and a new one made) come after every id of the one before, and a reader that
-- comes back with an id of that one gets the new window whole, not nothing until the count passes its id.  (Its
-- second's 10^6 made them equal in one second: 6 events each, both windows ...0001 to ...0006.)
local given = 0 -- the last id this process's windows gave
local function base() return math.max(math.floor(core.wall() * 1000000), given) end
-- An id as text: its digits (LuaJIT's tostring of a number past 10^14 would round it: 1.7958661234568e+15).
local function digits(id) return string.format("%d", id) end

-- The process's window: a ring of `size` entries.
local Memory = {}
Memory.__index = Memory

function Memory.new(size)
  local b = base()
  return setmetatable({ n = b, base = b, size = size, list = {} }, Memory)
end

function Memory:put(text)
  local n = self.n + 1
  self.n, self.list[n], self.list[n - self.size] = n, text, nil
  if n > given then given = n end
  return n
end

function Memory:last() return self.n end
function Memory:get(id) return self.list[id] end
function Memory:first() return math.max(self.base + 1, self.n - self.size + 1) end

-- nginx's dict: `<prefix>n` the last id given (incr: atomic across workers), `<prefix><id>` each entry; the entry
-- `size` older than a new one is deleted as it is kept.  Every write a safe_ one: a full dict refuses an event
-- (logged) rather than evicting another key's.
local Dict = {}
Dict.__index = Dict

function Dict.new(dict, name, size)
  return setmetatable({ dict = dict, prefix = "sse:" .. core.hash(name) .. ":", size = size }, Dict)
end

function Dict:put(text)
  local dict, counter = self.dict, self.prefix .. "n"
  local n, err = dict:incr(counter, 1)
  if not n and err == "not found" then -- (the window made: its base kept first, then the counter from it)
    local b = base()
    local ok, aerr = dict:safe_add(self.prefix .. "base", b)
    if ok or aerr == "exists" then ok, aerr = dict:safe_add(counter, dict:get(self.prefix .. "base") or b) end
    if ok or aerr == "exists" then n, err = dict:incr(counter, 1) end
  end
  if not n then return nil, err end
  if n > given then given = n end
  dict:delete(self.prefix .. digits(n - self.size))
  local ok, serr = dict:safe_set(self.prefix .. digits(n), text)
  if not ok then return nil, serr end
  return n
end

function Dict:last() return self.dict:get(self.prefix .. "n") or 0 end
function Dict:get(id) return self.dict:get(self.prefix .. digits(id)) end
function Dict:first() return math.max((self.dict:get(self.prefix .. "base") or 0) + 1, self:last() - self.size + 1) end

-- The window of key k (key.lua) for a client's ledger (its events method): a store's (the ledger point's rock: a
-- Redis stream every host of the store writes and reads); inside nginx the dict's (when declared: every worker's);
-- a journal's (its sibling file <journal>.events, every process of the journal's: records/events.lua); else the
-- process's.
function E.window(k, ledger)
  local ngx = config.nginx()
  local dict = ngx and ngx.shared and ngx.shared[DEFAULTS.events_dict]
  local own = ledger and ledger.events and (ledger.field == "store" or not dict) and
    ledger:events(k, DEFAULTS.events_window)
  if own then return own end
  return k:part("sse", function()
    if dict then return Dict.new(dict, k.name, DEFAULTS.events_window) end
    return Memory.new(DEFAULTS.events_window)
  end)
end

-- What a client's jobs told its window, written (its close: a journal's lines, a store's adds); 5 s at most.
function E.flush(k, ledger)
  local w = E.window(k, ledger)
  if w.flush then w:flush(5) end
end

-- The recorder a client hands its jobs (cfg.on_stream, job.lua): each of their events of a stream's types kept.
function E.recorder(window)
  return function(ev, tenant)
    if not E.TYPES[ev.type] then return end
    local ok, err = window:put(entry(ev, tenant))
    local ngx = not ok and config.nginx()
    if ngx then ngx.log(ngx.WARN, "starvideos: an event is not kept for the event streams: ", tostring(err)) end
  end
end

-- A call refused before it made a job (again, remix, continue: lineage.lua's refusal before paying): its `failed`
-- event told as a job's is (on_event, the key's streams, with the call's tenant); err returned.
function E.refused(cfg, err, tenant)
  local ev = { type = "failed", error = err }
  if cfg.on_event then cfg.on_event(ev) end
  if cfg.on_stream then cfg.on_stream(ev, tenant) end
  return err
end

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

-- The entries of a numbered window (the process's, nginx's dict: ids one apart) past seen: {id, text} pairs; a
-- number given but not kept yet (its writer between the counter and the entry) ends the read there for E.GAP_WAIT at
-- most (who.gap: when the reader who first met it).  A seen past the newest id: none, and the newest (from now on).
local function numbered(w, seen, t, who)
  local out, last = {}, w:last()
  if seen > last then return out, last end
  local id = math.max(seen + 1, w:first())
  while id <= last do
    local text = w:get(id)
    if not text then
      who.gap = who.gap or t
      if t - who.gap < E.GAP_WAIT then break end
    else
      out[#out + 1] = { id, text }
    end
    who.gap, id = nil, id + 1
  end
  return out, id - 1
end
Memory.since, Dict.since = numbered, numbered

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
