-- remix and continue where the bucket is the parent or the out (issue 65; lua/starvideos/lineage.lua through the sink
-- interface's check and source): a parent saved to s3:// is checked whole by its sink (HEAD), then read back from its
-- presigned GET and verified (its bytes and SHA-256) by a remix (the copy put under the refs) and a continue; a
-- continue from a file parent writes to an s3:// out; the command line's remix, with a bucket given by the
-- environment, puts the parent's file there rather than sending the service's video_url.  s3rver behind the specs'
-- SigV4-checking proxy (rocks/s3/spec/support/s3_run.lua), the emulator fetching each reference as the service does;
-- creates counted at the emulator.  A remix's provenance record names its object parent's record (s3://B/K.json).
local helper = require "spec.helper"
local core = require "starvideos.core"
local media = require "starvideos.emulator.media"
local S3run = require "rocks.s3.spec.support.s3_run"

local q = helper.shell_quote
local KEY = "sk-lineage-bucket-5c2a"
local why = S3run.missing() or (not helper.execute("command -v ffmpeg >/dev/null 2>&1") and "no ffmpeg") or nil

describe("remix and continue with an s3:// parent or out", function()
  local emu, st, dir, client, parent
  local function parent_out() return "s3://vids/lineage/parent.mp4" end
  S3run.lineage(why, { queued = 0, processing = 0.2, key = KEY }, parent_out, function(e)
    emu, st, dir, client, parent = e.emu, e.st, e.dir, e.client, e.parent
  end)

  local function last_task()
    local tasks = emu:tasks()
    return tasks[#tasks]
  end
  -- The bytes s3rver holds at key (its own file of the object).
  local function object_bytes(key) return assert(helper.read_file(st.dir .. "/vids/" .. key .. "._S3rver_object")) end
  local function by_field(task)
    local by = {}
    for _, f in ipairs(task.fetched or {}) do by[f.field] = f end
    return by
  end

  it("remix of an s3:// parent: one create whose reference video is the object read back, put and fetched whole by "
    .. "the service; a rerun pays nothing", function()
    if why then pending(why) return end
    local before = emu:creates()
    local t, err = client:remix(parent.id, { prompt = "as a cartoon", duration = 5 }, { out = dir .. "/r.mp4" })
    assert.is_nil(err)
    assert.equal(before + 1, emu:creates())
    local made = last_task()
    assert.equal(1, #made.params.referenceVideos)
    assert.equal(st.url .. "/vids/refs/", made.params.referenceVideos[1]:sub(1, #st.url + 11))
    local video = object_bytes("lineage/parent.mp4")
    assert.same({ 200, #video, core.hash(video) }, { made.fetched[1].status, made.fetched[1].bytes,
      made.fetched[1].hash })
    assert.same({ parent.id, "remix" }, { t.parent, t.relation })
    assert.is_false(helper.exists(dir .. "/r.mp4.parent.mp4"), "the read-back copy is removed")
    assert.is_false(helper.exists(dir .. "/r.mp4.parent.mp4.json"), "and the record of its download")
    -- its provenance record: the reference by the parent's SHA-256 and size (not the refs' presigned URL), and the
    -- parent's record, the object s3://vids/lineage/parent.mp4.json, by its SHA-256
    local rec = require("cjson").decode((assert(helper.read_file(dir .. "/r.mp4.json"))))
    assert.same({ file = "r.mp4.parent.mp4", sha256 = parent.sha256, bytes = #video }, rec.params.referenceVideos[1])
    assert.same({ "remix", parent_out(), require("starvideos.sign").sha256(object_bytes("lineage/parent.mp4.json")) },
      { rec.parents[1].relation, rec.parents[1].video.path, rec.parents[1].record_sha256 })
    local again = assert(client:remix(parent.id, { prompt = "as a cartoon", duration = 5 }, { out = dir .. "/r.mp4" }))
    assert.equal(t.id, again.id)
    assert.equal(before + 1, emu:creates(), "a rerun creates nothing")
  end)

  it("continue of an s3:// parent: one create whose first_image is the object's last frame, read back whole",
    function()
    if why then pending(why) return end
    helper.write_file(dir .. "/end.png", media.png { width = 320, height = 240 })
    local before = emu:creates()
    local t, err = client:continue(parent.id, { prompt = "she walks on", last_image = { file = dir .. "/end.png" } },
      { out = dir .. "/c.mp4" })
    assert.is_nil(err)
    assert.equal(before + 1, emu:creates())
    local by = by_field(last_task())
    assert.same({ 200, core.hash(helper.read_file(dir .. "/c.mp4.first.png")) },
      { by.first_image.status, by.first_image.hash })
    assert.is_false(helper.exists(dir .. "/c.mp4.parent.mp4"), "the read-back copy is removed")
    assert.same({ parent.id, "continue" }, { t.parent, t.relation })
  end)

  it("continue of an s3:// parent whose object changed since it was saved: refused, nothing sent", function()
    if why then pending(why) return end
    local other = assert(client:generate({ model = "videos", prompt = "a grey wolf", duration = 5 },
      { out = "s3://vids/lineage/changed.mp4" }))
    local file = st.dir .. "/vids/lineage/changed.mp4._S3rver_object"
    helper.write_file(file, "not the video")
    local before = emu:creates()
    local t, err = client:continue(other.id, { prompt = "on", last_image = "https://example.com/end.png" },
      { out = dir .. "/changed-child.mp4" })
    assert.is_nil(t)
    assert.same({ "invalid_request", "task" }, { err.kind, err.field })
    assert.matches("s3://vids/lineage/changed.mp4", err.message, 1, true)
    assert.equal(before, emu:creates(), "nothing sent")
  end)

  it("continue from a file parent into an s3:// out: one create, the child saved whole as the object", function()
    if why then pending(why) return end
    local file_parent = assert(client:generate({ model = "videos", prompt = "a river", duration = 5 },
      { out = dir .. "/river.mp4" }))
    helper.write_file(dir .. "/end2.png", media.png { width = 320, height = 240 })
    local before = emu:creates()
    local t, err = client:continue(file_parent.id, { prompt = "downstream",
      last_image = { file = dir .. "/end2.png" } }, { out = "s3://vids/lineage/downstream.mp4" })
    assert.is_nil(err)
    assert.equal(before + 1, emu:creates())
    assert.equal("s3://vids/lineage/downstream.mp4", t.path)
    assert.equal(t.sha256, st.read("lineage/downstream.mp4").sha256)
    assert.same({ file_parent.id, "continue" }, { t.parent, t.relation })
    assert.equal(200, by_field(last_task()).first_image.status)
  end)

  -- The seconds of the MP4 s3rver holds at key (copied out of its own file), by ffprobe.
  local function object_seconds(key)
    local copy = dir .. "/" .. key:gsub("/", "_")
    helper.write_file(copy, object_bytes(key))
    return tonumber((helper.capture("ffprobe -v error -show_entries format=duration -of csv=p=0 " .. q(copy))))
  end

  it("film into an s3:// out: its shots objects beside it, read back, joined here and the film put whole; a rerun "
    .. "pays nothing", function()
    if why then pending(why) return end
    helper.write_file(dir .. "/end3.png", media.png { width = 320, height = 240 })
    local shots = { { model = "videos", prompt = "a kite rises", duration = 5, ratio = "16:9" },
      { model = "videos", prompt = "the kite dives", duration = 5, ratio = "16:9" },
      { model = "videos", prompt = "it lands", continue = true, last_image = { file = dir .. "/end3.png" } } }
    local before = emu:creates()
    local film, err = client:film(shots, { out = "s3://vids/films/kite.mp4" })
    assert.is_nil(err)
    assert.equal(before + 3, emu:creates())
    assert.equal("s3://vids/films/kite.mp4", film.path)
    for i = 1, 3 do assert.is_true(st.exists(string.format("films/kite.shot%02d.mp4", i))) end
    local got = st.read("films/kite.mp4")
    assert.equal(got.sha256, got.meta, "the object carries its x-amz-meta-sha256")
    assert.near(15, object_seconds("films/kite.mp4"), 0.5)
    local left = helper.capture("ls " .. q(os.getenv("TMPDIR") or "/tmp") .. " | grep -c '^starvideos-.*shot' || true")
    assert.equal("0", left:match("%d+"), "no shot read back is left")
    -- the film's provenance record, the object beside it: its SHA-256 and size, each shot's record by its SHA-256
    local rec = require("cjson").decode((object_bytes("films/kite.mp4.json")))
    assert.same({ got.sha256, got.bytes, 3 }, { rec.video.sha256, rec.video.bytes, #rec.parents })
    assert.is_nil(film.provenance_error)
    for i, p in ipairs(rec.parents) do
      local key = string.format("films/kite.shot%02d.mp4", i)
      assert.same({ "shot", film.shots[i].id, require("starvideos.sign").sha256((object_bytes(key .. ".json"))),
        st.read(key).sha256 }, { p.relation, p.task, p.record_sha256, p.video.sha256 })
    end
    local again = assert(client:film(shots, { out = "s3://vids/films/kite.mp4" }))
    assert.equal(before + 3, emu:creates(), "a rerun creates nothing")
    assert.equal(film.shots[3].id, again.shots[3].id)
  end)

  it("film into an s3:// out as a job: its PUT and HEAD yield to the frame loop (a step never waits for them), by the "
    .. "call's timeout; its shots read back into a folder of its own (mktemp -d), none left", function()
    if why then pending(why) return end
    local lineage, socket = require "starvideos.lineage", require "socket"
    local read_copy, copies = lineage.read_copy, {}
    lineage.read_copy = function(c, how, t, file, o) copies[#copies + 1] = file return read_copy(c, how, t, file, o) end
    local Commit = require "starvideos.storage.commit"
    local ask, deadlines = Commit.ask, {} -- (the film's PUT's and HEAD's: by the call's timeout)
    Commit.ask = function(ctx, s3, bucket, key_name, op, a, deadline)
      if key_name == "films/jobkite.mp4" then deadlines[op] = deadline or false end
      return ask(ctx, s3, bucket, key_name, op, a, deadline)
    end
    local shots = { { model = "videos", prompt = "a job's kite", duration = 4 },
      { model = "videos", prompt = "it turns", duration = 4 } }
    local job = client:film(shots, { out = "s3://vids/films/jobkite.mp4", job = true })
    local put_between = false -- (the film's PUT or HEAD in flight when a step returned)
    local ok, err = pcall(function()
      assert.is_true(helper.wait_until(function()
        client:step(0)
        for _, req in pairs(client.loop.inflight) do
          put_between = put_between or (req.owner and req.owner.key_name == "films/jobkite.mp4") or false
        end
        socket.sleep(0.002)
        return job.done
      end, 120))
    end)
    lineage.read_copy, Commit.ask = read_copy, ask
    assert(ok, err)
    assert.is_nil(job.err, job.err and job.err.message)
    assert.is_true(st.exists("films/jobkite.mp4"))
    assert.same({ "number", "number" }, { type(deadlines.put), type(deadlines.head) }, "a deadline each")
    assert.is_true(put_between, "a step returned while the film's PUT or HEAD was under way")
    assert.equal(2, #copies)
    local folder = copies[1]:match("^(.*)/[^/]+$")
    assert.matches("/starvideos%-film%.%d+%.%w+$", folder)
    assert.equal(folder, copies[2]:match("^(.*)/[^/]+$"))
    assert.falsy(helper.execute("test -e " .. q(folder)), "its folder removed")
  end)

  it("film into an s3:// out whose shot cannot be read back whole: an io error of field out naming the shot, its "
    .. "shots made and paid for, nothing said of nothing sent", function()
    if why then pending(why) return end
    local download = client.download
    client.download = function(c, src, file) -- (the copy spoilt: one byte more than was saved)
      local r, e = download(c, src, file)
      local f = io.open(file, "ab")
      if f then f:write("x") f:close() end
      return r, e
    end
    local before = emu:creates()
    local film, err = client:film({ { model = "videos", prompt = "a spoilt kite", duration = 4 } },
      { out = "s3://vids/films/spoilt.mp4" })
    client.download = nil
    assert.is_nil(film)
    assert.same({ "io", "out", 1, 1, before + 1 }, { err.kind, err.field, err.shot, err.made, emu:creates() })
    assert.is_nil(err.message:find("nothing was sent", 1, true), err.message)
    assert.matches("shot 1 is made and paid for", err.message, 1, true)
    assert.is_false(st.exists("films/spoilt.mp4"))
  end)

  it("film into an s3:// out without the store's keys: refused before the first create", function()
    if why then pending(why) return end
    if os.getenv("AWS_ACCESS_KEY_ID") then pending("AWS_ACCESS_KEY_ID is set: the store's keys are given") return end
    local bare = require("starvideos").new { base_url = emu.url, api_key = emu.key, journal = dir .. "/bare.jsonl" }
    local before = emu:creates()
    local film, err = bare:film({ { model = "videos", prompt = "a kite", duration = 5 } },
      { out = "s3://vids/films/bare.mp4" })
    bare:close()
    assert.is_nil(film)
    assert.equal("invalid_request", err.kind)
    assert.matches("storage.access_key: no credentials", err.message, 1, true)
    assert.equal(before, emu:creates(), "nothing sent")
  end)

  describe("on the command line", function()
    -- bin/starvideos with args: the service's key and URL, the bucket in AWS_* and STARVIDEOS_REFS (as a user
    -- gives them): { out, err, code }.
    local function run(list)
      local w = { "env", "-u", "STARVIDEOS_STORE", "STARVIDEOS_API_KEY=" .. q(KEY), "STARVIDEOS_BASE_URL="
        .. q(emu.url), "AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER", "AWS_ENDPOINT_URL=" .. q(st.url),
        "STARVIDEOS_REFS=s3://vids/clirefs/", q(helper.lua), q(helper.root .. "/bin/starvideos") }
      for _, a in ipairs(list) do w[#w + 1] = q(a) end
      local out, _, code = helper.capture(table.concat(w, " ") .. " </dev/null 2>" .. q(dir .. "/stderr"))
      return { out = out, err = helper.read_file(dir .. "/stderr") or "", code = code }
    end

    -- `remix ID --out PATH` run: one create, whose reference video is an object under the refs holding bytes.
    local function remixed(id, prompt, name, bytes)
      local before = emu:creates()
      local r = run { "remix", id, "--prompt", prompt, "--duration", "5", "--out", dir .. "/" .. name, "--interval",
        "0.1", "--journal", dir .. "/j.jsonl" }
      assert.equal(0, r.code, r.err)
      assert.equal(before + 1, emu:creates())
      local made = last_task()
      local ref = made.params.referenceVideos[1]
      assert.equal(st.url .. "/vids/clirefs/", ref:sub(1, #st.url + 14), "the bucket's URL, not " .. ref)
      assert.same({ 200, core.hash(bytes) }, { made.fetched[1].status, made.fetched[1].hash })
    end

    it("remix ID --out with a bucket configured: the parent's file put into the bucket and presigned, not the "
      .. "service's video_url", function()
      if why then pending(why) return end
      local file_parent = assert(client:generate({ model = "videos", prompt = "a hill", duration = 5 },
        { out = dir .. "/hill.mp4" }))
      remixed(file_parent.id, "at dusk", "dusk.mp4", helper.read_file(dir .. "/hill.mp4"))
    end)

    it("remix ID --out of an s3:// parent: one create, the object read back and put under the refs", function()
      if why then pending(why) return end
      remixed(parent.id, "in snow", "snow.mp4", object_bytes("lineage/parent.mp4"))
    end)

    it("film FILE --out s3://...: a film killed (-9) while it joins leaves its folder in TMPDIR; the next film sweeps "
      .. "it, a live process's folder stays", function()
      if why then pending(why) return end
      local tmp, bin = dir .. "/tmp", dir .. "/bin"
      assert(helper.execute("mkdir -p " .. q(tmp) .. " " .. q(bin)))
      -- an ffmpeg that holds the join (its pid in hung.pid) and is otherwise the real one
      helper.write_file(bin .. "/ffmpeg", "#!/bin/sh\ncase \"$*\" in *concat*) echo $$ >" .. q(dir .. "/hung.pid")
        .. "; exec sleep 300 ;; esac\nexec " .. q(helper.capture("command -v ffmpeg"):match("[^\n]+")) .. ' "$@"\n')
      assert(helper.execute("chmod +x " .. q(bin .. "/ffmpeg")))
      helper.write_file(dir .. "/killed.json", '{"shots": [{"model": "videos", "prompt": "a kite", "duration": 5}, '
        .. '{"model": "videos", "prompt": "the kite falls", "duration": 5}]}')
      -- `film killed.json --out s3://vids/films/NAME` with TMPDIR tmp (and PATH first: bin's ffmpeg)
      local function film_cmd(name, path)
        return "env TMPDIR=" .. q(tmp) .. (path and " PATH=" .. q(path) .. ':"$PATH"' or "") .. " STARVIDEOS_API_KEY="
          .. q(KEY) .. " STARVIDEOS_BASE_URL=" .. q(emu.url) .. " AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER"
          .. " AWS_ENDPOINT_URL=" .. q(st.url) .. " " .. q(helper.lua) .. " " .. q(helper.root .. "/bin/starvideos")
          .. " film " .. q(dir .. "/killed.json") .. " --out s3://vids/films/" .. name .. " --interval 0.1 --journal "
          .. q(dir .. "/killed.jsonl") .. " </dev/null 2>&1"
      end
      local film, live = helper.spawn(film_cmd("kite.mp4", bin) .. " >" .. q(dir .. "/killed.out")), nil
      finally(function() -- (whatever fails: no process of the case outlives it, none waited for)
        local hung = helper.read_file(dir .. "/hung.pid")
        os.execute("kill -9 " .. film.pid .. (hung and " " .. hung:match("%d+") or "") .. (live and " " .. live.pid
          or "") .. " 2>/dev/null")
        if not film.closed then film:close() end
        if live then live:close() end
      end)
      assert.truthy(helper.wait_until(function() return helper.read_file(dir .. "/hung.pid") end, 60),
        helper.read_file(dir .. "/killed.out"))
      local left = helper.listing(tmp)
      assert.same({ 1, "starvideos-film." }, { #left, (left[1] or ""):sub(1, 16) }, left[1])
      os.execute("kill -9 " .. film.pid)
      film:close()
      film.closed = true
      assert.same(left, helper.listing(tmp), "the killed film's folder is left")
      live = helper.spawn("sleep 300")
      local kept = tmp .. "/starvideos-film." .. live.pid .. ".aBc123"
      assert(helper.execute("mkdir " .. q(kept)))
      helper.write_file(kept .. "/film.shot01.mp4", "a live film's shot")
      local said, _, code = helper.capture(film_cmd("again.mp4"))
      assert.equal(0, code, said)
      assert.same({ "starvideos-film." .. live.pid .. ".aBc123" }, helper.listing(tmp), "the dead one's swept")
      assert.equal("a live film's shot", helper.read_file(kept .. "/film.shot01.mp4"))
    end)

    it("film FILE --out s3://bucket/key: 2 creates, the film put whole into the bucket", function()
      if why then pending(why) return end
      helper.write_file(dir .. "/board.json", '{"shots": [{"model": "videos", "prompt": "a boat", "duration": 5}, '
        .. '{"model": "videos", "prompt": "the boat sails", "duration": 5}]}')
      local before = emu:creates()
      local r = run { "film", dir .. "/board.json", "--out", "s3://vids/films/boat.mp4", "--interval", "0.1",
        "--journal", dir .. "/j.jsonl" }
      assert.equal(0, r.code, r.err)
      assert.equal(before + 2, emu:creates())
      assert.near(10, object_seconds("films/boat.mp4"), 0.5)
      -- its size as the film's record has it, not "size unknown" (issue "What new and hostile users found", 17)
      local bytes = #object_bytes("films/boat.mp4")
      local said = {}
      for l in r.out:gmatch("[^\n]+") do said[#said + 1] = l end
      assert.equal(string.format("saved s3://vids/films/boat.mp4 (%s, %d bytes): 2 shots joined, by a stream copy",
        require("starvideos.cli.display").human_size(bytes), bytes), said[#said])
    end)
  end)
end)
