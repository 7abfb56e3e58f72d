-- The spend panel (STUDIO_SPEND_LIMIT, docs/studio.md): each limit of the studio's client as one browser may
-- see it, from the library's client:spend{tenant = its tenant}: the key's limits, the models', and its own
-- tenant's (never another tenant's), as the JSON the event stream sends (studio.app: `event: spend`).  Looked at
-- again when a create was asked, answered or refused (cards.spend_version) or a window ended.  The steps of the
-- limits it shows (50%, 80%, 100%), as the library says them, once each, to the streams open then (W:said).

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
  return setmetatable({ tenant = tenant, client = runner.client(), due = HUGE, told = cards.said_count() }, W)
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

-- The steps said since this watch looked last that its tenant may see (the key's and the models' limits, its own
-- tenant's, named as its panel names it: "you (this browser)"), each as the JSON of `event: said`.
function W:said()
  local out, n = {}, cards.said_count()
  for i = self.told + 1, n do
    local s = cards.said(i)
    if s and (s.tenant == nil or s.tenant == self.tenant) then
      local message = s.message
      if s.tenant then
        local at, to = message:find(string.format("for tenant %q", tostring(s.tenant)), 1, true)
        if at then message = message:sub(1, at - 1) .. "for you (this browser)" .. message:sub(to + 1) end
      end
      out[#out + 1] = cards.encode { message = message }
    end
  end
  self.told = n
  return out
end

function W:close()
  self.client:close()
end

return M
