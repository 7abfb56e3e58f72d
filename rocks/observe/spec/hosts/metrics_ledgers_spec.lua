-- The observe rock's metrics (docs/observability.md#metrics) on each place the ledger can live
-- (spec/support/places.lua: the process alone, a journal, a Redis store), against the emulator: a generate's
-- exchanges, create, video and cost counted; the spend gauges read from the ledger, so that a shared one's say
-- what another process spent too (the process alone: its own); and with a store, its commands counted and timed
-- as the `store` operation.
local helper = require "spec.helper"
local places = require "spec.support.places"


-- A sample's value in the text format (nil when there is none).
local function value(text, series)
  for line in text:gmatch("[^\n]+") do
    local v = line:sub(1, #series + 1) == series .. " " and tonumber(line:sub(#series + 2))
    if v then return v end
  end
end

-- The options of a client of the place, as Lua source (the spec's and another process's the same).
local function options(emu, place)
  return string.format("{ api_key = %q, base_url = %q, interval = 0.1, min_interval = 0.1, metrics = true, "
    .. "prices = { videos = 0.4 }, spend_limit = { amount = 10, scope = \"model\", model = \"videos\" }%s }",
    emu.key, emu.url, place.option and string.format(", %s = %q", place.option, place.where) or "")
end

for _, name in ipairs(places.LEDGERS) do
  local describe_place = places.missing(name) and pending or describe
  describe_place("metrics with the ledger on the place " .. name, function()
    it(name .. ": a generate counted, the spend gauges read from the ledger" .. (name == "process" and ""
      or ", another process's creates too") .. (name == "redis" and ", the store's commands counted" or ""), function()
      places.run(name, { queued = 0, processing = 0.2 }, function(place, emu, dir)
        local others = 0
        if place.option then -- (another process, two creates of the key in the same ledger)
          local other = helper.run_lua(dir, "other", "local c = require('starvideos').new " .. options(emu, place)
            .. "\nfor i = 1, 2 do assert(c:create { model = 'videos', prompt = 'a fox ' .. i, duration = 5 }) end\n"
            .. "c:close()\n")
          local said = other.pipe:read("*a")
          assert(other:close(), said)
          others = 2
        end
        assert.equal(others, emu:creates())
        local client = require("starvideos").new(assert(load("return " .. options(emu, place)))())
        local before = client:metrics()
        local task = assert(client:generate({ model = "videos", prompt = "a counted fox", duration = 5 },
          { out = dir .. "/fox.mp4" }))
        local text = client:metrics()
        client:close()
        local function grew(series) return (value(text, series) or 0) - (value(before, series) or 0) end
        assert.equal(others + 1, emu:creates())
        assert.equal(1, grew('starvideos_creates_total{model="videos",outcome="created"}'))
        assert.equal(1, grew('starvideos_videos_total{model="videos"}'))
        assert.near(0.4, grew('starvideos_cost_total{model="videos"}'), 1e-9)
        -- (bytes received: the saved file's up to the mark's box its commit appended, helper.video_size)
        assert.equal(helper.video_size(task.path), grew("starvideos_downloaded_bytes_total"))
        assert.near(0.4 * (others + 1), value(text, 'starvideos_spend{scope="model",model="videos"}'), 1e-9)
        assert.equal(10, value(text, 'starvideos_spend_limit{scope="model",model="videos"}'))
        local stored = grew('starvideos_requests_total{operation="store",code="2xx"}')
        local timed = grew('starvideos_request_duration_seconds_count{operation="store",code="2xx"}')
        if place.name == "redis" then
          assert.is_true(stored > 0, text)
          assert.equal(stored, timed)
        else
          assert.same({ 0, 0 }, { stored, timed }, "no store, no store command")
        end
        assert.is_nil(text:find(task.id, 1, true), "no id in a label")
      end)
    end)
  end)
end
