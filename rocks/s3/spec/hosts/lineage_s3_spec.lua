-- remix and continue (lua/starvideos/lineage.lua) against a real S3-compatible server
-- (rocks/s3/spec/support/s3_run.lua:
-- s3rver behind a SigV4-checking proxy) and the emulator fetching each reference as the service does: a remix sends
-- the parent's saved video (the bytes the emulator fetched are the file's), a continue its last frame as first_image
-- (the bytes fetched are the frame's, and ffmpeg reads the same pixels from it as from the parent's last frame);
-- each one create, its child recorded under its parent, three generations deep; a film of a continue and a remix,
-- run again by a client without a bucket, pays for nothing and needs none.
local helper = require "spec.helper"
local core = require "starvideos.core"
local media = require "starvideos.emulator.media"
local S3run = require "rocks.s3.spec.support.s3_run"
local media_read = require "spec.support.media_read"

local q = helper.shell_quote
local pixels = media_read.pixels

describe("remix and continue with a bucket (s3rver) and the emulator fetching their references", function()
  local why = S3run.missing() or (not helper.execute("command -v ffmpeg >/dev/null 2>&1") and "no ffmpeg")
  local emu, dir, client, parent, st
  S3run.lineage(why, { queued = 0, processing = 0.2 }, function(d) return d .. "/parent.mp4" end, function(e)
    emu, dir, client, parent, st = e.emu, e.dir, e.client, e.parent, e.st
  end)

  local function last_task()
    local tasks = emu:tasks()
    return tasks[#tasks], #tasks
  end

  it("remix: one create naming the parent's video, fetched whole by the service; again of it, a third generation",
    function()
      if why then pending(why) return end
      local _, before = last_task()
      local t = assert(client:remix(parent.id, { prompt = "as a cartoon", duration = 5 }, { out = dir .. "/r.mp4" }))
      local made, n = last_task()
      assert.equal(before + 1, n)
      assert.same({ "videos", "as a cartoon" }, { made.params.model, made.params.prompt })
      assert.equal(1, #made.params.referenceVideos)
      local video = helper.read_file(dir .. "/parent.mp4")
      assert.same({ 200, #video, core.hash(video) }, { made.fetched[1].status, made.fetched[1].bytes,
        made.fetched[1].hash })
      assert.same({ parent.id, "remix" }, { t.parent, t.relation })
      local g3 = assert(client:again(t.id, { prompt = "as a cartoon, at night" }, { out = dir .. "/r2.mp4" }))
      assert.equal(#made.params.referenceVideos, #last_task().params.referenceVideos, "again keeps the reference")
      assert.same({ t.id }, { assert(client:tasks { parent = t.id })[1].parent })
      assert.equal(g3.id, assert(client:tasks { parent = t.id })[1].id)
    end)

  it("remix a spend limit refuses: refused before the parent's video is put in the bucket (no PUT, no DELETE), "
    .. "nothing sent", function()
      if why then pending(why) return end
      local capped = require("starvideos").new { base_url = emu.url, api_key = emu.key, journal = dir .. "/j.jsonl",
        interval = 0.1, min_interval = 0.1, storage = { endpoint = st.url, access_key = "S3RVER",
          secret_key = "S3RVER", refs = "s3://vids/refs/" },
        prices = { videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 0.5, starvideos_o3 = 2 },
        spend_limit = { amount = 0.4, scope = "model", model = "videos" } } -- (the parent's 0.4 fills it)
      local _, before = last_task()
      local logged = #st.log()
      local t, err = capped:remix(parent.id, { prompt = "as a watercolour", duration = 5 }, { out = dir .. "/w.mp4" })
      capped:close()
      assert.is_nil(t)
      assert.equal("spend_limited", err.kind)
      assert.matches("^spend_limit: [%d.]+ spent of model videos in the ledger's life %(at most 0%.4, counted in the "
        .. "journal ", err.message)
      local _, n = last_task()
      assert.equal(before, n, "nothing sent")
      local log = st.log()
      local seen = {}
      for i = logged + 1, #log do seen[#seen + 1] = log[i].method .. " " .. tostring(log[i].path) end
      assert.same({}, seen, "nothing put in the bucket, nothing deleted")
    end)

  it("continue: one create whose first_image is the parent's last frame (the same pixels), with the last_image given",
    function()
      if why then pending(why) return end
      helper.write_file(dir .. "/end.png", media.png { width = 320, height = 240 })
      local _, before = last_task()
      local t = assert(client:continue(parent.id, { prompt = "she walks on",
        last_image = { file = dir .. "/end.png" } }, { out = dir .. "/c.mp4" }))
      local made, n = last_task()
      assert.equal(before + 1, n)
      assert.same({ "videos", 5, "16:9" }, { made.params.model, made.params.duration, made.params.ratio })
      local frame = helper.read_file(dir .. "/c.mp4.first.png")
      local by = {}
      for _, f in ipairs(made.fetched) do by[f.field] = f end
      assert.same({ 200, core.hash(frame) }, { by.first_image.status, by.first_image.hash })
      assert.equal(core.hash(helper.read_file(dir .. "/end.png")), by.last_image.hash)
      local want = media_read.last_pixels(dir .. "/parent.mp4")
      assert.truthy(#want > 0)
      assert.equal(core.hash(want), core.hash(pixels(dir .. "/c.mp4.first.png")), "the parent's last frame")
      assert.same({ parent.id, "continue" }, { t.parent, t.relation })
    end)

  it("a film whose second shot continues the first and whose third remixes the first: 3 creates, the second's "
    .. "first_image the first's last frame, the third's reference video the first's file, one film of all", function()
      if why then pending(why) return end
      helper.write_file(dir .. "/end2.png", media.png { width = 320, height = 240 })
      local _, before = last_task()
      local shots = { { model = "videos", prompt = "the road", duration = 4 },
        { prompt = "the road goes on", continue = true, last_image = { file = dir .. "/end2.png" } },
        { prompt = "the road as a cartoon", remix = 1, duration = 4 } }
      local r = assert(client:film(shots, { out = dir .. "/film.mp4" }))
      local tasks = emu:tasks()
      local made, n = tasks[#tasks - 1], #tasks
      assert.equal(before + 3, n)
      assert.same({ r.shots[1].id, "continue" }, { r.shots[2].parent, r.shots[2].relation })
      assert.same({ r.shots[1].id, "remix" }, { r.shots[3].parent, r.shots[3].relation })
      local shot1 = helper.read_file(dir .. "/film.shot01.mp4")
      assert.same({ 200, core.hash(shot1) }, { tasks[#tasks].fetched[1].status, tasks[#tasks].fetched[1].hash })
      local by = {}
      for _, f in ipairs(made.fetched) do by[f.field] = f end
      assert.equal(core.hash(helper.read_file(dir .. "/film.shot02.mp4.first.png")), by.first_image.hash)
      assert.equal("12.000000", helper.capture("ffprobe -v error -show_entries format=duration -of csv=p=0 "
        .. q(dir .. "/film.mp4")):match("[%d.]+"))
      -- run again by a client without a bucket: its continue is made, so no frame is sent; nothing paid
      local bare = require("starvideos").new { base_url = emu.url, api_key = emu.key, journal = dir .. "/j.jsonl",
        interval = 0.1, min_interval = 0.1 }
      local again, err = bare:film(shots, { out = dir .. "/film.mp4" })
      bare:close()
      assert.is_table(again, err and err.message)
      assert.equal(n, #emu:tasks(), "none paid twice")
    end)
end)
