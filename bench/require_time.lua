-- Row 7 of make bench: `require "starvideos"` in a fresh process, against
-- `require "cjson"` in a fresh process.  Each child (bench/lib/require_child.lua)
-- times the one require inside itself, with a wall clock around it (the
-- interpreter's own start is not counted); the two take turns, 20 times each
-- after 2 untimed runs each, and the row gives the medians (the ratio: the
-- median of the 20 pairs' ratios).  The target is on ours alone: at most 5 ms.
-- The note adds `require "starvideos.core"` alone (the C core, without libcurl)
-- and `require "starvideos.curl"` (libcurl's transport with the libraries it
-- links, which the first starvideos.new loads), timed the same way.
local B = require "bench.common"

local runs = B.quick and 5 or 20
local function once(name)
  local out, ok = B.sh(B.lua .. " bench/lib/require_child.lua " .. name .. " 2>&1")
  local us = tonumber(out:match("REQUIRE ([%d.]+)"))
  if not ok or not us then error("require " .. name .. ": " .. out) end
  return us / 1000
end

for _ = 1, 2 do once("starvideos"); once("cjson"); once("starvideos.core"); once("starvideos.curl") end
local ours, theirs, core, curl = {}, {}, {}, {}
for i = 1, runs do
  ours[i] = once("starvideos")
  theirs[i] = once("cjson")
  core[i] = once("starvideos.core")
  curl[i] = once("starvideos.curl")
end
local o, c, k, u = B.median(ours), B.median(theirs), B.median(core), B.median(curl)
local ratio = B.paired(ours, theirs)
table.sort(ours)
table.sort(theirs)
print(string.format("require in a fresh process, median of %d: starvideos %.2f ms (starvideos.core alone %.2f ms; "
  .. "starvideos.curl, loaded by the first client, %.2f ms), cjson %.2f ms", runs, o, k, u, c))
B.row { scenario = "require \"starvideos\" in a fresh process", baseline = "require \"cjson\" in a fresh process",
  ours = o, theirs = c, ratio = ratio, unit = "ms", target = "ours <= 5 ms", ok = o <= 5,
  note = string.format("wall clock inside the child around the require alone (LuaSocket's gettime, loaded "
    .. "first); median of %d, taking turns, after 2 untimed runs each; `require \"starvideos.core\"` alone "
    .. "(the C core, no libcurl): median %.2f ms; `require \"starvideos.curl\"` (libcurl's transport and the "
    .. "libraries it links, loaded by the first starvideos.new): median %.2f ms; sorted (ms): starvideos %s; cjson %s",
    runs, k, u, B.list(ours, "%.2f"), B.list(theirs, "%.2f")) }
