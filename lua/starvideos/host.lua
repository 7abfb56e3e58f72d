-- Where a rock's object does its work: a job's (its seat gives these methods: seat.lua) or a client's (its ctx:
-- resume's, keep's, a film's, list --check's).  A rock asks through these alone, never reading the loop, key, cfg
-- or ledger behind them (docs/architecture.md, "What a rock may require of the core"); the loop learns which job
-- or client each object a host registers works for (loop.stands: jobs_of), the observer which job a request serves
-- (req.job).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Request = require "starvideos.request"

local H = {}
H.__index = H

-- A host of its fields: loop, key, cfg, ledger, and job (a job's host; nil: a client's), any others kept (a ctx's
-- deadline, deliveries).
function H.new(t) return setmetatable(t, H) end

-- A job's host: its loop, key, cfg and ledger.
function H.of_job(job)
  return H.new { loop = job.loop, key = job.key, cfg = job.cfg, ledger = job.ledger, job = job }
end

------------------------------------------------------------------ the loop

-- A request (Request.new's fields but loop, key and cfg: the host's), not sent yet: it advances o.owner when done.
function H:request(o)
  o.loop, o.key, o.cfg = self.loop, self.key, self.cfg
  local req = Request.new(o)
  req.job = self.job
  self.loop.stands[req] = self
  return req
end

-- obj:advance(t) called at t (at), once what it waits on is answered or at t (wait_for), or it is busy until its
-- settled() (turning: a blocking call returns once it is).
function H:at(t, obj) self.loop.stands[obj] = self; return self.loop:at(t, obj) end
function H:wait_for(obj, t) self.loop.stands[obj] = self; return self.loop:wait_for(obj, t) end
function H:turning(obj) self.loop.stands[obj] = self; return self.loop:turning(obj) end

-- The loop driven until done() (the client's sleep between turns: a coroutine's scheduler's, when it has one).
function H:drive(done) return self.loop:drive(done, nil, nil, self.cfg.sleep) end

------------------------------------------------------------------ the transport and the key

-- Whether the transport feeds a request's tap as its bytes come (libcurl's).
function H:taps() return self.loop.curl == true end

-- module's fn(...) in the transport's thread pool when it has one (nginx's), else here: its values.
function H:offload(module, fn, ...)
  local tr = self.loop.transport
  if tr and tr.offload then return tr:offload(module, fn, ...) end
  return require(module)[fn](...)
end

-- A held transfer (a request's task.held) let go of: its connection closed.
function H:cancel(held)
  local tr = self.loop.transport
  if tr then tr:cancel(held) end
end

-- The connections the key may open at once, and a value all its clients share (made once by make(), by name).
function H:connections() return self.key.conns or 1 end
function H:shared(name, make) return self.key:part(name, make) end

------------------------------------------------------------------ the options and events

-- The storage option (the bucket's store), and an event told to on_event.
function H:storage() return self.cfg.storage end
-- Whether the service is sent media only from public addresses: unless allow_private_media, or (not given) the
-- service's own host is private (a local emulator's): preflight's rule for a reference URL.
function H:public_only()
  local cfg = self.cfg
  local allow = cfg.allow_private_media
  if allow == nil then allow = core.private_host(core.check_url(cfg.base_url, "base_url", true).host) ~= nil end
  return not allow
end
function H:tell(ev)
  local on_event = self.cfg.on_event
  if on_event then on_event(ev) end
end

------------------------------------------------------------------ the ledger

-- A sink's state recorded with task id (ledger.lua's sink_state: a handle written() looks at), whether it was
-- written, whether the ledger keeps records (a journal or a store: not a process's own), its tasks, and those
-- unfinished.
function H:sink_state(id, name, text, out) return self.ledger:sink_state(id, name, text, out) end
function H:written(w) return self.ledger:written(w) end
function H:records() return self.ledger.records ~= nil and self.ledger.records ~= false end
function H:tasks() return self.ledger:tasks() end
function H:unfinished() return self.ledger:unfinished() end

return H
