-- spend_limit on the store: spend.lua's rule run by the scripts (M.SCRIPT: its kv on the declared keys, the keys a
-- reservation touches: M.keys, the client's), and the store's log of creates (spend:log, by time), which a
-- spend_limit is counted again from: so that a limit reads
-- what the creates of its window spent, whatever limits (or none) they were made with, as a journal's replay reads
-- them (spend.lua's counts).  Plain Lua 5.1 for the store's scripts (fleet/scripts.lua's SPEND, on spend.lua's
-- RULES), and the client's reading of it (spend's report).
--   an entry       "lid units model tenant", scored by the create's time (its window's clock); units '-': made
--                  without a price, counted at the asker's prices (log_terms' "=model:units")
--   spend_log      a create logged as its pending record is written (asked again: the same entry); entries older
--                  than SPEND_KEEP s dropped (config.DEFAULTS.retain, 7 days: as long as a settled task's record)
--   spend_unlog    a create released (surely not sent) taken off
--   spend_recount  each limit of a spec (ask.lua's, with log_terms' "~scope" in its order) counted again before a
--                  create is asked of it: at least what it counted (a window longer than the log: what it holds); a
--                  tenant's first in a limit of every tenant listed ('who:', as spend_take lists it)
--   spend_logged   what entries cost in a limit of scope "k" (the key's), "m" (model's) or "t" (tenant's), in units
--   (M.FAILED)
--   spend_failing  a task known failed (its record's key): its create's reservation and log read, their keys asked
--                  for (needed() after it); spend_failed(f, units): then counted at units (failed_prices), its
--                  reservation (spend.lua's spend_end) and its log's entry (at the reservation's time, else within an
--                  hour of its record's)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local Spend = X.ledger.spend
local core = require "starvideos.core"
local config = X.config

local M = {}

M.RULES = string.format("local SPEND_KEEP = %d\n", config.DEFAULTS.retain) .. [[
local function spend_logged(list, scope, model, tenant, rates)
  local n = 0
  for _, e in ipairs(list) do
    local units, m, t = string.match(e, '^%S+ (%S+) (%S+) ?(.*)$')
    if m and (scope == 'k' or scope == 'm' and m == model or scope == 't' and t ~= '' and t == tenant) then
      n = n + (tonumber(units) or rates[m] or 0)
    end
  end
  return n
end
local function spend_log(log, lid, at, price, model, tenant)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', string.format('(%.6f', at - SPEND_KEEP))
  redis.call('ZADD', log, string.format('%.6f', at), lid .. ' ' .. (price or '-') .. ' ' .. model .. ' '
    .. (tenant or ''))
  redis.call('EXPIRE', log, SPEND_KEEP)
end
local function spend_unlog(log, lid, at)
  for _, e in ipairs(redis.call('ZRANGEBYSCORE', log, at - 1, at + 1)) do
    if string.sub(e, 1, #lid + 1) == lid .. ' ' then redis.call('ZREM', log, e) end
  end
end
local function spend_recount(kv, log, text, now, model, tenant)
  local scopes, rates = {}, {}
  for scope in string.gmatch(text, '~(%a)') do scopes[#scopes + 1] = scope end
  for m, u in string.gmatch(text, '=([^:%s]+):(%d+)') do rates[m] = tonumber(u) end
  for i, s in ipairs(spend_parse(text)) do
    local start = tonumber(string.match(s.key, '^[^:]+:(%-?%d+)')) or 0
    local list = s.ends == 0 and redis.call('ZRANGE', log, 0, -1)
      or redis.call('ZRANGEBYSCORE', log, start, '(' .. s.ends)
    local n, had = spend_logged(list, scopes[i], model, tenant, rates), tonumber(kv.get('sp:' .. s.key)) or 0
    if scopes[i] and n > had then
      local every = string.match(s.key, '^([^:]+:[^:]+):[^:]+$')
      if every and had == 0 and not kv.get('held:' .. s.key) and tenant and tenant ~= '' then
        local w = kv.get('who:' .. every)
        kv.set('who:' .. every, (w and w .. '\n' or '') .. tenant, spend_ttl(s, now))
      end
      kv.set('sp:' .. s.key, n, spend_ttl(s, now))
    end
  end
end
]]
-- (after scripts.lua's SPEND: its spend_kv and spend_need)
M.FAILED = [[
local function spend_failing(task)
  local f = { lid = redis.call('HGET', task, 'local'), task = task }
  local res = f.lid and key('spend:res:' .. f.lid)
  f.r = res and redis.call('GET', res)
  f.text = f.r and string.match(f.r, '^[rs] %S+ %S+ ?(.*)$')
  if f.text then spend_need(f.text, f.lid) end
  f.log = f.lid and key('spend:log')
  return f
end
local function spend_failed(f, units)
  if f.text then spend_end(spend_kv(), f.lid, true, units) end
  local at = tonumber(f.r and string.match(f.r, '^%a %S+ (%S+)'))
  local near = at and 1 or 3600
  at = at or tonumber(redis.call('HGET', f.task, 'time'))
  if not (f.log and at) then return end
  local list = redis.call('ZRANGEBYSCORE', f.log, at - near, at + near, 'WITHSCORES')
  for i = 1, #list - 1, 2 do
    local tail = string.sub(list[i], 1, #f.lid + 1) == f.lid .. ' ' and string.match(list[i], '^%S+ %S+ (.*)$')
    if tail then
      redis.call('ZREM', f.log, list[i])
      redis.call('ZADD', f.log, list[i + 1], f.lid .. ' ' .. string.format('%d', units) .. ' ' .. tail)
    end
  end
end
]]

local logged = (rawget(_G, "loadstring") or load)("local redis\n" .. M.RULES .. "return spend_logged")()

-- What the script reads beside a spec (spend.lua's covering: which) to count its limits again: each limit's scope
-- in the spec's order ("~k", "~m", "~t"), and cfg's prices in units ("=model:units").
function M.log_terms(cfg, which)
  local out, models = {}, {}
  for i, w in ipairs(which or {}) do out[i] = "~" .. w.limit.scope:sub(1, 1) end
  for m in pairs(cfg.prices or {}) do models[#models + 1] = Spend.units_of(cfg, m) and m or nil end
  table.sort(models)
  for _, m in ipairs(models) do out[#out + 1] = string.format("=%s:%d", m, Spend.units_of(cfg, m)) end
  return table.concat(out, " ")
end

-- The store's spend: names at now (get), as its scripts count them (scripts.lua's spend_recount): a limit's total at
-- least what its window's creates cost in the store's log (read once; failed(err) when it cannot be), a tenant who
-- spent there listed.
function M.recounted(self, get, now, failed)
  local cfg, by_id, rates, log = self.cfg, {}, {}, nil
  for _, l in ipairs(cfg.spend or {}) do by_id[l.id] = l end
  for m in pairs(cfg.prices or {}) do rates[m] = Spend.units_of(cfg, m) end
  return function(k)
    local v = get(k)
    local what, id, start, th = k:match("^(%a+):([^:]+):(%-?%d+):?(.*)$")
    local l = by_id[id]
    if not l or what ~= "sp" and what ~= "who" then return v end
    if not log then
      local err
      log, err = self.store:call("ZRANGE", self.prefix .. "spend:log", 0, -1, "WITHSCORES")
      if type(log) ~= "table" then failed(err or "spend:log: not a list"); log = {} end
    end
    local ends, list, names, known, tenant = select(2, Spend.window(l.per, now, cfg.tz_seconds or 0)), {}, {}, {},
      l.tenant
    for name in (what == "who" and v or ""):gmatch("[^\n]+") do known[name] = true; names[#names + 1] = name end
    for i = 1, #log - 1, 2 do
      local t, name = tonumber(log[i + 1]), log[i]:match("^%S+ %S+ %S+ ?(.*)$")
      if t and (ends == 0 or t >= tonumber(start) and t < ends) then
        list[#list + 1] = log[i]
        if name and name ~= "" and not known[name] then known[name] = true; names[#names + 1] = name end
        if th ~= "" and name and core.hash(name) == th then tenant = name end
      end
    end
    if what == "who" then return names[1] and table.concat(names, "\n") or v end
    return math.max(tonumber(v) or 0, logged(list, l.scope:sub(1, 1), l.model, tenant, rates))
  end
end

-- The labels of the keys spend.lua's rule touches for create lid's reservation under a spec ("key@end@amount ...",
-- spend.S.covering's): its res:, and per limit sp:, held:, told: (each step) and who: (a limit of every tenant).
-- One text: the scripts' and the client's (M.keys).
local SPEND_LABELS = [[
local function spend_labels(text, lid, out)
  out = out or {}
  out[#out + 1] = 'spend:res:' .. lid
  for k in string.gmatch(text or '', '(%S+)@%S+@%S+') do
    out[#out + 1], out[#out + 2] = 'spend:sp:' .. k, 'spend:held:' .. k
    for _, pct in ipairs(SPEND_STEPS) do out[#out + 1] = 'spend:told:' .. k .. ':' .. pct end
    local every = string.match(k, '^([^:]+:[^:]+):[^:]+$')
    if every then out[#out + 1] = 'spend:who:' .. every end
  end
  return out
end
]]

-- spend.lua's rule on the store (the scripts' SPEND, fleet/scripts.lua): its kv on the declared keys spend:<name>,
-- values kept as strings (spend_kv());
-- spend_need(text, lid): its keys asked for (key(), before anything is written).
M.SCRIPT = Spend.RULES .. SPEND_LABELS .. M.RULES .. [[
local function spend_kv()
  local function ms(ttl) return math.ceil(ttl * 1000) end
  local function at(k) return declared('spend:' .. k) end
  return {
    get = function(k) return redis.call('GET', at(k)) end,
    set = function(k, v, ttl)
      redis.call('SET', at(k), type(v) == 'string' and v or string.format('%.17g', v), 'PX', ms(ttl))
    end,
    add = function(k, ttl) return redis.call('SET', at(k), '1', 'NX', 'PX', ms(ttl)) ~= false end,
  }
end
local function spend_need(text, lid)
  for _, label in ipairs(spend_labels(text, lid)) do key(label) end
end
-- a reservation's to settle (lid's, read from its res:): its keys asked for
local function spend_end_need(lid)
  local res = key('spend:res:' .. lid)
  local r = res and redis.call('GET', res)
  local text = r and string.match(r, '^r %S+ %S+ ?(.*)$')
  if text then spend_need(text, lid) end
end
local function spend_field(name)
  for i = 9, #ARGV - 1, 2 do if ARGV[i] == name then return ARGV[i + 1] end end
end
]]


-- The client's: the labels of the keys a reservation under spec touches (the scripts' spend_labels), each
-- prefixed with pre, appended to out.
local labels = (rawget(_G, "loadstring") or load)(Spend.RULES .. SPEND_LABELS .. "return spend_labels")()
function M.keys(pre, spec, lid, out)
  for _, label in ipairs(labels(spec, lid)) do out[#out + 1] = pre .. label end
  return out
end

return M
