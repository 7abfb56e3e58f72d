-- starvideos.emulator.media: real media files written byte by byte, for the
-- emulator's videos, its /media/ route and the specs' servers.  No encoder is
-- needed: each file carries the headers a decoder's header reader needs
-- (type, width and height, duration) and zeros where the picture or the sound
-- would be.  Runs on Lua 5.1 to 5.4 and LuaJIT (no string.pack, no bit
-- operators: integers are written and XORed by hand).
--
-- Each writer takes an options table and returns the file as a string:
--   mp4{seconds=, width=, height=, bytes=, moov="start"|"end", fragmented=, brand="isom"|"qt  ",
--       box_overrun=}       bytes: the total size, padded in mdat (at least the boxes' own size);
--                           box_overrun: the last box says 64 bytes more than the file has
--   m4a{seconds=, bytes=}   png{width=, height=, bytes=}   jpeg{...}   gif{...}   webp{...}
--   wav{seconds=, rate=}    mp3{seconds=, bitrate=, xing=}   ogg{seconds=, rate=}
-- M.parts(type, opts) returns the same file as a list of strings and numbers
-- (a number: that many zero bytes), and its size: how the emulator serves a
-- file of a GiB without holding it.

local str_char, str_rep, str_byte = string.char, string.rep, string.byte
local tbl_concat = table.concat
local math_floor, math_max, math_min, math_ceil = math.floor, math.max, math.min, math.ceil
local error, ipairs, pairs, type, tostring = error, ipairs, pairs, type, tostring
local unpack = table.unpack or unpack -- luacheck: ignore 113 143 (unpack: 5.1, LuaJIT)

local M = {}

---------------------------------------------------------------------------
-- integers and bits

-- n (an integer >= 0 below 2^53) as k bytes, big-endian.
local function be(n, k)
  local b = {}
  for i = k, 1, -1 do
    b[i] = n % 256
    n = math_floor(n / 256)
  end
  return str_char(unpack(b))
end

-- n as k bytes, little-endian.
local function le(n, k)
  return be(n, k):reverse()
end

-- a XOR b for integers below 2^32, a byte at a time.
local XOR8
local function bxor(a, b)
  if not XOR8 then
    XOR8 = {}
    for x = 0, 255 do
      for y = 0, 255 do
        local r, bit, p, q = 0, 1, x, y
        while p > 0 or q > 0 do
          if p % 2 ~= q % 2 then r = r + bit end
          p, q, bit = math_floor(p / 2), math_floor(q / 2), bit * 2
        end
        XOR8[x * 256 + y] = r
      end
    end
  end
  local r, mul = 0, 1
  for _ = 1, 4 do
    r = r + XOR8[(a % 256) * 256 + b % 256] * mul
    a, b, mul = math_floor(a / 256), math_floor(b / 256), mul * 256
  end
  return r
end

-- The CRC-32 of PNG and zlib (reflected, polynomial 0xEDB88320), one table each
-- for it and for Ogg's (not reflected, polynomial 0x04C11DB7).
local CRC, OGG_CRC
local function tables()
  CRC, OGG_CRC = {}, {}
  for n = 0, 255 do
    local c, o = n, n * 0x1000000
    for _ = 1, 8 do
      if c % 2 == 1 then c = bxor(0xEDB88320, math_floor(c / 2)) else c = math_floor(c / 2) end
      if o >= 0x80000000 then o = bxor((o - 0x80000000) * 2, 0x04C11DB7) else o = o * 2 end
    end
    CRC[n], OGG_CRC[n] = c, o
  end
end

-- The PNG register after the bytes of s (the register, not the CRC: no final XOR).
local function crc_update(reg, s)
  if not CRC then tables() end
  for i = 1, #s do
    reg = bxor(CRC[bxor(reg % 256, str_byte(s, i))], math_floor(reg / 256))
  end
  return reg
end

-- The register after n zero bytes: a linear map of the register, applied by
-- squaring the one-zero-byte map (zlib's crc32_combine), so a padding chunk
-- of a GiB costs as little as one of a byte.
local function gf2_times(mat, vec)
  local sum, i = 0, 1
  while vec > 0 do
    if vec % 2 == 1 then sum = bxor(sum, mat[i]) end
    vec, i = math_floor(vec / 2), i + 1
  end
  return sum
end

local function gf2_square(mat)
  local sq = {}
  for i = 1, 32 do sq[i] = gf2_times(mat, mat[i]) end
  return sq
end

local function crc_zeros(reg, n)
  if n < 64 then return crc_update(reg, str_rep("\0", n)) end
  local byte_map = {} -- one zero byte: column i is the image of bit i-1
  for i = 1, 32 do byte_map[i] = crc_update(2 ^ (i - 1), "\0") end
  while n > 0 do
    if n % 2 == 1 then reg = gf2_times(byte_map, reg) end
    n = math_floor(n / 2)
    if n > 0 then byte_map = gf2_square(byte_map) end
  end
  return reg
end

local function ogg_crc(s)
  if not OGG_CRC then tables() end
  local reg = 0
  for i = 1, #s do
    reg = bxor((reg % 0x1000000) * 256, OGG_CRC[bxor(math_floor(reg / 0x1000000), str_byte(s, i))])
  end
  return reg
end

---------------------------------------------------------------------------
-- parts: strings, and numbers standing for that many zero bytes

local function parts_size(parts)
  local n = 0
  for _, p in ipairs(parts) do n = n + (type(p) == "number" and p or #p) end
  return n
end

local function join(parts)
  local out = {}
  for i, p in ipairs(parts) do out[i] = type(p) == "number" and str_rep("\0", p) or p end
  return tbl_concat(out)
end

-- The zero bytes to add so that a file of `size` bytes reaches `bytes` (none when it is past them).
local function pad_of(bytes, size)
  return math_max(0, (bytes or 0) - size)
end

local function num(o, k, default)
  local v = o[k]
  if v == nil then return default end
  if type(v) ~= "number" or v < 0 then error("media: " .. k .. " must be a number >= 0, got " .. tostring(v), 3) end
  return v
end

---------------------------------------------------------------------------
-- MP4 (ISO base media) and QuickTime

local function box(t, ...)
  local payload = tbl_concat({ ... })
  return be(8 + #payload, 4) .. t .. payload
end

local function fullbox(t, version, flags, ...)
  return box(t, str_char(version) .. be(flags, 3), ...)
end

local MATRIX = be(0x10000, 4) .. be(0, 12) .. be(0x10000, 4) .. be(0, 12) .. be(0x40000000, 4)

-- An H.264 parameter set: bits written MSB first, ue(v) Exp-Golomb, then the
-- stop bit and the emulation prevention bytes.
local function nal(header, fields)
  local bits = {}
  local function u(v, n) for i = n - 1, 0, -1 do bits[#bits + 1] = math_floor(v / 2 ^ i) % 2 end end
  local function ue(v)
    local len = 0
    while 2 ^ (len + 1) <= v + 1 do len = len + 1 end
    u(0, len)
    u(v + 1, len + 1)
  end
  for _, f in ipairs(fields) do if f[1] == "ue" then ue(f[2]) else u(f[2], f[1]) end end
  bits[#bits + 1] = 1
  while #bits % 8 ~= 0 do bits[#bits + 1] = 0 end
  local out, zeros = { str_char(header) }, 0
  for i = 1, #bits, 8 do
    local v = 0
    for j = i, i + 7 do v = v * 2 + bits[j] end
    if zeros >= 2 and v <= 3 then out[#out + 1], zeros = "\3", 0 end
    out[#out + 1] = str_char(v)
    zeros = v == 0 and zeros + 1 or 0
  end
  return tbl_concat(out)
end

-- Baseline profile, level 4.0, the picture cropped to width x height.
local function sps(width, height)
  local mbw, mbh = math_max(1, math_ceil(width / 16)), math_max(1, math_ceil(height / 16))
  local crop_r, crop_b = math_floor((mbw * 16 - width) / 2), math_floor((mbh * 16 - height) / 2)
  local cropped = (crop_r > 0 or crop_b > 0) and 1 or 0
  local f = { { 8, 66 }, { 8, 0xC0 }, { 8, 40 }, { "ue", 0 }, { "ue", 0 }, { "ue", 2 }, { "ue", 1 }, { 1, 0 },
    { "ue", mbw - 1 }, { "ue", mbh - 1 }, { 1, 1 }, { 1, 1 }, { 1, cropped } }
  if cropped == 1 then
    for _, v in ipairs { 0, crop_r, 0, crop_b } do f[#f + 1] = { "ue", v } end
  end
  f[#f + 1] = { 1, 0 } -- no VUI
  return nal(0x67, f)
end

local PPS = nal(0x68, { { "ue", 0 }, { "ue", 0 }, { 1, 0 }, { 1, 0 }, { "ue", 0 }, { "ue", 0 }, { "ue", 0 },
  { 1, 0 }, { 2, 0 }, { "ue", 1 }, { "ue", 1 }, { "ue", 1 }, { 1, 1 }, { 1, 0 }, { 1, 0 } })

local function avc1(w, h)
  local s = sps(w, h)
  local avcc = box("avcC", "\1\66\192\40\255\225", be(#s, 2), s, "\1", be(#PPS, 2), PPS)
  return box("avc1", be(0, 6), be(1, 2), be(0, 16), be(w, 2), be(h, 2), be(0x480000, 4), be(0x480000, 4),
    be(0, 4), be(1, 2), be(0, 32), be(0x18, 2), "\255\255", avcc)
end

-- AAC-LC, 44100 Hz, stereo: the AudioSpecificConfig 0x12 0x10 in an esds.
local function mp4a()
  local esds = fullbox("esds", 0, 0, "\3\25\0\1\0", "\4\17\64\21", be(0, 3), be(128000, 4), be(128000, 4),
    "\5\2\18\16", "\6\1\2")
  return box("mp4a", be(0, 6), be(1, 2), be(0, 8), be(2, 2), be(16, 2), be(0, 4), be(44100 * 65536, 4), esds)
end

-- One track: video (avc1) or sound (mp4a); `sample` its one sample's size and
-- file offset, nil for none (a fragmented file's moov).
local function trak(t, ms, sample)
  local sound = t.sound
  local scale = sound and 44100 or 1000
  local dur = sound and math_floor(t.seconds * 44100 + 0.5) or ms
  local n = sample and 1 or 0
  local stbl = box("stbl", fullbox("stsd", 0, 0, be(1, 4), sound and mp4a() or avc1(t.width, t.height)),
    fullbox("stts", 0, 0, be(n, 4), sample and be(1, 4) .. be(dur, 4) or ""),
    fullbox("stsc", 0, 0, be(n, 4), sample and be(1, 4) .. be(1, 4) .. be(1, 4) or ""),
    fullbox("stsz", 0, 0, be(0, 4), be(n, 4), sample and be(math_min(sample[1], 0xFFFFFFFF), 4) or ""),
    fullbox("stco", 0, 0, be(n, 4), sample and be(sample[2], 4) or ""))
  local minf = box("minf", sound and fullbox("smhd", 0, 0, be(0, 4)) or fullbox("vmhd", 0, 1, be(0, 8)),
    box("dinf", fullbox("dref", 0, 0, be(1, 4), fullbox("url ", 0, 1))), stbl)
  local handler = sound and "soun" or "vide"
  local mdia = box("mdia", fullbox("mdhd", 0, 0, be(0, 8), be(scale, 4), be(dur, 4), be(0x55C4, 2), be(0, 2)),
    fullbox("hdlr", 0, 0, be(0, 4), handler, be(0, 12), sound and "SoundHandler\0" or "VideoHandler\0"), minf)
  local tkhd = fullbox("tkhd", 0, 3, be(0, 8), be(1, 4), be(0, 4), be(ms, 4), be(0, 8), be(0, 4),
    be(sound and 0x100 or 0, 2), be(0, 2), MATRIX, be((sound and 0 or t.width) * 65536, 4),
    be((sound and 0 or t.height) * 65536, 4))
  return box("trak", tkhd, mdia)
end

local function moov(t, ms, sample)
  local mvhd = fullbox("mvhd", 0, 0, be(0, 8), be(1000, 4), be(ms, 4), be(0x10000, 4), be(0x100, 2), be(0, 10),
    MATRIX, be(0, 24), be(2, 4))
  local mvex = t.fragmented and box("mvex", fullbox("mehd", 0, 0, be(ms, 4)),
    fullbox("trex", 0, 0, be(1, 4), be(1, 4), be(0, 12))) or ""
  return box("moov", mvhd, trak(t, ms, not t.fragmented and sample or nil), mvex)
end

local function moof(t, ms, size, data_offset)
  local dur = t.sound and math_floor(t.seconds * 44100 + 0.5) or ms
  local trun = fullbox("trun", 0, 0x301, be(1, 4), be(data_offset, 4), be(dur, 4),
    be(math_min(size, 0xFFFFFFFF), 4))
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

local function mp4_parts(o, sound)
  local brand = o.brand or (sound and "m4a" or "isom")
  local t = { seconds = num(o, "seconds", 5), width = num(o, "width", 1280), height = num(o, "height", 720),
    fragmented = o.fragmented, sound = sound }
  local b = BRANDS[brand] or error("media: brand must be \"isom\" or \"qt  \", got " .. tostring(brand), 3)
  if o.moov ~= nil and o.moov ~= "start" and o.moov ~= "end" then
    error("media: moov must be \"start\" or \"end\", got " .. tostring(o.moov), 3)
  end
  local ms = math_floor(t.seconds * 1000 + 0.5)
  local ftyp = box("ftyp", b[1], be(0x200, 4), b[2])
  -- box_overrun: the last box (mdat, or moov when at the end) says 64 bytes more than there are
  local overrun = o.box_overrun and o.moov ~= "end" and 64 or 0
  -- the boxes' sizes do not depend on the offsets and sizes written in them
  local fixed = #ftyp + #moov(t, ms, { 0, 0 }) + (t.fragmented and #moof(t, ms, 0, 0) or 0)
  local payload = pad_of(o.bytes, fixed + 8)
  local large = payload + 8 + overrun > 0xFFFFFFFF
  if large then payload = pad_of(o.bytes, fixed + 16) end
  local mhead = mdat_head(payload, overrun, large)
  if t.fragmented then
    local frag = moof(t, ms, payload, 0)
    frag = moof(t, ms, payload, #frag + #mhead)
    return { ftyp .. moov(t, ms) .. frag .. mhead, payload }
  end
  if o.moov == "end" then
    local mv = moov(t, ms, { payload, #ftyp + #mhead })
    if o.box_overrun then mv = be(#mv + 64, 4) .. mv:sub(5) end
    return { ftyp .. mhead, payload, mv }
  end
  local mv = moov(t, ms, { payload, 0 })
  return { ftyp .. moov(t, ms, { payload, #ftyp + #mv + #mhead }) .. mhead, payload }
end

---------------------------------------------------------------------------
-- images

-- PNG: 1-bit greyscale, its rows of zeros in a zlib stream of stored blocks;
-- padding in a private ancillary chunk (spAd) before IEND.  A chunk's data
-- comes as parts, its CRC over the zero runs computed without the zeros.
local function png_chunk(out, t, data)
  local reg, n = crc_update(0xFFFFFFFF, t), parts_size(data)
  out[#out + 1] = be(n, 4) .. t
  for _, p in ipairs(data) do
    reg = type(p) == "number" and crc_zeros(reg, p) or crc_update(reg, p)
    out[#out + 1] = p
  end
  out[#out + 1] = be(bxor(reg, 0xFFFFFFFF), 4)
end

local function png_parts(o)
  local w, h = num(o, "width", 64), num(o, "height", 64)
  local raw = h * (1 + math_ceil(w / 8))
  local z, left = { "\120\1" }, raw
  repeat
    local n = math_min(left, 65535)
    left = left - n
    z[#z + 1] = str_char(left == 0 and 1 or 0) .. le(n, 2) .. le(65535 - n, 2)
    z[#z + 1] = n
  until left == 0
  z[#z + 1] = be(raw % 65521, 2) .. be(1, 2) -- Adler-32 of zeros: b = n mod 65521, a = 1
  local parts = { "\137PNG\r\n\26\n" }
  png_chunk(parts, "IHDR", { be(w, 4) .. be(h, 4) .. "\1\0\0\0\0" })
  png_chunk(parts, "IDAT", z)
  local pad = pad_of(o.bytes, parts_size(parts) + 12 + 12)
  if pad > 0 then png_chunk(parts, "spAd", { pad }) end
  png_chunk(parts, "IEND", {})
  return parts
end

-- JPEG: SOI, APP0 (JFIF 1.01), SOF0 with the dimensions, COM segments of
-- zeros as padding, EOI.  Header readers stop at SOF0.
local function jpeg_parts(o)
  local w, h = num(o, "width", 64), num(o, "height", 64)
  local head = "\255\216" .. "\255\224" .. be(16, 2) .. "JFIF\0\1\1\0" .. be(1, 2) .. be(1, 2) .. "\0\0"
    .. "\255\192" .. be(17, 2) .. "\8" .. be(h, 2) .. be(w, 2) .. "\3\1\34\0\2\17\1\3\17\1"
  local parts = { head }
  local pad = pad_of(o.bytes, #head + 2)
  while pad >= 4 do -- (a padding of 1 to 3 bytes cannot be had: the file is that much smaller)
    local n = math_min(pad - 4, 65533)
    if pad - 4 - n > 0 and pad - 4 - n < 4 then n = n - 4 end -- leave room for a whole segment
    parts[#parts + 1] = "\255\254" .. be(n + 2, 2)
    parts[#parts + 1] = n
    pad = pad - 4 - n
  end
  parts[#parts + 1] = "\255\217"
  return parts
end

-- GIF89a: the logical screen's dimensions, a two-colour table, comment
-- blocks of zeros as padding, then one 1x1 image.
local function gif_parts(o)
  local w, h = num(o, "width", 64), num(o, "height", 64)
  local head = "GIF89a" .. le(w, 2) .. le(h, 2) .. "\128\0\0" .. "\0\0\0\255\255\255"
  local image = "\44" .. le(0, 4) .. le(1, 2) .. le(1, 2) .. "\0" .. "\2\2\68\1\0" .. "\59"
  local pad = pad_of(o.bytes, #head + #image)
  local parts = { head }
  if pad >= 3 then
    local full = math_floor((pad - 3) / 256)
    local rest = pad - 3 - full * 256
    parts[#parts + 1] = "\33\254" .. str_rep("\255" .. str_rep("\0", 255), full)
    if rest > 0 then parts[#parts + 1] = str_char(rest - 1) .. str_rep("\0", rest - 1) end
    parts[#parts + 1] = "\0"
  end
  parts[#parts + 1] = image
  return parts
end

-- WebP: RIFF, a VP8X chunk with the canvas size, and padding in a chunk of
-- its own (which readers skip).
local function webp_parts(o)
  local w, h = num(o, "width", 64), num(o, "height", 64)
  local vp8x = "VP8X" .. le(10, 4) .. "\0\0\0\0" .. le(w - 1, 3) .. le(h - 1, 3)
  local pad = pad_of(o.bytes, 12 + #vp8x + 8)
  pad = pad + pad % 2
  return { "RIFF" .. le(4 + #vp8x + 8 + pad, 4) .. "WEBP" .. vp8x .. "PAD " .. le(pad, 4), pad }
end

---------------------------------------------------------------------------
-- sound

-- WAV: PCM, mono, 16 bits, `rate` samples a second of silence.
local function wav_parts(o)
  local rate = num(o, "rate", 8000)
  local data = math_floor(num(o, "seconds", 5) * rate + 0.5) * 2
  return { "RIFF" .. le(36 + data, 4) .. "WAVE" .. "fmt " .. le(16, 4) .. le(1, 2) .. le(1, 2) .. le(rate, 4)
    .. le(rate * 2, 4) .. le(2, 2) .. le(16, 2) .. "data" .. le(data, 4), data }
end

local MP3_RATES = { [32] = 1, [40] = 2, [48] = 3, [56] = 4, [64] = 5, [80] = 6, [96] = 7, [112] = 8, [128] = 9,
  [160] = 10, [192] = 11, [224] = 12, [256] = 13, [320] = 14 }

-- MP3: MPEG-1 layer III, 44100 Hz, stereo, constant bit rate, frames of
-- silence (1152 samples each, unpadded); xing = true puts a Xing header with
-- the frame count in the first frame.
local function mp3_parts(o)
  local kbps = num(o, "bitrate", 128)
  local index = MP3_RATES[kbps] or error("media: bitrate must be an MPEG-1 layer III rate (32-320), got " .. kbps, 3)
  local frame = math_floor(144 * kbps * 1000 / 44100)
  local header = "\255\251" .. str_char(index * 16) .. "\0"
  local frames = math_max(1, math_floor(num(o, "seconds", 5) * 44100 / 1152 + 0.5))
  local one = header .. str_rep("\0", frame - 4)
  local parts = {}
  if o.xing then
    local xing = header .. str_rep("\0", 32) .. "Xing" .. be(3, 4) .. be(frames, 4) .. be(frames * frame, 4)
    parts[1] = xing .. str_rep("\0", frame - #xing)
    frames = frames - 1
  end
  parts[#parts + 1] = str_rep(one, frames)
  return parts
end

-- One Ogg page holding whole packets (each under 255 bytes * 255).
local function ogg_page(flags, granule, seq, packets)
  local lacing, body = {}, {}
  for i, p in ipairs(packets) do
    local n = #p
    while n >= 255 do lacing[#lacing + 1], n = "\255", n - 255 end
    lacing[#lacing + 1] = str_char(n)
    body[i] = p
  end
  local head = "OggS\0" .. str_char(flags) .. le(granule, 8) .. le(0x5356, 4) .. le(seq, 4)
  local rest = str_char(#lacing) .. tbl_concat(lacing) .. tbl_concat(body)
  return head .. le(ogg_crc(head .. "\0\0\0\0" .. rest), 4) .. rest
end

-- Ogg Vorbis: the identification header (mono, `rate` Hz), a comment header,
-- then a page of (silent, undecodable) audio packets a second, the last
-- marked end of stream with the granule position of the whole.
local function ogg_parts(o)
  local rate, seconds = num(o, "rate", 44100), num(o, "seconds", 5)
  local ident = "\1vorbis" .. le(0, 4) .. "\1" .. le(rate, 4) .. le(0, 4) .. le(64000, 4) .. le(0, 4) .. "\184\1"
  local comment = "\3vorbis" .. le(9, 4) .. "starvideo" .. le(0, 4) .. "\1"
  local parts = { ogg_page(2, 0, 0, { ident }), ogg_page(0, 0, 1, { comment }) }
  local pages = math_max(1, math_ceil(seconds))
  for i = 1, pages do
    local granule = math_floor(math_min(i, seconds) * rate + 0.5)
    parts[#parts + 1] = ogg_page(i == pages and 4 or 0, granule, i + 1, { str_rep("\0", 100) })
  end
  return parts
end

---------------------------------------------------------------------------

local WRITERS = {
  mp4 = function(o) return mp4_parts(o) end,
  mov = function(o)
    local c = {}
    for k, v in pairs(o) do c[k] = v end
    c.brand = "qt  "
    return mp4_parts(c)
  end,
  m4a = function(o) return mp4_parts(o, true) end,
  png = png_parts, jpeg = jpeg_parts, gif = gif_parts, webp = webp_parts,
  wav = wav_parts, mp3 = mp3_parts, ogg = ogg_parts,
}

M.TYPES = { "png", "jpeg", "gif", "webp", "mp4", "mov", "wav", "mp3", "m4a", "ogg" }
M.CONTENT_TYPES = {
  png = "image/png", jpeg = "image/jpeg", gif = "image/gif", webp = "image/webp", mp4 = "video/mp4",
  mov = "video/quicktime", wav = "audio/wav", mp3 = "audio/mpeg", m4a = "audio/mp4", ogg = "audio/ogg",
}

-- The file of type `kind` as parts (strings, and numbers of zero bytes) and its size.
function M.parts(kind, o)
  local w = WRITERS[kind] or error("media: unknown type " .. tostring(kind), 2)
  local parts = w(o or {})
  return parts, parts_size(parts)
end

for kind in pairs(WRITERS) do
  M[kind] = function(o) return join((M.parts(kind, o))) end
end

return M
