-- Videos that say what they are (issue 81; lua/starvideos/mark.lua, docs/lineage.md): each saved MP4 carries an XMP
-- packet in a top-level uuid box (the XMP specification's placement for MP4) that Debian's exiftool reads as IPTC's
-- DigitalSourceType trainedAlgorithmicMedia, with the model, the task id and the library; its pictures are the
-- service's (ffmpeg's framemd5 of the saved file equals the served video's); the record's video.sha256 is the marked
-- file's (verify exits 0).  mark = false leaves the file as served; a file whose last box runs to its end is saved
-- unmarked, its record and a warning saying why.  A film is marked after its join.  (An s3:// object:
-- rocks/s3/spec/hosts/mark_s3_spec.lua; nginx: spec/hosts/places_nginx_spec.lua; signatures: spec/signed_spec.lua.)
local helper = require "spec.helper"
local U = helper.UNINSTRUMENTED -- (the tools run here are not built with make check's sanitizers)
local cli = require "spec.support.cli_run"
local starvideos = require "starvideos"
local P = require "starvideos.provenance"
local sign = require "starvideos.sign"
local core = require "starvideos.core"
local Mark = require "starvideos.mark"

local KEY = cli.KEY
local TOOLS = helper.execute("command -v exiftool >/dev/null 2>&1 && command -v ffmpeg >/dev/null 2>&1")

-- What exiftool reads of the file at path: its tags (-j, the XMP group and the QuickTime's), or fails the case.
local function exif(path)
  local out = helper.capture(U .. "exiftool -j -G1 -XMP:all " .. helper.shell_quote(path))
  local list = assert(helper.json(out), "exiftool said: " .. tostring(out))
  return list[1]
end

local function framemd5(path_or_url)
  local out = helper.capture(U .. "ffmpeg -v error -nostdin -i " .. helper.shell_quote(path_or_url)
    .. " -map 0:v -f framemd5 - 2>&1")
  local lines = {}
  for line in out:gmatch("[^\n]+") do if not line:find("^#") then lines[#lines + 1] = line end end
  return table.concat(lines, "\n")
end

describe("the mark inside a saved MP4", function()
  local emu, dir, env
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.1 }
    dir = helper.tmpdir()
    env = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
  end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)

  local function client(o)
    local c = { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl", interval = 0.05, min_interval = 0.01 }
    for k, v in pairs(o or {}) do c[k] = v end
    return starvideos.new(c)
  end

  it("generate --out: exiftool reads DigitalSourceType trainedAlgorithmicMedia, the model, the task and the library; "
    .. "the pictures are the service's (framemd5); the record's SHA-256 is the marked file's; verify exits 0",
    function()
      if not TOOLS then pending("exiftool and ffmpeg") return end
      local out = dir .. "/cli.mp4"
      local r = cli.run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--out", out,
        "--interval", "0.05", "--json" }, env)
      assert.equal(0, r.code, r.err)
      local task = assert(helper.json(r.out))
      local tags = exif(out)
      assert.equal(Mark.SOURCE, tags["XMP-iptcExt:DigitalSourceType"])
      assert.equal("videos", tags["XMP-iptcExt:AISystemUsed"])
      assert.equal("starvideos " .. require("starvideos.config").VERSION, tags["XMP-xmp:CreatorTool"])
      local text = helper.capture(U .. "exiftool -b -XMP " .. helper.shell_quote(out))
      assert.matches('starvideos:TaskId="' .. task.id .. '"', text, 1, true)
      -- the served video, as the service has it
      local c = client()
      local t = assert(c:query(task.id))
      c:close()
      local served = helper.capture(U .. "curl -s " .. helper.shell_quote(t.video_url))
      local saved = assert(helper.read_file(out))
      assert.equal(served, saved:sub(1, #served), "the served bytes, untouched, first")
      assert.is_true(#saved > #served)
      assert.equal("uuid", saved:sub(#served + 5, #served + 8), "then one top-level uuid box")
      assert.equal(Mark.UUID, saved:sub(#served + 9, #served + 24))
      local want = framemd5(t.video_url)
      assert.is_true(#want > 0)
      assert.equal(want, framemd5(out))
      local rec = assert(P.decode(assert(helper.read_file(out .. ".json"))))
      assert.same({ "xmp", sign.sha256(saved), #saved }, { rec.mark, rec.video.sha256, rec.video.bytes })
      local ok = cli.run({ "verify", out }, env)
      assert.equal(0, ok.code, ok.err)
    end)

  it("mark = false: the file is the served video byte for byte, no XMP; its record stays and says mark off",
    function()
      local c = client { mark = false }
      local out = dir .. "/plain.mp4"
      local t = assert(c:generate({ model = "videos", prompt = "plain", duration = 5 }, { out = out }))
      local served = helper.capture(U .. "curl -s " .. helper.shell_quote(assert(c:query(t.id)).video_url))
      c:close()
      assert.equal(served, helper.read_file(out))
      local rec = assert(P.decode(assert(helper.read_file(out .. ".json"))))
      assert.same({ "off", sign.sha256(served) }, { rec.mark, rec.video.sha256 })
      if TOOLS then assert.is_nil(exif(out)["XMP-iptcExt:DigitalSourceType"]) end
    end)

  it("a job moved by step(0): its video marked, its record's SHA-256 the marked file's", function()
    local c = client()
    local out = dir .. "/job.mp4"
    local job = assert(c:start({ model = "videos", prompt = "a job", duration = 5 }, { out = out }))
    assert.truthy(helper.wait_until(function() c:step(0); return job.done end, 30), "the job ended")
    c:close()
    assert.is_nil(job.err)
    local saved = assert(helper.read_file(out))
    assert.truthy(saved:find("uuid" .. Mark.UUID, 1, true))
    assert.truthy(saved:find(Mark.SOURCE, 1, true))
    assert.equal(sign.sha256(saved), job.sha256)
    assert.equal(0, cli.run({ "verify", out }, env).code)
  end)

  it("a film: marked after its join (its shots' models and tasks); verify exits 0", function()
    if not TOOLS then pending("exiftool and ffmpeg") return end
    local c = client()
    local out = dir .. "/film.mp4"
    local f = assert(c:film({ { model = "videos", prompt = "one", duration = 5 },
      { model = "videos", prompt = "two", duration = 5 } }, { out = out }))
    c:close()
    local tags = exif(out)
    assert.equal(Mark.SOURCE, tags["XMP-iptcExt:DigitalSourceType"])
    local text = helper.capture(U .. "exiftool -b -XMP " .. helper.shell_quote(out))
    assert.matches('starvideos:TaskId="' .. f.shots[1].id .. " " .. f.shots[2].id .. '"', text, 1, true)
    assert.equal("videos", tags["XMP-iptcExt:AISystemUsed"])
    local rec = assert(P.decode(assert(helper.read_file(out .. ".json"))))
    assert.same({ "xmp", sign.sha256_file(out) }, { rec.mark, rec.video.sha256 })
    assert.equal(0, cli.run({ "verify", out }, env).code)
  end)

  it("a video whose last box runs to the end (size 0): saved as served, unmarked; its record says why; a warning",
    function()
      local hs = helper.hostile()
      local events = {}
      local c = starvideos.new { api_key = KEY, base_url = hs:url("dl_open_end"), interval = 0.05,
        min_interval = 0.01, on_event = function(ev) events[#events + 1] = ev end }
      local out = dir .. "/open.mp4"
      local t, err = c:generate({ model = "videos", prompt = "open", duration = 5 }, { out = out })
      c:close()
      hs:stop()
      assert.is_nil(err)
      assert.truthy(t)
      local saved = assert(helper.read_file(out))
      assert.is_nil(saved:find(Mark.UUID, 1, true), "no mark written")
      local rec = assert(P.decode(assert(helper.read_file(out .. ".json"))))
      assert.equal("none", rec.mark)
      assert.matches("runs to the end of the file", rec.unmarked, 1, true)
      assert.equal(sign.sha256(saved), rec.video.sha256)
      local warned
      for _, ev in ipairs(events) do
        if ev.type == "warning" and ev.field == "mark" then warned = ev.message end
      end
      assert.matches("was saved without its mark", warned, 1, true)
    end)

  it("core.mark_file: a file that is no sequence of MP4 boxes is left as it is, saying why", function()
    local path = dir .. "/not.mp4"
    helper.write_file(path, "not an mp4 at all, just words")
    local ok, why = core.mark_file(path, Mark.of("videos", "t1"))
    assert.is_false(ok)
    assert.matches("not a sequence of MP4 boxes", why, 1, true)
    assert.equal("not an mp4 at all, just words", helper.read_file(path))
  end)
end)
