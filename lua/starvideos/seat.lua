-- A job as a sink and the references point see it (docs/architecture.md, "What a rock may require of the core"):
-- its seat, one per job, giving the names below alone (any other raises, naming the page), so that a rock reads no
-- job's field.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local S = {}

-- What a seat gives of its job: its values, read when asked (the job's now) ...
local VALUES = { out = true, cfg = true, loop = true, key = true, deadline = true, id = true, params = true,
  refs = true, status = true, state = true, file_sums = true, ledger = true }
-- ... and what it may ask of it: advance(t), await(w, t) (the job waits for w), progress(bytes, total), emit(name,
-- fields), and awaits(x): whether the job waits for x now (its request, or its references' upload).
local METHODS = {
  advance = function(job, t) return job:advance(t) end,
  await = function(job, w, t) return job:await(w, t) end,
  progress = function(job, bytes, total) return job:progress(bytes, total) end,
  emit = function(job, name, fields) return job:emit(name, fields) end,
  awaits = function(job, x) return job.req == x or job.checking == x end,
}

local JOB = {} -- (the key the core reads a seat's job by: S.job)

local function taken(_, k)
  error(string.format("a job's seat takes no %s: docs/architecture.md, \"What a rock may require of the core\"",
    tostring(k)), 2)
end

-- The seat of job, made once by Job.new (job.seat): it holds its job in a closure alone (no field, nothing pairs
-- finds), and the job holds it, a cycle the collector takes whole.
function S.new(job)
  local made = {} -- (each method's function, made at its first use)
  return setmetatable({}, { __newindex = taken, __metatable = false, __index = function(_, k)
    if VALUES[k] then return job[k] end
    local m = METHODS[k]
    if m then
      made[k] = made[k] or function(_, ...) return m(job, ...) end
      return made[k]
    end
    if k == JOB then return job end
    error(string.format("a job's seat gives no %s: docs/architecture.md, \"What a rock may require of the core\"",
      tostring(k)), 2)
  end })
end

-- The job of a seat (the core's: its own file sink, what the observer is told), or nil when x is none.
function S.job(x) return type(x) == "table" and x[JOB] or nil end

return S
