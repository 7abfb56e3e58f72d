-- How late the worker's event loop runs, for spec/hosts/nginx_spec.lua
-- (content_by_lua_file): GET /lag?start=1 starts a timer every 5 ms that
-- records how late it fires; GET /lag stops it and answers the worst lateness
-- in seconds.  A worker blocked by anything shows here, whatever the client saw.
local ngx = rawget(_G, "ngx")
local d = ngx.shared.sv_lag

local function tick(premature, due)
  if premature or not d:get("run") then return end
  ngx.update_time()
  local late = ngx.now() - due
  if late > d:get("max") then d:set("max", late) end
  ngx.timer.at(0.005, tick, ngx.now() + 0.005)
end

if ngx.var.arg_start then
  d:set("run", true)
  d:set("max", 0)
  ngx.update_time()
  assert(ngx.timer.at(0.005, tick, ngx.now() + 0.005))
  ngx.say("started")
else
  d:set("run", false)
  ngx.say(d:get("max") or -1)
end
