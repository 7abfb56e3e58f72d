-- The Redis ledger's faults that cost money or block (issue 14), against a
-- real redis-server: a closed client's unwritten records are not lost (inside
-- nginx each client has a queue of its own: here a ledger on a loop that says
-- own, the way loop.lua makes it there, in lua5.4), a collected client
-- does no round trip in its GC step, a create refused after its pending script
-- was sent is not left "pending", owe does not wait for a lease, a stale
-- "Redis failed" is not trusted, and a cancelled job leaves nothing held.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local starvideos = require "starvideos"
local Store = require "starvideos.fleet.store"
local R = require "starvideos.fleet.ledger"
local core = require "starvideos.core"

local q = helper.shell_quote
local PARAMS = { model = "videos", prompt = "a cat", duration = 5, resolution = "720p" }
local missing = redis_run.missing()
local describe_redis = missing and pending or describe

local n_keys = 0
local function cfg_of(url)
  n_keys = n_keys + 1
  return { base_url = url or "http://fleet", api_key = "k-faults-" .. n_keys .. "-" .. core.random_id(), lease = 30,
    connect_timeout = 1 }
end

-- A loop as loop.lua makes one inside nginx (loop.own: the ledger's queue is
-- its client's own), reduced to what the ledger calls; pump() is its turns'
-- part for the ledgers (loop:turning).
local function ngx_loop()
  local e = { own = true, busy = {} }
  function e.turning(self, l) self.busy[l] = true end
  function e.at() end
  function e.pump(self)
    for l in pairs(self.busy) do
      if l:turn() then self.busy[l] = nil end
    end
  end
  return e
end

-- before_create on a loop, asked across its turns until answered.
local function ask(ledger, engine, lid)
  local ok, err
  assert(helper.wait_until(function()
    ok, err = ledger:before_create(PARAMS, lid)
    if ok == false then engine:pump(); return false end
    return true
  end, 10), "before_create answered")
  return ok, err
end

-- fn(client, emu): a client with the store (connect_timeout 1) on an emulator of
-- its own, stopped after fn, also when it fails.
local function with_client(key, store_url, fn)
  local emu = helper.emulator { key = key, queued = 0.2, processing = 0.4 }
  local ok, err = pcall(function()
    local client = starvideos.new { api_key = key, base_url = emu.url, store = store_url, connect_timeout = 1 }
    fn(client, emu)
    client:close()
  end)
  emu:stop()
  assert(ok, err)
end

local function prefix_of(cfg) return "starvideos:{" .. redis_run.key_hash(cfg.base_url, cfg.api_key) .. "}:" end

describe_redis("the Redis ledger's faults", function()
  local redis
  before_each(function() redis = redis_run.start() end)
  after_each(function()
    if redis then redis.signal("CONT"); redis.stop() end
    helper.cleanup()
  end)

  it("keeps a closed nginx client's unwritten created record: a later client of the worker writes it", function()
    local cfg, ea, eb = cfg_of(), ngx_loop(), ngx_loop()
    local port, dir = redis.port, redis.dir
    local a = R.new(Store.new(redis.url, { timeout = 1 }), cfg, ea)
    local lid = "l-a-" .. core.random_id()
    assert.is_true(ask(a, ea, lid)) -- its pending record written
    local st = Store.new(redis.url)
    assert.equal("OK", st:call("SAVE"))
    st:close()
    redis.stop() -- killed before the created record
    redis = nil
    assert.is_false(a:created({ id = "t-nginx" }, PARAMS, lid))
    assert(helper.wait_until(function() ea:pump(); return a.queue.link.down end, 10), "the record failed")
    a:close() -- the request's client closes (flush fails: Redis down)
    ea:pump() -- a closed ledger still pumped takes nothing back
    redis = redis_run.start { port = port, dir = dir }
    while core.now() < a.queue.link.again do core.sleep(0.05) end -- (refused RETRY after a failure)
    local b = R.new(Store.new(redis.url, { timeout = 1 }), cfg, eb) -- a later request's client
    assert.is_true(ask(b, eb, "l-b-" .. core.random_id()))
    local check = Store.new(redis.url)
    local prefix = prefix_of(cfg)
    assert.equal(1, check:call("SISMEMBER", prefix .. "unfinished", "t-nginx"))
    assert.equal(0, check:call("SISMEMBER", prefix .. "pending", lid))
    assert.equal("videos", check:call("HGET", prefix .. "task:t-nginx", "model"))
    check:close()
    local view = R.new(redis.url, cfg)
    local ids = {}
    for _, t in ipairs(assert(view:unfinished())) do ids[#ids + 1] = t.id end
    assert.same({ "t-nginx" }, ids)
    for _, p in ipairs(assert(view:pending())) do assert.not_equal(lid, p["local"]) end
    b:close()
    view:close()
  end)

  it("does no round trip when its client is collected while Redis is stopped", function()
    -- Lua 5.1 and LuaJIT run no __gc for a table: a client is not closed when collected there
    local ran
    setmetatable({}, { __gc = function() ran = true end })
    collectgarbage(); collectgarbage()
    local jit = rawget(_G, "jit")
    if not ran then return pending("tables have no __gc on " .. (jit and jit.version or _VERSION)) end
    local flag = helper.tmpdir() .. "/stopped"
    local prog = string.format([[
local sv = require "starvideos"
local core = require "starvideos.core"
local client = sv.new { api_key = "k-gc", base_url = "http://127.0.0.1:9", store = %q, connect_timeout = 2 }
local ledger = client.ledger
assert(ledger:owner()) -- a lease held: its key deleted by a close
io.write("ready\n"); io.stdout:flush()
while not io.open(%q) do core.sleep(0.01) end
ledger:status("t-gc", "processing") -- a record queued
client = nil
local t = core.now()
collectgarbage(); collectgarbage()
io.write(string.format("collected %%s %%.3f\n", tostring(ledger.closed), core.now() - t))
]], redis.url, flag)
    local proc = helper.spawn("timeout -s KILL 30 " .. helper.CHILD_ENV .. q(helper.lua) .. " -e " .. q(prog)
      .. " 2>&1")
    local first = proc.pipe:read("*l")
    if first == "ready" then
      redis.signal("STOP")
      helper.write_file(flag, "")
    end
    local rest = proc.pipe:read("*a")
    proc:close()
    redis.signal("CONT")
    assert.equal("ready", first, tostring(first) .. (rest or ""))
    local closed, took = rest:match("collected (%S+) (%S+)")
    assert.equal("true", closed, rest) -- the GC step closed its ledger
    assert.is_true(tonumber(took) < 0.5, rest) -- without waiting for the stopped Redis (2 s timeout)
  end)

  it("abandons a create refused after its pending script was sent: pending() empty, nothing created", function()
    with_client("k-faults-emu", redis.url, function(client, emu)
      local st = client.ledger.store
      local send_script, stopped = st.send_script, false
      st.send_script = function(self, name, ...) -- Redis stopped as the pending script goes out
        if name == "ledger_pending" and not stopped then redis.signal("STOP"); stopped = true end
        return send_script(self, name, ...)
      end
      local task, err = client:create { model = "videos", prompt = "refused late", duration = 5 }
      redis.signal("CONT")
      assert.is_true(stopped)
      assert.is_nil(task)
      assert.equal("io", err.kind)
      assert.matches("nothing was sent", err.message)
      local view = R.new(redis.url, { base_url = emu.url, api_key = "k-faults-emu", connect_timeout = 2 })
      assert(helper.wait_until(function()
        client:step(0.01)
        local list = view:pending()
        return list and #list == 0
      end, 10), "the pending record abandoned once Redis answered")
      helper.sleep(0.3) -- Redis ran whatever it had been sent
      assert.same({}, assert(view:pending()))
      assert.equal(0, emu:creates())
      view:close()
    end)
  end)

  it("records an owed webhook without waiting for a lease while Redis is stopped", function()
    local client = starvideos.new { api_key = "k-faults-owe", base_url = "http://127.0.0.1:9", store = redis.url,
      connect_timeout = 1 }
    local ledger = client.ledger
    assert.is_nil(ledger.lease) -- no create yet: no lease held
    redis.signal("STOP")
    local t = core.now()
    ledger:owe("w-1", "t-owe", "{}")
    local took = core.now() - t
    for _ = 1, 20 do
      local s = core.now()
      client:step(0)
      took = math.max(took, core.now() - s)
    end
    redis.signal("CONT")
    assert.is_true(took < 0.5, tostring(took))
    local check = Store.new(redis.url)
    local prefix = ledger.prefix
    assert(helper.wait_until(function()
      client:step(0.01)
      return check:call("SISMEMBER", prefix .. "owed", "w-1") == 1
    end, 10), "the owed record written once Redis answered")
    local owner = check:call("HGET", prefix .. "owed:w-1", "owner")
    assert.equal(ledger.lease.id, owner)
    assert(helper.wait_until(function()
      client:step(0.01)
      return check:call("EXISTS", prefix .. "owner:" .. owner) == 1
    end, 10), "its owner's lease set")
    check:close()
    client:close()
  end)

  it("does not trust a stale 'Redis failed': a created record is known written before the job goes on", function()
    local cfg, ea, eb = cfg_of(), ngx_loop(), ngx_loop()
    local port, dir = redis.port, redis.dir
    local a = R.new(Store.new(redis.url, { timeout = 1 }), cfg, ea)
    local b = R.new(Store.new(redis.url, { timeout = 1 }), cfg, eb)
    redis.stop()
    redis = nil
    a:status("t-other", "processing") -- another request's record fails: Redis down
    assert(helper.wait_until(function() ea:pump(); return a.queue.link.down end, 10), "the record failed")
    redis = redis_run.start { port = port, dir = dir }
    local lid = "l-b-" .. core.random_id()
    assert.is_true(ask(b, eb, lid))
    local check = Store.new(redis.url)
    local key = prefix_of(cfg) .. "task:t-stale"
    local ok
    assert(helper.wait_until(function()
      ok = b:created({ id = "t-stale" }, PARAMS, lid)
      if ok then return true end
      eb:pump()
      return false
    end, 10))
    assert.equal(1, check:call("EXISTS", key)) -- written when created said true
    check:close()
    a:close()
    b:close()
  end)

  -- Redis refusing a record for good (its script fails on a key of another
  -- type) must not hold up the records behind it: on a loop (pump) and
  -- without one (flush, each record written as it comes)
  for _, on_engine in ipairs { true, false } do
    it("drops a record Redis refuses for good, says so, and writes those behind it ("
      .. (on_engine and "pump" or "flush") .. ")", function()
      local cfg, warnings = cfg_of(), {}
      local function warn(message) warnings[#warnings + 1] = message end
      cfg.on_event = function(ev) if ev.type == "warning" then warn(ev.message) end end
      local engine = on_engine and ngx_loop() or nil
      local l = R.new(Store.new(redis.url, { timeout = 1 }), cfg, engine)
      local check = Store.new(redis.url)
      local bad, good = prefix_of(cfg) .. "task:t-bad", prefix_of(cfg) .. "task:t-good"
      assert(check:call("RPUSH", bad, "not a hash")) -- the status script's HSET fails: WRONGTYPE
      for _, id in ipairs { "t-good", "t-good2" } do -- (a status is recorded for a task the store has)
        assert(check:call("HSET", prefix_of(cfg) .. "task:" .. id, "id", id))
      end
      l:status("t-bad", "processing")
      l:status("t-good", "processing")
      l:status("t-good2", "processing")
      if engine then
        assert(helper.wait_until(function() engine:pump(); return not l.queue[1] end, 10), "the queue drained")
      end
      assert.is_nil(l.queue[1])
      assert.equal("processing", check:call("HGET", good, "status"))
      assert.equal("processing", check:call("HGET", prefix_of(cfg) .. "task:t-good2", "status"))
      assert.equal("list", check:call("TYPE", bad)) -- left as it was
      assert.equal(1, #warnings)
      assert.matches("Redis refused the status record of t-bad (WRONGTYPE", warnings[1], 1, true)
      assert.matches("the records after it are written", warnings[1], 1, true)
      -- an error that passes is never taken for a refusal, in Redis 7's words or
      -- wrapped in Redis 6's; one outside a script (a connection's) neither
      for _, reply in ipairs {
        "OOM command not allowed when used memory > 'maxmemory'. script: 4437, on @user_script:3.",
        "ERR Error running script (call to f_4437): @user_script:3: @user_script: 3: -OOM command not allowed when "
          .. "used memory > 'maxmemory'.",
        "ERR Error running script (call to f_4437): @user_script:3: @user_script: 3: -READONLY You can't write "
          .. "against a read only replica.",
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. script: "
          .. "4437, on @user_script:2.",
        "NOSCRIPT No matching script. Please use EVAL." } do
        assert.is_false(l.queue:refused({ "created", {}, { "t-x" } }, { reply = reply }, cfg.on_event), reply)
      end
      assert.equal(1, #warnings)
      check:close()
      l:close()
    end)
  end

  it("forgets a cancelled job's ask in flight and its created record waited for", function()
    with_client("k-faults-cancel", redis.url, function(client)
      local ledger = client.ledger
      local job = assert(client:start({ model = "videos", prompt = "cancel asking", duration = 5 }))
      assert(helper.wait_until(function() client:step(0); return next(ledger.asks) ~= nil end, 10), "an ask")
      job:cancel()
      assert.is_nil(next(ledger.asks))
      -- answered, its created record not yet written (Redis stopped): cancelled, nothing held
      local st = ledger.store
      local send_script, stopped = st.send_script, false
      st.send_script = function(self, name, ...)
        if name == "ledger_created" and not stopped then redis.signal("STOP"); stopped = true end
        return send_script(self, name, ...)
      end
      local job2 = assert(client:start({ model = "videos", prompt = "cancel held", duration = 5 }))
      assert(helper.wait_until(function() client:step(0); return job2.held ~= nil end, 10), "a held answer")
      local id = job2.held.id
      assert.is_not_nil(ledger.held[id])
      job2:cancel()
      redis.signal("CONT")
      assert.is_nil(ledger.held[id])
      assert.equal("cancelled", job2.state)
      local check = Store.new(redis.url)
      assert(helper.wait_until(function()
        client:step(0.01)
        return check:call("SISMEMBER", ledger.prefix .. "unfinished", id) == 1
      end, 10), "its created record still written")
      check:close()
    end)
  end)
end)
