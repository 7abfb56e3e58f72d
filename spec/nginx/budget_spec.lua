-- nginx/budget.lua on spec/support/fake_dict.lua (nginx's dict without nginx; spec/hosts/tenants_nginx_spec.lua
-- runs the real one): the key's lock, kept in the dict, taken when the dict is full and freed when its holder
-- died; a tenant's count rewritten in its own slot, so that a full dict goes on counting the tenants it holds.
local Dict = require "spec.support.fake_dict"
local D = require "starvideos.nginx.budget"
local core = require "starvideos.core"

local function budget()
  local dict = Dict.new()
  local ngx = { shared = { starvideos = dict }, sleep = function() end }
  local d = D.new(ngx, { name = "k-dict", bucket = { rate = 5 } })
  return d, dict
end

-- tenant T's create counted against tenant_limit count per 60 s.
local function count(d, tenant, n)
  return d:count_creates { { lim = { count = n or 3, per = 60 }, name = "tenant " .. tenant, tenant = tenant } }
end

describe("nginx's dict budget", function()
  it("a full dict counts on the tenants it holds: their lock and counts rewritten in place; a new tenant is "
    .. "refused naming the dict", function()
    local d, dict = budget()
    assert.is_true(count(d, "F"))
    dict.full = true
    assert.same({ true, true }, { count(d, "F"), count(d, "F") })
    local ok, wait, n = count(d, "F")
    assert.same({ false, 3 }, { ok, n }, "F's fourth create in 60 s")
    assert.is_true(wait > 0)
    local nok, err = count(d, "H")
    assert.is_nil(nok)
    assert.equal("io", err.kind)
    assert.equal("tenant_limit", err.field)
    assert.matches("lua_shared_dict starvideos: it is full", err.message, 1, true)
    assert.is_nil(dict:get(d.key .. ":creates:" .. core.hash("tenant H")), "H's count")
  end)

  it("a limit's 50%, 80% and 100% are said once per window across workers: the steps a reservation crossed are "
    .. "the ledger's to say, each marked in the dict", function()
    local d, dict = budget()
    local other = D.new({ shared = { starvideos = dict }, sleep = function() end }, { name = "k-dict", bucket = {} })
    local spec = "limit:0@4102444800@1000000" -- (spend.lua's: a limit of 1.00 in a window ending in 2100)
    local function ask(w, lid) return w:count_creates({}, 1, { lid = lid, price = 400000, spec = spec }) end
    assert.same({ true, "" }, { ask(d, "a") }, "0.40 of 1.00: no step")
    assert.same({ true, "1:50 1:80" }, { ask(other, "b") }, "0.80: 50% and 80%, crossed in the other worker")
    local ok, _, total, c = ask(d, "c")
    assert.same({ false, 800000, 1, true }, { ok, total, c.spend, c.told }, "refused: its 100% to be said")
    ok, _, _, c = ask(other, "d")
    assert.same({ false, false }, { ok, c.told }, "said once: not again by the other worker")
  end)

  it("a lock whose holder died (a worker killed while it held it) is freed once seen stale twice", function()
    local d, dict = budget()
    assert.is_nil(d:take(1, nil, "")) -- (the lock made, a token taken)
    dict:incr(d.lock, 1) -- a holder that never let go
    dict:set(d.lock_at, core.now() - 1)
    local t = 2
    assert.is_true(d:take(t, nil, "") > t, "the held lock was not waited for")
    assert.is_nil(d:take(t, nil, ""), "the dead holder's lock was not freed")
    assert.equal(0, dict:get(d.lock), "the lock left held")
  end)

  it("a hold (the service said none is left) keeps every worker's take waiting until it ends; a shorter one "
    .. "said later does not shorten it", function()
    local d, dict = budget()
    local other = D.new({ shared = { starvideos = dict } }, { name = "k-dict", bucket = { rate = 5 } }) -- a worker
    d:hold(10, 3)
    d:hold(10, 1)
    local at, held = other:take(10, nil, "")
    assert.is_true(at and at > 12.9 and at <= 13.01, tostring(at))
    assert.is_true(held, "the time is told as a hold's end (bucket.lua's too_long reads it)")
  end)
end)
