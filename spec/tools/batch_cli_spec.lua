-- The command line's batch and --key (docs/batch.md, docs/cli.md), run as
-- child processes against the emulator: exit codes, files, what reached the
-- server, what a person reads.
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local cjson = require "cjson.safe"

local q = helper.shell_quote
local install = require("spec.support.cli_run").install -- (the command as installed: `starvideos` on the PATH)
local SAMPLE = require("starvideos.emulator.files").video(5)
local KEY = "sk-batch-spec-51c0ffee"

describe("starvideos batch and --key", function()
  local emu, dir
  shared_emulator({ queued = 0.1, processing = 0.1, key = KEY }, function(e) emu = e end)
  before_each(function() dir = helper.tmpdir() end)

  -- { out =, err =, code = }: bin/starvideos with args, the emulator's key and URL (in the folder cwd, or here)
  local function run(list, cwd)
    local words = { cwd and "cd " .. q(cwd) .. " && env" or "env", "STARVIDEOS_API_KEY=" .. q(KEY),
      "STARVIDEOS_BASE_URL=" .. q(emu.url),
      "PATH=" .. q(install() .. "/bin") .. ':"$PATH"', q(helper.lua), q(install() .. "/bin/starvideos") }
    for _, a in ipairs(list) do words[#words + 1] = q(a) end
    local out, _, code = helper.capture(table.concat(words, " ") .. " </dev/null 2>" .. q(dir .. "/stderr"))
    local r = { out = out, err = helper.read_file(dir .. "/stderr") or "", code = code }
    assert.is_nil(r.out:find(KEY, 1, true))
    assert.is_nil(r.err:find(KEY, 1, true))
    return r
  end

  local function batch_args(file, outdir, more)
    local list = { "batch", "--prompts-file", file, "--out-dir", outdir, "--model", "videos", "--duration", "5",
      "--interval", "0.1" }
    for _, a in ipairs(more or {}) do list[#list + 1] = a end
    return list
  end
  local function batch(file, outdir, more) return run(batch_args(file, outdir, more)) end

  -- A batch in the background, off a terminal: :stop(signal) sends it (none: nil) and returns what run()
  -- does once the command ended (a killed one's watcher line included).
  local function background(list)
    local words = { "env", "STARVIDEOS_API_KEY=" .. q(KEY), "STARVIDEOS_BASE_URL=" .. q(emu.url),
      "PATH=" .. q(install() .. "/bin") .. ':"$PATH"', q(helper.lua), q(install() .. "/bin/starvideos") }
    for _, a in ipairs(list) do words[#words + 1] = q(a) end
    local inner = "echo $$ >" .. q(dir .. "/pid") .. "; exec " .. table.concat(words, " ")
    assert(os.execute("(sh -c " .. q(inner) .. " >" .. q(dir .. "/bg.out") .. " 2>" .. q(dir .. "/bg.err")
      .. " </dev/null; echo $? >" .. q(dir .. "/rc") .. ") &"))
    assert(helper.wait_until(function() return (helper.read_file(dir .. "/pid") or ""):match("%d+\n") end, 10))
    local pid = helper.read_file(dir .. "/pid"):match("%d+")
    return { stop = function(_, signal)
      if signal then os.execute("kill -" .. signal .. " " .. pid) end
      assert(helper.wait_until(function() return (helper.read_file(dir .. "/rc") or ""):match("%d") end, 10))
      helper.wait_until(function() return (helper.read_file(dir .. "/bg.err") or ""):find("created", 1, true) end, 3)
      return { code = tonumber(helper.read_file(dir .. "/rc"):match("%d+")), out = helper.read_file(dir .. "/bg.out"),
        err = helper.read_file(dir .. "/bg.err") }
    end }
  end

  it("makes OUT-DIR/0001.mp4 and on from a prompts file, and a rerun sends nothing", function()
    local file = dir .. "/prompts.txt"
    helper.write_file(file, "# cats\na cat\n\n  a dog  \n#a bird\na fish\n")
    local r = batch(file, dir .. "/videos")
    assert.equal(0, r.code, r.err)
    assert.matches("3 videos: 3 created, 3 done, 0 failed\n", r.out, 1, true)
    assert.matches("3 videos: 3 saved in " .. dir .. "/videos, 0 not\n", r.out, 1, true)
    local prompts = {}
    for _, t in ipairs(emu:tasks()) do prompts[#prompts + 1] = t.params.prompt end
    table.sort(prompts)
    assert.same({ "a cat", "a dog", "a fish" }, prompts)
    for i = 1, 3 do assert.equal(SAMPLE, helper.read_video(string.format("%s/videos/%04d.mp4", dir, i))) end
    assert.truthy(helper.exists(dir .. "/videos/starvideos.jsonl"))
    local requests = #emu:requests()
    r = batch(file, dir .. "/videos")
    assert.equal(0, r.code, r.err)
    assert.equal(requests, #emu:requests())
  end)

  it("takes a JSON object a line from a .jsonl file, over the flags' fields", function()
    local file = dir .. "/p.jsonl"
    helper.write_file(file, '{"prompt": "one"}\n# two is later\n{"prompt": "two", "duration": 10, "ratio": "9:16"}\n')
    local r = batch(file, dir .. "/v", { "--json" })
    assert.equal(0, r.code, r.err)
    local list = cjson.decode(r.out)
    assert.equal(2, #list)
    assert.equal(3, list[2].line)
    assert.equal(dir .. "/v/0002.mp4", list[2].path)
    local by_prompt = {}
    for _, t in ipairs(emu:tasks()) do by_prompt[t.params.prompt] = t.params end
    assert.equal(5, by_prompt.one.duration)
    assert.equal(10, by_prompt.two.duration)
    assert.equal("9:16", by_prompt.two.ratio)
  end)

  it("checks every line and OUT-DIR before anything is sent", function()
    local file = dir .. "/p.jsonl"
    helper.write_file(file, '{"prompt": "ok"}\n{"prompt": "long", "duration": 99}\n')
    local r = batch(file, dir .. "/v")
    assert.equal(2, r.code)
    assert.matches(file .. ":2: duration", r.err, 1, true)
    helper.write_file(file, '{"prompt": "ok"}\n"a cat"\n')
    assert.matches(file .. ':2: expected one JSON object of request params, got "\\"a cat\\""',
      batch(file, dir .. "/v").err, 1, true)
    helper.write_file(dir .. "/p.txt", "# nothing\n\n")
    assert.matches("holds no prompt", batch(dir .. "/p.txt", dir .. "/v").err, 1, true)
    helper.write_file(dir .. "/p.txt", "a cat\n")
    r = batch(dir .. "/p.txt", dir .. "/no/such")
    assert.equal(2, r.code)
    assert.matches('--out-dir "' .. dir .. '/no/such": its parent "' .. dir .. '/no" is not a directory', r.err,
      1, true)
    r = batch(dir .. "/p.txt", dir .. "/p.txt")
    assert.matches("is not a directory", r.err, 1, true)
    assert.equal(0, #emu:requests())
  end)

  it("exits 1 listing a failed task; a create never answered is listed with the command that settles it", function()
    helper.write_file(dir .. "/p.txt", "a cat\na dog\n")
    emu:config { outcome = "failed" }
    local r = batch(dir .. "/p.txt", dir .. "/v")
    assert.equal(1, r.code)
    assert.matches("0001.mp4 (line 1)  task_failed: task video_videos_", r.out, 1, true)
    assert.matches("2 videos: 0 saved in " .. dir .. "/v, 2 not", r.out, 1, true)
    emu:config { outcome = "completed" }
    -- the server takes the create, and the answer never comes
    emu:fault { method = "POST", path = "/v1/", after = true, drop = true }
    r = batch(dir .. "/p.txt", dir .. "/w")
    assert.equal(1, r.code)
    local cmd = r.out:match("`(starvideos pending %-%-journal [^`]+ %-%-forget %x+)`")
    assert.truthy(cmd, r.out)
    assert.matches("1 create was sent and never answered", r.out, 1, true)
    assert.equal(4, emu:creates())
    r = batch(dir .. "/p.txt", dir .. "/w") -- refused again, nothing sent
    assert.equal(1, r.code)
    assert.equal(4, emu:creates())
    local words = {}
    for w in cmd:gmatch("%S+") do words[#words + 1] = w end
    table.remove(words, 1)
    assert.equal(0, run(words).code)
    r = batch(dir .. "/p.txt", dir .. "/w")
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal(5, emu:creates())
    assert.equal(SAMPLE, helper.read_video(dir .. "/w/0001.mp4"))
  end)

  it("input errors exit 2 naming the input: a folder as --prompts-file, a NUL byte naming FILE:LINE; a BOM is "
    .. "dropped and a link to a folder taken as --out-dir", function()
    local r = batch(dir, dir .. "/v")
    assert.equal(2, r.code)
    assert.matches('--prompts-file "' .. dir .. '": cannot read it: Is a directory', r.err, 1, true)
    assert.is_nil(r.err:find("internal error", 1, true))
    helper.write_file(dir .. "/p.txt", "a cat\na d\0og\n")
    r = batch(dir .. "/p.txt", dir .. "/v")
    assert.equal(2, r.code)
    assert.matches(dir .. "/p.txt:2: a NUL byte in the line", r.err, 1, true)
    assert.equal(0, #emu:requests())
    helper.write_file(dir .. "/p.txt", "\239\187\191a cat\n")
    assert(os.execute("mkdir " .. q(dir .. "/real") .. " && ln -s real " .. q(dir .. "/link")))
    local before = #emu:tasks() -- (the emulator is the block's: earlier cases' tasks come first)
    r = batch(dir .. "/p.txt", dir .. "/link")
    assert.equal(0, r.code, r.err)
    local tasks = emu:tasks()
    assert.equal(before + 1, #tasks)
    assert.equal("a cat", tasks[#tasks].params.prompt)
    assert.equal(SAMPLE, helper.read_video(dir .. "/real/0001.mp4"))
  end)

  for _, case in ipairs { { "INT", 130, "interrupted" }, { "TERM", 143, "stopped by a signal" } } do
    it("SIG" .. case[1] .. " off a terminal before any task ends: the counts say what was created and paid",
    function()
      emu:config { queued = 30 }
      helper.write_file(dir .. "/p.txt", "a cat\na dog\na fish\n")
      local proc = background(batch_args(dir .. "/p.txt", dir .. "/v"))
      assert(helper.wait_until(function() -- (the three answers read: each create recorded)
        local _, n = (helper.read_file(dir .. "/v/starvideos.jsonl") or ""):gsub('"event":"created"', "")
        return n == 3
      end, 10))
      local r = proc:stop(case[1])
      assert.equal(case[2], r.code, r.err)
      assert.matches("3 videos: 0 created, 0 done, 0 failed\n", r.out, 1, true) -- (the first line: before any create)
      assert.matches("starvideos batch: " .. case[3] .. "; 3 created (each a paid task), 0 done, 0 failed of 3 "
        .. "videos; `starvideos batch --prompts-file", r.err, 1, true)
      -- the last progress line says what the stop says: on stdout (Ctrl-C), or first in the kill's lines
      local last = "3 videos: 3 created, 0 done, 0 failed"
      if case[1] == "INT" then
        local outs = {}
        for l in r.out:gmatch("[^\n]+") do outs[#outs + 1] = l end
        assert.equal(last, outs[#outs])
      else
        assert.matches(last .. "\nstarvideos batch: stopped by a signal; 3 created", r.err, 1, true)
      end
    end)
  end

  it("a rerun announces the failed entries it creates again; --skip-failed leaves them; list tells the superseded",
  function()
    helper.write_file(dir .. "/p.txt", "a cat\na dog\n")
    emu:config { outcome = "failed", error = "a failure nobody wrote down" } -- (unknown: not kept, created again)
    assert.equal(1, batch(dir .. "/p.txt", dir .. "/v").code)
    emu:config { outcome = "completed" }
    local r = batch(dir .. "/p.txt", dir .. "/v", { "--skip-failed" })
    assert.equal(1, r.code)
    assert.matches("starvideos batch: 2 entries whose task failed left out (--skip-failed): 0001.mp4 (line 1), "
      .. "0002.mp4 (line 2)", r.err, 1, true)
    assert.matches("0001.mp4 (line 1)  skipped: its task failed before (--skip-failed)", r.out, 1, true)
    assert.equal(2, emu:creates())
    r = batch(dir .. "/p.txt", dir .. "/v")
    assert.equal(0, r.code, r.err)
    assert.matches("starvideos batch: 2 entries whose task failed created again, each a new paid create: 0001.mp4 "
      .. "(line 1), 0002.mp4 (line 2); --skip-failed leaves them", r.err, 1, true)
    assert.equal(4, emu:creates())
    r = run { "list", "--journal", dir .. "/v/starvideos.jsonl" }
    assert.equal(0, r.code, r.err)
    assert.matches("4 tasks: 2 downloaded, 2 failed, of the failed, 2 superseded by a later task that saved the file",
      r.out, 1, true)
    assert.matches("(superseded: task video_", r.out, 1, true)
    r = batch(dir .. "/p.txt", dir .. "/v") -- nothing failed is left to announce
    assert.equal(0, r.code, r.err)
    assert.is_nil(r.err:find("failed", 1, true))
  end)

  it("--dry-run prints each entry's create (and why), download or none, model and price, the totals, sending "
    .. "nothing; the run then sends exactly those creates", function()
    helper.write_file(dir .. "/p.jsonl", '{"prompt": "a cat"}\n{"prompt": "a dog", "model": "videos_fast"}\n'
      .. '{"prompt": "a fox"}\n{"prompt": "an owl"}\n')
    helper.write_file(dir .. "/first.jsonl", '{"prompt": "a cat"}\n{"prompt": "a dog", "model": "videos_fast"}\n')
    local prices = { "--prices", '{"videos": 0.4, "videos_fast": 0.25}' }
    assert.equal(0, batch(dir .. "/first.jsonl", dir .. "/v").code)
    emu:config { outcome = "failed", error = "a failure nobody wrote down" } -- (unknown: not kept, created again)
    os.remove(dir .. "/v/0002.mp4")
    local r = run { "generate", "--model", "videos", "--prompt", "a fox", "--duration", "5", "--out",
      dir .. "/v/0003.mp4", "--interval", "0.1", "--journal", dir .. "/v/starvideos.jsonl" }
    assert.equal(1, r.code, r.err)
    emu:config { outcome = "completed" }
    local requests, made, tasks = #emu:requests(), emu:creates(), #emu:tasks()
    r = run(batch_args(dir .. "/p.jsonl", dir .. "/v", { prices[1], prices[2], "--dry-run" }))
    assert.equal(0, r.code, r.err)
    assert.equal(requests, #emu:requests(), "the dry run sent nothing")
    local l = {}
    for line in r.out:gmatch("[^\n]+") do l[#l + 1] = line end
    assert.matches("^ACTION +ENTRY +MODEL +PRICE +WHY$", l[1])
    assert.matches("^none +0001%.mp4 %(line 1%) +videos +%- +task video_%S+, saved: its file is whole$", l[2])
    assert.matches("^download +0002%.mp4 %(line 2%) +videos_fast +%- +task video_%S+, created before", l[3])
    assert.matches("^create +0003%.mp4 %(line 3%) +videos +0%.4 +its task video_%S+ failed before: a new paid create$",
      l[4])
    assert.matches("^create +0004%.mp4 %(line 4%) +videos +0%.4 +new: the ledger knows no task of its key$", l[5])
    assert.equal("2 creates of videos, cost 0.8; 1 download; 1 left as it is; nothing was sent", l[6])
    assert.matches("1 entry whose task failed created again", r.err, 1, true)
    r = run(batch_args(dir .. "/p.jsonl", dir .. "/v", { "--dry-run", "--json", "--skip-failed" }))
    assert.equal(0, r.code, r.err)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.same({ 1, 1, true }, { doc.creates, doc.downloads, doc.dry_run })
    assert.is_nil(doc.cost, "no --prices: unknown")
    assert.same({ "0001.mp4 (line 1)", "0002.mp4 (line 2)", "0004.mp4 (line 4)" }, { doc.entries[1].name,
      doc.entries[2].name, doc.entries[3].name }, "--skip-failed: the run's own list")
    assert.equal(requests, #emu:requests())
    r = batch(dir .. "/p.jsonl", dir .. "/v", prices)
    assert.equal(0, r.code, r.err)
    assert.equal(made + 2, emu:creates())
    local prompts = {}
    for i, t in ipairs(emu:tasks()) do if i > tasks then prompts[#prompts + 1] = t.params.prompt end end
    table.sort(prompts)
    assert.same({ "a fox", "an owl" }, prompts)
    r = run { "list", "--journal", dir .. "/v/starvideos.jsonl" }
    assert.matches("; cost 0.8 %(3 tasks of unknown price not counted%)\n$", r.out)
  end)

  it("generate, resume and keep --dry-run: what each would create or download, sending nothing", function()
    local journal = dir .. "/j.jsonl"
    local r = run { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--journal", journal,
      "--key", "cat", "--dry-run", "--prices", '{"videos": 0.4}' }
    assert.equal(0, r.code, r.err)
    assert.equal("ACTION  ENTRY  MODEL   PRICE  WHY\n"
      .. "create  cat    videos  0.4    new: the ledger knows no task of its key\n1 create of videos, "
      .. "cost 0.4; 0 downloads; 0 left as they are; nothing was sent\n", r.out)
    assert.same({}, emu:requests())
    r = run { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--journal", journal, "--key",
      "cat", "--json" }
    local id = assert(cjson.decode(r.out), r.out).id
    r = run { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--journal", journal,
      "--key", "cat", "--dry-run" }
    assert.matches("\ndownload  cat    videos  %-      task " .. id .. ", created before", r.out)
    local requests = #emu:requests()
    r = run { "resume", "--journal", journal, "--dir", dir, "--dry-run" }
    assert.equal(0, r.code, r.err)
    assert.equal(string.format("ACTION    %-" .. #id .. "s  MODEL   PRICE  WHY\ndownload  %s  videos  -      task %s, "
      .. "unfinished: to %s/%s.mp4 (no writable out recorded)\n0 creates, cost 0; 1 download; 0 left as they are; "
      .. "nothing was sent\n", "ENTRY", id, id, dir, id), r.out)
    r = run { "keep", "--journal", journal, "--dir", dir, "--dry-run", "--json" }
    assert.equal(0, r.code, r.err)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.same({ id, "orphaned", 0, 1 }, { doc.entries[1].id, doc.entries[1].reason, doc.creates, doc.downloads })
    assert.equal(requests, #emu:requests())
    assert.falsy(helper.exists(dir .. "/" .. id .. ".mp4"))
  end)

  it("--dry-run's totals of two models: each model's creates and cost in words, a model without a price named",
    function()
    helper.write_file(dir .. "/p.jsonl", '{"prompt": "a cat"}\n{"prompt": "a fox", "model": "videos_fast"}\n'
      .. '{"prompt": "an owl"}\n')
    local requests = #emu:requests()
    local r = batch(dir .. "/p.jsonl", dir .. "/v", { "--dry-run", "--prices", '{"videos": 0.4}' })
    assert.equal(0, r.code, r.err)
    assert.equal("3 creates (2 of videos, cost 0.8; 1 of videos_fast, price unknown), cost unknown (a model without a "
      .. "price: --prices); 0 downloads; 0 left as they are; nothing was sent", r.out:match("([^\n]*)\n$"))
    assert.equal(requests, #emu:requests())
  end)

  it("list --check names the repair, and a rerun fetches again a changed file of the recorded size", function()
    helper.write_file(dir .. "/p.txt", "a cat\n")
    assert.equal(0, batch(dir .. "/p.txt", dir .. "/v").code)
    local path = dir .. "/v/0001.mp4"
    helper.write_file(path, SAMPLE:sub(1, -2) .. (SAMPLE:sub(-1) == "x" and "y" or "x"))
    local r = run { "list", "--journal", dir .. "/v/starvideos.jsonl", "--check" }
    assert.equal(1, r.code)
    assert.matches("changed  video_", r.out, 1, true)
    assert.matches("to repair: run the command that saved them again, with the same ledger", r.out, 1, true)
    local requests = #emu:requests()
    r = batch(dir .. "/p.txt", dir .. "/v")
    assert.equal(0, r.code, r.err)
    assert.equal(SAMPLE, helper.read_video(path))
    assert.equal(1, emu:creates())
    assert.is_true(#emu:requests() > requests) -- (before: nothing sent, the changed file kept)
    assert.equal(0, run({ "list", "--journal", dir .. "/v/starvideos.jsonl", "--check" }).code)
  end)

  it("list --check from another folder finds the files a run saved under a relative --out-dir", function()
    helper.write_file(dir .. "/p.txt", "a cat\na dog\n")
    assert(os.execute("mkdir " .. q(dir .. "/elsewhere")))
    assert.equal(0, run(batch_args("p.txt", "v"), dir).code)
    local r = run({ "list", "--journal", "../v/starvideos.jsonl", "--check" }, dir .. "/elsewhere")
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("2 files checked: 2 as saved, 0 missing", r.out, 1, true)
    r = run({ "list", "--journal", dir .. "/v/starvideos.jsonl" }, "/")
    assert.matches(dir .. "/v/0001.mp4", r.out, 1, true) -- (where the file is, wherever it is read from)
    -- and where resume and keep save a task not saved yet: the out recorded at create
    local text = helper.read_file(dir .. "/v/starvideos.jsonl"):gsub("\\/", "/")
    assert.matches('"out":"' .. dir .. '/v/0002.mp4"', text, 1, true)
    -- a rerun from elsewhere of the same entries is the same batch: nothing sent
    local requests = #emu:requests()
    r = run(batch_args(dir .. "/p.txt", dir .. "/v"), "/")
    assert.equal(0, r.code, r.err)
    assert.equal(requests, #emu:requests())
  end)

  it("resume from another folder saves a batch's unsaved video where its relative --out-dir said", function()
    helper.write_file(dir .. "/p.txt", "a cat\n")
    assert(os.execute("mkdir " .. q(dir .. "/elsewhere")))
    emu:fault { path = "/videos/", status = 500, count = 1000 } -- (the video refused until the batch gives up)
    local r = run(batch_args("p.txt", "v"), dir)
    assert.equal(1, r.code, r.out .. r.err)
    emu:clear_faults()
    r = run({ "resume", "--journal", "../v/starvideos.jsonl", "--json" }, dir .. "/elsewhere")
    assert.equal(0, r.code, r.out .. r.err)
    local one = assert(cjson.decode(r.out), r.out)[1]
    -- (before: the out recorded as given, v/0001.mp4, not there from elsewhere: saved in elsewhere/ as "dir")
    assert.same({ dir .. "/v/0001.mp4", "out" }, { one.path, one.saved_to })
    assert.equal(SAMPLE, helper.read_video(dir .. "/v/0001.mp4"))
    assert.equal(1, emu:creates())
  end)

  it("Ctrl-C mid-download records the .part before it ends: resume goes on from it", function()
    helper.write_file(dir .. "/p.txt", "a cat\n")
    local SIZE, CUT = 3000000, 1000000
    emu:config { video_size = SIZE }
    emu:fault { { path = "/videos/", drop_after_bytes = CUT }, { path = "/videos/", delay = 30 } }
    local proc = background(batch_args(dir .. "/p.txt", dir .. "/v"))
    assert(helper.wait_until(function()
      return #emu:video_ranges() == 2 and helper.file_size(dir .. "/v/0001.mp4.part") == CUT end, 20),
      helper.read_file(dir .. "/bg.err"))
    assert.equal(130, proc:stop("INT").code)
    -- (before: the cancel's record was queued, and the process ended before it was written)
    assert.matches('"event":"part"', helper.read_file(dir .. "/v/starvideos.jsonl"), 1, true)
    assert.equal(1, emu:creates())
    emu:clear_faults()
    emu:clear()
    local r = run { "resume", "--journal", dir .. "/v/starvideos.jsonl" }
    assert.equal(0, r.code, r.out .. r.err)
    local ranges = {}
    for _, x in ipairs(emu:requests()) do
      assert.are_not.equal("POST", x.method)
      if x.path:find("^/videos/") then ranges[#ranges + 1] = x.range or "none" end
    end
    assert.same({ "bytes=" .. (CUT - 65536) .. "-" }, ranges) -- (on from the .part, 64 KiB of it checked again)
    assert.equal(SIZE, helper.video_size(dir .. "/v/0001.mp4"))
  end)

  it("hints name what the command line has: a changed entry, and a create another live batch has in flight",
  function()
    helper.write_file(dir .. "/p.jsonl", '{"prompt": "a cat"}\n')
    assert.equal(0, batch(dir .. "/p.jsonl", dir .. "/v").code)
    helper.write_file(dir .. "/p.jsonl", '{"prompt": "a cat", "duration": 10}\n')
    local r = batch(dir .. "/p.jsonl", dir .. "/v")
    assert.equal(1, r.code)
    assert.matches("duration 5 there, 10 here): give the line its params back, another --out-dir, or --fresh", r.out,
      1, true)
    assert.is_nil((r.out .. r.err):find("fresh = true", 1, true)) -- (the library's words: the command line's --fresh)
    -- two batches at once on one folder: the second meets the first's create in flight
    emu:fault { method = "POST", delay = 3 }
    local proc = background(batch_args(dir .. "/p.jsonl", dir .. "/w"))
    assert(helper.wait_until(function()
      return (helper.read_file(dir .. "/w/starvideos.jsonl") or ""):find('"event":"pending"', 1, true) end, 10),
      helper.read_file(dir .. "/bg.err"))
    r = batch(dir .. "/p.jsonl", dir .. "/w")
    assert.equal(1, r.code)
    assert.matches("another live process sent a create of it", r.out, 1, true)
    assert.is_nil((r.out .. r.err):find("--forget", 1, true))
    assert.equal(0, proc:stop().code)
    assert.equal(2, emu:creates())
  end)

  it("--key: generate and create with one key pay once; refused without a ledger, with --out, elsewhere", function()
    local j = dir .. "/j.jsonl"
    local gen = { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--interval", "0.1",
      "--journal", j, "--key", "cat-1", "--json" }
    local first = run(gen)
    assert.equal(0, first.code, first.err)
    local again = run(gen)
    assert.equal(0, again.code, again.err)
    assert.equal(cjson.decode(first.out).id, cjson.decode(again.out).id)
    local create = { "create", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--journal", j, "--key",
      "dog-1", "--json" }
    local c1, c2 = run(create), run(create)
    assert.equal(cjson.decode(c1.out).id, cjson.decode(c2.out).id)
    assert.equal(2, emu:creates())
    local r = run { "generate", "--model", "videos", "--prompt", "a", "--duration", "5", "--key", "k1" }
    assert.equal(2, r.code)
    assert.matches("--key needs --journal PATH or --store URL", r.err, 1, true)
    r = run { "generate", "--model", "videos", "--prompt", "a", "--duration", "5", "--key", "k1", "--journal", j,
      "--out", dir .. "/a.mp4" }
    assert.matches("--key and --out", r.err, 1, true)
    r = run { "generate", "--model", "videos", "--prompt", "a", "--duration", "5", "--key", KEY, "--journal", j }
    assert.equal(2, r.code)
    assert.matches("this is the API key", r.err, 1, true)
    r = run { "status", "x", "--key", "k1" }
    assert.equal(2, r.code)
    assert.matches("--key is not an option of starvideos status: it names a job of generate or create", r.err, 1, true)
    assert.matches("set STARVIDEOS_API_KEY or use --api-key-file PATH", r.err, 1, true)
    assert.equal(2, emu:creates())
  end)
end)
