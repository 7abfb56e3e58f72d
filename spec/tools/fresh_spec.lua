-- --fresh on create, generate and batch (CONTRACT.md: the option fresh = true): a new paid
-- create whatever the ledger holds of the key, the key then naming the new task; without it,
-- a rerun creates nothing.  Run as a person runs the command line, against the emulator.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run = C.run

-- argv and more, a new list
local function with(argv, ...)
  local t = {}
  for _, a in ipairs(argv) do t[#t + 1] = a end
  for _, a in ipairs { ... } do t[#t + 1] = a end
  return t
end

describe("--fresh", function()
  local emu
  local env = C.session(function(e) emu = e end)

  it("create --key K: a rerun prints the same task; --fresh creates anew, and the key then names it", function()
    local journal = helper.tmpdir() .. "/j.jsonl"
    local argv = { "create", "--model", "videos", "--prompt", "a fresh cat", "--duration", "5", "--key", "cat",
      "--journal", journal, "--json" }
    local r1 = run(argv, env())
    assert.equals(0, r1.code, r1.err)
    local first = cjson.decode(r1.out).id
    local before = emu:creates()
    local r2 = run(argv, env())
    assert.equals(0, r2.code, r2.err)
    assert.equals(first, cjson.decode(r2.out).id)
    assert.equals(before, emu:creates())
    argv[#argv + 1] = "--fresh"
    local r3 = run(argv, env())
    assert.equals(0, r3.code, r3.err)
    local second = cjson.decode(r3.out).id
    assert.not_equals(first, second)
    assert.equals(before + 1, emu:creates())
    table.remove(argv)
    assert.equals(second, cjson.decode(run(argv, env()).out).id)
    assert.equals(before + 1, emu:creates())
  end)

  it("generate --out --journal: a rerun creates nothing; with --fresh one create, the file made again", function()
    local dir = helper.tmpdir()
    local argv = { "generate", "--model", "videos", "--prompt", "a fresh dog", "--duration", "5", "--out",
      dir .. "/d.mp4", "--journal", dir .. "/j.jsonl", "--interval", "0.1" }
    assert.equals(0, run(argv, env()).code)
    local before = emu:creates()
    assert.equals(0, run(argv, env()).code)
    assert.equals(before, emu:creates())
    local r = run(with(argv, "--fresh"), env())
    assert.equals(0, r.code, r.err)
    assert.equals(before + 1, emu:creates())
    assert.equals(C.SAMPLE, helper.read_video(dir .. "/d.mp4"))
  end)

  it("batch: a rerun creates 0; --dry-run --fresh plans every entry; --fresh creates each; its hints leave it out",
    function()
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/p.txt", "a fresh owl\na fresh fox\n")
      local argv = { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
        "--duration", "5", "--interval", "0.1" }
      local r = run(argv, env())
      assert.equals(0, r.code, r.err)
      local before = emu:creates()
      assert.equals(0, run(argv, env()).code)
      assert.equals(before, emu:creates())
      local fresh = with(argv, "--fresh")
      r = run(with(fresh, "--dry-run", "--json"), env())
      assert.equals(0, r.code, r.err)
      local plan = assert(cjson.decode(r.out), r.out)
      assert.equals(2, plan.creates)
      assert.same({ "fresh", "fresh" }, { plan.entries[1].reason, plan.entries[2].reason })
      assert.equals(before, emu:creates())
      r = run(fresh, env())
      assert.equals(0, r.code, r.err)
      assert.equals(before + 2, emu:creates())
      -- the command a stop prints goes on without --fresh: it pays for nothing again
      emu:config { queued = 3 }
      local proc = C.background(fresh, env())
      C.until_true(function() -- both answers recorded (a create in flight would stay pending: refused again)
        local _, n = (helper.read_file(dir .. "/v/starvideos.jsonl") or ""):gsub('"event":"created"', "")
        return n >= 6
      end)
      -- (the hint a kill prints is handed to the command's watcher after the records are written: a moment
      -- later, as rocks/redis/spec/hosts/store_hints_spec.lua waits too; the 5.1 part of make test-all once saw only
      -- "Terminated" without it)
      helper.sleep(0.5)
      proc:stop("TERM")
      emu:config { queued = 0.2 }
      -- (the watcher prints its line after the command ended: a moment after its status)
      local said = proc:err_line("goes on")
      local line = assert(said:match("`([^`]+ batch [^`]+)` goes on"), said)
      assert.is_nil(line:find("--fresh", 1, true), line)
      local pasted = C.run_printed(line, env())
      assert.equals(0, pasted.code, line .. "\n" .. pasted.out .. pasted.err)
      assert.equals(before + 4, emu:creates())
    end)

  it("a refused key's message names --fresh", function()
    local dir = helper.tmpdir()
    local base = { "generate", "--model", "videos", "--duration", "5", "--out", dir .. "/x.mp4", "--journal",
      dir .. "/j.jsonl", "--interval", "0.1" }
    assert.equals(0, run(with(base, "--prompt", "an old prompt"), env()).code)
    local b = with(base, "--prompt", "a new prompt")
    local r = run(b, env())
    assert.equals(2, r.code, r.err)
    assert.matches("give another --out, or --fresh", r.err, 1, true)
    b[#b + 1] = "--fresh"
    local before = emu:creates()
    r = run(b, env())
    assert.equals(0, r.code, r.err)
    assert.equals(before + 1, emu:creates())
  end)
end)
