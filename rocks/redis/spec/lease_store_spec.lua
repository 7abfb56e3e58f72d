-- The lease's rule (lua/starvideos/lease.lua) on the store's side, in the fast tier without Redis: a store's lease
-- (fleet/leases.lua) through the rule, and the store's scripts run on a table that answers their few Redis commands
-- (support/redis_sandbox.lua).  The rule itself and a journal ledger's numbers: spec/lease_spec.lua; against a real
-- redis-server and real processes: hosts/ledger_redis_spec.lua and fence_spec.lua.

local helper = require "spec.helper"
local sandbox = require "rocks.redis.spec.support.redis_sandbox"
require "starvideos.fleet.scripts" -- (the ledger's scripts)

describe("the lease's rule in the store (fleet/leases.lua, the ledger's scripts)", function()
  after_each(function() helper.cleanup() end)

  it("a store's lease (fleet/leases.lua) through the rule: renewed when due, a late renewal a lapse, a new "
    .. "identity heard (a reset is the store's to find), its ledger turned every third of a lease", function()
    local leases = require "starvideos.fleet.leases"
    local core = require "starvideos.core"
    local ids, sent = { "A", "A", "B" }, 0
    local store = { send_script = function() sent = sent + 1; return sent end, wait = function(_, n) return ids[n] end }
    local ledger = { store = store, prefix = "p:", lease_ms = 3000 }
    local lease = leases.hold("spec " .. tostring(ids))
    assert.is_true(lease:renew(ledger, true))
    assert.is_true(lease:renew(ledger)) -- not due for a second
    assert.same({ 1, 0 }, { sent, lease.lapses })
    ledger.lease_ms = 30
    helper.sleep(0.05) -- past a lease of 30 ms
    assert.is_true(lease:renew(ledger))
    assert.same({ 2, 1 }, { sent, lease.lapses })
    assert.is_true(lease:renew(ledger, true))
    assert.same({ 3, "B" }, { sent, lease.identity })
    lease:release()
    local timers, turns = {}, 0
    local loop = { at = function(_, t, obj) timers[#timers + 1] = { t, obj } end,
      turning = function() turns = turns + 1 end }
    ledger.lease_ms, ledger.lease = 3000, lease
    local t0 = core.now()
    local r = leases.renewer(ledger, loop)
    assert.near(t0 + 1, timers[1][1], 0.01)
    r:advance(10)
    assert.same({ 1, 11, r }, { turns, timers[2][1], timers[2][2] })
  end)


  it("the store's scripts: a create at 1, a record without a number as 1, a claim one more, a replayed create "
    .. "keeps the claim, a hold and a downloaded record only at the holder's number", function()
    local r = sandbox.new()
    local function run(name, keys, args) return (r:run("ledger_" .. name, keys, args)) end
    local function field(k, f) return r.db[k] and r.db[k].v[f] end
    local P = "starvideos:{t}:"
    local KEYS = { P .. "task:t1", P .. "unfinished", P .. "pend:l1", P .. "pending", P .. "tasks",
      more = { P .. "tasks:seq" } }
    assert.equal(1, run("created", KEYS, { "t1", "l1", "id", "t1", "owner", "me" }))
    assert.same({ "me", "1" }, { field(KEYS[1], "owner"), field(KEYS[1], "fence") })
    assert.same({ 1 }, run("hold", { KEYS[1], P .. "owner:me" }, { "1", "1000" }))
    assert.same({ 0, "me", "", "" }, run("hold", { KEYS[1], P .. "owner:me" }, { "2", "1000" }))
    r.db[P .. "owner:me"] = nil -- its lease ran out
    -- a keeper claims it (the owner's lease gone): 2, then 3
    local function claim(me)
      local v = run("records", { P .. "unfinished", more = { P .. "owner:" .. me } }, { me, "1000", "" })
      local row = {}
      for i = 1, #v[1][1], 2 do row[v[1][1][i]] = v[1][1][i + 1] end
      return row.claimed
    end
    assert.equal("2", claim("k1"))
    r.db[P .. "owner:k1"] = nil
    assert.equal("3", claim("k2"))
    assert.same({ 0, "k2", "", "" }, run("hold", { KEYS[1], P .. "owner:me" }, { "1", "1000" }))
    assert.same({ 1 }, run("hold", { KEYS[1], P .. "owner:k2" }, { "3", "1000" }))
    -- the owner's create written again (a queued replay, a store reset): the claim's holder and number stay
    run("created", KEYS, { "t1", "", "id", "t1", "owner", "me" })
    assert.same({ "k2", "3" }, { field(KEYS[1], "owner"), field(KEYS[1], "fence") })
    -- a record of an older version (no fence): held at 1, claimed at 2
    r:call("HSET", P .. "task:old", "id", "old", "owner", "gone")
    r:call("SADD", P .. "unfinished", "old")
    assert.same({ 1 }, run("hold", { P .. "task:old", P .. "owner:gone" }, { "1", "1000" }))
    r.db[P .. "owner:gone"] = nil
    assert.equal("2", claim("k3"))
    -- downloaded: only at the holder's number
    local dl = { KEYS[1], P .. "unfinished" }
    assert.equal(0, run("downloaded", dl, { "t1", "/a.mp4", "60", "", "", "1" }))
    assert.is_nil(field(KEYS[1], "path"))
    assert.equal(1, run("downloaded", dl, { "t1", "/b.mp4", "60", "", "", "3" }))
    assert.equal("/b.mp4", field(KEYS[1], "path"))
  end)
end)
