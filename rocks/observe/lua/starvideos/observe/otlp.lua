-- OpenTelemetry's OTLP/HTTP JSON of the spans observe/trace.lua exports (docs/observability.md): a task span, and
-- the CLIENT span of an HTTP exchange with the stable HTTP client conventions (http.request.method,
-- server.address, server.port, url.full without credentials nor query values, http.response.status_code,
-- http.request.resend_count, error.type).  Plain Lua with cjson's strings: an export is a few spans a second.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local cjson = require("cjson.safe").new()

local format, floor, concat = string.format, math.floor, table.concat
local encode = cjson.encode

local O = {}

-- Ids: 32-bit words of a linear congruential generator (exact in doubles on every VM) seeded once from the
-- system's randomness, without a system call per span; a trace id opens with 64 random bits of the process's,
-- so that two processes' traces never meet.
local word, PROCESS = tonumber(core.random_id():sub(1, 8), 16), core.random_id()

local function words()
  local a = (1664525 * word + 1013904223) % 4294967296
  word = (1664525 * a + 1013904223) % 4294967296
  return a, word
end

-- A new span id (16 hex digits, never all zeros: an invalid id).
function O.id()
  local a, b = words()
  if a == 0 and b == 0 then return O.id() end
  return format("%08x%08x", a, b)
end

-- A new trace id (32 hex digits).
function O.trace_id() return PROCESS .. O.id() end

-- v as a JSON string, quotes included.
function O.string(v) return encode(tostring(v)) end

-- An attribute as OTLP/HTTP JSON writes it: a string's, or a whole number's (a 64-bit integer: a decimal string).
function O.attr(key, v)
  if type(v) == "number" then return format('{"key":"%s","value":{"intValue":"%d"}}', key, v) end
  return '{"key":"' .. key .. '","value":{"stringValue":' .. O.string(v) .. "}}"
end

local TIMES = ',"startTimeUnixNano":"%d000","endTimeUnixNano":"%d000","attributes":['

-- A span's JSON: its trace and span ids, its parent's id (nil: a root), name, kind (1 internal, 3 client), start
-- and end (monotonic times plus offset, the wall clock's minus the monotonic one: Unix nanoseconds to the
-- microsecond), its attributes (O.attr's, joined by commas) and an error's message (nil: none).
function O.span(trace, id, parent, name, kind, t0, t1, offset, attrs, err)
  return '{"traceId":"' .. trace .. '","spanId":"' .. id .. (parent and '","parentSpanId":"' .. parent or "")
    .. '","kind":' .. kind .. ',"name":' .. encode(name) .. format(TIMES, floor((t0 + offset) * 1e6),
    floor((t1 + offset) * 1e6)) .. attrs .. "]" .. (err and ',"status":{"code":2,"message":' .. encode(err) .. "}"
    or "") .. "}"
end

-- The URL as url.full carries it: no fragment, credentials REDACTED:REDACTED, each query value REDACTED (a video
-- URL's query signs it).
function O.redacted(url)
  url = url:gsub("#.*$", "")
  local q = url:find("?", 1, true)
  local head, query = url, ""
  if q then head, query = url:sub(1, q - 1), url:sub(q):gsub("=[^&]*", "=REDACTED") end
  return (head:gsub("^(%a[%w+.-]*://)[^/]*@", "%1REDACTED:REDACTED@")) .. query
end

local PORTS = { http = 80, https = 443 }

-- server.address and server.port of an http(s) URL's origin (its credentials left out), or nil.
function O.server(url)
  local scheme, auth = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  local default = scheme and PORTS[scheme:lower()]
  if not default then return nil end
  auth = auth:gsub("^.*@", "")
  local host, port = auth:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = auth:match("^([^:%[%]]+):?(%d*)$") end
  port = port == "" and default or tonumber(port)
  if not host or port > 65535 then return nil end
  return host, port
end

-- The CLIENT span of an exchange, s (observe/trace.lua's T:client): url, method, op (starvideos.operation), t0,
-- t1, status (an answer's, nil: none), resend (the attempts before), etype (error.type, nil: it did not fail),
-- emsg (the error's message), parent ({trace =, id =}, nil: a root), rid and sid (an API exchange's X-Request-Id
-- and the server's own id, nil: none).
function O.client(s, offset)
  local a = { O.attr("http.request.method", s.method) }
  local host, port = O.server(s.url)
  if host then a[2], a[3] = O.attr("server.address", host), O.attr("server.port", port) end
  a[#a + 1] = O.attr("url.full", O.redacted(s.url))
  if s.status then a[#a + 1] = O.attr("http.response.status_code", s.status) end
  if s.resend > 0 then a[#a + 1] = O.attr("http.request.resend_count", s.resend) end
  if s.etype then a[#a + 1] = O.attr("error.type", s.etype) end
  a[#a + 1] = O.attr("starvideos.operation", s.op)
  if s.rid then a[#a + 1] = O.attr("starvideos.request_id", s.rid) end -- (an API exchange's ids)
  if s.sid then a[#a + 1] = O.attr("starvideos.server_request_id", s.sid) end
  local parent = s.parent
  return O.span(parent and parent.trace or O.trace_id(), O.id(), parent and parent.id, s.method, 3, s.t0, s.t1,
    offset, concat(a, ","), s.emsg)
end

return O
