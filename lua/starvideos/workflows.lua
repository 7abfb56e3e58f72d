-- What users do with the API, as blocking calls over private jobs (jobs.lua):
-- wait, download, generate, wait_all, resume.

local core = require "starvideos.core"
local journal = require "starvideos.journal"

local type, ipairs, tostring, string_format = type, ipairs, tostring, string.format
local now = core.now

local W = {}

function W.install(M, Client)
  local new_error, check = M.new_error, M._check_options
  local C = M._checkers

  -- A `sleep` given to a call, else the client's: used for every pause, so the
  -- same code yields inside a coroutine scheduler.
  local function sleeper(self, opts) return opts.sleep or self.sleep end

  local WAIT = { interval = C.nonneg, timeout = C.positive, on_progress = C.fn, sleep = C.fn }

  -- client:wait(id_or_task, {interval=30, timeout=1800, on_progress=fn, sleep=fn})
  function Client:wait(id_or_task, opts)
    local id = M._task_id(id_or_task, "wait")
    opts = check(opts, "wait", WAIT)
    local job = self:_job { id = id, task = type(id_or_task) == "table" and id_or_task or nil,
      interval = opts.interval, timeout = opts.timeout }
    job.on_poll = opts.on_progress
    self:_drive({ job }, sleeper(self, opts))
    if job.err then return nil, job.err end
    return job.task
  end

  local DOWNLOAD = { on_progress = C.fn, timeout = C.positive, sleep = C.fn, resume_limit = C.nonneg }

  -- client:download(task_or_url, path, {on_progress=fn, timeout=}) -> path | nil, err
  function Client:download(task_or_url, path, opts)
    if type(path) ~= "string" or path == "" then
      error("bad argument #2 to 'download' (file path expected, got " .. type(path) .. ")", 2)
    end
    opts = check(opts, "download", DOWNLOAD)
    local spec = { out = path, timeout = opts.timeout or 3600, on_progress = opts.on_progress,
      resume_limit = opts.resume_limit }
    if type(task_or_url) == "string" then
      spec.url = task_or_url
    elseif type(task_or_url) == "table"
      and (type(task_or_url.video_url) == "string" or type(task_or_url.id) == "string") then
      spec.task, spec.id = task_or_url, task_or_url.id
    else
      error("bad argument #1 to 'download' (task or URL expected, got " .. type(task_or_url) .. ")", 2)
    end
    local job = self:_job(spec)
    if spec.task and type(spec.task.video_url) == "string" then job.stage = "download" end
    if spec.task and job.stage == "poll" then
      -- no URL yet: one query; a task that is not completed cannot be downloaded
      local task, err = self:query(spec.id)
      if not task then return nil, err end
      if task.status ~= "completed" then
        return nil, new_error("invalid_request", string_format(
          "task %s is %s, not completed: nothing to download yet", spec.id, tostring(task.status)),
          { task = task, id = spec.id, field = "task" })
      end
      job.task, job.stage = task, "download"
    end
    self:_drive({ job }, sleeper(self, opts))
    if job.err then return nil, job.err end
    return path
  end

  local GENERATE = { out = C.str, interval = C.nonneg, timeout = C.positive, on_progress = C.fn, sleep = C.fn }

  -- client:generate(params, {out=, interval=, timeout=, on_progress=}) -> task | nil, err
  -- on_progress(event): {stage="created"|"polled"|"downloading"|"done", task=, bytes=, total=}
  function Client:generate(params, opts)
    if type(params) ~= "table" then
      error("bad argument #1 to 'generate' (table expected, got " .. type(params) .. ")", 2)
    end
    opts = check(opts, "generate", GENERATE)
    local progress = opts.on_progress
    local job, err = self:_job { params = params, out = opts.out, interval = opts.interval,
      timeout = opts.timeout,
      on_progress = progress and function(ev)
        progress { stage = "downloading", task = ev.task, bytes = ev.bytes, total = ev.total }
      end }
    if not job then return nil, err end
    if progress then
      job.on_created = function(task) progress { stage = "created", task = task } end
      job.on_poll = function(task) progress { stage = "polled", task = task } end
    end
    self:_drive({ job }, sleeper(self, opts))
    if job.err then return nil, job.err end
    if progress then progress { stage = "done", task = job.task } end
    return job.task
  end

  local WAIT_ALL = { interval = C.nonneg, timeout = C.positive, on_progress = C.fn, sleep = C.fn,
    out_dir = C.str }

  -- Drive private jobs for many tasks and collect {task=, err=, path=} in order.
  local function run_many(self, jobs, opts)
    self:_drive(jobs, sleeper(self, opts))
    local out = {}
    for i, job in ipairs(jobs) do
      out[i] = { task = job.task, err = job.err, path = job.path }
    end
    return out
  end

  local function safe_name(id)
    return (id:gsub("[^%w%-_.]", "_"):gsub("^%.", "_"))
  end

  -- client:wait_all(ids_or_tasks, {interval=30, timeout=1800, on_progress=fn(task, i)})
  -- All polled at once on this thread; one failure does not stop the others.
  function Client:wait_all(list, opts)
    if type(list) ~= "table" then
      error("bad argument #1 to 'wait_all' (list of ids or tasks expected, got " .. type(list) .. ")", 2)
    end
    opts = check(opts, "wait_all", WAIT_ALL)
    local jobs = {}
    for i, v in ipairs(list) do
      local id = M._task_id(v, "wait_all")
      local job = self:_job { id = id, task = type(v) == "table" and v or nil, interval = opts.interval,
        timeout = opts.timeout, out = opts.out_dir and (opts.out_dir .. "/" .. safe_name(id) .. ".mp4") }
      if opts.on_progress then job.on_poll = function(task) opts.on_progress(task, i) end end
      jobs[i] = job
    end
    return run_many(self, jobs, opts)
  end

  local RESUME = { dir = C.str, interval = C.nonneg, timeout = C.positive, sleep = C.fn,
    journal = C.str, on_progress = C.fn }

  -- client:resume{dir=, interval=, timeout=} -> list of {task=, err=, path=}
  -- Every journalled task not yet downloaded is waited for and downloaded into
  -- dir as <id>.mp4; a torn last line in the journal is skipped.
  function Client:resume(opts)
    opts = check(opts, "resume", RESUME)
    local path = opts.journal or self.journal
    if not path then
      return nil, new_error("invalid_request", "resume needs a journal: starvideos.new{journal=path}",
        { field = "journal" })
    end
    local list, err = journal.read(path)
    if not list then return nil, new_error("io", err, { field = "journal" }) end
    local dir = opts.dir or "."
    local jobs = {}
    for i, t in ipairs(journal.unfinished(list)) do
      local job = self:_job { id = t.id, interval = opts.interval, timeout = opts.timeout,
        out = dir .. "/" .. safe_name(t.id) .. ".mp4" }
      job.next_poll = now() -- a completed task's URL may have expired: ask again first
      if opts.on_progress then job.on_poll = function(task) opts.on_progress(task, i) end end
      jobs[i] = job
    end
    return run_many(self, jobs, opts)
  end
end

return W
