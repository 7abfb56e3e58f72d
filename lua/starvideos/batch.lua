-- client:generate_all (docs/batch.md): a list of params tables run as jobs on the client's
-- loop, each keyed by its file, started one at a time by a feeder (Feeder:advance).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Job = require "starvideos.job"

local now, argerror = core.now, errors.argerror

local B = {}

-- The file of each entry (out: a pattern with one %d, or fn(i, params)); two writing one file raise.
local function outs(list, n, out)
  local paths, seen = {}, {}
  if out == nil then return paths end
  for i = 1, n do
    local params = list[i]
    if type(params) ~= "table" then argerror(1, "generate_all", "list of params tables", "a " .. type(params)
      .. " at [" .. i .. "]", 5) end
    local path = type(out) == "string" and string.format(out, i) or out(i, params)
    if type(path) ~= "string" or path == "" then
      error(string.format("bad option 'out' to 'generate_all' (out(%d, params) returned %s: a file path expected)",
        i, type(path) == "string" and "an empty string" or tostring(path)), 5)
    end
    local abs = core.file_key(path) or path
    if seen[abs] then
      error(string.format("bad option 'out' to 'generate_all' (entries %d and %d both write %s)", seen[abs], i,
        path), 5)
    end
    seen[abs], paths[i] = i, path
  end
  return paths
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
    if known == false then return self.loop:at(self.loop:await_store(self, t), self) end -- (a store asked)
    if job and not known then
      if not self.queued then -- behind the callers waiting now, even those due this very turn
        self.queued = true
        return self.loop:at(math.max(self.budget:queue_end(), t) + 1e-6, self)
      end
      local later = self.budget:token(t, false, self)
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
  self.left.left = self.left.left - (self.n - self.next + 1)
end

local function group_done(group) return group.left == 0 end

-- The batch's counts, and what it tells on_progress after each change.
local function counter(total, on_progress)
  local c = { created = 0, done = 0, failed = 0, total = total }
  function c.tell()
    if on_progress then
      on_progress { type = "batch", created = c.created, done = c.done, failed = c.failed, total = total }
    end
  end
  return c
end

-- A job's spec: its events counted (a task it made or found; its end, which finish reports once).
local function spec_of(i, params, path, opts, c)
  local has_task, user = false, opts.on_progress
  return { params = params, out = path, index = i, interval = opts.interval, timeout = opts.timeout,
    tenant = opts.tenant,
    on_progress = function(ev)
      if user then user(ev) end
      if not has_task and ev.id and (ev.type == "status" or ev.type == "attached") then
        has_task, c.created = true, c.created + 1
        c.tell()
      end
    end,
    on_status = function(job)
      if not job.done then return end
      if job.err then c.failed = c.failed + 1 else c.done = c.done + 1 end
      c.tell()
    end }
end

-- The list of {task=, err=, path=}, in the order of list.
function B.run(ctx, list, opts)
  local n, loop = #list, ctx.loop
  local paths = outs(list, n, opts.out)
  local c = counter(n, opts.on_progress)
  local results, jobs, group = {}, {}, { left = 0 }
  for i = 1, n do -- every entry checked first (params, out)
    local job, err = Job.new(ctx, nil, nil, spec_of(i, list[i], paths[i], opts, c))
    if job then jobs[i], group.left = job, group.left + 1 else results[i], c.failed = { err = err }, c.failed + 1 end
  end
  local timeout = opts.timeout or ctx.cfg.wait_timeout
  local feeder = setmetatable({ loop = loop, budget = ctx.key.bucket, cfg = ctx.cfg, n = n, next = 1, done = false,
    started = {}, left = group, job = nil, queued = false }, Feeder)
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
  loop:drive(group_done, group, nil, sleep)
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

return B
