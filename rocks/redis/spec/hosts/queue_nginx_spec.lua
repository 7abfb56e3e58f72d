-- The queue (issue 80) kept inside nginx: 40 entries submitted from a plain Lua process (this one) with 0 creates,
-- then an nginx "host" of 2 workers, each keeping the store from init_worker's timer as docs/keep-and-fleet.md's
-- block says (rocks/redis/spec/support/fleet_conf.lua), creates and saves them: 40 creates counted at the emulator,
-- each entry once, 40 whole files, the batch all saved; the workers' log says which worker created what.
-- Pending where nginx, its lua module or redis-server is missing, and under any VM but lua5.4 (the code under test
-- runs in nginx's LuaJIT).
local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("the queue inside nginx", { "nginx" }) then return end
local helper = require "spec.helper"
if helper.vm ~= "lua5.4" then -- nginx runs its LuaJIT whatever VM runs busted: once is enough (make test-all)
  describe("the queue inside nginx", function()
    it("runs under lua5.4", function() pending("nginx's LuaJIT runs it: once") end)
  end)
  return
end
local redis_run = require "rocks.redis.spec.support.redis_run"
local why = redis_run.missing()
if why then
  describe("the queue inside nginx", function() pending(why) end)
  return
end
local fleet_conf = require "rocks.redis.spec.support.fleet_conf"
local queue_run = require "rocks.redis.spec.support.queue_run"
local starvideos = require "starvideos"

local KEY, N, LEASE = "k-queue-ngx", 40, 2

-- The host's nginx.conf: 2 workers keeping the store (the client `new`, a Lua expression) into videos; each create
-- a worker's keep is answered logged as "made ID by PID" (at each status of the task).
local function host_conf(dir, port, new, videos)
  local block = fleet_conf.fleet_block(new, videos, LEASE)
  local n
  block, n = block:gsub("client:keep { ", "client:keep { on_progress = function(ev) if ev.type == \"status\" and "
    .. "ev.id then ngx.log(ngx.NOTICE, \"made \", ev.id, \" by \", ngx.worker.pid()) end end, ")
  assert(n == 1, "the fleet block has no client:keep { ")
  local lines = nginx_run.conf_head(dir, 2)
  for _, l in ipairs { block, string.format("    server { listen 127.0.0.1:%d;", port),
    "        location = /ping { content_by_lua_block { ngx.say(\"pong\") } }", "    }", "}", "" } do
    lines[#lines + 1] = l
  end
  return table.concat(lines, "\n")
end

describe("the queue inside nginx", function()
  it("40 entries submitted from a Lua process, 0 creates; an nginx of 2 workers keeping the store from their timers "
    .. "creates each once: 40 creates, 40 whole files", function()
    local dir, videos = helper.tmpdir(), helper.tmpdir()
    local srv, emu = redis_run.start_pair { key = KEY, queued = 0.2, processing = 0.5 }
    local host, c
    finally(function()
      if host then host.stop() end
      if c then c:close() end
      redis_run.stop_pair(srv, emu)
    end)
    c = starvideos.new { api_key = KEY, base_url = emu.url, store = srv.url }
    local b = assert(c:submit(queue_run.entries(N, "ngx"), { out = videos .. "/%02d.mp4" }))
    assert.same({ N, 0 }, { b.queued, b.known })
    assert.are.equal(0, emu:creates(), "submit sent nothing")

    local new = string.format("require(\"starvideos\").new { api_key = %q, base_url = %q, requests_per_second = 10, "
      .. "store = %q }", KEY, emu.url, srv.url)
    host = nginx_run.serve(dir, function(port) return host_conf(dir, port, new, videos) end)
    queue_run.saved(c, b.batch, N, 120, function()
      return tostring(helper.read_file(dir .. "/error.log")):sub(-3000) -- (the workers' log)
    end)
    local made, whole = queue_run.creates(emu), 0
    for i = 1, N do
      if helper.whole_mp4(string.format("%s/%02d.mp4", videos, i), 5) then whole = whole + 1 end
    end
    local by, seen = {}, {} -- worker pid -> its creates (a task's statuses: each poll's)
    for id, pid in tostring(helper.read_file(dir .. "/error.log")):gmatch("made (%S+) by (%d+)") do
      if not seen[id] then seen[id], by[pid] = true, (by[pid] or 0) + 1 end
    end
    local said = {}
    for pid, k in pairs(by) do said[#said + 1] = pid .. ": " .. k end
    io.stderr:write(string.format("\nqueue inside nginx: %d creates (by worker: %s), %d entries created twice, %d "
      .. "whole files\n", made.n, table.concat(said, ", "), made.twice, whole))
    assert.are.equal(N, made.n)
    assert.are.equal(0, made.twice)
    assert.are.equal(N, whole)
    local logged = 0
    for _, k in pairs(by) do logged = logged + k end
    assert.are.equal(N, logged, "each create answered in a worker's keep")
    assert.same({ queued = 0, created = 0, saved = N, failed = 0, total = N }, c:batch(b.batch))
  end)
end)
