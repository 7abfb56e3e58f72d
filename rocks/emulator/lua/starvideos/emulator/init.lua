-- starvideos.emulator: a local stand-in for the video API, for demos and tests.
--
-- One coroutine per connection over socket.select with non-blocking sockets:
-- a slow download, a delayed answer or an idle keep-alive connection never
-- blocks the others. See emulator/args.lua (its help) for the command line and the control API.
-- Runs unchanged on Lua 5.1 to 5.4 and LuaJIT (the specs run it under each).
-- It alone needs LuaSocket (the library does not): loaded when a server starts
-- listening, and when it is missing, listen() says how to install it.

local cjson = require "cjson.safe"
-- s as one word of a POSIX shell line: bare when plain, else in single quotes, each ' as '\''.
local function shell_word(s)
  return s:find("^[%w%./_+,:@%-]+$") and s or "'" .. s:gsub("'", [['\'']]) .. "'"
end
local files = require "starvideos.emulator.files"
local ratelimit = require "starvideos.emulator.ratelimit"
local failures = require "starvideos.emulator.fail"

local error, ipairs, pairs, pcall, xpcall, next, select = error, ipairs, pairs, pcall, xpcall, next, select
local setmetatable, tonumber, tostring, type = setmetatable, tonumber, tostring, type
local co_create, co_resume, co_status, co_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.yield
local str_format, str_char = string.format, string.char
local tbl_concat, tbl_remove = table.concat, table.remove
local math_min, math_max, math_random, math_floor, math_tointeger =
  math.min, math.max, math.random, math.floor, math.tointeger -- luacheck: ignore 143 (5.3+; nil checked)
local os_time, os_date, os_getenv = os.time, os.date, os.getenv
local io_stderr, io_stdout = io.stderr, io.stdout
local traceback = debug.traceback
local unpack = table.unpack or unpack -- luacheck: ignore 113 143 (unpack: 5.1, LuaJIT)
local socket, gettime, sselect -- LuaSocket, set by load_socket()
local json_encode, json_decode, NULL = cjson.encode, cjson.decode, cjson.null

local M = { _VERSION = "0.1.0" }

M.NO_SOCKET = "LuaSocket is missing (the emulator needs it; the library does not): install it with "
  .. "`apt-get install lua-socket` (Debian, Ubuntu) or `luarocks install luasocket`"

-- Loads LuaSocket once. Returns true, or nil and M.NO_SOCKET with why require failed.
local function load_socket()
  if socket then return true end
  local ok, mod = pcall(require, "socket")
  if not ok or type(mod) ~= "table" or not mod.bind then
    local why = tostring(mod):match("^[^\n]*"):gsub(":$", "")
    return nil, M.NO_SOCKET .. " (require \"socket\": " .. why .. ")"
  end
  socket, gettime, sselect = mod, mod.gettime, mod.select
  return true
end

-- A connection's code yields (to wait for its socket) inside pcall and xpcall.
-- 5.2+ and LuaJIT allow that; 5.1 does not, nor does its xpcall pass
-- arguments.  There, the protected function runs in a coroutine of its own,
-- whose yields are passed on to the connection's and its resumes back.
local function yields_across_pcall()
  local co = co_create(function() return pcall(co_yield, "yielded") end)
  local _, v = co_resume(co)
  return v == "yielded"
end

local co_pcall, co_xpcall = pcall, xpcall
if not yields_across_pcall() then
  local function pack(...) return { n = select("#", ...), ... } end
  local function run(f, handler, ...)
    local co = co_create(f)
    local res = pack(co_resume(co, ...))
    while res[1] and co_status(co) ~= "dead" do
      res = pack(co_resume(co, co_yield(unpack(res, 2, res.n))))
    end
    if res[1] then return true, unpack(res, 2, res.n) end
    if handler == traceback then return false, traceback(co, res[2]) end -- the stack where it failed
    if handler then return false, handler(res[2]) end
    return false, res[2]
  end
  co_pcall = function(f, ...) return run(f, nil, ...) end
  co_xpcall = function(f, handler, ...) return run(f, handler, ...) end
end

local CHUNK = 64 * 1024            -- bytes per send and per receive
local MAX_BODY = 1024 * 1024       -- request bodies above this get 413
local MAX_HEAD = 64 * 1024         -- request line + headers above this get 431

-- Errors raised inside a connection's coroutine to end it quietly.
local CLOSED = setmetatable({}, { __tostring = function() return "connection closed by peer" end })
local DROPPED = setmetatable({}, { __tostring = function() return "connection dropped by a fault" end })

M.DEFAULTS = {
  queued = 1,               -- seconds a new task stays queued
  processing = 2,           -- then seconds it stays processing
  outcome = "completed",    -- or "failed"
  fail_rate = 0,            -- the share of the other tasks that fail anyway (drawn from seed)
  error = "Reference image resolution is too low.",
  video_size = nil,         -- bytes of each video, padded in mdat after its pictures (nil: files.VIDEO_BYTES)
  video_colours = "prompt", -- each video in its prompt's colours; "fixed": all in an empty prompt's (files.video's)
  expired_status = 410,     -- answer for an invalid or expired video token
  url_ttl = nil,            -- seconds a video URL stays valid (nil: until /_emulator/expire)
  ranges = true,            -- false: a video's GET answers 200 and the whole file, Range or not
  spread = 0,               -- sigma of a log-normal spread of each task's processing time
  seed = 1,                 -- of spread's and fail_rate's random numbers (the same seed, the same tasks)
  fetch_refs = false,       -- a create GETs its reference URLs first, as the service does (its specs' check)
  rate_limit = nil,         -- {count =, per =}: API requests allowed in each window (emulator/ratelimit.lua)
  rate_limit_headers = "ietf", -- the headers that tell it: ietf, ietf07, x, x-requests, none
  failures = nil,           -- rules: how creates fail as the service's do (emulator/fail.lua)
}

-- Which endpoint serves which model.
local ENDPOINTS = {
  ["/v1/starvideos/videos"] = { starvideos_o3 = true },
  ["/v1/videos/videos"] = { videos = true, videos_fast = true, videos_stable = true, videos_stable_fast = true },
}
local MODEL_ENDPOINT = {}
for path, models in pairs(ENDPOINTS) do
  for model in pairs(models) do MODEL_ENDPOINT[model] = path end
end

local REASONS = {
  [100] = "Continue", [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [206] = "Partial Content", [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required", [403] = "Forbidden",
  [404] = "Not Found", [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [410] = "Gone", [411] = "Length Required", [413] = "Payload Too Large",
  [416] = "Range Not Satisfiable", [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [431] = "Request Header Fields Too Large", [500] = "Internal Server Error",
  [502] = "Bad Gateway", [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

M.MAX_VIDEO_SIZE = files.MAX_BYTES -- bytes: --video-size above this is a typo, not a test


---------------------------------------------------------------------------
-- small helpers

local function log(fmt, ...)
  io_stderr:write(os_date("%H:%M:%S "), "emulator: ", str_format(fmt, ...), "\n")
end

local function is_array(t)
  return type(t) == "table" and (next(t) == nil or t[1] ~= nil)
end

local function is_object(t)
  if type(t) ~= "table" then return false end
  for k in pairs(t) do
    if type(k) ~= "string" then return false end
  end
  return true
end

-- lua-cjson encodes an empty table as {}; lists must stay lists.
local function encode_list(list)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = json_encode(v) end
  return "[" .. tbl_concat(parts, ",") .. "]"
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return str_char(tonumber(h, 16)) end))
end

local function escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return str_format("%%%02X", c:byte()) end))
end

local function parse_query(q)
  local t = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = unescape((k:gsub("%+", " ")))
    if t[k] == nil then t[k] = unescape((v:gsub("%+", " "))) end
  end
  return t
end

-- v as an integer when it is a number with an integral value, else nil.  On
-- 5.1 and LuaJIT, which have no integer subtype, the number itself.
local function int(v)
  if type(v) ~= "number" or v ~= math_floor(v) or v < -2 ^ 63 or v >= 2 ^ 63 then return nil end
  if math_tointeger then return math_tointeger(v) end
  return v
end

-- JSON numbers arrive as floats; integral ones become integers.
local function integral(v)
  return int(v) or v
end

---------------------------------------------------------------------------
-- responses

local function response(status, body, content_type)
  local res = { status = status, headers = {}, body = body or "" }
  if content_type then res.headers[1] = { "Content-Type", content_type } end
  return res
end

local function json_response(status, value)
  return response(status, json_encode(value), "application/json")
end

local function set_header(res, name, value)
  local lname = name:lower()
  for _, h in ipairs(res.headers) do
    if h[1]:lower() == lname then h[2] = value return end
  end
  res.headers[#res.headers + 1] = { name, value }
end

local SERVER_ID_HEADERS = { ["x-request-id"] = "X-Request-Id", ["request-id"] = "Request-Id", ["cf-ray"] = "CF-Ray" }

-- The answer's request ids, unless a fault set that header itself: the request's X-Request-Id echoed, and the
-- emulator's own id (emu-N, logged as the entry's server_request_id) in the header the config names.
local function request_ids(self, req, res, entry)
  local function absent(name)
    for _, h in ipairs(res.headers) do if h[1]:lower() == name then return false end end
    return true
  end
  local name = SERVER_ID_HEADERS[self.config.server_request_id or ""]
  if name and absent(name:lower()) then
    self.server_ids = (self.server_ids or 0) + 1
    entry.server_request_id = str_format("emu-%d", self.server_ids)
    set_header(res, name, entry.server_request_id)
  end
  local rid = req.headers["x-request-id"]
  if rid and absent("x-request-id") then set_header(res, "X-Request-Id", rid) end
end

local function api_error(status, message, param, kind)
  return json_response(status, { error = {
    message = message, param = param or NULL, type = kind or "invalid_request_error" } })
end

---------------------------------------------------------------------------
-- connection I/O (runs inside a connection's coroutine)

-- what: "r", "w" (on sock, else the connection's own) or "t" (until deadline alone)
local function wait(what, deadline, sock) return co_yield(what, deadline, sock) end

-- Read more bytes into conn.buf; raises CLOSED when the peer is gone.
local function fill(conn)
  while true do
    local data, err, partial = conn.sock:receive(CHUNK)
    data = data or partial
    if data and #data > 0 then
      conn.buf = conn.buf .. data
      return
    end
    if err ~= "timeout" then error(CLOSED, 0) end
    wait("r")
  end
end

local function send_raw(conn, data)
  local i, n = 1, #data
  while i <= n do
    local last, err, partial = conn.sock:send(data, i, math_min(n, i + CHUNK - 1))
    local was = i
    if last then
      i = last + 1
      if i <= n then wait("w") end  -- be fair to the other connections
    elseif err == "timeout" then
      i = partial + 1
      wait("w")
    else
      error(CLOSED, 0)
    end
    if conn.entry then conn.entry.sent = conn.entry.sent + i - was end -- (a body's bytes the socket took)
  end
end

-- Send body bytes, honouring a drop_after_bytes budget.
local function send_body(conn, data)
  local budget = conn.budget
  if budget then
    if #data > budget then
      if budget > 0 then send_raw(conn, data:sub(1, budget)) end
      conn.budget = 0
      error(DROPPED, 0)
    end
    conn.budget = budget - #data
  end
  send_raw(conn, data)
end

local function read_line(conn)
  while true do
    local e = conn.buf:find("\r\n", 1, true)
    if e then
      local line = conn.buf:sub(1, e - 1)
      conn.buf = conn.buf:sub(e + 2)
      return line
    end
    if #conn.buf > 8192 then return nil end
    fill(conn)
  end
end

local function read_exact(conn, n)
  while #conn.buf < n do fill(conn) end
  local data = conn.buf:sub(1, n)
  conn.buf = conn.buf:sub(n + 1)
  return data
end

local function read_chunked(conn)
  local parts, total = {}, 0
  while true do
    local line = read_line(conn)
    local size = line and tonumber(line:match("^(%x+)"), 16)
    if not size then return nil, 400, "bad chunk size" end
    if size == 0 then
      repeat
        line = read_line(conn)
        if not line then return nil, 400, "bad trailer" end
      until line == ""
      return tbl_concat(parts)
    end
    total = total + size
    if total > MAX_BODY then return nil, 413, "request body too large" end
    parts[#parts + 1] = read_exact(conn, size)
    if read_exact(conn, 2) ~= "\r\n" then return nil, 400, "bad chunk terminator" end
  end
end

-- A chunked body's bytes (a fetched answer's), or nil when it is not one.
local function dechunk(body)
  local parts, at = {}, 1
  while true do
    local size, after = body:match("^(%x+)[^\r\n]*\r\n()", at)
    size = size and tonumber(size, 16)
    if not size then return nil end
    if size == 0 then return tbl_concat(parts) end
    parts[#parts + 1] = body:sub(after, after + size - 1)
    at = after + size + 2
  end
end

local MAX_FETCH = 256 * 1024 * 1024 -- bytes of a reference the emulator fetches (fetch_refs)

-- A GET of url (http only: the emulator speaks no TLS) from inside a connection's coroutine, its socket waited on
-- as a connection's is, until deadline: status, body; or nil, why.
local function http_get(url, deadline)
  local host, port, target = url:match("^[Hh][Tt][Tt][Pp]://([^/:?#]+):?(%d*)([^#]*)")
  if not host then return nil, "not an http:// URL (the emulator fetches no other)" end
  if target:sub(1, 1) ~= "/" then target = "/" .. target end
  local sock = socket.tcp()
  sock:settimeout(0)
  local function fail(why) sock:close(); return nil, why end
  local ok, err = sock:connect(host, tonumber(port) or 80)
  if not ok and err ~= "timeout" then return fail("connect: " .. tostring(err)) end
  if not ok then wait("w", deadline, sock) end -- (writable: connected, or refused: the send says)
  local req, i = str_format("GET %s HTTP/1.1\r\nHost: %s%s\r\nConnection: close\r\nUser-Agent: starvideos-emulator"
    .. "\r\n\r\n", target, host, port ~= "" and ":" .. port or ""), 1
  while i <= #req do
    local last, serr, partial = sock:send(req, i)
    if serr and serr ~= "timeout" then return fail("send: " .. serr) end
    i = (last or partial) + 1
    if i <= #req then wait("w", deadline, sock) end
  end
  local parts, n = {}, 0
  while true do
    local data, rerr, partial = sock:receive(CHUNK)
    data = data or partial
    if data and #data > 0 then parts[#parts + 1], n = data, n + #data end
    if rerr == "closed" then break end
    if rerr and rerr ~= "timeout" then return fail("receive: " .. rerr) end
    if n > MAX_FETCH then return fail("more than " .. MAX_FETCH .. " bytes") end
    if gettime() >= deadline then return fail("no whole answer before the deadline") end
    if rerr then wait("r", deadline, sock) end
  end
  sock:close()
  local raw = tbl_concat(parts)
  local head, body = raw:match("^(.-)\r\n\r\n(.*)$")
  local status = head and tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "not an HTTP answer" end
  if head:lower():find("\r\ntransfer%-encoding:%s*chunked") then body = dechunk(body) end
  if not body then return nil, "a chunked body cut short" end
  return status, body
end

-- Read one request. Returns req, or nil, status, message for a malformed one.
-- Raises CLOSED when the peer closes.
local function read_request(conn)
  local head_end
  while true do
    conn.buf = conn.buf:gsub("^\r?\n", "")
    head_end = conn.buf:find("\r\n\r\n", 1, true)
    if head_end then break end
    if #conn.buf > MAX_HEAD then return nil, 431, "request headers too large" end
    fill(conn)
  end
  local head = conn.buf:sub(1, head_end + 1)
  conn.buf = conn.buf:sub(head_end + 4)

  local req = { headers = {} }
  local first = true
  for line in head:gmatch("(.-)\r\n") do
    if first then
      first = false
      local method, target, major, minor = line:match("^(%u+) (/%S*) HTTP/(%d)%.(%d)$")
      if not method then return nil, 400, "malformed request line" end
      req.method, req.target = method, target
      req.version = tonumber(major) * 10 + tonumber(minor)
      req.path, req.query = target:match("^([^?]*)%??(.*)$")
    else
      local name, value = line:match("^([%w!#$%%&'*+%-.^_`|~]+):[ \t]*(.-)[ \t]*$")
      if not name then return nil, 400, "malformed header line" end
      name = name:lower()
      local old = req.headers[name]
      req.headers[name] = old and (old .. ", " .. value) or value
    end
  end
  if req.version < 10 or req.version >= 20 then return nil, 400, "unsupported HTTP version" end

  local h = req.headers
  local conn_tokens = (h.connection or ""):lower()
  if req.version >= 11 then
    req.keep_alive = not conn_tokens:find("close", 1, true)
  else
    req.keep_alive = conn_tokens:find("keep-alive", 1, true) ~= nil
  end

  local te, cl = h["transfer-encoding"], h["content-length"]
  if te and cl then return nil, 400, "both Transfer-Encoding and Content-Length" end
  local expect = (h.expect or ""):lower() == "100-continue"
  if te then
    if te:lower() ~= "chunked" then return nil, 501, "unsupported transfer encoding" end
    if expect and conn.buf == "" then send_raw(conn, "HTTP/1.1 100 Continue\r\n\r\n") end
    local body, status, msg = read_chunked(conn)
    if not body then return nil, status, msg end
    req.body = body
  elseif cl then
    if not cl:match("^%d+$") then return nil, 400, "bad Content-Length" end
    local n = tonumber(cl)
    if n > MAX_BODY then return nil, 413, "request body too large" end
    if expect and n > #conn.buf then send_raw(conn, "HTTP/1.1 100 Continue\r\n\r\n") end
    req.body = read_exact(conn, n)
  else
    req.body = ""
  end
  return req
end

local function write_response(conn, req, res, keep, entry)
  local status = res.status
  local length = res.stream and res.length or #res.body
  local lines = {
    str_format("HTTP/1.1 %d %s", status, REASONS[status] or "Status"),
    "Date: " .. os_date("!%a, %d %b %Y %H:%M:%S GMT"),
    "Server: starvideos-emulator",
  }
  for _, h in ipairs(res.headers) do
    local lname = h[1]:lower()
    if lname ~= "content-length" and lname ~= "connection" then
      lines[#lines + 1] = h[1] .. ": " .. tostring(h[2])
    end
  end
  lines[#lines + 1] = "Content-Length: " .. str_format("%d", length)
  if not keep then
    lines[#lines + 1] = "Connection: close"
  elseif req and req.version < 11 then
    lines[#lines + 1] = "Connection: keep-alive"
  end
  lines[#lines + 1] = "\r\n"
  send_raw(conn, tbl_concat(lines, "\r\n"))
  if req and req.method == "HEAD" then return end
  conn.entry = entry -- (its `sent`: counted as the socket takes the body, until the client goes)
  if res.stream then
    res.stream(function(data) send_body(conn, data) end)
  elseif #res.body > 0 then
    send_body(conn, res.body)
  end
  conn.entry = nil
end

-- Half-close, then drain what the client still sends, so that it reads our
-- answer instead of a reset.
local function linger_close(conn)
  conn.sock:shutdown("send")
  local deadline, drained = gettime() + 1, 0
  while gettime() < deadline and drained < 16 * MAX_BODY do
    local data, err, partial = conn.sock:receive(CHUNK)
    data = data or partial
    drained = drained + #(data or "")
    if err and err ~= "timeout" then return end
    if err == "timeout" and #(data or "") == 0 then wait("r", deadline) end
  end
end

---------------------------------------------------------------------------
-- the server

local Server = {}
Server.__index = Server

function M.new(opts)
  opts = opts or {}
  local config = {}
  for k, v in pairs(M.DEFAULTS) do config[k] = v end
  -- what the command line chose, kept by /_emulator/reset
  local defaults = {}
  for _, k in ipairs { "queued", "processing", "video_size", "video_colours", "outcome", "fail_rate", "seed",
    "failures" } do
    if opts[k] ~= nil then config[k], defaults[k] = opts[k], opts[k] end
  end
  local key, key_from = opts.key, "option"
  if not key then
    key, key_from = os_getenv("STARVIDEOS_API_KEY"), "environment"
    if not key or key == "" then key, key_from = "emulator-key", "default" end
  end
  local self = setmetatable({
    host = opts.host or "127.0.0.1",
    port = opts.port or 0,
    key = key,
    key_from = key_from, -- "option", "environment" or "default": whether to print it
    max_lifetime = opts.max_lifetime,
    log = opts.log or log,
    defaults = defaults,
    config = config,
    conns = {},
    tasks = {}, task_list = {},
    seq = 0, id_base = os_time() * 1000, rng = config.seed,
    tokens = {},
    requests = {},
    faults = {},
    limited = {}, -- rate_limit's window (emulator/ratelimit.lua)
  }, Server)
  return self
end

function Server:listen()
  local have_socket, why = load_socket()
  if not have_socket then return nil, why end
  local sock, serr = socket.bind(self.host, self.port)
  if not sock then return nil, str_format("cannot listen on %s:%s: %s", self.host, self.port, serr) end
  sock:settimeout(0)
  self.sock = sock
  local _, port = sock:getsockname()
  self.port = tonumber(port)
  local host = self.host
  if host == "0.0.0.0" or host == "*" or host == "::" then host = "127.0.0.1" end
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  self.url = str_format("http://%s:%d", host, self.port)
  self.started = gettime()
  return self.url
end

-- The C core does the service's validation; loaded on first use.
function Server:core()
  if self.core_module then return self.core_module end
  local ok, core = pcall(require, "starvideos.core")
  if not ok then return nil, tostring(core) end
  local known = {}
  for k, v in pairs(core.fields or {}) do
    if type(k) == "number" then known[v] = true else known[k] = true end
  end
  known.extra = nil  -- not a wire field
  self.core_module, self.known_fields = core, known
  return core
end

---------------------------------------------------------------------------
-- tasks and video tokens

local function task_status(task)
  local elapsed = gettime() - task.t0
  if elapsed < task.queued then return "queued" end
  if elapsed < task.queued + task.processing then return "processing" end
  return task.outcome
end

function Server:issue_token(task)
  local token = str_format("%08x%08x%08x", math_random(0, 0x7fffffff),
    math_random(0, 0x7fffffff), math_random(0, 0x7fffffff))
  self.tokens[token] = { id = task.id, issued = gettime() }
  return token
end

function Server:task_view(task)
  local status = task_status(task)
  local view = {
    id = task.id, object = "video", created = task.created, model = task.model,
    status = status, video_url = NULL, error = NULL,
  }
  if status == "completed" then
    view.video_url = str_format("%s/videos/%s.mp4?token=%s", self.url, escape(task.id), self:issue_token(task))
    view.actualDuration = task.duration
  elseif status == "failed" then
    view.error = task.error
  end
  return view
end

-- A number in (0, 1) from the emulator's own generator (Park-Miller, exact in
-- doubles on every Lua), so a seed gives the same tasks on every VM.
function Server:uniform()
  self.rng = self.rng * 48271 % 2147483647
  return self.rng / 2147483647
end

-- A standard normal number from that generator.
function Server:normal()
  return math.sqrt(-2 * math.log(self:uniform())) * math.cos(2 * math.pi * self:uniform())
end

-- How a new task ends: the config's outcome, or failed for a fail_rate share
-- of the tasks that would complete (a draw each, none when fail_rate is 0).
function Server:outcome()
  local cfg = self.config
  if cfg.outcome == "completed" and (cfg.fail_rate or 0) > 0 and self:uniform() < cfg.fail_rate then
    return "failed"
  end
  return cfg.outcome
end

-- Seconds a new task stays processing: the configured time, spread log-normally
-- around it (the configured time is the median) when `spread` is set.
function Server:processing_time()
  local cfg = self.config
  if (cfg.spread or 0) == 0 then return cfg.processing end
  return cfg.processing * math.exp(cfg.spread * self:normal())
end

function Server:create(req)
  local params = json_decode(req.body)
  if type(params) ~= "table" or not is_object(params) or (next(params) == nil and req.body:match("^%s*%[")) then
    return json_response(400, { error = "request body must be a JSON object" })
  end
  local model = params.model
  local home = type(model) == "string" and MODEL_ENDPOINT[model]
  if home and home ~= req.path then
    return api_error(400, str_format("model %s is not served by %s; use %s", model, req.path, home), "model")
  end
  local core, cerr = self:core()
  if not core then
    self.log("cannot load starvideos.core (build it with make): %s", cerr)
    return api_error(500, "emulator: starvideos.core is not available", nil, "server_error")
  end
  -- Unknown wire fields go into extra, where the core lets them pass, as the
  -- service ignores them; a wire field named "extra" is ignored outright.
  local clean, extra = {}, nil
  for k, v in pairs(params) do
    if v ~= NULL and k ~= "extra" then
      if self.known_fields[k] then
        clean[k] = integral(v)
      else
        extra = extra or {}
        extra[k] = v
      end
    end
  end
  clean.extra = extra
  -- (URLs only: the service takes no local file); what it ignores (the core's warnings) it ignores here too
  local ok, verr = core.validate(clean, nil, true)
  for _, w in ipairs(ok and verr or {}) do clean[w.field] = nil end
  if not ok then
    local message = type(verr) == "table" and verr.message or tostring(verr)
    local field = type(verr) == "table" and verr.field or nil
    return api_error(400, message, field)
  end
  if not ENDPOINTS[req.path][model] then
    return api_error(400, str_format("model %s is not served by %s", tostring(model), req.path), "model")
  end

  local cfg = self.config
  local failed = failures.decide(cfg.failures, clean, function() return self:uniform() end) -- (the service's words)
  if failed and failed.at == "create" then return api_error(failed.status, failed.text, failed.field, failed.type) end
  local width, height = files.dimensions(clean.ratio or core.models[model].default_ratio, clean.resolution)
  local fetched, why = self:fetch_refs(clean)
  self.seq = self.seq + 1
  local task = {
    id = str_format("video_%s_%d", model, self.id_base + self.seq),
    model = model,
    created = os_time(),
    t0 = gettime(),
    queued = cfg.queued,
    processing = self:processing_time(),
    outcome = self:outcome(),
    error = cfg.error,
    duration = int(clean.duration) or 5,
    params = params,
    width = width, height = height,
    prompt = type(clean.prompt) == "string" and clean.prompt or nil, -- (its video's colours)
    fetched = fetched,
  }
  if failed then task.outcome, task.error = "failed", failed.text end
  if why then task.outcome, task.error = "failed", why end
  self.tasks[task.id] = task
  self.task_list[#self.task_list + 1] = task
  return json_response(200, {
    id = task.id, object = "video", created = task.created, model = model,
    status = "queued", error = NULL,
  })
end

-- With fetch_refs, each reference URL of a create (clean: its fields) fetched as the service would: what came
-- ({field, url, status, bytes, hash: core.hash of the body; error}) and why the task fails (one that was not 200).
function Server:fetch_refs(clean)
  if not self.config.fetch_refs then return nil end
  local list, why = {}, nil
  for _, name in ipairs(self.core_module.media_fields) do -- (the core's list, csrc/core/models.c; validated by it)
    local v = clean[name]
    for i, url in ipairs(type(v) == "table" and v or { v }) do
      local field = type(v) == "table" and str_format("%s[%d]", name, i) or name
      local status, body = http_get(url, gettime() + 30)
      list[#list + 1] = { field = field, url = url, status = status or 0, bytes = status and #body or NULL,
        hash = status and self.core_module.hash(body) or NULL, error = not status and body or NULL }
      if status ~= 200 and not why then
        why = str_format("Reference media could not be fetched: %s: %s", field, status and "HTTP " .. status or body)
      end
    end
  end
  return list, why
end

function Server:result(req)
  local raw = req.path:match("^/v1/result/([^/]+)$")
  local task = raw and self.tasks[unescape(raw)]
  if not task then return json_response(404, { error = "task not found" }) end
  return json_response(200, self:task_view(task))
end

-- A task's video: an MP4 of its duration and picture size in its prompt's colours (or, video_colours "fixed",
-- an empty one's), padded to video_size.
function Server:video(req)
  local raw = req.path:match("^/videos/([^/]+)%.mp4$")
  local id = raw and unescape(raw)
  local token = parse_query(req.query).token
  local entry = token and self.tokens[token]
  local ttl = self.config.url_ttl
  if not entry or entry.id ~= id or (ttl and gettime() - entry.issued > ttl) then
    return json_response(self.config.expired_status,
      { error = { message = "video URL is invalid or has expired", type = "url_expired" } })
  end
  local task = self.tasks[id]
  local prompt = self.config.video_colours == "prompt" and task.prompt or nil
  local parts, total = files.video_parts(task.duration, self.config.video_size, task.width, task.height, prompt)
  return files.answer(req, parts, total, "video/mp4", not self.config.ranges)
end

function Server:route(req)
  local method, path = req.method, req.path
  if path:sub(1, 4) == "/v1/" then
    local auth = req.headers.authorization
    local key = auth and auth:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(.-)%s*$")
    if key ~= self.key then
      local res = json_response(401, { error = { message = "invalid API key", type = "authentication_error" } })
      set_header(res, "WWW-Authenticate", "Bearer")
      return res
    end
    local over, said = ratelimit.take(self.limited, self.config, gettime(), NULL) -- (rate_limit's)
    if said then
      local res, allow
      if over then res = api_error(429, "rate limit reached", nil, "rate_limit_error")
      else res, allow = self:api(req) end
      for k, v in pairs(said) do set_header(res, k, v) end
      return res, allow
    end
    return self:api(req)
  elseif path:match("^/videos/") then
    if method ~= "GET" and method ~= "HEAD" then return response(405, nil), "GET, HEAD" end
    return self:video(req)
  elseif path:match("^/media/") then
    if method ~= "GET" and method ~= "HEAD" then return response(405, nil), "GET, HEAD" end
    return files.media(req, parse_query(req.query))
  end
  return json_response(404, { error = "not found" })
end

-- An authorised request of /v1/.
function Server:api(req)
  local method, path = req.method, req.path
  if ENDPOINTS[path] then
    if method ~= "POST" then return response(405, nil), "POST" end
    return self:create(req)
  elseif path:match("^/v1/result/") then
    if method ~= "GET" then return response(405, nil), "GET" end
    return self:result(req)
  end
  return json_response(404, { error = "not found" })
end

---------------------------------------------------------------------------
-- control API

-- Every field of the config and of a fault: its name, what it does (the
-- usage text's words) and its check, value -> ok, what was expected.
local CONFIG_FIELDS = {
  { "queued", "seconds (>= 0) a new task stays queued (--queued)",
    function(v) return type(v) == "number" and v >= 0, "a number of seconds >= 0" end },
  { "processing", "seconds (>= 0) it then stays processing (--processing)",
    function(v) return type(v) == "number" and v >= 0, "a number of seconds >= 0" end },
  { "outcome", '"completed" or "failed": how every new task ends (--outcome)',
    function(v) return v == "completed" or v == "failed", '"completed" or "failed"' end },
  { "fail_rate", "0 to 1: the share of the other new tasks that fail too (--fail-rate)",
    function(v) return type(v) == "number" and v >= 0 and v <= 1, "a number from 0 to 1" end },
  { "error", 'a failed task\'s error (default "Reference image resolution is too low.")',
    function(v) return type(v) == "string", "a string" end },
  { "video_size", "bytes of each video, its mdat padded after the pictures; null: 19239 (--video-size)",
    function(v) return v == NULL or (int(v) and v >= 0), "a number of bytes >= 0, or null" end },
  { "video_colours", '"prompt" (the default): each video in colours its task\'s prompt picks; "fixed": every '
    .. "video in the same ones, files.video's, that specs compare downloads with (--video-colours)",
    function(v) return v == "prompt" or v == "fixed", '"prompt" or "fixed"' end },
  { "expired_status", "403, 404 or 410: the answer to an invalid or expired video URL (default 410)",
    function(v) return v == 403 or v == 404 or v == 410, "403, 404 or 410" end },
  { "url_ttl", "seconds a video URL stays valid; null (the default): until /_emulator/expire",
    function(v) return v == NULL or (type(v) == "number" and v >= 0), "seconds >= 0, or null" end },
  { "ranges", "false: a video's GET answers 200 and the whole file to any Range (a host that ignores Range); "
    .. "true (the default): 206 and the bytes asked",
    function(v) return type(v) == "boolean", "true or false" end },
  { "spread", "0 to 3: sigma of a log-normal spread of processing times (processing: their median)",
    function(v) return type(v) == "number" and v >= 0 and v <= 3, "a number from 0 to 3" end },
  { "seed", "1 to 2^31-1: the generator of spread and fail_rate, restarted when set (--seed)",
    function(v) return int(v) and v >= 1 and v < 2 ^ 31, "an integer from 1 to 2^31-1" end },
  { "fetch_refs", "true: a create GETs each reference URL (http only) first; one not 200 fails the task",
    function(v) return type(v) == "boolean", "true or false" end },
  { "server_request_id", '"x-request-id", "request-id" or "cf-ray": the header that carries the emulator\'s own '
    .. "id (emu-N) on every answer; null (the default): none, X-Request-Id only echoes the request's",
    function(v) return v == NULL or SERVER_ID_HEADERS[v], '"x-request-id", "request-id", "cf-ray" or null' end },
  { "rate_limit", '{"count": N, "per": S}: at most N API requests in each S s window (from its first), then 429',
    function(v) return ratelimit.check_limit(v, NULL) end },
  { "rate_limit_headers", '"ietf" (default), "ietf07", "x", "x-requests" or "none": how rate_limit is told',
    ratelimit.check_family },
  { "failures", "a list of rules, the first that applies wins; each {kind, at, prompt, references, rate}:\n"
    .. '                     kind "policy" (content refused), "input" (a parameter or reference it cannot use) or\n'
    .. '                     "service" (its own failure); at "create" (an HTTP 400, 500 for service; no task) or\n'
    .. '                     "processing" (the default: the task ends failed); prompt: a Lua pattern of the prompt\n'
    .. "                     lower-cased, references: one of a reference's URL (it applies when either given\n"
    .. "                     matches; neither: to every create); rate 0 to 1 (default 1, drawn from seed). Its error\n"
    .. "                     names the prompt or the reference matched, in the service's kind of words; null (the\n"
    .. "                     default): none (--failures JSON)",
    function(v) return failures.check(v, NULL) end },
}

local FAULT_FIELDS = {
  { "method", "only requests of this method (any case)",
    function(v) return type(v) == "string", "a string" end },
  { "path", "only requests whose path and query start with this",
    function(v) return type(v) == "string", "a string" end },
  { "count", "how many requests it applies to, then it is gone (default 1)",
    function(v) return int(v) and v >= 1, "an integer >= 1" end },
  { "status", "answer with this HTTP status (100-599) and an emulator_fault error (unless body)",
    function(v) return int(v) and v >= 100 and v <= 599, "an HTTP status" end },
  { "body", "answer with this body (HTML when it starts with <, else JSON), status 200 unless given",
    function(v) return type(v) == "string", "a string" end },
  { "headers", 'headers to set on the answer, an object of strings: {"Retry-After": "2"}',
    function(v)
      if not is_object(v) then return false, "an object of strings" end
      for _, hv in pairs(v) do
        if type(hv) ~= "string" and type(hv) ~= "number" then return false, "an object of strings" end
      end
      return true
    end },
  { "retry_after", "whole seconds (>= 0) the answer's Retry-After header says (over headers')",
    function(v) return int(v) and v >= 0, "a whole number of seconds >= 0" end },
  { "delay", "seconds to wait before answering (before handling the request, unless after)",
    function(v) return type(v) == "number" and v >= 0, "seconds >= 0" end },
  { "drop", "true: close the connection without an answer",
    function(v) return type(v) == "boolean", "a boolean" end },
  { "drop_after_bytes", "send the answer's head and this many bytes of its body, then close",
    function(v) return int(v) and v >= 0, "an integer >= 0" end },
  { "after", "true: handle the request first (a create makes its task), then apply the fault",
    function(v) return type(v) == "boolean", "a boolean" end },
}

-- name -> check, and the usage text's lines of the rows
local function checks_of(rows)
  local checks = {}
  for _, row in ipairs(rows) do checks[row[1]] = row[3] end
  return checks
end
local CONFIG_CHECKS, FAULT_CHECKS = checks_of(CONFIG_FIELDS), checks_of(FAULT_FIELDS)

local function field_lines(rows)
  local lines = {}
  for i, row in ipairs(rows) do lines[i] = str_format("  %-18s %s", row[1], row[2]) end
  return tbl_concat(lines, "\n")
end

-- The help's tail: every field of the config and of a fault, from their rows (emulator/args.lua writes the rest).
M.FIELDS = "config fields (GET|POST /_emulator/config; a POST sets those it names, and a task keeps\n"
  .. "the queued, processing, outcome and error it was created with):\n" .. field_lines(CONFIG_FIELDS)
  .. "\n\nfault fields (POST /_emulator/faults: one object or a list; a fault answers the next count\n"
  .. "requests that match method and path, first added first; without status, body or drop the\n"
  .. "request is handled and delay, headers, retry_after and drop_after_bytes apply to its answer):\n"
  .. field_lines(FAULT_FIELDS) .. "\n"

-- The names a refusal lists: "count, method, ...".
local function names_of(checks)
  local names = {}
  for k in pairs(checks) do names[#names + 1] = k end
  table.sort(names)
  return tbl_concat(names, ", ")
end

local function check_fields(t, checks, what)
  if not is_object(t) then return nil, what .. " must be a JSON object" end
  for k, v in pairs(t) do
    local check = checks[k]
    if not check then return nil, str_format("unknown %s field %q (known: %s)", what, k, names_of(checks)) end
    local ok, expected = check(v)
    if not ok then return nil, str_format("%s field %q: expected %s", what, k, expected) end
  end
  return true
end

function Server:config_view()
  local view = {}
  for k in pairs(CONFIG_CHECKS) do
    local v = self.config[k]
    if v == nil then v = NULL end
    view[k] = v
  end
  return view
end

function Server:fault_list()
  local list = {}
  for i, f in ipairs(self.faults) do
    local copy = {}
    for k, v in pairs(f) do copy[k] = v end
    list[i] = copy
  end
  return encode_list(list)
end

function Server:reset()
  self.requests, self.faults, self.tokens, self.limited = {}, {}, {}, {}
  local config = {}
  for k, v in pairs(M.DEFAULTS) do config[k] = v end
  for k, v in pairs(self.defaults) do config[k] = v end
  self.config, self.rng = config, config.seed
end

local OK = '{"ok":true}'

function Server:control(req)
  local method, name = req.method, req.path:match("^/_emulator/([%w_]+)$")
  local function body_json()
    local v = json_decode(req.body)
    if v == nil then return nil, "request body is not valid JSON" end
    return v
  end
  if name == "requests" then
    if method == "GET" then return response(200, encode_list(self.requests), "application/json") end
    if method == "DELETE" then self.requests = {} return response(200, OK, "application/json") end
  elseif name == "config" then
    if method == "POST" then
      local t, err = body_json()
      if t then
        local valid, cerr = check_fields(t, CONFIG_CHECKS, "config")
        if not valid then err = cerr end
      end
      if err then return json_response(400, { error = err }) end
      for k, v in pairs(t) do
        if v == NULL then v = nil end
        self.config[k] = integral(v)
      end
      if t.seed then self.rng = t.seed end
      return json_response(200, self:config_view())
    end
    if method == "GET" then return json_response(200, self:config_view()) end
  elseif name == "faults" then
    if method == "POST" then
      local t, err = body_json()
      if not t then return json_response(400, { error = err }) end
      local list = (is_array(t) and next(t) ~= nil) and t or { t }
      for i, f in ipairs(list) do
        local _, ferr = check_fields(f, FAULT_CHECKS, "fault")
        if ferr then return json_response(400, { error = str_format("fault %d: %s", i, ferr) }) end
      end
      for _, f in ipairs(list) do
        for k, v in pairs(f) do f[k] = integral(v) end
        f.count = f.count or 1
        if f.method then f.method = f.method:upper() end
        if f.headers and next(f.headers) == nil then f.headers = nil end
        self.faults[#self.faults + 1] = f
      end
      return response(200, self:fault_list(), "application/json")
    end
    if method == "GET" then return response(200, self:fault_list(), "application/json") end
    if method == "DELETE" then self.faults = {} return response(200, OK, "application/json") end
  elseif name == "expire" then
    if method == "POST" then
      local n = 0
      for _ in pairs(self.tokens) do n = n + 1 end
      self.tokens = {}
      return json_response(200, { ok = true, expired = n })
    end
  elseif name == "end" then
    if method == "POST" then
      local t, err = body_json()
      if t and (type(t) ~= "table" or type(t.id) ~= "string") then err = 'expected {"id": "<a task\'s id>"}' end
      if err then return json_response(400, { error = err }) end
      local task = self.tasks[t.id]
      if not task then return json_response(404, { error = "no task " .. t.id }) end
      -- ends now: its time queued and processing cut to what it has run (a task ended already keeps its own)
      local ran = gettime() - task.t0
      task.queued = math_min(task.queued, ran)
      task.processing = math_min(task.processing, ran - task.queued)
      return json_response(200, self:task_view(task))
    end
  elseif name == "tasks" then
    if method == "GET" then
      local list = {}
      for i, task in ipairs(self.task_list) do
        local view = self:task_view(task)
        view.video_url = nil  -- listing issues no token
        view.queued, view.processing, view.outcome = task.queued, task.processing, task.outcome
        view.ends_at = task.t0 + task.queued + task.processing -- the emulator's clock (seconds since the epoch)
        view.params, view.fetched = task.params, task.fetched
        list[i] = view
      end
      return response(200, encode_list(list), "application/json")
    end
  elseif name == "reset" then
    if method == "POST" then self:reset() return response(200, OK, "application/json") end
  else
    return json_response(404, { error = "unknown control endpoint " .. req.path })
  end
  return json_response(405, { error = "method " .. method .. " not allowed on " .. req.path })
end

---------------------------------------------------------------------------
-- faults

function Server:take_fault(req)
  for i, f in ipairs(self.faults) do
    if (not f.method or f.method == req.method)
        and (not f.path or req.target:sub(1, #f.path) == f.path) then
      f.count = f.count - 1
      if f.count <= 0 then tbl_remove(self.faults, i) end
      return f
    end
  end
end

local function fault_response(f)
  local status = f.status or 200
  local body = f.body
  local res
  if body then
    res = response(status, body, body:match("^%s*<") and "text/html" or "application/json")
  else
    res = json_response(status, { error = {
      message = str_format("emulated fault: HTTP %d", status), type = "emulator_fault" } })
  end
  return res
end

---------------------------------------------------------------------------
-- one connection

function Server:handle(req)
  local ok, res, allow = co_xpcall(self.route, traceback, self, req)
  if not ok then
    self.log("error handling %s %s: %s", req.method, req.target, tostring(res))
    return api_error(500, "internal emulator error", nil, "server_error")
  end
  if res.status == 405 and allow then
    res = json_response(405, { error = "method not allowed" })
    set_header(res, "Allow", allow)
  end
  return res
end

function Server:serve(conn, req)
  local keep = req.keep_alive
  if req.path:sub(1, 11) == "/_emulator/" then
    local ok, res = co_xpcall(self.control, traceback, self, req)
    if not ok then
      self.log("error in control %s %s: %s", req.method, req.target, tostring(res))
      res = json_response(500, { error = "internal emulator error" })
    end
    write_response(conn, req, res, keep)
    return keep
  end

  -- `connection` numbers the TCP connection, so tests can see keep-alive reuse;
  -- `at`, the emulator's clock when it was read (seconds), how often requests came
  local entry = {
    method = req.method, path = req.target, headers = req.headers, body = req.body, connection = conn.id,
    at = gettime(), range = req.headers.range, authorization = req.headers.authorization ~= nil,
    request_id = req.headers["x-request-id"] }
  self.requests[#self.requests + 1] = entry
  local t0 = gettime()
  local f = self:take_fault(req)
  local res
  if f then
    entry.fault = true -- (the log names the request a fault answered)
    local replaces = f.status or f.drop or f.body
    if f.delay and not f.after then wait("t", gettime() + f.delay) end
    if f.after or not replaces then res = self:handle(req) end
    if f.delay and f.after then wait("t", gettime() + f.delay) end
    if f.drop then
      self.log("%s %s -> dropped (fault)", req.method, req.target)
      error(DROPPED, 0)
    end
    if f.status or f.body then res = fault_response(f) end
    if f.headers then
      for k, v in pairs(f.headers) do set_header(res, k, tostring(v)) end
    end
    if f.retry_after then set_header(res, "Retry-After", str_format("%d", f.retry_after)) end
    if f.drop_after_bytes then
      conn.budget = f.drop_after_bytes
      keep = false
    end
  else
    res = self:handle(req)
  end
  request_ids(self, req, res, entry)
  self.log("%s %s -> %d%s (%.1f ms)", req.method, req.target, res.status,
    f and " (fault)" or "", (gettime() - t0) * 1000)
  -- the answer's status and the bytes of its body (as sent unless a fault cuts it)
  entry.status, entry.bytes = res.status, req.method == "HEAD" and 0 or res.stream and res.length or #res.body
  entry.sent = 0
  write_response(conn, req, res, keep, entry)
  entry.answered = gettime() -- (its answer written whole: from at to answered, the request was the server's)
  if conn.budget then error(DROPPED, 0) end
  return keep
end

function Server:connection(conn)
  local ok, err = co_pcall(function()
    while true do
      local req, status, message = read_request(conn)
      if not req then
        self.log("malformed request: %s -> %d", message, status)
        write_response(conn, nil, json_response(status, { error = message }), false)
        linger_close(conn)
        return
      end
      if not self:serve(conn, req) then return end
    end
  end)
  if not ok and err ~= CLOSED and err ~= DROPPED then
    self.log("connection error: %s", tostring(err))
  end
  conn.sock:close()
end

---------------------------------------------------------------------------
-- the loop

function Server:resume(conn)
  local ok, what, deadline, sock = co_resume(conn.co)
  if not ok then
    self.log("connection crashed: %s", tostring(what))
    conn.sock:close()
  end
  if not ok or co_status(conn.co) == "dead" then
    self.conns[conn] = nil
    return
  end
  conn.wait, conn.deadline, conn.wait_sock = what, deadline, sock
end

function Server:accept()
  while true do
    local sock = self.sock:accept()
    if not sock then return end
    sock:settimeout(0)
    sock:setoption("tcp-nodelay", true)
    self.connections = (self.connections or 0) + 1
    local conn = { sock = sock, buf = "", id = self.connections }
    conn.co = co_create(function() self:connection(conn) end)
    self.conns[conn] = true
    self:resume(conn)
  end
end

-- Run the loop once, waiting at most `timeout` seconds for something to do.
function Server:step(timeout)
  local now = gettime()
  local wake = now + (timeout or 0)
  local recvt, sendt = { self.sock }, {}
  for conn in pairs(self.conns) do
    if conn.wait == "r" then recvt[#recvt + 1] = conn.wait_sock or conn.sock
    elseif conn.wait == "w" then sendt[#sendt + 1] = conn.wait_sock or conn.sock end
    if conn.deadline and conn.deadline < wake then wake = conn.deadline end
  end
  local readable, writable = sselect(recvt, sendt, math_max(0, wake - now))
  if readable[self.sock] then self:accept() end
  now = gettime()
  local ready = {}
  for conn in pairs(self.conns) do
    local w, s = conn.wait, conn.wait_sock or conn.sock
    if (w == "r" and readable[s]) or (w == "w" and writable[s])
        or (conn.deadline and conn.deadline <= now) then
      ready[#ready + 1] = conn
    end
  end
  for _, conn in ipairs(ready) do self:resume(conn) end
end

function Server:run()
  local deadline = self.max_lifetime and self.started + self.max_lifetime
  while not self.stopped do
    local timeout = 1
    if deadline then
      local left = deadline - gettime()
      if left <= 0 then
        self.log("max lifetime of %gs reached, exiting", self.max_lifetime)
        break
      end
      timeout = math_min(timeout, left)
    end
    local ok, err = co_xpcall(self.step, traceback, self, timeout)
    if not ok then self.log("error in the server loop: %s", tostring(err)) end
  end
  self:close()
end

function Server:stop() self.stopped = true end

function Server:close()
  for conn in pairs(self.conns) do conn.sock:close() end
  self.conns = {}
  if self.sock then self.sock:close() self.sock = nil end
end

---------------------------------------------------------------------------
-- command line

-- What the emulator prints on stdout once it accepts connections: first the
-- "listening on URL" line (the one tests and tools/demo.sh read), then the key
-- it accepts and the two lines a shell needs to use it.  A key taken from
-- $STARVIDEOS_API_KEY is not printed: it may be a real one.
function M.ready_text(url, key, key_from)
  local lines = { "starvideos emulator listening on " .. url }
  if key_from == "environment" then
    lines[#lines + 1] = "# it accepts the key found in its $STARVIDEOS_API_KEY (not printed: it may be a real"
      .. " one; --key KEY picks another); to use it from a shell with that key:"
    lines[#lines + 1] = "export STARVIDEOS_BASE_URL=" .. url
  else
    local default = key_from == "default" and " (the default; --key KEY picks one)" or ""
    lines[#lines + 1] = "# it accepts the key " .. shell_word(key) .. default .. "; to use it from another shell:"
    lines[#lines + 1] = "export STARVIDEOS_BASE_URL=" .. url
    lines[#lines + 1] = "export STARVIDEOS_API_KEY=" .. shell_word(key)
  end
  return tbl_concat(lines, "\n") .. "\n"
end

-- Entry point of `starvideos emulator` (invoked: the command as it was invoked, which its usage names). Returns the
-- exit code.
function M.main(args, invoked)
  local found, cli = pcall(require, "starvideos.emulator.args")
  if not found then
    io_stderr:write("starvideos emulator: its command line needs the argparse module (Debian: apt-get install ",
      "lua-argparse; LuaRocks: luarocks install argparse): ", tostring(cli):match("^[^\n]*"), "\n")
    return 2
  end
  local opts, err = cli.parse(args or {})
  if not opts then
    io_stderr:write("starvideos emulator: ", err, "\n")
    return 2
  end
  if opts.help then
    io_stdout:write(cli.help(invoked and invoked .. " emulator" or "starvideos emulator", M.FIELDS))
    return 0
  end
  local server = M.new(opts)
  -- the service's validation is the core's: without it every create would fail
  local core, cerr = server:core()
  if not core then
    io_stderr:write("starvideos emulator: the C core (starvideos.core) is not built: run make first (",
      cerr:match("^[^\n]*"), ")\n")
    return 2
  end
  local url, lerr = server:listen()
  if not url then
    io_stderr:write("starvideos emulator: ", lerr, "\n")
    return 1
  end
  io_stdout:write(M.ready_text(url, server.key, server.key_from))
  io_stdout:flush()
  server:run()
  return 0
end

return M
