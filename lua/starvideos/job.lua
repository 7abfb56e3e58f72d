-- A job carries one task from create (or an id, or a bare URL) through polling
-- to a downloaded file, as a state machine that never blocks.  It is built whole
-- by Job.new(client, spec) and moved by job:advance(now) whenever its request
-- finished or its timer fell due; the client's one drive loop does the calling.
--
--   job.state  : "creating" | "polling" | "downloading" | "done" | "cancelled"
--   job.status : the task's own status ("queued", "processing", "completed", "failed")
--   job.task, job.id, job.err, job.path, job.done

local core = require "starvideos.core"
local options = require "starvideos.options"
local Request = require "starvideos.request"

local type, pairs, tostring, setmetatable, math_min, math_max, string_format, os_time =
  type, pairs, tostring, setmetatable, math.min, math.max, string.format, os.time
local new_error, now = options.new_error, core.now

local Job = {}
Job.__index = Job

local NO_KEY = "no API key: set STARVIDEOS_API_KEY or pass api_key to starvideos.new"
Job.NO_KEY = NO_KEY

-- Errors after which polling again cannot help.
local FATAL = { auth = true, not_found = true, invalid_request = true, io = true }
-- A video URL that expired answers with one of these; it is refreshed once.
local EXPIRED = { [403] = true, [404] = true, [410] = true }

-- A word for a shell command line, quoted when it needs to be.
local function shell_word(s)
  if s:find("^[%w%./_+,:@%-]+$") then return s end
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- The key of a kind of task in the learned schedule (schedule.lua).
local function kind_of(model, duration, resolution)
  if type(model) ~= "string" then return nil end
  if type(duration) == "number" then duration = string_format("%.14g", duration) end
  return model .. "|" .. tostring(duration or "") .. "|" .. tostring(resolution or "")
end
Job.kind_of = kind_of

-- spec: one of params (create first), id (poll), url (download only); and task,
-- out (a file path), interval (nil: the learned schedule), timeout, goal ("created" | "queried" | "completed"),
-- on_progress(event), on_status(job), index, refresh (query before trusting a
-- stored URL), resume_limit.  Returns the job, or nil, err for an invalid request.
function Job.new(client, spec)
  local cfg = client.cfg
  local t = now()
  local job = setmetatable({
    client = client, id = spec.id, task = spec.task, out = spec.out, url = spec.url,
    fixed = spec.interval, goal = spec.goal or "completed",
    deadline = t + (spec.timeout or (spec.url and cfg.download_timeout or cfg.wait_timeout)),
    on_progress = spec.on_progress, on_status = spec.on_status, index = spec.index,
    resume_limit = spec.resume_limit or cfg.resume_limit, params = spec.params,
    status = spec.task and spec.task.status, done = false, wake = t,
  }, Job)
  if spec.params then
    local path, body = client:_build_create(spec.params)
    if not path then return nil, body end
    if spec.out then -- a file that cannot be written is found before the task is paid for
      local ok, err = Request.check_out(spec.out)
      if not ok then return nil, err end
    end
    job.state, job.create_path, job.create_body = "creating", path, body
    job.local_id = client.journal and core.random_id() or nil
    job.model, job.kind = spec.params.model, kind_of(spec.params.model, spec.params.duration, spec.params.resolution)
  elseif spec.url then
    job.state = "downloading"
  elseif spec.out and not spec.refresh and spec.task and type(spec.task.video_url) == "string"
    and (spec.task.status == nil or spec.task.status == "completed") then
    job.state = "downloading"
  else
    job.state = "polling"
  end
  if spec.task then job:_origin(spec.task, t) end
  return job
end

-- When a task we did not create was created, on our monotonic clock, from its
-- `created` (seconds since the epoch); and its model, for the schedule.
-- A task this client created has its creation on that clock already (exact);
-- else `created` counts whole seconds, which widens what is learned from it.
function Job:_origin(task, t)
  if self.origin then return end
  if type(task.model) == "string" then self.model = self.model or task.model end
  local born = self.client:_born(task.id)
  if born then self.origin = born; return end
  local created = task.created
  if type(created) == "number" and created > 0 then
    self.origin, self.coarse = t - math_max(0, os_time() - created), 1 -- two whole-second clocks
  end
end

-- The time of this job's next poll after one answered at t: the fixed interval
-- when one was given, else the client's learned schedule.
function Job:_next_poll(t)
  if self.fixed then return t + self.fixed end
  return t + self.client:_scheduler():delay(self.kind, self.model, self.origin and t - self.origin)
end

-- A poll at t saw the task completed: how long it took, to within half the gap
-- since the last poll that saw it unfinished (nothing learned without one).
function Job:_took(t)
  local before = self.unfinished_at
  if not (before and self.origin) then return nil end
  local took, half = (before + t) / 2 - self.origin, (t - before) / 2 + (self.coarse or 0)
  self.client:_scheduler():learn(self.kind, self.model, took, half)
  return took, half
end

function Job:_event(kind, extra)
  local ev = { type = kind, id = self.id, task = self.task, status = self.task and self.task.status,
    index = self.index }
  if extra then for k, v in pairs(extra) do ev[k] = v end end
  return ev
end

function Job:_finish(err)
  self.done, self.state = true, self.state == "cancelled" and "cancelled" or "done"
  if err then
    if err.id == nil then err.id = self.id end
    if err.task == nil then err.task = self.task end
    self.err = err
  end
  self.client:_job_done(self)
  if self.on_status then self.on_status(self) end
end

-- A task answer arrived (create or poll).  The journal's "created" line stands
-- for the create's own status; polls record each change (a completion with how
-- long the task took, when that is known: took, within).
function Job:_seen(task, created, took, within)
  self.task, self.id = task, task.id
  local changed = task.status ~= self.status
  self.status = task.status
  local client = self.client
  if changed then
    -- no event or record is made for nobody: no listener, no journal
    if client.on_event then client:_emit(self:_event("status")) end
    if not created and client.journal then
      client:_journal { event = "status", id = self.id, status = task.status, took = took, within = within }
    end
  end
  if self.on_progress then self.on_progress(self:_event("status")) end
  if changed and self.on_status then self.on_status(self) end
end

function Job:_send(op, spec, t)
  spec.op = op
  local req = Request.new(self.client, self, spec)
  self.req = req
  req:send(t or now())
end

-- A poll's request (Request.new's spec, less its op); a lone query has no deadline.
function Job:_query(path)
  return { url = self.client.cfg.base_url .. path, path = path, auth = true,
    deadline = self.goal ~= "queried" and self.deadline or nil }
end

-- A query whose first attempt the client made at once (client.lua) and that
-- failed: its request takes over from there, that attempt spent, so retries,
-- backoff and the answer's reading are the same as for any poll.
function Job:_first_attempt(path, started, t, err, tr)
  local spec = self:_query(path)
  spec.op = "query"
  local req = Request.new(self.client, self, spec)
  self.req, req.attempt, req.sent, req.started = req, 1, true, started
  req:outcome(t, nil, err, tr)
end

function Job:_poll(t)
  -- a refresh of an expired URL is not a scheduled poll: it skips the budget
  if not self.refreshing then
    local later = self.client:_token(t)
    if later then return self.client:_at(math_min(later, self.deadline), self) end
  end
  local client = self.client
  local path, err = core.result_path(self.id)
  if not path then return self:_finish(err) end
  if not client.has_key then return self:_finish(new_error("auth", NO_KEY)) end
  self:_send("query", self:_query(path), t)
end

function Job:_download()
  local url = self.url or (self.task and self.task.video_url)
  if type(url) ~= "string" then
    return self:_finish(new_error("protocol", string_format("task %s is completed but has no video_url",
      tostring(self.id))))
  end
  if not url:find("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]") then
    return self:_finish(new_error("invalid_request", string_format("video_url: expected an http(s) URL, got %q",
      #url > 60 and url:sub(1, 60) .. "..." or url), { field = "video_url" }))
  end
  local path = url:match("^%a+://[^/]*(/[^?#]*)") or "/"
  self:_send("download", { url = url, path = path, deadline = self.deadline, part = self.out .. ".part",
    dest = self.out, resume_limit = self.resume_limit })
end

-- The job's request finished: take its answer.
function Job:_answer(req, t)
  local client = self.client
  if self.state == "creating" then
    local task, err = req.body, req.err -- the task table the core read, or its error
    if not task then
      client:_journal_failed(err, self.params, self.local_id)
      return self:_finish(err)
    end
    self.id = task.id
    local ok, jerr = client:_journal_created(task, self.params, self.local_id)
    if not ok then self.task = task; return self:_finish(jerr) end
    if self.cancelled then self.task = task; self.state = "cancelled"
      return self:_finish(new_error("io", "the job was cancelled", { created = true }))
    end
    self.state, self.origin, self.unfinished_at = "polling", t, t
    client:_born(task.id, t)
    self:_seen(task, true)
    if self.goal == "created" then return self:_finish() end
    return client:_at(self:_next_poll(t), self)
  elseif self.state == "polling" then
    local task, err = req.body, req.err -- the task table the core read, or its error
    if not task then
      if self.goal == "queried" or FATAL[err.kind] then return self:_finish(err) end
      self.last_err = err -- transient: poll again
      return client:_at(math_min(self:_next_poll(t), self.deadline), self)
    end
    self:_origin(task, t)
    local took, within
    if task.status == "completed" and self.status ~= "completed" then
      took, within = self:_took(t)
    elseif task.status ~= "completed" and task.status ~= "failed" then
      self.unfinished_at = t
    end
    self:_seen(task, nil, took, within)
    if self.goal == "queried" then return self:_finish() end
    if task.status == "completed" then
      if not self.out then return self:_finish() end
      self.state, self.refreshing, self.waited = "downloading", nil, true
      return self:_download()
    elseif task.status == "failed" then
      return self:_finish(new_error("task_failed", string_format("task %s failed: %s", tostring(self.id),
        tostring(task.error or "no reason given")), { task = task }))
    end
    return client:_at(math_min(self:_next_poll(t), self.deadline), self)
  else -- downloading
    self:_progress(req.bytes, req.total)
    if not req.err then
      self.path = self.out
      if self.task then self.task.path = self.out end
      if self.id then client:_journal { event = "downloaded", id = self.id, path = self.out } end
      return self:_finish()
    end
    local err = req.err
    if EXPIRED[err.status] and self.id and not self.refreshed and not self.url then
      self.refreshed, self.refreshing, self.state = true, true, "polling" -- ask for a fresh URL
      return self:_poll(t)
    end
    if self.waited and self.id then -- the task is done and paid for: its video can still be had
      err.message = string_format("%s; task %s is completed: `starvideos download %s %s` fetches its video",
        err.message, self.id, self.id, shell_word(self.out))
    end
    return self:_finish(err)
  end
end

-- Download progress, reported when it grew.
function Job:_progress(bytes, total)
  if bytes and bytes > (self.bytes or 0) then
    self.bytes, self.total = bytes, total
    local ev = self:_event("progress", { bytes = bytes, total = total, path = self.out })
    self.client:_emit(ev)
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
    self.req = nil
    self:_answer(req, t)
    return
  end
  if t < self.wake then return end
  if self.state == "creating" then
    local ok, err = self.client:_journal_pending(self.params, self.local_id)
    if not ok then return self:_finish(err) end
    -- a create has no deadline: once sent it is never abandoned, it may be paid for
    return self:_send("create", { url = self.client.cfg.base_url .. self.create_path, path = self.create_path,
      auth = true, body = self.create_body })
  end
  if t >= self.deadline then
    local msg = string_format("task %s not finished before the deadline (last status: %s)", tostring(self.id),
      self.task and tostring(self.task.status) or "unknown")
    if self.last_err and not self.task then msg = msg .. "; last error: " .. self.last_err.message end
    return self:_finish(new_error("timeout", msg))
  end
  if self.state == "polling" then return self:_poll(t) end
  return self:_download()
end

-- A job that ended is left alone; cancelling stops its transfers.  A create
-- already sent is never taken back (it may be paid for): the job ends as
-- cancelled once its answer is in, with the task recorded.
function Job:cancel()
  if self.done then return end
  if self.req and self.state == "creating" then
    if not self.req.queued then self.cancelled = true; return end
    -- still in the client's queue: never sent, so surely nothing was created
    self.req:cancel()
    self.req = nil
    self.client:_journal_failed({}, self.params, self.local_id)
    self.state = "cancelled"
    return self:_finish(new_error("io", "the job was cancelled (its create was never sent)"))
  end
  if self.req then self.req:cancel(); self.req = nil end
  self.state = "cancelled"
  self:_finish(new_error("io", "the job was cancelled"))
end

return Job
