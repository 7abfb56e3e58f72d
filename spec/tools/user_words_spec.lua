-- The words a user meets (issue "What new and hostile users found", items 15 to 21): what the command line prints
-- for a create the spend limit refused under --log info, for --fallback moving on and giving up, for a film saved
-- into a bucket, for verify given the wrong file, and for the dry run's total and a refusal's names.

local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run, lines = C.run, C.lines

local PRICE = '{"videos": 0.4}'
local MODEL = '{"amount": 1, "scope": "model", "model": "videos"}' -- (two creates of 0.4, not three)

describe("the words a user meets (What new and hostile users found, 15-21)", function()
  local emu
  local env = C.session(function(e) emu = e end)
  local dir
  before_each(function() dir = helper.tmpdir() end)

  describe("--log info with --spend-limit (15)", function()
    it("a refused create is logged by its reason, not `failed nil:`; each warning is said once", function()
      local function capped(i)
        return { "generate", "--model", "videos", "--prompt", "a cat " .. i, "--duration", "5", "--interval", "0.1",
          "--out", dir .. "/" .. i .. ".mp4", "--journal", dir .. "/tasks.jsonl", "--prices", PRICE, "--spend-limit",
          MODEL, "--log", "info" }
      end
      -- the log's lines without their time: what a line says
      local function said(r)
        local l = {}
        for _, line in ipairs(lines(r.err)) do l[#l + 1] = (line:gsub("^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z ", "")) end
        return l
      end
      local journal = dir .. "/tasks.jsonl"
      assert.equals(0, run(capped(1), env()).code)
      local r = run(capped(2), env())
      assert.equals(0, r.code, r.err)
      local second = said(r)
      assert.same({ "starvideos generate: warning: --spend-limit: 50% of 1 reached for model videos",
        "starvideos generate: warning: --spend-limit: 80% of 1 reached for model videos" }, { second[1], second[2] })
      assert.matches("^starvideos: status video_%S+ queued$", second[3])
      r = run(capped(3), env())
      assert.equals(1, r.code, r.err)
      local limit = "0.8 spent of model videos in the ledger's life (at most 1, counted in the journal " .. journal
        .. "): the next create is refused for good (a limit without per)"
      assert.same({ "starvideos generate: warning: --spend-limit: 100% of 1 reached for model videos (a create was "
        .. "refused)", "starvideos: failed (no task id): spend_limited: --spend-limit: " .. limit,
        "starvideos generate: spend_limited: --spend-limit: " .. limit }, said(r))
    end)
  end)

  describe("--fallback (16)", function()
    after_each(function() emu:config { queued = 0.2, processing = 0.2, outcome = "completed" } end)

    it("says it moves to the next model, and once every model failed, how many were tried, suggesting no --fallback",
      function()
      emu:config { queued = 0, processing = 0, outcome = "failed", error = "internal error" }
      local r = run({ "generate", "--model", "videos", "--prompt", "a cat that falls back", "--duration", "5",
        "--interval", "0.1", "--out", dir .. "/a.mp4", "--fallback", "videos_fast" }, env())
      assert.equals(1, r.code, r.err)
      local out = lines(r.out)
      assert.equals(7, #out, r.out)
      local first, second = out[1]:match("^id: (%S+)$"), out[5]:match("^id: (%S+)$")
      assert.same({ "id: " .. first, "status: queued", "status: failed", "fallback: task " .. first .. " of videos "
        .. "failed (service): trying videos_fast", "id: " .. second, "status: queued", "status: failed" }, out)
      assert.same({ "starvideos generate: task_failed: task " .. second .. " failed: internal error",
        "why: service: the service's own failure, on each of the 2 models tried: try again later" }, lines(r.err))
      r = run({ "generate", "--model", "videos", "--prompt", "a dog that falls back", "--duration", "5",
        "--interval", "0.1", "--fallback", "videos_fast", "--json" }, env())
      assert.equals(1, r.code, r.err)
      local doc = assert(require("cjson.safe").decode(r.out), r.out)
      assert.same({ "task_failed", "service", 2 }, { doc.error.kind, doc.error.reason, doc.error.attempts })
    end)
  end)

  describe("verify given what is not the video (18)", function()
    it("the record (PATH.json): exit 2, naming the video to give, not `differs`", function()
      local video = dir .. "/x.mp4"
      local r = run({ "generate", "--model", "videos", "--prompt", "a cat to verify", "--duration", "5",
        "--interval", "0.1", "--out", video }, env())
      assert.equals(0, r.code, r.err)
      r = run { "verify", video .. ".json" }
      assert.equals(2, r.code, r.err)
      assert.equals("starvideos verify: " .. video .. ".json is a provenance record, not a video: give the video it "
        .. "describes (starvideos verify " .. video .. ")", lines(r.err)[1])
      assert.equals(0, run({ "verify", video }).code)
    end)

    it("an object's URL: exit 2, naming the commands that fetch the object and its record, then verify", function()
      local r = run { "verify", "s3://vids/films/boat.mp4" }
      assert.equals(2, r.code, r.err)
      assert.equals("starvideos verify: s3://vids/films/boat.mp4 is an object's URL: verify reads a file and its "
        .. "record beside it; fetch both, then verify the file: aws s3 cp s3://vids/films/boat.mp4 boat.mp4 && aws s3 "
        .. "cp s3://vids/films/boat.mp4.json boat.mp4.json && starvideos verify boat.mp4", lines(r.err)[1])
    end)
  end)
end)
