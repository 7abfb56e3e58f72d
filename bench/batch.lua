-- A row of make bench (issue 26): a batch of 200 prompts (20 when quick) with
-- client:generate_all against the project's emulator (tasks queued 1 s, then
-- processing 2 s), the key's budget 10 requests/s, polled every 2 s, a journal
-- and a file per prompt.  The floor the budget sets: the API requests made
-- (creates and polls, counted by the emulator) / requests_per_second, plus one
-- task's own time (3 s); the time to the last file is to be at most 1.2x that.
-- Beside it, the API requests per task, and the process's peak resident memory
-- (VmHWM: the VM, libcurl and the batch), to be under 40 MB.
local B = require "bench.common"
local starvideos = require "starvideos"

local n = B.quick and 20 or 200
local RATE, OWN, INTERVAL = 10, 3, 2

local function peak_mb()
  local f = assert(io.open("/proc/self/status", "rb"))
  local kb = tonumber(f:read("*a"):match("VmHWM:%s*(%d+)"))
  f:close()
  return kb / 1024
end

local emu = B.emulator("bench-key", "--queued 1 --processing 2")
local ok, err = pcall(function()
  local dir = B.tmp and (B.tmp .. "/batch") or os.tmpname() .. ".d"
  os.execute("rm -rf '" .. dir .. "' && mkdir -p '" .. dir .. "'")
  local client = starvideos.new { api_key = emu.key, base_url = emu.url, requests_per_second = RATE,
    journal = dir .. "/starvideos.jsonl" }
  local list = {}
  for i = 1, n do list[i] = { model = "videos", prompt = "bench prompt " .. i, duration = 5 } end
  local t0, first_file = B.now(), nil
  local function first(ev)
    if ev.type == "batch" and ev.done == 1 and not first_file then first_file = B.now() end
  end
  local results = client:generate_all(list, { out = dir .. "/%04d.mp4", interval = INTERVAL, on_progress = first })
  local secs = B.now() - t0
  local saved = 0
  for _, r in ipairs(results) do if r.path and B.file_size(r.path) then saved = saved + 1 end end
  assert(saved == n, saved .. " of " .. n .. " files saved")
  local creates, polls = 0, 0
  for _, r in ipairs(emu.requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then creates = creates + 1
    elseif r.path:find("^/v1/result/") then polls = polls + 1 end
  end
  client:close()
  local api = creates + polls
  local floor = api / RATE + OWN
  local mb = peak_mb()
  print(string.format("%d files in %.1f s (the first after %.1f s); %d API requests (%d creates, %d polls): "
    .. "%.2f per task; floor %.1f s; peak RSS %.1f MB", n, secs, first_file - t0, api, creates, polls, api / n, floor,
    mb))
  B.row { scenario = string.format("batch of %d prompts (generate_all, emulator), budget %d/s: time to the last file",
    n, RATE), baseline = "the budget's floor: API requests / requests_per_second + one task's time",
    ours = secs, theirs = floor, unit = "s", target = "<= 1.2x", ok = secs / floor <= 1.2,
    note = string.format("%.2f API requests per task (%d creates, %d polls), polled every %d s; tasks queued 1 s "
      .. "then processing 2 s; the first file after %.1f s, while creates went on; one run", api / n, creates, polls,
      INTERVAL, first_file - t0) }
  B.row { scenario = string.format("batch of %d prompts: peak resident memory of the process", n), baseline = "none",
    ours = mb, unit = "MB", target = "< 40 MB", ok = mb < 40,
    note = "VmHWM of the bench process (Lua 5.4, libcurl, the client and the batch's jobs)" }
end)
emu.stop()
if not ok then error(err, 0) end
