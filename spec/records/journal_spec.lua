-- The journal file itself: what survives a crash mid-write.
local helper = require "spec.helper"
local journal = require "starvideos.records.journal"
local compact = require "starvideos.records.compact"
local samples = require "starvideos.records.samples"

-- A fresh folder (removed by helper.cleanup) and a journal's path in it.
local function fresh()
  local dir = helper.tmpdir()
  return dir, dir .. "/tasks.jsonl"
end

describe("the journal", function()
  local dir, path
  before_each(function() dir, path = fresh() end)
  after_each(function() helper.cleanup() end)

  it("starts a new line after a torn last line, so the next task is not lost", function()
    assert(journal.append(path, { event = "created", id = "a" }))
    local f = assert(io.open(path, "a"))
    f:write('{"event":"created","id":"b') -- a crash mid-write
    f:close()
    assert(journal.append(path, { event = "created", id = "c" }))
    local list, bad = journal.read(path)
    assert.equal(1, bad)
    assert.same({ "a", "c" }, { list[1].id, list[2].id })
  end)

  it("folds statuses and downloads into one entry per task, in creation order", function()
    assert(journal.append(path, { event = "created", id = "a", model = "videos" }))
    assert(journal.append(path, { event = "created", id = "b", model = "videos" }))
    assert(journal.append(path, { event = "status", id = "a", status = "completed" }))
    assert(journal.append(path, { event = "downloaded", id = "a", path = "/x/a.mp4" }))
    assert(journal.append(path, { event = "status", id = "b", status = "failed" }))
    local list = journal.read(path)
    assert.equal(2, #list)
    assert.same({ "completed", "/x/a.mp4" }, { list[1].status, list[1].path })
    assert.same({}, journal.unfinished(list))
  end)

  it("says why it cannot write, naming the file", function()
    local ok, err = journal.append(dir .. "/missing/dir/tasks.jsonl", { event = "created", id = "a" })
    assert.is_nil(ok)
    assert.matches("cannot open the journal", err)
  end)

  it("refuses a FIFO at the journal's path at once, for create, read and step (opening one waits)", function()
    local fifo = dir .. "/fifo.jsonl"
    assert(os.execute("mkfifo '" .. fifo .. "'"))
    -- in a child under timeout: a wait would hang this process, not fail it
    local script = ([[
      local journal = require "starvideos.records.journal"
      print(select(2, journal.read(%q)))
      print(select(2, journal.append(%q, { event = "created", id = "a" })))
      local starvideos = require "starvideos"
      local client = starvideos.new { api_key = "k", base_url = "http://127.0.0.1:1", journal = %q }
      local task, err = client:create { model = "videos", prompt = "a cat", duration = 5 }
      client:step(0)
      io.write(tostring(task), "|", err.kind, "|", err.message)
    ]]):format(fifo, fifo, fifo)
    local p = assert(io.popen("timeout 20 " .. helper.lua .. " -e '" .. script:gsub("'", "'\\''") .. "' 2>&1"))
    local out = p:read("*a")
    p:close()
    local read_err, append_err, created = out:match("^([^\n]*)\n([^\n]*)\n(.*)$")
    assert.equal("cannot read the journal: " .. fifo .. " is not a regular file", read_err, out)
    assert.equal("cannot use the journal " .. fifo .. ": it is not a regular file", append_err)
    assert.equal("nil|io|", created:sub(1, 7), out)
    assert.truthy(created:find(fifo .. ": it is not a regular file", 1, true), out)
  end)

  it("says why it cannot read a journal that is not there", function()
    local list, err = journal.read(dir .. "/none.jsonl")
    assert.is_nil(list)
    assert.matches("cannot read the journal", err)
  end)

  it("followed from none yet to its first lines, keeps the records taken before they were written (a writer's "
    .. "queue), each once", function()
    local function pending(lid)
      return (assert(journal.line { event = "pending", ["local"] = lid, model = "videos" }))
    end
    local st = assert(journal.follow(path)) -- (none yet: read as empty)
    journal.take(st, pending("a"):sub(1, -2))
    journal.take(st, pending("b"):sub(1, -2)) -- a and b decided; a written, b still queued
    helper.write_file(path, pending("a"))
    st = assert(journal.follow(path, st))
    assert.same({ "a", "b" }, { st.pending[1]["local"], st.pending[2]["local"], st.pending[3] })
    local f = assert(io.open(path, "a"))
    f:write(pending("b"))
    f:close()
    st = assert(journal.follow(path, st))
    assert.equal(2, #st.pending)
    helper.write_file(path, pending("c")) -- another file (a compaction's): read anew
    local anew = assert(journal.follow(path, st))
    assert.same({ "c" }, { anew.pending[1]["local"], anew.pending[2] })
  end)
end)

-- Real processes against the emulator: concurrent writers and SIGKILL.
describe("the journal shared by processes #hosts", function()
  local emu
  setup(function() emu = helper.emulator { queued = 600, processing = 600 } end)
  teardown(function() emu:stop(); helper.cleanup() end)

  local cjson = require "cjson.safe"

  local q = helper.shell_quote

  -- the command that runs the creates fixture under this VM, with this run's paths
  local function child_cmd(jpath, count, length)
    return helper.CHILD_ENV .. helper.lua .. " "
      .. q(helper.root .. "/spec/fixtures/creates.lua")
      .. " " .. q(emu.url) .. " " .. q(emu.key) .. " " .. q(jpath) .. " " .. count .. " " .. length
  end

  local function read_journal(jpath)
    local created, pending, settled, lines, bad = {}, {}, {}, 0, 0
    for line in io.lines(jpath) do
      lines = lines + 1
      local rec = cjson.decode(line)
      if type(rec) ~= "table" then
        bad = bad + 1
      elseif rec.event == "created" then
        created[rec.id] = true
        settled[rec["local"]] = true
      elseif rec.event == "abandoned" then
        settled[rec["local"]] = true
      elseif rec.event == "pending" then
        pending[#pending + 1] = rec["local"]
      end
    end
    local open = 0
    for _, l in ipairs(pending) do if not settled[l] then open = open + 1 end end
    return created, open, lines, bad
  end

  it("keeps every record whole when 4 processes each make 100 creates with 9000-character prompts", function()
    -- whole records are the C core's append (O_APPEND, one write, fsync), the
    -- same under every VM: 400 fsync'd creates run once, under lua5.4
    if helper.vm ~= "lua5.4" then pending("the writer's append, the same under any VM: run under lua5.4") return end
    emu:reset()
    local dir = helper.tmpdir()
    local jpath = dir .. "/shared.jsonl"
    local cmds = {}
    for i = 1, 4 do cmds[i] = child_cmd(jpath, 100, 9000) .. " > " .. q(dir .. "/ids" .. i) .. " 2>&1 &" end
    assert(os.execute("sh -c " .. q(table.concat(cmds, " ") .. " wait")))
    local printed = 0
    local created, open, lines, bad = read_journal(jpath)
    for i = 1, 4 do
      for id in io.lines(dir .. "/ids" .. i) do
        assert.matches("^video_", id) -- a child that failed prints its error here instead
        assert.is_true(created[id] == true, "task " .. id .. " is missing from the journal")
        printed = printed + 1
      end
    end
    assert.equal(400, printed)
    assert.equal(0, bad, "unparseable journal lines")
    assert.equal(800, lines) -- a pending and a created record per create, nothing else
    assert.equal(0, open)
    assert.equal(400, #emu:tasks())
  end)

  it("holds every task the server created, as created or pending, across 50 SIGKILLs at random points", function()
    emu:reset()
    local dir = helper.tmpdir()
    local jpath = dir .. "/killed.jsonl"
    local before = {}
    for _, t in ipairs(emu:tasks()) do before[t.id] = true end
    helper.seed("journal: kill points")
    local up = dir .. "/up"
    for i = 1, 50 do
      -- the child is killed 0 to 200 ms after its client is made: mid-create, mid-journal; every fifth 0 to
      -- 200 ms after it started (starting up).  Counted from its "up", a loaded machine's slow start included.
      local delay = string.format("%.3f", math.random() * 0.2)
      local wait_up = i % 5 == 0 and "" or "n=0; while [ ! -s " .. q(up) .. " ] && [ $n -lt 1000 ]; do sleep 0.01;"
        .. " n=$((n + 1)); done; "
      os.remove(up)
      assert(os.execute("sh -c " .. q(child_cmd(jpath, 0, 200) .. " > /dev/null 2>" .. q(up) .. " & pid=$!; "
        .. wait_up .. "sleep " .. delay .. "; kill -9 $pid; wait $pid 2>/dev/null; exit 0") .. " 2>/dev/null"))
    end
    local created, open = read_journal(jpath)
    local missing, made = 0, 0
    for _, t in ipairs(emu:tasks()) do
      if not before[t.id] then
        made = made + 1
        if not created[t.id] then missing = missing + 1 end
      end
    end
    assert.is_true(made > 0, "no child got as far as a create")
    -- a task the server made but whose answer the child never read is a pending record
    assert.is_true(missing <= open, missing .. " of " .. made .. " server tasks not in the journal, only "
      .. open .. " pending")
  end)
end)

-- The sets resume and pending work from: unfinished task ids, open pending locals.
local function sets(path)
  local list, bad, pending = assert(journal.read(path))
  local unfinished, open, by_id = {}, {}, {}
  for _, t in ipairs(journal.unfinished(list)) do unfinished[#unfinished + 1] = t.id end
  for _, p in ipairs(pending) do open[#open + 1] = p["local"] end
  for _, t in ipairs(list) do by_id[t.id] = t end
  table.sort(unfinished)
  table.sort(open)
  return unfinished, open, by_id, bad
end

-- Every sample a reader gives, reading max_bytes per call: the list, the calls.
local function all_samples(path, max_bytes)
  local reader, out, calls = samples.reader(path), {}, 0
  repeat
    local list, done = reader:next(max_bytes)
    calls = calls + 1
    for _, s in ipairs(list) do out[#out + 1] = s end
  until done
  return out, calls
end

describe("journal compaction and the samples reader", function()
  local dir, path
  before_each(function() dir, path = fresh() end)
  after_each(function() helper.cleanup() end)

  local PROMPT = string.rep("a long prompt ", 300)

  -- A journal with one of everything; returns the ids of the settled tasks.
  local function mixed()
    local function add(rec) assert(journal.append(path, rec)) end
    add { event = "note", text = "a line of another tool" }
    for i = 1, 12 do
      local id, lid = "t" .. i, "L" .. i
      add { event = "pending", ["local"] = lid, model = "videos", prompt_hash = "h" }
      add { event = "created", ["local"] = lid, id = id, model = "videos", duration = 5, resolution = "720p",
        prompt = PROMPT }
      add { event = "status", id = id, status = "queued" }
      if i % 4 == 1 then
        add { event = "status", id = id, status = "completed", took = 10 * i, within = 1.5 }
        add { event = "downloaded", id = id, path = dir .. "/" .. id .. ".mp4" }
      elseif i % 4 == 2 then
        add { event = "status", id = id, status = "failed" }
      elseif i % 4 == 3 then -- completed, its download still to do
        add { event = "status", id = id, status = "completed", took = 10 * i, within = 1 }
      end
    end
    add { event = "pending", ["local"] = "open-1", model = "videos", prompt_hash = "h" } -- never answered
    add { event = "pending", ["local"] = "gone-1", model = "videos" }
    add { event = "abandoned", ["local"] = "gone-1" }
    local f = assert(io.open(path, "a"))
    f:write('{"event":"created","id":"torn\n') -- a crash mid-write
    f:close()
  end

  it("keeps what spend_limit counts: the price of a create made or pending; a create abandoned released", function()
    local Spend = require "starvideos.spend"
    local now = os.time()
    local day = Spend.window("day", now, 0)
    local function spec(id) return ("%s:%d@%d@%d"):format(id, id == "life" and 0 or day, id == "life" and 0
      or day + 86400, 5000000) end
    local function add(rec) assert(journal.append(path, rec)) end
    for i, how in ipairs { "created", "abandoned", "open", "created" } do
      local lid = "S" .. i
      add { event = "pending", ["local"] = lid, model = "videos", time = i == 4 and 1000 or now,
        price = 400000, spend = spec(i == 4 and "life" or "day") }
      if how == "created" then add { event = "created", ["local"] = lid, id = "ts" .. i, model = "videos" } end
      if how == "abandoned" then add { event = "abandoned", ["local"] = lid } end
    end
    local function totals()
      local kv = journal.spent(assert(journal.follow(path)))
      return { kv.get("sp:day:" .. day), kv.get("held:day:" .. day), kv.get("sp:life:0") }
    end
    assert.same({ 800000, 400000, 400000 }, totals(), "made and open counted, abandoned released")
    assert(compact.compact(path))
    assert.same({ 800000, 400000, 400000 }, totals(), "the same once compacted, the lifetime's create of 1970 too")
  end)

  it("keeps what resume, pending and the schedule need, drops settled tasks' prompts and torn lines", function()
    mixed()
    local unfinished, open, by_id = sets(path)
    local kept = all_samples(path, 65536)
    local before = helper.file_size(path)
    local stats = assert(compact.compact(path))
    local unfinished2, open2, by_id2, bad2 = sets(path)
    assert.same(unfinished, unfinished2)
    assert.same({ "open-1" }, open2)
    assert.same(open, open2)
    assert.equal(0, bad2)
    assert.same(kept, all_samples(path, 65536))
    local tooks = {}
    for i, s in ipairs(kept) do tooks[i] = s.took end
    assert.same({ 110, 90, 70, 50, 30, 10 }, tooks) -- completed: settled or not (t3, t7, t11 wait for a download)
    -- a settled task: its took and its file are still there, its prompt is not
    assert.same({ "completed", 50, 1.5, dir .. "/t5.mp4", "720p" }, { by_id2.t5.status, by_id2.t5.took,
      by_id2.t5.within, by_id2.t5.path, by_id2.t5.resolution })
    assert.equal(by_id.t5.created, by_id2.t5.created)
    assert.is_nil(by_id2.t5.prompt)
    assert.is_nil(by_id2.t2) -- failed, nothing to learn: gone
    assert.equal(PROMPT, by_id2.t3.prompt) -- unsettled: every record as it was
    local text = helper.read_file(path)
    assert.truthy(text:find('"text":"a line of another tool"', 1, true))
    for line in text:gmatch("[^\n]*gone%-1[^\n]*") do -- an abandoned create: only its time, as create_limit counts it
      local rec = helper.json(line)
      assert.same({ "pending", "gone-1", true }, { rec.event, rec["local"], rec.settled })
      assert.is_nil(rec.model)
    end
    assert.equal(before, stats.before_bytes)
    assert.equal(#text, stats.after_bytes)
    assert.is_true(stats.after_bytes < before * 0.6)
    assert.same({ 53, 3, 6, 1, 13 }, { stats.before_records, stats.samples, stats.unsettled, stats.bad,
      stats.counted })
    -- compacting again changes nothing that matters
    assert(compact.compact(path))
    local unfinished3, open3 = sets(path)
    assert.same({ unfinished, open }, { unfinished3, open3 })
    assert.same(kept, all_samples(path, 65536))
  end)

  it("keeps what create_limit and tenant_limit count: each create of the last 366 days, settled too, as its time "
    .. "and tenant (no pending create nor task listed for it)", function()
    local t = os.time()
    local function add(rec) assert(journal.append(path, rec)) end
    for i = 4, 1, -1 do -- one create older than any limit's window, then three of the last hour (two of alice's)
      local lid, when = "L" .. i, i < 4 and t - 10 * i or t - 367 * 86400
      add { event = "pending", ["local"] = lid, model = "videos", time = when, tenant = i < 3 and "alice" or nil,
        prompt = PROMPT }
      add { event = "created", ["local"] = lid, id = "t" .. i, model = "videos", prompt = PROMPT, time = when }
      add { event = "status", id = "t" .. i, status = i == 1 and "completed" or "failed", took = i == 1 and 9 or nil }
      if i == 1 then add { event = "downloaded", id = "t1", path = dir .. "/t1.mp4" } end
    end
    local Ledger = require "starvideos.records.ledger"
    local function refused(limit, tenant) -- (a create allowed would write its pending record: asked only when full)
      local l = Ledger.new(path, { [tenant and "tenant_limit" or "create_limit"] = limit })
      local ok, err = l:before_create({ model = "videos", prompt = "x", duration = 5 }, "ask", nil, nil, tenant)
      l:close()
      return ok == nil and err.kind == "rate_limited" and err.field
    end
    for round = 1, 2 do
      assert.equal("create_limit", refused({ count = 3, per = 3600 }), "round " .. round)
      assert.equal("tenant_limit", refused({ count = 2, per = 3600 }, "alice"), "round " .. round)
      local st = journal.follow(path)
      assert.same({}, st.open, "no create left pending")
      local listed = {}
      for _, e in ipairs(require("starvideos.lists").tasks(st)) do listed[#listed + 1] = e.id or e["local"] end
      assert.same(round == 1 and { "t4", "t3", "t2", "t1" } or { "t1" }, listed)
      assert(compact.compact(path))
    end
    local text = helper.read_file(path)
    assert.falsy(text:find("a long prompt", 1, true))
    assert.falsy(text:find('"L4"', 1, true), "a create older than any window is not kept")
    assert(compact.compact(path)) -- and once more: the same counts
    assert.equal("tenant_limit", refused({ count = 2, per = 3600 }, "alice"))
  end)

  it("keeps the newest SAMPLE_KEEP samples of each kind", function()
    local keep = require("starvideos.config").DEFAULTS.samples
    finally(function() require("starvideos.config").DEFAULTS.samples = keep end)
    require("starvideos.config").DEFAULTS.samples = 3
    for i = 1, 10 do
      for _, model in ipairs { "videos", "videos_fast" } do
        local id = model .. i
        assert(journal.append(path, { event = "created", id = id, model = model, duration = 5 }))
        assert(journal.append(path, { event = "status", id = id, status = "completed", took = i }))
        assert(journal.append(path, { event = "downloaded", id = id, path = "/x/" .. id }))
      end
    end
    local function tooks()
      local t = {}
      for _, s in ipairs(all_samples(path, 100)) do t[#t + 1] = string.format("%s:%g", s.model, s.took) end
      return table.concat(t, " ")
    end
    local newest = "videos_fast:10 videos:10 videos_fast:9 videos:9 videos_fast:8 videos:8"
    assert.equal(newest, tooks()) -- the reader's own cap
    local stats = assert(compact.compact(path))
    assert.equal(6, stats.samples)
    assert.equal(newest, tooks())
    local _, _, by_id = sets(path)
    assert.is_nil(by_id.videos7)
    assert.equal("/x/videos8", by_id.videos8.path)
  end)

  it("compacts on open only past the limit, and not again until the file doubles", function()
    mixed()
    local size = helper.file_size(path)
    assert.is_false(compact.maybe_compact(path, size))
    assert.equal(size, helper.file_size(path))
    local stats = assert(compact.maybe_compact(path, size - 1))
    assert.equal(size, stats.before_bytes)
    local small = helper.file_size(path)
    assert.is_true(small < size * 0.6)
    assert.is_false(compact.maybe_compact(path, 100)) -- nothing to gain yet
    -- more unsettled tasks: past twice what compaction left, it compacts again
    for i = 1, 10 do
      assert(journal.append(path, { event = "created", id = "n" .. i, model = "videos", prompt = PROMPT }))
    end
    assert.truthy(compact.maybe_compact(path, 100))
    assert.is_false(compact.maybe_compact(dir .. "/none.jsonl", 0))
  end)

  it("refuses a missing file, a folder and a symbolic link, naming the journal", function()
    local ok, err = compact.compact(dir .. "/none.jsonl")
    assert.is_nil(ok)
    assert.equal("cannot compact the journal " .. dir .. "/none.jsonl: no such file", err)
    ok, err = compact.compact(dir)
    assert.is_nil(ok)
    assert.equal("cannot compact the journal " .. dir .. ": it is not a regular file", err)
    mixed()
    assert(os.execute("ln -s tasks.jsonl '" .. dir .. "/link.jsonl'"))
    ok, err = compact.compact(dir .. "/link.jsonl")
    assert.is_nil(ok)
    assert.matches("it is a symbolic link", err)
  end)

  it("`starvideos compact --journal PATH` prints the sizes and record counts before and after", function()
    mixed()
    local before = helper.file_size(path)
    local q = helper.shell_quote
    local function cli(args)
      return helper.capture(helper.CHILD_ENV .. helper.lua .. " " .. q(helper.root .. "/bin/starvideos")
        .. " " .. args .. " 2>&1")
    end
    local out, ok = cli("compact --journal " .. q(path))
    assert.is_true(ok, out)
    local after = helper.file_size(path)
    assert.equal(string.format("%s: %d bytes, 53 records before; %d bytes, 34 records after\n"
      .. "kept: 6 unsettled tasks whole, 3 settled tasks as schedule samples, the time of 13 settled creates "
      .. "(create_limit, tenant_limit); 1 unreadable line dropped\n", path, before, after), out)
    local doc
    out, ok = cli("compact --json --journal " .. q(path))
    assert.is_true(ok, out)
    doc = helper.json(out)
    assert.same({ bytes = after, records = 34 }, doc.before)
    assert.same({ 3, 6, 0, 13 }, { doc.samples, doc.unsettled, doc.unreadable, doc.counted })
    local code
    out, ok, code = cli("compact --journal " .. q(dir .. "/none.jsonl"))
    assert.is_nil(ok)
    assert.equal(2, code)
    assert.matches("--journal: cannot read", out)
    out, ok, code = cli("compact")
    assert.is_nil(ok)
    assert.equal(2, code, out)
    assert.matches("--journal PATH is required", out)
  end)

  it("the samples reader reads from the end backwards, n bytes a call, newest first, whatever n", function()
    for i = 1, 40 do
      local id = "t" .. i
      assert(journal.append(path, { event = "created", id = id, model = "videos", duration = 5 + i % 2,
        resolution = "720p", prompt = string.rep("p", i * 37) }))
      if i % 5 ~= 0 then
        assert(journal.append(path, { event = "status", id = id, status = "completed", took = i, within = 0.5 }))
      end
    end
    local expect = {}
    for i = 40, 1, -1 do
      if i % 5 ~= 0 then
        expect[#expect + 1] = { model = "videos", duration = 5 + i % 2, resolution = "720p", took = i, within = 0.5 }
      end
    end
    local size = helper.file_size(path)
    for _, n in ipairs { 1, 7, 100, 999, 4096, size, size * 2 } do
      local got, calls = all_samples(path, n)
      assert.same(expect, got)
      assert.equal(math.ceil(size / n), calls, "slice " .. n) -- n bytes a call, to the start
    end
  end)

  it("the samples reader gives nothing, done, for a journal that is missing or a FIFO", function()
    local list, done = samples.reader(dir .. "/none.jsonl"):next(65536)
    assert.same({ {}, true }, { list, done })
    assert(os.execute("mkfifo '" .. dir .. "/fifo'"))
    list, done = samples.reader(dir .. "/fifo"):next(65536)
    assert.same({ {}, true }, { list, done })
  end)
end)

-- Real processes: 4 appending while a fifth compacts again and again.
describe("journal compaction beside concurrent appenders", function()
  after_each(function() helper.cleanup() end)

  it("loses no record: every pending, unfinished and settled task of 4 writers is there", function()
    local dir = helper.tmpdir()
    local path = dir .. "/shared.jsonl"
    local q = helper.shell_quote
    assert(journal.append(path, { event = "note", text = "kept" }))
    local function child(args)
      return helper.CHILD_ENV .. helper.lua .. " "
        .. q(helper.root .. "/spec/fixtures/journal_writer.lua") .. " " .. args
    end
    local COUNT, MIN = 150, 10
    local stop, enough = dir .. "/stop", dir .. "/enough"
    local cmd = child("compact " .. q(path) .. " " .. q(stop) .. " " .. q(enough) .. " " .. MIN) .. " > "
      .. q(dir .. "/compactions") .. " 2>&1 & c=$!; "
    for p = 1, 4 do
      cmd = cmd .. child("append " .. q(path) .. " " .. p .. " " .. COUNT .. " " .. q(enough)) .. " > "
        .. q(dir .. "/w" .. p) .. " 2>&1 & w" .. p .. "=$!; "
    end
    cmd = cmd .. "wait $w1 $w2 $w3 $w4; touch " .. q(stop) .. "; wait $c"
    assert(helper.execute("sh -c " .. q(cmd)))
    local counts = {}
    for p = 1, 4 do
      local text = helper.read_file(dir .. "/w" .. p)
      counts[p] = tonumber(text:match("^done (%d+)\n$"))
      assert.is_truthy(counts[p] and counts[p] >= COUNT, text)
    end
    local compactions = tonumber(helper.read_file(dir .. "/compactions"))
    assert.is_true(compactions and compactions >= MIN, "compactions: " .. helper.read_file(dir .. "/compactions"))
    local unfinished, open, by_id, bad = sets(path)
    assert.equal(0, bad)
    local want_open, want_unfinished, settled = {}, {}, 0
    for p = 1, 4 do
      for i = 1, counts[p] do
        want_open[#want_open + 1] = p .. "-" .. i
        if i % 3 == 0 then want_unfinished[#want_unfinished + 1] = "u-" .. p .. "-" .. i end
        local s = by_id["s-" .. p .. "-" .. i]
        assert.is_truthy(s, "settled task s-" .. p .. "-" .. i .. " lost")
        assert.same({ i, "/videos/s-" .. p .. "-" .. i .. ".mp4" }, { s.took, s.path })
        settled = settled + 1
      end
    end
    table.sort(want_open)
    table.sort(want_unfinished)
    assert.same(want_unfinished, unfinished)
    assert.same(want_open, open)
    assert.equal(math.min(settled, samples.MAX), #all_samples(path, 65536))
    assert.truthy(helper.read_file(path):find('"text":"kept"', 1, true))
  end)
end)
