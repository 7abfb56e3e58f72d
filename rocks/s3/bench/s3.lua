-- The row of issue 39: the runner's 200 MB MP4 (20 MB when quick) into a bucket.  The store: s3rver 3.7.1
-- behind the specs' SigV4-checking proxy (spec/npm/s3_server.js, its packages from `make npm-deps`), its folder
-- under BENCH_TMP; both contenders send through that proxy.
--   ours      a child `lua5.4 rocks/s3/bench/lib/s3_child.lua URL s3://bench/ours.mp4` (AWS_* naming the
--             store): require, new, client:download(URL, s3://...): the video read in 5 MiB Range parts into
--             a multipart upload, each part hashed and checked on its way, completed, then copied onto itself
--             with x-amz-meta-sha256
--   baseline  the two steps a user takes today: `curl -o FILE URL && sync FILE`, then `curl -T FILE` to the
--             object (one PutObject, signed by curl's --aws-sigv4, x-amz-content-sha256: UNSIGNED-PAYLOAD), the
--             file removed (sh -c: process starts counted for both)
-- Both under /usr/bin/time (peak RSS), walls measured here around the child, taking turns; each object is checked
-- for its size in s3rver's folder and removed before the next run; one untimed run of each first, then 5 rounds;
-- medians, the ratio the median of the rounds' ratios.  Then one more upload of ours as a game's loop drives it
-- (rocks/s3/bench/lib/s3_steps.lua: client:step(0) every 2 ms): the worst step's own CPU time (os.clock), no baseline.
local B = require "bench.common"

B.need_nginx()
local bytes = assert(B.video_bytes, "BENCH_VIDEO_BYTES is not set")
local url = B.nginx .. B.video
local rounds = B.quick and 1 or 5
local q = B.q

-- the store (its port from its first line)
local data = B.tmp .. "/s3data"
os.execute("mkdir -p " .. q(data))
local store_pid_file = B.tmp .. "/s3.pid"
local proc = assert(io.popen(string.format("sh -c %s", q(string.format("echo $$ > %s; exec node %s --dir %s --log "
  .. "/dev/null --bucket bench", q(store_pid_file), q("spec/npm/s3_server.js"), q(data))))))
local port = assert(tonumber((proc:read("*l") or ""):match('"port":(%d+)')), "the store did not start")
local store = "http://127.0.0.1:" .. port
local env = string.format("env AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_ENDPOINT_URL=%s", q(store))

local function settle(key) -- the object whole in s3rver's folder, then removed
  local file = data .. "/bench/" .. key .. "._S3rver_object"
  local n = B.video_size(file) -- (up to the mark's box the object's last part ends with; curl's: its size)
  if n ~= bytes then error(string.format("%s: %s bytes, expected %d", key, tostring(n), bytes)) end
  os.execute("rm -f " .. q(data .. "/bench/" .. key) .. "._S3rver_*")
end

local ours_peaks, curl_peaks = {}, {}
local function ours()
  local t0 = B.now()
  local peak, out, ok = B.peak_kb(string.format("%s %s rocks/s3/bench/lib/s3_child.lua %s s3://bench/ours.mp4", env,
    B.lua, q(url)))
  local wall = B.now() - t0
  if not ok or not peak then error("client:download to s3:// failed: " .. out) end
  settle("ours.mp4")
  ours_peaks[#ours_peaks + 1] = peak
  return wall
end

local file = B.tmp .. "/curl.mp4"
local function curl()
  local t0 = B.now()
  local peak, out, ok = B.peak_kb(string.format("sh -c %s", q(string.format("curl -s -S -f -o %s %s && sync %s && "
    .. "curl -s -S -f --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER -H 'x-amz-content-sha256: "
    .. "UNSIGNED-PAYLOAD' -T %s %s -o /dev/null && rm -f %s", q(file), q(url), q(file), q(file),
    q(store .. "/bench/curl.mp4"), q(file)))))
  local wall = B.now() - t0
  if not ok or not peak then error("curl -o, curl -T failed: " .. out) end
  settle("curl.mp4")
  curl_peaks[#curl_peaks + 1] = peak
  return wall
end

local ok, err = pcall(function()
  if not B.quick then ours(); curl(); ours_peaks, curl_peaks = {}, {} end
  local res = B.rounds(rounds, { { name = "ours", run = ours }, { name = "curl", run = curl } })
  local o, c = B.median(res.ours), B.median(res.curl)
  local ratio, ratios = B.paired(res.ours, res.curl)
  local worst = 0
  for _, k in ipairs(ours_peaks) do worst = math.max(worst, k) end
  B.row { scenario = string.format("%.0f MB into a bucket (s3://): wall", bytes / 1e6),
    baseline = "curl -o FILE URL && sync FILE, then curl -T FILE to the object", ours = o, theirs = c, ratio = ratio,
    unit = "s", target = "<= 1.1x", ok = ratio <= 1.1,
    note = string.format("ours = client:download(url, s3://bench/ours.mp4) in a fresh %s (5 MiB parts, each hashed "
      .. "and checked, multipart complete, the self-copy with x-amz-meta-sha256); the store s3rver behind the "
      .. "specs' SigV4-checking proxy for both; %d rounds taking turns; each round (s): ours %s; baseline %s; "
      .. "ratios %s", B.lua, rounds, B.list(res.ours, "%.2f"), B.list(res.curl, "%.2f"), B.list(ratios, "%.2f")) }
  B.row { scenario = string.format("%.0f MB into a bucket: peak RSS", bytes / 1e6), baseline = "none", ours = worst
    / 1024, unit = "MB", target = "< 40 MB", ok = worst < 40 * 1024,
    note = string.format("peak RSS (GNU time %%M) of the child, the largest of %d rounds; peaks (kB): ours %s; the "
      .. "baseline's sh + curls %s", rounds, B.list(ours_peaks), B.list(curl_peaks)) }
  local line = B.sh(string.format("%s %s rocks/s3/bench/lib/s3_steps.lua %s s3://bench/steps.mp4 0.002", env, B.lua,
    q(url)))
  local steps = line:match("STEPS (%b{})")
  assert(steps, "s3_steps.lua printed no STEPS line: " .. line)
  local st = require("cjson").decode(steps)
  settle("steps.mp4")
  B.row { scenario = string.format("%.0f MB into a bucket under step(0): the worst step's CPU", bytes / 1e6),
    baseline = "none", ours = st.cpu_worst_ms, unit = "ms", target = "<= 8 ms", ok = st.cpu_worst_ms <= 8,
    note = string.format("client:watch(task, {out = s3://...}) and client:step(0) every 2 ms, %d steps: each step's "
      .. "CPU (os.clock), the worst; %d steps over 4 ms of CPU; wall: worst %.1f ms, 99th percentile %.1f ms, %d "
      .. "over 8 ms (the loaded machine's other processes in it); the upload took %.1f s", st.steps, st.cpu_over4,
      st.worst_ms, st.p99_ms, st.over8, st.wall) }
end)
local pid = (io.open(store_pid_file) or io.stdin):read("*l")
if pid and pid:match("^%d+$") then os.execute("kill " .. pid) end
proc:close()
if not ok then error(err, 0) end
