--- The client: every public method in one place, and the one drive loop they
-- all share.  A call builds jobs (job.lua), jobs send requests (request.lua)
-- through the client's transport (transport.lua), and the drive loop moves
-- them: timers that fell due, exchanges the transport says finished, download
-- progress.  Blocking calls drive until their jobs are done; step(0) drives once.
--
-- Made by `starvideos.new`.  Every `on_progress` (and the client's `on_event`)
-- receives one shape: `{type=, id=, task=, status=, bytes=, total=, index=, path=}`,
-- `type` being `"status"` (a task seen) or `"progress"` (download bytes).
-- A wrong argument raises; what the network or the service did is returned as
-- `nil, err` (see the `starvideos` module for the error's fields).
-- @classmod starvideos.client

local core = require "starvideos.core"
local options = require "starvideos.options"
local journal = require "starvideos.journal"
local transport = require "starvideos.transport"
local Job = require "starvideos.job"
local Request = require "starvideos.request"
local Schedule = require "starvideos.schedule"

local type, ipairs, pairs, next, tostring, setmetatable, error, math_min, math_max, string_format =
  type, ipairs, pairs, next, tostring, setmetatable, error, math.min, math.max, string.format
local now = core.now
local new_error, argerror, check = options.new_error, options.argerror, options.check
local C = options.checkers

local Client = {}
Client.__index = Client

-- ------------------------------------------------------------ creation

--- A new client: `starvideos.new`, which lists the options.
-- @tparam[opt] table opts
-- @treturn starvideos.client
function Client.new(opts)
  local cfg = options.client(opts)
  local self = setmetatable({
    cfg = cfg, base_url = cfg.base_url, journal = cfg.journal, sleep = cfg.sleep, on_event = cfg.on_event,
    has_key = cfg.api_key ~= nil,
    _inflight = {}, _downloads = {}, _timers = {}, _finished = {}, _budget = nil, _commits = {},
    _sending = 0, _queue = {}, _qhead = 1, _qtail = 0, _max_sending = 4 * cfg.max_connections,
  }, Client)
  -- the key lives in the transport only: never in a table a user might print
  self.transport = cfg.transport or transport.new(cfg)
  cfg.api_key, cfg.transport = nil, nil
  return self
end

--- End every exchange in flight and free the connections; any later call on
-- the client raises.  Also done when the client is collected, and on 5.4 at
-- the end of a `<close>` variable's scope.
function Client:close()
  local t = self.transport
  if t then self.transport = nil; t:close() end
end
Client.__close = Client.close
Client.__gc = Client.close

function Client:__tostring()
  return string_format("starvideos client (%s)", (self.base_url:gsub("//[^/@]*@", "//")))
end

local function live(self)
  if not self.transport then error("the starvideos client is closed", 3) end
end

-- ------------------------------------------------------------ internals

function Client:_emit(ev)
  local f = self.on_event
  if f then f(ev) end
end

-- Timers: a binary heap of {at, obj}; obj.wake says which entry is current.
function Client:_at(at, obj)
  obj.wake = at
  local h = self._timers
  local i = #h + 1
  h[i] = { at, obj }
  while i > 1 do
    local p = (i - i % 2) / 2
    if h[p][1] <= at then break end
    h[p], h[i] = h[i], h[p]
    i = p
  end
end

local function pop(h)
  local top, n = h[1], #h
  local last = h[n]
  h[n] = nil
  n = n - 1
  if n == 0 then return top end
  h[1] = last
  local i = 1
  while true do
    local l, small = i * 2, i
    if l <= n and h[l][1] < h[small][1] then small = l end
    if l + 1 <= n and h[l + 1][1] < h[small][1] then small = l + 1 end
    if small == i then break end
    h[i], h[small] = h[small], h[i]
    i = small
  end
  return top
end

-- At most 4 * max_connections exchanges are handed to the transport at once;
-- the requests beyond wait here in order, so thousands of polls falling due
-- together cost a queue entry each, not a transport's buffers each.  A request
-- that waited is sent (req:send again) as soon as an exchange finishes; one
-- with a deadline is looked at again then (a timer), so waiting never outlasts it.
function Client:_admit(req)
  if self._sending < self._max_sending then return true end
  if not req.queued then
    req.queued = true
    local tail = self._qtail + 1
    self._queue[tail], self._qtail = req, tail
    if req.deadline then self:_at(req.deadline, req) end
  end
  return false
end

function Client:_track(req)
  self._inflight[req.handle] = req
  self._sending = self._sending + 1
  if req.op == "download" then self._downloads[req] = true end
end

function Client:_untrack(req)
  local h = req.handle
  if h and self._inflight[h] then self._inflight[h] = nil; self._sending = self._sending - 1 end
  self._downloads[req] = nil
end

-- Send the waiting requests there is room for.
function Client:_unqueue()
  local q, i = self._queue, self._qhead
  while i <= self._qtail and self._sending < self._max_sending do
    local req = q[i]
    q[i] = nil
    i = i + 1
    self._qhead = i
    req.queued = nil
    if not req.done and not req.handle then req:send(now()) end
  end
  if i > self._qtail then self._qhead, self._qtail = 1, 0 end
end

-- Everything that is ready, without waiting: timers that fell due, network work,
-- exchanges that finished, download progress.
function Client:_tick()
  local h = self._timers
  if h[1] then
    local t = now()
    while h[1] and h[1][1] <= t do
      local e = pop(h)
      local obj = e[2]
      if obj.wake == e[1] then obj:advance(t) end
    end
  end
  local tr = self.transport
  tr:poll(0)
  local x = tr:finished()
  while x do
    local req = self._inflight[x]
    if req then
      self:_untrack(req)
      req:finished(now())
    else
      tr:result(x)
    end
    x = tr:finished()
  end
  if self._qtail >= self._qhead then self:_unqueue() end
  if next(self._downloads) then
    for req in pairs(self._downloads) do
      if req.handle then req.owner:_progress(tr:progress(req.handle)) end
    end
  end
  if next(self._commits) then
    local done = {}
    for req in pairs(self._commits) do
      local ok, cerr = req.commit:poll()
      if ok ~= nil then done[#done + 1] = { req, ok, cerr } end
    end
    for _, d in ipairs(done) do
      self._commits[d[1]] = nil
      d[1]:committed(d[2], d[3])
    end
  end
end

-- A finished download whose commit thread runs (request.lua): polled each tick.
function Client:_committing(req)
  self._commits[req] = true
end

-- Let up to `wait` seconds pass while the transport works: inside the transport
-- (which returns as soon as an exchange finishes), or through a `sleep` given
-- by the caller (a coroutine scheduler's), coming back often while exchanges run.
function Client:_pause(wait, sleep)
  if next(self._downloads) then wait = math_min(wait, 0.25) end -- progress stays live
  if next(self._commits) then wait = math_min(wait, 0.005) end -- a commit thread to look at
  if wait <= 0 then return end
  if sleep then
    if next(self._inflight) then self.transport:poll(0); wait = math_min(wait, 0.01) end
    sleep(wait)
  else
    self.transport:poll(wait)
  end
end

-- The one drive loop: until done() or the time `stop` (monotonic).
function Client:_drive(done, stop, sleep)
  while true do
    self:_tick()
    if done() then return end
    local t = now()
    if stop and t >= stop then return end
    local wake = self._timers[1]
    local wait = wake and math_max(0, wake[1] - t) or 1
    if stop then wait = math_min(wait, stop - t) end
    self:_pause(wait, sleep)
  end
end

-- Drive private jobs until all are done.
function Client:_run(jobs, sleep)
  local group = { left = #jobs }
  for _, job in ipairs(jobs) do
    job.group = group
    self:_at(now(), job)
  end
  self:_drive(function() return group.left == 0 end, nil, sleep or self.sleep)
end

function Client:_job_done(job)
  local g = job.group
  if g then g.left = g.left - 1 end
  if job.registered then self._finished[#self._finished + 1] = job end
end

-- The learned polling schedule (schedule.lua), made at its first use and
-- taught once from the journal's finished tasks when there is a journal.
function Client:_scheduler()
  local s = self._schedule
  if not s then
    s = Schedule.new(self.cfg)
    self._schedule = s
    if self.journal then
      local list = journal.read(self.journal) -- none yet, or unreadable: nothing to learn
      for _, t in ipairs(list or {}) do
        if t.took then s:learn(Job.kind_of(t.model, t.duration, t.resolution), t.model, t.took, t.within) end
      end
    end
  end
  return s
end

-- When this client's creates were answered, by task id, for a later wait or
-- watch of the same task (the service's `created` counts whole seconds): the
-- newest 4096.  born(id) -> time | nil; born(id, t) records it.
local BORN_KEEP = 4096
function Client:_born(id, t)
  local b = self._births
  if not b then b = { at = {}, ring = {}, next = 1 }; self._births = b end
  if t == nil then return b.at[id] end
  local old = b.ring[b.next]
  if old then b.at[old] = nil end
  b.ring[b.next], b.at[id] = id, t
  b.next = b.next % BORN_KEEP + 1
end

-- Polls of all this client's tasks together stay under requests_per_second (a
-- token bucket holding one second's worth).  nil when a token was taken, else
-- the time one will be there.
function Client:_token(t)
  local rate = self.cfg.requests_per_second
  local cap = math_max(1, rate)
  local b = self._budget
  if not b then b = { tokens = cap, last = t }; self._budget = b end
  b.tokens = math_min(cap, b.tokens + (t - b.last) * rate)
  b.last = t
  if b.tokens >= 1 then b.tokens = b.tokens - 1; return nil end
  return t + (1 - b.tokens) / rate
end

-- Build a create (validation first, then the key): path, body | nil, err.
function Client:_build_create(params)
  local text, err = options.extra_json(params)
  if err then return nil, err end
  local path, body = core.build_create(params, text)
  if not path then return nil, body end
  if not self.has_key then
    return nil, new_error("auth", Job.NO_KEY)
  end
  return path, body
end

-- The journal.  Before a create is sent, a synced "pending" record; after its
-- answer, the task's id ("created") or word that nothing was created
-- ("abandoned").  A paid task is on disk before create returns; when it cannot
-- be, the caller still gets the id in the error.
function Client:_journal(rec, sync)
  if self.journal then return journal.append(self.journal, rec, sync) end
  return true
end

-- Before anything is paid for: a journal that cannot be written stops the create.
function Client:_journal_pending(params, lid)
  if not self.journal then return true end
  local ok, err = journal.check(self.journal)
  if ok then
    ok, err = self:_journal({ event = "pending", ["local"] = lid, model = params.model,
      prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil }, true)
  end
  if ok then return true end
  return nil, new_error("io", err .. " (nothing was sent)", { field = "journal" })
end

function Client:_journal_created(task, params, lid)
  local ok, err = self:_journal({ event = "created", id = task.id, ["local"] = lid, model = params.model,
    duration = params.duration, resolution = params.resolution, prompt = params.prompt }, true)
  if ok then return true end
  return nil, new_error("io", string_format("task %s was created but %s", task.id, err),
    { task = task, id = task.id, field = "journal", created = true })
end

-- A create that failed: with an id read from an unusable answer it is journalled
-- as created (uncertain), so resume finds it; when the server surely created
-- nothing the pending record is settled; otherwise it stays pending.
function Client:_journal_failed(err, params, lid)
  if not self.journal then return end
  if err.maybe_created and type(err.id) == "string" then
    self:_journal({ event = "created", id = err.id, ["local"] = lid, model = params.model, prompt = params.prompt,
      uncertain = true }, true)
  elseif not err.maybe_created then
    self:_journal { event = "abandoned", ["local"] = lid }
  else
    err.pending = lid
  end
end

local function task_id(v, where)
  if type(v) == "string" then return v end
  if type(v) == "table" and type(v.id) == "string" then return v.id end
  argerror(1, where, "task id or task table", type(v) == "table" and "a table without an id" or type(v), 4)
end

local function need_table(v, n, where)
  if type(v) ~= "table" then argerror(n, where, "table", type(v), 4) end
end

-- One job, driven to its end: its task, or nil, err.  Its first step is taken
-- at once, not through the timer heap (a lone query never touches the heap).
local function run_one(self, job, err, sleep)
  if not job then return nil, err end
  job:advance(now())
  if not job.done then
    self:_drive(function() return job.done end, nil, sleep or self.sleep)
  end
  if job.err then return nil, job.err end
  return job.task
end

-- A lone query, sent at once when nothing else needs the drive loop: no
-- listener, no journal, no caller's sleep, nothing in flight, waiting or
-- committing, and a token in the budget.  Its answer read the same way (the
-- core's verdict, which builds the task) costs a quarter less than a job's
-- round: no job, request or timer is made.  Returns the task, or nil, err; or
-- false when it was not taken; or false, err, path, started, tr when its one
-- attempt failed: the caller's job goes on from there (retries, backoff).
local function query_at_once(self, id)
  if self.on_event or self.journal or self.sleep or self._sending > 0 or self._timers[1]
    or next(self._commits) or not self.has_key then
    return false
  end
  local started = now()
  if self:_token(started) then return false end
  local path, perr = core.result_path(id)
  if not path then return nil, perr end
  local cfg, transport_ = self.cfg, self.transport
  local wire = Request.new_wire(cfg, "query", cfg.base_url .. path, true)
  wire.timeout = cfg.timeout
  local h, serr = transport_:send(wire)
  if not h then return nil, serr end
  local x
  repeat
    transport_:poll(1)
    x = transport_:finished()
    if x and x ~= h then transport_:result(x) end -- not ours (none should be): spent
  until x == h
  local body, err, tr = transport_:result(h)
  if body then return body end -- the task, read by the core
  return false, err, path, started, tr
end

-- ------------------------------------------------------------ the API

--- Create a task.  The request is checked against its model's rules first: an
-- invalid one never reaches the network.  With a journal, a synced `pending`
-- record is written before it is sent and the task's record once its id is
-- known.  A create is resent only when it surely created nothing.
-- @tparam table params `model` (`starvideos_o3`, `videos`, `videos_fast`,
-- `videos_stable`, `videos_stable_fast`), `prompt`, `duration`, `ratio`,
-- `resolution`, `first_image` + `last_image`, `referenceImages`,
-- `referenceVideos`, `referenceAudios` (lists of URLs), `extra` (a table sent as is)
-- @return the queued task, or `nil` and an error (`maybe_created` when it may
-- have been paid for although no id came back)
function Client:create(params)
  need_table(params, 1, "create")
  live(self)
  return run_one(self, Job.new(self, { params = params, goal = "created" }))
end

--- The task as the service sees it now (one request, retried on network errors,
-- timeouts, 429 and 5xx).
-- @param id a task id, or a task
-- @return the task, or `nil` and an error
function Client:query(id)
  id = task_id(id, "query")
  live(self)
  local task, err, path, started, tr = query_at_once(self, id)
  if task ~= false then return task, err end
  local job = Job.new(self, { id = id, goal = "queried" })
  if path then job:_first_attempt(path, started, now(), err, tr) end
  return run_one(self, job)
end

local WAIT = { interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn }

--- Poll a task until it is completed or failed.  Without `interval` the polls
-- follow the learned schedule: from how long earlier tasks of the same model,
-- duration and resolution took (seen by this client, and read from its journal),
-- few polls early and denser ones where the task is likely to finish, never
-- closer than `min_interval`, spending no more polls per task than the client's
-- `interval` (30 s) would, but for tasks that finish within `interval`: up to one
-- more each (the README's "Polling:"); until a few tasks were seen, every `interval`.
-- @param id_or_task a task id, or a task
-- @tparam[opt] table opts `interval` (seconds between polls: a fixed schedule),
-- `timeout` (seconds, default 1800), `on_progress` (`function(event)`, each poll),
-- `sleep` (`function(seconds)`, every pause goes through it)
-- @return the completed task, or `nil` and an error (`task_failed` for a failed task)
function Client:wait(id_or_task, opts)
  local id = task_id(id_or_task, "wait")
  opts = check(opts, "wait", WAIT)
  live(self)
  return run_one(self, Job.new(self, { id = id, task = type(id_or_task) == "table" and id_or_task or nil,
    interval = opts.interval, timeout = opts.timeout, on_progress = opts.on_progress }), nil, opts.sleep)
end

local DOWNLOAD = { on_progress = C.fn, timeout = C.seconds, sleep = C.fn, resume_limit = C.resumes }

--- Download a task's video to a file.  The bytes go to `path .. ".part"`,
-- a broken transfer resumes with `Range`, an expired URL is asked for again,
-- and the file appears whole at `path` (synced, then renamed).  A `.part` an
-- earlier call left (a Ctrl-C, a crash) is gone on from: the 64 KiB before its
-- end are fetched again and must match it, else the download starts from byte 0.
-- @param target a completed task, a task id (queried for its URL), or a video URL
-- @string path the file to write
-- @tparam[opt] table opts `on_progress` (`function(event)`), `timeout` (seconds,
-- default 3600), `sleep`, `resume_limit` (reconnections, default 5)
-- @return `path`, or `nil` and an error
function Client:download(target, path, opts)
  if type(path) ~= "string" or path == "" then argerror(2, "download", "file path", type(path)) end
  opts = check(opts, "download", DOWNLOAD)
  live(self)
  local spec = { out = path, timeout = opts.timeout or self.cfg.download_timeout, on_progress = opts.on_progress,
    resume_limit = opts.resume_limit }
  local kind = type(target)
  if kind == "string" and target:find("^%a[%w+.-]*://") then
    spec.url = target
  elseif kind == "table" and type(target.video_url) == "string" then
    spec.task, spec.id = target, target.id
  elseif (kind == "string" and target ~= "") or (kind == "table" and type(target.id) == "string") then
    -- an id, or a task without its URL: one query for it
    local id = kind == "table" and target.id or target
    local task, err = self:query(id)
    if not task then return nil, err end
    if task.status ~= "completed" then
      return nil, new_error("invalid_request", string_format(
        "task %s is %s, not completed: nothing to download yet", id, tostring(task.status)),
        { task = task, id = id, field = "task" })
    end
    spec.task, spec.id = task, id
  else
    argerror(1, "download", "task, task id or URL", kind == "table" and "a table without an id" or kind)
  end
  local _, err = run_one(self, Job.new(self, spec), nil, opts.sleep)
  if err then return nil, err end
  return path
end

local GENERATE = { out = C.path, interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn }

--- Create, wait and (with `out`) download, in one call.  An `out` whose
-- folder takes no new file (or that is a folder) is refused before the create:
-- `nil, err` with `err.kind == "io"` and `err.field == "out"`.  A download that
-- fails after the task completed says how to fetch the video later.
-- @tparam table params as for `create`
-- @tparam[opt] table opts `out` (the video's file), `interval`, `timeout`,
-- `on_progress`, `sleep`
-- @return the completed task (`task.path` is `out` when given), or `nil` and an error
function Client:generate(params, opts)
  need_table(params, 1, "generate")
  opts = check(opts, "generate", GENERATE)
  live(self)
  local job, err = Job.new(self, { params = params, out = opts.out, interval = opts.interval,
    timeout = opts.timeout, on_progress = opts.on_progress })
  return run_one(self, job, err, opts.sleep)
end

local function safe_name(id)
  return (id:gsub("[^%w%-_.]", "_"):gsub("^%.", "_"))
end

-- Drive jobs for many tasks; {task=, err=, path=} for each, in order.
local function run_many(self, jobs, sleep)
  self:_run(jobs, sleep)
  local out = {}
  for i, job in ipairs(jobs) do out[i] = { task = job.task, err = job.err, path = job.path } end
  return out
end

local WAIT_ALL = { interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn, out_dir = C.path }

--- Wait for many tasks at once; one failure does not stop the others.
-- @tab list task ids or tasks
-- @tparam[opt] table opts `interval`, `timeout`, `on_progress` (events carry
-- `index`, the position in `list`), `sleep`, `out_dir` (download each video
-- there as `<id>.mp4`)
-- @return a list of `{task=, err=, path=}`, in the order of `list`
function Client:wait_all(list, opts)
  if type(list) ~= "table" then argerror(1, "wait_all", "list of ids or tasks", type(list)) end
  opts = check(opts, "wait_all", WAIT_ALL)
  live(self)
  local jobs = {}
  for i, v in ipairs(list) do
    local id = task_id(v, "wait_all")
    jobs[i] = assert(Job.new(self, { id = id, task = type(v) == "table" and v or nil, interval = opts.interval,
      timeout = opts.timeout, index = i, on_progress = opts.on_progress,
      out = opts.out_dir and (opts.out_dir .. "/" .. safe_name(id) .. ".mp4") }))
  end
  return run_many(self, jobs, opts.sleep)
end

local RESUME = { dir = C.path, interval = C.interval, timeout = C.seconds, sleep = C.fn, journal = C.path,
  on_progress = C.fn }

--- Carry every journalled task not yet downloaded to a file: each is waited
-- for and downloaded into `dir` as `<id>.mp4`; a torn line in the journal is skipped.
-- @tparam[opt] table opts `dir` (default "."), `journal` (default the client's),
-- `interval`, `timeout`, `on_progress`, `sleep`
-- @return a list of `{task=, err=, path=}`, or `nil` and an error (no journal,
-- or one that cannot be read)
function Client:resume(opts)
  opts = check(opts, "resume", RESUME)
  live(self)
  local path = opts.journal or self.journal
  if not path then
    return nil, new_error("invalid_request", "resume needs a journal: starvideos.new{journal=path}",
      { field = "journal" })
  end
  local list, err = journal.read(path)
  if not list then return nil, new_error("io", err, { field = "journal" }) end
  local dir, jobs = opts.dir or ".", {}
  for i, t in ipairs(journal.unfinished(list)) do
    -- a completed task's URL may have expired: ask for it again first
    jobs[i] = assert(Job.new(self, { id = t.id, interval = opts.interval, timeout = opts.timeout, index = i,
      refresh = true, on_progress = opts.on_progress, out = dir .. "/" .. safe_name(t.id) .. ".mp4" }))
  end
  return run_many(self, jobs, opts.sleep)
end

--- The creates whose answer never came (the task may exist): `starvideos.pending`
-- on the client's journal.
-- @tparam[opt] table opts `journal` (default the client's)
-- @return a list of `{["local"]=, model=, prompt_hash=, time=}`, or `nil` and an error
function Client:pending(opts)
  opts = check(opts, "pending", { journal = C.path })
  local path = opts.journal or self.journal
  if not path then
    return nil, new_error("invalid_request", "pending needs a journal: starvideos.new{journal=path}",
      { field = "journal" })
  end
  return require("starvideos").pending(path)
end

-- ------------------------------------------------------------ jobs

local JOB = { interval = C.interval, timeout = C.seconds, out = C.path, on_status = C.fn, on_progress = C.fn }

local function register(self, job)
  job.registered = true
  self:_at(now(), job)
  return job
end

--- Start a task as a non-blocking job: nothing is sent until `step`, which
-- moves it through create, polling and (with `out`) the download.  A job has
-- `state` (`"creating"`, `"polling"`, `"downloading"`, `"done"`, `"cancelled"`),
-- `status` (the task's), `task`, `id`, `err`, `path`, `done`, and `job:cancel()`
-- (a create already sent is never taken back).
-- @tparam table params as for `create`
-- @tparam[opt] table opts `out`, `interval`, `timeout`, `on_status`
-- (`function(job)`, when the task's status changes and when the job ends), `on_progress`
-- @return the job, or `nil` and an error (an invalid request, or an `out` that
-- cannot be written, as for `generate`)
function Client:start(params, opts)
  need_table(params, 1, "start")
  opts = check(opts, "start", JOB)
  live(self)
  local job, err = Job.new(self, { params = params, out = opts.out, interval = opts.interval,
    timeout = opts.timeout, on_status = opts.on_status, on_progress = opts.on_progress })
  if not job then return nil, err end
  return register(self, job)
end

--- Follow an existing task as a non-blocking job (see `start`).
-- @param id_or_task a task id, or a task
-- @tparam[opt] table opts as for `start`
-- @return the job
function Client:watch(id_or_task, opts)
  local id = task_id(id_or_task, "watch")
  opts = check(opts, "watch", JOB)
  live(self)
  return register(self, assert(Job.new(self, { id = id, task = type(id_or_task) == "table" and id_or_task or nil,
    out = opts.out, interval = opts.interval, timeout = opts.timeout, on_status = opts.on_status,
    on_progress = opts.on_progress })))
end

local NONE = setmetatable({}, { __newindex = function() error("step's empty result is read-only", 2) end })

--- Move the jobs: `step(0)` (or `step()`) does the network work that is ready
-- and returns at once; a longer step returns early once a job finishes.
-- @number[opt] seconds at most this long (default 0)
-- @return the jobs that finished during this step (an empty, read-only table when none)
function Client:step(seconds)
  if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds < 0) then
    argerror(1, "step", "seconds >= 0", tostring(seconds))
  end
  live(self)
  local fin = self._finished
  if seconds and seconds > 0 then
    self:_drive(function() return fin[1] ~= nil end, now() + seconds)
  else
    self:_tick()
  end
  if not fin[1] then return NONE end
  self._finished = {}
  return fin
end

return Client
