-- Preflight (docs/media.md): a create's reference media read as far as needed (a HEAD, the first
-- 64 KiB, the tail when the core's sniffer asks) as exchanges on the loop (their word: media), the references of one
-- create at once within one `timeout`, then judged by the model's rules (core.media_check).  A local file
-- ({file = path}, docs/storage.md) is read the same way from the disk, with no request, even when preflight
-- is false (it is read to be uploaded anyway).  Loaded by the client's hook (cfg.on_media) at a create that
-- names reference media while preflight is not false, or names a local file.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Create = require "starvideos.create"
local errors = require "starvideos.errors"
local Request = require "starvideos.request"

local ipairs, tostring, setmetatable, string_format = ipairs, tostring, setmetatable, string.format
local new_error = errors.new_error

local P = {}
P.__index = P

local CHUNK = 65536 -- the bytes one GET asks for: the file's first, or its tail
local GONE = { [401] = true, [403] = true, [404] = true, [410] = true } -- the HEAD said enough

local Ref = {}
Ref.__index = Ref

-- The reference's next media request, now: a HEAD, or the CHUNK bytes from `from`; redirects followed, only to
-- public addresses unless allow_private_media (the transport refuses what is not).
local function ask(self, t, from)
  local pf = self.pf
  self.req = Request.new { loop = pf.loop, key = pf.key, cfg = pf.cfg, owner = self, op = "exchange", what = "media",
    url = self.url, path = self.path, deadline = pf.deadline, method = from and "GET" or "HEAD",
    range = from and { from, from + CHUNK - 1 }, headers = "Accept: */*\n", follow = true, public = pf.public }
  self.req:send(t)
end

-- The reference is read as far as it will be (why: what stopped it, when something did).
local function settle(self, t, why)
  self.why, self.req = why or nil, false
  local pf = self.pf
  pf.left = pf.left - 1
  if pf.left == 0 then pf:judge(t) end
end

-- A local file read as a URL is, from the disk: read whole from one open handle (core.read_whole: a link to a
-- device or a FIFO, a folder, a file larger than any reference refused unread, at once), its first bytes sniffed,
-- its tail when the sniffer asks, its SHA-256 taken from the same bytes (pf.sums, the job's file_sums once it took
-- them: what storage/refs.lua names and uploads is what was checked).  One that is not there, cannot be read, or is
-- empty, refuses the create.
local function read_file(self)
  local path = self.file
  local bytes, why = core.read_whole(path, Create.MAX_FILE)
  if not bytes then self.refused = why; return end
  if bytes == "" then self.refused = path .. " is empty"; return end
  self.size = #bytes
  local info, swhy = core.media_sniff(bytes:sub(1, CHUNK), self.size)
  if info and info.tail then
    info, swhy = core.media_tail(info, bytes:sub(info.tail + 1, info.tail + CHUNK), info.tail)
  end
  self.info, self.why = info, swhy
  self.pf.sums[path] = { sha256 = require("starvideos.sign").sha256(bytes), type = info and info.type }
end

-- Its request answered: the next step (head -> first bytes -> tail), or the end.
function Ref:advance(t)
  local req = self.req
  if not (req and req.done) then return end
  local err, step = req.err, self.step
  if err and req.wire == "fatal" and err.message:find(core.CANNOT_FETCH, 1, true) then
    self.refused = "connecting to it: " .. err.message:gsub("^media: network error: ", "")
    return settle(self, t)
  end
  if step == "head" then
    if err and not err.status then return settle(self, t, err.message) end -- unreachable: no GET either
    if err and GONE[err.status] then self.status = err.status; return settle(self, t) end
    self.size, self.step = not err and req.total or nil, "first" -- (a HEAD refused otherwise: the GET tells)
    return ask(self, t, 0)
  end
  if err and step == "tail" then return settle(self, t, err.message) end -- the head's findings stand
  if err then
    self.status = err.status
    return settle(self, t, not err.status and err.message)
  end
  if step == "first" then
    local info, why = core.media_sniff(req.task.body, req.total or self.size)
    if not info or not info.tail then self.info = info; return settle(self, t, why) end
    self.info, self.step = info, "tail"
    return ask(self, t, info.tail)
  end
  local info, why = core.media_tail(self.info, req.task.body, req.offset)
  if info then self.info = info end
  return settle(self, t, why)
end

-- Start checking the references of job's params at t on its loop; job:advance(t) once done
-- (pf.done: maybe before start returns), with pf.err (the create refused) and pf.notes (what
-- could not be checked: {field =, message =}, each a `preflight` event of the job's).
function P.start(job, t)
  local params, cfg = job.params, job.cfg
  local pf = setmetatable({ loop = job.loop, key = job.key, cfg = cfg, owner = job, model = params.model,
    refs = {}, notes = {}, sums = {}, done = false, deadline = t + cfg.timeout,
    public = job:hosted():public_only() }, P) -- (media from public addresses alone: host.lua's rule)
  for _, ref in ipairs(Create.references(params)) do -- (with preflight false: the local files alone)
    if ref.file or cfg.preflight ~= false or job.goal == "checked" then pf.refs[#pf.refs + 1] = ref end
  end
  pf.left = #pf.refs
  if pf.left == 0 then pf:judge(t); return pf end
  for _, ref in ipairs(pf.refs) do
    local parts = ref.url and core.check_url(ref.url, ref.field)
    setmetatable(ref, Ref)
    ref.pf, ref.step, ref.path = pf, "head", parts and parts.path
    ref.refused = pf.public and parts and core.private_host(parts.host) or nil -- no request at all
    if ref.file then read_file(ref) end
    if ref.refused or ref.file then settle(ref, t, ref.why) else ask(ref, t) end
  end
  return pf
end

-- Every reference read: the model's rules over what was found.
function P:judge(t)
  local cfg, err = self.cfg, nil -- (each ref's field, name, info and status: what media_check reads)
  local findings = core.media_check(self.model, self.refs, cfg.min_image_side, cfg.image_side_note)
  local strict, why, file = cfg.preflight == "strict", {}, {}
  for _, ref in ipairs(self.refs) do
    why[ref.field], file[ref.field] = ref.why, ref.file
    if ref.refused and not err then
      err = new_error("invalid_request", ref.field .. ": " .. ref.refused, { field = ref.field })
    end
  end
  for _, f in ipairs(findings or {}) do
    local message = why[f.field] and string_format("%s (%s)", f.message, tostring(why[f.field])) or f.message
    if file[f.field] then -- a local file's words: its path, not a URL
      local named = "the file " .. tostring(file[f.field]) .. " holds"
      message = message:gsub("the URL holds", function() return named end, 1)
    end
    if f.definite or strict then
      err = err or new_error("invalid_request", message .. (f.definite and "" or
        '; preflight = "strict" refuses what it cannot check'), { field = f.field })
    else
      self.notes[#self.notes + 1] = { field = f.field, message = message }
    end
  end
  self.err, self.done = err, true
  if not err then
    for _, n in ipairs(self.notes) do self.owner:emit("preflight", n) end
  end
  self.owner:advance(t)
end

-- Stop every request still running (the job was cancelled).
function P:cancel()
  self.done = true
  for _, ref in ipairs(self.refs) do
    if ref.req then ref.req:cancel() end
  end
end

return P
