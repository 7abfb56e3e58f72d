-- The HTML page (inline SVG, no script, nothing fetched) that draws a Grafana dashboard's panels from the answers
-- Prometheus gave to their queries: dashboard-picture.lua (beside this file) renders it with headless Chromium.
-- Panels are placed by their gridPos (24 columns, 30 px a row unit, as Grafana does); a time series panel draws each
-- series of each query as a line with its legend (legendFormat, its last value), a stat panel its number.
--
--   R.page(dash, results, info) -> html, height (px)
--     results[panel id] = { { legend =, points = {{t, v}, ...} }, ... } (v nil: no value there)
--     info = { title =, from =, to = (seconds) }

local R = {}

R.WIDTH = 1600
local UNIT_H, PAD = 30, 6
local COLOURS = { "#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#fade2a",
  "#96d98d", "#ffb357", "#ca95e5", "#ff7383" }

local function esc(s) return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
  ['"'] = "&quot;" })) end

-- v in the panel's unit (Grafana's names), short.
local function scaled(v, base, names)
  local i = 1
  while math.abs(v) >= base and names[i + 1] do v, i = v / base, i + 1 end
  if v == math.floor(v) then return string.format("%d%s", v, names[i]) end
  return string.format(math.abs(v) >= 100 and "%.0f%s" or math.abs(v) >= 10 and "%.1f%s" or "%.2f%s", v, names[i])
end
function R.format(v, unit)
  if v == nil then return "no data" end
  if unit == "percentunit" then return string.format("%.1f%%", v * 100) end
  if unit == "s" then
    if v ~= 0 and math.abs(v) < 1 then return string.format("%.0f ms", v * 1000) end
    return scaled(v, 60, { " s", " min", " h" })
  end
  if unit == "Bps" then return scaled(v, 1000, { " B/s", " kB/s", " MB/s", " GB/s" }) end
  if unit == "reqps" then return scaled(v, 1000, { " req/s", "k req/s" }) end
  if unit == "opm" then return scaled(v, 1000, { " /min", "k /min" }) end
  return scaled(v, 1000, { "", "k", "M", "G" })
end

-- The frame of a panel: its box and title (an SVG group translated to its place), and its inner size.
local function frame(p, out)
  local col = R.WIDTH / 24
  local g = p.gridPos
  local x, y, w, h = g.x * col + PAD / 2, g.y * UNIT_H + 40 + PAD / 2, g.w * col - PAD, g.h * UNIT_H - PAD
  out[#out + 1] = string.format('<g transform="translate(%.1f,%.1f)"><rect width="%.1f" height="%.1f" rx="3" '
    .. 'fill="#181b1f" stroke="#2c3235"/><text x="10" y="20" class="title">%s</text>', x, y, w, h, esc(p.title))
  return w, h
end

-- The value range of series (min 0 unless below), widened when flat.
local function range(series)
  local lo, hi = 0, nil
  for _, s in ipairs(series) do
    for _, pt in ipairs(s.points) do
      if pt[2] then lo, hi = math.min(lo, pt[2]), math.max(hi or pt[2], pt[2]) end
    end
  end
  if not hi or hi <= lo then hi = lo + 1 end
  return lo, hi * 1.05
end

-- The axes: y ticks in the unit, x ticks in minutes from the start.
local function axes(out, box, lo, hi, unit, info)
  local x0, y0, w, h = box[1], box[2], box[3], box[4]
  for i = 0, 3 do
    local v, y = lo + (hi - lo) * i / 3, y0 + h - h * i / 3
    out[#out + 1] = string.format('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/><text x="%.1f" '
      .. 'y="%.1f" class="tick" text-anchor="end">%s</text>', x0, x0 + w, y, y, x0 - 4, y + 4, esc(R.format(v, unit)))
  end
  local span = info.to - info.from
  for i = 0, 4 do
    local x = x0 + w * i / 4
    out[#out + 1] = string.format('<text x="%.1f" y="%.1f" class="tick" text-anchor="%s">%s</text>', x,
      y0 + h + 14, i == 0 and "start" or i == 4 and "end" or "middle",
      os.date("!%H:%M:%S", math.floor(info.from + span * i / 4)))
  end
end

-- A series as polylines (broken where it has no value).
local function lines(out, s, colour, box, lo, hi, info)
  local x0, y0, w, h = box[1], box[2], box[3], box[4]
  local pts = {}
  local function flush()
    if #pts > 1 then
      out[#out + 1] = string.format('<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>', colour,
        table.concat(pts, " "))
    elseif #pts == 1 then
      local x, y = pts[1]:match("([^,]+),([^,]+)")
      out[#out + 1] = string.format('<circle cx="%s" cy="%s" r="2" fill="%s"/>', x, y, colour)
    end
    pts = {}
  end
  for _, pt in ipairs(s.points) do
    if pt[2] then
      pts[#pts + 1] = string.format("%.1f,%.1f", x0 + w * (pt[1] - info.from) / (info.to - info.from),
        y0 + h - h * (pt[2] - lo) / (hi - lo))
    else
      flush()
    end
  end
  flush()
end

local function last(s)
  for i = #s.points, 1, -1 do if s.points[i][2] then return s.points[i][2] end end
end

-- A legend's entry at (x, y), squeezed to width when it is longer.
local function entry(out, x, y, colour, text, width)
  local fit = #text * 6.2 > width - 16 and string.format(' textLength="%.0f" lengthAdjust="spacingAndGlyphs"',
    width - 16) or ""
  out[#out + 1] = string.format('<g transform="translate(%.1f,%.1f)"><rect width="10" height="3" y="-4" fill="%s"/>'
    .. '<text x="14" class="legend"%s>%s</text></g>', x, y, colour, fit, esc(text))
end

-- A time series panel: its lines, axes and legend (as many entries a row as fit, at most 5 rows).
local function timeseries(p, series, out, info)
  local w, h = frame(p, out)
  local unit = p.fieldConfig.defaults.unit
  local per_row = math.max(math.ceil(#series / 5), math.floor((w - 20) / 210), 1)
  local rows = math.ceil(#series / per_row)
  local box = { 64, 30, w - 76, h - 30 - 22 - rows * 14 - 4 }
  local lo, hi = range(series)
  axes(out, box, lo, hi, unit, info)
  for i, s in ipairs(series) do lines(out, s, COLOURS[(i - 1) % #COLOURS + 1], box, lo, hi, info) end
  for i, s in ipairs(series) do
    local r, c = math.floor((i - 1) / per_row), (i - 1) % per_row
    entry(out, 12 + c * (w - 20) / per_row, h - 8 - (rows - 1 - r) * 14, COLOURS[(i - 1) % #COLOURS + 1],
      s.legend .. ": " .. R.format(last(s), unit), (w - 20) / per_row)
  end
  if #series == 0 then
    out[#out + 1] = string.format('<text x="%.1f" y="%.1f" class="none" text-anchor="middle">no data</text>', w / 2,
      h / 2)
  end
  out[#out + 1] = "</g>"
end

-- A stat panel: the last value of its first series, red when a threshold says so.
local function stat(p, series, out)
  local w, h = frame(p, out)
  local v = series[1] and last(series[1])
  local decimals = tonumber(p.fieldConfig.defaults.decimals)
  if v and decimals then v = math.floor(v * 10 ^ decimals + 0.5) / 10 ^ decimals end
  local steps = p.fieldConfig.defaults.thresholds and p.fieldConfig.defaults.thresholds.steps or {}
  local colour = "#73bf69"
  for _, st in ipairs(steps) do
    if type(st.value) == "number" and v and v >= st.value then colour = st.color == "red" and "#f2495c" or st.color end
  end
  out[#out + 1] = string.format('<text x="%.1f" y="%.1f" class="stat" fill="%s" text-anchor="middle">%s</text></g>',
    w / 2, h / 2 + 22, colour, esc(R.format(v, p.fieldConfig.defaults.unit)))
end

local STYLE = [[
body { margin: 0; background: #111217; font-family: "DejaVu Sans", sans-serif; }
.title { fill: #ccccdc; font-size: 13px; font-weight: bold; } .tick { fill: #8e8e99; font-size: 10px; }
.legend { fill: #ccccdc; font-size: 10.5px; } .grid { stroke: #2c3235; stroke-width: 1; }
.none { fill: #8e8e99; font-size: 13px; } .stat { font-size: 40px; font-weight: bold; }
.row { fill: #ccccdc; font-size: 15px; font-weight: bold; } .head { fill: #ccccdc; font-size: 16px; }
]]

function R.page(dash, results, info)
  local out, bottom = {}, 0
  for _, p in ipairs(dash.panels) do
    bottom = math.max(bottom, (p.gridPos.y + p.gridPos.h) * UNIT_H + 40)
    if p.type == "row" then
      out[#out + 1] = string.format('<text x="8" y="%d" class="row">%s</text>', p.gridPos.y * UNIT_H + 40 + 21,
        esc(p.title))
    elseif p.type == "stat" then
      stat(p, results[p.id] or {}, out)
    else
      timeseries(p, results[p.id] or {}, out, info)
    end
  end
  local height = bottom + 8
  return string.format('<!doctype html><html><head><meta charset="utf-8"><style>%s</style></head><body><svg '
    .. 'xmlns="http://www.w3.org/2000/svg" width="%d" height="%d"><text x="8" y="26" class="head">%s</text>%s'
    .. '</svg></body></html>', STYLE, R.WIDTH, height, esc(info.title), table.concat(out)), height
end

return R
