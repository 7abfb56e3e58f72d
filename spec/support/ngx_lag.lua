-- How late the worker's event loop runs, for spec/hosts/nginx_spec.lua and s3_nginx_spec.lua
-- (content_by_lua_file): GET /lag?start=1 starts a timer every 5 ms that records how late it fires and the CPU
-- the worker's thread used between two firings; GET /lag stops it and answers the worst lateness in seconds;
-- /lag?held=1 then answers the most CPU seconds between two firings, and how many times there were HELD or more.
-- A worker blocked by anything shows in the first, whatever the client saw; the second is the worker's own work,
-- whatever the loaded machine's other processes took of its cores meanwhile.
local ngx = rawget(_G, "ngx")
local ffi = require "ffi"
local d = ngx.shared.sv_lag

local HELD = 0.008

pcall(ffi.cdef, "typedef struct { long tv_sec; long tv_nsec; } sv_lag_timespec;"
  .. "int clock_gettime(int clk_id, sv_lag_timespec *tp);")
local ts = ffi.new("sv_lag_timespec")
local function cpu() -- this thread's CPU time (CLOCK_THREAD_CPUTIME_ID: 3), seconds
  ffi.C.clock_gettime(3, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function tick(premature, due, used)
  if premature or not d:get("run") then return end
  ngx.update_time()
  local late, held = ngx.now() - due, cpu() - used
  if late > d:get("max") then d:set("max", late) end
  if held > d:get("held") then d:set("held", held) end
  if held >= HELD then d:incr("held_n", 1) end
  ngx.timer.at(0.005, tick, ngx.now() + 0.005, cpu())
end

if ngx.var.arg_start then
  d:set("run", true)
  d:set("max", 0)
  d:set("held", 0)
  d:set("held_n", 0)
  ngx.update_time()
  assert(ngx.timer.at(0.005, tick, ngx.now() + 0.005, cpu()))
  ngx.say("started")
elseif ngx.var.arg_held then
  ngx.say(d:get("held") or -1, " ", d:get("held_n") or -1)
else
  d:set("run", false)
  ngx.say(d:get("max") or -1)
end
