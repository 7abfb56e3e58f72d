-- The answer of an HTTP/1.1 exchange on nginx's own socket (nginx/wire.lua's), read: its status line and
-- headers, its body as they frame it (a length, chunks, or until the server closes) into its unit (nginx/body.lua),
-- each step under the time left.  Linear in the answer's bytes: what was read ahead is one string and a position in
-- it (x.buf, x.pos), never copied to drop what was used.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local ngx = rawget(_G, "ngx")
local now = core.now

local HEAD_MAX = 64 * 1024 -- an answer's status line and headers, together
local CHUNK = 64 * 1024    -- the most asked of a socket at once

local A = { CHUNK = CHUNK }

-- The socket's timeout for its next step: the time left, at most `cap` s; false when up.
function A.arm(x, cap)
  local left = math.min(x.deadline and x.deadline - now() or 86400, cap or math.huge)
  if left <= 0 then return false end
  x.sock:settimeout(math.max(1, math.floor(left * 1000)))
  return true
end

-- How the wire ended, from a socket's error, once the request is out.
function A.wire_of(x, err)
  if err ~= "timeout" then return "broken", err == "closed" and "the server closed the connection" or tostring(err) end
  if x.deadline and now() >= x.deadline - 0.005 then
    return "timeout", string.format("no whole answer within %g s", x.r.timeout)
  end
  return "timeout", string.format("no data for %g s", x.stall or 0)
end

-- Past x.breath s of work, the worker's other work let run (1 ms: nginx without OpenResty's patch warns at each
-- ngx.sleep(0)).
function A.breathe(x)
  if now() - x.since >= x.breath then
    ngx.sleep(0.001)
    x.since = now()
  end
end

-- Up to n bytes of the answer, those read ahead first (not with `fresh`) | nil, socket error.
local function take(x, n, fresh)
  if x.pos <= #x.buf and not fresh then
    local data = x.buf:sub(x.pos, x.pos + n - 1)
    x.pos = x.pos + #data
    return data
  end
  if not A.arm(x, x.stall) then return nil, "timeout" end
  A.breathe(x)
  return x.sock:receiveany(n)
end

-- A line's text without its CR LF (or LF) ending at e.
local function cut(s, from, e)
  return s:sub(from, (e > from and s:byte(e - 1) == 13) and e - 2 or e - 1)
end

-- One line without its end, from at most `room` bytes: line, bytes used | nil, wire, message.
-- Linear in the bytes read: a line past what was read ahead is gathered piece by piece.
local function line(x, room)
  local b, pos = x.buf, x.pos
  local e = b:find("\n", pos, true)
  if e and e - pos < room then
    x.pos = e + 1
    return cut(b, pos, e), e - pos + 1
  end
  local parts, have = { b:sub(pos) }, #b - pos + 1
  while not e and have < room do
    local data, err = take(x, CHUNK, true)
    if not data then return nil, A.wire_of(x, err) end
    e = data:find("\n", 1, true)
    if e and have + e <= room then
      parts[#parts + 1] = data:sub(1, e)
      x.buf, x.pos = data, e + 1
      local l = table.concat(parts)
      return cut(l, 1, #l), have + e
    end
    parts[#parts + 1], have = data, have + #data
  end
  return nil, "garbled", "the answer's headers are too large"
end

-- Status and headers (lowercased), past any 1xx: status, headers, reusable | nil, wire, message.
function A.head(x)
  local room, h, minor, status = HEAD_MAX
  repeat
    local l, used, msg = line(x, room)
    if not l then return nil, used, msg end
    if status then
      local k, v = l:match("^([^:%s]+)%s*:%s*(.-)%s*$")
      k = k and k:lower()
      if k == "content-length" and h[k] and h[k] ~= v then return nil, "garbled", "conflicting Content-Length" end
      if k then h[k] = (h[k] and k ~= "content-length") and h[k] .. ", " .. v or v end
      if l == "" and status < 200 then status = nil end -- a 1xx: the answer follows
    else
      minor, status = l:match("^HTTP/1%.([01]) (%d%d%d)")
      if not status then return nil, "garbled", "not an HTTP answer" end
      h, status, l = {}, tonumber(status), nil
    end
    room = room - used
  until l == "" and status
  return status, h, minor == "1" and not (h.connection or ""):lower():find("close", 1, true)
end

-- Where the answer's bytes go: to the exchange's unit (nginx/body.lua), those of a 200 to a ranged exchange from
-- x.from > 0 before it dropped.
local function sink(x, data)
  if x.spent then return nil, "broken", "the exchange was cancelled" end
  local n = math.min(x.skip, #data)
  if n > 0 then x.skip, data = x.skip - n, data:sub(n + 1) end
  return x.unit.write(x, data)
end

-- n bytes of body, or (n nil) all until the server closes.
local function fixed(x, n)
  while not n or n > 0 do
    local data, err = take(x, math.min(n or CHUNK, CHUNK))
    if not data and not n and err == "closed" then return true end
    if not data then
      local wire, msg = A.wire_of(x, err)
      return nil, wire, err == "closed" and string.format("the answer ended %.0f bytes short", n) or msg
    end
    n = n and n - #data
    local ok, wire, msg = sink(x, data)
    if not ok then return nil, wire, msg end
  end
  return true
end

-- The body as its headers frame it: true | nil, wire, message.
function A.body(x, h)
  if x.status == 204 or x.status == 304 or x.r.method == "HEAD" then return true end
  if not (h["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local cl = h["content-length"]
    if cl and not cl:find("^%d+$") then return nil, "garbled", "a bad Content-Length" end
    x.to_close = not cl
    return fixed(x, tonumber(cl))
  end
  while true do
    local ok, wire, msg = x.unit.chunks(x) -- (those it takes whole; the rest read below)
    if not ok then return nil, wire, msg end
    local l
    l, wire, msg = line(x, 1024)
    if not l then return nil, wire, msg end
    local hex, rest = l:match("^(%x+)(.*)$")
    if not hex or #hex > 12 or not (rest:find("^[ \t]*$") or rest:find("^[ \t]*;")) then
      return nil, "garbled", "bad chunked encoding"
    end
    if hex:find("^0+$") then break end
    ok, wire, msg = fixed(x, tonumber(hex, 16))
    if ok then l, wire, msg = line(x, 1024) end
    if not (ok and l) then return nil, wire, msg end
    if l ~= "" then return nil, "garbled", "bad chunked encoding" end
  end
  repeat -- the trailer
    local l, wire, msg = line(x, HEAD_MAX)
    if not l then return nil, wire, msg end
  until l == ""
  return true
end

-- Where the answer's bytes start in the file, and the file's size: a 206's Content-Range (nil when it is
-- not a whole one: core.content_range), else 0 and the Content-Length (nil: chunked, not a number).
function A.span(status, h)
  if status ~= 206 then
    local cl = not h["transfer-encoding"] and h["content-length"]
    return 0, cl and cl:find("^%d+$") and tonumber(cl) or nil
  end
  return core.content_range(h["content-range"]) -- (the reading of both transports)
end

-- The answer's header lines, "name: value\n" each, as libcurl keeps them (the core reads the rate limits of them).
function A.lines(h)
  local lines = {}
  for k, v in pairs(h) do lines[#lines + 1] = k .. ": " .. v .. "\n" end
  return table.concat(lines)
end

return A
