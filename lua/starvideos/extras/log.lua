--- The debug log: one line per event, redacted, written where the host wants it.
-- The log is a listener of the client's own events (`on_event`'s: request,
-- response, retry, status, warning, delivery), so the requests of a client
-- without `log` and without `on_event` build no event and pay nothing.  The client turns
-- the `log` option (or `$STARVIDEOS_LOG`) into `cfg.logger`, a function(event),
-- and `Log.chain` puts it before the user's `on_event`.
--
-- Levels: "info" writes status changes, retries, warnings, deliveries and any
-- other event type but these below; "debug" writes also every request and
-- response.  Download progress is never written (a line per tick).  A function
-- given as `log` receives every line of "debug".  Lines go to the function, else
-- inside nginx to ngx.log (NOTICE; a warning event at WARN), else to stderr.
--
-- Every line goes through Log.redact, the one redaction: the values given
-- (the API key, the webhook secret) and their percent-encoded forms, the value
-- after `Authorization:`, `Bearer` and `api_key=`, any `whsec_...` token, the
-- `user:pass@` of a URL, and the query string of every URL or path.
-- @module starvideos.extras.log

local type, pairs, ipairs, tostring, tonumber, next, table_sort, table_concat, string_format, string_byte, io_stderr =
  type, pairs, ipairs, tostring, tonumber, next, table.sort, table.concat, string.format, string.byte, io.stderr

local Log = {}

Log.MARK = "[redacted]"
local MARK = Log.MARK
Log.MAX_LINE = 2048 -- bytes of one line, after redaction (a server's long message is cut)

-- The event types only "debug" writes, and those never written.
local DEBUG_ONLY = { request = true, response = true }
local NEVER = { progress = true }

-- s with every occurrence of the plain text lit replaced by MARK.
function Log.hide(s, lit)
  if type(lit) ~= "string" or lit == "" then return s end
  local out, i, n = nil, 1, 0
  while true do
    local a, b = s:find(lit, i, true)
    if not a then break end
    out = out or {}
    out[n + 1], out[n + 2], n = s:sub(i, a - 1), MARK, n + 2
    i = b + 1
  end
  if not out then return s end
  out[n + 1] = s:sub(i)
  return table_concat(out)
end

local function percent(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string_format("%%%02X", string_byte(c)) end))
end

-- a Lua pattern matching word in any case ("bearer" -> "[Bb][Ee]...")
local function anycase(word)
  return (word:gsub("%a", function(c) return "[" .. c:upper() .. c:lower() .. "]" end))
end

-- A word (no spaces) with its query string redacted: from the first "?" that
-- follows a "/" or is followed by a "=" (a URL, a path, "name?token=...").
local function query(word)
  local q = 0
  while true do
    q = word:find("?", q + 1, true)
    if not q then return word end
    if word:find("/", 1, true) and word:find("/", 1, true) < q or word:find("=", q, true) then
      return word:sub(1, q) .. MARK
    end
  end
end

local AUTH = anycase("authorization") .. "[\"']?%s*[:=]%s*[\"']?"
local BEARER = anycase("bearer") .. "%s+"
local APIKEY = anycase("api") .. "[_-]?" .. anycase("key") .. "[\"']?%s*[:=]%s*[\"']?"

--- text with every secret of it redacted (see the module's header); secrets: a
-- list of plain values to hide wherever they appear (nil entries are skipped).
-- Control characters come out as `\ddd`, so a line stays one line.
-- @string text
-- @tparam[opt] table secrets
-- @treturn string
function Log.redact(text, secrets)
  local s = tostring(text)
  if secrets then
    for i = 1, #secrets do
      local v = secrets[i]
      if type(v) == "string" and v ~= "" then
        s = Log.hide(s, v)
        local p = percent(v)
        if p ~= v then s = Log.hide(s, p) end
      end
    end
  end
  -- user:pass@ of a URL (up to the last @ before the path: a raw @ in a password too)
  s = s:gsub("(%a[%w+.-]*://)([^/%s]*)@", function(scheme) return scheme .. MARK .. "@" end)
  -- the query string of a URL or a path: from "?" to the next space
  s = s:gsub("%S*%?%S*", query)
  -- credentials named as such, and webhook secrets
  s = s:gsub("(" .. AUTH .. ")[^,;\"'%c]*", "%1" .. MARK)
  s = s:gsub("(" .. BEARER .. ")[^%s,;\"']+", "%1" .. MARK)
  s = s:gsub("(" .. APIKEY .. ")[^%s,;&\"']+", "%1" .. MARK)
  s = s:gsub("whsec_[%w+/=_%-\\]*", "whsec_" .. MARK)
  s = s:gsub("[%c\127]", function(c) return string_format("\\%03d", string_byte(c)) end)
  if #s > Log.MAX_LINE then s = s:sub(1, Log.MAX_LINE - 3) .. "..." end
  return s
end

local function ms(seconds) return string_format("%.0f ms", (tonumber(seconds) or 0) * 1000) end

-- The line of each known event type (before redaction).
local FORMAT = {
  request = function(ev)
    return string_format("request #%s %s %s attempt %s", tostring(ev.request), tostring(ev.method),
      tostring(ev.path), tostring(ev.attempt))
  end,
  response = function(ev)
    return string_format("response #%s %s %s %s attempt %s %s", tostring(ev.request), tostring(ev.method),
      tostring(ev.path), tostring(ev.status), tostring(ev.attempt), ms(ev.elapsed))
  end,
  retry = function(ev)
    return string_format("retry #%s %s %s attempt %s status %s in %.2f s: %s", tostring(ev.request),
      tostring(ev.method), tostring(ev.path), tostring(ev.attempt), tostring(ev.status), tonumber(ev.delay) or 0,
      tostring(ev.reason))
  end,
  status = function(ev)
    return string_format("status %s %s%s", tostring(ev.id), tostring(ev.status),
      ev.index and " (index " .. tostring(ev.index) .. ")" or "")
  end,
  warning = function(ev) return "warning: " .. tostring(ev.message) end,
}

-- Any other event (a delivery, say): its type, then its fields with a number,
-- string or boolean value, by name.
local function generic(ev)
  local names = {}
  for k, v in pairs(ev) do
    local t = type(v)
    if k ~= "type" and type(k) == "string" and (t == "string" or t == "number" or t == "boolean") then
      names[#names + 1] = k
    end
  end
  table_sort(names)
  local parts = { tostring(ev.type) }
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. tostring(ev[k]) end
  return table_concat(parts, " ")
end

--- The line of an event at a level ("debug" or "info"), redacted, without a
-- newline; nil when that level does not write this event.
-- @tab ev an event (`on_event`'s table)
-- @string level
-- @tparam[opt] table secrets as for `redact`
function Log.line(ev, level, secrets)
  local kind = ev.type
  if NEVER[kind] or (DEBUG_ONLY[kind] and level ~= "debug") then return nil end
  local f = FORMAT[kind] or generic
  return Log.redact("starvideos: " .. f(ev), secrets)
end

-- Where lines go when no function was given: ngx.log inside nginx, else stderr.
local function writer()
  local ngx = require("starvideos.config").nginx()
  if ngx and type(ngx.log) == "function" then
    local log, NOTICE, WARN = ngx.log, ngx.NOTICE, ngx.WARN
    return function(line, kind) log(kind == "warning" and WARN or NOTICE, line) end
  end
  return function(line)
    io_stderr:write(line .. "\n")
  end
end

--- The listener that writes the log: function(event).  log: a function(line)
-- (every "debug" line), or "debug" / "info"; secrets: the plain values to hide
-- (the client's API key, its webhook secret).
function Log.logger(log, secrets)
  local level, write = "debug", log
  if type(log) ~= "function" then level, write = log, writer() end
  local hidden = {}
  for _, v in pairs(secrets or {}) do
    if type(v) == "string" and v ~= "" then hidden[#hidden + 1] = v end
  end
  if next(hidden) == nil then hidden = nil end
  return function(ev)
    local line = Log.line(ev, level, hidden)
    if line then write(line, ev.type) end
  end
end

--- The on_event of a client: the logger's line first, then the user's on_event
-- (either may be nil).
function Log.chain(logger, on_event)
  if not logger then return on_event end
  if not on_event then return logger end
  return function(ev)
    logger(ev)
    return on_event(ev)
  end
end

return Log
