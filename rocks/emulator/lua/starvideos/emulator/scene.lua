-- starvideos.emulator.scene: what an emulator video shows, as macroblocks
-- (16 x 16 pixels) lit or not: on a background of the prompt's colour, a
-- progress bar along the bottom that fills as the video plays, and the
-- current second's number (seven-segment digits, as many as the video's last
-- second has: 0 to 9, 00 to 15) at the top left, both in a darker shade
-- (starvideos.emulator.h264 paints them).  A picture too small for them
-- (under 3 rows of macroblocks for the bar; 9 rows and 5 columns for a digit)
-- shows less: the bar alone, the last digits, the background alone.
--
-- S.new(mbw, width, height, count, fps) lays out a video of `count` pictures
-- of width x height, mbw macroblocks a row (the picture cropped from them),
-- fps a second;
-- S.lit(layout) is the set of lit macroblock addresses (row * mbw + column,
-- from 0) of the first picture, S.toggled(layout, k) the list of those that
-- picture k (from 1) lights or darkens, in ascending order: a picture costs
-- what changes in it, so an hour's video is made as fast as a second's.

local math_floor, math_max, math_min, math_ceil = math.floor, math.max, math.min, math.ceil
local ipairs, pairs, tostring, tbl_sort = ipairs, pairs, tostring, table.sort

local S = {}

-- The seven segments on a grid of 3 x 5 cells, each a list of {column, row}.
local SEGMENTS = {
  a = { { 0, 0 }, { 1, 0 }, { 2, 0 } }, b = { { 2, 0 }, { 2, 1 }, { 2, 2 } }, c = { { 2, 2 }, { 2, 3 }, { 2, 4 } },
  d = { { 0, 4 }, { 1, 4 }, { 2, 4 } }, e = { { 0, 2 }, { 0, 3 }, { 0, 4 } }, f = { { 0, 0 }, { 0, 1 }, { 0, 2 } },
  g = { { 0, 2 }, { 1, 2 }, { 2, 2 } },
}
local DIGITS = { [0] = "abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg" }

-- The cells ({column, row} on the 3 x 5 grid) of each digit.
local CELLS = {}
for d = 0, 9 do
  local cells, seen = {}, {}
  for seg in DIGITS[d]:gmatch(".") do
    for _, c in ipairs(SEGMENTS[seg]) do
      local key = c[1] + 3 * c[2]
      if not seen[key] then seen[key], cells[#cells + 1] = true, c end
    end
  end
  CELLS[d] = cells
end

-- The cells lit in one digit and not the other, of each digit a (0 to 9) and its successor.
local CHANGES = {}
for a = 0, 9 do
  local b, on, list = (a + 1) % 10, {}, {}
  for _, c in ipairs(CELLS[a]) do on[c[1] + 3 * c[2]] = c end
  for _, c in ipairs(CELLS[b]) do
    local key = c[1] + 3 * c[2]
    if on[key] then on[key] = nil else list[#list + 1] = c end
  end
  for _, c in pairs(on) do list[#list + 1] = c end
  CHANGES[a] = list
end

function S.new(mbw, width, height, count, fps)
  local cols, rows = math_floor(width / 16), math_floor(height / 16) -- the macroblocks shown whole
  local scale = math_max(1, math_floor(rows / 15)) -- macroblocks a side of a digit's cell
  local l = { mbw = mbw, count = count, cols = cols, fps = fps }
  if rows >= 3 and cols >= 1 then
    -- the bar: `scale` rows (at most a third of the picture), above one row of background
    local thick = math_max(1, math_floor(math_min(scale, rows / 3)))
    l.bar_top, l.bar_rows = rows - 1 - thick, thick
  end
  if l.bar_top and cols >= 5 * scale and l.bar_top > 6 * scale then
    -- the digits: each 3 x 5 cells, a cell apart and from the picture's top left corner
    local last = math_floor((count - 1) / fps)
    l.scale, l.places = scale, math_min(#tostring(last), math_floor((cols / scale - 1) / 4))
  end
  return l
end

-- The addresses of the cells ({column, row} of a digit's grid) of list, each
-- `scale` macroblocks a side, of the digit in place p (0: the units) onto out.
local function cells_onto(out, l, list, p)
  local s, mbw = l.scale, l.mbw
  local left = 1 + 4 * (l.places - 1 - p) -- the digit's first column of cells
  for _, c in ipairs(list) do
    for y = s * (c[2] + 1), s * (c[2] + 2) - 1 do
      for x = s * (c[1] + left), s * (c[1] + left + 1) - 1 do out[#out + 1] = y * mbw + x end
    end
  end
  return out
end

-- The bar's columns (from 0) lit in picture k: at least one, all of them in the last picture.
local function filled(l, k)
  return math_max(1, math_ceil((k + 1) * l.cols / l.count))
end

-- The bar's macroblocks of columns first to last onto out.
local function bar_onto(out, l, first, last)
  for y = l.bar_top, l.bar_top + l.bar_rows - 1 do
    for x = first, last do out[#out + 1] = y * l.mbw + x end
  end
  return out
end

function S.lit(l)
  local list = l.bar_top and bar_onto({}, l, 0, filled(l, 0) - 1) or {}
  for p = 0, (l.places or 0) - 1 do cells_onto(list, l, CELLS[0], p) end
  local set = {}
  for _, a in ipairs(list) do set[a] = true end
  return set
end

function S.toggled(l, k)
  local list = l.bar_top and bar_onto({}, l, filled(l, k - 1), filled(l, k) - 1) or {}
  local now, was, changed = math_floor(k / l.fps), math_floor((k - 1) / l.fps), false
  for p = 0, (l.places or 0) - 1 do
    local d = math_floor(was / 10 ^ p) % 10
    if d ~= math_floor(now / 10 ^ p) % 10 then cells_onto(list, l, CHANGES[d], p) changed = true end
  end
  if changed then tbl_sort(list) end
  return list
end

return S
