-- A job as a sink and the references point see it (docs/architecture.md, "What a rock may require of the core"):
-- its seat, one per job, giving the names below alone (any other raises, naming the page), so that a rock reads no
-- job's field.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local S = {}

-- What a seat gives of its job: its values, read when asked (the job's now), never its loop, key, cfg or ledger ...
local VALUES = { out = true, deadline = true, id = true, refs = true, status = true, state = true }
-- ... what it makes of the job when asked: references, the create's local files as the check read them
-- (create.lua's local_files: {field, file, sha256, type, max} each), and mark, the bytes of the box its saved video
-- carries at its end (mark.lua's of_job: nil with mark = false) ...
local MADE = {
  references = function(job) return job:local_files() end,
  mark = function(job) return require("starvideos.mark").of_job(job) end,
}
-- ... and what it may ask of it: advance(t), await(w, t) (the job waits for w), progress(bytes, total), emit(name,
-- fields), awaits(x): whether the job waits for x now (its request, or its references' upload), and body(url_of):
-- the create's path and body, each local file's URL (url_of: file -> URL) in its place (create.lua's body_with),
-- and send(t, o): the job's own exchange o (Request.new's fields), its transfer into a file (download.lua's fetch).
local METHODS = {
  advance = function(job, t) return job:advance(t) end,
  await = function(job, w, t) return job:await(w, t) end,
  progress = function(job, bytes, total) return job:progress(bytes, total) end,
  emit = function(job, name, fields) return job:emit(name, fields) end,
  awaits = function(job, x) return job.req == x or job.checking == x end,
  body = function(job, url_of) return job:body_with(url_of) end,
  send = function(job, t, o) return job:send(t, o) end,
}

local JOB = {} -- (the key a seat holds its job at: this file's alone)

local function taken(_, k)
  error(string.format("a job's seat takes no %s: docs/architecture.md, \"What a rock may require of the core\"",
    tostring(k)), 2)
end

local BOUND = {} -- each method through its seat: seat:advance(t) is job:advance(t)
for k, m in pairs(METHODS) do BOUND[k] = function(seat, ...) return m(rawget(seat, JOB), ...) end end
-- ... and where it works, as a client's ctx is asked (host.lua's methods: requests, the loop's timers, the
-- transport's pool, the storage option, events, the ledger's sink states), through the job's host.
for _, k in ipairs { "request", "at", "wait_for", "turning", "drive", "taps", "offload", "cancel", "connections",
  "shared", "storage", "public_only", "tell", "sink_state", "written", "records", "tasks", "unfinished" } do
  BOUND[k] = function(seat, ...)
    local host = rawget(seat, JOB):hosted()
    return host[k](host, ...)
  end
end

-- One metatable for every seat: a seat is one small table per job (a job waits for hours: 10,000 at once).
local SEAT = { __newindex = taken, __metatable = false, __index = function(seat, k)
  if VALUES[k] then return rawget(seat, JOB)[k] end
  if MADE[k] then return MADE[k](rawget(seat, JOB)) end
  local m = BOUND[k]
  if m then return m end
  error(string.format("a job's seat gives no %s: docs/architecture.md, \"What a rock may require of the core\"",
    tostring(k)), 2)
end }

-- The seat of job, made at its first use (job.lua's Job:seated): the job and its seat hold each other, a cycle the
-- collector takes whole.  (pairs and next on a seat find its job: a rock that reads the job so reads no field
-- the shape check sees, and no more is promised.)
function S.new(job) return setmetatable({ [JOB] = job }, SEAT) end

return S
