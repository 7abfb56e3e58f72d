-- Options: one table of defaults, the checks every public call shares, and the
-- one helper for "bad argument #n to 'f'" errors.  Wrong types and values out of
-- range raise (they are the caller's bugs); they never reach the network.

local core = require "starvideos.core"
local cjson = require("cjson.safe").new()

local type, pairs, tostring, error, setmetatable, floor, string_format, os_getenv, pcall, require =
  type, pairs, tostring, error, setmetatable, math.floor, string.format, os.getenv, pcall, require

local O = {}

-- lazy(name[, need]) -> a stand-in for the module `name`, required at the first
-- read or write of one of its fields, which then go to the module itself: the one
-- way a file names, at its top, a module that `require "starvideos"` need not load
-- (the log, the store, keep, notify, the signatures' C module).  A module that
-- fails to load raises there, at the line of that first use, with require's
-- message whole (after `need`, what it is needed for, when given); the next use
-- tries again (and says the same: the mark that 5.1's and LuaJIT's require
-- leave in package.loaded after a failed load is taken away, as 5.2+ leave none).
function O.lazy(name, need)
  local proxy, mt = {}, {}
  local function load()
    local ok, m = pcall(require, name)
    if not ok then
      local loaded = type(package) == "table" and package.loaded
      if loaded then loaded[name] = nil end
      if need and type(m) == "string" then m = need .. ": " .. m end
      error(m, 3)
    end
    mt.__index, mt.__newindex = m, m
    return m
  end
  mt.__index = function(_, k) return load()[k] end
  mt.__newindex = function(_, k, v) load()[k] = v end
  return setmetatable(proxy, mt)
end

-- The log (log.lua): loaded when a client has a `log` (or $STARVIDEOS_LOG).
local Log = O.lazy "starvideos.log"
-- The webhook signatures (csrc/lsv_sign.c, sign.so: the one module on libcrypto),
-- loaded by the first signature made (notify) or checked (verify_webhook).
O.sign = O.lazy("starvideos.sign", "webhook signatures (notify, verify_webhook) need the C module "
  .. "starvideos.sign (sign.so, built by make beside core.so, linked with libcrypto)")

-- new_error(kind, message, fields) -> an error object like the core's: a table
-- with kind and message whose tostring is one readable line.
function O.new_error(kind, message, fields)
  local e = fields or {}
  e.kind, e.message = kind, message
  return setmetatable(e, core.error_mt)
end

O.VERSION = "0.2.0"
O.DEFAULT_BASE_URL = "https://zcbservice.aizfw.cn/kyyReactApiServer"

-- The User-Agent sent when the user_agent option is not given:
-- "starvideos/<version> (<Lua or LuaJIT version>; <HTTP library>/<version>)", the
-- HTTP library being nginx inside nginx (its cosockets carry the requests), else
-- the libcurl starvideos.curl was built with (core.so does not link libcurl).
-- http: that library part, when the caller knows better.
function O.user_agent(http)
  if not http then
    local ngx = rawget(_G, "ngx")
    local v = type(ngx) == "table" and type(ngx.config) == "table" and ngx.config.nginx_version
    if type(v) == "number" then
      http = string_format("nginx/%d.%d.%d", floor(v / 1000000), floor(v / 1000) % 1000, v % 1000)
    else
      http = "libcurl/" .. core.libcurl_version
    end
  end
  local jit = rawget(_G, "jit")
  return string_format("starvideos/%s (%s; %s)", O.VERSION, type(jit) == "table" and jit.version or _VERSION, http)
end

-- The one copy of every default.  The transports and the core are handed each
-- of these values (transport.lua, request.lua); C only clamps what it gets and
-- raises on a value missing, never filling one in (spec/policy_spec.lua).
O.DEFAULTS = {
  timeout = 30,              -- seconds, one HTTP exchange
  connect_timeout = 10,
  max_retries = 2,
  max_connections = 16,
  requests_per_second = 10,  -- polls of all of a key's tasks together (engine.lua)
  min_interval = 5,          -- the closest two polls of one task may be (a shorter interval lowers it)
  retry_backoff = 0.5,       -- first retry delay, doubled each time
  max_backoff = 30,          -- the cap of that doubling (the delay is then jittered down to half)
  max_retry_wait = 60,       -- the longest Retry-After honoured
  interval = 30,             -- between polls until the schedule has learned; its poll budget per task
  wait_timeout = 1800,       -- a whole wait
  download_timeout = 3600,   -- a whole download
  resume_limit = 5,          -- reconnections of one download
  lease = 30,                -- a process's lease on its tasks in a store, renewed every third;
                             -- keep looks every lease / 6 s (at most 5)
  keep_again = 60,           -- keep: a task it failed to carry (a network error, say) is taken again after this
  max_answer = 1024 * 1024,  -- an API answer larger than this is not ours
  user_agent = O.user_agent(),
}

local DAY = 86400

local function show(v)
  if type(v) == "string" then return string_format("%q", v) end
  return tostring(v)
end

-- Raise "bad argument #n to 'fname' (expected expected, got ...)" at the caller's
-- caller (level 3 from the public function that calls this).
function O.argerror(n, fname, expected, got, level)
  error(string_format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, got), level or 3)
end

function O.is_integer(v)
  return type(v) == "number" and v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

-- The JSON text of params.extra for the core (which calls no Lua): text, or
-- nil when there is no extra, or nil, err when it cannot be JSON.  The text is
-- extra's one form: the core checks it (a JSON object of names, no key twice,
-- none of the checked fields) and splices it into the body.
function O.extra_json(params)
  local extra = params.extra
  if extra == nil then return nil end
  local text, why = cjson.encode(extra)
  if text then return text end
  return nil, O.new_error("invalid_request", "extra: cannot be sent as JSON: " .. tostring(why), { field = "extra" })
end

-- checker(value) -> nil when fine, else what was expected
local C = {}
O.checkers = C

function C.seconds(v)
  if type(v) ~= "number" or not (v > 0 and v <= DAY) then return "a number of seconds in (0, 86400]" end
end
function C.lease(v) -- renewed every third of it: a second at least
  if type(v) ~= "number" or not (v >= 1 and v <= DAY) then return "a number of seconds in [1, 86400]" end
end
function C.interval(v)
  if type(v) ~= "number" or not (v >= 0 and v <= DAY) then return "a number of seconds in [0, 86400]" end
end
function C.retries(v)
  if not O.is_integer(v) or v < 0 or v > 10 then return "a whole number from 0 to 10" end
end
function C.connections(v)
  if not O.is_integer(v) or v < 1 or v > 1024 then return "a whole number from 1 to 1024" end
end
function C.resumes(v)
  if not O.is_integer(v) or v < 0 or v > 100 then return "a whole number from 0 to 100" end
end
function C.rate(v)
  if type(v) ~= "number" or not (v > 0 and v <= 1e6) then return "a number of requests per second in (0, 1e6]" end
end
function C.str(v) if type(v) ~= "string" then return "a string" end end
function C.path(v) if type(v) ~= "string" or v == "" then return "a file path" end end
function C.fn(v) if type(v) ~= "function" then return "a function" end end
-- a header value: no control characters, which would end the header line
function C.header(v)
  if type(v) ~= "string" or v:find("[%c\127]") then return "a string without control characters" end
end

-- create_limit = {count = N, per = seconds}: the message names the field that
-- is wrong (a second value true: the message is whole, no "got" added)
local LIMIT_FIELDS = { count = true, per = true }
function C.limit(v)
  if type(v) ~= "table" then
    return "create_limit: a table {count = N, per = seconds} expected, got " .. show(v), true
  end
  for k in pairs(v) do
    if not LIMIT_FIELDS[k] then return "create_limit." .. tostring(k) .. ": unknown field (count, per)", true end
  end
  if not O.is_integer(v.count) or v.count < 1 or v.count > 1e9 then
    return "create_limit.count: a whole number of creates from 1 to 1e9 expected, got " .. show(v.count), true
  end
  if type(v.per) ~= "number" or not (v.per >= 1 and v.per <= 366 * DAY) then
    return "create_limit.per: a number of seconds from 1 to 31622400 expected, got " .. show(v.per), true
  end
end

-- store = "redis://[:password@]host:port[/db]": store.lua's parse is the one
-- check (required here only when a store is given: store.lua needs options);
-- its message names `store` and hides the password.
function C.store(v)
  local ok, err = pcall(function() return require("starvideos.store").parse(v) end)
  if not ok then return tostring(err), true end
end

-- The one URL check is the core's (core.check_url, csrc/sv_util.c, fuzzed):
-- url_problem(v[, field]) -> nil when v is a base URL (http(s)://host[:port][/path]
-- and nothing else: no userinfo, query, fragment, spaces or control characters),
-- else what was expected and found, naming field (default "base_url").
function O.url_problem(v, field)
  local ok, err = core.check_url(v, field or "base_url", true)
  if not ok then return err.message end
end
C.url = O.url_problem

-- proxy = "http://host:port": the one URL check (core.check_url), then an http
-- proxy with its port and nothing after it (both transports speak plain HTTP
-- to it: absolute-form requests, CONNECT for https).
function C.proxy(v)
  local ok, err = core.check_url(v, "proxy", true)
  if not ok then return err.message, true end
  if not (v:find("^[Hh][Tt][Tt][Pp]://[^/]+:%d+/?$") and v:find(":%d+/?$")) then
    return "proxy: expected http://host:port (an http proxy and its port, no path), found " .. show(v), true
  end
end

-- log = function(line) | "debug" | "info" (log.lua's levels)
function C.log(v)
  if type(v) ~= "function" and not Log.level(v) then
    return 'log: a function(line), "debug" or "info" expected, got ' .. show(v), true
  end
end

-- notify = {url =, secret =[, retry_for =]}: notify.lua's check (the one URL
-- check for url); its message names notify.url / notify.secret, never the secret.
function C.notify(v)
  local bad = require("starvideos.notify").problem(v)
  if bad then return bad, true end
end

-- check(opts, where, schema[, level]) -> opts (or {} for nil); raises on a typo or
-- a bad value, at `level` (default: the caller of the function that called check)
function O.check(opts, where, schema, level)
  level = level or 3
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string_format("bad argument to '%s' (options table expected, got %s)", where, type(opts)), level)
  end
  for k, v in pairs(opts) do
    local check = schema[k]
    if not check then
      error(string_format("bad option to '%s': unknown option '%s'", where, tostring(k)), level)
    end
    local want, whole = check(v)
    if want and (whole or check == C.url) then
      error(string_format("bad option '%s' to '%s' (%s)", tostring(k), where, want), level)
    elseif want then
      error(string_format("bad option '%s' to '%s' (%s expected, got %s)", tostring(k), where, want,
        k == "api_key" and "a key with a control character"
          or show(type(v) == "string" and v:gsub("//[^/@]*@", "//***@") or v)), level)
    end
  end
  return opts
end

-- The options of each public call of a client.
O.CALLS = {
  wait = { interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn },
  download = { on_progress = C.fn, timeout = C.seconds, sleep = C.fn, resume_limit = C.resumes },
  generate = { out = C.path, interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn },
  wait_all = { interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn, out_dir = C.path },
  resume = { dir = C.path, interval = C.interval, timeout = C.seconds, sleep = C.fn, journal = C.path,
    on_progress = C.fn },
  job = { interval = C.interval, timeout = C.seconds, out = C.path, on_status = C.fn, on_progress = C.fn },
  pending = { journal = C.path },
  keep = { dir = C.path, lease = C.seconds, interval = C.interval, timeout = C.seconds, on_progress = C.fn,
    journal = C.path, sleep = C.fn, notify = C.notify },
}

-- A task id, from an id or a task table; else raises (argument 1 of `where`).
function O.task_id(v, where)
  if type(v) == "string" then return v end
  if type(v) == "table" and type(v.id) == "string" then return v.id end
  O.argerror(1, where, "task id or task table", type(v) == "table" and "a table without an id" or type(v), 4)
end

-- What `download` was given: "url", a URL; "task", a task with its video_url;
-- "id", a task id (or the id of a task without its URL).  Raises on anything else.
function O.download_target(v)
  local kind = type(v)
  if kind == "string" and v:find("^%a[%w+.-]*://") then return "url", v end
  if kind == "table" and type(v.video_url) == "string" then return "task", v end
  if (kind == "string" and v ~= "") or (kind == "table" and type(v.id) == "string") then
    return "id", kind == "table" and v.id or v
  end
  O.argerror(1, "download", "task, task id or URL", kind == "table" and "a table without an id" or kind, 4)
end

function O.need_table(v, n, where)
  if type(v) ~= "table" then O.argerror(n, where, "table", type(v), 4) end
end

local CLIENT = {
  api_key = C.header, base_url = C.url, timeout = C.seconds, connect_timeout = C.seconds,
  max_retries = C.retries, journal = C.path, sleep = C.fn, on_event = C.fn, ca_file = C.path,
  max_connections = C.connections, retry_backoff = C.interval, max_retry_wait = C.interval,
  user_agent = C.header, requests_per_second = C.rate, min_interval = C.interval, interval = C.interval,
  create_limit = C.limit, store = C.store, proxy = C.proxy, log = C.log, notify = C.notify, lease = C.lease,
  transport = function(v) if type(v) ~= "table" then return "a transport table" end end,
}

-- The store $STARVIDEOS_STORE names, the default ledger when no journal is
-- given (a journal given wins), or nil.  Unchecked (new and the CLI each say
-- what is wrong with it in their own words).
function O.env_store(journal)
  if journal ~= nil then return nil end
  local env = os_getenv("STARVIDEOS_STORE")
  if env ~= "" then return env end
end

-- The whole configuration of a client: the options given, else the environment,
-- else the defaults; checked once.
function O.client(opts)
  opts = O.check(opts, "new", CLIENT, 4)
  local D, cfg = O.DEFAULTS, {}
  for k, v in pairs(D) do cfg[k] = v end
  for k, v in pairs(opts) do cfg[k] = v end
  if opts.create_limit then -- a copy: the caller's table may change later
    cfg.create_limit = { count = opts.create_limit.count, per = opts.create_limit.per }
  end
  if opts.notify then cfg.notify = require("starvideos.notify").copy(opts.notify) end -- a copy, as create_limit
  if cfg.api_key == nil then
    local key = os_getenv("STARVIDEOS_API_KEY")
    if key and key ~= "" then
      if C.header(key) then error("bad STARVIDEOS_API_KEY (a key without control characters expected)", 3) end
      cfg.api_key = key
    end
  end
  if cfg.api_key == "" then cfg.api_key = nil end
  if cfg.store == nil then
    local env = O.env_store(cfg.journal)
    if env then
      local bad = C.store(env)
      if bad then error("bad STARVIDEOS_STORE (" .. bad .. ")", 3) end
      cfg.store = env
    end
  end
  -- HTTP_PROXY, which libcurl does not read (a CGI request's "Proxy:" header
  -- arrives as HTTP_PROXY: httpoxy), is read here as other HTTP clients do, for
  -- http URLs, unless the process is a CGI request (REQUEST_METHOD) or
  -- http_proxy is set (libcurl's own); libcurl still applies no_proxy to it.
  -- Inside nginx only the proxy option counts (cosockets read no environment).
  if cfg.proxy == nil and not rawget(_G, "ngx") then
    local up = os_getenv("HTTP_PROXY")
    if up and up ~= "" and not os_getenv("http_proxy") and not os_getenv("REQUEST_METHOD") then
      cfg.http_proxy = up
    end
  end
  -- one ledger per client: a journal (one host) or a store (a fleet), never both
  if cfg.store ~= nil and cfg.journal ~= nil then
    error(string_format("bad options to 'new' (journal %q and store (%s) are both given: the ledger is one or the "
      .. "other: journal for one host, store for a fleet)", tostring(cfg.journal),
      opts.store ~= nil and "option" or "STARVIDEOS_STORE"), 3)
  end
  -- the floor between two polls cannot be above the usual gap: a default floor
  -- follows a shorter interval, a floor given with it must fit
  if cfg.min_interval > cfg.interval then
    if opts.min_interval ~= nil then
      error(string_format("bad options to 'new' (min_interval %s is longer than interval %s: the floor between "
        .. "two polls cannot be above the usual gap)", show(cfg.min_interval), show(cfg.interval)), 3)
    end
    cfg.min_interval = cfg.interval
  end
  if cfg.base_url == nil then
    local env = os_getenv("STARVIDEOS_BASE_URL")
    cfg.base_url = (env and env ~= "") and env or O.DEFAULT_BASE_URL
    cfg.base_url_unset = not (env and env ~= "") -- the provider's, by default: see O.note_default_host
    local bad = O.url_problem(cfg.base_url, "STARVIDEOS_BASE_URL")
    if bad then error(string_format("bad base URL (%s)", bad), 3) end
  end
  cfg.base_url = cfg.base_url:gsub("/+$", "")
  -- the log: a listener of the client's events before the user's on_event
  -- (client.lua keeps it there when on_event is set later)
  if cfg.log == nil then
    local env = os_getenv("STARVIDEOS_LOG")
    if env and env ~= "" then
      if not Log.level(env:lower()) then
        error("bad STARVIDEOS_LOG (\"debug\" or \"info\" expected, got " .. show(env) .. ")", 3)
      end
      cfg.log = env:lower()
    end
  end
  if cfg.log then
    cfg.logger = Log.logger(cfg.log, { cfg.api_key, type(cfg.notify) == "table" and cfg.notify.secret or nil })
    cfg.on_event = O.on_event(cfg, cfg.on_event)
  end
  return cfg
end

-- The on_event a client's events go to: the log's line (cfg.logger, when
-- there is a log), then the user's fn.
function O.on_event(cfg, fn)
  return Log.chain(cfg.logger, fn)
end

-- The kinds of error a request to the provider's host may end with because it
-- was not the host the user meant (the local emulator, say).
local NOTE_KINDS = { network = true, timeout = true, auth = true, not_found = true, protocol = true }

-- err (of a request to the base URL), its message ending with where the request
-- went when the base URL was nobody's choice: no base_url option and no
-- $STARVIDEOS_BASE_URL.  A newcomer who meant the emulator learns why the
-- request went to the service.
function O.note_default_host(cfg, err)
  if cfg.base_url_unset and type(err) == "table" and NOTE_KINDS[err.kind] and type(err.message) == "string"
      and not err.message:find("STARVIDEOS_BASE_URL is not set", 1, true) then
    err.message = err.message .. " (STARVIDEOS_BASE_URL is not set: using " .. cfg.base_url
      .. "; for the local emulator, export the lines `starvideos emulator` prints)"
  end
  return err
end

return O
