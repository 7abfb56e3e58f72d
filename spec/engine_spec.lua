-- The engine (lua/starvideos/engine.lua) through a fake transport
-- (spec/support/fake_transport.lua), no server: one engine per key, one
-- budget its clients share, close cancelling only a client's own
-- jobs, the transport closed with the last client, the key kept out of it.
local Fake = require "spec.support.fake_transport"
local Engine = require "starvideos.engine"
local starvideos = require "starvideos"
local core = require "starvideos.core"

local RATE = 5

local function client(fake, key, opts)
  local o = { api_key = key or "key-a", base_url = "http://fake", transport = fake, requests_per_second = RATE }
  for k, v in pairs(opts or {}) do o[k] = v end
  return starvideos.new(o)
end

-- Watch n tasks on each client with no interval (as fast as the budget allows),
-- drive them all for `seconds`: the polls sent, and the time they took.
local function poll_for(fake, clients, seconds)
  for _, c in ipairs(clients) do
    for i = 1, 3 do c:watch("t" .. tostring(c):sub(-6) .. i, { interval = 0 }) end
  end
  local t0 = core.now()
  while core.now() - t0 < seconds do
    for _, c in ipairs(clients) do c:step(0.01) end
  end
  return fake:count("query"), core.now() - t0
end

describe("the engine", function()
  it("is one per key: clients of one key share it, whatever their options, of two keys do not", function()
    local fake = Fake.new()
    local a, b, c = client(fake), client(fake), client(fake, "key-b")
    assert.equal(a.engine, b.engine)
    assert.are_not.equal(a.engine, c.engine)
    -- a client that differs in an option joins the key's engine (the key's
    -- max_connections is then the smallest a live client asked for)
    local d = client(fake, nil, { max_connections = 3 })
    assert.equal(a.engine, d.engine)
    assert.equal(3, a.engine.clients)
    assert.equal(12, a.engine.max_sending)
    d:close()
    assert.equal(4 * 16, a.engine.max_sending)
    for _, x in ipairs { a, b, c } do x:close() end
  end)

  it("gives two clients of one key one budget: their polls together within requests_per_second", function()
    local fake = Fake.new { status = function() return "processing" end }
    local a, b = client(fake), client(fake)
    local polls, took = poll_for(fake, { a, b }, 2)
    -- a bucket of RATE tokens, then RATE per second
    assert.is_true(polls <= RATE * took + RATE + 1, polls .. " polls in " .. took .. " s")
    assert.is_true(polls >= RATE * took - 2, "only " .. polls .. " polls in " .. took .. " s")
    a:close(); b:close()
  end)

  it("gives clients of two keys a budget each", function()
    local fake = Fake.new { status = function() return "processing" end }
    local a, b = client(fake, "key-a"), client(fake, "key-b")
    local polls, took = poll_for(fake, { a, b }, 2)
    assert.is_true(polls >= 2 * RATE * took - 2, "two budgets, yet only " .. polls .. " polls in " .. took .. " s")
    assert.is_true(polls <= 2 * (RATE * took + RATE + 1), polls .. " polls in " .. took .. " s")
    a:close(); b:close()
  end)

  it("closes a client's own jobs only; the last client closes the transport", function()
    -- each task completes at its fourth poll
    local fake = Fake.new { status = function(_, n) return n >= 4 and "completed" or "processing" end }
    local a, b = client(fake, nil, { requests_per_second = 1000 }), client(fake, nil, { requests_per_second = 1000 })
    local ja = a:watch("task_a", { interval = 0.02 })
    local jb = b:watch("task_b", { interval = 0.02 })
    a:step(0) -- both polled once: the engine is shared
    assert.equal(1, fake.polls.task_a)
    assert.equal(1, fake.polls.task_b)
    a:close()
    assert.is_true(ja.done)
    assert.equal("cancelled", ja.state)
    assert.is_false(fake.closed, "the transport closed while a client of the key was still open")
    assert.has_error(function() a:step(0) end, "the starvideos client is closed")
    local t0 = core.now()
    while not jb.done and core.now() - t0 < 5 do b:step(0.05) end
    assert.equal("completed", jb.status)
    assert.equal(1, fake.polls.task_a, "a closed client's job was polled again")
    b:close()
    assert.is_true(fake.closed)
    -- a new client of the key gets a new engine
    local c = client(fake, nil, { requests_per_second = 1000 })
    assert.are_not.equal(ja.engine, c.engine)
    c:close()
  end)

  it("lets go of the engine when its clients are collected", function()
    local fake = Fake.new()
    local weak = setmetatable({}, { __mode = "v" })
    local function use() -- the client lives in this call only
      local a = client(fake, "key-gc")
      weak.engine = a.engine
      a:watch("task_gc", { interval = 60 })
      a:step(0)
    end
    use()
    collectgarbage(); collectgarbage()
    if _VERSION ~= "Lua 5.1" then -- tables have finalizers from 5.2 on
      assert.is_true(fake.closed, "the transport of a collected client's engine stayed open")
    end
    collectgarbage()
    assert.is_nil(weak.engine)
  end)

  it("keeps the API key out of the engine and its registry", function()
    local fake = Fake.new()
    local secret = "sk-engine-secret-1234"
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
    walk(a.engine, "engine")
    walk(Engine, "Engine")
    local i = 1
    while debug.getupvalue(Engine.for_client, i) do
      local name, v = debug.getupvalue(Engine.for_client, i)
      walk(v, "upvalue " .. name)
      i = i + 1
    end
    a:close()
  end)

  it("makes a lone query wait for a token of the key's budget, never going over it", function()
    local fake = Fake.new()
    local a = client(fake, nil, { requests_per_second = 2 })
    local b = client(fake, nil, { requests_per_second = 2 }) -- the same key: the same budget
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
      assert.is_true(at >= (i - 2) * 0.5 - 0.02, "query " .. i .. " sent after " .. at .. " s: over the budget")
    end
    a:close(); b:close()
  end)
  -- A lone query's job and request tables serve the engine's next query once
  -- nothing refers to them (Job:release, Request.release); gen counts the
  -- requests a table served.  Each sent request is seen as the transport got it.
  local function watched(fake)
    local seen = {}
    local send = fake.send
    fake.send = function(self, r)
      seen[#seen + 1] = { r = r, gen = r.gen, owner = r.owner, url = r.url, owner_id = r.owner.id, cfg = r.cfg,
        user_agent = r.user_agent }
      return send(self, r)
    end
    return seen
  end

  it("reuses a lone query's tables once nothing refers to them: the old owner never sees them again", function()
    local fake = Fake.new()
    local seen = watched(fake)
    local a = client(fake, nil, { requests_per_second = 1000 })
    local first = assert(a:query("task_1"))
    local r1, job1 = seen[1].r, seen[1].owner
    -- let go: what it held is dropped, the job no longer points at it
    assert.is_true(r1.done)
    assert.is_false(r1.owner)
    assert.is_nil(r1.task)
    assert.is_false(job1.req)
    assert.is_nil(job1.task)
    local second = assert(a:query("task_2"))
    assert.equal(r1, seen[2].r) -- the same table, a new generation, a new owner's id and URL
    assert.equal(seen[1].gen + 1, seen[2].gen)
    assert.equal(job1, seen[2].owner)
    assert.equal("task_2", seen[2].owner_id)
    assert.truthy(seen[2].url:find("/v1/result/task_2$"))
    -- what the first query returned is its own: untouched by the second
    assert.equal("task_1", first.id)
    assert.equal("task_2", second.id)
    assert.is_nil(r1.task)
    -- a query of another client of the key: that client's options go with it
    local b = client(fake, nil, { requests_per_second = 1000, user_agent = "other/1" })
    assert(b:query("task_3"))
    assert.equal(r1, seen[3].r)
    assert.equal("other/1", seen[3].user_agent)
    assert.equal(b.cfg, seen[3].cfg)
    assert.are_not.equal(seen[2].user_agent, seen[3].user_agent)
    a:close(); b:close()
  end)

  it("never reuses a table a timer may still name: a retried request, a job that waited for a token", function()
    local n = 0
    local fake = Fake.scripted(function(r)
      n = n + 1
      if r.url:find("retried") and n == 1 then return { status = 503 } end
      return { status = 200, body = string.format('{"id":"%s","status":"completed"}', r.url:match("[^/]*$")) }
    end)
    local seen = watched(fake)
    local a = client(fake, nil, { requests_per_second = 1000, retry_backoff = 0.01 })
    assert.equal("retried", assert(a:query("retried")).id)
    assert.equal(2, #seen)
    assert.equal(seen[1].r, seen[2].r) -- the retry is the same request, sent again
    assert(a:query("next"))
    assert.are_not.equal(seen[1].r, seen[3].r) -- it went on the heap (its backoff): never reused
    assert.equal(1, seen[3].r.gen)
    a:close()
    -- a job that waited for a token went on the heap too: its table is not reused
    local slow = Fake.new()
    local watched_slow = watched(slow)
    local c = client(slow, "key-slow", { requests_per_second = 1 }) -- a bucket of 1 token
    assert(c:query("q1")) -- the token
    assert(c:query("q2")) -- waits for the next (its job on the heap)
    assert(c:query("q3")) -- waits too
    local j1, j2, j3 = watched_slow[1].owner, watched_slow[2].owner, watched_slow[3].owner
    assert.equal(j1, j2) -- q1's job served q2
    assert.are_not.equal(j2, j3) -- q2's was on the heap: q3 got a new one
    c:close()
  end)
end)
