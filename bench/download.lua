-- Row 5 of make bench: the 200 MB MP4 of the runner's nginx (20 MB when quick),
-- downloaded into the run's scratch folder under /tmp (the note names its file
-- system: tmpfs would make the sync free).
--   ours      a child `lua5.4 bench/lib/download_child.lua get ...`: require, new,
--             client:download(url, path): verified (a .part; its MP4 check and
--             SHA-256 in one read on the commit's thread, fsync, rename, folder fsync)
--   baseline  `sh -c 'curl -s -o FILE URL && sync FILE'` (sync FILE is an fsync)
-- Both run under /usr/bin/time (their wall measured here, around the child:
-- process start included for both), taking turns; every file is checked for
-- its size, removed, and `sync` run, before the next run; one untimed run of
-- each first, then 5 rounds; the row shows the median walls and, as its
-- ratio, the median of the rounds' ratios.
-- Memory: peak RSS of the downloading child (GNU time %M) minus the peak of
-- a child of the same VM that only does require + new (bench/lib/download_child.lua
-- idle), measured each round; the row shows the largest growth.
local B = require "bench.common"

B.need_nginx()
local bytes = assert(B.video_bytes, "BENCH_VIDEO_BYTES is not set")
local url = B.nginx .. B.video
local rounds = B.quick and 1 or 5
local mb = bytes / 1e6
local q = B.q
local ours_file, curl_file = B.tmp .. "/ours.mp4", B.tmp .. "/curl.mp4"

local size = B.video_size -- (a saved video up to the mark's box its commit appended; curl's file: its size)

local function settle(path)
  local n = size(path)
  if n ~= bytes then error(string.format("%s: %s bytes, expected %d", path, tostring(n), bytes)) end
  os.remove(path)
  os.execute("sync")
end

local fs = (B.sh("stat -f -c %T " .. q(B.tmp))):match("%S+") or "?"
local child = B.lua .. " bench/lib/download_child.lua"
local growth, ours_peaks, idle_peaks, curl_peaks = {}, {}, {}, {}

local function ours()
  local idle = assert(B.peak_kb(child .. " idle " .. q(B.nginx)))
  local t0 = B.now()
  local peak, out, ok = B.peak_kb(string.format("%s get %s %s %s", child, q(B.nginx), q(url), q(ours_file)))
  local wall = B.now() - t0
  if not ok or not peak then error("client:download failed: " .. out) end
  settle(ours_file)
  idle_peaks[#idle_peaks + 1], ours_peaks[#ours_peaks + 1] = idle, peak
  growth[#growth + 1] = peak - idle
  return wall
end

local function curl()
  local t0 = B.now()
  local peak, out, ok = B.peak_kb(string.format("sh -c %s", q(string.format("curl -s -S -f -o %s %s && sync %s",
    q(curl_file), q(url), q(curl_file)))))
  local wall = B.now() - t0
  if not ok or not peak then error("curl failed: " .. out) end
  settle(curl_file)
  curl_peaks[#curl_peaks + 1] = peak
  return wall
end

os.execute("sync")
if not B.quick then -- one untimed run of each (caches, the first connection)
  ours(); curl()
  growth, ours_peaks, idle_peaks, curl_peaks = {}, {}, {}, {}
end
local res = B.rounds(rounds, {
  { name = "ours", run = ours },
  { name = "curl", run = curl },
})
local o, c = B.median(res.ours), B.median(res.curl)
local ratio, ratios = B.paired(res.ours, res.curl)
local worst = growth[1]
for _, g in ipairs(growth) do worst = math.max(worst, g) end
print(string.format("download of %.0f MB: ours %.2f s, curl -o + sync %.2f s; peak RSS ours %s kB, idle VM %s kB, "
  .. "curl %s kB", mb, o, c, B.list(ours_peaks), B.list(idle_peaks), B.list(curl_peaks)))
B.row { scenario = string.format("verified download %.0f MB: wall", mb), baseline = "curl -o FILE URL, then sync FILE",
  ours = o, theirs = c, ratio = ratio, unit = "s", target = "<= 1.1x", ok = ratio <= 1.1,
  note = string.format("ours = client:download(url, path) in a fresh lua5.4 (MP4 check, SHA-256, fsync + rename "
    .. "included), the baseline curl in a fresh sh; wall around each child, %d rounds taking turns, the file "
    .. "removed and `sync` run between runs; medians, the ratio the median of the rounds'; files on %s; each round "
    .. "(s): "
    .. "ours %s; curl %s; ratios %s", rounds, fs, B.list(res.ours, "%.2f"), B.list(res.curl, "%.2f"),
    B.list(ratios, "%.2f")) }
B.row { scenario = string.format("download %.0f MB: peak memory growth", mb),
  baseline = "none (the same VM after require + new)", ours = worst / 1024, theirs = nil, unit = "MB",
  target = "<= 10 MB", ok = worst <= 10 * 1024,
  note = string.format("peak RSS (GNU time %%M) of the downloading child minus that of a child doing only "
    .. "require + new, the largest of %d rounds; peaks (kB): downloading %s, idle %s; curl -o's own peak: %s kB",
    rounds, B.list(ours_peaks), B.list(idle_peaks), B.list(curl_peaks)) }
