-- The ledger (lua/starvideos/ledger.lua) through a fake transport
-- (spec/support/fake_transport.lua), no server: the records a task leaves in
-- the journal, the .part a close leaves (recorded, then continued with Range by
-- resume; removed without a journal), and the schedule learned from the
-- journal one bounded slice per step.
local Fake = require "spec.support.fake_transport"
local helper = require "spec.helper"
local Ledger = require "starvideos.records.ledger"
local journal = require "starvideos.records.journal"
local samples = require "starvideos.records.samples"
local starvideos = require "starvideos"
local cjson = require "cjson"
local core = require "starvideos.core"

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }
local OVERLAP = 65536 -- request.lua's: a .part is continued from this many bytes before its end

local function client(fake, opts)
  local o = { api_key = "k-ledger", base_url = "http://fake", transport = fake, requests_per_second = 1000 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return starvideos.new(o)
end

local function records(path)
  local list = {}
  for line in io.lines(path) do list[#list + 1] = cjson.decode(line) end
  return list
end

local function events(path)
  local out = {}
  for _, r in ipairs(records(path)) do out[#out + 1] = r.event end
  return table.concat(out, " ")
end

-- Step until pred() or 5 s.
local function step_until(c, pred)
  local t0 = core.now()
  while not pred() do
    assert(core.now() - t0 < 5, "timed out")
    c:step(0.01)
  end
end

-- A generate started as a job whose download a close stops mid-way (100,000
-- bytes in): the job and its out.
local function stopped_download(dir, journal_path)
  local out = dir .. "/v.mp4"
  local fake = Fake.new { hold_downloads = true }
  local c = client(fake, { journal = journal_path })
  local job = assert(c:start(PARAMS, { out = out, interval = 0.01 }))
  step_until(c, function() return fake.held[1] ~= nil end)
  assert.equal(100000, helper.file_size(out .. ".part"))
  c:close()
  assert.equal("cancelled", job.state)
  return job, out
end

describe("the ledger", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.cleanup() end)

  it("records a task from pending to downloaded in the journal", function()
    local j = dir .. "/j.jsonl"
    local fake = Fake.new { status = function(_, n) return n >= 2 and "completed" or "processing" end }
    local c = client(fake, { journal = j })
    local task = assert(c:generate(PARAMS, { out = dir .. "/v.mp4", interval = 0.01 }))
    c:close()
    assert.equal("pending created status status downloaded", events(j))
    local recs = records(j)
    assert.equal(recs[1]["local"], recs[2]["local"])
    assert.equal(task.id, recs[2].id)
    assert.same({ "processing", "completed" }, { recs[3].status, recs[4].status })
    assert.equal(dir .. "/v.mp4", recs[5].path)
    assert.equal(Fake.video(0, Fake.VIDEO_SIZE), helper.read_video(dir .. "/v.mp4"))
    assert.same({}, Ledger.new(j, {}):unfinished())
  end)

  it("answers a rerun on an out already saved with the recorded SHA-256 (generate and generate_all)", function()
    local j, out = dir .. "/j.jsonl", dir .. "/v1.mp4"
    local fake = Fake.new {}
    local c = client(fake, { journal = j })
    local first = assert(c:generate(PARAMS, { out = out, interval = 0.01 }))
    c:close()
    local want = require("starvideos.sign").sha256_file(out)
    assert.equal(want, first.sha256)
    local creates = fake:count("create")
    assert.equal(1, creates)
    local again = client(fake, { journal = j })
    local task = assert(again:generate(PARAMS, { out = out, interval = 0.01 }))
    assert.same({ out, want }, { task.path, task.sha256 })
    local all = again:generate_all({ PARAMS }, { out = dir .. "/v%d.mp4", interval = 0.01 })
    again:close()
    assert.same({ out, want }, { all[1].path, all[1].sha256 })
    assert.equal(creates, fake:count("create"))
  end)

  -- The journal's writer thread holds the lock and waits for the disk, not the loop's thread.  Fails when a
  -- step appends under a blocking flock: the first step(0) waits until the other process lets go.  (Issue 78, 2:
  -- the other process holds the lock until the spec opens its gate, not for 1 s, and the steps are read by whether
  -- they all returned while it still held it, not by 'under 0.25 s'.)
  it("never waits in step(0) for the journal's lock: while another process holds it, the create waits", function()
    local j, gate = dir .. "/j.jsonl", dir .. "/gate"
    helper.write_file(j, "")
    -- (at most 30 s: a step that waits for the lock returns then, and fails below)
    local holder = io.popen("flock " .. helper.shell_quote(j) .. " -c 'echo held; i=0; while [ ! -e \"" .. gate
      .. "\" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i + 1)); done'")
    assert.equal("held", holder:read("*l"))
    local fake = Fake.new { status = function() return "completed" end }
    local c = client(fake, { journal = j })
    local job = assert(c:start(PARAMS, { out = dir .. "/v.mp4", interval = 0.01 }))
    for _ = 1, 50 do
      c:step(0)
      core.sleep(0.01)
    end
    assert.is_falsy(helper.execute("flock -n " .. helper.shell_quote(j) .. " true"),
      "the other process had let go of the lock: a step(0) waited for it")
    assert.equal(0, #fake.sent, "a create was sent before its pending record was written")
    assert.equal("creating", job.state)
    helper.write_file(gate, "")
    holder:close() -- (once the other process let go)
    step_until(c, function() return job.done end)
    assert.is_nil(job.err)
    c:close()
    assert.equal("pending created status downloaded", events(j))
  end)

  -- The SHA-256 sha256sum(1) gives the file at path.
  local function sha256sum(path)
    return (helper.capture("sha256sum " .. helper.shell_quote(path)):match("^(%x+)"))
  end

  it("records each file's bytes and SHA-256 in downloaded, gives it in the results, and lists it", function()
    local j = dir .. "/j.jsonl"
    local c = client(Fake.new(), { journal = j, mark = false }) -- (three tasks' one video: unmarked, the same bytes)
    local task = assert(c:generate(PARAMS, { out = dir .. "/v.mp4", interval = 0.01 }))
    local path, none, sum = c:download({ id = "task_9", status = "completed", video_url = "http://fake/v/9.mp4" },
      dir .. "/w.mp4")
    local all = assert(c:wait_all({ "task_7" }, { out_dir = dir, interval = 0.01 }))
    local listed = assert(c:tasks())
    c:close()
    local want = sha256sum(dir .. "/v.mp4")
    assert.equal(64, #want)
    assert.equal(want, task.sha256)
    assert.same({ dir .. "/w.mp4", nil, want }, { path, none, sum }) -- the same video
    assert.equal(want, all[1].sha256)
    local downloaded = {}
    for _, r in ipairs(records(j)) do
      if r.event == "downloaded" then downloaded[#downloaded + 1] = { r.path, r.bytes, r.sha256 } end
    end
    assert.same({ { dir .. "/v.mp4", Fake.VIDEO_SIZE, want }, { dir .. "/w.mp4", Fake.VIDEO_SIZE, want },
      { dir .. "/task_7.mp4", Fake.VIDEO_SIZE, want } }, downloaded)
    for _, t in ipairs(listed) do assert.equal(want, t.sha256, t.id) end
    assert.equal(3, #listed)
  end)

  it("tasks{check = true} and list --check find a file missing, one cut and one changed in place", function()
    local j = dir .. "/j.jsonl"
    local c = client(Fake.new(), { journal = j, mark = false }) -- (four tasks' one video: unmarked, the same bytes)
    assert(c:wait_all({ "task_1", "task_2", "task_3", "task_4" }, { out_dir = dir, interval = 0.01 }))
    os.remove(dir .. "/task_2.mp4")
    assert(helper.execute("truncate -s 1000 " .. helper.shell_quote(dir .. "/task_3.mp4")))
    local f = assert(io.open(dir .. "/task_4.mp4", "r+b")) -- one byte of its mdat, the size unchanged
    f:seek("set", 200000)
    f:write("X")
    f:close()
    local found = {}
    for _, t in ipairs(assert(c:tasks { check = true })) do found[t.id] = { t.check, t.check_error } end
    c:close()
    local sum = sha256sum(dir .. "/task_4.mp4")
    assert.same({
      task_1 = { "ok" },
      task_2 = { "missing", dir .. "/task_2.mp4 is missing (or cannot be read)" },
      task_3 = { "changed", dir .. "/task_3.mp4 holds 1000 bytes; " .. Fake.VIDEO_SIZE .. " were saved" },
      task_4 = { "changed", dir .. "/task_4.mp4 has SHA-256 " .. sum .. "; " .. sha256sum(dir .. "/task_1.mp4")
        .. " was saved" },
    }, found)
    local invoked = helper.root .. "/bin/starvideos" -- (the commands it names start as it was invoked)
    local cli = helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(invoked)
      .. " list --journal " .. helper.shell_quote(j) .. " --check"
    local out, _, code = helper.capture(cli .. " 2>&1")
    assert.equal(1, code, out)
    assert.equal(table.concat({ "ok       task_1  " .. dir .. "/task_1.mp4",
      "missing  task_2  " .. found.task_2[2], "changed  task_3  " .. found.task_3[2],
      "changed  task_4  " .. found.task_4[2], "4 files checked: 1 as saved, 1 missing, 2 changed",
      "to repair: run the command that saved them again, with the same ledger (the same `" .. invoked .. " batch`, "
      .. "or `" .. invoked .. " generate` with the same --out): each missing or changed file is fetched again from "
      .. "its task, creating nothing, while the service keeps the video (docs/batch.md)", "" }, "\n"), out)
    out, _, code = helper.capture(cli .. " --json 2>&1")
    assert.equal(1, code, out)
    local lines = {}
    for line in out:gmatch("[^\n]+") do
      local t = cjson.decode(line)
      lines[#lines + 1] = t.id .. " " .. t.check
    end
    assert.same({ "task_1 ok", "task_2 missing", "task_3 changed", "task_4 changed" }, lines)
    -- all as saved again: exit 0
    os.remove(j)
    c = client(Fake.new(), { journal = j })
    assert(c:wait_all({ "task_1" }, { out_dir = dir, interval = 0.01 }))
    c:close()
    out, _, code = helper.capture(cli .. " 2>&1")
    assert.equal(0, code, out)
    assert.equal("ok       task_1  " .. dir .. "/task_1.mp4\n1 file checked: 1 as saved, 0 missing, 0 changed\n", out)
  end)

  it("keeps a .part a close stopped, records it, and resume continues it with Range", function()
    local j = dir .. "/j.jsonl"
    local job, out = stopped_download(dir, j)
    assert.equal(100000, helper.file_size(out .. ".part"))
    local last = records(j)[#records(j)]
    assert.same({ "part", job.id, out .. ".part", out }, { last.event, last.id, last.part, last.path })
    assert.same({ { id = job.id, model = "videos", out = out, part = out } }, Ledger.new(j, {}):unfinished())
    -- a later process: resume finds the .part and asks only for the rest
    local fake2 = Fake.new()
    local c2 = client(fake2, { journal = j })
    local res = assert(c2:resume { dir = helper.tmpdir(), interval = 0.01 })
    c2:close()
    assert.equal(1, #res)
    assert.is_nil(res[1].err)
    assert.equal(out, res[1].path)
    local sent
    for _, s in ipairs(fake2.sent) do if s.op == "download" then sent = s end end
    assert.equal(100000 - OVERLAP, sent.offset)
    assert.equal(Fake.video(0, Fake.VIDEO_SIZE), helper.read_video(out))
    assert.is_false(helper.exists(out .. ".part"))
  end)

  it("forgets a recorded .part removed since: resume starts the task afresh at its out", function()
    local j = dir .. "/j.jsonl"
    local job, out = stopped_download(dir, j)
    os.remove(out .. ".part")
    local list = Ledger.new(j, {}):unfinished()
    assert.same({ { id = job.id, model = "videos", out = out } }, list)
  end)

  it("removes the .part of a download a close stopped when there is no journal", function()
    local _, out = stopped_download(dir, nil)
    assert.is_false(helper.exists(out .. ".part"))
  end)

  it("learns the schedule from the journal one slice per step, never all of it in one", function()
    local j = dir .. "/j.jsonl"
    helper.write_file(j, "")
    local calls, sizes = 0, {}
    local real = samples.reader
    -- a reader giving one sample per call, done at the sixth
    samples.reader = function(path)
      assert.equal(j, path)
      return { next = function(_, max_bytes)
        calls = calls + 1
        sizes[#sizes + 1] = max_bytes
        return { { model = "videos", duration = 5, resolution = "720p", took = 100, within = 1 } }, calls >= 6
      end }
    end
    local ok, err = pcall(function()
      local fake = Fake.new { status = function() return "processing" end }
      local c = client(fake, { journal = j })
      c:watch("task_x") -- no interval: the learned schedule, which starts reading
      c:step(0)
      local kind = require("starvideos.schedule").kind_of("videos", 5, "720p")
      assert.is_true(calls <= 2, calls .. " slices in one step")
      for _ = 1, 10 do c:step(0) end
      assert.equal(6, calls, "the reader was not read to its end, or past it")
      for _, n in ipairs(sizes) do assert.equal(65536, n) end
      local schedule = require("starvideos.schedule").of(c.key, c.cfg)
      assert.is_truthy(schedule:estimate(kind), "nothing learned from the journal's samples")
      c:close()
    end)
    samples.reader = real
    assert(ok, err)
  end)

  it("a download whose commit finds the task claimed meanwhile (its lease file gone) leaves the .part, records "
    .. "nothing, and ends 'taken' once the holder's file is recorded", function()
    local j, out = dir .. "/tasks.jsonl", dir .. "/t.mp4"
    local fake = Fake.new { hold_downloads = true }
    local taken = {}
    local c = client(fake, { journal = j, lease = 1,
      on_event = function(ev) if ev.type == "taken" then taken[#taken + 1] = ev end end })
    local job = assert(c:start(PARAMS, { out = out, interval = 0.01 }))
    step_until(c, function() return fake.held[1] ~= nil end) -- its video's bytes coming
    for name in io.popen("ls " .. helper.shell_quote(j .. ".owners")):lines() do os.remove(j .. ".owners/" .. name) end
    journal.append(j, { event = "claim", id = job.id, owner = "keeper-1", fence = 2 }, true) -- a keeper took it
    fake:release()
    step_until(c, function() return job.state == "taken" end)
    assert.truthy(helper.file_size(out .. ".part"), "the .part left to the holder")
    assert.is_nil(helper.file_size(out))
    assert.equal("keeper-1", taken[1].by)
    assert.is_false(job.done)
    journal.append(j, { event = "downloaded", id = job.id, path = out, bytes = 5, sha256 = "ab" }, true)
    step_until(c, function() return job.done end)
    assert.same({ "taken", nil, out, "ab" }, { job.state, job.err, job.path, job.sha256 })
    assert.equal("created claim downloaded", events(j):gsub("^pending ", ""):gsub(" status", ""))
    c:close()
  end)

  it("maps task ids to file names that differ when the ids differ", function()
    local names = {}
    for _, id in ipairs { "clip/1", "clip:1", "clip_1", "é1", "ö1" } do
      local name = require("starvideos.names").file_name(id)
      assert.is_nil(names[name], id .. " and " .. tostring(names[name]) .. " share " .. name)
      assert.is_nil(name:find("/", 1, true))
      names[name] = id
    end
  end)

  it("without a loop (as inside nginx) writes on the caller's thread, and decides a pending record again when"
    .. " another process wrote between its reading and its write", function()
    local j = dir .. "/inline.jsonl"
    local l = Ledger.new(j, { create_limit = { count = 5, per = 60 } })
    local follow, other = journal.follow, true
    finally(function() journal.follow = follow; l:close() end)
    journal.follow = function(...) -- another process appends once, while this one decides
      local st, err = follow(...)
      if other then
        other = false
        local f = assert(io.open(j, "a"))
        f:write('{"event":"note"}\n')
        f:close()
      end
      return st, err
    end
    assert.is_false(l:before_create(PARAMS, "l1"))
    assert.equal("note", events(j))
    assert.is_true(l:before_create(PARAMS, "l1"))
    assert.equal("note pending", events(j))
    assert.is_true(l:created({ id = "t1" }, PARAMS, "l1"))
    assert.equal("note pending created", events(j))
  end)

  it("refuses a create with io, nothing sent, when no lease can be held (beside the journal nor in TMPDIR)", function()
    local j, blocked = dir .. "/j.jsonl", dir .. "/tmpdir"
    helper.write_file(j .. ".owners", "") -- (files where the leases' folders would be)
    helper.write_file(blocked, "")
    helper.write_file(dir .. "/child.lua", [[
      package.path = arg[2] .. "/?.lua;" .. package.path
      local fake = require("spec.support.fake_transport").new {}
      local c = require("starvideos").new { api_key = "k", base_url = "http://fake", transport = fake,
        journal = arg[1] }
      local task, err = c:create { model = "videos", prompt = "a cat", duration = 5 }
      io.write(tostring(task), "|", err.kind, "|", err.message, "|", #fake.sent)]])
    local out, ok = helper.capture(helper.CHILD_ENV .. "TMPDIR=" .. helper.shell_quote(blocked) .. " "
      .. helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(dir .. "/child.lua") .. " "
      .. helper.shell_quote(j) .. " " .. helper.shell_quote(helper.root) .. " 2>&1")
    assert.is_true(ok, out)
    local task, kind, message, sent = out:match("^(.-)|(.-)|(.*)|(%d+)$")
    assert.equal("nil", task, out)
    assert.equal("io", kind)
    assert.matches("cannot open the lease " .. j .. ".owners/", message, 1, true)
    assert.matches("(nothing was sent)", message, 1, true)
    assert.equal("0", sent)
    assert.is_falsy(helper.exists(j) and helper.read_file(j):find("pending", 1, true))
  end)

  it("counts create_limit's creates whole when a slice of its backward read starts at a newline", function()
    local j = dir .. "/j.jsonl"
    local t = os.time()
    for i = 1, 2 do assert(journal.append(j, { event = "pending", ["local"] = "l" .. i, time = t })) end
    local text = helper.read_file(j)
    local slice = Ledger.SLICE
    finally(function() Ledger.SLICE = slice end)
    Ledger.SLICE = #text - text:find("\n", 1, true) + 1 -- the newline before the last line, and that line
    local ok, err = Ledger.new(j, { create_limit = { count = 2, per = 60 } }):before_create(PARAMS, "l3")
    assert.is_nil(ok)
    assert.equal("rate_limited", err.kind)
  end)
end)
