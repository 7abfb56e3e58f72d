-- The journal file itself: what survives a crash mid-write.
local helper = require "spec.helper"
local journal = require "starvideos.journal"

describe("the journal", function()
  local dir, path
  before_each(function()
    dir = helper.tmpdir()
    path = dir .. "/tasks.jsonl"
  end)
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
      local journal = require "starvideos.journal"
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
end)

-- Real processes against the emulator: concurrent writers and SIGKILL.
describe("the journal shared by processes", function()
  local emu
  setup(function() emu = helper.emulator { queued = 600, processing = 600 } end)
  teardown(function() emu:stop(); helper.cleanup() end)

  local cjson = require "cjson.safe"

  local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

  -- the command that runs the creates fixture under this VM, with this run's paths
  local function child_cmd(jpath, count, length)
    return "env LUA_PATH=" .. q(helper.root .. "/lua/?.lua;" .. helper.root .. "/lua/?/init.lua;;")
      .. " LUA_CPATH=" .. q(helper.cpath .. ";;") .. " " .. helper.lua .. " "
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

  it("keeps every record whole when 4 processes each make 500 creates with 9000-character prompts", function()
    emu:reset()
    local dir = helper.tmpdir()
    local jpath = dir .. "/shared.jsonl"
    local cmds = {}
    for i = 1, 4 do cmds[i] = child_cmd(jpath, 500, 9000) .. " > " .. q(dir .. "/ids" .. i) .. " 2>&1 &" end
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
    assert.equal(2000, printed)
    assert.equal(0, bad, "unparseable journal lines")
    assert.equal(4000, lines) -- a pending and a created record per create, nothing else
    assert.equal(0, open)
    assert.equal(2000, #emu:tasks())
  end)

  it("holds every task the server created, as created or pending, across 50 SIGKILLs at random points", function()
    emu:reset()
    local dir = helper.tmpdir()
    local jpath = dir .. "/killed.jsonl"
    local before = {}
    for _, t in ipairs(emu:tasks()) do before[t.id] = true end
    math.randomseed(os.time())
    for _ = 1, 50 do
      -- the child is killed after 50 to 250 ms: starting up, mid-create, mid-journal
      local delay = string.format("%.3f", 0.05 + math.random() * 0.2)
      assert(os.execute("sh -c " .. q(child_cmd(jpath, 0, 200) .. " > /dev/null 2>&1 & pid=$!; sleep " .. delay
        .. "; kill -9 $pid; wait $pid 2>/dev/null; exit 0") .. " 2>/dev/null"))
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
