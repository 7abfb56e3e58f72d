-- Duplicate lines of a prompts file (issue 49): the run and the plan (--dry-run) say which lines repeat
-- which before anything is sent; each is a paid create of its own unless --skip-duplicates leaves it out.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run = C.run

describe("batch: duplicate lines", function()
  local emu
  local env = C.session(function(e) emu = e end)

  local function batch(dir, more)
    local argv = { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }
    for _, a in ipairs(more or {}) do argv[#argv + 1] = a end
    return run(argv, env())
  end

  it("the plan and the run name each repeat and the line it repeats; each is paid for", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a twin cat\na dog\n# note\n  a twin cat  \na dog\na bird\n")
    local creates = emu:creates()
    local r = batch(dir, { "--dry-run" })
    assert.equals(0, r.code, r.err)
    local said = "starvideos batch: 2 entries repeat an earlier line's request, each a paid create of its own "
      .. "(--skip-duplicates leaves them): line 4 repeats line 1, line 5 repeats line 2"
    assert.matches(said, r.err, 1, true)
    assert.matches("0003.mp4 (line 4, repeats line 1)", r.out, 1, true)
    assert.matches("0004.mp4 (line 5, repeats line 2)", r.out, 1, true)
    assert.matches("5 creates", r.out, 1, true)
    assert.equals(creates, emu:creates())
    r = batch(dir)
    assert.equals(0, r.code, r.err)
    assert.matches(said, r.err, 1, true)
    assert.equals(creates + 5, emu:creates())
  end)

  it("--skip-duplicates leaves the repeats out: not created, named in the report, exit 0", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a lone owl\na lone owl\na fox\n")
    local creates = emu:creates()
    local r = batch(dir, { "--skip-duplicates", "--dry-run", "--json" })
    assert.equals(0, r.code, r.err)
    assert.equals(2, cjson.decode(r.out).creates)
    r = batch(dir, { "--skip-duplicates" })
    assert.equals(0, r.code, r.out .. r.err)
    assert.matches("1 entry repeats an earlier line's request, left out (--skip-duplicates): line 2 repeats line 1",
      r.err, 1, true)
    assert.matches("0002.mp4 (line 2, repeats line 1)  skipped: its request is line 1's (--skip-duplicates)", r.out,
      1, true)
    assert.matches("3 videos: 2 saved in " .. dir .. "/v, 0 not, 1 repeat left out", r.out, 1, true)
    assert.equals(creates + 2, emu:creates())
    assert.is_nil(helper.read_file(dir .. "/v/0002.mp4"))
  end)

  it("a .jsonl whose lines differ only in a field are no repeats", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.jsonl", '{"prompt": "a yak", "duration": 5}\n{"prompt": "a yak", "duration": 10}\n')
    local r = run({ "batch", "--prompts-file", dir .. "/p.jsonl", "--out-dir", dir .. "/v", "--model", "videos",
      "--dry-run" }, env())
    assert.equals(0, r.code, r.err)
    assert.is_nil(r.err:find("repeat", 1, true), r.err)
  end)
end)
