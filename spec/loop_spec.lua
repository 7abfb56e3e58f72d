-- The loop (lua/starvideos/loop.lua) and the key's object (key.lua, its bucket: bucket.lua)
-- through a fake transport (spec/support/fake_transport.lua), no server: one
-- loop per key, one bucket its clients share, close cancelling only a client's
-- own jobs, the transport closed with the last client, the key's object let go
-- with its last client, the API key kept out of them.
-- (the budget's cases on a clock of their own, moved by the fake transport's waits: first, before the library)
local clock = require "spec.support.fake_clock"
local Fake = require "spec.support.fake_transport"
local Key = require "starvideos.key"
local starvideos = require "starvideos"
local core = require "starvideos.core"

local RATE = 5

local function client(fake, key, opts)
  local o = { api_key = key or "key-a", base_url = "http://fake", transport = fake, requests_per_second = RATE }
  for k, v in pairs(opts or {}) do o[k] = v end
  return starvideos.new(o)
end

-- Watch n tasks on each client with no interval (as fast as the budget allows),
-- drive them all for `seconds` of the fake clock (fake: a Fake.new{ fake_clock = clock }): the polls sent, and the
-- time they took on that clock.
local function poll_for(fake, clients, seconds)
  assert(fake.fake_clock == clock, "the fake transport moves the fake clock")
  clock.start()
  for _, c in ipairs(clients) do
    for i = 1, 3 do c:watch("t" .. tostring(c):sub(-6) .. i, { interval = 0 }) end
  end
  local t0 = core.now()
  while core.now() - t0 < seconds do
    for _, c in ipairs(clients) do c:step(0.01) end
  end
  local took = core.now() - t0
  clock.stop()
  return fake:count("query"), took
end

describe("the loop and the budget of a key", function()
  it("is one loop per key: clients of one key share it, whatever their options, of two keys do not", function()
    local fake = Fake.new()
    local a, b, c = client(fake), client(fake), client(fake, "key-b")
    assert.equal(a.loop, b.loop)
    assert.are_not.equal(a.loop, c.loop)
    -- a client that differs in an option joins the key's loop (the key's
    -- max_connections is then the smallest a live client asked for)
    local d = client(fake, nil, { max_connections = 3 })
    assert.equal(a.loop, d.loop)
    assert.equal(3, a.loop.clients)
    assert.equal(12, a.loop.max_sending)
    d:close()
    assert.equal(4 * 16, a.loop.max_sending)
    for _, x in ipairs { a, b, c } do x:close() end
  end)

  it("gives two clients of one key one budget: their polls together within requests_per_second", function()
    local fake = Fake.new { status = function() return "processing" end, fake_clock = clock }
    local a, b = client(fake), client(fake)
    local polls, took = poll_for(fake, { a, b }, 2)
    -- a bucket of RATE tokens, then RATE per second
    assert.is_true(polls <= RATE * took + RATE + 1, polls .. " polls in " .. took .. " s")
    assert.is_true(polls >= RATE * took - 2, "only " .. polls .. " polls in " .. took .. " s")
    a:close(); b:close()
  end)

  it("gives clients of two keys a budget each", function()
    local fake = Fake.new { status = function() return "processing" end, fake_clock = clock }
    local a, b = client(fake, "key-a"), client(fake, "key-b")
    local polls, took = poll_for(fake, { a, b }, 2)
    assert.is_true(polls >= 2 * RATE * took - 2, "two budgets, yet only " .. polls .. " polls in " .. took .. " s")
    assert.is_true(polls <= 2 * (RATE * took + RATE + 1), polls .. " polls in " .. took .. " s")
    a:close(); b:close()
  end)

  it("closes a client's own jobs only; the last client closes the transport", function()
    -- each task completes at its fourth poll
    local fake = Fake.new { status = function(_, n) return n >= 4 and "completed" or "processing" end,
      fake_clock = clock }
    clock.start()
    finally(clock.stop)
    local a, b = client(fake, nil, { requests_per_second = 1000 }), client(fake, nil, { requests_per_second = 1000 })
    local ja = a:watch("task_a", { interval = 0.02 })
    local jb = b:watch("task_b", { interval = 0.02 })
    a:step(0) -- both polled once: the loop is shared
    assert.equal(1, fake.polls.task_a)
    assert.equal(1, fake.polls.task_b)
    a:close()
    assert.is_true(ja.done)
    assert.equal("cancelled", ja.state)
    assert.is_false(fake.closed, "the transport closed while a client of the key was still open")
    assert.has_error(function() a:step(0) end, "the starvideos client is closed")
    local t0 = core.now() -- (the fake clock's: its fourth poll comes 0.06 s of it later, at any pace)
    while not jb.done and core.now() - t0 < 5 do b:step(0.05) end
    assert.equal("completed", jb.status)
    assert.equal(1, fake.polls.task_a, "a closed client's job was polled again")
    b:close()
    assert.is_true(fake.closed)
    -- a new client of the key gets a new loop
    local c = client(fake, nil, { requests_per_second = 1000 })
    assert.are_not.equal(ja.loop, c.loop)
    c:close()
  end)

  -- A callback's close in the middle of the job's own turn (its poll answered): the job is cancelled too, though
  -- it waits on no timer and no exchange then; batch_spec's "after a stop" crashed on it (no transport).
  for _, last in ipairs { true, false } do
    it("cancels the job whose own answer's listener closed its client (" .. (last and "the last client" or
      "another client left") .. "): no download, no error", function()
      local fake = Fake.new { status = function() return "completed" end, fake_clock = clock }
      clock.start()
      finally(clock.stop)
      local a = client(fake, nil, { requests_per_second = 1000 })
      local other = not last and client(fake, nil, { requests_per_second = 1000 })
      local job
      job = a:watch("task_l", { interval = 0.02, out = os.tmpname(),
        on_progress = function(ev) if ev.type == "status" and ev.status == "completed" then a:close() end end })
      local t0 = core.now() -- (the fake clock's: its first poll's answer comes at once, at any pace)
      while not job.done and core.now() - t0 < 5 do a:step(0.02) end
      assert.is_true(job.done)
      assert.equal("cancelled", job.state)
      assert.equal(0, fake:count("download"))
      if other then other:close() end
    end)
  end

  it("lets go of the loop when its clients are collected", function()
    local fake = Fake.new()
    local weak = setmetatable({}, { __mode = "v" })
    local function use() -- the client lives in this call only
      local a = client(fake, "key-gc")
      weak.loop = a.loop
      a:watch("task_gc", { interval = 60 })
      a:step(0)
    end
    use()
    collectgarbage(); collectgarbage()
    if _VERSION ~= "Lua 5.1" then -- tables have finalizers from 5.2 on
      assert.is_true(fake.closed, "the transport of a collected client's loop stayed open")
    end
    collectgarbage()
    assert.is_nil(weak.loop)
  end)

  it("makes a key's object with its first client and lets it go with its last, closed or collected", function()
    local registry
    for i = 1, math.huge do -- key.lua's registry of the live keys: name -> object
      local name, v = debug.getupvalue(Key.for_client, i)
      if name == "keys" then registry = v; break end
    end
    local function left(to) -- the keys made here still in the registry
      local n = 0
      for i = 1, to do if registry[Key.hash_of("http://127.0.0.1:9", "key-many-" .. i)] then n = n + 1 end end
      return n
    end
    local function open_close(from, to, collected) -- clients of libcurl's transport, a key each
      for i = from, to do
        local c = starvideos.new { api_key = "key-many-" .. i, base_url = "http://127.0.0.1:9" }
        c:watch("task_" .. i, { interval = 60 })
        if not collected then c:close() end
      end
    end
    collectgarbage(); collectgarbage()
    open_close(1, 1000)
    assert.equal(0, left(1000), "closed clients' keys stayed in the registry")
    collectgarbage(); collectgarbage()
    local before = collectgarbage("count")
    open_close(1001, 2000)
    open_close(2001, 3000, true) -- never closed: collected
    collectgarbage(); collectgarbage(); collectgarbage()
    local grew = collectgarbage("count") - before
    assert.equal(0, left(3000), "collected clients' keys stayed in the registry")
    assert.is_true(grew < 256, string.format("2,000 keys opened and let go left %.0f KB", grew))
  end)

  it("gives two clients of one key one object while either lives", function()
    local fake = Fake.new()
    local a, b = client(fake, "key-shared"), client(fake, "key-shared")
    assert.equal(a.key, b.key)
    assert.equal(a.key.parts.loop, a.loop)
    a:close()
    local c = client(fake, "key-shared")
    assert.equal(b.key, c.key, "the key's object went while a client of it lived")
    b:close(); c:close()
    local d = client(fake, "key-shared")
    assert.are_not.equal(b.key, d.key, "the key's object outlived its last client")
    d:close()
  end)

  it("keeps the API key out of the loop, the key's object and its registry", function()
    local fake = Fake.new()
    local secret = "sk-loop-secret-1234"
    local a = client(fake, secret)
    local seen = {}
    local function walk(v, path)
      if type(v) == "string" then
        assert.is_nil(v:find(secret, 1, true), "the key at " .. path)
      elseif type(v) == "table" and not seen[v] then
        seen[v] = true
        for k, x in pairs(v) do walk(k, path .. "[key]"); walk(x, path .. "." .. tostring(k)) end
      end
    end
    walk(a, "client")
    walk(a.loop, "loop")
    walk(a.key, "key")
    local i = 1
    while debug.getupvalue(Key.for_client, i) do
      local name, v = debug.getupvalue(Key.for_client, i)
      walk(v, "upvalue " .. name)
      i = i + 1
    end
    a:close()
  end)

  it("makes a lone query wait for a token of the key's budget, never going over it", function()
    local fake = Fake.new { fake_clock = clock }
    local a = client(fake, nil, { requests_per_second = 2 })
    local b = client(fake, nil, { requests_per_second = 2 }) -- the same key: the same budget
    clock.start()
    finally(clock.stop)
    local t0 = core.now()
    for i = 1, 6 do
      local task = assert((i % 2 == 0 and a or b):query("task_" .. i))
      assert.equal("task_" .. i, task.id)
    end
    assert.equal(6, fake:count("query"))
    -- a bucket of 2 tokens, then 2 a second: the 3rd query 0.5 s after the start at
    -- the soonest, the 6th 2 s
    for i = 3, 6 do
      local at = fake.sent[i].at - t0
      assert.is_true(at >= (i - 2) * 0.5, "query " .. i .. " sent after " .. at .. " s: over the budget")
    end
    a:close(); b:close()
  end)
end)

describe("the loop and a journal's writer", function()
  it("takes up a create waiting for its record as soon as the writer wrote it, not at its timer", function()
    local Loop = require "starvideos.loop"
    local helper = require "spec.helper"
    local retry = Loop.ASK_AGAIN
    -- A waiter's timer an hour away: before the create is sent, the loop's pause is a wait in the transport for the
    -- next timer only once nothing else can wake the waiter, so the fake transport asked to wait that long (the
    -- waiter's timer: the record written woke nothing) raises.  Before, the timer was 3 s and the create had to
    -- return within 1 s: beside a loaded machine's pace it took 1.44 s, woken by its record all the same.
    Loop.ASK_AGAIN = 3600
    local fake, dir = Fake.new(), helper.tmpdir()
    local poll = fake.poll
    function fake.poll(f, max_wait)
      if f:count("create") == 0 and max_wait and max_wait > 60 then
        error(string.format("the create waits for its timer (%.0f s) though its record was written", max_wait))
      end
      return poll(f, max_wait)
    end
    local c = client(fake, "key-journal", { journal = dir .. "/j.jsonl" })
    local ok, task, err = pcall(c.create, c, { model = "videos", prompt = "a cat", duration = 5 })
    Loop.ASK_AGAIN = retry
    c:close()
    -- its pending record, then its created record, each written before the call goes on
    assert.is_true(ok, tostring(task))
    assert.is_truthy(task, err and err.message)
    assert.equal(1, fake:count("create"))
  end)
end)
