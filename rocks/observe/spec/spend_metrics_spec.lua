-- spend_limit's gauges (observe/metrics.lua's text(spend), from client:spend()'s list): starvideos_spend and
-- starvideos_spend_limit, a client with limits of every scope making creates against the emulator.  Labels only
-- where bounded: scope; model for scope model; tenant for a limit of one tenant (a limit of every tenant is one
-- series without it, its tenant nearest the amount); spent without the reservations.

local helper = require "spec.helper"
local starvideos = require "starvideos"
local Spend = require "starvideos.spend"
local Metrics = require "starvideos.observe.metrics"

local PRICES = { videos = 0.5, videos_fast = 0.25, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 1 }
local SPEND = { "starvideos_spend", "starvideos_spend_limit" }

-- The lines of the spend families in text: their samples, "name{labels} value", sorted; with comments, their HELP
-- and TYPE lines too (as "TYPE name type"), in their place.
local function spend_samples(text, comments)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local name = line:match("^([%w_]+)[{ ]")
    if name == SPEND[1] or name == SPEND[2] then out[#out + 1] = line end
    local kind, of, rest = line:match("^# (%u+) ([%w_]+) (%S+)")
    if comments and (of == SPEND[1] or of == SPEND[2]) then out[#out + 1] = kind .. " " .. of .. " " .. rest end
  end
  if not comments then table.sort(out) end
  return out
end

describe("spend_limit's gauges", function()
  local emu, real_clock
  setup(function()
    emu = helper.emulator { queued = 0, processing = 0.2 }
    real_clock = Spend.clock
    local now = os.time()
    Spend.clock = function() return now end -- (the day's window fixed: no turn of the day mid-spec)
  end)
  teardown(function()
    Spend.clock = real_clock
    if emu then emu:stop() end
    helper.cleanup()
  end)

  local function client(opts)
    local o = { api_key = emu.key, base_url = emu.url, metrics = true, prices = PRICES, interval = 0.05 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return starvideos.new(o)
  end

  it("a gauge of spent and one of the amount per limit: model only for scope model, tenant only for a limit of one "
    .. "tenant; a limit of every tenant one series, its tenant's that spent most", function()
    local c = client { spend_limit = {
      { amount = 100, per = "month" },
      { amount = 10, per = "day" }, -- (the key's too: the day's, nearer its amount, is the series)
      { amount = 2, per = "day", scope = "model", model = "videos_fast" },
      { amount = 3, per = "day", scope = "tenant" },
      { amount = 5, scope = "tenant", tenant = 'al"ice' },
    } }
    for _, one in ipairs {
      { "videos", 'al"ice' }, { "videos", 'al"ice' },
      { "videos_fast", "bob" }, { "videos", "bob" }, { "videos", "bob" },
      { "videos_fast" },
    } do
      assert(c:create({ model = one[1], prompt = "a cat", duration = 5 }, { tenant = one[2] }))
    end
    local text = c:metrics()
    c:close()
    assert.are.same({
      'starvideos_spend_limit{scope="key"} 10',
      'starvideos_spend_limit{scope="model",model="videos_fast"} 2',
      'starvideos_spend_limit{scope="tenant",tenant="al\\"ice"} 5',
      'starvideos_spend_limit{scope="tenant"} 3',
      'starvideos_spend{scope="key"} 2.5',
      'starvideos_spend{scope="model",model="videos_fast"} 0.5',
      'starvideos_spend{scope="tenant",tenant="al\\"ice"} 1',
      'starvideos_spend{scope="tenant"} 1.25',
    }, spend_samples(text))
  end)

  it("spent without the reservations; an amount of 0 is never the one shown; no samples without spend_limit",
    function()
    local m = Metrics.new()
    local key = { amount = 4 }
    local text = m:text {
      { limit = key, scope = "key", spent = 1, reserved = 2, amount = 4 },
      { limit = { amount = 0 }, scope = "key", spent = 0, reserved = 0, amount = 0 },
    }
    assert.are.same({ 'starvideos_spend_limit{scope="key"} 4', 'starvideos_spend{scope="key"} 1' },
      spend_samples(text))
    local c = client()
    text = c:metrics()
    c:close()
    assert.are.same({ "HELP starvideos_spend Spent", "TYPE starvideos_spend gauge", "HELP starvideos_spend_limit The",
      "TYPE starvideos_spend_limit gauge" }, spend_samples(text, true), "the families, no sample")
  end)
end)
