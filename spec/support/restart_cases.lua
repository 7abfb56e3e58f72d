-- What a restart does to the counts a ledger place holds (docs/spend.md "What a restart does"), one list run on each
-- place of spec/support/places.lua: the process alone (spec/records/restart_cases_spec.lua), a journal (the same),
-- Redis with its AOF (rocks/redis/spec/hosts/restart_cases_redis_spec.lua).  Each case reaches a cap with one
-- client, restarts the place as a user's would be (place.restart: a process run again is a new client; Redis stopped
-- and started on its folder), then asks again with a new client: a place that keeps what was spent refuses the
-- next create, 0 past the cap at the emulator; the process alone says, once when the client is made, that it
-- counts from 0, and so it does.
local helper = require "spec.helper"

local M = {}

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }
local PRICES = { videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }

-- A client of the place's ledger and the emulator (more: options), and the warnings it said.
local function client(place, emu, more)
  local said = {}
  local o = place.options()
  o.api_key, o.base_url, o.prices, o.requests_per_second = emu.key, emu.url, PRICES, 1000
  o.on_event = function(ev) if ev.type == "warning" and ev.field == "spend_limit" then said[#said + 1] = ev end end
  for k, v in pairs(more) do o[k] = v end
  return require("starvideos").new(o), said
end

-- n keyed creates of c (tag: the keys' stem): the kinds of their errors, "ok" for each made.
local function creates(c, n, tag)
  local got = {}
  for i = 1, n do
    local task, err = c:create(PARAMS, { key = tag .. i })
    got[i] = task and "ok" or err.kind
  end
  return got
end

M.cases = {
  { name = "spend_limit: a day's cap reached, the place restarted, a new client refuses the next create: 0 past it",
    promise = { "spend_restart", "spend_refusal" },
    run = function(env, assert)
      local limit = { spend_limit = { amount = 0.8, per = "day" } }
      local c = client(env.place, env.emu, limit)
      assert.same({ "ok", "ok", "spend_limited" }, creates(c, 3, "a"))
      c:close()
      env.place.restart()
      local again, said = client(env.place, env.emu, limit)
      local got = creates(again, 2, "b")
      again:close()
      if env.place.name == "process" then -- (nothing durable: said once when made, and counted from 0)
        assert.same({ "ok", "ok" }, got)
        local only = 0
        for _, ev in ipairs(said) do
          only = only + (ev.message:find("counted in this process only", 1, true) and 1 or 0)
        end
        assert.equal(1, only, "said once, when the client was made")
        assert.equal(4, env.emu:creates())
      else
        assert.same({ "spend_limited", "spend_limited" }, got)
        for _, ev in ipairs(said) do assert.is_nil(ev.message:find("counted in this process only", 1, true)) end
        assert.equal(2, env.emu:creates(), "0 creates past the cap")
      end
    end },

  { name = "create_limit: its count reached, the place restarted, a new client refuses the next create",
    promise = "create_limit",
    run = function(env, assert)
      local limit = { create_limit = { count = 2, per = 3600 } }
      local c = client(env.place, env.emu, limit)
      assert.same({ "ok", "ok", "rate_limited" }, creates(c, 3, "a"))
      c:close()
      env.place.restart()
      local again = client(env.place, env.emu, limit)
      local got = creates(again, 1, "b")
      again:close()
      local kept = env.place.name ~= "process" -- (the process alone counts again from 0: docs/keep-and-fleet.md)
      assert.same({ kept and "rate_limited" or "ok" }, got)
      assert.equal(kept and 2 or 3, env.emu:creates())
    end },
}

-- The list run with busted's functions (b: describe, it, before_each, after_each, assert) on the ledger place
-- name (spec/support/places.lua; opts: its options, as places.ledger takes them), against an emulator of its own.
function M.run(name, b, opts)
  local places = require "spec.support.places"
  local why = places.missing(name)
  if why then return b.pending("the restart cases on " .. name .. ": " .. why) end
  local env = {}
  b.before_each(function()
    env.emu = helper.emulator { queued = 30, processing = 30 }
    env.place = places.ledger(name, helper.tmpdir(), opts)
  end)
  b.after_each(function()
    env.place.stop()
    env.emu:stop()
    helper.cleanup()
  end)
  require("spec.support.case_list").each(b, "the restart cases on " .. name, M.cases, function(case)
    case.run(env, b.assert)
  end, nil, { name, "lua" })
end

return M
