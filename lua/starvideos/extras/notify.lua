-- Webhooks from the library (the option `notify = {url =, secret =[, retry_for =]}`,
-- the README's "Webhooks"): when a job of a client (or of keep) ends with its
-- task completed (after its download, when it has one) or failed, one event
--
--   {"type": "task.completed" | "task.failed", "task": {...}, "path": ..., "bytes": ...}
--
-- is recorded in the ledger as owed (ledger:owe: with a journal synced before
-- it is sent; on a store queued, written in order before its delivered record)
-- under a webhook-id that depends only on the task and the type ("msg_" and a
-- hash of both: every attempt, every process, the same), then POSTed to the
-- user's URL as a request of its own (request.lua, op "notify": never the API
-- key, no redirect followed, any 2xx is success) and signed anew at each
-- attempt (starvideos.sign, sign.so, config.sign(): loaded by the first one: webhook-id,
-- webhook-timestamp, webhook-signature).
-- The retries are the core's one policy (core.retry: network errors, timeouts,
-- 408, 429, 5xx) with backoff, for `retry_for` seconds (default 600).
--   2xx                 -> ledger:delivered(wid)
--   not transient (3xx, 4xx but 408/429) -> ledger:delivered(wid, status): refused, never sent again
--   out of time, close  -> it stays owed: keep (or a later client's keep) sends
--                          it once its owner's lease is let go (ledger:owed_orphans)
-- Without a journal the owed event lives in this process only.  A delivery
-- never holds up the job it came from; client:close() (and the end of keep)
-- waits up to SETTLE seconds for the deliveries in flight (N.settle).

local core = require "starvideos.core"
local config = require "starvideos.config"
local Request = require "starvideos.request"

local type, pairs, ipairs, next, tostring, setmetatable, os_time =
  type, pairs, ipairs, next, tostring, setmetatable, os.time
local now = core.now
local cjson = require("cjson.safe").new()

local N = {}

N.RETRY_FOR = 600 -- seconds a delivery is retried by the process that sends it
N.SETTLE = 5      -- seconds close() waits for the deliveries in flight

-- The deliveries in flight, per loop.
local flying = setmetatable({}, { __mode = "k" })

local function set_of(loop)
  local s = flying[loop]
  if not s then s = {}; flying[loop] = s end
  return s
end

-- The webhook-id of an event: stable for a task and type.
function N.id(task_id, kind)
  return "msg_" .. core.hash(kind .. "\0" .. tostring(task_id))
end

-- ------------------------------------------------------------ a delivery

local D = {}
D.__index = D

-- The webhook-* header lines of an attempt now (request.lua asks at each send).
function D:headers()
  local ts = tostring(os_time())
  local sig = config.sign().sign(self.notify.secret, self.wid, ts, self.body)
  return "webhook-id: " .. self.wid .. "\nwebhook-timestamp: " .. ts .. "\nwebhook-signature: " .. sig .. "\n"
end

local function tell(self, outcome, err)
  local on_event = self.ctx.cfg.on_event
  if on_event then
    on_event { type = "delivery", id = self.task, webhook_id = self.wid, outcome = outcome,
      status = err and err.status or self.status, reason = err and err.message }
  end
end

-- Its request ended: delivered, refused, or still owed.
function D:advance()
  local req = self.req
  if self.done or not req or not req.done then return end
  self.done, self.req = true, false
  set_of(self.ctx.loop)[self] = nil
  local err = req.err
  self.ended = now()
  if not err then
    self.outcome, self.status = "delivered", req.task -- (a webhook's task: the receiver's status)
    self.ctx.ledger:delivered(self.wid)
    return tell(self, "delivered")
  end
  if err.transient then self.outcome = "owed"; return tell(self, "owed", err) end -- keep sends it again
  self.outcome = "refused"
  self.ctx.ledger:delivered(self.wid, err.status or 0)
  tell(self, "refused", err)
end

-- The client closes: the attempt stops, the event stays owed.
function D:cancel()
  if self.done then return end
  self.done, self.outcome, self.ended = true, "cancelled", now()
  set_of(self.ctx.loop)[self] = nil
  if self.req then self.req:cancel(); self.req = false end
end

-- Send an owed event (its record already written) on ctx's loop: the delivery.
function N.send(ctx, notify, wid, task_id, body)
  local d = setmetatable({ ctx = ctx, cfg = ctx.cfg, notify = notify, wid = wid, task = task_id, body = body,
    done = false, req = false, wake = 0, outcome = false, ended = false }, D)
  set_of(ctx.loop)[d] = true
  local path = core.check_url(notify.url, "notify.url").path
  local req = Request.new(ctx.loop, ctx.budget, ctx.cfg, d, "notify", notify.url, path, nil, body,
    now() + (notify.retry_for or N.RETRY_FOR))
  d.req = req
  req:send(now())
  return d
end

-- A job ended (job.lua): its event, when its task completed (downloaded, when
-- it had an out) or failed; recorded owed, then sent.
function N.job_done(job, err)
  local task = job.task
  if type(task) ~= "table" or job.id == nil then return end
  local kind
  if not err and task.status == "completed" then kind = "task.completed"
  elseif task.status == "failed" and err and err.kind == "task_failed" then kind = "task.failed"
  else return end
  local body = cjson.encode { type = kind, task = task, path = job.path, bytes = job.path and job.bytes or nil }
  if not body then return end
  local wid = N.id(job.id, kind)
  job.ledger:owe(wid, job.id, body) -- a ledger that cannot be written: sent all the same
  N.send({ loop = job.loop, budget = job.budget, ledger = job.ledger, cfg = job.cfg }, job.cfg.notify, wid, job.id,
    body)
end

-- keep's turn: the owed events whose owner let go of its lease, claimed for
-- keeper and sent with notify (the keep's, else the client's).
-- keeper.sent: wid -> the delivery it made.  One of them whose retry_for ran
-- out (the receiver down that long) is the keeper's own, so no keeper claims
-- it: it is sent again `keep_again` seconds after it ended, with its webhook-id.
-- The deliveries made, a list.
function N.sweep(ctx, keeper)
  local cfg, ledger = ctx.cfg, ctx.ledger
  if not cfg.notify then return {} end
  local sent, made, t = keeper.sent, {}, now()
  if not sent then sent = {}; keeper.sent = sent end
  for wid, d in pairs(sent) do
    if d.done then
      if d.outcome ~= "owed" then sent[wid] = nil
      elseif t >= d.ended + cfg.keep_again then
        sent[wid] = N.send(ctx, cfg.notify, wid, d.task, d.body)
        made[#made + 1] = sent[wid]
      end
    end
  end
  local owed, err = ledger:owed_orphans(keeper)
  if not owed then -- looked at again at the next look; the events stay owed meanwhile
    if cfg.on_event then
      cfg.on_event { type = "warning", message = "the webhooks owed could not be looked at: " .. tostring(err) }
    end
    return made
  end
  for _, o in ipairs(owed) do
    sent[o.wid] = N.send(ctx, cfg.notify, o.wid, o.task, o.body)
    made[#made + 1] = sent[o.wid]
  end
  return made
end

-- Whether the loop has deliveries of cfg in flight.
local function quiet(arg)
  for d in pairs(set_of(arg.loop)) do
    if d.cfg == arg.cfg or arg.cfg == nil then return false end
  end
  return true
end

-- The deliveries of cfg (nil: all) in flight driven for up to `seconds`
-- (default N.SETTLE; 0: not at all) and left going (resume): the loop's set
-- of deliveries, or nil when it has none.
function N.drain(loop, cfg, seconds)
  local s = flying[loop]
  if not (s and next(s)) then return nil end
  local arg = { loop = loop, cfg = cfg }
  if seconds ~= 0 and not quiet(arg) then loop:drive(quiet, arg, now() + (seconds or N.SETTLE)) end
  return s
end

-- A client closes (or keep ends): the deliveries of cfg (nil: all) in flight go
-- on for up to `seconds` (default N.SETTLE; 0: not at all, as when a client is
-- collected); what is left is cancelled and stays owed (keep, or a later
-- client's keep, sends it with the same webhook-id).
function N.settle(loop, cfg, seconds)
  local s = N.drain(loop, cfg, seconds)
  if not s then return end
  local left = {}
  for d in pairs(s) do if d.cfg == cfg or cfg == nil then left[#left + 1] = d end end
  for i = 1, #left do left[i]:cancel() end
end

return N
