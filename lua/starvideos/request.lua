-- One HTTP request with its retries, over whichever transport the client has:
-- "send it" between "build the request" (the C core: build_create, result_path)
-- and "read the answer" (the core's verdict).  The policy lives here and in the
-- core, never in a transport: which POST may be resent (core.retry), backoff,
-- deadlines, and the download rules (.part, resume with Range, commit).
--
-- A request belongs to an owner (a job); when it is done it calls
-- owner:advance(now), and the owner reads req.task (the verdict's task table, a
-- download's "") / req.err.  It is handed the engine (admission, timers, the
-- transport) and the client's cfg.  The request is itself what the transport is
-- sent (transport.lua's r: op, url, auth, body, fresh, timeout, max_body; a
-- download's file, offset, stall, follow): no second table is built for it.

local core = require "starvideos.core"
local options = require "starvideos.options"
local Engine = require "starvideos.engine"

local ipairs, setmetatable, tostring, math_min, math_random, os_remove, string_format, io_open =
  ipairs, setmetatable, tostring, math.min, math.random, os.remove, string.format, io.open

local new_error, now = options.new_error, core.now
-- the engine's methods a request calls on every attempt, called directly (a
-- method looked up through the engine's metatable costs three table reads)
local admit, track, untrack = Engine.admit, Engine.track, Engine.untrack

local Request = {}
Request.__index = Request

local METHOD = { create = "POST", query = "GET", download = "GET", notify = "POST" }

local next_id = 0

-- The number that names a request in its events (given when first asked for).
local function id_of(req)
  local id = req.id
  if not id then
    next_id = next_id + 1
    id, req.id = next_id, next_id
  end
  return id
end

-- A download goes on from a .part an earlier call left (a Ctrl-C, a crash)
-- when that .part holds more than OVERLAP bytes: it asks for the bytes from
-- OVERLAP before the .part's end, and once they are in it compares them with
-- the ones the .part held there (Request:_continues).  A .part of another video
-- is never completed into a wrong file: it is started again from byte 0, as is
-- a .part the transport will not open (a symbolic link) or that is longer than
-- the video (416).
local OVERLAP = 65536

-- The size and the last OVERLAP bytes of the file at part, when there is one
-- worth going on from; else nil (none, a folder, OVERLAP bytes or fewer).
local function left_over(part)
  if core.file_kind(part) ~= "file" then return nil end -- a FIFO is never opened (it would wait)
  local f = io_open(part, "rb")
  if not f then return nil end
  local size, tail = f:seek("end"), nil
  if size and size > OVERLAP and f:seek("set", size - OVERLAP) then tail = f:read(OVERLAP) end
  f:close()
  if tail and #tail == OVERLAP then return size, tail end
end

-- Why a folder takes no new file, by errno (else strerror's words).
local NO_FILE = { [2] = "the folder %s does not exist", [20] = "%s is not a folder",
  [13] = "the folder %s is not writable", [1] = "the folder %s is not writable",
  [30] = "the folder %s is on a read-only file system" }

-- What stands at a download's path that no download may replace: a folder, a
-- FIFO, a device or a socket (by lstat: nothing is opened, so a FIFO never waits).
local NOT_A_FILE = { folder = "a folder", other = "not a regular file (a FIFO, a device or a socket)" }

-- Before a create (which costs money): can a download be written at out?
-- Neither out nor its .part may be a folder, and out's folder must take a new
-- file: a probe of a name of its own is made there and removed at once (what
-- access(2) would say is not what root meets).  Only the local disk, as every
-- download write: nothing here blocks an nginx worker beyond a file's open.
-- true, or nil and an error (kind "io", field "out").
function Request.check_out(out)
  local why
  for _, p in ipairs { out, out .. ".part" } do
    local kind = NOT_A_FILE[core.file_kind(p)]
    if not why and kind then why = p .. " is " .. kind end
  end
  if not why then
    local dir = out:match("^(.*)/[^/]*$")
    dir = dir == nil and "." or dir == "" and "/" or dir
    local probe = dir:gsub("/$", "") .. "/.starvideos-probe-" .. core.random_id()
    local f, msg, code = io_open(probe, "wb")
    if f then
      f:close()
      os_remove(probe)
      return true
    end
    local said = tostring(msg):match(": ([^:]*)$") or tostring(msg)
    if NO_FILE[code] and not (code == 2 and core.file_kind(dir) == "folder") then -- /proc's folders say ENOENT
      why = string_format(NO_FILE[code], dir) .. ((code == 13 or code == 1) and " (" .. said .. ")" or "")
    else
      why = string_format("cannot make a file in %s: %s", dir, said)
    end
  end
  return nil, new_error("io", string_format("out: cannot write %s: %s; nothing was sent", out, why),
    { field = "out" })
end

-- op ("create" | "query" | "download"), url, path (for events), auth, body (a
-- create's JSON), deadline (monotonic; nil: none); a download's `download`:
-- {part =, dest =, resume_limit =}.
function Request.new(engine, cfg, owner, op, url, path, auth, body, deadline, download)
  -- a table an earlier request of this engine left (Request.release), else a
  -- new one with every field a query's request holds, in one constructor (a
  -- table is sized by its constructor's fields, and one added later can rehash
  -- it all); false, not nil, for those read before they are set (no lookup
  -- through the metatable).  handle: the exchange in flight; started: when the
  -- latest attempt was sent (false: never); done once it ended (task or err);
  -- gen: how many requests the table has served (1: its first); task and err
  -- are read once it is done (Request.release left them nil).  body (a POST)
  -- and id (when an event names the request) are nil unless given; deadline
  -- and fresh (a create) false; retry: an API retry's timer is set, its token
  -- not yet drawn.  The client's user_agent, connect_timeout,
  -- ca_file and proxy go with each exchange: the clients of a key share its
  -- transport, not these.
  local self
  local n = engine.nspare
  if n > 0 then
    local spare = engine.spare
    self = spare[n]
    spare[n], engine.nspare = nil, n - 1
    -- (handle is false: Request.release took only such; timeout is set by each send)
    self.gen, self.attempt, self.started, self.done, self.retry = self.gen + 1, 0, false, false, false
  else
    self = setmetatable({ op = false, url = false, auth = false, max_body = false, timeout = false, path = false,
      engine = engine, cfg = false, owner = false, attempt = 0, handle = false, started = false, done = false,
      user_agent = false, connect_timeout = false, ca_file = false, gen = 1, body = false, deadline = false,
      fresh = false, id = false, task = false, err = false, wake = false, queued = false, tail = false, proxy = false,
      retry = false },
      Request)
  end
  self.op, self.url, self.auth, self.max_body, self.path, self.cfg, self.owner = op, url, auth, cfg.max_answer, path,
    cfg, owner
  self.user_agent, self.connect_timeout, self.ca_file = cfg.user_agent, cfg.connect_timeout, cfg.ca_file or false
  self.proxy = cfg.proxy or (cfg.http_proxy and url:find("^[Hh][Tt][Tt][Pp]://") and cfg.http_proxy) or false
  self.body, self.deadline, self.fresh, self.id = body, deadline or false, op == "create", nil
  if op == "download" then
    self.part, self.dest, self.resume_limit = download.part, download.dest, download.resume_limit
    self.file, self.follow, self.stall = download.part, true, cfg.timeout
    self.offset = 0 -- bytes already in the .part
    local size, tail = left_over(download.part)
    if size then self.offset, self.kept, self.tail = size - OVERLAP, size, tail end
  end
  return self
end

-- At most this many request tables wait in an engine for reuse.
local SPARE_MAX = 64

-- The owner read the request's task or err and let go of it (Job: its req is
-- false again): its table serves the engine's next request, when nothing else
-- can reach it any more.  The engine untracked it and the transport forgot its
-- exchange (finished() took the result); a download is never reused (its
-- transfer's .part and progress), nor a request that was ever on the timer heap
-- (wake: a retry's or a queue deadline's entry may still be there) or in the
-- queue.  What it held (owner, task, err, cfg) is dropped, so that nothing
-- stays alive through it.
function Request.release(req)
  if not req.done or req.handle or req.op == "download" or req.wake or req.queued then return end
  local engine = req.engine
  local n = engine.nspare
  if n >= SPARE_MAX then return end
  req.owner, req.task, req.err, req.cfg, req.body = false, nil, nil, false, nil
  n = n + 1
  engine.spare[n], engine.nspare = req, n
end

-- Whether the bytes sent again over the end of the .part left by an earlier
-- call are the ones it held: then it was this video's.
function Request:_continues()
  local f = io_open(self.part, "rb")
  local same = f and f:seek("set", self.kept - OVERLAP) and f:read(OVERLAP) == self.tail
  if f then f:close() end
  return same
end

-- The .part left by an earlier call cannot be gone on from: from byte 0.
function Request:_restart(t)
  self.offset, self.kept, self.tail, self.attempt = 0, nil, nil, 0
  return self:send(t)
end

local function finish(self, task, err, t)
  if err and self.op ~= "download" and self.op ~= "notify" then options.note_default_host(self.cfg, err) end
  self.done, self.task, self.err = true, task, err -- no longer tracked: finished() or cancel() untracked it
  if err and self.op == "download" and self.started then os_remove(self.part) end
  self.owner:advance(t or now())
end

-- The retry policy core.retry is handed, from the options table (options.lua):
-- a download's attempts are its resume_limit, an API call's max_retries.
local policies = setmetatable({}, { __mode = "k" }) -- cfg -> op -> policy
function Request.policy(cfg, op, resume_limit)
  if op == "download" then
    return { max_retries = resume_limit or cfg.resume_limit, backoff = cfg.retry_backoff,
      max_backoff = cfg.max_backoff, max_wait = cfg.max_retry_wait }
  end
  if op == "notify" then -- a webhook (notify.lua): as often as its deadline allows
    return { max_retries = 1000, backoff = cfg.retry_backoff, max_backoff = cfg.max_backoff,
      max_wait = cfg.max_retry_wait }
  end
  local p = policies[cfg]
  if not p then
    p = { max_retries = cfg.max_retries, backoff = cfg.retry_backoff, max_backoff = cfg.max_backoff,
      max_wait = cfg.max_retry_wait }
    policies[cfg] = p
  end
  return p
end

-- One attempt, now.
function Request:send(t)
  local engine, cfg = self.engine, self.cfg
  local left
  if self.deadline then
    left = self.deadline - t
    if left <= 0 then
      return finish(self, nil, self.err or new_error("timeout", string_format(
        "%s: the deadline passed before the request could be sent", self.op)))
    end
  end
  if not admit(engine, self) then return end -- sent from the engine's queue when there is room
  if self.op == "download" then
    self.timeout = left -- its offset is the request's own
  else
    self.timeout = left and math_min(cfg.timeout, left) or cfg.timeout
  end
  self.attempt = self.attempt + 1
  if self.op == "notify" then self.headers = self.owner:headers() end -- signed anew for each attempt
  local h, err = engine.transport:send(self)
  if not h then
    if self.tail then return self:_restart(t) end -- the transport would not open the .part left over
    return finish(self, nil, err)
  end
  self.handle, self.started = h, t
  track(engine, self)
  local on_event = cfg.on_event
  if on_event then -- no event table is made when nobody listens
    on_event { type = "request", request = id_of(self), attempt = self.attempt, method = METHOD[self.op],
      path = self.path }
  end
end

-- The transport says our exchange finished: its verdict (transport:result's
-- values) ends the request, or it is tried again after a delay.
function Request:finished(t)
  local engine, cfg = self.engine, self.cfg
  untrack(engine, self)
  local h = self.handle
  self.handle = false
  local task, err, wire, bytes, total, file = engine.transport:result(h) -- file: a whole download's open .part
  local on_event = cfg.on_event
  if self.op == "download" then self.bytes, self.total = bytes, total end
  if (wire == "none" or task) and on_event then
    on_event { type = "response", request = id_of(self), attempt = self.attempt, method = METHOD[self.op],
      path = self.path, status = err and err.status or 200, elapsed = t - self.started }
  end
  if task then
    if self.op == "download" then
      if self.tail and not self:_continues() then return self:_restart(t) end
      local transport = engine.transport
      if transport.commit then -- a transport may sync the file its own way (transport.lua)
        local ok, cerr = transport:commit(self.part, self.dest)
        if not ok then return finish(self, nil, new_error("io", "download: " .. cerr, { field = "path" })) end
        return finish(self, task)
      end
      -- fsync and rename on a helper thread: the request is "committing" until
      -- the engine's tick sees the thread done (committed), never blocking a step
      local c, cerr = core.commit_start(file, self.dest)
      if not c then return finish(self, nil, new_error("io", "download: " .. cerr, { field = "path" })) end
      self.commit, self.committing = c, true
      return engine:committing(self)
    end
    return finish(self, task, nil, t)
  end
  if self.tail and err.status == 416 then return self:_restart(t) end -- the .part left over is too long
  -- whether and when to try again: the core's one policy, for a download too
  -- (which then goes on from the bytes it has)
  local delay = core.retry(self.op, wire, err, self.attempt, Request.policy(cfg, self.op, self.resume_limit),
    math_random())
  if delay and self.op == "download" then self.offset = bytes or 0 end
  if not delay or (self.deadline and t + delay >= self.deadline) then
    return finish(self, nil, err, t)
  end
  self.err = err -- stands if the deadline comes first
  if on_event then
    on_event { type = "retry", request = id_of(self), attempt = self.attempt, method = METHOD[self.op],
      path = self.path, status = err.status, delay = delay, reason = err.message
        .. (self.op == "download" and string_format("; resuming at byte %d", self.offset) or "") }
  end
  -- a retry of an API request is an API request too: it draws the key's token when due
  self.retry = self.op == "create" or self.op == "query"
  engine:at(t + delay, self)
end

-- The commit thread is done: the download counts once its bytes are on the
-- disk under their final name.
function Request:committed(ok, cerr)
  self.commit, self.committing = nil, nil
  if self.done then -- cancelled meanwhile: a whole file stays, a failed commit's .part goes
    if not ok then os_remove(self.part) end
    return
  end
  if not ok then return finish(self, nil, new_error("io", "download: " .. tostring(cerr), { field = "path" })) end
  return finish(self, "")
end

-- A timer fell due: the next attempt; an API retry's once it has the key's
-- token (a create's before the polls waiting), unless its deadline came.
function Request:advance(t)
  if self.done or self.handle or self.committing then return end
  if self.retry and not (self.deadline and t >= self.deadline) then
    local engine = self.engine
    local later = engine:token(t, self.op == "create")
    if later then return engine:at(self.deadline and math_min(later, self.deadline) or later, self) end
    self.retry = false
  end
  self:send(t)
end

-- Abandon it (never a create in flight: it may already be paid for).  A
-- download already committing is whole: its thread finishes in the background.
-- A download's .part is removed, unless `keep` (its job records it in the ledger).
function Request:cancel(keep)
  if self.done then return end
  local engine = self.engine
  untrack(engine, self)
  if self.handle then engine.transport:cancel(self.handle); self.handle = false end
  self.done, self.err = true, new_error("io", "the request was cancelled")
  if self.op == "download" and self.started and not self.committing and not keep then os_remove(self.part) end
end

function Request:__tostring()
  return "starvideos request " .. tostring(id_of(self))
end

return Request
