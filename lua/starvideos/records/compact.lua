-- Compaction of a journal (docs/batch.md).  Its first line is {"event":"compacted","bytes":N,...}
-- (N: the size of what follows), which C.maybe_compact reads.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local journal = require "starvideos.records.journal"
local samples = require "starvideos.records.samples"
local cjson = require("cjson.safe").new()

local io_open, os_time, os_remove, ipairs, pairs, type, tostring =
  io.open, os.time, os.remove, ipairs, pairs, type, tostring
local table_concat, table_sort = table.concat, table.sort

local C = {}

-- Pass 1: what each line is, what each task became (journal.take), at: its first line naming its kind.
local function survey(path)
  local lines, st, stats = {}, journal.new_state(), { before_records = 0, unsettled = 0 }
  local i, f = 0, assert(io_open(path, "rb"))
  for line in f:lines() do
    i = i + 1
    local rec = journal.take(st, line)
    local t = rec and type(rec.id) == "string" and st.by_id[rec.id]
    if line ~= "" then stats.before_records = stats.before_records + 1 end
    if not rec then
      lines[i] = false -- empty, torn or foreign: dropped
    elseif t then
      if not t.at and (rec.event == "created" or rec.event == "sample") then t.at = i end
      lines[i] = t
    elseif rec.event == "pending" and type(rec["local"]) == "string" then
      lines[i] = rec["local"]
    else -- an abandoned create's, or a compaction's (a new one heads the new file): dropped; another's: kept
      lines[i] = rec.event ~= "abandoned" and rec.event ~= "compacted"
    end
  end
  stats.before_bytes, stats.bad = f:seek("end"), st.bad
  f:close()
  return lines, st.by_id, st, stats
end

local function keep_samples(tasks, stats)
  local order = {}
  for _, t in pairs(tasks) do
    t.settled = (t.path ~= nil or t.status == "failed") and not t.refs -- (its reference objects: still to delete)
    if not t.settled then
      stats.unsettled = stats.unsettled + 1
    elseif t.at and type(t.took) == "number" and type(t.model) == "string" then
      order[#order + 1] = t
    end
  end
  table_sort(order, function(a, b) return a.at > b.at end)
  local per_kind = {}
  for _, t in ipairs(order) do t.sample = samples.kept(per_kind, t.model, t.duration, t.resolution) end
end

-- A settled create of the longest window of create_limit and tenant_limit, as they count it: its time and
-- tenant (journal.take reads it settled), and the price it paid in spend_limit's windows (spend.lua's; a limit
-- without a window, "@0@": kept whatever its age) and its model (a limit given later counts it: spend.lua's
-- counts), unless it was abandoned (released); or nil.
local function counted(p, since, abandoned)
  local when = p and tonumber(p.time)
  local paid = p and not abandoned and p.price and p.spend
  if when and (when >= since or paid and p.spend:find("@0@", 1, true)) then
    local price = paid and p.failed and require("starvideos.spend").in_units(p.failed) or p.price -- (failed_prices')
    return cjson.encode { event = "pending", ["local"] = p["local"], time = when, tenant = p.tenant, settled = true,
      price = paid and price or nil, spend = paid and p.spend or nil, model = not abandoned and p.model or nil }
  end
end

-- Whether task t is the one its content's refusal names now (st.refused: journal.lua's).
local function refusal(st, t) return t.addr ~= nil and st.refused[t.addr] == t end

local function rewrite(path, tmp, lines, st, stats)
  local out, i, since = {}, 0, os_time() - config.MAX_PER
  stats.samples, stats.counted = 0, 0
  for line in io.lines(path) do
    i = i + 1
    local what = lines[i] -- true (kept as it is), a pending create's local id, or a task
    local t = type(what) == "table" and what
    local count = type(what) == "string" and st.settled[what] and counted(st.by_local[what], since,
      st.abandoned[what])
    if what == true or (type(what) == "string" and not st.settled[what]) or (t and not t.settled) then
      out[#out + 1] = line
    elseif count then
      out[#out + 1], stats.counted = count, stats.counted + 1
    elseif t and t.at == i and (t.sample or (t.key and t.path) or refusal(st, t)) then -- a keyed file, a refusal
      local addr = refusal(st, t) and t.addr or nil -- (the task its content's refusal names: kept)
      out[#out + 1] = cjson.encode { event = "sample", id = t.id, model = t.model, duration = t.duration,
        resolution = t.resolution, took = t.sample and t.took, within = t.sample and t.within, time = t.created,
        status = t.status, path = t.path, bytes = t.bytes, sha256 = t.sha256, key = t.key, fp = t.fp, body = t.body,
        tenant = t.tenant, cost = t.cost, parent = t.parent, relation = t.relation, addr = addr, reason = t.reason,
        input = t.input, error = addr and t.error }
      stats.samples = stats.samples + 1
    end
  end
  local body = table_concat(out, "\n") .. (out[1] and "\n" or "")
  local f, err = io_open(tmp, "wb")
  if not f then return nil, err end
  local head = cjson.encode { event = "compacted", bytes = #body, records = #out, time = os_time() }
  local ok, werr = f:write(head, "\n", body)
  local closed, cerr = f:close()
  if not ok or not closed then return nil, werr or cerr end
  stats.after_records, stats.after_bytes = #out + 1, #head + 1 + #body
  return true
end

-- compact(path) -> stats | nil, message.  Under the appenders' lock (they wait,
-- and those that opened the old file before the rename reopen the new one).
function C.compact(path)
  local kind = core.file_kind(path)
  local why = kind == "link" and "it is a symbolic link (compact the file it names)"
    or kind ~= "file" and (kind and "it is not a regular file" or "no such file")
  if why then return nil, "cannot compact the journal " .. tostring(path) .. ": " .. why end
  local tmp = path .. ".compact-" .. core.random_id()
  local stats, err = journal.locked(path, function(lock)
    local lines, tasks, state, st = survey(path)
    keep_samples(tasks, st)
    local done, werr = rewrite(path, tmp, lines, state, st)
    if done then done, werr = lock:replace(tmp, path) end
    if not done then return nil, werr end
    return st
  end, true)
  if stats then return stats end
  os_remove(tmp)
  return nil, "cannot compact the journal " .. tostring(path) .. ": " .. tostring(err)
end

-- Only over limit_bytes and twice what the last compaction left (so a journal of unsettled
-- tasks alone is not rewritten on every open); else false.
function C.maybe_compact(path, limit_bytes)
  local f = core.file_kind(path) == "file" and io_open(path, "rb")
  if not f then return false end
  local size = f:seek("end") or 0
  local first = size > limit_bytes and f:seek("set", 0) and f:read(512)
  f:close()
  if not first then return false end
  local head = cjson.decode(first:match("^[^\n]*"))
  local last = type(head) == "table" and head.event == "compacted" and tonumber(head.bytes)
  if last and size < 2 * last then return false end
  return C.compact(path)
end

return C
