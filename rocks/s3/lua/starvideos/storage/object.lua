-- The bucket sink (sink.lua's interface, for an s3://bucket/key out): the video read from its URL a part at a
-- time (a Range GET of PART bytes, op media) into a multipart upload (op storage, storage/s3.lua), one part in
-- the store's hands while the next is read, never more.  Each part passes starvideos.sigv4's stream on the way
-- (the video's SHA-256, the part's checksum, the whole-MP4 check: storage/part.lua, in nginx's thread pool) and
-- is recorded in the ledger once the store took it (its sink_state "upload": the upload id, the parts, the
-- stream's state), the next part sent only once that record is written, so that a later process goes on from
-- the next part.  The upload is completed (commit, storage/commit.lua) only when the video is whole and right,
-- then copied onto itself with its x-amz-meta-sha256 (S3 takes metadata only at an upload's start); a failed check
-- or transfer aborts it: the object is there whole, or not at all, and no upload of ours is left.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local errors = X.errors
local S3 = require "starvideos.storage.s3"
local Part = require "starvideos.storage.part"
local Commit = require "starvideos.storage.commit"
local cjson = require("cjson.safe").new()

local setmetatable, getmetatable, type, tostring, ipairs, string_format = setmetatable, getmetatable, type, tostring,
  ipairs, string.format
local new_error, now = errors.new_error, core.now

local O = {}

O.PART = 5 * 1024 * 1024 -- bytes of a part (S3's least but for the last; a multiple of 64: the stream's state)

local function sigv4() return require "starvideos.sigv4" end

-- The bucket of the store st asked once with these credentials (ctx: a job's seat), before a create
-- that writes into it is paid for (once per store: st.reached): true, or nil, err naming the bucket and the
-- store's answer.
local function reach(ctx, st, bucket)
  if st.reached[bucket] then return true end
  local req = O.ask(ctx, st, bucket, "", "uploads", { prefix = "" })
  local err = req.err
  if err then -- (S3 answers a bucket that does not exist 404 NoSuchBucket; one the keys may not write, 403)
    return nil, new_error(err.kind or "auth", string_format("out: bucket %s %s: the store said %s", bucket,
      err.status == 404 and "does not exist" or "cannot be written with the storage keys given",
      tostring(err.message)), { field = "out" })
  end
  st.reached[bucket] = true
  return true
end

-- v (an out's s3://bucket/key; dir: a folder's s3://bucket/prefix) and the store of cfg checked: true, or nil, err.
local function check(v, field, dir, cfg)
  local bucket, err = S3.parse(v, field, dir)
  if not bucket then return nil, err end
  local st, serr = S3.store_of(cfg.storage)
  return st and true, serr
end
function O.check_out(out, cfg) return check(out, "out", false, cfg) end
-- An out's bucket asked once before a create that writes it (ctx: the job's seat): true, or nil, err.
function O.reach(out, cfg, ctx)
  local bucket = S3.parse(out, "out")
  local st = S3.store_of(cfg.storage)
  if not (bucket and st) then return true end -- (check_out said why)
  return reach(ctx, st, bucket)
end
function O.check_dir(dir, field, cfg) return check(dir, field, true, cfg) end

function O.left() return nil end -- (each part is recorded as the store takes it)

local call = Commit.call
O.call, O.commit, O.ask, O.check, O.source, O.place = Commit.call, Commit.commit, Commit.ask, Commit.check,
  Commit.source, Commit.place
O.record, O.record_of = Commit.record, Commit.record_of -- (a saved object's provenance record: provenance.lua)

------------------------------------------------------------------ the upload (the transfer)

local U = {}
U.__index = U

-- The state text the ledger keeps of an upload (self.rec), decoded: a table, or nil.
local function recorded(text)
  local rec = type(text) == "string" and cjson.decode(text)
  if type(rec) == "table" and type(rec.upload) == "string" and type(rec.parts) == "table" then return rec end
end

function O.fetch(seat, t, url, path, d)
  local bucket, key_name = S3.parse(seat.out, "out")
  local st, serr = S3.store_of(seat:storage())
  local u = setmetatable({ host = seat, st = st, bucket = bucket,
    key_name = key_name, out = seat.out, url = url, video_path = path, path = "/" .. tostring(bucket) .. "/" ..
    tostring(key_name), deadline = seat.deadline, duration = d.duration, done = false, bytes = 0,
    mark = seat.mark }, U) -- (mark: the box the last part ends with, seat.lua's; nil: none)
  if not (bucket and st) then
    return seat:await(u:finish(serr or new_error("invalid_request", "out: not an object URL")), t)
  end
  local rec = recorded(d.upload)
  u.rec = rec or { parts = {}, checksum = st.server.checksum or "sha256" }
  if rec and not u:stream_of(rec.state) and not rec.sha256 then -- a record we cannot go on from: its upload
    u.stale = rec.upload -- goes, a new one
    u.rec = { parts = {}, checksum = u.rec.checksum }
  end
  if not u.stream then u:stream_of(nil) end
  u.total = rec and rec.total
  u.eof = u.rec.sha256 ~= nil -- (every part in the store's hands: the upload is completed)
  seat:await(u, t)
  if not u.done then u:go(t) end
end

-- The seconds the video lasts (-1: any), for its stream.
function U:seconds() return type(self.duration) == "number" and self.duration or -1 end

-- The stream gone on from state (the last part's; nil: from byte 0), for where the next part starts: it, or nil.
function U:stream_of(state)
  self.state = state
  self.stream = sigv4().stream(self:seconds(), true, state) -- (each part's MD5 too: its ETag is compared with it)
  return self.stream
end

-- A part's bytes checked and hashed (storage/part.lua): fed to tap as they came (libcurl's transport: only the
-- sums taken now), else in the transport's thread pool when it has one.
function U:check(bytes, tap)
  local seconds, md5 = self:seconds(), true
  if tap then
    local fed, why = tap:tapped()
    if not fed then tap:close(); return nil, why, true end
    if fed == Part.size(bytes) then return Part.sums(tap, self.total, self.mark) end
    tap:close() -- (fed other bytes than these: they are hashed whole below)
  end
  return self.host:offload("starvideos.storage.part", "check", seconds, md5, self.state, bytes, self.total, self.mark)
end

-- The GETs held of each key (its part "held GETs", key.lua): at most its max_connections but one, so that a
-- connection is always left for the requests that end (the puts, the reads), however many jobs read from hosts
-- that ignore Range.
local function holding(host) return host:shared("held GETs", function() return { n = 0 } end) end

-- The GET req held at its part's end (its task's `held`) kept for the next part, when the key has a connection to
-- spare; else let go of (the next part then reads from byte 0 again).
function U:keep(req)
  local h = req.task.held
  if not h then return end
  local held = holding(self.host)
  if held.n + 1 >= self.host:connections() then return self.host:cancel(h) end
  held.n, self.held = held.n + 1, h
end

-- The GET held, taken back (going on with the next part's request), or let go of (cancel: its connection closed).
function U:unhold(cancel)
  local h = self.held
  if not h then return nil end
  local held = holding(self.host)
  self.held, held.n = nil, math.max(0, held.n - 1)
  if cancel then self.host:cancel(h) end
  return h
end
function U:let_go() self:unhold(true) end

-- The upload ends (err: why, and then its upload was aborted): the job is told.
function U:finish(err)
  self:let_go()
  self.done, self.err = true, err
  if err and err.check == nil and self.checked then err.check = self.checked end
  if self.host:awaits(self) then self.host:advance(now()) end
  return self
end

-- The ledger's record of the upload now (nil: it ended).
function U:record(text)
  local id = self.host.id
  if id then self.written = self.host:sink_state(id, "upload", text, self.out) end
end

-- Whether the ledger wrote the upload's last record: a part is sent (and the upload completed) only once the parts
-- before it are recorded, so that a process killed after a part's answer never sends that part again.  Not yet:
-- looked at again soon, or once a store answers (loop:wait_for).
function U:recorded(t)
  if not self.written or self.host:written(self.written) then self.written = nil; return true end
  self.host:wait_for(self, t)
  return false
end

-- Whether the call's deadline came while the ledger has not written the upload's last record (a store that
-- stopped answering): then the upload ends, timed out, its record as the ledger has it.
function U:unrecorded(t)
  return self.written ~= nil and self.deadline ~= nil and t >= self.deadline and not self:recorded(t)
end

local SENDING = { done = false, cancel = function() end } -- (self[k] while its request is sent: U:place)

-- A store request of the upload's (op, a, long: commit.lua's call) in self[k] before it can end: one refused at once
-- (its deadline passed) is looked at from the loop, once it is in place, never inside the call that made it (go
-- then made it again, and again: a stack overflow).
function U:place(k, op, a, t, long)
  self[k] = SENDING
  local req = call(self, op, a, t, long)
  self[k] = req
  if req.done then self.host:at(t, self) end
  return req
end

-- It failed (err): its upload aborted first (nothing of ours left at the key), then the job told.  A part in the
-- store's hands is awaited first: one it takes after the abort would leave the upload (as s3rver and S3 may).
function U:fail(err, t)
  self.failed, self.ready = self.failed or err, nil
  if self.get then self.get:cancel(); self.get = nil end
  self:let_go()
  if self.put then return end -- (go aborts once it is answered)
  if not self.rec.upload then return self:finish(self.failed) end
  self:place("aborting", "abort", { upload = self.rec.upload }, t)
end

-- The next thing to send: the upload made, a part read, a part put; the end once all are in.
function U:go(t)
  if self.done or self.aborting then return end
  if self.failed then return not self.put and self:fail(self.failed, t) end
  if self:unrecorded(t) then
    return self:fail(new_error("timeout", string_format("storage: %s: the ledger did not write the upload's "
      .. "record before the call's timeout (the next part is sent only once it has)", self.out)), t)
  end
  if self.stale and not self.call then
    self:place("call", "abort", { upload = self.stale }, t) -- (its answer: NoSuchUpload is as good)
    self.stale = nil
    return
  end
  if not self.rec.upload then
    if not self.call then self:place("call", "create", { checksum = self.rec.checksum }, t) end
    return
  end
  if self.ready and not self.put and self:recorded(t) then
    local p = self.ready
    self.ready = nil
    self:place("put", "part", { n = p.n, upload = self.rec.upload, checksum = self.rec.checksum,
      sum = self.rec.checksum == "md5" and p.md5 or p.sha_b64, payload = p.sha_hex, body = p.body }, t, true)
    self.putting = p -- (the part its PUT carries: one at a time)
  end
  if not self.get and not self.ready and not self.eof and not self.rec.sha256 then self:read(t) end
  if self.eof and not self.ready and not self.put and self:recorded(t) then
    self.whole, self.sha256, self.bytes = true, self.rec.sha256, self.rec.at or self.total -- (the mark's among them)
    self.marked = self.rec.marked
    self:finish()
  end
end

-- The next part's bytes asked for: from where the stream goes on to the end of the part it is in.  A host that
-- ignores Range answers 200 and the whole file: that GET is held (paused by its transport) at the part's end, and
-- the next part's request goes on with it (rest) rather than reading the file again from byte 0; it waits so
-- while the store takes the part before (one part in the store's hands, one read, never more), and a transport
-- that cannot go on with it (it ended meanwhile, or the part starts elsewhere) sends the request anew.  Not with
-- one connection (max_connections 1): the held GET would keep the store's PUT waiting for it.
function U:read(t)
  local from, at = self.stream:from(), self.stream:at()
  local upto = at + O.PART
  if self.total and upto > self.total then upto = self.total end
  if self.total and from >= self.total then self.eof = true; return end
  local tap = self.host:taps() and function() -- (libcurl's transport feeds it; others: U:check hashes the bytes)
    return sigv4().stream(self:seconds(), true, self.state)
  end
  self.get = self.host:request { owner = self, op = "exchange",
    what = "media", url = self.url, path = self.video_path, deadline = self.deadline, range = { from, upto - 1 },
    headers = "Accept: */*\n", follow = true, long = true, pieces = true, tap = tap or nil,
    hold = self.host:connections() > 1 or nil, rest = self:unhold() } -- (the held GET: the request's now)
  self.get.from, self.get.at = from, at
  self.get:send(t)
end

-- A part's bytes came (req: the GET): checked and hashed, and queued to be put.
function U:got(req, t)
  if req.err then self.wire = req.wire; return self:fail(req.err, t) end
  local bytes = req.task.body
  self:keep(req) -- (a 200 held at the part's end: the next part's, U:read)
  req.task = nil -- (a part's megabytes: the put's alone from now on)
  self.total = self.total or req.total
  if Part.size(bytes) == 0 then
    return self:fail(new_error("protocol", string_format("download: no bytes at %.0f of %s", req.from,
      tostring(self.total))), t)
  end
  local r, why, notwhole = self:check(bytes, req.tap) -- (the whole video checked before its last part is put)
  if self.done or self.failed then return end -- (cancelled while the pool hashed)
  if not r then
    self.checked = notwhole and why or nil
    return self:fail(new_error(notwhole and "protocol" or "io", string_format("download: %s is not a whole "
      .. "video: %s", self.out, tostring(why)), { check = notwhole and why or nil }), t)
  end
  self.n = (self.n or #self.rec.parts) + 1
  local body = Part.past(bytes, req.at - req.from)
  if r.marked == true then body = Part.marked(body, self.mark) end -- (the video's last part: its mark after it)
  self.ready = { n = self.n, body = body, sha_hex = r.sha_hex, sha_b64 = r.sha_b64, md5 = r.md5, at = r.at,
    state = r.state, sha256 = r.sha256, marked = r.marked }
  self.eof = r.sha256 ~= nil
  if r.state then self:stream_of(r.state) end
end

-- The store took the part its PUT req carried (self.putting): recorded, then the next.
function U:taken(req, t)
  local p = self.putting
  if self.failed then return end -- (its upload is aborted now)
  if req.err then return self:fail(req.err, t) end
  -- (its ETag: the answer's header, else its XML's, quotes kept)
  local etag = req.task.headers:match("[Ee][Tt][Aa][Gg]:%s*([^\r\n]*)") or S3.xml(req.task.body, "ETag")
  if not etag then return self:fail(new_error("protocol", "storage: the store named no ETag for part " .. p.n), t) end
  local wrong = S3.part_wrong(req.task.headers, etag, p.md5, self.rec.checksum == "sha256" and p.sha_b64)
  if wrong then -- (the upload aborted, the video read again into a new one, once: video.lua's redo)
    return self:fail(new_error("protocol", string_format("storage: %s: part %d: %s", self.out, p.n, wrong),
      { redo = true }), t)
  end
  local rec = self.rec
  rec.parts[p.n] = { etag, self.rec.checksum == "md5" and p.md5 or p.sha_b64 }
  rec.state, rec.total, rec.sha256, rec.marked, rec.at = p.state, self.total, p.sha256, p.marked, p.at
  local body = p.body
  self.bytes, p.body, req.body = p.at, nil, nil
  self:record(cjson.encode(rec))
  self.host:progress(p.at, self.total)
  -- (the part's megabytes let go of now, not when the heap has doubled: libcurl's starvideos.bytes at once)
  if type(body) == "userdata" then body:free() else collectgarbage() end
end

-- The store refused x-amz-checksum-* (err, to the create that asked for them): parts carry Content-MD5 from now on,
-- said once per store.
local function refused_checksums(self, err)
  if self.rec.checksum ~= "sha256" or not (err.status == 400 or err.status == 501) then return false end
  self.st.server.checksum = "md5"
  self.rec.checksum = "md5"
  self:stream_of(nil)
  self.host:tell { type = "warning", message = string_format("storage %s refused x-amz-checksum-* (%s): parts "
    .. "carry Content-MD5 instead", self.st.where, tostring(err.message)) }
  return true
end

-- A create or an abort answered (req).
function U:called(req, t)
  if self.aborting == req then
    self.aborting = nil
    if not req.err or req.err.status == 404 then self:record(nil) end -- (an upload gone already: none left)
    return self:finish(self.failed)
  end
  if req.err and req.err.kind ~= "not_found" and req.task == nil and not self.rec.upload and
      refused_checksums(self, req.err) then
    return
  end
  if self.rec.upload then return end -- (a stale upload's abort)
  if req.err then return self:fail(req.err, t) end
  local id = S3.xml(req.task.body, "UploadId")
  if not id then return self:fail(new_error("protocol", "storage: the store's answer named no UploadId"), t) end
  self.rec.upload = id
  self:record(cjson.encode(self.rec))
end

function U:advance(t)
  if self.done then return end
  for _, k in ipairs { "call", "aborting", "get", "put" } do
    local req = self[k]
    if req and req.done then
      if k ~= "aborting" then self[k] = nil end
      if k == "get" then self:got(req, t) elseif k == "put" then self:taken(req, t) else self:called(req, t) end
      if self.done then return end
    end
  end
  self:go(t)
end

-- Cancelled (a close, keep: its parts stay recorded for the next; else aborted, as best it can be).
function U:cancel(keep)
  if self.done then return end
  for _, k in ipairs { "call", "get", "put" } do
    if self[k] then self[k]:cancel(); self[k] = nil end
  end
  self:let_go()
  self.done = true
  if not keep and self.rec.upload and not self.aborting then
    self.aborting = call(self, "abort", { upload = self.rec.upload }, now())
  end
end

-- Whether a close that stops the job's request req keeps it for the next run: an upload does (U:cancel(true):
-- its parts stay recorded, not aborted); the job's API requests are not the sink's.
function O.keeps(req) return getmetatable(req) == U end

function O.release() end -- (a whole upload let go of uncommitted: its parts stay, recorded)

return O
