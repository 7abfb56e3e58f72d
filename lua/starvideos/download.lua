-- A download's rules, for its request: the out check before a create, the .part gone on
-- from (its last OVERLAP bytes compared: never another video's), the checks that only a
-- whole video passes (its byte count, core.mp4_check), the commit on a thread, the SHA-256;
-- and a job's downloading (D.start, D.answered): a task the process may no longer hold is
-- asked of the store before its download starts and before its commit (docs/keep-and-fleet.md).

local core = require "starvideos.core"
local errors = require "starvideos.errors"
local rule = require "starvideos.lease"

local type, ipairs, tostring, require, io_open, os_remove, string_format, math_min =
  type, ipairs, tostring, require, io.open, os.remove, string.format, math.min
local new_error = errors.new_error
local shell_word = require("starvideos.shell").word

-- A video URL that expired answers with one of these; it is refreshed once.
local EXPIRED = { [403] = true, [404] = true, [410] = true }

local D = {}

local OVERLAP = 65536

-- Why a folder takes no new file, by errno (else strerror's words).
local NO_FILE = { [2] = "the folder %s does not exist", [20] = "%s is not a folder",
  [13] = "the folder %s is not writable", [1] = "the folder %s is not writable",
  [30] = "the folder %s is on a read-only file system" }

-- What no download may replace at its path (by lstat: nothing is opened, so a FIFO never waits).
local NOT_A_FILE = { folder = "a folder", other = "not a regular file (a FIFO, a device or a socket)" }

-- Why the folder dir takes no new file (a probe file is made there and removed), or nil.
local function refuses(dir)
  local probe = dir:gsub("/$", "") .. "/.starvideos-probe-" .. core.random_id()
  local f, msg, code = io_open(probe, "wb")
  if f then
    f:close()
    os_remove(probe)
    return nil
  end
  local said = tostring(msg):match(": ([^:]*)$") or tostring(msg)
  if NO_FILE[code] and not (code == 2 and core.file_kind(dir) == "folder") then -- /proc's folders say ENOENT
    return string_format(NO_FILE[code], dir) .. ((code == 13 or code == 1) and " (" .. said .. ")" or "")
  end
  return string_format("cannot make a file in %s: %s", dir, said)
end

-- Before a create (which costs money): can a download be written at out (neither out nor
-- its .part a folder, its folder taking a new file)?  true, or nil, err (io, field out).
function D.check_out(out)
  local why
  for _, p in ipairs { out, out .. ".part" } do
    local kind = NOT_A_FILE[core.file_kind(p)]
    why = why or kind and p .. " is " .. kind
  end
  local dir = out:match("^(.*)/[^/]*$")
  why = why or refuses(dir == nil and "." or dir == "" and "/" or dir)
  if not why then return true end
  return nil, new_error("io", string_format("out: cannot write %s: %s; nothing was sent", out, why),
    { field = "out" })
end

-- The same rule for a folder the downloads go into (wait_all's out_dir, resume's and
-- keep's dir), before anything is asked: true, or nil, err (field: the option).
function D.check_dir(dir, field)
  local why = refuses(dir)
  if not why then return true end
  return nil, new_error("io", string_format("%s: cannot write into %s: %s; nothing was sent", field, dir, why),
    { field = field })
end

-- The OVERLAP bytes of the file at path from byte `at` (nil: its last ones), and its size.
local function overlap(path, at)
  local f = io_open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  at = at or size and size - OVERLAP
  local tail = at and at >= 0 and f:seek("set", at) and f:read(OVERLAP)
  f:close()
  return tail, size
end

-- The request's download fields: the .part, where it goes, how many resumes.
function D.prepare(req, d)
  req.part, req.dest, req.resume_limit, req.duration, req.held = d.part, d.dest, d.resume_limit, d.duration, d.held
  req.file, req.follow, req.stall, req.offset = d.part, true, req.cfg.timeout, 0
  if core.file_kind(d.part) ~= "file" then return end -- a FIFO is never opened (it would wait)
  local tail, size = overlap(d.part)
  if tail and size > OVERLAP and #tail == OVERLAP then -- a .part left over worth going on from
    req.offset, req.kept, req.tail = size - OVERLAP, size, tail
  end
end

-- The .part an earlier call left cannot be gone on from (not opened, longer than the
-- video, or of another): from byte 0.  Whether it was restarted.
function D.restart(req, t)
  if not req.tail then return false end
  req.offset, req.kept, req.tail, req.attempt = 0, nil, nil, 0
  req:send(t)
  return true
end

-- The .part's handle let go of, nothing committed (the libcurl transport's, or the transport's own).
local function release(req, file)
  local transport = req.loop.transport
  if file then file:close() elseif transport.discard then transport:discard(req.part) end
end

-- The bytes are all there (as many as announced: core.verdict): the .part checked to be a
-- whole MP4 of the task's duration, then committed on a helper thread, or by the transport.
function D.done(req, file, t)
  -- the bytes sent again over the end of a .part left over must be the ones it held: this video's
  if req.tail and overlap(req.part, req.kept - OVERLAP) ~= req.tail then return D.restart(req, t) end
  local whole, why = core.mp4_check(req.part, req.duration)
  if not whole then -- nothing is kept: a request for it from byte 0 starts a new .part
    release(req, file)
    os_remove(req.part)
    return req:finish(nil, new_error("protocol", string_format("download: %s is not a whole video: %s",
      req.dest, why), { check = why }))
  end
  -- a task the process may no longer hold, or may not for long (req.held: a job's {ledger, id}; its lease not
  -- renewed for half of it, or lapsed since): the store asked first, polled as a commit.  Else no claim can
  -- have come (it needs the lease gone): the commit goes on, Redis answering or not
  local l, id = req.held and req.held[1], req.held and req.held[2]
  local hold = l and l:lapsed(id, rule.ASK) and l:confirm(id, req.deadline)
  if hold then
    req.commit, req.committing, req.gated = hold, true, file or false
    return req.loop:committing(req)
  end
  return D.commit(req, file)
end

function D.commit(req, file)
  local transport = req.loop.transport
  if transport.commit then return D.committed(req, transport:commit(req.part, req.dest)) end
  local c, cerr = core.commit_start(file, req.dest, require("starvideos.sign").SHA256) -- hashed on its thread
  if not c then return D.committed(req, nil, cerr) end
  req.commit, req.committing = c, true
  req.loop:committing(req)
end

-- The store answered whether the task is still the process's (req.gated: the .part's handle): committed,
-- or nothing done to the .part (req.committing stays: D.ended leaves it), which may be the holder's now; the
-- deadline passed: a whole video stays there, recorded for a resume or a keep to go on from.
local function gated(req, file, held, why)
  req.gated, req.commit = nil, nil
  if held and not req.done then
    req.committing = nil
    return D.commit(req, file)
  end
  release(req, file)
  if req.done then return end
  local l, id = req.held[1], req.held[2]
  if why.timeout then
    l:part(id, req.part, req.dest)
    return req:finish(nil, new_error("timeout", string_format("download: the store did not confirm in time that "
      .. "this process still holds task %s; its whole video stays at %s", tostring(id), req.part)))
  end
  return req:finish(nil, new_error("io", "download: task " .. tostring(id) .. " was taken by "
    .. tostring(why.by), { taken = why }))
end

-- The commit is done (ok, and the file's SHA-256 when its thread read it; else why not): the
-- download counts once its bytes are on disk under their name, with their SHA-256 (req.sha256).
function D.committed(req, ok, said)
  if req.gated ~= nil then return gated(req, req.gated, ok, said) end
  req.commit, req.committing = nil, nil
  if req.done then -- cancelled meanwhile: a whole file stays, a failed commit's .part goes
    if not ok then os_remove(req.part) end
    return
  end
  if not ok then return req:finish(nil, new_error("io", "download: " .. tostring(said), { field = "path" })) end
  local sum, herr = said, nil
  if not sum then -- a transport that commits without hashing: the file read once more (from the page cache)
    sum, herr = require("starvideos.sign").sha256_file(req.dest)
  end
  if not sum then return req:finish(nil, new_error("io", "download: " .. tostring(herr), { field = "path" })) end
  req.sha256 = sum
  return req:finish("")
end

-- It failed or was cancelled: its .part goes, but with `keep` (its job records it) or
-- when already committing (then it is whole).
function D.ended(req, keep)
  if req.started and not req.committing and not keep then os_remove(req.part) end
end

-- Another holds the job's task (a keeper claimed it while this process's lease lapsed): told once; the job
-- ends when the holder saved its file (then named: job.path), looking every third of a lease.
-- The job's video is at path (its SHA-256 sha256): the job and its task name it.
local function saved(job, path, sha256)
  job.path, job.sha256 = path, sha256
  if job.task then job.task.path, job.task.sha256 = path, sha256 end
end

local function taken(job, why, t)
  if job.state ~= "taken" then
    job.state = "taken"
    job.ledger:let_go(job.id)
    job:emit("taken", { by = why.by })
  end
  if not why.path then return job.loop:at(math_min(t + job.cfg.lease * rule.RENEW, job.deadline), job) end
  saved(job, why.path, why.sha256)
  return job:_finish()
end

-- The job's task completed (or its URL given): its video downloaded to job.out (without out: the job done), the
-- store asked first when the process may no longer hold the task (no webhook for a task another holds).
function D.start(job, t)
  job.hold = job.hold or (job.state == "taken" or job.id and job.ledger:lapsed(job.id)) and job.ledger:confirm(job.id)
  if job.hold then -- the store asked first
    local held, why = job.hold:poll()
    if held == nil then return job.loop:at(job.loop:await_store(job, t, 0.05), job) end
    job.hold = nil
    if not held or job.state == "taken" then return taken(job, why or {}, t) end -- (taken: only ever waits)
  end
  if not job.out then return job:_finish() end
  local url = job.url or (job.task and job.task.video_url)
  if type(url) ~= "string" then
    return job:_finish(new_error("protocol", string_format("task %s is completed but has no video_url",
      tostring(job.id))))
  end
  local parts, bad = core.check_url(url, "video_url")
  if not parts then return job:_finish(bad) end
  local task = job.task
  job:_send(t, "download", url, parts.path, nil, nil, job.deadline,
    { part = job.part or job.out .. ".part", dest = job.out, resume_limit = job.resume_limit or job.cfg.resume_limit,
      held = job.id and { job.ledger, job.id },
      duration = task and type(task.actualDuration) == "number" and task.actualDuration or nil })
end

-- The job's download ended (req.err, or done): what follows.
function D.answered(job, req, t)
  job:progress(req.bytes, req.total)
  local err = req.err
  if not err then
    saved(job, job.out, req.sha256)
    if job.id then job.ledger:downloaded(job.id, job.out, req.sha256) end
    return job:_finish()
  end
  if err.taken then return taken(job, err.taken, t) end
  if err.check and not job.rechecked then -- not a whole video, nothing kept: once more from byte 0
    job.rechecked = true
    if job.url or not job.id then return D.start(job, t) end -- a bare URL: the same one
    job.refreshing, job.state = true, "polling" -- else a fresh URL first
    return job:_poll(t)
  end
  if EXPIRED[err.status] and job.id and not job.refreshed and not job.url then
    job.refreshed, job.refreshing, job.state = true, true, "polling" -- ask for a fresh URL
    return job:_poll(t)
  end
  if job.waited and job.id then -- the task is done and paid for: its video can still be had
    err.message = string_format("%s; task %s is completed: `starvideos download %s %s` fetches its video",
      err.message, job.id, job.id, shell_word(job.out))
  end
  return job:_finish(err)
end

return D
