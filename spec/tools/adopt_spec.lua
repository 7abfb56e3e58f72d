-- `pending --adopt ID TASK_ID` (issue 49): a lost create whose task the user then found is settled by
-- recording that task for it, checked at the service first; the rerun then follows it and pays for
-- nothing again.  Run as a person runs the command line, against the emulator.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run = C.run

describe("pending --adopt", function()
  local emu
  local env = C.session(function(e) emu = e end)

  -- A batch of one prompt whose create the server took and whose answer never came: its dir, args, the
  -- pending create's local id and the task the server made.
  local function lost_batch(prompt)
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", prompt .. "\n")
    local argv = { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }
    local before = #emu:tasks()
    emu:fault { method = "POST", path = "/v1/", after = true, drop = true }
    local r = run(argv, env())
    emu:clear_faults()
    assert.equals(1, r.code, r.out .. r.err)
    local lid = assert(r.out:match("%-%-forget (%x+)`"), r.out)
    local tasks = emu:tasks()
    assert.equals(before + 1, #tasks)
    return dir, argv, lid, tasks[#tasks].id, r
  end

  it("records the found task for the entry: the rerun creates 0 at the service and saves its file", function()
    local dir, argv, lid, id = lost_batch("an adopted cat")
    local journal = dir .. "/v/starvideos.jsonl"
    local creates = emu:creates()
    assert.equals(1, run(argv, env()).code) -- refused while pending: nothing sent
    assert.equals(creates, emu:creates())
    local r = run({ "pending", "--journal", journal, "--adopt", lid, id }, env())
    assert.equals(0, r.code, r.err)
    assert.matches("pending create " .. lid .. " adopted: task " .. id, r.out, 1, true)
    r = run({ "pending", "--journal", journal, "--json" }, env())
    assert.same({}, cjson.decode(r.out))
    r = run(argv, env())
    assert.equals(0, r.code, r.out .. r.err)
    assert.equals(creates, emu:creates())
    assert.equals(C.SAMPLE, helper.read_video(dir .. "/v/0001.mp4"))
    r = run({ "list", "--journal", journal, "--json" }, env())
    local t = assert(cjson.decode(C.lines(r.out)[1]))
    assert.same({ id, "downloaded" }, { t.id, t.state })
  end)

  it("every hint of a lost create names --adopt beside --forget, and the one generate prints works pasted",
    function()
    local dir, _, lid, _, r = lost_batch("a hinted cat")
    assert.matches(" --adopt " .. lid .. " TASK_ID` or `starvideos pending --journal ", r.out, 1, true)
    assert.matches("settle each: --adopt with the task it made", r.out, 1, true)
    r = run({ "pending", "--journal", dir .. "/v/starvideos.jsonl" }, env())
    assert.equals(0, r.code, r.err)
    assert.matches(" --adopt ID TASK_ID` records the task it made", r.out, 1, true)
    local gen = { "generate", "--model", "videos", "--prompt", "a generated cat", "--duration", "5", "--out",
      dir .. "/g.mp4", "--journal", dir .. "/g.jsonl", "--interval", "0.1" }
    emu:fault { method = "POST", path = "/v1/", after = true, drop = true }
    r = run(gen, env())
    emu:clear_faults()
    assert.equals(1, r.code, r.err)
    local tasks = emu:tasks()
    local adopt = assert(r.err:match("`(starvideos pending [^`]+ %-%-adopt %x+) TASK_ID`"), r.err)
    assert.matches("which the same command refuses to create again until it is settled", r.err, 1, true)
    assert.matches("--adopt %x+ TASK_ID` follows the task it made", run(gen, env()).err)
    r = C.run_printed(adopt .. " " .. tasks[#tasks].id, env())
    assert.equals(0, r.code, r.err)
    local creates = emu:creates()
    r = run(gen, env())
    assert.equals(0, r.code, r.err)
    assert.equals(creates, emu:creates())
    assert.equals(C.SAMPLE, helper.read_video(dir .. "/g.mp4"))
  end)

  it("refuses a task the service does not know, one of another model, an unknown pending id, and a missing "
    .. "TASK_ID, recording nothing", function()
    local dir, argv, lid = lost_batch("a cat not adopted")
    local journal = dir .. "/v/starvideos.jsonl"
    local size = #helper.read_file(journal)
    local r = run({ "pending", "--journal", journal, "--adopt", lid, "video_nosuch_1" }, env())
    assert.equals(1, r.code, r.err)
    assert.matches("not_found", r.err, 1, true)
    local other = C.lines(run({ "create", "--model", "videos_fast", "--prompt", "x", "--duration", "5", "--json" },
      env()).out)
    local other_id = cjson.decode(table.concat(other, "\n")).id
    r = run({ "pending", "--journal", journal, "--adopt", lid, other_id }, env())
    assert.equals(2, r.code, r.err)
    assert.matches("that task is of model videos_fast, the pending create asked videos: not its task", r.err, 1, true)
    r = run({ "pending", "--journal", journal, "--adopt", "0123456789abcdef", other_id }, env())
    assert.equals(2, r.code, r.err)
    assert.matches("--adopt 0123456789abcdef: no pending create of that id", r.err, 1, true)
    r = run({ "pending", "--journal", journal, "--adopt", lid }, env())
    assert.equals(2, r.code, r.err)
    assert.matches("--adopt expects ID TASK_ID", r.err, 1, true)
    assert.equals(size, #helper.read_file(journal), helper.read_file(journal))
    local creates = emu:creates()
    assert.equals(1, run(argv, env()).code) -- still pending: still refused, nothing sent
    assert.equals(creates, emu:creates())
  end)

  it("refuses a task recorded already for another entry of the ledger (its video would be saved twice)", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a lost cat\na found dog\n")
    emu:fault { method = "POST", path = "/v1/", after = true, drop = true } -- (the first create's answer)
    local r = run({ "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }, env())
    emu:clear_faults()
    local lid = assert(r.out:match("%-%-forget (%x+)`"), r.out .. r.err)
    local journal = dir .. "/v/starvideos.jsonl"
    local listed = run({ "list", "--journal", journal, "--json" }, env())
    local other
    for _, l in ipairs(C.lines(listed.out)) do
      local t = cjson.decode(l)
      if t and t.id then other = t end
    end
    assert(other, listed.out)
    local size = #helper.read_file(journal)
    r = run({ "pending", "--journal", journal, "--adopt", lid, other.id }, env())
    assert.equals(2, r.code, r.out .. r.err)
    assert.matches("--adopt " .. lid .. " " .. other.id .. ": that task is recorded already, made for ", r.err, 1, true)
    -- (either line's: the two creates go at once, the fault drops whichever is answered first)
    assert.matches((other.out or other.path):match("[^/]*$") .. ": not this create's", r.err, 1, true)
    assert.equals(size, #helper.read_file(journal))
  end)
end)
