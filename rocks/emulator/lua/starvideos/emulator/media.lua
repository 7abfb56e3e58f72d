-- starvideos.emulator.media: real media files written byte by byte, for the
-- emulator's videos, its /media/ route and the specs' servers.  No encoder is
-- needed: a video (starvideos.emulator.mp4, .h264) is H.264 that players
-- play (a prompt's colours, a bar and the second's number); the other files carry the headers a decoder's
-- header reader needs (type, width and height, duration) and zeros where the
-- picture or the sound would be.  Runs on Lua 5.1 to 5.4 and LuaJIT (no
-- string.pack, no bit operators: integers are written and XORed by hand).
--
-- Each writer takes an options table and returns the file as a string:
--   mp4{seconds=, width=, height=, bytes=, moov="start"|"end", fragmented=, brand="isom"|"qt  ",
--       box_overrun=, prompt=}   (mp4.lua: bytes pads after the samples in mdat; prompt picks the colours)
--   m4a{seconds=, bytes=}   png{width=, height=, bytes=}   jpeg{...}   gif{...}   webp{...}
--   wav{seconds=, rate=}    mp3{seconds=, bitrate=, xing=}   ogg{seconds=, rate=}
-- M.parts(type, opts) returns the same file as a list of strings and numbers
-- (a number: that many zero bytes), and its size: how the emulator serves a
-- file of a GiB without holding it.

local bytes = require "starvideos.emulator.bytes"
local mp4 = require "starvideos.emulator.mp4"

local str_char, str_rep, str_byte = string.char, string.rep, string.byte
local tbl_concat = table.concat
local math_floor, math_max, math_min, math_ceil = math.floor, math.max, math.min, math.ceil
local error, ipairs, pairs, type, tostring = error, ipairs, pairs, type, tostring
local be, le, num, pad_of = bytes.be, bytes.le, bytes.num, bytes.pad_of

local M = {}

---------------------------------------------------------------------------
-- integers and bits

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
  mp4 = function(o) return mp4.parts(o) end,
  mov = function(o)
    local c = {}
    for k, v in pairs(o) do c[k] = v end
    c.brand = "qt  "
    return mp4.parts(c)
  end,
  m4a = function(o) return mp4.parts(o, true) end,
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
