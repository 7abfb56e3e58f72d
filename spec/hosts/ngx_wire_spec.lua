-- The transport inside nginx (transport/ngx_wire.lua, transport/ngx.lua) and
-- the .part handle it writes through (core.part_open): chunked bodies in
-- linear time without holding the worker, one descriptor from the .part's open
-- to its commit, nothing written through a link planted at the .part, a .part
-- lost between attempts restarting from byte 0, a commit that syncs the folder.
-- A raw-TCP server of the spec's own (spec/support/wire_server.lua) serves what
-- the emulator cannot.  Pending, with the reason, where nginx is missing.

local cjson = require "cjson.safe"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local commit_trace = require "spec.support.commit_trace"
local core = require "starvideos.core"

local gettime, q, str_format = socket.gettime, helper.shell_quote, string.format
local read_file, write_file, exists = helper.read_file, helper.write_file, helper.exists
-- a saved video up to the mark's box its commit appended (helper.read_video): the bytes the server sent
local read_video = helper.read_video
local VERBOSE = os.getenv("STARVIDEOS_NGINX_VERBOSE") -- every /ping's time on stderr

-- What wire_server.lua serves: a 5 s MP4 whose mdat holds 16-byte blocks naming their position.
local cases = require "spec.support.transport_cases"
local video = cases.video

describe("core.part_open", function()
  local dir
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.cleanup() end)

  it("starts a new file at 0: a hard link or a symlink planted at the name is never written through", function()
    for _, plant in ipairs { "ln", "ln -s" } do
      local victim, part = dir .. "/victim", dir .. "/a.part"
      write_file(victim, "precious\n")
      os.remove(part)
      assert(helper.execute(plant .. " " .. q(victim) .. " " .. q(part)))
      local h = assert(core.part_open(part, 0))
      assert.is_true(h:write("hello"))
      assert.is_true(h:close())
      assert.equal("precious\n", read_file(victim), plant)
      assert.equal("hello", read_file(part), plant)
      assert.equal("file", core.file_kind(part), plant)
    end
  end)

  it("goes on from a .part of at least offset bytes, else starts a new one at 0, writing through no link", function()
    local part = dir .. "/b.part"
    write_file(part, "0123456789")
    local h, at = core.part_open(part, 4)
    assert.same({ 4, 4 }, { at, h:at() })
    assert.is_true(h:write("bcd"))
    assert.equal(7, h:at())
    assert.is_true(h:flush())
    assert.equal("0123bcd789", read_file(part)) -- written over, not cut: truncate() cuts
    assert.is_true(h:truncate(6))
    assert.is_true(h:write("XY"))
    assert.is_true(h:close())
    assert.equal("0123bcXY", read_file(part))
    for what, make in pairs {
      missing = function() os.remove(part) end,
      shorter = function() write_file(part, "012") end,
      linked = function() write_file(part, "0123456789"); assert(helper.execute("ln -f " .. q(part) .. " "
        .. q(dir .. "/other"))) end,
      symlink = function() os.remove(part); write_file(dir .. "/t", "0123456789")
        assert(helper.execute("ln -s " .. q(dir .. "/t") .. " " .. q(part))) end,
    } do
      make()
      local fh, from = core.part_open(part, 5)
      assert.equal(0, from, what) -- (core.part_open: the rule of both transports, sv_part_resume)
      assert.is_true(fh:write("new"))
      assert.is_true(fh:close())
      assert.same({ "file", "new" }, { core.file_kind(part), read_file(part) }, what)
      if what == "linked" then assert.equal("0123456789", read_file(dir .. "/other"), what) end
      if what == "symlink" then assert.equal("0123456789", read_file(dir .. "/t"), what) end
      os.remove(part)
    end
  end)

  it("commits the bytes written through its descriptor, and only while the name is still that file", function()
    local part, dest = dir .. "/c.part", dir .. "/c.mp4"
    local h = assert(core.part_open(part, 0))
    assert.is_true(h:write(string.rep("v", 100000)))
    assert.is_true(helper.committed(core.commit_start(h, dest)))
    assert.equal(100000, #read_file(dest))
    assert.is_false(exists(part))
    assert.error_matches(function() h:write("x") end, "the .part handle was closed") -- the commit took it
    -- another download took the name meanwhile: nothing is renamed
    h = assert(core.part_open(part, 0))
    assert.is_true(h:write("mine"))
    assert.is_true(h:flush())
    local other = assert(core.part_open(part, 0)) -- unlinks ours, makes its own
    assert.is_true(other:write("theirs, longer"))
    local ok, msg = helper.committed(core.commit_start(h, dir .. "/d.mp4"))
    assert.is_false(ok)
    assert.equal("cannot commit " .. part .. ": another file took its name during the download", msg)
    assert.is_false(exists(dir .. "/d.mp4"))
    other:close()
    -- bytes lost after they were written (the file cut behind the handle's back)
    h = assert(core.part_open(part, 0))
    assert.is_true(h:write("0123456789"))
    assert.is_true(h:flush())
    assert(helper.execute("truncate -s 4 " .. q(part)))
    ok, msg = helper.committed(core.commit_start(h, dir .. "/e.mp4"))
    assert.is_false(ok)
    assert.equal("cannot commit " .. part .. ": it holds 4 bytes where 10 were written", msg)
    assert.is_false(exists(dir .. "/e.mp4"))
    -- prepare hands another thread what part_commit needs, the handle stays open
    h = assert(core.part_open(part, 0))
    assert.is_true(h:write("abc"))
    local fd, size, name = h:prepare()
    assert.equal(3, size)
    assert.equal(part, name)
    assert.is_true((require("starvideos.sign").part_commit(fd, size, name, dir .. "/f.mp4")))
    assert.equal("abc", read_file(dir .. "/f.mp4"))
    assert.is_true(h:close())
    assert.error_matches(function() h:write("x") end, "the .part handle was closed")
  end)
end)

describe("the nginx wire", function()
  local missing = nginx_run.missing { "nginx", "curl", "strace" }
  if missing then
    it("needs nginx with its lua module, curl and strace", function() pending(missing) end)
    return
  end
  local dir, port, srv, wire, wire_log, n = nil, nil, nil, nil, nil, 0
  local ROOT = nginx_run.ROOT


  setup(function()
    dir = helper.tmpdir()
    wire_log = dir .. "/wire.log"
    wire = helper.spawn(str_format("%s %s %s", helper.lua, q(ROOT .. "/spec/support/wire_server.lua"), q(wire_log)))
    wire.port = tonumber(assert(wire.pipe:read("*l")):match("^wire listening on (%d+)$"))
    srv = nginx_run.start(dir)
    port = srv.port
  end)

  teardown(function()
    if srv then srv.stop() end
    if wire then http.request(str_format("http://127.0.0.1:%d/quit", wire.port)); wire:close() end
    helper.cleanup()
  end)

  local function get(path)
    local chunks = {}
    local _, code = http.request { url = "http://127.0.0.1:" .. port .. path, sink = ltn12.sink.table(chunks) }
    return table.concat(chunks), code
  end

  -- The probe's request body for a download of wire_server's `what` to a new path.
  local function download_request(what, client)
    n = n + 1
    local path = dir .. "/dl-" .. n .. ".mp4"
    client = client or {}
    client.api_key, client.timeout = "k", client.timeout or 30
    return { op = "download", url = str_format("http://127.0.0.1:%d/%s", wire.port, what), path = path,
      client = client }, path
  end

  local function probe(t)
    local body = assert(cjson.encode(t))
    local chunks = {}
    local _, code = http.request { url = "http://127.0.0.1:" .. port .. "/probe", method = "POST",
      headers = { ["content-type"] = "application/json", ["content-length"] = #body },
      source = ltn12.source.string(body), sink = ltn12.sink.table(chunks) }
    local text = table.concat(chunks)
    assert.equal(200, code, text)
    local o = assert(cjson.decode(text), text)
    assert.equal("table", o.transport, "the worker did not use nginx's sockets")
    o.text = text
    return o
  end

  local function ranges(what)
    local out = {}
    for l in (read_file(wire_log) or ""):gmatch("[^\n]+") do
      local p, r = l:match("^(%S+) (.*)$")
      if p and p:find(what, 1, true) then out[#out + 1] = r end
    end
    return out
  end

  it("takes 1 MB in 1-byte chunks in under a second, while /ping on that worker answers within 10 ms", function()
    -- the worker's first client loads the library and makes the disk pool's
    -- Lua VM (transport/ngx.lua), and the server makes its answer: done once
    -- first, so that the time and the pings are the wire's alone
    local size, rounds = 1048576, 10
    local warm = probe((download_request("chunks/" .. size)))
    assert.is_string(warm.res, warm.text)
    -- one download after another, /ping all along
    local calls, paths = {}, {}
    for i = 1, rounds do
      local req
      req, paths[i] = download_request("chunks/" .. size)
      write_file(str_format("%s/big-%d.json", dir, i), assert(cjson.encode(req)))
      calls[i] = str_format("%scurl -s -m 60 -H 'content-type: application/json' --data-binary @%s -o %s "
        .. "http://127.0.0.1:%d/probe", helper.UNINSTRUMENTED, q(str_format("%s/big-%d.json", dir, i)),
        q(str_format("%s/big-%d.out", dir, i)), port)
    end
    local done = dir .. "/big.done"
    assert(helper.execute(str_format("( %s; touch %s ) >/dev/null 2>&1 &", table.concat(calls, "; "), q(done))))
    local times, t0, c = {}, gettime(), nil
    while not exists(done) and gettime() - t0 < 120 do
      if not c then -- one kept-alive connection, new when nginx ends it
        c = socket.tcp()
        c:settimeout(5)
        assert(c:connect("127.0.0.1", port))
        c:setoption("tcp-nodelay", true)
      end
      local t1 = gettime()
      assert(c:send("GET /ping HTTP/1.1\r\nHost: p\r\n\r\n"))
      local status, head, len = c:receive("*l"), {}, nil
      repeat
        head[#head + 1] = assert(c:receive("*l")):lower()
        len = len or tonumber(head[#head]:match("^content%-length: *(%d+)"))
      until head[#head] == ""
      local pong = c:receive(len)
      times[#times + 1] = gettime() - t1
      if VERBOSE then io.stderr:write(str_format("  /ping at %.3f s: %.2f ms\n", t1 - t0, times[#times] * 1000)) end
      assert.equal("HTTP/1.1 200 OK", status)
      assert.equal("pong\n", pong)
      if table.concat(head, "\n"):find("connection: close", 1, true) then c:close(); c = nil end
      helper.sleep(0.002)
    end
    if c then c:close() end
    local slowest, whole = 0, video(size)
    for i = 1, rounds do
      local text = read_file(str_format("%s/big-%d.out", dir, i)) or ""
      local o = assert(cjson.decode(text), text)
      assert.equal(paths[i], o.res, text)
      assert.is_true(read_video(paths[i]) == whole, "the file is not the video")
      slowest = math.max(slowest, o.elapsed)
    end
    table.sort(times)
    local p95, worst = times[math.ceil(#times * 0.95)], times[#times]
    io.stderr:write(str_format("\n  nginx wire: 1 MB in 1-byte chunks in %.3f s at most (%d downloads); /ping p95 "
      .. "%.2f ms, max %.2f ms over %d pings\n", slowest, rounds, p95 * 1000, worst * 1000, #times))
    assert.is_true(slowest < 1, str_format("a download took %.2f s", slowest))
    assert.is_true(#times >= 20, "only " .. #times .. " pings")
    assert.is_true(p95 < 0.010, str_format("95%% of the pings took up to %.1f ms", p95 * 1000))
    assert.is_true(worst < 0.050, str_format("a /ping took %.1f ms: the worker was held", worst * 1000))
  end)

  it("reads chunks of every size, with extensions and a trailer; a bad chunk fails and leaves no file", function()
    local size = 500000
    local req, path = download_request("mixed/" .. size)
    local o = probe(req)
    assert.equal(path, o.res, o.text)
    assert.is_true(read_video(path) == video(size), "the file is not the video")
    req, path = download_request("badchunk/" .. 200000, { max_retries = 0 })
    req.client.retry_backoff = 0.01
    o = probe(req)
    assert.is_nil(o.res, o.text)
    assert.truthy(o.err and o.err.message:find("bad chunked encoding", 1, true), o.text)
    assert.is_false(exists(path), o.text)
    assert.is_false(exists(path .. ".part"), o.text)
  end)

  it("never writes through a hard link or a symlink planted at the .part", function()
    local size = 300000
    local whole = video(size)
    for _, case in ipairs {
      { "ln", "hard link, small", "precious\n" },
      { "ln", "hard link, long enough to resume from", whole:sub(1, 150000):gsub("video", "VIDEO") },
      { "ln -s", "symlink", "precious\n" },
    } do
      local req, path = download_request("video/" .. size)
      local victim = path .. ".victim"
      write_file(victim, case[3])
      assert(helper.execute(case[1] .. " " .. q(victim) .. " " .. q(path .. ".part")))
      local o = probe(req)
      assert.is_true(read_file(victim) == case[3], case[2] .. ": the planted file was written")
      assert.equal(path, o.res, case[2] .. ": " .. o.text)
      assert.is_true(read_video(path) == whole, case[2] .. ": the file is not the video")
      assert.is_false(exists(path .. ".part"), case[2])
    end
  end)

  it("starts again from byte 0 when the .part is deleted or shortened between attempts", function()
    local size = 400000
    for _, act in ipairs { "delete", "shorten" } do
      n = n + 1
      local path = dir .. "/cut-" .. n .. ".mp4"
      local what = str_format("cut/%d?part=%s&do=%s", size, (path .. ".part"):gsub("[^%w/._-]", function(ch)
        return str_format("%%%02X", ch:byte())
      end), act)
      local req = download_request(what, { retry_backoff = 1 })
      req.path = path
      local o = probe(req)
      assert.equal(path, o.res, act .. ": " .. o.text)
      local got = read_video(path) or ""
      assert.equal(size, #got, act)
      assert.is_nil(got:find("\0", #cases.mp4_head(size) + 1, true), act .. ": zeros in the file's mdat")
      assert.is_true(got == video(size), act .. ": the file is not the video")
      local seen = ranges(path .. ".part&do=" .. act)
      assert.equal(2, #seen, act)
      assert.equal("none", seen[2], act .. ": the retry asked for a Range of a .part that was gone")
    end
  end)

  it("commits on the descriptor it wrote, in nginx's thread pool, then syncs the folder (strace)", function()
    local pid = assert(tonumber((get("/pid"))))
    local trace = dir .. "/strace.log"
    local st = helper.spawn(str_format("strace -f -qq -e trace=openat,open,close,fsync,fdatasync,rename,renameat,"
      .. "renameat2 -o %s -p %d 2>%s", q(trace), pid, q(dir .. "/strace.err")))
    local function detach() helper.execute(str_format("kill -INT %d 2>/dev/null", st.pid)) end
    finally(function() detach(); st:close() end)
    helper.sleep(1) -- attached to every thread of the worker, the pool's too
    local req, path = download_request("video/250000")
    local o = probe(req)
    assert.equal(path, o.res, o.text)
    helper.sleep(0.3)
    detach()
    helper.sleep(0.3)
    local log = read_file(trace) or ""
    if log == "" and (read_file(dir .. "/strace.err") or ""):find("ptrace", 1, true) then
      return pending("strace may not trace nginx here: " .. read_file(dir .. "/strace.err"))
    end
    local r = commit_trace.check(assert, log, path .. ".part", path)
    assert.is_true(r.read_thread ~= nil and r.read_thread ~= pid, "the .part was checked and hashed in the worker's "
      .. "own thread, not in nginx's thread pool:\n" .. log)
    assert.is_true(r.sync_thread ~= nil and r.sync_thread ~= pid, "the commit ran in the worker's own thread, not in "
      .. "nginx's thread pool:\n" .. log)
  end)

  it("the worker logged no Lua error", function()
    local text = read_file(dir .. "/error.log") or ""
    for _, bad in ipairs { "runtime error", "entry thread aborted", "[alert]", "[crit]", "[emerg]" } do
      assert.is_nil(text:find(bad, 1, true), bad .. " in the error log:\n" .. text:sub(-3000))
    end
  end)
end)
