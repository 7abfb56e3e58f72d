-- Durations known only to within an interval (docs/polling.md): a task seen unfinished at one poll and
-- done at the next took somewhere between them.  The distribution most likely to have given such
-- samples (Turnbull's self-consistency iteration, the nonparametric maximum likelihood estimate): its
-- mass lies on the innermost intervals, where a left end of a sample is followed by a right end of one
-- with no end between, and a wide sample's share goes where the narrower samples overlapping it say the
-- tasks end, not evenly over its width.  Then widened to a bandwidth (schedule.lua's learned distribution).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local log, max, min, sqrt, huge = math.log, math.max, math.min, math.sqrt, math.huge

local C = {}

C.ROUNDS = 60     -- self-consistency rounds at most
C.SETTLED = 1e-5  -- or until no mass moves by more than this
C.DROP = 1e-6     -- innermost intervals left with less mass are dropped
C.NEIGHBOURS = 3  -- a bandwidth reaches as far as 3 sqrt(n) of n samples' mass (local_widths)
C.PRIOR = 0.01    -- the rounds start from the samples that hold one interval only, and this each

-- The ends of samples [lo, hi] in order: at one age, a point sample's start (it includes the age), then
-- the right ends (a task done by then), then the open starts of the others (a task unfinished then).
local function ends(lo, hi)
  local ev = {}
  for i = 1, #lo do
    local point = hi[i] <= lo[i]
    ev[#ev + 1] = { lo[i], point and 0 or 2, i, true }
    ev[#ev + 1] = { max(hi[i], lo[i]), 1, i, false }
  end
  table.sort(ev, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[3] < b[3]
  end)
  return ev
end

-- The innermost intervals (L[j], R[j]), in order (disjoint, as the sweep meets them: their middles ascend), and
-- for sample i the first and last of them it holds (a[i], b[i]).
local function innermost(lo, hi)
  local L, R, a, b, prev = {}, {}, {}, {}, nil
  for _, e in ipairs(ends(lo, hi)) do
    if e[4] then
      a[e[3]] = #L + 1
    else
      if prev and prev[4] then L[#L + 1], R[#L + 1] = prev[1], e[1] end
      b[e[3]] = #L
    end
    prev = e
  end
  return L, R, a, b
end

-- The masses p[j] of the innermost intervals: each round gives interval j the share of every sample
-- holding it that p says is its, p[j] / (the mass of the sample's innermost intervals); in O(samples +
-- intervals) a round, with sums over runs of intervals.  Where the samples tell intervals apart
-- weakly or not at all (the likelihood flat along a split), the rounds keep much of the split they start
-- from: they start from the samples that hold one interval only, so that a wide sample's share goes where
-- tasks are known to end (from an even start, 17% of a two-peaked kind's tasks were put between its
-- peaks, where none end).
local function self_consistent(a, b, m)
  local n, p = #a, {}
  local total = 0
  for j = 1, m do p[j] = C.PRIOR end
  for i = 1, n do
    if a[i] == b[i] then p[a[i]] = p[a[i]] + 1 end
  end
  for j = 1, m do total = total + p[j] end
  for j = 1, m do p[j] = p[j] / total end
  for _ = 1, C.ROUNDS do
    local P, add = { [0] = 0 }, {}
    for j = 1, m do P[j], add[j] = P[j - 1] + p[j], 0 end
    add[m + 1] = 0
    for i = 1, n do
      local share = 1 / (n * max(P[b[i]] - P[a[i] - 1], 1e-300))
      add[a[i]], add[b[i] + 1] = add[a[i]] + share, add[b[i] + 1] - share
    end
    local run, moved = 0, 0
    for j = 1, m do
      run = run + add[j]
      local q = p[j] * run
      moved, p[j] = max(moved, math.abs(q - p[j])), q
    end
    if moved < C.SETTLED then break end
  end
  return p
end

-- Silverman's bandwidth on the logarithms of the intervals' middles, weighted by mass, for n samples (the
-- smaller of the deviation and the interquartile range / 1.34), at least `least`.
local function bandwidth(L, R, p, n, least)
  local order, mean, sq = {}, 0, 0
  for j = 1, #p do
    order[j] = { log(max((L[j] + R[j]) / 2, 1e-9)), p[j] }
    mean = mean + p[j] * order[j][1]
  end
  for j = 1, #p do sq = sq + p[j] * (order[j][1] - mean) ^ 2 end
  local q, acc = {}, 0
  for _, o in ipairs(order) do
    acc = acc + o[2]
    if not q[1] and acc >= 0.25 then q[1] = o[1] end
    if not q[2] and acc >= 0.75 then q[2] = o[1] end
  end
  local spread = sqrt(sq)
  local iqr = ((q[2] or mean) - (q[1] or mean)) / 1.34
  if iqr > 0 then spread = min(spread, iqr) end
  return max(0.9 * spread * n ^ -0.2, least)
end

-- The width of each interval's bandwidth: the log distance from its middle within which the intervals
-- hold C.NEIGHBOURS * sqrt(n) samples' mass (its own included), at least `least`, at most the global h.
-- Silverman's rule on a two-peaked kind is as wide as the gap between the peaks; widened that much, a
-- peak's tasks are taken to end past the poll that saw them all done, and the plan's poll moves later.
local function local_widths(L, R, p, n, least, h)
  local k, order, out = C.NEIGHBOURS * sqrt(n) / n, {}, {}
  for j = 1, #L do order[j] = { log(max((L[j] + R[j]) / 2, 1e-9)), p[j], j } end -- (ascending: innermost's)
  for i = 1, #order do
    local a, b, mass, r = i, i, order[i][2], 0
    while mass < k and (a > 1 or b < #order) do
      local da = a > 1 and order[i][1] - order[a - 1][1] or huge
      local db = b < #order and order[b + 1][1] - order[i][1] or huge
      if da <= db then a, r = a - 1, da else b, r = b + 1, db end
      mass = mass + order[da <= db and a or b][2]
    end
    out[order[i][3]] = min(h, max(least, r))
  end
  return out
end

-- The learned distribution's pieces from samples mid[i] +- half[i]: intervals lo[j], hi[j] with masses
-- w[j] (summing to 1), each the maximum likelihood mass of an innermost interval, spread over it and over
-- at least its middle +- its bandwidth (a share of it, at least `least`: local_widths).
function C.spread(mid, half, least)
  if type(mid) ~= "table" or type(half) ~= "table" or #mid < 1 or #half ~= #mid then
    error("censored.spread: mid and half must be tables of one length", 2)
  end
  local lo, hi = {}, {}
  for i = 1, #mid do lo[i], hi[i] = max(0, mid[i] - half[i]), mid[i] + half[i] end
  local L, R, a, b = innermost(lo, hi)
  local p = self_consistent(a, b, #L)
  local h = bandwidth(L, R, p, #mid, least)
  local hj = local_widths(L, R, p, #mid, least, h)
  local out_lo, out_hi, w, total = {}, {}, {}, 0
  for j = 1, #L do
    if p[j] > C.DROP then
      local c = (L[j] + R[j]) / 2
      local wide = max((R[j] - L[j]) / 2, hj[j] * c)
      out_lo[#w + 1], out_hi[#w + 1], w[#w + 1] = max(0, c - wide), c + wide, p[j]
      total = total + p[j]
    end
  end
  for j = 1, #w do w[j] = w[j] / total end
  return out_lo, out_hi, w
end

return C
