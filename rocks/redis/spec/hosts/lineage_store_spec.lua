-- Lineage on a store (issue 57: docs/lineage.md, docs/cli.md "list"): a family of three generations (a parent, its
-- child by again, its grandchild by again) made by one process with its own client, store = {url =, replicas = 1},
-- is what `starvideos list --store URL --tree` shows from another process, a second host of the same store; and
-- the same after a failover (the replica promoted behind the store's address, the primary killed -9).  Real
-- servers: a primary, its replica, the spec's TCP proxy in front (the store's address, then pointed at the promoted
-- replica), the emulator.  Each step waits for its condition: no timing is asserted.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local tcp_proxy = require "spec.support.tcp_proxy"
local C = require "spec.support.cli_run"

local missing = redis_run.missing()
local describe_redis = missing and pending or describe

local KEY = C.KEY

-- The first host: the family made in dir, its ids printed on one line ("family P C G"), or its error.
local FAMILY = [[
local starvideos = require "starvideos"
local url, store, dir = arg[1], arg[2], arg[3]
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, interval = 0.1, min_interval = 0.1,
  store = { url = store, replicas = 1, replica_timeout = 5 } }
local p = assert(client:generate({ model = "videos", prompt = "a red fox", duration = 4 },
  { out = dir .. "/parent.mp4" }))
local c = assert(client:again(p.id, { prompt = "a blue fox" }, { out = dir .. "/child.mp4" }))
local g = assert(client:again(c.id, { duration = 6 }, { out = dir .. "/grandchild.mp4" }))
io.write("family ", p.id, " ", c.id, " ", g.id, "\n")
client:close()
]]

describe_redis("lineage on a store", function()
  it("list --tree from a second host shows the three generations; after a failover (replicas = 1), the same",
    function()
      local dir = helper.tmpdir()
      local primary = redis_run.primary { aof = true }
      local replica = redis_run.replica(primary.port, { aof = true })
      local front = tcp_proxy.start { target = primary.port } -- (the store's address)
      local emu = helper.emulator { key = KEY, queued = 0.1, processing = 0.2 }
      finally(function()
        for _, x in ipairs { front, replica, primary } do x.stop() end
        emu:stop()
        helper.cleanup()
      end)
      assert(redis_run.wait_online(primary.port, 1))
      local store = front.url("redis")
      local maker = helper.run_lua(dir, "family", FAMILY, { emu.url, store, dir })
      local said = maker.pipe:read("*a")
      maker:close()
      local p, c, g = said:match("family (%S+) (%S+) (%S+)")
      assert(p, said)
      assert.equal(3, emu:creates(), said)
      local env = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
      local function tree()
        local r = C.run({ "list", "--store", store, "--tree" }, env)
        assert.equal(0, r.code, r.err)
        return C.lines(r.out)
      end
      local want = {
        p .. "  downloaded  videos  " .. dir .. "/parent.mp4  a red fox",
        "  again: " .. c .. "  downloaded  videos  " .. dir .. "/child.mp4  a blue fox",
        "    again: " .. g .. "  downloaded  videos  " .. dir .. "/grandchild.mp4  a blue fox",
        "3 tasks: 3 downloaded" }
      assert.same(want, tree(), "from a second host")
      local r = C.run({ "list", "--store", store, "--tree", "--json" }, env)
      local got = {}
      for i, l in ipairs(C.lines(r.out)) do
        local t = assert(cjson.decode(l), l)
        got[i] = { t.id, t.parent or "-", t.relation or "-", t.depth }
      end
      assert.same({ { p, "-", "-", 0 }, { c, p, "again", 1 }, { g, c, "again", 2 } }, got)
      assert(redis_run.caught_up(primary.port, replica.port))
      assert.equal("OK", redis_run.cli(replica.port, "REPLICAOF", "NO", "ONE")[1])
      front.mode("to " .. replica.port)
      primary.signal("KILL")
      assert.same(want, tree(), "after the failover")
      assert.equal(3, emu:creates(), "nothing was created again")
    end)
end)
