-- A child of rocks/s3/bench/s3.lua: a game's loop over a bucket upload.  The video at URL watched as a completed task
-- with out = s3://bucket/key (the store from AWS_*), client:step(0) each frame with GAP seconds between frames; each
-- step's wall time measured (core.now), and its CPU time (os.clock: the process's, whatever the loaded machine's
-- other processes took of its cores meanwhile).  Prints one line:
--   STEPS {"steps":N,"worst_ms":..,"p99_ms":..,"over4":..,"over8":..,"cpu_worst_ms":..,"cpu_over4":..,"wall":..}
--   s3_steps.lua URL s3://bucket/key [GAP]
local url, out, gap = arg[1], arg[2], tonumber(arg[3] or "0.002")
local core = require "starvideos.core"
local socket = require "socket"
local starvideos = require "starvideos"
local client = starvideos.new { api_key = "sk-bench" }
local job = assert(client:watch({ id = "bench-steps", status = "completed", video_url = url }, { out = out }))
local times, cpus, t0 = {}, {}, core.now()
while job.state ~= "done" and job.state ~= "cancelled" do
  local a, c = core.now(), os.clock()
  client:step(0)
  times[#times + 1], cpus[#cpus + 1] = core.now() - a, os.clock() - c
  socket.sleep(gap)
end
local wall = core.now() - t0
assert(job.path == out and not job.error, tostring(job.error))
client:close()
table.sort(times)
table.sort(cpus)
local function over(list, s)
  local n = 0
  for _, v in ipairs(list) do n = n + (v > s and 1 or 0) end
  return n
end
print(string.format('STEPS {"steps":%d,"worst_ms":%.3f,"p99_ms":%.3f,"over4":%d,"over8":%d,"cpu_worst_ms":%.3f,'
  .. '"cpu_over4":%d,"wall":%.3f}', #times, times[#times] * 1e3, times[math.max(1, math.ceil(#times * 0.99))] * 1e3,
  over(times, 0.004), over(times, 0.008), cpus[#cpus] * 1e3, over(cpus, 0.004), wall))
