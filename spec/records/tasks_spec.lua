-- client:tasks: every task of the ledger in view, with its state, file and
-- the prompt's first 80 characters (docs/batch.md#every-task-in-view).
-- Against the emulator, on a journal (the store's case: rocks/redis/spec/hosts/ledger_redis_spec.lua).
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"

local PROMPT = string.rep("é", 100) -- 100 characters, 200 bytes

describe("client:tasks", function()
  local emu, dir
  shared_emulator({ queued = 0.2, processing = 0.2 }, function(e) emu = e end)
  before_each(function() dir = helper.tmpdir() end)

  local function client(journal)
    return starvideos.new { api_key = emu.key, base_url = emu.url, journal = journal or dir .. "/tasks.jsonl",
      retry_backoff = 0.01, min_interval = 0, max_retries = 0 }
  end

  local function by_state(list)
    local t = {}
    for _, e in ipairs(list) do
      assert.is_nil(t[e.state], "one task of each state here: " .. e.state)
      t[e.state] = e
    end
    return t
  end

  it("lists each task and create with its state, file, error and prompt head, oldest first", function()
    local c = client()
    local done = assert(c:generate({ model = "videos", prompt = PROMPT, duration = 5 },
      { out = dir .. "/done.mp4", interval = 0.05 }))
    local completed = assert(c:generate({ model = "videos_fast", prompt = "no file", duration = 5 },
      { interval = 0.05 }))
    emu:config { outcome = "failed" }
    local _, ferr = c:generate({ model = "videos", prompt = "fails", duration = 5 }, { interval = 0.05 })
    assert.equal("task_failed", ferr.kind)
    emu:config { outcome = "completed", queued = 30 }
    local job = assert(c:start({ model = "videos", prompt = "still queued", duration = 5 },
      { out = dir .. "/later.mp4" }))
    assert(helper.wait_until(function() c:step(0.05); return job.id ~= nil end, 10))
    emu:fault { method = "POST", path = "/v1/", drop = true, after = true } -- created, its answer lost
    local _, perr = c:create { model = "videos", prompt = "answer lost", duration = 5 }
    assert.is_true(perr.maybe_created)
    emu:fault { method = "POST", path = "/v1/", status = 400 } -- refused: surely nothing made
    assert.is_nil((c:create { model = "videos", prompt = "refused", duration = 5 }))
    c:close()

    local list = assert(client():tasks())
    assert.equal(6, #list)
    local want = { "downloaded", "completed", "failed", "created", "pending", "abandoned" }
    for i, e in ipairs(list) do
      assert.equal(want[i], e.state)
      assert.is_number(e.created_at)
      if i > 1 then assert.is_true(e.created_at >= list[i - 1].created_at) end
    end
    local s = by_state(list)
    assert.same({ done.id, "completed", dir .. "/done.mp4", dir .. "/done.mp4", helper.file_size(dir .. "/done.mp4"),
      "videos", dir .. "/done.mp4" }, { s.downloaded.id, s.downloaded.status, s.downloaded.out,
      s.downloaded.path, s.downloaded.bytes, s.downloaded.model, s.downloaded.key })
    assert.equal(string.rep("é", 80), s.downloaded.prompt) -- 80 characters, not 80 bytes
    assert.same({ completed.id, "completed", "videos_fast", "no file" },
      { s.completed.id, s.completed.status, s.completed.model, s.completed.prompt })
    assert.is_nil(s.completed.path)
    assert.same({ "failed", "fails" }, { s.failed.status, s.failed.prompt })
    assert.matches("Reference image resolution is too low", s.failed.error, 1, true)
    assert.same({ job.id, "queued", dir .. "/later.mp4" }, { s.created.id, s.created.status, s.created.out })
    for _, st in ipairs { "pending", "abandoned" } do -- no task id: the create's local id
      assert.is_nil(s[st].id)
      assert.is_string(s[st]["local"])
    end
    assert.same({ "answer lost", "refused" }, { s.pending.prompt, s.abandoned.prompt })
    assert.equal(perr.pending, s.pending["local"])
  end)

  it("filters by state, and refuses a state that is not one, naming them", function()
    local c = client()
    assert(c:generate({ model = "videos", prompt = "a", duration = 5 }, { out = dir .. "/a.mp4", interval = 0.05 }))
    assert(c:generate({ model = "videos", prompt = "b", duration = 5 }, { interval = 0.05 }))
    local list = assert(c:tasks { state = "downloaded" })
    assert.equal(1, #list)
    assert.equal(dir .. "/a.mp4", list[1].path)
    assert.same({}, assert(c:tasks { state = "failed" }))
    local ok, err = pcall(c.tasks, c, { state = "done" })
    assert.is_false(ok)
    assert.matches("bad option 'state' to 'tasks' (pending, created, completed, failed, downloaded or abandoned "
      .. 'expected, got "done")', err, 1, true)
    c:close()
  end)

  it("keeps no whole prompt of an unkeyed create: its pending record holds 80 characters", function()
    local c = client()
    emu:fault { method = "POST", path = "/v1/", drop = true, after = true }
    assert.is_nil((c:create { model = "videos", prompt = PROMPT, duration = 5 }))
    c:close()
    local text = helper.read_file(dir .. "/tasks.jsonl")
    assert.is_nil(text:find(PROMPT, 1, true))
    assert.truthy(text:find(string.rep("é", 80), 1, true))
    assert.is_nil(text:find('"body"', 1, true))
  end)

  it("reads a journal another process writes, and none yet as no task", function()
    assert.same({}, assert(client(dir .. "/none.jsonl"):tasks()))
    local c = client()
    assert.same({}, assert(c:tasks { journal = dir .. "/other.jsonl" }))
    assert(client(dir .. "/other.jsonl"):generate({ model = "videos", prompt = "x", duration = 5 },
      { interval = 0.05 }))
    assert.equal(1, #assert(c:tasks { journal = dir .. "/other.jsonl" }))
    c:close()
  end)

  it("needs a journal or a store, and says so", function()
    local c = starvideos.new { api_key = emu.key, base_url = emu.url }
    local list, err = c:tasks()
    assert.is_nil(list)
    assert.equal("invalid_request", err.kind)
    assert.matches("tasks needs a journal or a store", err.message, 1, true)
    c:close()
  end)
end)
