-- starvideos.emulator.mp4: MP4 (ISO base media) and QuickTime files, for the
-- emulator's videos and the specs' media.  A video's track is H.264
-- (starvideos.emulator.h264: H264.FPS pictures a second of the prompt's
-- colour, a bar filling as it plays and the second's number), so that players
-- and decoders play it; an M4A's is AAC whose one sample is zeros.
--
-- M.parts(o, sound) returns the file as a list of strings and numbers (a
-- number: that many zero bytes), o being
--   {seconds=, width=, height=, bytes=, moov="start"|"end", fragmented=, brand="isom"|"qt  ", box_overrun=,
--    prompt=}
-- bytes: the total size, zeros after the samples at the end of mdat, which
--   players ignore (at least the boxes' and samples' own size);
-- box_overrun: the last box (mdat, or moov when at the end) says 64 bytes more than the file has;
-- prompt: a text whose hash picks the picture's colours.
-- A video's picture is one ffmpeg decodes (M.decodable): else M.parts raises,
-- before it holds any of it.

local h264 = require "starvideos.emulator.h264"
local bytes = require "starvideos.emulator.bytes"

local str_char, tbl_concat = string.char, table.concat
local math_floor, math_min, math_ceil = math.floor, math.min, math.ceil
local str_format = string.format
local error, ipairs, type, tostring = error, ipairs, type, tostring
local be, num, pad_of = bytes.be, bytes.num, bytes.pad_of

local M = {}

local function box(t, ...)
  local payload = tbl_concat({ ... })
  return be(8 + #payload, 4) .. t .. payload
end

local function fullbox(t, version, flags, ...)
  return box(t, str_char(version) .. be(flags, 3), ...)
end

local MATRIX = be(0x10000, 4) .. be(0, 12) .. be(0x10000, 4) .. be(0, 12) .. be(0x40000000, 4)

-- The sample entry of the H.264 stream s at w x h: its SPS and PPS in avcC, 4-byte NAL lengths.
local function avc1(w, h, s)
  local avcc = box("avcC", "\1", s.sps:sub(2, 4), "\255\225", be(#s.sps, 2), s.sps, "\1", be(#s.pps, 2), s.pps)
  return box("avc1", be(0, 6), be(1, 2), be(0, 16), be(w, 2), be(h, 2), be(0x480000, 4), be(0x480000, 4),
    be(0, 4), be(1, 2), be(0, 32), be(0x18, 2), "\255\255", avcc)
end

-- AAC-LC, 44100 Hz, stereo: the AudioSpecificConfig 0x12 0x10 in an esds.
local function mp4a()
  local esds = fullbox("esds", 0, 0, "\3\25\0\1\0", "\4\17\64\21", be(0, 3), be(128000, 4), be(128000, 4),
    "\5\2\18\16", "\6\1\2")
  return box("mp4a", be(0, 6), be(1, 2), be(0, 8), be(2, 2), be(16, 2), be(0, 4), be(44100 * 65536, 4), esds)
end

-- The track of t: {sound, scale, dur (in scale's units), entry (the sample
-- entry), data (the samples' bytes), sizes, durations}.  A sound's one sample
-- is the mdat's zeros (its size set once they are known).
local function track(t, ms)
  if t.sound then
    local dur = math_floor(t.seconds * 44100 + 0.5)
    return { sound = true, scale = 44100, dur = dur, entry = mp4a(), data = "", sizes = { 0 }, durations = { dur } }
  end
  local s = h264.stream(t.width, t.height, ms, h264.colours(t.prompt))
  local sizes = {}
  for i, sample in ipairs(s.samples) do sizes[i] = #sample end
  return { scale = 1000, dur = ms, entry = avc1(t.width, t.height, s), data = tbl_concat(s.samples), sizes = sizes,
    durations = s.durations }
end

-- stts: the durations as runs of equal ones.
local function stts(durations)
  local runs = {}
  for _, d in ipairs(durations) do
    local last = runs[#runs]
    if last and last[2] == d then last[1] = last[1] + 1 else runs[#runs + 1] = { 1, d } end
  end
  local out = {}
  for i, r in ipairs(runs) do out[i] = be(r[1], 4) .. be(r[2], 4) end
  return fullbox("stts", 0, 0, be(#runs, 4), tbl_concat(out))
end

-- The sample table: the samples in one chunk at file offset `at` (nil: none,
-- a fragmented file's moov); a video's first sample its one sync sample.
local function stbl(tr, at)
  local n, sizes = at and #tr.sizes or 0, {}
  for i = 1, n do sizes[i] = be(math_min(tr.sizes[i], 0xFFFFFFFF), 4) end
  local one = n > 0 and 1 or 0
  return box("stbl", fullbox("stsd", 0, 0, be(1, 4), tr.entry), stts(at and tr.durations or {}),
    fullbox("stsc", 0, 0, be(one, 4), n > 0 and be(1, 4) .. be(n, 4) .. be(1, 4) or ""),
    fullbox("stsz", 0, 0, be(0, 4), be(n, 4), tbl_concat(sizes)),
    fullbox("stco", 0, 0, be(one, 4), n > 0 and be(at, 4) or ""),
    (tr.sound or n == 0) and "" or fullbox("stss", 0, 0, be(1, 4), be(1, 4)))
end

local function trak(t, ms, tr, at)
  local sound = tr.sound
  local minf = box("minf", sound and fullbox("smhd", 0, 0, be(0, 4)) or fullbox("vmhd", 0, 1, be(0, 8)),
    box("dinf", fullbox("dref", 0, 0, be(1, 4), fullbox("url ", 0, 1))), stbl(tr, at))
  local handler = sound and "soun" or "vide"
  local mdia = box("mdia", fullbox("mdhd", 0, 0, be(0, 8), be(tr.scale, 4), be(tr.dur, 4), be(0x55C4, 2), be(0, 2)),
    fullbox("hdlr", 0, 0, be(0, 4), handler, be(0, 12), sound and "SoundHandler\0" or "VideoHandler\0"), minf)
  local tkhd = fullbox("tkhd", 0, 3, be(0, 8), be(1, 4), be(0, 4), be(ms, 4), be(0, 8), be(0, 4),
    be(sound and 0x100 or 0, 2), be(0, 2), MATRIX, be((sound and 0 or t.width) * 65536, 4),
    be((sound and 0 or t.height) * 65536, 4))
  return box("trak", tkhd, mdia)
end

-- The moov: the samples at file offset `at`; a fragmented file's says none and
-- gives the fragments' defaults (a video's samples depend on others, are not sync).
local function moov(t, ms, tr, at)
  local mvhd = fullbox("mvhd", 0, 0, be(0, 8), be(1000, 4), be(ms, 4), be(0x10000, 4), be(0x100, 2), be(0, 10),
    MATRIX, be(0, 24), be(2, 4))
  local mvex = t.fragmented and box("mvex", fullbox("mehd", 0, 0, be(ms, 4)),
    fullbox("trex", 0, 0, be(1, 4), be(1, 4), be(0, 8), be(tr.sound and 0 or 0x01010000, 4))) or ""
  return box("moov", mvhd, trak(t, ms, tr, not t.fragmented and at or nil), mvex)
end

-- The one fragment: its samples `data_offset` bytes from its first; a video's first sample a sync one.
local function moof(tr, data_offset)
  local flags, first, per = 0x301, "", {}
  if not tr.sound then flags, first = 0x305, be(0x02000000, 4) end
  for i, size in ipairs(tr.sizes) do per[i] = be(tr.durations[i], 4) .. be(math_min(size, 0xFFFFFFFF), 4) end
  local trun = fullbox("trun", 0, flags, be(#tr.sizes, 4), be(data_offset, 4), first, tbl_concat(per))
  return box("moof", fullbox("mfhd", 0, 0, be(1, 4)),
    box("traf", fullbox("tfhd", 0, 0x20000, be(1, 4)), fullbox("tfdt", 0, 0, be(0, 4)), trun))
end

-- An mdat's head for `payload` bytes, saying `overrun` more; large: of 64-bit size.
local function mdat_head(payload, overrun, large)
  if large then return be(1, 4) .. "mdat" .. be(payload + 16 + overrun, 8) end
  return be(payload + 8 + overrun, 4) .. "mdat"
end

local BRANDS = {
  isom = { "isom", "isomiso2avc1mp41" }, ["qt  "] = { "qt  ", "qt  " }, m4a = { "M4A ", "M4A mp42isom" },
}

-- Whether ffmpeg decodes a picture of width x height, or nil and why not.
-- Its H.264 decoder checks the picture of whole macroblocks (W x H, 16 pixels
-- each) with av_image_check_size: (8 W + 1024) (H + 128) < 2^31 - 1, which is
-- (W + 128) (H + 128) < 2^28 (16240 x 16240 the largest square; 16256 x 16256,
-- a 16384 x 16384 one: "Picture size ... is invalid"); its MP4 reader takes
-- the track's width and height, 16.16 fixed point, as signed (32768 reads as
-- -32768: "Value -1.000000 for parameter 'pixel_aspect' out of range").
M.MAX_SIDE = 32767
function M.decodable(width, height)
  local w, h = 16 * math_ceil(width / 16), 16 * math_ceil(height / 16)
  if width > M.MAX_SIDE or height > M.MAX_SIDE then
    return nil, str_format("%dx%d: a video's width and height must be at most %d (ffmpeg reads them signed)", width,
      height, M.MAX_SIDE)
  end
  if (w + 128) * (h + 128) >= 2 ^ 28 then
    return nil, str_format("%dx%d: too large for ffmpeg to decode: its macroblocks' width and height (%dx%d), each "
      .. "plus 128, must multiply to under 2^28 (16240x16240 at most for a square)", width, height, w, h)
  end
  return true
end

-- The options o checked: t (the file's description) and its brand's names.
local function described(o, sound)
  local brand = o.brand or (sound and "m4a" or "isom")
  local b = BRANDS[brand] or error("media: brand must be \"isom\" or \"qt  \", got " .. tostring(brand), 4)
  if o.moov ~= nil and o.moov ~= "start" and o.moov ~= "end" then
    error("media: moov must be \"start\" or \"end\", got " .. tostring(o.moov), 4)
  end
  if o.prompt ~= nil and type(o.prompt) ~= "string" then
    error("media: prompt must be a string, got " .. type(o.prompt), 4)
  end
  local t = { seconds = num(o, "seconds", 5), width = num(o, "width", 1280), height = num(o, "height", 720),
    fragmented = o.fragmented, sound = sound, prompt = o.prompt }
  local ok, why = M.decodable(t.width, t.height)
  if not (ok or sound) then error("media: " .. why, 4) end
  return t, b
end

function M.parts(o, sound)
  local t, b = described(o, sound)
  local ms = math_floor(t.seconds * 1000 + 0.5)
  local tr = track(t, ms)
  local ftyp = box("ftyp", b[1], be(0x200, 4), b[2])
  local overrun = o.box_overrun and o.moov ~= "end" and 64 or 0
  -- the boxes' sizes do not depend on the offsets and sizes written in them
  local fixed = #ftyp + #moov(t, ms, tr, 0) + (t.fragmented and #moof(tr, 0) or 0) + #tr.data
  local pad = pad_of(o.bytes, fixed + 8)
  local large = #tr.data + pad + 8 + overrun > 0xFFFFFFFF
  if large then pad = pad_of(o.bytes, fixed + 16) end
  if tr.sound then tr.sizes[1] = pad end
  local mhead = mdat_head(#tr.data + pad, overrun, large)
  if t.fragmented then
    local frag = moof(tr, 0)
    frag = moof(tr, #frag + #mhead)
    return { ftyp .. moov(t, ms, tr) .. frag .. mhead .. tr.data, pad }
  end
  if o.moov == "end" then
    local mv = moov(t, ms, tr, #ftyp + #mhead)
    if o.box_overrun then mv = be(#mv + 64, 4) .. mv:sub(5) end
    return { ftyp .. mhead .. tr.data, pad, mv }
  end
  local size = #moov(t, ms, tr, 0)
  return { ftyp .. moov(t, ms, tr, #ftyp + size + #mhead) .. mhead .. tr.data, pad }
end

return M
