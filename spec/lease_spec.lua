-- The lease's rule (lua/starvideos/lease.lua, docs/keep-and-fleet.md "An owner that lost its lease") in the
-- fast tier: a fake clock, no Redis.  The numbers (fences) on a journal ledger, a holder's lapses, when a commit
-- asks first, the renewal's and keep's periods, and a task let go.  The store's side of the same rules: the redis
-- rock's lease_store_spec.lua.

local helper = require "spec.helper"
local rule = require "starvideos.lease"
local Ledger = require "starvideos.records.ledger"
local journal = require "starvideos.records.journal"

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

-- A clock the spec moves: clock.t.
local function fake_clock()
  local c = { t = 0 }
  c.now = function() return c.t end
  return c
end

describe("the lease's rule (fences, lapses, periods) with a fake clock", function()
  after_each(function() helper.cleanup() end)

  it("numbers a record 1 without a fence, and a claim one more", function()
    assert.same({ 1, 1, 3 }, { rule.number(nil), rule.number(""), rule.number("3") })
    assert.same({ 2, 3, 2 }, { rule.claimed(nil), rule.claimed("2"), rule.claimed(1) })
  end)

  it("a holder counts a lapse for a renewal answered a lease less a tenth or more after the one before", function()
    local h = rule.holder {}
    rule.answered(h, 10, 100, 1000) -- (its first: never a lapse)
    assert.same({ 10, 0 }, { h.renewed, h.lapses })
    rule.answered(h, 10.5, 10.899, 1000) -- on time: 0.899 s after the one before
    assert.same({ 10.5, 0 }, { h.renewed, h.lapses })
    rule.answered(h, 11.4, 11.4, 1000) -- late: 0.9 of a lease after it
    assert.same({ 11.4, 1 }, { h.renewed, h.lapses })
    rule.answered(h, 19, 20, 10000) -- on time for a lease of 10 s: 8.6 s
    assert.equal(1, h.lapses)
    assert.same({ 0, 5 }, { rule.holder({}, 5).lapses, rule.holder({}, 5).renewed })
  end)

  it("renews every third of a lease; keep looks every sixth of it, within 0.1 s and 5 s", function()
    local h = rule.holder({}, 100)
    assert.is_false(rule.due(h, 100.999, 3000))
    assert.is_true(rule.due(h, 101, 3000))
    assert.is_false(rule.due(h, 109.9, 30000))
    assert.is_true(rule.due(h, 110, 30000))
    assert.near(0.5, rule.look(3), 1e-9)
    assert.near(2, rule.look(12), 1e-9)
    assert.equal(5, rule.look(60))
    assert.equal(0.1, rule.look(0.3))
  end)

  it("a task is lapsed once its holder's lease went unrenewed for 0.9 of it, or lapsed since it was taken; "
    .. "a commit asks from half a lease", function()
    local clock = fake_clock()
    local f = rule.fences(1000, clock.now)
    local h = rule.holder({}, 0)
    f:take("a", 1, h)
    assert.same({ 1, h }, { f:holder("a") })
    clock.t = 0.499
    assert.same({ false, false }, { f:lapsed("a"), f:lapsed("a", rule.ASK) })
    clock.t = 0.5
    assert.same({ false, true }, { f:lapsed("a"), f:lapsed("a", rule.ASK) })
    clock.t = 0.899
    assert.is_false(f:lapsed("a"))
    clock.t = 0.9
    assert.is_true(f:lapsed("a"))
    -- renewed late: a lapse; what it held before stays lapsed, renewed or not; what it takes after does not
    rule.answered(h, 1.2, 1.2, 1000)
    clock.t = 1.21
    assert.same({ true, true }, { f:lapsed("a"), f:lapsed("a", rule.ASK) })
    f:take("b", 1, h)
    assert.same({ false, false }, { f:lapsed("b"), f:lapsed("b", rule.ASK) })
    assert.is_false(f:lapsed("never held"))
    assert.is_nil(f:holder("never held"))
  end)

  it("the store's yes to a hold, answered within half a lease, renews the holder and clears its lapse", function()
    local clock = fake_clock()
    local f = rule.fences(1000, clock.now)
    local h = rule.holder({}, 0)
    f:take("a", 2, h)
    clock.t = 2 -- the lease ran out: a lapse
    assert.is_true(f:lapsed("a"))
    clock.t = 2.5 -- asked at 2, answered half a lease after: a late yes, asked again
    assert.is_false(f:renewed("a", 2))
    assert.is_true(f:lapsed("a"))
    clock.t = 2.999
    assert.is_true(f:renewed("a", 2.5))
    assert.same({ 2.5, 1 }, { h.renewed, h.lapses }) -- (its renewal came 2.5 s after the one before)
    assert.is_false(f:lapsed("a"))
    assert.is_false(f:lapsed("a", rule.ASK))
  end)

  it("a task let go forgets its number and is never lapsed", function()
    local clock = fake_clock()
    local f = rule.fences(1000, clock.now)
    local h = rule.holder({}, 0)
    f:take("a", 3, h)
    assert.same({ 3, h }, { f:let_go("a") })
    assert.is_nil(f:holder("a"))
    clock.t = 5
    assert.is_false(f:lapsed("a"))
    assert.is_nil(f:let_go("a"))
  end)

  it("on a journal a holder lapses only when its lease's file is gone, whatever the clock", function()
    local dir = helper.tmpdir()
    local clock = fake_clock()
    local f = rule.fences(nil, clock.now)
    helper.write_file(dir .. "/lease", "")
    f:take("a", 1, { file = dir .. "/lease" })
    f:take("b", 1, nil) -- (no lease: never lapsed)
    clock.t = 1e6
    assert.same({ false, false }, { f:lapsed("a"), f:lapsed("b") })
    os.remove(dir .. "/lease")
    assert.same({ true, false }, { f:lapsed("a"), f:lapsed("b") })
  end)

  it("on a journal ledger: a create holds 1, each keeper's claim one more; the owner, its lease gone, hears it "
    .. "taken; a replayed create keeps the claim's holder and number; a task let go, failed or downloaded "
    .. "forgets its number", function()
    local dir = helper.tmpdir()
    local path = dir .. "/tasks.jsonl"
    local owner = Ledger.new(path, {})
    assert.is_true(owner:before_create(PARAMS, "l1"))
    assert.is_true(owner:created({ id = "t1" }, PARAMS, "l1"))
    assert.equal(1, (owner.fences:holder("t1")))
    assert.is_false(owner:lapsed("t1"))
    assert.is_true((owner:confirm("t1"):poll()))
    assert.is_nil(owner:confirm("another's"))
    -- its lease's file removed (a cleaner of /tmp): lapsed; a keeper claims the task at 2
    os.remove(path .. ".owners/" .. owner.lease.id)
    assert.is_true(owner:lapsed("t1"))
    local keep = Ledger.new(path, {})
    local k = assert(keep:keeper())
    local tasks = assert(k:orphans())
    assert.equal("t1", tasks[1] and tasks[1].id)
    assert.equal(2, (keep.fences:holder("t1")))
    assert.equal(2, journal.follow(path).by_id.t1.fence)
    local held, why = owner:confirm("t1"):poll()
    assert.same({ false, k.id }, { held, why.by })
    -- the owner's create recorded again: the task stays the keeper's, at 2
    assert.is_true(owner:created({ id = "t1" }, PARAMS, "l1"))
    local t = journal.follow(path).by_id.t1
    assert.same({ k.id, 2 }, { t.owner, t.fence })
    -- the keeper gone, another claims it at 3; the first keeper hears it taken
    k:close()
    local keep2 = Ledger.new(path, {})
    local k2 = assert(keep2:keeper())
    assert.equal("t1", (assert(k2:orphans())[1] or {}).id)
    assert.equal(3, (keep2.fences:holder("t1")))
    held, why = keep:confirm("t1"):poll()
    assert.same({ false, k2.id }, { held, why.by })
    assert.is_true((keep2:confirm("t1"):poll()))
    -- let go: ended, failed, downloaded
    keep2:let_go("t1", false)
    assert.equal(3, (keep2.fences:holder("t1")))
    keep2:let_go("t1", true)
    assert.is_nil(keep2.fences:holder("t1"))
    assert.is_nil(keep2:confirm("t1"))
    keep.fences:take("t2", 1, nil)
    keep:status("t2", "failed")
    assert.is_nil(keep.fences:holder("t2"))
    helper.write_file(dir .. "/v.mp4", "video")
    keep.fences:take("t3", 1, nil)
    keep:downloaded("t3", dir .. "/v.mp4")
    assert.is_nil(keep.fences:holder("t3"))
    k2:close()
    for _, l in ipairs { owner, keep, keep2 } do l:close() end
  end)
end)
