-- The lists as keep and client:tasks read them, whatever ledger keeps the records (docs/architecture.md, "The ledger
-- interface": its lists): a task carried by resume and keep, every task and create of a ledger as client:tasks
-- lists them.  Loaded at a ledger's first list: a plain client lists nothing.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Rules = require "starvideos.rules"
local Sink = require "starvideos.sink"
local X = require "starvideos.extension"

local type, ipairs, tonumber, math_floor, table_sort = type, ipairs, tonumber, math.floor, table.sort

local M = {}

-- A task as resume and keep carry it (both ledgers' unfinished, a keeper's claims): part, the .part recorded for
-- dest when still there (else nil: a fresh start); from, its owner.
function M.carried(t, dest, from)
  local part = dest and dest ~= "" and core.file_kind(dest .. ".part") == "file" and dest or nil
  local upload = type(t.upload) == "string" and t.upload ~= "" and t.upload or nil
  return { id = t.id, model = t.model, out = t.out, part = part, from = from, upload = upload,
    refs = t.refs ~= "" and t.refs or nil, tenant = t.tenant } -- (its tenant: its events' for client:sse)
end

local function whole(n) return type(n) == "number" and math_floor(n) or nil end -- (cjson reads 5 as 5.0)

-- The extension of point (and key) that describes a sink's state, or false (none installed): looked for once
-- (a listing of many tasks does not search the module path again for each).
local describers = {}
local function describer(point, key)
  local name = X.name(point, key)
  if describers[name] == nil then
    local ext = X.optional(point, key)
    describers[name] = ext and ext.describe or false
  end
  return describers[name]
end

-- A sink's state (its text: the ledger's sink_state) in the words of the rock that keeps it, the extension of
-- point (and key): its describe(text), what a listing shows; nil when none is installed, or none is left.
local function described(text, point, key)
  local describe = type(text) == "string" and text ~= "" and key ~= false and describer(point, key)
  return describe and describe(text) or nil
end

-- A task as client:tasks lists it, from what a ledger folded of its records.
local function entry(t)
  local ended = t.status == "failed" or t.status == "completed"
  local state = t.path and "downloaded" or ended and t.status or "created"
  local row = { id = t.id, key = t.key, out = t.out, state = state, status = t.status, error = t.error,
    created_at = whole(t.created), path = t.path, bytes = whole(t.bytes), sha256 = t.sha256, model = t.model,
    prompt = Rules.head(t.prompt), tenant = t.tenant, cost = tonumber(t.cost), parent = t.parent,
    relation = t.relation, duration = whole(tonumber(t.duration)), body = t.body, reason = t.reason, input = t.input,
    refs = described(t.refs, "references"), uploading = described(t.upload, "sink", X.scheme(t.out) or false) }
  for _, k in ipairs(t.path and Sink.noted(t.path) or {}) do if row[k] == nil then row[k] = t[k] end end
  return row
end

-- Every task and create of st (what a ledger folded: list, pending, settled, abandoned) as client:tasks
-- lists them (both ledgers' tasks), oldest first (stable: in st's order among equals).
function M.tasks(st)
  local list = {}
  for _, t in ipairs(st.list) do list[#list + 1] = entry(t) end
  for _, p in ipairs(st.pending) do
    local lid = p["local"]
    if st.abandoned[lid] or not st.settled[lid] then -- (else its task is listed)
      list[#list + 1] = { ["local"] = lid, key = p.key, out = p.out, model = p.model, created_at = whole(p.time),
        prompt = p.prompt, tenant = p.tenant, state = st.abandoned[lid] and "abandoned" or "pending" }
    end
  end
  for i, t in ipairs(list) do t.seq = i end
  table_sort(list, function(a, b)
    local x, y = a.created_at or 0, b.created_at or 0
    return x < y or (x == y and a.seq < b.seq)
  end)
  for _, t in ipairs(list) do t.seq = nil end
  return list
end

return M
