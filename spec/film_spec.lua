-- A film from a storyboard (lua/starvideos/film.lua) against the emulator, the ledger a journal: 4 shots make 4
-- creates and one MP4 whose duration is their sum and that ffmpeg decodes without an error; a film interrupted
-- with Ctrl-C (SIGINT) after its second shot and run again makes 4 creates in all; its plan says what would be
-- made, each shot priced (a continue and a remix at the model they take); every shot checked (its model's rules,
-- the bucket a continue's frame needs, the spend limits over the whole film) before the first create, so that the
-- refusals send nothing; a shot that fails once others are made says so.  (A shot that continues another, made:
-- rocks/s3/spec/hosts/lineage_s3_spec.lua, its frame needs a bucket.)
local helper = require "spec.helper"
local starvideos = require "starvideos"

local KEY = "k-film"
local q = helper.shell_quote

local SHOTS = [[{ { model = "videos", prompt = "shot one", duration = 4 },
  { model = "videos", prompt = "shot two", duration = 5 },
  { model = "videos", prompt = "shot three", duration = 4 },
  { model = "videos", prompt = "shot four", duration = 6 } }]]

local function seconds(path)
  return tonumber((helper.capture("ffprobe -v error -show_entries format=duration -of csv=p=0 " .. q(path))))
end

describe("client:film", function()
  local emu
  setup(function() emu = helper.emulator { key = KEY, queued = 0, processing = 0.6 } end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)

  -- An absolute path as a path relative to the current folder (ffmpeg's concat reads a relative path against
  -- its list's folder: a film's out given so).
  local function relative(path)
    local cwd = helper.capture("pwd"):gsub("%s+$", "")
    local _, depth = cwd:gsub("/[^/]+", "")
    return string.rep("../", depth) .. path:sub(2)
  end

  -- A child process making the film of SHOTS at dir/out/film.mp4 (a relative path), its journal in dir.
  local function child(dir)
    local prog = dir .. "/film.lua"
    helper.write_file(prog, string.format([[
local c = require("starvideos").new { api_key = %q, base_url = %q, journal = %q, interval = 0.1, min_interval = 0.1 }
local r, err = c:film(%s, { out = %q })
io.write(r and "made " .. r.path or "error " .. tostring(err), "\n")
]], KEY, emu.url, dir .. "/j.jsonl", SHOTS, relative(dir .. "/out/film.mp4")))
    os.execute("mkdir -p " .. q(dir .. "/out"))
    return helper.spawn(helper.CHILD_ENV .. " " .. q(helper.lua) .. " " .. q(prog) .. " 2>&1")
  end

  it("4 shots: 4 creates, one film of their summed duration that ffmpeg decodes; interrupted after shot 2 and run "
    .. "again: 4 creates in all", function()
    emu:clear()
    local dir = helper.tmpdir()
    local p = child(dir)
    assert.is_true(helper.wait_until(function() return helper.exists(dir .. "/out/film.shot02.mp4") end, 60))
    -- (and shot 3's create answered and recorded, as lineage_cli_spec's: the film takes shot 2's last frame with
    -- ffmpeg as it saves it, and a SIGINT sent to the process inside os.execute is ignored there, system()'s rule:
    -- a loaded full run's film then went on to its end; a create in flight at Ctrl-C the rerun rightly refuses)
    assert.is_true(helper.wait_until(function()
      local text = helper.read_file(dir .. "/j.jsonl") or ""
      local _, created = text:gsub('"event":"created"', "")
      local _, pending = text:gsub('"event":"pending"', "")
      return created >= 3 and created == pending
    end, 60), helper.read_file(dir .. "/j.jsonl"))
    helper.execute("kill -INT " .. p.pid)
    local said = p.pipe:read("*a")
    p:close()
    assert.falsy(helper.exists(dir .. "/out/film.mp4"), said)
    local again = child(dir)
    local text = again.pipe:read("*a")
    again:close()
    assert.matches("^made ", text)
    assert.equal(4, emu:creates(), "each shot paid once")
    assert.equal(19, seconds(dir .. "/out/film.mp4"))
    assert.truthy(helper.execute("ffmpeg -v error -nostdin -i " .. q(dir .. "/out/film.mp4") .. " -f null - 2>"
      .. q(dir .. "/decode.log")), helper.read_file(dir .. "/decode.log"))
    assert.equal("", helper.read_file(dir .. "/decode.log"))
  end)

  it("plans before paying: each shot's file and whether it is made, the creates and their cost", function()
    emu:clear()
    local dir = helper.tmpdir()
    local c = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl", interval = 0.1,
      min_interval = 0.1, prices = { videos = 0.4 } }
    local shots = assert((rawget(_G, "loadstring") or load)("return " .. SHOTS))()
    assert(c:generate(shots[1], { out = dir .. "/f.shot01.mp4" }))
    local plan = assert(c:film(shots, { out = dir .. "/f.mp4", dry_run = true }))
    assert.same({ "none", "create", "create", "create" }, { plan.shots[1].action, plan.shots[2].action,
      plan.shots[3].action, plan.shots[4].action })
    assert.same({ 3, "1.20" }, { plan.creates, string.format("%.2f", plan.cost) })
    assert.equal(1, emu:creates(), "the plan sent nothing")
    c:close()
  end)

  it("refuses before paying: no shots, a first shot that continues, a continue without last_image, no out, an "
    .. "s3:// out without the store's keys", function()
    emu:clear()
    local dir = helper.tmpdir()
    local c = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl" }
    local shot = { model = "videos", prompt = "x", duration = 4 }
    for _, case in ipairs {
      { {}, { out = dir .. "/a.mp4" }, "shots", "a list of shots expected" },
      { { { model = "videos", prompt = "x", duration = 4, continue = true, last_image = "https://e.com/x.png" } },
        { out = dir .. "/a.mp4" }, "shots[1].continue", "the first shot has no shot before it" },
      { { shot, { model = "videos", prompt = "y", continue = true } }, { out = dir .. "/a.mp4" },
        "shots[2].last_image", "needs its last_image" },
      { { shot }, {}, "out", "opts.out is required" },
      { { shot, shot }, { out = "s3://vids/film.mp4" }, "storage.access_key", "no credentials" }, -- (a bucket out
      -- whose store has no keys; was: both shots paid, then a raw error)
      { { shot, { model = "videos", prompt = "y", duration = 4, remix = 2 } }, { out = dir .. "/a.mp4" },
        "shots[2].remix", "the index of a shot before this one expected (1 to 1), got 2" },
      { { shot, { prompt = "y", remix = 1, continue = true, last_image = "https://e.com/x.png" } },
        { out = dir .. "/a.mp4" }, "shots[2]", "either continues the one before or remixes one, not both" },
    } do
      local ok, err = c:film(case[1], case[2])
      assert.is_nil(ok)
      assert.same({ "invalid_request", case[3] }, { err.kind, err.field })
      assert.matches(case[4], err.message, 1, true)
    end
    assert.equal(0, emu:creates())
    c:close()
    local none = starvideos.new { api_key = KEY, base_url = emu.url }
    local ok, err = none:film({ shot }, { out = dir .. "/b.mp4" })
    assert.same({ nil, "journal" }, { ok, err.field })
    assert.matches("a rerun after Ctrl%-C pays for every shot again", err.message)
    assert.equal(0, emu:creates(), "no shot paid without a ledger")
    none:close()
  end)

  -- The emulator's log cleared, a new folder and a client of the film's journal there (more: its other options):
  -- the client and the folder.
  local function fresh(more)
    emu:clear()
    local dir = helper.tmpdir()
    local o = { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl", interval = 0.1, min_interval = 0.1 }
    for k, v in pairs(more or {}) do o[k] = v end
    return starvideos.new(o), dir
  end

  it("checks every shot before the first create, naming the shot: three plain shots then a continue without a "
    .. "bucket, a later shot its model refuses, a remix of a shot longer than its model takes; none paid", function()
    local c, dir = fresh()
    local plain = assert((rawget(_G, "loadstring") or load)("return " .. SHOTS))()
    local cases = {
      { { plain[1], plain[2], plain[3], { prompt = "on", continue = true, last_image = emu.url .. "/media/f.png" } },
        4, "^storage%.", "its first_image %(the last frame of shot 3%) is a local file, which needs a bucket" },
      { { plain[1], plain[2], { model = "videos", prompt = "too long", duration = 99 } }, 3, "duration",
        "duration: expected a whole number of seconds" },
      { { { model = "videos", prompt = "long", duration = 12 }, { model = "starvideos_o3", prompt = "r", remix = 1 } },
        2, "referenceVideos[1]", "the video is 12 s long; starvideos_o3 takes one reference video of 3 to 10 s "
          .. "(shot 1's video, as long as it asks)" },
    }
    for i, case in ipairs(cases) do
      for _, dry in ipairs { true, false } do
        local ok, err = c:film(case[1], { out = dir .. "/f" .. i .. ".mp4", dry_run = dry })
        assert.is_nil(ok, "case " .. i)
        assert.same({ "invalid_request", case[2] }, { err.kind, err.shot }, err.message)
        assert.matches(case[3], err.field, 1, case[3]:sub(1, 1) ~= "^")
        assert.matches("film: shot " .. case[2] .. ": ", err.message, 1, true)
        assert.matches(case[4], err.message, 1, i ~= 1)
        assert.matches("(nothing was sent)", err.message, 1, true)
      end
    end
    assert.equal(0, emu:creates(), "no shot paid")
    c:close()
  end)

  it("prices every shot: a continue and a remix at the model of the shot they build on (a bucket named: nothing "
    .. "asked of it)", function()
    local c, dir = fresh { prices = { videos = 0.4, videos_fast = 0.25 },
      storage = { access_key = "AK", secret_key = "SK", refs = "s3://film-refs/r/" } }
    local plan = assert(c:film({ { model = "videos_fast", prompt = "a", duration = 4 },
      { prompt = "b", continue = true, last_image = emu.url .. "/media/f.png" },
      { model = "videos", prompt = "c", duration = 5 }, { prompt = "d", remix = 3 } },
      { out = dir .. "/f.mp4", dry_run = true }))
    local got = {}
    for i, s in ipairs(plan.shots) do got[i] = s.model end
    assert.same({ "videos_fast", "videos_fast", "videos", "videos" }, got)
    assert.same({ 4, "1.30" }, { plan.creates, string.format("%.2f", plan.cost) })
    assert.same({}, emu:requests(), "nothing sent")
    c:close()
  end)

  it("counts the film's creates against the spend limits before the first: the shot that would pass one named, "
    .. "none paid", function()
    local c, dir = fresh { prices = { videos = 0.4 }, spend_limit = { amount = 1, scope = "model", model = "videos" } }
    local shots = assert((rawget(_G, "loadstring") or load)("return " .. SHOTS))()
    local ok, err = c:film(shots, { out = dir .. "/f.mp4" })
    assert.same({ nil, "spend_limited", 3, "spend_limit" }, { ok, err.kind, err.shot, err.field })
    assert.matches("film: shot 3: the film's 4 creates (cost 1.6) are more than the spend limits let through: after "
      .. "the shots before it, spend_limit: 0.8 spent", err.message, 1, true)
    assert.equal(0, emu:creates(), "no shot paid")
    c:close()
  end)

  it("run again once made (its out relative): no create planned, none paid, its spend limit used up by its shots not "
    .. "refusing it", function()
    local c, dir = fresh { prices = { videos = 0.4 },
      spend_limit = { amount = 0.8, scope = "model", model = "videos" } }
    local shots = { { model = "videos", prompt = "a", duration = 4 }, { prompt = "b", remix = 1 } }
    local out = relative(dir .. "/f.mp4")
    assert(c:film(shots, { out = out }))
    assert.equal(2, emu:creates())
    local plan = assert(c:film(shots, { out = out, dry_run = true }))
    assert.same({ 0, "none", "none" }, { plan.creates, plan.shots[1].action, plan.shots[2].action })
    local again, err = c:film(shots, { out = out })
    assert.is_table(again, err and err.message)
    assert.equal(2, emu:creates(), "none paid twice")
    c:close()
  end)

  it("run again once a shot's task is created but not saved (its call stopped): that shot planned as followed, "
    .. "not a create, so a spend limit its price is reserved in lets the film through; none paid twice", function()
    local limited = { prices = { videos = 0.4 }, spend_limit = { amount = 0.8, scope = "model", model = "videos" } }
    local c, dir = fresh(limited)
    local shots = { { model = "videos", prompt = "a", duration = 4 }, { model = "videos", prompt = "b", duration = 4 } }
    local out = dir .. "/f.mp4"
    local job = assert(c:start(shots[2], { out = require("starvideos.film").shot_path(out, 2) }))
    assert.is_true(helper.wait_until(function()
      c:step(0.05)
      return job.state ~= "creating"
    end, 30))
    c:close() -- (its job cancelled: the task created stays the ledger's)
    assert.equal(1, emu:creates())
    limited.journal = dir .. "/j.jsonl"
    c = fresh(limited) -- (the same journal; the emulator's log cleared)
    local plan = assert(c:film(shots, { out = out, dry_run = true }))
    assert.same({ 1, "create", "download" }, { plan.creates, plan.shots[1].action, plan.shots[2].action })
    local made, err = c:film(shots, { out = out })
    assert.is_table(made, err and err.message)
    assert.same({ 1, job.id }, { emu:creates(), made.shots[2].id }, "shot 1 created, shot 2 followed")
    c:close()
  end)

  it("a shot that fails once the shots before it are made says they are made and paid for (err.made), not that "
    .. "nothing was sent", function()
    local c, dir = fresh()
    local shots = { { model = "videos", prompt = "a", duration = 4 }, { model = "videos", prompt = "b", duration = 4 },
      { prompt = "c", remix = 1 } }
    c.remix = function() -- (this client's remix refuses: the film's third shot)
      return nil, starvideos.new_error("invalid_request", "remix: refused here (nothing was sent)", { field = "task" })
    end
    local ok, err = c:film(shots, { out = dir .. "/f.mp4" })
    assert.same({ nil, 3, 2 }, { ok, err.shot, err.made })
    assert.equal("remix: refused here (nothing was sent); shots 1 to 2 are made and paid for: run again, the film "
      .. "pays for none of them twice", err.message)
    assert.equal(2, emu:creates())
    c:close()
  end)
end)
