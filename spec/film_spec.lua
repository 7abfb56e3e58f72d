-- A film from a storyboard (lua/starvideos/film.lua) against the emulator, the ledger a journal: 4 shots make 4
-- creates and one MP4 whose duration is their sum and that ffmpeg decodes without an error; a film interrupted
-- with Ctrl-C (SIGINT) after its second shot and run again makes 4 creates in all; its plan says what would be
-- made; the refusals before paying send nothing.  (A shot that continues another: rocks/s3/spec/hosts/
-- lineage_s3_spec.lua, its frame needs a bucket.)
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

  it("refuses before paying: no shots, a first shot that continues, a continue without last_image, no out", function()
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
end)
