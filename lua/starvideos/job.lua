-- A job carries one task from create (or an id, or a bare URL) through polling
-- to a downloaded file, as a state machine that never blocks.  It is built whole
-- by Job.new(engine, ledger, cfg, goal, id, spec) and moved by job:advance(now) whenever
-- its request finished or its timer fell due; the engine's one drive loop does
-- the calling.  It is handed what it uses: the engine (timers, budget, births),
-- the client's ledger (records, schedule) and the client's cfg (on_event too).
--
--   job.state  : "creating" | "polling" | "downloading" | "done" | "cancelled"
--   job.status : the task's own status ("queued", "processing", "completed", "failed")
--   job.task, job.id, job.err, job.path, job.done

local core = require "starvideos.core"
local options = require "starvideos.options"
local Request = require "starvideos.request"
local Ledger = require "starvideos.ledger"
local Notify = require "starvideos.notify"
local Engine = require "starvideos.engine"

local type, pairs, tostring, setmetatable, math_min, math_max, string_format, os_time =
  type, pairs, tostring, setmetatable, math.min, math.max, string.format, os.time
local new_error, now, release, send = options.new_error, core.now, Request.release, Request.send
-- the engine's budget, called directly (not looked up through its metatable)
local token = Engine.token

local Job = {}
Job.__index = Job
-- what a job made with a spec holds only once set (Job.new)
Job.done, Job.lone, Job.refreshing, Job.on_progress, Job.on_status, Job.fin, Job.group =
  false, false, false, false, false, false, false

local NO_KEY = "no API key: set STARVIDEOS_API_KEY or pass api_key to starvideos.new"
Job.NO_KEY = NO_KEY

-- Errors after which polling again cannot help.
local FATAL = { auth = true, not_found = true, invalid_request = true, io = true }
-- A video URL that expired answers with one of these; it is refreshed once.
local EXPIRED = { [403] = true, [404] = true, [410] = true }

-- A word for a shell command line, quoted when it needs to be.
local shell_word = require("starvideos.shell").word

local kind_of = Ledger.kind_of
Job.kind_of = kind_of

-- The job's own steps (local functions: no method lookup through the metatable).
local _origin, _next_poll, _took, _event, _finish, _seen, _send, _poll, _download, _request_done, _created

-- Build a create (validation first, then the key): path, body | nil, err.
local function build_create(cfg, params)
  local text, err = options.extra_json(params)
  if err then return nil, err end
  local path, body = core.build_create(params, text)
  if not path then return nil, body end
  if not cfg.has_key then return nil, new_error("auth", NO_KEY) end
  return path, body
end

-- A spec's fields a job keeps only when given (spec name -> job field).
local OPTIONAL = { finished = "fin", out = "out", url = "url", interval = "fixed", resume_limit = "resume_limit",
  on_progress = "on_progress", on_status = "on_status", index = "index", params = "params" }

-- goal: "created" | "queried" (nil: completed); id: the task's (nil for a create
-- or a bare URL); spec (nil: none, as for client:query): params (create first),
-- url (download only), task, out (a file path), interval (nil: the learned
-- schedule), timeout, on_progress(event), on_status(job), index, refresh (query
-- before trusting a stored URL), resume_limit, finished (a list the job is added
-- to when it ends: step's).
-- Returns the job, or nil, err for an invalid request.
function Job.new(engine, ledger, cfg, goal, id, spec)
  local t = now()
  local task, url, timeout = spec and spec.task, spec and spec.url, spec and spec.timeout
  local deadline = t + (timeout or (url and cfg.download_timeout or cfg.wait_timeout))
  if not spec then -- a lone query: nothing more to keep, in the table one ended before it left (Job:release)
    local job = engine.spare_job
    if job then
      engine.spare_job = false
      job.ledger, job.cfg, job.id, job.goal, job.deadline, job.done, job.state = ledger, cfg, id, goal, deadline, false,
        "polling"
      return job
    end
  end
  -- what every job holds, in one constructor: a table is sized by its
  -- constructor's fields (nil ones too), and a field added later can rehash
  -- it.  wake: when its timer falls due (0: it has none, due at once; E:at
  -- sets it).  A lone query's table (client:query: lone, served again) also
  -- holds, false, the fields every answer reads, so that none is looked up
  -- through the metatable; a job made with a spec holds only what it was
  -- given, so that one waiting among thousands stays small (16 slots: done
  -- and those it was not given are the class's false, at the top)
  if not spec then
    return setmetatable({ engine = engine, ledger = ledger, cfg = cfg, id = id, goal = goal, task = nil, status = nil,
      deadline = deadline, done = false, wake = 0, state = "polling", req = false, err = nil, lone = true,
      refreshing = false, on_progress = false, on_status = false, fin = false, group = false }, Job)
  end
  local job = setmetatable({ engine = engine, ledger = ledger, cfg = cfg, id = id, goal = goal, task = task,
    status = task and task.status, deadline = deadline, wake = 0, state = "polling", req = false, err = nil }, Job)
  for k, v in pairs(spec) do
    local field = OPTIONAL[k]
    if field then job[field] = v end
  end
  local params = spec.params
  if params then
    local path, body = build_create(cfg, params)
    if not path then return nil, body end
    if spec.out then -- a file that cannot be written is found before the task is paid for
      local ok, err = Request.check_out(spec.out)
      if not ok then return nil, err end
    end
    job.state, job.create_path, job.create_body = "creating", path, body
    job.local_id = ledger.records and core.random_id() or nil
    job.model, job.kind = params.model, kind_of(params.model, params.duration, params.resolution)
  elseif url then
    job.state = "downloading"
  elseif spec.out and not spec.refresh and task and type(task.video_url) == "string"
    and (task.status == nil or task.status == "completed") then
    job.state = "downloading"
  end
  if task then _origin(job, task, t) end
  return job
end

-- When a task we did not create was created, on our monotonic clock, from its
-- `created` (seconds since the epoch); and its model, for the schedule.
-- A task this client created has its creation on that clock already (exact);
-- else `created` counts whole seconds, which widens what is learned from it.
function _origin(self, task, t)
  if self.origin then return end
  if type(task.model) == "string" then self.model = self.model or task.model end
  local born = self.engine:born(task.id)
  if born then self.origin = born; return end
  local created = task.created
  if type(created) == "number" and created > 0 then
    self.origin, self.coarse = t - math_max(0, os_time() - created), 1 -- two whole-second clocks
  end
end

-- The time of this job's next poll after one answered at t: the fixed interval
-- when one was given, else the client's learned schedule.
function _next_poll(self, t)
  if self.fixed then return t + self.fixed end
  return t + self.ledger:schedule(self.engine):delay(self.kind, self.model, self.origin and t - self.origin)
end

-- A poll at t saw the task completed: how long it took, to within half the gap
-- since the last poll that saw it unfinished (nothing learned without one).
function _took(self, t)
  local before = self.unfinished_at
  if not (before and self.origin) then return nil end
  local took, half = (before + t) / 2 - self.origin, (t - before) / 2 + (self.coarse or 0)
  self.ledger:schedule(self.engine):learn(self.kind, self.model, took, half)
  return took, half
end

function _event(self, kind, extra)
  local ev = { type = kind, id = self.id, task = self.task, status = self.task and self.task.status,
    index = self.index }
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  return ev
end

function _finish(self, err)
  self.done, self.state = true, self.state == "cancelled" and "cancelled" or "done"
  if err then
    if err.id == nil then err.id = self.id end
    if err.task == nil then err.task = self.task end
    self.err = err
  end
  -- a webhook (notify.lua) of a task followed to its end: sent on in the engine
  if not self.goal and self.cfg.notify and self.state == "done" then Notify.job_done(self, self.err) end
  local g = self.group
  if g then g.left = g.left - 1 end
  if self.fin then self.fin[#self.fin + 1] = self end
  if self.on_status then self.on_status(self) end
end

-- A task answer arrived (create or poll).  The journal's "created" line stands
-- for the create's own status; polls record each change (a completion with how
-- long the task took, when that is known: took, within).
function _seen(self, task, created, took, within)
  self.task, self.id = task, task.id
  local changed = task.status ~= self.status
  self.status = task.status
  if changed then
    -- no event or record is made for nobody: no listener, no journal
    local on_event = self.cfg.on_event
    if on_event then on_event(_event(self, "status")) end
    if not created and self.ledger.records then self.ledger:status(self.id, task.status, took, within) end
  end
  if self.on_progress then self.on_progress(_event(self, "status")) end
  if changed and self.on_status then self.on_status(self) end
end

-- The job's request (Request.new's arguments after its owner), sent at t.
function _send(self, t, op, url, path, auth, body, deadline, download)
  local req = Request.new(self.engine, self.cfg, self, op, url, path, auth, body, deadline, download)
  self.req = req
  req:send(t or now())
end

function _poll(self, t)
  -- a refresh of an expired URL is not a scheduled poll: it skips the budget
  if not self.refreshing then
    local later = token(self.engine, t, nil, self)
    if later then return self.engine:at(math_min(later, self.deadline), self) end
  end
  -- the task's result path (core.result_path) and URL, kept by the engine for
  -- the latest id it polled: the polls of one task ask once (every client of an
  -- engine has its base URL)
  local engine, id, cfg = self.engine, self.id, self.cfg
  local path, url = engine.polled_path, engine.polled_url
  if engine.polled_id ~= id then
    local err
    path, err = core.result_path(id)
    if not path then return _finish(self, err) end
    url = cfg.base_url .. path
    engine.polled_id, engine.polled_path, engine.polled_url = id, path, url
  end
  if not cfg.has_key then return _finish(self, new_error("auth", NO_KEY)) end
  -- a lone query (client:query) has no deadline
  local req = Request.new(engine, cfg, self, "query", url, path, true, nil, self.goal ~= "queried" and self.deadline)
  self.req = req
  send(req, t)
end

function _download(self)
  local url = self.url or (self.task and self.task.video_url)
  if type(url) ~= "string" then
    return _finish(self, new_error("protocol", string_format("task %s is completed but has no video_url",
      tostring(self.id))))
  end
  local good, bad = core.check_url(url, "video_url") -- the one URL check (csrc/sv_util.c)
  if not good then return _finish(self, bad) end
  local path = url:match("^%a+://[^/]*(/[^?#]*)") or "/"
  _send(self, nil, "download", url, path, nil, nil, self.deadline, { part = self.out .. ".part", dest = self.out,
    resume_limit = self.resume_limit or self.cfg.resume_limit })
end

-- The job's request is done: take what it ended with (req.task: the task
-- table, or a download's ""; or req.err).
function _request_done(self, req, t)
  local engine, ledger = self.engine, self.ledger
  if self.state == "creating" then
    local task, err = req.task, req.err -- the task table the core read, or its error
    if not task then
      ledger:create_failed(err, self.params, self.local_id)
      return _finish(self, err)
    end
    self.id = task.id
    return _created(self, task, t)
  elseif self.state == "polling" then
    local task, err = req.task, req.err -- the task table the core read, or its error
    if self.goal == "queried" then -- one answer is all it asks for: no schedule to keep or learn from
      if task then _seen(self, task) end
      return _finish(self, err)
    end
    if not task then
      if FATAL[err.kind] then return _finish(self, err) end
      self.last_err = err -- transient: poll again
      return engine:at(math_min(_next_poll(self, t), self.deadline), self)
    end
    _origin(self, task, t)
    local took, within
    if task.status == "completed" and self.status ~= "completed" then
      took, within = _took(self, t)
    elseif task.status ~= "completed" and task.status ~= "failed" then
      self.unfinished_at = t
    end
    _seen(self, task, nil, took, within)
    if task.status == "completed" then
      if not self.out then return _finish(self) end
      self.state, self.refreshing, self.waited = "downloading", nil, true
      return _download(self)
    elseif task.status == "failed" then
      return _finish(self, new_error("task_failed", string_format("task %s failed: %s", tostring(self.id),
        tostring(task.error or "no reason given")), { task = task }))
    end
    return engine:at(math_min(_next_poll(self, t), self.deadline), self)
  else -- downloading
    self:progress(req.bytes, req.total)
    if not req.err then
      self.path = self.out
      if self.task then self.task.path = self.out end
      if self.id then ledger:downloaded(self.id, self.out) end
      return _finish(self)
    end
    local err = req.err
    if EXPIRED[err.status] and self.id and not self.refreshed and not self.url then
      self.refreshed, self.refreshing, self.state = true, true, "polling" -- ask for a fresh URL
      return _poll(self, t)
    end
    if self.waited and self.id then -- the task is done and paid for: its video can still be had
      err.message = string_format("%s; task %s is completed: `starvideos download %s %s` fetches its video",
        err.message, self.id, self.id, shell_word(self.out))
    end
    return _finish(self, err)
  end
end

-- The create answered task at t: its record written first (a ledger on a
-- store may say "not yet": the job holds the task, state "creating", and
-- asks again on a later turn), then the job reports it and goes on.
function _created(self, task, t)
  local engine = self.engine
  local ok, jerr = self.ledger:created(task, self.params, self.local_id)
  if ok == false then
    if not self.held then self.held, self.held_at = task, t end
    return engine:at_store(self, now())
  end
  t = self.held_at or t -- when the answer came
  self.held = nil
  if not ok then self.task = task; return _finish(self, jerr) end
  if self.cancelled then self.task = task; self.state = "cancelled"
    return _finish(self, new_error("io", "the job was cancelled", { created = true }))
  end
  self.state, self.origin, self.unfinished_at = "polling", t, t
  engine:born(task.id, t)
  _seen(self, task, true)
  if self.goal == "created" then return _finish(self) end
  return engine:at(_next_poll(self, t), self)
end

-- The engine read what a job ended with (run_one): a lone query's table then
-- serves the engine's next one, when nothing can reach it any more: it never
-- was on the timer heap (wake 0: so no entry of it is left there), its request
-- is gone (req false) and nobody was handed it (no spec: no on_status, no
-- finished list, no group).  What it held is dropped.
function Job:release()
  if not (self.lone and self.done and self.wake == 0 and not self.req) then return end
  self.task, self.err, self.status, self.ledger, self.cfg, self.id = nil, nil, nil, false, false, nil
  self.engine.spare_job = self
end

-- Download progress, reported when it grew (the engine calls it each tick).
function Job:progress(bytes, total)
  if bytes and bytes > (self.bytes or 0) then
    self.bytes, self.total = bytes, total
    local ev = _event(self, "progress", { bytes = bytes, total = total, path = self.out })
    local on_event = self.cfg.on_event
    if on_event then on_event(ev) end
    if self.on_progress then self.on_progress(ev) end
  end
end

-- Do what can be done now; the client calls this when the job's request
-- finished or its timer fell due.
function Job:advance(t)
  if self.done then return end
  local req = self.req
  if req then
    if not req.done then return end
    self.req = false
    _request_done(self, req, t)
    return release(req) -- read and let go: its table may serve the engine's next request
  end
  if t < self.wake then return end
  if self.state == "creating" then
    if self.held then return _created(self, self.held, t) end
    if not self.asked then -- a create is an API request too: it waits for the key's token first
      local later = self.engine:token(t, true, self)
      if later then return self.engine:at(later, self) end
    end
    local ok, err = self.ledger:before_create(self.params, self.local_id, self.out)
    if ok == false then
      self.asked = true
      return self.engine:at_store(self, t)
    end
    if not ok then return _finish(self, err) end
    -- a create has no deadline: once sent it is never abandoned, it may be paid for
    return _send(self, t, "create", self.cfg.base_url .. self.create_path, self.create_path, true, self.create_body)
  end
  if t >= self.deadline then
    local msg = string_format("task %s not finished before the deadline (last status: %s)", tostring(self.id),
      self.task and tostring(self.task.status) or "unknown")
    if self.last_err and not self.task then msg = msg .. "; last error: " .. self.last_err.message end
    return _finish(self, new_error("timeout", msg))
  end
  if self.state == "polling" then return _poll(self, t) end
  return _download(self)
end

-- A job that ended is left alone; cancelling stops its transfers.  A create
-- already sent is never taken back (it may be paid for): the job ends as
-- cancelled once its answer is in, with the task recorded.  A download's .part
-- is removed, but with `keep` (a client's close) when the ledger records it:
-- then it stays, recorded with the task's id, for the next download, resume or
-- keep of the task to continue with Range.
function Job:cancel(keep)
  if self.done then return end
  local creq = self.state == "creating" and self.req
  if creq then
    -- in flight, or answered and not yet read: it may be paid for, its answer is awaited
    if not creq.queued and (creq.handle or creq.done) then self.cancelled = true; return end
    -- still in the client's queue (never sent), or waiting to be sent again
    -- after an answer that made nothing (a 429, a refused connection): surely
    -- nothing was created, and nothing will be
    creq:cancel()
    self.req = false
    self.ledger:create_failed({}, self.params, self.local_id)
    self.state = "cancelled"
    return _finish(self, new_error("io", creq.attempt > 0
      and "the job was cancelled (its create made nothing and was not sent again)"
      or "the job was cancelled (its create was never sent)"))
  end
  if self.state == "creating" and self.held then -- answered, its record queued (not yet known written)
    self.ledger:forget(nil, self.held.id)
    self.task, self.state, self.held = self.held, "cancelled", nil
    return _finish(self, new_error("io", "the job was cancelled", { created = true }))
  end
  if self.state == "creating" and self.asked then -- a pending record asked for, the create never sent
    self.ledger:forget(self.local_id)
    self.ledger:create_failed({}, self.params, self.local_id)
  end
  local req = self.req
  if req then
    keep = keep and req.op == "download" and self.id and self.ledger.records and req.started
    req:cancel(keep)
    self.req = false
    if keep and core.file_kind(req.part) == "file" then self.ledger:part(self.id, req.part, req.dest) end
  end
  self.state = "cancelled"
  _finish(self, new_error("io", "the job was cancelled"))
end

return Job
