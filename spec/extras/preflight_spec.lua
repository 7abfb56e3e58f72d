-- Preflight (extras/preflight.lua): a create's reference media read over the loopback
-- from the emulator's /media/ route (real media files made to order: docs/emulator.md),
-- checked against each model's rules before the create is sent.  The emulator's log
-- tells what was sent: no create for a refused request, one for an accepted one, never
-- the key at /media/.  One case needs what the emulator does not do (a server answering
-- a Range with the whole file): spec/support/hostile.lua's /s/media/ serves it.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"

local KEY = "sk-preflight-spec-5d1e"
local MB = 1024 * 1024

local emu
shared_emulator({ key = KEY, queued = 0.05, processing = 0.05 }, function(e) emu = e end)

-- A query string of o's keys, sorted.
local function query(o)
  local keys = {}
  for k, v in pairs(o or {}) do keys[#keys + 1] = k .. "=" .. tostring(v) end
  table.sort(keys)
  return table.concat(keys, "&")
end

-- One call's world on the emulator (reset before each test): a client, its preflight
-- events, the media URLs, the creates and media requests it logged.
local function world(opts)
  local w = { api = emu.url, events = {} }
  local o = { api_key = KEY, base_url = emu.url, max_retries = 0, timeout = 5,
    on_event = function(ev) if ev.type == "preflight" then w.events[#w.events + 1] = ev end end }
  for k, v in pairs(opts or {}) do o[k] = v end
  w.client = starvideos.new(o)
  -- a media file of type kind: o's keys are the emulator's (seconds, w, h, bytes, moov, status, redirect)
  function w.file(kind, mo)
    local q = { type = kind }
    for k, v in pairs(mo or {}) do q[k] = v end
    return string.format("%s/media/f.%s?%s", emu.url, kind, query(q))
  end
  function w.status(code) return w.file("png", { status = code }) end
  function w.creates() return emu:creates() end
  function w.fetches() -- the media requests, none with the key
    local list = {}
    for _, r in ipairs(emu:requests()) do
      if r.path:find("^/media/") then
        assert.is_falsy(r.authorization, "the key went to the media host: " .. r.path)
        assert.is_nil(r.headers.authorization, "the key went to the media host: " .. r.path)
        list[#list + 1] = r
      end
    end
    return list
  end
  return w
end

local GOOD_VIDEO = { seconds = 5, w = 1280, h = 720 }
local BASE = {
  starvideos_o3 = { model = "starvideos_o3", prompt = "a cat" },
  videos = { model = "videos", prompt = "a cat", duration = 5 },
  videos_fast = { model = "videos_fast", prompt = "a cat", duration = 5 },
  videos_stable = { model = "videos_stable", prompt = "a cat", duration = 5 },
  videos_stable_fast = { model = "videos_stable_fast", prompt = "a cat", duration = 5 },
}
local MODELS = { "starvideos_o3", "videos", "videos_fast", "videos_stable", "videos_stable_fast" }
local AUDIOS = { videos = 3, videos_stable = 1, videos_stable_fast = 1 } -- the others take none

local function params_of(model, refs)
  local p = {}
  for k, v in pairs(BASE[model]) do p[k] = v end
  for k, v in pairs(refs) do p[k] = v end
  return p
end

-- The references of a lone video of this length and frame size.
local function one_video(w, seconds, width, height)
  return { referenceVideos = { w.file("mp4", { seconds = seconds, w = width, h = height }) } }
end

-- A create refused before it was sent: the error names field and says match.
local function refused(w, model, refs, field, match)
  local task, err = w.client:create(params_of(model, refs))
  assert.is_nil(task, "a create went through on " .. model)
  assert.equal("invalid_request", err.kind, tostring(err))
  assert.equal(field, err.field, tostring(err))
  assert.truthy(err.message:find(match, 1, true), "message: " .. err.message)
  assert.equal(0, w.creates(), "a refused create reached the server")
  return err
end

-- A create sent once, its references read; the notes (events) returned.
local function accepted(w, model, refs)
  local task, err = w.client:create(params_of(model, refs))
  assert.is_table(task, tostring(err))
  assert.equal(1, w.creates())
  return w.events
end

describe("preflight on each model", function()
  for _, model in ipairs(MODELS) do
    describe(model, function()
      it("sends a create whose references suit it, each read with a HEAD and one Range GET of 64 KiB", function()
        local w = world()
        local refs = { referenceImages = { w.file("png", { w = 800, h = 600 }), w.file("jpeg", {}) },
          referenceVideos = { w.file("mp4", GOOD_VIDEO) } }
        if AUDIOS[model] then refs.referenceAudios = { w.file("mp3", { seconds = 5 }) } end
        assert.same({}, accepted(w, model, refs))
        local heads, gets = 0, 0
        for _, r in ipairs(w.fetches()) do
          if r.method == "HEAD" then heads = heads + 1 end
          if r.method == "GET" then gets = gets + 1; assert.equal("bytes=0-65535", r.headers.range) end
        end
        local n = AUDIOS[model] and 4 or 3
        assert.same({ n, n }, { heads, gets })
      end)

      it("sends a create with first and last frames that are images", function()
        local w = world()
        local last = w.file("webp", { w = 64, h = 64 })
        accepted(w, model, { first_image = w.file("png", {}), last_image = last })
      end)

      it("refuses a video in an image field and an image in a video field", function()
        local w = world()
        refused(w, model, { referenceImages = { w.file("png", {}), w.file("mp4", GOOD_VIDEO) } }, "referenceImages[2]",
          "referenceImages takes image media")
        refused(w, model, { referenceVideos = { w.file("gif", {}) } }, "referenceVideos[1]",
          "referenceVideos takes video media")
        refused(w, model, { first_image = w.file("mp4", GOOD_VIDEO), last_image = w.file("png", {}) }, "first_image",
          "first_image takes image media")
      end)

      it("refuses an image of 20 MB or more", function()
        local w = world()
        refused(w, model, { referenceImages = { w.file("png", { bytes = 21 * MB }) } }, "referenceImages[1]",
          "each image must be under 20 MB")
        refused(w, model, { first_image = w.file("png", {}), last_image = w.file("jpeg", { bytes = 20 * MB }) },
          "last_image", "each image must be under 20 MB")
      end)

      it("refuses a reference video whose shorter side is not 720 to 2160 px", function()
        local w = world()
        refused(w, model, one_video(w, 5, 640, 480), "referenceVideos[1]", "640x480 px")
        refused(w, model, one_video(w, 5, 4096, 2304), "referenceVideos[1]", "shorter side must be 720 to 2160 px")
      end)

      it("reads an MP4 whose moov is at its end from its tail: a third request", function()
        local w = world()
        local mo = { seconds = 5, w = 720, h = 1280, moov = "end", bytes = 3 * MB }
        accepted(w, model, { referenceVideos = { w.file("mp4", mo) } })
        local ranges = {}
        for _, r in ipairs(w.fetches()) do ranges[#ranges + 1] = r.method .. " " .. tostring(r.headers.range) end
        assert.equal(3, #ranges)
        assert.same({ "HEAD nil", "GET bytes=0-65535" }, { ranges[1], ranges[2] })
        assert.truthy(ranges[3]:find("^GET bytes=%d+%-%d+$"), ranges[3])
      end)

      if model == "starvideos_o3" then
        it("takes one reference video of 3 to 10 s", function()
          local w = world()
          refused(w, model, one_video(w, 2, 1280, 720), "referenceVideos[1]",
            "starvideos_o3 takes one reference video of 3 to 10 s")
          refused(w, model, one_video(w, 11, 1280, 720), "referenceVideos[1]", "the video is 11 s long")
          accepted(w, model, one_video(w, 10, 1280, 720))
        end)

        it("refuses a reference video over 200 MB", function()
          local w = world()
          refused(w, model, { referenceVideos = { w.file("mp4", { seconds = 5, bytes = 201 * MB }) } },
            "referenceVideos[1]", "the limit is 200 MB")
        end)
      else
        it("takes a lone reference video of 11 s (O3's 3 to 10 s is O3's own)", function()
          local w = world()
          accepted(w, model, one_video(w, 11, 1280, 720))
        end)

        it("refuses reference videos of more than 15 s or 200 MB in total, naming the one that passes it", function()
          local w = world()
          local v8 = w.file("mp4", { seconds = 8, w = 1280, h = 720 })
          refused(w, model, { referenceVideos = { v8, v8 } }, "referenceVideos[2]", "come to 16 s in total")
          local big = w.file("mp4", { seconds = 5, w = 1280, h = 720, bytes = 110 * MB })
          refused(w, model, { referenceVideos = { big, big } }, "referenceVideos[2]", "the limit is 200 MB")
        end)

        it("refuses a video in the legacy image field (O3 has none)", function()
          local w = world()
          refused(w, model, { image = w.file("mp4", GOOD_VIDEO), lastFrameImage = w.file("png", {}) }, "image",
            "image takes image media")
        end)
      end

      if AUDIOS[model] then
        it("refuses reference audios of more than 15 s in total, and an image among them", function()
          local w = world()
          local list = {}
          for i = 1, AUDIOS[model] do list[i] = w.file("wav", { seconds = 16 / AUDIOS[model] + 0.5 }) end
          refused(w, model, { referenceAudios = list }, "referenceAudios[" .. AUDIOS[model] .. "]",
            "the limit is 15 s")
          refused(w, model, { referenceAudios = { w.file("png", {}) } }, "referenceAudios[1]",
            "referenceAudios takes audio media")
          accepted(w, model, { referenceAudios = { w.file("ogg", { seconds = 4 }) } }) -- its length from its last page
        end)
      end
    end)
  end
end)

describe("preflight", function()
  for _, status in ipairs { 401, 403, 404, 410 } do
    it("refuses a reference whose URL answers " .. status .. ", without a GET after the HEAD", function()
      local w = world()
      refused(w, "videos", { referenceImages = { w.file("png", {}), w.status(status) } }, "referenceImages[2]",
        "the URL answered HTTP " .. status)
      local methods = {}
      for _, r in ipairs(w.fetches()) do
        if r.path:find("status=", 1, true) then methods[#methods + 1] = r.method end
      end
      assert.same({ "HEAD" }, methods)
    end)
  end

  it("tells what it cannot check as an event and creates: a 500, bytes of no known type, a host not there", function()
    local w = world()
    emu:fault { path = "/media/page", body = "\1\2\3 no known format", count = 2 } -- (text is refused: refs_spec)
    local refs = { referenceImages = { w.status(500), emu.url .. "/media/page.png",
      "http://127.0.0.1:" .. helper.refusing_port() .. "/c.png" } }
    local notes = accepted(w, "videos", refs)
    assert.equal(3, #notes)
    for i, ev in ipairs(notes) do
      assert.equal("preflight", ev.type)
      assert.is_nil(ev.id)
      assert.equal("referenceImages[" .. i .. "]", ev.field)
    end
    assert.truthy(notes[1].message:find("HTTP 500", 1, true), notes[1].message)
    assert.truthy(notes[2].message:find("could not be read", 1, true), notes[2].message)
    assert.truthy(notes[3].message:find("network error", 1, true), notes[3].message)
  end)

  it("with preflight = \"strict\" refuses what it cannot check", function()
    local w = world { preflight = "strict" }
    local gone = "http://127.0.0.1:" .. helper.refusing_port() .. "/c.png"
    local err = refused(w, "videos", { referenceImages = { w.file("png", {}), gone } }, "referenceImages[2]",
      "network error")
    assert.truthy(err.message:find('preflight = "strict"', 1, true), err.message)
    assert.same({}, w.events)
  end)

  it("with preflight = false reads nothing and creates", function()
    local w = world { preflight = false }
    accepted(w, "videos", { referenceImages = { w.status(404) } })
    assert.same({}, w.fetches())
  end)

  it("follows a redirect to the media", function()
    local w = world()
    local url = w.file("mp4", { seconds = 5, w = 640, h = 360, redirect = 1 })
    refused(w, "videos", { referenceVideos = { url } }, "referenceVideos[1]", "640x360 px")
    local seen = {}
    for _, r in ipairs(w.fetches()) do
      seen[#seen + 1] = r.method .. (r.path:find("redirect=1", 1, true) and " 302" or "")
    end
    assert.same({ "HEAD 302", "HEAD", "GET 302", "GET" }, seen)
  end)

  it("reads at most 64 KiB of a server that answers a Range with the whole file", function()
    local hs = helper.hostile() -- the emulator honours Range: hostile.lua's /s/media/ with norange does not
    local w = world()
    local url = hs:url("media") .. "/mp4/bytes=" .. 50 * MB .. ",norange=true,seconds=5/v.mp4"
    local ok, err = pcall(accepted, w, "videos", { referenceVideos = { url } })
    local got = hs:requests(url)
    hs:stop()
    assert(ok, err)
    assert.same({ "HEAD", "GET" }, { got[1].method, got[2].method })
    assert.equal("bytes=0-65535", got[2].headers.range)
  end)

  it("reads the references of one create at once: every HEAD arrives before the first GET", function()
    local w = world()
    local refs = {}
    for i = 1, 4 do refs[i] = w.file("png", { w = 100 + i }) end
    emu:fault { path = "/media/", delay = 0.2, count = 8 }
    accepted(w, "videos", { referenceImages = refs })
    local order = {}
    for _, r in ipairs(w.fetches()) do order[#order + 1] = r.method end
    assert.same({ "HEAD", "HEAD", "HEAD", "HEAD", "GET", "GET", "GET", "GET" }, order)
  end)

  it("in a job: step(0) returns while the references are read; the create follows; a cancel creates nothing",
    function()
      local w = world()
      emu:fault { path = "/media/", delay = 0.3, count = 4 }
      local params = params_of("videos", { referenceImages = { w.file("png", {}) } })
      local job = assert(w.client:start(params, { interval = 0.05 }))
      w.client:step(0)
      assert.same({ "creating", false }, { job.state, job.done })
      assert.equal(0, w.creates())
      while not (job.id or job.done) do w.client:step(0.05) end
      assert.is_string(job.id, tostring(job.err))
      assert.equal(1, w.creates())
      local other = assert(w.client:start(params))
      w.client:step(0)
      other:cancel()
      assert.same({ "cancelled", "io" }, { other.state, other.err.kind })
      w.client:step(0.5)
      assert.equal(1, w.creates())
      job:cancel()
    end)

  it("guards generate and generate_all too; check creates nothing", function()
    local w = world()
    local bad = { referenceImages = { w.file("mp4", GOOD_VIDEO) } }
    local task, err = w.client:generate(params_of("videos", bad), { interval = 0.05 })
    assert.is_nil(task)
    assert.equal("referenceImages[1]", err.field)
    local results = w.client:generate_all({ params_of("videos", bad), params_of("videos", {}) },
      { out = helper.tmpdir() .. "/%d.mp4", interval = 0.05, timeout = 5 })
    assert.equal("referenceImages[1]", results[1].err.field)
    assert.equal(1, w.creates()) -- the second, which names no media
    local notes, cerr = w.client:check(params_of("videos", { referenceImages = { w.file("png", {}) } }))
    assert.same({}, notes, tostring(cerr))
    assert.equal(1, w.creates())
  end)
end)

describe("the command line", function()
  local BIN = helper.root .. "/bin/starvideos"
  local function run(w, args, with_key)
    local cmd = { "env", "-u", "STARVIDEOS_API_KEY", "STARVIDEOS_BASE_URL=" .. helper.shell_quote(w.api) }
    if with_key then cmd[#cmd + 1] = "STARVIDEOS_API_KEY=" .. KEY end
    cmd[#cmd + 1] = helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(BIN)
    for _, a in ipairs(args) do cmd[#cmd + 1] = helper.shell_quote(a) end
    local errfile = os.tmpname()
    local out, _, code = helper.capture(table.concat(cmd, " ") .. " 2>" .. errfile .. " </dev/null")
    local err = helper.read_file(errfile) or ""
    os.remove(errfile)
    return { out = out, err = err, code = code }
  end
  local REQ = { "--model", "videos", "--prompt", "a cat", "--duration", "5" }
  local function with(list, ...)
    local args = { ... }
    for _, a in ipairs(list) do args[#args + 1] = a end
    return args
  end

  it("check: exit 0 and the notes for what could not be checked, exit 2 naming the flag for a refusal", function()
    local w = world()
    local r = run(w, with(with(REQ, "--ref-video", w.file("mp4", GOOD_VIDEO)), "check", "--json"))
    assert.equal(0, r.code, r.err)
    assert.same({ ok = true, notes = {}, warnings = {} }, cjson.decode(r.out))
    r = run(w, with(REQ, "check", "--ref-image", "http://127.0.0.1:" .. helper.refusing_port() .. "/a.png"))
    assert.equal(0, r.code, r.err)
    assert.truthy(r.err:find("note: referenceImages[1]:", 1, true), r.err)
    r = run(w, with(REQ, "check", "--preflight", "strict", "--ref-image", "http://127.0.0.1:" .. helper.refusing_port()
      .. "/a.png"))
    assert.equal(2, r.code, r.err)
    r = run(w, with(REQ, "check", "--ref-video", w.file("mp4", { seconds = 5, w = 320, h = 240 })))
    assert.equal(2, r.code)
    assert.truthy(r.err:find("^starvideos check: %-%-ref%-video #1: "), r.err)
    assert.is_nil(r.err:find("for usage", 1, true), r.err) -- a refusal of the media, not of the command line
    assert.equal(0, w.creates())
  end)

  it("create refuses a 404 reference (exit 2, nothing sent), and sends it with --preflight off", function()
    local w = world()
    local url = w.status(404)
    local r = run(w, with(REQ, "create", "--ref-image", url), true)
    assert.equal(2, r.code, r.err)
    assert.truthy(r.err:find("HTTP 404", 1, true), r.err)
    assert.is_nil(r.err:find("--help", 1, true), r.err)
    assert.equal(0, w.creates())
    r = run(w, with(REQ, "create", "--ref-image", url, "--preflight", "off"), true)
    assert.equal(0, r.code, r.err)
    assert.equal(1, w.creates())
  end)
end)
