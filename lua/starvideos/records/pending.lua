-- A journal's pending create (sent, its answer never came) settled by hand: `starvideos pending --forget ID`
-- (it made nothing worth keeping: abandoned, its key creates again) or `--adopt ID TASK_ID` (the task the user
-- found it made: recorded created, as its answer would have been, so that its key follows that task and a
-- rerun pays for nothing again).  records/ledger.lua's forget_pending and adopt_pending.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local ipairs, tostring, string_format = ipairs, tostring, string.format

local M = {}

-- The created record of the pending create p, for task id.
local function created(p, id)
  return { event = "created", id = id, ["local"] = p["local"], model = p.model, prompt = p.prompt, out = p.out,
    key = p.key, fp = p.fp, body = p.body, tenant = p.tenant, adopted = true }
end

-- ledger's pending create lid settled (id: the task adopted, else forgotten) with append(ledger, rec, sync):
-- true, or nil, why.
function M.settle(ledger, append, lid, id)
  local list, err = ledger:pending()
  if not list then return nil, err end
  for _, p in ipairs(list) do
    if p["local"] == lid then
      return append(ledger, id and created(p, id) or { event = "abandoned", ["local"] = lid, forgot = true }, true)
    end
  end
  return nil, string_format("no pending create %s in %s (`starvideos pending --journal %s` lists them)",
    tostring(lid), ledger.path, ledger.path)
end

return M
