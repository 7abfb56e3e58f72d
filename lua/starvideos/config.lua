-- Every default (DEFAULTS), the checks of every option, and a client's whole
-- configuration.  Wrong values raise here; lower layers only clamp what they are handed.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local M = {}

M.VERSION = "0.4.0"
M.DEFAULT_BASE_URL = "https://zcbservice.aizfw.cn/kyyReactApiServer"

-- The one answer to "are we inside nginx, with its sockets?": the ngx table, else nil.
function M.nginx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" and type(ngx.socket) == "table"
      and type(ngx.socket.tcp) == "function" then
    return ngx
  end
end

-- "starvideos/<version> (<Lua or LuaJIT version>; nginx/<version> inside nginx, else libcurl/<version>)"
function M.user_agent()
  local ngx = M.nginx()
  local v = ngx and type(ngx.config) == "table" and ngx.config.nginx_version
  local http = type(v) == "number"
    and string.format("nginx/%d.%d.%d", math.floor(v / 1000000), math.floor(v / 1000) % 1000, v % 1000)
    or "libcurl/" .. core.libcurl_version
  return string.format("starvideos/%s (%s; %s)", M.VERSION, jit and jit.version or _VERSION, http)
end

-- Every default, and nowhere else (spec/docs_spec.lua checks that the docs name each key).
M.DEFAULTS = {
  timeout = 30,              -- seconds, one HTTP exchange
  connect_timeout = 10,
  keepalive_timeout = 60,    -- inside nginx: seconds a kept-alive connection idles (keepalive_pool: max_connections)
  max_retries = 2,
  max_connections = 16,      -- the key's exchanges at once (the loop admits no more)
  requests_per_second = 10,  -- every API request of the key together (bucket.lua)
  min_interval = 5,          -- the closest two polls of one task may be (a shorter interval lowers it)
  retry_backoff = 0.5,       -- first retry delay, doubled each time
  max_backoff = 30,          -- the cap of that doubling (the delay is then jittered down to half)
  max_retry_wait = 60,       -- the longest Retry-After honoured
  interval = 30,             -- between polls until the schedule has learned; its poll budget per task
  wait_timeout = 1800,       -- a whole wait
  download_timeout = 3600,   -- a whole download
  resume_limit = 5,          -- reconnections of one download
  lease = 30,                -- a process's lease on its tasks in a store, renewed every third
  keep_again = 60,           -- keep: a task it failed to carry is taken again after this
  max_answer = 1024 * 1024,  -- an API answer larger than this is not ours
  -- bytes: a video's body without a length is refused past it: what a video of the service can be, its longest
  -- (15 s at 720p) at 64 Mbit/s, far past any 720p encoding's rate (120 MB), rounded up to 128 MiB (docs/downloads.md)
  max_video_bytes = 128 * 1024 * 1024,
  samples = 200,             -- the learned samples kept per kind of task (schedule, journal, store)
  retry_for = 600,           -- seconds a webhook is retried by the process that sends it (notify.retry_for's)
  settle = 5,                -- seconds close() and keep's end wait for the webhooks in flight (the rest stays owed)
  retain = 7 * 86400,        -- seconds a store keeps a settled task's record, and an abandoned create's mark
  compact_at = 64 * 1024 * 1024, -- bytes: a journal larger than this is compacted when a client opens it
  log_line = 2048,           -- bytes of one log line, after redaction (a longer one is cut)
  clock_skew = 60,           -- seconds: the service's clock looked at this often, a skew over it a warning
  tolerance = 300,           -- seconds: verify_webhook's opts.tolerance, how far a timestamp may be from now
  replicas = 0,              -- store = {replicas = N}: the replicas a record naming a paid task waits for (WAIT)
  replica_timeout = 1,       -- store = {replica_timeout = s}: the longest one WAIT waits
  prompt_head = 80,          -- characters of a prompt that records and task lists keep (docs/batch.md)
  preflight = true,          -- check reference media before a create: true, "strict", false (docs/media.md)
  provenance = true,         -- each saved video's record, PATH.json; {sign_key = PATH}: signed (docs/lineage.md)
  mark = true,               -- each saved MP4's XMP mark inside it: made by a trained algorithm (docs/lineage.md)
  image_side_note = 64,      -- px: a reference image's shorter side under it is a preflight note
  metrics_dict = "starvideos_metrics", -- inside nginx: the lua_shared_dict of the host's metrics
  trace_queue = 2048,        -- spans waiting for export at most (more are dropped, counted)
  trace_batch = 512,         -- spans in one export
  trace_delay = 1,           -- seconds a finished span may wait for its export
  trace_timeout = 10,        -- seconds one export may take (its retries within)
  trace_flush = 1,           -- seconds close() waits for the spans still queued to go
  heartbeat = 15,            -- client:sse: seconds between a stream's comments when nothing else was written
  events_window = 1000,      -- client:sse: the events of a key kept for streams that come back (Last-Event-ID)
  events_poll = 0.25,        -- client:sse: seconds between a stream's looks at the window
  events_dict = "starvideos_events", -- inside nginx: the lua_shared_dict of the streams' window (every worker's)
  user_agent = M.user_agent(),
}

-- The levels of the `log` option and $STARVIDEOS_LOG.
M.LOG_LEVELS = { debug = true, info = true }

local DAY = 86400
M.MAX_PER = 366 * DAY -- the longest window of create_limit and tenant_limit (a compaction keeps its creates' times)

local function show(v) return type(v) == "string" and string.format("%q", v) or tostring(v) end

-- checker(value) -> nil when fine, else what was expected (and true when that is a whole message)
local C = {}

-- a number in [lo, hi] (above lo when `above`); whole numbers only when `whole`
local function number_in(lo, hi, want, above, whole)
  return function(v)
    if type(v) ~= "number" or not ((above and v > lo or not above and v >= lo) and v <= hi)
        or whole and v ~= math.floor(v) then return want end
  end
end
C.seconds = number_in(0, DAY, "a number of seconds in (0, 86400]", true)
C.lease = number_in(1, DAY, "a number of seconds in [1, 86400]") -- renewed every third of it: a second at least
C.interval = number_in(0, DAY, "a number of seconds in [0, 86400]")
C.rate = number_in(0, 1e6, "a number of requests per second in (0, 1e6]", true)
C.retries = number_in(0, 10, "a whole number from 0 to 10", false, true)
C.connections = number_in(1, 1024, "a whole number from 1 to 1024", false, true)
C.resumes = number_in(0, 100, "a whole number from 0 to 100", false, true)
C.pixels = number_in(0, 1e5, "a number of pixels in [0, 100000]")
C.priority = number_in(1, 5, "a priority: a whole number from 1 (first) to 5 (last)", false, true) -- (queue.lua's)
function C.path(v) if type(v) ~= "string" or v == "" then return "a file path" end end
function C.fn(v) if type(v) ~= "function" then return "a function" end end
function C.key(v) if type(v) ~= "string" or v == "" then return "a non-empty string" end end
function C.event_id(v) -- (client:sse's last_event_id: an id a stream wrote, as a number or its text)
  local n = tonumber(v)
  if not n or n < 0 or n ~= math.floor(n) then return "an event id: a whole number >= 0 (or its text)" end
end
function C.bool(v) if type(v) ~= "boolean" then return "true or false" end end
function C.preflight(v) if type(v) ~= "boolean" and v ~= "strict" then return 'true, false or "strict"' end end
-- a task's state in client:tasks (docs/batch.md)
local STATES = { pending = true, created = true, completed = true, failed = true, downloaded = true, abandoned = true }
M.STATES = STATES -- (tools/types.lua: the annotations)
function C.state(v) return not STATES[v] and "pending, created, completed, failed, downloaded or abandoned" or nil end
-- generate_all's out: a file name pattern with one %d (%% for a percent sign), or a function(i, params)
function C.pattern(v)
  if type(v) == "function" then return end
  local rest, n = (type(v) == "string" and v or ""):gsub("%%%%", ""):gsub("%%0?%d*d", "")
  if n ~= 1 or rest:find("%", 1, true) then
    return 'a file name pattern with exactly one %d (e.g. "videos/%04d.mp4"; %% for a percent sign) '
      .. "or a function(i, params)"
  end
end
-- a header value: no control characters, which would end the header line
function C.header(v)
  if type(v) ~= "string" or v:find("[%c\127]") then return "a string without control characters" end
end

-- a W3C traceparent, and the trace option: otel.lua, where OpenTelemetry's settings are read
function C.traceparent(v) return require("starvideos.otel").check_traceparent(v) end

-- create_limit and tenant_limit (name) = {count = N, per = seconds}
local LIMIT = { count = number_in(1, 1e9, "a whole number of creates from 1 to 1e9", false, true),
  per = number_in(1, M.MAX_PER, "a number of seconds from 1 to 31622400") }
M.LIMIT = LIMIT -- (tools/types.lua)
local function limit(name)
  return function(v)
    if type(v) ~= "table" then
      return name .. ": a table {count = N, per = seconds} expected, got " .. show(v), true
    end
    for k in pairs(v) do
      if not LIMIT[k] then return name .. "." .. tostring(k) .. ": unknown field (count, per)", true end
    end
    for _, k in ipairs { "count", "per" } do
      local want = LIMIT[k](v[k])
      if want then return string.format("%s.%s: %s expected, got %s", name, k, want, show(v[k])), true end
    end
  end
end

function C.tenant(v) -- (a tenant: the end user a create is made for)
  local bad = type(v) ~= "string" or v == "" or #v > 200 or v:find("[%c\127]")
  return bad and "a tenant name: a string of 1 to 200 bytes without control characters" or nil
end

-- prices = {model = price of one create, ...} (failed_prices: of a task that failed at the service): the models'
-- names (core.models), numbers >= 0; C.prices_of(name): the check of option name
function C.prices_of(name)
  return function(v)
    if type(v) ~= "table" then return name .. ": a table {model = price, ...} expected, got " .. show(v), true end
    for k, price in pairs(v) do
      if type(k) ~= "string" or not core.models[k] then
        local names = {}
        for m in pairs(core.models) do names[#names + 1] = m end
        table.sort(names)
        return string.format("%s[%s]: not a model (%s)", name, show(k), table.concat(names, ", ")), true
      end
      if type(price) ~= "number" or price ~= price or price < 0 or price == math.huge then
        return string.format("%s.%s: a price >= 0 expected, got %s", name, k, show(price)), true
      end
    end
  end
end
-- A base URL, http(s)://host[:port][/path]: the core's one URL check (core.check_url).
function C.url(v, field)
  local ok, err = core.check_url(v, field or "base_url", true)
  if not ok then return err.message, true end
end

-- proxy = "http://[user:password@]host:port" (both transports speak plain HTTP to
-- it): the core's check, whose message never holds the credentials.
function C.proxy(v)
  local ok, err = core.check_proxy(v)
  if not ok then return err.message, true end
end

function C.log(v)
  if type(v) ~= "function" and not M.LOG_LEVELS[v] then
    return 'log: a function(line), "debug" or "info" expected, got ' .. show(v), true
  end
end

-- notify = {url =, secret =[, retry_for =]} (notify_option.lua's check: its messages never hold the secret)
function C.notify(v) return require("starvideos.notify_option").check(v) end

-- storage = a table (docs/storage.md): its fields are the bucket's rock's to check (the references point's check,
-- extension.lua), never a value shown.  Without that rock, any table: an s3:// out or a local file as a reference is
-- refused where it is given, naming the rock.
function C.storage(v)
  if type(v) ~= "table" then return "storage: a table of the bucket's settings expected, got " .. type(v), true end
  local point = require("starvideos.extension").optional("references")
  local why = point and point.check and point.check(v)
  if why then return why, true end
end

-- A copy of a checked option's table (the caller's may change later); any other value as it is.
local function copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, val in pairs(v) do c[k] = val end
  return c
end
M.copy = copy

function C.models(v) return require("starvideos.failure").check_fallback(v, show) end -- (fallback)

-- (its form here; its ledger reads the rest once, below: M.client)
function C.store(v) return require("starvideos.store_option").form(v), true end

-- check(opts, where, schema) -> opts (or {} for nil); raises on a typo or a bad value (at the public call's caller)
function M.check(opts, where, schema)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(string.format("bad argument to '%s' (options table expected, got %s)", where, type(opts)), 4)
  end
  for k, v in pairs(opts) do
    local check = schema[k]
    if not check then
      local meant = require("starvideos.errors").nearest(k, schema)
      error(string.format("bad option to '%s': unknown option '%s'%s", where, tostring(k),
        meant and " (did you mean '" .. meant .. "'?)" or ""), 4)
    end
    local want, whole = check(v)
    if want and not whole then
      want = string.format("%s expected, got %s", want, k == "api_key" and "a key with a control character"
        or show(type(v) == "string" and v:gsub("//[^/@]*@", "//***@") or v))
    end
    if want then error(string.format("bad option '%s' to '%s' (%s)", tostring(k), where, want), 4) end
  end
  return opts
end

-- The options of each public call of a client.
M.CALLS = {
  wait = { interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn },
  download = { on_progress = C.fn, timeout = C.seconds, sleep = C.fn, resume_limit = C.resumes, mark = C.bool },
  generate = { out = C.path, interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn,
    key = C.key, fresh = C.bool, tenant = C.tenant, traceparent = C.traceparent, resend = C.bool,
    fallback = C.models },
  create = { key = C.key, fresh = C.bool, tenant = C.tenant, traceparent = C.traceparent, resend = C.bool },
  generate_all = { out = C.pattern, interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn,
    tenant = C.tenant, key = C.fn, fresh = C.bool, traceparent = C.traceparent, resend = C.bool, fallback = C.models },
  submit = { out = C.pattern, tenant = C.tenant, priority = C.priority, sleep = C.fn },
  wait_all = { interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn, out_dir = C.path },
  resume = { dir = C.path, interval = C.interval, timeout = C.seconds, sleep = C.fn, journal = C.path,
    on_progress = C.fn, dry_run = C.bool },
  job = { interval = C.interval, timeout = C.seconds, out = C.path, on_status = C.fn, on_progress = C.fn,
    key = C.key, fresh = C.bool, tenant = C.tenant, traceparent = C.traceparent, resend = C.bool },
  pending = { journal = C.path },
  keep = { dir = C.path, lease = C.seconds, interval = C.interval, timeout = C.seconds, on_progress = C.fn,
    journal = C.path, sleep = C.fn, notify = C.notify, once = C.bool, dry_run = C.bool },
  tasks = { state = C.state, journal = C.path, check = C.bool, tenant = C.tenant, parent = C.key },
  spend = { tenant = C.tenant },
  sse = { tenant = C.tenant, task = C.key, heartbeat = C.seconds, write = C.fn, last_event_id = C.event_id },
  film = { out = C.path, interval = C.interval, timeout = C.seconds, on_progress = C.fn, sleep = C.fn,
    tenant = C.tenant, dry_run = C.bool, job = C.bool, resend = C.bool, fallback = C.models },
}
M.CALLS.lineage = { job = C.bool } -- again, remix and continue: generate's, and job
for k, v in pairs(M.CALLS.generate) do M.CALLS.lineage[k] = v end

-- The options of starvideos.new.
M.CLIENT = {
  api_key = C.header, base_url = C.url, timeout = C.seconds, connect_timeout = C.seconds,
  max_retries = C.retries, journal = C.path, sleep = C.fn, on_event = C.fn, ca_file = C.path,
  max_connections = C.connections, retry_backoff = C.interval, max_retry_wait = C.interval,
  user_agent = C.header, requests_per_second = C.rate, min_interval = C.interval, interval = C.interval,
  create_limit = limit("create_limit"), tenant_limit = limit("tenant_limit"), store = C.store,
  prices = C.prices_of("prices"), failed_prices = C.prices_of("failed_prices"),
  spend_limit = function(v) return require("starvideos.spend_option").check(v) end,
  tz_offset = function(v) return select(2, require("starvideos.spend_option").offset(v)) end,
  proxy = C.proxy, log = C.log, notify = C.notify, lease = C.lease, storage = C.storage,
  preflight = C.preflight, allow_private_media = C.bool, min_image_side = C.pixels, metrics = C.bool,
  trace = function(v) return require("starvideos.otel").check(v, C.url) end,
  transport = function(v) if type(v) ~= "table" then return "a transport table" end end,
  keepalive_timeout = C.seconds, keepalive_pool = C.connections, -- (nginx's sockets: docs/openresty.md)
  failure_patterns = function(v) return require("starvideos.failure").check(v) end, mark = C.bool,
  provenance = function(v) return type(v) ~= "boolean" and require("starvideos.signer").check(v) or nil end,
  tenant_weights = function(v) return require("starvideos.queue").check_weights(v) end,
}

-- $name, or nil when it is unset or empty.
local function env(name)
  local v = os.getenv(name)
  if v ~= "" then return v end
end
M.env = env

-- The store $STARVIDEOS_STORE names, the ledger when no journal is given, or nil.
function M.env_store(journal) return journal == nil and env("STARVIDEOS_STORE") or nil end

-- The environment's values, where the options give none (raises on bad ones).
local function from_env(cfg)
  if cfg.api_key == nil then cfg.api_key = env("STARVIDEOS_API_KEY") end
  if cfg.api_key == "" then cfg.api_key = nil end
  if cfg.api_key and C.header(cfg.api_key) then
    error("bad STARVIDEOS_API_KEY (a key without control characters expected)", 4)
  end
  local store = cfg.store == nil and M.env_store(cfg.journal)
  if store then
    local bad = C.store(store)
    if bad then error("bad STARVIDEOS_STORE (" .. bad .. ")", 4) end
    cfg.store = store
  end
  -- HTTP_PROXY, which libcurl does not read (a CGI request's "Proxy:" header arrives as
  -- HTTP_PROXY: httpoxy), is read for http URLs unless in a CGI request or http_proxy is
  -- set.  Inside nginx only the proxy option counts (cosockets read no environment).
  if cfg.proxy == nil and not M.nginx() and not os.getenv("http_proxy") and not os.getenv("REQUEST_METHOD") then
    cfg.http_proxy = env("HTTP_PROXY")
  end
  if cfg.base_url == nil then
    local url = env("STARVIDEOS_BASE_URL")
    cfg.base_url, cfg.base_url_unset = url or M.DEFAULT_BASE_URL, url == nil -- errors.note_default_host says so
    local bad = C.url(cfg.base_url, "STARVIDEOS_BASE_URL")
    if bad then error(string.format("bad base URL (%s)", bad), 4) end
  end
  if cfg.trace == nil and (env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env("OTEL_EXPORTER_OTLP_ENDPOINT")) then
    cfg.trace = {} -- (otel.lua reads the rest of OTEL_*)
  end
  local level = cfg.log == nil and env("STARVIDEOS_LOG")
  if level and not M.LOG_LEVELS[level:lower()] then
    error("bad STARVIDEOS_LOG (\"debug\" or \"info\" expected, got " .. show(level) .. ")", 4)
  end
  if level then cfg.log = level:lower() end
end

-- A client's whole configuration: the options, else the environment, else the defaults.
function M.client(opts)
  opts = M.check(opts, "new", M.CLIENT)
  local cfg = {}
  for k, v in pairs(M.DEFAULTS) do cfg[k] = v end
  for k, v in pairs(opts) do cfg[k] = v end
  for _, k in ipairs { "create_limit", "tenant_limit", "prices", "failed_prices", "store", "storage", "notify",
      "spend_limit", "failure_patterns", "tenant_weights" } do
    cfg[k] = copy(opts[k])
  end
  from_env(cfg)
  if type(cfg.provenance) == "table" or opts.provenance == nil and env("STARVIDEOS_SIGN_KEY") then
    require("starvideos.signer").of(cfg, opts.provenance == nil and env("STARVIDEOS_SIGN_KEY"), 4) -- (read once)
  end
  if cfg.spend_limit ~= nil then -- (money caps: spend_option.lua; a limit whose price is unknown raises here)
    local Option = require "starvideos.spend_option"
    cfg.tz_seconds = Option.offset(cfg.tz_offset)
    cfg.spend = Option.resolve(cfg, 4)
  end
  if cfg.store ~= nil then require("starvideos.store_option").keep(cfg, opts.store ~= nil, 4) end -- (read once)
  if cfg.store ~= nil and cfg.journal ~= nil then
    error(string.format("bad options to 'new' (journal %q and store (%s) are both given: the ledger is one or the "
      .. "other: journal for one host, store for a fleet)", tostring(cfg.journal),
      opts.store ~= nil and "option" or "STARVIDEOS_STORE"), 3)
  end
  -- the floor between two polls cannot be above the usual gap: a default floor
  -- follows a shorter interval, a floor given with it must fit
  if cfg.min_interval > cfg.interval then
    if opts.min_interval ~= nil then
      error(string.format("bad options to 'new' (min_interval %s is longer than interval %s: the floor between "
        .. "two polls cannot be above the usual gap)", show(cfg.min_interval), show(cfg.interval)), 3)
    end
    cfg.min_interval = cfg.interval
  end
  cfg.base_url = cfg.base_url:gsub("/+$", "")
  return cfg
end

return M
