-- One idle keeper of rocks/redis/bench/queue.lua's idle row: client:keep on the store (the defaults: a 30 s lease,
-- a look every 5 s), nothing to carry and nothing queued, for `seconds`; "keeping" once started, "ended" at its end.
-- Mode "queue": keep as it is; "noqueue": its claims of queued entries answered "none" here, without the store (keep
-- as it was before the queue, the row's baseline).
--   lua5.4 rocks/redis/bench/lib/queue_keeper.lua STORE_URL MODE SECONDS DIR
local store, mode, seconds, dir = arg[1], arg[2], tonumber(arg[3]), arg[4]
if mode == "noqueue" then require("starvideos.fleet.queued").claim = function() return false end end
local starvideos = require "starvideos"
local client = starvideos.new { api_key = "bench-queue-idle", base_url = "http://127.0.0.1:9", store = store }
io.write("keeping\n")
io.stdout:flush()
local results, err = client:keep { dir = dir, timeout = seconds }
client:close()
io.write(results and "ended\n" or "ended: " .. tostring(err) .. "\n")
