-- What must hold because every create costs money, and the crash-proofing of the
-- binding: found by review, kept here so they stay fixed.
local helper = require "spec.helper"
local socket = require "socket"
local starvideos = require "starvideos"
local journal = require "starvideos.records.journal"

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

describe("money and robustness", function()
  local emu
  setup(function() emu = helper.emulator { queued = 0.1, processing = 0.1 } end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)
  before_each(function() emu:reset() end)

  local function client(opts)
    opts = opts or {}
    opts.api_key, opts.base_url, opts.retry_backoff = emu.key, emu.url, 0.01
    return starvideos.new(opts)
  end

  local function posts()
    local n = 0
    for _, r in ipairs(emu:requests()) do if r.method == "POST" then n = n + 1 end end
    return n
  end

  it("never sends a create twice when a kept-alive connection dies under it", function()
    local c = client()
    assert.equal("not_found", select(2, c:query("warm-up")).kind) -- a live connection to reuse
    local before = #emu:tasks()
    emu:fault { method = "POST", drop = true, after = true }
    local task, err = c:create(PARAMS)
    assert.is_nil(task)
    assert.is_true(err.maybe_created)
    assert.equal(1, posts())
    assert.equal(before + 1, #emu:tasks())
    c:close() -- its connections go with it (the next client of the key gets a fresh loop)
  end)

  it("a client used once, new():generate(), lives until its call ends, a collection meanwhile included", function()
    local function gc() collectgarbage(); collectgarbage() end
    local task = assert(client():generate(PARAMS, { interval = 0.05, on_progress = gc }))
    assert.equal("completed", task.status)
    local results = client():wait_all({ task.id }, { interval = 0.05, on_progress = gc })
    assert.equal(task.id, results[1].task.id)
    local path = helper.tmpdir() .. "/tasks.jsonl"
    local paid = assert(client { journal = path }:create(PARAMS))
    results = client { journal = path }:resume { dir = helper.tmpdir(), interval = 0.05, on_progress = gc }
    assert.equal(paid.id, results[1].task.id)
    assert.is_nil(results[1].err)
    gc() -- all collected here, their loop with them
  end)

  it("still reuses connections for queries after a create", function()
    local c = client()
    local task = assert(c:create(PARAMS))
    for _ = 1, 3 do assert(c:query(task.id)) end
    local conns = {}
    for _, r in ipairs(emu:requests()) do conns[r.connection] = true end
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.equal(1, n)
  end)

  it("keeps the id of a created task whose answer cannot be decoded, and journals it", function()
    local path = helper.tmpdir() .. "/tasks.jsonl"
    local c = client { journal = path }
    emu:fault { method = "POST", after = true, status = 200,
      body = '{"id":"video_garbled_1","status":"queued","prompt":"a cat \\ud83d"}' }
    local task, err = c:create(PARAMS)
    assert.is_nil(task)
    assert.equal("protocol", err.kind)
    assert.is_true(err.maybe_created)
    assert.equal("video_garbled_1", err.id)
    assert.equal(1, posts())
    local list = assert(journal.read(path))
    assert.equal("video_garbled_1", list[1].id)
  end)

  it("keeps the id of a created task whose answer lacks a status", function()
    local c = client()
    emu:fault { method = "POST", after = true, status = 200, body = '{"id":"video_nostatus_1"}' }
    local _, err = c:create(PARAMS)
    assert.equal("protocol", err.kind)
    assert.is_true(err.maybe_created)
    assert.equal("video_nostatus_1", err.id)
  end)

  it("converts params with thousands of list fields inside a coroutine without crashing", function()
    local p = { model = "videos", prompt = "x", duration = 5, extra = {} }
    for i = 1, 3000 do
      p["f" .. i] = { "a" }
      p.extra["k" .. i] = { i }
    end
    local ok, err = coroutine.wrap(function() return starvideos.validate(p) end)()
    assert.is_nil(ok)
    assert.equal("invalid_request", err.kind)
    p = { model = "videos", prompt = "x", duration = 5, extra = p.extra }
    assert.is_true(coroutine.wrap(function() return starvideos.validate(p) end)())
  end)

  it("refuses a video URL with no host", function()
    local dir = helper.tmpdir()
    for _, u in ipairs { "http://", "https://", "http:///x.mp4" } do
      local ok, err = client():download(u, dir .. "/v.mp4")
      assert.is_nil(ok)
      assert.equal("invalid_request", err.kind)
      assert.equal("video_url", err.field)
    end
    assert.same({}, emu:requests())
  end)

  it("ends a wait at its deadline even when the interval is longer", function()
    local c = client()
    emu:config { processing = 30 }
    local task = assert(c:create(PARAMS))
    local t0 = socket.gettime()
    local got, err = c:wait(task, { interval = 10, timeout = 1 })
    local elapsed = socket.gettime() - t0
    assert.is_nil(got)
    assert.equal("timeout", err.kind)
    assert.equal(task.id, err.id)
    -- returned before its 10 s interval could end: it did not sleep the interval out (issue 78, 2: not 'under
    -- 3 s'; how soon after its deadline is bench/deadlines.lua's)
    assert.is_true(elapsed < 10, "waited " .. elapsed .. " s, its interval 10 s")
  end)

  it("finds an unwritable journal before paying: nothing is sent", function()
    local dir = helper.tmpdir()
    assert(os.execute("mkdir " .. dir .. "/ro && chmod 555 " .. dir .. "/ro"))
    local probe = io.open(dir .. "/ro/probe", "w") -- root writes anywhere: use a directory as the file
    if probe then probe:close(); os.remove(dir .. "/ro/probe") end
    for _, jpath in ipairs { dir .. "/missing/dir/tasks.jsonl", dir, probe and dir .. "/ro" or dir .. "/ro/t" } do
      local task, err = client({ journal = jpath }):create(PARAMS)
      assert.is_nil(task)
      assert.equal("io", err.kind)
      assert.equal("journal", err.field)
      assert.is_falsy(err.maybe_created)
      assert.matches("nothing was sent", err.message)
    end
    assert.equal(0, posts())
  end)

  it("refuses an API key with a control character before any request", function()
    for _, key in ipairs { "abc\r\nX-Injected: 1", "abc\n", "a\0b", "tab\tkey", "del\127" } do
      local ok, msg = pcall(starvideos.new, { api_key = key, base_url = emu.url })
      assert.is_false(ok)
      assert.matches("api_key", msg)
      assert.is_nil(msg:find(key, 1, true)) -- the key is not echoed
    end
    assert.same({}, emu:requests())
  end)

  it("refuses base URLs that are not http(s)://host[:port][/path], naming the option", function()
    for _, u in ipairs { "http://127.0.0.1:1/a b", "http://x\r\nHost: y", "http://x/?q=1", "http://x/#f",
      "http://user:pw@x/", "http://:80/", "http://x:0/", "http://x:99999/", "ftp://x/", "x" } do
      local ok, msg = pcall(starvideos.new, { api_key = "k", base_url = u })
      assert.is_false(ok, u)
      assert.matches("base_url", msg)
      assert.is_nil(msg:find("pw@", 1, true))
    end
    assert.equal("starvideos client (http://127.0.0.1:8/x)",
      tostring(starvideos.new { api_key = "k", base_url = "http://127.0.0.1:8/x/" }))
  end)

  it("refuses numeric options out of range, naming the option", function()
    local bad = {
      timeout = { math.huge, 1e300, 0, -1, 0 / 0, 86401 }, connect_timeout = { math.huge, 0 },
      max_retries = { 11, -1, 1.5, math.huge }, max_connections = { 0, 1025, 2 ^ 40 },
      requests_per_second = { 0, math.huge }, retry_backoff = { -1, math.huge },
    }
    for name, values in pairs(bad) do
      for _, v in ipairs(values) do
        local ok, msg = pcall(starvideos.new, { api_key = "k", base_url = emu.url, [name] = v })
        assert.is_false(ok, name .. " = " .. tostring(v))
        assert.matches("'" .. name .. "'", msg)
      end
    end
    local c = client()
    assert.has_error(function() c:wait("x", { timeout = math.huge }) end)
    assert.has_error(function() c:download("http://127.0.0.1:1/v.mp4", "/tmp/x.mp4", { timeout = 1e300 }) end)
    assert.same({}, emu:requests())
  end)
end)
