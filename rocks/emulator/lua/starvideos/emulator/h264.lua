-- starvideos.emulator.h264: an H.264 stream (ITU-T H.264, Constrained
-- Baseline, CAVLC) of pictures of two colours, written bit by bit without an
-- encoder, what starvideos.emulator.scene lays out (digits and a bar in a
-- dark shade on a background, a macroblock each one colour):
--   the SPS and PPS (the picture cropped to width x height);
--   an IDR picture: each macroblock I_16x16 copying its left or upper
--     neighbour (horizontal or vertical prediction, no residual) when that
--     has its colour, else I_PCM holding its colour;
--   then P pictures: the macroblocks that change coded so too, the others
--     skipped (mb_skip_run), copies of the last picture's.
-- The deblocking filter is off, so every macroblock is its colour exactly.
-- The colours come from a text (a task's prompt): the hue of a colour word
-- in it, else of its hash.  Arithmetic only (no bit operators): Lua 5.1 to
-- 5.4 and LuaJIT run it.

local str_char, str_byte, str_rep, str_find = string.char, string.byte, string.rep, string.find
local tbl_concat = table.concat
local math_floor, math_max, math_min, math_ceil = math.floor, math.max, math.min, math.ceil
local setmetatable, ipairs = setmetatable, ipairs
local scene = require "starvideos.emulator.scene"

local H = {}

H.FPS = 10 -- pictures a second

---------------------------------------------------------------------------
-- bits, most significant first

local Bits = {}
Bits.__index = Bits

local function bits()
  return setmetatable({ out = {}, acc = 0, n = 0 }, Bits)
end

-- The n low bits of v.
function Bits:u(v, n)
  local acc, k, out = self.acc, self.n, self.out
  for i = n - 1, 0, -1 do
    acc, k = acc * 2 + math_floor(v / 2 ^ i) % 2, k + 1
    if k == 8 then
      out[#out + 1], acc, k = str_char(acc), 0, 0
    end
  end
  self.acc, self.n = acc, k
  return self
end

-- ue(v): Exp-Golomb, unsigned (9.1).
function Bits:ue(v)
  local len = 0
  while 2 ^ (len + 1) <= v + 1 do len = len + 1 end
  return self:u(0, len):u(v + 1, len + 1)
end

-- se(v): Exp-Golomb, signed (9.1.1).
function Bits:se(v)
  return self:ue(v > 0 and 2 * v - 1 or -2 * v)
end

-- Zero bits up to the next byte.
function Bits:align()
  if self.n > 0 then self:u(0, 8 - self.n) end
  return self
end

-- Whole bytes, at a byte boundary.
function Bits:bytes(s)
  self.out[#self.out + 1] = s
  return self
end

-- rbsp_trailing_bits: the stop bit, then zeros to the byte.
function Bits:rbsp()
  return tbl_concat(self:u(1, 1):align().out)
end

-- A NAL unit: its header byte, then the RBSP with an emulation prevention
-- byte (3) after any two zeros that a byte of 0 to 3 follows (7.4.1).  (A
-- plain find of the two zeros: a picture of I_PCM samples is a kilobyte.)
local function nal(header, rbsp)
  local out, from, i = { str_char(header) }, 1, 1
  while true do
    local z = str_find(rbsp, "\0\0", i, true)
    if not z then break end
    local b = str_byte(rbsp, z + 2)
    if b and b <= 3 then
      out[#out + 1], from = rbsp:sub(from, z + 1) .. "\3", z + 2
      i = z + 2
    else
      i = z + 1
    end
  end
  out[#out + 1] = rbsp:sub(from)
  return tbl_concat(out)
end

---------------------------------------------------------------------------
-- parameter sets

local function mbs(pixels)
  return math_max(1, math_ceil(pixels / 16))
end

-- level_idc: the lowest of 3.1, 4.0, 5.1, 6.2 whose frame size (in macroblocks) holds the picture.
local function level(count)
  if count <= 3600 then return 31 elseif count <= 8192 then return 40 elseif count <= 36864 then return 51 end
  return 62
end

-- Constrained Baseline (profile 66, constraint_set0 and 1), the picture
-- cropped to width x height (in 2-pixel units: 4:2:0), POC type 2 (output
-- order is decoding order), one reference frame, no VUI.
function H.sps(width, height)
  local mbw, mbh = mbs(width), mbs(height)
  local crop_r, crop_b = math_floor((mbw * 16 - width) / 2), math_floor((mbh * 16 - height) / 2)
  local b = bits():u(66, 8):u(0xC0, 8):u(level(mbw * mbh), 8)
    :ue(0):ue(0):ue(2):ue(1):u(0, 1) -- sps id, log2_max_frame_num - 4, POC type, ref frames, no gaps
    :ue(mbw - 1):ue(mbh - 1):u(1, 1):u(1, 1) -- frame_mbs_only, direct_8x8_inference
  if crop_r > 0 or crop_b > 0 then
    b:u(1, 1):ue(0):ue(crop_r):ue(0):ue(crop_b)
  else
    b:u(0, 1)
  end
  return nal(0x67, b:u(0, 1):rbsp())
end

-- pps id 0 of sps 0: CAVLC, one slice group, one reference, QP 26, the
-- deblocking filter's control in the slice headers (which turn it off: the
-- pictures' edges stay sharp and their colours exact).
H.PPS = nal(0x68, bits():ue(0):ue(0):u(0, 1):u(0, 1):ue(0):ue(0):ue(0):u(0, 1):u(0, 2)
  :se(0):se(0):se(0):u(1, 1):u(0, 1):u(0, 1):rbsp())

---------------------------------------------------------------------------
-- pictures

-- coeff_token of an empty block (TotalCoeff 0, TrailingOnes 0) by nC (table 9-5).
local function empty_block(b, nc)
  if nc < 2 then return b:u(1, 1) elseif nc < 4 then return b:u(3, 2) elseif nc < 8 then return b:u(15, 4) end
  return b:u(3, 6)
end

-- nC of a macroblock's Intra16x16DCLevel (9.2.1): of its left and upper
-- neighbours (when there are), 16 for an I_PCM one, 0 for the others.
local function nc_of(addr, mbw, pcm)
  local left = addr % mbw > 0 and (pcm[addr - 1] and 16 or 0)
  local up = addr >= mbw and (pcm[addr - mbw] and 16 or 0)
  if left and up then return math_floor((left + up + 1) / 2) end
  return left or up or 0
end

-- The macroblock at addr of a picture whose lit macroblocks are `lit`, as an
-- intra one of an I slice (offset 0) or a P slice (offset 5): a copy of its
-- left neighbour (horizontal prediction) or upper one (vertical) when that has
-- its colour, else I_PCM of its colour (pcms[1] dark, pcms[2] lit); no
-- residual.  pcm: the picture's I_PCM macroblocks so far, this one added.
local function intra(b, offset, addr, mbw, lit, pcm, pcms)
  local on = lit[addr] or false
  local pred, chroma -- I_16x16_<pred>_0_0 and intra_chroma_pred_mode
  if addr % mbw > 0 and (lit[addr - 1] or false) == on then
    pred, chroma = 1, 1
  elseif addr >= mbw and (lit[addr - mbw] or false) == on then
    pred, chroma = 0, 2
  else
    pcm[addr] = true
    return b:ue(offset + 25):align():bytes(pcms[on and 2 or 1])
  end
  return empty_block(b:ue(offset + 1 + pred):ue(chroma):se(0), nc_of(addr, mbw, pcm))
end

-- The IDR picture over mbw x mbh macroblocks, one slice, no deblocking.
local function idr(mbw, mbh, lit, pcms)
  local b = bits():ue(0):ue(7):ue(0):u(0, 4):ue(0) -- first mb, I slice, pps, frame_num, idr_pic_id
    :u(0, 1):u(0, 1):se(0):ue(1) -- dec_ref_pic_marking (no_output_of_prior_pics, long_term), qp delta, no deblocking
  local pcm = {}
  for addr = 0, mbw * mbh - 1 do intra(b, 0, addr, mbw, lit, pcm, pcms) end
  return nal(0x65, b:rbsp())
end

-- A P picture of `count` macroblocks, those of `toggled` (ascending) lit or
-- darkened (lit updated), every other one skipped: a copy of the last picture.
local function predicted(count, frame_num, mbw, toggled, lit, pcms)
  local b = bits():ue(0):ue(5):ue(0):u(frame_num, 4) -- first mb, P slice, pps, frame_num (4 bits)
    :u(0, 1):u(0, 1):u(0, 1):se(0):ue(1) -- no num_ref_idx override, no list modification, sliding window, qp delta,
                                         -- no deblocking
  local last, pcm = -1, {}
  for _, addr in ipairs(toggled) do
    lit[addr] = not lit[addr] or nil
    intra(b:ue(addr - last - 1), 5, addr, mbw, lit, pcm, pcms) -- mb_skip_run, then the macroblock
    last = addr
  end
  if last < count - 1 then b:ue(count - 1 - last) end
  return nal(0x41, b:rbsp())
end

---------------------------------------------------------------------------
-- the colour

-- The colour of hue (0 to 360), saturation and value (0 to 1), as BT.601 limited-range Y, Cb, Cr.
local function ycbcr(deg, s, v)
  local hue = deg / 60
  local f = hue - math_floor(hue)
  local p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
  local rgb = ({ { v, t, p }, { q, v, p }, { p, v, t }, { p, q, v }, { t, p, v }, { v, p, q } })[math_floor(hue) + 1]
  local r, g, bl = rgb[1], rgb[2], rgb[3]
  local function round(x) return math_min(240, math_max(16, math_floor(x + 0.5))) end
  return { round(16 + 65.481 * r + 128.553 * g + 24.966 * bl), round(128 - 37.797 * r - 74.203 * g + 112 * bl),
    round(128 + 112 * r - 93.786 * g - 18.214 * bl) }
end

-- The hues (degrees) of the colour words a prompt may name.
local HUES = { red = 0, scarlet = 0, crimson = 350, orange = 28, amber = 40, gold = 48, golden = 48, yellow = 58,
  lime = 90, green = 125, emerald = 140, teal = 175, turquoise = 172, cyan = 185, azure = 205, blue = 225, navy = 230,
  indigo = 255, violet = 270, purple = 280, magenta = 305, pink = 330, rose = 340 }

-- The hue (0 to 359) of text: of the first colour word in it ("a red fox"), else of its hash.
local function hue_of(text)
  text = text or ""
  for word in text:lower():gmatch("%a+") do
    if HUES[word] then return HUES[word] end
  end
  local h = 5381
  for i = 1, #text do h = (h * 33 + str_byte(text, i)) % 2147483647 end
  return h % 360
end

-- The background of a text's video: a mid-light, mid-saturated colour of its hue.
function H.colour(text)
  return ycbcr(hue_of(text), 0.55, 0.8)
end

-- The colours of a text's video: { the background (H.colour), a dark shade of its hue (the bar and the digits) }.
function H.colours(text)
  local hue = hue_of(text)
  return { ycbcr(hue, 0.55, 0.8), ycbcr(hue, 0.7, 0.25) }
end

---------------------------------------------------------------------------
-- the stream

local function framed(n)
  local s = ""
  for _ = 1, 4 do s, n = str_char(n % 256) .. s, math_floor(n / 256) end
  return s
end

-- A macroblock of colour c ({y, cb, cr}) as I_PCM samples.
local function pcm_of(c)
  return str_rep(str_char(c[1]), 256) .. str_rep(str_char(c[2]), 64) .. str_rep(str_char(c[3]), 64)
end

-- The pictures of `count` at width x height in colours (H.colours): the IDR,
-- then P pictures.  A P picture that toggles what an earlier one did, with the
-- same frame_num, is that one: the still ones (16 of them) and a digit's
-- change, which recurs every 100 s (the macroblocks around it the same), are
-- made once.
local function pictures(width, height, count, colours)
  local mbw, mbh = mbs(width), mbs(height)
  local layout, pcms = scene.new(mbw, width, height, count, H.FPS), { pcm_of(colours[1]), pcm_of(colours[2]) }
  local lit = scene.lit(layout)
  local first = idr(mbw, mbh, lit, pcms)
  local samples, made = { framed(#first) .. first }, {}
  for k = 1, count - 1 do
    local toggled, n = scene.toggled(layout, k), k % 16
    local key = n .. ":" .. tbl_concat(toggled, ",")
    local p = made[key]
    if p then
      for _, addr in ipairs(toggled) do lit[addr] = not lit[addr] or nil end
    else
      p = predicted(mbw * mbh, n, mbw, toggled, lit, pcms)
      p = framed(#p) .. p
      made[key] = p
    end
    samples[k + 1] = p
  end
  return samples
end

local cache, cached = {}, 0

-- The pictures of a stream of `ms` milliseconds at width x height in
-- `colours` (H.colours; nil: those of no text), showing what
-- starvideos.emulator.scene lays out: { sps, pps, samples (each a NAL unit
-- with its 4-byte length), durations (ms) }.  The first sample is the IDR
-- picture, the others P pictures at H.FPS a second, the last one shortened to
-- end at `ms` (at least one picture).  The last 16 streams are kept.
function H.stream(width, height, ms, colours)
  colours = colours or H.colours()
  local step = 1000 / H.FPS
  local count = math_max(1, math_ceil(ms / step))
  local bg, fg = colours[1], colours[2]
  local key = tbl_concat({ width, height, count, bg[1], bg[2], bg[3], fg[1], fg[2], fg[3] }, ",")
  if not cache[key] then
    if cached >= 16 then cache, cached = {}, 0 end
    cache[key], cached = pictures(width, height, count, colours), cached + 1
  end
  local durations = {}
  for k = 1, count do durations[k] = k < count and step or ms - step * (count - 1) end
  return { sps = H.sps(width, height), pps = H.PPS, samples = cache[key], durations = durations }
end

return H
