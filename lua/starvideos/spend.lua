-- Money caps (spend_limit, docs/spend.md): a limit's window (its shape as an option: spend_option.lua), what a
-- create of a model for a tenant reserves, and the one rule of reserving, settling and releasing (S.RULES), run
-- where create_limit is counted: this process's store, nginx's dict, the journal's records read again, Redis'
-- script.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"

local type, ipairs, tonumber = type, ipairs, tonumber
local string_format, math_floor, math_ceil, math_abs, os_date = string.format, math.floor, math.ceil, math.abs, os.date

local S = {}

S.UNIT = 1e6 -- a price or an amount is counted in millionths: sums of prices as the user wrote them, exactly
S.STEPS = { 50, 80, 100 } -- the percentages of a limit said once per window (a warning)
S.clock = os.time -- the wall clock windows are read on (a spec sets its own)
S.MOST = 1e15 -- (units: a sum below 2^53, exact in a double and in Redis)
local DAY = 86400

-- A price or an amount in units, when it is a whole number of them (as written: 0.4, 1e-6); else nil and the next
-- figure up that is: a ledger never rounds a reservation down (a cap passed) nor an amount up.
local function units(v)
  local u = v * S.UNIT
  local whole = math_floor(u + 0.5)
  if math_abs(u - whole) <= 1e-6 + u * 1e-12 then return whole end
  return nil, math_ceil(u) / S.UNIT
end
S.units = units

-- Days since 1970-01-01 of a civil date (the proleptic Gregorian calendar).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math_floor(y / 400)
  local yoe = y - era * 400
  local doy = math_floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math_floor(yoe / 4) - math_floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- A limit's window at t (off: the calendar's offset, s): its start and end (0, 0: the ledger's life).
function S.window(per, t, off)
  if per == nil then return 0, 0 end
  if per == "month" then
    local d = os_date("!*t", math_floor(t + off))
    local start = days_from_civil(d.year, d.month, 1) * DAY - off
    local y, m = d.year + (d.month == 12 and 1 or 0), d.month % 12 + 1
    return start, days_from_civil(y, m, 1) * DAY - off
  end
  per = per == "day" and DAY or per
  local start = math_floor((t + off) / per) * per - off
  return start, start + per
end

-- The limits of cfg (resolved: cfg.spend) that cover a create of model for tenant (nil: none) at t: the price in
-- units and the spec as the rule reads it ("key@end@amount ..."), with the limits in its order; or nil (none).
function S.covering(cfg, model, tenant, t)
  local limits = cfg.spend
  if not limits then return nil end
  local parts, which = {}, {}
  for _, l in ipairs(limits) do
    local covers = l.scope == "key" or l.scope == "model" and l.model == model
      or l.scope == "tenant" and tenant ~= nil and (l.tenant == nil or l.tenant == tenant)
    if covers then
      local start, ends = S.window(l.per, t, cfg.tz_seconds or 0)
      local key = string_format("%s:%d", l.id, start)
        .. (l.scope == "tenant" and not l.tenant and ":" .. core.hash(tenant) or "")
      parts[#parts + 1] = string_format("%s@%d@%d", key, ends, l.amount)
      which[#which + 1] = { limit = l, key = key, ends = ends, tenant = l.scope == "tenant" and tenant or nil,
        model = model }
    end
  end
  if not parts[1] then return nil end
  local price = cfg.prices[model] or 0
  return units(price) or math_ceil(price * S.UNIT), table.concat(parts, " "), which -- (resolve refused a finer one)
end

-- A create of model's price in cfg.prices (failed: in cfg.failed_prices, a task of it failed), in units (a finer
-- one rounded up), or nil (no price).
function S.units_of(cfg, model, failed)
  local p = cfg[failed and "failed_prices" or "prices"]
  return S.in_units(p and p[model])
end

-- A price (a number, else nil) in units, a finer one rounded up: what a ledger counts of it.
function S.in_units(p)
  if type(p) ~= "number" then return nil end
  return units(p) or math_ceil(p * S.UNIT)
end

-- How cfg's limits count a journal's pending record (rec: its model, tenant and time; price and spec as recorded):
-- a function(rec, price, spec) -> its price and spec, by covering at its time, so that a limit reads what was spent
-- in its window whatever limits the creates were made with (a create recorded without a price: at prices now; one
-- compacted without its model: as recorded); nil without limits.
function S.counts(cfg)
  if not cfg.spend then return nil end
  return function(rec, price, spec)
    local t = tonumber(rec.time)
    if type(rec.model) ~= "string" or not t then return price, spec end
    local now_price, now_spec = S.covering(cfg, rec.model, type(rec.tenant) == "string" and rec.tenant or nil, t)
    return price or now_price, now_spec
  end
end

-- Plain Lua 5.1, as Redis runs it; kv as bucket.lua's (get, set(k, v, ttl), add(k, ttl)).  A spec: "key@end@amount
-- ..." (S.covering's).  spend_over: the first limit a create of `price` would pass -> its index and total, or nil
-- (its 100% said once, when a create is refused before reaching it; none for lid's, reserved already).
-- spend_take: create lid's reservation, counted once however often it is asked (its 'res:<lid>': "r price time
-- spec", written first: a store that refuses it (a full dict) counts nothing, nil), in each limit's total ('sp:')
-- and reserved ('held:'), a tenant's first in a limit of every tenant listed ('who:') -> the steps it crossed,
-- "i:pct ...", each said once a window ('told:').  spend_end: lid's reservation
-- settled: paid (its task made, or maybe: kept in the total) or released (surely not sent), once; to (units): its
-- task known failed, its price in every total become `to` (failed_prices), the difference released, once.
-- spend_told: a step's mark ('told:'), true the first time (S.told: a journal's told record read, records/said.lua).
-- now: the wall clock's, as the windows were read (their ttl).
S.RULES = "local SPEND_STEPS = { " .. table.concat(S.STEPS, ", ") .. " }\n" .. [[
local function spend_parse(text)
  local list = {}
  for k, e, a in string.gmatch(text or '', '(%S+)@(%S+)@(%S+)') do
    list[#list + 1] = { key = k, ends = tonumber(e), amount = tonumber(a) }
  end
  return list
end
local function spend_ttl(s, now)
  if s.ends == 0 then return 315360000 end
  return math.max(s.ends - now, 0) + 86400
end
local function spend_told(kv, s, pct, now) return kv.add('told:' .. s.key .. ':' .. pct, spend_ttl(s, now)) end
local function spend_over(kv, price, text, now, lid)
  if lid and kv.get('res:' .. lid) then return nil end
  for i, s in ipairs(spend_parse(text)) do
    local total = tonumber(kv.get('sp:' .. s.key)) or 0
    if total + price > s.amount then return i, total, spend_told(kv, s, 100, now) end
  end
end
local function spend_add(kv, k, n, ttl)
  local v = (tonumber(kv.get(k)) or 0) + n
  kv.set(k, v > 0 and v or 0, ttl)
end
local function spend_take(kv, lid, price, text, now, tenant)
  if kv.get('res:' .. lid) then return '' end
  local list, most = spend_parse(text), 1
  for _, s in ipairs(list) do most = math.max(most, spend_ttl(s, now)) end
  kv.set('res:' .. lid, 'r ' .. price .. ' ' .. now .. ' ' .. text, most)
  if not kv.get('res:' .. lid) then return nil end
  local crossed = {}
  for i, s in ipairs(list) do
    local ttl = spend_ttl(s, now)
    local before = tonumber(kv.get('sp:' .. s.key)) or 0
    local every = string.match(s.key, '^([^:]+:[^:]+):[^:]+$')
    if every and before == 0 and not kv.get('held:' .. s.key) and tenant and tenant ~= '' then
      local w = kv.get('who:' .. every)
      kv.set('who:' .. every, (w and w .. '\n' or '') .. tenant, ttl)
    end
    spend_add(kv, 'sp:' .. s.key, price, ttl)
    spend_add(kv, 'held:' .. s.key, price, ttl)
    for _, pct in ipairs(SPEND_STEPS) do
      if before * 100 < pct * s.amount and (before + price) * 100 >= pct * s.amount and spend_told(kv, s, pct, now)
      then crossed[#crossed + 1] = i .. ':' .. pct end
    end
  end
  return table.concat(crossed, ' ')
end
local function spend_end(kv, lid, paid, to)
  local r = kv.get('res:' .. lid)
  local state = r and string.sub(r, 1, 1)
  if state ~= 'r' and not (to and state == 's') then return end
  local price, now, text = string.match(r, '^%a (%S+) (%S+) ?(.*)$')
  price, now = tonumber(price), tonumber(now)
  local most = 1
  for _, s in ipairs(spend_parse(text)) do
    local ttl = spend_ttl(s, now)
    if state == 'r' then spend_add(kv, 'held:' .. s.key, -price, ttl) end
    if to then spend_add(kv, 'sp:' .. s.key, to - price, ttl)
    elseif not paid then spend_add(kv, 'sp:' .. s.key, -price, ttl) end
    if ttl > most then most = ttl end
  end
  kv.set('res:' .. lid, (to and 'f ' .. to or (paid and 's ' or 'x ') .. price) .. ' ' .. now .. ' ' .. text, most)
end
]]
local over, take, finish, mark = (rawget(_G, "loadstring") or load)(S.RULES
  .. "return spend_over, spend_take, spend_end, spend_told")()
S.over, S.take, S.finish, S.told = over, take, finish, mark

-- A create refused by limit l (covering's `which` entry w): its total in units, at t; `where`: the store or the
-- journal that counted (nil: this process); told: its 100% said now (spend_over's), to cfg's on_event.
function S.refusal(w, total, t, where, told, cfg)
  if told and cfg then S.tell(cfg, "1:100", { w }, " (a create was refused)") end
  local l, ends = w.limit, w.ends
  local spent, amount = total / S.UNIT, l.amount / S.UNIT
  local price = cfg and cfg.prices and w.model and cfg.prices[w.model]
  if price and price > amount then -- (no window opens for it)
    return nil, errors.new_error("spend_limited", string_format("%s: a create of %s costs %.14g, more than the "
      .. "limit's amount (%.14g): no window lets it through", l.name, w.model, price, amount), { field = "spend_limit",
      limit = l.lim, spent = spent, amount = amount, tenant = w.tenant, model = l.model })
  end
  local wait = ends > 0 and ends - t or nil
  local whose = l.scope == "model" and " of model " .. l.model or w.tenant and string_format(" of tenant %q", w.tenant)
    or " of the key"
  return nil, errors.new_error("spend_limited", string_format("%s: %.14g spent%s %s (at most %.14g%s): the next "
    .. "create is refused%s", l.name, spent, whose, ends > 0 and "in this window" or "in the ledger's life", amount,
    where and ", counted in " .. where or "", wait and string_format(" until %s, in %d s",
    os_date("!%Y-%m-%d %H:%M:%S UTC", ends), math_floor(wait + 0.5)) or " for good (a limit without per)"),
    { field = "spend_limit", limit = l.lim, spent = spent, amount = amount, retry_after = wait, tenant = w.tenant,
      model = l.model })
end

-- Whether a create of model for tenant at t would be refused by what a ledger counts now (list: its spend(tenant);
-- where: the ledger, as refusal names it): nil, or the refusal.  A read, not a reservation: asked before a create
-- puts anything of its own (its local files) where it costs, the reservation still made as it is recorded.
function S.refused(cfg, list, model, tenant, t, where)
  local price, _, which = S.covering(cfg, model, tenant, t)
  for _, w in ipairs(which or {}) do
    for _, r in ipairs(list) do
      local total = r.limit == w.limit.lim and r.tenant == w.tenant and math_floor((r.spent + r.reserved) * S.UNIT
        + 0.5)
      if total and total + price > w.limit.amount then return select(2, S.refusal(w, total, t, where, nil, cfg)) end
    end
  end
end

-- The crossed steps ("i:pct ...", the rule's) of a create's limits (which), said: a warning event each.
function S.tell(cfg, crossed, which, reason)
  for i, pct in (crossed or ""):gmatch("(%d+):(%d+)") do
    local w = which[tonumber(i)]
    local l = w.limit
    local ev = { type = "warning", field = "spend_limit", limit = l.lim, percent = tonumber(pct), tenant = w.tenant,
      message = string_format("%s: %s%% of %.14g reached%s%s%s", l.name, pct, l.amount / S.UNIT,
        l.scope == "model" and " for model " .. l.model or w.tenant and string_format(" for tenant %q", w.tenant)
        or " for the key", w.ends > 0 and " in the window ending " .. os_date("!%Y-%m-%d %H:%M:%S UTC", w.ends) or "",
        reason or "") }
    if cfg.on_event then cfg.on_event(ev) end
    if cfg.on_stream then cfg.on_stream(ev, w.tenant) end -- (the key's event streams, sse.lua: its tenant's, or all)
  end
end

-- The report's moved (S.report's) of a ledger's open pending creates (list: {price, spend, owner, lease}, price
-- and spend as recorded), gone(p): whether p's owner let its lease lapse -> moved(key): the units they reserved in
-- that limit's window, counted spent (maybe paid).
function S.moved(list, gone)
  return function(key)
    local n = 0
    for _, p in ipairs(list) do
      local price = tonumber(p.price)
      if price and type(p.spend) == "string" and p.spend:find(key .. "@", 1, true) and gone(p) then n = n + price end
    end
    return n
  end
end

-- client:spend()'s entries of cfg's limits at t, read from kv (get): {limit, scope, model, tenant, spent, reserved,
-- amount, resets_at}; a limit of every tenant, an entry per tenant that spent in its window (or `tenant`'s only;
-- none yet: one without a tenant, of 0).
-- moved(key): units reserved by a process gone (past its lease), counted spent.
function S.report(cfg, get, t, tenant, moved)
  local out = {}
  for _, l in ipairs(cfg.spend or {}) do
    local start, ends = S.window(l.per, t, cfg.tz_seconds or 0)
    local base, keys = string_format("%s:%d", l.id, start), {}
    if l.scope == "tenant" and not l.tenant then
      local who = tenant and { tenant } or {}
      if not tenant then for name in (get("who:" .. base) or ""):gmatch("[^\n]+") do who[#who + 1] = name end end
      for _, name in ipairs(who) do keys[#keys + 1] = { base .. ":" .. core.hash(name), name } end
      if not who[1] then keys[1] = { base .. ":none" } end -- (no tenant spent yet: an entry of 0)
    else
      keys[1] = { base, l.tenant }
    end
    for _, k in ipairs(keys) do
      local total, held = tonumber(get("sp:" .. k[1])) or 0, tonumber(get("held:" .. k[1])) or 0
      local gone = moved and math.min(moved(k[1]), held) or 0
      out[#out + 1] = { limit = l.lim, scope = l.scope, model = l.model, tenant = k[2], amount = l.amount / S.UNIT,
        spent = (total - held + gone) / S.UNIT, reserved = (held - gone) / S.UNIT, resets_at = ends > 0 and ends
        or nil, window_start = ends > 0 and start or nil }
    end
  end
  return out
end

return S
