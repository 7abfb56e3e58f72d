-- Issue 69, part 2: a remix and a 3-shot film as jobs in a LÖVE game (examples/love --remix --film 3, after.lua),
-- against the same calls made the blocking way inside one frame, on an Xvfb display this script starts, against
-- the emulator (its videos 64 MB, 16 MB when quick: a parent whose SHA-256 takes frames, shots whose join does).
--   ours      `love examples/love --journal J --remix --film 3`: each call with opts.job = true, the game's
--             client:step(0) a frame (the parent hashed on a thread of the library's, ffmpeg in a child process)
--   baseline  the same with --blocking: each call made inside one frame
-- Each is the longest gap between two frames' starts (the game caps itself at 60 fps: 16.7 ms is a frame on
-- time): while the remix's parent is hashed (the job's "preparing"), while the film's shots are joined
-- ("joining"), while its task is polled ("polling": nothing of the job off the frame, the game's own floor on this
-- machine), and over each whole job, against the one frame the blocking call took.  The rounds take turns
-- (ours, then the baseline, a new emulator task each); the rows show the medians and the median of the rounds'
-- ratios.  The target is issue 69's: no frame over 20 ms while the parent is hashed and the shots joined.
--   lua5.4 bench/lineage_jobs.lua      (from the top of a checkout; `make luajit` first; needs love and Xvfb;
--   BENCH_ONLY=lineage_jobs make bench: make bench leaves it out otherwise)
local B = require "bench.common"

local q = B.q
local rounds = B.quick and 1 or 3
local size = B.quick and 16e6 or 64e6
local tmp = B.tmp or assert(io.popen("mktemp -d")):read("*l")

for _, program in ipairs { "love", "Xvfb", "ffmpeg" } do
  assert(select(2, B.sh("command -v " .. program .. " >/dev/null")), program .. " is not installed")
end
assert(B.exists("build/luajit/starvideos/sign.so"), "make luajit first")

local xvfb = assert(io.popen("echo $$; exec Xvfb -displayfd 1 -screen 0 720x360x24 -nolisten tcp 2>/dev/null", "r"))
local xvfb_pid, display = tonumber(xvfb:read("*l")), tonumber(xvfb:read("*l"))
assert(display, "Xvfb did not start")
local emu = B.emulator("bench-love", "--queued 0.2 --processing 0.5")
emu.config { video_size = size }

-- One run of the game in the folder sub: its report's keys.
local function play(sub, blocking)
  assert(os.execute("rm -rf " .. q(sub) .. " && mkdir -p " .. q(sub)))
  local report = sub .. "/report"
  B.sh("cd " .. q(sub) .. " && DISPLAY=:" .. display .. " STARVIDEOS_LOVE_REPORT=" .. q(report)
    .. " STARVIDEOS_BASE_URL=" .. q(emu.url) .. " STARVIDEOS_API_KEY=bench-love timeout 600 love "
    .. q(B.sh("pwd"):match("[^\n]+") .. "/examples/love") .. " --interval 0.1 --journal tasks.jsonl --remix --film 3 "
    .. (blocking and "--blocking " or "") .. "v.mp4 >log 2>&1")
  local r = {}
  for k, v in (B.read_file(report) or ""):gmatch("([%w_]+) ([^\n]*)") do r[k] = tonumber(v) or v end
  assert(r.remix_result == "ok" and r.film_result == "ok", "the game's run failed: " .. (B.read_file(report) or "")
    .. (B.read_file(sub .. "/log") or ""))
  return r
end

-- Each row: the report's key of ours, of the baseline's, the scenario, the target (ms: an absolute bound; else a
-- ratio's).
local mb = size / 1e6
local ROWS = {
  { "remix_preparing_gap_max_ms", "remix_gap_max_ms", string.format("remix as a job (a %g MB parent): longest frame "
    .. "while the parent is hashed", mb), 20 },
  { "remix_preparing_step_max_ms", "remix_gap_max_ms", "remix as a job: longest step(0) while the parent is hashed",
    4 },
  { "film_joining_gap_max_ms", "film_gap_max_ms", string.format("3-shot film as a job (%g MB shots): longest frame "
    .. "while the shots are joined", mb), 20 },
  { "film_joining_step_max_ms", "film_gap_max_ms", "3-shot film as a job: longest step(0) while the shots are joined",
    4 },
  { "remix_polling_gap_max_ms", "remix_gap_max_ms", "remix as a job: longest frame while its task is polled "
    .. "(nothing off the frame: the machine's floor)", 20 },
  { "remix_gap_max_ms", "remix_gap_max_ms", "remix as a job: longest frame over the whole job", nil },
  { "film_gap_max_ms", "film_gap_max_ms", "3-shot film as a job: longest frame over the whole job", nil },
}
local ours, theirs = {}, {}
for i = 1, #ROWS do ours[i], theirs[i] = {}, {} end
local ok, err = pcall(function()
  for round = 1, rounds do
    local a, b = play(tmp .. "/jobs" .. round, false), play(tmp .. "/blocking" .. round, true)
    for i, row in ipairs(ROWS) do ours[i][round], theirs[i][round] = a[row[1]], b[row[2]] end
    print(string.format("round %d: jobs: remix %d frames (%d preparing), film %d frames (%d joining); its steps' "
      .. "work at most %s ms (remix preparing), %s ms (film joining)", round, a.remix_frames, a.remix_preparing_frames,
      a.film_frames, a.film_joining_frames, a.remix_preparing_work_max_ms, a.film_joining_work_max_ms))
  end
end)
emu.stop()
os.execute("kill " .. xvfb_pid)
xvfb:close()
if not ok then io.stderr:write(tostring(err), "\n"); os.exit(1) end

for i, row in ipairs(ROWS) do
  local o, t, ratios = B.median(ours[i]), B.median(theirs[i]), {}
  for round = 1, rounds do ratios[round] = ours[i][round] / theirs[i][round] end
  local ratio = B.median(ratios)
  B.row { scenario = row[3], baseline = "the same call blocking: the one frame it took", unit = "ms", ours = o,
    theirs = t, ratio = ratio, target = row[4] and "<= " .. row[4] .. " ms" or "<= 0.1x",
    ok = row[4] and o <= row[4] or (not row[4] and ratio <= 0.1),
    note = string.format("rounds: ours %s, blocking %s (ms)", B.list(ours[i], "%.1f"), B.list(theirs[i], "%.0f")) }
end
