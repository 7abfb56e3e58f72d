-- The key's budget shared fairly between the tenants waiting (bucket.lua's share, docs/tenants-and-costs.md):
-- one tenant with hundreds of creates queued does not hold back another's first creates beyond its fair
-- share, a tenant alone has the whole rate, and the rule is the same in this process's bucket and in nginx's
-- shared dict (a stand-in on the spec's clock).  Every asker is driven on that clock, as a loop drives its jobs:
-- a token at once, or back when told.
local Bucket = require "starvideos.bucket"
local Dict = require "spec.support.fake_dict"

local Cases = require "spec.support.fair_cases"
local drive = Cases.drive

local function in_process(rate)
  local b = Bucket.new(rate)
  return function(t, tenant, asker) return b:token(t, true, asker, tenant) end
end

local function in_dict(rate)
  local dict = Dict.new()
  local d = require("starvideos.nginx.budget").new({ shared = { starvideos = dict } },
    { name = "k-fair", bucket = { rate = rate } })
  return function(t, tenant)
    dict.now = t
    return d:take(t, nil, Bucket.tenant_id(tenant))
  end
end

for _, p in ipairs { { "this process's bucket", in_process, "process" }, { "nginx's shared dict", in_dict, "dict" } } do
  Cases.run(p[1], p[2], { describe = describe, it = it, assert = assert }, p[3])
end

describe("the callers waiting on a full bucket", function()
  -- drive's take, counting the asks: polls (create false) or creates of one tenant.
  local function counted(rate, create)
    local b, asks = Bucket.new(rate), 0
    return function(t, tenant, asker) asks = asks + 1; return b:token(t, create, asker, tenant) end,
      function() return asks end
  end

  it("of two tenants, each line at its tenant's share: 100 polls each at 10 a second, about 2 asks a token", function()
    local askers = {}
    for i = 1, 100 do
      askers[#askers + 1] = { at = 0, tenant = "A", name = "A" .. i }
      askers[#askers + 1] = { at = 0, tenant = "B", name = "B" .. i }
    end
    local take, asks = counted(10, false)
    local got, order = drive(askers, take, 60)
    assert.equal(200, #order)
    local last = 0
    for _, at in pairs(got) do last = math.max(last, at) end
    -- (each line spaced at the whole rate: 579 asks; a tenant's share held by its own bucket: half come back in vain;
    -- one token a slot, none to spare since a second holds no more than the rate: B loses each tie to A's line, 570)
    assert.is_true(asks() <= 3 * 200, asks() .. " asks for 200 tokens")
    -- (10 at once, then 10 a second less 5%: 20.9 s; B's line, spaced at its share, ends at 21.84 s)
    assert.is_true(last <= 22, string.format("the last token went out at %.2f s (10 at once, 10 a second less 5%%)",
      last))
  end)

  it("hold no place once gone (their job done: cancelled, ended): the next told the next token", function()
    local b, waiting = Bucket.new(10), {}
    for i = 1, 100 do waiting[i] = {}; b:token(0, false, waiting[i], nil) end -- (10 taken, 90 told up to 9.0 s)
    for i = 11, 100 do waiting[i].done = true end -- (cancelled: a closed client's jobs)
    local at
    for _ = 1, 20 do at = at or b:token(3, false, {}, nil) end -- (the tokens there taken, the next told)
    -- (10 at 3 s: the next at the end of their second and its 50 ms to spare, 4.05 s, not behind 90 jobs, 12.5 s)
    assert.is_true(at and at < 4.1, "told " .. tostring(at) .. " at 3 s: behind the jobs gone")
  end)

  it("leave their line at once (B:leave, issue 66, 10): 60 creates gone at 0.5 s, a poll no longer held behind "
    .. "their claim, the next create told the next token", function()
    local b, waiting = Bucket.new(5), {}
    for i = 1, 60 do waiting[i] = {}; b:token(0, true, waiting[i], nil) end -- (5 taken, 55 told up to some 11 s)
    assert.is_true(b.kv.get("claim:") > 10) -- (their claim: a poll would wait behind the last of them)
    for i = 1, 60 do b:leave(waiting[i]) end -- (their jobs cancelled within the second of the last sweep)
    -- the bucket's next (no more than 5 in any 1.05 s: 1.05 s), not behind the 55 gone (11 s and more)
    local poll = b:token(0.5, false, {}, nil)
    assert.is_true(poll <= 1.1, "a poll told " .. tostring(poll) .. " at 0.5 s")
    local create = b:token(0.5, true, {}, nil)
    assert.is_true(create <= 1.1, "a create told " .. tostring(create) .. " at 0.5 s")
  end)

  for _, kind in ipairs { "polls", "creates" } do
    it("come back about once for each token (" .. kind .. "): 100 waiting at 10 a second, in turn", function()
      local askers = {}
      for i = 1, 100 do askers[i] = { at = 0, name = "p" .. i } end
      local take, asks = counted(10, kind == "creates")
      local got, order = drive(askers, take, 60)
      assert.equal(100, #order)
      -- each told to come back all at the next token's time, 100 waiting asked ~5,000 times
      assert.is_true(asks() <= 2 * 100, asks() .. " asks for 100 tokens")
      local last = 0
      for _, at in pairs(got) do last = math.max(last, at) end
      -- (10 at once, then none for their second and its 50 ms to spare, then one every 0.105 s: 10.4 s)
      assert.is_true(last <= 10.5, string.format("the last token went out at %.2f s (10 a second, 10 at once)", last))
      for i = 2, 100 do -- (in the order they asked: the line's)
        assert.is_true(got["p" .. i] >= got["p" .. (i - 1)], "p" .. i .. " before p" .. (i - 1))
      end
    end)
  end
end)

describe("two processes waiting on one remote bucket (nginx's dict, a store)", function()
  it("each has about half the tokens while both wait, in about one ask a token", function()
    local dict, asks = Dict.new(), 0
    local remote = require("starvideos.nginx.budget").new({ shared = { starvideos = dict } },
      { name = "k-two", bucket = { rate = 5 } })
    local buckets = { A = Bucket.new(5), B = Bucket.new(5) }
    for _, b in pairs(buckets) do b:use(remote) end
    local askers = {}
    for i = 1, 80 do -- (drive's "tenant" is the process here; A wins every tie)
      askers[#askers + 1] = { at = 0, tenant = "A", name = "A" .. i }
      askers[#askers + 1] = { at = 0, tenant = "B", name = "B" .. i }
    end
    local got = drive(askers, function(t, process, asker)
      asks, dict.now = asks + 1, t
      return buckets[process]:token(t, false, asker, nil)
    end, 60)
    local n = { A = 0, B = 0 }
    for name, at in pairs(got) do if at >= 1 and at < 25 then n[name:sub(1, 1)] = n[name:sub(1, 1)] + 1 end end
    -- (5 a second with 5% to spare, the first after the burst at 1.05 s: 115)
    assert.is_true(n.A + n.B >= 113, (n.A + n.B) .. " tokens from 1 s to 25 s at 5 a second")
    -- (one token a slot, none to spare: B, whose callers lose every tie, has 40, A 75)
    assert.is_true(n.A >= 35 and n.B >= 35, string.format("A had %d tokens, B %d", n.A, n.B))
    assert.is_true(asks <= 4 * 160, asks .. " asks for 160 tokens")
  end)

  it("a remote's 'ask again' (its answer awaited: the store's, the lock's) is no place in a line", function()
    local b, answer = Bucket.new(4), nil
    b:use { take = function(_, t) return t + answer[1], answer[2], answer[3] end }
    answer = { 0.2625 } -- (a token due in a token's gap: 1.05 / 4 s, a second and its 50 ms to spare)
    local function told() return string.format("%.6f", b:token(0, false, {}, nil)) end -- (a slot: just past)
    assert.same({ "0.262500", "0.525000", "0.787500" }, { told(), told(), told() }) -- (in line)
    answer = { 0.001, false, true }
    assert.equal("0.001000", told()) -- (in a line, 1.05: a token's time lost to each round trip)
    answer = { 0.2625 }
    assert.equal("1.050000", told()) -- (the line as it was)
  end)
end)

describe("the key's last second (issue 55, 12: 19 of 40 in the first second at 10)", function()
  -- The most of the grants (got: name -> time) in any one second, [t, t + 1).
  local function busiest(got)
    local at = {}
    for _, t in pairs(got) do at[#at + 1] = t end
    table.sort(at)
    return require("spec.support.nginx_run").busiest(at), at
  end

  local function askers(n)
    local list = {}
    for i = 1, n do list[i] = { at = 0, name = "n" .. i } end
    return list
  end

  for name, backend in pairs { ["this process's bucket"] = in_process, ["nginx's shared dict"] = in_dict } do
    it("lets no more than the rate go in any second, in " .. name .. ": 40 asked at once at 10 a second", function()
      local most, at = busiest(drive(askers(40), backend(10), 10))
      assert.equal(40, #at)
      assert.is_true(most <= 10, most .. " tokens in one second at 10 a second")
      -- (10 at once, the next when their second and its 50 ms to spare are over, then one every 0.105 s)
      assert.is_true(at[11] >= 1.05 and at[40] <= 1.05 + 29 * 0.105 + 0.01, string.format("the 11th at %.3f s, "
        .. "the 40th at %.3f s", at[11], at[40]))
    end)
  end

  it("above 64 a second, keeps the second in 64 groups: 1,000 asked at once at 200 a second", function()
    local b, longest = Bucket.new(200), 0
    local most, at = busiest(drive(askers(1000), function(t, tenant, asker)
      local at = b:token(t, true, asker, tenant)
      local _, entries = (b.kv.get("win") or ""):gsub("%S+ %S+", "")
      longest = math.max(longest, entries)
      return at
    end, 10))
    assert.equal(1000, #at)
    assert.is_true(longest <= 65, longest .. " entries kept")
    assert.is_true(most <= 200, most .. " tokens in one second at 200 a second")
    local n = 0
    for _, t in ipairs(at) do if t >= 2 and t < 4 then n = n + 1 end end
    assert.is_true(n >= 2 * 200 / 1.05 - 8, n .. " tokens from 2 s to 4 s at 200 a second")
  end)

  it("counts a time far ahead (a store's clock stepped back) as a second and its spare ahead, not waited out",
    function()
      local kv = Bucket.store()
      kv.set("win", "1000.000000 10", 2000) -- (10 tokens at 1000 s, on a clock now at 0)
      local wait = Bucket.share_rule(kv, "", 0, 10)
      assert.is_true(wait > 1 and wait <= 2.1 + 1e-6, "told to wait " .. wait .. " s")
    end)
end)
