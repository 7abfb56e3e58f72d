-- The Redis ledger (rocks/redis/lua/starvideos/fleet/ledger.lua) against a real
-- redis-server (rocks/redis/spec/support/redis_run.lua), beyond the ledger cases every ledger passes
-- (rocks/redis/spec/hosts/ledger_cases_redis_spec.lua): the samples, leases with time
-- (a live owner's task never taken, one that stops renewing orphaned after its
-- lease), two processes claiming orphans at once never take one task twice,
-- create_limit across two processes allows exactly N, and Redis stopped:
-- before_create refuses (kind io, naming the store, never the password), the
-- records after a create are queued and written when Redis is back.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local core = require "starvideos.core"
local R = require "starvideos.fleet.ledger"
local Schedule = require "starvideos.schedule"
local config = require "starvideos.config"
local kind_of = require("starvideos.schedule").kind_of

-- The samples of a kind as the store keeps them: {took, within}, newest first.
local function stored_samples(url, key, kind)
  local st = require("starvideos.fleet.store").new(url)
  local prefix = "starvideos:{" .. redis_run.key_hash("http://fleet", key) .. "}:"
  local out = {}
  for i, v in ipairs(assert(st:call("LRANGE", prefix .. "samples:" .. kind, 0, -1))) do
    local took, within = v:match("^(%S+) ?(%S*)$")
    out[i] = { tonumber(took), tonumber(within) }
  end
  st:close()
  return out
end

local q = helper.shell_quote
local PARAMS = { model = "videos", prompt = "a cat", duration = 5, resolution = "720p" }
local ENV = helper.CHILD_ENV

-- A child process: claims orphans for `seconds` (prints "claim ID" each), or
-- tries `n` creates under create_limit (prints "ok" or "refused KIND FIELD").
local CHILD = [[
local R = require "starvideos.fleet.ledger"
local core = require "starvideos.core"
local what, url, key, n = arg[1], arg[2], arg[3], tonumber(arg[4])
local ledger = R.new(url, { base_url = "http://fleet", api_key = key, lease = 30, connect_timeout = 5,
  create_limit = { count = 5, per = 60 } })
if what == "claim" then
  local k = assert(ledger:keeper())
  local stop = core.now() + n
  while core.now() < stop do
    local tasks = assert(k:orphans())
    for _, t in ipairs(tasks) do io.stdout:write("claim ", t.id, "\n") end
  end
  io.stdout:write("done\n")
else
  for i = 1, n do
    local ok, err = ledger:before_create({ model = "videos", prompt = "p" .. i }, "l" .. i .. "-" .. tostring(ledger))
    io.stdout:write(ok and "ok" or ("refused " .. tostring(err.kind) .. " " .. tostring(err.field)), "\n")
  end
end
ledger:close()
]]

local function cfg_of(key, extra)
  local cfg = { base_url = "http://fleet", api_key = key, lease = 1, connect_timeout = 5 }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return cfg
end

local n_keys = 0
local function fresh_key()
  n_keys = n_keys + 1
  return "k-fleet-" .. n_keys .. "-" .. core.random_id()
end

local function ids(list)
  local out = {}
  for _, t in ipairs(list) do out[#out + 1] = t.id end
  table.sort(out)
  return out
end

describe("the Redis ledger", function()
  local redis, dir
  setup(function()
    local missing = redis_run.missing()
    if missing then error(missing) end
    redis = redis_run.start()
  end)
  teardown(function()
    if redis then redis.stop() end
    helper.cleanup()
  end)
  before_each(function() dir = helper.tmpdir() end)

  it("keeps at most `samples` per kind and teaches the schedule, a read across a loop's turns", function()
    local key, keep = fresh_key(), config.DEFAULTS.samples
    local l = R.new(redis.url, cfg_of(key))
    for i = 1, keep + 10 do
      assert.is_true(l:before_create(PARAMS, "s" .. i))
      l:created({ id = "s" .. i }, PARAMS, "s" .. i)
      l:status("s" .. i, "completed", 100 + i, 1)
    end
    assert.same({}, R.new(redis.url, cfg_of(fresh_key())):unfinished(), "another key's records are its own")
    local kind = kind_of("videos", 5, "720p")
    local got = stored_samples(redis.url, key, kind)
    assert.equal(keep, #got)
    assert.same({ 100 + keep + 10, 1 }, got[1]) -- newest first
    l:close()
    -- a new process's ledger on a loop: sent at the first turn, read when ready
    local cfg = cfg_of(key)
    local learner
    local Key = require "starvideos.key"
    local budget = Key.for_client(cfg) -- the key's object, its shared work seen here
    budget.share = function(_, reader) learner = reader end
    local loop = { own = false, turning = function() end, at = function() end }
    R.new(redis.url, cfg, loop, budget)
    assert.truthy(learner, "the samples' read was not handed to the key's loops")
    assert.is_nil(Schedule.of(budget, cfg):estimate(kind))
    assert.is_false(learner:turn(), "the samples' answer cannot be there before they are asked for")
    local turns = 0
    while not learner:turn() do turns = turns + 1; assert(turns < 100000, "never read") end
    assert.is_truthy(Schedule.of(budget, cfg):estimate(kind), "nothing learned from the store's samples")
    -- without a loop, at once
    local other = Key.for_client(cfg_of(key)) -- another process's key: a new object
    R.new(redis.url, cfg_of(key), nil, other)
    assert.is_truthy(Schedule.of(other, cfg):estimate(kind))
  end)

  it("never takes a live owner's task; takes it once its owner stops renewing for a lease", function()
    local key = fresh_key()
    local owner = R.new(redis.url, cfg_of(key)) -- lease 1 s
    assert.is_true(owner:before_create(PARAMS, "a"))
    owner:created({ id = "live" }, PARAMS, "a")
    local keep = R.new(redis.url, cfg_of(key))
    local k = assert(keep:keeper())
    local stop = core.now() + 2.5
    while core.now() < stop do -- the owner renews (its drive loop), the keeper looks
      assert.is_true(owner:renew())
      assert.same({}, (k:orphans()))
      helper.sleep(0.05)
    end
    -- the owner stops renewing (a process stopped or dead): orphaned after its lease
    local t0 = core.now()
    local got
    while core.now() - t0 < 5 do
      got = k:orphans()
      if got[1] then break end
      helper.sleep(0.05)
    end
    assert.same({ "live" }, ids(got))
    local waited = core.now() - t0
    assert.is_true(waited > 0.5 and waited < 3, "orphaned after " .. waited .. " s, the lease is 1 s")
    assert.same({}, (k:orphans()), "claimed once")
    -- the keeper's own task, offered again when due, not before
    k.again.live = core.now() + 0.3
    assert.same({}, (k:orphans()))
    helper.sleep(0.4)
    assert.same({ "live" }, ids((k:orphans())))
    -- a closed client lets go at once (its process's last ledger of the key):
    -- its task is the keeper's next look
    owner:close()
    local owner2 = R.new(redis.url, cfg_of(key))
    assert.is_true(owner2:before_create(PARAMS, "b"))
    owner2:created({ id = "closed" }, PARAMS, "b")
    assert.same({}, (k:orphans()))
    owner2:close()
    assert.same({ "closed" }, ids((k:orphans())))
    k:close()
    keep:close()
  end)

  it("fences (beyond the ledger cases): a claim takes the task's next number in the store; renewed after a lapse, "
    .. "the owner asks first all the same; a create's record written again keeps the claim's holder and number",
    function()
    local key = fresh_key()
    local prefix = "starvideos:{" .. redis_run.key_hash("http://fleet", key) .. "}:"
    local st = require("starvideos.fleet.store").new(redis.url)
    local owner = R.new(redis.url, cfg_of(key)) -- lease 1 s
    assert.is_true(owner:before_create(PARAMS, "a"))
    owner:created({ id = "f1" }, PARAMS, "a")
    assert.are.equal("1", st:call("HGET", prefix .. "task:f1", "fence"))
    helper.sleep(1.2) -- not renewed for a lease (a process stopped, a store out of reach)
    local keep = R.new(redis.url, cfg_of(key))
    local k = assert(keep:keeper())
    assert.same({ "f1" }, ids(assert(k:orphans())))
    assert.is_true(owner:renew())
    assert.is_true(owner:lapsed("f1"), "renewed after a lapse: it asks first all the same")
    assert.are.equal("2", st:call("HGET", prefix .. "task:f1", "fence"))
    assert.are.equal(2, (keep.fences:holder("f1")))
    -- (a queued replay, a store reset)
    owner:created({ id = "f1" }, PARAMS, "a")
    owner:flush()
    assert.same({ k.id, "2" }, st:call("HMGET", prefix .. "task:f1", "owner", "fence"))
    st:close()
    k:close()
    keep:close()
    owner:close()
  end)

  it("two processes claiming orphans at once never take one task twice", function()
    local key = fresh_key()
    local owner = R.new(redis.url, cfg_of(key))
    local N = 60
    for i = 1, N do
      assert.is_true(owner:before_create(PARAMS, "c" .. i))
      owner:created({ id = "o" .. i }, PARAMS, "c" .. i)
    end
    helper.write_file(dir .. "/child.lua", CHILD)
    local cmd = ENV .. q(helper.lua) .. " " .. q(dir .. "/child.lua") .. " claim " .. q(redis.url) .. " " .. key
      .. " 2"
    local c1, c2 = helper.spawn(cmd), helper.spawn(cmd)
    owner:close() -- every task orphaned while both look
    local seen, per = {}, {}
    for i, c in ipairs { c1, c2 } do
      local text = c.pipe:read("*a")
      assert.truthy(c:close())
      assert.matches("done\n$", text)
      per[i] = 0
      for id in text:gmatch("claim (%S+)") do
        assert.is_nil(seen[id], id .. " claimed twice")
        seen[id], per[i] = i, per[i] + 1
      end
    end
    for i = 1, N do assert.truthy(seen["o" .. i], "o" .. i .. " claimed by nobody") end
    assert.equal(N, per[1] + per[2])
  end)

  it("create_limit across two processes allows exactly N creates", function()
    local key = fresh_key()
    helper.write_file(dir .. "/child.lua", CHILD)
    local cmd = ENV .. q(helper.lua) .. " " .. q(dir .. "/child.lua") .. " creates " .. q(redis.url) .. " " .. key
      .. " 8"
    local c1, c2 = helper.spawn(cmd), helper.spawn(cmd)
    local ok, refused = 0, 0
    for _, c in ipairs { c1, c2 } do
      local text = c.pipe:read("*a")
      assert.truthy(c:close())
      for line in text:gmatch("[^\n]+") do
        if line == "ok" then ok = ok + 1
        else
          assert.equal("refused rate_limited create_limit", line)
          refused = refused + 1
        end
      end
    end
    assert.equal(5, ok)
    assert.equal(11, refused)
    local pend, perr = R.new(redis.url, cfg_of(key)):pending()
    assert.equal(5, #assert(pend, perr), "a pending record per allowed create")
  end)

  it("Redis stopped: refuses creates naming the store (not the password), queues the records after a create", function()
    local pw = "s3cret-pw"
    local r2 = redis_run.start { password = pw }
    local ok, err = pcall(function()
      local l = R.new(r2.url, cfg_of(fresh_key()))
      assert.is_true(l:before_create(PARAMS, "before"))
      r2.stop()
      local done, cerr = l:before_create(PARAMS, "down")
      assert.is_nil(done)
      assert.equal("io", cerr.kind)
      assert.equal("store", cerr.field)
      assert.matches("redis://127.0.0.1:" .. r2.port .. "/0", cerr.message, 1, true)
      assert.matches("nothing was sent", cerr.message, 1, true)
      assert.is_nil(cerr.message:find(pw, 1, true))
      assert.is_nil(tostring(cerr):find(pw, 1, true))
      -- the create of "before" was sent: its records wait in memory
      assert.is_true(l:created({ id = "t-down" }, PARAMS, "before"))
      l:status("t-down", "processing")
      l:status("t-down", "completed", 90, 1)
      assert.equal(4, #l.queue) -- and "down"'s abandoned record: its ask was sent, Redis might have run it
      assert.is_nil((l:unfinished()))
      -- back (empty: no persistence in this spec's Redis)
      r2 = redis_run.start { password = pw, port = r2.port }
      assert.is_true(l:flush())
      assert.equal(0, #l.queue)
      local fresh = R.new(r2.url, cfg_of(l.cfg.api_key))
      assert.same({ { id = "t-down", model = "videos" } }, fresh:unfinished())
      assert.same({ { 90, 1 } }, stored_samples(r2.url, l.cfg.api_key, kind_of("videos", 5, "720p")))
      local st = require("starvideos.fleet.store").new(r2.url)
      assert.equal("completed", st:call("HGET", l.prefix .. "task:t-down", "status"))
      assert.equal(l:owner(), st:call("HGET", l.prefix .. "task:t-down", "owner"))
      st:close()
      assert.is_true(l:before_create(PARAMS, "after"))
      l:close()
    end)
    r2.stop()
    assert(ok, err)
  end)

  it("Redis never reachable: the ledger is made, a create is refused (io, the store named), reads fail", function()
    local port = helper.free_ports(1)[1]
    local l = R.new("redis://:hunter2@127.0.0.1:" .. port .. "/2", cfg_of(fresh_key()))
    local ok, err = l:before_create(PARAMS, "x")
    assert.is_nil(ok)
    assert.same({ "io", "store" }, { err.kind, err.field })
    assert.matches("store redis://127.0.0.1:" .. port .. "/2", err.message, 1, true)
    assert.is_nil(err.message:find("hunter2", 1, true))
    local list, rerr = l:unfinished()
    assert.is_nil(list)
    assert.matches("redis://127.0.0.1:" .. port .. "/2", rerr, 1, true)
    assert.is_nil((l:keeper()))
  end)

  it("refuses a bad store URL naming store, never the password", function()
    local ok, err = pcall(R.new, "redis://:hunter2@host:70000", cfg_of("k"))
    assert.is_false(ok)
    assert.matches("^store ", err)
    assert.is_nil(err:find("hunter2", 1, true))
    local options = require "starvideos.config"
    ok, err = pcall(options.client, { store = "redis://:hunter2@h/x" })
    assert.is_false(ok)
    assert.matches("bad option 'store'", err, 1, true)
    assert.is_nil(err:find("hunter2", 1, true))
    assert.equal("redis://127.0.0.1:1/3", options.client({ store = "redis://127.0.0.1:1/3" }).store)
  end)

  it("takes the process's lease from `lease` on new (default 30 s), at least 1 s, in milliseconds", function()
    local options = require "starvideos.config"
    assert.equal(30000, R.new("redis://127.0.0.1:1", options.client({ api_key = "k" })).lease_ms)
    assert.equal(2500, R.new("redis://127.0.0.1:1", options.client({ api_key = "k", lease = 2.5 })).lease_ms)
    for _, bad in ipairs { 0.5, 0, -1, "30", 86401, 0 / 0 } do
      local ok, err = pcall(options.client, { api_key = "k", lease = bad })
      assert.is_false(ok)
      assert.matches("bad option 'lease' to 'new' (a number of seconds in [1, 86400] expected", err, 1, true)
    end
  end)

  describe("client:tasks and keep{once} on a store (the emulator and a real redis-server)", function()
    local starvideos = require "starvideos"
    local emu
    require "spec.support.shared_emulator" ({ queued = 0.2, processing = 0.2 }, function(e) emu = e end)

    local function client(key, extra)
      local o = { api_key = key, base_url = emu.url, store = redis.url, min_interval = 0, retry_backoff = 0.01,
        max_retries = 0 }
      for k, v in pairs(extra or {}) do o[k] = v end
      return starvideos.new(o)
    end

    it("lists every task with its state, file, error and prompt head; state filters; another key sees none", function()
      local key = emu.key
      local c = client(key)
      local long = string.rep("ü", 90)
      local done = assert(c:generate({ model = "videos", prompt = long, duration = 5 },
        { out = dir .. "/done.mp4", interval = 0.05 }))
      assert(c:generate({ model = "videos_fast", prompt = "no file", duration = 5 }, { interval = 0.05 }))
      emu:config { outcome = "failed" }
      assert.is_nil((c:generate({ model = "videos", prompt = "fails", duration = 5 }, { interval = 0.05 })))
      emu:config { outcome = "completed", queued = 2 }
      local job = assert(c:start({ model = "videos", prompt = "queued", duration = 5 }, { out = dir .. "/q.mp4" }))
      assert(helper.wait_until(function() c:step(0.05); return job.id ~= nil end, 10))
      emu:fault { method = "POST", path = "/v1/", drop = true, after = true }
      local _, perr = c:create { model = "videos", prompt = "answer lost", duration = 5 }
      assert.is_true(perr.maybe_created)
      c:close()

      local c2 = client(key)
      local list = assert(c2:tasks())
      local states, by = {}, {}
      for i, t in ipairs(list) do
        states[i], by[t.state] = t.state, t
        assert.is_number(t.created_at)
      end
      assert.same({ "downloaded", "completed", "failed", "created", "pending" }, states)
      assert.same({ done.id, dir .. "/done.mp4", dir .. "/done.mp4", helper.file_size(dir .. "/done.mp4"), "videos",
        string.rep("ü", 80) }, { by.downloaded.id, by.downloaded.out, by.downloaded.path, by.downloaded.bytes,
        by.downloaded.model, by.downloaded.prompt })
      -- the file's SHA-256, in generate's task and in the store's record (as sha256sum reads it)
      local sum = helper.capture("sha256sum " .. helper.shell_quote(dir .. "/done.mp4")):match("^(%x+)")
      assert.same({ sum, sum }, { done.sha256, by.downloaded.sha256 })
      assert.equal("ok", assert(c2:tasks { check = true })[1].check)
      assert.same({ "videos_fast", "no file" }, { by.completed.model, by.completed.prompt })
      assert.matches("Reference image resolution is too low", by.failed.error, 1, true)
      assert.same({ job.id, dir .. "/q.mp4", "queued" }, { by.created.id, by.created.out, by.created.status })
      assert.same({ perr.pending, "answer lost" }, { by.pending["local"], by.pending.prompt })
      assert.equal(1, #assert(c2:tasks { state = "failed" }))
      assert.same({}, assert(client("another-key"):tasks()))

      -- keep{once}: the unfinished tasks of the closed process carried, the queued one to
      -- its recorded out, the completed one (no out) into dir; the pending create reported
      local claims, fallback = {}, helper.tmpdir()
      c2.on_event = function(ev) if ev.type == "claim" then claims[ev.id] = ev end end
      local res = assert(c2:keep { dir = fallback, once = true, interval = 0.1 })
      local got = {}
      for _, r in ipairs(res) do got[r.task and r.task.id or r.err.pending] = r end
      assert.same({ dir .. "/q.mp4", "out" }, { got[job.id].path, got[job.id].saved_to })
      assert.same({ fallback .. "/" .. by.completed.id .. ".mp4", "dir" },
        { got[by.completed.id].path, got[by.completed.id].saved_to })
      assert.is_true(got[perr.pending].err.maybe_created)
      assert.same({ job.id, dir .. "/q.mp4" }, { claims[job.id].id, claims[job.id].path })
      assert.is_string(claims[job.id].from)
      assert.equal(3, #assert(c2:tasks { state = "downloaded" }))
      assert.equal(5, emu:creates())
      c2:close()
    end)

    it("a download that ends after its lease lapsed with the store gone: its commit waits for the store, then "
      .. "ends with timeout, naming the .part where the whole video stays", function()
      local own = redis_run.start()
      finally(function() own.stop() end)
      local c = client(emu.key, { store = own.url, lease = 1 })
      local out = dir .. "/late.mp4"
      emu:fault { path = "/videos/", delay = 2.5, count = 1 } -- its bytes come after the lease ran out
      local job = assert(c:start({ model = "videos", prompt = "late", duration = 5 },
        { out = out, interval = 0.1, timeout = 6 }))
      assert(helper.wait_until(function() c:step(0.01); return job.state == "downloading" end, 10), "no download")
      own.stop()
      assert(helper.wait_until(function() c:step(0.01); return job.done end, 15), "the job never ended")
      assert.equal("timeout", job.err and job.err.kind)
      assert.matches("did not confirm in time", job.err.message, 1, true)
      assert.matches(out .. ".part", job.err.message, 1, true)
      assert.is_nil(helper.file_size(out))
      assert.truthy(helper.whole_mp4(out .. ".part", 5))
      c:close()
    end)

    it("keep never claims its own process's tasks, even once its lease ran out: that process's jobs carry them",
      function()
      local st = require("starvideos.fleet.store").new(redis.url)
      assert(st:call("FLUSHALL"))
      st:close()
      local c = client(emu.key, { lease = 1 })
      local out = dir .. "/own.mp4"
      local job = assert(c:start({ model = "videos", prompt = "own", duration = 5 }, { out = out, interval = 0.1 }))
      assert(helper.wait_until(function() c:step(0.01); return job.id ~= nil end, 10), "no create")
      helper.sleep(1.5) -- its lease runs out (nothing stepped)
      assert.same({}, assert(c:keep { dir = dir, once = true, interval = 0.1 }))
      assert(helper.wait_until(function() c:step(0.01); return job.done end, 10), "the job never ended")
      assert.same({ "done", nil, out }, { job.state, job.err, job.path })
      assert.equal(1, #emu:video_ranges())
      c:close()
    end)

    it("a job without out whose process lapsed while a keep took its task ends 'taken', naming the keeper's file, "
      .. "and sends no webhook", function()
      local key = emu.key
      local st = require("starvideos.fleet.store").new(redis.url)
      assert(st:call("FLUSHALL")) -- (the emulator's key: nothing of the cases before for the keep to carry)
      local taken = {}
      local owner = client(key, { lease = 1, notify = { url = "http://127.0.0.1:9/hook", secret = "s" },
        on_event = function(ev) if ev.type == "taken" then taken[#taken + 1] = ev end end })
      local job = assert(owner:start({ model = "videos", prompt = "no out", duration = 5 }, { interval = 0.1 }))
      assert(helper.wait_until(function() owner:step(0.01); return job.id ~= nil end, 10), "no create")
      helper.sleep(1.5) -- its lease runs out (a process stopped)
      local keeper = client(key, { lease = 1 })
      local res = assert(keeper:keep { dir = dir, once = true, interval = 0.1 })
      assert.equal(1, #res)
      local saved = dir .. "/" .. job.id .. ".mp4"
      assert.equal(saved, res[1].path)
      keeper:close() -- (its records written)
      assert(helper.wait_until(function() owner:step(0.01); return job.done end, 10), "the owner's job never ended")
      assert.same({ "taken", nil, saved }, { job.state, job.err, job.path })
      assert.equal(1, #taken)
      assert.same({ job.id, true }, { taken[1].id, type(taken[1].by) == "string" })
      local prefix = "starvideos:{" .. redis_run.key_hash(emu.url, key) .. "}:"
      assert.equal(0, st:call("SCARD", prefix .. "owed"), "an event owed: the owner's webhook")
      st:close()
      assert.equal(1, #emu:video_ranges())
      owner:close()
    end)
  end)
end)
