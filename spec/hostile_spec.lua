-- The client against hostile HTTP servers (spec/support/hostile.lua): no paid
-- task is lost, every failure ends in the right error kind, and each call
-- stays within its time, memory and file descriptors.

local cjson = require "cjson.safe"
local socket = require "socket"
local http = require "socket.http"
local helper = require "spec.helper"
local starvideos = require "starvideos"

local gettime = socket.gettime

local KEY = "k-secret"
local VIDEO_SIZE = 200003 -- what hostile.lua serves

-- The video bytes hostile.lua serves: 16-byte blocks naming their position.
local function video_bytes(n)
  local blocks = {}
  for i = 0, math.floor(n / 16) do blocks[#blocks + 1] = string.format("%08d|video|\n", i) end
  return table.concat(blocks):sub(1, n)
end
local VIDEO = video_bytes(VIDEO_SIZE)

local function cat()
  return { model = "videos", prompt = "a cat", duration = 5 }
end

local read_file = helper.read_file

local exists = helper.exists

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- A shell command succeeded (os.execute answers differently on 5.1).
local function sh(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

-- this process, its open descriptors and its memory
local PID = (read_file("/proc/self/stat") or ""):match("^(%d+)")

-- Listed by a child through os.execute into a file, not through io.popen: a
-- popen's own pipe ends would race into the count.
local FD_LIST = os.tmpname()
local function fd_count()
  assert(sh("ls /proc/" .. PID .. "/fd > " .. shell_quote(FD_LIST)), "cannot list /proc/" .. PID .. "/fd")
  local n = 0
  for _ in (read_file(FD_LIST) or ""):gmatch("[^\n]+") do n = n + 1 end
  return n
end

-- (read whole and closed at once: a return from inside io.lines would leave the
-- file open until a collection, which LuaJIT's compiled code may put off)
local function status_kb(field)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("*a")
  f:close()
  local v = text:match("\n" .. field .. ":%s*(%d+)")
  return v and tonumber(v)
end

-- Reset the peak RSS (VmHWM), so that the growth measured is the peak of the
-- call, not only what is left after it.
local function reset_peak()
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  f:close()
  return ok ~= nil
end

-- A readable account of an outcome, for assertion messages.
local function show(o)
  local e = o.err
  local es = "nil"
  if type(e) == "table" then
    es = string.format("{kind=%s, id=%s, created=%s, maybe_created=%s, status=%s, message=%q}",
      tostring(e.kind), tostring(e.id), tostring(e.created), tostring(e.maybe_created),
      tostring(e.status), tostring(e.message))
  elseif e ~= nil then
    es = tostring(e)
  end
  local rs = tostring(o.res)
  if type(o.res) == "table" then rs = "task " .. tostring(o.res.id) .. " " .. tostring(o.res.status) end
  return string.format("result=%s err=%s elapsed=%.2fs memory=%+.1fMB fds=%s->%s", rs, es, o.elapsed or -1,
    (o.mem_kb or 0) / 1024, tostring(o.fds_before), tostring(o.fds_after))
end

local journal_n = 0

-- Run call(client) on a fresh client over base_url with opts; the client is
-- dropped and collected afterwards. Returns { res, err, elapsed, fds_before,
-- fds_after, mem_kb (peak growth), journal }.
local function run(base_url, opts, call, dir)
  local o = {}
  local copts = { base_url = base_url, api_key = KEY, timeout = 2, connect_timeout = 1,
    max_retries = 0, retry_backoff = 0.01 }
  for k, v in pairs(opts or {}) do copts[k] = v end
  if copts.journal == true then
    journal_n = journal_n + 1
    copts.journal = dir .. "/journal-" .. journal_n .. ".jsonl"
  end
  o.journal, o.timeout = copts.journal, copts.timeout
  collectgarbage()
  collectgarbage()
  o.fds_before = fd_count()
  local rss = status_kb("VmRSS")
  local peak = reset_peak()
  local function attempt()
    local client = starvideos.new(copts)
    local t0 = gettime()
    local res, err = call(client)
    o.elapsed = gettime() - t0
    return res, err
  end
  o.res, o.err = attempt()
  o.mem_kb = (peak and status_kb("VmHWM") or status_kb("VmRSS")) - rss
  collectgarbage()
  collectgarbage()
  o.fds_after = fd_count()
  -- STARVIDEOS_HOSTILE_VERBOSE=1: every outcome on stderr, passing or not
  if os.getenv("STARVIDEOS_HOSTILE_VERBOSE") then io.stderr:write("  outcome: ", show(o), "\n") end
  return o
end

-- The common bounds: back within the client's timeout + 2 s (or `limit`), and
-- no descriptor left open.
local function assert_bounded(o, limit)
  limit = limit or o.timeout + 2
  assert(o.elapsed < limit, string.format("took %.2f s, more than %.1f s: %s", o.elapsed, limit, show(o)))
  assert(o.fds_after <= o.fds_before, string.format("%d file descriptors open after the call, %d before",
    o.fds_after, o.fds_before))
end

local function assert_memory(o)
  assert(o.mem_kb < 20 * 1024, string.format("memory grew by %.1f MB: %s", o.mem_kb / 1024, show(o)))
end

local function assert_kind(o, ...)
  assert(o.res == nil, "expected a failure: " .. show(o))
  assert(type(o.err) == "table", "expected an error table: " .. show(o))
  local kinds = { ... }
  for _, k in ipairs(kinds) do
    if o.err.kind == k then return end
  end
  assert(false, "expected kind " .. table.concat(kinds, " or ") .. ": " .. show(o))
end

-- The journal of o holds a line for task id.
local function assert_journalled(o, id)
  local text = read_file(o.journal) or ""
  for line in text:gmatch("[^\n]+") do
    local rec = cjson.decode(line)
    if type(rec) == "table" and rec.id == id then return end
  end
  assert(false, string.format("the journal has no line for %s; it holds: %q", id, text))
end

local function count(list, method)
  local n = 0
  for _, r in ipairs(list) do
    if r.method == method then n = n + 1 end
  end
  return n
end

local function create(client) return client:create(cat()) end
local function query(client) return client:query("task_q") end

-- The port of a socket just closed: nothing listens there.
local function dead_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

describe("a client facing hostile HTTP servers", function()
  local hs, hs2, dir

  setup(function()
    hs = helper.hostile()
    hs2 = helper.hostile()
    dir = helper.tmpdir()
  end)

  teardown(function()
    if hs then hs:stop() end
    if hs2 then hs2:stop() end
    helper.cleanup()
    os.remove(FD_LIST)
  end)

  describe("the hostile server itself", function()
    it("answers another connection while one scenario dribbles", function()
      local slow = assert(socket.tcp())
      assert(slow:connect("127.0.0.1", hs.port))
      assert(slow:send("GET " .. hs:url("dribble"):gsub("^http://[^/]+", "") .. "/x HTTP/1.1\r\nHost: x\r\n\r\n"))
      local t0 = gettime()
      local fast = assert(socket.tcp())
      fast:settimeout(2)
      assert(fast:connect("127.0.0.1", hs.port))
      assert(fast:send("POST " .. hs:url("ok"):gsub("^http://[^/]+", "")
        .. "/v1/videos/videos HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
      local text = fast:receive("*a")
      fast:close()
      slow:close()
      assert.truthy(text and text:find('"id":"task_ok"', 1, true), tostring(text))
      assert.is_true(gettime() - t0 < 1)
    end)

    it("logs what reached it, headers included", function()
      local base = hs:url("ok")
      local o = run(base, {}, create, dir)
      assert.is_table(o.res, show(o))
      local reqs = hs:requests(base)
      assert.equal(1, #reqs)
      assert.equal("POST", reqs[1].method)
      assert.equal(base:gsub("^http://[^/]+", "") .. "/v1/videos/videos", reqs[1].path)
      assert.equal("Bearer " .. KEY, reqs[1].headers.authorization)
    end)
  end)

  describe("create and query", function()
    it("a well-behaved server: create gives the task and query the completed task", function()
      local base = hs:url("ok")
      local o = run(base, { journal = true }, create, dir)
      assert.is_table(o.res, show(o))
      assert.equal("task_ok", o.res.id)
      assert_journalled(o, "task_ok")
      assert_bounded(o)
      o = run(base, {}, query, dir)
      assert.is_table(o.res, show(o))
      assert.equal("completed", o.res.status)
      assert_bounded(o)
    end)

    it("a refused connection fails create with kind network, nothing created", function()
      local o = run("http://127.0.0.1:" .. dead_port(), { max_retries = 1 }, create, dir)
      assert_kind(o, "network")
      assert.falsy(o.err.maybe_created, show(o))
      assert_bounded(o)
    end)

    it("a refused connection fails query with kind network", function()
      local o = run("http://127.0.0.1:" .. dead_port(), { max_retries = 1 }, query, dir)
      assert_kind(o, "network")
      assert_bounded(o)
    end)

    it("an answer cut short of its Content-Length keeps the task id, marks it created and journals it", function()
      local o = run(hs:url("truncated"), { journal = true }, create, dir)
      assert_kind(o, "network", "protocol")
      assert.equal("task_1", o.err.id, show(o))
      assert.is_true(o.err.created, show(o))
      assert.is_true(o.err.maybe_created, show(o))
      assert_journalled(o, "task_1")
      assert_bounded(o)
    end)

    it("a complete object under a Content-Length that promises more keeps the task id and journals it", function()
      local o = run(hs:url("cl_long"), { journal = true }, create, dir)
      assert_kind(o, "network", "protocol")
      assert.equal("task_4", o.err.id, show(o))
      assert.is_true(o.err.created, show(o))
      assert.is_true(o.err.maybe_created, show(o))
      assert_journalled(o, "task_4")
      assert_bounded(o)
    end)

    it("broken chunked encoding after the object keeps the task id and journals it", function()
      local o = run(hs:url("chunked_bad"), { journal = true }, create, dir)
      assert_kind(o, "network", "protocol")
      assert.equal("task_c", o.err.id, show(o))
      assert.is_true(o.err.created, show(o))
      assert.is_true(o.err.maybe_created, show(o))
      assert_journalled(o, "task_c")
      assert_bounded(o)
    end)

    it("an answer over 1 MB keeps the task id from its start and journals it", function()
      local o = run(hs:url("huge"), { journal = true }, create, dir)
      assert_kind(o, "network", "protocol")
      assert.equal("task_2", o.err.id, show(o))
      assert.is_true(o.err.created, show(o))
      assert.is_true(o.err.maybe_created, show(o))
      assert_journalled(o, "task_2")
      assert_bounded(o)
    end)

    it("a duplicate id key is a protocol error that keeps the first id and journals it", function()
      local o = run(hs:url("dupkey"), { journal = true }, create, dir)
      assert_kind(o, "protocol")
      assert.equal("task_3", o.err.id, show(o))
      assert.is_true(o.err.maybe_created, show(o))
      assert_journalled(o, "task_3")
      assert_bounded(o)
    end)

    it("an empty 200 answer is a protocol error, maybe created, with no id", function()
      local o = run(hs:url("empty"), {}, create, dir)
      assert_kind(o, "protocol")
      assert.is_true(o.err.maybe_created, show(o))
      assert.is_nil(o.err.id, show(o))
      assert_bounded(o)
    end)

    it("a reset in the middle of the headers fails create after one POST, never resent, maybe created", function()
      local base = hs:url("reset_header")
      local o = run(base, { max_retries = 2 }, create, dir)
      assert_kind(o, "network", "protocol")
      assert.is_true(o.err.maybe_created, show(o))
      assert.equal(1, count(hs:requests(base), "POST"), show(o))
      assert_bounded(o)
    end)

    it("a reset in the middle of the body fails create after one POST, never resent, maybe created", function()
      local base = hs:url("reset_body")
      local o = run(base, { max_retries = 2 }, create, dir)
      assert_kind(o, "network", "protocol")
      assert.is_true(o.err.maybe_created, show(o))
      assert.equal(1, count(hs:requests(base), "POST"), show(o))
      assert_bounded(o)
    end)

    it("a reset in the middle of the headers makes query retry, then fail with kind network", function()
      local base = hs:url("reset_header")
      local o = run(base, { max_retries = 2 }, query, dir)
      assert_kind(o, "network")
      assert.equal(3, count(hs:requests(base), "GET"), show(o))
      assert_bounded(o)
    end)

    it("a reset in the middle of the body makes query retry, then fail with kind network", function()
      local base = hs:url("reset_body")
      local o = run(base, { max_retries = 2 }, query, dir)
      assert_kind(o, "network")
      assert.equal(3, count(hs:requests(base), "GET"), show(o))
      assert_bounded(o)
    end)

    it("headers dribbled a byte a second time out a create in under 3 s, maybe created", function()
      local base = hs:url("dribble")
      local o = run(base, { timeout = 1, max_retries = 2 }, create, dir)
      assert_kind(o, "timeout")
      assert.is_true(o.err.maybe_created, show(o))
      assert.equal(1, count(hs:requests(base), "POST"), show(o))
      assert_bounded(o, 3)
    end)

    it("headers dribbled a byte a second time out a query in under 3 s", function()
      local o = run(hs:url("dribble"), { timeout = 1 }, query, dir)
      assert_kind(o, "timeout")
      assert_bounded(o, 3)
    end)

    it("a Content-Length larger than the body makes query retry, then fail with kind network", function()
      local base = hs:url("cl_long")
      local o = run(base, { max_retries = 1 }, query, dir)
      assert_kind(o, "network")
      assert.equal(2, count(hs:requests(base), "GET"), show(o))
      assert_bounded(o)
    end)

    it("a Content-Length that cuts the JSON short is a protocol error, maybe created", function()
      local o = run(hs:url("cl_short"), { journal = true }, create, dir)
      assert_kind(o, "protocol")
      assert.is_true(o.err.maybe_created, show(o))
      assert_bounded(o)
    end)

    it("a gzip bomb is never inflated: a protocol error, no compression asked, memory grows < 20 MB", function()
      local base = hs:url("gzip")
      local body, code = http.request(base .. "/warm") -- the server makes its bomb, untimed
      assert.equal(200, code, tostring(body))
      local o = run(base, { journal = true }, create, dir)
      assert_kind(o, "protocol")
      assert.is_true(o.err.maybe_created, show(o))
      local reqs = hs:requests(base .. "/v1/")
      assert.equal(1, #reqs)
      assert.is_nil(reqs[1].headers["accept-encoding"], "the client asked for compression")
      assert_memory(o)
      assert_bounded(o)
    end)

    it("a header line of 8 MB is a protocol error, not out of memory, and memory stays bounded", function()
      local o = run(hs:url("big_header"), { journal = true }, create, dir)
      assert_kind(o, "protocol")
      assert.is_true(o.err.maybe_created, show(o))
      assert_memory(o)
      assert_bounded(o)
    end)
  end)

  describe("download", function()
    local n = 0
    local function target()
      n = n + 1
      return dir .. "/video-" .. n .. ".mp4"
    end
    local function download(url, path)
      return function(client) return client:download(url, path) end
    end

    it("a redirect to file:///etc/passwd fails and leaves neither the file nor its .part", function()
      local path = target()
      local base = hs:url("redir_file")
      local o = run(base, { max_retries = 1 }, download(base .. "/v.mp4", path), dir)
      assert_kind(o, "network", "protocol")
      assert.is_false(exists(path), "the file is there")
      assert.is_false(exists(path .. ".part"), "the .part is left")
      assert_bounded(o)
    end)

    it("a redirect loop fails within the timeout and leaves nothing behind", function()
      local path = target()
      local base = hs:url("redir_loop")
      local o = run(base, { max_retries = 1 }, download(base .. "/v.mp4", path), dir)
      assert(o.res == nil and type(o.err) == "table", "expected a failure: " .. show(o))
      assert.is_false(exists(path), "the file is there")
      assert.is_false(exists(path .. ".part"), "the .part is left")
      assert_bounded(o)
    end)

    it("a redirect to another port is followed and the API key never reaches that port", function()
      local path = target()
      local base = hs:url("redir_port")
      local o = run(base, { max_retries = 1 },
        download(base .. "/" .. hs2.port .. "/v.mp4", path), dir)
      assert.equal(path, o.res, show(o))
      assert.is_true(read_file(path) == VIDEO, "the file is not byte-identical to the video")
      assert.is_false(exists(path .. ".part"), "the .part is left")
      local tag = base:match("/(t%d+)$")
      local reqs = hs2:requests("/s/video/" .. tag .. "/")
      assert.is_true(#reqs >= 1, "nothing reached the second server")
      for _, r in ipairs(reqs) do
        assert.is_nil(r.headers.authorization, "an Authorization header reached the second server")
      end
      assert.is_nil(hs2:raw_log():find(KEY, 1, true), "the API key reached the second server")
      assert_bounded(o)
    end)

    it("a server that ignores Range after a dropped connection still gives the whole file, restarted at 0", function()
      local path = target()
      local base = hs:url("norange")
      local o = run(base, { max_retries = 1 }, download(base .. "/v.mp4", path), dir)
      assert.equal(path, o.res, show(o))
      local got = read_file(path) or ""
      assert.equal(VIDEO_SIZE, #got, "size")
      assert.is_true(got == VIDEO, "the file is not byte-identical to the video")
      assert.is_false(exists(path .. ".part"), "the .part is left")
      assert.is_true(#hs:requests(base) >= 2, "the drop was not followed by another GET")
      assert_bounded(o)
    end)

    -- The .part meddled with between two attempts (the server cuts the first
    -- GET after half the video; the retry event comes before the second): the
    -- retry never builds on a file that is not the one the first attempt wrote.
    local meddling = {
      { "deleted", function(part) assert(os.remove(part)) end },
      { "cut shorter than the offset", function(part)
        local head = assert(read_file(part)):sub(1, 1000)
        helper.write_file(part, head) -- the same file, truncated
      end },
      { "replaced by another file as long", function(part)
        assert(os.remove(part))
        helper.write_file(part, string.rep("X", VIDEO_SIZE))
      end },
    }
    for _, case in ipairs(meddling) do
      it("a .part " .. case[1] .. " between attempts: the retry starts at byte 0, the file is the video", function()
        local path = target()
        local base = hs:url("cut_once")
        local retries = 0
        local o = run(base, { max_retries = 1, on_event = function(ev)
          if ev.type == "retry" and ev.method == "GET" then
            retries = retries + 1
            case[2](path .. ".part")
          end
        end }, download(base .. "/v.mp4", path), dir)
        assert.equal(1, retries, show(o))
        assert.equal(path, o.res, show(o))
        local got = read_file(path) or ""
        assert.equal(VIDEO_SIZE, #got, "size")
        assert.is_nil(got:find("\0", 1, true), "the file holds zero bytes")
        assert.is_true(got == VIDEO, "the file is not byte-identical to the video")
        assert.is_false(exists(path .. ".part"), "the .part is left")
        local gets = hs:requests(base)
        assert.equal(2, #gets)
        assert.is_nil(gets[2].headers.range, "the retry asked for a range of a file it no longer has")
        assert_bounded(o)
      end)
    end

    -- Two processes download one video to one path at once: B's fresh start
    -- replaces A's .part, then B dies mid-body.  A's commit must not rename B's
    -- partial file as A's video: A ends with a clear error (or, had it
    -- committed first, with the whole video), never with a short file.
    it("two processes racing on one .part: the file is whole and right, or the error is clear", function()
      local path = target()
      local part = path .. ".part"
      local base = hs:url("slow_video")
      local script = dir .. "/race-" .. n .. ".lua"
      helper.write_file(script, table.concat({
        'local starvideos = require "starvideos"',
        'local c = starvideos.new { base_url = arg[1], api_key = "k", timeout = 20, max_retries = 0 }',
        'local res, err = c:download(arg[1] .. "/v.mp4", arg[2])',
        'io.write(res and ("ok " .. res) or ("err " .. tostring(err)), "\\n")',
      }, "\n"))
      local cmd = shell_quote(helper.lua) .. " " .. shell_quote(script) .. " " .. shell_quote(base) .. " "
        .. shell_quote(path) .. " 2>&1"
      local function inode()
        local out = helper.capture("stat -c %i " .. shell_quote(part) .. " 2>/dev/null")
        return out and out:match("%d+")
      end
      local a = helper.spawn(cmd)
      if not helper.wait_until(function() return (helper.file_size(part) or 0) > 0 end, 10) then
        error("A never wrote: " .. a.pipe:read("*a"))
      end
      local a_inode = inode()
      local b = helper.spawn(cmd)
      -- B has replaced A's .part with its own and written into it: B dies there
      assert.is_true(helper.wait_until(function()
        local i = inode()
        return i and i ~= a_inode and (helper.file_size(part) or 0) > 0
      end, 10), "B never replaced the .part")
      assert(sh("kill -9 " .. b.pid))
      b:close()
      local out = a.pipe:read("*a")
      a:close()
      if out:find("^ok ") then
        assert.is_true(read_file(path) == VIDEO, "A said ok but the file is not the video: " .. out)
      else
        assert.truthy(out:find("io: download: cannot commit " .. part, 1, true), out)
        assert.truthy(out:find("no longer the file this download wrote", 1, true), out)
        -- nothing short took the video's name
        local got = read_file(path)
        assert.is_true(got == nil or got == VIDEO, "a file of " .. #(got or "") .. " bytes took the video's name")
      end
    end)

    it("a 206 with the whole range to a request without Range is accepted as the complete file", function()
      local path = target()
      local base = hs:url("partial206")
      local o = run(base, { max_retries = 1 }, download(base .. "/v.mp4", path), dir)
      assert.equal(path, o.res, show(o))
      assert.is_true(read_file(path) == VIDEO, "the file is not byte-identical to the video")
      assert.is_false(exists(path .. ".part"), "the .part is left")
      assert_bounded(o)
    end)

    it("a symlink at path .. '.part' is never followed: its target stays untouched", function()
      local path = target()
      local victim = dir .. "/victim-" .. n .. ".txt"
      local f = assert(io.open(victim, "wb"))
      f:write("precious\n")
      f:close()
      assert(sh("ln -s " .. shell_quote(victim) .. " " .. shell_quote(path .. ".part")))
      local base = hs:url("video")
      local o = run(base, { max_retries = 1 }, download(base .. "/v.mp4", path), dir)
      local left = read_file(victim) or ""
      assert(left == "precious\n", string.format("the symlink's target was written (%d bytes now, starting %q): %s",
        #left, left:sub(1, 20), show(o)))
      if o.res then
        assert.equal(path, o.res, show(o))
        assert.is_true(sh("test -f " .. shell_quote(path) .. " && test ! -L " .. shell_quote(path)),
          "path is not a regular file")
        assert.is_true(read_file(path) == VIDEO, "the file is not byte-identical to the video")
      else
        assert_kind(o, "io")
        assert.truthy(tostring(o.err.message):find(".part", 1, true), show(o))
      end
      assert_bounded(o)
    end)
  end)
end)
