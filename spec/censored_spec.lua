-- Durations known to within an interval (censored.lua): the most likely distribution, on samples
-- worked by hand, then widened to a bandwidth.

local censored = require "starvideos.censored"

-- The mass of the pieces lying within [a, b].
local function mass(lo, hi, w, a, b)
  local sum = 0
  for j = 1, #w do
    if lo[j] >= a - 1e-9 and hi[j] <= b + 1e-9 then sum = sum + w[j] end
  end
  return sum
end

describe("the censored estimate", function()
  it("puts a wide sample's share where the narrower ones overlapping it say tasks end", function()
    -- (0, 10], (4, 6] and (5, 8]: every sample holds (5, 6], the one innermost interval: all the mass is
    -- there (each spread evenly over its own interval, 0.1 of it would lie before 4)
    local lo, hi, w = censored.spread({ 5, 5, 6.5 }, { 5, 1, 1.5 }, 0.02)
    assert.are.equal(1, #w)
    assert.is_true(math.abs(w[1] - 1) < 1e-9)
    assert.is_true(math.abs(lo[1] - 5) < 1e-9 and math.abs(hi[1] - 6) < 1e-9, lo[1] .. " " .. hi[1]) -- (wider than
    -- the bandwidth: one place, 0.02 of 5.5)
  end)

  it("shares a sample holding two innermost intervals as the rest do", function()
    -- (0, 2], (4, 6] and (0, 10]: innermost (0, 2] and (4, 6]; self-consistency, p1 = (1 + p1 / (p1 +
    -- p2)) / 3, gives a half each; with three more in (4, 6], p1 = (1 + p1) / 6: a fifth (spread evenly,
    -- the wide one would put 1/6 + 1/30 there)
    local _, _, w = censored.spread({ 1, 5, 5 }, { 1, 1, 5 }, 0.02)
    assert.are.equal(2, #w)
    assert.is_true(math.abs(w[1] - 0.5) < 1e-3 and math.abs(w[2] - 0.5) < 1e-3, w[1] .. " " .. w[2])
    local lo, hi, w6 = censored.spread({ 1, 5, 5, 5, 5, 5 }, { 1, 1, 5, 1, 1, 1 }, 0.02)
    assert.is_true(math.abs(mass(lo, hi, w6, 0, 2.5) - 1 / 5) < 1e-3, table.concat(w6, " "))
  end)

  it("keeps exact durations as they are, each as likely, widened to a bandwidth", function()
    local lo, hi, w = censored.spread({ 6, 7, 6 }, { 0, 0, 0 }, 0.02)
    assert.are.equal(2, #w)
    assert.is_true(math.abs(w[1] - 2 / 3) < 1e-9 and math.abs(w[2] - 1 / 3) < 1e-9)
    assert.is_true(lo[1] < 6 and hi[1] > 6 and lo[2] < 7 and hi[2] > 7)
    assert.is_true(hi[1] - lo[1] >= 2 * 0.02 * 6 - 1e-9) -- at least +- the least share
  end)

  it("gives its pieces in order of their middles, whatever the samples' order (the bandwidths read them so)",
    function()
      math.randomseed(2026)
      for _ = 1, 20 do
        local mid, half = {}, {}
        for i = 1, 60 do mid[i], half[i] = 5 + math.random() * 100, math.random() < 0.3 and 0 or math.random() * 8 end
        local lo, hi = censored.spread(mid, half, 0.02)
        for j = 2, #lo do
          local c0, c1 = (lo[j - 1] + hi[j - 1]) / 2, (lo[j] + hi[j]) / 2
          assert.is_true(lo[j - 1] <= 0 or lo[j] <= 0 or c1 >= c0, string.format("piece %d at %g after %g", j, c1, c0))
        end
      end
    end)

  it("refuses what is not two tables of one length", function()
    assert.has_error(function() censored.spread({ 1 }, {}) end,
      "censored.spread: mid and half must be tables of one length")
    assert.has_error(function() censored.spread(nil, {}) end,
      "censored.spread: mid and half must be tables of one length")
  end)
end)
