-- Webhooks (docs/webhooks.md): a job's end recorded owed in the ledger, then POSTed as a request of its
-- own (request.lua: an exchange, its word "notify"); one that runs out of time or is closed stays owed, for a
-- keeper (N.sweep).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Request = require "starvideos.request"

local now = core.now
local cjson = require("cjson.safe").new()

local N = {}

function N.id(task_id, kind)
  return "msg_" .. core.hash(kind .. "\0" .. tostring(task_id))
end

local D = {}
D.__index = D

-- request.lua asks at each attempt: its lines, signed anew.
function D:headers()
  local ts = string.format("%.0f", os.time() + (self.ctx.key.skew or 0)) -- the service's time when known
  local sig = require("starvideos.notify_option").sign().sign(self.notify.secret, self.wid, ts, self.body)
  return Request.JSON .. "webhook-id: " .. self.wid .. "\nwebhook-timestamp: " .. ts .. "\nwebhook-signature: " .. sig
    .. "\n"
end

function D:advance()
  local req = self.req
  if self.done or not req or not req.done then return end
  self.done, self.req = true, false
  self.ctx.deliveries[self] = nil
  local err = req.err
  self.ended = now()
  if not err then self.status = req.task.status end -- (the receiver's)
  -- delivered, or refused for good; what failed for now stays owed: keep sends it again
  if not (err and err.transient) then self.ctx.ledger:delivered(self.wid, err and (err.status or 0)) end
  self.outcome = not err and "delivered" or err.transient and "owed" or "refused"
  local on_event = self.ctx.cfg.on_event
  if on_event then
    on_event { type = "delivery", id = self.task, webhook_id = self.wid, outcome = self.outcome, url = self.where,
      status = err and err.status or self.status, reason = err and err.message }
  end
end

function D:cancel()
  if self.done then return end
  self.done, self.outcome, self.ended = true, "cancelled", now()
  self.ctx.deliveries[self] = nil
  if self.req then self.req:cancel(); self.req = false end
end

-- An owed event (its record already written) sent on ctx's loop: the delivery, in ctx.deliveries until it ends.
function N.send(ctx, notify, wid, task_id, body)
  -- the webhook's name in events and log lines: scheme, host and path (no query: it may hold a token)
  local u = core.check_url(notify.url, "notify.url")
  local where = u.scheme .. "://" .. u.authority .. u.path
  local d = setmetatable({ ctx = ctx, notify = notify, wid = wid, task = task_id, body = body, where = where }, D)
  ctx.deliveries[d] = true
  d.req = Request.new { loop = ctx.loop, key = ctx.key, cfg = ctx.cfg, owner = d, op = "exchange", what = "notify",
    url = notify.url, path = where, body = body, headers = function() return d:headers() end,
    retries = Request.UNTIL_DEADLINE,
    deadline = now() + (notify.retry_for or ctx.cfg.retry_for) } -- (retried until its deadline)
  d.req:send(now())
  return d
end

function N.job_done(job, err)
  local task = job.task
  if type(task) ~= "table" or job.id == nil then return end
  local kind = not err and task.status == "completed" and "task.completed"
    or task.status == "failed" and err and err.kind == "task_failed" and "task.failed"
  if not kind then return end
  local body = cjson.encode { type = kind, task = task, path = job.path, bytes = job.path and job.bytes or nil,
    sha256 = job.path and job.sha256 or nil, reason = err and err.reason, input = err and err.input } -- (failure.lua)
  if not body then return end
  local wid = N.id(job.id, kind)
  job.ledger:owe(wid, job.id, body) -- a ledger that cannot be written: sent all the same
  N.send(job, job.cfg.notify, wid, job.id, body) -- (the job has a ctx's loop, key, ledger and cfg)
end

-- keep's turn (with cfg.notify): the owed events whose owner let go, claimed and
-- sent; and keeper.sent's own, out of retry_for, again `keep_again` s later.
function N.sweep(ctx, keeper)
  local cfg, sent, due, t = ctx.cfg, keeper.sent or {}, {}, now()
  keeper.sent = sent
  for wid, d in pairs(sent) do
    if d.done and d.outcome ~= "owed" then sent[wid] = nil
    elseif d.done and t >= d.ended + cfg.keep_again then due[#due + 1] = d end
  end
  local owed, err = keeper:owed()
  for _, o in ipairs(owed or {}) do due[#due + 1] = o end
  if not owed and cfg.on_event then -- looked at again at the next look; the events stay owed meanwhile
    cfg.on_event { type = "warning", message = "the webhooks owed could not be looked at: " .. tostring(err) }
  end
  for i, o in ipairs(due) do
    sent[o.wid] = N.send(ctx, cfg.notify, o.wid, o.task, o.body)
    due[i] = sent[o.wid]
  end
  return due
end

-- ctx's deliveries driven on its loop up to `seconds` (default cfg.settle; 0: none), left going: their set.
function N.drain(ctx, seconds)
  local set = ctx.deliveries
  local function quiet() return next(set) == nil end
  if seconds ~= 0 and not quiet() then ctx.loop:drive(quiet, nil, now() + (seconds or ctx.cfg.settle)) end
  return set
end

-- A client closes (or keep ends): drain, then what is left stays owed.
function N.settle(ctx, seconds)
  for d in pairs(N.drain(ctx, seconds)) do d:cancel() end -- (d:cancel clears d from the set)
end

return N
