--- The client: the public API, a light handle on its key's engine.  A call builds
-- jobs (job.lua) handed the engine (engine.lua: timers, budget, transport, the
-- drive loop) and the client's ledger (ledger.lua: journal, learned schedule).
-- Made by `starvideos.new`.  Every `on_progress` (and `on_event`) receives one shape:
-- `{type=, id=, task=, status=, bytes=, total=, index=, path=}`, `type` being
-- `"status"` (a task seen) or `"progress"` (download bytes).  A wrong argument
-- raises; what the network or the service did is `nil, err` (see `starvideos`).
-- @classmod starvideos.client

local core = require "starvideos.core"
local options = require "starvideos.options"
local Engine = require "starvideos.engine"
local Ledger = options.lazy "starvideos.ledger" -- (with the schedule) by the first client
local Job = options.lazy "starvideos.job" -- (with request and notify) at the first job
local Keep = options.lazy "starvideos.keep" -- resume, keep: loaded on first use

local type, ipairs, tostring, setmetatable, rawset, error, string_format =
  type, ipairs, tostring, setmetatable, rawset, error, string.format
local now, run_one = core.now, Engine.run_one -- (run_one called directly: not looked up through a metatable)
local new_error, argerror, check = options.new_error, options.argerror, options.check
local task_id, need_table, S = options.task_id, options.need_table, options.CALLS

local Client = {}
Client.__index = Client
local GC = {} -- close's argument when the client is collected

--- A new client: `starvideos.new`, which lists the options.
-- @tparam[opt] table opts
-- @treturn starvideos.client
function Client.new(opts)
  local cfg = options.client(opts)
  cfg.has_key = cfg.api_key ~= nil
  local engine = Engine.for_client(cfg)
  -- the key lives in the transport only: never in a table a user might print
  cfg.api_key, cfg.transport = nil, nil
  return setmetatable({ cfg = cfg, base_url = cfg.base_url, journal = cfg.journal, engine = engine, finished = {},
    ledger = Ledger.open(cfg, engine) }, Client)
end

--- Cancel this client's jobs (only its own) and let go of its engine; a later call
-- raises.  The key's last client closes the transport.  A download in flight keeps
-- its `.part` only where the ledger records it (with a journal: a `part` record
-- naming the task, so that the next `download`, `resume` or `keep` of it goes on
-- with `Range`); without a journal the `.part` is removed.  Webhooks in flight get
-- 5 s more (not when collected: they stay owed).  Also done when the client is
-- collected, and on 5.4 at the end of a `<close>` variable's scope.
function Client:close(collected)
  local engine = self.engine
  if not engine then return end
  if self.cfg.notify then require("starvideos.notify").settle(engine, self.cfg, collected == GC and 0 or nil) end
  self.engine = nil
  for _, job in ipairs(engine:jobs_of(self.cfg)) do job:cancel(true) end
  self.ledger:close(collected == GC)
  engine:release(self.cfg)
end
Client.__close = Client.close
Client.__gc = function(self) return self:close(GC) end

-- `client.on_event = fn` after new still reaches every job's events (after the log's line).
Client.__newindex = function(self, k, v)
  if k == "on_event" then self.cfg.on_event = options.on_event(self.cfg, v) else rawset(self, k, v) end end

function Client:__tostring()
  return string_format("starvideos client (%s)", (self.base_url:gsub("//[^/@]*@", "//")))
end

local function live(self)
  if not self.engine then error("the starvideos client is closed", 3) end
  return self.engine
end

-- A job of this client (its cfg tells the engine whose it is), Job.new's goal,
-- id and spec: the job, or nil, err.
local function new_job(self, goal, id, spec)
  return Job.new(self.engine, self.ledger, self.cfg, goal, id, spec)
end

-- ------------------------------------------------------------ the API

--- Create a task.  Checked against its model's rules first (an invalid one never
-- reaches the network).  With a journal, a synced `pending` record before it is
-- sent, the task's once its id is known.  Resent only when it surely created nothing.
-- @tparam table params `model` (`starvideos_o3`, `videos`, `videos_fast`, `videos_stable`,
-- `videos_stable_fast`), `prompt`, `duration`, `ratio`, `resolution`, `first_image` +
-- `last_image`, `referenceImages`, `referenceVideos`, `referenceAudios` (lists of
-- URLs), `extra` (a table sent as is)
-- @return the queued task, or `nil` and an error (`maybe_created` when it may
-- have been paid for although no id came back)
function Client:create(params)
  need_table(params, 1, "create")
  live(self)
  return run_one(self.engine, new_job(self, "created", nil, { params = params }))
end

--- The task as the service sees it now (one request, retried on network errors,
-- timeouts, 429 and 5xx).
-- @param id a task id, or a task
-- @return the task, or `nil` and an error
function Client:query(id)
  if type(id) ~= "string" then id = task_id(id, "query") end
  local engine = self.engine or live(self)
  return run_one(engine, Job.new(engine, self.ledger, self.cfg, "queried", id))
end

--- Poll a task until it is completed or failed.  Without `interval` the polls
-- follow the schedule learned from how long earlier tasks of the same model,
-- duration and resolution took (seen in this process, and read from the journal):
-- denser where the task is likely to finish, never closer than `min_interval`, no
-- more polls per task than every `interval` (30 s) would spend, but up to one more
-- for tasks done within `interval` (the README's "Polling:"); until a few tasks
-- were seen, every `interval`.
-- @param id_or_task a task id, or a task
-- @tparam[opt] table opts `interval` (seconds between polls: a fixed schedule),
-- `timeout` (seconds, default 1800), `on_progress` (`function(event)`, each poll),
-- `sleep` (`function(seconds)`, every pause goes through it)
-- @return the completed task, or `nil` and an error (`task_failed` for a failed task)
function Client:wait(id_or_task, opts)
  local id = task_id(id_or_task, "wait")
  opts = check(opts, "wait", S.wait)
  live(self)
  return run_one(self.engine, new_job(self, nil, id, { task = type(id_or_task) == "table" and id_or_task or nil,
    interval = opts.interval, timeout = opts.timeout, on_progress = opts.on_progress }), nil, opts.sleep)
end

--- Download a task's video to a file.  The bytes go to `path .. ".part"`, a broken
-- transfer resumes with `Range`, an expired URL is asked for again, and the file
-- appears whole at `path` (synced, then renamed).  A `.part` an earlier call or a
-- close left is gone on from: the 64 KiB before its end are fetched again and must
-- match it, else the download starts from byte 0.
-- @param target a completed task, a task id (queried for its URL), or a video URL
-- @string path the file to write
-- @tparam[opt] table opts `on_progress` (`function(event)`), `timeout` (seconds,
-- default 3600), `sleep`, `resume_limit` (reconnections, default 5)
-- @return `path`, or `nil` and an error
function Client:download(target, path, opts)
  if type(path) ~= "string" or path == "" then argerror(2, "download", "file path", type(path)) end
  opts = check(opts, "download", S.download)
  live(self)
  local spec = { out = path, timeout = opts.timeout or self.cfg.download_timeout, on_progress = opts.on_progress,
    resume_limit = opts.resume_limit }
  local kind, v = options.download_target(target)
  if kind == "url" then spec.url = v
  elseif kind == "task" then spec.task, spec.id = v, v.id
  else -- an id, or a task without its URL: one query
    local task, err = self:query(v)
    if not task then return nil, err end
    if task.status ~= "completed" then return nil, new_error("invalid_request", string_format(
      "task %s is %s, not completed: nothing to download yet", v, tostring(task.status)),
      { task = task, id = v, field = "task" }) end
    spec.task, spec.id = task, v
  end
  local _, err = run_one(self.engine, new_job(self, nil, spec.id, spec), nil, opts.sleep)
  if err then return nil, err else return path end
end

--- Create, wait and (with `out`) download, in one call.  An `out` whose folder
-- takes no new file (or that is a folder) is refused before the create: `nil, err`,
-- `err.kind == "io"`, `err.field == "out"`.  A download that fails after the task
-- completed says how to fetch the video later.
-- @tparam table params as for `create`
-- @tparam[opt] table opts `out` (the video's file), `interval`, `timeout`,
-- `on_progress`, `sleep`
-- @return the completed task (`task.path` is `out` when given), or `nil` and an error
function Client:generate(params, opts)
  need_table(params, 1, "generate")
  opts = check(opts, "generate", S.generate)
  live(self)
  local j, err = new_job(self, nil, nil, { params = params, out = opts.out, interval = opts.interval,
    timeout = opts.timeout, on_progress = opts.on_progress })
  return run_one(self.engine, j, err, opts.sleep)
end

--- Wait for many tasks at once; one failure does not stop the others.
-- @tab list task ids or tasks
-- @tparam[opt] table opts `interval`, `timeout`, `on_progress` (events carry
-- `index`, the position in `list`), `sleep`, `out_dir` (download each video
-- there as `<id>.mp4`)
-- @return a list of `{task=, err=, path=}`, in the order of `list`
function Client:wait_all(list, opts)
  if type(list) ~= "table" then argerror(1, "wait_all", "list of ids or tasks", type(list)) end
  opts = check(opts, "wait_all", S.wait_all)
  live(self)
  local jobs = {}
  for i, v in ipairs(list) do
    local id = task_id(v, "wait_all")
    jobs[i] = assert(new_job(self, nil, id, { task = type(v) == "table" and v or nil, interval = opts.interval,
      timeout = opts.timeout, index = i, on_progress = opts.on_progress,
      out = opts.out_dir and (opts.out_dir .. "/" .. Ledger.file_name(id) .. ".mp4") }))
  end
  return self.engine:run(jobs, opts.sleep)
end

-- The ledger of opts.journal, else the client's (its journal or store): ledger, or nil, err.
local function ledger_of(self, opts, where)
  live(self)
  local path = opts.journal or self.journal
  if not (path or self.cfg.store) then return nil, new_error("invalid_request", where .. " needs a journal or a "
    .. "store: starvideos.new{journal=path} or starvideos.new{store=\"redis://...\"}", { field = "journal" }) end
  return path == self.journal and self.ledger or Ledger.new(path, self.cfg) -- (no path: the client's store)
end

--- Carry every journalled task not yet downloaded to a file: each is waited for and
-- downloaded into `dir` as `<id>.mp4` (the file name is injective: different ids,
-- different files), or where a close left its `.part` (the ledger's `part` record,
-- while that `.part` is there: continued with `Range`); a torn line is skipped.
-- With `notify`, also sends (up to 5 s) the webhooks a dead or closed process owed.
-- @tparam[opt] table opts `dir` (default "."), `journal` (default the client's),
-- `interval`, `timeout`, `on_progress`, `sleep`
-- @return a list of `{task=, err=, path=}`, or `nil` and an error (no journal,
-- or one that cannot be read)
function Client:resume(opts)
  opts = check(opts, "resume", S.resume)
  local ledger, lerr = ledger_of(self, opts, "resume")
  if not ledger then return nil, lerr end
  return Keep.resume(self.engine, ledger, self.cfg, opts)
end

--- Carry to a file every unfinished task of the ledger whose owner let go of its lease (its
-- process, nginx worker or host died): each is claimed (one keeper per task: never created
-- twice, never downloaded twice to completion), polled and downloaded to the `out` its create
-- named when that can be written, else to `dir/<id>.mp4`.  Looks again every `lease / 6`
-- seconds (from 0.1 to 5) until `timeout` (nil: until the client is closed; inside nginx, also
-- until the worker exits).  A task it failed to carry (network, timeout, server) is taken again
-- 60 s later.  A create whose answer never came is never sent again: its entry says so
-- (`maybe_created`, `pending`).
-- @tparam[opt] table opts `dir` (default "."), `lease` (seconds, default 30), `interval`,
-- `timeout`, `on_progress`, `notify`, `journal` (default the client's), `sleep`
-- @return a list of `{task=, err=, path=}`, one per task carried (and per orphaned pending
-- create), or `nil` and an error (no ledger, or one that cannot be read)
function Client:keep(opts)
  opts = check(opts, "keep", S.keep)
  local ledger, lerr = ledger_of(self, opts, "keep")
  if not ledger then return nil, lerr end
  return Keep.run(self.engine, ledger, self.cfg, opts, function() return self.engine ~= nil end)
end

--- The creates whose answer never came (the task may exist): `starvideos.pending`
-- on the client's journal.
-- @tparam[opt] table opts `journal` (default the client's)
-- @return a list of `{["local"]=, model=, prompt_hash=, time=}`, or `nil` and an error
function Client:pending(opts)
  local ledger, err = ledger_of(self, check(opts, "pending", S.pending), "pending")
  if not ledger then return nil, err end
  local list, rerr = ledger:pending()
  if not list then return nil, new_error("io", rerr, { field = Keep.field(ledger) }) end
  return list
end

-- ------------------------------------------------------------ jobs

-- A job of start or watch, its first step due now (taken by the next step).
local function register(self, j) self.engine:at(now(), j); return j end

--- Start a task as a non-blocking job: nothing is sent until `step`, which moves
-- it through create, polling and (with `out`) the download.  A job has `state`
-- (`"creating"`, `"polling"`, `"downloading"`, `"done"`, `"cancelled"`), `status`
-- (the task's), `task`, `id`, `err`, `path`, `done`, and `job:cancel()` (a create
-- already sent is never taken back).
-- @tparam table params as for `create`
-- @tparam[opt] table opts `out`, `interval`, `timeout`, `on_status`
-- (`function(job)`, when the task's status changes and when the job ends), `on_progress`
-- @return the job, or `nil` and an error (an invalid request, or an `out` that
-- cannot be written, as for `generate`)
function Client:start(params, opts)
  need_table(params, 1, "start")
  opts = check(opts, "start", S.job)
  live(self)
  local j, err = new_job(self, nil, nil, { params = params, out = opts.out, interval = opts.interval,
    finished = self.finished, timeout = opts.timeout, on_status = opts.on_status, on_progress = opts.on_progress })
  if not j then return nil, err end
  return register(self, j)
end

--- Follow an existing task as a non-blocking job (see `start`).
-- @param id_or_task a task id, or a task
-- @tparam[opt] table opts as for `start`
-- @return the job
function Client:watch(id_or_task, opts)
  local id = task_id(id_or_task, "watch")
  opts = check(opts, "watch", S.job)
  live(self)
  return register(self, assert(new_job(self, nil, id, { task = type(id_or_task) == "table" and id_or_task or nil,
    finished = self.finished, out = opts.out, interval = opts.interval, timeout = opts.timeout,
    on_status = opts.on_status, on_progress = opts.on_progress })))
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
  return live(self):step(self.finished, seconds) or NONE
end

return Client
