-- OpenTelemetry's settings read in one place (docs/observability.md#traces): the trace option checked (config.lua
-- calls it), its endpoint, header lines and service name with OTEL_* where the option gives none.  Never a
-- header's value in a message: it may be a token.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local O = {}

-- $name, or nil when it is unset or empty.
local function env(name)
  local v = os.getenv(name)
  if v ~= "" then return v end
end

-- config.lua's checker of opts.traceparent: nil, or what was expected.  A string that is not a W3C traceparent is
-- taken and ignored (the task's span then starts a trace of its own), as the W3C rule and the nginx path
-- (a request's header) do: only another type than a string is a wrong argument.
function O.check_traceparent(v)
  if type(v) ~= "string" then return 'a W3C traceparent string ("00-<32 hex>-<16 hex>-01")' end
end

local TOKEN = "^[%w!#$%%&'*+.^_`|~-]+$" -- a header's name (RFC 9110's token)

-- The message of a bad field k = x of the trace option, or nil; url(x, field): config's check of a URL.
local function bad_field(k, x, url)
  if k == "endpoint" then return url(x, "trace.endpoint") end
  if k == "service_name" then return (type(x) ~= "string" or x == "") and "a non-empty string" or nil end
  if k ~= "headers" then return "unknown field (endpoint, headers, service_name)" end
  if type(x) ~= "table" then return "a table {name = value} expected" end
  for name, value in pairs(x) do
    if type(name) ~= "string" or not name:find(TOKEN) or type(value) ~= "string" or value:find("[%c\127]") then
      return "header " .. (type(name) == "string" and string.format("%q", name) or tostring(name))
        .. ": a name and a value without control characters expected"
    end
  end
end

-- config.lua's checker of the trace option: nil, or the whole message (and true).
function O.check(v, url)
  if v == false then return end
  if type(v) ~= "table" then return "trace: a table {endpoint =, headers =, service_name =} or false expected", true end
  for k, x in pairs(v) do
    local bad = bad_field(k, x, url)
    if bad then return "trace." .. tostring(k) .. ": " .. bad, true end
  end
end

-- OTEL_EXPORTER_OTLP_HEADERS (name=value,..., values %-escaped) as {name = value}; raises on a bad one, naming it.
local function env_headers()
  local headers = {}
  for name, value in (os.getenv("OTEL_EXPORTER_OTLP_HEADERS") or ""):gmatch("([^=,]+)=([^,]*)") do
    headers[name:match("^%s*(.-)%s*$")] = value:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  local bad = bad_field("headers", headers)
  if bad then error("bad OTEL_EXPORTER_OTLP_HEADERS (" .. bad .. ")", 5) end
  return headers
end

-- trace (the option, checked) and OTEL_* -> {endpoint, path, headers (their lines), service}, or nil: off.
function O.settings(trace)
  if trace == false then return nil end
  trace = trace or {}
  local endpoint = trace.endpoint or env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  local base = not endpoint and env("OTEL_EXPORTER_OTLP_ENDPOINT")
  if base then endpoint = base:gsub("/+$", "") .. "/v1/traces" end
  if not endpoint then return nil end
  local ok, err = core.check_url(endpoint, "trace.endpoint")
  if not ok then error("bad trace endpoint (" .. err.message .. ")", 4) end
  local lines = {}
  for name, value in pairs(trace.headers or env_headers()) do lines[#lines + 1] = name .. ": " .. value .. "\n" end
  table.sort(lines)
  return { endpoint = endpoint, path = ok.path, headers = table.concat(lines),
    service = trace.service_name or env("OTEL_SERVICE_NAME") or "unknown_service:starvideos" }
end

return O
