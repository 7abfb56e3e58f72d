-- A hostile HTTP server for the specs: raw TCP (LuaSocket), one coroutine per
-- connection under socket.select, so a slow scenario never holds up another.
--
--   lua5.4 spec/support/hostile.lua PORT_FILE LOG_FILE [LIFETIME]
--
-- Binds 127.0.0.1 on a port the system picks, writes the port to PORT_FILE
-- (whole, then renamed into place), then prints "hostile listening on PORT" on
-- stdout.  Every request is appended to LOG_FILE as one JSON line, flushed
-- before the answer starts:
--   {"time":..,"method":"POST","path":"/s/..","headers":{"lowercased":"value"},"raw":"<head>","body":".."}
-- It exits on GET /quit, on a signal, and after LIFETIME seconds (at most 120).
--
-- Scenarios are chosen by path: /s/<scenario>/<tag>/<rest>, where <tag> is any
-- segment the spec picks to tell its requests apart; a client's base_url is
-- http://127.0.0.1:PORT/s/<scenario>/<tag>.  Every answer closes the connection.
-- Runs on Lua 5.1 to 5.4 and LuaJIT.
--
-- Bodies longer than a video can be (issue 37; each stops at 64 MiB): endless (200, no length),
-- endless_chunked (the same, chunked), over_range (a 206 of the whole video, its
-- Content-Length 1 TB, its bytes never ending).
--
-- Download cases (issue 27): each scenario below is a whole service under its
-- base URL (hs:url("dl_html") and so on): a POST creates task "task_dl"
-- (queued); GET <base>/v1/result/<id> answers it completed, with
-- "actualDuration": 5 and "video_url": "<base>/v.mp4"; any other GET (or
-- HEAD) under the base is the video, which each case makes bad its own way:
--   dl_html      200, Content-Type text/html: a proxy's HTML page, not the video
--   dl_short     200 with the first half of a good MP4 and a matching short
--                Content-Length (the file's true size is nowhere)
--   dl_range200  the first GET: the good MP4's full Content-Length, half its
--                body, then a close (so the client resumes); every later GET,
--                Range or not: 200 and the whole file from byte 0.  A client
--                that appends that body to its .part holds 150000 bytes; one
--                that starts again from byte 0 with it holds the good MP4
--                (HEAD: the good MP4's head, honouring Range)
--   dl_overrun   an MP4 whose mdat box says it runs 64 bytes past the end
--   dl_duration  a well-formed MP4 of 9 s, for the task's 5 s
--   dl_open_end  the good MP4 but its last box (mdat) of size 0: it runs to the end of the file (whole, unmarkable)
-- Add "_once" (dl_html_once, dl_short_once, dl_overrun_once, dl_duration_once)
-- and only the first video GET under the tag is bad; every later one gets the
-- good MP4 (honouring Range):
-- a client that asks the task again and downloads once more from byte 0
-- ends with the good file.  The good MP4 (DL_GOOD below) is
-- require("starvideos.emulator.media").mp4{seconds = 5, bytes = 100000}:
-- 5 s, 1280x720, 100000 bytes.
--
-- Error answers that name a task (issue 55, item 4): err_task_429, err_task_503 and err_task_500 are the good
-- service of the download cases whose first create is answered with that status and the task it made in the body
-- (a 503 with Retry-After: 0, a 429 with Retry-After: 2); any later create 200, task "task_paid_twice".

local socket = require "socket"
-- the checkout's lua/ (for starvideos.emulator.media), wherever the spec runs from
local root = (arg and arg[0] or ""):match("^(.-)/?spec/support/hostile%.lua$")
if root then package.path = (root == "" and "." or root) .. "/rocks/emulator/lua/?.lua;" .. package.path end
local media = require "starvideos.emulator.media"

local tostring, tonumber, ipairs, pairs = tostring, tonumber, ipairs, pairs
local co_create, co_resume, co_yield, co_status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local str_format, str_rep, tbl_concat = string.format, string.rep, table.concat
local gettime = socket.gettime
local math_min, math_max, math_floor = math.min, math.max, math.floor

local port_file, log_file, lifetime = arg[1], arg[2], tonumber(arg[3] or "120")
if not (port_file and log_file) then
  io.stderr:write("usage: hostile.lua PORT_FILE LOG_FILE [LIFETIME]\n")
  os.exit(2)
end
if not lifetime or lifetime <= 0 or lifetime > 120 then lifetime = 120 end

-- The size of every video this server serves (but the download cases'), and its
-- bytes: a 5 s MP4 whose mdat holds 16-byte blocks, each naming its own position
-- in the file, so that a byte out of place shows (transport_cases.lua's M.video).
local VIDEO_SIZE = 200003
local function video_bytes(n)
  local head = media.parts("mp4", { seconds = 5, bytes = n })[1]
  local blocks = {}
  for i = 0, math_floor(n / 16) do blocks[#blocks + 1] = str_format("%08d|video|\n", i) end
  return head .. tbl_concat(blocks):sub(#head + 1, n)
end
local VIDEO = video_bytes(VIDEO_SIZE)

---------------------------------------------------------------------------
-- the log

local log = assert(io.open(log_file, "ab"))

local function jstr(s)
  return '"' .. (tostring(s):gsub('[%c"\\\128-\255]', function(ch)
    if ch == '"' then return '\\"' end
    if ch == "\\" then return "\\\\" end
    return str_format("\\u%04x", ch:byte())
  end)) .. '"'
end

local function log_request(req)
  local hs = {}
  for k, v in pairs(req.headers) do hs[#hs + 1] = jstr(k) .. ":" .. jstr(v) end
  log:write("{", '"time":', str_format("%.3f", gettime()),
    ',"method":', jstr(req.method), ',"path":', jstr(req.path),
    ',"headers":{', tbl_concat(hs, ","), '}',
    ',"raw":', jstr(req.raw), ',"body":', jstr(req.body:sub(1, 4096)), "}\n")
  log:flush()
end

local function note(msg)
  io.stderr:write("hostile: ", msg, "\n")
end

---------------------------------------------------------------------------
-- coroutine I/O: each call yields ("r", sock), ("w", sock) or ("t", wake_time)
-- to the scheduler; a wait for a socket returns "idle" after 20 s.

local function fill(c)
  while true do
    local data, err, partial = c.sock:receive(8192)
    local got = data or partial
    if got and #got > 0 then
      c.buf = c.buf .. got
      return true
    end
    if err ~= "timeout" then return nil, err end
    if co_yield("r", c.sock) == "idle" then return nil, "idle" end
  end
end

local function read_line(c)
  while true do
    local i = c.buf:find("\n", 1, true)
    if i then
      local line = c.buf:sub(1, i - 1)
      c.buf = c.buf:sub(i + 1)
      return (line:gsub("\r$", ""))
    end
    if #c.buf > 65536 then return nil, "line too long" end
    local ok, err = fill(c)
    if not ok then return nil, err end
  end
end

local function read_bytes(c, n)
  while #c.buf < n do
    local ok, err = fill(c)
    if not ok then return nil, err end
  end
  local s = c.buf:sub(1, n)
  c.buf = c.buf:sub(n + 1)
  return s
end

local function send(c, data)
  local i = 1
  while i <= #data do
    local last, err, lastp = c.sock:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = lastp + 1
      if co_yield("w", c.sock) == "idle" then return nil, "idle" end
    else
      return nil, err
    end
  end
  return true
end

local function sleep(seconds)
  co_yield("t", gettime() + seconds)
end

-- A reset: SO_LINGER 0, then close (the peer sees ECONNRESET).
local function reset(c)
  c.sock:setoption("linger", { on = true, timeout = 0 })
  c.sock:close()
  c.closed = true
end

---------------------------------------------------------------------------
-- requests

local function read_request(c)
  local line, err = read_line(c)
  if not line then return nil, err end
  local method, path = line:match("^(%u+) (%S+) HTTP/1%.%d$")
  if not method then return nil, "bad request line: " .. line end
  local req = { method = method, path = path, headers = {}, raw = { line } }
  while true do
    line, err = read_line(c)
    if not line then return nil, err end
    if line == "" then break end
    req.raw[#req.raw + 1] = line
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      req.headers[name] = req.headers[name] and (req.headers[name] .. ", " .. value) or value
    end
  end
  req.raw = tbl_concat(req.raw, "\r\n")
  local h = req.headers
  if h.expect and h.expect:lower() == "100-continue" then
    local ok, serr = send(c, "HTTP/1.1 100 Continue\r\n\r\n")
    if not ok then return nil, serr end
  end
  local body = {}
  if h["transfer-encoding"] and h["transfer-encoding"]:lower():find("chunked", 1, true) then
    while true do
      line, err = read_line(c)
      if not line then return nil, err end
      local size = tonumber(line:match("^%x+") or "", 16)
      if not size then return nil, "bad chunk size" end
      if size == 0 then
        repeat line = read_line(c) until not line or line == ""
        break
      end
      local chunk, cerr = read_bytes(c, size + 2)
      if not chunk then return nil, cerr end
      body[#body + 1] = chunk:sub(1, size)
    end
  elseif h["content-length"] then
    local n = tonumber(h["content-length"])
    if not n or n < 0 or n > 1048576 then return nil, "bad content-length" end
    local data, berr = read_bytes(c, n)
    if not data then return nil, berr end
    body[1] = data
  end
  req.body = tbl_concat(body)
  -- /s/<scenario>/<tag>/<rest>
  local scenario, tag, rest = path:match("^/s/([%w_]+)/([^/?]+)(.*)$")
  req.scenario, req.tag, req.rest = scenario, tag, rest or ""
  return req
end

local function answer(c, status, headers, body)
  body = body or ""
  local head = { "HTTP/1.1 " .. status }
  for _, h in ipairs(headers or {}) do head[#head + 1] = h end
  head[#head + 1] = "Content-Length: " .. #body
  head[#head + 1] = "Connection: close"
  return send(c, tbl_concat(head, "\r\n") .. "\r\n\r\n" .. body)
end

local JSON = "Content-Type: application/json"

-- A queued task with this id, as a create answers.
local function queued(id)
  return '{"id":"' .. id .. '","status":"queued"}'
end

-- "bytes=A-" or "bytes=A-B" -> A, B (B nil when open)
local function range_of(req)
  local r = req.headers.range
  if not r then return nil end
  local a, b = r:match("^bytes=(%d+)-(%d*)$")
  return tonumber(a), tonumber(b)
end

-- The video, honouring Range like a good server.
local function serve_video(c, req)
  local a, b = range_of(req)
  if a and a < VIDEO_SIZE then
    b = math_min(b or VIDEO_SIZE - 1, VIDEO_SIZE - 1)
    return answer(c, "206 Partial Content", { "Content-Type: video/mp4",
      str_format("Content-Range: bytes %d-%d/%d", a, b, VIDEO_SIZE) }, VIDEO:sub(a + 1, b + 1))
  elseif a then
    return answer(c, "416 Range Not Satisfiable", { "Content-Range: bytes */" .. VIDEO_SIZE })
  end
  return answer(c, "200 OK", { "Content-Type: video/mp4" }, VIDEO)
end

-- hits per scenario path, for the scenarios that change their answer
local hits = {}
local function hit(req)
  local k = req.path:gsub("%?.*$", "")
  hits[k] = (hits[k] or 0) + 1
  return hits[k]
end

local gzip_bomb -- made once, on first use
local function make_gzip_bomb()
  if gzip_bomb then return gzip_bomb end
  -- 128 MiB of valid JSON once inflated: a client that inflates it and parses
  -- it gets a task, and has held 128 MiB to do so
  local p = assert(io.popen("{ printf '{\"id\":\"task_g\",\"status\":\"queued\",\"pad\":\"'; "
    .. "head -c 134217728 /dev/zero | tr '\\000' a; printf '\"}'; } | gzip -9 -c", "r"))
  gzip_bomb = p:read("*a")
  p:close()
  assert(#gzip_bomb > 1000 and gzip_bomb:byte(1) == 0x1f and gzip_bomb:byte(2) == 0x8b, "gzip failed")
  return gzip_bomb
end

local scenarios = {}

-- A well-behaved service: creates queue, results are completed, videos served.
function scenarios.ok(c, req)
  if req.method == "POST" then return answer(c, "200 OK", { JSON }, queued("task_ok")) end
  local id = req.rest:match("^/v1/result/([^/?]+)")
  if id then
    local _, port = c.sock:getsockname()
    return answer(c, "200 OK", { JSON }, str_format(
      '{"id":"%s","status":"completed","video_url":"http://127.0.0.1:%s/s/video/%s/v.mp4"}',
      id, tostring(port), req.tag))
  end
  return serve_video(c, req)
end

-- Request ids (issue 48): every answer echoes the X-Request-Id that came.  A create answers with
-- "Request-Id: srv-create" too; the first query of task_ids under a tag answers 503 with "CF-Ray: ray-503" (a
-- client tries again), the next ones 200 with ids of the server's own in all three headers ("X-Request-Id:
-- srv-query" in place of the echo); a query of /v1/result/gone answers 404 with "CF-Ray: ray-404" and a
-- "Request-Id" that echoes ours too (an echo ranks last, whatever its header).
function scenarios.ids(c, req)
  local echo = req.headers["x-request-id"]
  local function with(...)
    local h = { JSON, echo and "X-Request-Id: " .. echo or nil }
    for i = 1, select("#", ...) do h[#h + 1] = select(i, ...) end -- (a nil line: none)
    return h
  end
  if req.method == "POST" then return answer(c, "200 OK", with("Request-Id: srv-create"), queued("task_ids")) end
  if req.rest:find("^/v1/result/gone") then
    return answer(c, "404 Not Found", with(echo and "Request-Id: " .. echo or nil, "CF-Ray: ray-404"),
      '{"error":"no such task"}')
  end
  if hit(req) == 1 then return answer(c, "503 Service Unavailable", with("CF-Ray: ray-503"), '{"error":"busy"}') end
  return answer(c, "200 OK", { JSON, "X-Request-Id: srv-query", "Request-Id: srv-other", "CF-Ray: ray-200" },
    queued("task_ids"))
end

-- A server's request id that is not printable UTF-8 (issue 55, item 8): every answer's X-Request-Id is the bytes
-- "id-" 0xff 0xfe 0x01 "x"; the create makes task_bad_id.
function scenarios.bad_ids(c, req)
  local h = { JSON, "X-Request-Id: id-\255\254\1x" }
  if req.method == "POST" then return answer(c, "200 OK", h, queued("task_bad_id")) end
  return answer(c, "200 OK", h, queued("task_bad_id"))
end

-- Content-Length 200, a 33-byte JSON object, then close.
function scenarios.truncated(c)
  send(c, "HTTP/1.1 200 OK\r\n" .. JSON .. "\r\nContent-Length: 200\r\n\r\n" .. queued("task_1"))
end

-- The same as a 429 (a task's answer cut short: the create may have made it, never to be sent again).
function scenarios.truncated_429(c)
  send(c, "HTTP/1.1 429 Too Many Requests\r\n" .. JSON .. "\r\nContent-Length: 200\r\n\r\n" .. queued("task_t429"))
end

-- A complete JSON object, but Content-Length promises 7 bytes more; then close.
function scenarios.cl_long(c)
  local body = queued("task_4")
  send(c, "HTTP/1.1 200 OK\r\n" .. JSON .. "\r\nContent-Length: " .. (#body + 7) .. "\r\n\r\n" .. body)
end

-- Content-Length cuts the JSON short; the rest follows, then close.
function scenarios.cl_short(c)
  local body = queued("task_5")
  send(c, "HTTP/1.1 200 OK\r\n" .. JSON .. "\r\nContent-Length: 15\r\n\r\n" .. body)
end

-- A good first chunk holding the whole object, then a chunk size that is not hex.
function scenarios.chunked_bad(c)
  local body = queued("task_c")
  send(c, "HTTP/1.1 200 OK\r\n" .. JSON .. "\r\nTransfer-Encoding: chunked\r\n\r\n"
    .. str_format("%x", #body) .. "\r\n" .. body .. "\r\nzz\r\ngarbage\r\n")
end

-- A well-framed answer of 1.5 MB starting with a task id.
function scenarios.huge(c)
  local body = '{"id":"task_2","status":"queued","pad":"' .. str_rep("x", 1572864) .. '"}'
  answer(c, "200 OK", { JSON }, body)
end

-- The id key twice, the second null.
function scenarios.dupkey(c)
  answer(c, "200 OK", { JSON }, '{"id":"task_3","status":"queued","id":null}')
end

-- 200 with an empty body.
function scenarios.empty(c)
  answer(c, "200 OK", { JSON }, "")
end

-- A store's refusal: 403 with S3's XML <Error> (its Code and Message are its words).
function scenarios.s3_error(c)
  answer(c, "403 Forbidden", { "Content-Type: application/xml", "x-amz-request-id: r1" },
    "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
end

-- Half a header line, a moment to let it arrive, then a reset.
function scenarios.reset_header(c)
  send(c, "HTTP/1.1 200 OK\r\nContent-Ty")
  sleep(0.2)
  reset(c)
end

-- Headers, a few bytes of the body (no id in them), then a reset.
function scenarios.reset_body(c)
  send(c, "HTTP/1.1 200 OK\r\n" .. JSON .. "\r\nContent-Length: 100\r\n\r\n{\"status\":\"que")
  sleep(0.2)
  reset(c)
end

-- The whole answer, one byte a second.
function scenarios.dribble(c)
  local text = "HTTP/1.1 200 OK\r\n" .. JSON .. "\r\nContent-Length: 33\r\n\r\n" .. queued("task_d")
  for i = 1, #text do
    if not send(c, text:sub(i, i)) then return end
    sleep(1)
  end
end

-- Content-Encoding: gzip over a body that inflates to 128 MiB.  Making it
-- takes a second or so and holds up every connection: GET .../warm first,
-- outside any timed call.
function scenarios.gzip(c, req)
  local bomb = make_gzip_bomb()
  if req.rest == "/warm" then return answer(c, "200 OK", nil, "warm\n") end
  answer(c, "200 OK", { JSON, "Content-Encoding: gzip" }, bomb)
end

-- One header line of 8 MiB, sent as fast as the client takes it.
local BIG = str_rep("a", 8388608)
function scenarios.big_header(c)
  local body = queued("task_h")
  send(c, "HTTP/1.1 200 OK\r\n" .. JSON .. "\r\nX-Big: " .. BIG .. "\r\nContent-Length: "
    .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
end

-- Downloads.

function scenarios.redir_file(c)
  answer(c, "302 Found", { "Location: file:///etc/passwd" })
end

-- /s/redir_bad/<tag>/<how>/<name>: a redirect to a URL the one URL check
-- (core.check_url) refuses, though libcurl on its own would follow it; `meta`: to the
-- cloud metadata address, which a media request that may reach only public addresses refuses.
local BAD_TARGETS = {
  meta = function() return "http://169.254.169.254/latest/meta-data/" end,
  space = function(port, tag, name) return str_format("http://127.0.0.1:%s/s/video/%s/a %s", port, tag, name) end,
  ctl = function(_, tag, name) return str_format("/s/video/%s/a\1%s", tag, name) end,
  userinfo = function(port, tag, name)
    return str_format("http://user:pass@127.0.0.1:%s/s/video/%s/%s", port, tag, name)
  end,
}
function scenarios.redir_bad(c, req)
  local how, name = req.rest:match("^/(%a+)/([^/?]+)")
  if not BAD_TARGETS[how] then return answer(c, "404 Not Found") end
  local _, port = c.sock:getsockname()
  answer(c, "302 Found", { "Location: " .. BAD_TARGETS[how](tostring(port), req.tag, name) })
end

-- Redirects to itself, a little slowly (the log stays small).
function scenarios.redir_loop(c, req)
  sleep(0.02)
  answer(c, "302 Found", { "Location: " .. req.path })
end

-- /s/redir_port/<tag>/<port>/<name> -> http://127.0.0.1:<port>/s/video/<tag>/<name>
function scenarios.redir_port(c, req)
  local port, name = req.rest:match("^/(%d+)/([^/?]+)")
  if not port then return answer(c, "404 Not Found") end
  answer(c, "302 Found", { str_format("Location: http://127.0.0.1:%s/s/video/%s/%s", port, req.tag, name) })
end

-- /s/redir_n/<tag>/<n>/<name>: n redirects in a row (to .../<n-1>/<name>), then the video.
function scenarios.redir_n(c, req)
  local left, name = req.rest:match("^/(%d+)/([^/?]+)")
  if not left then return answer(c, "404 Not Found") end
  left = tonumber(left)
  if left == 0 then return serve_video(c, req) end
  local _, port = c.sock:getsockname()
  answer(c, "302 Found", { str_format("Location: http://127.0.0.1:%s/s/redir_n/%s/%d/%s", tostring(port), req.tag,
    left - 1, name) })
end

-- A query answered after 0.5 s (a completed task), counting the exchanges open
-- at once per tag; GET /s/busy/<tag>/peak answers the most seen at once.
local busy = {} -- tag -> { now =, peak = }
function scenarios.busy(c, req)
  local b = busy[req.tag] or { now = 0, peak = 0 }
  busy[req.tag] = b
  if req.rest == "/peak" then return answer(c, "200 OK", nil, tostring(b.peak)) end
  b.now = b.now + 1
  b.peak = math_max(b.peak, b.now)
  sleep(0.5)
  b.now = b.now - 1
  local id = req.rest:match("^/v1/result/([^/?]+)") or "task_b"
  answer(c, "200 OK", { JSON }, str_format(
    '{"id":"%s","status":"completed","video_url":"http://127.0.0.1/s/video/%s/v.mp4"}', id, req.tag))
end

function scenarios.video(c, req)
  serve_video(c, req)
end

-- Bytes a..b (0-based, inclusive) of a file given as parts (strings, and numbers of
-- zero bytes: starvideos.emulator.media's).
local function parts_slice(parts, a, b)
  local out, at = {}, 0
  for _, p in ipairs(parts) do
    local n = type(p) == "number" and p or #p
    local from, to = math_max(a, at), math_min(b, at + n - 1)
    if from <= to then
      out[#out + 1] = type(p) == "number" and str_rep("\0", to - from + 1) or p:sub(from - at + 1, to - at + 1)
    end
    at = at + n
  end
  return tbl_concat(out)
end

-- A media file that starvideos.emulator.media writes: /s/media/<tag>/<type>/<k=v,...>/<name>
-- (v: a number, else a word), e.g. /s/media/t1/mp4/seconds=5,width=1280,height=720,moov=end/v.mp4;
-- HEAD and Range honoured (a GET without Range gets the whole file); two more keys:
-- norange=true answers every GET 200 with the whole file, delay=S waits S s first.
function scenarios.media(c, req)
  local kind, spec = req.rest:match("^/(%w+)/([^/]*)/")
  local M = require "starvideos.emulator.media"
  if not (kind and M.CONTENT_TYPES[kind]) then return answer(c, "404 Not Found") end
  local o = {}
  for k, v in spec:gmatch("([%w_]+)=([^,]+)") do o[k] = tonumber(v) or (v == "true" or v) end
  if o.delay then sleep(o.delay) end
  local norange = o.norange
  o.norange, o.delay = nil, nil
  local parts, size = M.parts(kind, o)
  local a, b = range_of(req)
  if norange then a, b = nil, nil end
  local head = { "Content-Type: " .. M.CONTENT_TYPES[kind], "Accept-Ranges: bytes" }
  local status, body = "200 OK", nil
  if a and a >= size then return answer(c, "416 Range Not Satisfiable", { "Content-Range: bytes */" .. size }) end
  if a then
    b = math_min(b or size - 1, size - 1)
    status, body = "206 Partial Content", parts_slice(parts, a, b)
    head[#head + 1] = str_format("Content-Range: bytes %d-%d/%d", a, b, size)
  end
  if req.method == "HEAD" then
    head[#head + 1] = "Content-Length: " .. size
    return send(c, "HTTP/1.1 " .. status .. "\r\n" .. tbl_concat(head, "\r\n") .. "\r\nConnection: close\r\n\r\n")
  end
  answer(c, status, head, body or parts_slice(parts, 0, size - 1))
end

-- A 200 with the video's full Content-Length and half its body, then a close.
local function half_video(c)
  send(c, "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: " .. VIDEO_SIZE
    .. "\r\nConnection: close\r\n\r\n" .. VIDEO:sub(1, math_floor(VIDEO_SIZE / 2)))
end

-- Ignores Range: the first GET of a path gets half_video; every later one 200
-- and the whole body.
function scenarios.norange(c, req)
  if hit(req) == 1 then return half_video(c) end
  answer(c, "200 OK", { "Content-Type: video/mp4" }, VIDEO)
end

-- Honours Range, but the first GET of a path gets half_video: the client's
-- retry resumes.
function scenarios.cut_once(c, req)
  if hit(req) == 1 then return half_video(c) end
  serve_video(c, req)
end

-- The first GET of a path gets half_video; every later one with Range (bytes=A-)
-- a 206 of the bytes from A - 1000 on, well framed but not where it was asked.
function scenarios.range_early(c, req)
  local a = range_of(req)
  if hit(req) == 1 or not a or a < 1000 then return half_video(c) end
  answer(c, "206 Partial Content", { "Content-Type: video/mp4",
    str_format("Content-Range: bytes %d-%d/%d", a - 1000, VIDEO_SIZE - 1, VIDEO_SIZE) }, VIDEO:sub(a - 1000 + 1))
end

-- The bytes asked for (bytes=A-B), in a 206 whose Content-Range gives no total ("bytes A-B/*"): not a whole
-- range, so its bytes cannot be known to start at A.
function scenarios.no_total(c, req)
  local a, b = range_of(req)
  a, b = a or 0, math_min(b or VIDEO_SIZE - 1, VIDEO_SIZE - 1)
  answer(c, "206 Partial Content", { "Content-Type: video/mp4", str_format("Content-Range: bytes %d-%d/*", a, b) },
    VIDEO:sub(a + 1, b + 1))
end

-- The video (honouring Range) in 20 slices, 0.1 s apart: a download of it
-- takes about 2 s, long enough for another process to meddle with its .part.
function scenarios.slow_video(c, req)
  local a = range_of(req) or 0
  local body = VIDEO:sub(a + 1)
  local head = a > 0 and ("HTTP/1.1 206 Partial Content\r\n" .. str_format("Content-Range: bytes %d-%d/%d\r\n",
    a, VIDEO_SIZE - 1, VIDEO_SIZE)) or "HTTP/1.1 200 OK\r\n"
  if not send(c, head .. "Content-Type: video/mp4\r\nContent-Length: " .. #body
    .. "\r\nConnection: close\r\n\r\n") then return end
  local slice = math.ceil(#body / 20)
  for i = 1, #body, slice do
    if not send(c, body:sub(i, i + slice - 1)) then return end
    sleep(0.1)
  end
end

-- The video's head and its first half at once, then nothing until the spec opens the gate of its tag
-- (GET /s/open/<tag>/...: every connection held under the tag then gets the rest, and every later one all of it at
-- once): a download that has begun and is sure to be running still, whatever the pace, until the spec says.
local opened = {}
function scenarios.gated_video(c, req)
  local half = math.floor(VIDEO_SIZE / 2)
  if not send(c, "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: " .. VIDEO_SIZE
    .. "\r\nConnection: close\r\n\r\n" .. VIDEO:sub(1, half)) then return end
  while not opened[req.tag] do sleep(0.01) end
  send(c, VIDEO:sub(half + 1))
end

function scenarios.open(c, req)
  opened[req.tag] = true
  answer(c, "200 OK", { "Content-Type: text/plain" }, "open\n")
end

-- The video's head and its first 16 KiB at once, then a byte every 0.1 s until
-- the client goes (or 60 s): a download that has begun and is sure to be
-- running still, however fast the machine.
function scenarios.held_video(c)
  if not send(c, "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: " .. VIDEO_SIZE
    .. "\r\nConnection: close\r\n\r\n" .. VIDEO:sub(1, 16384)) then return end
  for i = 16385, math_min(VIDEO_SIZE, 16384 + 600) do
    sleep(0.1)
    if not send(c, VIDEO:sub(i, i)) then return end
  end
end

-- 206 with the whole range to a GET without Range; a good 206 to one with it.
function scenarios.partial206(c, req)
  if req.headers.range then return serve_video(c, req) end
  answer(c, "206 Partial Content", { "Content-Type: video/mp4",
    str_format("Content-Range: bytes 0-%d/%d", VIDEO_SIZE - 1, VIDEO_SIZE) }, VIDEO)
end

-- A body "without end": `head`, then the video's bytes over and over (each piece through
-- `frame`) until the client goes, or 64 MiB went (a client that does not stop fills no disk).
local function endless(head, frame)
  return function(c)
    if not send(c, head) then return end
    for _ = 1, 64 * 1048576 / VIDEO_SIZE do
      if not send(c, frame and frame(VIDEO) or VIDEO) then return end
      sleep(0) -- the other connections' turn
    end
  end
end
local VIDEO_HEAD = "Content-Type: video/mp4\r\nConnection: close\r\n"
-- 200 without a Content-Length (the body ends at the close: never)
scenarios.endless = endless("HTTP/1.1 200 OK\r\n" .. VIDEO_HEAD .. "\r\n")
-- 200 chunked, 4 KiB chunks (each read whole, as a transport writes whole chunks at once)
scenarios.endless_chunked = endless("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" .. VIDEO_HEAD .. "\r\n",
  function(data)
    local t = {}
    for i = 1, #data, 4096 do
      local piece = data:sub(i, i + 4095)
      t[#t + 1] = str_format("%x\r\n%s\r\n", #piece, piece)
    end
    return tbl_concat(t)
  end)
-- a 206 of the whole video (bytes 0-/VIDEO_SIZE) whose Content-Length says 1 TB: more than the video can be
scenarios.over_range = endless("HTTP/1.1 206 Partial Content\r\n" .. VIDEO_HEAD .. str_format(
  "Content-Range: bytes 0-%d/%d\r\nContent-Length: 1000000000000\r\n\r\n", VIDEO_SIZE - 1, VIDEO_SIZE))

---------------------------------------------------------------------------
-- download cases (see the head of this file)

local DL_SECONDS, DL_BYTES = 5, 100000
local DL_GOOD = media.mp4 { seconds = DL_SECONDS, bytes = DL_BYTES }

-- The file as a 200, or its Range as a 206 (416 past the end); HEAD: the head alone.
local function serve_file(c, req, data, ctype)
  local a, b = range_of(req)
  local head, body = { "Content-Type: " .. ctype, "Accept-Ranges: bytes" }, data
  local status = "200 OK"
  if a and a >= #data then
    return answer(c, "416 Range Not Satisfiable", { "Content-Range: bytes */" .. #data })
  elseif a then
    b = math_min(b or #data - 1, #data - 1)
    status, body = "206 Partial Content", data:sub(a + 1, b + 1)
    head[#head + 1] = str_format("Content-Range: bytes %d-%d/%d", a, b, #data)
  end
  if req.method == "HEAD" then
    head[#head + 1] = "Content-Length: " .. #body
    return send(c, "HTTP/1.1 " .. status .. "\r\n" .. tbl_concat(head, "\r\n") .. "\r\nConnection: close\r\n\r\n")
  end
  return answer(c, status, head, body)
end

local DL_BAD = {
  dl_html = function(c, req)
    local page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>"
      .. "<h1>Bad Gateway</h1><p>The proxy could not reach the origin.</p></body></html>\n"
    serve_file(c, req, page, "text/html; charset=utf-8")
  end,
  dl_short = function(c, req)
    serve_file(c, req, DL_GOOD:sub(1, math_floor(#DL_GOOD / 2)), "video/mp4")
  end,
  dl_range200 = function(c, req, n)
    if req.method == "HEAD" then return serve_file(c, req, DL_GOOD, "video/mp4") end
    if n == 1 then
      return send(c, "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: " .. #DL_GOOD
        .. "\r\nConnection: close\r\n\r\n" .. DL_GOOD:sub(1, math_floor(#DL_GOOD / 2)))
    end
    answer(c, "200 OK", { "Content-Type: video/mp4" }, DL_GOOD)
  end,
  dl_overrun = function(c, req)
    serve_file(c, req, media.mp4 { seconds = DL_SECONDS, bytes = DL_BYTES, box_overrun = true }, "video/mp4")
  end,
  dl_duration = function(c, req)
    serve_file(c, req, media.mp4 { seconds = 9, bytes = DL_BYTES }, "video/mp4")
  end,
  dl_open_end = function(c, req) -- (whole, but its last box, mdat, of size 0: "to the end of the file")
    local at = DL_GOOD:find("mdat", 1, true)
    serve_file(c, req, DL_GOOD:sub(1, at - 5) .. "\0\0\0\0" .. DL_GOOD:sub(at), "video/mp4")
  end,
}

-- One download case as a service: create, result, then the video, bad
-- always, or (once) for the first video GET of the tag only.
local function download_case(bad, once)
  return function(c, req)
    if req.method == "POST" then return answer(c, "200 OK", { JSON }, queued("task_dl")) end
    local id = req.rest:match("^/v1/result/([^/?]+)")
    if id then
      local _, port = c.sock:getsockname()
      return answer(c, "200 OK", { JSON }, str_format('{"id":"%s","status":"completed","actualDuration":%d,'
        .. '"video_url":"http://127.0.0.1:%s/s/%s/%s/v.mp4"}', id, DL_SECONDS, tostring(port), req.scenario, req.tag))
    end
    -- the video GET's number under the tag (a HEAD: the next GET's, counting none)
    local key = "/dl/" .. req.scenario .. "/" .. req.tag
    local n = req.method == "HEAD" and (hits[key] or 0) + 1 or hit({ path = key })
    if once and n > 1 then return serve_file(c, req, DL_GOOD, "video/mp4") end
    return bad(c, req, n)
  end
end

for name, bad in pairs(DL_BAD) do
  scenarios[name] = download_case(bad, false)
  if name ~= "dl_range200" then scenarios[name .. "_once"] = download_case(bad, true) end
end

-- A create answered with an error status whose body is the task the server made (issue 55, item 4): the first
-- POST under the tag gets the status with {"id": "task_err_<status>", "status": "queued"} (a 503 with
-- Retry-After: 0, which says "nothing made, send again"), any later POST a 200 with task "task_paid_twice";
-- result and video as the download cases' good service.
local ERR_HEADS = { ["429"] = "429 Too Many Requests", ["503"] = "503 Service Unavailable",
  ["500"] = "500 Internal Server Error" }
for code, status in pairs(ERR_HEADS) do
  local good = download_case(function(c, req) serve_file(c, req, DL_GOOD, "video/mp4") end, false)
  scenarios["err_task_" .. code] = function(c, req)
    if req.method ~= "POST" then return good(c, req) end
    if hit({ path = "/err_task/" .. req.scenario .. "/" .. req.tag }) > 1 then
      return answer(c, "200 OK", { JSON }, queued("task_paid_twice"))
    end
    local after = code == "503" and "Retry-After: 0" or code == "429" and "Retry-After: 2" or nil
    return answer(c, status, { JSON, after }, queued("task_err_" .. code))
  end
end

---------------------------------------------------------------------------
-- the scheduler

local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0)
local _, port = server:getsockname()
port = tonumber(port)
local deadline = gettime() + lifetime
local quitting = false

local function handle(sock)
  local c = { sock = sock, buf = "" }
  local req, err = read_request(c)
  if req then
    log_request(req)
    if req.path == "/quit" then
      quitting = true
      answer(c, "200 OK", nil, "bye\n")
    else
      local f = scenarios[req.scenario or ""]
      if f then
        f(c, req)
      else
        answer(c, "404 Not Found", { "Content-Type: text/plain" }, "no such scenario: " .. req.path .. "\n")
      end
    end
  elseif err ~= "closed" and err ~= "idle" then
    note("bad request: " .. tostring(err))
  end
  if not c.closed then sock:close() end
end

local threads = {} -- { co=, kind="r"|"w"|"t", arg=, idle_at= }

local function step(t, ...)
  local ok, kind, arg = co_resume(t.co, ...)
  if not ok then
    note("scenario error: " .. tostring(kind))
    if t.sock then t.sock:close() end
    return
  end
  if co_status(t.co) == "dead" then return end
  t.kind, t.arg = kind, arg
  t.idle_at = gettime() + 20
  threads[#threads + 1] = t
end

local ok_write = io.open(port_file .. ".tmp", "wb")
assert(ok_write, "cannot write " .. port_file)
ok_write:write(tostring(port), "\n")
ok_write:close()
assert(os.rename(port_file .. ".tmp", port_file))
io.stdout:write("hostile listening on ", tostring(port), "\n")
io.stdout:flush()

while not quitting do
  local now = gettime()
  if now >= deadline then
    note("lifetime over, exiting")
    break
  end
  local recvt, sendt, wake = { server }, {}, deadline
  for _, t in ipairs(threads) do
    if t.kind == "r" then
      recvt[#recvt + 1] = t.arg
      wake = math_min(wake, t.idle_at)
    elseif t.kind == "w" then
      sendt[#sendt + 1] = t.arg
      wake = math_min(wake, t.idle_at)
    else
      wake = math_min(wake, t.arg)
    end
  end
  local r, w = socket.select(recvt, sendt, math_max(0, math_min(wake - now, 1)))
  local readable, writable = {}, {}
  for _, s in ipairs(r or {}) do readable[s] = true end
  for _, s in ipairs(w or {}) do writable[s] = true end
  local old = threads
  threads = {}
  if readable[server] then
    while true do
      local sock = server:accept()
      if not sock then break end
      sock:settimeout(0)
      local t = { co = co_create(handle), sock = sock }
      step(t, sock)
    end
  end
  now = gettime()
  for _, t in ipairs(old) do
    if (t.kind == "r" and readable[t.arg]) or (t.kind == "w" and writable[t.arg])
      or (t.kind == "t" and now >= t.arg) then
      step(t)
    elseif t.kind ~= "t" and now >= t.idle_at then
      step(t, "idle")
    else
      threads[#threads + 1] = t
    end
  end
end

for _, t in ipairs(threads) do
  if t.sock then t.sock:close() end
end
server:close()
log:close()
os.exit(0)
