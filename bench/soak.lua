-- Row 6 of make bench: 100,000 sequential client:query(id) on one client (http,
-- the runner's nginx).  Resident memory (/proc/self/statm) is read after 10,000
-- queries (the warm-up) and after 100,000, each time after a full garbage
-- collection (so that garbage not yet collected is not taken for a leak; what
-- is still referenced stays counted); the row is the growth between the two.
-- Descriptors (/proc/<pid>/fd) are counted before starvideos.new and after
-- client:close() and a collection: none may be left.
local B = require "bench.common"
local starvideos = require "starvideos"

B.need_nginx()
local total = B.quick and 5000 or 100000
local warm = total / 10
local id = "task_0001"

collectgarbage("collect")
local fd_before = B.fd_count()
local client = starvideos.new { api_key = B.key, base_url = B.nginx, requests_per_second = 1e6 }
local function query()
  local task, err = client:query(id)
  if not task then error("client:query: " .. tostring(err)) end
end

local t0 = B.now()
for _ = 1, warm do query() end
collectgarbage("collect")
local rss_warm, heap_warm = B.rss_kb(), collectgarbage("count")
local t1 = B.now()
for _ = warm + 1, total do query() end
local t2 = B.now()
collectgarbage("collect")
local rss_end, heap_end = B.rss_kb(), collectgarbage("count")
client:close()
client = nil -- luacheck: ignore 311 (dropped, so that the collection below may take it)
collectgarbage("collect")
collectgarbage("collect")
local fd_after = B.fd_count()

local growth = rss_end - rss_warm
print(string.format("%d queries in %.1f s (%.0f/s after the warm-up): RSS %.0f kB after %d, %.0f kB after %d "
  .. "(%+.0f kB); Lua heap %.0f kB -> %.0f kB; descriptors %d before new, %d after close", total, t2 - t0,
  (total - warm) / (t2 - t1), rss_warm, warm, rss_end, total, growth, heap_warm, heap_end, fd_before, fd_after))
local label = total == 100000 and "100,000" or tostring(total)
B.row { scenario = label .. " sequential queries: RSS growth after warm-up",
  baseline = "none (RSS after the first tenth)", ours = growth / 1024, theirs = nil, unit = "MB",
  target = "<= 1 MB", ok = growth <= 1024,
  note = string.format("RSS from /proc/self/statm after a full collection: %.0f kB after %d queries, %.0f kB "
    .. "after %d; Lua heap %.0f kB then %.0f kB; %.0f queries/s", rss_warm, warm, rss_end, total, heap_warm,
    heap_end, (total - warm) / (t2 - t1)) }
B.row { scenario = label .. " sequential queries: descriptors left after close",
  baseline = "none (the count before starvideos.new)", ours = fd_after - fd_before, theirs = nil,
  unit = "fds", target = "0 left", ok = fd_after == fd_before,
  note = string.format("/proc/%d/fd: %d before starvideos.new, %d after client:close() and a collection",
    B.pid(), fd_before, fd_after) }
