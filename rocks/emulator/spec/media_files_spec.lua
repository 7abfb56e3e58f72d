-- The emulator's media writers (rocks/emulator/lua/starvideos/emulator/media.lua), each file
-- read back by spec/support/media_read.lua, written from the formats'
-- documents.  Expected numbers are literal: the CRCs were computed apart
-- (Python's zlib.crc32, and Ogg's polynomial bit by bit).

local media = require "starvideos.emulator.media"
local read = require "spec.support.media_read"

local uint = read.uint

-- The width and height an H.264 SPS gives (Baseline: no chroma fields), read
-- bit by bit after removing the emulation prevention bytes.
local function sps_size(nal)
  local bytes, run = {}, 0 -- (no "\0" in a pattern: 5.1 cannot)
  for i = 2, #nal do
    local b = nal:byte(i)
    if not (run >= 2 and b == 3) then bytes[#bytes + 1] = string.char(b) end
    run = b == 0 and run + 1 or 0
  end
  local rbsp = table.concat(bytes)
  local pos = 0
  local function bit()
    local byte = rbsp:byte(math.floor(pos / 8) + 1)
    local b = math.floor(byte / 2 ^ (7 - pos % 8)) % 2
    pos = pos + 1
    return b
  end
  local function u(n)
    local v = 0
    for _ = 1, n do v = v * 2 + bit() end
    return v
  end
  local function ue()
    local zeros = 0
    while bit() == 0 do zeros = zeros + 1 end
    return 2 ^ zeros - 1 + u(zeros)
  end
  assert(u(8) == 66, "not Baseline")
  u(16) -- constraint flags, level
  ue() ue() -- sps id, log2_max_frame_num - 4
  assert(ue() == 2, "pic_order_cnt_type")
  ue() u(1) -- max_num_ref_frames, gaps
  local w, h = (ue() + 1) * 16, (ue() + 1) * 16
  assert(u(1) == 1, "frame_mbs_only")
  u(1)
  if u(1) == 1 then
    local l, r, t, b = ue(), ue(), ue(), ue()
    w, h = w - 2 * (l + r), h - 2 * (t + b)
  end
  return w, h
end

-- The video track's samples: sizes, offset (stco's one chunk), total (their
-- bytes), stts (its runs), ticks (their durations' sum), scale (mdhd's), sync (stss).
local function samples(s)
  local function at(name)
    return assert(read.find(s, { "moov", "trak", "mdia", "minf", "stbl", name })).at
  end
  local t = { sizes = {}, stts = {}, sync = {}, total = 0, ticks = 0 }
  local stsz = at("stsz")
  for i = 1, uint(s, stsz + 16, 4) do
    t.sizes[i] = uint(s, stsz + 16 + 4 * i, 4)
    t.total = t.total + t.sizes[i]
  end
  local stts = at("stts")
  for i = 1, uint(s, stts + 12, 4) do
    t.stts[i] = { uint(s, stts + 8 + 8 * i, 4), uint(s, stts + 12 + 8 * i, 4) }
    t.ticks = t.ticks + t.stts[i][1] * t.stts[i][2]
  end
  local stss = at("stss")
  for i = 1, uint(s, stss + 12, 4) do t.sync[i] = uint(s, stss + 12 + 4 * i, 4) end
  assert(uint(s, at("stco") + 12, 4) == 1, "one chunk")
  t.offset = uint(s, at("stco") + 16, 4)
  t.scale = uint(s, assert(read.find(s, { "moov", "trak", "mdia", "mdhd" })).at + 20, 4)
  return t
end

-- The NAL unit type of sample i (its 4-byte length, then its header byte).
local function nal_types(s, t, i)
  local pos = t.offset
  for k = 1, i - 1 do pos = pos + t.sizes[k] end
  assert(uint(s, pos + 1, 4) == t.sizes[i] - 4, "one NAL unit a sample")
  return s:byte(pos + 5) % 32
end

describe("the media writers", function()
  describe("mp4", function()
    it("writes ftyp, moov, mdat of the size asked; duration and dimensions in mvhd, tkhd, avc1, SPS", function()
      local s = media.mp4 { seconds = 6, width = 1920, height = 1080, bytes = 100000 }
      assert.are.equal(100000, #s)
      local info = read.mp4(s)
      assert.are.same({ "ftyp", "moov", "mdat" }, info.top)
      assert.are.equal("isom", info.brand)
      assert.are.equal(6, info.duration)
      assert.are.same({ 1920, 1080, 1920, 1080 }, { info.width, info.height, info.entry_width, info.entry_height })
      local avcc = assert(read.find(s, { "moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1" }))
      local at = avcc.at + 8 + 78 + 8 -- the sample entry's fields, then avcC's head
      assert.are.equal("avcC", s:sub(at - 4, at - 1))
      local sps_len = uint(s, at + 6, 2)
      assert.are.same({ 1920, 1080 }, { sps_size(s:sub(at + 8, at + 7 + sps_len)) })
      local mdat = read.boxes(s)[3]
      assert.are.equal(100000, mdat.at + mdat.size - 1)
      -- the samples: one chunk at the mdat's payload, 60 pictures of 100 ms, the first the one sync sample,
      -- an IDR picture (NAL type 5) and then P pictures (type 1); zeros after them to the end
      local t = samples(s)
      assert.are.same({ 60, 6000, 1000, { 1 } }, { #t.sizes, t.ticks, t.scale, t.sync })
      assert.are.same({ 60, 100 }, t.stts[1])
      assert.are.equal(mdat.at - 1 + 8, t.offset)
      assert.are.same({ 5, 1, 1 }, { nal_types(s, t, 1), nal_types(s, t, 2), nal_types(s, t, 60) })
      local after = t.offset + t.total
      assert.are.equal(string.rep("\0", 100000 - after), s:sub(after + 1))
    end)

    it("puts moov after mdat with moov = \"end\", its chunk offset still the mdat's payload", function()
      local s = media.mp4 { seconds = 12, width = 720, height = 1280, moov = "end", bytes = 50000 }
      assert.are.equal(50000, #s)
      local info = read.mp4(s)
      assert.are.same({ "ftyp", "mdat", "moov" }, info.top)
      assert.are.same({ 12, 720, 1280 }, { info.duration, info.width, info.height })
      local t = samples(s)
      assert.are.same({ 120, 12000 }, { #t.sizes, t.ticks })
      assert.are.equal(read.boxes(s)[2].at - 1 + 8, t.offset)
    end)

    it("writes a fragmented MP4: moov with mvex, then moof and mdat, trun pointing at the payload", function()
      local s = media.mp4 { seconds = 4, fragmented = true, bytes = 20000 }
      assert.are.equal(20000, #s)
      local info = read.mp4(s)
      assert.are.same({ "ftyp", "moov", "moof", "mdat" }, info.top)
      assert.are.equal(4, info.duration)
      assert.is_table(read.find(s, { "moov", "mvex", "trex" }))
      local moof = read.boxes(s)[3]
      local trun = assert(read.find(s, { "moof", "traf", "trun" }))
      assert.are.equal(moof.size + 8, uint(s, trun.at + 16, 4)) -- data offset from moof's first byte
      -- 40 samples of 100 ms; the first sync (flags 0x02000000), the others not (trex: 0x01010000)
      assert.are.same({ 0x305, 40, 0x02000000, 100 }, { uint(s, trun.at + 9, 3), uint(s, trun.at + 12, 4),
        uint(s, trun.at + 20, 4), uint(s, trun.at + 24, 4) })
      local trex = read.find(s, { "moov", "mvex", "trex" })
      assert.are.equal(0x01010000, uint(s, trex.at + 28, 4))
    end)

    it("writes a QuickTime brand, an M4A, and the smallest file when bytes is below the boxes' size", function()
      assert.are.equal("qt  ", read.mp4(media.mp4 { brand = "qt  " }).brand)
      assert.are.equal("qt  ", read.mp4(media.mov {}).brand)
      local m4a = media.m4a { seconds = 7 }
      local info = read.mp4(m4a)
      assert.are.same({ "M4A ", 7 }, { info.brand, info.duration })
      local hdlr = read.find(m4a, { "moov", "trak", "mdia", "hdlr" })
      assert.are.equal("soun", m4a:sub(hdlr.at + 16, hdlr.at + 19))
      local mdhd = read.find(m4a, { "moov", "trak", "mdia", "mdhd" })
      assert.are.same({ 44100, 7 * 44100 }, { uint(m4a, mdhd.at + 20, 4), uint(m4a, mdhd.at + 24, 4) })
      local smallest = media.mp4 { seconds = 5 }
      assert.are.equal(smallest, media.mp4 { seconds = 5, bytes = 10 })
      local boxes = read.boxes(smallest)
      assert.are.equal(#smallest, boxes[3].at + boxes[3].size - 1)
      assert.are.equal(8 + samples(smallest).total, boxes[3].size) -- the samples alone
    end)

    it("gives a file past 4 GiB as parts, its mdat of 64-bit size", function()
      local parts, size = media.parts("mp4", { seconds = 8, bytes = 5 * 2 ^ 30 })
      assert.are.equal(5 * 2 ^ 30, size)
      local head = parts[1]
      local boxes, mdat = read.boxes(head)
      assert.are.same({ "ftyp", "moov" }, { boxes[1].type, boxes[2].type })
      assert.are.same({ "mdat", 16, 1 }, { mdat.type, mdat.head, uint(head, mdat.at, 4) })
      assert.are.equal(5 * 2 ^ 30, mdat.at - 1 + mdat.size)
      assert.are.equal(size - #head, parts[2])
    end)

    it("writes a broken MP4 with box_overrun: its last box says 64 bytes more than the file has", function()
      local s = media.mp4 { seconds = 5, bytes = 30000, box_overrun = true }
      assert.are.equal(30000, #s)
      local boxes, cut = read.boxes(s)
      assert.are.same({ "ftyp", "moov" }, { boxes[1].type, boxes[2].type })
      assert.are.same({ "mdat", 30064 }, { cut.type, cut.at - 1 + cut.size })
      s = media.mp4 { seconds = 5, bytes = 30000, box_overrun = true, moov = "end" }
      boxes, cut = read.boxes(s)
      assert.are.same({ "ftyp", "mdat" }, { boxes[1].type, boxes[2].type })
      assert.are.same({ "moov", 30064 }, { cut.type, cut.at - 1 + cut.size })
    end)

    it("refuses options it cannot honour, naming them", function()
      local function refusal(writer, opts)
        local ok, err = pcall(writer, opts)
        assert.is_false(ok)
        return err
      end
      assert.matches('moov must be "start" or "end", got middle', refusal(media.mp4, { moov = "middle" }), 1, true)
      assert.matches("seconds must be a number >= 0, got -1", refusal(media.mp4, { seconds = -1 }), 1, true)
      assert.matches("prompt must be a string, got table", refusal(media.mp4, { prompt = {} }), 1, true)
      assert.matches("bitrate must be an MPEG-1 layer III rate (32-320), got 100",
        refusal(media.mp3, { bitrate = 100 }), 1, true)
    end)
  end)

  describe("images", function()
    it("png: IHDR's dimensions, the size asked, CRCs as zlib computes them", function()
      local s = media.png { width = 640, height = 480, bytes = 300000 }
      assert.are.equal(300000, #s)
      assert.are.same({ width = 640, height = 480 }, read.png(s))
      assert.are.equal(0x1DAAE149, uint(s, 30, 4)) -- IHDR's CRC
      assert.are.equal("IEND", s:sub(-8, -5))
      assert.are.equal(0xAE426082, uint(s, #s - 3, 4)) -- IEND's CRC
      local small = media.png { width = 64, height = 48 }
      assert.are.same({ width = 64, height = 48 }, read.png(small))
      assert.are.equal(500, #small)
    end)

    it("jpeg: SOF0's dimensions, the size asked, ends with EOI", function()
      local s = media.jpeg { width = 640, height = 480, bytes = 300000 }
      assert.are.equal(300000, #s)
      assert.are.same({ width = 640, height = 480 }, read.jpeg(s))
      assert.are.equal("\255\217", s:sub(-2))
      assert.are.equal("JFIF\0", s:sub(7, 11))
    end)

    it("gif and webp: the canvas's dimensions and the size asked", function()
      local g = media.gif { width = 640, height = 480, bytes = 3000 }
      assert.are.equal(3000, #g)
      assert.are.same({ width = 640, height = 480 }, read.gif(g))
      assert.are.equal(";", g:sub(-1))
      local w = media.webp { width = 4000, height = 3000, bytes = 3000 }
      assert.are.equal(3000, #w)
      assert.are.same({ width = 4000, height = 3000, riff = 2992 }, read.webp(w))
    end)
  end)

  describe("sound", function()
    it("wav: fmt's rate, data of the duration", function()
      local s = media.wav { seconds = 2, rate = 8000 }
      assert.are.equal(44 + 32000, #s)
      assert.are.same({ rate = 8000, byte_rate = 16000, duration = 2 }, read.wav(s))
    end)

    it("mp3: constant bit rate frames, a Xing header with their count", function()
      local s = media.mp3 { seconds = 2, bitrate = 128, xing = true }
      local info = read.mp3(s)
      assert.are.same({ 128, 417, 77, 77 }, { info.kbps, info.frame, info.xing_frames, info.frames })
      assert.are.equal(77 * 417, #s)
      assert.are.equal(77 * 1152 / 44100, info.duration) -- 2.011 s
      local plain = read.mp3(media.mp3 { seconds = 10, bitrate = 64 })
      assert.are.same({ 64, 208, nil, 383 }, { plain.kbps, plain.frame, plain.xing_frames, plain.frames })
    end)

    it("ogg: a Vorbis identification header, pages in sequence, the last one's granule the duration", function()
      local s = media.ogg { seconds = 3 }
      local info = assert(read.ogg(s))
      assert.are.same({ 44100, 1, 3 * 44100 }, { info.rate, info.channels, info.granule })
      assert.are.equal(5, #info.pages)
      for i, p in ipairs(info.pages) do assert.are.equal(i - 1, p.seq) end
      assert.are.same({ 2, 4 }, { info.pages[1].flags, info.pages[5].flags }) -- first, last
      assert.are.equal(0xB69FA843, uint(s, 23, 4, true)) -- the first page's CRC
      assert.are.equal(7 * 8000, read.ogg(media.ogg { seconds = 7, rate = 8000 }).granule)
    end)
  end)
end)
