-- A row of make bench kept from the first benches: the wall time of N tasks
-- (200; 20 when quick) waited at once with client:wait_all, against ONE task
-- waited alone with client:wait, in the same run, on the project's emulator
-- (each task queued 1 s, then processing 2 s; 0.2 s and 0.3 s when quick),
-- polling every 0.5 s (0.1 s when quick).  The clock starts once the tasks are
-- created.  The target (<= 1.2x) is this bench's own: waiting for many tasks
-- should cost about what waiting for one does.
local B = require "bench.common"
local starvideos = require "starvideos"

local n = B.quick and 20 or 200
local interval = B.quick and 0.1 or 0.5
local emu = B.emulator("bench-key", B.quick and "--queued 0.2 --processing 0.3" or "--queued 1 --processing 2")
local ok, err = pcall(function()
  local client = starvideos.new { api_key = emu.key, base_url = emu.url, requests_per_second = 1000 }
  local params = { model = "videos", prompt = "bench", duration = 5 }

  local one = assert(client:create(params))
  local t0 = B.now()
  assert(client:wait(one, { interval = interval }))
  local single = B.now() - t0

  local ids = {}
  local c0 = B.now()
  for i = 1, n do ids[i] = assert(client:create(params)).id end
  local create_s = B.now() - c0
  local before = #emu.requests()
  t0 = B.now()
  local res = client:wait_all(ids, { interval = interval })
  local all = B.now() - t0
  local polls = #emu.requests() - before
  local done = 0
  for _, r in ipairs(res) do if r.task and r.task.status == "completed" then done = done + 1 end end
  assert(done == n, done .. " of " .. n .. " completed")
  client:close()
  print(string.format("%d tasks created one by one in %.2f s; one task alone %.2f s; wait_all of %d: %.2f s, "
    .. "%d polls", n, create_s, single, n, all, polls))
  B.row { scenario = string.format("wait_all of %d tasks (emulator)", n), baseline = "one task waited alone",
    ours = all, theirs = single, unit = "s", target = "<= 1.2x", ok = all / single <= 1.2,
    note = string.format("the emulator (LuaSocket, one process): tasks queued %s then processing %s, polled "
      .. "every %.1f s, max_connections 16; creating the %d took %.2f s (before the clock); %d polls; one run "
      .. "each (the lifecycle, not the machine, sets the time)", B.quick and "0.2 s" or "1 s",
      B.quick and "0.3 s" or "2 s", interval, n, create_s, polls) }
end)
emu.stop()
if not ok then error(err, 0) end
