-- The ledger: what a client records about the tasks it pays for, and what it
-- learned from them.  Jobs (job.lua) and the client are handed one; they never
-- touch the journal themselves.  This one keeps its records in a journal file
-- (journal.lua: JSON lines, one write under a lock each); with no journal it
-- records nothing and only keeps the schedule learned in this process.
--
-- The interface a second backend implements (the Redis one comes later):
--
--   L.new(path, cfg[, engine]) -> ledger  path: the journal (nil: records nothing);
--                                       with an engine, learning the schedule
--                                       from it starts at once (learn_more)
--   ledger.records                      true when records are kept (a journal)
--   ledger:before_create(params, lid)   -> true | nil, err: a synced "pending"
--                                       record before a create is sent; a ledger
--                                       that cannot be written stops the create
--   ledger:created(task, params, lid)   -> true | nil, err (kind io, created=true):
--                                       the task's id, synced, once it is known
--   ledger:create_failed(err, params, lid)  a create that failed: "created"
--                                       (uncertain) when an id was read, "abandoned"
--                                       when surely nothing was created, else it
--                                       stays pending (err.pending = lid)
--   ledger:status(id, status, took, within) a task's status changed (a completion
--                                       with how long it took, which teaches the schedule)
--   ledger:downloaded(id, path)         its video is whole at path
--   ledger:part(id, part, path)         a download stopped by close() left `part`
--                                       (for `path`): the next download, resume
--                                       or keep of the task continues it with Range
--   ledger:unfinished() -> list | nil, err   the tasks not yet downloaded nor
--                                       failed: {id=, model=, out=} (out: where a
--                                       .part of it was left, when one still is)
--   ledger:pending() -> list | nil, err the creates whose answer never came
--   ledger:schedule() -> schedule       the learned polling schedule (schedule.lua):
--                                       the key's (engine.lua), which this
--                                       ledger feeds; its own with no engine
--   ledger:learn(kind, model, took, within)  a sample seen in this process
--   ledger:learn_more() -> done         one bounded slice of the journal's
--                                       samples (J.samples' reader, 64 KiB); the
--                                       engine calls it once per drive-loop turn
--                                       until done, never a whole read in a step
--
-- A journal larger than COMPACT_LIMIT (64 MB) is compacted when a client opens
-- it (J.maybe_compact), keeping what resume, pending and the schedule need.

local core = require "starvideos.core"
local journal = require "starvideos.journal"
local options = require "starvideos.options"
local Schedule = require "starvideos.schedule"

local type, ipairs, tostring, setmetatable, string_format, io_open =
  type, ipairs, tostring, setmetatable, string.format, io.open
local new_error = options.new_error
local cjson = require("cjson.safe").new()

local L = {}
L.__index = L

L.COMPACT_LIMIT = 64 * 1024 * 1024 -- bytes: a larger journal is compacted on open
L.SLICE = 65536                    -- bytes of the journal read for samples per drive-loop turn

-- The key of a kind of task in the learned schedule (schedule.lua).
local function kind_of(model, duration, resolution)
  if type(model) ~= "string" then return nil end
  if type(duration) == "number" then duration = string_format("%.14g", duration) end
  return model .. "|" .. tostring(duration or "") .. "|" .. tostring(resolution or "")
end
L.kind_of = kind_of

-- The file name (no folder, no ".mp4") for a task id: journal.lua's injective one.
L.file_name = journal.file_name

function L.new(path, cfg, engine)
  local self = setmetatable({ path = path, records = path ~= nil, cfg = cfg }, L)
  if path then journal.maybe_compact(path, L.COMPACT_LIMIT) end
  -- the key's schedule; its journal read while the first creates and polls go
  -- out, so that the first delays are learned ones
  if engine then self:schedule(engine) end
  return self
end

local function append(self, rec, sync)
  if self.path then return journal.append(self.path, rec, sync) end
  return true
end

function L:before_create(params, lid)
  if not self.path then return true end
  local ok, err = journal.check(self.path)
  if ok then
    ok, err = append(self, { event = "pending", ["local"] = lid, model = params.model,
      prompt_hash = type(params.prompt) == "string" and core.hash(params.prompt) or nil }, true)
  end
  if ok then return true end
  return nil, new_error("io", err .. " (nothing was sent)", { field = "journal" })
end

function L:created(task, params, lid)
  local ok, err = append(self, { event = "created", id = task.id, ["local"] = lid, model = params.model,
    duration = params.duration, resolution = params.resolution, prompt = params.prompt }, true)
  if ok then return true end
  return nil, new_error("io", string_format("task %s was created but %s", task.id, err),
    { task = task, id = task.id, field = "journal", created = true })
end

-- A create that failed, as the core's verdict decided it: `created` (a task
-- may exist and its id was read), else `maybe_created` (one may exist, id
-- unknown: the pending record stands), else nothing was created.
function L:create_failed(err, params, lid)
  if not self.path then return end
  if err.created then
    append(self, { event = "created", id = err.id, ["local"] = lid, model = params.model, prompt = params.prompt,
      uncertain = true }, true)
  elseif not err.maybe_created then
    append(self, { event = "abandoned", ["local"] = lid })
  else
    err.pending = lid
  end
end

function L:status(id, status, took, within)
  if self.path then append(self, { event = "status", id = id, status = status, took = took, within = within }) end
end

function L:downloaded(id, path)
  if self.path then append(self, { event = "downloaded", id = id, path = path }) end
end

function L:part(id, part, path)
  if self.path then return append(self, { event = "part", id = id, part = part, path = path }, true) end
end

-- The .parts recorded for tasks (task id -> the download's path), newest last:
-- only lines that name the event are decoded.
local function parts(path)
  local f = io_open(path, "r")
  local out = {}
  if not f then return out end
  for line in f:lines() do
    if line:find('"event":"part"', 1, true) then
      local rec = cjson.decode(line)
      if type(rec) == "table" and type(rec.id) == "string" and type(rec.path) == "string" then
        out[rec.id] = rec.path
      end
    end
  end
  f:close()
  return out
end

function L:unfinished()
  if not self.path then return nil, "no journal" end
  local list, err = journal.read(self.path)
  if not list then return nil, err end
  local left = parts(self.path)
  local out = {}
  for i, t in ipairs(journal.unfinished(list)) do
    local dest = left[t.id]
    if dest and core.file_kind(dest .. ".part") ~= "file" then dest = nil end -- gone since: a fresh start
    out[i] = { id = t.id, model = t.model, out = dest }
  end
  return out
end

function L:pending()
  if not self.path then return nil, "no journal" end
  local list, err, pending = journal.read(self.path)
  if not list then return nil, err end
  return pending
end

-- ------------------------------------------------------------ the schedule

-- The schedule belongs to the key (engine.lua: E:schedule, one set of samples
-- for every client of the key); the ledger feeds it what its jobs learn and,
-- once per key and journal path (E:first_read), the journal's samples.  A
-- ledger with no engine (one opened only to read records) keeps a schedule of
-- its own.

function L:learn(kind, model, took, within)
  (self.sched or self:schedule()):learn(kind, model, took, within)
end

-- The learned schedule.  The journal's samples are read from the end
-- backwards, one slice per drive-loop turn (learn_more, called by the engine),
-- never all at once inside a step; asked with no engine, all at once.
function L:schedule(engine)
  local s = self.sched
  if s then
    if not engine and self.reader then repeat until self:learn_more() end -- asked outside a drive loop
    return s
  end
  s = engine and engine:schedule(self.cfg) or Schedule.new(self.cfg)
  self.sched = s
  if self.path and (not engine or engine:first_read(self.path)) then
    self.reader = journal.samples(self.path)
    if engine then engine:learning(self) else repeat until self:learn_more() end -- no engine: all now
  end
  return s
end

function L:learn_more()
  local r = self.reader
  if not r then return true end
  local list, done = r:next(L.SLICE)
  local s = self.sched
  for _, t in ipairs(list or {}) do
    if t.took then s:learn(kind_of(t.model, t.duration, t.resolution), t.model, t.took, t.within) end
  end
  if done or not list then self.reader = nil; return true end
  return false
end

return L
