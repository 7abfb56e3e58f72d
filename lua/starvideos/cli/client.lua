-- starvideos.cli.client: the library client of a command, from its flags and
-- the environment. The key comes from $STARVIDEOS_API_KEY or --api-key-file,
-- never from an argument; from here on the output redacts it.

local args = require "starvideos.cli.args"
local output = require "starvideos.cli.output"
local protect = require("starvideos.interrupt").pcall -- (a pcall that lets Ctrl-C through)

local type, pairs, tostring, tonumber, select = type, pairs, tostring, tonumber, select
local io_open, io_stdin, os_getenv = io.open, io.stdin, os.getenv
local math_min = math.min
local usage_error, quote = args.usage_error, args.quote

local M = {}

-- The library and its C core (loaded on first use: help and usage errors need neither); the library's hints name
-- the command as it was invoked.
function M.load()
  local starvideos = require "starvideos"
  require("starvideos.errors").command(args.INVOKED)
  return starvideos, require "starvideos.core"
end

-- The first line of a secret's file (- for stdin): what ("API key", "webhook
-- secret") and word ("key", "secret") name it in the usage errors.
local function read_secret_file(path, what, word)
  local f, err
  if path == "-" then f = io_stdin else f, err = io_open(path, "r") end
  if not f and args.secret_like(path) then -- (a key typed where its file's path goes: `--api-key-file sk-...`)
    usage_error("cannot read the %s file (its path not shown: it looks like the %s itself; %s takes the path of a "
      .. "file that holds it): %s", what, word, word == "key" and "--api-key-file" or "--notify-secret-file",
      err:sub(1, #path + 2) == path .. ": " and err:sub(#path + 3) or err)
  end
  if not f then usage_error("cannot read the %s file: %s", what, err) end
  local input = require "starvideos.cli.input"
  local line, rerr, code = input.first_line(f, input.LIMITS.secret) -- (/dev/zero: refused at its limit, not read)
  if f ~= io_stdin then f:close() end
  if line == nil and code == 21 then -- EISDIR
    usage_error("the %s file %s is a directory, not a file", what, path)
  elseif line == nil and rerr and not code then
    usage_error("the %s file %s is %s (its limit: the %s goes on its first line)", what, path, rerr, word)
  elseif line == nil and rerr then
    usage_error("cannot read the %s file %s: %s", what, path, rerr)
  end
  line = line and line:match("^%s*(.-)%s*$") or ""
  if line == "" then
    usage_error("the %s file %s is empty (the %s goes on its first line)", what, path == "-" and "(stdin)" or path,
      word)
  end
  return line
end

-- --notify URL --notify-secret-file PATH: the notify option (nil without them).
local function notify_of(opts)
  local url, file = opts.notify, opts["notify-secret-file"]
  if not url and not file then return nil end
  if not url then usage_error("--notify-secret-file needs --notify URL (where the webhooks go)") end
  if not file then usage_error("--notify needs --notify-secret-file PATH (the webhook secret's file)") end
  local secret = read_secret_file(file, "webhook secret", "secret")
  output.set_secret(secret)
  return { url = url, secret = secret }
end

-- The core's one URL check (core.check_url): its message names where the URL
-- came from, and says what was found without echoing the URL (it may hold a secret).
local function check_base_url(url, where)
  local _, core = M.load()
  local ok, err = core.check_url(url, where, true)
  if not ok then usage_error("%s", err.message) end
end

-- The store of a command: --store, else $STARVIDEOS_STORE (options.env_store: not beside --journal),
-- checked by store.lua's one parse; its message names where the URL came from and
-- never shows the password. A URL, or nil.
function M.store(opts)
  local url, where = opts.store, "--store"
  if url == nil and os_getenv("STARVIDEOS_STORE") then -- (the library is loaded only when there is one to read:
    M.load()                                           -- a usage error needs no core)
    url, where = require("starvideos.config").env_store(opts.journal), "STARVIDEOS_STORE"
  end
  if url == nil then return nil end
  M.load()
  local ok, why = protect(require("starvideos.store_option").check, url)
  if not ok or why then usage_error("%s %s", where, (tostring(why):gsub("^store ", ""))) end
  local X = require "starvideos.extension" -- (a scheme no installed ledger serves: bad usage too, named so)
  local scheme = X.store_scheme(url)
  if not X.optional("ledger", scheme) then
    usage_error("%s %q%s", where, require("starvideos.store_option").where(url), (X.why("ledger", scheme, "")))
  end
  return url
end

-- The ledger of resume, keep and pending: journal, store (one of them), or a usage error.
function M.ledger(opts)
  local store = M.store(opts)
  if opts.journal == nil and store == nil then
    usage_error("--journal PATH or --store URL is required (or set STARVIDEOS_STORE)")
  end
  return opts.journal, store
end

-- A JSON value as Lua writes it, to the depth of a list of limits: its nulls (cjson.null) dropped from its objects,
-- its whole numbers integers (cjson decodes 2 as 2.0: a message would say "got -1.0").
local function without_nulls(v, depth)
  local tointeger = rawget(math, "tointeger")
  if type(v) == "number" and tointeger then return tointeger(v) or v end
  if type(v) ~= "table" or depth == 0 then return v end
  local null, t = require("cjson.safe").null, {}
  for k, x in pairs(v) do
    if x ~= null then t[k] = without_nulls(x, depth - 1) end
  end
  return t
end
M.without_nulls = without_nulls -- (a storyboard's shots: cli/lineage.lua)

-- --prices JSON, --failed-prices JSON and --spend-limit JSON into the client's options o (prices, failed_prices,
-- spend_limit); a text that is not the JSON expected is a usage error naming its flag (what the library refuses of
-- them, refused() words).
function M.money(opts, o)
  local decode = require("cjson.safe").decode
  for flag, option in pairs { prices = "prices", ["failed-prices"] = "failed_prices" } do
    local text = opts[flag]
    if text then
      local v, why = decode(text)
      if type(v) ~= "table" or not text:match("^%s*{") then
        usage_error("--%s expects a JSON object of prices by model, e.g. '{\"videos\": 0.4}', got %s", flag,
          v == nil and "text that is not JSON (" .. tostring(why) .. ")" or quote(text))
      end
      o[option] = v
    end
  end
  local text = opts["spend-limit"]
  if text then
    local v, why = decode(text)
    if type(v) ~= "table" then
      usage_error("--spend-limit expects a JSON limit or list of limits, e.g. '{\"amount\": 5, \"per\": \"day\"}', "
        .. "got %s", v == nil and "text that is not JSON (" .. tostring(why) .. ")" or "a JSON " .. (type(v) ==
        "userdata" and "null" or type(v)))
    end
    if not (o.journal or o.store) then
      usage_error("--spend-limit needs --journal PATH or --store URL: the spend is counted there, across runs")
    end
    o.spend_limit = without_nulls(v, 2)
  end
end

-- The log (--log, else $STARVIDEOS_LOG): its lines on stderr, at its level, without the warnings (the command says
-- each in its own words: --spend-limit's 50/80/100%) and with a refused create's limit named by its flag; nil
-- when neither is given, or the variable is not a level (the library refuses it: bad STARVIDEOS_LOG).
function M.log(level)
  if not level then level = (os_getenv("STARVIDEOS_LOG") or ""):lower() end
  if level ~= "debug" and level ~= "info" then return nil end
  local Log = require "starvideos.extras.log"
  local wall = select(2, M.load()).wall
  return function(line, kind) -- (the library's log as a function: every line, the event's type beside it)
    if kind == "warning" or (level == "info" and Log.DEBUG_ONLY[kind]) then return end
    if kind == "failed" then line = line:gsub(": spend_limit([:%[])", ": --spend-limit%1") end
    output.err(Log.stamp(wall()), " ", line, "\n")
  end
end

-- --proxy, --log and --create-limit into the client's options o (which holds
-- the journal or store already).
local function flag_options(opts, o)
  if opts.proxy then
    -- a password in the URL is kept out of every output, whatever the library says of it
    local password = opts.proxy:match("^%a[%w+.-]*://[^/@:]*:([^/@]+)@")
    if password then output.set_secret(password) end
    o.proxy = opts.proxy
  end
  o.log = M.log(opts.log)
  if opts["sign-key"] then o.provenance = { sign_key = opts["sign-key"] } end -- (read once, by new: never shown)
  if opts.preflight then o.preflight = opts.preflight == "strict" and "strict" or false end
  if opts.key then -- a job's name in the ledger (generate, create)
    if opts.out then usage_error("--key and --out: a job with --out is keyed by its file already; give one") end
    if not (o.journal or o.store) then
      usage_error("--key needs --journal PATH or --store URL: the key is looked up there, across runs")
    end
    if opts.key == o.api_key then
      usage_error("--key names the job, and this is the API key: set STARVIDEOS_API_KEY or use --api-key-file PATH")
    end
  end
  for flag, option in pairs { ["create-limit"] = "create_limit", ["tenant-limit"] = "tenant_limit" } do
    local limit = opts[flag]
    if limit then
      local count, per = limit:match("^(%d+)/(%d+%.?%d*)$")
      if not count then
        usage_error("--%s expects N/SECONDS (at most N creates in any SECONDS, e.g. 150/86400), got %s", flag,
          quote(limit))
      end
      if not (o.journal or o.store) then
        usage_error("--%s needs --journal PATH or --store URL: the creates are counted there, across runs", flag)
      end
      o[option] = { count = tonumber(count), per = tonumber(per) }
    end
  end
  if opts["tenant-limit"] and not opts.tenant then
    usage_error("--tenant-limit counts the creates of one --tenant T: give --tenant")
  end
  M.money(opts, o)
end

-- The flag behind a client option the library refused (output.OPTION_FLAG's): its message, as the
-- command line's ("bad option 'proxy' to 'new' (proxy: ...)" -> "--proxy: ...").
function M.refused(message)
  message = message:gsub("^[^:]*:%d+: ", "")
  local option, inner = message:match("^bad option '([%w_]+)' to 'new' %((.*)%)$")
  if option == "spend_limit" then return output.spend_words(inner) end
  local flag = output.OPTION_FLAG[option]
  if not flag then return message end
  inner = inner:gsub("^%a+_limit%.count: ", "N: "):gsub("^%a+_limit%.per: ", "SECONDS: ")
  return flag .. ": " .. inner:gsub("^" .. option .. ": ", ""):gsub("^provenance%.sign_key: ", "")
end

-- M.new(ctx, opts, extra[, keyless]) -> client, core. extra: more options for starvideos.new;
-- keyless: no key is needed (check).  While the client waits, ctx.display (when there is
-- one) ticks its live line; what a preflight could not check is a note on stderr.
function M.new(ctx, opts, extra, keyless)
  local key
  if opts["api-key-file"] then
    key = read_secret_file(opts["api-key-file"], "API key", "key")
  else
    key = os_getenv("STARVIDEOS_API_KEY")
    if key == "" then key = nil end
  end
  if not (key or keyless) then
    usage_error("no API key: set STARVIDEOS_API_KEY or use --api-key-file PATH")
  end
  if key then output.set_secret(key) end
  local base = opts["base-url"]
  if base then
    check_base_url(base, "--base-url")
  else
    base = os_getenv("STARVIDEOS_BASE_URL")
    if base == "" then base = nil end
    if base then check_base_url(base, "STARVIDEOS_BASE_URL") end
  end
  local starvideos, core = M.load()
  -- Waiting in short naps keeps Ctrl-C prompt and lets the live line tick.
  local sleep = function(seconds)
    local stop = core.now() + seconds
    while true do
      local t = core.now()
      if t >= stop then return end
      if ctx.display then ctx.display:status_line(t) end
      core.sleep(math_min(0.2, stop - t))
    end
  end
  local o = { api_key = key, base_url = base, sleep = sleep, notify = notify_of(opts), on_event = function(ev)
    if ev.type == "preflight" then output.err(args.PROG, " ", tostring(ctx.name), ": note: ", ev.message, "\n") end
    if ev.type == "warning" then -- (a create's names its entry, in a batch)
      local entry = ev.because and ev.index and ctx.entry_of and ctx.entry_of(ev)
      local said = ev.field == "spend_limit" and output.spend_words(ev.message) or ev.message -- (a limit's 50/80/100%)
      output.err(args.PROG, " ", tostring(ctx.name), ": warning: ", entry and entry .. ": " or "", said, "\n")
    end
    if ev.type == "fallback" then -- (--fallback: a line as the next model's create goes out, its entry in a batch)
      local entry = ev.index and ctx.entry_of and ctx.entry_of(ev)
      if not entry and ctx.display and ctx.display.line then ctx.display:line("fallback: " .. ev.message)
      else output.err(args.PROG, " ", tostring(ctx.name), ": fallback: ", entry and entry .. ": " or "", ev.message,
        "\n") end
    end
    if (ev.type == "request" or ev.type == "response") and ctx.display and ctx.display.exchange then
      ctx.display:exchange(ev) -- (a batch's creates sent and answered: cli/progress.lua)
    end
    if ev.type == "response" and ev.request_id then -- the last API answer's ids (--json: create's, status's)
      ctx.request_ids = { request_id = ev.request_id, server_request_id = ev.server_request_id }
    end
    if ev.type == "journal_error" then -- (the command then exits 1)
      ctx.journal_error = true
      output.err(args.PROG, " ", tostring(ctx.name), ": error: journal ", tostring(ev.path), ": ", ev.message, "\n")
    end
  end }
  for k, v in pairs(extra or {}) do o[k] = v end
  flag_options(opts, o)
  local ok, client = protect(starvideos.new, o)
  if not ok then usage_error("%s", M.refused(tostring(client))) end
  ctx.client = client -- closed when the command returns (cli/init.lua)
  return client, core
end

return M
