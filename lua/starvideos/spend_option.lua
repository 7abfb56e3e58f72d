-- spend_limit and tz_offset as options (docs/spend.md): a limit's shape checked (config.lua's check), the calendar's
-- offset read, and the client's limits resolved against its prices, each with its id (what a ledger counts it by);
-- the money rule itself is spend.lua's.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local Spend = require "starvideos.spend"

local type, ipairs, pairs, tostring, tonumber, next, select = type, ipairs, pairs, tostring, tonumber, next, select
local string_format, math_floor = string.format, math.floor
local units, MOST, DAY = Spend.units, Spend.MOST, 86400

local S = {}

local function show(v) return type(v) == "string" and string_format("%q", v) or tostring(v) end

local function model_names()
  local names = {}
  for name in pairs(core.models) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

local FIELDS = { amount = true, per = true, scope = true, model = true, tenant = true }

-- One limit's shape (name: where it is, "spend_limit[2]"): nil, or what is wrong with it.
local function check_one(v, name)
  if type(v) ~= "table" then
    return string_format('%s: a table {amount = A, per = seconds | "day" | "month", scope = "key" | "tenant" | '
      .. '"model", ...} expected, got %s', name, show(v))
  end
  for k in pairs(v) do
    if not FIELDS[k] then return string_format("%s.%s: unknown field (amount, per, scope, model, tenant)", name,
      tostring(k)) end
  end
  local a = v.amount
  if type(a) ~= "number" or a ~= a or a < 0 or a >= MOST / Spend.UNIT then
    return string_format("%s.amount: a finite amount >= 0 expected, got %s", name, show(a))
  end
  if not units(a) then
    return string_format("%s.amount: %.14g is finer than the ledger's unit: a limit counts whole millionths "
      .. "(0.000001); give %.14g or %.14g", name, a, math_floor(a * Spend.UNIT) / Spend.UNIT, select(2, units(a)))
  end
  local per = v.per
  if per ~= nil and per ~= "day" and per ~= "month" and (type(per) ~= "number" or per ~= per or per < 1
    or per > 366 * DAY or per ~= math_floor(per)) then
    return string_format('%s.per: a whole number of seconds from 1 to 31622400, "day" or "month" expected, got %s',
      name, show(per))
  end
  local scope = v.scope == nil and "key" or v.scope
  if scope ~= "key" and scope ~= "tenant" and scope ~= "model" then
    return string_format('%s.scope: "key", "tenant" or "model" expected, got %s', name, show(v.scope))
  end
  if (scope == "model") ~= (v.model ~= nil) then
    return string_format("%s.model: %s", name, scope == "model" and "a model's name expected for scope \"model\""
      or "only for scope \"model\"")
  end
  if v.model ~= nil and (type(v.model) ~= "string" or not core.models[v.model]) then
    return string_format("%s.model: not a model (%s), got %s", name, model_names(), show(v.model))
  end
  if v.tenant ~= nil then
    if scope ~= "tenant" then return string_format('%s.tenant: only for scope "tenant"', name) end
    local t = v.tenant
    if type(t) ~= "string" or t == "" or #t > 200 or t:find("[%c\127]") then
      return string_format("%s.tenant: a tenant name (1 to 200 bytes, no control characters) expected, got %s",
        name, show(t))
    end
  end
end

-- spend_limit's option check (config.lua's): one limit or a list of them -> nil, or the message and true.
function S.check(v)
  if type(v) ~= "table" then return "spend_limit: a limit {amount = A, ...} or a list of them expected, got "
    .. show(v), true end
  local single = next(v) == nil
  for k in pairs(v) do single = single or FIELDS[k] ~= nil end
  if single then
    local bad = check_one(v, "spend_limit")
    return bad, bad and true or nil
  end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k ~= math_floor(k) or k < 1 or k > n then
      return string_format("spend_limit[%s]: a list of limits has only the keys 1 to %d", show(k), n), true
    end
  end
  for i, one in ipairs(v) do
    local bad = check_one(one, "spend_limit[" .. i .. "]")
    if bad then return bad, true end
  end
end

-- tz_offset: the calendar's offset from UTC of days and months, hours (5.5) or "+HH:MM" -> seconds, or nil, why.
function S.offset(v)
  if v == nil then return 0 end
  local secs = type(v) == "number" and v == v and v * 3600
  if type(v) == "string" then
    local sign, h, m = v:match("^([+-])(%d%d):(%d%d)$")
    secs = sign and tonumber(m) < 60 and (tonumber(h) * 3600 + tonumber(m) * 60) * (sign == "-" and -1 or 1)
  end
  if not secs or secs < -12 * 3600 or secs > 14 * 3600 then
    return nil, "hours from -12 to 14 (5.5) or \"+HH:MM\" expected, got " .. show(v)
  end
  return math_floor(secs)
end

-- The client's limits (cfg.spend_limit checked, cfg.prices), each {lim (the user's table), scope, model, tenant,
-- per, amount (in units), id}; raises, naming the field, a limit that needs a price the table has not.
function S.resolve(cfg, level)
  local given = cfg.spend_limit
  if given == nil then return nil end
  local list, off = given.amount ~= nil and { given } or given, cfg.tz_seconds or 0
  local prices, out = cfg.prices or {}, {}
  for i, lim in ipairs(list) do
    local name = given.amount ~= nil and "spend_limit" or "spend_limit[" .. i .. "]"
    local scope = lim.scope or "key"
    local need = lim.model and { lim.model } or {}
    if not lim.model then for m in pairs(core.models) do need[#need + 1] = m end table.sort(need) end
    for _, m in ipairs(need) do
      if prices[m] == nil then
        error(string.format("bad option 'spend_limit' to 'new' (%s: a create of %s cannot be counted: prices has "
          .. "no price for %s; give prices.%s%s)", name, m, m, m,
          lim.model and "" or ", or a limit of scope \"model\""), level)
      end
      local _, up = units(prices[m])
      if up then
        error(string.format("bad option 'spend_limit' to 'new' (%s: a create of %s cannot be counted exactly: its "
          .. "price, %.14g, is finer than the ledger's unit, a millionth (0.000001); give prices.%s, rounded up to a "
          .. "millionth: %.14g)", name, m, prices[m], m, up), level)
      end
    end
    local per = type(lim.per) == "number" and math_floor(lim.per) or lim.per -- (JSON's 86400.0: 86400)
    local id = core.hash(table.concat({ scope, lim.model or "", lim.tenant or "",
      type(per) == "number" and string_format("%d", per) or per or "life", string_format("%d", off) }, "\0"))
    for j = 1, i - 1 do
      if out[j].id == id then
        error(string.format("bad option 'spend_limit' to 'new' (%s: the same scope, model, tenant and per as "
          .. "spend_limit[%d]: one count for both; keep one)", name, j), level)
      end
    end
    out[i] = { lim = lim, scope = scope, model = lim.model, tenant = lim.tenant, per = per, name = name,
      amount = units(lim.amount), id = id }
  end
  return out
end

return S
