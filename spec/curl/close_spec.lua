-- Closing the last client of a key closes its connections: the transport goes with its loop (loop.lua's release,
-- the binding's close, sv_http_free's curl_multi_cleanup: the multi handle's connection cache and its wakeup pair),
-- by the close itself, before any collection; a second close does nothing.  The emulator runs in its own process:
-- its sockets are not counted.
local helper = require "spec.helper"
local starvideos = require "starvideos"

-- This process's open descriptors, listed by ls into a file (open in the shell that runs ls, not here).
local function descriptors()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  local list = os.tmpname()
  os.execute("ls /proc/" .. pid .. "/fd > " .. list)
  local n = 0
  for _ in (helper.read_file(list) or ""):gmatch("[^\n]+") do n = n + 1 end
  os.remove(list)
  return n
end

local function collect()
  collectgarbage()
  collectgarbage()
end

describe("closing the last client of a key", function()
  local emu
  setup(function() emu = helper.emulator { key = "k-close", queued = 0, processing = 0 } end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)

  it("closes its connections: 300 tasks waited for twice, then close, and the descriptors are as before", function()
    collect()
    local before = descriptors()
    local c = starvideos.new { api_key = "k-close", base_url = emu.url, requests_per_second = 1000 }
    for _ = 1, 2 do
      local list = {}
      for i = 1, 300 do list[i] = assert(c:create { model = "videos", prompt = "close " .. i, duration = 5 }) end
      local done = assert(c:wait_all(list))
      assert.equal(300, #done)
      for i = 1, 300 do assert.equal("completed", done[i].task and done[i].task.status, done[i].err) end
    end
    assert.is_true(descriptors() > before, "the connections were open while the client lived")
    c:close()
    local closed = descriptors()
    assert.is_true(closed <= before, ("descriptors %d before the client, %d once it closed"):format(before, closed))
    c:close() -- (a close is idempotent)
    c = nil -- luacheck: ignore 311 (dropped, then collected)
    collect()
    local collected = descriptors()
    assert.is_true(collected <= before,
      ("descriptors %d before the client, %d once it was collected"):format(before, collected))
  end)
end)
