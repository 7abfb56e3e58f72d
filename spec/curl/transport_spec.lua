-- The HTTP layer as a user meets it: keep-alive reuse, max_connections, request
-- and connect timeouts, events, the key kept out of Lua-visible state.
local helper = require "spec.helper"
local socket = require "socket"
local starvideos = require "starvideos"

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

local function distinct(list, field)
  local seen, n = {}, 0
  for _, r in ipairs(list) do
    if not seen[r[field]] then seen[r[field]], n = true, n + 1 end
  end
  return n
end

describe("the transport", function()
  local emu
  setup(function() emu = helper.emulator { queued = 0.1, processing = 0.1 } end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)
  -- every client closed after its case: one left open would hold its key's budget and max_connections for the
  -- next (Lua 5.1 collects no table, so never closes it)
  local made = {}
  after_each(function()
    for _, c in ipairs(made) do c:close() end
    made = {}
  end)

  local function client(opts)
    opts = opts or {}
    opts.api_key, opts.base_url = opts.api_key or emu.key, emu.url
    opts.retry_backoff = opts.retry_backoff or 0.01
    made[#made + 1] = starvideos.new(opts)
    return made[#made]
  end

  it("reuses one keep-alive connection across the calls of a client", function()
    local c = client()
    local task = assert(c:create(PARAMS))
    for _ = 1, 4 do assert(c:query(task.id)) end
    local log = emu:requests()
    assert.equal(5, #log)
    assert.equal(1, distinct(log, "connection"))
  end)

  it("gives clients of one key one loop and its connections, whatever their options", function()
    local a, b = client(), client()
    assert.equal(a.loop, b.loop) -- one transport, one budget
    local task = assert(a:create(PARAMS))
    assert(b:query(task.id))
    local before = distinct(emu:requests(), "connection")
    local other = client { max_connections = 3 } -- other options: the key's loop still
    assert.equal(a.loop, other.loop)
    assert(other:query(task.id))
    assert.equal(before, distinct(emu:requests(), "connection"))
    a:close(); b:close(); other:close()
  end)

  -- n tasks made by c, then their polls answered slowly (delay s each), so that without a limit they would overlap
  -- on many connections: the ids.
  local function slow_polls(c, n, delay)
    local ids = {}
    for i = 1, n do ids[i] = assert(c:create(PARAMS)).id end
    emu:reset()
    emu:fault { path = "/v1/result/", delay = delay, count = n }
    return ids
  end

  it("never has more than max_connections open while polling many tasks", function()
    local c = client { max_connections = 2, requests_per_second = 1000 }
    local ids = slow_polls(c, 8, 0.2)
    local res = c:wait_all(ids, { interval = 0.05, timeout = 20 })
    for i = 1, 8 do assert.equal("completed", res[i].task.status) end
    local n = distinct(emu:requests(), "connection")
    assert.is_true(n <= 2, "connections used: " .. n)
    c:close() -- else its 2 stay the key's max_connections while it lives
  end)

  it("holds a max_connections lowered while more connections are kept alive: at most that many at once", function()
    local wide = client { max_connections = 6, requests_per_second = 1000 }
    local ids = slow_polls(wide, 6, 0.3)
    assert(wide:wait_all(ids, { interval = 0.05, timeout = 20 }))
    local kept = distinct(emu:requests(), "connection")
    assert.is_true(kept > 2, "connections kept alive: " .. kept)
    -- a client of the same key with 2: the key's transport holds 2 from now on, its idle ones too
    local narrow = client { max_connections = 2, requests_per_second = 1000 }
    assert.equal(wide.loop, narrow.loop)
    emu:reset()
    emu:fault { path = "/v1/result/", delay = 0.3, count = 6 }
    assert(narrow:wait_all(ids, { interval = 0.05, timeout = 20 }))
    local at = {}
    for _, r in ipairs(emu:requests()) do if r.path:find("/v1/result/", 1, true) then at[#at + 1] = r.at end end
    table.sort(at)
    assert.equal(6, #at)
    -- each answer takes 0.3 s at the server: a third request arrives only once one of the two before it ended
    for i = 3, #at do
      assert.is_true(at[i] - at[i - 2] >= 0.25, string.format("requests %d and %d %.3f s apart: 3 at once", i - 2, i,
        at[i] - at[i - 2]))
    end
    wide:close(); narrow:close()
  end)

  it("does open several connections at once when max_connections allows it", function()
    local c = client { max_connections = 8, requests_per_second = 1000 }
    local ids = slow_polls(c, 8, 0.2)
    assert(c:wait_all(ids, { interval = 0.05, timeout = 20 }))
    assert.is_true(distinct(emu:requests(), "connection") > 2)
  end)

  it("ends a request that exceeds its timeout with kind timeout", function()
    local c = client { timeout = 0.3, max_retries = 0 }
    local task = assert(c:create(PARAMS))
    emu:clear()
    emu:fault { path = "/v1/result/", delay = 600 } -- (held longer than any machine's pace)
    local got, err = c:query(task.id)
    assert.is_nil(got)
    assert.equal("timeout", err.kind)
    assert.equal(task.id, err.id)
    -- ended while the server still held it: no answer written to it yet
    local log = emu:requests()
    assert.equal(1, #log)
    assert.is_nil(log[1].answered, "the query returned only once the server answered")
  end)

  it("gives up connecting after connect_timeout, and resends a create that never connected", function()
    -- a listener whose accept queue is full: the connection attempt hangs
    local port, let_go = helper.hanging_port()
    local events = {}
    local c = starvideos.new { api_key = "k", base_url = "http://127.0.0.1:" .. port, connect_timeout = 0.3,
      max_retries = 1, retry_backoff = 0.01, on_event = function(e) events[#events + 1] = e end }
    local t0 = socket.gettime()
    local task, err = c:create(PARAMS)
    local elapsed = socket.gettime() - t0
    let_go()
    assert.is_nil(task)
    assert.equal("timeout", err.kind)
    assert.is_nil(err.maybe_created)
    local requests = 0
    for _, e in ipairs(events) do if e.type == "request" then requests = requests + 1 end end
    assert.equal(2, requests)
    -- its connect_timeout ended both attempts: they took less than one attempt would at the default's (10 s; the
    -- request's timeout, 30 s) were it not followed, however slow the machine (issue 78, 2: not 'under 3 s'; how
    -- promptly after 0.3 s is bench/deadlines.lua's)
    local default = require("starvideos.config").DEFAULTS.connect_timeout
    assert.is_true(elapsed < default, "took " .. elapsed .. " s, the default connect_timeout " .. default .. " s")
  end)

  it("reports request, response and retry events without the key", function()
    local events = {}
    local c = client { api_key = "sk-VERY-SECRET-1", max_retries = 1,
      on_event = function(e) events[#events + 1] = e end }
    emu:fault { path = "/v1/videos/videos", status = 429, headers = { ["Retry-After"] = "0" },
      body = '{"error":"sk-VERY-SECRET-1 is rate limited"}' }
    local _, err = c:create(PARAMS)
    -- the emulator refuses the key (it expects its own), so the last answer is auth
    assert.equal("auth", err.kind)
    local kinds = {}
    for _, e in ipairs(events) do
      kinds[#kinds + 1] = e.type
      for _, v in pairs(e) do
        assert.is_falsy(tostring(v):find("VERY-SECRET", 1, true), "key in event " .. e.type)
      end
    end
    assert.same({ "request", "response", "retry", "request", "response" }, kinds)
    assert.is_falsy(tostring(err):find("VERY-SECRET", 1, true))
  end)

  it("keeps the key out of the client table", function()
    local c = client { api_key = "sk-VERY-SECRET-2" }
    for k, v in pairs(c) do
      assert.is_falsy(tostring(v):find("VERY-SECRET", 1, true), "key under " .. tostring(k))
    end
    assert.is_falsy(tostring(c):find("VERY-SECRET", 1, true))
  end)

  it("refuses bad options with an error naming the option", function()
    assert.has_error(function() starvideos.new { timout = 3 } end,
      "bad option to 'new': unknown option 'timout' (did you mean 'timeout'?)")
    assert.has_error(function() starvideos.new { timeout = "3" } end)
    assert.has_error(function() starvideos.new { base_url = "ftp://x" } end)
    assert.has_error(function() starvideos.new { max_connections = 0 } end)
  end)

  it("answers calls without a key with kind auth, sending nothing", function()
    local c = starvideos.new { api_key = "", base_url = emu.url }
    local _, err = c:create(PARAMS)
    assert.equal("auth", err.kind)
    _, err = c:query("video_1")
    assert.equal("auth", err.kind)
    assert.same({}, emu:requests())
  end)

  it("refuses to wait, poll many, start or watch without a key, sending nothing", function()
    local c = starvideos.new { api_key = "", base_url = emu.url }
    local _, err = c:wait("video_1", { interval = 0.05, timeout = 1 })
    assert.equal("auth", err.kind)
    assert.equal("auth", c:wait_all({ "video_1" }, { timeout = 1 })[1].err.kind)
    local job
    job, err = c:start(PARAMS)
    assert.is_nil(job)
    assert.equal("auth", err.kind)
    assert.matches("no API key", err.message)
    job = c:watch("video_1", { timeout = 1 })
    while not job.done do c:step(0.05) end
    assert.equal("auth", job.err.kind)
    assert.same({}, emu:requests())
  end)

  -- A download runs on the multi handle as every exchange does (csrc/curl/body.c's file unit): its bytes move
  -- in the caller's polls, a pass giving it a bounded step, and no thread is started.  Driven here through the
  -- transport itself.
  describe("a download on the multi handle", function()
    local core = require "starvideos.core"
    local DEFAULTS = require("starvideos.config").DEFAULTS
    local curl_new = core.curl or require("starvideos.curl").new
    -- the transport as transport.lua makes it: every value from the options table
    local function new_transport(o)
      local cfg = { user_agent = DEFAULTS.user_agent, connect_timeout = DEFAULTS.connect_timeout }
      for k, v in pairs(o) do cfg[k] = v end
      return curl_new(cfg)
    end
    local SIZE = 8 * 1000 * 1000

    local function video_url()
      local c = client()
      local task = assert(c:create(PARAMS))
      return assert(c:wait(task.id, { interval = 0.05, timeout = 10 })).video_url
    end

    local function download(t, url, file)
      return assert(t:send { op = "download", url = url, file = file, stall = 30, max_body = 1e9 })
    end

    -- polls until h is among the finished ones (kept for later calls); its
    -- result.  (A handle is a number, unique among its transport's: per transport.)
    local seen_by = setmetatable({}, { __mode = "k" })
    local function finish(t, h, seconds)
      local seen = seen_by[t] or {}
      seen_by[t] = seen
      local deadline = socket.gettime() + (seconds or 20)
      while not seen[h] and socket.gettime() < deadline do
        t:poll(0.05)
        for f in t.finished, t do seen[f] = true end
      end
      assert(seen[h], "the exchange did not finish")
      return t:result(h)
    end

    after_each(function() emu:config { video_size = require("cjson").null } end)

    local STEP = 512 * 1024 -- transport.h's SV_STEP: the most bytes one pass gives a body

    -- polls with no wait until f() or seconds pass; each pass's bytes of h (t:progress) on the way
    local function passes(t, h, f, seconds)
      local deadline, steps, last = socket.gettime() + (seconds or 20), {}, t:progress(h)
      while not f() and socket.gettime() < deadline do
        t:poll(0)
        local now = t:progress(h)
        steps[#steps + 1] = now - last
        last = now
        socket.sleep(0.001)
      end
      return steps
    end

    it("moves as it is polled, a pass's bytes at most a step, and a poll finishes it", function()
      emu:config { video_size = SIZE }
      local url, dir = video_url(), helper.tmpdir()
      local t = new_transport { max_connections = 4 }
      local h = download(t, url, dir .. "/a.mp4")
      socket.sleep(0.3)
      assert.equal(0, (t:progress(h)), "bytes moved without a poll")
      local steps = passes(t, h, function() return t:progress(h) == SIZE end)
      assert.equal(SIZE, (t:progress(h)))
      local most = 0
      for _, n in ipairs(steps) do most = math.max(most, n) end
      assert.is_true(most <= STEP, "a pass moved " .. most .. " bytes")
      assert.is_true(#steps >= SIZE / STEP, "the download took " .. #steps .. " passes")
      local body, err, wire, bytes, total = finish(t, h)
      assert.is_nil(err)
      assert.truthy(body)
      assert.equal("none", wire)
      assert.equal(SIZE, bytes)
      assert.equal(SIZE, total)
      assert.equal(SIZE, helper.file_size(dir .. "/a.mp4"))
      t:close()
    end)

    -- two downloads of one video, sent together on a transport of max_connections n
    local function two_downloads(n)
      emu:config { video_size = SIZE }
      local url, dir = video_url(), helper.tmpdir()
      local t = new_transport { max_connections = n }
      return t, download(t, url, dir .. "/a.mp4"), download(t, url, dir .. "/b.mp4"), dir
    end

    it("counts against max_connections: with 2, one download at a time, the next started by a poll", function()
      local t, a, b, dir = two_downloads(2)
      local steps = passes(t, a, function() return t:progress(a) == SIZE end)
      assert.equal(SIZE, (t:progress(a)), "the first download did not end in " .. #steps .. " passes")
      assert.equal(0, (t:progress(b)), "the second download started beside the first")
      assert.equal(0, helper.file_size(dir .. "/b.mp4"), "the second download wrote before its turn")
      local _, err = finish(t, a)
      assert.is_nil(err)
      _, err = finish(t, b)
      assert.is_nil(err)
      assert.equal(SIZE, helper.file_size(dir .. "/b.mp4"))
      t:close()
    end)

    it("runs downloads side by side when max_connections allows it, each at most a step a pass", function()
      local t, a, b = two_downloads(4)
      local sa = passes(t, a, function() return t:progress(a) > 0 and t:progress(b) > 0 end)
      assert.is_true(t:progress(a) > 0 and t:progress(b) > 0, "not side by side: " .. tostring(t:progress(a)) .. ", "
        .. tostring(t:progress(b)) .. " after " .. #sa .. " passes")
      assert.is_nil(select(2, finish(t, a)))
      assert.is_nil(select(2, finish(t, b)))
      t:close()
    end)

    -- a 300 MB video's URL (downloads that last), a folder, and a transport of max_connections n
    local function big(n)
      emu:config { video_size = 300 * 1000 * 1000 }
      return video_url(), helper.tmpdir(), new_transport { max_connections = n }
    end

    it("leaves a request room beside the downloads: with 2, a query ends while a download runs", function()
      local url, dir, t = big(2)
      local d = download(t, url, dir .. "/a.mp4")
      passes(t, d, function() return t:progress(d) > 0 end)
      local q = assert(t:send { op = "query", url = emu.url .. "/v1/result/none", service = true,
        max_body = DEFAULTS.max_answer })
      local _, err = finish(t, q, 10)
      assert.truthy(err, "the query did not end beside the download")
      assert.is_true(t:progress(d) < 300 * 1000 * 1000, "the download ended first")
      t:close()
    end)

    it("sends each request's lines as request.lua gives them: the service's JSON, a download's Accept", function()
      emu:config { video_size = SIZE }
      local c = client()
      local task = assert(c:create(PARAMS))
      local url = assert(c:wait(task.id, { interval = 0.05, timeout = 10 })).video_url
      assert(c:download(url, helper.tmpdir() .. "/v.mp4"))
      local seen = {}
      for _, r in ipairs(emu:requests()) do
        local what = r.method == "POST" and "create" or r.path:find("/v1/", 1, true) and "query" or "download"
        seen[what] = seen[what] or { accept = r.headers.accept, type = r.headers["content-type"] }
      end
      assert.same({ create = { accept = "application/json", type = "application/json" },
        query = { accept = "application/json" }, download = { accept = "video/mp4, */*" } }, seen)
    end)

    it("gives a queued exchange the room a cancel frees in the same poll, not after its wait", function()
      local mute = assert(socket.bind("127.0.0.1", 0)) -- (takes the connection, never answers)
      finally(function() mute:close() end)
      local _, port = mute:getsockname()
      local t = new_transport { max_connections = 1 }
      local function query(url) return assert(t:send { op = "query", url = url, service = true, max_body = 65536 }) end
      local stuck = query("http://127.0.0.1:" .. port .. "/v1/result/x")
      local queued = query(emu.url .. "/v1/result/none")
      t:poll(0.2)
      assert.is_nil(t:finished(), "an exchange finished with the only connection taken")
      t:cancel(stuck)
      assert.equal(1, t:poll(5), "the queued exchange did not finish in the poll after the cancel")
      assert.equal(queued, t:finished())
      t:close()
    end)

    it("keeps the requests' connection alive beside a download with max_connections 1", function()
      local url, dir, t = big(1)
      local d = download(t, url, dir .. "/a.mp4")
      passes(t, d, function() return t:progress(d) > 0 end)
      for _ = 1, 2 do
        local q = { op = "query", url = emu.url .. "/v1/result/none", service = true, max_body = 65536 }
        finish(t, assert(t:send(q)), 10)
      end
      local log = emu:requests()
      assert.equal(log[#log - 1].connection, log[#log].connection, "the second query opened a new connection")
      assert.is_true(t:progress(d) < 300 * 1000 * 1000, "the download ended first")
      t:close()
    end)

    it("answers a request at once when max_connections is lowered under the downloads running", function()
      local url, dir, t = big(4)
      local ds = { download(t, url, dir .. "/a.mp4"), download(t, url, dir .. "/b.mp4"),
        download(t, url, dir .. "/c.mp4") }
      passes(t, ds[3], function() return t:progress(ds[1]) > 0 and t:progress(ds[3]) > 0 end)
      t:set_max_connections(1)
      local q = assert(t:send { op = "query", url = emu.url .. "/v1/result/none", service = true,
        max_body = DEFAULTS.max_answer })
      local _, err = finish(t, q, 10)
      assert.is_number(err.status, "no answer came: " .. tostring(err)) -- (an HTTP answer: the transport's key is none)
      for i, d in ipairs(ds) do
        assert.is_true(t:progress(d) < 300 * 1000 * 1000, "download " .. i .. " ended before the query")
      end
      t:close()
    end)

    -- (a held exchange's part may end as libcurl gives back the bytes it kept for a step: it leaves the running
    -- ones then, and each exchange paused after it goes on all the same)
    it("resumes every download a step paused, a held exchange's part ending among them", function()
      emu:config { video_size = SIZE, ranges = false } -- (a host that ignores Range: the hold's 200)
      local url, dir = video_url(), helper.tmpdir()
      for _, last in ipairs { 65535, 300000, 524287, 524288, 700000, 1000000 } do
        local t = new_transport { max_connections = 8 }
        local held = assert(t:send { op = "exchange", url = url, method = "GET", range = { 0, last }, hold = true,
          max_body = 1e7 })
        local a, b = download(t, url, dir .. "/a.mp4"), download(t, url, dir .. "/b.mp4")
        local done, deadline = {}, socket.gettime() + 20
        while not (done[a] and done[b]) and socket.gettime() < deadline do
          t:poll(0)
          for h in t.finished, t do
            done[h] = true
            if h ~= held then assert.is_nil(select(2, t:result(h))) end
          end
          socket.sleep(0.002)
        end
        assert.is_true(done[held], last .. ": the held exchange's part did not end")
        assert.is_true(done[a] and done[b], last .. ": a paused download stayed paused")
        t:close()
      end
    end)

    it("sends a HEAD with a range as a HEAD: no Range, the answer taken as it is", function()
      emu:config { video_size = SIZE }
      local t = new_transport { max_connections = 2 }
      local h = assert(t:send { op = "exchange", url = video_url(), method = "HEAD", range = { 1000, 2000 },
        max_body = 1e6 })
      local task, err, wire = finish(t, h)
      assert.is_nil(err)
      assert.equal("none", wire)
      assert.equal(200, task.status)
      local log = emu:requests()
      assert.is_nil(log[#log].range)
      t:close()
    end)

    it("stops writing once cancelled, and once its transport is closed", function()
      emu:config { video_size = 300 * 1000 * 1000 }
      local url, dir = video_url(), helper.tmpdir()
      for _, how in ipairs { "cancel", "close" } do
        local t = new_transport { max_connections = 4 }
        local path = dir .. "/" .. how .. ".mp4"
        local h = download(t, url, path)
        local other = download(t, url, path .. ".other") -- polled on after the cancel
        passes(t, h, function() return t:progress(h) > 0 end)
        if how == "cancel" then t:cancel(h) else t:close() end
        local size = helper.file_size(path)
        if how == "cancel" then passes(t, other, function() return false end, 0.5) else socket.sleep(0.5) end
        assert.equal(size, helper.file_size(path), how .. ": the file still grows")
        assert.is_true(size < 300 * 1000 * 1000, how .. ": the whole video came before the " .. how)
        if how == "cancel" then
          -- the transport goes on: another exchange works
          local h2 = assert(t:send { op = "query", url = emu.url .. "/v1/result/none", service = true,
            max_body = DEFAULTS.max_answer })
          local _, err = finish(t, h2)
          assert.truthy(err)
          t:close()
        end
        collectgarbage()
        collectgarbage()
      end
    end)

    -- threads of this process, from /proc (the shell's parent is this process)
    local function threads()
      return tonumber((helper.capture("ls /proc/$PPID/task | wc -l")))
    end

    it("starts no thread, and close with downloads running (one waiting for a byte) waits for none of them", function()
      local hs = helper.hostile()
      finally(function() hs:stop() end)
      local url, dir = hs:url("held_video") .. "/v.mp4", helper.tmpdir()
      -- a server that takes the connection and never answers
      local mute = assert(socket.bind("127.0.0.1", 0))
      local _, port = mute:getsockname()
      local before = threads()
      local t = new_transport { max_connections = 8 }
      local stalled = download(t, "http://127.0.0.1:" .. port .. "/video.mp4", dir .. "/stalled.mp4")
      local running = download(t, url, dir .. "/running.mp4")
      local cancelled = download(t, url, dir .. "/cancelled.mp4")
      passes(t, running, function() return t:progress(running) > 0 and t:progress(cancelled) > 0 end)
      assert.is_true(t:progress(running) > 0 and t:progress(cancelled) > 0, "no byte came")
      assert.equal(before, threads(), "a thread was started")
      assert.equal(0, (t:progress(stalled)))
      t:cancel(cancelled)
      local t0 = socket.gettime()
      t:close()
      local took = socket.gettime() - t0
      -- close waited for no download to end (issue 78, 2: not 'under 0.5 s'; how soon is bench/deadlines.lua's): it
      -- returned before any could end by itself, the stalled one at its stall (30 s without a byte), the running one
      -- at its last byte (the server sends one each 0.1 s for 60 s)
      assert.is_true(took < 30, "close took " .. took .. " s: as long as a download's own end")
      mute:close()
      running, stalled = nil, nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
    end)

    -- The commit acts on the file the download wrote (its .part handle, the
    -- one core.part_open makes: t:result gives it, core.commit_start takes it),
    -- and checks that the file holds what went through it.
    describe("and its file", function()
      local hs
      setup(function() hs = helper.hostile() end)
      teardown(function() if hs then hs:stop() end end)
      local VIDEO_SIZE = 200003 -- hostile.lua's video

      it("commits the file it wrote, never one put at the .part's name since", function()
        local dir = helper.tmpdir()
        local part, dest = dir .. "/v.mp4.part", dir .. "/v.mp4"
        local t = new_transport { max_connections = 2 }
        local body, err, _, _, _, file = finish(t, download(t, hs:url("video") .. "/v.mp4", part))
        assert.truthy(body, tostring(err))
        assert.equal("userdata", type(file), "a whole download's result hands over its open file")
        assert.equal(getmetatable(assert(core.part_open(dir .. "/other.part", 0))), getmetatable(file),
          "the result's handle is core.part_open's")
        -- another download (another process) replaces the .part before the commit
        assert(os.remove(part))
        helper.write_file(part, string.rep("X", 1000))
        local ok, why = helper.committed(assert(core.commit_start(file, dest)))
        assert.is_false(ok)
        assert.equal("cannot commit " .. part .. ": another file took its name during the download", why)
        assert.is_false(helper.exists(dest), "the other file took the video's name")
        assert.equal(1000, helper.file_size(part), "the other file was touched")
        -- the handle was spent by that commit: handing it again is refused, clearly
        local raised, msg = pcall(core.commit_start, file, dest)
        assert.is_false(raised)
        assert.truthy(tostring(msg):find("the .part handle was already committed or closed", 1, true), msg)
        -- and the same without meddling: the video, whole
        body, err, _, _, _, file = finish(t, download(t, hs:url("video") .. "/v.mp4", part))
        assert.truthy(body, tostring(err))
        assert.is_true(helper.committed(core.commit_start(file, dest)))
        assert.equal(VIDEO_SIZE, helper.file_size(dest))
        assert.is_false(helper.exists(part))
        t:close()
      end)

      -- a new folder, the .part of name in it, and a transport
      local function fresh(name)
        local dir = helper.tmpdir()
        return dir, dir .. "/" .. name .. ".part", new_transport { max_connections = 2 }
      end

      it("hands the open file to whoever takes the result, and closes it when dropped", function()
        local dir, part, t = fresh("d.mp4")
        local function open_on(path) -- descriptors of this process open on path
          local n, pid = 0, helper.read_file("/proc/self/stat"):match("^(%d+)")
          for fd in helper.capture("ls /proc/" .. pid .. "/fd"):gmatch("%d+") do
            local ok, target = pcall(helper.capture, "readlink /proc/" .. pid .. "/fd/" .. fd)
            if ok and target and target:gsub("%s+$", "") == path then n = n + 1 end
          end
          return n
        end
        local body, err, _, _, _, file = finish(t, download(t, hs:url("video") .. "/d.mp4", part))
        assert.truthy(body, tostring(err))
        assert.equal(1, open_on(part), "the result's file is the download's open descriptor")
        file:close()
        file:close() -- closing twice is fine
        assert.equal(0, open_on(part))
        local raised, msg = pcall(core.commit_start, file, dir .. "/d.mp4")
        assert.is_false(raised)
        assert.truthy(tostring(msg):find("already committed or closed", 1, true), msg)
        raised, msg = pcall(core.commit_start, part, dir .. "/d.mp4")
        assert.is_false(raised)
        assert.truthy(tostring(msg):find("starvideos.part expected", 1, true), msg)
        -- one never closed nor committed is closed by the collector
        do
          local again, why, _, _, _, dropped = finish(t, download(t, hs:url("video") .. "/d.mp4", part))
          assert.truthy(again, tostring(why))
          assert.equal("userdata", type(dropped))
          assert.equal(1, open_on(part))
        end
        collectgarbage()
        collectgarbage()
        assert.equal(0, open_on(part), "a dropped file's descriptor stayed open")
        t:close()
      end)

      it("never commits a file that holds other bytes than it received (written past its end meanwhile)", function()
        local dir, part, t = fresh("w.mp4")
        local h = download(t, hs:url("slow_video") .. "/w.mp4", part)
        assert.is_true(helper.wait_until(function()
          t:poll(0.01)
          return (helper.file_size(part) or 0) > 0
        end), "no byte came")
        -- another process writes into the same file, past the end the video will have
        local f = assert(io.open(part, "r+b"))
        assert(f:seek("set", VIDEO_SIZE + 100))
        f:write("junk")
        f:close()
        local body, err, _, bytes, _, file = finish(t, h)
        assert.truthy(body, tostring(err))
        assert.equal(VIDEO_SIZE, bytes)
        local ok, why = helper.committed(core.commit_start(file, dir .. "/w.mp4"))
        assert.is_false(ok)
        assert.equal(string.format("cannot commit %s: it holds %d bytes where %d were written", part, VIDEO_SIZE + 104,
          VIDEO_SIZE), why)
        assert.is_false(helper.exists(dir .. "/w.mp4"))
        t:close()
      end)
    end)

    -- A host of csrc/test/ and the Lua 5.4 module it loads, built: the
    -- command that runs it (uninstrumented), or nil under another VM (pending)
    local function lua54_host(name)
      if helper.vm ~= "lua5.4" then pending("runs under lua5.4 (the host is Lua 5.4)") return end
      local root, q = helper.root, helper.shell_quote
      local built, ok = helper.capture("make --no-print-directory -C " .. q(root)
        .. " build/" .. name .. " build/starvideos/curl.so 2>&1")
      assert.is_true(ok, built)
      return q(root .. "/build/" .. name) .. " " .. q(root .. "/build/?.so")
    end
    local q = helper.shell_quote

    -- csrc/test/unload_test.c: Lua 5.4 (the host's own), so once, under lua5.4
    it("a host that unloads the module right after close does not crash (12 runs)", function()
      local host = lua54_host("unload_test")
      if not host then return end
      emu:config { video_size = 300 * 1000 * 1000 }
      local url, dir = video_url(), helper.tmpdir()
      for run = 1, 12 do
        local out, ok = helper.capture(helper.UNINSTRUMENTED .. host .. " " .. q(url) .. " " .. q(dir) .. " 2>&1")
        assert.is_true(ok, "run " .. run .. ": " .. out)
        assert.equal("ok\n", out)
      end
    end)
  end)
end)
