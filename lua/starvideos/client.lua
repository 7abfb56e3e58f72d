-- The client (docs/reference.md): a handle on its key (key.lua: the loop, the bucket) and its own
-- ledger.  A wrong argument raises; what the network or the service did is nil, err.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local errors = require "starvideos.errors"
local Key = require "starvideos.key"
local Loop = require "starvideos.loop"
local Job = require "starvideos.job"
local Told = require "starvideos.told" -- (the key's window of what the jobs told; sse.lua serves it)
local X = require "starvideos.extension"

local new_error, argerror, check = errors.new_error, errors.argerror, config.check
local S = config.CALLS

-- A task id, from an id or a task table; else raises (argument 1 of `where`).
local function task_id(v, where)
  if type(v) == "string" then return v end
  if type(v) == "table" and type(v.id) == "string" then return v.id end
  argerror(1, where, "task id or task table", type(v) == "table" and "a table without an id" or type(v), 4)
end

-- A job's spec: `more` and a call's checked options (Job.new takes those it knows).
local function spec_of(opts, more)
  for k, v in pairs(opts) do more[k] = v end
  return more
end

local Client = {}
Client.__index = Client
local GC = {} -- close's argument when the client is collected

-- The client's ledger (a store's: the ledger point's, by the store URL's kind; else a journal's or the process's
-- memory), and where the key's tokens come from first (the store, else nginx's dict).
local function open_ledger(cfg, loop, key, store)
  local ngx = config.nginx()
  local dict = ngx and not cfg.transport and require("starvideos.nginx.budget").new(ngx, key)
  if store then return store.open(cfg, loop, key, dict, cfg.store_read) end
  if dict then key.bucket:use(dict) end
  return require("starvideos.records.ledger").new(cfg.journal, cfg, loop, key)
end

-- The extensions a client's options ask for, found before anything is made (docs/architecture.md, "Extension
-- points"): the store's ledger, the observer; a rock not installed raises its invalid_request.
local function extensions(cfg)
  local found = {}
  if cfg.store then
    local shown = require("starvideos.store_option").hidden(cfg.store)
    found.store = X.need("ledger", X.store_scheme(cfg.store), "store = " .. shown, "store", 3) -- (never a password)
  end
  local asked = cfg.metrics and "metrics = true" or cfg.trace and "trace = {...}"
  if asked then found.observe = X.need("observe", nil, asked, cfg.metrics and "metrics" or "trace", 3) end
  local ngx = cfg.metrics == nil and not cfg.trace and config.nginx() -- (inside nginx with the dict: on by default)
  if ngx and ngx.shared and ngx.shared[config.DEFAULTS.metrics_dict] then found.observe = X.optional("observe") end
  return found
end

-- The optional layers hooked into the cfg the jobs call (docs/architecture.md#the-layers): the
-- log's on_event; notify's on_done and preflight's on_media loaded at their first call (a job calls
-- on_done when its cfg has a notify: the client's, or keep's own, whose cfg inherits this one);
-- the observer (observe: the extension found) as cfg.observe.  Returns the tracer (trace on), which close flushes.
local function hook(cfg, key, loop, observe)
  if cfg.log then
    local Log = require "starvideos.extras.log"
    cfg.logger = Log.logger(cfg.log, { cfg.api_key, cfg.notify and cfg.notify.secret or nil })
    cfg.on_event = Log.chain(cfg.logger, cfg.on_event)
  end
  cfg.on_done = function(job, err) return require("starvideos.extras.notify").job_done(job, err) end
  cfg.on_media = function(job, t) return require("starvideos.extras.preflight").start(job, t) end
  -- metrics (inside nginx by default with the dict declared) and trace: cfg.observe
  local ngx, metrics = config.nginx(), cfg.metrics
  if metrics == nil then metrics = ngx and ngx.shared and ngx.shared[config.DEFAULTS.metrics_dict] ~= nil end
  cfg.metrics = metrics -- (whether the client counts: what a store's commands and client:metrics() ask)
  local s = cfg.trace and require("starvideos.otel").settings(cfg.trace) -- (OTEL_* where trace gives none)
  if not (observe and (metrics or s)) then return nil end
  local tracer
  cfg.observe, tracer = observe.new(cfg, key, loop, metrics, s, ngx and not cfg.transport and function(xcfg)
    local xkey = Key.for_client(xcfg) -- (inside nginx, a loop of its own on nginx's sockets: a timer's)
    return Loop.for_client(xcfg, xkey, require("starvideos.nginx.transport").new(xcfg, xkey))
  end)
  return tracer
end

-- A spend_limit that nothing durable counts, neither journal nor store (docs/spend.md#what-a-restart-does): inside
-- nginx refused when the client is made (its dict, or a worker's memory, is emptied when nginx stops: a day's cap
-- would let as much again through after a restart); elsewhere the process's, said once as the client is made.
-- A client's ctx (the core's loop, key, ledger, cfg): a rock asks it host.lua's methods, loaded at the first ask.
local CTX = { __index = function(_, k) return require("starvideos.host")[k] end }

local function unkept(cfg) return cfg.spend ~= nil and not (cfg.journal or cfg.store) end
local UNKEPT_NGINX = "bad option 'spend_limit' to 'new' (inside nginx a limit needs journal = PATH (every worker of "
  .. "this host) or store = URL (every host): without either it is counted in nginx's memory, which a restart of "
  .. "nginx empties, letting creates past the limit)"
local UNKEPT = "spend_limit: counted in this process only (no journal or store): another process counts apart, and "
  .. "one started again counts from 0; give journal = PATH or store = URL to keep what was spent"

function Client.new(opts)
  local cfg = config.client(opts)
  if unkept(cfg) and config.nginx() then error(UNKEPT_NGINX, 2) end
  local found = extensions(cfg)
  cfg.api_key_set = cfg.api_key ~= nil
  local key = Key.for_client(cfg)
  -- the transport: the client's own, else nginx's sockets inside nginx (else the loop makes libcurl's)
  local transport = cfg.transport or config.nginx() and require("starvideos.nginx.transport").new(cfg, key)
  local loop = Loop.for_client(cfg, key, transport) -- (making a transport may raise: the key is not joined yet)
  local tracer = hook(cfg, key, loop, found.observe)
  if unkept(cfg) and cfg.on_event then -- (after hook: the log writes it too)
    cfg.on_event { type = "warning", field = "spend_limit", message = UNKEPT }
  end
  cfg.api_key, cfg.transport = nil, nil -- the key lives in the transport only
  local self = setmetatable({ cfg = cfg, base_url = cfg.base_url, journal = cfg.journal, loop = loop, key = key,
    ledger = open_ledger(cfg, loop, key, found.store), finished = {}, tracer = tracer }, Client)
  cfg.on_stream = Told.recorder(Told.window(key, self.ledger)) -- (the jobs' events kept for client:sse's streams)
  key:join(self)
  self.ctx = setmetatable({ loop = loop, key = key, ledger = self.ledger, cfg = cfg, deliveries = {} }, CTX)
  return self
end

-- Cancel this client's jobs (only its own) and let go of its loop; the key's
-- last client closes the transport.  Also when collected, and by <close>.
function Client:close(collected)
  local loop = self.loop
  if not loop then return end
  if self.cfg.notify then require("starvideos.extras.notify").settle(self.ctx, collected == GC and 0 or nil) end
  self.loop = nil
  for _, job in ipairs(loop:jobs_of(self.cfg)) do job:cancel(true) end
  if self.tracer and collected ~= GC then self.tracer:flush() end -- (their spans ended: cancelled)
  if collected ~= GC then Told.flush(self.key, self.ledger) end -- (the events its jobs told: in their window)
  self.ledger:close(collected == GC)
  self.key:leave(self)
  loop:release()
end
Client.__close = Client.close
Client.__gc = function(self) return self:close(GC) end

-- `client.on_event = fn` after new still reaches every job's events (after the log's line).
Client.__newindex = function(self, k, v)
  if k ~= "on_event" then return rawset(self, k, v) end
  local logger = self.cfg.logger
  self.cfg.on_event = logger and require("starvideos.extras.log").chain(logger, v) or v
end

function Client:__tostring()
  return string.format("starvideos client (%s)", self.base_url) -- (core.check_url refuses credentials in it)
end

local function live(self, level)
  if not self.loop then error("the starvideos client is closed", level or 3) end
  return self.loop
end

-- A call's options (schema: else the call's own) checked, a bad one raising, as on a closed client.
local function begin(self, where, opts, schema)
  opts = check(opts, where, schema or S[where])
  live(self, 4)
  return opts
end

-- A job of this client (spec: its own fields, then the call's opts), driven on its loop to its end: its task,
-- or nil, err.
local function run(self, goal, id, opts, spec)
  local job, err = Job.new(self.ctx, goal, id, spec_of(opts, spec))
  local task, jerr = self.loop:run_one(job, err, opts.sleep)
  return task, jerr -- not a tail call: a client used once (new():generate()) lives until its job ends
end

-- Create a task (an invalid one never reaches the network), or find the key's.
function Client:create(params, opts)
  if type(params) ~= "table" then argerror(1, "create", "table", type(params)) end
  return run(self, "created", nil, begin(self, "create", opts), { params = params })
end

-- Validate params and check their reference media (extras/preflight.lua), creating nothing:
-- the notes on what could not be checked (a list, empty when all was), or nil, err.
function Client:check(params)
  if type(params) ~= "table" then argerror(1, "check", "table", type(params)) end
  local job, err = Job.new(self.ctx, "checked", nil, spec_of(begin(self, "check"), { params = params }))
  local _, jerr = self.loop:run_one(job, err)
  if jerr then return nil, jerr end
  return job.notes or {}
end

-- The task as the service sees it now.
function Client:query(id) return run(self, "queried", task_id(id, "query"), begin(self, "query"), {}) end

-- Poll a task until it is completed or failed.
function Client:wait(id_or_task, opts)
  local id = task_id(id_or_task, "wait")
  return run(self, nil, id, begin(self, "wait", opts), { task = type(id_or_task) == "table" and id_or_task or nil })
end

-- Download to a file from a URL, a task with its video_url, or a task id (queried first).
function Client:download(target, path, opts)
  if type(path) ~= "string" or path == "" then argerror(2, "download", "file path", type(path)) end
  opts = begin(self, "download", opts)
  local refused = require("starvideos.sink").refusal(path) -- (before the task is asked for: nothing sent)
  if refused then return nil, refused end
  local spec = spec_of(opts, { out = path, timeout = self.cfg.download_timeout })
  local kind = type(target)
  local id = target -- (a task table's id, nil without one: never the table)
  if kind == "table" then id = target.id end
  if kind == "string" and target:find("^%a[%w+.-]*://") then spec.url = target
  elseif kind == "table" and type(target.video_url) == "string" then spec.task, spec.id = target, id
  elseif type(id) ~= "string" or (kind == "string" and id == "") then
    argerror(1, "download", "task, task id or URL", kind == "table" and "a table without an id" or kind)
  else
    local task, err = self:query(id)
    if not task then return nil, err end
    if task.status ~= "completed" then return nil, new_error("invalid_request", string.format(
      "task %s is %s, not completed: nothing to download yet", id, tostring(task.status)),
      { task = task, id = id, field = "task" }) end
    spec.task, spec.id = task, id
  end
  local job, jerr = Job.new(self.ctx, nil, spec.id, spec)
  local _, err = self.loop:run_one(job, jerr, opts.sleep)
  if err then return nil, err end
  return path, nil, job.sha256 -- (its third value: the second is a failure's)
end

-- Create, wait and (with `out`) download, in one call.
function Client:generate(params, opts)
  if type(params) ~= "table" then argerror(1, "generate", "table", type(params)) end
  opts = begin(self, "generate", opts)
  if opts.fallback then -- (each attempt a generate of its own: fallback.lua)
    local function one(o, s) return run(self, nil, nil, o, s) end
    return require("starvideos.fallback").generate(self, params, opts, one)
  end
  return run(self, nil, nil, opts, { params = params })
end

-- A create from a task of the ledger (lineage.lua's how: again, remix, continue), as generate runs (built: with
-- opts.job, as a job, verb_job.lua).
local function made_from(self, how, task, more, opts)
  local spec, err = require("starvideos.lineage")[how](self, task, more, opts)
  if not spec then return nil, Told.refused(self.cfg, err, opts.tenant) end -- (its failed event, as a job's)
  local made, jerr = run(self, nil, nil, opts, spec)
  if spec.scratch then os.remove(spec.scratch) end -- (a parent's object read back: sent now)
  if made then made.parent, made.relation = spec.parent, spec.relation end
  return made, jerr
end
local function built(self, how, task, more, opts)
  opts = begin(self, how, opts, S.lineage)
  local J = opts.job and require "starvideos.verb_job"
  if J then return J.start(self, made_from, self, how, task, more, J.plain(opts)) end
  return made_from(self, how, task, more, opts)
end
for _, how in ipairs { "again", "remix", "continue" } do -- client:again(task, overrides, opts), remix, continue
  Client[how] = function(self, task, more, opts) return built(self, how, task, more, opts) end
end

-- A film from a storyboard (film.lua): its shots made, each a keyed generate or continue, then joined at opts.out;
-- with opts.job, as a job (verb_job.lua).
function Client:film(shots, opts)
  opts = begin(self, "film", opts)
  local J = opts.job and require "starvideos.verb_job"
  if J then return J.start(self, self.film, self, shots, J.plain(opts)) end
  return require("starvideos.film").film(self, shots, opts)
end

-- Wait for many tasks at once; one failure does not stop the others.
function Client:wait_all(list, opts)
  if type(list) ~= "table" then argerror(1, "wait_all", "list of ids or tasks", type(list)) end
  opts = begin(self, "wait_all", opts)
  if opts.out_dir then -- as generate's out: before anything is polled
    local ok, err = require("starvideos.sink").of(self.cfg, opts.out_dir).check_dir(opts.out_dir, "out_dir", self.cfg)
    if not ok then return nil, err end
  end
  local jobs, file_name = {}, require("starvideos.names").file_name
  for i, v in ipairs(list) do
    local id = task_id(v, "wait_all")
    jobs[i] = assert(Job.new(self.ctx, nil, id, spec_of(opts, { task = type(v) == "table" and v or nil, index = i,
      out = opts.out_dir and (opts.out_dir:gsub("/$", "") .. "/" .. file_name(id) .. ".mp4") })))
  end
  return (self.loop:run(jobs, opts.sleep)) -- (in parentheses: not a tail call, as in run)
end

-- Many generates at once, each keyed by its file (batch.lua).
function Client:generate_all(list, opts)
  if type(list) ~= "table" then argerror(1, "generate_all", "list of params tables", type(list)) end
  opts = begin(self, "generate_all", opts)
  if opts.fallback then return (require("starvideos.fallback").generate_all(self, list, opts)) end -- (a batch a model)
  return (require("starvideos.batch").run(self.ctx, list, opts)) -- (as in wait_all)
end

-- What generate_all(list, opts) would create, download or leave, sending nothing (batch.lua).
function Client:plan(list, opts)
  if type(list) ~= "table" then argerror(1, "plan", "list of params tables", type(list)) end
  return (require("starvideos.batch").plan(self.ctx, list, begin(self, "plan", opts, S.generate_all)))
end

-- Queue a list for every keep of the ledger to create, sending nothing; a batch's counts (submit.lua).
function Client:submit(list, opts)
  if type(list) ~= "table" then argerror(1, "submit", "list of params tables", type(list)) end
  local got, err = require("starvideos.submit").submit(self.ctx, list, begin(self, "submit", opts))
  return got, err
end

function Client:batch(id)
  if type(id) ~= "string" or id == "" then argerror(1, "batch", "a batch id (submit's)", type(id)) end
  live(self)
  local counts, err = require("starvideos.submit").batch(self.ctx, id)
  return counts, err
end

-- The calls on the client's ledger (client_ledger.lua: resume, keep, pending, tasks, spend), loaded at the first
-- one: each puts them all on the class, then is called.
for _, name in ipairs { "resume", "keep", "pending", "tasks", "spend" } do
  Client[name] = function(...)
    require("starvideos.client_ledger")(Client, begin)
    return Client[name](...)
  end
end

-- A job of start or watch, its first step due now (taken by the next step).
local function start(self, opts, params, id, task)
  local j, err = Job.new(self.ctx, nil, id, spec_of(opts, { params = params, task = task, finished = self.finished }))
  if j then self.loop:at(core.now(), j) end
  return j, err
end

-- Start a task as a non-blocking job, moved by `step`.
function Client:start(params, opts)
  if type(params) ~= "table" then argerror(1, "start", "table", type(params)) end
  return start(self, begin(self, "start", opts, S.job), params)
end

-- Follow an existing task as a non-blocking job (see `start`).
function Client:watch(id_or_task, opts)
  local id = task_id(id_or_task, "watch")
  return start(self, begin(self, "watch", opts, S.job), nil, id, type(id_or_task) == "table" and id_or_task or nil)
end

-- Server-Sent Events of the key's tasks (sse.lua): inside nginx's content phase the request answered; else a job.
function Client:sse(opts)
  return require("starvideos.sse").serve(self.ctx, begin(self, "sse", opts), self.finished)
end

local NONE = setmetatable({}, { __newindex = function() error("step's empty result is read-only", 2) end })

-- A client that does not count says so first, in a comment line a scrape skips.
local NOT_COUNTING = "# starvideos: this client does not count (metrics is off): starvideos.new{metrics = true} "
  .. "turns it on (inside nginx: declare lua_shared_dict starvideos_metrics 1m;); the counters below are those of "
  .. "the process's clients that count\n"

-- The metrics in Prometheus's text format: the process's (inside nginx, with the dict, the host's).
function Client:metrics()
  live(self)
  local spend = self.cfg.spend and self:spend() or nil -- (each limit's gauges: spent and amount)
  local text = X.need("observe", nil, "client:metrics()").text(spend)
  if self.cfg.observe and self.cfg.metrics then return text end
  return NOT_COUNTING .. text
end

-- The last rate limit the service's answers said for the key (key.lua's K:limits): {limit, remaining, reset,
-- window, family, retry_after, at = when (wall clock)}, each field as it was said; nil before any was.
function Client:rate_limit()
  local seen = live(self) and self.key.rate_limit
  return seen and config.copy(seen) or nil
end

-- Move the jobs: step(0) does what is ready; a longer step ends once a job finishes.
function Client:step(seconds)
  if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds < 0) then
    argerror(1, "step", "seconds >= 0", tostring(seconds))
  end
  return live(self):step(self.finished, seconds) or NONE
end

return Client
