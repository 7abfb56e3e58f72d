-- The fair share of the key's budget between waiting tenants (bucket.lua's share, docs/tenants-and-costs.md), one
-- list of cases every place that keeps the budget passes: this process's bucket and nginx's shared dict
-- (spec/fair_spec.lua), Redis' script (the redis rock's fair_redis_spec.lua).  drive(askers, take, stop): every asker
-- driven on the cases' clock, as a loop drives its jobs; run(name, backend, b, place): the cases on backend(rate) ->
-- take (b: busted's describe, it and assert), proving the matrix's fair_share row at place.
local M = {}

-- askers: {at =, tenant =, name =}; take(t, tenant, asker) -> nil or the time to come back.  Each asks at its time
-- until it has a token, A's askers first at any one time (the worst order for the others: a race A always
-- wins): {name -> time granted}, the grants in order.
function M.drive(askers, take, stop)
  local heap, seq, got, order = {}, 0, {}, {}
  local function before(x, y)
    if x.at ~= y.at then return x.at < y.at end
    if (x.a.tenant == "A") ~= (y.a.tenant == "A") then return x.a.tenant == "A" end
    return x.seq < y.seq
  end
  local function push(a, at)
    seq = seq + 1
    local i = #heap + 1
    heap[i] = { at = at, seq = seq, a = a }
    while i > 1 do
      local up = math.floor(i / 2)
      if not before(heap[i], heap[up]) then break end
      heap[i], heap[up], i = heap[up], heap[i], up
    end
  end
  local function pop()
    local top, n = heap[1], #heap
    heap[1] = heap[n]
    heap[n] = nil -- (after: with one left, heap[1] is heap[n])
    local i = 1
    while true do
      local small = i
      for c = 2 * i, 2 * i + 1 do if c < n and before(heap[c], heap[small]) then small = c end end
      if small == i then return top end
      heap[i], heap[small], i = heap[small], heap[i], small
    end
  end
  for _, a in ipairs(askers) do push(a, a.at) end
  while heap[1] do
    local e = pop()
    if e.at > stop then break end
    local later = take(e.at, e.a.tenant, e.a)
    if later then
      assert(later > e.at, "told to come back at once")
      push(e.a, later)
    else
      got[e.a.name], order[#order + 1] = e.at, e.a
    end
  end
  return got, order
end

-- 200 creates of tenant A asked at 0, then 5 of B at 2 s.
local function flood()
  local askers = {}
  for i = 1, 200 do askers[i] = { at = 0, tenant = "A", name = "A" .. i } end
  for i = 1, 5 do askers[#askers + 1] = { at = 2, tenant = "B", name = "B" .. i } end
  return askers
end

local drive = M.drive

-- The cases, each {name =, promise = the matrix's row it proves (spec/support/promises.lua), run(backend, assert)}.
M.cases = {
  { name = "gives B's five creates their share while A has 200 waiting: all within 3 s of asking",
    promise = "fair_share",
    run = function(backend, assert)
      local got, order = drive(flood(), backend(5), 12)
      local last = 0
      for i = 1, 5 do
        local at = assert(got["B" .. i], "B" .. i .. " had no token by 12 s")
        last = math.max(last, at)
      end
      assert.is_true(last - 2 <= 2.5, string.format("B's last create went out %.2f s after asking", last - 2))
      local per_second = {}
      for _, a in ipairs(order) do
        local s = math.floor(got[a.name])
        per_second[s] = (per_second[s] or 0) + 1
      end
      for s = 1, 11 do -- (second 0: the burst)
        assert.is_true((per_second[s] or 0) <= 6, string.format("%d tokens in second %d", per_second[s] or 0, s))
        assert.is_true((per_second[s] or 0) >= 4, string.format("only %d tokens in second %d", per_second[s] or 0, s))
      end
      local a_after = 0
      for _, a in ipairs(order) do
        if a.tenant == "A" and got[a.name] >= 2 and got[a.name] < 4 then a_after = a_after + 1 end
      end
      assert.is_true(a_after >= 3, "A kept a share while B asked: " .. a_after) -- (not starved either)
      -- shared while both wait: A's tokens between B's first and last (B's alone, A starved, before issue 82's fix on
      -- Redis: 0; shared: a token in turn, 3)
      local first, a_between = math.huge, 0
      for i = 1, 5 do first = math.min(first, got["B" .. i]) end
      for _, a in ipairs(order) do
        if a.tenant == "A" and got[a.name] > first and got[a.name] < last then a_between = a_between + 1 end
      end
      assert.is_true(a_between >= 3, "A's tokens between B's first and last: " .. a_between)
    end },

  { name = "a tenant alone has the whole rate; once another stops asking, it has it again",
    run = function(backend, assert)
      local askers = {}
      for i = 1, 80 do askers[i] = { at = 0, tenant = "A", name = "A" .. i } end
      askers[#askers + 1] = { at = 3, tenant = "B", name = "B1" }
      local got = drive(askers, backend(5), 12)
      local function count(from, to)
        local n = 0
        for k, at in pairs(got) do if k:sub(1, 1) == "A" and at >= from and at < to then n = n + 1 end end
        return n
      end
      assert.is_true(count(1, 3) >= 9, "A alone: " .. count(1, 3) .. " in 2 s") -- the whole 5 a second
      assert.is_true(count(6, 9) >= 14, "A again alone: " .. count(6, 9) .. " in 3 s")
    end },

  { name = "no tenant named is one tenant: the key's rate, as without tenants",
    run = function(backend, assert)
      local askers = {}
      for i = 1, 40 do askers[i] = { at = 0, name = "n" .. i } end
      local got = drive(askers, backend(5), 10)
      local n = 0
      for _, at in pairs(got) do if at >= 1 and at < 5 then n = n + 1 end end
      assert.is_true(n >= 19 and n <= 21, n .. " tokens from 1 s to 5 s at 5 a second")
    end },
}

-- The cases run with busted's functions (b: describe, it, assert) on backend(rate) -> take, `name` the place in
-- words, `place` the matrix's (spec/support/matrix.lua): a case passed proves its promise there.
function M.run(name, backend, b, place)
  require("spec.support.case_list").each(b, "the fair share in " .. name, M.cases, function(case)
    case.run(backend, b.assert)
  end, nil, place)
end

return M
