-- client:generate_all (docs/batch.md): a list of params run as jobs keyed by
-- their files, in the key's budget, creates and polls taking turns; a rerun
-- with the journal pays for nothing twice.  Against the emulator.
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"

local SAMPLE = require("starvideos.emulator.files").video(5)

local function prompts(n)
  local list = {}
  for i = 1, n do list[i] = { model = "videos", prompt = "batch " .. i, duration = 5 } end
  return list
end

describe("client:generate_all", function()
  local emu, dir
  shared_emulator({ queued = 0.2, processing = 0.2 }, function(e) emu = e end)
  before_each(function() dir = helper.tmpdir() end)

  local function client(journal, rps)
    return starvideos.new { api_key = emu.key, base_url = emu.url, journal = journal ~= false and dir .. "/j.jsonl"
      or nil, requests_per_second = rps or 10, min_interval = 0 }
  end

  it("makes every file at its name, in order, and files arrive while creates still go out", function()
    local n, batches = 16, {}
    -- (5 a second, a burst of 5: the 16 creates take 2 s and more, a task 0.4 s, on a loaded machine too)
    local results = client(nil, 5):generate_all(prompts(n), { out = dir .. "/%04d.mp4", interval = 0.1,
      on_progress = function(ev) if ev.type == "batch" then batches[#batches + 1] = ev end end })
    assert.equal(n, #results)
    local tasks = emu:tasks()
    for i, r in ipairs(results) do
      assert.is_nil(r.err)
      assert.equal(string.format("%s/%04d.mp4", dir, i), r.path)
      assert.equal(SAMPLE, helper.read_video(r.path))
      assert.equal("completed", r.task.status)
      for _, t in ipairs(tasks) do -- the entry's own prompt made its task
        if t.id == r.task.id then assert.equal("batch " .. i, t.params.prompt) end
      end
    end
    assert.equal(n, emu:creates())
    local last = batches[#batches]
    assert.same({ type = "batch", created = n, done = n, failed = 0, cancelled = 0, refused = 0, total = n }, last)
    -- the first file was done before the last create was answered
    local first_done, all_created
    for k, ev in ipairs(batches) do
      if ev.done > 0 and not first_done then first_done = k end
      if ev.created == n and not all_created then all_created = k end
    end
    assert.truthy(first_done < all_created, "every create went before the first file")
  end)

  it("run again with the journal, sends no request at all and returns the same tasks", function()
    local first = client():generate_all(prompts(5), { out = dir .. "/v%d.mp4", interval = 0.1 })
    local requests = #emu:requests()
    local again = client():generate_all(prompts(5), { out = dir .. "/v%d.mp4", interval = 0.1 })
    assert.equal(requests, #emu:requests())
    for i = 1, 5 do
      assert.equal(first[i].task.id, again[i].task.id)
      assert.equal(dir .. "/v" .. i .. ".mp4", again[i].path)
    end
  end)

  it("after a stop with tasks created and not downloaded, follows them: nothing is created twice", function()
    emu:config { queued = 1 }
    local c = client(nil, 1) -- (a create a second: the 4th is not sent when the 3rd answer comes, under load too)
    local stop = function(ev) if ev.type == "batch" and ev.created == 3 then c:close() end end
    local cut = c:generate_all(prompts(6), { out = dir .. "/%d.mp4", interval = 0.1, on_progress = stop })
    assert.equal("io", cut[6].err.kind) -- not started: cancelled with its client
    -- the third answer closed it; a slow machine may have sent the 4th and 5th creates by then (paid, and
    -- journaled: the run below follows them too)
    local made = emu:creates()
    assert.is_true(made >= 3 and made <= 5, made .. " creates before the stop")
    emu:config { queued = 0.2 }
    local results = client():generate_all(prompts(6), { out = dir .. "/%d.mp4", interval = 0.1 })
    for i = 1, 6 do assert.equal(SAMPLE, helper.read_video(results[i].path)) end
    assert.equal(6, emu:creates())
  end)

  it("out may be a function of (i, params); without a journal each run creates", function()
    local c = client(false)
    local results = c:generate_all(prompts(2), { interval = 0.1,
      out = function(i, params) return dir .. "/" .. params.prompt:gsub(" ", "-") .. "-" .. i .. ".mp4" end })
    assert.equal(dir .. "/batch-1-1.mp4", results[1].path)
    assert.equal(dir .. "/batch-2-2.mp4", results[2].path)
    assert.equal(SAMPLE, helper.read_video(results[2].path))
    assert.equal(2, emu:creates())
  end)

  it("an invalid entry fails alone, before anything is sent, and counts as failed", function()
    local list, batches = prompts(3), {}
    list[2] = { model = "videos", prompt = "x", duration = 99 }
    local results = client():generate_all(list, { out = dir .. "/%d.mp4", interval = 0.1,
      on_progress = function(ev) if ev.type == "batch" then batches[#batches + 1] = ev end end })
    assert.equal("invalid_request", results[2].err.kind)
    assert.equal("duration", results[2].err.field)
    assert.truthy(results[1].path and results[3].path)
    assert.equal(2, emu:creates())
    assert.same({ type = "batch", created = 0, done = 0, failed = 1, cancelled = 0, refused = 0, total = 3 },
      batches[1])
    assert.same({ type = "batch", created = 2, done = 2, failed = 1, cancelled = 0, refused = 0, total = 3 },
      batches[#batches])
  end)

  it("refuses an out without exactly one %d, two entries of one file, and an entry that is not a table", function()
    local c = client()
    for _, bad in ipairs { dir .. "/x.mp4", dir .. "/%d-%d.mp4", dir .. "/%s.mp4", dir .. "/100%.mp4" } do
      local ok, err = pcall(c.generate_all, c, prompts(2), { out = bad })
      assert.is_false(ok)
      assert.matches("bad option 'out' to 'generate_all' %(a file name pattern with exactly one %%d", err)
    end
    assert.truthy(pcall(c.generate_all, c, {}, { out = dir .. "/100%%-%03d.mp4" }))
    local ok, err = pcall(c.generate_all, c, prompts(2), { out = function() return dir .. "/same.mp4" end })
    assert.is_false(ok)
    assert.matches("entries 1 and 2 both write .*/same%.mp4", err)
    local function two(i) return dir .. (i == 1 and "/." or "//") .. "/s.mp4" end
    ok, err = pcall(c.generate_all, c, prompts(2), { out = two })
    assert.is_false(ok) -- one file under two spellings (docs/batch.md "Keys")
    assert.matches("entries 1 and 2 both write .*//s%.mp4", err)
    ok, err = pcall(c.generate_all, c, { prompts(1)[1], "a cat" }, { out = dir .. "/%d.mp4" })
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'generate_all' %(list of params tables expected, got a string at %[2%]%)", err)
    assert.equal(0, emu:creates())
  end)
end)
