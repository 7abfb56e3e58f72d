-- failed_prices (issue 79, 7; docs/tenants-and-costs.md): a task known failed at the service costs its model's
-- failed price in every spend_limit and in its cost, the difference released, however the failure is learned (the
-- job that made it, resume, keep, a restart read again), on each ledger; counted at the emulator.  The rule on each
-- ledger alone: spec/support/ledger_cases.lua's failed_prices case.
local places = require "spec.support.places"
local starvideos = require "starvideos"

local PRICES = { videos = 0.4, videos_fast = 0.5, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }
local BOOM = { model = "videos_fast", prompt = "boom", duration = 4 }
local FINE = { model = "videos_fast", prompt = "a cat", duration = 4 }

local function options(place, emu, failed)
  local o = place.options()
  o.api_key, o.base_url, o.prices, o.failed_prices = emu.key, emu.url, PRICES, failed
  o.spend_limit, o.interval, o.min_interval = { amount = 1, per = "day" }, 0.05, 0.05
  return o
end

local function spent(client) return ("%.2f"):format(assert(client:spend())[1].spent) end

describe("failed_prices", function()
  it("refuses a table that is not one of prices when the client is made, naming the field; nothing is sent",
    function()
    for _, c in ipairs {
      { 0, "failed_prices: a table {model = price, ...} expected, got 0" },
      { { videos = -1 }, "failed_prices.videos: a price >= 0 expected, got %-1" },
      { { videos = "0" }, 'failed_prices.videos: a price >= 0 expected, got "0"' },
      { { videos = 0 / 0 }, "failed_prices.videos: a price >= 0 expected, got %-?nan" },
      { { videos = math.huge }, "failed_prices.videos: a price >= 0 expected, got inf" },
      { { nope = 0 }, 'failed_prices%["nope"%]: not a model %(' },
      { { 0 }, "failed_prices%[1%]: not a model %(" },
    } do
      local tr = require("spec.support.fake_transport").new()
      local ok, err = pcall(starvideos.new, { api_key = "k", base_url = "http://fake", transport = tr,
        prices = PRICES, failed_prices = c[1] })
      assert.is_false(ok, c[2])
      assert.matches("bad option 'failed_prices' to 'new' %(" .. c[2], err)
      assert.same(0, #tr.sent, "nothing sent")
    end
  end)

  for _, name in ipairs(places.LEDGERS) do
    describe("on a ledger: " .. name, function()
      local why = places.missing(name)
      if why then pending(why) return end

      it("a failure the job learns costs its failed price: the creates it released fit under the limit ("
        .. name .. ")", function()
        places.run(name, { queued = 0, processing = 0 }, function(place, emu)
          emu:config { failures = { { kind = "service", prompt = "boom" } } }
          local client = starvideos.new(options(place, emu, { videos_fast = 0 }))
          local _, err = client:generate(BOOM, { timeout = 20 })
          assert.same({ "task_failed", "service" }, { err and err.kind, err and err.reason })
          assert.equal("0.00", spent(client), "0.5 released")
          for i = 1, 2 do assert(client:create(FINE, { key = "fine-" .. i })) end
          local _, serr = client:create(FINE, { key = "fine-3" })
          assert.equal("spend_limited", serr and serr.kind)
          assert.equal(3, emu:creates(), "the failed one and two more: 1.0 of 1")
          assert.equal("1.00", spent(client))
          client:close()
          if name == "process" then return end -- (nothing kept past it: docs/spend.md)
          local again = starvideos.new(options(place, emu, nil)) -- (a process run again, without the option)
          assert.equal("1.00", spent(again), "what a restart reads")
          local by = {}
          for _, t in ipairs(assert(again:tasks())) do by[t.prompt] = t.cost end
          assert.same({ boom = 0, ["a cat"] = 0.5 }, by)
          again:close()
        end)
      end)

      if name ~= "process" then
        it("a failure resume or keep learns, of a task another process made, costs its failed price (" .. name
          .. ")", function()
          places.run(name, { queued = 0, processing = 0 }, function(place, emu, dir)
            emu:config { failures = { { kind = "service", prompt = "boom" } } }
            local maker = starvideos.new(options(place, emu, nil)) -- (it never learns the failure)
            assert(maker:create(BOOM))
            assert(maker:create(BOOM, { key = "boom-2" }))
            assert.equal("1.00", spent(maker))
            maker:close()
            for _, verb in ipairs { "resume", "keep" } do
              local c = starvideos.new(options(place, emu, { videos_fast = 0.1 }))
              local results = assert(c[verb](c, { dir = dir, once = verb == "keep" or nil, timeout = 20 }))
              assert.equal(verb == "resume" and 2 or 0, #results, verb)
              assert.equal("0.20", spent(c), verb .. ": 2 x 0.1")
              c:close()
            end
            assert.equal(2, emu:creates())
          end)
        end)
      end
    end)
  end
end)
