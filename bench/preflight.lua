-- The cost of preflight (extras/preflight.lua) per reference: client:check of a create
-- naming four references (a PNG, a JPEG, an MP4 of BENCH_VIDEO_BYTES / 10 with its moov
-- first, an MP3) served by the runner's nginx over the loopback (/media/, Range
-- honoured), against fetching the same four files whole with LuaSocket, one after
-- another.  The requests and bytes come from nginx's log of /media/ (BENCH_MEDIA_LOG):
-- what the server sent.  The target: at most 2 requests and 128 KiB per reference.
local B = require "bench.common"
local http = require "socket.http"
local ltn12 = require "ltn12"
local starvideos = require "starvideos"
local M = require "starvideos.emulator.media"

B.need_nginx()
local log_path = assert(os.getenv("BENCH_MEDIA_LOG"), "BENCH_MEDIA_LOG: run through bench/run.lua")
local big = math.floor((B.video_bytes or 20e6) / 10)
local FILES = {
  { "a.png", M.png { width = 1024, height = 768 } },
  { "b.jpeg", M.jpeg { width = 800, height = 600 } },
  { "c.mp4", M.mp4 { seconds = 5, width = 1280, height = 720, bytes = big } },
  { "d.mp3", M.mp3 { seconds = 5 } },
}
local urls = {}
for i, f in ipairs(FILES) do
  B.write_file(B.tmp .. "/" .. f[1], f[2])
  urls[i] = B.nginx .. "/media/" .. f[1]
end
local params = { model = "videos", prompt = "a cat", duration = 5, referenceImages = { urls[1], urls[2] },
  referenceVideos = { urls[3] }, referenceAudios = { urls[4] } }
local client = starvideos.new { api_key = B.key, base_url = B.nginx }
local n_refs = #urls

local function logged() -- the lines of nginx's media log so far
  local lines = {}
  for l in (B.read_file(log_path) or ""):gmatch("[^\n]+") do lines[#lines + 1] = l end
  return lines
end

local function ours()
  local t0 = B.now()
  local notes, err = client:check(params)
  assert(notes and #notes == 0, "the references did not all pass: " .. tostring(err or (notes[1] or {}).message))
  return (B.now() - t0) * 1000 / n_refs
end

local function theirs()
  local t0 = B.now()
  for _, url in ipairs(urls) do
    local _, code = http.request { url = url, sink = ltn12.sink.null() }
    assert(code == 200, url .. ": " .. tostring(code))
  end
  return (B.now() - t0) * 1000 / n_refs
end

ours(); theirs() -- warm
local before = #logged()
ours()
local reqs, bytes = 0, 0
for i, l in ipairs(logged()) do
  if i > before then
    reqs, bytes = reqs + 1, bytes + tonumber(l:match("(%d+)$"))
  end
end
local rounds = B.quick and 5 or 30
local res = B.rounds(rounds, { { name = "ours", run = ours }, { name = "theirs", run = theirs } })
local o, t = B.median(res.ours), B.median(res.theirs)
local per_req, per_bytes = reqs / n_refs, bytes / n_refs
local sorted = {}
for i, v in ipairs(res.ours) do sorted[i] = v end
table.sort(sorted)
print(string.format("preflight per reference: %.2f ms, %.1f requests, %.0f bytes (whole files: %.2f ms)", o,
  per_req, per_bytes, t))
B.row { scenario = "preflight of a create's 4 references (PNG, JPEG, MP4 with moov first, MP3): per reference",
  baseline = "LuaSocket GET of each file whole, one after another", ours = o, theirs = t, unit = "ms",
  ratio = B.paired(res.ours, res.theirs), target = "<= 2 requests and <= 128 KiB per reference",
  ok = per_req <= 2 and per_bytes <= 131072,
  note = string.format("%.1f requests and %.0f bytes sent by nginx per reference (its /media/ log); the MP4 is "
    .. "%d bytes; median of %d rounds, taking turns; sorted ours (ms): %s", per_req, per_bytes, big, rounds,
    B.list(sorted, "%.2f")) }
client:close()
