-- A job's video: the states job.lua's STATES names for it.  downloading: the store asked first when the
-- process may no longer hold the task, then the video fetched into out's .part (a request of op download)
-- and committed (download.lua); confirming: a whole .part held while the store is asked before its commit;
-- taken: another holds the task, its file awaited.  A Video per job keeps the store's pending question (hold),
-- the whole download awaiting it (got) and what was tried again; it moves its job only through the job's
-- methods (docs/keep-and-fleet.md, "An owner that lost its lease").

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local rule = require "starvideos.lease"
local Sink = require "starvideos.sink"

local new_error = errors.new_error
local function shell_word(s) return require("starvideos.shell").word(s) end -- (a message's command: at its use)

-- A video URL that expired answers with one of these; it is refreshed once.
local EXPIRED = { [403] = true, [404] = true, [410] = true }

local V = {}

-- The store's answer to the job's question (v.hold, asked): nil while none came (the job looks again when the
-- store answers), else held (true) or false and why.
local function answer(job, v, t)
  local held, why = v.hold:poll()
  if held == nil then
    job.loop:wait_for(job, t, 0.05)
    return nil
  end
  v.hold = nil
  return held, why or {}
end

-- Another holds the task (a keeper claimed it while this process's lease lapsed): the job, told once, ends when
-- the holder saved its file (then named), looked for every third of a lease.
local function taken(job, why, t)
  job:taken(why.by)
  if why.path then return job:saved(why.path, why.sha256) end
  job.loop:at(math.min(t + job.cfg.lease * rule.RENEW, job.deadline), job)
end

-- taken (due): the store asked whether the holder saved the video (a later "held" answer starts nothing).
function V.look(job, t)
  local v = job.video
  v.hold = v.hold or job.ledger:confirm(job.id)
  if not v.hold then return taken(job, {}, t) end
  local held, why = answer(job, v, t)
  if held ~= nil then return taken(job, held and {} or why, t) end
end

-- downloading (due): the task completed (or its URL given): the store asked first when the process may no
-- longer hold it (no webhook for a task another holds), then its video downloaded to job.out (without out: done).
function V.start(job, t)
  local v, l = job.video, job.ledger
  v.hold = v.hold or job.id and l:confirm(job.id, nil, rule.LAPSE) or nil
  if v.hold then
    local held, why = answer(job, v, t)
    if held == nil then return end
    if not held then return taken(job, why, t) end
  end
  if not job.out then return job:finish() end
  local url = job.url or (job.task and job.task.video_url)
  if type(url) ~= "string" then
    return job:finish(new_error("protocol", string.format("task %s is completed but has no video_url",
      tostring(job.id))))
  end
  local parts, bad = core.check_url(url, "video_url")
  if not parts then return job:finish(bad) end
  local task, upload = job.task, job:take_upload() -- (an upload a dead process left: gone on from once)
  job:next(V.fetched)
  job.sink.fetch(job:seated(), t, url, parts.path, { part = job.part or job.out .. ".part", dest = job.out,
    resume_limit = job.resume_limit or job.cfg.resume_limit, upload = upload,
    duration = task and type(task.actualDuration) == "number" and task.actualDuration or nil })
end

-- confirming (due): the whole download (v.got) committed once the store confirms that the process still holds
-- the task; refused, its .part stays (it may be the holder's now); past the deadline it stays too, recorded for
-- a resume or a keep to go on from.
function V.confirm(job, t)
  local v = job.video
  local held, why = answer(job, v, t)
  if held == nil then return end
  local got = v.got
  v.got = nil
  if held then return job:await(job.sink.commit(got, job:seated()), t, V.committed) end
  job.sink.release(got)
  if not why.timeout then return taken(job, why, t) end
  job.ledger:sink_state(job.id, "part", got.part, Sink.recorded(got.dest))
  return job:finish(new_error("timeout", string.format("download: the store did not confirm in time that "
    .. "this process still holds task %s; its whole video stays at %s", tostring(job.id), got.part)))
end

-- The download failed (err; wire: its exchange's end): not a whole video, or not a video's answer (a body longer
-- than it can be), or a sink that must be given the video again (err.redo), nothing kept: once more from byte 0;
-- an expired URL refreshed once; else the job ends, saying how to fetch the video of a task completed and paid for.
local function failed(job, err, wire, t)
  local v = job.video
  if (err.check or err.redo or wire == "garbled") and not v.rechecked then
    v.rechecked = true
    if job.url or not job.id then return V.start(job, t) end -- a bare URL: the same one
    return job:refresh(t) -- else a fresh URL first
  end
  if EXPIRED[err.status] and job.id and not v.refreshed and not job.url then
    v.refreshed = true
    return job:refresh(t)
  end
  if job.waited and job.id then -- the task is done and paid for: its video can still be had
    err.message = errors.hint(string.format("%s; task %s is completed: `starvideos download %s %s` fetches its "
      .. "video", err.message, job.id, job.id, shell_word(job.out)))
  end
  return job:finish(err)
end

-- downloading (the sink's fetch ended, r: whole): committed now, or confirming first.  The store is asked first
-- when the holder's lease was not renewed for half a lease or lapsed since; else no claim can have come (it needs
-- the lease gone): committed, Redis answering or not.
function V.fetched(job, r, t)
  job:progress(r.bytes, r.total)
  if r.err then return failed(job, r.err, r.wire, t) end
  local v = job.video
  v.hold = job.id and job.ledger:confirm(job.id, job.deadline, rule.ASK) or nil
  if not v.hold then return job:await(job.sink.commit(r, job:seated()), t, V.committed) end
  v.got = r
  return job:confirm(t)
end

-- downloading (its commit ended, r): the video saved, recorded, its provenance record beside it (awaited).
function V.committed(job, r, t)
  if r.marked ~= true then job:progress(r.bytes, r.total) end -- (a marked file's: its transfer's and its box's)
  if r.err then return failed(job, r.err, r.wire, t) end
  if type(r.marked) == "string" then job:emit("warning", require("starvideos.mark").unmarked(job.out, r.marked)) end
  if job.id then -- (its size: the sink's, else the file's)
    local path = Sink.recorded(job.out)
    job.ledger:downloaded(job.id, path, r.sha256, r.bytes or require("starvideos.download").size(path), r.note)
  end
  if job.cfg.observe then job.cfg.observe:saved(require("starvideos.observed").job(job)) end -- (its metrics)
  local w = require("starvideos.provenance").save(job, r, t) -- (its record beside it: awaited, then saved)
  if w then return job:await(w, t, V.recorded) end
  return job:saved(job.out, r.sha256, r.bytes)
end

-- downloading (its video saved, its provenance record written: r): the job ends, the video saved; a record that
-- could not be written is a warning (the video is there, paid for).
function V.recorded(job, r)
  if r.err then
    job:emit("warning", { field = "provenance", message = "the provenance record of " .. tostring(job.out)
      .. " was not written: " .. tostring(r.err.message) })
  end
  return job:saved(job.out, r.sha256, r.bytes)
end

-- The job cancelled: its question dropped; a whole download awaiting the store let go of, its .part kept
-- (recorded for the next with `keep`).
function V.cancel(job, keep)
  local v = job.video
  if v.hold then v.hold:drop(); v.hold = nil end
  local got = v.got
  if not got then return end
  v.got = nil
  job.sink.release(got)
  if keep then job.ledger:sink_state(job.id, "part", got.part, Sink.recorded(got.dest)) end
end

return V
