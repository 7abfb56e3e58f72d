-- client:step(0) with 10,000 watched tasks waiting and nothing due, and the
-- memory each waiting task holds (C and Lua together: the process's resident
-- memory, which includes the Lua heap, measured before and after).
-- The tasks are real: created on the emulator, each watched and polled once,
-- then left with an hour to their next poll.
--   lua5.4 bench/step.lua      (BENCH_QUICK=1: 2000 tasks)
package.path = dofile("tools/lua_dirs.lua")() .. "bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local B = require "common"
local cjson = require "cjson"
local core = require "starvideos.core"
local starvideos = require "starvideos"

local N = B.quick and 2000 or 10000
local STEPS = B.quick and 50000 or 200000

local function rss_kb()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4
end

local emu = B.emulator("bench-key", "--queued 3600 --processing 10")
local ok, err = pcall(function()
  local client = starvideos.new { api_key = emu.key, base_url = emu.url, requests_per_second = 1e6 }
  local ids = {}
  for i = 1, N do ids[i] = assert(client:create { model = "videos", prompt = "step", duration = 5 }).id end
  collectgarbage(); collectgarbage()
  local lua0, rss0 = collectgarbage("count"), rss_kb()
  local jobs = {}
  for i = 1, N do jobs[i] = client:watch(ids[i], { interval = 3600 }) end
  -- every task polled once, nothing in flight
  for _ = 1, 100000 do
    client:step(0.01)
    local waiting = 0
    for _, job in ipairs(jobs) do
      if job.task and job.task.status == "queued" and not job.req then waiting = waiting + 1 end
    end
    if waiting == N then break end
  end
  collectgarbage(); collectgarbage()
  local lua_kb, rss = (collectgarbage("count") - lua0) / N, (rss_kb() - rss0) / N
  for _ = 1, 1000 do client:step(0) end
  local t0 = core.now()
  for _ = 1, STEPS do client:step(0) end
  local us = (core.now() - t0) / STEPS * 1e6
  print(string.format("step(0) with %d watched tasks waiting, nothing due: %.3f us over %d steps", N, us, STEPS))
  print(string.format("memory per waiting task: %.2f KB resident (C and Lua), of which the Lua heap %.2f KB",
    rss, lua_kb))
  print("BENCH " .. cjson.encode { scenario = string.format("step(0), %d waiting tasks, nothing due", N),
    baseline = "none", unit = "us", ours = us, theirs = cjson.null, ratio = cjson.null, target = "<= 5 us",
    ok = us <= 5, note = string.format("average over %d steps", STEPS) })
  print("BENCH " .. cjson.encode { scenario = string.format("memory per waiting task, %d tasks", N),
    baseline = "none", unit = "KB", ours = rss, theirs = cjson.null, ratio = cjson.null, target = "<= 4 KB",
    ok = rss <= 4, note = string.format("resident growth per task (C and Lua); Lua heap alone %.2f KB", lua_kb) })
  client:close()
end)
emu.stop()
if not ok then io.stderr:write(tostring(err), "\n"); os.exit(1) end
