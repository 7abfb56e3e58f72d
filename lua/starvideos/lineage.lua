-- Videos that build on videos (docs/lineage.md): again, remix and continue make one create from a task the ledger
-- holds, its parent, each a keyed job of its own out (a rerun follows it, never pays twice) recording `parent`
-- and `relation`.  Here each is made ready: the parent found whole, the new params, or the refusal, before
-- anything is sent (client.lua runs the job).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Download = require "starvideos.download"
local shell = require "starvideos.shell"
local Sink = require "starvideos.sink"
local X = require "starvideos.extension"
local cjson = require("cjson.safe").new()

local type, pairs, ipairs, tostring, select, string_format = type, pairs, ipairs, tostring, select, string.format
local new_error = errors.new_error

local M = {}
local local_base, read_back -- (continue's, below)

-- The request fields a create's body holds as params (the core's list, csrc/core/models.c; the rest of it was
-- params.extra).
local FIELDS = {}
for _, name in ipairs(core.fields) do FIELDS[name] = name ~= "extra" or nil end

-- The values given, each string (a task id, a ledger's text) as text: its control characters as \xNN, so that no
-- ESC or BEL of it reaches a terminal (shell.visible); ffmpeg's own words as they are.
local function texts(field, ...)
  if select("#", ...) == 0 then return end
  local v = ...
  if type(v) == "string" and field ~= "ffmpeg" then v = shell.visible(v, true) end
  return v, texts(field, select(2, ...))
end

local function refused(how, field, fmt, ...)
  local message = how .. ": " .. string_format(fmt, texts(field, ...)) .. " (nothing was sent)"
  return nil, new_error("invalid_request", message, { field = field })
end

-- The ledger's record of the parent (a task id or a task table): its entry of ledger:tasks() and that list, or
-- nil, err.
local function parent_of(client, how, task)
  local id = type(task) == "table" and task.id or task
  if type(id) ~= "string" or id == "" then
    return refused(how, "task", "a task id or a task table expected, got %s", type(task))
  end
  local ledger = client.ledger
  if not ledger.records then
    return refused(how, "task", "task %s: its parent must be in the ledger, and this client has none (give journal "
      .. "or store)", id)
  end
  local list, err = ledger:tasks()
  if not list then return nil, new_error("io", tostring(err), { field = ledger.field }) end
  for _, t in ipairs(list) do
    if t.id == id then return t, list end
  end
  return refused(how, "task", "task %s is not in the ledger (%s)", id, ledger.path or ledger.where or ledger.field)
end

-- Where a file's SHA-256 is taken: where the client's transport does its disk work (tr:offload: nginx's thread pool,
-- so that a long video holds no worker), in a job (opts.job: a helper thread, verb_job.lua), else nil (here).
local function hasher(client)
  local tr = client.loop.transport
  return tr.offload and function(path) return tr:offload("starvideos.sign", "sha256_file", path) end
    or require("starvideos.verb_job").hasher()
end

-- A local file remix or continue opens (the parent's video, the new out): nil when it is a regular file, links
-- followed, or nothing yet; else the refusal's error, before it is opened (a FIFO would hold the open forever).
local function not_a_file(how, field, path, what)
  if type(path) ~= "string" or path:find("^%a[%w+.-]*://") then return nil end -- (a bucket's: its sink's)
  local kind = Download.NOT_A_FILE[require("starvideos.core").file_kind(path, true)]
  return kind and select(2, refused(how, field, "%s %s is %s", what, path, kind))
end

-- The parent's saved video, whole as recorded where its sink keeps it (a file, a bucket's object: the sink's check):
-- its path, or nil, err.
local function video_of(client, how, t)
  if not t.path then
    return refused(how, "task", "task %s has no saved video (%s): save it first (wait or resume with an out)", t.id,
      t.state or "not downloaded")
  end
  local bad = not_a_file(how, "task", t.path, "task " .. t.id .. "'s video")
  if bad then return nil, bad end
  local state, why = Sink.of(client.cfg, t.path).check({ path = t.path, bytes = t.bytes, sha256 = t.sha256 },
    client.ctx, hasher(client))
  if state ~= "ok" then return refused(how, "task", "task %s's video is not whole: %s", t.id, why) end
  return t.path
end

-- Where the parent's saved video is read in place (its sink's source: a file's path, an object's presigned GET
-- living past the call's timeout), or nil, err.
local function source_of(client, how, t, opts)
  local src, err = Sink.of(client.cfg, t.path).source(t, client.ctx, opts.timeout or client.cfg.wait_timeout)
  if src then return src end
  return refused(how, "task", "task %s's video at %s cannot be read: %s", t.id, t.path, tostring(err and err.message
    or err))
end

-- opts.out, required and not the parent's file: nil, or the refusal's error.
local function new_out(how, t, opts)
  if type(opts.out) ~= "string" then
    return select(2, refused(how, "out", "opts.out is required: the new video's own file (its key: a rerun pays for "
      .. "nothing again)"))
  end
  local mine = Sink.recorded(opts.out) -- (as the ledger recorded the parent's: whole)
  if mine == t.path or mine == t.out or opts.out == t.path then
    return select(2, refused(how, "out", "opts.out is task %s's own file: give the new video another", t.id))
  end
  return not_a_file(how, "out", opts.out, "opts.out")
end

-- The parent of a remix or a continue, its out checked, its video whole: t, its path and the ledger's tasks, or
-- nil, err.
local function with_video(client, how, task, opts)
  local t, err = parent_of(client, how, task)
  if not t then return nil, err end
  local bad = new_out(how, t, opts)
  if bad then return nil, bad end
  local path, verr = video_of(client, how, t)
  if not path then return nil, verr end
  return t, path, err
end

-- v copied whole (a params table, its lists too).
local function copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy(x) end
  return c
end
M.copy = copy

-- The parent's params as its create sent them (its recorded body), or nil, err.
local function params_of(how, t)
  local body = type(t.body) == "string" and cjson.decode(t.body)
  if type(body) ~= "table" then
    return refused(how, "task", "task %s's parameters were not recorded (a create adopted by hand, or a ledger of an "
      .. "older version)", t.id)
  end
  local params, extra = {}, nil
  for k, v in pairs(body) do
    if FIELDS[k] then params[k] = v else extra = extra or {}; extra[k] = v end
  end
  params.extra = extra
  return params
end

-- The job's spec (params, parent, relation) of client:again, or nil, err.
function M.again(client, task, overrides, opts)
  if overrides ~= nil and type(overrides) ~= "table" then
    return refused("again", "overrides", "a table of params to change expected, got %s", type(overrides))
  end
  local t, err = parent_of(client, "again", task)
  if not t then return nil, err end
  local bad = new_out("again", t, opts)
  if bad then return nil, bad end
  local params, perr = params_of("again", t)
  if not params then return nil, perr end
  for k, v in pairs(overrides or {}) do params[k] = copy(v) end
  return { params = params, parent = t.id, relation = "again" }
end

-- client:remix's: the parent's saved video as the new create's reference video (after those params give).
-- The parent's video_url while it is still valid: queried, then checked as a reference of p would be (it answers,
-- the model's rules hold: client:check), or nil (none, or not valid: the local file goes instead).
local function valid_url(client, t, p, refs)
  local q = client:query(t.id)
  local url = type(q) == "table" and q.status == "completed" and type(q.video_url) == "string" and q.video_url
  if not url then return nil end
  local probe, list = copy(p), copy(refs)
  list[#list + 1] = url
  probe.referenceVideos = list
  local notes = client:check(probe)
  return notes and not notes[1] and url or nil
end

-- Whether a local file as a reference can be put where the service reads it for a client (ctx: its ctx; the
-- references point's ready: a bucket named by the storage option or the environment).  A remix's parent goes there
-- then (film.lua asks too).
function M.bucket_for_files(ctx)
  local R = X.optional("references")
  return R ~= nil and R.ready ~= nil and R.ready(ctx) == true
end
local bucket_for_files = M.bucket_for_files

-- client:remix's: the parent's saved video as a reference video of the new create (after those params give), the
-- parent's model, and on that model its duration, ratio and resolution where params give none (M.shaped): a file
-- (an object read back into one, verified: its scratch) put into the bucket; without a bucket for files, its
-- video_url while it is still valid, and a rerun (the child this out names, made before) takes its recorded params:
-- its key's task followed, nothing paid.
function M.remix(client, task, params, opts)
  if type(params) ~= "table" then return refused("remix", "params", "a params table expected, got %s", type(params)) end
  local t, path, list = with_video(client, "remix", task, opts)
  if not t then return nil, path end
  local files = bucket_for_files(client.ctx)
  local mine = not files and Sink.recorded(opts.out) -- (a URL's: not stable)
  for _, c in ipairs(mine and list or {}) do
    if c.parent == t.id and c.relation == "remix" and c.out == mine and type(c.body) == "string" then
      local again = params_of("remix", c)
      if again then return { params = again, parent = t.id, relation = "remix" } end
    end
  end
  local p = M.shaped(copy(params), params_of("remix", t) or {}, true) -- (as a continue's)
  p.model = p.model or t.model
  local refs = type(p.referenceVideos) == "table" and p.referenceVideos.file == nil and p.referenceVideos
    or (p.referenceVideos ~= nil and { p.referenceVideos } or {})
  local ref, scratch = not files and valid_url(client, t, p, refs), nil
  if not ref and Sink.object(path) then
    local err
    scratch, err = read_back(client, "remix", t, opts, local_base(opts.out) .. ".parent.mp4")
    if not scratch then return nil, err end
  end
  refs[#refs + 1] = ref or { file = scratch or path }
  p.referenceVideos = refs
  return { params = p, parent = t.id, relation = "remix", scratch = scratch }
end

-- The last frame of the video at path written to frame by ffmpeg, killed after timeout seconds (the call's; by
-- coreutils' timeout, when it is on PATH): true, or nil, why.
function M.last_frame(path, frame, timeout)
  if not shell.has("ffmpeg") then
    return nil, "ffmpeg is not on PATH (Debian: apt-get install ffmpeg): the parent's last frame cannot be taken"
  end
  os.remove(frame)
  local command = string_format("ffmpeg -v error -nostdin -y -sseof -1 -i %s -update 1 -frames:v 30 %s",
    shell.word(path), shell.word(frame))
  if timeout and shell.has("timeout") then -- (124: it ran past the call's timeout, then had 5 s to end)
    command = string_format("{ timeout --foreground -k 5 %.3f %s || { [ $? -ne 124 ] || echo \"ffmpeg ran past the "
      .. "call's timeout (%g s)\"; }; }", timeout, command, timeout)
  end
  local said = shell.run(command) -- (in nginx in its thread pool: its worker serves other requests while it runs)
  local f = io.open(frame, "rb")
  local size = f and f:seek("end") or 0
  if f then f:close() end
  if size == 0 then return nil, "ffmpeg could not take the last frame of " .. path .. ": " .. said end
  return true
end

-- The shell command killed after timeout seconds (the call's: by coreutils' timeout, nil: none), its status kept
-- (124: it ran past the timeout, then had 5 s to end).  --foreground: timeout stays in the shell's process group, which
-- a job's close kills (core.run_start).
function M.timed(command, timeout)
  if not timeout then return command end
  return string_format("( timeout --foreground -k 5 %.3f %s || { s=$?; [ $s -ne 124 ] || echo \"ran past the call's "
    .. "timeout (%g s)\"; exit $s; } )", timeout, command, timeout)
end

-- The call's timeout for a film's commands (last_frame's): seconds, or nil (none, or no timeout on PATH).
function M.timeout_of(client, opts)
  local t = opts.timeout or client.cfg.wait_timeout
  return t and shell.has("timeout") and t or nil
end

-- The shell's words that make a folder of this process's own in TMPDIR (mktemp -d: no other user nor process names
-- it), named starvideos-film.PID.XXXXXX by the process's pid ($PPID: the process that runs the shell), after
-- removing those of this user whose process is gone (a film killed while it joined: kill -0 fails; a live process's
-- folder, or another user's, is never touched).
M.PRIVATE_DIR = [[t="${TMPDIR:-/tmp}"
for d in "$t"/starvideos-film.*.*; do
  p="${d#"$t"/starvideos-film.}"; p="${p%%.*}"
  case "$p" in ''|*[!0-9]*) continue ;; esac
  [ -d "$d" ] && [ -O "$d" ] && ! kill -0 "$p" 2>/dev/null && rm -rf -- "$d"
done
mktemp -d "$t/starvideos-film.$PPID.XXXXXX"]]

-- A folder of this call's own, for the shots read back and joined into an object out (the folders of films whose
-- process was killed swept first: M.PRIVATE_DIR): its path, or nil, err.
function M.private_dir()
  local said, ok = shell.run_ok(M.PRIVATE_DIR)
  local dir = ok and said:match("^(/[^\n]+)\n?$")
  if dir then return dir end
  return nil, new_error("io", "film: no folder of its own for the shots read back (mktemp -d): " .. said,
    { field = "out" })
end

-- p (a continue's or a remix's params) given the shot's shape of was (its parent's params) where it gives none: the
-- model, and on that model the duration, ratio and resolution; with video (a remix's: p goes with a reference
-- video), not those the model ignores beside one (starvideos_o3's duration and ratio: the video's own).  p, changed.
-- (A film's checks, film.lua, too.)
function M.shaped(p, was, video)
  local model, ignored = p.model or was.model, {}
  for _, g in ipairs(video and core.models[model] and core.models[model].ignored or {}) do
    if g.when == "referenceVideos" then ignored[g.field] = true end
  end
  for _, k in ipairs { "model", "duration", "ratio", "resolution" } do
    if p[k] == nil and not ignored[k] and (k == "model" or model == was.model) then p[k] = was[k] end
  end
  return p
end

-- The local name the files of a continue into out start with (its frame, an object parent's copy): a file out's
-- own path; an object's, a name of the user's temporary folder made from its URL (the frame's name is in the
-- create's body: the same at a rerun, whose fingerprint is then the same).
function local_base(out)
  if not Sink.object(out) then return out end
  return string_format("%s/starvideos-%d-%s", os.getenv("TMPDIR") or "/tmp", core.uid(),
    core.hash(Sink.recorded(out)):sub(1, 16))
end

-- The parent's object read back into the local file `file`, and verified as its record says (its bytes and SHA-256):
-- file; or nil, err (nothing left at file).  A message never names the presigned URL (it grants the object).
function read_back(client, how, t, opts, file)
  require("starvideos.verb_job").scratch(file) -- (a job's: removed however it ends)
  local src, err = source_of(client, how, t, opts)
  if not src then return nil, err end
  local _, derr = client:download(src, file, { mark = false }) -- (a copy: never marked)
  os.remove(file .. ".json") -- (a copy's provenance record: the parent's own is beside the parent)
  local state, why
  if derr then
    state, why = "missing", tostring(derr.message):gsub(src:gsub("%p", "%%%0"), function() return t.path end)
  else
    state, why = Download.check({ path = file, bytes = t.bytes, sha256 = t.sha256 }, nil, hasher(client))
  end
  if state == "ok" then return file end
  os.remove(file)
  return refused(how, "task", "task %s's video at %s could not be read back whole: %s", t.id, t.path, why)
end

-- A task's saved video (an object: a film's shot, paid for) read back into the local file `file` and verified: file,
-- or nil, err (an io error of field out: something was sent; film.lua joins such copies).
function M.read_copy(client, how, task, file, opts)
  local t, err = parent_of(client, how, task)
  local made
  if t then made, err = read_back(client, how, t, opts, file) end
  if made then return made end
  err.kind, err.field, err.message = "io", "out", (tostring(err.message):gsub(" %(nothing was sent%)$", ""))
  return nil, err
end

-- The SHA-256 of a local file, taken where the client's transport does its disk work: hex, or nil, why.
function M.hash_file(client, path) return (hasher(client) or require("starvideos.sign").sha256_file)(path) end

-- client:continue's: the parent's last frame as first_image, the user's last_image (the API takes both or none);
-- the parent's model, and its duration, ratio and resolution on the same model, where params give none.
function M.continue(client, task, params, opts)
  if type(params) ~= "table" then
    return refused("continue", "params", "a params table expected, got %s", type(params))
  end
  if params.last_image == nil and params.lastFrameImage == nil then
    return refused("continue", "last_image", "params.last_image is required: the API takes first_image (the "
      .. "parent's last frame) only with a last_image")
  end
  local t, path = with_video(client, "continue", task, opts)
  if not t then return nil, path end
  local frame, copied = local_base(opts.out) .. ".first.png", nil
  if Sink.object(path) then -- (an object read back into a local file, verified, for ffmpeg)
    local err
    copied, err = read_back(client, "continue", t, opts, local_base(opts.out) .. ".parent.mp4")
    if not copied then return nil, err end
    path = copied
  end
  local ok, why = M.last_frame(path, frame, opts.timeout or client.cfg.wait_timeout)
  if copied then os.remove(copied) end
  if not ok then return refused("continue", "ffmpeg", "%s", why) end
  local p = M.shaped(copy(params), params_of("continue", t) or {})
  p.model = p.model or t.model
  p.first_image = { file = frame }
  return { params = p, parent = t.id, relation = "continue" }
end

M.local_base = local_base

return M
