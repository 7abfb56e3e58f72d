-- The media readers of starvideos.core (media_sniff, media_tail, media_check,
-- the commit's whole-MP4 check) and sign.sha256 / sign.sha256_file, through the binding.  The files
-- are built here byte by byte; the limits below are copied from
-- shared/api/README.md ("Media limits"): images under 20 MB each; reference
-- videos 15 s and 200 MB in total, 720-2160 px each (O3: one video, 3-10 s);
-- reference audios 15 s in total.

local core = require "starvideos.core"

local bytes = require "spec.support.media_bytes"
local be32, be16, le32, box, zeros, ftyp = bytes.be32, bytes.be16, bytes.le32, bytes.box, bytes.zeros, bytes.ftyp
local function moov(scale, duration, w, h) return bytes.moov(0, scale, duration, w, h) end

local function video(over)
  local info = { kind = "video", type = "mp4", width = 1280, height = 720, duration = 5, size = 1000000 }
  for k, v in pairs(over or {}) do info[k] = v end
  return info
end
local function item(name, i, info, status)
  return { field = i and (name .. "[" .. i .. "]") or name, name = name, info = info, status = status }
end

describe("core.media_sniff", function()
  it("reads a PNG's width and height and keeps the size given", function()
    local png = "\137PNG\r\n\26\n" .. be32(13) .. "IHDR" .. be32(640) .. be32(480)
    local info = assert(core.media_sniff(png, 5000))
    assert.same({ kind = "image", type = "png", width = 640, height = 480, size = 5000 }, info)
  end)

  it("reads a GIF and a JPEG", function()
    assert.same({ kind = "image", type = "gif", width = 320, height = 200 },
      core.media_sniff("GIF89a\64\1\200\0"))
    local jpeg = "\255\216\255\224" .. be16(16) .. "JFIF\0" .. zeros(9) .. "\255\192" .. be16(17) .. "\8"
      .. be16(1080) .. be16(1920)
    assert.same({ kind = "image", type = "jpeg", width = 1920, height = 1080 }, core.media_sniff(jpeg))
  end)

  it("reads an MP4's duration from mvhd and its frame size from tkhd", function()
    local mp4 = ftyp("isom") .. moov(1000, 6500, 1280, 720) .. box("mdat", zeros(10))
    local info = assert(core.media_sniff(mp4, #mp4))
    assert.same({ kind = "video", type = "mp4", width = 1280, height = 720, duration = 6.5, size = #mp4 }, info)
    assert.equal("mov", core.media_sniff(ftyp("qt  ") .. moov(600, 600, 1920, 1080)).type)
    local m4a = assert(core.media_sniff(ftyp("M4A ") .. moov(44100, 441000, 0, 0)))
    assert.same({ kind = "audio", type = "m4a", duration = 10 }, m4a)
  end)

  it("asks for the tail of an MP4 whose moov is at the end, and media_tail reads it", function()
    local head = ftyp("mp42") .. be32(1000000) .. "mdat" .. zeros(64)
    local tail = moov(90000, 900000, 720, 1280)
    local info = assert(core.media_sniff(head, 20 + 1000000 + #tail))
    assert.equal(20 + 1000000, info.tail)
    assert.is_nil(info.duration)
    local full = assert(core.media_tail(info, tail, info.tail))
    assert.equal(info, full)
    assert.equal(10, full.duration)
    assert.equal(720, full.width)
    assert.equal(1280, full.height)
    assert.is_nil(full.tail)
  end)

  it("reads an OGG Vorbis file's duration from its last page", function()
    local page = bytes.ogg_page
    local head = page(0, 30) .. "\1vorbis" .. zeros(5) .. le32(44100) .. zeros(14)
    local info = assert(core.media_sniff(head, 200000))
    assert.equal("ogg", info.type)
    assert.equal(200000 - 65536, info.tail)
    local last = zeros(50) .. page(44100 * 12, 0)
    local full = assert(core.media_tail(info, last, 200000 - #last))
    assert.equal(12, full.duration)
  end)

  it("reads a WAV's and a constant bit rate MP3's duration", function()
    local wav = "RIFF" .. le32(0) .. "WAVEfmt " .. le32(16) .. "\1\0\2\0" .. le32(44100) .. le32(176400)
      .. "\4\0\16\0data" .. le32(176400 * 4)
    assert.equal(4, core.media_sniff(wav).duration)
    local mp3 = "\255\251\144\0" .. zeros(100) -- MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
    assert.same({ kind = "audio", type = "mp3", duration = 8, size = 128000 }, core.media_sniff(mp3, 128000))
  end)

  it("gives nil and why for bytes that are no media, and refuses a box below its header", function()
    local info, why = core.media_sniff("\0\1\2\3 no known format")
    assert.is_nil(info)
    assert.matches("not an image, video or audio file", why, 1, true)
    info, why = core.media_sniff(ftyp("isom") .. be32(7) .. "free")
    assert.is_nil(info)
    assert.matches("box 'free'", why, 1, true)
  end)

  it("says text is text: an HTML page, JSON, XML or plain text (a BOM, and a character cut at the end, allowed)",
    function()
      local cases = { ["<!DOCTYPE html><html><body>Not found</body></html>"] = "html", ["  <h1>502</h1>"] = "html",
        ['{"error": "no such file"}'] = "json", ["\n[1, 2]"] = "json", ['<?xml version="1.0"?><Error/>'] = "xml",
        ["\239\187\191plain text, caf\195\169"] = "text", ["cut in the middle of \226\130"] = "text" }
      for bytes_, kind in pairs(cases) do assert.same({ kind = "text", type = kind }, core.media_sniff(bytes_)) end
      assert.equal("html", core.media_sniff("<svg xmlns='http://www.w3.org/2000/svg'/>").type) -- no image here either
      for _, s in ipairs { "text\0with a NUL", "bad \255 UTF-8", "" } do
        assert.is_nil((core.media_sniff(s)), s) -- unknown: a note, not a refusal
      end
    end)

  it("raises on bad arguments, naming them", function()
    assert.error_matches(function() core.media_sniff(nil) end, "#1")
    assert.error_matches(function() core.media_sniff("x", -1) end, "total")
    assert.error_matches(function() core.media_tail({ kind = "video" }, "", 0) end, "info.type")
    assert.error_matches(function() core.media_tail(video(), "", -5) end, "offset")
  end)
end)

describe("core.media_check", function()
  it("takes media within the documents' limits", function()
    assert.same({}, core.media_check("videos", {
      item("referenceImages", 1, { kind = "image", type = "png", size = 20 * 1024 * 1024 - 1 }),
      item("referenceVideos", 1, video({ duration = 7.5 })),
      item("referenceVideos", 2, video({ duration = 7.5, width = 2160, height = 3840 })),
      item("referenceAudios", 1, { kind = "audio", type = "wav", duration = 15 }),
    }))
  end)

  it("refuses a 16.5 s video on starvideos_o3 (one video of 3 to 10 s)", function()
    local f = core.media_check("starvideos_o3", { item("referenceVideos", 1, video({ duration = 16.5 })) })
    assert.equal("referenceVideos[1]", f[1].field)
    assert.is_true(f[1].definite)
    assert.equal("referenceVideos[1]: the video is 16.5 s long; starvideos_o3 takes one reference video of 3 to 10 s",
      f[1].message)
  end)

  it("names the video that takes the total past 15 s", function()
    local f = core.media_check("videos", {
      item("referenceVideos", 1, video({ duration = 6 })),
      item("referenceVideos", 2, video({ duration = 6 })),
      item("referenceVideos", 3, video({ duration = 4 })),
    })
    assert.equal(1, #f)
    assert.equal("referenceVideos[3]", f[1].field)
    assert.is_true(f[1].definite)
    assert.matches("16 s in total", f[1].message, 1, true)
  end)

  it("refuses a shorter side outside 720-2160 px, an image of 20 MB and media of the wrong kind", function()
    local f = core.media_check("videos_fast", {
      item("referenceVideos", 1, video({ width = 640, height = 480 })),
      item("first_image", nil, { kind = "image", type = "jpeg", size = 20 * 1024 * 1024 }),
      item("last_image", nil, video()),
    })
    assert.equal(3, #f)
    assert.same({ "referenceVideos[1]", "first_image", "last_image" }, { f[1].field, f[2].field, f[3].field })
    assert.is_true(f[1].definite and f[2].definite and f[3].definite)
    assert.matches("640x480", f[1].message, 1, true)
    assert.matches("under 20 MB", f[2].message, 1, true)
    assert.matches("takes image media", f[3].message, 1, true)
  end)

  it("says what could not be checked without refusing (unknown duration, 5xx), and refuses a 404", function()
    local f = core.media_check("videos", {
      item("referenceAudios", 1, { kind = "audio", type = "aac", size = 100 }),
      item("referenceImages", 1, nil, 503),
      item("referenceImages", 2, nil, 404),
    })
    assert.equal(3, #f)
    assert.is_false(f[1].definite)
    assert.matches("duration could not be read", f[1].message, 1, true)
    assert.is_false(f[2].definite)
    assert.is_true(f[3].definite)
    assert.equal("referenceImages[2]: the URL answered HTTP 404", f[3].message)
  end)

  it("refuses text in any media field, naming what it is", function()
    local f = core.media_check("videos", { item("referenceImages", 1, { kind = "text", type = "html", size = 20 }),
      item("referenceVideos", 1, { kind = "text", type = "json" }) })
    assert.same({ true, true }, { f[1].definite, f[2].definite })
    assert.equal("referenceImages[1]: the URL holds text (html), not media; referenceImages takes image media",
      f[1].message)
    assert.matches("(json), not media", f[2].message, 1, true)
  end)

  it("refuses an image whose shorter side is under min_side, and notes one under note_side", function()
    local function png(w, h) return { kind = "image", type = "png", width = w, height = h, size = 100 } end
    local items = { item("referenceImages", 1, png(1, 1)), item("referenceImages", 2, png(800, 63)),
      item("referenceImages", 3, png(64, 64)), item("referenceImages", 4, { kind = "image", type = "jpeg", size = 9 }) }
    assert.same({}, core.media_check("videos", items)) -- no rule given: nothing said
    local f = core.media_check("videos", items, 0, 64)
    assert.equal(2, #f)
    assert.same({ false, false }, { f[1].definite, f[2].definite })
    assert.matches("the image is 1x1 px, a shorter side under 64 px", f[1].message, 1, true)
    assert.equal("referenceImages[2]", f[2].field)
    f = core.media_check("videos", items, 64, 64)
    assert.same({ "referenceImages[1]", "referenceImages[2]", "referenceImages[4]" },
      { f[1].field, f[2].field, f[3].field })
    assert.same({ true, true, false }, { f[1].definite, f[2].definite, f[3].definite })
    assert.matches("800x63 px; min_image_side refuses a shorter side under 64 px", f[2].message, 1, true)
    assert.matches("width and height could not be read", f[3].message, 1, true)
  end)

  it("raises on an unknown model or a bad item, naming it", function()
    assert.error_matches(function() core.media_check("sora", {}) end, "model")
    assert.error_matches(function() core.media_check("videos", { { field = "x" } }) end, "items%[1%]%.name")
    assert.error_matches(function() core.media_check("videos", { item("prompt", nil, video()) }) end, "media field")
    assert.error_matches(function()
      core.media_check("videos", { item("referenceVideos", 1, { kind = "film", type = "mp4" }) })
    end, "items%[1%]%.info%.kind")
  end)
end)

describe("core.private_host", function()
  it("names a host the public internet does not route, as written or in a form the resolver reads", function()
    local cases = { ["127.0.0.1"] = "loopback", ["127.1"] = "loopback", ["2130706433"] = "loopback",
      ["0x7f.0.0.1"] = "loopback", ["localhost"] = "loopback name", ["LocalHost."] = "loopback name",
      ["a.localhost"] = "loopback name", ["10.0.0.1"] = "private", ["172.31.255.255"] = "private",
      ["192.168.1.1"] = "private", ["169.254.169.254"] = "link-local", ["100.64.0.1"] = "shared (carrier-grade NAT)",
      ["0.0.0.0"] = '"this network"', ["224.0.0.1"] = "multicast", ["255.255.255.255"] = "reserved",
      ["192.0.2.2"] = "documentation", ["[::1]"] = "loopback", ["[::]"] = "reserved",
      ["[fe80::1%25eth0]"] = "link-local",
      ["[fd00::1]"] = "unique local", ["[::ffff:10.1.2.3]"] = "private", ["[64:ff9b::a9fe:a9fe]"] = "link-local" }
    for host, what in pairs(cases) do
      local why = core.private_host(host)
      local said = why and (why:find(" " .. what .. " address, which", 1, true)
        or why:find(" " .. what .. ", which", 1, true))
      assert.truthy(said and why:sub(1, #host + 4) == host .. " is ", host .. ": " .. tostring(why))
      assert.truthy(why:find(core.CANNOT_FETCH, 1, true))
    end
    for _, host in ipairs { "8.8.8.8", "172.32.0.1", "100.128.0.1", "example.com", "10.0.0.1.example", "[2606:4700::1]",
      "[::ffff:8.8.8.8]", "localhost.example" } do
      assert.is_nil(core.private_host(host), host)
    end
  end)
end)

describe("the commit's whole-MP4 check (core.commit_start(part, dest, nil, seconds))", function()
  local helper = require "spec.helper"
  local path = os.tmpname()
  -- s committed from a .part to path with the check (seconds: true, or the task's): true, or false and why
  local function commit(s, seconds)
    local fh = assert(core.part_open(path .. ".part", 0))
    assert(fh:write(s))
    local ok, why, notwhole = helper.committed(assert(core.commit_start(fh, path, nil, seconds or true)))
    assert.equal(not ok or nil, notwhole)
    return ok, why
  end
  after_each(function() os.remove(path); os.remove(path .. ".part") end)

  it("commits a whole file within 1 s of the task's duration", function()
    local whole = ftyp("isom") .. moov(1000, 6000, 1280, 720) .. box("mdat", zeros(500))
    assert.is_true(commit(whole))
    assert.is_true(commit(whole, 6.8))
    assert.same({ false, "duration 6.0 s, the task says 4 s" }, { commit(whole, 4) })
  end)

  it("refuses a file cut short, one without moov, and an HTML page", function()
    local whole = ftyp("isom") .. moov(1000, 6000, 1280, 720) .. box("mdat", zeros(500))
    local ok, why = commit(whole:sub(1, #whole - 100))
    assert.is_false(ok)
    assert.matches("box 'mdat' at byte %d+ runs past the end", why)
    assert.same({ false, "no moov box" }, { commit(ftyp("isom") .. box("mdat", "")) })
    ok, why = commit("<html>expired</html>")
    assert.is_false(ok)
    assert.matches("not an MP4", why, 1, true)
  end)
end)

describe("sign.sha256 and sign.sha256_file", function()
  local sign = require "starvideos.sign"
  local path = os.tmpname()
  after_each(function() os.remove(path) end)

  it("gives FIPS 180-2's digests in lowercase hex", function()
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sign.sha256("abc"))
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", sign.sha256(""))
  end)

  it("reads a file of a million bytes through, block by block", function()
    local f = assert(io.open(path, "wb"))
    f:write(string.rep("a", 1000000))
    f:close()
    assert.equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", sign.sha256_file(path))
  end)

  it("names the path it cannot read, and raises on a value that is no string", function()
    local hex, why = sign.sha256_file(path .. ".none")
    assert.is_nil(hex)
    assert.matches(path .. ".none: ", why, 1, true)
    assert.error_matches(function() sign.sha256({}) end, "#1")
  end)
end)
