-- A media request's tap on the libcurl transport (the bucket sink's parts, storage/object.lua): the bytes fed to
-- a stream (starvideos.sign's: the video's check) as they come, a write at a time and at most SV_TAP_STEP (256 KiB)
-- in one poll, so that no step of a game's loop hashes a 5 MiB part at once; the body handed over as
-- starvideos.bytes (not copied into a Lua string) and sent as it is by a PUT.  Counts of bytes, no timings.
local helper = require "spec.helper"
local socket = require "socket"
local starvideos = require "starvideos"

local MB, PART, STEP = 1024 * 1024, 5 * 1024 * 1024, 256 * 1024

describe("a media request's tap (libcurl)", function()
  local emu, url, sign, curl
  setup(function()
    emu = helper.emulator { queued = 0, processing = 0.05 }
    emu:config { video_size = 12 * MB }
    local c = starvideos.new { api_key = emu.key, base_url = emu.url }
    local id = assert(c:create { model = "videos", prompt = "tap", duration = 5 }).id
    local task = assert(c:wait(id, { interval = 0.1, timeout = 30 }))
    url = assert(task.video_url)
    c:close()
    sign, curl = require "starvideos.sign", require "starvideos.curl"
  end)
  teardown(function() emu:stop() end)

  local function transport()
    return curl.new { user_agent = "tap-spec", connect_timeout = 5, max_connections = 4 }
  end

  -- One Range GET of n bytes from offset with tap s, polled with a pause between polls (the socket fills
  -- meanwhile, as it does between a game's frames): task, err, and the most bytes fed in one poll.
  local function get(t, s, offset, n)
    local h = assert(t:send { op = "exchange", method = "GET", url = url, range = { offset, offset + n - 1 },
      max_body = n, follow = true, timeout = 30, tap = s })
    local most, before = 0, 0
    repeat
      socket.sleep(0.01)
      t:poll(0)
      local fed = s:tapped() or before
      most, before = math.max(most, fed - before), fed
    until t:finished() == h
    local task, err = t:result(h)
    return task and task.body, err, most
  end

  it("feeds the stream a write at a time, at most 256 KiB in one poll, and hands the body over unhashed", function()
    local t, s = transport(), assert(sign.stream(-1))
    local bytes, err, most = get(t, s, 0, PART)
    assert.is_nil(err)
    assert.are.equal("userdata", type(bytes)) -- starvideos.bytes, not a 5 MiB string
    assert.are.equal(PART, #bytes)
    local fed, largest = s:tapped()
    assert.are.equal(PART, fed) -- every byte, once
    assert.is_true(largest > 0 and largest <= 64 * 1024, "a write's bytes at once: " .. tostring(largest))
    assert.is_true(most <= STEP + largest, "bytes fed in one poll: " .. most)
    -- its state (the SHA-256's middle state and the MP4 check's) is that of the same bytes fed whole
    local whole = assert(sign.stream(-1))
    local text = bytes:sub(1)
    assert(whole:feed(text))
    assert.are.equal(PART, s:at())
    assert.are.equal(assert(whole:save()), assert(s:save()))
    assert.are.equal(#text - 10, #bytes:sub(11))
    bytes:free()
    assert.are.equal(0, #bytes)
    t:close()
  end)

  it("goes on from a part's state: the second part's bytes are the file's, the whole SHA-256 the file's", function()
    local t = transport()
    local s = assert(sign.stream(-1))
    local first = assert(get(t, s, 0, PART))
    local state = assert(s:save())
    s:close()
    local s2 = assert(sign.stream(-1, state))
    local rest, err = get(t, s2, PART, 12 * MB - PART)
    assert.is_nil(err)
    assert.are.equal(12 * MB - PART, (s2:tapped()))
    assert.are.equal(sign.sha256(first:sub(1) .. rest:sub(1)), (s2:finish()))
    t:close()
  end)

  it("stops feeding bytes that cannot be a whole MP4, and says why", function()
    local t, s = transport(), assert(sign.stream(-1))
    local bytes = assert(get(t, s, 4096, 64 * 1024)) -- (the middle of an mdat: no box starts there)
    local fed, why = s:tapped()
    assert.is_nil(fed)
    assert.is_string(why)
    assert.are.equal(64 * 1024, #bytes) -- (the bytes are still read: the sink fails the part)
    t:close()
  end)
end)
