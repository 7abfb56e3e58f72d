-- One HTTP/1.1 exchange on nginx's own socket, in a light thread of nginx/transport.lua:
-- W.exchange(c, x, key) -> nil on a whole answer, else wire, message; it fills x (status,
-- retry_after, parts, have, total).  Linear in the answer's bytes: what was read ahead is
-- one string and a position in it (x.buf, x.pos), never copied to drop what was used.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local ngx = rawget(_G, "ngx")
local now = core.now

local HEAD_MAX = 64 * 1024 -- an answer's status line and headers, together
local CHUNK = 64 * 1024    -- the most asked of a socket at once
local IDLE_MS = 60 * 1000  -- how long a kept-alive connection waits for its next use
local BREATHE = 0.005      -- the most a light thread works before other work of the worker runs
local BREATHE_PART = 0.002 -- the same for a bucket's part read or put (storage/object.lua: two at once, each long)
local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }
local serial = 0           -- names the pools of connections never to be shared

local W = {}

-- The socket's timeout for its next step: the time left, at most `cap` s; false when up.
local function arm(x, cap)
  local left = math.min(x.deadline and x.deadline - now() or 86400, cap or math.huge)
  if left <= 0 then return false end
  x.sock:settimeout(math.max(1, math.floor(left * 1000)))
  return true
end

-- How the wire ended, from a socket's error, once the request is out.
local function wire_of(x, err)
  if err ~= "timeout" then return "broken", err == "closed" and "the server closed the connection" or tostring(err) end
  if x.deadline and now() >= x.deadline - 0.005 then
    return "timeout", string.format("no whole answer within %g s", x.r.timeout)
  end
  return "timeout", string.format("no data for %g s", x.stall or 0)
end

-- Past x.breath s of work, the worker's other work let run (1 ms: nginx without OpenResty's patch warns at each
-- ngx.sleep(0)).
local function breathe(x)
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
  if not arm(x, x.stall) then return nil, "timeout" end
  breathe(x)
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
    if not data then return nil, wire_of(x, err) end
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
local function head(x)
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

-- A download's body past x.most: garbled, named by its URL's path (as libcurl's transport says it, fetch.c).
local function too_long(x)
  return nil, "garbled", string.format("the body is longer than the video can be: past %.0f bytes (%s) at %s",
    x.most, x.total and "its length" or "max_video_bytes", x.at)
end

-- Where the answer's bytes go: the file, else memory up to x.cap (past it: garbled, or an error page cut,
-- or a media request's read ended there: "capped").
local function sink(x, data)
  if x.spent then return nil, "broken", "the exchange was cancelled" end
  local n = math.min(x.skip, #data) -- (a 200 to a media Range from x.from > 0: the bytes before it dropped)
  if n > 0 then x.skip, data = x.skip - n, data:sub(n + 1) end
  if x.to_file and x.have + #data > x.most then return too_long(x) end
  if x.to_file then
    local ok, err = x.fh:write(data)
    x.have = x.have + (ok and #data or 0)
    return ok, "io", err
  end
  local over = #data > x.cap - x.kept
  if over then data = data:sub(1, x.cap - x.kept) end
  x.parts[#x.parts + 1], x.kept = data, x.kept + #data
  if not over or x.op == "download" then return true end
  if x.op == "media" then return nil, "capped" end
  return nil, "garbled", string.format("the answer is larger than %.0f bytes", x.cap)
end

-- n bytes of body, or (n nil) all until the server closes.
local function fixed(x, n)
  while not n or n > 0 do
    local data, err = take(x, math.min(n or CHUNK, CHUNK))
    if not data and not n and err == "closed" then return true end
    if not data then
      local wire, msg = wire_of(x, err)
      return nil, wire, err == "closed" and string.format("the answer ended %.0f bytes short", n) or msg
    end
    n = n and n - #data
    local ok, wire, msg = sink(x, data)
    if not ok then return nil, wire, msg end
  end
  return true
end

-- The body as its headers frame it: true | nil, wire, message.
local function body(x, h)
  if x.status == 204 or x.status == 304 or x.r.head or x.r.method == "HEAD" then return true end
  if not (h["transfer-encoding"] or ""):lower():find("chunked", 1, true) then
    local cl = h["content-length"]
    if cl and not cl:find("^%d+$") then return nil, "garbled", "a bad Content-Length" end
    x.to_close = not cl
    return fixed(x, tonumber(cl))
  end
  while true do
    if x.to_file and not x.spent then
      -- chunks wholly read go to the file in C, up to one not plain or whole: read below
      local pos, n = x.fh:chunks(x.buf, x.pos)
      if pos then x.pos, x.have = pos, x.have + n end
      if x.have > x.most then return too_long(x) end
    end
    local l, wire, msg = line(x, 1024)
    if not l then return nil, wire, msg end
    local hex, rest = l:match("^(%x+)(.*)$")
    if not hex or #hex > 12 or not (rest:find("^[ \t]*$") or rest:find("^[ \t]*;")) then
      return nil, "garbled", "bad chunked encoding"
    end
    if hex:find("^0+$") then break end
    local ok
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
-- not a whole one, as libcurl's transport reads it), else 0 and the Content-Length (nil: chunked, not a number).
local function span(status, h)
  if status ~= 206 then
    local cl = not h["transfer-encoding"] and h["content-length"]
    return 0, cl and cl:find("^%d+$") and tonumber(cl) or nil
  end
  local a, b, t = (h["content-range"] or ""):match("^bytes%s+(%d+)%-(%d+)/(%d+)")
  a, b, t = tonumber(a), tonumber(b), tonumber(t)
  if a and b >= a and t > b then return a, t end
end

-- A download's 200 is written from byte 0 (never appended), a 206 from its Content-Range's: the one asked.
local function start_file(x, h)
  local a, t = span(x.status, h)
  if x.status == 206 and a ~= x.offset then
    return nil, "broken", string.format(
      "the server's 206 does not start at byte %.0f, where the download asked to go on", x.offset)
  end
  if x.spent then return nil, "broken", "the exchange was cancelled" end
  x.have, x.total, x.to_file, x.most = a, t, true, t or x.r.max_body
  local ok, err = true, nil
  if a > 0 then -- what lies past a in the .part is not this answer's
    ok, err = x.fh:truncate(a)
  elseif x.fh:at() > 0 then -- from byte 0 after all: a new file, as any download from 0
    x.fh:close()
    ok, err = core.part_open(x.r.file, 0)
    x.fh = ok
  end
  return ok, "io", err
end

-- The proxy of an exchange (nil: none): false, or core.check_url's parts with `auth`
-- (a Basic Proxy-Authorization line) and `pool`, what tells its connections apart | nil, err.
function W.proxy(url)
  if not url then return false end
  local cred, err = core.check_proxy(url)
  if not cred then return nil, err end
  local p = core.check_url(cred.url, "proxy", true)
  p.pool = p.host .. ":" .. p.port
  if cred.user then
    p.auth = "Proxy-Authorization: Basic " .. ngx.encode_base64(cred.user .. ":" .. cred.password) .. "\r\n"
    p.pool = p.pool .. " as " .. ngx.md5(p.auth) -- a tunnel made with other credentials is never reused
  end
  return p
end

-- Through the proxy p, a tunnel to u: true | nil, wire, message.  Nothing of the request
-- is sent before it is up, and then only TLS: the proxy never sees the key.
local function tunnel(c, x, u, p)
  if not arm(x, c.connect_timeout) then return nil, "not_sent", "timed out before the CONNECT" end
  local target = u.host .. ":" .. u.port
  local sent, err = x.sock:send("CONNECT " .. target .. " HTTP/1.1\r\nHost: " .. target .. "\r\nUser-Agent: " .. c.ua
    .. "\r\n" .. (p.auth or "") .. "\r\n")
  local status, h, msg = nil, err, nil
  if sent then status, h, msg = head(x) end
  x.buf, x.pos = "", 1
  if status == 200 then return true end
  local why = status and "answered " .. status .. ((status == 401 or status == 407) and ": " .. core.PROXY_AUTH or "")
    or msg or tostring(h)
  -- a proxy that refuses the target (403, 407) says so again: not worth retrying
  return nil, status and status < 500 and "fatal" or "not_sent",
    string.format("the proxy %s did not open a tunnel to %s: %s", p.authority, target, why)
end

-- A connection to u (through x.proxy if any): a kept one unless `fresh`.  TLS is
-- always verified, with the target's name, also through a proxy's tunnel.
local function connect(c, x, u, fresh)
  local sock, p = ngx.socket.tcp(), x.proxy
  x.sock, x.unpooled = sock, fresh
  local pool = u.scheme .. "://" .. u.host .. ":" .. u.port
  if p then pool = pool .. " via " .. p.pool end -- never shared with direct ones
  if fresh then serial = serial + 1; pool = pool .. "#" .. serial end
  if not arm(x, c.connect_timeout) then return nil, "not_sent", "timed out before connecting" end
  local to = p or u
  local ok, err = sock:connect(to.host, to.port, { pool = pool })
  if not ok then
    return nil, "not_sent", string.format("%s %s%s", err == "timeout" and "timed out connecting to" or
      "cannot connect to", p and "the proxy " or "", to.authority) .. (err == "timeout" and "" or ": " .. tostring(err))
  end
  if u.scheme ~= "https" or sock:getreusedtimes() > 0 then return true end
  if p then
    local tunneled, wire, msg = tunnel(c, x, u, p)
    if not tunneled then return nil, wire, msg end
  end
  if not arm(x, c.connect_timeout) then return nil, "not_sent", "timed out before the TLS handshake" end
  ok, err = sock:sslhandshake(nil, (u.host:gsub("^%[(.*)%]$", "%1")), true)
  if ok then return true end
  err = tostring(err)
  if err == "timeout" then return nil, "not_sent", "timed out in the TLS handshake with " .. u.authority end
  -- a certificate refused is not worth retrying
  return nil, (err:find("^%d+:") or err:find("mismatch", 1, true)) and "fatal" or "not_sent", "TLS: " .. err
end

local function request(c, x, u, key)
  local r = x.r
  -- to a proxy, an http URL whole (absolute form); https goes through a tunnel
  local target = x.proxy and u.scheme == "http" and "http://" .. u.authority .. u.target or u.target
  local method = r.method or (r.head and "HEAD" or r.body and "POST" or "GET")
  local t = { method, " ", target, " HTTP/1.1\r\nHost: ", u.authority, "\r\nUser-Agent: ", c.ua, "\r\n" }
  if target ~= u.target and x.proxy.auth then t[#t + 1] = x.proxy.auth end -- an http URL through a proxy
  if x.op == "download" then -- never the key: the video lives on another host
    t[#t + 1] = "Accept: video/mp4, */*\r\n"
    if x.offset > 0 then t[#t + 1] = string.format("Range: bytes=%.0f-\r\n", x.offset) end
  elseif x.op == "media" then -- never the key: the media lives on another host
    t[#t + 1] = "Accept: */*\r\n"
    if not r.head then t[#t + 1] = string.format("Range: bytes=%.0f-%.0f\r\n", x.from, x.from + x.cap - 1) end
  elseif x.op == "storage" then -- the user's store: its signed lines, never the key
    t[#t + 1] = (r.headers or ""):gsub("\n", "\r\n")
    local n = 0 -- (a body: a string, or a list of strings, a part's pieces)
    for _, s in ipairs(type(r.body) == "table" and r.body or { r.body }) do n = n + #s end
    if r.body or method == "PUT" or method == "POST" then t[#t + 1] = "Content-Length: " .. n .. "\r\n" end
  else -- a notify goes to the user's own host: never the key, and the event's webhook-* lines
    if x.auth and x.op ~= "notify" then t[#t + 1] = "Authorization: Bearer " .. key .. "\r\n" end
    t[#t + 1] = "Accept: application/json\r\n"
    if r.headers then t[#t + 1] = r.headers:gsub("\n", "\r\n") end
    if r.body then t[#t + 1] = "Content-Type: application/json\r\nContent-Length: " .. #r.body .. "\r\n" end
  end
  t[#t + 1] = "\r\n"
  t[#t + 1] = r.body or "" -- (a part's megabytes: not copied into another string)
  return t
end

-- The request sent (t: request's, its body last: a string, or a list of strings, a part's as a media request read
-- it): a body over CHUNK a piece at a time, the worker's other work let run between (a part's megabytes in one send
-- held it while the kernel took them) | nil, socket error.
local function send(x, t)
  local b = t[#t]
  if type(b) == "string" and #b <= CHUNK then return x.sock:send(t) end
  t[#t] = nil
  local ok, err = x.sock:send(t)
  local list = type(b) == "table" and b
  for i = 1, list and #list or math.ceil(#b / CHUNK) do
    if not ok then break end
    breathe(x)
    ok, err = x.sock:send(list and list[i] or b:sub((i - 1) * CHUNK + 1, i * CHUNK))
  end
  return ok, err
end

-- Send the request, read the answer's head: status, headers, reusable | nil, wire, message.
-- A kept connection the server closed meanwhile gets the request once more, on a new one.
local function ask(c, x, u, key)
  local fresh = x.r.fresh
  while true do
    x.buf, x.pos = "", 1 -- what this connection reads (a tunnel's answer read, it starts again)
    local ok, wire, msg = connect(c, x, u, fresh)
    if not ok then return nil, wire, msg end
    local reused = x.sock:getreusedtimes() > 0
    if not arm(x) then return nil, "not_sent", "timed out before the request was sent" end
    local sent, err = send(x, request(c, x, u, key))
    local status, h, keep
    if sent then status, h, keep = head(x) else h, keep = wire_of(x, err) end
    if status then return status, h, keep end
    if not (reused and x.buf == "" and h == "broken") then return nil, h, keep end -- (nothing was read)
    x.sock:close()
    fresh = true
  end
end

function W.exchange(c, x, key)
  local url, u = x.r.url, x.u -- checked by transport.lua's send
  if not c.slots:wait(math.max(0.001, x.deadline and x.deadline - now() or 86400)) then
    return "not_sent", "timed out waiting for a free connection (max_connections)"
  end
  x.slot, x.since = true, now()
  x.breath = (x.op == "media" or x.op == "storage") and x.stall and BREATHE_PART or BREATHE
  for hops = 0, 5 do
    local status, h, reusable = ask(c, x, u, key)
    if not status then return h, reusable end
    x.status, x.retry_after, x.date = status, h["retry-after"], (x.op == "query" or x.op == "create") and h.date or nil
    if x.op == "storage" then -- the answer's header lines, as libcurl's transport gives them
      local lines = {}
      for k, v in pairs(h) do lines[#lines + 1] = k .. ": " .. v .. "\n" end
      x.heads = table.concat(lines)
    end
    local follow, ok, wire, msg = x.r.follow and REDIRECT[status] and h.location
    x.at, x.skip = u.path, x.op == "media" and status == 200 and x.from or 0 -- (a host that ignores Range)
    if x.op == "download" and (status == 200 or status == 206) and not follow then
      ok, wire, msg = start_file(x, h)
      if not ok then return wire, msg end
    end
    ok, wire, msg = body(x, h)
    if wire == "capped" then ok, x.to_close = true, true end -- the rest of the file is not read
    if not ok then return wire, msg end
    local sock = x.sock
    x.sock = nil
    if reusable and not (x.to_close or x.unpooled) then sock:setkeepalive(IDLE_MS, c.pool_size) else sock:close() end
    if not follow then
      if x.to_file and not x.total then x.total = x.have end
      if x.op == "media" then
        local from, total = span(status, h)
        x.have, x.total = x.kept, total
        if x.from > 0 and (status == 200 and x.skip > 0 or status == 206 and from ~= x.from) then -- not those asked
          return "garbled", string.format("the server did not send the bytes from %.0f that were asked for", x.from)
        end
      end
      return nil
    end
    if hops == 5 then return "fatal", "more than 5 redirects" end
    local bad -- the target read as libcurl's transport reads it, and checked as any URL
    url = core.resolve_url(url, follow)
    u, bad = core.check_url(url, "redirect")
    if not u then return "fatal", bad.message end
    bad = x.r.public and core.private_host(u.host) -- a media request's hop (names: nginx's resolver, unchecked)
    if bad then return "fatal", bad end
    x.auth, x.parts, x.kept, x.status, x.retry_after, x.to_close = false, {}, 0, nil, nil, nil -- no key elsewhere
  end
end

return W
