-- A fake transport (the interface in lua/starvideos/transport.lua) for the
-- engine's and the ledger's specs: no server, no socket.  It plays the service:
-- a create answers a queued task at once, a query answers the task as
-- `tasks[id]` says (a status, or a function of the number of polls), a download
-- writes the video's bytes (VIDEO, deterministic) from the offset asked for.
-- Every exchange is logged with the time it was sent (core.now).
--
--   local fake = Fake.new { status = function(id, n) ... end, hold_downloads = true }
--   starvideos.new { api_key = "k", base_url = "http://fake", transport = fake }
--   fake.sent : { {op=, url=, offset=, at=}, ... }      fake.closed : true once closed
--   fake:release() : the downloads held so far finish (with hold_downloads)

local core = require "starvideos.core"
local cjson = require "cjson"

local F = {}
F.__index = F

F.VIDEO_SIZE = 300000
-- the video: byte i (0-based) is (i * 7 + i // 256) % 251, so every slice differs from its neighbours
local function video(from, to)
  local t = {}
  for i = from, to - 1 do t[#t + 1] = string.char((i * 7 + (i - i % 256) / 256) % 251) end
  return table.concat(t)
end
F.video = video

function F.new(opts)
  opts = opts or {}
  return setmetatable({ sent = {}, done = {}, held = {}, polls = {}, next_id = 0, closed = false,
    status = opts.status or function() return "completed" end, hold_downloads = opts.hold_downloads }, F)
end

local function write(path, offset, bytes)
  local f = io.open(path, "r+b") or assert(io.open(path, "wb"))
  assert(f:seek("set", offset))
  assert(f:write(bytes))
  f:close()
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
    local from = r.offset or 0
    if self.hold_downloads then
      write(r.file, from, video(from, from + 100000)) -- a part of it arrived, then nothing more
      x.bytes = from + 100000
      self.held[#self.held + 1] = x
      return x
    end
    write(r.file, from, video(from, F.VIDEO_SIZE))
    x.body, x.bytes = "", F.VIDEO_SIZE
  end
  self.done[#self.done + 1] = x
  return x
end

function F:release()
  for _, x in ipairs(self.held) do
    if not x.cancelled then
      write(x.r.file, x.bytes, video(x.bytes, F.VIDEO_SIZE))
      x.body, x.bytes = "", F.VIDEO_SIZE
      self.done[#self.done + 1] = x
    end
  end
  self.held = {}
end

function F:poll(max_wait)
  if not self.done[1] and max_wait and max_wait > 0 then core.sleep(math.min(max_wait, 0.01)) end
  return #self.done
end

function F:finished()
  return table.remove(self.done, 1)
end

-- Read by the core, as every transport's answers are (core.verdict): the task
-- table, or a download's "".
function F.result(_, x)
  return core.verdict(x.op, 200, x.body, nil, "none", "", x.bytes, x.op == "download" and F.VIDEO_SIZE or nil)
end

function F.progress(_, x) return x.bytes, F.VIDEO_SIZE end

function F.cancel(_, x) x.cancelled = true end

function F:close() self.closed = true end

-- The exchanges of one op sent so far.
function F:count(op)
  local n = 0
  for _, s in ipairs(self.sent) do if s.op == op then n = n + 1 end end
  return n
end

return F
