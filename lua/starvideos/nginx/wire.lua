-- One HTTP/1.1 exchange on nginx's own socket, in a light thread of nginx/transport.lua:
-- W.exchange(c, x, key) -> nil on a whole answer, else wire, message; it fills x (status,
-- retry_after, parts, have, total).  Its connection and request here, its answer read by
-- nginx/answer.lua.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local A = require "starvideos.nginx.answer"

local ngx = rawget(_G, "ngx")
local now = core.now

local BREATHE = 0.005      -- the most a light thread works before other work of the worker runs
local BREATHE_PART = 0.002 -- the same for a bucket's part read or put (storage/object.lua: two at once, each long)
local serial = 0           -- names the pools of connections never to be shared

local W = {}
local arm, wire_of, breathe, head, body, span = A.arm, A.wire_of, A.breathe, A.head, A.body, A.span
local CHUNK = A.CHUNK -- the most sent at once

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
  if status then return nil, core.tunnel_refused(status, p.authority, target) end -- (the one rule of both transports)
  return nil, "not_sent", string.format("the proxy %s did not open a tunnel to %s: %s", p.authority, target,
    msg or tostring(h))
end

-- A connection to u (through x.proxy if any): a kept one unless `fresh`.  TLS is
-- always verified, with the target's name, also through a proxy's tunnel.  nginx sizes a
-- pool once, when it is made: its name holds the size (keepalive_pool), so a client's is its own.
local function connect(c, x, u, fresh)
  local sock, p = ngx.socket.tcp(), x.proxy
  x.sock, x.unpooled = sock, fresh
  local pool = u.scheme .. "://" .. u.host .. ":" .. u.port .. " keep " .. c.pool_size
  if p then pool = pool .. " via " .. p.pool end -- never shared with direct ones
  if fresh then serial = serial + 1; pool = pool .. "#" .. serial end
  if not arm(x, c.connect_timeout) then return nil, "not_sent", "timed out before connecting" end
  local to = p or u
  local ok, err = sock:connect(to.host, to.port, { pool = pool, pool_size = not fresh and c.pool_size or nil })
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
  local method = r.method or (r.body and "POST" or "GET")
  local t = { method, " ", target, " HTTP/1.1\r\nHost: ", u.authority, "\r\nUser-Agent: ", c.ua, "\r\n" }
  if target ~= u.target and x.proxy.auth then t[#t + 1] = x.proxy.auth end -- an http URL through a proxy
  -- its range (its unit's: a file's from the bytes it has), its request id, the key when asked (the service's
  -- only), its lines
  local range = x.unit.asks(x)
  if range then t[#t + 1] = "Range: bytes=" .. range .. "\r\n" end
  if r.request_id then t[#t + 1] = "X-Request-Id: " .. r.request_id .. "\r\n" end -- (transport.lua checked it)
  if x.auth then t[#t + 1] = "Authorization: Bearer " .. key .. "\r\n" end
  t[#t + 1] = (r.headers or ""):gsub("\n", "\r\n")
  local n = 0 -- (a body: a string, or a list of strings, a part's pieces)
  for _, s in ipairs(type(r.body) == "table" and r.body or { r.body }) do n = n + #s end
  if r.body or method == "PUT" or method == "POST" then t[#t + 1] = "Content-Length: " .. n .. "\r\n" end
  t[#t + 1] = "\r\n"
  t[#t + 1] = r.body or "" -- (a part's megabytes: not copied into another string)
  return t
end

-- The request sent (t: request's, its body last: a string, or a list of strings, a part's as an exchange read
-- it): a body over CHUNK a piece at a time, the worker's other work let run between (a part's megabytes in one send
-- held it while the kernel took them) | nil, socket error.
local function send(x, t)
  x.written = true -- (from here on its bytes may reach the server: transport.lua's written)
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
  x.breath = x.unit.in_memory and x.stall and BREATHE_PART or BREATHE
  for hops = 0, 5 do
    local status, h, reusable = ask(c, x, u, key)
    if not status then return h, reusable end
    x.head = h -- (the answer's headers: transport.lua's server_request_id)
    x.status, x.retry_after = status, h["retry-after"]
    -- (core.redirect: the one rule of both transports; public, each hop's host as written, names being nginx's
    -- resolver's, unchecked)
    local follow, why, ok, wire, msg
    if x.r.follow then follow, why = core.redirect(url, status, h.location, hops, x.r.public) end
    x.at, x.skip = url, status == 200 and x.from or 0 -- (a ranged one's: a host that ignores Range)
    if not follow then
      ok, wire, msg = x.unit.start(x, h)
      if not ok then return wire, msg end
    end
    ok, wire, msg = body(x, h)
    local from, total = span(status, h) -- (read once: where the answer's bytes start in the file, its size)
    if x.from then -- (the verdict's range rule; -1: a Content-Range not whole)
      if status == 206 then x.first = from or -1 else x.first = x.from - x.skip end
    end
    if wire == "capped" then ok, x.to_close = true, true end -- the rest of the file is not read
    if not ok then return wire, msg end
    local sock = x.sock
    x.sock = nil
    if reusable and not (x.to_close or x.unpooled) then sock:setkeepalive(c.idle_ms, c.pool_size) else sock:close() end
    if follow == nil then
      x.unit.ended(x, total)
      return nil
    end
    if not follow then return "fatal", why end
    url, u = follow, core.check_url(follow, "redirect")
    x.auth, x.parts, x.kept, x.status, x.retry_after, x.to_close = false, {}, 0, nil, nil, nil -- no key elsewhere
  end
end

return W
