-- Small readers of media headers for the specs, written apart from the
-- writers they check (rocks/emulator/lua/starvideos/emulator/media.lua) and from the C core's
-- sniffer: from the formats' documents, not from either's code.

local R = {}

local function uint(s, i, n, little)
  local v = 0
  for k = 0, n - 1 do
    local b = little and s:byte(i + n - 1 - k) or s:byte(i + k)
    if not b then return nil end
    v = v * 256 + b
  end
  return v
end
R.uint = uint

-- The boxes from byte `from` to `to` (1-based, inclusive) of s: a list of
-- { type =, at = (1-based), size =, head = 8 or 16 }; stops at a box whose size runs past `to`,
-- returning the list and that box.
function R.boxes(s, from, to)
  local list, i = {}, from or 1
  to = to or #s
  while i + 7 <= to do
    local size, head = uint(s, i, 4), 8
    if size == 1 then size, head = uint(s, i + 8, 8), 16 end
    if size == 0 then size = to - i + 1 end
    local b = { type = s:sub(i + 4, i + 7), at = i, size = size, head = head }
    if size < head or i + size - 1 > to then return list, b end
    list[#list + 1] = b
    i = i + size
  end
  return list
end

-- The first box of `kind` on the path (e.g. { "moov", "trak", "tkhd" }) in s.
function R.find(s, path)
  local from, to, found = 1, #s, nil
  for _, kind in ipairs(path) do
    found = nil
    for _, b in ipairs((R.boxes(s, from, to))) do
      if b.type == kind then found = b break end
    end
    if not found then return nil end
    from, to = found.at + found.head, found.at + found.size - 1
    if kind == "stsd" then from = from + 8 end -- version, flags, entry count
  end
  return found
end

-- What an MP4's boxes say: { brand, duration (mvhd, seconds), width, height (tkhd, 16.16),
-- entry_width, entry_height (the avc1 sample entry), top = { "ftyp", "moov", ... } }.
function R.mp4(s)
  local info, top = {}, {}
  for _, b in ipairs((R.boxes(s))) do top[#top + 1] = b.type end
  info.top = top
  local ftyp = R.find(s, { "ftyp" })
  info.brand = ftyp and s:sub(ftyp.at + 8, ftyp.at + 11)
  local mvhd = R.find(s, { "moov", "mvhd" })
  if mvhd then
    local p = mvhd.at + 8 + 4 + 8 -- version 0: creation, modification
    info.duration = uint(s, p + 4, 4) / uint(s, p, 4)
  end
  local tkhd = R.find(s, { "moov", "trak", "tkhd" })
  if tkhd then
    local e = tkhd.at + tkhd.size - 8
    info.width, info.height = uint(s, e, 4) / 65536, uint(s, e + 4, 4) / 65536
  end
  local entry = R.find(s, { "moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1" })
  if entry then
    info.entry_width, info.entry_height = uint(s, entry.at + 8 + 24, 2), uint(s, entry.at + 8 + 26, 2)
  end
  return info
end

-- PNG: the signature, then IHDR's width and height.
function R.png(s)
  if s:sub(1, 8) ~= "\137PNG\r\n\26\n" or s:sub(13, 16) ~= "IHDR" then return nil end
  return { width = uint(s, 17, 4), height = uint(s, 21, 4) }
end

-- JPEG: the segments from SOI to SOF0's height and width.
function R.jpeg(s)
  if s:sub(1, 2) ~= "\255\216" then return nil end
  local i = 3
  while i + 3 <= #s and s:byte(i) == 255 do
    local marker, len = s:byte(i + 1), uint(s, i + 2, 2)
    if marker == 0xC0 then return { height = uint(s, i + 5, 2), width = uint(s, i + 7, 2) } end
    i = i + 2 + len
  end
  return nil
end

function R.gif(s)
  if s:sub(1, 6) ~= "GIF89a" and s:sub(1, 6) ~= "GIF87a" then return nil end
  return { width = uint(s, 7, 2, true), height = uint(s, 9, 2, true) }
end

-- WebP: RIFF, WEBP, then VP8X's canvas size less one (24 bits each).
function R.webp(s)
  if s:sub(1, 4) ~= "RIFF" or s:sub(9, 12) ~= "WEBP" or s:sub(13, 16) ~= "VP8X" then return nil end
  return { width = uint(s, 25, 3, true) + 1, height = uint(s, 28, 3, true) + 1, riff = uint(s, 5, 4, true) }
end

-- WAV: its chunks walked to fmt and data: duration = data bytes / byte rate.
function R.wav(s)
  if s:sub(1, 4) ~= "RIFF" or s:sub(9, 12) ~= "WAVE" then return nil end
  local i, info = 13, {}
  while i + 7 <= #s do
    local id, len = s:sub(i, i + 3), uint(s, i + 4, 4, true)
    if id == "fmt " then info.rate, info.byte_rate = uint(s, i + 12, 4, true), uint(s, i + 16, 4, true) end
    if id == "data" then info.duration = len / info.byte_rate return info end
    i = i + 8 + len + len % 2
  end
  return nil
end

-- MP3: the first frame header's bit rate (MPEG-1 layer III), the frame count
-- (a Xing header's, else the file's size over the frame size).
local KBPS = { 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 }
function R.mp3(s)
  if s:byte(1) ~= 255 or s:byte(2) ~= 0xFB then return nil end
  local kbps = KBPS[math.floor(s:byte(3) / 16)]
  local frame = math.floor(144000 * kbps / 44100)
  local info = { kbps = kbps, frame = frame }
  if s:sub(37, 40) == "Xing" then info.xing_frames = uint(s, 45, 4) end
  info.frames = info.xing_frames or #s / frame
  info.duration = info.frames * 1152 / 44100
  return info
end

-- Ogg: every page's granule position, flags and sequence; the first
-- packet's Vorbis identification header's rate.
function R.ogg(s)
  local i, pages = 1, {}
  while i <= #s do
    if s:sub(i, i + 3) ~= "OggS" then return nil, "no page at byte " .. i end
    local segs, body = s:byte(i + 26), 0
    for k = 1, segs do body = body + s:byte(i + 26 + k) end
    pages[#pages + 1] = { flags = s:byte(i + 5), granule = uint(s, i + 6, 8, true), seq = uint(s, i + 18, 4, true),
      at = i, body = i + 27 + segs }
    i = i + 27 + segs + body
  end
  local first = pages[1]
  if not first or s:sub(first.body, first.body + 6) ~= "\1vorbis" then return nil, "no identification header" end
  return { pages = pages, rate = uint(s, first.body + 12, 4, true), channels = s:byte(first.body + 11),
    granule = pages[#pages].granule }
end

-- Pixels, decoded by ffmpeg (no reader here decodes a picture): the RGB bytes of one frame, the image at path or
-- frame n of the video at path; and of the video's last frame (ffprobe counts its frames).
function R.pixels(path, n)
  local helper = require "spec.helper"
  local q = helper.shell_quote
  local sel = n and string.format(" -vf %s", q("select=eq(n\\," .. n .. ")")) or ""
  return helper.capture(string.format("ffmpeg -v error -nostdin -i %s%s -frames:v 1 -f rawvideo -pix_fmt rgb24 -",
    q(path), sel))
end

function R.last_pixels(path)
  local helper = require "spec.helper"
  local frames = tonumber((helper.capture("ffprobe -v error -count_frames -select_streams v:0 -show_entries "
    .. "stream=nb_read_frames -of csv=p=0 " .. helper.shell_quote(path)):match("%d+")))
  return R.pixels(path, frames - 1)
end

return R
