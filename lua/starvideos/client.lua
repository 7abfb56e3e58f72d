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
local Ledger = require "starvideos.ledger"
local Job = require "starvideos.job"

local type, ipairs, pairs, tostring, setmetatable, rawset, rawget, error, string_format =
  type, ipairs, pairs, tostring, setmetatable, rawset, rawget, error, string.format
local now = core.now
local new_error, argerror, check = options.new_error, options.argerror, options.check
local task_id, need_table, S = options.task_id, options.need_table, options.CALLS

local Client = {}
Client.__index = Client

--- A new client: `starvideos.new`, which lists the options.
-- @tparam[opt] table opts
-- @treturn starvideos.client
function Client.new(opts)
  local cfg = options.client(opts)
  cfg.has_key = cfg.api_key ~= nil
  local engine = Engine.for_client(cfg)
  -- the key lives in the transport only: never in a table a user might print
  cfg.api_key, cfg.transport = nil, nil
  return setmetatable({ cfg = cfg, base_url = cfg.base_url, journal = cfg.journal, engine = engine,
    ledger = Ledger.new(cfg.journal, cfg, engine), finished = {} }, Client)
end

--- Cancel this client's jobs (only its own) and let go of its engine; a later call
-- raises.  The key's last client closes the transport.  A download in flight keeps
-- its `.part` only where the ledger records it (with a journal: a `part` record
-- naming the task, so that the next `download`, `resume` or `keep` of it goes on
-- with `Range`); without a journal the `.part` is removed.  Also done when the
-- client is collected, and on 5.4 at the end of a `<close>` variable's scope.
function Client:close()
  local engine = self.engine
  if not engine then return end
  self.engine = nil
  for _, job in ipairs(engine:jobs_of(self.cfg)) do job:cancel(true) end
  self.ledger:close()
  engine:release(self.cfg)
end
Client.__close = Client.close
Client.__gc = Client.close

-- `client.on_event = fn` after new still reaches every job's events.
Client.__newindex = function(self, k, v) if k == "on_event" then self.cfg.on_event = v else rawset(self, k, v) end end

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
  return self.engine:run_one(new_job(self, "created", nil, { params = params }))
end

--- The task as the service sees it now (one request, retried on network errors,
-- timeouts, 429 and 5xx).
-- @param id a task id, or a task
-- @return the task, or `nil` and an error
function Client:query(id)
  id = task_id(id, "query")
  local engine = self.engine or live(self)
  return engine:run_one(Job.new(engine, self.ledger, self.cfg, "queried", id))
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
  return self.engine:run_one(new_job(self, nil, id, { task = type(id_or_task) == "table" and id_or_task or nil,
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
  local kind = type(target)
  if kind == "string" and target:find("^%a[%w+.-]*://") then -- a URL
    spec.url = target
  elseif kind == "table" and type(target.video_url) == "string" then
    spec.task, spec.id = target, target.id
  elseif (kind == "string" and target ~= "") or (kind == "table" and type(target.id) == "string") then
    local id = kind == "table" and target.id or target -- an id, or a task without its URL: one query
    local task, err = self:query(id)
    if not task then return nil, err end
    if task.status ~= "completed" then return nil, new_error("invalid_request", string_format(
      "task %s is %s, not completed: nothing to download yet", id, tostring(task.status)),
      { task = task, id = id, field = "task" }) end
    spec.task, spec.id = task, id
  else
    argerror(1, "download", "task, task id or URL", kind == "table" and "a table without an id" or kind)
  end
  local _, err = self.engine:run_one(new_job(self, nil, spec.id, spec), nil, opts.sleep)
  if err then return nil, err end
  return path
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
  return self.engine:run_one(j, err, opts.sleep)
end

local file_name = Ledger.file_name

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
      out = opts.out_dir and (opts.out_dir .. "/" .. file_name(id) .. ".mp4") }))
  end
  return self.engine:run(jobs, opts.sleep)
end

-- The ledger of opts.journal, else the client's: ledger, or nil, err.
local function ledger_of(self, opts, where)
  local path = opts.journal or self.journal
  if not path then return nil, new_error("invalid_request", where .. " needs a journal: starvideos.new{journal=path}",
    { field = "journal" }) end
  return path == self.journal and self.ledger or Ledger.new(path, self.cfg)
end

--- Carry every journalled task not yet downloaded to a file: each is waited for and
-- downloaded into `dir` as `<id>.mp4` (the file name is injective: different ids,
-- different files), or where a close left its `.part` (the ledger's `part` record,
-- while that `.part` is there: continued with `Range`); a torn line is skipped.
-- @tparam[opt] table opts `dir` (default "."), `journal` (default the client's),
-- `interval`, `timeout`, `on_progress`, `sleep`
-- @return a list of `{task=, err=, path=}`, or `nil` and an error (no journal,
-- or one that cannot be read)
function Client:resume(opts)
  opts = check(opts, "resume", S.resume)
  live(self)
  local ledger, lerr = ledger_of(self, opts, "resume")
  if not ledger then return nil, lerr end
  local list, err = ledger:unfinished()
  if not list then return nil, new_error("io", err, { field = "journal" }) end
  local dir, jobs = opts.dir or ".", {}
  for i, t in ipairs(list) do
    -- a completed task's URL may have expired: ask for it again first
    jobs[i] = assert(new_job(self, nil, t.id, { interval = opts.interval, timeout = opts.timeout, index = i,
      refresh = true, on_progress = opts.on_progress, out = t.out or dir .. "/" .. file_name(t.id) .. ".mp4" }))
  end
  return self.engine:run(jobs, opts.sleep)
end

local Request = require "starvideos.request"

-- Where keep carries a claimed task: where a .part of it was left, else the
-- out its create named when that can be written, else dir/<file_name(id)>.mp4.
local function keep_dest(t, dir)
  if t.part then return t.part end
  if t.out and Request.check_out(t.out) then return t.out end
  return dir .. "/" .. file_name(t.id) .. ".mp4"
end

-- What may go better later: a task that ended so is carried again (keep_again).
local AGAIN = { network = true, timeout = true, server = true, rate_limited = true, protocol = true, io = true }

-- A create whose answer never came, its process gone: said, never sent again.
-- What keep's drive waits for: a job it carries ended (fin, its list, holds one).
local function has_finished(fin) return fin[1] ~= nil end

local function orphan_pending(p, path)
  return { err = new_error("io", string_format("create %s (%s, sent at %s UTC) may have been paid for: its answer "
    .. "never came and its process is gone; keep never sends it again: `starvideos pending --journal %s` lists it",
    tostring(p["local"]), tostring(p.model), type(p.time) == "number" and os.date("!%Y-%m-%d %H:%M:%S", p.time)
      or "?", path), { maybe_created = true, pending = p["local"] }) }
end

--- Carry to a file every unfinished task of the ledger whose owner let go of
-- its lease (its process, nginx worker or host died): each is claimed (one
-- keeper per task: never created twice, never downloaded twice to completion),
-- polled and downloaded to the `out` its create named when that can be
-- written, else to `dir/<id>.mp4`.  Looks again every `lease / 6` seconds (from
-- 0.1 to 5) for tasks orphaned since, until `timeout` (nil: until the client is
-- closed; inside nginx, also until the worker exits).  A task it failed to carry
-- (a network error, a timeout, the server) is taken again 60 s later.  A create whose answer
-- never came is never sent again: its entry says so (`maybe_created`, `pending`).
-- @tparam[opt] table opts `dir` (default "."), `lease` (seconds, default 30),
-- `interval`, `timeout`, `on_progress`, `journal` (default the client's), `sleep`
-- @return a list of `{task=, err=, path=}`, one per task carried (and per
-- orphaned pending create), or `nil` and an error (no journal, or one that
-- cannot be read)
function Client:keep(opts)
  opts = check(opts, "keep", S.keep)
  local engine = live(self)
  local ledger, lerr = ledger_of(self, opts, "keep")
  if not ledger then return nil, lerr end
  local keeper, kerr = ledger:keeper()
  if not keeper then return nil, new_error("io", kerr, { field = "journal" }) end
  local ngx = rawget(_G, "ngx")
  local exiting = type(ngx) == "table" and type(ngx.worker) == "table" and ngx.worker.exiting
  local dir, every = opts.dir or ".", math.max(0.1, math.min(5, (opts.lease or self.cfg.lease) / 6))
  local sleep = opts.sleep or self.cfg.sleep
  local stop = opts.timeout and now() + opts.timeout
  local results, running, fin, look = {}, {}, {}, now()
  local failure
  while self.engine and not (exiting and exiting()) do
    local t = now()
    if stop and t >= stop then break end
    if t >= look then
      local tasks, pendings, behind = ledger:orphans(keeper)
      if not tasks then failure = new_error("io", pendings, { field = "journal" }); break end
      for _, p in ipairs(pendings) do results[#results + 1] = orphan_pending(p, ledger.path) end
      for _, task in ipairs(tasks) do
        local i = #results + 1
        local j = assert(Job.new(engine, ledger, self.cfg, nil, task.id, { refresh = true, index = i,
          interval = opts.interval, on_progress = opts.on_progress, finished = fin,
          out = keep_dest(task, dir) }))
        results[i], running[j], keeper.carrying[task.id] = false, true, true
        engine:at(t, j)
      end
      look = behind and t or t + every -- a long journal is read a slice per turn of the drive loop
    end
    local until_ = math.min(look, stop or look, exiting and t + 1 or look)
    engine:drive(has_finished, fin, until_, sleep)
    for k = #fin, 1, -1 do
      local j = fin[k]
      fin[k], running[j], keeper.carrying[j.id] = nil, nil, nil
      results[j.index] = { task = j.task, err = j.err, path = j.path }
      if j.err and AGAIN[j.err.kind] then keeper.again[j.id] = now() + self.cfg.keep_again end
    end
  end
  for j in pairs(running) do -- the deadline: what was left goes on from its .part next time
    j:cancel(true)
    results[j.index] = { task = j.task, err = j.err, path = j.path }
  end
  keeper:close()
  if failure and not results[1] then return nil, failure end
  return results
end

--- The creates whose answer never came (the task may exist): `starvideos.pending`
-- on the client's journal.
-- @tparam[opt] table opts `journal` (default the client's)
-- @return a list of `{["local"]=, model=, prompt_hash=, time=}`, or `nil` and an error
function Client:pending(opts)
  local ledger, err = ledger_of(self, check(opts, "pending", S.pending), "pending")
  if not ledger then return nil, err end
  local list, rerr = ledger:pending()
  if not list then return nil, new_error("io", rerr, { field = "journal" }) end
  return list
end

-- ------------------------------------------------------------ jobs

local function register(self, j)
  self.engine:at(now(), j)
  return j
end

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
