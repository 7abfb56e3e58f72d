-- The store on Sentinel (issue 38 item 1), against real servers started here from Debian's package (1
-- primary, 2 replicas, 3 sentinels: redis-server --sentinel, rocks/redis/spec/support/redis_run.lua's start_sentinel):
-- the primary killed -9, the client finds the new master through the sentinels and writes again within
-- down-after-milliseconds + 5 s; the old primary, back at its address as an empty master, is never written
-- to (its EVAL count, at the server); a master the sentinels name that says it is a replica (ROLE) is
-- refused; the same inside nginx.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local nginx_run = require "spec.support.nginx_run"
local core = require "starvideos.core"

local why = redis_run.missing(true)
if why then
  describe("the store on Sentinel", function() pending(why) end)
  return
end

local Store = require "starvideos.fleet.store"
local DOWN = 1 -- s: the sentinels' down-after-milliseconds
local WRITE = "return redis.call('INCR', KEYS[1])"

-- How many EVALs the server on port ran since it started (INFO commandstats; replication carries a
-- script's effects, never its EVAL).
local function evals(port)
  local calls = table.concat(redis_run.cli(port, "INFO", "commandstats"), "\n"):match("cmdstat_eval:calls=(%d+)")
  return tonumber(calls) or 0
end

-- Writes on s until one succeeds or `seconds` pass: the seconds it took, or nil and the last error.
local function write_until(s, seconds)
  local t0 = core.now()
  while true do
    local v, err = s:call("EVAL", WRITE, "1", "writes")
    if v then return core.now() - t0 end
    if core.now() - t0 > seconds then return nil, err end
    core.sleep(0.05)
  end
end

describe("the store on Sentinel", function()
  local set

  setup(function() set = redis_run.start_sentinel { down_after = DOWN * 1000 } end)
  teardown(function()
    if set then set.stop() end
    helper.cleanup()
  end)

  it("a first-listed sentinel that hangs (a blackholed path) or is no sentinel (a plain Redis): the next asked, "
    .. "a write within the store's timeout (issue 49)", function()
      local hole = require("spec.support.tcp_proxy").start { target = set.sentinels[1].port }
      finally(hole.stop)
      hole.mode("blackhole")
      for _, first in ipairs { hole.port, set.replicas[1].port } do
        local url = string.format("redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster", first, set.sentinels[2].port)
        local s = Store.new(url, { timeout = 2 })
        local t0 = core.now()
        local v, err = s:call("EVAL", WRITE, "1", "writes")
        local took = core.now() - t0
        s:close()
        assert.truthy(v, err and err.message)
        assert.truthy(took < 2, took)
      end
    end)

  it("finds the new master after the primary is killed -9, within down-after + 5 s, never the old one", function()
    local s = Store.new(set.url, { timeout = 1 })
    finally(function() s:close() end)
    assert.equal("master", s:call("ROLE")[1])
    for _ = 1, 20 do assert(s:call("EVAL", WRITE, "1", "writes")) end
    local old = set.primary
    old.signal("KILL")
    local killed = core.now()
    local took, err = write_until(s, DOWN + 10)
    assert.is_number(took, err and err.message)
    took = core.now() - killed
    assert.is_true(took < DOWN + 5, string.format("writes resumed %.2f s after the kill", took))
    -- the sentinels agree on the new master (the one the spec asks may name it a moment after the one the client
    -- asked first: each sentinel learns the failover from the others' hellos)
    local new
    assert(helper.wait_until(function() new = set.master(); return new and new ~= old.port end, 5),
      "the sentinels still name the killed primary " .. tostring(old.port) .. " 5 s after writes resumed")
    assert.are_not.equal(old.port, new)
    -- the old primary back at its address, empty, a master until the sentinels make it a replica; the
    -- client's connections cut (it connects again), and a new store of the same settings (the master remembered)
    old.stop()
    set.primary = redis_run.start { port = old.port }
    redis_run.cli(new, "CLIENT", "KILL", "TYPE", "normal")
    local s2 = Store.new(set.url, { timeout = 1 })
    finally(function() s2:close() end)
    for _ = 1, 40 do
      assert(write_until(s, 3))
      assert(write_until(s2, 3))
      core.sleep(0.05)
    end
    assert.equal(0, evals(set.primary.port))
    print(string.format("\nSentinel: writes resumed %.2f s after kill -9 (down-after %d s); 0 EVALs at the old primary",
      took, DOWN))
  end)
end)

-- A set of its own, whose sentinels do not fail over within the test (a master that says it is a replica
-- looks down to them: with down-after 1 s they would fail over meanwhile).
describe("the store on Sentinel, its sentinels naming a replica", function()
  local set

  setup(function() set = redis_run.start_sentinel { down_after = 60000, replicas = 1 } end)
  teardown(function()
    if set then set.stop() end
    helper.cleanup()
  end)

  it("refuses the master named when it says it is a replica (ROLE), writing nothing there", function()
    local replica = set.replicas[1]
    local before = evals(replica.port)
    for _, sn in ipairs(set.sentinels) do -- the sentinels told to watch the replica as the master
      redis_run.cli(sn.port, "SENTINEL", "REMOVE", "mymaster")
      redis_run.cli(sn.port, "SENTINEL", "MONITOR", "mymaster", "127.0.0.1", replica.port, 2)
    end
    local s = Store.new(set.url, { timeout = 1 })
    finally(function() s:close() end)
    local v, err = s:call("EVAL", WRITE, "1", "writes")
    assert.is_nil(v)
    assert.equal("io", err.kind)
    assert.truthy(err.message:find("the server is a slave, not the master", 1, true), err.message)
    assert.equal(before, evals(replica.port))
  end)
end)

if nginx_run.pending_unless_ready("the store on Sentinel inside nginx", { "nginx" }) then return end

describe("the store on Sentinel inside nginx", function()
  local set, ngx_srv, dir

  setup(function()
    dir = helper.tmpdir()
    set = redis_run.start_sentinel { down_after = DOWN * 1000 }
    local code = string.format([[
local s = require("starvideos.fleet.store").new(%q, { timeout = 1 })
local v, err = s:call("EVAL", %q, "1", "writes")
ngx.say(v or (err.kind .. " " .. err.message))]], set.url, WRITE)
    ngx_srv = nginx_run.serve_lua(dir, { { "/write", code } })
  end)
  teardown(function()
    if ngx_srv then ngx_srv.stop() end
    if set then set.stop() end
    helper.cleanup()
  end)

  local function write() return ngx_srv.get("/write") end

  it("finds the master, and the new one after the primary is killed -9, within down-after + 5 s", function()
    assert.matches("^%d+$", write())
    set.primary.signal("KILL")
    local killed, out = core.now(), write()
    while not out:match("^%d+$") and core.now() - killed < DOWN + 10 do
      core.sleep(0.05)
      out = write()
    end
    local took = core.now() - killed
    assert.matches("^%d+$", out)
    assert.is_true(took < DOWN + 5, string.format("writes resumed %.2f s after the kill", took))
    local new -- (the sentinels agree a moment later: as above)
    assert(helper.wait_until(function() new = set.master(); return new and new ~= set.primary.port end, 5),
      "the sentinels still name the killed primary " .. tostring(set.primary.port) .. " 5 s after writes resumed")
    print(string.format("\nSentinel inside nginx: writes resumed %.2f s after kill -9 (down-after %d s)", took, DOWN))
  end)
end)
