-- Jobs: one task carried from create (or an existing id) through polling to a
-- downloaded file, as a state machine that never blocks.  A job advances when
-- the client's transfers do; `client:step(seconds)` drives the client's jobs for
-- frame loops, and the blocking helpers (wait, download, generate, wait_all,
-- resume) drive private jobs of their own, so all of them share one logic.
--
-- Stages: "create" -> "poll" -> "download" (only with `out`) -> done.

local core = require "starvideos.core"
local journal = require "starvideos.journal"

local type, ipairs, tostring, setmetatable, math_min, math_max, string_format =
  type, ipairs, tostring, setmetatable, math.min, math.max, string.format
local now = core.now

local J = {}

local Job = {}
Job.__index = Job
J.Job = Job

-- A URL that expired answers with one of these; it is refreshed once by a query.
local EXPIRED = { [403] = true, [404] = true, [410] = true }

function J.install(M, Client)
  local new_error, FATAL = M.new_error, M._FATAL

  local function set_status(self, job, task)
    job.task = task
    if task.status ~= job.status then
      job.status = task.status
      self:_emit { type = "status", id = job.id, status = task.status, task = task }
      if self.journal then journal.append(self.journal, { event = "status", id = job.id, status = task.status }) end
      if job.on_status then job.on_status(job) end
    end
  end

  local function finish(_, job, err)
    if job.req then job.req:close(); job.req = nil end
    job.done = true
    if err then
      err.id = err.id or job.id
      if err.task == nil then err.task = job.task end
      job.err = err
      if job.status ~= "failed" then job.status = "error" end
    end
    if job.on_status then job.on_status(job) end
  end

  -- Shared request budget: polls of all this client's jobs together stay under
  -- requests_per_second (a token bucket holding one second's worth).
  local function take_token(self, t)
    local rate = self.requests_per_second or 10
    local b = self._budget
    if not b then
      b = { tokens = math_max(1, rate), last = t }
      self._budget = b
    end
    b.tokens = math_min(math_max(1, rate), b.tokens + (t - b.last) * rate)
    b.last = t
    if b.tokens >= 1 then
      b.tokens = b.tokens - 1
      return true
    end
    return false, t + (1 - b.tokens) / rate
  end

  -- Make a job.  spec: params (create) | id (poll) | url (download only),
  -- task, out, interval, timeout, on_status, on_progress, resume_limit.
  function Client:_job(spec)
    local t = now()
    local job = setmetatable({
      id = spec.id, task = spec.task, out = spec.out, status = spec.task and spec.task.status,
      interval = spec.interval or 30, deadline = t + (spec.timeout or 1800),
      on_status = spec.on_status, on_progress = spec.on_progress,
      resume_limit = spec.resume_limit, url = spec.url, done = false, next_poll = t,
    }, Job)
    if spec.params then
      local req, err = self._c:create(spec.params)
      if not req then return nil, err end
      job.stage, job.req, job.params = "create", req, spec.params
    elseif spec.url then
      job.stage = "download"
    else
      job.stage = "poll"
    end
    return job
  end

  local function start_download(self, job)
    local url = job.url or (job.task and job.task.video_url)
    if type(url) ~= "string" then
      return finish(self, job, new_error("protocol", string_format(
        "task %s is completed but has no video_url", tostring(job.id))))
    end
    local req, err = self._c:download(url, job.out, job.deadline, job.resume_limit or 5)
    if not req then return finish(self, job, err) end
    job.req, job.bytes = req, -1
  end

  local function report_progress(self, job, req)
    local bytes, total = req:progress()
    if bytes and bytes ~= job.bytes then
      job.bytes, job.total = bytes, total
      local ev = { type = "progress", id = job.id, task = job.task, path = job.out, bytes = bytes,
        total = total }
      self:_emit(ev)
      if job.on_progress then job.on_progress(ev) end
    end
  end

  -- The answer of the job's request arrived.
  local function on_result(self, job, t)
    local req = job.req
    local res, err = req:result()
    if job.stage == "download" and res then report_progress(self, job, req) end
    req:close()
    job.req = nil
    if job.stage == "create" then
      if not res then
        self:_journal_maybe(err, job.params)
        return finish(self, job, err)
      end
      job.id = res.id
      local ok, jerr = self:_journal_created(res, job.params)
      if not ok then return finish(self, job, jerr) end
      job.stage, job.next_poll = "poll", t + job.interval
      set_status(self, job, res)
      if job.on_created then job.on_created(res) end
    elseif job.stage == "poll" then
      if not res then
        if FATAL[err.kind] then return finish(self, job, err) end
        job.last_err, job.next_poll = err, t + job.interval -- transient: poll again
        return
      end
      set_status(self, job, res)
      if job.on_poll then job.on_poll(res) end
      if res.status == "completed" then
        if not job.out then return finish(self, job) end
        job.stage = "download"
        return start_download(self, job)
      elseif res.status == "failed" then
        return finish(self, job, new_error("task_failed", string_format("task %s failed: %s", job.id,
          tostring(res.error or "no reason given")), { task = res, id = job.id }))
      end
      job.next_poll = t + job.interval
    else -- download
      if res then
        job.path = job.out
        if job.task then job.task.path = job.out end
        if self.journal and job.id then
          journal.append(self.journal, { event = "downloaded", id = job.id, path = job.out })
        end
        return finish(self, job)
      end
      if EXPIRED[err.status] and job.id and not job.refreshed and not job.url then
        job.refreshed, job.stage, job.next_poll = true, "poll", t -- ask for a fresh URL
        job.refreshing = true
        return
      end
      return finish(self, job, err)
    end
  end

  -- Advance one job as far as it can go without waiting.  Returns the time it
  -- next needs attention when it waits for a timer, or nil.
  function Client:_advance(job, t)
    if job.done then return nil end
    if job.req then
      if job.stage == "download" then report_progress(self, job, job.req) end
      if not job.req:done() then
        -- a create is never abandoned mid-flight: it may already have been paid for
        if job.stage ~= "create" and t >= job.deadline then
          return finish(self, job, new_error("timeout", string_format(
            "task %s: the deadline passed while %s", tostring(job.id),
            job.stage == "poll" and "polling" or "downloading"), { task = job.task }))
        end
        return nil
      end
      on_result(self, job, t)
      if job.done or job.req then return nil end
    end
    if t >= job.deadline then
      local st = job.task and job.task.status or "unknown"
      local msg = string_format("task %s not finished before the deadline (last status: %s)", tostring(job.id), st)
      if job.last_err and not job.task then msg = msg .. "; last error: " .. job.last_err.message end
      return finish(self, job, new_error("timeout", msg, { task = job.task }))
    end
    if job.stage == "download" then
      start_download(self, job)
      return nil
    end
    -- poll stage: a query when due and the budget allows
    -- wake for the next poll, or for the deadline when that comes first
    if t < job.next_poll then return math_min(job.next_poll, job.deadline) end
    local ok, later = true, nil
    if not job.refreshing then ok, later = take_token(self, t) end
    if not ok then return math_min(later, job.deadline) end
    local req, err = self._c:query(job.id, job.deadline)
    if not req then return finish(self, job, err) end
    job.req = req
    if job.refreshing then job.refreshing = nil end
    return nil
  end

  -- Advance every job of list: returns the ones still running and the earliest
  -- time one of them waits for; the finished ones are appended to `finished`.
  local function sweep(self, list, finished)
    local t, wake, keep = now(), nil, {}
    for _, job in ipairs(list) do
      local w = self:_advance(job, t)
      if job.done then
        if finished then finished[#finished + 1] = job end
      else
        keep[#keep + 1] = job
        if w and (not wake or w < wake) then wake = w end
      end
    end
    return keep, wake
  end

  -- Drive private jobs until all are done, pausing through `sleep` when given.
  function Client:_drive(list, sleep)
    local pending = list
    while true do
      local wake
      pending, wake = sweep(self, pending)
      self:_flush_events()
      if #pending == 0 then return end
      self:_pause(wake and math_max(0, wake - now()) or 0.25, sleep)
    end
  end

  -- ------------------------------------------------- non-blocking jobs

  local JOB_OPTIONS = {
    interval = M._checkers.nonneg, timeout = M._checkers.positive, out = M._checkers.str,
    on_status = M._checkers.fn, on_progress = M._checkers.fn,
  }

  local function register(self, job)
    self.jobs[#self.jobs + 1] = job
    return job
  end

  -- client:start(params, opts) -> job | nil, err   (the create is sent by step)
  function Client:start(params, opts)
    if type(params) ~= "table" then
      error("bad argument #1 to 'start' (table expected, got " .. type(params) .. ")", 2)
    end
    opts = M._check_options(opts, "start", JOB_OPTIONS)
    local job, err = self:_job { params = params, out = opts.out, interval = opts.interval,
      timeout = opts.timeout, on_status = opts.on_status, on_progress = opts.on_progress }
    if not job then return nil, err end
    job.status = "creating"
    return register(self, job)
  end

  -- client:watch(id_or_task, opts) -> job
  function Client:watch(id_or_task, opts)
    local id = M._task_id(id_or_task, "watch")
    opts = M._check_options(opts, "watch", JOB_OPTIONS)
    return register(self, self:_job { id = id, task = type(id_or_task) == "table" and id_or_task or nil,
      out = opts.out, interval = opts.interval, timeout = opts.timeout,
      on_status = opts.on_status, on_progress = opts.on_progress })
  end

  -- client:step(seconds) -> the jobs that finished during this step.  step(0)
  -- does the network work that is ready and returns at once; a longer step
  -- returns early once a job finishes.
  function Client:step(seconds)
    if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds < 0) then
      error("bad argument #1 to 'step' (seconds >= 0 expected, got " .. tostring(seconds) .. ")", 2)
    end
    local finished, stop = {}, now() + (seconds or 0)
    while true do
      local wake
      self.jobs, wake = sweep(self, self.jobs, finished)
      self._c:perform(0)
      self:_flush_events()
      local t = now()
      if #finished > 0 or t >= stop or #self.jobs == 0 then break end
      self:_pause(math_min(stop - t, wake and math_max(0, wake - t) or stop - t))
    end
    -- what finished during the last perform is reported now, not a step late
    self.jobs = sweep(self, self.jobs, finished)
    return finished
  end

  -- A job that ended is left alone by later steps; cancelling stops its
  -- transfers (a create already sent is never taken back: it may be paid for).
  function Job:cancel()
    if self.done then return end
    if self.req and self.stage ~= "create" then self.req:close(); self.req = nil end
    if not self.req then
      self.done, self.status = true, "cancelled"
      self.err = new_error("io", "the job was cancelled", { id = self.id, task = self.task })
    end
  end
end

return J
