-- The studio's safety rules, checked in the access phase of every request
-- (nginx.conf's access_by_lua_block) before any handler runs:
--   * only the Host it serves (127.0.0.1:PORT, localhost:PORT): a DNS rebinding page,
--     whose requests carry its own name, gets 421;
--   * a state-changing request (anything but GET and HEAD) needs the token of a page
--     this server made for the same browser (the X-Studio-Token header), and a
--     same-origin Origin when the browser sends one: 403 otherwise;
--   * each browser is a tenant, named by an HttpOnly cookie made here and signed with
--     the secret: a cookie whose signature is not the studio's names no tenant (the
--     browser is given a new one);
--   * a video is served only to the tenant of the card that holds it (cards.owner).
-- The secret that signs tokens and cookies and makes tenant ids and card keys is read
-- once, in the master (init_by_lua), from the studio's folder: never sent anywhere.
-- Every signature is an HMAC-SHA256 (the core's starvideos.sign), in hex.

local sv_sign = require "starvideos.sign"
local cards = require "studio.cards"

local ngx = rawget(_G, "ngx")
local str_byte, str_format, tbl_concat = string.byte, string.format, table.concat

local M = {}

local COOKIE = "studio_tenant"
local secret -- read by M.init
local counter = 0

local function hex(bin)
  local out = {}
  for i = 1, #bin do out[i] = str_format("%02x", str_byte(bin, i)) end
  return tbl_concat(out)
end

-- The secret's HMAC-SHA256 of text, for one use (kind: "token", "cookie", "fresh"): 64 hex digits.
local function sign(kind, text)
  return hex(ngx.decode_base64(sv_sign.sign(secret, "studio", kind, text):sub(4)))
end

-- Whether two strings are equal, compared whole, every byte, whatever differs first.
local function same(want, got)
  if type(got) ~= "string" then return false end
  local diff = #want == #got and 0 or 1
  for i = 1, #want do
    if str_byte(want, i) ~= str_byte(got, i) then diff = 1 end
  end
  return diff == 0
end

-- The secret from `path` (tools/studio.sh makes it); raises when it is missing or short.
function M.init(path)
  local f = assert(io.open(path, "rb"), "studio: no secret at " .. path .. " (tools/studio.sh makes it)")
  secret = f:read("*a"):gsub("%s+$", "")
  f:close()
  assert(#secret >= 32, "studio: the secret at " .. path .. " is too short")
  local ok, err = sv_sign.sign(secret, "studio", "check", "")
  assert(ok, "studio: the secret at " .. path .. " cannot sign: " .. tostring(err and err.message or err))
end

-- Something no one else can guess (hex): the secret's signature of this request's own values.
function M.fresh(what)
  counter = counter + 1
  return sign("fresh", tbl_concat({ what, ngx.now(), ngx.worker.pid(), counter, ngx.var.request_id }, "|"))
end

-- The tenant of this request's cookie (`<40 hex>.<its signature>`), or nil: an unsigned cookie, or one
-- signed with another secret, names none.
function M.tenant()
  local cookie = ngx.var["cookie_" .. COOKIE]
  local t, mac = (cookie or ""):match("^(%x+)%.(%x+)$")
  if t and #t == 40 and not t:find("[^0-9a-f]") and same(sign("cookie", t), mac) then return t end
  return nil
end

-- The tenant of this browser, made (and its signed cookie set) on its first page.
function M.tenant_or_new()
  local t = M.tenant()
  if t then return t end
  t = M.fresh("tenant"):sub(1, 40)
  ngx.header["Set-Cookie"] = COOKIE .. "=" .. t .. "." .. sign("cookie", t)
    .. "; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000"
  return t
end

-- A token for one page load of tenant t: a nonce and its signature with the tenant.
function M.token(t)
  local nonce = M.fresh("nonce"):sub(1, 20)
  return nonce .. "." .. sign("token", t .. "|" .. nonce)
end

local function token_ok(t, token)
  if not (t and type(token) == "string") then return false end
  local nonce, mac = token:match("^(%x+)%.(%x+)$")
  if not nonce then return false end
  return same(sign("token", t .. "|" .. nonce), mac)
end

local function refuse(status, message)
  ngx.status = status
  ngx.header.content_type = "application/json"
  ngx.say('{"error":"', message, '"}')
  return ngx.exit(status)
end

-- The hosts this server answers to, on the port it listens on.
local function host_ok(host)
  local port = ngx.var.server_port
  return host == "127.0.0.1:" .. port or host == "localhost:" .. port
end

-- The access phase of every location.
function M.access()
  if not host_ok(ngx.var.http_host) then
    return refuse(421, "this studio answers only to 127.0.0.1:" .. ngx.var.server_port)
  end
  local method = ngx.req.get_method()
  if method ~= "GET" and method ~= "HEAD" then
    local origin = ngx.var.http_origin
    if origin and not host_ok(origin:match("^http://(.+)$")) then
      return refuse(403, "a request from another origin")
    end
    if not token_ok(M.tenant(), ngx.var.http_x_studio_token) then
      return refuse(403, "no valid token: reload the page")
    end
  end
  local video = ngx.var.uri:match("^/videos/(.*)$")
  if video then
    local t = M.tenant()
    if not (t and cards.owner(video) == t) then return refuse(404, "no such video") end
  end
end

return M
