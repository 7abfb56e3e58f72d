-- Peak memory of a 200 MB download through client:download, against the bare
-- libcurl tool (curl -o) fetching the same URL in the same run.
--   make bench   (or: lua5.4 bench/download.lua [megabytes])
package.path = "lua/?.lua;lua/?/init.lua;bench/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local B = require "common"
local starvideos = require "starvideos"

local mb = tonumber(arg[1]) or 200
local emu = B.emulator("bench-key", "--queued 0 --processing 0")
emu.config { video_size = mb * 1000 * 1000 }
local client = starvideos.new { api_key = emu.key, base_url = emu.url }
local task = assert(client:generate({ model = "videos", prompt = "bench", duration = 5 }, { interval = 0.05 }))
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))

local lib_cmd = string.format([[env LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' ]] ..
  [[STARVIDEOS_API_KEY=bench-key STARVIDEOS_BASE_URL=%s lua5.4 -e ']] ..
  [[local c = require("starvideos").new(); local t = assert(c:query("%s")); ]] ..
  [[local t0 = require("starvideos.core").now(); assert(c:download(t, "%s/lib.mp4")); ]] ..
  [[io.stderr:write("SECONDS ", require("starvideos.core").now() - t0, "\n")']],
  emu.url, task.id, dir)
local base_url = client:query(task.id).video_url
local curl_cmd = string.format("curl -s -o %s/curl.mp4 '%s'", dir, base_url)
local idle_cmd = [[env LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' ]] ..
  [[lua5.4 -e 'require("starvideos").new{api_key="x", base_url="http://127.0.0.1:9"}']]

local t0 = B.now()
local curl_kb = B.peak_kb(curl_cmd)
local curl_s = B.now() - t0
local idle_kb = B.peak_kb(idle_cmd)
t0 = B.now()
local lib_kb, out = B.peak_kb(lib_cmd)
local lib_s = B.now() - t0
assert(lib_kb, out)
local f = assert(io.open(dir .. "/lib.mp4", "rb"))
local size = f:seek("end")
f:close()
assert(size == mb * 1000 * 1000, "wrong size " .. size)
print(string.format("download of %d MB (%d bytes, checked)", mb, size))
print(string.format("  baseline curl -o          peak RSS %7.1f MB   %.2f s", curl_kb / 1024, curl_s))
print(string.format("  lua5.4 + starvideos idle  peak RSS %7.1f MB", idle_kb / 1024))
print(string.format("  client:download           peak RSS %7.1f MB   %.2f s", lib_kb / 1024, lib_s))
print(string.format("  ratio download/curl: memory %.2fx, time %.2fx; download - idle = %.1f MB",
  lib_kb / curl_kb, lib_s / curl_s, (lib_kb - idle_kb) / 1024))
os.execute("rm -rf " .. dir)
emu.stop()
