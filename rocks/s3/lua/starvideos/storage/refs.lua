-- Local files as references (docs/storage.md): a create's {file = path} put once into the user's bucket under
-- storage.refs (else $STARVIDEOS_REFS), named by its SHA-256 (a HEAD first: a file already there is not sent
-- again), then named in the create by a presigned GET whose lifetime covers the task's deadline.  At the task's
-- end (completed or failed, or a create that surely made nothing) each object is deleted, unless keep_refs, once
-- no other live task names it: this process's jobs are counted, the ledger's unfinished tasks looked at.  Reached
-- through the s3 sink's extension (sink/s3.lua's references): start (a job's create awaits it), release (a job's
-- end), sweep (resume and keep: the objects of ended tasks a process left behind), ready (a film's check before its
-- first create).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local errors = X.errors
local S3 = require "starvideos.storage.s3"
local Object = require "starvideos.storage.object"
local cjson = require("cjson.safe").new()

local setmetatable, type, pairs, ipairs, tostring, string_format, os_getenv =
  setmetatable, type, pairs, ipairs, tostring, string.format, os.getenv
local new_error, now = errors.new_error, core.now

local R = {}

R.WEEK, R.MARGIN = S3.WEEK, S3.MARGIN -- (a presigned URL's lifetime: s3.lua's)

local ALL = setmetatable({}, { __index = function() return true end }) -- (every object named: a ledger not read)

local MIME = { png = "image/png", jpeg = "image/jpeg", webp = "image/webp", gif = "image/gif", mp4 = "video/mp4",
  mov = "video/quicktime", wav = "audio/wav", mp3 = "audio/mpeg", m4a = "audio/mp4", aac = "audio/aac",
  ogg = "audio/ogg" }

local function sign() return require "starvideos.sign" end -- (C: loaded at first use)

-- Whether the storage option keeps reference objects (keep_refs), for a host (a job's seat, a client's ctx).
local function keep_refs(host)
  local storage = host:storage()
  return storage ~= nil and storage.keep_refs == true
end

-- The store of the storage option and where its references go: st, bucket, prefix; or nil, err (what to set).
local function refs_of(storage)
  local st, err = S3.store_of(storage)
  if not st then return nil, err end
  local where = storage and storage.refs or os_getenv("STARVIDEOS_REFS")
  if where == nil or where == "" then
    return nil, new_error("invalid_request", "storage.refs: a local file as a reference is put into your bucket "
      .. "first: give storage = {refs = \"s3://bucket/prefix/\"} or set STARVIDEOS_REFS", { field = "storage.refs" })
  end
  local bucket, prefix = S3.parse(where, "storage.refs", true)
  if not bucket then return nil, prefix end
  return st, bucket, prefix
end

-- The storage option checked (the core's config hands it here: s3.lua's check): nil, or what is wrong.
R.check = S3.check

-- Where a host (a job's seat, a client's ctx) puts its local files, as refs_of, refused unless the service could
-- fetch from the store's host (as preflight rules for a reference URL, docs/media.md: host:public_only()): st,
-- bucket, prefix; or nil, err.
local function place(host)
  local st, bucket, prefix = refs_of(host:storage())
  if not st then return nil, bucket end
  if host:public_only() and core.private_host(st.host) then
    return nil, new_error("invalid_request", string_format("storage.endpoint: %s is not a public address: the "
      .. "service could not fetch a local file's URL there (allow_private_media = true sends it anyway)", st.where),
      { field = "storage.endpoint" })
  end
  return st, bucket, prefix
end

-- Whether a client (its ctx) can put local files (its storage option, else the environment; no network): true, or
-- nil, err (what to set), as start would find it.  A film asks before its first create; a remix puts its parent's
-- file there when it can, not the service's video_url (lineage.lua).
function R.ready(ctx)
  local st, err = place(ctx)
  if not st then return nil, err end
  return true
end

-- A task's objects as the ledger records them (the JSON text of their URLs; a list in client:tasks) -> the URLs.
local function urls_of(refs)
  local list = type(refs) == "string" and cjson.decode(refs) or refs
  return type(list) == "table" and list or {}
end

------------------------------------------------------------------ an object, as one holder asks for it

local Obj = {}
Obj.__index = Obj

-- The object at url (s3://bucket/key) for holder (an upload, a release), with the fields a storage request reads
-- (Object.call); nil for a URL that is not one.
local function object_of(holder, url, extra)
  local bucket, key_name = S3.parse(url, "refs")
  if not bucket then return nil end
  local o = setmetatable({ holder = holder, owner = holder, host = holder.host, st = holder.st, bucket = bucket,
    key_name = key_name, out = url, url = url, path = "/" .. bucket .. "/" .. key_name, deadline = holder.deadline,
    done = false }, Obj)
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- holder's request of a shape for o (an upload's "head": whether it is in the bucket, put when not, unless known
-- there; a release's "delete"), sent now, unless another's is asked for it (then o waits on that one).
local function ask(holder, o, t, shape)
  if holder.done then return end
  if shape == "head" and o.st.server:known(o.url) then return holder:got(o, t) end
  local a = o.st.server:asker(o.url)
  if a then a.waiting[#a.waiting + 1] = o; return end
  o.done = false
  o:send(shape, nil, t)
end

-- Its request of a shape (S3.OPS) sent now, the others asking for it waiting on it.
function Obj:send(shape, a, t)
  self.step, self.waiting = shape, self.waiting or {}
  self.st.server:asks(self.url, self)
  self.req = Object.call(self, shape, a, t, shape == "put")
end

-- Its bytes put (the file read whole, as the check read it, and hashed again: what is sent is what was checked).
function Obj:put(t)
  local body, err = core.read_whole(self.file, self.max)
  local sum = body and sign().sha256(body)
  if sum ~= self.sha256 then
    return self:answered(t, new_error("io", body and string_format("%s changed since it was checked: its SHA-256 "
      .. "is no longer its object's name", self.file) or tostring(err)))
  end
  self:send("put", { type = self.mime, sha256 = sum, body = body, payload = sum }, t)
end

-- Its request answered (its HEAD: not there, put it).
function Obj:advance(t)
  local req = self.req
  if not (req and req.done) or self.done then return end
  self.req = nil
  if self.step == "head" and req.err and req.err.status == 404 then return self:put(t) end
  return self:answered(t, not (self.step == "delete" and req.err and req.err.status == 404) and req.err or nil)
end

-- The end of what was asked for it (err: it failed): its holder told, then those waiting on it.
function Obj:answered(t, err)
  self.done = true
  local there -- (in the bucket now; a failure tells nothing new)
  if not err then there = self.step ~= "delete" end
  self.st.server:answered(self.url, self, there)
  local waiting, step = self.waiting or {}, self.step
  self.waiting, self.put_done = nil, step == "put" and not err or nil
  self.holder:got(self, t, err)
  for _, w in ipairs(waiting) do
    if step == "delete" then ask(w.holder, w, t, "delete") else w.holder:got(w, t, err) end
  end
end

-- Whether its request is the one in flight for its URL.
function Obj:asking() return self.st.server:asker(self.url) == self end

function Obj:cancel()
  if self.done then return end
  if self.req then self.req:cancel() end
  self:answered(now(), new_error("io", "the request was cancelled"))
end

------------------------------------------------------------------ the upload: before a create

local U = {}
U.__index = U

-- The object of a reference (the seat's: its field and file, its SHA-256 and type the check's, extras/preflight.lua:
-- taken from the bytes it judged), made once per file's bytes: o, or nil, err.
function U:object(ref, prefix)
  if not ref.sha256 then
    return nil, new_error("invalid_request", ref.field .. ": " .. ref.file .. " was not checked", { field = ref.field })
  end
  local sum, ext = ref.sha256, MIME[ref.type] and ref.type or "bin"
  local mime = MIME[ext] or "application/octet-stream"
  local url = "s3://" .. self.bucket .. "/" .. prefix .. sum .. "." .. ext
  local o = self.by_url[url]
  if not o then
    o = object_of(self, url, { file = ref.file, mime = mime, sha256 = sum, field = ref.field, max = ref.max })
    self.by_url[url], self.list[#self.list + 1] = o, o
    self.st.server:hold(self.host, url)
  end
  self.by_file[ref.file] = o
  return o
end

-- Start putting job's local files into the bucket at t (job:advance once done: up.done, up.err; up.body, the
-- create's body naming their presigned URLs, and up.refs, the objects as the ledger records them).
function R.start(seat, t)
  local up = setmetatable({ host = seat, deadline = seat.deadline, done = false, list = {}, by_url = {},
    by_file = {}, left = 0 }, U)
  local st, bucket, prefix = place(seat)
  if not st then return up:finish(bucket, t) end
  up.st, up.bucket = st, bucket
  for _, ref in ipairs(seat.references) do
    local o, err = up:object(ref, prefix)
    if not o then return up:finish(err, t) end
  end
  up.left = #up.list
  for _, o in ipairs(up.list) do ask(up, o, t, "head") end
  return up
end

-- o is in the bucket now (err: it could not be put there): the create's body once every one is.
function U:got(o, t, err)
  if self.done then return end
  if err then
    return self:finish(new_error(err.kind == "timeout" and "timeout" or err.kind == "network" and "network" or "io",
      string_format("%s: %s could not be put into %s: %s (nothing was created)", o.field, o.file, o.url,
        tostring(err.message)), { field = o.field, status = err.status, transient = err.transient }), t)
  end
  self.left = self.left - 1
  if self.left == 0 then self:presigned(t) end
end

-- Every object there: each named by a presigned GET that outlives the task's deadline (a week at most), the
-- create's body built with them.
function U:presigned(t)
  local left = self.deadline - t
  local seconds = S3.lifetime(left)
  if left + R.MARGIN > R.WEEK then
    self.host:emit("warning", { message = string_format("a presigned URL lives 7 days at most, and the task's "
      .. "deadline is %.1f days away: a task the service has not started by then cannot fetch its local files "
      .. "(it fails)", left / 86400) })
  end
  local urls, names = {}, {}
  for i, o in ipairs(self.list) do
    local url, err = S3.presign(self.st, self.bucket, o.key_name, seconds)
    if not url then return self:finish(err, t) end
    urls[o], names[i] = url, o.url
  end
  local url_of = {}
  for file, o in pairs(self.by_file) do url_of[file] = urls[o] end
  local path, body = self.host:body(url_of)
  if not path then return self:finish(body, t) end
  self.body = body
  if not keep_refs(self.host) then self.refs = cjson.encode(names) end
  self:finish(nil, t)
end

-- The upload ends (err: why); the job told.  Without refs (a failure, keep_refs, a cancel) the job holds nothing:
-- what this upload put is deleted after a failure (no task names it), unless keep_refs; a cancel (a client's close)
-- sends nothing more.
function U:finish(err, t)
  if self.done then return self end
  self.done, self.err = true, err
  if not self.refs then R.release(self.host, not self.cancelled and err or nil, self.list) end
  if self.host:awaits(self) and not self.cancelled then self.host:advance(t or now()) end -- (a cancel: the job's)
  return self
end

function U:cancel()
  self.cancelled = true
  for _, o in ipairs(self.list) do if o:asking() then o:cancel() end end
  self:finish(new_error("io", "the job was cancelled"))
end

------------------------------------------------------------------ the release: at a job's end

local Rel = {}
Rel.__index = Rel

-- job's create answered with task id: the objects its upload put recorded with the task (deleted at its end).
function R.created(seat, id)
  if seat.refs then seat:sink_state(id, "refs", seat.refs) end
end

-- The objects the ledger's unfinished tasks but id name (url -> true): they stay; nil when it cannot be read.  (host:
-- a job's seat, a client's ctx.)
local function live(host, id)
  local named, list = {}, host:records() and host:unfinished() or {}
  for _, t in ipairs(list or {}) do
    for _, url in ipairs(t.id ~= id and urls_of(t.refs) or {}) do named[url] = true end
  end
  return list and named
end

-- A release of ctx's objects (urls) for task id (nil: none recorded), each deleted when no other live task names it
-- (named: the ledger's, read when needed), as a busy object of the loop (its settle waits for it).
local function releasing(ctx, id, urls, t, named)
  local st = S3.store_of(ctx:storage())
  local rel = setmetatable({ host = ctx, id = id, st = st, done = false, left = 0, failed = {}, objs = {} }, Rel)
  for _, url in ipairs(st and urls or {}) do
    local o = object_of(rel, url)
    local free = o and not st.server:held(url) -- (no live job of this process holds it)
    if free then named = named or live(ctx, id) or ALL end
    if free and not named[url] then
      rel.left, rel.objs[#rel.objs + 1] = rel.left + 1, o
      ask(rel, o, t, "delete")
    end
  end
  if rel.left == 0 then rel:ended() else ctx:turning(rel) end
  return rel
end

function Rel:got(o, _, err)
  if err then self.failed[#self.failed + 1] = o.url .. ": " .. tostring(err.message) end
  self.left = self.left - 1
  if self.left == 0 then self:ended() end
end

-- Every object deleted, or left to another task: the task's record of them cleared (a failed delete keeps it:
-- keep and resume try again), and said.
function Rel:ended()
  if self.done then return end
  self.done = true
  if self.failed[1] then
    self.host:tell { type = "warning", id = self.id, message = "a reference object could not be deleted (resume and "
      .. "keep try again): " .. table.concat(self.failed, "; ") }
  end
  if self.id and not self.failed[1] and self.host:records() then self.host:sink_state(self.id, "refs", nil) end
end

function Rel:turn() return self.done end
function Rel:settled() return self.done end
function Rel:cancel() -- (its client closed: the record stays, for keep and resume)
  self.done = true
  for _, o in ipairs(self.objs) do if o:asking() then o:cancel() end end
end

-- At job's end (err: why it failed; list: an upload's objects, when the job got none): the objects it holds let
-- go.  Deleted (unless keep_refs) when its task ended (completed or failed) or its create surely made nothing;
-- else they stay, recorded with the task: resume carries it, and deletes them at its end.
function R.release(seat, err, list)
  local urls = list and {} or urls_of(seat.refs)
  for _, o in ipairs(list or {}) do urls[#urls + 1] = o.put_done and o.url or nil end
  local st = S3.store_of(seat:storage()) -- (the store its objects were put in: refs_of's)
  if st then st.server:let_go(seat) end
  local ended = seat.status == "completed" or seat.status == "failed"
    or not seat.id and not (err and (err.maybe_created or err.pending))
  if list then ended = err ~= nil elseif seat.state ~= "done" then ended = false end
  if not ended or keep_refs(seat) or not urls[1] then return end
  return releasing(seat, not list and seat.id or nil, urls, now())
end

-- The objects of ended tasks that a process left in the bucket (killed before it deleted them): deleted now, unless
-- another live task names them, each task's record cleared.  ctx: resume's or keep's (host.lua's methods).
function R.sweep(ctx)
  if not ctx:records() or keep_refs(ctx) then return end
  local list, named, rels = ctx:tasks() or {}, nil, {}
  for _, t in ipairs(list) do
    if t.refs and (t.status == "completed" or t.status == "failed") then
      named = named or live(ctx) or ALL
      rels[#rels + 1] = releasing(ctx, t.id, urls_of(t.refs), now(), named)
    end
  end
  ctx:drive(function()
    for _, rel in ipairs(rels) do if not rel.done then return false end end
    return true
  end)
end

-- What a listing shows of a task's recorded reference objects (the ledger's sink_state "refs", this rock's text):
-- their s3:// URLs, or nil.
function R.describe(text)
  local list = cjson.decode(text)
  return type(list) == "table" and list or nil
end

return R
