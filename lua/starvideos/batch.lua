-- client:generate_all (docs/batch.md): a list of params tables run as jobs on the client's
-- loop, each keyed by its file, started one at a time by a feeder (Feeder:advance); and client:plan, what
-- a run of the list would do, decided as the run decides (its jobs' peek at the ledger), sending nothing.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Job = require "starvideos.job"
-- spend.lua, loaded at its first use (a spend limit set, or reservations read back), as the optional layers are
local function Spend() return require "starvideos.spend" end
local Refusal = require "starvideos.refusal"

local now, argerror = core.now, errors.argerror

local B = {}

-- The name option `name` (a function) of `where` gave entry i, checked: a non-empty string, else it raises.
local function named(where, name, i, v, want)
  if type(v) ~= "string" or v == "" then
    error(string.format("bad option '%s' to '%s' (%s(%d, params) returned %s: %s expected)", name, where, name, i,
      type(v) == "string" and "an empty string" or tostring(v), want), 6)
  end
  return v
end

-- The file and the key of each entry (out: a pattern with one %d, or fn(i, params); key: fn(i, params), for the
-- entries without a file); two writing one file, or two of one key, raise (the run would make one task for both).
local function outs(where, list, n, out, key)
  local paths, keys, seen = {}, {}, {}
  for i = 1, n do
    local params = list[i]
    if type(params) ~= "table" then argerror(1, where, "list of params tables", "a " .. type(params)
      .. " at [" .. i .. "]", 5) end
    if key then keys[i] = named(where, "key", i, key(i, params), "a key") end
    local path = out and (type(out) == "string" and string.format(out, i) or named(where, "out", i, out(i, params),
      "a file path"))
    local name = path and (require("starvideos.sink").key(path) or path) or keys[i] -- (job.lua's key of the entry)
    if name and seen[name] then
      error(string.format("bad option '%s' to '%s' (entries %d and %d both %s)", path and "out" or "key", where,
        seen[name], i, path and "write " .. path or string.format("have the key %q", keys[i])), 5)
    end
    if name then seen[name], paths[i] = i, path end
  end
  return paths, keys
end

-- The feeder: a timer object of the loop (advance), cancelled with its client.
local Feeder = {}
Feeder.__index = Feeder

-- Start the next jobs: the ledger's known ones at once (they follow their task, creating
-- nothing), each other once the key's token is taken for it, behind the callers waiting
-- when it first asks (the polls of the jobs started before): files arrive while creates
-- still go out, creates and polls taking turns.
function Feeder:advance(t)
  while self.next <= self.n and not self.done do
    local i = self.next
    local job = self.job or self.make(i, t)
    self.job = job
    local known = job and job:known()
    if known == false then return self.loop:at(self.loop:await(self, t), self) end -- (a store asked)
    if job and not known then
      if not self.queued then -- behind the callers waiting now, even those due this very turn
        self.queued = true
        return self.loop:at(math.max(self.budget:queue_end(self.tenant, t), t) + 1e-6, self)
      end
      local later = self.budget:token(t, false, self, self.tenant)
      if later then return self.loop:at(later, self) end
      job:grant()
    end
    self.next, self.job, self.queued = i + 1, nil, false
    if job then self.started[i] = job; self.loop:at(t, job) end
  end
  self.done = true
end

-- The client closed during the batch: the jobs not started end cancelled.
function Feeder:cancel()
  self.done = true
  self.budget:leave(self)
  self.left.left = self.left.left - (self.n - self.next + 1)
end

-- The batch's counts (refused: the failed that a spend limit refused), and what it tells on_progress after each
-- change.
local function counter(total, on_progress)
  local c = { created = 0, done = 0, failed = 0, cancelled = 0, refused = 0, total = total }
  function c.tell()
    if on_progress then
      on_progress { type = "batch", created = c.created, done = c.done, failed = c.failed, cancelled = c.cancelled,
        refused = c.refused, total = total }
    end
  end
  return c
end

-- A job's spec: its events counted (a task it made or found; its end, which finish reports once).  (opts.attempt,
-- opts.parent: fallback.lua's, a line's key and the task it falls back from.)
local function spec_of(i, params, path, key, opts, c)
  local has_task, user = false, opts.on_progress
  local parent = opts.parent and opts.parent(i)
  return { params = params, out = path, key = key, fresh = opts.fresh, index = i, interval = opts.interval,
    timeout = opts.timeout, tenant = opts.tenant, traceparent = opts.traceparent, resend = opts.resend,
    attempt = opts.attempt and opts.attempt(i), parent = parent, relation = parent and "fallback" or nil,
    on_progress = function(ev)
      if user then user(ev) end
      if not has_task and ev.id and (ev.type == "status" or ev.type == "attached") then
        has_task, c.created = true, c.created + 1
        c.tell()
      end
    end,
    on_status = function(job)
      if not job.done then return end
      if job.state == "cancelled" then -- (its client closed, Ctrl-C: not a failure of its task)
        c.cancelled = c.cancelled + 1
        local sweep = job.loop.sweep -- (Ctrl-C's: the counts told once, when every job is cancelled: interrupt.lua)
        if sweep then sweep[c] = c.tell; return end
      elseif job.err then
        c.failed = c.failed + 1
        if job.err.kind == "spend_limited" then c.refused = c.refused + 1 end -- (of the failed: nothing sent)
      else
        c.done = c.done + 1
      end
      c.tell()
    end }
end

-- The list of {task=, err=, path=}, in the order of list.
function B.run(ctx, list, opts)
  local n, loop = #list, ctx.loop
  local paths, keys = outs("generate_all", list, n, opts.out, opts.key)
  local c = counter(n, opts.on_progress)
  local results, jobs, group = {}, {}, { left = 0 }
  for i = 1, n do -- every entry checked first (params, out)
    local job, err = Job.new(ctx, nil, nil, spec_of(i, list[i], paths[i], keys[i], opts, c))
    if job then jobs[i], group.left = job, group.left + 1 else results[i], c.failed = { err = err }, c.failed + 1 end
  end
  local timeout = opts.timeout or ctx.cfg.wait_timeout
  local feeder = setmetatable({ loop = loop, budget = ctx.key.bucket, cfg = ctx.cfg, n = n, next = 1, done = false,
    started = {}, left = group, job = nil, queued = false, tenant = opts.tenant }, Feeder)
  function feeder.make(i, t)
    local job = jobs[i]
    if not job then return nil end
    local ok, err = job:join(group, t + timeout)
    if ok then return job end
    results[i], group.left, c.failed = { err = err }, group.left - 1, c.failed + 1 -- its folder went meanwhile
    c.tell()
  end
  c.tell()
  loop:at(now(), feeder)
  local sleep = opts.sleep or ctx.cfg.sleep
  loop:drive(loop.group_done, group, nil, sleep)
  loop:settle(sleep)
  for i = 1, n do
    local job = feeder.started[i]
    if job then
      results[i] = { task = job.task, err = job.err, path = job.path, sha256 = job.sha256 }
    elseif not results[i] then
      results[i] = { err = errors.new_error("io", "the batch was cancelled before this entry was started") }
    end
  end
  return results
end

-- A plan's totals (plan.entries each with its action, model and price): creates, downloads, refused (the creates a
-- spend limit would refuse), and by_model[model] = {creates =, cost =} and cost, each cost nil unless every price it
-- adds up is known.
function B.totals(plan)
  local by, cost, creates, downloads, refused = {}, 0, 0, 0, 0
  for _, e in ipairs(plan.entries) do
    if e.reason == "spend_limited" then refused = refused + 1 end
    if e.action == "create" then
      local m = by[e.model] or { creates = 0, cost = 0 }
      by[e.model], m.creates, m.cost = m, m.creates + 1, e.price and m.cost and m.cost + e.price or nil
      creates, cost = creates + 1, e.price and cost and cost + e.price or nil
    elseif e.action == "download" then
      downloads = downloads + 1
    end
  end
  plan.creates, plan.downloads, plan.by_model, plan.cost, plan.refused = creates, downloads, by, cost, refused
  return plan
end

-- The plan's creates walked in order against the spend limits (spend.lua), as the run would reserve them: each
-- create's price added to every limit that covers it, on top of what the ledger counts spent and reserved in the
-- window now (ledger:spend); a create that would pass one is refused (action none, reason spend_limited, the
-- refusal's error; was: its reason before).  A ledger that cannot be read: counted from nothing, plan.spend_error.
local function capped(ctx, plan, tenant)
  local cfg = ctx.cfg
  if not cfg.spend then return plan end
  local counted, err = ctx.ledger:spend(tenant)
  plan.spend_error = not counted and err and tostring(err) or nil
  local held = {} -- (limit's table, tenant) -> units spent and reserved, then each planned create's added
  local function key(lim, who) return tostring(lim) .. "\0" .. (who or "") end
  for _, r in ipairs(counted or {}) do
    held[key(r.limit, r.tenant)] = math.floor((r.spent + r.reserved) * Spend().UNIT + 0.5)
  end
  local t = Spend().clock()
  for _, e in ipairs(plan.entries) do
    local price, _, which = nil, nil, nil
    if e.action == "create" then price, _, which = Spend().covering(cfg, e.model, tenant, t) end
    for _, w in ipairs(which or {}) do
      local total = held[key(w.limit.lim, w.tenant)] or 0
      if total + price > w.limit.amount then
        e.action, e.was, e.reason, e.err = "none", e.reason, "spend_limited", select(2, Spend().refusal(w, total, t))
        break
      end
    end
    if e.action == "create" then
      for _, w in ipairs(which or {}) do
        local k = key(w.limit.lim, w.tenant)
        held[k] = (held[k] or 0) + price
      end
    end
  end
  return plan
end
B.capped = capped -- (a film's creates are counted so too: film.lua)

-- Entry i's plan (job: its job, else err: why it was refused; refused: the refusal its content met before,
-- refusal.lua's): its action (create, download, none), why, and its model, key, file and task id, a create's price
-- (nil: unknown).
local function planned(ctx, i, job, err, refused)
  local e = { index = i, action = "none", reason = "refused", err = err }
  if not job then return e end
  local task, why = job.seen_key, job.seen_why
  local c = job.create or {}
  e.model, e.out, e.key, e.warnings = job.model, job.out, c.want and c.want.key, c.warnings
  if task then
    e.id, e.model, e.err = task.id, task.model or job.model, nil
    e.action, e.reason = task.whole and "none" or "download", task.whole and "saved" or "created before"
  elseif refused then -- (the same content failed for policy or input: nothing sent, but with resend)
    e.reason, e.id, e.err = "refused_before", refused.task and refused.task.id, refused -- (another tenant's: none)
  elseif type(why) ~= "table" then
    e.action, e.id, e.err = "create", job.seen_id, nil
    e.reason = why or (ctx.ledger.records and "no key" or "no ledger")
    e.price = ctx.cfg.prices and ctx.cfg.prices[job.model]
  else
    e.err = why
  end
  return e
end

-- A plan's worst case with fallback models (fallback.lua's): an entry that creates may create one of each fallback
-- model after (e.fallback: the models; e.worst: their prices added to its own, nil when one is unknown);
-- plan.worst = {creates =, cost =} (cost nil when a price is unknown).  The plan.
local function worst(plan, fallback, prices)
  prices = prices or {}
  local creates, cost = 0, 0
  for _, e in ipairs(plan.entries) do
    if e.action == "create" then
      local w = e.price
      for _, m in ipairs(fallback) do w = w and prices[m] and w + prices[m] or nil end
      e.fallback, e.worst = fallback, w
      creates, cost = creates + 1 + #fallback, cost and w and cost + w or nil
    end
  end
  plan.worst = { creates = creates, cost = cost }
  return plan
end

-- What generate_all(list, opts) would do now, sending nothing: each entry's job made as the run makes it, the
-- ledger asked for its key as the run asks it (job:known, the peek; a store's answers awaited on the loop), no
-- token taken, no create, no poll; the creates a spend limit would refuse said so (capped).  {entries = {...},
-- creates =, downloads =, refused =, by_model =, cost =}.
function B.plan(ctx, list, opts)
  local n = #list
  local paths, keys = outs("plan", list, n, opts.out, opts.key)
  local c, jobs, errs, left = counter(n), {}, {}, {}
  for i = 1, n do
    jobs[i], errs[i] = Job.new(ctx, nil, nil, spec_of(i, list[i], paths[i], keys[i], opts, c))
    left[#left + 1] = jobs[i]
  end
  local refused = {} -- (job -> the refusal of its content, or false)
  local function known() -- every peek sent at once, then those not answered asked again; then each refusal
    local still = {}
    for _, job in ipairs(left) do
      local task = job:known()
      if task == nil then refused[job] = Refusal.ask(job) end
      if task == false or refused[job] == false then still[#still + 1] = job end
    end
    left = still
    return still[1] == nil
  end
  ctx.loop:drive(known, nil, nil, opts.sleep or ctx.cfg.sleep)
  local plan = { entries = {} }
  for i = 1, n do plan.entries[i] = planned(ctx, i, jobs[i], errs[i], jobs[i] and refused[jobs[i]]) end
  B.totals(capped(ctx, plan, opts.tenant))
  return opts.fallback and worst(plan, opts.fallback, ctx.cfg.prices) or plan
end

return B
