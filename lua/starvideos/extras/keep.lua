-- Carrying the ledger's tasks to files: `client:resume` and the loop behind
-- `client:keep` (docs/keep-and-fleet.md).  It is handed a ctx: the loop, the
-- budget, the ledger and the client's cfg.

local core = require "starvideos.core"
local config = require "starvideos.config"
local errors = require "starvideos.errors"
local Job = require "starvideos.job"
local Download = require "starvideos.download"
local journal = require "starvideos.records.journal"

local type, ipairs, pairs, tostring, setmetatable, require, string_format, os_date, math_min, math_max =
  type, ipairs, pairs, tostring, setmetatable, require, string.format, os.date, math.min, math.max
local new_error, now = errors.new_error, core.now

local function Notify() return require "starvideos.extras.notify" end

local K = {}

local function keep_dest(t, dir)
  if t.part then return t.part end
  if t.out and Download.check_out(t.out) then return t.out end
  return dir .. "/" .. journal.file_name(t.id) .. ".mp4"
end

local function has_finished(fin) return fin[1] ~= nil end

local function orphan_pending(p, ledger)
  local records = ledger.where and "--store " .. ledger.where or "--journal " .. tostring(ledger.path)
  return { err = new_error("io", string_format("create %s (%s, sent at %s UTC) may have been paid for: its answer "
    .. "never came and its process is gone; keep never sends it again: `starvideos pending %s` lists it",
    tostring(p["local"]), tostring(p.model), type(p.time) == "number" and os_date("!%Y-%m-%d %H:%M:%S", p.time)
      or "?", records), { maybe_created = true, pending = p["local"] }) }
end

function K.resume(ctx, opts)
  local ledger, cfg = ctx.ledger, ctx.cfg
  local list, err = ledger:unfinished()
  if not list then return nil, new_error("io", err, { field = ledger.field }) end
  local dir, jobs = opts.dir or ".", {}
  for i, t in ipairs(list) do
    -- a completed task's URL may have expired: ask for it again first
    jobs[i] = assert(Job.new(ctx, nil, t.id, { interval = opts.interval, timeout = opts.timeout,
      index = i, refresh = true, on_progress = opts.on_progress,
      out = keep_dest({ id = t.id, part = t.out }, dir) }))
  end
  local results = ctx.loop:run(jobs, opts.sleep)
  -- then the webhooks a dead process owed, under a keeper's lease held only a
  -- few seconds: what is left stays owed (the client's own events go on)
  if cfg.notify then
    local keeper, kerr = ledger:keeper()
    if keeper then
      keeper.whole = true -- one look: the whole journal (keep's looks read a slice each)
      local made = Notify().sweep(ctx, keeper)
      Notify().drain(ctx.loop, cfg)
      for _, d in ipairs(made) do d:cancel() end
      keeper:close()
    elseif cfg.on_event then
      cfg.on_event { type = "warning", message = "resume: the webhooks owed were not looked at: " .. tostring(kerr) }
    end
  end
  return results
end

-- Keep until the deadline, the client's end (alive() false) or the worker's.
function K.run(ctx, opts, alive)
  local ledger, cfg, loop = ctx.ledger, ctx.cfg, ctx.loop
  if opts.notify then -- keep's own webhook: its jobs and the owed events it sends go there
    cfg = setmetatable({ notify = config.notify_copy(opts.notify) }, { __index = cfg })
    ctx = { loop = loop, budget = ctx.budget, ledger = ledger, cfg = cfg }
  end
  local keeper, kerr = ledger:keeper()
  if not keeper then return nil, new_error("io", kerr, { field = ledger.field }) end
  local ngx = config.nginx()
  local exiting = ngx and type(ngx.worker) == "table" and ngx.worker.exiting
  local dir, every = opts.dir or ".", math_max(0.1, math_min(5, (opts.lease or cfg.lease) / 6))
  local sleep = opts.sleep or cfg.sleep
  local stop = opts.timeout and now() + opts.timeout
  local results, running, fin, look = {}, {}, {}, now()
  local failure
  while alive() and not (exiting and exiting()) do
    local t = now()
    if stop and t >= stop then break end
    if t >= look then
      local tasks, pendings, behind = ledger:orphans(keeper)
      if not tasks then failure = new_error("io", pendings, { field = ledger.field }); break end
      for _, p in ipairs(pendings) do results[#results + 1] = orphan_pending(p, ledger) end
      -- webhooks a dead process owed (once orphans caught up: a slice a look)
      if not behind and cfg.notify then Notify().sweep(ctx, keeper) end
      for _, task in ipairs(tasks) do
        local i = #results + 1
        local j = assert(Job.new(ctx, nil, task.id, { refresh = true, index = i,
          interval = opts.interval, on_progress = opts.on_progress, finished = fin,
          out = keep_dest(task, dir) }))
        results[i], running[j], keeper.carrying[task.id] = false, true, true
        loop:at(t, j)
      end
      look = behind and t or t + every -- a long journal is read a slice per turn of the drive loop
    end
    local until_ = math_min(look, stop or look, exiting and t + 1 or look)
    loop:drive(has_finished, fin, until_, sleep)
    for k = #fin, 1, -1 do
      local j = fin[k]
      fin[k], running[j], keeper.carrying[j.id] = nil, nil, nil
      results[j.index] = { task = j.task, err = j.err, path = j.path }
      if j.err and j.err.transient then keeper.again[j.id] = now() + cfg.keep_again end
    end
  end
  for j in pairs(running) do -- the deadline: what was left goes on from its .part next time
    j:cancel(true)
    results[j.index] = { task = j.task, err = j.err, path = j.path }
  end
  if cfg.notify then Notify().settle(loop, cfg) end -- a few seconds in flight; the rest stays owed
  keeper:close()
  if failure and not results[1] then return nil, failure end
  return results
end

return K
