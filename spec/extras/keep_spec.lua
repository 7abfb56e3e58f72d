-- keep, outside nginx, with real processes: a child generating on a journal is
-- killed with SIGKILL mid-poll or mid-download (random points, several rounds),
-- and `starvideos keep` in another process carries each task to the file its
-- create named, byte for byte the emulator's video, with exactly one create;
-- two keepers at once never download one task twice; a live owner's task is
-- never taken; a create whose answer never came is never sent again.

local cjson = require "cjson.safe"
local helper = require "spec.helper"

local q = helper.shell_quote
local KEY = "k-keep"
local SAMPLE = require("starvideos.emulator.files").video(5)
local ENV = helper.CHILD_ENV .. "STARVIDEOS_API_KEY=" .. KEY .. " "

local function records(path)
  local out = {}
  for line in ((helper.read_file(path) or "") .. ""):gmatch("[^\n]+") do
    local r = cjson.decode(line)
    if type(r) == "table" then out[#out + 1] = r end
  end
  return out
end

local function of(path, event, field, value)
  local out = {}
  for _, r in ipairs(records(path)) do
    if r.event == event and (not field or r[field] == value) then out[#out + 1] = r end
  end
  return out
end

-- the requests the emulator saw: creates of a prompt, video GETs of an id
local function count(emu, method, path, body)
  local n = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == method and r.path:find(path, 1, true) and (r.body or ""):find(body, 1, true) then n = n + 1 end
  end
  return n
end
local function creates(emu, prompt) return count(emu, "POST", "/v1/", prompt) end
local function video_gets(emu, id) return count(emu, "GET", "/videos/" .. id .. ".mp4", "") end
local function polled(emu, id)
  for _, r in ipairs(emu:requests()) do
    if r.path == "/v1/result/" .. id then return true end
  end
end

local function generate_child(emu, journal, out, prompt)
  return helper.spawn(ENV .. q(helper.lua) .. " " .. q(helper.root .. "/spec/fixtures/keep_child.lua")
    .. " generate " .. q(emu.url) .. " " .. KEY .. " " .. q(journal) .. " " .. q(out) .. " " .. q(prompt))
end

local function cli(args)
  local words = {}
  for i, a in ipairs(args) do words[i] = q(a) end
  return ENV .. q(helper.lua) .. " " .. q(helper.root .. "/bin/starvideos") .. " " .. table.concat(words, " ")
end

local function keeper(emu, journal, dir, timeout)
  return helper.spawn(cli { "keep", "--journal", journal, "--dir", dir, "--lease", "1", "--interval", "0.2",
    "--timeout", tostring(timeout), "--json", "--base-url", emu.url })
end

-- A keeper's result: its exit status and the JSON list it printed.
local function finish(proc)
  local text = proc.pipe:read("*a")
  local ok, _, code = proc:close()
  return ok and 0 or code, cjson.decode(text) or error("keep printed no JSON: " .. text)
end

-- The created record of a prompt, once the child wrote it.
local function created_of(journal, prompt)
  local rec
  assert(helper.wait_until(function()
    for _, r in ipairs(of(journal, "created")) do if r.prompt == prompt then rec = r end end
    return rec ~= nil
  end, 15), "no created record for " .. prompt)
  return rec
end

local function kill9(proc)
  assert(helper.execute("kill -9 " .. proc.pid))
  local ok, how, code = proc:close()
  assert.is_falsy(ok)
  assert.equal("signal", how)
  assert.equal(9, code)
end

describe("keep (journal, flock leases, real processes)", function()
  local emu
  setup(function()
    helper.seed("keep: kill points")
    emu = helper.emulator { key = KEY, queued = 0.3, processing = 2 }
  end)
  teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)
  before_each(function() emu:reset() end)

  it("finishes the tasks of children killed -9 mid-poll and mid-download, round after round #hosts", function()
    for round = 1, 2 do
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      local poll_p, dl_p = "poll " .. round .. " " .. os.time(), "download " .. round .. " " .. os.time()
      -- mid-poll: killed at a random point of its polling
      local a = generate_child(emu, journal, dir .. "/a.mp4", poll_p)
      local ra = created_of(journal, poll_p)
      assert(helper.wait_until(function() return polled(emu, ra.id) end, 10))
      helper.sleep(math.random() * 1.5)
      kill9(a)
      -- mid-download: its video GET held back by the emulator, killed while it waits
      emu:fault { method = "GET", path = "/videos/", delay = 4, count = 1 }
      local b = generate_child(emu, journal, dir .. "/b.mp4", dl_p)
      local rb = created_of(journal, dl_p)
      assert(helper.wait_until(function() return video_gets(emu, rb.id) > 0 end, 15), "no download began")
      helper.sleep(math.random() * 0.5)
      kill9(b)
      assert.is_nil(helper.read_file(dir .. "/b.mp4"))

      local code, list = finish(keeper(emu, journal, dir, 6))
      assert.equal(0, code, cjson.encode(list))
      assert.equal(2, #list)
      for _, case in ipairs { { ra, dir .. "/a.mp4", poll_p }, { rb, dir .. "/b.mp4", dl_p } } do
        local rec, out, prompt = case[1], case[2], case[3]
        assert.equal(out, rec.out) -- the created record names the file
        assert.is_string(rec.owner)
        assert.equal(SAMPLE, helper.read_video(out), "round " .. round .. ": " .. prompt)
        assert.equal(1, creates(emu, prompt))
        assert.equal(1, #of(journal, "claim", "id", rec.id))
        assert.equal(1, #of(journal, "downloaded", "id", rec.id))
      end
      assert.equal(2, video_gets(emu, rb.id)) -- the child's, cut, and the keeper's
      assert.equal(1, video_gets(emu, ra.id))
      local text, ok = helper.capture(cli { "pending", "--journal", journal, "--json" })
      assert.truthy(ok)
      assert.same({}, cjson.decode(text))
    end
  end)

  it("never downloads one task twice with two keepers at once on one journal #hosts", function()
    local dir = helper.tmpdir()
    local journal = dir .. "/tasks.jsonl"
    local ids = {}
    for i = 1, 4 do
      local prompt = "twice " .. i .. " " .. os.time()
      local c = generate_child(emu, journal, dir .. "/" .. i .. ".mp4", prompt)
      ids[i] = created_of(journal, prompt).id
      kill9(c)
    end
    local k1, k2 = keeper(emu, journal, dir, 7), keeper(emu, journal, dir, 7)
    local c1, l1 = finish(k1)
    local c2, l2 = finish(k2)
    assert.equal(0, c1)
    assert.equal(0, c2)
    assert.equal(4, #l1 + #l2, "each task carried by one keeper: " .. #l1 .. " + " .. #l2)
    for i, id in ipairs(ids) do
      assert.equal(1, video_gets(emu, id), id)
      assert.equal(1, #of(journal, "claim", "id", id), id)
      assert.equal(SAMPLE, helper.read_video(dir .. "/" .. i .. ".mp4"))
    end
  end)

  it("never takes a live owner's task", function()
    local dir = helper.tmpdir()
    local journal = dir .. "/tasks.jsonl"
    emu:config { processing = 5 }
    local prompt = "alive " .. os.time()
    local c = generate_child(emu, journal, dir .. "/alive.mp4", prompt)
    local id = created_of(journal, prompt).id
    local code, list = finish(keeper(emu, journal, dir, 2))
    assert.equal(0, code)
    assert.same({}, list)
    assert.equal(0, #of(journal, "claim"))
    local said = c.pipe:read("*a")
    assert.truthy(c:close())
    assert.equal("ok " .. id, said:match("[^\n]+"))
    assert.equal(1, video_gets(emu, id))
    assert.equal(SAMPLE, helper.read_video(dir .. "/alive.mp4"))
  end)

  it("an owner whose lease file is gone while it lives (a cleaner of /tmp): keep claims its task at number 2; "
    .. "the owner asks under the journal's lock, starts no download and ends 'taken', naming the keeper's file",
    function()
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      emu:config { processing = 1.5 }
      local taken = {}
      local owner = require("starvideos").new { api_key = KEY, base_url = emu.url, journal = journal,
        on_event = function(ev) if ev.type == "taken" then taken[#taken + 1] = ev end end }
      local out = dir .. "/gone.mp4"
      local job = assert(owner:start({ model = "videos", prompt = "gone " .. os.time(), duration = 5 },
        { out = out, interval = 0.1 }))
      assert(helper.wait_until(function() owner:step(0.01); return job.id ~= nil end, 10), "no create")
      local owners = journal .. ".owners"
      for name in io.popen("ls " .. q(owners)):lines() do assert(os.remove(owners .. "/" .. name)) end
      local code, list = finish(keeper(emu, journal, dir, 4)) -- (the owner not stepped meanwhile: as if stopped)
      assert.equal(0, code)
      assert.equal(1, #list)
      assert.equal(out, list[1].path)
      local claims = of(journal, "claim", "id", job.id)
      assert.equal(1, #claims)
      assert.equal(2, claims[1].fence)
      assert(helper.wait_until(function() owner:step(0.01); return job.done end, 10), "the owner's job never ended")
      assert.equal("taken", job.state)
      assert.is_nil(job.err)
      assert.equal(out, job.path)
      assert.equal(1, #taken)
      assert.equal(job.id, taken[1].id)
      assert.equal(claims[1].owner, taken[1].by)
      assert.equal(1, video_gets(emu, job.id))
      assert.equal(1, #of(journal, "downloaded", "id", job.id))
      assert.equal(SAMPLE, helper.read_video(out))
      owner:close()
    end)

  it("never re-sends a create whose answer never came: says so, and pending lists it", function()
    local dir = helper.tmpdir()
    local journal = dir .. "/tasks.jsonl"
    local prompt = "lost answer " .. os.time()
    emu:fault { method = "POST", path = "/v1/", delay = 5, count = 1 }
    local c = generate_child(emu, journal, dir .. "/lost.mp4", prompt)
    assert(helper.wait_until(function() return creates(emu, prompt) == 1 end, 10))
    kill9(c)
    local code, list = finish(keeper(emu, journal, dir, 1.5))
    assert.equal(1, code)
    assert.equal(1, #list)
    assert.equal("io", list[1].error.kind)
    assert.truthy(list[1].error.maybe_created)
    assert.matches("never sends it again", list[1].error.message, 1, true)
    helper.sleep(4) -- the emulator's answer to the dead child comes and goes
    assert.equal(1, creates(emu, prompt))
    local text = helper.capture(cli { "pending", "--journal", journal, "--json" })
    assert.equal(1, #cjson.decode(text))
  end)

  it("refuses bad options, and needs a journal", function()
    local starvideos = require "starvideos"
    local client = starvideos.new { api_key = KEY, base_url = emu.url }
    local list, err = client:keep { timeout = 1 }
    assert.is_nil(list)
    assert.equal("journal", err.field)
    assert.error_matches(function() client:keep { lease = -1 } end, "bad option 'lease' to 'keep'", 1, true)
    assert.error_matches(function() client:keep { dri = "." } end, "unknown option 'dri'", 1, true)
    client:close()
  end)
end)

describe("ledger:orphans (keep's seam, one process)", function()
  local Ledger = require "starvideos.records.ledger"
  local core = require "starvideos.core"
  after_each(function() helper.cleanup() end)

  local function journal_with(path, lines)
    local t = {}
    for i, r in ipairs(lines) do t[i] = cjson.encode(r) end
    helper.write_file(path, table.concat(t, "\n") .. "\n")
  end

  it("claims a dead owner's task once, leaves a live lease's, and offers its own again when due", function()
    local dir = helper.tmpdir()
    local path = dir .. "/tasks.jsonl"
    local live = assert(core.try_lock(path .. ".owners/alive", true))
    assert.equal("false", tostring(core.try_lock(path .. ".owners/alive"))) -- held: another open sees it busy
    journal_with(path, {
      { event = "created", id = "t_dead", owner = "gone", out = dir .. "/d.mp4", time = 1 },
      { event = "created", id = "t_live", owner = "alive", time = 1 },
      { event = "created", id = "t_done", owner = "gone", time = 1 },
      { event = "downloaded", id = "t_done", path = dir .. "/x.mp4", time = 1 },
      { event = "pending", ["local"] = "lid1", owner = "gone", time = 1 },
    })
    local ledger = Ledger.new(path, {})
    local k = assert(ledger:keeper())
    local tasks, pendings = assert(k:orphans())
    assert.equal(1, #tasks)
    assert.equal("t_dead", tasks[1].id)
    assert.equal(dir .. "/d.mp4", tasks[1].out)
    assert.equal(1, #pendings)
    assert.equal("lid1", pendings[1]["local"])
    -- a second look: nothing new (claimed by k, the pending said once)
    tasks, pendings = assert(k:orphans())
    assert.same({}, tasks)
    assert.same({}, pendings)
    -- failed to carry it: offered again once due, with no second claim
    k.again.t_dead = core.now() + 0.2
    assert.same({}, (k:orphans()))
    helper.sleep(0.3)
    tasks = assert(k:orphans())
    assert.equal("t_dead", tasks[1] and tasks[1].id)
    local claims = 0
    for line in helper.read_file(path):gmatch("[^\n]+") do
      if cjson.decode(line).event == "claim" then claims = claims + 1 end
    end
    assert.equal(1, claims)
    -- the live lease let go: its task is claimed at the next look
    live:unlock()
    tasks = assert(k:orphans())
    assert.equal("t_live", tasks[1] and tasks[1].id)
    k:close()
    assert.is_nil(helper.read_file(path .. ".owners/" .. k.id)) -- a closed keeper's lease is gone
  end)

  it("reads a long journal a slice per look and claims nothing before it read it all", function()
    local dir = helper.tmpdir()
    local path = dir .. "/tasks.jsonl"
    local lines = { { event = "created", id = "t_early", owner = "gone", time = 1 } }
    for i = 1, 40 do
      lines[#lines + 1] = { event = "status", id = "t_early", status = "processing", n = i, time = 1 }
    end
    lines[#lines + 1] = { event = "downloaded", id = "t_early", path = dir .. "/e.mp4", time = 1 }
    lines[#lines + 1] = { event = "created", id = "t_late", owner = "gone", time = 1 }
    journal_with(path, lines)
    local leases = require "starvideos.records.leases"
    local slice = leases.FOLLOW
    leases.FOLLOW = 200 -- bytes: a few lines a look
    local ledger = Ledger.new(path, {})
    local k = assert(ledger:keeper())
    local looks, tasks, behind = 0, nil, true
    while behind do
      looks = looks + 1
      local pendings
      tasks, pendings, behind = assert(k:orphans())
      assert.same({}, pendings)
      if behind then assert.same({}, tasks) end
    end
    leases.FOLLOW = slice
    assert.is_true(looks > 5, looks .. " looks")
    assert.equal(1, #tasks)
    assert.equal("t_late", tasks[1].id) -- t_early's download, read in a later slice, stands
    k:close()
  end)

  it("keeps its lease under /tmp when <journal>.owners cannot be made, and the records say where", function()
    local dir = helper.tmpdir()
    local path = dir .. "/tasks.jsonl"
    helper.write_file(path .. ".owners", "a file where the folder would go\n")
    local writer = Ledger.new(path, {})
    local id, file = writer:owner()
    assert.is_string(id)
    assert.matches("/starvideos%-leases%-%d+/" .. id .. "$", file)
    assert.is_true(writer:before_create({ model = "videos", prompt = "p" }, "lid9", dir .. "/o.mp4"))
    assert(writer:created({ id = "t_else" }, { model = "videos" }, "lid9"))
    local created
    for line in helper.read_file(path):gmatch("[^\n]+") do
      local r = cjson.decode(line)
      if r.event == "created" then created = r end
    end
    assert.equal(file, created.lease)
    assert.equal(dir .. "/o.mp4", created.out)
    local keeper_ledger = Ledger.new(path, {})
    local k = assert(keeper_ledger:keeper())
    assert.same({}, (k:orphans())) -- alive, wherever its lease is
    writer:close()
    assert.is_nil(helper.read_file(file))
    local tasks = assert(k:orphans())
    assert.equal("t_else", tasks[1] and tasks[1].id)
    k:close()
  end)

  it("removes the lease a finished process left (its client never closed), and only a let-go one", function()
    local dir = helper.tmpdir()
    local path = dir .. "/tasks.jsonl"
    local stale = assert(core.try_lock(path .. ".owners/stale", true))
    stale:unlock() -- its process exited: the file stays, nobody holds it
    local held = assert(core.try_lock(path .. ".owners/held", true))
    journal_with(path, {
      { event = "created", id = "t1", owner = "stale", time = 1 },
      { event = "downloaded", id = "t1", path = dir .. "/1.mp4", time = 1 },
      { event = "created", id = "t2", owner = "held", time = 1 },
      { event = "status", id = "t2", status = "failed", time = 1 },
    })
    local ledger = Ledger.new(path, {})
    local k = assert(ledger:keeper())
    assert.same({}, (k:orphans()))
    assert.is_nil(helper.read_file(path .. ".owners/stale"))
    assert.is_string(helper.read_file(path .. ".owners/held"))
    held:unlock()
    k:close()
  end)

  it("keeps looking at a journal that does not exist yet", function()
    local dir = helper.tmpdir()
    local ledger = Ledger.new(dir .. "/none.jsonl", {})
    local k = assert(ledger:keeper())
    local tasks, pendings = k:orphans()
    assert.same({}, tasks)
    assert.same({}, pendings)
    k:close()
  end)
end)

describe("resume and keep --once keep the user's names (one process, the emulator)", function()
  local starvideos = require "starvideos"
  local emu, dir, journal
  require "spec.support.shared_emulator" ({ key = KEY, queued = 0.3, processing = 0.3 }, function(e) emu = e end)
  before_each(function()
    dir = helper.tmpdir()
    journal = dir .. "/tasks.jsonl"
  end)

  local function client(extra)
    local o = { api_key = KEY, base_url = emu.url, journal = journal, min_interval = 0, retry_backoff = 0.01 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return starvideos.new(o)
  end

  -- Two tasks started with outs, created, then their process gone (closed):
  -- a.mp4's folder is there, b.mp4's folder removed since.  Their ids.
  local function orphaned()
    assert(helper.execute("mkdir " .. q(dir .. "/videos") .. " " .. q(dir .. "/gone")))
    local c = client()
    local a = assert(c:start({ model = "videos", prompt = "orphan a", duration = 5 }, { out = dir .. "/videos/a.mp4" }))
    local b = assert(c:start({ model = "videos", prompt = "orphan b", duration = 5 }, { out = dir .. "/gone/b.mp4" }))
    assert(helper.wait_until(function() c:step(0.05); return a.id and b.id end, 10))
    c:close()
    assert(helper.execute("rmdir " .. q(dir .. "/gone")))
    return a.id, b.id
  end

  -- the entry of each id (the list follows the ledger's order of creates, which
  -- the two tasks race for)
  local function by_id(list, id_of)
    local out = {}
    for _, r in ipairs(list) do out[id_of(r)] = r end
    return out
  end

  local function check(results, a, b, fallback)
    assert.equal(2, #results)
    local got = by_id(results, function(r) return r.task.id end)
    assert.same({ dir .. "/videos/a.mp4", "out" }, { got[a].path, got[a].saved_to })
    assert.same({ fallback .. "/" .. b .. ".mp4", "dir" }, { got[b].path, got[b].saved_to })
    for _, r in ipairs(results) do
      assert.is_nil(r.err)
      assert.equal(SAMPLE, helper.read_video(r.path))
    end
    assert.equal(2, emu:creates()) -- nothing created again
  end

  it("resume saves to the out recorded at create, else dir/<id>.mp4, and says which", function()
    local a, b = orphaned()
    local fallback = helper.tmpdir()
    local c = client()
    check(assert(c:resume { dir = fallback, interval = 0.1 }), a, b, fallback)
    assert.same({}, assert(c:resume { dir = fallback }))
    c:close()
  end)

  it("keep{once = true} carries what is orphaned now and returns resume's list; then nothing", function()
    local a, b = orphaned()
    local fallback = helper.tmpdir()
    local events = {}
    local c = client { on_event = function(ev) if ev.type == "claim" then events[#events + 1] = ev end end }
    check(assert(c:keep { dir = fallback, once = true, interval = 0.1 }), a, b, fallback)
    assert.equal(2, #events)
    local claimed = by_id(events, function(ev) return ev.id end)
    assert.same({ dir .. "/videos/a.mp4", "out" }, { claimed[a].path, claimed[a].saved_to })
    assert.equal(of(journal, "created", "id", a)[1].owner, events[1].from)
    assert.same({}, assert(c:keep { dir = fallback, once = true })) -- nothing left: returns at once
    c:close()
  end)

  it("keep{once = true} says what it left under another process's live lease (a warning with the counts)", function()
    local a, b = orphaned()
    local core = require "starvideos.core"
    local live = assert(core.try_lock(journal .. ".owners/alive", true))
    local f = assert(io.open(journal, "a"))
    f:write(require("cjson").encode { event = "created", id = "t_live", owner = "alive", time = 1 }, "\n")
    f:close()
    local fallback, warnings = helper.tmpdir(), {}
    local c = client { on_event = function(ev) if ev.type == "warning" then warnings[#warnings + 1] = ev end end }
    check(assert(c:keep { dir = fallback, once = true, interval = 0.1 }), a, b, fallback)
    assert.equal(1, #warnings, warnings[2] and warnings[2].message)
    assert.equal("keep once: 1 task left under the live lease of 1 process, which keep takes once that process ends",
      warnings[1].message)
    assert.same({ 1, 1 }, { warnings[1].leased.tasks, warnings[1].leased.owners })
    live:unlock()
    c:close()
  end)

  it("keep goes on past a journal it cannot read for a moment: a warning, another look, then the tasks", function()
    local a, b = orphaned()
    local fallback = helper.tmpdir()
    assert(os.rename(journal, journal .. ".away"))
    assert(helper.execute("mkdir " .. q(journal))) -- a folder where the journal was: no look can read it
    local warnings = {}
    local c = client { on_event = function(ev)
      if ev.type ~= "warning" then return end
      warnings[#warnings + 1] = ev.message
      if #warnings == 2 then -- the journal back after the second failed look
        assert(helper.execute("rmdir " .. q(journal)))
        assert(os.rename(journal .. ".away", journal))
      end
    end }
    check(assert(c:keep { dir = fallback, once = true, interval = 0.1, lease = 0.6 }), a, b, fallback)
    assert.equal(2, #warnings, table.concat(warnings, "\n"))
    assert.matches("^keep: the look at the ledger failed: .+; looking again in 0%.1 s$", warnings[1])
    assert.matches("; looking again in 0%.2 s$", warnings[2]) -- the backoff doubles
    c:close()
  end)

  it("keep that could make no look before its timeout returns nil and the last failure", function()
    assert(helper.execute("mkdir " .. q(journal)))
    local n = 0
    local c = client { on_event = function(ev) if ev.type == "warning" then n = n + 1 end end }
    local res, err = c:keep { dir = helper.tmpdir(), timeout = 0.5, lease = 0.6 }
    assert.is_nil(res)
    assert.equal("io", err.kind)
    assert.matches("^keep: the look at the ledger failed: .*not a regular file", err.message)
    assert.is_true(n >= 2, "a warning at each failed look: " .. n)
    c:close()
  end)

  it("keep --once on the command line: the list, and each claim logged at info", function()
    local a, b = orphaned()
    local fallback = helper.tmpdir()
    local errfile = dir .. "/stderr"
    local text, ok = helper.capture(cli { "keep", "--journal", journal, "--dir", fallback, "--once", "--interval",
      "0.1", "--log", "info", "--json", "--base-url", emu.url } .. " 2>" .. q(errfile))
    assert.truthy(ok, text)
    local list = by_id(assert(cjson.decode(text), text), function(r) return r.id end)
    assert.equal("out", list[a].saved_to)
    assert.same({ fallback .. "/" .. b .. ".mp4", "dir" }, { list[b].path, list[b].saved_to })
    local log = helper.read_file(errfile)
    local owner = of(journal, "created", "id", a)[1].owner
    assert.truthy(log:find("claim " .. a .. " from owner " .. owner .. ", to be saved at " .. dir
      .. "/videos/a.mp4 (the out recorded at its create)", 1, true), log)
    assert.truthy(log:find("claim " .. b .. " from owner " .. owner .. ", to be saved at " .. fallback .. "/"
      .. b .. ".mp4 (in dir)", 1, true), log)
    assert.equal(2, emu:creates())
  end)

  it("checks resume's and keep's dir and wait_all's out_dir as generate checks out: before any request", function()
    local a = orphaned()
    local requests = #emu:requests()
    local c = client()
    local missing = dir .. "/nodir/sub"
    local _, gerr = c:generate({ model = "videos", prompt = "x", duration = 5 }, { out = missing .. "/x.mp4" })
    local cases = {
      { "dir", c:resume { dir = missing } },
      { "dir", c:keep { dir = missing, once = true } },
      { "out_dir", c:wait_all({ a }, { out_dir = missing }) },
    }
    for _, case in ipairs(cases) do
      local field, res, err = case[1], case[2], case[3]
      assert.is_nil(res)
      assert.same({ "io", field, gerr.kind }, { err.kind, err.field, "io" })
      assert.equal(field .. ": cannot write into " .. missing .. ": the folder " .. missing
        .. " does not exist; nothing was sent", err.message)
    end
    assert.matches("the folder " .. missing .. " does not exist; nothing was sent", gerr.message, 1, true)
    assert.equal(requests, #emu:requests()) -- nothing polled, created or claimed
    assert.equal(0, #of(journal, "claim"))
    c:close()
  end)
end)
