-- A create whose request was never written to a socket is not a maybe-paid create (issue "What new and hostile
-- users found", item 2): creates handed to libcurl past the key's max_connections wait in its queue for a
-- connection; cancelled there (Ctrl-C cancels a batch's jobs so), each is recorded abandoned and a rerun makes it.
-- Only the create whose bytes reached the service stays pending, for `pending --adopt` or `--forget`.
local helper = require "spec.helper"
local starvideos = require "starvideos"
local shared_emulator = require "spec.support.shared_emulator"

describe("creates cancelled while waiting for a connection", function()
  local emu
  shared_emulator({ queued = 0, processing = 600 }, function(e) emu = e end)

  it("are abandoned, not pending: one create written, three waiting in the transport; a rerun makes the three",
    function()
    local dir = helper.tmpdir()
    local journal = dir .. "/j.jsonl"
    emu:fault { method = "POST", path = "/v1/", delay = 3, count = 1 } -- (the first create's answer: 3 s away)
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, journal = journal, max_connections = 1 }
    local jobs = {}
    for i = 1, 4 do
      jobs[i] = assert(c:start({ model = "videos", prompt = "unsent " .. i, duration = 5 },
        { out = dir .. "/" .. i .. ".mp4" }))
    end
    assert.is_true(helper.wait_until(function()
      c:step(0.01)
      return emu:creates() >= 1
    end, 10), "the first create reached the service")
    for _ = 1, 20 do c:step(0.01) end -- (the others stay in libcurl's queue: one connection, its answer 3 s away)
    assert.equal(1, emu:creates())
    for _, j in ipairs(jobs) do j:cancel() end
    c:close()
    local d = starvideos.new { api_key = emu.key, base_url = emu.url, journal = journal }
    local pending = assert(d:pending())
    assert.equal(1, #pending, "pending creates: " .. #pending .. " (each may be paid for: --adopt or --forget)")
    -- the rerun: the three never sent are made, the one sent is not sent again
    local list = {}
    for i = 1, 4 do list[i] = { model = "videos", prompt = "unsent " .. i, duration = 5 } end
    local plan = assert(d:plan(list, { out = dir .. "/%d.mp4" }))
    local creates = 0
    for _, e in ipairs(plan.entries) do if e.action == "create" then creates = creates + 1 end end
    assert.equal(3, creates)
    d:close()
    assert.equal(1, emu:creates())
  end)
end)
