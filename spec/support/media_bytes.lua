-- Media files built byte by byte (Lua 5.1 to 5.4), for spec/core/media_spec.lua
-- and tools/media_seeds.lua (the media fuzz targets' seeds).
local M = {}

function M.be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end
function M.be16(n) return string.char(math.floor(n / 256) % 256, n % 256) end
function M.le32(n)
  return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256, math.floor(n / 16777216) % 256)
end
function M.le16(n) return string.char(n % 256, math.floor(n / 256) % 256) end
function M.zeros(n) return string.rep("\0", n) end
function M.box(kind, body) return M.be32(8 + #body) .. kind .. body end

function M.ftyp(brand) return M.box("ftyp", brand .. M.be32(0) .. "isom") end

-- moov: mvhd (version v: timescale, duration), a trak whose tkhd gives w x h in
-- 16.16 and, with entry, an stsd whose one sample entry of that type gives w x h
function M.moov(v, scale, duration, w, h, entry)
  local be32, zeros, box = M.be32, M.zeros, M.box
  local mvhd = box("mvhd", v == 1 and (be32(16777216) .. zeros(16) .. be32(scale) .. be32(0) .. be32(duration))
    or (be32(0) .. zeros(8) .. be32(scale) .. be32(duration)))
  local tkhd = box("tkhd", be32(0) .. zeros(72) .. M.be16(w) .. M.be16(0) .. M.be16(h) .. M.be16(0))
  local stsd = entry and box("stsd", be32(0) .. be32(1) .. box(entry, zeros(24) .. M.be16(w) .. M.be16(h) .. zeros(50)))
  local mdia = stsd and box("mdia", box("minf", box("stbl", stsd))) or ""
  return box("moov", mvhd .. box("trak", tkhd .. mdia))
end

-- an OGG page header: its granule position (below 2^32) and one segment of len
function M.ogg_page(granule, len)
  return "OggS\0\0" .. M.le32(granule) .. M.le32(0) .. M.zeros(12) .. "\1" .. string.char(len)
end

return M
