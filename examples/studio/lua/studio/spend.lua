-- The spend panel (STUDIO_SPEND_LIMIT, docs/studio.md): each limit of the studio's client as one browser may
-- see it, from the library's client:spend{tenant = its tenant}: the key's limits, the models', and its own
-- tenant's (never another tenant's), as the JSON GET /spend answers (studio.app).  The page asks for it again
-- whenever its event stream (the library's client:sse) tells it something: a create of its own answered or
-- refused, a step of a limit it shows said (the library's warning, a key's to every browser's stream).

local cards = require "studio.cards"
local runner = require "studio.runner"

local ipairs = ipairs

local M = {}

-- The entries of list (client:spend's) that tenant may see, each as the page draws it.
function M.view(list, tenant)
  local out = {}
  for _, e in ipairs(list) do
    if e.scope ~= "tenant" or e.tenant == tenant then
      out[#out + 1] = { scope = e.scope, model = e.model, spent = e.spent, reserved = e.reserved, amount = e.amount,
        resets_at = e.resets_at, per = e.limit.per }
    end
  end
  return out
end

-- tenant's panel as JSON ({"spend": null} when the studio has no spend limit), or nil, why.
function M.panel(tenant)
  if not runner.spending() then return '{"spend":null}' end
  local client = runner.client()
  local list, err = client:spend { tenant = tenant }
  client:close()
  if not list then return nil, "the spend limits cannot be read: " .. err.message end
  local view = M.view(list, tenant)
  -- (Debian's cjson has no empty array: an empty list is written here)
  return #view == 0 and '{"spend":[]}' or cards.encode { spend = view }
end

return M
