-- The debug log (lua/starvideos/log.lua): the `log` option and $STARVIDEOS_LOG,
-- the lines of a whole generate against the emulator (a function, stderr of a
-- child process, the command line, nginx's error.log), and the one redaction,
-- which no line gets past: the API key, the webhook secret and the video URL's
-- token are looked for in every line.

local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"
local Log = require "starvideos.extras.log"

local q, str_format = helper.shell_quote, string.format

local KEY = "sk-log-spec-9d2b7e41"
local SECRET = "whsec_bG9nLXNwZWMtc2VjcmV0LWtleQ=="
local PARAMS = { model = "videos", prompt = "a cat in the log", duration = 4 }
local LUA_ENV = "LUA_PATH=" .. q(helper.lua_path(helper.root) .. ";;")
  .. " LUA_CPATH=" .. q(helper.cpath .. ";;")

local function count(list, pattern)
  local n = 0
  for _, l in ipairs(list) do if l:find(pattern) then n = n + 1 end end
  return n
end

local function lines_of(text, prefix)
  local list = {}
  for l in (text or ""):gmatch("[^\n]+") do
    local at = l:find(prefix, 1, true)
    if at then list[#list + 1] = l:sub(at) end
  end
  return list
end

-- No line holds any of the values (plain text), nor a raw control character.
local function clean(lines, values)
  for _, l in ipairs(lines) do
    for _, v in ipairs(values) do
      assert(not l:find(v, 1, true), str_format("a log line holds %q: %s", v, l))
    end
    assert(not l:find("[%c]"), "a log line holds a control character: " .. l)
  end
end

-- The tokens of the video URLs the emulator handed out (seen in its request log).
local function tokens(emu)
  local list = {}
  for _, r in ipairs(emu:requests()) do
    local t = r.path:match("^/videos/[^?]*%?token=([%w]+)")
    if t then list[#list + 1] = t end
  end
  return list
end

-- What the emulator received: creates, polls, video GETs.
local function received(emu)
  local c, p, v = 0, 0, 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.path:find("^/v1/videos/") then c = c + 1
    elseif r.method == "GET" and r.path:find("^/v1/result/") then p = p + 1
    elseif r.method == "GET" and r.path:find("^/videos/") then v = v + 1 end
  end
  return c, p, v
end

-- The lines of one whole generate at "debug" match what the emulator received:
-- one create and its answer, a poll line (and its answer) per poll, the
-- download, the status changes; none holds a secret.
local function whole_generate(lines, emu, task_id)
  local id = task_id:gsub("%p", "%%%0")
  local creates, polls, videos = received(emu)
  assert.equal(1, creates)
  assert.is_true(polls >= 1)
  assert.equal(1, videos)
  local all = table.concat(lines, "\n")
  -- an API request's line ends with its X-Request-Id, an answer's with the server's id too (the emulator's echo)
  local rid, sid = " %(request id ([%x-]+)%)$", " %(request id ([%x-]+), server id ([%x-]+)%)$"
  assert.equal(1, count(lines, "^starvideos: request #%d+ POST /v1/videos/videos attempt 1" .. rid), all)
  assert.equal(1, count(lines, "^starvideos: response #%d+ POST /v1/videos/videos 200 attempt 1 %d+ ms" .. sid))
  assert.equal(polls, count(lines, "^starvideos: request #%d+ GET /v1/result/" .. id .. " attempt %d+" .. rid))
  assert.equal(polls, count(lines, "^starvideos: response #%d+ GET /v1/result/" .. id .. " 200 attempt %d+ %d+ ms"
    .. sid))
  local sent = {}
  for _, r in ipairs(emu:requests()) do
    if r.path:find("^/v1/") then sent[r.headers["x-request-id"]] = true end
  end
  for _, l in ipairs(lines) do
    local a, b = l:match(sid)
    a = a or l:match(rid)
    if a then
      assert.is_true(sent[a], "an id the emulator never saw: " .. l)
      assert.is_true(b == nil or b == a, l)
    end
  end
  assert.equal(1, count(lines, "^starvideos: request #%d+ GET /videos/" .. id .. "%.mp4 attempt 1$"))
  assert.equal(1, count(lines, "^starvideos: response #%d+ GET /videos/" .. id .. "%.mp4 200 attempt 1 %d+ ms$"))
  assert.equal(1, count(lines, "^starvideos: status " .. id .. " queued$"))
  assert.equal(1, count(lines, "^starvideos: status " .. id .. " completed$"))
  assert.equal(0, count(lines, "progress"))
  local toks = tokens(emu)
  assert.equal(1, #toks)
  clean(lines, { KEY, SECRET, toks[1], "token=" })
end

describe("the log's redaction", function()
  local secrets = { KEY, SECRET }
  local cases = {
    -- text, what must be gone, what must stay
    { "GET http://127.0.0.1:1/videos/t1.mp4?token=abc123&x=1 done", { "abc123", "x=1" },
      "http://127.0.0.1:1/videos/t1.mp4?[redacted] done" },
    { "a/b?x=1/c?y=2", { "x=1", "y=2" }, "a/b?[redacted]" },
    { "clip.mp4?token=zz9. why? fine", { "zz9" }, "clip.mp4?[redacted] why? fine" },
    { "Authorization: Bearer " .. KEY .. ", next", { KEY, "sk-log" }, "Authorization: [redacted], next" },
    { "authorization=Basic dXNlcjpwYXNz", { "dXNlcjpwYXNz" }, "authorization=[redacted]" },
    { "the header was BEARER abc.def-ghi", { "abc.def-ghi" }, "BEARER [redacted]" },
    { "api_key=topsecret&model=videos", { "topsecret" }, "api_key=[redacted]&model=videos" },
    { '{"X-Api-Key": "k-123456"}', { "k-123456" }, "[redacted]" },
    { '{"secret":"whsec_c2VjcmV0\\/+=="}', { "c2VjcmV0" }, '{"secret":"whsec_[redacted]"}' },
    { "given " .. SECRET .. " and whsec_other+/=", { "bG9nLXNwZWMt", "other" }, "whsec_[redacted]" },
    { "redis://:p@ss@127.0.0.1:6379/0 and http://user:pw@proxy:3128", { "p@ss", "ss@", "user:pw" },
      "redis://[redacted]@127.0.0.1:6379/0 and http://[redacted]@proxy:3128" },
    { "a line\nwith a break\r\n and \27[31mcolour", { "\n", "\r", "\27" }, "a line\\010with a break" },
    { KEY .. KEY .. "%" .. KEY, { KEY }, "[redacted][redacted]%[redacted]" },
    { "pattern magic %d+.* stays", {}, "pattern magic %d+.* stays" },
  }
  for i, c in ipairs(cases) do
    it(str_format("case %d: %s", i, (c[1]:gsub("%c", "."))), function()
      local out = Log.redact(c[1], secrets)
      for _, gone in ipairs(c[2]) do assert.is_nil(out:find(gone, 1, true), out) end
      assert.is_truthy(out:find(c[3], 1, true), out)
    end)
  end

  it("treats a key full of pattern characters as plain text", function()
    local key = "%a.-*+?[]^$"
    assert.equal("x [redacted] y", Log.redact("x " .. key .. " y", { key }))
  end)

  it("hides a key shorter than 8 bytes (the README's k) where it stands whole, not each letter of a word", function()
    assert.equal("waiting for the key [redacted], Bearer [redacted], api_key=[redacted]&x=1 ([redacted]) k_1 xk",
      Log.redact("waiting for the key k, Bearer k, api_key=k&x=1 (k) k_1 xk", { "k" }))
    assert.equal("[redacted] in [redacted] and tests", Log.redact("test in test and tests", { "test", "" }))
    local line = Log.line({ type = "status", id = "video_k", status = "completed" }, "info", { "k" })
    assert.equal("starvideos: status video_k completed", line)
  end)

  it("hides a value percent-encoded too (a key in a URL)", function()
    local key = "ab/cd+ef=="
    assert.equal("http://h/x/[redacted]/y and [redacted]", Log.redact("http://h/x/ab%2Fcd%2Bef%3D%3D/y and " .. key,
      { key }))
  end)

  it("is the command line's hiding of its key too (starvideos.cli.output)", function()
    local output = require "starvideos.cli.output"
    local f = assert(io.tmpfile())
    output.set_secret(KEY)
    output.write(f, "key ", KEY, " twice ", KEY .. KEY, " %a")
    output.set_secret("abc") -- shorter than 8 bytes: hidden where it stands whole, not inside a word
    output.write(f, " abc abcdef")
    output.set_secret("whsec_second") -- a webhook secret beside the key: both stay hidden
    output.write(f, " ", KEY, " whsec_second")
    output.set_secret(nil)
    output.write(f, " " .. KEY)
    f:seek("set")
    local got = f:read("*a")
    f:close()
    assert.equal("key [redacted] twice [redacted][redacted] %a [redacted] abcdef [redacted] [redacted] " .. KEY, got)
  end)

  it("cuts a long line after redacting it, so no cut leaves part of a secret", function()
    local max = require("starvideos.config").DEFAULTS.log_line
    local out = Log.redact(("x"):rep(max - 5) .. KEY, { KEY })
    assert.equal(max, #out)
    assert.is_nil(out:find("sk-", 1, true))
  end)

  it("redacts every field of an event it does not know and skips tables", function()
    local got = {}
    local logger = Log.logger(function(l) got[#got + 1] = l end, { KEY, SECRET })
    logger { type = "unheard", id = "t1", url = "https://u:p@hooks.example/in?sig=" .. KEY, status = 200,
      attempt = 2, note = "secret " .. SECRET, task = { video_url = "http://x/v.mp4?token=t" } }
    logger { type = "progress", bytes = 1, total = 2 }
    assert.same({ "starvideos: unheard attempt=2 id=t1 note=secret [redacted] status=200 "
      .. "url=https://[redacted]@hooks.example/in?[redacted]" }, got)
  end)

  it("writes a delivery as the POST to the webhook's host and path, and how it ended", function()
    assert.equal("starvideos: delivery POST https://hooks.example:8443/in owed status 503 task t1 webhook "
      .. "msg_1: notify: HTTP 503", Log.line({ type = "delivery", id = "t1", webhook_id = "msg_1", outcome = "owed",
      url = "https://hooks.example:8443/in", status = 503, reason = "notify: HTTP 503" }, "info"))
    assert.equal("starvideos: delivery POST http://127.0.0.1:9/hook delivered status 204 task t2 webhook msg_2",
      Log.line({ type = "delivery", id = "t2", webhook_id = "msg_2", outcome = "delivered",
      url = "http://127.0.0.1:9/hook", status = 204 }, "info"))
  end)

  it("writes a store's reset as an error, at info too", function()
    assert.equal("starvideos: error: store redis://127.0.0.1:1/0 lost its data", Log.line({ type = "store_reset",
      where = "redis://127.0.0.1:1/0", tasks = 2, creates = 0, message = "store redis://127.0.0.1:1/0 lost its data" },
      "info"))
  end)

  it("writes a journal record that could not be written as an error, at info too", function()
    assert.equal("starvideos: error: journal /j/t.jsonl: a record was not written: No space left on device",
      Log.line({ type = "journal_error", path = "/j/t.jsonl",
        message = "a record was not written: No space left on device" }, "info"))
  end)

  it("writes a task a keeper took: the task, the keeper, what happens next", function()
    assert.equal("starvideos: taken t1 by keeper k9: this process's lease lapsed; the keeper saves its video",
      Log.line({ type = "taken", id = "t1", by = "k9" }, "info"))
  end)

  it("writes a failed task at info: why (its reason, the input its words named) and the service's words", function()
    assert.equal("starvideos: failed t1: policy (prompt): task t1 failed: The prompt was flagged",
      Log.line({ type = "failed", id = "t1", reason = "policy", input = "prompt",
        message = "task t1 failed: The prompt was flagged" }, "info"))
    assert.equal("starvideos: failed t2: unknown: task t2 failed: odd", Log.line({ type = "failed", id = "t2",
      reason = "unknown", message = "task t2 failed: odd" }, "info"))
  end)

  it("writes a late task at info: how long it has run and its kind's 99th percentile", function()
    local late = { type = "late", id = "t1", elapsed = 131.6, p99 = 126.2, eta = { p50 = 0, p90 = 0 } }
    assert.equal("starvideos: late t1: running 132 s, longer than 99% of its kind (126 s)", Log.line(late, "info"))
    assert.equal(Log.line(late, "info"), Log.line(late, "debug"))
  end)

  it("stamps a time as RFC 3339 UTC with milliseconds", function()
    assert.equal("1970-01-01T00:00:00.000Z", Log.stamp(0))
    assert.equal("2026-11-24T10:03:07.123Z", Log.stamp(1795514587.1234))
    assert.equal("2026-11-24T10:03:07.999Z", Log.stamp(1795514587.9999)) -- cut, never rounded up to 08.000
  end)
end)

describe("the log option", function()
  it("takes a function, \"debug\" or \"info\", and raises naming log for anything else", function()
    for _, good in ipairs { "debug", "info", print } do
      starvideos.new({ api_key = KEY, base_url = "http://127.0.0.1:1", log = good }):close()
    end
    for _, bad in ipairs { "verbose", "DEBUG", 1, true, {} } do
      local ok, err = pcall(starvideos.new, { api_key = KEY, base_url = "http://127.0.0.1:1", log = bad })
      assert.is_false(ok)
      assert.matches("bad option 'log' to 'new' (log: a function(line), \"debug\" or \"info\" expected", tostring(err),
        1, true)
    end
  end)

  it("refuses a bad STARVIDEOS_LOG naming it (in a child process)", function()
    local out, ok = helper.capture(str_format("STARVIDEOS_LOG=loud %s %s -e %s 2>&1", LUA_ENV, q(helper.lua),
      q("require('starvideos').new{ api_key = 'k', base_url = 'http://127.0.0.1:1' }")))
    assert.is_nil(ok)
    assert.matches('bad STARVIDEOS_LOG ("debug" or "info" expected, got "loud")', out, 1, true)
  end)
end)

describe("the log of a whole generate", function()
  local emu, dir
  shared_emulator({ key = KEY, queued = 0.3, processing = 0.3 }, function(e)
    emu, dir = e, helper.tmpdir()
  end)

  local function generate(opts, out)
    local o = { api_key = KEY, base_url = emu.url, interval = 0.2, min_interval = 0.1, retry_backoff = 0.05 }
    for k, v in pairs(opts) do o[k] = v end
    local c = starvideos.new(o)
    local task, err = c:generate(PARAMS, { out = dir .. "/" .. out, interval = 0.2, timeout = 60 })
    c:close()
    assert.is_truthy(task, tostring(err))
    return task, c
  end

  it("at debug, to a function: every request, response and status change, and no secret", function()
    local lines, events = {}, 0
    local task = generate({ log = function(l) lines[#lines + 1] = l end,
      on_event = function() events = events + 1 end }, "fn.mp4")
    whole_generate(lines, emu, task.id)
    assert.is_true(events >= #lines) -- the user's on_event still hears every event
  end)

  it("at info: status changes, retries and warnings, not the requests; progress at no level", function()
    local lines = {}
    for _, ev in ipairs {
      { type = "request", request = 1, method = "GET", path = "/v1/result/t1", attempt = 1 },
      { type = "response", request = 1, method = "GET", path = "/", status = 200, attempt = 1, elapsed = 0 },
      { type = "status", id = "t1", status = "completed" },
      { type = "retry", request = 1, method = "GET", path = "/", attempt = 1, status = 503, delay = 0.5, reason = "r" },
      { type = "warning", message = "the store is down" },
      { type = "progress", bytes = 10, total = 20 },
    } do
      lines[#lines + 1] = Log.line(ev, "info") or ("(none for " .. ev.type .. ")")
      lines[#lines + 1] = Log.line(ev, "debug") or ("(none for " .. ev.type .. ")")
    end
    assert.same({ "(none for request)", "starvideos: request #1 GET /v1/result/t1 attempt 1",
      "(none for response)", "starvideos: response #1 GET / 200 attempt 1 0 ms",
      "starvideos: status t1 completed", "starvideos: status t1 completed",
      "starvideos: retry #1 GET / attempt 1 status 503 in 0.50 s: r",
      "starvideos: retry #1 GET / attempt 1 status 503 in 0.50 s: r",
      "starvideos: warning: the store is down", "starvideos: warning: the store is down",
      "(none for progress)", "(none for progress)" }, lines)
  end)

  it("keeps the log when on_event is set after new", function()
    local lines, seen = {}, {}
    local c = starvideos.new { api_key = KEY, base_url = emu.url, log = function(l) lines[#lines + 1] = l end }
    c.on_event = function(ev) seen[#seen + 1] = ev.type end
    local task = assert(c:create(PARAMS))
    c:close()
    assert.same({ "request", "response", "created", "status" }, seen)
    assert.same({ "starvideos: request #", "starvideos: response #", "starvideos: created " .. task.id .. " queued",
      "starvideos: status " .. task.id .. " queued" },
      { lines[1]:match("^starvideos: request #"), lines[2]:match("^starvideos: response #"), lines[3], lines[4] })
  end)

  it("writes a retry line when the service answers 503 once", function()
    emu:fault { method = "GET", path = "/v1/result/", status = 503, count = 1 }
    local lines = {}
    local task = generate({ log = function(l) lines[#lines + 1] = l end }, "retry.mp4")
    local retries = {}
    for _, l in ipairs(lines) do if l:find("^starvideos: retry ") then retries[#retries + 1] = l end end
    assert.equal(1, #retries, table.concat(lines, "\n"))
    assert.matches("^starvideos: retry #%d+ GET /v1/result/" .. task.id .. " attempt 1 status 503 in %d+%.%d+ s: ",
      retries[1])
    clean(lines, { KEY, "token=" })
  end)

  -- A generate in a child lua process with STARVIDEOS_LOG: its stderr.
  local function child(level, out)
    helper.write_file(dir .. "/child.lua", str_format([[
      local starvideos = require "starvideos"
      local c = starvideos.new { api_key = %q, base_url = %q, interval = 0.2, min_interval = 0.1 }
      local task = assert(c:generate(%s, { out = %q, interval = 0.2, timeout = 60 }))
      io.write(task.id)
    ]], KEY, emu.url, "{ model = 'videos', prompt = 'a cat', duration = 4 }", dir .. "/" .. out))
    local id, ok = helper.capture(str_format("STARVIDEOS_LOG=%s %s %s %s 2>%s", level, LUA_ENV, q(helper.lua),
      q(dir .. "/child.lua"), q(dir .. "/child.err")))
    local err = helper.read_file(dir .. "/child.err") or ""
    assert.is_true(ok, err)
    return id, err
  end

  it("STARVIDEOS_LOG=debug writes the lines to stderr, one each, each opening with the UTC time in ms", function()
    local core = require "starvideos.core"
    local before = Log.stamp(core.wall())
    local id, err = child("debug", "env.mp4")
    local after = Log.stamp(core.wall())
    local lines = lines_of(err, "starvideos: ")
    assert.equal(#lines, select(2, err:gsub("\n", "\n")), err) -- nothing else, and a newline after each
    whole_generate(lines, emu, id)
    for l in err:gmatch("[^\n]+") do
      local stamp = l:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ) starvideos: ")
      assert(stamp, "a line without its time stamp: " .. l)
      assert(stamp >= before and stamp <= after, stamp .. " is not between " .. before .. " and " .. after)
    end
  end)

  it("STARVIDEOS_LOG=info (any case) writes the status changes, not the requests", function()
    local id, err = child("INFO", "env-info.mp4")
    local lines = lines_of(err, "starvideos: ")
    assert.equal(0, count(lines, "^starvideos: request "))
    assert.equal(0, count(lines, "^starvideos: response "))
    assert.equal(1, count(lines, "^starvideos: status " .. id .. " completed$"))
    clean(lines, { KEY, "token=" })
  end)

  it("the command line with STARVIDEOS_LOG=debug logs the same to stderr", function()
    local out = dir .. "/cli.mp4"
    local stdout, ok = helper.capture(str_format("env STARVIDEOS_API_KEY=%s STARVIDEOS_BASE_URL=%s "
      .. "STARVIDEOS_LOG=debug %s %s %s generate --model videos --prompt %s --duration 4 --out %s --interval 0.2 "
      .. "--json 2>%s", q(KEY), q(emu.url), LUA_ENV, q(helper.lua), q(helper.root .. "/bin/starvideos"), q("a cat"),
      q(out), q(dir .. "/cli.err")))
    local err = helper.read_file(dir .. "/cli.err") or ""
    assert.is_true(ok, stdout .. err)
    local id = assert(stdout:match('"id"%s*:%s*"([^"]+)"'), stdout)
    whole_generate(lines_of(err, "starvideos: "), emu, id)
  end)
end)

describe("the log inside nginx", function()
  local why = nginx_run.missing()
  local emu, dir, srv

  setup(function()
    if why then return end
    emu = helper.emulator { key = KEY, queued = 0.3, processing = 0.3 }
    dir = helper.tmpdir()
    local conf = nginx_run.conf_head(dir, 1)
    for i, l in ipairs(conf) do -- the level docs/logs-and-proxies.md gives: notice
      if l:find("^error_log ") then conf[i] = str_format("error_log %s/error.log notice;", dir) end
    end
    for _, l in ipairs {
      "    server {", "        listen 127.0.0.1:%d;", "        location = /run { content_by_lua_block {",
      "          local starvideos = require 'starvideos'",
      str_format("          local c = starvideos.new { api_key = %q, base_url = %q, log = 'debug', interval = 0.2,",
        KEY, emu.url),
      "            min_interval = 0.1 }",
      str_format("          local task, err = c:generate({ model = 'videos', prompt = 'a cat', duration = 4 }, "
        .. "{ out = %q, interval = 0.2, timeout = 60 })", dir .. "/ngx.mp4"),
      "          c:close()", "          ngx.say(task and task.id or tostring(err))", "        } }", "    }", "}", "",
    } do conf[#conf + 1] = l end
    local text = table.concat(conf, "\n")
    srv = nginx_run.serve(dir, function(port) return (text:gsub("listen 127%.0%.0%.1:%%d;", "listen 127.0.0.1:" .. port
      .. ";")) end)
  end)

  teardown(function()
    if srv then srv.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("writes the lines to error.log at notice, without secrets", function()
    if why then pending(why) end
    local http = require "socket.http"
    local body, code = http.request(str_format("http://127.0.0.1:%d/run", srv.port))
    assert.equal(200, code, tostring(body) .. (helper.read_file(dir .. "/error.log") or ""):sub(-3000))
    local id = assert(body:match("^(%S+)\n$"), body)
    assert.is_truthy(helper.file_size(dir .. "/ngx.mp4") > 0, body)
    local log = helper.read_file(dir .. "/error.log") or ""
    local lines = lines_of(log, "starvideos: ")
    for _, l in ipairs(lines) do
      -- ngx.log's own tail: ", client: ..., server: ..., request: ..."
      lines[_] = l:gsub(", client: .*$", "")
    end
    assert.is_truthy(log:find("[notice]", 1, true), log)
    whole_generate(lines, emu, id)
  end)
end)
