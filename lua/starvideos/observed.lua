-- What the core tells its observer (cfg.observe: the observe rock's, docs/observability.md): events, plain tables
-- made here of a job's and a request's fields, so that the observer reads no job or request; a job is in an event
-- only as `task`, a key its spans and counts are kept by (never read).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local E = {}

-- What a task span is named by (its job's goal): nil for a lone query or check, which is no task.
local function what(job)
  if job.goal == "queried" or job.goal == "checked" then return nil end
  return job.goal == "created" and "create" or job.params and "generate" or job.url and "download" or "wait"
end

-- A job's event: its task (the job, as a key), what it is, its state, whether it is done, its model, id, status,
-- path, error, traceparent, when it was last seen unfinished, and its video's seconds (the task's, else the params').
function E.job(job)
  local task, params = job.task or {}, job.params or {}
  return { task = job, what = what(job), state = job.state, done = job.done and true or false, model = job.model,
    id = job.id, status = job.status, path = job.path, err = job.err, traceparent = job.traceparent,
    unfinished_at = job.unfinished_at,
    seconds = tonumber(task.actualDuration) or tonumber(task.duration) or tonumber(params.duration) }
end

-- An exchange of req that ended at t: its status (nil: no answer), error, how its wire ended, its bytes (a
-- transfer into a file: counted from its offset); its op (an exchange's word), whether a job's helper made it (a
-- bucket upload: its media GET counts as a download), the task it serves (its owner, else the job of its owner: a
-- bucket upload's, a media check's, a webhook delivery's context), whether it is a poll, and what its span says.
function E.exchange(req, t, status, err, wire, bytes)
  local o = req.owner
  local helper = req.job -- (a sink's or the references' request: made through its job's host, host.lua)
  return { op = req.what or req.op, of_job = helper and true or false,
    task = type(o) == "table" and (helper or o.pf and o.pf.owner or o.ctx) or o,
    poll = req.polls or false, t = t, started = req.started, status = status, err = err,
    wire = wire, bytes = type(bytes) == "number" and bytes - (req.file and tonumber(req.offset) or 0) or nil,
    url = req.url, method = req.method, attempt = req.attempt, request_id = req.request_id,
    server_request_id = req.server_request_id }
end

-- A create's last attempt ended: its model, and whether it made a task (nil: maybe, its error says so; false: not).
function E.created(req)
  local made
  if req.task then made = true elseif not (req.err and req.err.maybe_created) then made = false end
  return { model = req.owner.model, made = made }
end

return E
