-- The matrix's redis column (spec/support/matrix.lua's ledger place "redis": `store = URL`, a real redis-server on
-- loopback), against the emulator counting creates: the lineage verbs (again, remix, continue, film) take their
-- parent from the store, where another process recorded it, pay one create each, record the child's parent and
-- relation there, and pay nothing run again; a script's generate_all with a store, interrupted (Ctrl-C), says what
-- was paid and the `resume --store` that fetches every task, which pays nothing, pasted; a generate killed -9
-- mid-download is gone on with by `resume --store` from its .part, with Range, whole.  A child's provenance record
-- names its parent's (found in the store) and verifies.
local helper = require "spec.helper"
local media = require "starvideos.emulator.media"
local redis_run = require "rocks.redis.spec.support.redis_run"
local S3run = require "rocks.s3.spec.support.s3_run"
local C = require "spec.support.cli_run"

local missing = redis_run.missing("starvideos.redis")
local describe_redis = missing and pending or describe
local KEY = C.KEY

describe_redis("the lineage verbs on a store", function()
  local why = S3run.missing() or (not helper.execute("command -v ffmpeg >/dev/null 2>&1") and "no ffmpeg") or nil
  local srv, emu, st, dir, parent
  setup(function()
    if why then return end
    srv = redis_run.start {}
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.2 }
    emu:config { fetch_refs = true }
    st = S3run.start {}
    dir = helper.tmpdir()
    -- (made by another process, the command line, with the store: the verbs take it from Redis)
    local r = C.run({ "generate", "--model", "videos", "--prompt", "a red fox", "--duration", "5", "--ratio", "16:9",
      "--store", srv.url, "--out", dir .. "/parent.mp4", "--interval", "0.1", "--json" },
      { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url })
    assert(r.code == 0, r.err)
    parent = assert(helper.json(r.out), r.out).id
  end)
  teardown(function()
    if why then return end
    st.stop()
    emu:stop()
    srv.stop()
    helper.cleanup()
  end)

  -- A client of the store made anew (a rerun's is too): with the bucket when bucket.
  local function client(bucket)
    return require("starvideos").new { api_key = KEY, base_url = emu.url, store = srv.url, interval = 0.1,
      min_interval = 0.1, storage = bucket and { endpoint = st.url, access_key = "S3RVER", secret_key = "S3RVER",
        refs = "s3://vids/refs/" } or nil }
  end

  -- verb(c) run by a client of the store, then by another: one create, its parent and relation as a third client
  -- reads them from the store, the second call following the task the first made.  The task.
  local function once(verb, relation, bucket)
    local before = emu:creates()
    local a = client(bucket)
    local t = assert(verb(a))
    a:close()
    assert.equal(before + 1, emu:creates())
    assert.same({ parent, relation }, { t.parent, t.relation })
    local reader = client()
    local kids = {}
    for _, k in ipairs(assert(reader:tasks { parent = parent })) do kids[k.id] = k.relation end
    reader:close()
    assert.equal(relation, kids[t.id], "recorded in the store")
    local b = client(bucket)
    local t2 = assert(verb(b))
    b:close()
    assert.same({ before + 1, t.id }, { emu:creates(), t2.id }, "a rerun follows its task")
    return t
  end

  -- The provenance record beside child names the one beside parent_path (relation, by its SHA-256: its parent's
  -- found in the store), and verify exits 0 (docs/lineage.md, "Where each video came from").
  local function named(child, parent_path, relation)
    local rec = assert(helper.json(assert(helper.read_file(child .. ".json"))))
    assert.same({ relation, require("starvideos.sign").sha256(assert(helper.read_file(parent_path .. ".json"))) },
      { rec.parents[1].relation, rec.parents[1].record_sha256 })
    local v = C.run { "verify", child }
    assert.equal(0, v.code, v.err)
  end

  it("again of a parent another process recorded in the store: one create, the rerun none", function()
    if why then pending(why) return end
    once(function(c) return c:again(parent, { prompt = "a blue fox" }, { out = dir .. "/again.mp4" }) end, "again")
    assert.equal("a blue fox", emu:tasks()[#emu:tasks()].params.prompt)
    named(dir .. "/again.mp4", dir .. "/parent.mp4", "again")
  end)

  it("remix of a parent from the store, without a bucket (its video_url): one create, the rerun none", function()
    if why then pending(why) return end
    once(function(c) return c:remix(parent, { prompt = "as a cartoon" }, { out = dir .. "/remix.mp4" }) end, "remix")
    local made = emu:tasks()[#emu:tasks()]
    assert.same({ 1, 200 }, { #made.params.referenceVideos, made.fetched[1].status })
  end)

  it("continue of a parent from the store, its last frame put in the bucket: one create, the rerun none",
    function()
      if why then pending(why) return end
      helper.write_file(dir .. "/end.png", media.png { width = 320, height = 240 })
      once(function(c)
        return c:continue(parent, { prompt = "she walks on", last_image = { file = dir .. "/end.png" } },
          { out = dir .. "/continue.mp4" })
      end, "continue", true)
      local by = {}
      for _, f in ipairs(emu:tasks()[#emu:tasks()].fetched) do by[f.field] = f end
      assert.equal(200, by.first_image.status)
    end)

  it("film of 2 shots on a store, the second continuing the first: 2 creates, one film, the shots' parent in the "
    .. "store; run again, nothing paid", function()
      if why then pending(why) return end
      helper.write_file(dir .. "/end2.png", media.png { width = 320, height = 240 })
      local shots = { { model = "videos", prompt = "the road", duration = 4 },
        { prompt = "the road goes on", continue = true, last_image = { file = dir .. "/end2.png" } } }
      local before = emu:creates()
      local c = client(true)
      local r = assert(c:film(shots, { out = dir .. "/film.mp4" }))
      c:close()
      assert.equal(before + 2, emu:creates())
      assert(helper.whole_mp4(dir .. "/film.mp4", 8))
      local reader = client()
      local kids = assert(reader:tasks { parent = r.shots[1].id })
      reader:close()
      assert.same({ { r.shots[2].id, "continue" } }, { { kids[1].id, kids[1].relation } })
      named(dir .. "/film.shot02.mp4", dir .. "/film.shot01.mp4", "continue")
      named(dir .. "/film.mp4", dir .. "/film.shot01.mp4", "shot")
      c = client(true)
      assert(c:film(shots, { out = dir .. "/film.mp4" }))
      c:close()
      assert.equal(before + 2, emu:creates(), "none paid twice")
    end)
end)

describe_redis("interrupted on a store", function()
  local emu, srv
  local env = C.session(function(e) emu = e end)
  setup(function() srv = redis_run.start {} end)
  teardown(function() srv.stop() end)

  it("generate_all: one error saying what was paid and naming `starvideos resume --store`, which, pasted, fetches "
    .. "every task and pays for nothing again", function()
    local dir = helper.tmpdir()
    local before = emu:creates()
    local cmd = C.interrupted_batch(dir, emu, string.format("{ store = %q }", srv.url), dir .. "/%04d.mp4")
    assert.matches("--store " .. srv.url .. "/0 ", cmd, 1, true)
    local pasted = C.run_printed(cmd .. " --dir " .. helper.shell_quote(dir), env())
    assert.equals(0, pasted.code, pasted.err)
    assert.equals(before + 3, emu:creates(), "nothing paid again")
    for i = 1, 3 do assert.equals(C.SAMPLE, helper.read_video(string.format("%s/%04d.mp4", dir, i))) end
  end)

  it("a generate killed -9 mid-download: `resume --store` goes on from its .part with Range, the video whole",
    function()
      local SIZE, CUT = 3000000, 1000000
      emu:config { video_size = SIZE }
      emu:fault { { path = "/videos/", drop_after_bytes = CUT }, { path = "/videos/", delay = 30 } }
      local path = helper.tmpdir() .. "/cut.mp4"
      local proc = C.background({ "generate", "--model", "videos", "--prompt", "a cut fox", "--duration", "5",
        "--interval", "0.1", "--store", srv.url, "--out", path }, env())
      C.until_true(function() return #emu:video_ranges() == 2 and helper.file_size(path .. ".part") == CUT end)
      assert.equal(137, proc:stop("KILL").code)
      emu:clear_faults()
      emu:clear()
      local r = C.run({ "resume", "--store", srv.url, "--dir", helper.tmpdir() }, env())
      emu:config { video_size = require("cjson").null }
      assert.equal(0, r.code, r.out .. r.err)
      assert.same({ "bytes=" .. (CUT - 65536) .. "-" }, emu:video_ranges(), "on from the .part (64 KiB checked)")
      assert.equal(0, emu:creates(), "nothing paid again")
      assert.equal(SIZE, helper.video_size(path)) -- (up to the mark's box its commit appended)
      assert.is_nil(helper.read_file(path .. ".part"))
      assert(helper.whole_mp4(path, 5))
    end)
end)
