-- Where each video came from (docs/lineage.md, "Where each video came from"): a saved video's provenance record, the
-- JSON beside it (a file's PATH.json, an object's s3://B/K.json: its sink's record), written after the video by the
-- sink point (video.lua) for every caller, and a film's by film.lua.  It holds the model, the task and request ids,
-- the create's params (a reference by its SHA-256 and size when the library read it, else its URL without its query
-- and user info: a presigned URL's signature never), the file's SHA-256 and size, its parents' records' SHA-256,
-- the time, the library's version and the IPTC digital source type.  Its record_sha256 is the SHA-256 of its other
-- fields encoded as here (keys sorted): a changed field shows.  It is not a signature: anyone can write one.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local Sink = require "starvideos.sink"
local cjson = require("cjson.safe").new()

local type, pairs, ipairs, tostring, next, string_format, table_concat, table_sort, math_floor = type, pairs, ipairs,
  tostring, next, string.format, table.concat, table.sort, math.floor

local P = {}

P.FORMAT = "starvideos-provenance/1"
P.SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" -- IPTC's digital source type
P.SUFFIX = ".json"

local function sign() return require "starvideos.sign" end

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return (c == '"' or c == "\\") and "\\" .. c or string_format("\\u%04x", c:byte())
  end) .. '"'
end

-- v as JSON, its keys sorted, two spaces a level: the same bytes for the same table on every Lua (its own encoder:
-- cjson's escapes and number forms differ between builds).
local function encode(v, ind)
  local kind = type(v)
  if kind == "string" then return quote(v) end
  if kind == "number" then
    if v == math_floor(v) and v > -2^53 and v < 2^53 then return string_format("%d", v) end
    return string_format("%.17g", v)
  end
  if kind ~= "table" then return (v == nil or v == cjson.null) and "null" or tostring(v) end
  if next(v) == nil then return "{}" end
  local inner, parts = ind .. "  ", {}
  if v[1] ~= nil then
    for i, x in ipairs(v) do parts[i] = inner .. encode(x, inner) end
    return "[\n" .. table_concat(parts, ",\n") .. "\n" .. ind .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table_sort(keys)
  for i, k in ipairs(keys) do parts[i] = inner .. quote(k) .. ": " .. encode(v[k], inner) end
  return "{\n" .. table_concat(parts, ",\n") .. "\n" .. ind .. "}"
end
P.encode = encode

-- f(rec) of rec without its fields named in `without` (rec: a decoded record).
local function without(rec, names, f)
  local was = {}
  for i, k in ipairs(names) do was[i], rec[k] = rec[k], nil end
  local r = f(rec)
  for i, k in ipairs(names) do rec[k] = was[i] end
  return r
end

-- The SHA-256 of rec's fields but record_sha256 and signature.
function P.seal(rec)
  return without(rec, { "record_sha256", "signature" }, function(r) return sign().sha256(encode(r, "")) end)
end

-- The bytes a record's signature signs (docs/lineage.md, "A signed record"): rec without its signature, in RFC
-- 8785's canonical form (jcs.lua).
function P.signed_bytes(rec)
  return without(rec, { "signature" }, function(r) return require("starvideos.jcs").canonical(encode(r, "")) end)
end

-- rec sealed (and signed by signer, a client's cfg.signer: P.signer), as the bytes of its file.
function P.text(rec, signer)
  rec.record_sha256 = P.seal(rec)
  rec.signature = nil
  if signer then
    rec.signature = { alg = "ed25519", key_id = signer.key_id, value = signer.key:sign(P.signed_bytes(rec)) }
  end
  return encode(rec, "") .. "\n"
end

-- rec's signature checked against the Ed25519 public key in the PEM file at pubkey: true, or false and why (no
-- signature, another key, a changed field), or nil, why (the key file cannot be used).
function P.verify_signature(rec, pubkey)
  local s = rec.signature
  if type(s) ~= "table" then return false, "it is not signed (no signature)" end
  if s.alg ~= "ed25519" or type(s.value) ~= "string" then
    return false, string_format("its signature is not an Ed25519 one (alg %s)", tostring(s.alg))
  end
  local ok, pub = sign().ed25519_verify(pubkey, P.signed_bytes(rec), s.value)
  if ok == nil then return nil, pub end
  local id = sign().sha256(pub)
  if s.key_id ~= id then
    return false, string_format("it was signed by key %s, not by %s's (%s)", tostring(s.key_id), pubkey, id)
  end
  if not ok then return false, "its signature does not match its fields: a field was changed after it was signed" end
  return true
end

-- The last part of a path or URL.
local function base(path) return (tostring(path):gsub("[?#].*", ""):match("([^/]*)$")) end

-- A URL as a record keeps it: without its user info, query and fragment (a presigned URL's signature and
-- credential are its query).
local function bare(url)
  local s, rest = url:match("^(%a[%w+.-]*://)(.*)$")
  rest = rest:gsub("[?#].*$", "")
  local host, path = rest:match("^([^/]*)(.*)$")
  local kept_url = s .. host:gsub("^.*@", "") .. path
  return kept_url, kept_url ~= url
end

-- What a {file = path} table was found to be, by the table (weak): a batch's entries that share one list of
-- references hash each file once.
local hashed = setmetatable({}, { __mode = "k" })

-- A value of the create's params as a record keeps it: a local file {file = path} by its name, SHA-256 and size (as
-- known[path] says, when it is there: a parent's video, hashed and verified already); a URL bare (and dropped says
-- what was cut); a long data: URI by its SHA-256 and size; tables walked.
local function kept(v, known)
  if type(v) == "string" then
    if v:find("^%a[%w+.-]*://") then
      local url, cut = bare(v)
      return cut and { url = url, dropped = "its query and user info (a presigned URL's signature)" } or v
    end
    if v:find("^data:") and #v > 256 then return { data = v:match("^data:([^;,]*)"), sha256 = sign().sha256(v),
      bytes = #v } end
    return v
  end
  if type(v) ~= "table" then return v end
  if type(v.file) == "string" then
    local k = known and known[v.file]
    if k then return { file = base(v.file), sha256 = k.sha256, bytes = k.bytes } end
    if require("starvideos.core").file_kind(v.file, true) ~= "file" then return { file = base(v.file) } end -- (a FIFO
    -- would hold the open forever: the references' check refuses it, naming it)
    hashed[v] = hashed[v] or { file = base(v.file), sha256 = sign().sha256_file(v.file),
      bytes = require("starvideos.download").size(v.file) }
    return hashed[v]
  end
  local c = {}
  for k, x in pairs(v) do c[k] = kept(x, known) end
  return c
end
P.kept = kept

-- A parent's entry (t: its task as the ledger lists it; relation: how the child builds on it): its task, video
-- and its record's SHA-256, read where its sink keeps it (ctx: a client's; nil when it has none); or nil, why (its
-- record is there but cannot be read: not a regular file, too large; why names it).
function P.parent(ctx, t, relation, index)
  local text, why = nil, nil
  if t.path then text, why = Sink.of(ctx.cfg, t.path).record_of(t.path, ctx) end
  if why then return nil, why end
  return { relation = relation, index = index, task = t.id, video = t.path and { path = t.path, sha256 = t.sha256,
    bytes = t.bytes } or nil, record_sha256 = text and sign().sha256(text) or nil }
end

-- The parents of a job of spec (spec.parent: a task of the ledger; spec.relation): a list, nil, or nil, err (the
-- parent's record cannot be read: the create refused, nothing sent).
local function parents_of(ctx, spec)
  if not spec.parent or not ctx.ledger.records then return nil end
  for _, t in ipairs(ctx.ledger:tasks() or {}) do
    if t.id == spec.parent then
      local p, why = P.parent(ctx, t, spec.relation)
      if not p then
        return nil, require("starvideos.errors").new_error("invalid_request", string_format("%s: task %s's "
          .. "provenance record %s (nothing was sent; remove it or put the record back)", tostring(spec.relation),
          tostring(t.id), tostring(why)), { field = "task" })
      end
      return { p }
    end
  end
  return { { relation = spec.relation, task = spec.parent } }
end

-- What a job of spec's record will say that is read when it is made, before anything is sent (Job.new): its parents
-- (their records' SHA-256) and its params as kept (a local file hashed while it is there: a remix's copy of its
-- parent is removed once the create is sent); nothing with provenance = false; nil, nil, err when a parent's record
-- cannot be read.
function P.start(ctx, spec)
  if ctx.cfg.provenance == false or not spec.out then return nil end -- (a job that saves no video: no record)
  local list, err = spec.parents, nil
  if not list then list, err = parents_of(ctx, spec) end
  if err then return nil, nil, err end
  local known = {}
  for _, p in ipairs(list or {}) do
    if p.video and p.video.sha256 then
      known[p.video.path] = p.video
      if spec.scratch then known[spec.scratch] = p.video end -- (read back whole: its bytes the parent's)
    end
  end
  return list, spec.params and kept(spec.params, known)
end

local function now_text() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- The record of a video saved at out (its sha256 and bytes) from what made it.
function P.record(out, sha256, bytes, from)
  local rec = { format = P.FORMAT, digital_source_type = P.SOURCE, saved_at = now_text(),
    library = "starvideos " .. require("starvideos.config").VERSION,
    video = { name = base(out), sha256 = sha256, bytes = bytes } }
  for k, v in pairs(from) do rec[k] = v end
  return rec
end

-- What a record says of its video's mark (docs/lineage.md): "xmp" (marked: true), "none" (marked: why not: its
-- unmarked field says why), "off" (mark = false).
function P.mark_of(cfg, marked)
  if cfg.mark == false then return "off" end
  return marked == true and "xmp" or "none"
end

-- The record of job's video, saved whole (r: its commit: sha256, bytes) at job.out.
function P.of_job(job, r)
  local task, ids, c = job.task or {}, job.ids or {}, job.create or {}
  return P.record(job.out, r.sha256, r.bytes, { model = job.model or task.model or job.params and job.params.model,
    task_id = job.id, request_id = ids.request_id, server_request_id = ids.server_request_id,
    params = c.kept or job.params and kept(job.params), parents = c.parents, tenant = job.tenant,
    mark = P.mark_of(job.cfg, r.marked), unmarked = type(r.marked) == "string" and r.marked or nil })
end

-- The sink point's step after a video is saved (video.lua): its record written beside it by its sink (a file's now;
-- an object's by a PUT: the job awaits it), or nil when none is (provenance = false).  The awaited: done, err,
-- provenance = true, sha256 (the video's).
function P.save(job, r, t)
  if job.cfg.provenance == false or not job.sink.record then return nil end
  local ok, text = require("starvideos.interrupt").pcall(P.text, P.of_job(job, r), job.cfg.signer) -- (Ctrl-C goes
  -- through)
  local w = ok and job.sink.record(job:seated(), t, text) or { done = true, err = { message = tostring(text) } }
  w.provenance, w.sha256, w.bytes = true, r.sha256, r.bytes
  return w
end

-- The text of the record beside the file path, nil (none), or nil, why (not a regular file of 1 MiB at most).
function P.read_file(path) return require("starvideos.download").record_of(path) end

-- A film's shot i at path (task: its task) as its record names it: its task, video and record's SHA-256 (an object
-- shot's size: its record's).
local function shot(client, i, path, task, hash)
  local text, why = Sink.of(client.cfg, path).record_of(path, client.ctx)
  if why then return nil, why end
  local rec = text and cjson.decode(text)
  local object = Sink.object(path)
  local bytes = object and type(rec) == "table" and type(rec.video) == "table" and rec.video.bytes or nil
  return { relation = "shot", index = i, task = task.id, video = { path = Sink.recorded(path),
    sha256 = task.sha256 or not object and hash(path) or nil,
    bytes = object and bytes or require("starvideos.download").size(path) },
    record_sha256 = text and sign().sha256(text) or nil }
end

-- A film joined at out from its shots (paths; tasks: each shot's; made: an object film's SHA-256 and size, film.lua's;
-- hash: where a file's SHA-256 is taken, lineage.lua's hash_file: nginx's thread pool, a job's helper thread; marked:
-- what came of its mark, film.lua's join's): its record written beside it by out's sink, naming each shot's record by
-- its SHA-256: true, or nil, why (provenance = false: nothing, true).
function P.joined(client, out, paths, tasks, made, hash, marked)
  if client.cfg.provenance == false then return true end
  hash = hash or sign().sha256_file
  local sum, err = made and made.sha256, nil
  if not made then sum, err = hash(out) end
  if not sum then return nil, err end
  local parents = {}
  for i, path in ipairs(paths) do
    local why
    parents[i], why = shot(client, i, path, tasks[i] or {}, hash)
    if not parents[i] then return nil, why end
  end
  local rec = P.record(out, sum, made and made.bytes or require("starvideos.download").size(out),
    { joined = "ffmpeg's concat of its shots", parents = parents, mark = P.mark_of(client.cfg, marked),
      unmarked = type(marked) == "string" and marked or nil })
  local owner = setmetatable({ out = out, advance = function() end }, { __index = client.ctx }) -- (a seat's names)
  local w = Sink.of(client.cfg, out).record(owner, require("starvideos.core").now(), P.text(rec, client.cfg.signer))
  client.loop:drive(function() return w.done end) -- (a bucket's PUT; a file's: written)
  if w.err then return nil, w.err.message end
  return true
end

-- A film made at out (film.lua's M.film: paths, tasks, made, marked as P.joined takes them): what came of its mark
-- told (a warning event when it could not be written: mark.lua's unmarked), then its record written, naming its
-- shots' records, each file's SHA-256 taken by hash_file(client, path) (lineage.lua's: where the client's transport
-- does its disk work): true, or nil, why.
function P.filmed(client, out, paths, tasks, made, marked, hash_file)
  local on = type(marked) == "string" and client.cfg.on_event
  if on then on(require("starvideos.mark").unmarked(out, marked)) end
  return P.joined(client, out, paths, tasks, made, function(path) return hash_file(client, path) end, marked)
end

-- The record's JSON decoded: a table, or nil, why.
function P.decode(text)
  local rec = cjson.decode(text)
  if type(rec) ~= "table" then return nil, "it is not a JSON object" end
  return rec
end

return P
