-- What the mark and the signature add to a save (issue 81: "under 1 ms more, no second read of the video"), for
-- the emulator's 5 s video (19 KB) and for a 1 GB MP4 (20 MB when quick): its boxes written, its mdat's zeros a hole
-- of a sparse file in the scratch folder (removed at the end), both served by the runner's nginx (/media/).
--   ours      client:download(task, out) as a user saves a video: marked (the default: the commit appends the XMP
--             box in the read that checks and hashes the .part) and its record signed (provenance = {sign_key}, an
--             Ed25519 key made for this run)
--   baseline  the same save with mark = false and the record unsigned (provenance = true): the save alone
-- Taking turns in rounds (31 of the 5 s video after one untimed save each, 3 of the 1 GB one; fewer when quick),
-- each save's wall around the call (the GET, the .part, the commit's one read, fsync and rename, the record written
-- beside the file); the ratio is the median of the rounds' own ratios.  Bytes read: this process's rchar
-- (/proc/self/io: every read(2) and pread(2) of its threads, the commit's helper thread too) over each save, the
-- video's size the unit: a second read of the video would show as one more.
-- The marking and signing time itself, which a save's wall cannot show (its noise is larger): the commit's own
-- mark_append (csrc/core/part.c) through core.mark_file on the saved unmarked file (its box appended, then cut off
-- again, untimed; mark_file also walks the top-level boxes and reads the moov first, which the commit's check has
-- done already, so this is an upper bound), and the record's Ed25519 signature (provenance.lua's P.text with the
-- signer, less P.text without), medians of as many runs, against the save alone.
local B = require "bench.common"
local core = require "starvideos.core"
local starvideos = require "starvideos"
local P = require "starvideos.provenance"
local Mark = require "starvideos.mark"
local cjson = require "cjson"

B.need_nginx()
local q, str_format = B.q, string.format
local BIG = B.quick and 20 * 1000 * 1000 or 1000 * 1000 * 1000

-- This process's bytes read so far (rchar).
local function rchar()
  local f = assert(io.open("/proc/self/io", "rb"))
  local n = tonumber(f:read("*a"):match("rchar:%s*(%d+)"))
  f:close()
  return n
end

local key = B.tmp .. "/mark-key.pem"
local _, made = B.sh("openssl genpkey -algorithm ed25519 -out " .. q(key) .. " 2>&1")
assert(made, "openssl could not make an Ed25519 key")
local plain = starvideos.new { api_key = B.key, base_url = B.nginx, mark = false }
local ours = starvideos.new { api_key = B.key, base_url = B.nginx, provenance = { sign_key = key } }

-- The video of `bytes` written as name in the scratch folder (served at /media/name): the 5 s video's bytes, or
-- media.lua's MP4 of that size, its zeros a hole (truncate).
local function source(name, bytes)
  local path = B.tmp .. "/" .. name
  if not bytes then
    B.write_file(path, require("starvideos.emulator.files").video(5))
  else
    local parts = require("starvideos.emulator.media").parts("mp4", { seconds = 5, bytes = bytes })
    assert(#parts == 2 and type(parts[2]) == "number", "the MP4's zeros are not last")
    B.write_file(path, parts[1])
    local _, ok = B.sh(str_format("truncate -s %d %s", bytes, q(path)))
    assert(ok, "truncate failed")
  end
  return path, B.file_size(path)
end

local n_saved = 0
-- One save by client c of the video at /media/name into the scratch folder: its wall, the bytes read meanwhile,
-- and the record (decoded); the file is kept when keep, else removed with its record.
local function save(c, name, keep)
  n_saved = n_saved + 1
  local out = str_format("%s/saved-%d.mp4", B.tmp, n_saved)
  local task = { id = "bench-mark-" .. n_saved, status = "completed", model = "videos",
    video_url = B.nginx .. "/media/" .. name }
  local r0, t0 = rchar(), B.now()
  local path, err = c:download(task, out)
  local wall, read = B.now() - t0, rchar() - r0
  assert(path == out, "the save failed: " .. tostring(err))
  local rec = assert(cjson.decode(assert(B.read_file(out .. ".json"))))
  os.remove(out .. ".json")
  if not keep then os.remove(out) end
  return wall, read, rec, out
end

-- The median seconds of fn() over n runs (after(): untimed, between them).
local function timed(n, fn, after)
  local list = {}
  for i = 1, n do
    local t0 = B.now()
    fn()
    list[i] = B.now() - t0
    if after then after() end
  end
  return B.median(list), list
end

-- The rows of one video: name (served), size, rounds, runs (of the marking and signing alone), what (its words).
local function rows(name, size, rounds, runs, what)
  if size < 1e8 then -- (one untimed save each first: the file in the page cache, the key's first signature made)
    save(plain, name)
    save(ours, name)
  end
  local read, kept = { ours = {}, plain = {} }, nil -- (kept: the last plain save's file and record)
  local res = B.rounds(rounds, {
    { name = "ours", run = function()
      local wall, n, rec = save(ours, name)
      assert(rec.mark == "xmp" and rec.signature and rec.signature.alg == "ed25519", "not marked and signed")
      read.ours[#read.ours + 1] = n
      return wall
    end },
    { name = "plain", run = function()
      local wall, n, rec, file = save(plain, name, true)
      assert(rec.mark == "off" and not rec.signature, "marked or signed")
      read.plain[#read.plain + 1] = n
      if kept then os.remove(kept.file) end
      kept = { file = file, rec = rec }
      return wall
    end },
  })
  local function ms(list) local t = {} for i, v in ipairs(list) do t[i] = v * 1e3 end return t end
  local ratio, ratios = B.paired(res.ours, res.plain)
  local m_ours, m_plain = B.median(res.ours), B.median(res.plain)
  local r_ours, r_plain = B.median(read.ours) / size, B.median(read.plain) / size
  -- the marking alone: the box the save appended, on a saved unmarked copy, cut off again after each run
  local rec, file = kept.rec, kept.file
  local box = Mark.of("videos", "bench-mark")
  local mark_read
  local mark_s = timed(runs, function()
    local r0 = rchar()
    assert(core.mark_file(file, box) == true, "core.mark_file did not mark the file")
    mark_read = rchar() - r0
  end, function() assert(select(2, B.sh(str_format("truncate -s %d %s", size, q(file))))) end)
  os.remove(file)
  -- the signing alone: the record's text with the signer, less without
  local signer = ours.cfg.signer
  local signed_s = timed(runs, function() P.text(rec, signer) end)
  local unsigned_s = timed(runs, function() P.text(rec) end)
  local sign_s = math.max(0, signed_s - unsigned_s)
  local adds = mark_s + sign_s
  local extra = m_ours - m_plain
  B.row { scenario = str_format("%s saved marked, its record signed: wall", what),
    baseline = "the same save, mark = false, the record unsigned (client:download)", ours = m_ours * 1e3,
    theirs = m_plain * 1e3, ratio = ratio, unit = "ms",
    target = (size < 1e6 and "<= 1 ms more" or "<= 1.05x") .. ", no second read (bytes read within 1 KB of the "
      .. "save alone's)",
    ok = (size < 1e6 and extra <= 0.001 or size >= 1e6 and ratio <= 1.05)
      and math.abs(B.median(read.ours) - B.median(read.plain)) <= 1024,
    note = str_format("%d rounds taking turns%s; medians, the ratio the median of the "
      .. "rounds'; ours - theirs %.3f ms (the medians'); each round (ms): ours %s; theirs %s; ratios %s; bytes read "
      .. "by the process over a save (rchar, the commit's thread's too), medians: ours %d (%.3fx the video's %d), "
      .. "theirs %d (%.3fx): the mark reads no byte of the video more", rounds,
      size < 1e8 and " after one untimed save each" or "", extra * 1e3,
      B.list(ms(res.ours), "%.2f"), B.list(ms(res.plain), "%.2f"), B.list(ratios, "%.3f"), B.median(read.ours), r_ours,
      size, B.median(read.plain), r_plain) }
  B.row { scenario = str_format("%s: marking and signing time (the box appended, the record's Ed25519 signature)",
    what), baseline = "the save alone (client:download, mark = false, the record unsigned)", ours = adds * 1e3,
    theirs = m_plain * 1e3, unit = "ms", target = "ours < 1 ms, the mark reading its boxes' headers and moov alone",
    ok = adds < 0.001 and mark_read < 65536,
    note = str_format("medians of %d runs: the mark %.1f us (the commit's mark_append through core.mark_file, on a "
      .. "saved unmarked copy, its boxes walked first: %d bytes read, their headers and the moov; a %d-byte box "
      .. "appended), the signature "
      .. "%.1f us (P.text with the signer %.1f us, without %.1f us)", runs, mark_s * 1e6, mark_read, #box,
      sign_s * 1e6, signed_s * 1e6, unsigned_s * 1e6) }
end

local five, five_size = source("mark-5s.mp4")
rows("mark-5s.mp4", five_size, B.quick and 5 or 31, B.quick and 5 or 51, "a 5 s video (19 KB)")
os.remove(five)
local big, big_size = source("mark-big.mp4", BIG)
rows("mark-big.mp4", big_size, B.quick and 1 or 3, B.quick and 3 or 11, str_format("a %s video (sparse)",
  BIG >= 1e9 and str_format("%.0f GB", BIG / 1e9) or str_format("%.0f MB", BIG / 1e6)))
os.remove(big)
plain:close()
ours:close()
