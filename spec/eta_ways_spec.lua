-- job.eta and the `late` event however a task is awaited (issue 65; docs/polling.md, "When it will be ready"):
-- create + wait_all, watch, start, generate, keep and the command line's wait.  For each way, against an emulator
-- of its own (a key, so a schedule, of its own): six tasks awaited that way teach the schedule, then a slow task
-- (3 s where they took 0.3 s) awaited the same way is told its time left (a status event with eta) and runs late
-- (one late event).  create + wait_all and watch wait until their tasks have ended before their first poll: what
-- teaches them is the create's answer, a sight of the task unfinished (before, they taught nothing).
local cjson = require "cjson.safe"
local helper = require "spec.helper"
local starvideos = require "starvideos"

local q = helper.shell_quote
local KEY = "k-eta-ways"
local TAUGHT = 6
local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

-- Until the emulator says every task of ids has ended (their video ready).
local function ended(emu, ids)
  assert(helper.wait_until(function()
    local left = 0
    for _, t in ipairs(emu:tasks()) do
      for _, id in ipairs(ids) do
        if t.id == id and t.status ~= "completed" then left = left + 1 end
      end
    end
    return left == 0
  end, 10), "the emulator's tasks did not end")
end

-- The client stepped until every job of jobs has ended.
local function stepped(c, jobs)
  assert(helper.wait_until(function()
    c:step(0.05)
    for _, j in ipairs(jobs) do if not j.done then return false end end
    return true
  end, 15), "the jobs did not end")
  for _, j in ipairs(jobs) do assert.is_nil(j.err) end
end

-- The status events that carried an eta, and the late events, of what the client told.
local function told(events)
  local etas, lates = 0, 0
  for _, ev in ipairs(events) do
    if ev.type == "status" and type(ev.eta) == "table" and type(ev.eta.p50) == "number" then etas = etas + 1 end
    if ev.type == "late" then lates = lates + 1 end
  end
  return etas, lates
end

-- Each way: taught(c, emu, dir, n): n tasks awaited that way; slow(c, emu, dir): one more, awaited the same way.
local WAYS = {
  ["create + wait_all"] = {
    taught = function(c, emu, _, n)
      local tasks, ids = {}, {}
      for i = 1, n do tasks[i] = assert(c:create(PARAMS)); ids[i] = tasks[i].id end
      ended(emu, ids)
      for _, r in ipairs(assert(c:wait_all(tasks, { interval = 0.1 }))) do assert.is_nil(r.err) end
    end,
    slow = function(c)
      local r = assert(c:wait_all({ assert(c:create(PARAMS)) }, { interval = 0.1 }))
      assert.is_nil(r[1].err)
    end,
  },
  watch = {
    taught = function(c, emu, _, n)
      local jobs, ids = {}, {}
      for i = 1, n do ids[i] = assert(c:create(PARAMS)).id end
      ended(emu, ids)
      for i = 1, n do jobs[i] = assert(c:watch(ids[i], { interval = 0.1 })) end
      stepped(c, jobs)
    end,
    slow = function(c) stepped(c, { assert(c:watch(assert(c:create(PARAMS)).id, { interval = 0.1 })) }) end,
  },
  start = {
    taught = function(c, _, _, n)
      local jobs = {}
      for i = 1, n do jobs[i] = assert(c:start(PARAMS, { interval = 0.1 })) end
      stepped(c, jobs)
    end,
    slow = function(c) stepped(c, { assert(c:start(PARAMS, { interval = 0.1 })) }) end,
  },
  generate = {
    taught = function(c, _, dir, n)
      for i = 1, n do assert(c:generate(PARAMS, { out = dir .. "/" .. i .. ".mp4", interval = 0.1 })) end
    end,
    slow = function(c, _, dir)
      assert(c:generate(PARAMS, { out = dir .. "/slow.mp4", interval = 0.1 }))
    end,
  },
}

-- keep: the tasks of a process gone (started with outs, created, its client closed) carried by keep{once}.
local function orphans(emu, dir, n, tag)
  local c = assert(starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/tasks.jsonl" })
  local jobs = {}
  for i = 1, n do jobs[i] = assert(c:start(PARAMS, { out = dir .. "/" .. tag .. i .. ".mp4" })) end
  assert(helper.wait_until(function()
    c:step(0.05)
    for _, j in ipairs(jobs) do if not j.id then return false end end
    return true
  end, 10))
  c:close()
end
WAYS.keep = {
  taught = function(c, emu, dir, n)
    orphans(emu, dir, n, "t")
    assert.equal(n, #assert(c:keep { once = true, interval = 0.1 }))
  end,
  slow = function(c, emu, dir)
    orphans(emu, dir, 1, "slow")
    assert.equal(1, #assert(c:keep { once = true, interval = 0.1 }))
  end,
}

describe("a task's eta and late event, however it is awaited (issue 65)", function()
  local emu, dir
  before_each(function()
    emu = helper.emulator { key = KEY, queued = 0.1, processing = 0.2 }
    dir = helper.tmpdir()
  end)
  after_each(function() emu:stop() end)
  teardown(helper.cleanup)

  for _, way in ipairs { "create + wait_all", "watch", "start", "generate", "keep" } do
    it(way .. ": six tasks teach the schedule; a slow one is told its time left, then late", function()
      local events = {}
      local c = assert(starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/tasks.jsonl",
        on_event = function(ev) events[#events + 1] = ev end })
      WAYS[way].taught(c, emu, dir, TAUGHT)
      events = {}
      emu:config { processing = 3 } -- (the next task: ten times as long as those learned)
      WAYS[way].slow(c, emu, dir)
      local etas, lates = told(events)
      assert.is_true(etas >= 1, "no status event carried an eta")
      assert.equal(1, lates)
      c:close()
    end)
  end

  -- The command line: each create and each wait a process of its own, on one journal (the samples it keeps).
  it("the command line's wait: six tasks teach the schedule (in the journal); a slow one is told its time left, "
    .. "then late", function()
    local journal = dir .. "/tasks.jsonl"
    local function cli(args, no_journal)
      return helper.CHILD_ENV .. "STARVIDEOS_API_KEY=" .. KEY .. " " .. q(helper.lua) .. " "
        .. q(helper.root .. "/bin/starvideos") .. " " .. args .. (no_journal and "" or " --journal " .. q(journal))
        .. " --base-url " .. q(emu.url)
    end
    local function create()
      local out, ok = helper.capture(cli("create --model videos --prompt 'a cat' --duration 5 --json"))
      assert(ok, out)
      local task = assert(cjson.decode(out), out)
      return task.id, task.created
    end
    local function wait(id)
      return helper.spawn(cli("wait " .. q(id) .. " --interval 0.1 --log info") .. " 2>&1")
    end
    -- Each of the six is processing from its create (none is queued) until the spec has read its wait's first status
    -- line (the wait has seen it unfinished), then run a `status` of it to its end (a second process, begun as the
    -- slow one's wait is), and the wall clock's second is 2 past its create's (a wait process counts a task's age in
    -- the whole seconds of its `created`): it is ended then, through the emulator (POST /_emulator/end), and its
    -- wait sees it ended.  So each wait teaches a sample however late its process starts (tasks of 0.3 s had ended
    -- before their waits started beside stress-ng --cpu 6: no sample), and each spans two processes' starts and two
    -- of the clock's seconds where the slow task's first answer comes after one start: it is answered before it is
    -- late (ended at its wait's first status line alone, the six taught 0 to 1 s beside stress-ng, and the slow
    -- wait's first answer, 1 or 2 s after its create, was late at once: its status line said no time left).
    emu:config { queued = 0, processing = 3600 }
    for _ = 1, TAUGHT do
      local id, created = create()
      local lines, over = {}, false
      local proc = wait(id)
      for line in proc.pipe:lines() do
        lines[#lines + 1] = line
        if not over and line:match("^status: processing") then
          local out, ok = helper.capture(cli("status " .. q(id), true) .. " 2>&1")
          assert(ok and out:find("processing", 1, true), out)
          assert(helper.wait_until(function() return os.time() >= created + 2 end, 5))
          over = emu:finish(id)
        end
      end
      assert(proc:close() and over, table.concat(lines, "\n"))
    end
    -- the slow task runs an hour (never ends here): processing still when the wait's first answer comes, however
    -- late its process starts; the wait is read line by line until its late line, then let go
    local slow = create()
    local proc = wait(slow)
    local lines, status, late = {}, nil, nil
    for line in proc.pipe:lines() do
      lines[#lines + 1] = line
      if line:match("^status: processing %([^)]+%)$") then status = status or #lines end -- (a time left)
      if line:find("starvideos: late ", 1, true) then late = #lines; break end
    end
    helper.execute("kill " .. proc.pid .. " 2>/dev/null")
    proc:close()
    local out = table.concat(lines, "\n")
    assert.truthy(status, "no status line with the time left: " .. out)
    assert.truthy(late, "no late line: " .. out)
    assert.is_true(status < late, out) -- (told its time left, then late: the first late line ends the read)
  end)

  -- A client made on a journal of samples has learned them before its first answer is read (the CLI's wait, a
  -- process of its own, once read a task's first status before its journal's samples on a slow machine: no eta).
  it("a new client on a journal has learned its samples at once, before its loop turns", function()
    local journal = dir .. "/tasks.jsonl"
    local c = assert(starvideos.new { api_key = KEY, base_url = emu.url, journal = journal })
    WAYS["create + wait_all"].taught(c, emu, dir, TAUGHT)
    c:close()
    local Schedule = require "starvideos.schedule"
    local other = assert(starvideos.new { api_key = KEY .. "-other", base_url = emu.url, journal = journal })
    local learned = Schedule.of(other.ctx.key, other.cfg):learned(Schedule.kind_of("videos", 5), "videos")
    other:close()
    assert.is_table(learned, "the journal's samples were not learned when the client was made")
  end)
end)
