-- Money, with real processes: `bin/starvideos batch` of 50 prompts killed
-- with kill -9 at random moments and run again until it ends, three times
-- over, against the emulator: it creates each task once and ends with every
-- file whole at its name.  The kills fall outside the moment between a
-- create's pending record and its answer's record (the process is stopped,
-- its journal read, and killed only with no create open); a case of its own
-- kills inside that moment.  The seed of the kill times is printed.
local helper = require "spec.helper"

local q = helper.shell_quote
local BIN = helper.root .. "/bin/starvideos"
local SAMPLE = require("starvideos.emulator.files").video(5)
local KEY = "sk-batch-kill-0d15ea5e"
local N = 50

-- The creates of a journal sent and not yet answered (pending records with
-- neither a created nor an abandoned record of their local id).
local function open_creates(journal)
  local open, n = {}, 0
  for line in (helper.read_file(journal) or ""):gmatch("[^\n]+") do
    local event, lid = line:match('"event":"(%a+)"'), line:match('"local":"(%x+)"')
    if lid and event == "pending" then open[lid] = true
    elseif lid and (event == "created" or event == "abandoned") then open[lid] = nil end
  end
  for _ in pairs(open) do n = n + 1 end
  return n
end

local function alive(pid) return helper.execute("kill -0 " .. pid .. " 2>/dev/null") end

describe("batch killed with kill -9 and run again", function()
  local emu, dir
  setup(function()
    helper.seed("batch_kill_spec")
    emu = helper.emulator { queued = 0.1, processing = 0.1, key = KEY }
  end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)

  -- bin/starvideos batch of the prompts file into outdir, started: the process
  local function start(file, outdir, log)
    return helper.spawn(table.concat({ "env", "STARVIDEOS_API_KEY=" .. q(KEY), "STARVIDEOS_BASE_URL=" .. q(emu.url),
      q(helper.lua), q(BIN), "batch", "--prompts-file", q(file), "--out-dir", q(outdir), "--model", "videos",
      "--duration", "5", "--interval", "0.3", ">>" .. q(log), "2>&1", "</dev/null" }, " "))
  end

  -- Stop the process, and kill it when no create of its is open; else let it
  -- go on a moment and look again.  Whether it was killed (not ended first).
  local function kill_outside(proc, journal)
    for _ = 1, 500 do
      if not alive(proc.pid) then return false end
      helper.execute("kill -STOP " .. proc.pid)
      if open_creates(journal) == 0 then
        helper.execute("kill -KILL " .. proc.pid)
        return true
      end
      helper.execute("kill -CONT " .. proc.pid)
      helper.sleep(0.005)
    end
    error("a create was open at every look")
  end

  it("creates each of 50 tasks once and saves every file, three times over", function()
    dir = helper.tmpdir()
    local lines = {}
    for i = 1, N do lines[i] = "prompt number " .. i end
    local file = dir .. "/prompts.txt"
    helper.write_file(file, table.concat(lines, "\n") .. "\n")
    for round = 1, 3 do
      emu:reset()
      local outdir, log = dir .. "/round" .. round, dir .. "/round" .. round .. ".log"
      local runs, kills = 0, 0
      while true do
        runs = runs + 1
        assert(runs <= 12, "the batch did not end: " .. (helper.read_file(log) or ""))
        local proc = start(file, outdir, log)
        local killed = false
        if kills < 3 then
          helper.sleep(0.2 + math.random() * 2.5)
          killed = kill_outside(proc, outdir .. "/starvideos.jsonl")
        end
        local _, how, code = proc:close()
        if killed then
          kills = kills + 1
          assert.equal("signal", how)
        else
          assert.equal(0, code, helper.read_file(log))
          break
        end
      end
      io.stderr:write(string.format("batch_kill_spec: round %d: %d kills, %d runs, %d creates\n", round, kills, runs,
        emu:creates()))
      assert.equal(N, emu:creates())
      for i = 1, N do
        assert.equal(SAMPLE, helper.read_video(string.format("%s/%04d.mp4", outdir, i)), "file " .. i)
      end
      local prompts = {}
      for _, t in ipairs(emu:tasks()) do prompts[t.params.prompt] = (prompts[t.params.prompt] or 0) + 1 end
      for i = 1, N do assert.equal(round, prompts["prompt number " .. i]) end -- one task a prompt a round
    end
  end)

  it("killed half way, then --dry-run: the creates it lists (by model, with their cost) are exactly those the rerun "
    .. "sends", function()
    dir = helper.tmpdir()
    emu:reset()
    emu:config { fail_rate = 0.2, seed = 40 } -- (failed tasks: their entries are created again, and listed so)
    local lines, prompt_of = {}, {}
    for i = 1, 30 do
      lines[i] = string.format('{"prompt": "entry %d", "model": "%s"}', i, i % 3 == 0 and "videos_fast" or "videos")
      prompt_of[i] = "entry " .. i
    end
    local file, outdir, log = dir .. "/p.jsonl", dir .. "/v", dir .. "/log"
    helper.write_file(file, table.concat(lines, "\n") .. "\n")
    local proc = start(file, outdir, log)
    helper.sleep(1 + math.random() * 1.5)
    helper.execute("kill -KILL " .. proc.pid) -- anywhere: a create may be open (its entry is then refused)
    local _, how = proc:close()
    assert.equal("signal", how)
    local before, tasks = emu:creates(), #emu:tasks()
    assert.truthy(before > 0 and before < 30, before .. " creates before the kill")
    local function cli(more)
      local words = { "env", "STARVIDEOS_API_KEY=" .. q(KEY), "STARVIDEOS_BASE_URL=" .. q(emu.url), q(helper.lua),
        q(BIN), "batch", "--prompts-file", q(file), "--out-dir", q(outdir), "--duration", "5", "--interval", "0.3",
        "--prices", q('{"videos": 0.4, "videos_fast": 0.25}') }
      return helper.capture(table.concat(words, " ") .. " " .. more .. " 2>>" .. q(log) .. " </dev/null")
    end
    local out = cli("--dry-run")
    assert.equal(before, emu:creates(), "the dry run sent nothing")
    local listed, by_model, cost = {}, {}, 0
    for line, model, price in ("\n" .. out):gmatch("\ncreate +%d+%.mp4 %(line (%d+)%) +(%S+) +([%d.]+) ") do
      listed[#listed + 1] = prompt_of[tonumber(line)]
      by_model[model] = (by_model[model] or 0) + 1
      cost = cost + tonumber(price)
    end
    table.sort(listed)
    local totals = out:match("\n(%d+ creates? .-; nothing was sent)\n$")
    assert.truthy(totals, out)
    assert.equal(#listed, tonumber(totals:match("^%d+")), totals)
    for model, n in pairs(by_model) do assert.matches(n .. " of " .. model .. ", cost ", totals, 1, true) end
    assert.matches(string.format(", cost %.14g;", cost), totals, 1, true)
    local _, _, code = cli("")
    assert.truthy(code == 0 or code == 1, helper.read_file(log))
    local sent = {}
    for i, t in ipairs(emu:tasks()) do if i > tasks then sent[#sent + 1] = t.params.prompt end end
    table.sort(sent)
    io.stderr:write(string.format("batch_kill_spec: %d creates before the kill, %d listed by --dry-run, %d sent by "
      .. "the rerun (%s)\n", before, #listed, #sent, totals))
    assert.same(listed, sent)
  end)

  it("killed between a create sent and its answer: the rerun refuses that key with the command, then creates it once",
    function()
      dir = helper.tmpdir()
      emu:reset()
      local file, outdir, log = dir .. "/p.txt", dir .. "/v", dir .. "/log"
      helper.write_file(file, "first\nsecond\nthird\n")
      emu:fault { method = "POST", path = "/v1/", delay = 3, count = 1 } -- the first create's answer comes late
      local proc = start(file, outdir, log)
      local function saved()
        local n = 0
        for i = 1, 3 do if helper.exists(string.format("%s/%04d.mp4", outdir, i)) then n = n + 1 end end
        return n
      end
      -- the two others saved, the late one open
      assert.truthy(helper.wait_until(function()
        return saved() == 2 and open_creates(outdir .. "/starvideos.jsonl") == 1 end, 10))
      helper.execute("kill -KILL " .. proc.pid)
      local _, how = proc:close()
      assert.equal("signal", how)
      proc = start(file, outdir, log .. "2")
      local _, _, code = proc:close()
      local out = helper.read_file(log .. "2")
      assert.equal(1, code, out)
      -- (the command as it was invoked: this checkout's bin/starvideos)
      -- (the line names `... --adopt ID TASK_ID` or `... --forget ID`: the spec takes the second)
      local late = out:match("(%d%d%d%d%.mp4) %(line %d%): `")
      local prog, cmd = out:match("`(%S+)( pending %-%-journal %S+ %-%-forget %x+)`")
      assert.truthy(cmd, out)
      assert.equal(BIN, prog)
      assert.matches("1 create was sent and never answered", out, 1, true)
      assert.equal(2, saved())
      assert.falsy(helper.exists(outdir .. "/" .. late))
      local creates = emu:creates()
      assert.equal(3, creates) -- the one killed, and the two others; none again
      assert.truthy(helper.execute(q(helper.lua) .. " " .. q(BIN) .. cmd .. " >/dev/null"))
      proc = start(file, outdir, log .. "3")
      _, _, code = proc:close()
      assert.equal(0, code, helper.read_file(log .. "3"))
      assert.equal(creates + 1, emu:creates())
      for i = 1, 3 do assert.equal(SAMPLE, helper.read_video(string.format("%s/%04d.mp4", outdir, i))) end
    end)
end)
