-- client:submit and client:batch (docs/batch.md, "A batch bigger than one host"): a list of params tables recorded
-- as queued in the ledger, each keyed by its out, sending nothing; every keep on that ledger creates them
-- (extras/keep.lua, the queue's rule in queue.lua).  Handed the client's ctx: the ledger and the cfg.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local Job = require "starvideos.job"
local Sink = require "starvideos.sink"
local Queue = require "starvideos.queue"
local config = require "starvideos.config"
local cjson = require("cjson.safe").new()

local type, pairs, tostring, setmetatable, string_format = type, pairs, tostring, setmetatable, string.format
local new_error, argerror = errors.new_error, errors.argerror

local M = {}

M.CHUNK = 500 -- entries a ledger is handed at once (a store: one script each)

-- A ledger every keeper shares, else why not (field store).
local function shared(ledger)
  if ledger.records then return true end
  return nil, new_error("invalid_request", "submit needs a ledger every keeper shares: starvideos.new{store = URL}; "
    .. "without one the queue would die with this process", { field = "store" })
end

-- Entry i of list as the ledger keeps it: {id, key, out, tenant, priority, data}, or nil, err naming it (nothing
-- queued).  An entry's own `priority` is the queue's: taken out of the params the service is sent.
local function entry(ctx, list, i, opts)
  local given = list[i]
  if type(given) ~= "table" then
    argerror(1, "submit", "list of params tables", "a " .. type(given) .. " at [" .. i .. "]", 4)
  end
  local params, priority = {}, opts.priority or Queue.PRIORITY
  for k, v in pairs(given) do if k ~= "priority" then params[k] = v end end
  if given.priority ~= nil then
    local want = config.CALLS.submit.priority(given.priority)
    if want then
      error(string_format("bad option 'priority' to 'submit' (entry %d: %s expected, got %s)", i, want,
        tostring(given.priority)), 4)
    end
    priority = given.priority
  end
  local out = type(opts.out) == "string" and string_format(opts.out, i) or opts.out(i, params)
  if type(out) ~= "string" or out == "" then
    argerror(2, "submit", "out giving a path for each entry", tostring(out) .. " for entry " .. i, 4)
  end
  local job, err = Job.new(ctx, nil, nil, { params = params, out = out }) -- (checked as a run checks it: nothing sent)
  if not job then
    err.index, err.message = i, string_format("entry %d: %s", i, err.message)
    return nil, err
  end
  local key = Sink.key(out) or out
  local data, jerr = cjson.encode { params = params, out = key, tenant = opts.tenant, priority = priority }
  if not data then return nil, new_error("invalid_request", string_format("entry %d: %s", i, tostring(jerr)),
    { field = "params", index = i }) end
  return { id = core.hash(key), key = key, out = key, tenant = opts.tenant, priority = priority, data = data }
end

-- {batch = ID, queued = N, known = M} once every entry is queued (known: the ledger knew its key: not queued
-- again), or nil, err (nothing queued: a bad entry, no shared ledger; io: the ledger failed part way, the entries
-- before it queued, a submit again queues the rest).
function M.submit(ctx, list, opts)
  if opts.out == nil then
    error("bad option 'out' to 'submit' (required: a file name pattern with one %d, or a function(i, params): each "
      .. "entry's out, its key in the queue)", 3)
  end
  local entries, seen = {}, {}
  -- (each entry checked as a run checks it, each out's folder probed once: download.lua's cfg.probed)
  local checks = setmetatable({ cfg = setmetatable({ probed = {} }, { __index = ctx.cfg }) }, { __index = ctx })
  for i = 1, #list do
    local e, eerr = entry(checks, list, i, opts)
    if not e then return nil, eerr end
    if seen[e.id] then
      error(string_format("bad option 'out' to 'submit' (entries %d and %d both write %s)", seen[e.id], i, e.out), 3)
    end
    seen[e.id], entries[i] = i, e
  end
  local ok, err = shared(ctx.ledger)
  if not ok then return nil, err end
  local batch, queued, known = core.random_id(), 0, 0
  for from = 1, #entries, M.CHUNK do
    local part = {}
    for i = from, math.min(#entries, from + M.CHUNK - 1) do part[#part + 1] = entries[i] end
    local got, qerr = ctx.ledger:enqueue(batch, part, #entries)
    if not got then return nil, type(qerr) == "table" and qerr or new_error("io", tostring(qerr),
      { field = ctx.ledger.field, batch = from > 1 and batch or nil }) end
    queued, known = queued + got.queued, known + got.known
  end
  return { batch = batch, queued = queued, known = known }
end

-- A batch's counts {queued, created, saved, failed, total}, or nil, err (an unknown id: invalid_request, field
-- batch).
function M.batch(ctx, id)
  local ok, err = shared(ctx.ledger)
  if not ok then return nil, err end
  local counts, berr = ctx.ledger:batch(id)
  if counts == nil and berr == nil then
    return nil, new_error("invalid_request", string_format("no batch %s in the ledger (%s)", id,
      ctx.ledger.where or ctx.ledger.path or "?"), { field = "batch" })
  end
  if not counts then return nil, type(berr) == "table" and berr or new_error("io", tostring(berr),
    { field = ctx.ledger.field }) end
  return counts
end

return M
