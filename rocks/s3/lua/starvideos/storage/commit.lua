-- The store's requests of the bucket sink (storage/object.lua) and of the helpers around it: one request on an object
-- for its owner (call), the commit of a whole upload (CompleteMultipartUpload, then the copy that adds the object's
-- x-amz-meta-sha256; each answer read for an <Error> a 200 may hold, S3's way), and one request driven to its end
-- (ask: list --check's HEAD, the sweep's listing and aborts).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local errors = X.errors
local S3 = require "starvideos.storage.s3"

local setmetatable, tonumber, tostring, ipairs, string_format, table_concat = setmetatable, tonumber, tostring,
  ipairs, string.format, table.concat
local new_error, now = errors.new_error, core.now

local M = {}

local function sigv4() return require "starvideos.sigv4" end

-- A request of shape op (S3.OPS) on the object for owner: sent now, it advances owner when done.  (Owner: host (a
-- job's seat, or a client's ctx: host.lua's methods), st, bucket, key_name, out, path, deadline; storage/refs.lua's
-- objects are owners too.)
function M.call(owner, op, a, t, long)
  local r, err = S3.request(owner.st, op, owner.bucket, owner.key_name, a)
  local req = owner.host:request { owner = owner, op = "exchange",
    what = "storage", url = r and r.url or owner.out, path = owner.path, body = r and r.body, deadline = owner.deadline,
    method = r and r.method, headers = r and r.headers, heads = true, long = long }
  if r then req:send(t) else req.done, req.err = true, err end
  return req
end

------------------------------------------------------------------ the commit: complete, then the metadata

local C = {}
C.__index = C

function M.commit(got, seat)
  local c = setmetatable({ host = seat, got = got, st = got.st,
    bucket = got.bucket, key_name = got.key_name, out = got.out, path = got.path, deadline = got.deadline,
    done = false, sha256 = got.sha256, bytes = got.bytes, marked = got.marked }, C)
  local parts = {}
  for n, p in ipairs(got.rec.parts) do
    parts[n] = string_format("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag>%s</Part>", n,
      p[1]:gsub("&", "&amp;"):gsub("<", "&lt;"), got.rec.checksum == "sha256" and "<ChecksumSHA256>" .. p[2]
      .. "</ChecksumSHA256>" or "")
  end
  c.req = M.call(c, "complete", { upload = got.rec.upload,
    body = "<CompleteMultipartUpload>" .. table_concat(parts) .. "</CompleteMultipartUpload>" }, now())
  return c
end

-- A HEAD's answer (req): the object's size, x-amz-meta-sha256 and ETag, as the store named them (nil: not named).
local function head_of(req)
  local h = req.task.headers:lower()
  return tonumber(h:match("content%-length:%s*(%d+)")), h:match("x%-amz%-meta%-sha256:%s*(%x+)"),
    h:match("etag:%s*([^\r\n]*)")
end

-- Complete, then the copy that adds the metadata; a complete answered NoSuchUpload (the upload completed already, by
-- a run killed or told of an error after it; or gone), the object looked at.
function C:advance(t)
  local req = self.req
  if self.done or not req.done then return end
  local err = req.err or S3.error_in(req.task.body)
  if self.step == "head" then return self:looked(req) end
  if err and err.status == 404 and not self.copied then
    self.step, self.req = "head", M.call(self, "head", nil, t)
    return
  end
  if err then return self:committed(err) end
  if not self.copied then
    self.copied = true
    self.req = M.call(self, "copy", { source = "/" .. self.bucket .. "/" .. sigv4().uri_encode(self.key_name, true),
      sha256 = self.sha256 }, t)
    return
  end
  self.note = { etag = S3.xml(req.task.body, "ETag") }
  self:committed()
end

-- The object at the key once its upload was gone (req: the HEAD): whole already, with its SHA-256 (a run killed
-- after the copy), or made again (redo: the video read again from its first byte, into a new upload).
function C:looked(req)
  local size, sum, etag
  if not req.err then size, sum, etag = head_of(req) end
  if sum == self.sha256 and size == self.bytes then
    self.note = { etag = etag }
    return self:committed()
  end
  self:committed(new_error("server", string_format("the upload is gone (NoSuchUpload) and the object %s (the "
    .. "video is uploaded again)", req.err and "is not there" or "has not its x-amz-meta-sha256"), { redo = true }))
end

function C:committed(err)
  self.done, self.err = true, err
  if err then err.message = "storage: " .. self.out .. ": " .. err.message end
  self.host:advance(now())
end

function C:cancel() self.done = true end

------------------------------------------------------------------ one request to its end: list --check, the sweep

-- The owner of such a request: told when its answer came, or cancelled (a client's close).
local Ask = {}
Ask.__index = Ask
function Ask:advance() self.done = true end
Ask.cancel = Ask.advance

-- One request of shape op on bucket's key on the store st (deadline: nil, none), driven on ctx's loop to its end
-- (ctx: a client's, or a job's seat), its waits the client's sleep (in a job's coroutine, verb_job.lua: it yields):
-- the request (req.task: its answer, else req.err).  storage/sweep.lua's too.
function M.ask(ctx, st, bucket, key_name, op, a, deadline)
  local o = setmetatable({ host = ctx, st = st, bucket = bucket,
    key_name = key_name, out = "s3://" .. bucket .. "/" .. key_name, path = "/" .. bucket .. "/" .. key_name,
    deadline = deadline, done = false }, Ask)
  o.req = M.call(o, op, a, now())
  ctx:drive(function() return o.done or o.req.done end)
  return o.req
end

-- A saved object against what was recorded (t: path, bytes, sha256), by HEAD (by ctx.deadline, when it has one):
-- "ok", or "missing" or "changed" and why.
function M.check(t, ctx)
  local bucket, key_name = S3.parse(t.path, "path")
  local st, err = S3.store_of(ctx:storage())
  local req = bucket and st and M.ask(ctx, st, bucket, key_name, "head", nil, ctx.deadline) or { err = err or key_name }
  err = req.err
  if err then
    return "missing", string_format("%s: %s", t.path, err.status == 404 and "no object" or tostring(err.message))
  end
  local size, sum = head_of(req)
  if t.bytes and size ~= t.bytes then
    return "changed", string_format("%s holds %s bytes; %d were saved", t.path, tostring(size), t.bytes)
  end
  if t.sha256 and sum ~= t.sha256 then
    return "changed", string_format("%s has x-amz-meta-sha256 %s; %s was saved", t.path, tostring(sum), t.sha256)
  end
  return "ok"
end

-- A local file (a film joined here: film.lua) put as the object out, whole in one PutObject with its
-- x-amz-meta-sha256 (sum: the file's, hex), then looked at as list --check would (M.check): true, or nil, err.
-- (Read whole: a film of MAX bytes at most.)
M.MAX = 1024 * 1024 * 1024
function M.place(file, out, ctx, sum)
  local bucket, key_name = S3.parse(out, "out")
  local st, err = S3.store_of(ctx:storage())
  if not (bucket and st) then return nil, err or key_name end
  local body, rerr = core.read_whole(file, M.MAX)
  if not body then return nil, new_error("io", string_format("out: %s could not be read: %s", file, tostring(rerr))) end
  local req = M.ask(ctx, st, bucket, key_name, "put", { type = "video/mp4", sha256 = sum, body = body, payload = sum },
    ctx.deadline)
  if req.err then
    return nil, new_error(req.err.kind or "io", string_format("out: %s could not be put: %s", out,
      tostring(req.err.message)), { field = "out" })
  end
  local state, why = M.check({ path = out, bytes = #body, sha256 = sum }, ctx)
  if state ~= "ok" then return nil, new_error("io", "out: " .. tostring(why), { field = "out" }) end
  return true
end

------------------------------------------------------------------ the provenance record beside an object

-- The PUT of a saved object's provenance record (provenance.lua's text) at its key + ".json", for the job: an object
-- with done, err (the job advances once it is answered).
local R = {}
R.__index = R
function R:advance(t)
  local req = self.req
  if self.done or not req.done then return end
  self.done, self.err = true, req.err or S3.error_in(req.task.body)
  self.host:advance(t)
end
function R:cancel() self.done = true end

function M.record(seat, t, text)
  local bucket, key_name = S3.parse(seat.out, "out")
  local st, err = S3.store_of(seat:storage())
  if not (bucket and st) then return { done = true, err = err or key_name } end
  local name = key_name .. ".json"
  local o = setmetatable({ host = seat, st = st, bucket = bucket,
    key_name = name, out = seat.out .. ".json", path = "/" .. bucket .. "/" .. name, deadline = seat.deadline,
    done = false }, R)
  o.req = M.call(o, "put", { type = "application/json", body = text }, t)
  if o.req.done then o.done, o.err = true, o.req.err end
  return o
end

-- The text of the provenance record beside the saved object path (ctx: a client's), or nil.
function M.record_of(path, ctx)
  local bucket, key_name = S3.parse(path, "path")
  local st = bucket and S3.store_of(ctx:storage())
  if not st then return nil end
  local req = M.ask(ctx, st, bucket, key_name .. ".json", "get")
  if req.err or S3.error_in(req.task.body) then return nil end
  return req.task.body
end

-- A saved object (t: its path as the ledger recorded it) where another create or a local tool reads it in place: a
-- presigned GET that lives past `left` seconds from now (s3.lua's lifetime), or nil, err.  (Checked whole first:
-- M.check.)
function M.source(t, ctx, left)
  local bucket, key_name = S3.parse(t.path, "path")
  if not bucket then return nil, key_name end
  local st, err = S3.store_of(ctx:storage())
  if not st then return nil, err end
  local url, perr = S3.presign(st, bucket, key_name, S3.lifetime(left or 0))
  if not url then return nil, perr end
  return url
end

return M
