-- The file sink (sink.lua's interface; the other is storage/object.lua's bucket): a download's file, for its
-- request (request.lua) and the commit that follows (its owner's): the out check before a create, the .part
-- gone on from (its last OVERLAP bytes compared: never another video's), and the commit on a thread (or the
-- transport's): the check that only a whole video passes (core's MP4 check) and the SHA-256 in one read of
-- the .part, then the rename; a saved file checked against what was recorded.  It knows nothing of jobs'
-- states or ledgers.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"

local new_error, now = errors.new_error, core.now

local D = {}

local OVERLAP = 65536
local POLL = 0.005 -- seconds between two looks at a commit's thread

-- Why a folder takes no new file, by errno (else strerror's words).
local NO_FILE = { [2] = "the folder %s does not exist", [20] = "%s is not a folder",
  [13] = "the folder %s is not writable", [1] = "the folder %s is not writable",
  [30] = "the folder %s is on a read-only file system" }

-- What no download may replace at its path (by lstat: nothing is opened, so a FIFO never waits).
local NOT_A_FILE = { folder = "a folder", other = "not a regular file (a FIFO, a device or a socket)" }
D.NOT_A_FILE = NOT_A_FILE -- (lineage.lua's words for a parent's file too)

-- Why the folder dir takes no new file (a probe file is made there and removed), or nil.
local function refuses(dir)
  local probe = dir:gsub("/$", "") .. "/.starvideos-probe-" .. core.random_id()
  local f, msg, code = io.open(probe, "wb")
  if f then
    f:close()
    os.remove(probe)
    return nil
  end
  local said = tostring(msg):match(": ([^:]*)$") or tostring(msg)
  if NO_FILE[code] and not (code == 2 and core.file_kind(dir) == "folder") then -- /proc's folders say ENOENT
    return string.format(NO_FILE[code], dir) .. ((code == 13 or code == 1) and " (" .. said .. ")" or "")
  end
  return string.format("cannot make a file in %s: %s", dir, said)
end

-- Before a create (which costs money): can a download be written at out (neither out nor
-- its .part a folder, its folder taking a new file)?  true, or nil, err (io, field out).  cfg.probed (submit's: a
-- table for one call of many outs): the folders found taking a file, each probed once.
function D.check_out(out, cfg)
  local why
  for _, p in ipairs { out, out .. ".part" } do
    local kind = NOT_A_FILE[core.file_kind(p)]
    why = why or kind and p .. " is " .. kind
  end
  local dir = out:match("^(.*)/[^/]*$")
  dir = dir == nil and "." or dir == "" and "/" or dir
  local probed = cfg and cfg.probed
  if not (why or probed and probed[dir]) then
    why = refuses(dir)
    if probed and not why then probed[dir] = true end
  end
  if not why then return true end
  return nil, new_error("io", string.format("out: cannot write %s: %s; nothing was sent", out, why),
    { field = "out" })
end

-- The same rule for a folder the downloads go into (wait_all's out_dir, resume's and
-- keep's dir), before anything is asked: true, or nil, err (field: the option).
function D.check_dir(dir, field)
  local why = refuses(dir)
  if not why then return true end
  return nil, new_error("io", string.format("%s: cannot write into %s: %s; nothing was sent", field, dir, why),
    { field = field })
end

-- The OVERLAP bytes of the file at path from byte `at` (nil: its last ones), and its size.
local function overlap(path, at)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  at = at or size and size - OVERLAP
  local tail = at and at >= 0 and f:seek("set", at) and f:read(OVERLAP)
  f:close()
  return tail, size
end

-- The transfer of a job's video (url: its parts checked, d: where it goes, prepare's fields): a request of op
-- download, the job's own exchange (seat:send), sent at t (the job advances when it ends).  A sink rock may hand
-- its fetch here with its seat (the transfer into a file, its out its own).
function D.fetch(seat, t, url, path, d)
  seat:send(t, { op = "download", url = url, path = path, deadline = seat.deadline, part = d.part, dest = d.dest,
    resume_limit = d.resume_limit, duration = d.duration, mark = seat.mark }) -- (its mark: the seat's)
end

-- Whether a close that stops the job's request req keeps what it holds for the next run (a cancel otherwise lets
-- it go): a download once sent (its .part may hold bytes); not an API request.
function D.keeps(req) return req.file ~= nil and req.started ~= nil end

-- What a stopped transfer (req, its request) leaves for the next to go on from, for the ledger: its .part.
function D.left(req) return core.file_kind(req.part) == "file" and req.part or nil end

-- Into a file (request.lua's req.into; its Memory's methods): a request whose body goes into a .part owns its
-- exchange here, from its fields to its end.
local INTO = {}
D.INTO = INTO

-- The request's download fields: the .part, where it goes, how many resumes, the seconds its video lasts, the
-- mark its commit appends (mark.lua's box; nil: none).
function INTO.prepare(req, d)
  req.part, req.dest, req.resume_limit, req.duration, req.mark = d.part, d.dest, d.resume_limit, d.duration, d.mark
  req.file, req.follow, req.stall, req.offset = d.part, true, req.cfg.timeout, 0
  req.max_body = req.cfg.max_video_bytes -- a body without a length is refused past it (one with: past that)
  if core.file_kind(d.part) ~= "file" then return end -- a FIFO is never opened (it would wait)
  local tail, size = overlap(d.part)
  if tail and size > OVERLAP and #tail == OVERLAP then -- a .part left over worth going on from
    req.offset, req.kept, req.tail = size - OVERLAP, size, tail
  end
end

-- The .part an earlier call left cannot be gone on from (not opened, longer than the
-- video, or of another): from byte 0.  Whether it was restarted.
function INTO.restart(req, t)
  if not req.tail then return false end
  req.offset, req.kept, req.tail, req.attempt = 0, nil, nil, 0
  req:send(t)
  return true
end

-- The bytes are all there (as many as announced: core.verdict); gone on from a .part left over, the bytes
-- sent again over its end must be the ones it held (this video's).  The request ends whole, not committed:
-- req.whole, the .part's handle (false: the transport holds it), for D.commit.
function INTO.done(req, file, t)
  if req.tail and overlap(req.part, req.kept - OVERLAP) ~= req.tail then return INTO.restart(req, t) end
  req.whole = file or false
  return req:finish("")
end

-- A whole download (got: a request INTO.done ended) let go of uncommitted: its .part stays.
function D.release(got)
  local transport = got.loop.transport
  if got.whole then got.whole:close() elseif transport.discard then transport:discard(got.part) end
  got.whole = nil
end

-- It failed or was cancelled: its .part goes, but with `keep` (its job records it).
function INTO.ended(req, keep)
  if req.started and not keep then os.remove(req.part) end
end

-- Its retries: the resumes it may make.
function INTO.retries(req) return req.resume_limit or req.cfg.resume_limit end

-- A retry goes on from the bytes it has (bytes: the transport's count of them).
function INTO.resume(req, bytes) req.offset = bytes or 0 end

-- A retry's words for its events.
function INTO.said(req) return string.format("; resuming at byte %d", req.offset) end
function INTO.final() return true end -- (a garbled answer is not asked again: core.retry's garbled_final)

-- A download's commit, for its owner: done, then err (err.check: not a whole video, its .part gone) or sha256 (and
-- marked: true, or why its mark could not be written; nil: none asked).
local Commit = {}
Commit.__index = Commit

-- The whole download got (INTO.done) committed for owner (c.bytes: its size): checked to be a whole MP4 of its
-- duration, marked (got.mark: its box appended) and hashed in one read of the .part, synced and renamed to its
-- dest, on a helper thread looked at every POLL s (a timer of the loop; owner:advance(now) at its end), or by the
-- transport (done when this returns).
function D.commit(got, owner)
  local c = setmetatable({ told = owner, part = got.part, dest = got.dest, done = false, bytes = got.bytes,
    mark = got.mark }, Commit) -- (told, not owner: a seat is no owner the loop climbs; its host registers c)
  local loop, file, mp4 = got.loop, got.whole, got.duration or true
  got.whole = nil
  if loop.transport.commit then
    c:committed(loop.transport:commit(got.part, got.dest, mp4, got.mark))
    return c
  end
  local h, cerr = core.commit_start(file, got.dest, require("starvideos.sign").SHA256, mp4, got.mark)
  c.commit, c.loop = h, loop
  if not h then c:committed(nil, cerr)
  elseif owner.at then owner:at(now() + POLL, c) -- (a job's seat: the loop learns c works for its job, jobs_of)
  else loop:at(now() + POLL, c) end
  return c
end

-- The loop's timer: the commit's thread looked at, again POLL s later until it ends.
function Commit:advance(t)
  local ok, cerr, third = self.commit:poll()
  if ok == nil then return self.loop:at(t + POLL, self) end
  self:committed(ok, cerr, third)
end

-- Cancelled: a commit under way goes on (a whole file stays; a failed one's .part goes), nobody told.
function Commit:cancel() self.done = true end

-- The commit ended (ok, the file's SHA-256 when its thread read it and what came of its mark; else why not, and
-- true when the check refused it): the download counts once its bytes are on disk under their name, with their
-- SHA-256 (the mark's bytes among them).
function Commit:committed(ok, said, third)
  local polled, notwhole = self.commit ~= nil, not ok and third
  self.commit = nil
  if not ok then os.remove(self.part) end -- nothing kept: a request from byte 0 starts a new .part
  if self.done then return end
  self.done = true
  if ok and self.mark then
    self.marked = third == true or tostring(third or "the transport wrote no mark")
    if third == true and self.bytes then self.bytes = self.bytes + #self.mark end
  end
  if notwhole then
    self.err = new_error("protocol", string.format("download: %s is not a whole video: %s", self.dest, said),
      { check = said })
  elseif not ok then
    self.err = new_error("io", "download: " .. tostring(said), { field = "path" })
  else -- (a transport that commits without hashing: the file read once more, from the page cache)
    local sum, herr = said ~= "" and said or nil, nil
    if not sum then sum, herr = require("starvideos.sign").sha256_file(self.dest) end
    self.sha256 = sum
    if not sum then self.err = new_error("io", "download: " .. tostring(herr), { field = "path" }) end
  end
  if polled then self.told:advance(now()) end
end

-- The size of the file at path, or nil when it cannot be read.
function D.size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  return size
end

-- A saved video (a task as client:tasks lists it: path, bytes, sha256) against what was recorded: "ok", or
-- "missing" or "changed" and why.  Its size first; its SHA-256, when recorded, then, by hash (path -> hex, or nil,
-- err; default sign.sha256_file, here: lineage's runs it in nginx's thread pool).  (The second argument is the sink
-- interface's ctx, which a file does not need.)
function D.check(t, _, hash)
  local size = D.size(t.path)
  if not size then return "missing", string.format("%s is missing (or cannot be read)", t.path) end
  if t.bytes and size ~= t.bytes then
    return "changed", string.format("%s holds %d bytes; %d were saved", t.path, size, t.bytes)
  end
  if not t.sha256 then return "ok" end
  local sum, err = (hash or require("starvideos.sign").sha256_file)(t.path)
  if not sum then return "missing", string.format("%s cannot be read: %s", t.path, tostring(err)) end
  if sum ~= t.sha256 then
    return "changed", string.format("%s has SHA-256 %s; %s was saved", t.path, sum, t.sha256)
  end
  return "ok"
end

-- Where a saved video (t: its path as recorded) is read in place by another create or a local tool: its path.
function D.source(t) return t.path end

-- A saved video's provenance record (provenance.lua's text) written beside it, PATH.json, now: a temporary file
-- renamed (whole, or not at all): done, err when it could not be.
function D.record(job, _, text)
  local path = job.out .. ".json"
  local tmp = path .. ".tmp-" .. core.random_id()
  local f, err = io.open(tmp, "wb")
  local ok = f ~= nil
  if f then
    local wrote, werr = f:write(text)
    local closed, cerr = f:close()
    ok, err = wrote and closed, werr or cerr
    if ok then ok, err = os.rename(tmp, path) end
  end
  if not ok then os.remove(tmp) end
  return { done = true, err = not ok and { message = string.format("%s: %s", path, tostring(err)) } or nil }
end

D.RECORD_MAX = 1024 * 1024 -- bytes a provenance record may hold (docs/lineage.md: one is a few kB)

-- The text of the provenance record beside the saved video at path (path.json), nil when nothing is there, or nil,
-- why (naming it) when what is there is no regular file of RECORD_MAX bytes at most: read from one open handle
-- judged by fstat (core.read_whole), so that a FIFO, a device (a link to /dev/zero) or a huge file is refused at
-- once, never waited on or read whole.
function D.record_of(path)
  local rec = path .. ".json"
  if not core.file_kind(rec, true) then return nil end -- (nothing there, or a link to nothing)
  return core.read_whole(rec, D.RECORD_MAX)
end

return D
