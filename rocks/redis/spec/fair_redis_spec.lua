-- The fair share of the key's budget in Redis (fleet/budget.lua's budget_token script): the cases every place that
-- keeps the budget passes (spec/support/fair_cases.lua), run on the script's very text, here in this VM with a
-- stand-in of Redis' commands on the cases' clock (TIME, GET, SET PX), which answers a missing key as Redis gives it
-- to a script: false, not nil (issue 82: read as present, no tenant was ever counted as waiting, and tenant B's
-- creates waited behind A's 200 as long as A asked).
local Bucket = require "starvideos.bucket"
local Store = require "starvideos.fleet.store"
local F = require "starvideos.fleet.budget"
local Cases = require "spec.support.fair_cases"

local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- The script as Redis runs it: KEYS and ARGV its globals, redis.call on the stand-in's keys.
local function script(name, db, clock)
  local redis = { error_reply = function(s) return { err = s } end }
  function redis.call(cmd, k, v, px, ms)
    local now = clock()
    if cmd == "TIME" then
      local s = math.floor(now)
      return { string.format("%d", s), string.format("%d", math.floor((now - s) * 1e6)) }
    elseif cmd == "GET" then
      local e = db[k]
      if e and e[2] > now then return e[1] end
      return false -- (Redis' nil bulk reply, in a script)
    elseif cmd == "SET" then
      assert(px == "PX" and type(ms) == "number", "SET " .. k .. " without PX")
      db[k] = { v, now + ms / 1000 }
      return { ok = "OK" }
    end
    error("the stand-in of Redis has no " .. tostring(cmd))
  end
  local env = setmetatable({ redis = redis, unpack = unpack }, { __index = _G })
  local text = Store.script_text(name)
  local setfenv = rawget(_G, "setfenv")
  local chunk = setfenv and setfenv(assert(rawget(_G, "loadstring")(text, "=" .. name)), env)
    or assert(load(text, "=" .. name, "t", env))
  return function(keys, argv)
    env.KEYS, env.ARGV = keys, { tostring(#keys), unpack(argv) }
    return chunk()
  end
end

local function in_redis(rate)
  local t = 0
  local token = script("budget_token", {}, function() return t end)
  return function(now, tenant)
    t = now
    local id = Bucket.tenant_id(tenant)
    local v = token(F.keys("k-fair", id), { string.format("%.17g", rate), id })
    local wait = assert(tonumber(v:match("^h?(.*)$")), v)
    if wait > 0 then return now + wait end
  end
end

Cases.run("Redis' script", in_redis, { describe = describe, it = it, assert = assert }, "redis")
