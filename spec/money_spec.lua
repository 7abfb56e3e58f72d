-- What must hold because every create costs money, and the crash-proofing of the
-- binding: found by review, kept here so they stay fixed.
local helper = require "spec.helper"
local socket = require "socket"
local starvideos = require "starvideos"
local journal = require "starvideos.journal"

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
    assert.is_true(elapsed < 3, "waited " .. elapsed .. " s")
  end)
end)
