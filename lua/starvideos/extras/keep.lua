-- Carrying the ledger's tasks to files: `client:resume` and the loop behind `client:keep`
-- (docs/keep-and-fleet.md).  It is handed a ctx: the loop, the key, the ledger and the cfg.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local errors = require "starvideos.errors"
local Job = require "starvideos.job"
local Sink = require "starvideos.sink"
local X = require "starvideos.extension"
local file_name = require("starvideos.names").file_name
local rule = require "starvideos.lease"

local type, ipairs, pairs, next, tostring, setmetatable, require, string_format, os_date, math_min =
  type, ipairs, pairs, next, tostring, setmetatable, require, string.format, os.date, math.min
local new_error, now = errors.new_error, core.now

local function Notify() return require "starvideos.extras.notify" end

-- What a process left in the user's stores, for the journal in dir: the reference objects of ended tasks (the
-- references point's sweep) and what each sink an out or dir names left (an object store's stale uploads).
local function sweep(ctx, dir)
  local refs = X.optional("references")
  if refs and refs.sweep then refs.sweep(ctx) end
  local schemes = { [X.scheme(dir) or ""] = true }
  for _, t in ipairs(ctx.ledger.records and ctx.ledger:tasks() or {}) do
    schemes[X.scheme(t.out) or ""], schemes[X.scheme(t.path) or ""] = true, true
  end
  schemes[""] = nil -- (files: nothing to sweep)
  for scheme in pairs(schemes) do
    local ext = X.optional("sink", scheme)
    if ext and ext.sweep then ext.sweep(ctx, dir, file_name) end
  end
end

local K = {}

-- Where a task's video goes, and which place that is ("out" | "dir"): the .part it left, else
-- the out recorded at its create when writable, else dir/<name>.mp4 (docs/batch.md#resume).
-- An out whose sink is not installed stays its out: the job is refused, naming the rock, never saved elsewhere.
local function keep_dest(t, dir, cfg)
  -- (compared as recorded now: journals of 0.3 recorded both as given, relative)
  if t.part then return t.part, Sink.recorded(t.part) == Sink.recorded(t.out) and "out" or "dir" end
  if t.out and (Sink.refusal(t.out) or Sink.of(cfg, t.out).check_out(t.out, cfg)) then return t.out, "out" end
  return dir:gsub("/$", "") .. "/" .. file_name(t.id) .. ".mp4", "dir"
end

local function result(j, saved_to)
  return { task = j.task, err = j.err, path = j.path, sha256 = j.sha256, saved_to = saved_to }
end

local function orphan_pending(p, ledger)
  local records = ledger.where and "--store " .. ledger.where or "--journal " .. tostring(ledger.path)
  return { err = new_error("io", errors.hint(string_format("create %s (%s, sent at %s UTC) may have been paid for: "
    .. "its answer never came and its process is gone; keep never sends it again: `starvideos pending %s` lists it",
    tostring(p["local"]), tostring(p.model), type(p.time) == "number" and os_date("!%Y-%m-%d %H:%M:%S", p.time)
      or "?", records)), { maybe_created = true, pending = p["local"] }) }
end

function K.resume(ctx, opts)
  local ledger, cfg = ctx.ledger, ctx.cfg
  local dir_ok, derr = Sink.of(cfg, opts.dir).check_dir(opts.dir or ".", "dir", cfg) -- (as generate checks out)
  if not dir_ok then return nil, derr end
  local list, err = ledger:unfinished()
  if not list then return nil, new_error("io", err, { field = ledger.field }) end
  local dir, jobs, saved_to = opts.dir or ".", {}, {}
  local refused = {} -- (index -> why: its sink's or references' rock not installed; nothing sent, nothing recorded)
  for i, t in ipairs(list) do
    local out, job, why
    out, saved_to[i] = keep_dest(t, dir, cfg)
    -- a completed task's URL may have expired: ask for it again first
    job, why = Job.new(ctx, nil, t.id, { interval = opts.interval, timeout = opts.timeout,
      index = i, refresh = true, on_progress = opts.on_progress, out = out, upload = t.upload, refs = t.refs,
      tenant = t.tenant })
    jobs[#jobs + 1], refused[i] = job, why
  end
  local ran, results = ctx.loop:run(jobs, opts.sleep), {} -- {task, err, path}s
  for i = 1, #list do
    results[i] = refused[i] and { err = refused[i], task = { id = list[i].id } } or table.remove(ran, 1)
    results[i].saved_to = saved_to[i]
  end
  sweep(ctx, dir) -- (what a process left in the bucket)
  -- then the webhooks a dead process owed, under a keeper's lease held a few seconds: the rest stays owed
  if cfg.notify then
    local keeper, kerr = ledger:keeper()
    if keeper then
      keeper.whole = true -- one look: the whole journal (keep's looks read a slice each)
      local made = Notify().sweep(ctx, keeper)
      Notify().drain(ctx)
      for _, d in ipairs(made) do d:cancel() end
      keeper:close()
    elseif cfg.on_event then
      cfg.on_event { type = "warning", message = "resume: the webhooks owed were not looked at: " .. tostring(kerr) }
    end
  end
  return results
end

-- What resume (keep: what keep would carry now) would do, sending nothing, claiming nothing: a plan as
-- batch.lua's, of no create: each task a download to where it would go; keep's orphaned pending creates, none.
function K.plan(ctx, opts, keep)
  local ledger, dir, cfg = ctx.ledger, opts.dir or ".", ctx.cfg
  local dir_ok, derr = Sink.of(cfg, dir).check_dir(dir, "dir", cfg)
  if not dir_ok then return nil, derr end
  local list, pendings
  if keep then list, pendings = ledger:keeper(true):orphaned() else list, pendings = ledger:unfinished() end
  if not list then return nil, new_error("io", pendings, { field = ledger.field }) end
  local entries = {}
  for i, t in ipairs(list) do
    local out, saved_to = keep_dest(t, dir, cfg)
    entries[i] = { index = i, action = "download", reason = keep and "orphaned" or "unfinished", id = t.id,
      model = t.model, out = out, saved_to = saved_to, from = t.from }
  end
  for _, p in ipairs(keep and pendings or {}) do
    entries[#entries + 1] = { index = #entries + 1, action = "none", reason = "pending", model = p.model,
      ["local"] = p["local"], err = orphan_pending(p, ledger).err }
  end
  return require("starvideos.batch").totals { entries = entries }
end

-- The tasks a look claimed, each a job started now, its claim an event (the log's info line).
local function carry(ctx, st, opts, tasks, t)
  local on_event, on_progress = ctx.cfg.on_event, opts.on_progress
  for _, task in ipairs(tasks) do
    local i = #st.results + 1
    local out, saved_to = keep_dest(task, st.dir, ctx.cfg)
    local j, why = Job.new(ctx, nil, task.id, { refresh = true, index = i, interval = opts.interval,
      on_progress = on_progress, finished = st.fin, out = out, upload = task.upload, refs = task.refs,
      tenant = task.tenant })
    if j then
      st.results[i], st.running[j], st.saved_to[j], st.keeper.carrying[task.id] = false, true, saved_to, true
      local ev = { type = "claim", id = task.id, from = task.from, path = out, saved_to = saved_to }
      if on_event then on_event(ev) end
      if on_progress then on_progress(ev) end
      ctx.loop:at(t, j)
    else -- (its rock not installed: refused, nothing sent; the claim lapses with the keeper's lease)
      st.results[i] = { err = why, task = { id = task.id }, saved_to = saved_to }
    end
  end
end

-- The queued entries (client:submit's), one claimed at a time while none of this keep's waits for its create, by
-- priority and the tenants' weights (queue.lua's rule, run where the queue is kept): each a generate to its out, as
-- generate_all's entry would be (its key its out: never created twice).  A create a limit refused, nothing sent, goes
-- back to the queue for the next keeper, and this one claims again after the refusal's wait.
local function take_queued(ctx, st, opts, t)
  if st.creating or t < st.queue_at or not st.keeper then return end
  local e, err = st.keeper:queued(ctx.cfg.tenant_weights)
  if e == nil then
    st.queue_at = t + st.every
    if err and ctx.cfg.on_event then ctx.cfg.on_event { type = "warning", message = "keep: the queue: " .. err } end
    return
  end
  if not e then st.queue_at, st.drained = t + st.every, true; return end -- (none queued now)
  local i = #st.results + 1
  local j, why
  j, why = Job.new(ctx, nil, nil, { params = e.params, out = e.out, tenant = e.tenant, index = i,
    interval = opts.interval, finished = st.fin, on_progress = function(ev)
      if opts.on_progress then opts.on_progress(ev) end
      if st.creating == j and ev.id and (ev.type == "status" or ev.type == "attached") then -- (its create answered)
        st.creating, st.made = nil, true
        st.keeper:queue_state(e, "d")
      end
    end })
  if not j then -- (its params or out refused here: failed for good, nothing sent)
    st.results[i] = { err = why }
    st.keeper:queue_state(e, "f")
    return take_queued(ctx, st, opts, t)
  end
  st.results[i], st.running[j], st.queued[j], st.creating = false, true, e, j
  ctx.loop:at(t, j)
end

-- A queued entry's job ended: its state in the queue; one a limit refused before anything was sent goes back.
local function queued_end(ctx, st, j, e)
  if st.creating == j then st.creating = nil end
  local err = j.err
  if not j.id and err and not err.maybe_created and (err.kind == "rate_limited" or err.kind == "spend_limited"
      or err.kind == "io") then
    st.keeper:queue_state(e, "q")
    st.queue_at = now() + (err.retry_after or st.every)
  else
    st.keeper:queue_state(e, (err or not j.path) and "f" or "s")
  end
  if ctx.cfg.on_event and err then
    ctx.cfg.on_event { type = "warning", message = string_format("keep: queued %s: %s", e.out, tostring(err)) }
  end
end

local function ready(st) return st.fin[1] ~= nil or st.made end

-- One look at the ledger (the keeper made at the first): its orphans claimed, the pendings of dead
-- processes reported, owed webhooks swept.  One that failed (the store unreachable...) is a
-- warning, and another look later (from `every` doubling to 30 s): keep never ends on it.
local function look_at(ctx, st, opts, t)
  local ledger, cfg, tasks, pendings, behind = ctx.ledger, ctx.cfg, nil, nil, nil
  if not st.keeper then st.keeper, pendings = ledger:keeper() end -- (pendings: why, on a failure)
  if st.keeper then tasks, pendings, behind = st.keeper:orphans() end
  if not tasks then
    st.failure = new_error("io", "keep: the look at the ledger failed: " .. tostring(pendings),
      { field = ledger.field })
    st.backoff = math_min(30, st.backoff and st.backoff * 2 or st.every)
    st.look = t + st.backoff
    if cfg.on_event then
      cfg.on_event { type = "warning", message = string_format("%s; looking again in %.3g s", st.failure.message,
        st.backoff) }
    end
    return
  end
  st.backoff, st.seen = nil, true
  for _, p in ipairs(pendings) do st.results[#st.results + 1] = orphan_pending(p, ledger) end
  -- webhooks a dead process owed (once orphans caught up: a slice a look)
  if not behind and cfg.notify then Notify().sweep(ctx, st.keeper) end
  carry(ctx, st, opts, tasks, t)
  st.look = behind and t or t + st.every -- a long journal is read a slice per turn of the drive loop
  if not (behind or st.looked) then -- (once: what resume sweeps too)
    sweep(ctx, st.dir)
  end
  st.looked = st.looked or not behind
end

-- What a keep once left under another process's live lease (a process killed a moment ago lets go of its tasks
-- only when its lease lapses), said as a warning with the counts (leased: an onlooker's, the ledger's
-- keeper(true):leased()): its end is no "every task carried".
local function tell_leased(ctx)
  local on_event, ledger = ctx.cfg.on_event, ctx.ledger
  local leased = on_event and ledger:keeper(true):leased()
  if not (leased and leased.tasks > 0) then return end
  local n, owners = leased.tasks, leased.owners
  local one = owners == 1
  local when = leased.last and string_format("which lapse%s in %.3g s: keep once again after that", one and "s" or "",
    leased.last) or "which keep takes once " .. (one and "that process ends" or "those processes end")
  on_event { type = "warning", leased = leased, message = string_format("keep once: %d task%s left under the live "
    .. "lease of %d process%s, %s", n, n == 1 and "" or "s", owners, one and "" or "es", when) }
end

-- Keep until the deadline or the client's (alive() false) or worker's end; once: the first look's tasks.
function K.run(ctx, opts, alive)
  local cfg, loop = ctx.cfg, ctx.loop
  local dir_ok, derr = Sink.of(cfg, opts.dir).check_dir(opts.dir or ".", "dir", cfg)
  if not dir_ok then return nil, derr end
  if opts.notify then -- keep's own webhook: its jobs and the owed events it sends go there
    cfg = setmetatable({ notify = config.copy(opts.notify) }, { __index = cfg })
    ctx = setmetatable({ loop = loop, key = ctx.key, ledger = ctx.ledger, cfg = cfg, deliveries = {} },
      getmetatable(ctx)) -- (a client's ctx: host.lua's methods)
  end
  local ngx = config.nginx()
  local exiting = ngx and type(ngx.worker) == "table" and ngx.worker.exiting
  local sleep = opts.sleep or cfg.sleep
  local stop = opts.timeout and now() + opts.timeout
  local st = { keeper = false, dir = opts.dir or ".", results = {}, running = {}, saved_to = {}, fin = {},
    look = now(), every = rule.look(opts.lease or cfg.lease), queued = {}, queue_at = 0, creating = nil,
    made = false, drained = false }
  while alive() and not (exiting and exiting()) do
    local t = now()
    if stop and t >= stop then break end
    if t >= st.look and not (opts.once and st.looked) then look_at(ctx, st, opts, t) end
    if st.looked then st.made = false; take_queued(ctx, st, opts, t) end
    if opts.once and st.looked and st.drained and not next(st.running) then break end
    local wake = st.look -- (and the next claim, while none of its creates waits)
    if st.keeper and st.looked and not st.creating then wake = math_min(wake, math.max(st.queue_at, t)) end
    loop:drive(ready, st, math_min(wake, stop or wake, exiting and t + 1 or wake), sleep)
    for k = #st.fin, 1, -1 do
      local j = st.fin[k]
      st.fin[k], st.running[j] = nil, nil
      if j.id then st.keeper.carrying[j.id] = nil end
      st.results[j.index] = result(j, st.saved_to[j])
      if st.queued[j] then queued_end(ctx, st, j, st.queued[j]); st.queued[j] = nil
      elseif j.err and j.err.transient then st.keeper.again[j.id] = now() + cfg.keep_again end
    end
  end
  for j in pairs(st.running) do -- the deadline: what was left goes on from its .part next time
    j:cancel(true)
    st.results[j.index] = result(j, st.saved_to[j])
  end
  if cfg.notify then Notify().settle(ctx) end -- a few seconds in flight; the rest stays owed
  if st.keeper then st.keeper:close() end
  if not st.seen and st.failure then return nil, st.failure end -- no look could be made: the last failure says why
  if opts.once then tell_leased(ctx) end
  return st.results
end

return K
