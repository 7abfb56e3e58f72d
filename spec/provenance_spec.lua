-- Where each video came from (lua/starvideos/provenance.lua, docs/lineage.md): each saved video's record beside it
-- (PATH.json) for each caller (the command line, a blocking call, a job driven by step, a film's shots and its join),
-- and `starvideos verify PATH` (lua/starvideos/cli/verify.lua): 0 for a video and a film that match their records, 1
-- for a file changed by one byte, a record changed by one field, a parent's record changed, a film whose shot was
-- replaced; 2 for bad input.  The records hold no key; one that cannot be written is a warning, the video saved.
-- (Both sinks and a remix's parent: spec/support/sink_cases.lua; nginx and Redis: spec/hosts/places_nginx_spec.lua,
-- rocks/redis/spec/hosts/places_redis_spec.lua.)
local helper = require "spec.helper"
local cli = require "spec.support.cli_run"
local starvideos = require "starvideos"
local P = require "starvideos.provenance"
local sign = require "starvideos.sign"

local KEY = cli.KEY

describe("provenance records and starvideos verify", function()
  local emu, dir, client, env
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.1 }
    dir = helper.tmpdir()
    client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl", interval = 0.05,
      min_interval = 0.01 }
    env = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
  end)
  teardown(function()
    client:close()
    emu:stop()
    helper.cleanup()
  end)

  local function verify(path, json)
    return cli.run(json and { "verify", "--json", path } or { "verify", path }, env)
  end
  local function record(path) return assert(P.decode(assert(helper.read_file(path .. ".json")))) end
  local function copy(from, to)
    assert(helper.execute("cp " .. helper.shell_quote(from) .. " " .. helper.shell_quote(to)))
  end

  it("generate --out PATH (the command line): its record beside it, verify exits 0; one byte changed, 1; one field "
    .. "of the record changed, 1; the key in neither", function()
      local out = dir .. "/cli.mp4"
      local r = cli.run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--out", out,
        "--interval", "0.05" }, env)
      assert.equal(0, r.code, r.err)
      local text = assert(helper.read_file(out .. ".json"))
      local rec = assert(P.decode(text))
      assert.same({ "videos", sign.sha256_file(out), #assert(helper.read_file(out)), P.SOURCE, "a cat" },
        { rec.model, rec.video.sha256, rec.video.bytes, rec.digital_source_type, rec.params.prompt })
      assert.is_nil(text:find(KEY, 1, true), "the key is not in the record")
      local ok = verify(out)
      assert.equal(0, ok.code, ok.err)
      assert.matches("matches: " .. out, ok.out, 1, true)
      -- one byte changed
      local bytes = assert(helper.read_file(out))
      local changed = dir .. "/byte.mp4"
      helper.write_file(changed, bytes:sub(1, 99) .. string.char((bytes:byte(100) + 1) % 256) .. bytes:sub(101))
      copy(out .. ".json", changed .. ".json")
      local bad = verify(changed)
      assert.equal(1, bad.code, bad.out)
      assert.matches("the file's SHA-256 is " .. sign.sha256_file(changed) .. "; its record says " .. rec.video.sha256,
        bad.err, 1, true)
      -- one field of the record changed
      local field = dir .. "/field.mp4"
      copy(out, field)
      helper.write_file(field .. ".json", (text:gsub('"model": "videos"', '"model": "videos_pro"')))
      bad = verify(field)
      assert.equal(1, bad.code, bad.out)
      assert.matches("its record was changed after it was written", bad.err, 1, true)
    end)

  it("a job (client:start, moved by step): its record beside its video, verify exits 0", function()
    local out = dir .. "/job.mp4"
    local job = assert(client:start({ model = "videos", prompt = "a job", duration = 5 }, { out = out }))
    assert.truthy(helper.wait_until(function() client:step(0.05); return job.done end, 30), "the job ended")
    assert.is_nil(job.err)
    local rec = record(out)
    assert.same({ job.id, job.sha256 }, { rec.task_id, rec.video.sha256 })
    assert.equal(0, verify(out).code)
  end)

  it("again: the child's record names its parent's record by its SHA-256; verify checks both; the parent's record "
    .. "changed, the child's verify exits 1 naming it", function()
      local parent = assert(client:generate({ model = "videos", prompt = "a fox", duration = 5 },
        { out = dir .. "/fox.mp4" }))
      local child = assert(client:again(parent.id, { prompt = "a fox at night" }, { out = dir .. "/night.mp4" }))
      local p = record(child.path).parents[1]
      assert.same({ "again", parent.id, sign.sha256(helper.read_file(parent.path .. ".json")), parent.sha256 },
        { p.relation, p.task, p.record_sha256, p.video.sha256 })
      local ok = verify(child.path, true)
      assert.equal(0, ok.code, ok.err)
      local doc = require("cjson").decode(ok.out)
      assert.same({ true, 2, 0 }, { doc.ok, #doc.checked, #doc.problems })
      local text = helper.read_file(parent.path .. ".json")
      helper.write_file(parent.path .. ".json", (text:gsub('"a fox"', '"a wolf"')))
      local bad = verify(child.path)
      assert.equal(1, bad.code, bad.out)
      assert.matches("parent 1 (again, task " .. parent.id .. "): its record " .. parent.path .. ".json has SHA-256",
        bad.err, 1, true)
    end)

  it("a film: each shot's record and the film's, naming each shot's record; verify exits 0; a shot replaced (its "
    .. "file, then its file and record), 1", function()
      local out = dir .. "/film.mp4"
      local made = assert(client:film({ { model = "videos", prompt = "one", duration = 4 },
        { model = "videos", prompt = "two", duration = 5 } }, { out = out }))
      local rec = record(made.path)
      assert.equal(2, #rec.parents)
      for i, p in ipairs(rec.parents) do
        local shot = dir .. string.format("/film.shot%02d.mp4", i)
        assert.same({ "shot", i, made.shots[i].id, sign.sha256(helper.read_file(shot .. ".json")) },
          { p.relation, p.index, p.task, p.record_sha256 })
      end
      local ok = verify(made.path)
      assert.equal(0, ok.code, ok.err)
      assert.matches("matches: " .. dir .. "/film.shot02.mp4", ok.out, 1, true)
      -- shot 2's file replaced by another video (the emulator's of another duration: other bytes)
      local other = assert(client:generate({ model = "videos", prompt = "other", duration = 6 },
        { out = dir .. "/other.mp4" }))
      local shot2 = dir .. "/film.shot02.mp4"
      local kept = helper.read_file(shot2)
      copy(other.path, shot2)
      local bad = verify(made.path)
      assert.equal(1, bad.code, bad.out)
      assert.matches(shot2 .. ": the file's SHA-256 is " .. other.sha256, bad.err, 1, true)
      -- shot 2's file and record replaced by the other video's
      copy(other.path .. ".json", shot2 .. ".json")
      bad = verify(made.path)
      assert.equal(1, bad.code, bad.out)
      assert.matches("parent 2 (shot, task " .. made.shots[2].id .. "): its record " .. shot2 .. ".json has SHA-256",
        bad.err, 1, true)
      helper.write_file(shot2, kept)
    end)

  it("a record that cannot be written (PATH.json a folder) is a warning event; the video is saved, the call ok",
    function()
      local out = dir .. "/blocked.mp4"
      assert(helper.execute("mkdir " .. helper.shell_quote(out .. ".json")))
      local said = {}
      local c = starvideos.new { api_key = KEY, base_url = emu.url, interval = 0.05, on_event = function(ev)
        if ev.type == "warning" then said[#said + 1] = ev end
      end }
      local t, err = c:generate({ model = "videos", prompt = "a blocked record", duration = 5 }, { out = out })
      c:close()
      assert.is_nil(err)
      assert.same({ out, sign.sha256_file(out) }, { t.path, t.sha256 })
      assert.same({ 1, "provenance" }, { #said, said[1] and said[1].field })
      assert.matches("the provenance record of " .. out .. " was not written: " .. out .. ".json", said[1].message, 1,
        true)
      local left = {}
      for _, n in ipairs(helper.listing(dir)) do if n:find("^blocked") then left[#left + 1] = n end end
      assert.same({ "blocked.mp4", "blocked.mp4.json" }, left, "no temporary file left")
    end)

  it("a Ctrl-C while a record is made goes through (a film's SIGINT right after a shot was saved went on)", function()
    local was = sign.sha256
    sign.sha256 = function() error("interrupted!", 0) end -- (where lua.c's SIGINT hook raises: anywhere)
    local job = { cfg = {}, out = dir .. "/x.mp4", sink = { record = function() return { done = true } end } }
    local ok, err = pcall(P.save, job, { sha256 = string.rep("0", 64), bytes = 1 }, 0)
    sign.sha256 = was
    assert.same({ false, "interrupted!" }, { ok, err })
  end)

  it("verify: no such file, a folder, an object's URL: exit 2 naming it; a file without a record: exit 1", function()
    local cases = { { dir .. "/none.mp4", "is not there" }, { dir, "is a folder" },
      { "s3://vids/a.mp4", "is an object's URL" } }
    for _, c in ipairs(cases) do
      local r = verify(c[1])
      assert.equal(2, r.code, c[1])
      assert.matches(c[1] .. " " .. c[2], r.err, 1, true)
    end
    local bare = dir .. "/bare.mp4"
    helper.write_file(bare, "not a video of ours")
    local r = verify(bare)
    assert.equal(1, r.code)
    assert.matches(bare .. " has no provenance record", r.err, 1, true)
  end)
end)
