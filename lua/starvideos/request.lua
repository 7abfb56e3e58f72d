-- One HTTP request with its retries, over the loop's transport; the policy lives here
-- and in the core, never in a transport.  Done, it calls owner:advance(now), and the
-- owner reads req.task (the verdict's task table, a download's "") or req.err.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Bucket = require "starvideos.bucket"
-- loaded at their first use: a download's unit (a part into a file), what cfg.observe (the observe rock's hook) is told
local function Download() return require "starvideos.download" end
local function Observed() return require "starvideos.observed" end

local new_error, now = errors.new_error, core.now

local Request = {}
Request.__index = Request

Request.JSON = "Content-Type: application/json\nAccept: application/json\n" -- a JSON body's lines (a webhook's)

-- What an op (the way the core reads its answer: core.verdict, core.retry) makes of a request, decided here once:
-- its class, whose data each request carries to the transport: another host's (Other), or the service's (Service:
-- service, the key sent, an X-Request-Id each attempt, its answer's rate limits and Date read, a retry's token
-- drawn); headers, its lines; a create's (Create: money) on a new connection (fresh), the key's next token before
-- the polls waiting, the observer told it was made; polls, a query's.  Where its body goes is its `into`'s.
local function class(fields, base)
  fields.__index = fields
  return setmetatable(fields, base)
end

local Other = class({}, Request)

function Other.stamp() end
function Other.answered(self, _, bytes, total) self.bytes, self.total = bytes, total end -- (the bytes read)
function Other.failed() end
function Other.token() end -- (a retry sent when due)
function Other.made() end

local Service = class({ service = true }, Other)

function Service.stamp(self) self.request_id, self.server_request_id = core.request_id(), nil end

function Service.answered(self, t, limits, _, err) -- (its 4th value: the answer's rate limits)
  if t >= self.key.clock_at then self.key:clock(self.loop.transport, t) end
  self.key:limits(t, type(limits) == "table" and limits or nil, err)
end

function Service.failed(self, err) errors.note_default_host(self.cfg, err) end

-- A retry of the service's request is one too: it draws the key's token when due (a create's before the polls).
function Service.token(self, t) return self.key.bucket:token(t, false, self, self.owner.tenant) end

local Create = class({ fresh = true, headers = Request.JSON }, Service)

function Create.token(self, t) return self.key.bucket:token(t, true, self, self.owner.tenant) end

function Create.made(self) -- (the observer told whether it was made: money)
  if self.cfg.observe then self.cfg.observe:created(Observed().created(self)) end
end

local KIND = { create = Create, query = class({ polls = true, headers = "Accept: application/json\n" }, Service),
  download = class({ headers = "Accept: video/mp4, */*\n" }, Other), exchange = Other }

local next_id = 0 -- the number that names a request in its events

Request.UNTIL_DEADLINE = 1000 -- an exchange's retries that end only at its deadline (a webhook's, an export's)

-- Where a body goes (req.into), decided once: into memory (bounded by max_body) or given to its tap as it comes,
-- here, or into a file at an offset (download.lua's D.INTO, of the same methods).  Memory's request fields: what
-- differs between an API call, a webhook, a reference media URL and the user's store is data (docs/architecture.md).
local Memory = {}

function Memory.prepare(self, o)
  local range = o.range
  self.range, self.heads, self.follow, self.public, self.pieces, self.tapper = range, o.heads, o.follow, o.public,
    o.pieces, o.tap
  -- the hold's one rule (both transports pause and go on as told): a ranged GET's, without a body
  self.retries, self.hold, self.rest = o.retries, o.hold and range and self.method == "GET" and not self.body, o.rest
  if type(o.headers) == "function" then self.signer = o.headers elseif o.headers then self.headers = o.headers end
  if range then self.offset, self.max_body = range[1], range[2] - range[1] + 1 end
end

function Memory.retries() return nil end -- (its own budget, else max_retries)
function Memory.restart() return false end -- (nothing left over to start again from)
function Memory.resume() end -- (a retry asks for what it asked)
function Memory.ended() end
function Memory.said() return "" end
function Memory.final(self) return self.range ~= nil end -- (a garbled answer not asked again: a range's)
function Memory.done(self, _, t, task) return self:finish(task, nil, t) end

-- A request of o: {loop =, key =, cfg =, owner = (what it advances when done), op = create | query | download |
-- exchange, url =, path = (for events), body = (a POST's or a PUT's), deadline = (monotonic; nil: none),
-- send_by = (monotonic: no attempt is sent from then on, a sent one keeps its whole timeout: a create's)},
-- with a download's part, dest, resume_limit and duration (download.lua), an exchange's what (the word its messages
-- and metrics name it by: media, notify, storage), method (else POST with a body, GET without), headers (its lines,
-- or a function giving them anew at each attempt: signed), range ({first, last}: the bytes asked for, its body cut
-- there), heads (keep the answer's header lines), follow (redirects followed; public: only to public addresses),
-- pieces and tap (its body may come as a list of strings, or starvideos.bytes, as the transport read them; tap: a
-- function giving each attempt a starvideos.sign stream that libcurl's transport feeds the bytes as they come),
-- retries (its budget; else max_retries), hold (a 200 to the range, the whole file, held at the range's end: its
-- task's `held` names the transfer, paused, for rest = on the request of the next range: docs/architecture.md), rest
-- (a held transfer to go on with, its first attempt's: later ones are sent anew); `long` with an exchange: it may
-- take until the deadline, ended sooner by `timeout` s without a byte (a part's megabytes).  An exchange's result
-- (req.task): {status =, body =, headers =, held = (hold's)}.
-- A create goes on a new connection; an http URL through http_proxy when there is no proxy.
-- The client's own options go with each exchange (the clients of a key share its transport).
function Request.new(o)
  local cfg, op, url = o.cfg, o.op, o.url
  local kind = KIND[op] or error("Request.new: no op " .. tostring(op), 2)
  local self = setmetatable({ loop = o.loop, key = o.key, cfg = cfg, owner = o.owner, op = op, url = url,
    path = o.path, body = o.body, deadline = o.deadline, send_by = o.send_by, attempt = 0, id = next_id + 1,
    service = kind.service, fresh = kind.fresh, headers = kind.headers, -- (its class's data, its own: a transport
    -- may copy a request's fields)
    what = o.what or op, method = o.method or (o.body and "POST" or "GET"), into = o.part and Download().INTO or Memory,
    max_body = cfg.max_answer, user_agent = cfg.user_agent, connect_timeout = cfg.connect_timeout,
    ca_file = cfg.ca_file, proxy = cfg.proxy }, kind)
  next_id = self.id
  if not cfg.proxy and cfg.http_proxy and url:find("^[Hh][Tt][Tt][Pp]://") then self.proxy = cfg.http_proxy end
  self.into.prepare(self, o)
  if o.long then self.stall = cfg.timeout end
  return self
end

function Request:finish(task, err, t)
  if err then self:failed(err) end
  self.done, self.task, self.err = true, task, err -- no longer tracked: finished() or cancel() untracked it
  self:made()
  if err then self.into.ended(self) end
  self.owner:advance(t or now())
end

-- Whether s is printable UTF-8 of at most 200 bytes: a server's request id kept goes into JSON (create --json,
-- the journal, a trace) and logs.
local function printable(s)
  if #s > 200 or s:find("[%z\1-\31\127]") then return false end
  local i = 1
  while i <= #s do
    local c = s:byte(i)
    local more = c < 0x80 and 0 or c >= 0xC2 and c < 0xE0 and 1 or c >= 0xE0 and c < 0xF0 and 2
      or c >= 0xF0 and c < 0xF5 and 3 or nil -- (the bytes after a lead byte)
    if not more then return false end
    for j = i + 1, i + more do
      local d = s:byte(j)
      if not d or d < 0x80 or d > 0xBF then return false end
    end
    i = i + more + 1
  end
  return true
end

local told = setmetatable({}, { __mode = "k" }) -- key -> true: a request id not kept was said to its clients

-- The server's own id of h's answer, when it is printable UTF-8 (else dropped, said once a key): the one place both
-- transports' ids go through.
local function server_id(self, h)
  local read = self.loop.transport.server_request_id
  local id = read and read(self.loop.transport, h)
  if id == nil or printable(id) then return id end
  if not told[self.key] then
    told[self.key] = true
    local shown = id:sub(1, 64):gsub("[^\32-\126]", function(c) return string.format("\\x%02x", c:byte()) end)
    self.key:warn("the service's request id \"" .. shown .. "\" is not printable UTF-8: not kept (nor after)")
  end
  return nil
end

-- core.retry's policy: its into's budget (a download's resume_limit), an exchange's own, else max_retries.
local function policy(self)
  local cfg = self.cfg
  return { max_retries = self.into.retries(self) or self.retries or cfg.max_retries, backoff = cfg.retry_backoff,
    max_backoff = cfg.max_backoff, max_wait = cfg.max_retry_wait, garbled_final = self.into.final(self) }
end

-- An event of kind (status, elapsed, delay, reason as it has them), made only when somebody listens.
local function tell(self, kind, status, elapsed, delay, reason)
  local on_event = self.cfg.on_event
  if not on_event then return end
  on_event { type = kind, status = status, elapsed = elapsed, delay = delay, reason = reason, request = self.id,
    attempt = self.attempt, method = self.method, path = self.path,
    request_id = self.request_id, server_request_id = self.server_request_id }
end

-- One attempt, now.
function Request:send(t)
  local loop, cfg = self.loop, self.cfg
  local left = self.deadline and self.deadline - t
  if left and left <= 0 or self.send_by and t >= self.send_by then
    return self:finish(nil, self.err or new_error("timeout", string.format(
      "%s: the deadline passed before the request could be sent; nothing was sent", self.what)))
  end
  if not loop:admit(self) then return end -- sent from the loop's queue when there is room
  -- an API call may take its timeout, a download until its deadline (none without one; a stall ends it sooner)
  self.timeout = math.min(cfg.timeout, left or cfg.timeout)
  if self.stall then self.timeout = left end
  self.attempt = self.attempt + 1
  if self.signer then self.headers = self.signer() end -- signed anew for each attempt
  if self.tapper then self.tap = self.tapper() end -- a stream fed anew by each attempt (libcurl's transport)
  self:stamp() -- (the service's: a request id new for each attempt)
  local h, err = loop.transport:send(self)
  self.rest = nil -- (a held transfer goes on once: another attempt is a new request)
  if not h then
    if cfg.observe then cfg.observe:exchange(Observed().exchange(self, t, nil, err, "not_sent")) end
    if self.into.restart(self, t) then return end -- the transport would not open what was left over
    return self:finish(nil, err)
  end
  self.handle, self.started = h, t
  loop:track(self)
  tell(self, "request")
end

-- The exchange finished: its verdict ends the request, or it is tried again later.
function Request:finished(t)
  local loop = self.loop
  loop:untrack(self)
  local h = self.handle
  self.handle = false
  if self.request_id then self.server_request_id = server_id(self, h) end -- (before result, which spends h)
  local task, err, wire, bytes, total, file = loop.transport:result(h) -- file: a whole download's .part
  if err and self.request_id then err.request_id, err.server_request_id = self.request_id, self.server_request_id end
  self:answered(t, bytes, total, err)
  self.wire = wire
  -- (an exchange's: its status; an API answer's read as a task from an error status, a create's 429: its limits')
  local answered = type(task) == "table" and tonumber(task.status) or type(bytes) == "table" and bytes.status
  local status = (wire == "none" or task) and (err and err.status or answered or 200)
  if status then tell(self, "response", status, t - self.started) end
  if self.cfg.observe then self.cfg.observe:exchange(Observed().exchange(self, t, status, err, wire, self.bytes)) end
  if task then return self.into.done(self, file, t, task) end
  -- 416: what was left over is longer than the file (a download's .part), the transfer starts again
  if err.status == 416 and self.into.restart(self, t) then return end
  -- the core's one retry policy, for a download too (which goes on from the bytes it has)
  local delay = core.retry(self.op, wire, err, self.attempt, policy(self), math.random())
  if delay then self.into.resume(self, bytes) end
  local by = self.deadline or self.send_by
  if not delay or (by and t + delay >= by) then
    return self:finish(nil, err, t)
  end
  self.err = err -- stands if the deadline comes first
  if self.cfg.observe then self.cfg.observe:retry(err) end
  tell(self, "retry", err.status, nil, delay, self.cfg.on_event and err.message
    .. self.into.said(self))
  self.retry = true -- (its class's token drawn when due)
  loop:at(t + delay, self)
end

-- A timer fell due: the next attempt; an API retry's once it has the key's
-- token (a create's before the polls waiting), unless its deadline came.
function Request:advance(t)
  if self.done or self.handle then return end
  local by = self.deadline or self.send_by
  if self.retry and not (by and t >= by) then
    local later, held = self:token(t)
    local long = later and Bucket.too_long(t, later, held, self.cfg, self.what, by)
    if long then return self:finish(nil, long, t) end
    if later then return self.loop:at(by and math.min(later, by) or later, self) end
    self.retry = false
  end
  self:send(t)
end

-- Abandon it (never a create in flight: it may already be paid for).  A
-- download's .part is removed, unless `keep` (its job records it).  (A download
-- that ended whole, req.whole, is its owner's to commit: download.lua's D.commit.)
function Request:cancel(keep)
  if self.done then return end
  self.loop:untrack(self)
  if self.handle then
    self.loop.transport:cancel(self.handle)
    self.handle = false
    local o = self.cfg.observe
    if o then o:exchange(Observed().exchange(self, now(), nil, { kind = "cancelled" }, "cancelled")) end
  end
  self.done, self.err = true, new_error("io", "the request was cancelled")
  self.key.bucket:leave(self) -- (a retry waiting for its token)
  self.into.ended(self, keep)
end

return Request
