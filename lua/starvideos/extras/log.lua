-- The debug log (docs/logs-and-proxies.md): a listener of the client's own events (Log.chain).
-- Every line goes through Log.redact, the one redaction.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local Log = {}

local MARK = "[redacted]"

local DEBUG_ONLY = { request = true, response = true, created = true, saved = true }
Log.DEBUG_ONLY = DEBUG_ONLY -- (the command line's log: cli/client.lua)
local PLAIN = { string = true, number = true, boolean = true } -- the types of the fields an unknown event shows

-- A secret this long or longer is hidden wherever it is; a shorter one only where it stands whole (docs/logs-and-
-- proxies.md): a key "k" found in free text would take every k of "key".
Log.WHOLE = 8

-- Every occurrence of the plain text lit (not empty) in s as MARK (a pattern: "\0" as %z for 5.1); lit shorter
-- than Log.WHOLE bytes only where it stands whole: neither byte beside it a letter, a digit or "_".
function Log.hide(s, lit)
  if lit == "" then return s end
  local pattern = lit:gsub("%W", function(c) return c == "\0" and "%z" or "%" .. c end)
  if #lit >= Log.WHOLE then return (s:gsub(pattern, MARK)) end
  return (s:gsub("()" .. pattern .. "()", function(at, after)
    if (at > 1 and s:find("^[%w_]", at - 1)) or s:find("^[%w_]", after) then return nil end
    return MARK
  end))
end

-- "bearer" -> "[Bb][Ee]..."
local function anycase(word)
  return (word:gsub("%a", function(c) return "[" .. c:upper() .. c:lower() .. "]" end))
end

-- A word (no spaces) with its query string redacted: from the first "?" that follows a "/" or
-- is followed by a "=" (a URL, a path, "name?token=...").
local function query(word)
  local q, slash = word:find("?", 1, true), word:find("/", 1, true)
  if q and not word:find("=", q, true) then q = slash and word:find("?", slash + 1, true) end
  return q and word:sub(1, q) .. MARK or word
end

local AUTH = anycase("authorization") .. "[\"']?%s*[:=]%s*[\"']?"
local BEARER = anycase("bearer") .. "%s+"
local APIKEY = anycase("api") .. "[_-]?" .. anycase("key") .. "[\"']?%s*[:=]%s*[\"']?"

--- text with every secret of it redacted; secrets: plain values to hide.
function Log.redact(text, secrets)
  local s = tostring(text)
  for _, v in pairs(secrets or {}) do -- (a list with holes too: a client without a key)
    if type(v) == "string" and v ~= "" then
      s = Log.hide(s, v)
      local p = v:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end) -- in a URL
      if p ~= v then s = Log.hide(s, p) end
    end
  end
  -- user:pass@ of a URL (up to the last @ before the path: a raw @ in a password too)
  s = s:gsub("(%a[%w+.-]*://)([^/%s]*)@", function(scheme) return scheme .. MARK .. "@" end)
  s = s:gsub("%S*%?%S*", query)
  s = s:gsub("(" .. AUTH .. ")[^,;\"'%c]*", "%1" .. MARK)
  s = s:gsub("(" .. BEARER .. ")[^%s,;\"']+", "%1" .. MARK)
  s = s:gsub("(" .. APIKEY .. ")[^%s,;&\"']+", "%1" .. MARK)
  s = s:gsub("whsec_[%w+/=_%-\\]*", "whsec_" .. MARK)
  -- control characters as \ddd, so that a line stays one line
  s = s:gsub("[%c\127]", function(c) return string.format("\\%03d", string.byte(c)) end)
  local max = require("starvideos.config").DEFAULTS.log_line -- (config at use: the CLI's parsing runs without the core)
  if #s > max then s = s:sub(1, max - 3) .. "..." end
  return s
end

-- A template's {field}s as the event's through tostring, its {field:%.2f}s as numbers in that format.
local function fill(template, ev)
  return (template:gsub("{([%w_]+):?([^}]*)}", function(k, fmt)
    if fmt == "" then return tostring(ev[k]) end
    return string.format(fmt, tonumber(ev[k]) or 0)
  end))
end

-- An API request's ids (docs/reference.md "Request ids"), as a line's end: "" when it has none.
local function ids(ev)
  if not ev.request_id then return "" end
  return fill(" (request id {request_id}", ev) .. (ev.server_request_id and fill(", server id {server_request_id}", ev)
    or "") .. ")"
end

local FORMAT = {
  request = function(ev) return fill("request #{request} {method} {path} attempt {attempt}", ev) .. ids(ev) end,
  response = function(ev)
    return fill("response #{request} {method} {path} {status} attempt {attempt} ", ev)
      .. string.format("%.0f ms", (tonumber(ev.elapsed) or 0) * 1000) .. ids(ev)
  end,
  retry = function(ev)
    return fill("retry #{request} {method} {path} attempt {attempt} status {status} in {delay:%.2f} s: {reason}", ev)
      .. ids(ev)
  end,
  status = function(ev)
    return fill("status {id} {status}", ev) .. (ev.index and fill(" (index {index})", ev) or "")
  end,
  failed = function(ev) -- a job's end in error (job.lua): why, where failure.lua knows it; one with no task (refused
    -- before its create, or its answer lost) by its error's kind
    local head = ev.id and fill("failed {id}: ", ev)
      or "failed (no task id): " .. (type(ev.error) == "table" and ev.error.kind and fill("{kind}: ", ev.error) or "")
    return head .. (ev.reason and fill("{reason}", ev) .. (ev.input and fill(" ({input})", ev)
      or "") .. ": " or "") .. fill("{message}", ev)
  end,
  warning = "warning: {message}",
  -- a job's create answered, its video saved (job.lua; debug only: at info the status lines say as much)
  created = "created {id} {status}",
  saved = "saved {id} at {path}",
  store_reset = "error: {message}", -- (fleet/ledger.lua)
  journal_error = "error: journal {path}: {message}",
  -- a task past the 99th percentile of its kind (job.lua)
  late = "late {id}: running {elapsed:%.0f} s, longer than 99% of its kind ({p99:%.0f} s)",
  -- a webhook's: where it went (notify.lua's url: scheme, host and path, no query), how it ended
  delivery = function(ev)
    return fill("delivery POST {url} {outcome}", ev) .. (ev.status and fill(" status {status}", ev) or "")
      .. fill(" task {id} webhook {webhook_id}", ev) .. (ev.reason and fill(": {reason}", ev) or "")
  end,
  -- a keeper holds a task this process had (video.lua): it saves the video, not this one
  taken = "taken {id} by keeper {by}: this process's lease lapsed; the keeper saves its video",
  claim = function(ev) -- keep took a task (extras/keep.lua)
    return fill("claim {id} from owner {from}, to be saved at {path} (", ev)
      .. (ev.saved_to == "out" and "the out recorded at its create" or "in dir") .. ")"
  end,
}

-- Any other event: its type, then its plain fields by name.
local function generic(ev)
  local names = {}
  for k, v in pairs(ev) do
    if k ~= "type" and type(k) == "string" and PLAIN[type(v)] then names[#names + 1] = k end
  end
  table.sort(names)
  local parts = { tostring(ev.type) }
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. tostring(ev[k]) end
  return table.concat(parts, " ")
end

--- The line of an event at a level, redacted; nil when that level does not write it.
function Log.line(ev, level, secrets)
  local kind = ev.type
  if kind == "progress" or (DEBUG_ONLY[kind] and level ~= "debug") then return nil end
  local f = FORMAT[kind] or generic
  return Log.redact("starvideos: " .. (type(f) == "string" and fill(f, ev) or f(ev)), secrets)
end

local function writer()
  local ngx = require("starvideos.config").nginx()
  if ngx then
    local LEVEL = { warning = ngx.WARN, taken = ngx.WARN, store_reset = ngx.ERR, journal_error = ngx.ERR }
    return function(line, kind) ngx.log(LEVEL[kind] or ngx.NOTICE, line) end
  end
  local wall = require("starvideos.core").wall -- (here: the command line's parsing loads this module, not the core)
  return function(line) io.stderr:write(Log.stamp(wall()) .. " " .. line .. "\n") end
end

--- t (s since the epoch) as a stderr line opens with: RFC 3339, UTC, in ms ("2026-11-24T10:03:07.123Z").
function Log.stamp(t)
  local s = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", math.floor((t - s) * 1000))
end

--- The listener writing the log.  log: a function(line) (at "debug"), "debug" or "info"; the secrets hidden.
function Log.logger(log, secrets)
  local level, write = "debug", log
  if type(log) ~= "function" then level, write = log, writer() end
  return function(ev)
    local line = Log.line(ev, level, secrets)
    if line then write(line, ev.type) end
  end
end

--- The on_event of a client: the logger first, then the user's (either may be nil).
function Log.chain(logger, on_event)
  if not (logger and on_event) then return logger or on_event end
  return function(ev)
    logger(ev)
    return on_event(ev)
  end
end

return Log
