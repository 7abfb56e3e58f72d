-- Wall time of N tasks (default 200) waited at once with client:wait_all,
-- against the baseline of ONE task waited alone with client:wait, same run,
-- same emulator lifecycle (queued 1 s, processing 2 s).
--   make bench   (or: lua5.4 bench/wait_all.lua [N])
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local B = require "common"
local starvideos = require "starvideos"

local n = tonumber(arg[1]) or 200
local interval = 0.5
local emu = B.emulator("bench-key", "--queued 1 --processing 2")
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
local ok = 0
for _, r in ipairs(res) do if r.task and r.task.status == "completed" then ok = ok + 1 end end
assert(ok == n, ok .. " of " .. n .. " completed")
print(string.format("%d tasks waited at once (interval %.1f s, max_connections 16)", n, interval))
print(string.format("  creating them one by one: %.2f s (%.1f ms each)", create_s, create_s / n * 1000))
print(string.format("  baseline: one task alone:     %.2f s", single))
print(string.format("  wait_all of %d tasks:        %.2f s, %d polls", n, all, polls))
print(string.format("  ratio wait_all/one task: %.2fx", all / single))
emu.stop()
