-- eta (docs/polling.md#when-it-will-be-ready) on each place the ledger can live (spec/support/places.lua), against
-- the emulator: a new client of the key, generating, is told the time left from five tasks of the kind made before
-- it: by another client of the process alone (its samples are the key's in the process, while a client of it
-- lives), by another process with the journal or the store (its samples read from there).  Before them, a first
-- task of the kind is told none.
local helper = require "spec.helper"
local places = require "spec.support.places"

-- The status events' etas of one generate by a new client of the place: { eta or false, ... }.
local function etas(emu, place, dir, name)
  local opts = place.options()
  opts.api_key, opts.base_url, opts.interval, opts.min_interval = emu.key, emu.url, 0.1, 0.1
  local client = require("starvideos").new(opts)
  local said = {}
  assert(client:generate({ model = "videos", prompt = "a timed fox", duration = 5 }, { out = dir .. "/" .. name,
    on_progress = function(ev)
      if ev.type == "status" and ev.status ~= "completed" then said[#said + 1] = ev.eta or false end
    end }))
  client:close()
  return said
end

-- Five tasks of the kind made by another client of the place: of this process alone (the client returned, open: the
-- key's samples are its clients', let go with the last), else of another process (nil).
local function five(emu, place, dir)
  local src = string.format("local c = require('starvideos').new { api_key = %q, base_url = %q, interval = 0.1, "
    .. "min_interval = 0.1%s }\nlocal list = {}\nfor i = 1, 5 do list[i] = { model = 'videos', prompt = 'a fox ' .. i, "
    .. "duration = 5 } end\nfor _, r in ipairs(c:generate_all(list, { out = %q })) do assert(r.path, r.error) end\n"
    .. "%s\n", emu.key, emu.url, place.option and string.format(", %s = %q", place.option, place.where) or "",
    dir .. "/%04d.mp4", place.option and "c:close()" or "return c")
  if not place.option then return assert(load(src))() end
  local other = helper.run_lua(dir, "five", src)
  local out = other.pipe:read("*a")
  assert(other:close(), out)
end

for _, name in ipairs(places.LEDGERS) do
  local describe_place = places.missing(name) and pending or describe
  describe_place("eta with the ledger on the place " .. name, function()
    it(name .. ": a new client of the key is told the time left from the tasks " .. (name == "process"
      and "another client of the process made" or "another process left in the ledger"), function()
      places.run(name, { queued = 0, processing = 0.6 }, function(place, emu, dir)
        for _, eta in ipairs(etas(emu, place, dir, "first.mp4")) do assert.is_false(eta, "no samples yet") end
        local first = five(emu, place, dir)
        assert.equal(6, emu:creates())
        local said = etas(emu, place, dir, "timed.mp4")
        if first then first:close() end
        assert.equal(7, emu:creates())
        local told
        for _, eta in ipairs(said) do told = told or eta or nil end
        assert.is_table(told, "a status with an eta")
        assert.is_true(told.p50 >= 0 and told.p90 >= told.p50)
      end)
    end)
  end)
end
