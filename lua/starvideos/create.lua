-- A job's create: the rows of job.lua's STATES that its public state names creating.  Built from its params when
-- the job is made (extra's JSON text, the media they name, the key of what the job makes: docs/batch.md "Keys"),
-- nothing sent yet; then its steps, each a row: peeking (the ledger's task for its key: followed instead, nothing
-- created), checking (its reference media, its local files put), awaiting (the key's token), recording (the
-- ledger's pending record: a store answers later), sending (the create, its answer awaited) and registering (the
-- task answered, its record written).  It decides; the job's fields are job.lua's to assign, through its methods.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Bucket = require "starvideos.bucket"
local function Failure() return require "starvideos.failure" end -- (the failure words: a refused create's)
local cjson = require("cjson.safe").new()
local X = require "starvideos.extension"
-- spend.lua, loaded at its first use (a spend limit set, or reservations read back), as the optional layers are
local function Spend() return require "starvideos.spend" end

local new_error, now = errors.new_error, core.now

local C = {}

-- The params that name reference media (a URL or a local file {file = path}, or a list of them): the core's list
-- (csrc/core/models.c), in a body's order.
C.MEDIA_FIELDS = core.media_fields

C.MAX_FILE = 200 * 1024 * 1024 -- bytes a local file as a reference may hold (a create's videos: 200 MB at most)

-- The references of (validated) params in MEDIA_FIELDS' order, each {field =, name =, url = | file = (a local
-- file's path)}, and how many are local files: what preflight reads, what storage/refs.lua uploads.
function C.references(params)
  local refs, files = {}, 0
  for _, name in ipairs(C.MEDIA_FIELDS) do
    local v = params[name]
    local list = type(v) == "table" and v.file == nil and v or { v }
    for i, r in ipairs(list) do
      local file = type(r) == "table" and r.file or nil
      refs[#refs + 1] = { field = list == v and name .. "[" .. i .. "]" or name, name = name, url = not file and r
        or nil, file = file }
      files = files + (file and 1 or 0)
    end
  end
  return refs, files
end

-- The field of the first local file among refs (C.references').
local function local_field(refs)
  for _, r in ipairs(refs) do if r.file then return r.field end end
end

-- The JSON text of params.extra (the core checks it and splices it into the
-- body): text, nil when there is none, or nil, err when it cannot be JSON.
function C.extra_json(params)
  if params.extra == nil then return nil end
  local text, why = cjson.encode(params.extra)
  if text then return text end
  return nil, new_error("invalid_request", "extra: cannot be sent as JSON: " .. tostring(why), { field = "extra" })
end

-- The create of job (made with goal and spec: its params, out, key, fresh) built: validation first, then the
-- key; what the job takes of it (job.lua's Job.new assigns them), or nil, err for an invalid request or an out
-- that cannot be written.
function C.build(job, goal, spec)
  local params, cfg = spec.params, job.cfg
  local text, err = C.extra_json(params)
  if err then return nil, err end
  local path, body, warnings = core.build_create(params, text)
  if not path then return nil, body end
  if not cfg.api_key_set and goal ~= "checked" then return nil, new_error("auth", errors.NO_KEY) end
  local ok, why = true, nil
  if spec.out then ok, why = job.sink.check_out(spec.out, cfg) end -- (found before the task is paid for)
  if not ok then return nil, why end
  local refs, files = C.references(params) -- (local files: checked, then uploaded: the references point's)
  if files > 0 then
    local _, xerr = X.find("references", nil, "local files as references", local_field(refs))
    if xerr then return nil, xerr end
  end
  local made = { path = path, body = body, files = files > 0, model = params.model,
    addr = require("starvideos.refusal").address(path, body, refs), -- (what a refusal is kept by)
    resend = spec.resend,
    warnings = warnings, -- what the service will ignore (the core's, from the models' table): told before paying
    preflight = goal == "checked" or files > 0 or cfg.preflight and refs[1] ~= nil,
    local_id = (job.ledger.records or cfg.spend) and core.random_id() or nil, -- (a reservation's, spend.lua)
    kind = require("starvideos.schedule").kind_of(params.model, params.duration, params.resolution) }
  local key = spec.attempt or spec.out and require("starvideos.sink").key(spec.out) or spec.key -- docs/batch.md "Keys"
  if key and job.ledger.records then
    made.want = { key = key, fp = core.hash(path .. "\n" .. body), body = body, out = spec.out, fresh = spec.fresh,
      parent = spec.parent, relation = spec.relation } -- (lineage.lua's: the task it builds on)
  end
  local perr
  local ctx = spec.parent and job:hosted() or job -- (a parent's record read where its sink keeps it: host.lua's)
  made.parents, made.kept, perr = require("starvideos.provenance").start(ctx, spec) -- (what its record says, now)
  if perr then return nil, perr end
  return made
end

-- A bucket out a create will write (none of its key known to the ledger) asked once before the create is paid
-- for (storage/object.lua's reach): true, or nil, err.
function C.reach(job, goal, out)
  if not out or goal == "checked" or not job.sink.reach or (job.create.want and job:known()) then return true end
  return job.sink.reach(out, job.cfg, job:seated())
end

-- registering: the create answered task at t (nil: the one held, asked again): told at once (it is paid for),
-- then its record written (a ledger may say "not yet": the job holds the task and asks again on a later turn).
function C.register(job, t, task)
  task = task or job.held
  local ok, jerr = job.ledger:created(task, job.params, job.create.local_id, job.ids) -- (first: a listener may close)
  if not job.held then -- (a batch counts it created)
    job:emit("created", { status = task.status }, "told") -- (to on_event and the key's event streams: sse.lua)
    job:hold(task, t)
    if job.done then return end -- cancelled by a listener (its client closed): its record is written all the same
  end
  if ok == false then return job.loop:wait_for(job, now()) end
  job:hold(nil)
  if not ok then return job:finish(jerr) end
  if job.refs then X.optional("references").created(job:seated(), task.id) end -- (its objects, recorded by their rock)
  if job.cancelled then
    job:go("cancelled")
    return job:finish(new_error("io", "the job was cancelled", { created = true }))
  end
  job:go("polling")
  if job.goal == "created" then return job:finish() end
  return job.loop:at(job:next_poll(job.origin_at), job)
end

-- sending: the create's request req ended at t: its task registered, or its failure.
function C.answered(job, req, t)
  if not req.task then -- (a refusal's words: why, failure.lua's)
    job.ledger:create_failed(Failure().refused(req.err, job.cfg.failure_patterns), job.params,
      job.create.local_id)
    return job:finish(req.err)
  end
  job:answered(req) -- (its id, its request ids)
  job:go("registering")
  return C.register(job, t, req.task)
end

-- The call's deadline a create is sent by (none for a lone create), and whether t is past it.
local function by(job) return job.goal ~= "created" and job.deadline end
local function past(job, t) return by(job) and t >= by(job) end

-- A create not sent by its call's deadline (t >= by) is not sent: the job ends `timeout`, the ledger told that
-- nothing was created (a pending record asked for is let go).
local function not_sent(job)
  local waited = job.step == "recording" and "its pending record"
    or "the key's budget (requests_per_second, a rate limit's hold)"
  C.cancel(job, false)
  return job:finish(new_error("timeout", string.format("create not sent: the call's timeout came while it waited for "
    .. "%s; nothing was sent, nothing paid", waited)))
end

-- A row's due before sending (peeking to recording): not sent once the call's deadline came (not_sent), else due.
local function unsent_past(due)
  return function(job, t)
    if past(job, t) then return not_sent(job) end
    return due(job, t)
  end
end

-- peeking: the ledger's task for the job's key (false: the store has not answered; asked again when it does),
-- followed when there is one; else its references checked, or the key's token.
C.peek = unsent_past(function(job, t)
  local known = job:known()
  if known == false then return job.loop:wait_for(job, t) end
  if known then return job:follow(known, t) end
  local refused = require("starvideos.refusal").ask(job) -- (the same content failed for policy or input before)
  if refused == false then return job.loop:wait_for(job, t) end
  if refused then return job:finish(refused) end
  return job:go("checking", t)
end)

-- A create a spend limit would refuse now, as its ledger counts (spend.lua's refused): nil, or the refusal; asked
-- before its local files are put (they would be put, then deleted, for a create never sent).
local function refused(job)
  local cfg, ledger = job.cfg, job.ledger
  if not cfg.spend then return nil end
  local t = Spend().clock()
  local list = ledger:spend(job.tenant)
  local where = ledger.field == "journal" and ledger.path and "the journal " .. ledger.path
    or ledger.field == "store" and ledger.where and "the store " .. ledger.where or nil
  return list and Spend().refused(cfg, list, job.model, job.tenant, t, where)
end

-- checking: the references checked (preflight), then the local files uploaded (unless a spend limit would refuse
-- the create): nothing paid before.  Each ends by advancing the job (job.lua's advance takes what it found), which
-- comes back here for the next.
C.check = unsent_past(function(job, t)
  local c = job.create
  if not (c.preflight or c.files) then return job:go("awaiting", t) end
  local err = not c.preflight and refused(job)
  if err then return job:finish(err) end
  local R = X.optional("references") -- (its start, given the job's seat)
  job:check(c.preflight and job.cfg.on_media or function(j, at) return R.start(j:seated(), at) end, t) -- (client.lua)
  return job:advance(t)
end)

-- awaiting: the key's token (a create's before the polls waiting; one its batch took for it: granted).
C.await = unsent_past(function(job, t)
  if not job:take_grant() then
    local later, held = job.budget:token(t, true, job, job.tenant)
    local long = later and Bucket.too_long(t, later, held, job.cfg, "create", by(job))
    if long then return job:finish(long) end
    if later then return job.loop:at(by(job) and math.min(later, by(job)) or later, job) end
  end
  return job:go("recording", t)
end)

-- recording: the ledger's pending record (false: a store's answer or a writer's record to come: asked again).
C.record = unsent_past(function(job, t)
  local ok, err = job.ledger:before_create(job.params, job.create.local_id, job.out, job.create.want, job.tenant,
    job.create.addr)
  if type(ok) == "table" then return job:follow(ok, t) end
  if ok == false then return job.loop:wait_for(job, t) end
  if not ok then return job:finish(err) end
  return job:go("sending", t)
end)

-- sending: what the service will ignore said once (not again on a retry), then the create, sent unless its call's
-- deadline came first; once sent it is never abandoned: it may be paid for.
function C.send(job, t)
  job:warn()
  return job:send(t, { op = "create", url = job.cfg.base_url .. job.create.path, path = job.create.path,
    body = job.create.body, send_by = by(job) or nil })
end

-- A creating job cancelled while req (its create's request, or false) is where it is: false when the create is
-- sent and awaited (the job ends once its answer is in: it may be paid for), else why it ends (the cancel's
-- message's end) and its error's fields; the ledger told what will never be created.  A create handed to the
-- transport but not written to its socket (waiting for a connection) is not sent: cancelled, recorded abandoned,
-- made by the rerun.
function C.cancel(job, req)
  if req then
    local tr = job.loop.transport -- (a transport that cannot tell whether the request was written: it was)
    local unwritten = req.handle and tr and tr.written and not tr:written(req.handle)
    if not job.loop.queued[req] and (req.handle or req.done) and not unwritten then return false end
    -- not sent yet, or not sent again after an answer that made nothing: surely nothing was created
    job.ledger:create_failed({}, job.params, job.create.local_id)
    return req.attempt > 0 and " (its create made nothing and was not sent again)" or " (its create was never sent)"
  elseif job.held then -- answered, its record not yet known written
    job.ledger:forget(nil, job.held.id)
    job:hold(nil) -- (the task stays the job's)
    return "", { created = true }
  elseif job.step == "recording" then -- a pending record asked for, the create never sent
    job.ledger:forget(job.create.local_id)
    job.ledger:create_failed({}, job.params, job.create.local_id)
  end
  return ""
end

return C
