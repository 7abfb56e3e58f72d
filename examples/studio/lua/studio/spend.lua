-- The spend panel (STUDIO_SPEND_LIMIT, docs/studio.md): each limit of the studio's client as one browser may
-- see it, from the library's client:spend{tenant = its tenant}: the key's limits, the models', and its own
-- tenant's (never another tenant's), as the JSON the event stream sends (studio.app: `event: spend`).  Looked at
-- again when a create was asked, answered or refused (cards.spend_version) or a window ended.

local cards = require "studio.cards"
local runner = require "studio.runner"

local ngx = rawget(_G, "ngx")
local ipairs, setmetatable = ipairs, setmetatable
local HUGE = math.huge

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

local W = {}
W.__index = W

-- A watch of tenant's panel for one event stream, with a client of its own (closed by W:close); nil when the
-- studio has no spend limit.
function M.watch(tenant)
  if not runner.spending() then return nil end
  return setmetatable({ tenant = tenant, client = runner.client(), due = HUGE }, W)
end

-- The panel's JSON when it differs from the one this watch gave last, else nil.
function W:changed()
  local v, now = cards.spend_version(), ngx.now()
  if v == self.seen and now < self.due then return nil end
  self.seen = v
  local list, err = self.client:spend { tenant = self.tenant }
  if not list then
    ngx.log(ngx.ERR, "studio: the spend limits cannot be read: ", err.message)
    self.due = now + 5
    return nil
  end
  local view, due = M.view(list, self.tenant), HUGE
  for _, e in ipairs(view) do
    if e.resets_at and e.resets_at < due then due = e.resets_at end
  end
  self.due = due
  -- (Debian's cjson has no empty array: an empty list is written here)
  local text = #view == 0 and '{"spend":[]}' or cards.encode { spend = view }
  if text == self.text then return nil end
  self.text = text
  return text
end

function W:close()
  self.client:close()
end

return M
