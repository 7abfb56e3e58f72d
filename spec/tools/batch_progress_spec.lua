-- What a person sees of a batch (issue 49): off a terminal a line when entries end (a rerun's files
-- already whole in one line, not one each) and at a steady interval while nothing ends; on a terminal
-- a bar; --dry-run makes no folder and its table has a header.

local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run, lines = C.run, C.lines

describe("batch progress", function()
  local emu
  local env = C.session(function(e) emu = e end)

  local function batch(dir, more, e, opts)
    local argv = { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }
    for _, a in ipairs(more or {}) do argv[#argv + 1] = a end
    return run(argv, env(e), opts)
  end

  local function progress_lines(text, n)
    local found = {}
    for _, l in ipairs(lines(text)) do
      if l:find("^" .. n .. " videos: %d+ created") then found[#found + 1] = l end
    end
    return found
  end

  it("off a terminal, a rerun that makes 1 video prints no line per file already whole", function()
    local dir = helper.tmpdir()
    local prompts = {}
    for i = 1, 6 do prompts[i] = "a whole cat " .. i end
    helper.write_file(dir .. "/p.txt", table.concat(prompts, "\n") .. "\n")
    assert.equals(0, batch(dir).code)
    prompts[7] = "a new cat"
    helper.write_file(dir .. "/p.txt", table.concat(prompts, "\n") .. "\n")
    local creates = emu:creates()
    local r = batch(dir)
    assert.equals(0, r.code, r.err)
    assert.equals(creates + 1, emu:creates())
    local found = progress_lines(r.out, 7)
    assert.is_true(#found <= 4, r.out)
    assert.equals("7 videos: 1 created, 6 from an earlier run, 7 done, 0 failed", found[#found])
  end)

  it("a run beside another live run on one ledger counts that run's tasks as another live process's, not an "
    .. "earlier run's (issue 66, 5)", function()
    emu:config { processing = 3 } -- (B's tasks still running when A starts: B polls them, its lease held)
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a shared cat 1\na shared cat 2\na shared cat 3\n")
    local argv = { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }
    local b, stopped = C.background(argv, env()), false
    finally(function() if not stopped then b:stop("TERM") end end) -- (B never left running)
    C.until_true(function() -- (B's three created records written: A follows them)
      local _, n = (helper.read_file(dir .. "/v/starvideos.jsonl") or ""):gsub('"event":"created"', "")
      return n == 3
    end)
    local r = batch(dir)
    assert.equals(0, r.code, r.err)
    assert.equals(3, emu:creates()) -- (A created none)
    local found = progress_lines(r.out, 3)
    assert.equals("3 videos: 0 created, 3 from another live process, 3 done, 0 failed", found[#found])
    local rb = b:stop()
    stopped = true
    assert.equals(0, rb.code, rb.err)
  end)

  it("off a terminal, a line at a steady interval while nothing ends ($STARVIDEOS_PROGRESS_EVERY)", function()
    emu:config { queued = 2.5 }
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a slow cat\n")
    local r = batch(dir, nil, { STARVIDEOS_PROGRESS_EVERY = "0.5" })
    emu:config { queued = 0.2 }
    assert.equals(0, r.code, r.err)
    local waiting = 0
    for _, l in ipairs(progress_lines(r.out, 1)) do
      if l:find("1 created, 0 done", 1, true) then waiting = waiting + 1 end
    end
    assert.is_true(waiting >= 3, r.out)
    local found = progress_lines(r.out, 1)
    assert.equals("1 videos: 1 created, 1 done, 0 failed", found[#found])
  end)

  it("on a terminal, a bar of the entries ended", function()
    if not C.has_script() then pending("script(1) is not installed") return end
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a barred cat\na barred dog\n")
    local r = batch(dir, nil, nil, { tty = true })
    assert.equals(0, r.code, r.out)
    assert.matches("] 0/2  ", r.out, 1, true)
    assert.matches("[####################] 2/2  2 created, 2 done, 0 failed", r.out, 1, true)
  end)

  it("--dry-run makes no folder; its table has a header", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a planned cat\n")
    local r = batch(dir, { "--dry-run" })
    assert.equals(0, r.code, r.err)
    assert.matches("^ACTION +ENTRY +MODEL +PRICE +WHY\ncreate +0001%.mp4 %(line 1%) +videos", r.out)
    assert.is_false(helper.exists(dir .. "/v"))
    r = batch(dir)
    assert.equals(0, r.code, r.err)
    assert.equals(C.SAMPLE, helper.read_video(dir .. "/v/0001.mp4"))
  end)
end)
