-- The queue (issue 80) on a Sentinel-managed store: 200 entries submitted through redis+sentinel:// with 0 creates;
-- 4 keepers (processes of their own, replicas = 1: a create's pending record acknowledged by a replica before it is
-- sent); the primary killed -9 once 50 entries are created, the sentinels promote a replica, the keepers go on there:
-- 200 creates counted at the emulator, each entry created once, 200 whole files, the batch all saved.  Real servers:
-- a primary, 2 replicas, 3 sentinels (rocks/redis/spec/support/redis_run.lua's start_sentinel).  With replicas = 1
-- a submit waits for a replica too: without one it fails, saying so, and a submit again once one is there finds its
-- entries known.
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local queue_run = require "rocks.redis.spec.support.queue_run"

local why = redis_run.missing(true)
if why then
  describe("the queue on Sentinel", function() pending(why) end)
  return
end
local starvideos = require "starvideos"

local KEY, N, KILL_AT = "k-queue-sentinel", 200, 50

describe("the queue on a Sentinel-managed store", function()
  it("200 entries submitted with 0 creates; 4 keepers, the primary killed -9 mid-way: 200 creates, each entry once, "
    .. "200 whole files", function()
    local dir, videos = helper.tmpdir(), helper.tmpdir()
    local set = redis_run.start_sentinel { down_after = 1000 }
    local emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.5 }
    local procs, c = {}, nil
    finally(function()
      for _, p in ipairs(procs) do helper.execute("kill -9 " .. p.pid .. " 2>/dev/null"); p:close() end
      if c then c:close() end
      set.stop()
      emu:stop()
    end)
    assert(redis_run.wait_online(set.primary.port, 2)) -- (both replicas synced)
    local store = { url = set.url, replicas = 1 }
    c = starvideos.new { api_key = KEY, base_url = emu.url, store = store }
    local b = assert(c:submit(queue_run.entries(N, "entry"), { out = videos .. "/%03d.mp4" }))
    assert.same({ N, 0 }, { b.queued, b.known })
    assert.are.equal(0, emu:creates(), "submit sent nothing")

    local opts = { api_key = KEY, base_url = emu.url, store = store, requests_per_second = 20 }
    for i = 1, 4 do procs[i] = queue_run.keeper(dir, "keeper" .. i, opts, videos, 180, 2) end
    assert.is_true(helper.wait_until(function() return emu:creates() >= KILL_AT end, 60), "the keepers created "
      .. emu:creates())
    local old = set.primary.port
    set.primary.signal("KILL")
    local at_kill = emu:creates()
    assert.is_true(helper.wait_until(function() local m = set.master(); return m and m ~= old end, 40),
      "no failover: " .. tostring(helper.read_file(set.sentinels[1].dir .. "/sentinel.log")):sub(-3000))
    local at_failover = emu:creates()

    queue_run.saved(c, b.batch, N, 180, function() return queue_run.said(procs) end)
    local made, whole = queue_run.creates(emu), 0
    for i = 1, N do
      if helper.whole_mp4(string.format("%s/%03d.mp4", videos, i), 5) then whole = whole + 1 end
    end
    io.stderr:write(string.format("\nqueue on Sentinel: the primary killed at %d creates (%d when the sentinels named "
      .. "the new one): %d creates, %d entries created twice, %d whole files\n", at_kill, at_failover, made.n,
      made.twice, whole))
    assert.truthy(at_kill < N, "every entry was created before the kill")
    assert.are.equal(N, made.n)
    assert.are.equal(0, made.twice)
    assert.are.equal(N, whole)
    assert.same({ queued = 0, created = 0, saved = N, failed = 0, total = N }, c:batch(b.batch))
  end)

  it("with replicas = 1 and no replica, a submit fails naming the replicas; again with one, its entries are known",
    function()
    local srv = redis_run.primary()
    local replica
    finally(function()
      if replica then replica.stop() end
      srv.stop()
    end)
    local c = starvideos.new { api_key = KEY, base_url = "http://127.0.0.1:9", store = { url = srv.url, replicas = 1,
      replica_timeout = 0.2 } }
    local list, out = queue_run.entries(3, "replicated"), helper.tmpdir() .. "/%d.mp4"
    local got, err = c:submit(list, { out = out })
    assert.is_nil(got)
    assert.are.equal("io", err.kind)
    assert.matches("not acknowledged by 1 replicas", err.message, 1, true)
    replica = redis_run.replica(srv.port)
    assert(redis_run.wait_online(srv.port, 1))
    -- (submitted again until it is acknowledged, as the error says: a diskless replica just synced takes the stream,
    -- and so WAIT's GETACK, only after its first ACK, within a second)
    assert.is_true(helper.wait_until(function()
      got, err = c:submit(list, { out = out })
      return got ~= nil
    end, 10), err and err.message)
    assert.same({ 0, 3 }, { got.queued, got.known })
    c:close()
  end)
end)
