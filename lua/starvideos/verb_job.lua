-- again, remix, continue and film as jobs (`opts.job = true`, docs/reference.md "Jobs of again, remix, continue and
-- film"): the blocking call itself, run in a coroutine that the loop resumes once a turn as a timer of its own (so
-- that client:step drives it, and close cancels it).  While it runs, its pauses yield (the client's sleep: the loop's
-- drive of a scheduler's, docs/game-engines.md) and its long work is done off the frame, the coroutine yielding until
-- it ends: a file's SHA-256 (a parent checked whole) on a helper thread (sign.sha256_start), a command (continue's
-- ffmpeg, the film's ffprobe and join) started and read by a helper thread (core.run_start), looked at each turn.
-- The same call, the same creates, keys and records as the blocking form: nothing of the money rules is the job's
-- own.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local shell = require "starvideos.shell"
local Job = require "starvideos.job"

local type, pairs, ipairs, select, math_min, coroutine = type, pairs, ipairs, select, math.min, coroutine
local unpack, now = rawget(table, "unpack") or rawget(_G, "unpack"), core.now

local M = {}

local POLL = 0.005 -- seconds between two looks at work off the frame (a hash's thread, a command's)
local LONGEST = 0.25 -- the longest a job's coroutine waits to be resumed (a pause's own length, else)

local running -- the job whose coroutine runs now, or nil

local V = {}
V.__index = V

-- The job's pause (its drive's sleep): its coroutine yields for s seconds; a cancelled job's creates made since
-- are cancelled first (a create not sent yet is never sent).
local function pause(s)
  local me = running
  if me and me.cancelled then
    for _, j in ipairs(me.children) do j:cancel() end
  end
  coroutine.yield(s)
end

-- A job made while the coroutine runs: a create's (a query's, a check's, a read-back's are not shown) is the one the
-- job's fields show, and a cancel cancels it (at once when the job is cancelled already).
local function adopt(job)
  local me = running
  if me and job.goal == nil and job.params then
    me.children[#me.children + 1], me.current = job, job
    if me.cancelled then job:cancel() end
  end
end

-- Whether the job whose coroutine runs now was cancelled (film.lua looks before each shot, read-back and join).
function M.cancelled() return running ~= nil and running.cancelled == true end

-- A scratch file (or folder, removed after the files registered since) of the job whose coroutine runs now: removed
-- when the job ends, however it ends (its call's own cleanup skipped by an error, or never resumed once its client
-- closed).  Outside a job, nothing.
function M.scratch(path)
  local me = running
  if me then me.scratch[#me.scratch + 1] = path end
end

local function clean(self)
  for i = #self.scratch, 1, -1 do os.remove(self.scratch[i]) end
  self.scratch = {}
end

-- The SHA-256 of the file at path on a helper thread, the job's coroutine yielding until it is taken: hex, or nil,
-- why (as sign.sha256_file's).
local function sha256_file(path)
  local h, err = require("starvideos.sign").sha256_start(path)
  if not h then return nil, err end
  while true do
    local sum, why = h:poll()
    if sum or why then return sum, why end
    coroutine.yield(POLL)
  end
end

-- Where a job's coroutine has a file hashed (lineage.lua's hasher): sha256_file while one runs, else nil.
function M.hasher() return running and sha256_file or nil end

-- The shell command run to its end on a helper thread of the core's (core.run_start: it starts the command, at the
-- lowest priority, which the command inherits, and reads its output), the job's coroutine yielding until it ended:
-- what it wrote (stdout and stderr together), and whether it exited 0, as shell.run_ok's.  Outside a job's
-- coroutine, run here.
function M.run_ok(command)
  if not running then return shell.popen_ok(command) end
  local me = running
  local h, err = core.run_start(shell.saying(command))
  if not h then return tostring(err), false end
  me.command = h -- (its client's close kills it: V:cancel)
  while true do
    local out, why = h:poll()
    if out or why then me.command = nil end
    if out then return shell.said(out) end
    if why then return why, false end
    coroutine.yield(POLL)
  end
end

-- What a film's job is doing (film.lua): phase ("preparing": a shot's parent checked, its frame taken; "joining"),
-- shot (the shot being made).  Nothing outside a job.
function M.doing(phase, shot)
  local me = running
  if me then me.phase, me.shot = phase, shot or me.shot end
end

-- The coroutine resumed with the client's pauses and the hooks its long work takes (put back after: a job resumed
-- inside another's turn restores the other's): ok, and what it yielded or returned.
local function resume(self)
  local cfg = self.cfg
  local sleep, offload, was, made = cfg.sleep, shell.offload, running, Job.made
  cfg.sleep, shell.offload, running, Job.made = pause, M.run_ok, self, adopt
  local ok, a, b = coroutine.resume(self.co)
  cfg.sleep, shell.offload, running, Job.made = sleep, offload, was, made
  return ok, a, b
end

-- The fields a frame draws, from the create's job under way (none: the job's own phase).
local SHOWN = { "state", "status", "id", "task", "eta", "bytes", "total" }
local function mirror(self)
  local c = self.current
  if c and not c.done then
    for _, k in ipairs(SHOWN) do self[k] = c[k] end
  else
    self.state = self.phase
  end
end

-- The job ends with what the call returned (result: its first value; err: its error; a cancelled job's an io error,
-- its call's result kept), its scratch files removed.
local function finish(self, result, err)
  self.done, self.state = true, self.cancelled and "cancelled" or "done"
  self.result = result
  clean(self)
  if self.cancelled and not err then
    err = errors.new_error("io", "the job was cancelled: its call had ended (job.result holds what it returned)")
  end
  if err then
    local said = tostring(err.message)
    if self.cancelled then -- (as a cancelled job's: an io error, saying what the call had come to)
      err.kind = "io"
      if said:sub(1, 21) ~= "the job was cancelled" then err.message = "the job was cancelled: " .. said end
    end
    self.err = err
  elseif type(result) == "table" then
    self.task = result.status and result or nil -- (again, remix, continue: the child task; a film: its table)
    self.id, self.status = self.task and result.id, self.task and result.status
    self.path, self.sha256, self.shots = result.path, result.sha256, result.shots
  end
  self.eta, self.current = nil, nil
  self.fin[#self.fin + 1] = self
end

-- The loop's timer: the coroutine resumed; a pause's length later (at most LONGEST) it is resumed again.  A Lua error
-- raised in the call (a bug: a bad argument is raised before the job is made) ends the job and is raised from the
-- step.
function V:advance()
  if self.done then return end
  local ok, a, b = resume(self)
  if coroutine.status(self.co) ~= "dead" then
    mirror(self)
    return self.loop:at(now() + math_min(type(a) == "number" and a or POLL, LONGEST), self)
  end
  if not ok then
    finish(self, nil, errors.new_error("io", "the job's call raised: " .. tostring(a)))
    error(debug.traceback(self.co, tostring(a)), 0)
  end
  finish(self, a, b)
end

-- Cancelled: its create under way is cancelled (one already sent is awaited: the job ends once its answer is in, the
-- task recorded); work off the frame ends first (a hash, ffmpeg under its timeout).  With keep (its client closes:
-- it is never resumed again) it ends now, its create's .part kept as a job's is, its command killed, its scratch
-- files removed.
function V:cancel(keep)
  if self.done then return end
  self.cancelled = true
  for _, j in ipairs(self.children) do j:cancel(keep) end
  if not keep then return end
  if self.command then self.command:close() end -- (its process group killed: it is never waited for)
  finish(self, nil, errors.new_error("io", "the job was cancelled (its client was closed)"))
end

-- The job of fn(...) (the blocking call, with its options' job and sleep left out) for client: its first turn
-- taken by the next step.
function M.start(client, fn, ...)
  local args, n = { ... }, select("#", ...)
  local self = setmetatable({ cfg = client.cfg, loop = client.loop, fin = client.finished, children = {},
    scratch = {}, done = false, state = "preparing", phase = "preparing" }, V)
  self.co = coroutine.create(function() return fn(unpack(args, 1, n)) end)
  client.loop:at(now(), self)
  return self
end

-- opts without job and sleep (the job's pauses are its own): a copy.
function M.plain(opts)
  local o = {}
  for k, v in pairs(opts) do if k ~= "job" and k ~= "sleep" then o[k] = v end end
  return o
end

return M
