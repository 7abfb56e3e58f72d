-- A job carries one task from create (or an id, or a bare URL) through polling to its sink (a file, an object):
-- a state machine that never blocks, moved by job:advance(now).  Handed ctx: the loop, the key (key.lua), the
-- ledger and the client's cfg.  job.state: one of STATES (below); its download's states are video.lua's;
--   job.status (the task's), job.task, job.id, job.err, job.path, job.done, job.eta (the seconds left)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core, errors = require "starvideos.core", require "starvideos.errors"
local Bucket = require "starvideos.bucket"
local Create = require "starvideos.create"
local Request = require "starvideos.request"
local Sink = require "starvideos.sink"
local X, Seat = require "starvideos.extension", require "starvideos.seat"
-- loaded at their first use: the failure words (a failed task's reason), the video's download (a completed task),
-- the observer's events (cfg.observe)
local function Failure() return require "starvideos.failure" end
local function Video() return require "starvideos.video" end
local function Observed() return require "starvideos.observed" end
local function video(name) return function(...) return Video()[name](...) end end -- (a row's, STATES')

local new_error, now = errors.new_error, core.now
local Job = {}; Job.__index = Job

local function schedule(self) return require("starvideos.schedule").of(self.key, self.cfg) end -- (its key's: learned)

-- A spec's fields a job keeps (spec name -> job field, true: the same; upload, refs: the sink's and the references'
-- states a dead process left, kept by their rocks' own names, storage/; mark: a download's, false: its video unmarked).
local KEPT = { finished = "fin", interval = "fixed", out = true, url = true, resume_limit = true, index = true,
  on_progress = true, on_status = true, params = true, tenant = true, upload = true, traceparent = true, refs = true,
  mark = true }

-- Every field a job has (tools/shape_rocks.lua holds this list against each field the core assigns a job):
--   where it runs:  loop, key, budget (its key's bucket.lua), ledger, cfg, deliveries (notify's), sink (where its
--                   video goes: sink.lua's point), seat (what a sink and the references see: seat.lua), host (what
--                   the seat's methods ask: host.lua), group (its batch's count), fin (the finished list a step
--                   collects)
--   what it is for: goal, id, ids (its create's request ids), params, create (create.lua's build: the value it
--                   keeps), model, kind, out, url, index, tenant, traceparent, on_progress, on_status, fixed (a
--                   spec's interval), resume_limit, deadline, upload and refs (a dead process's sink and
--                   references states, their rocks' own texts), mark (a download's: false, its video unmarked)
--   its task:       task, status, held (a create's answer until its record is written), origin_at, unfinished_at,
--                   coarse (whole-second clocks), eta, late, reason, input (a failure's words), seen_key, seen_why,
--                   seen_id (what the ledger knew of its create's key), granted (the budget's token taken)
--   its course:     state, step (the row: create.lua's, video.lua's), done, err, last_err, cancelled, req (its
--                   request, or what its download awaits), go_on (that wait's continuation), refreshing, waited
--                   (its task seen completed), warned, checking (preflight's or the references' object),
--                   file_sums (preflight's), notes (what could not be checked)
--   its video:      video (video.lua's state of the download), part, path, sha256, bytes, total

-- goal: "created" | "queried" | "checked" (its params' media, no create) (nil: completed); id: the task's (nil
-- for a create or a bare URL); spec: KEPT's fields, task, timeout and refresh.
-- The job, or nil, err for an invalid request or an out that cannot be written.
function Job.new(ctx, goal, id, spec)
  Video() -- (its download's module loaded as a job is made, by start or a call: never inside a frame's step)
  local t, cfg, task = now(), ctx.cfg, spec.task
  local job = setmetatable({ loop = ctx.loop, key = ctx.key, budget = ctx.key.bucket, ledger = ctx.ledger, cfg = cfg,
    deliveries = ctx.deliveries, id = id, goal = goal, task = task, status = task and task.status, done = false,
    state = "polling", step = "polling", req = false, video = {}, file_sums = false, -- (file_sums: preflight's)
    go_on = false, -- (what a download's wait goes on with: Job:await)
    deadline = t + (spec.timeout or cfg.wait_timeout) }, Job)
  for k, v in pairs(spec) do if KEPT[k] then job[KEPT[k] == true and k or KEPT[k]] = v end end
  job.sink = Sink.of(cfg, spec.out) -- (a file or an object)
  local refused = Sink.refusal(spec.out) -- (its rock not installed: nothing sent, nothing kept)
  if refused then return nil, refused end
  if job.refs then -- reference objects a process left: deleted at the task's end by the rock that put them
    local _, err = X.find("references", nil, "a task whose local files were put as references", "task")
    if err then return nil, err end
  end
  if spec.params then -- the create built (create.lua): nothing is sent yet
    local made, err = Create.build(job, goal, spec)
    if not made then return nil, err end
    job.create, job.model, job.kind = made, made.model, made.kind -- (the create it keeps: create.lua's build)
    job:go("peeking")
    local ok, rerr = Create.reach(job, goal, spec.out)
    if not ok then return nil, rerr end
  elseif spec.url or (spec.out and not spec.refresh and task and type(task.video_url) == "string"
      and (task.status == nil or task.status == "completed")) then
    job:go("downloading")
  end
  if task then job:origin(task, t) end
  if Job.made then Job.made(job) end -- (a job of again, remix, continue or film adopts its create's: verb_job.lua)
  return job
end

-- When a task was created on our monotonic clock (the key's births, else its whole-second `created`), and its model,
-- for the schedule.  A birth is also a sight of it unfinished (its create's answer), as a job that created the task
-- has (Job:hold): a task made by `create` and followed by another job (wait_all, watch, keep) teaches the schedule
-- however late its first poll comes (issue 65).
function Job:origin(task, t)
  if self.origin_at then return end
  if type(task.model) == "string" then self.model = self.model or task.model end
  local born = self.key:born(task.id)
  if born then self.origin_at, self.unfinished_at = born, self.unfinished_at or born; return end
  local created = task.created
  if type(created) == "number" and created > 0 then
    self.origin_at, self.coarse = t - math.max(0, os.time() - created), 1 -- two whole-second clocks
  end
end

-- A group the job counts down when it ends (loop:run); a batch's job joins when it
-- starts: its timeout from then, its out checked again: true, or nil, err.
function Job:join(group, deadline)
  self.group = group
  if not deadline then return true end
  self.deadline = deadline
  return not self.out or self.sink.check_out(self.out, self.cfg)
end

-- The time of the next poll after one answered at t.
function Job:next_poll(t)
  if self.fixed then return t + self.fixed end
  return t + schedule(self):delay(self.kind, self.model, self.origin_at and t - self.origin_at)
end

-- An event to on_event and the streams' window (cfg.on_stream) unless `to` is "progress"; on_progress unless "told"
-- (reason, input: a failed task's).
function Job:emit(kind, extra, to)
  local ev, cfg = { type = kind, id = self.id, task = self.task, status = self.task and self.task.status,
    index = self.index, eta = self.eta, reason = self.reason, input = self.input }, self.cfg
  for k, v in pairs(extra or {}) do ev[k] = v end
  if to ~= "progress" and cfg.on_event then cfg.on_event(ev) end
  if to ~= "progress" and cfg.on_stream then cfg.on_stream(ev, self.tenant) end
  if to ~= "told" and self.on_progress then self.on_progress(ev) end
end

-- Its seat (seat.lua: what a sink and the references point see of it), made at its first use.
function Job:seated() if not self.seat then self.seat = Seat.new(self) end return self.seat end
-- Where it works, as its seat's methods ask (host.lua: its loop, key, cfg and ledger), made at its first use.
function Job:hosted() if not self.host then self.host = require("starvideos.host").of_job(self) end return self.host end
-- (its seat's references and body: its create's local files as the check read them, and the create sent with each
-- one's URL in its place: local_files.lua's)
function Job:local_files() return require("starvideos.local_files").local_files(self.params, self.file_sums) end
function Job:body_with(url_of) return require("starvideos.local_files").body_with(self.params, url_of) end

function Job:finish(err) -- the job ends (err: why it failed), letting go of its reference objects (storage/refs.lua)
  self.done = true
  self.budget:leave(self) -- (its place in the key's line, at once: bucket.lua)
  self:go((self.state == "cancelled" or self.state == "taken") and self.state or "done")
  if err then err.id, err.task, self.err = err.id or self.id, err.task or self.task, err end
  local refs = self.refs and X.optional("references") -- (Job.new refused refs with no rock to release them)
  if refs then refs.release(self:seated(), self.err) end
  if not self.goal and self.cfg.notify and self.state == "done" then self.cfg.on_done(self, self.err) end -- (notify)
  if self.state == "taken" then self.ledger:let_go(self.id, true) end
  if err and not self.goal and self.state == "done" then -- (its words and why: failure.lua's)
    self:emit("failed", { error = err, message = err.message, reason = err.reason, input = err.input })
  end
  if self.group then self.group.left = self.group.left - 1 end
  if self.fin then self.fin[#self.fin + 1] = self end
  if self.on_status then self.on_status(self) end
  if self.cfg.observe then self.cfg.observe:state(Observed().job(self), now()) end -- (a task's metrics and span)
end

-- The seconds left (job.eta: p50 and p90 among the learned tasks of its kind that ran as long) as of an
-- answer at t, and once a task runs past the 99th percentile of its kind, a `late` event.
local function expect(self, t)
  local status, age = self.task.status, self.origin_at and t - self.origin_at
  if not age or status == "completed" or status == "failed" then self.eta = nil; return end
  local eta, p99 = schedule(self):eta(self.kind, self.model, age)
  self.eta = eta
  if p99 and age > p99 and not self.late then
    self.late = true
    self:emit("late", { elapsed = age, p99 = p99 })
  end
end

-- A task answer arrived at t (create or poll): events, and each status change recorded.
function Job:seen(task, t, created, secs, within)
  self.task, self.id = task, task.id
  local warnings = self.create and self.create.warnings -- (a create's: what the service ignores of its params)
  if warnings then task.warnings = warnings end
  local changed, why = task.status ~= self.status, errors.reason(task)
  self.status = task.status
  if why and not self.reason then self.reason, self.input = Failure().classify(why, self.cfg.failure_patterns) end
  expect(self, t)
  -- (an end told to every ledger, a client's own too: a failure costs its model's failed_prices entry)
  if changed and not created and (self.ledger.records or task.status == "failed" or task.status == "completed") then
    self.ledger:status(self.id, task.status, secs, within, why, self.reason, self.input, self.model)
  end
  self:emit("status", nil, not changed and "progress" or nil) -- (on_progress: every answer)
  if changed and self.on_status then self.on_status(self) end
end

-- The job's request o (Request.new's, its loop, key, cfg and owner the job's), sent at t: the job advances when
-- it is done.
function Job:send(t, o)
  o.loop, o.key, o.cfg, o.owner = self.loop, self.key, self.cfg, self
  self.req = Request.new(o)
  self.req:send(t)
end

-- downloading: the job awaits c instead of a request (its download's fetch, commit or record: done, err; checked,
-- hashed and renamed off the loop's thread, it advances the job when it ends later), go_on(job, c, t) called
-- when it ended: the continuation made with the wait (nil: the one `next` named before the sink's fetch awaited).
function Job:await(c, t, go_on)
  self:go("downloading")
  self.req, self.go_on = c, go_on or self.go_on
  if c.done then return self:advance(t) end
end
-- The continuation of the download's next wait, named before the sink makes it (its fetch: a request the job
-- sends, or an object the job awaits).
function Job:next(go_on) self.go_on = go_on end

-- downloading (answered): what the job awaited ended (c): its continuation, once.
local function continued(self, c, t)
  local go_on = self.go_on
  self.go_on = false
  return go_on(self, c, t)
end

-- polling: the task asked for now (the key's budget first).
function Job:poll(t)
  -- a refresh of an expired URL is not a scheduled poll: it skips the budget
  if not self.refreshing then
    local later, held = self.budget:token(t, false, self, self.tenant)
    local long = later and Bucket.too_long(t, later, held, self.cfg, "query", self.goal ~= "queried" and self.deadline)
    if long then return self:finish(long) end
    if later then return self.loop:at(math.min(later, self.deadline), self) end
  end
  local path, err = core.result_path(self.id)
  if not path then return self:finish(err) end
  if not self.cfg.api_key_set then return self:finish(new_error("auth", errors.NO_KEY)) end
  -- a lone query (client:query) has no deadline
  self:send(t, { op = "query", url = self.cfg.base_url .. path, path = path,
    deadline = self.goal ~= "queried" and self.deadline })
end

-- A fresh URL of the task asked for (its video's expired, or was not whole): polled now, outside the schedule.
function Job:refresh(t)
  self.refreshing = true
  self:go("polling")
  return self:poll(t)
end

-- Another holds the job's task (a keeper claimed it): taken, told once; its file awaited (video.lua).
function Job:taken(by)
  if self.state == "taken" then return end
  self:go("taken")
  self.ledger:let_go(self.id)
  self:emit("taken", { by = by })
end

-- The job's video is at path (its SHA-256 sha256): the job and its task name it, and the job ends.
function Job:saved(path, sha256, bytes)
  self.path, self.sha256, self.bytes = path, sha256, bytes or self.bytes -- (bytes: the saved file's, its mark's box in)
  if self.task then self.task.path, self.task.sha256 = path, sha256 end
  self:emit("saved", { path = path, sha256 = sha256 }, "told")
  return self:finish()
end

-- confirming: a whole download held while the store is asked before its commit (video.lua).
function Job:confirm(t)
  self:go("confirming")
  return Video().confirm(self, t)
end

local function polled(self, req, t)
  local task, err = req.task, req.err
  if self.goal == "queried" then -- one answer is all it asks for
    if task then self:origin(task, t); self:seen(task, t) end
    return self:finish(err)
  end
  if not task then
    if not err.transient then return self:finish(err) end
    self.last_err = err -- it may go better: poll again
    return self.loop:at(math.min(self:next_poll(t), self.deadline), self)
  end
  self:origin(task, t)
  local secs, within
  if task.status == "completed" and self.status ~= "completed" then
    secs, within = schedule(self):took(self.kind, self.model, t, self.unfinished_at, self.origin_at, self.coarse)
    if self.cfg.observe then self.cfg.observe:noticed(Observed().job(self), t) end
  elseif task.status ~= "completed" and task.status ~= "failed" then
    self.unfinished_at = t
  end
  self:seen(task, t, nil, secs, within)
  if self.done then return end -- cancelled by a listener of the status (its client closed)
  if task.status == "completed" then -- (without out: done, once the store confirms a lapsed holder's hold)
    self.refreshing, self.waited = nil, true
    self:go("downloading")
    return Video().start(self, t)
  elseif task.status == "failed" then
    local failed = new_error("task_failed", string.format("task %s failed: %s", tostring(self.id), errors.reason(task)),
      { task = task, request_id = req.request_id, server_request_id = req.server_request_id, reason = self.reason,
        input = self.input })
    return self:finish(require("starvideos.refusal").failed(self, failed)) -- (policy, input: kept)
  end
  return self.loop:at(math.min(self:next_poll(t), self.deadline), self)
end

-- Download progress, reported when it grew (the loop calls it each turn).
function Job:progress(bytes, total)
  if not (bytes and bytes > (self.bytes or 0)) then return end
  self.bytes, self.total = bytes, total
  self:emit("progress", { bytes = bytes, total = total, path = self.out })
end

-- The ledger's task for the job's key, nil, or false (a store not answered yet: ask again): read once, before
-- any token, without the ledger's lock (following a task needs none; a create still asks under it).  Why it
-- creates, or the error it will be refused with (the peek's): job.seen_why (a plan's, batch.lua).
function Job:known()
  local want = self.create and self.create.want
  if self.seen_key == nil and want then
    local task, why, id = self.ledger:peek(want)
    if task == false then return false end
    self.seen_key, self.seen_why, self.seen_id = task or false, why, id
  end
  return self.seen_key or nil
end

-- The token its batch took for its create (batch.lua); whether it had one (taken once).
function Job:grant() self.granted = true end
function Job:take_grant()
  local had = self.granted; self.granted = nil; return had
end

-- The ledger knows a task of the job's key (rec): the job follows it, creating nothing; one already downloaded
-- whole to out (rec.whole) ends it now.
function Job:follow(rec, t)
  self.id = rec.id
  self:go("polling")
  self:emit("attached", { key = self.create.want.key, alive = rec.alive or nil }) -- (alive: another live process)
  if rec.whole then
    self.status, self.task = "completed", { id = rec.id, status = "completed", model = rec.model }
    return self:saved(self.out, rec.sha256)
  end
  if self.goal == "created" then self.goal = "queried" end -- a keyed create answers with the task as it is now
  -- a live process holds it and may be writing out's .part now: this job's own .part (never gone on from)
  if rec.alive and self.out then self.part = self.out .. ".part-" .. core.random_id() end
  self.upload = rec.upload
  return self:poll(t)
end

-- checking: start(job, t) checks its references or puts its local files (preflight first, then the files): the
-- object advance looks at until it is done.
function Job:check(start, t)
  local c = self.create
  c.files, c.preflight, self.checking = c.preflight and c.files, false, true -- (it may end at once)
  self.checking = start(self, t)
end

-- What the service will ignore of its params, said once before its create is sent.
function Job:warn()
  if self.warned then return end
  self.warned = true
  for _, w in ipairs(self.create.warnings) do self:emit("warning", w) end
end

-- Its create answered (req, the request): the task's id and the request's ids.
function Job:answered(req)
  self.id, self.ids = req.task.id, { request_id = req.request_id, server_request_id = req.server_request_id }
end

-- The task its create answered, told (t: when), held until its record is known written; nil: written, or let
-- go of by a cancel (it stays the job's task).
function Job:hold(task, t)
  if not task then
    self.task, self.held = self.held or self.task, nil
    return
  end
  self.held, self.origin_at, self.unfinished_at = task, t, t
  self.key:born(task.id, t)
  return self:seen(task, t, true)
end

-- Every state of a job, a row each: what it does when its timer falls due (due; past the deadline but creating
-- and confirming: a timeout) and when what it awaits ends (answered: its request's req.task or req.err, or a
-- download's commit).  The create's rows (create.lua) show as one state, creating (job.state; job.step: the row).
local STATES = {
  peeking = { due = Create.peek, shown = "creating" },            -- the ledger's task for its key: followed
  checking = { due = Create.check, shown = "creating" },          -- its references checked, its local files put
  awaiting = { due = Create.await, shown = "creating" },          -- the key's token
  recording = { due = Create.record, shown = "creating" },        -- the ledger's pending record
  sending = { due = Create.send, answered = Create.answered, shown = "creating" }, -- the create, its answer
  registering = { due = Create.register, shown = "creating" },    -- the task answered, its record written
  polling = { due = Job.poll, answered = polled },                -- polled until completed (or failed)
  downloading = { due = video "start", answered = continued }, -- the video downloaded and committed
  confirming = { due = video "confirm" },                      -- a whole .part, the store asked before its commit
  taken = { due = video "look" },                              -- another holds the task: its file awaited
  done = {}, cancelled = {},                                      -- ended
}

-- The job goes to the row step (STATES'), doing its due at once when t is given.
function Job:go(step, t)
  self.step, self.state = step, STATES[step].shown or step
  if t then return STATES[step].due(self, t) end
end
function Job:take_upload() local v = self.upload; self.upload = nil; return v end -- (a sink's state left: once)

local function advance(self, t)
  if self.done then return end
  local pf = self.checking
  if pf then -- the references checked (what could not be was told): the create refused, or on
    if pf == true or not pf.done then return end
    self.checking, self.notes = false, pf.notes or self.notes
    if pf.err or self.goal == "checked" then return self:finish(pf.err) end
    if pf.body then self.create.body, self.refs = pf.body, pf.refs end -- (the local files' URLs: storage/refs.lua)
    if pf.sums then self.file_sums = pf.sums end -- (the local files as the check read them: preflight's)
  end
  local req = self.req
  if req then
    if not req.done then return end
    self.req = false
    return STATES[self.step].answered(self, req, t)
  end
  if t < (self.loop.due[self] or 0) then return end
  if t >= self.deadline and self.state ~= "creating" and self.state ~= "confirming" then
    local msg = string.format("task %s not finished before the deadline (last status: %s)", tostring(self.id),
      self.task and tostring(self.task.status) or "unknown")
    if self.state == "taken" then msg = "task " .. tostring(self.id) .. " was taken; not saved before the deadline" end
    if self.last_err and not self.task then msg = msg .. "; last error: " .. self.last_err.message end
    return self:finish(new_error("timeout", msg))
  end
  return STATES[self.step].due(self, t)
end

-- Do what can be done now (the job's request finished or its timer fell due); a state it changed is observed.
function Job:advance(t)
  advance(self, t)
  if self.cfg.observe then self.cfg.observe:state(Observed().job(self), t) end
end

-- Cancelling stops a job's transfers, but a create already sent (it may be
-- paid for): the job ends once its answer is in, the task recorded.  With
-- `keep` (a client's close) a download's recorded .part stays for the next.
function Job:cancel(keep)
  if self.done then return end
  local req, why, fields = self.req, "", nil
  if self.state == "creating" then
    why, fields = Create.cancel(self, req) -- (the ledger told what will never be created)
    if not why then -- its create sent: awaited
      self.cancelled = true
      return
    end
  end
  if type(self.checking) == "table" then self.checking:cancel() end
  keep = keep and self.id and self.ledger.records and not self.part
  Video().cancel(self, keep)
  if req then
    keep = keep and self.sink.keeps(req) -- (the sink's own rule: a .part, an upload's recorded parts)
    req:cancel(keep)
    self.req = false
    local left = keep and self.sink.left(req)
    if left then self.ledger:sink_state(self.id, "part", left, Sink.recorded(req.dest)) end
  end
  self:go("cancelled")
  self:finish(new_error("io", "the job was cancelled" .. why, fields))
end

return Job
