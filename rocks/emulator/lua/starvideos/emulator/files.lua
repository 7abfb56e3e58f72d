-- starvideos.emulator.files: the files the emulator serves, written by
-- starvideos.emulator.media: a task's video (an MP4 of the task's duration and
-- picture size, H.264 that players play, padded to the config's video_size) and the reference media of /media/<name>
-- (any type, size, duration and dimensions a spec asks for).  Both honour a
-- single Range with 206, answer HEAD with the Content-Length, and stream
-- their zero runs without holding them.

local cjson = require "cjson.safe"
local media = require "starvideos.emulator.media"

local ipairs, tonumber, type = ipairs, tonumber, type
local str_format, str_rep = string.format, string.rep
local math_min, math_max, math_floor = math.min, math.max, math.floor

local F = {}

F.VIDEO_BYTES = 19239   -- bytes (18.8 KiB) of a task's video when video_size is null
F.VIDEO_WIDTH, F.VIDEO_HEIGHT = 1280, 720
F.MAX_BYTES = 2 ^ 40    -- bytes of any file (1 TiB)
F.MAX_SECONDS = 3600    -- of a /media/ file
-- the types whose padding is made of many small blocks: a size past this is a typo
local BLOCKY = { jpeg = 2 ^ 28, gif = 2 ^ 28 }

local CHUNK = 64 * 1024
local ZEROS = str_rep("\0", CHUNK)

-- The picture of a task that asks `ratio` ("W:H", nil: 16:9) at `resolution`
-- ("720p", nil: 720p): the resolution's number of pixels on the short side,
-- the long side in proportion (rounded to an even number).
function F.dimensions(ratio, resolution)
  local a, b = tostring(ratio or "16:9"):match("^(%d+):(%d+)$")
  local short = tonumber(tostring(resolution or "720p"):match("^(%d+)[pP]$")) or F.VIDEO_HEIGHT
  a, b = tonumber(a), tonumber(b)
  if not (a and b and a > 0 and b > 0) then a, b = 16, 9 end
  local long = 2 * math_floor(short * math_max(a, b) / math_min(a, b) / 2 + 0.5)
  if a >= b then return long, short end
  return short, long
end

-- A task's video: what the emulator serves for a task of `seconds` at
-- video_size `bytes` (nil: F.VIDEO_BYTES), width x height (nil: 1280 x 720),
-- in the colours of `prompt` (nil: those of an empty one, every video's when
-- the config's video_colours is "fixed").  As parts and size (media.parts):
-- H.264 that players play, padded after its samples.
function F.video_parts(seconds, bytes, width, height, prompt)
  return media.parts("mp4", { seconds = seconds, bytes = bytes or F.VIDEO_BYTES,
    width = width or F.VIDEO_WIDTH, height = height or F.VIDEO_HEIGHT, prompt = prompt })
end

-- The same video as one string, for the specs to compare with what they downloaded.
function F.video(seconds, bytes, width, height, prompt)
  return media.mp4 { seconds = seconds, bytes = bytes or F.VIDEO_BYTES,
    width = width or F.VIDEO_WIDTH, height = height or F.VIDEO_HEIGHT, prompt = prompt }
end

-- Bytes first to last (0-based, inclusive) of parts, given to emit in pieces.
local function stream_range(parts, first, last)
  return function(emit)
    local pos = 0
    for _, p in ipairs(parts) do
      local len = type(p) == "number" and p or #p
      local a, b = math_max(first, pos), math_min(last, pos + len - 1)
      if a <= b then
        if type(p) == "string" then
          emit(p:sub(a - pos + 1, b - pos + 1))
        else
          local left = b - a + 1
          while left > 0 do
            local k = math_min(left, CHUNK)
            emit(k == CHUNK and ZEROS or ZEROS:sub(1, k))
            left = left - k
          end
        end
      end
      pos = pos + len
    end
  end
end

-- Parse a single byte range. Returns first, last; or false when unsatisfiable;
-- or nil when the header is to be ignored.
local function parse_range(header, total)
  local a, b = header:match("^%s*bytes%s*=%s*(%d*)%s*%-%s*(%d*)%s*$")
  if not a or (a == "" and b == "") then return nil end
  if a == "" then
    local n = tonumber(b)
    if n == 0 then return false end
    return math_max(0, total - n), total - 1
  end
  local first, last = tonumber(a), b ~= "" and tonumber(b) or total - 1
  if b ~= "" and last < first then return nil end
  if first >= total then return false end
  return first, math_min(last, total - 1)
end

local function json(status, message, kind)
  return { status = status, headers = { { "Content-Type", "application/json" } },
    body = cjson.encode { error = { message = message, type = kind } } }
end

-- The answer to a GET or HEAD of a file: 200 whole, 206 for a single Range
-- (416 past the end), in the emulator's response shape; no_ranges: 200 whole
-- to any Range (a host that ignores Range: nginx's max_ranges 0).
function F.answer(req, parts, total, content_type, no_ranges)
  local res = { status = 200, headers = { { "Content-Type", content_type },
    { "Accept-Ranges", no_ranges and "none" or "bytes" } } }
  local range = not no_ranges and req.headers.range
  local first, last = 0, total - 1
  if range then
    local a, b = parse_range(range, total)
    if a == false then
      res = json(416, "range not satisfiable", "invalid_range")
      res.headers[2] = { "Content-Range", str_format("bytes */%d", total) }
      return res
    elseif a then
      first, last = a, b
      res.status = 206
      res.headers[3] = { "Content-Range", str_format("bytes %d-%d/%d", first, last, total) }
    end
  end
  res.stream, res.length = stream_range(parts, first, last), last - first + 1
  return res
end

local ALIASES = { jpg = "jpeg", m4v = "mp4", qt = "mov", aac = "m4a", oga = "ogg" }
local KNOWN = {}
for _, t in ipairs(media.TYPES) do KNOWN[t] = true end

-- A query's number field: nil when absent, else the number, or nil, why.
local function number_of(q, k, max)
  local v = q[k]
  if v == nil or v == "" then return nil end
  local n = tonumber(v)
  if not n or n < 0 or n > max then
    return nil, str_format("%s: expected a number from 0 to %.0f, got %q", k, max, v)
  end
  return n
end

-- The options of /media/<name>?... as media writer options, or nil, why.
local function media_options(name, q)
  local kind = q.type or name:match("%.(%w+)$")
  kind = kind and (ALIASES[kind:lower()] or kind:lower())
  if not kind or not KNOWN[kind] then
    return nil, "type: expected one of " .. table.concat(media.TYPES, ", ") .. ", got " .. tostring(q.type or name)
  end
  local o, err = { moov = q.moov, fragmented = q.fragmented == "1", box_overrun = q.overrun == "1",
    xing = q.xing == "1", prompt = q.prompt }
  if o.moov and o.moov ~= "start" and o.moov ~= "end" then return nil, "moov: expected start or end" end
  local fields = { { "bytes", "bytes", BLOCKY[kind] or F.MAX_BYTES }, { "seconds", "seconds", F.MAX_SECONDS },
    { "w", "width", 65535 }, { "h", "height", 65535 }, { "rate", "rate", 192000 }, { "bitrate", "bitrate", 320 } }
  for _, f in ipairs(fields) do
    o[f[2]], err = number_of(q, f[1], f[3])
    if err then return nil, err end
  end
  if o.width then o.width = math_max(1, math_floor(o.width)) end
  if o.height then o.height = math_max(1, math_floor(o.height)) end
  if o.bytes then o.bytes = math_floor(o.bytes) end
  return kind, o
end

-- GET or HEAD /media/<name>?type=&bytes=&seconds=&w=&h=&moov=end&prompt=&status=&redirect=1
-- (q: the request's query, parsed).  redirect=1: 302 to the same URL without it.
function F.media(req, q)
  local name = req.path:match("^/media/([^/]+)$")
  if not name then return json(404, "not found: /media/<name>", "not_found") end
  if q.redirect == "1" then
    local rest = {}
    for pair in req.query:gmatch("[^&]+") do
      if not pair:match("^redirect=") then rest[#rest + 1] = pair end
    end
    local target = "/media/" .. name .. (rest[1] and "?" .. table.concat(rest, "&") or "")
    return { status = 302, headers = { { "Location", target } }, body = "" }
  end
  local status = tonumber(q.status)
  if q.status and (not status or status < 200 or status > 599 or status % 1 ~= 0) then
    return json(400, "status: expected an HTTP status from 200 to 599, got " .. q.status, "invalid_request")
  end
  if status and status ~= 200 then return json(status, str_format("media: HTTP %d, as asked", status), "media") end
  local kind, o = media_options(name, q)
  if not kind then return json(400, o, "invalid_request") end
  local ok, parts, total = pcall(media.parts, kind, o)
  if not ok then return json(400, (tostring(parts):gsub("^[^\n]-:%d+: ", "")), "invalid_request") end -- (no position)
  return F.answer(req, parts, total, media.CONTENT_TYPES[kind])
end

return F
