-- step(0) with many tasks waiting and nothing due allocates nothing (a game's
-- frame makes no garbage), and thousands of polls falling due at once go
-- through a bounded queue.  Tasks are real (created on the emulator, watched, polled once).

local helper = require "spec.helper"
local starvideos = require "starvideos"

local jit = rawget(_G, "jit")

-- A client watching n queued tasks (each polled once already); nothing falls
-- due for an hour.
local function waiting(emu, n)
  local client = starvideos.new { api_key = emu.key, base_url = emu.url, requests_per_second = 1e6 }
  local jobs = {}
  for i = 1, n do
    local task = assert(client:create { model = "videos", prompt = "step " .. i, duration = 5 })
    jobs[i] = client:watch(task.id, { interval = 3600 })
  end
  local polled = 0
  for _ = 1, 2000 do
    client:step(0.01)
    polled = 0
    for _, job in ipairs(jobs) do
      if job.task and job.task.status == "queued" and not job.req then polled = polled + 1 end
    end
    if polled == n then break end
  end
  assert(polled == n, "only " .. polled .. " of " .. n .. " tasks were polled")
  return client, jobs
end

describe("step(0) with tasks waiting and nothing due", function()
  local emu
  setup(function() emu = helper.emulator { queued = 3600, processing = 10 } end)
  teardown(function() if emu then emu:stop() end end)

  it("allocates nothing in Lua while 1000 tasks wait", function()
    local client = waiting(emu, 1000)
    client:step(0)
    if jit then jit.off(); jit.flush() end -- the JIT's own records are not the step's
    collectgarbage("stop")
    local kb = collectgarbage("count")
    for _ = 1, 1000 do client:step(0) end
    local grown = collectgarbage("count") - kb
    collectgarbage("restart")
    if jit then jit.on() end
    assert.are.equal(0, grown)
    client:close()
  end)

  it("sends thousands of polls falling due at once through a bounded queue", function()
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, requests_per_second = 1e6,
      max_connections = 2 }
    emu:clear()
    local ids = {}
    for i = 1, 300 do ids[i] = assert(client:create { model = "videos", prompt = "q " .. i, duration = 5 }).id end
    for i = 1, 300 do client:watch(ids[i], { interval = 3600 }) end
    client:step(0)
    local most = 0
    for _ = 1, 2000 do
      local n = 0
      for _ in pairs(client.loop.inflight) do n = n + 1 end
      if n > most then most = n end
      if n == 0 and client.loop.qtail < client.loop.qhead then break end
      client:step(0.01)
    end
    assert.is_true(most <= 8, "at most 4 * max_connections handed to the transport, saw " .. most)
    assert.is_true(most >= 2, "the queue still fills the connections")
    local polls = 0
    for _, r in ipairs(emu:requests()) do
      if r.method == "GET" then polls = polls + 1 end
    end
    assert.are.equal(300, polls) -- every task polled once
    client:close()
  end)
end)

describe("the client's queue of requests waiting for a connection", function()
  local emu
  setup(function() emu = helper.emulator { queued = 0, processing = 0.3 } end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:clear_faults() end)

  local function client(opts)
    local o = { api_key = emu.key, base_url = emu.url, requests_per_second = 1e6, max_connections = 1,
      retry_backoff = 0.01 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return starvideos.new(o)
  end

  it("loses no request however often it fills and drains (40 tasks, 4 exchanges at once)", function()
    local c = client()
    local ids = {}
    for i = 1, 40 do ids[i] = assert(c:create { model = "videos", prompt = "q " .. i, duration = 5 }).id end
    local res = c:wait_all(ids, { interval = 0.05, timeout = 20 })
    for i, r in ipairs(res) do
      assert.is_truthy(r.task, "task " .. i .. ": " .. tostring(r.err))
      assert.are.equal("completed", r.task.status)
    end
    assert.are.equal(0, c.loop.sending)
    c:close()
  end)

  it("ends a wait at its deadline while its poll still waits in the queue", function()
    local handed = 0 -- the polls handed to the transport (their request events)
    local c = client { on_event = function(ev) if ev.type == "request" and ev.method == "GET" then
      handed = handed + 1
    end end }
    local task = assert(c:create { model = "videos", prompt = "deadline", duration = 5 })
    emu:clear()
    -- (held 600 s: longer than any machine's pace; issue 78, 2: not 'under 2.5 s' of a 3 s hold)
    emu:fault { method = "GET", delay = 600, count = 4 }
    for _ = 1, 4 do c:watch(task.id, { interval = 3600 }) end -- they hold the 4 places
    c:step(0)
    local got, err = c:wait(task.id, { timeout = 0.3 })
    assert.is_nil(got)
    assert.are.equal("timeout", err.kind)
    -- the wait ended while the 4 held the places (its own poll never handed over), the server answering none of
    -- them: on its one connection, the first read and held, the others behind it
    assert.are.equal(4, handed)
    local function polls()
      local list = {}
      for _, r in ipairs(emu:requests()) do if r.method == "GET" then list[#list + 1] = r end end
      return list
    end
    assert.is_true(helper.wait_until(function() return #polls() >= 1 end, 30), "no poll was read")
    for _, r in ipairs(polls()) do assert.is_nil(r.answered, "the wait ended only once the held exchanges did") end
    c:close()
  end)

  it("cancels a job whose create never left the queue: nothing sent, the journal says abandoned", function()
    local dir = helper.tmpdir()
    local c = client { journal = dir .. "/j.jsonl" }
    local task = assert(c:create { model = "videos", prompt = "hold", duration = 5 })
    emu:clear()
    emu:fault { method = "GET", delay = 1, count = 4 }
    for _ = 1, 4 do c:watch(task.id, { interval = 3600 }) end
    c:step(0)
    local job = assert(c:start { model = "videos", prompt = "never sent", duration = 5 })
    repeat c:step(0.005) until job.req -- (its pending record written off the loop's thread, then queued)
    job:cancel()
    assert.is_true(job.done)
    assert.are.equal("cancelled", job.state)
    assert.matches("never sent", job.err.message)
    c:step(1.5)
    for _, r in ipairs(emu:requests()) do assert.are_not.equal("POST", r.method) end
    assert.are.same({}, assert(c:pending())) -- (first: it waits for what the writer thread was given)
    local text = helper.read_file(dir .. "/j.jsonl")
    assert.matches('"event":"abandoned"', text)
    c:close()
    helper.cleanup()
  end)
end)
