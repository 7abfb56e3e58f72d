-- spend_limit's shape, windows and warnings (lua/starvideos/spend.lua; the reservations on every ledger:
-- spec/support/ledger_cases.lua, with real processes: spec/support/spend_runs.lua).
local helper = require "spec.helper"
local starvideos = require "starvideos"
local Spend = require "starvideos.spend"
local Option = require "starvideos.spend_option"

local PRICES = { videos = 0.4, videos_fast = 0.5, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }
local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

-- starvideos.new with opts (and PRICES unless given), on a transport that counts what it is asked to send.
local function new(opts)
  local tr = require("spec.support.fake_transport").new()
  opts.api_key, opts.base_url, opts.transport = "k-spend-" .. require("starvideos.core").random_id(), "http://fake", tr
  if opts.prices == nil then opts.prices = PRICES end
  return starvideos.new(opts), tr
end

local function utc(y, m, d, h) return os.time { year = y, month = m, day = d, hour = h or 0 } - os.time(
  os.date("!*t", 0)) + os.time(os.date("*t", 0)) end

describe("spend_limit", function()
  after_each(function() helper.cleanup() end)

  it("refuses a limit in a wrong shape when the client is made, naming the field; nothing is sent", function()
    local cases = {
      { { amount = -1 }, "spend_limit.amount: a finite amount >= 0 expected, got %-1" },
      { { amount = 0 / 0 }, "spend_limit.amount: a finite amount >= 0 expected, got %-?nan" },
      { { amount = math.huge }, "spend_limit.amount: a finite amount >= 0 expected, got inf" },
      { { amount = "5" }, 'spend_limit.amount: a finite amount >= 0 expected, got "5"' },
      { { amount = 1, scope = "org" }, 'spend_limit.scope: "key", "tenant" or "model" expected, got "org"' },
      { { amount = 1, scope = "model", model = "nope" }, 'spend_limit.model: not a model %(' },
      { { amount = 1, scope = "model" }, 'spend_limit.model: a model\'s name expected for scope "model"' },
      { { amount = 1, model = "videos" }, 'spend_limit.model: only for scope "model"' },
      { { amount = 1, per = 0 }, 'spend_limit.per: a whole number of seconds from 1 to 31622400, "day" or "month"' },
      { { amount = 1, per = "week" }, 'spend_limit.per: .* got "week"' },
      { { amount = 1, per = 1.5 }, 'spend_limit.per: a whole number of seconds .* got 1.5' },
      { { amount = 1, tenant = "a" }, 'spend_limit.tenant: only for scope "tenant"' },
      { { amount = 1, cap = 2 }, "spend_limit.cap: unknown field %(amount, per, scope, model, tenant%)" },
      { { { amount = 1 }, "x" }, 'spend_limit%[2%]: a table {amount = A' },
      { { { amount = 1 }, { amount = -2 } }, "spend_limit%[2%].amount: a finite amount >= 0 expected" },
      { 5, "spend_limit: a limit {amount = A, ...} or a list of them expected, got 5" },
      { { per = "day", scope = "tenant" }, "spend_limit.amount: a finite amount >= 0 expected, got nil" },
      { { { amount = 2, per = 86400 }, { amount = 10, per = 86400.0 } }, "spend_limit%[2%]: the same scope, model, "
        .. "tenant and per as spend_limit%[1%]: one count for both" },
      { { amount = 1 }, "spend_limit: a create of starvideos_o3 cannot be counted: prices has no price for "
        .. "starvideos_o3; give prices.starvideos_o3, or a limit of scope \"model\"", { videos = 0.4 } },
      { { amount = 1, scope = "model", model = "starvideos_o3" }, "spend_limit: a create of starvideos_o3 cannot be "
        .. "counted: prices has no price for starvideos_o3; give prices.starvideos_o3%)", { videos = 0.4 } },
      { { { amount = 1, scope = "model", model = "videos" }, { amount = 1, scope = "tenant" } }, "spend_limit%[2%]: a "
        .. "create of starvideos_o3 cannot be counted", { videos = 0.4 } },
    }
    for _, c in ipairs(cases) do
      local tr = require("spec.support.fake_transport").new()
      local ok, err = pcall(starvideos.new, { api_key = "k", base_url = "http://fake", transport = tr,
        spend_limit = c[1], prices = c[3] or PRICES })
      assert.is_false(ok, c[2])
      assert.matches("bad option", err)
      assert.matches(c[2], err)
      assert.same(0, #tr.sent, "nothing sent")
    end
    for _, bad in ipairs { 15, "+25:00", "2", "+2:00", 0 / 0, "+05:60" } do
      local ok, err = pcall(new, { tz_offset = bad })
      assert.is_false(ok)
      assert.matches("bad option 'tz_offset' to 'new' %(hours from %-12 to 14", err)
    end
    assert.truthy(new { spend_limit = { amount = 0 }, tz_offset = "+05:30" }, "a limit of 0 is a limit")
    local every = new { spend_limit = { amount = 3, per = "day", scope = "tenant" } }
    local e = every:spend()
    assert.same({ 1, "tenant", nil, 0, 0, 3 }, { #e, e[1].scope, e[1].tenant, e[1].spent, e[1].reserved, e[1].amount },
      "a limit of every tenant, none spent yet: one entry of 0")
  end)

  it("refuses a price or an amount finer than the ledger's unit (a millionth), naming it and the figure to give; "
    .. "never rounds a reservation down: nothing is sent", function()
    local function limit(amount) return { amount = amount, scope = "model", model = "videos" } end
    for _, c in ipairs {
      { { videos = 4e-7 }, limit(1e-6), "spend_limit: a create of videos cannot be counted exactly: its price, 4e%-07, "
        .. "is finer than the ledger's unit, a millionth %(0%.000001%); give prices%.videos, rounded up to a "
        .. "millionth: 1e%-06%)" },
      { { videos = 0.1000004 }, limit(1), "its price, 0%.1000004, is finer .* rounded up to a millionth: 0%.100001%)" },
      { PRICES, limit(0.0000015), "spend_limit%.amount: 1%.5e%-06 is finer than the ledger's unit: a limit counts "
        .. "whole millionths %(0%.000001%); give 1e%-06 or 2e%-06" },
      { PRICES, { { amount = 5 }, { amount = 2.0000001, per = "day" } },
        "spend_limit%[2%]%.amount: 2%.0000001 is finer" },
    } do
      local ok, tr = pcall(new, { prices = c[1], spend_limit = c[2] })
      assert.is_false(ok, c[3])
      assert.matches("bad option 'spend_limit' to 'new' %(", tr)
      assert.matches(c[3], tr)
    end
    -- (0.1 + 0.2: a whole number of millionths, which a double holds as 300000.00000000006 of them)
    local c = new { prices = { videos = 0.4, videos_fast = 1e-6 }, spend_limit = limit(0.1 + 0.2) }
    assert.equal(400000, (Spend.covering(c.cfg, "videos", nil, os.time())))
    assert.equal(300000, c.cfg.spend[1].amount)
  end)

  it("counts a limit read from JSON (per 86400.0) where the same limit in Lua counts (per 86400)", function()
    local t = os.time()
    local a = new { spend_limit = { amount = 1, per = 86400 } }
    local b = new { spend_limit = require("cjson").decode('{"amount": 1, "per": 86400}') }
    assert.equal(select(2, Spend.covering(a.cfg, "videos", nil, t)), select(2, Spend.covering(b.cfg, "videos", nil, t)))
    assert.matches("^%x+:%d+@%d+@1000000$", (select(2, Spend.covering(b.cfg, "videos", nil, t))))
  end)

  it("a store that cannot keep a reservation (a full dict) counts nothing of it", function()
    local kv, refused = require("starvideos.bucket").store(), true
    local set = kv.set
    function kv.set(k, v, ttl) if not (refused and k:find("^res:")) then set(k, v, ttl) end end
    kv.now = os.time()
    local spec = "k1:0@0@1000000"
    assert.is_nil(Spend.take(kv, "l1", 400000, spec, kv.now))
    assert.same({ nil, nil }, { kv.get("sp:k1:0"), kv.get("held:k1:0") })
    refused = false
    assert.equal("", Spend.take(kv, "l1", 400000, spec, kv.now))
    assert.same({ 400000, 400000 }, { kv.get("sp:k1:0"), kv.get("held:k1:0") })
  end)

  it("a release this process queued on its journal is counted out by its next create", function()
    local dir = helper.tmpdir()
    local c = new { journal = dir .. "/j.jsonl", spend_limit = { amount = 1, per = "day", scope = "tenant" } }
    local l = c.ledger
    local function ask(lid)
      for _ = 1, 200 do
        local ok, err = l:before_create(PARAMS, lid, nil, nil, "alice")
        if ok ~= false then return ok, err end
        c:step(0.01)
      end
    end
    assert.is_true(ask("a1"))
    assert.is_true(ask("a2"))
    l:create_failed({}, PARAMS, "a2") -- surely not sent: released, its record queued
    assert.is_true(ask("a3"), "0.8 with a2 released: room for 0.4")
    local ok, err = ask("a4")
    assert.same({ nil, "spend_limited" }, { ok, err and err.kind })
    c:close()
  end)

  it("says a tenant's 50% and 80% before the 100% of the create refused next, though a journal's writer writes "
    .. "their record later (generate_all's creates at once)", function()
    local emu = helper.emulator { key = "k-order", queued = 0, processing = 0 }
    local dir, said = helper.tmpdir(), {}
    local c = starvideos.new { api_key = "k-order", base_url = emu.url, journal = dir .. "/j.jsonl", prices = PRICES,
      spend_limit = { amount = 1, per = "day", scope = "tenant" }, interval = 0.1, min_interval = 0.1,
      on_event = function(e) if e.field == "spend_limit" then said[#said + 1] = e.percent end end }
    local results = c:generate_all({ PARAMS, PARAMS, PARAMS, PARAMS }, { out = dir .. "/%d.mp4", tenant = "acme" })
    c:close()
    local kinds = {}
    for i, r in ipairs(results) do kinds[i] = r.err and r.err.kind or "ok" end
    assert.same({ "ok", "ok", "spend_limited", "spend_limited" }, kinds)
    assert.same({ 50, 80, 100 }, said)
    local creates = 0
    for _, r in ipairs(emu:requests()) do if r.method == "POST" then creates = creates + 1 end end
    assert.equal(2, creates)
    emu:stop()
  end)

  it("reads windows on the calendar: a month's end in a leap year, December's, a day in tz_offset, per N", function()
    local t = utc(2024, 2, 29, 12)
    assert.same({ utc(2024, 2, 1), utc(2024, 3, 1) }, { Spend.window("month", t, 0) })
    assert.same({ utc(2025, 12, 1), utc(2026, 1, 1) }, { Spend.window("month", utc(2025, 12, 31, 23), 0) })
    assert.same({ utc(2024, 2, 28, 22), utc(2024, 2, 29, 22) }, { Spend.window("day", utc(2024, 2, 29, 21), 7200) })
    assert.same({ utc(2024, 2, 29, 22), utc(2024, 3, 1, 22) }, { Spend.window("day", utc(2024, 2, 29, 22), 7200) })
    assert.same({ utc(2024, 2, 29, 12), utc(2024, 2, 29, 13) }, { Spend.window(3600, t + 59, 0) })
    assert.same({ 0, 0 }, { Spend.window(nil, t, 0) })
    assert.same({ 19800, -10800, 19800, 0 }, { Option.offset("+05:30"), Option.offset("-03:00"), Option.offset(5.5),
      Option.offset(nil) })
  end)

  it("a limit counted in this process only (neither journal nor store) is said once, as a warning, when the "
    .. "client is made; one kept in a journal is not", function()
    local said = {}
    local function on_event(e) if e.type == "warning" then said[#said + 1] = e end end
    local c = new { spend_limit = { amount = 1, per = "day" }, on_event = on_event }
    assert.equal(1, #said, "said when made")
    assert.same({ "spend_limit", nil }, { said[1].field, said[1].percent })
    assert.equal("spend_limit: counted in this process only (no journal or store): another process counts apart, "
      .. "and one started again counts from 0; give journal = PATH or store = URL to keep what was spent",
      said[1].message)
    assert.is_true(c.ledger:before_create(PARAMS, "a1"))
    c:close()
    assert.equal(1, #said, "once: not again at a create")
    new({ spend_limit = { amount = 1, per = "day" }, on_event = on_event, journal = helper.tmpdir() .. "/j.jsonl" })
      :close()
    new({ on_event = on_event }):close()
    assert.equal(1, #said, "a journal keeps it; no limit, nothing to say")
  end)

  it("refuses inside nginx a limit with neither journal nor store, naming both: nginx's memory is emptied by a "
    .. "restart", function()
    local fake = { get_phase = function() return "content" end, socket = { tcp = function() end } }
    rawset(_G, "ngx", fake)
    local ok, err = pcall(new, { spend_limit = { amount = 2, per = "day" } })
    local jok, jerr = pcall(function()
      new({ spend_limit = { amount = 2, per = "day" }, journal = helper.tmpdir() .. "/j.jsonl" }):close()
    end)
    rawset(_G, "ngx", nil)
    assert.is_false(ok)
    assert.matches("bad option 'spend_limit' to 'new' (inside nginx a limit needs journal = PATH (every worker of this "
      .. "host) or store = URL (every host)", err, 1, true)
    assert.matches("spend_spec.lua", err, 1, true) -- (raised at the caller of new)
    assert(jok, jerr)
  end)

  it("says 50%, 80% and 100% once a window (a refusal says 100% unless a create reached it), again in the next",
    function()
      local real, now = Spend.clock, utc(2026, 3, 10, 23)
      Spend.clock = function() return now end
      local said = {}
      local ok, err = pcall(function()
        local c = new { spend_limit = { amount = 1, per = "day" }, on_event = function(e)
          if e.field == "spend_limit" and e.percent then said[#said + 1] = e.percent .. " " .. e.message end end }
        local l = c.ledger
        assert.is_true(l:before_create(PARAMS, "a1")) -- 0.4
        assert.is_true(l:before_create(PARAMS, "a2")) -- 0.8: 50 and 80
        local got, e = l:before_create(PARAMS, "a3") -- 1.2 would pass: refused, 100 said
        assert.same({ nil, "spend_limited" }, { got, e.kind })
        assert.same(3600, e.retry_after)
        assert.is_nil(l:before_create(PARAMS, "a4"), "refused again, said no more")
        now = utc(2026, 3, 11, 0)
        assert.is_true(l:before_create(PARAMS, "b1"))
        assert.is_true(l:before_create(PARAMS, "b2"))
        assert.same({ "50", "80", "100", "50", "80" }, (function()
          local p = {}
          for i, s in ipairs(said) do p[i] = s:match("^%d+") end
          return p
        end)())
        assert.matches("^80 spend_limit: 80%% of 1 reached for the key in the window ending 2026%-03%-11 00:00:00 UTC",
          said[2])
        local e1 = c:spend()[1]
        assert.same({ 0, 0.8, 1, utc(2026, 3, 12) }, { e1.spent, e1.reserved, e1.amount, e1.resets_at })
        c:close()
      end)
      Spend.clock = real
      assert(ok, err)
    end)
end)
