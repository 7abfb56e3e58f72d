-- A fake transport (the interface in lua/starvideos/transport.lua) for the
-- loop's and the ledger's specs: no server, no socket.  It plays the service:
-- a create answers a queued task at once, a query answers the task as
-- `tasks[id]` says (a status, or a function of the number of polls), a download
-- writes the video's bytes (an MP4 of VIDEO_SIZE, deterministic) from the offset asked for,
-- through a .part handle (core.part_open) that its result hands over, as the
-- libcurl transport's does.
-- Every exchange is logged with the time it was sent (core.now).
--
--   local fake = Fake.new { status = function(id, n) ... end, hold_downloads = true, fake_clock = clock }
--   starvideos.new { api_key = "k", base_url = "http://fake", transport = fake }
--   fake.sent : { {op=, url=, offset=, at=}, ... }      fake.closed : true once closed
--   fake:release() : the downloads held so far finish (with hold_downloads)
--
-- Fake.scripted(script) is one the spec scripts exchange by exchange (the
-- specs of job, request and schedule): script(r, fake) is called when an
-- exchange is sent, with the request r as the client built it ({op, url, auth,
-- body, fresh, timeout, max_body, file, offset, follow, stall}), and says how
-- it ends: a table
--   status, body, retry_after   an HTTP answer (read by core.verdict, as every
--                               transport's is)
--   tr, message                 or a wire ending ("timeout", "broken", ...)
--   video                       a download's bytes: written to r.file from
--                               r.offset on (or from 0 with `restart`) through
--                               a .part handle, the answer a 200 (206 from an
--                               offset); its commit is core.commit_start's;
--                               with upto, only the bytes before it (then a
--                               wire ending such as tr = "broken")
--   after                       seconds (real ones; with Fake.scripted(script, { fake_clock = clock })
--                               and that clock started, the clock's: its poll moves it, no sleep)
-- or nil: the send fails (kind network).  Every exchange is kept in
-- fake.sent, in order, as { r, at (core.now() when sent), done (when it
-- finished), cancelled }; fake.open counts those in flight, fake.most the
-- most at once; fake.commits the commits asked for.

local core = require "starvideos.core"
local cjson = require "cjson"
local media = require "starvideos.emulator.media"

local now, verdict = core.now, core.verdict

local F = {}
F.__index = F

F.VIDEO_SIZE = 300000
-- byte i (0-based) of a video's mdat is (i * 7 + i // 256) % 251, so every slice differs from its neighbours
local function pattern(from, to)
  local t = {}
  for i = from, to - 1 do t[#t + 1] = string.char((i * 7 + (i - i % 256) / 256) % 251) end
  return table.concat(t)
end

-- A whole MP4 of `size` bytes and `seconds` (5) seconds (emulator/media.lua's boxes), its mdat the pattern.
function F.mp4(size, seconds)
  local parts = media.parts("mp4", { seconds = seconds or 5, bytes = size })
  assert(#parts == 2 and type(parts[2]) == "number", "the MP4's mdat is not last")
  return parts[1] .. pattern(#parts[1], size)
end

-- The bytes [from, to) of the video a download gets: an MP4 of VIDEO_SIZE.
local whole_video
local function video(from, to)
  whole_video = whole_video or F.mp4(F.VIDEO_SIZE)
  return whole_video:sub(from + 1, to)
end
F.video = video

function F.new(opts)
  opts = opts or {}
  return setmetatable({ sent = {}, done = {}, held = {}, polls = {}, next_id = 0, closed = false,
    status = opts.status or function() return "completed" end, hold_downloads = opts.hold_downloads,
    fake_clock = opts.fake_clock }, F)
end

-- The .part handle of a download's file from offset (from 0 in a new file
-- when the file is not there to go on from, as the real transports), and that
-- offset.
local function open_part(path, offset)
  local fh = offset > 0 and core.part_open(path, offset)
  if fh then return fh, offset end
  return assert(core.part_open(path, 0)), 0
end

local function write(fh, bytes)
  assert(fh:write(bytes))
  assert(fh:flush())
end

function F:send(r)
  assert(not self.closed, "send on a closed transport")
  self.next_id = self.next_id + 1
  local x = { r = r, op = r.op, n = self.next_id }
  self.sent[#self.sent + 1] = { op = r.op, url = r.url, offset = r.offset, at = core.now() }
  if r.op == "create" then
    x.body = cjson.encode { id = "task_" .. self.next_id, status = "queued", model = "videos", created = os.time() }
  elseif r.op == "query" then
    local id = r.url:match("/v1/result/(.*)$")
    self.polls[id] = (self.polls[id] or 0) + 1
    x.body = cjson.encode { id = id, status = self.status(id, self.polls[id]), model = "videos",
      video_url = "http://fake/videos/" .. id .. ".mp4" }
  else -- a download: the bytes from r.offset, now or when released
    local from
    x.fh, from = open_part(r.file, r.offset or 0)
    if self.hold_downloads then
      write(x.fh, video(from, from + 100000)) -- a part of it arrived, then nothing more
      x.bytes = from + 100000
      self.held[#self.held + 1] = x
      return x
    end
    write(x.fh, video(from, F.VIDEO_SIZE))
    x.body, x.bytes = "", F.VIDEO_SIZE
  end
  self.done[#self.done + 1] = x
  return x
end

function F:release()
  for _, x in ipairs(self.held) do
    if not x.cancelled then
      write(x.fh, video(x.bytes, F.VIDEO_SIZE))
      x.body, x.bytes = "", F.VIDEO_SIZE
      self.done[#self.done + 1] = x
    end
  end
  self.held = {}
end

-- (with a clock of spec/support/fake_clock.lua started, the wait moves it instead of sleeping)
function F:poll(max_wait)
  if not self.done[1] and max_wait and max_wait > 0 then
    local clock = self.fake_clock
    if clock and clock.running() then clock.advance(max_wait) else core.sleep(math.min(max_wait, 0.01)) end
  end
  return #self.done
end

function F:finished()
  return table.remove(self.done, 1)
end

-- Read by the core, as every transport's answers are (core.verdict): the task
-- table, or a download's "" and its .part handle.
function F.result(_, x)
  local task, err, wire, bytes, total = core.verdict(x.op, 200, x.body, nil, "none", "", x.bytes,
    x.op == "download" and F.VIDEO_SIZE or nil)
  return task, err, wire, bytes, total, x.fh
end

function F.progress(_, x) return x.bytes, F.VIDEO_SIZE end

function F.cancel(_, x)
  x.cancelled = true
  if x.fh then x.fh:close() end
end

function F:close() self.closed = true end

function F.scripted(script, opts)
  local clock = opts and opts.fake_clock
  local t = { sent = {}, open = 0, most = 0, closed = false, commits = {} }
  local pending, finished, whole = {}, {}, {} -- whole: .part name -> a whole download's handle

  local function live()
    if t.closed then error("the fake transport is closed", 3) end
  end

  -- The answer's effects, when it finishes: a download's bytes in its file.
  local function finish(x)
    local a = x.answer
    x.done = now()
    t.open = t.open - 1
    if x.r.op == "download" and a.video then
      local from = a.restart and 0 or (x.r.offset or 0)
      x.fh, from = open_part(x.r.file, from)
      local upto = a.upto or #a.video
      write(x.fh, a.video:sub(from + 1, upto))
      x.bytes, x.total = math.max(from, upto), #a.video
      x.status = a.status or (from > 0 and 206 or 200)
    end
    finished[#finished + 1] = x
  end

  function t.send(_, r)
    live()
    local copy = {}
    for k, v in pairs(r) do copy[k] = v end
    local a = script(copy, t)
    if a == nil then
      return nil, setmetatable({ kind = "network", message = "the script refused it" }, core.error_mt)
    end
    local x = { r = copy, answer = a, at = now(), bytes = copy.offset or 0 }
    x.due = x.at + (a.after or 0)
    t.sent[#t.sent + 1] = x
    t.open = t.open + 1
    if t.open > t.most then t.most = t.open end
    pending[#pending + 1] = x
    return x
  end

  function t.poll(_, max_wait)
    live()
    local until_ = now() + (max_wait or 0)
    repeat
      local keep, soonest = {}, nil
      for _, x in ipairs(pending) do
        if x.due <= now() then finish(x) else
          keep[#keep + 1] = x
          soonest = math.min(soonest or x.due, x.due)
        end
      end
      pending = keep
      local fake = clock and clock.running()
      if #finished > 0 or now() >= until_ or not (soonest or fake) then break end
      local wait = math.max(0, math.min(soonest or until_, until_) - now()) -- (the clock's: to the loop's timer)
      if fake then clock.advance(wait) else core.sleep(wait) end
    until false
    return #finished
  end

  function t.finished()
    live()
    return table.remove(finished, 1)
  end

  function t.result(_, x)
    live()
    assert(x and x.done and not x.spent, "result of an exchange that did not finish, or twice")
    x.spent = true
    local a = x.answer
    local task, err, wire, bytes, total = verdict(x.r.op, x.status or a.status or 0, a.body or "", a.retry_after,
      a.tr or "none", a.message, x.bytes, x.total, nil, x.r.heads and (a.headers or "") or nil, x.r.what)
    if x.fh and task then whole[x.r.file] = x.fh elseif x.fh then x.fh:close() end
    return task, err, wire, bytes, total
  end

  function t.progress(_, x) return x.bytes, x.total end

  function t.cancel(_, x)
    if x.spent or x.done then x.spent = true; return end
    x.spent, x.cancelled = true, true
    if x.fh then x.fh:close() end
    t.open = t.open - 1
    for i, p in ipairs(pending) do
      if p == x then table.remove(pending, i); break end
    end
  end

  -- the .part handle the download wrote through, committed as download.lua commits a
  -- libcurl download's (core.commit_start with its MP4 check, but unhashed: download.lua then
  -- reads the file's SHA-256 itself), polled here until done
  function t.commit(_, part, path, mp4)
    t.commits[#t.commits + 1] = { part = part, path = path }
    local fh = whole[part]
    whole[part] = nil
    if not fh then return nil, "cannot commit " .. part .. ": no whole download was written there" end
    local c, err = core.commit_start(fh, path, nil, mp4)
    if not c then return nil, err end
    local ok, why, notwhole = c:poll()
    while ok == nil do core.sleep(0.001); ok, why, notwhole = c:poll() end
    return ok, why, notwhole
  end

  function t.close()
    if t.closed then return end
    for _, x in ipairs(pending) do t:cancel(x) end
    t.closed = true
  end

  return t
end

-- The exchanges of one op sent so far.
function F:count(op)
  local n = 0
  for _, s in ipairs(self.sent) do if s.op == op then n = n + 1 end end
  return n
end

return F
