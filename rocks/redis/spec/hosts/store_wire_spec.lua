-- A client with `store = "redis://..."`: its ledger is the store's (records,
-- leases, samples in Redis), its key's budget is taken from Redis, and nothing
-- it does with the store blocks a frame (step(0) returns while Redis is stopped).

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local starvideos = require "starvideos"
local Store = require "starvideos.fleet.store"
local R = require "starvideos.fleet.ledger"
local core = require "starvideos.core"

local q = helper.shell_quote
local KEY = "k-store-wire"
local CHILD = q(helper.root .. "/spec/fixtures/store_child.lua")

-- A child (store_child.lua) under an outer timeout, so that a hang fails.
local function child(args, seconds)
  return helper.spawn("timeout -s KILL " .. (seconds or 60) .. " " .. helper.CHILD_ENV .. q(helper.lua) .. " "
    .. CHILD .. " " .. args)
end

local missing = redis_run.missing()
local describe_redis = missing and pending or describe

-- An emulator (emu_opts' times) and a redis-server for a describe block,
-- stopped after it: s.emu, s.redis (a test may stop and start its own).
local function servers(emu_opts)
  local s = {}
  setup(function()
    emu_opts.key = KEY
    s.emu = helper.emulator(emu_opts)
    s.redis = redis_run.start()
  end)
  teardown(function()
    if s.redis then s.redis.stop() end
    if s.emu then s.emu:stop() end
    helper.cleanup()
  end)
  return s
end

-- The store's ledger of the key, read from the spec (no engine: every call waits).
local function ledger_view(s)
  return R.new(s.redis.url, { base_url = s.emu.url, api_key = KEY, connect_timeout = 2 })
end

describe_redis("a client with a store", function()
  local s = servers { queued = 0.2, processing = 0.6 }
  local emu, redis
  before_each(function() emu, redis = s.emu, s.redis; emu:reset() end)

  it("refuses journal and store together, naming both", function()
    local ok, err = pcall(starvideos.new, { api_key = KEY, base_url = emu.url, store = redis.url,
      journal = helper.tmpdir() .. "/j.jsonl" })
    assert.is_false(ok)
    assert.matches("journal", err)
    assert.matches("store", err)
  end)

  it("takes STARVIDEOS_STORE as the default ledger: a journal given wins, else the store", function()
    local journal = helper.tmpdir() .. "/env.jsonl"
    local prog = string.format([[
local sv = require "starvideos"
local a = sv.new { api_key = "k", base_url = %q, journal = %q }
local b = sv.new { api_key = "k", base_url = %q }
io.write(tostring(a.ledger.path), " ", tostring(b.cfg.store))
]], emu.url, journal, emu.url)
    local out, ok = helper.capture("STARVIDEOS_STORE=" .. redis.url .. " " .. helper.CHILD_ENV .. q(helper.lua)
      .. " -e " .. q(prog) .. " 2>&1")
    assert.is_true(ok, out)
    assert.equal(journal .. " " .. redis.url, out)
  end)

  it("records a generate in Redis and takes its polls' tokens from the store's bucket", function()
    local out = helper.tmpdir() .. "/one.mp4"
    local client = starvideos.new { api_key = KEY, base_url = emu.url, store = redis.url }
    local task = assert(client:generate({ model = "videos", prompt = "recorded", duration = 5 },
      { out = out, interval = 0.2 }))
    assert.equal(out, task.path)
    local st = Store.new(redis.url)
    local prefix = "starvideos:{" .. redis_run.key_hash(emu.url, KEY) .. "}:"
    assert.equal(out, st:call("HGET", prefix .. "task:" .. task.id, "path"))
    assert.equal(1, st:call("EXISTS", prefix .. "tat")) -- the token script ran for the polls
    local view = ledger_view(s)
    assert.same({}, assert(view:unfinished()))
    assert.same({}, assert(view:pending()))
    assert.same({}, assert(client:pending()))
    st:close()
    client:close()
  end)

  it("waits for the key's bucket in Redis, which other processes drained", function()
    local url = redis.url .. "/5"
    local client = starvideos.new { api_key = KEY, base_url = emu.url, store = url, requests_per_second = 0.5 }
    local task = assert(client:create { model = "videos", prompt = "budget", duration = 5 })
    -- another process takes the key's tokens from the store (as the token script does for any of them)
    local st = Store.new(url)
    local hash = redis_run.key_hash(emu.url, KEY)
    while not redis_run.token(st, hash, 0.5) do end
    local t0 = core.now()
    assert(client:query(task.id))
    local waited = core.now() - t0
    st:close()
    client:close()
    -- the next token is 2 s away at 0.5 a second (a local bucket would have a whole one: no wait)
    assert.is_true(waited > 1.5 and waited < 4, "the query waited " .. waited .. " s")
  end)

  it("counts create_limit in the store, refusing the create over it before sending", function()
    local client = starvideos.new { api_key = KEY, base_url = emu.url, store = redis.url .. "/4",
      create_limit = { count = 2, per = 60 } }
    for i = 1, 2 do assert(client:create { model = "videos", prompt = "limited " .. i, duration = 5 }) end
    local task, err = client:create { model = "videos", prompt = "limited 3", duration = 5 }
    assert.is_nil(task)
    assert.equal("rate_limited", err.kind)
    assert.equal("create_limit", err.field)
    assert.matches("counted in the store redis://127%.0%.0%.1:%d+/4", err.message)
    assert.equal(2, emu:creates())
    assert.same({}, assert(client:pending()))
    client:close()
  end)

  it("has a new process poll on the schedule learned from the samples other processes recorded", function()
    local key_url = redis.url .. "/3" -- a database of its own: no samples but this test's
    local st = Store.new(redis.url)
    assert.equal("OK", st:call("CONFIG", "SET", "appendonly", "yes"))
    assert.equal("OK", st:call("CONFIG", "SET", "appendfsync", "always"))
    local a = child("tasks " .. q(emu.url) .. " " .. KEY .. " " .. q(key_url) .. " 6")
    local said = a.pipe:read("*a")
    assert.equal("OK", st:call("CONFIG", "SET", "appendfsync", "everysec"))
    assert.equal("OK", st:call("CONFIG", "SET", "appendonly", "no"))
    st:close()
    assert.truthy(a:close(), said)
    assert.equal("done\n", said) -- (no persistence warning: the AOF is on and fsyncs always)
    local b = child("learned " .. q(emu.url) .. " " .. KEY .. " " .. q(key_url))
    local text = b.pipe:read("*a")
    assert.truthy(b:close(), text)
    local polls, took = text:match("polls (%d+) (%S+)")
    polls, took = tonumber(polls), tonumber(took)
    -- unlearned, its first poll would be 30 s after the create (interval 30); the
    -- six tasks A recorded took about 1.3 s each
    assert.is_true(took < 10, text)
    assert.is_true(polls >= 1 and polls <= 4, text)
  end)

  it("never blocks step(0) while Redis is stopped, and finishes the job once it is back", function()
    local out = helper.tmpdir() .. "/stepped.mp4"
    local proc = child("step " .. q(emu.url) .. " " .. KEY .. " " .. q(redis.url) .. " " .. q(out))
    local lines, stopped_at = {}, nil
    local ok, perr = pcall(function()
      for line in proc.pipe:lines() do
        lines[#lines + 1] = line
        if line == "state polling" and not stopped_at then
          redis.signal("STOP")
          stopped_at = core.now()
        elseif stopped_at and line:find("^beat") and core.now() - stopped_at > 2.5 then
          redis.signal("CONT")
          stopped_at = math.huge
        end
        if line:find("^done") or line:find("^err") then break end
      end
    end)
    redis.signal("CONT")
    local rest = proc.pipe:read("*a")
    proc:close()
    assert(ok, perr)
    local text = table.concat(lines, "\n") .. rest
    local last = lines[#lines]
    assert.matches("^done ", last, text)
    local beats = 0
    for _ in (text:match("state polling(.*)$") or ""):gmatch("beat") do beats = beats + 1 end
    assert.is_true(beats >= 5, text) -- it went on stepping (a beat every 0.1 s) while Redis was stopped
    assert.matches("warning store redis://127%.0%.0%.1:%d+/0: no answer within 1 s: the key's budget is this "
      .. "process's own until it answers", text) -- said once
    assert.is_nil(text:find("no answer within 1 s: the key's budget.*no answer within 1 s: the key's budget"))
    local _, aof = text:gsub("appendonly is no: a restart of Redis loses every record written since its last", "")
    assert.equal(1, aof, text) -- said once, at the store's first create (the AOF off: not its appendfsync)
    local most = tonumber(last:match("^done %S+ (%S+)$"))
    assert.is_true(most < 250, text) -- the longest step(0), in ms (a loaded machine's margin)
    assert.equal(1, emu:creates())
    assert.equal(helper.file_size(out) > 0, true)
    local view = ledger_view(s)
    assert.same({}, assert(view:unfinished()))
    assert.same({}, assert(view:pending()))
  end)
end)

describe_redis("a client whose store goes down mid-run", function()
  local s = servers { queued = 0.3, processing = 1 }

  it("refuses creates before sending, finishes the created tasks, and writes their records once Redis is back",
    function()
    local password = "s3cret-pw"
    local emu = s.emu
    s.redis.stop()
    s.redis = redis_run.start { password = password }
    local port, dir, url = s.redis.port, s.redis.dir, s.redis.url
    local events = {}
    local client = starvideos.new { api_key = KEY, base_url = emu.url, store = url, connect_timeout = 2,
      on_event = function(ev) if ev.type == "warning" then events[#events + 1] = ev.message end end }
    local out_dir = helper.tmpdir()
    local jobs = {}
    for i = 1, 2 do
      jobs[i] = assert(client:start({ model = "videos", prompt = "down " .. i, duration = 5 },
        { out = out_dir .. "/v" .. i .. ".mp4", interval = 0.2 }))
    end
    assert(helper.wait_until(function()
      client:step(0.01)
      return jobs[1].state == "polling" and jobs[2].state == "polling"
    end, 10), "both tasks created")
    local st = Store.new(url)
    assert.equal("OK", st:call("SAVE")) -- what Redis holds now outlives it (the restart loads it)
    st:close()
    s.redis.stop()
    s.redis = nil
    local task, err = client:create { model = "videos", prompt = "while Redis is down", duration = 5 }
    assert.is_nil(task)
    assert.equal("io", err.kind)
    assert.equal("store", err.field)
    assert.matches("redis://127%.0%.0%.1:" .. port .. "/0", err.message)
    assert.matches("nothing was sent", err.message)
    assert.is_nil(err.message:find(password, 1, true))
    -- the created tasks go on under this process's own budget, and download
    assert(helper.wait_until(function()
      client:step(0.01)
      return jobs[1].done and jobs[2].done
    end, 20), "the created tasks finished while Redis was down")
    for i = 1, 2 do
      assert.is_nil(jobs[i].err)
      assert.is_true(helper.file_size(out_dir .. "/v" .. i .. ".mp4") > 0)
    end
    assert.equal(2, emu:creates())
    local said = table.concat(events, "\n")
    assert.matches("the key's budget is this process's own until it answers", said)
    assert.is_nil(said:find(password, 1, true))
    -- Redis back on the same port, with what it held: the queued records are written
    s.redis = redis_run.start { password = password, port = port, dir = dir }
    local view = ledger_view(s)
    assert(helper.wait_until(function()
      client:step(0.01)
      local list = view:unfinished()
      return list and #list == 0
    end, 10), "the downloaded records written once Redis answered again")
    assert.same({}, assert(view:pending()))
    assert.same({}, assert(client:pending()))
    local check = Store.new(url)
    local prefix = "starvideos:{" .. redis_run.key_hash(emu.url, KEY) .. "}:"
    for i = 1, 2 do
      assert.equal(out_dir .. "/v" .. i .. ".mp4", check:call("HGET", prefix .. "task:" .. jobs[i].task.id, "path"))
    end
    check:close()
    assert.equal(2, emu:creates()) -- nothing sent twice
    client:close()
  end)
end)

describe_redis("keep with a store", function()
  local s = servers { queued = 0.5, processing = 4 }

  it("finishes to its out the task of a process killed -9 mid-poll, created once", function()
    local emu, redis = s.emu, s.redis
    local out = helper.tmpdir() .. "/orphan.mp4"
    local view = ledger_view(s)
    local a = helper.spawn(helper.CHILD_ENV .. q(helper.lua) .. " " .. CHILD .. " generate " .. q(emu.url) .. " " .. KEY
      .. " " .. q(redis.url) .. " " .. q(out)) -- (no outer timeout: its pid is the child's own, killed below)
    local created = helper.wait_until(function()
      local list = view:unfinished()
      return list and #list == 1
    end, 10)
    -- A's lease in Redis is the 3 s it was given (`lease` on new), not the default 30
    local cli = "redis-cli -p " .. redis.port .. " "
    local owners = helper.capture(cli .. "--scan --pattern '*owner:*'")
    local ttl = 0
    for k in owners:gmatch("%S+") do
      ttl = math.max(ttl, tonumber(helper.capture(cli .. "PTTL " .. q(k)):match("%-?%d+")) or 0)
    end
    assert.is_true(ttl > 0 and ttl <= 3000, "the owner's lease in Redis: " .. ttl .. " ms left, keys: " .. owners)
    helper.execute("kill -9 " .. a.pid)
    a.pipe:read("*a")
    a:close()
    assert.is_true(created, "A's task was recorded in the store")
    assert.is_false(helper.exists(out))
    local id = view:unfinished()[1].id
    local client = starvideos.new { api_key = KEY, base_url = emu.url, store = redis.url, lease = 3 }
    assert.same({}, assert(client:pending()))
    -- A's lease (3 s, renewed every second) runs out; keep looks every 0.5 s
    -- (keep looks until its timeout)
    local results = assert(client:keep { dir = helper.tmpdir(), timeout = 15, interval = 0.2 })
    assert.equal(1, #results)
    assert.is_nil(results[1].err)
    assert.equal(id, results[1].task.id)
    assert.equal(out, results[1].path)
    assert.is_true(helper.file_size(out) > 0)
    assert.equal(1, emu:creates())
    assert.same({}, assert(view:unfinished()))
    client:close()
  end)
end)
