-- One process of bench/fleet.lua's second row: at the given start time, it
-- creates `count` tasks on the emulator and waits for them all, with the
-- shared store and budget; prints "done <start> <end>" (socket.gettime).
--   lua5.4 rocks/redis/bench/lib/fleet_child.lua BASE_URL KEY STORE_URL RATE COUNT START_AT
local socket = require "socket"
local starvideos = require "starvideos"

local base, key, store, rate, count, start_at = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]),
  tonumber(arg[6])
local client = starvideos.new { api_key = key, base_url = base, store = store, requests_per_second = rate }
local wait = start_at - socket.gettime()
if wait > 0 then socket.sleep(wait) end
local t0 = socket.gettime()
local ids = {}
for i = 1, count do
  ids[i] = assert(client:create { model = "videos", prompt = "fleet bench " .. i, duration = 5 }).id
end
for i, r in ipairs(client:wait_all(ids, { interval = 0.2, timeout = 300 })) do
  if not (r.task and r.task.status == "completed") then error("task " .. i .. ": " .. tostring(r.err)) end
end
local t1 = socket.gettime()
client:close()
print(string.format("done %.6f %.6f", t0, t1))
