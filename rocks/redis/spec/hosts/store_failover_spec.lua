-- A failover the process notices (issue 38 item 3): another server answers behind the store's address (a
-- promoted replica: INFO server's run id, heard on each new connection, is not the one heard before), and the
-- store has its watchers' records written there first, as at a reset: a ledger records again every task it
-- holds.  Real servers: a primary, a replica, the spec's TCP proxy in front of the primary (then pointed at
-- the promoted replica: a failover behind one address, as a virtual IP or a DNS name gives one), and for the
-- owner's case a second proxy on the replication link (cut: the replica falls behind), the emulator, an owner
-- killed -9 and a keep on the new primary.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local tcp_proxy = require "spec.support.tcp_proxy"

local missing = redis_run.missing()
local describe_redis = missing and pending or describe

local P = "starvideos:{spec-failover}:"
local KEY = "k-store-failover"

describe_redis("a failover behind the store's address", function()
  local Store = require "starvideos.fleet.store"
  -- KEYS[1] set to ARGV[1]; the answer: whether KEYS[2] is there
  Store.define("spec_seen", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('EXISTS', KEYS[2])")

  it("another server there (a promoted replica) has the watchers' records written on it first, told once as a "
    .. "failover; a new connection to the same server tells nothing", function()
      local primary = redis_run.primary()
      local replica = redis_run.replica(primary.port)
      local proxy = tcp_proxy.start { target = primary.port }
      local s = Store.new(proxy.url("redis"), { timeout = 2 })
      finally(function()
        s:close()
        for _, x in ipairs { proxy, replica, primary } do x.stop() end
        helper.cleanup()
      end)
      assert(redis_run.wait_online(primary.port, 1))
      local w = { told = {} }
      function w.records_again(_, told)
        w.told[#w.told + 1] = tostring(told)
        return { { "spec_seen", { P .. "kept", P .. "kept" }, { "again" } } }
      end
      s:watch(P, w, true)
      -- a script, once more if the connection was found broken (the proxy reset it while idle)
      local function script(k, v)
        local n, err = s:script("spec_seen", { P .. k, P .. "kept" }, { v })
        if n == nil then n, err = s:script("spec_seen", { P .. k, P .. "kept" }, { v }) end
        assert(n, err and err.message)
        return n
      end
      assert.equal(0, script("x", "1"))
      proxy.mode("cut") -- (the same server on a new connection)
      proxy.mode("pass")
      assert.equal(0, script("x", "2"))
      assert.same({}, w.told)
      assert(redis_run.caught_up(primary.port, replica.port)) -- (a failover, not a reset: the identity is there)
      assert.equal("OK", redis_run.cli(replica.port, "REPLICAOF", "NO", "ONE")[1])
      proxy.mode("to " .. replica.port)
      primary.stop()
      script("y", "3") -- (answered once the watcher's record is written)
      assert.same({ "failover" }, w.told)
      assert.equal("again", redis_run.cli(replica.port, "GET", P .. "kept")[1])
      assert.equal("3", redis_run.cli(replica.port, "GET", P .. "y")[1])
      assert.equal(1, script("z", "4"))
      assert.same({ "failover" }, w.told)
    end)

  -- The owner: BEFORE creates, each "created before I" (its record written), then once `go` exists AFTER more;
  -- then steps until it hears of another server (a warning that says so; at most 8 s): "failover N" (the tasks
  -- it recorded again) or "no failover"; then waits to be killed.
  local OWNER = [[
local starvideos = require "starvideos"
local socket = require "socket"
local url, store, before, after, go = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5]
local function say(line) io.write(line, "\n"); io.stdout:flush() end
local noticed
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, store = store, lease = 2,
  on_event = function(ev)
    if ev.type == "warning" and ev.message:find("another Redis server answers there now", 1, true) then noticed = ev end
  end }
local function create(name)
  local task = assert(client:create { model = "videos", prompt = name, duration = 5 })
  client:watch(task.id)
  say("created " .. name)
end
for i = 1, before do create("before " .. i) end
while not io.open(go) do client:step(0); socket.sleep(0.01) end
for i = 1, after do create("after " .. i) end
local t = socket.gettime() + 8
while not noticed and socket.gettime() < t do client:step(0); socket.sleep(0.02) end
assert(client:pending()) -- (a read: answered after the records sent again)
say(noticed and "failover " .. noticed.tasks or "no failover")
os.execute("sleep 60")
]]

  it("an owner whose primary fails over to a replica that lagged records its tasks again there; killed -9, a "
    .. "keep on the new primary saves every task paid for", function()
      local BEFORE, AFTER = 3, 3
      local dir = helper.tmpdir()
      local primary = redis_run.primary { aof = true }
      local link = tcp_proxy.start { target = primary.port } -- (the replication link)
      local replica = redis_run.replica(link.port, { aof = true })
      local front = tcp_proxy.start { target = primary.port } -- (the store's address)
      local emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.5 }
      local owner
      finally(function()
        if owner then helper.execute("kill -9 " .. owner.pid .. " 2>/dev/null"); owner:close() end
        for _, x in ipairs { front, replica, link, primary } do x.stop() end
        emu:stop()
        helper.cleanup()
      end)
      assert(redis_run.wait_online(primary.port, 1))
      local go = dir .. "/go"
      owner = helper.run_lua(dir, "owner", OWNER, { emu.url, front.url("redis"), tostring(BEFORE), tostring(AFTER),
        go })
      local lines = {}
      local function line()
        lines[#lines + 1] = owner.pipe:read("*l")
        return lines[#lines]
      end
      for i = 1, BEFORE do assert.are.equal("created before " .. i, line(), table.concat(lines, "\n")) end
      assert(redis_run.caught_up(primary.port, replica.port)) -- (the replica has them)
      link.mode("cut")
      assert(helper.wait_until(function() return redis_run.online(primary.port) == 0 end, 10))
      helper.write_file(go, "")
      for i = 1, AFTER do assert.are.equal("created after " .. i, line(), table.concat(lines, "\n")) end
      assert.equal("OK", redis_run.cli(replica.port, "REPLICAOF", "NO", "ONE")[1])
      front.mode("to " .. replica.port)
      primary.signal("KILL")
      local noticed = line()
      helper.execute("kill -9 " .. owner.pid)
      owner:close()
      owner = nil
      local keeper = helper.run_lua(dir, "keeper", redis_run.keeper(KEY), { emu.url, replica.url, dir, "20" })
      local out = keeper.pipe:read("*a")
      keeper:close()
      local paid, saved = emu:creates(), tonumber(out:match("ended: %d+ results, (%d+) saved"))
      local said = string.format("%s\npaid %d, saved %s, downloads %d\n%s", table.concat(lines, "\n"), paid,
        tostring(saved), #emu:video_ranges(), out)
      assert.are.equal(BEFORE + AFTER, paid, said)
      assert.are.equal(paid, saved, said) -- 0 lost: every task paid for saved, its video downloaded whole
      assert.are.equal(paid, #emu:video_ranges(), said)
      assert.are.equal("failover " .. (BEFORE + AFTER), noticed, said)
    end)

  -- The owner of replicas = 1 (issues 49, 55): a generate_all of N whose tasks take a while; its warnings,
  -- "finished T" (the seconds since the time the file `go` holds, the failover's), then "done SAVED" (at most 60 s).
  local RT = 1 -- (replica_timeout: what a WAIT of a primary with no replica lasts)
  local REPLICATED = [[
local starvideos = require "starvideos"
local socket = require "socket"
local url, store, dir, n = arg[1], arg[2], arg[3], tonumber(arg[4])
local function say(line) io.write(line, "\n"); io.stdout:flush() end
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, lease = 2,
  store = { url = store, replicas = 1, replica_timeout = ]] .. RT .. [[ },
  on_event = function(ev) if ev.type == "warning" then say("warning " .. ev.message) end end }
local list = {}
for i = 1, n do list[i] = { model = "videos", prompt = "replicated " .. i, duration = 5 } end
local results = client:generate_all(list, { interval = 0.2, timeout = 60,
  out = function(i) return dir .. "/v" .. i .. ".mp4" end })
local saved = 0
for _, r in ipairs(results) do if r.path and not r.err then saved = saved + 1 end end
local f = io.open(dir .. "/go")
say(string.format("finished %.1f", socket.gettime() - (f and tonumber(f:read("*a")) or 0)))
say("done " .. saved)
client:close()
]]

  -- (issue 55 item 3: each record written again after the failover had a WAIT of its own, and every answer of the
  -- store waited behind them, replica_timeout each: 10 tasks, none saved within 60 s; now one WAIT covers them)
  it("replicas = 1, a failover to a replica that has none: the 10 tasks already paid for are polled and downloaded "
    .. "within a few seconds, not replica_timeout a task, the shortage said once", function()
      local N = 10
      local dir = helper.tmpdir()
      local primary = redis_run.primary { aof = true }
      local replica = redis_run.replica(primary.port, { aof = true })
      local front = tcp_proxy.start { target = primary.port } -- (the store's address)
      local emu = helper.emulator { key = KEY, queued = 0.2, processing = 2 }
      local owner
      finally(function()
        if owner then helper.execute("kill -9 " .. owner.pid .. " 2>/dev/null"); owner:close() end
        for _, x in ipairs { front, replica, primary } do x.stop() end
        emu:stop()
        helper.cleanup()
      end)
      assert(redis_run.wait_online(primary.port, 1))
      owner = helper.run_lua(dir, "owner", REPLICATED, { emu.url, front.url("redis"), dir, tostring(N) })
      assert(helper.wait_until(function() return emu:creates() == N end, 30))
      assert(redis_run.caught_up(primary.port, replica.port))
      assert.equal("OK", redis_run.cli(replica.port, "REPLICAOF", "NO", "ONE")[1])
      front.mode("to " .. replica.port)
      primary.signal("KILL")
      helper.write_file(dir .. "/go", string.format("%.3f", require("socket").gettime()))
      helper.execute(string.format("(sleep 60; kill -9 %d) >/dev/null 2>&1 &", owner.pid)) -- (before: it stalled)
      local out = owner.pipe:read("*a")
      owner:close()
      owner = nil
      assert.matches("\ndone " .. N .. "\n$", "\n" .. out)
      -- (the tasks end 2 s after their create; before, every answer waited 1 s (RT) a record written again)
      local took = tonumber(out:match("\nfinished (%S+)"))
      assert.truthy(took and took < N * RT, out)
      for i = 1, N do assert.truthy(helper.read_file(dir .. "/v" .. i .. ".mp4"), out) end
      assert.equal(N, emu:creates())
      -- (the shortage said once after the failover; before it, a loaded machine's replica may lag a write by more
      -- than replica_timeout: said then too, rightly, and not counted here)
      local after = out:match("another Redis server answers there now.*$") or out
      local _, warned = after:gsub("not acknowledged by 1 replicas", "")
      assert.equal(1, warned, out)
      -- (a record written again after the failover, or the last task's created record, written just before it)
      assert.matches("not acknowledged by 1 replicas within 1 s (0 did); waited for again until it is", after, 1, true)
    end)
end)

-- Inside nginx (the store on cosockets: a connection of nginx's pool per command, INFO server on each new one): a
-- store that lives across requests, as keep's does in its timer.  GET /script?port=&k= runs spec_seen (K set)
-- on the store at port (made at the first request), once more if the connection was found broken; it answers
-- the failovers its watcher was told of.
local HANDLER = [[
local store = require "starvideos.fleet.store"
store.define("spec_seen", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('EXISTS', KEYS[2])")
local P = "]] .. P .. [["
local M = {}
local s, w, told -- (w held here: a store holds its watchers weakly, as a client holds its ledger)
function M.run()
  if not s then
    s, told = store.new("redis://127.0.0.1:" .. ngx.var.arg_port, { timeout = 2 }), 0
    w = { records_again = function(_, why)
      told = told + (why == "failover" and 1 or 0)
      return { { "spec_seen", { P .. "kept", P .. "kept" }, { "again" } } }
    end }
    s:watch(P, w, true)
  end
  local v, err = s:script("spec_seen", { P .. ngx.var.arg_k, P .. "none" }, { "1" })
  if v == nil then v, err = s:script("spec_seen", { P .. ngx.var.arg_k, P .. "none" }, { "1" }) end
  ngx.say(v and "told " .. told or "error " .. tostring(err.message))
end
return M
]]

local nginx_run = require "spec.support.nginx_run"
local ngx_why = missing or nginx_run.missing { "nginx" }
local describe_nginx = ngx_why and pending or describe

describe_nginx("a failover behind the store's address inside nginx", function()
  it("another server there has the records of a store that lives across requests written on it, told once",
    function()
      local dir = helper.tmpdir()
      local primary = redis_run.primary()
      local replica = redis_run.replica(primary.port)
      local proxy = tcp_proxy.start { target = primary.port }
      local run
      finally(function()
        if run then run.stop() end
        for _, x in ipairs { proxy, replica, primary } do x.stop() end
        helper.cleanup()
      end)
      assert(redis_run.wait_online(primary.port, 1))
      helper.write_file(dir .. "/seen.lua", HANDLER)
      run = redis_run.nginx(dir, { "location = /script { content_by_lua_block { require('seen').run() } }" })
      local http = require "socket.http"
      local function get(k)
        return (http.request(string.format("http://127.0.0.1:%d/script?port=%d&k=%s", run.port, proxy.port, k)))
      end
      assert.equal("told 0\n", get("a"), helper.read_file(dir .. "/error.log"))
      assert.equal("told 0\n", get("b"))
      assert(redis_run.caught_up(primary.port, replica.port))
      assert.equal("OK", redis_run.cli(replica.port, "REPLICAOF", "NO", "ONE")[1])
      proxy.mode("to " .. replica.port)
      primary.stop()
      assert.equal("told 1\n", get("c"), helper.read_file(dir .. "/error.log"))
      assert.equal("again", redis_run.cli(replica.port, "GET", P .. "kept")[1])
      assert.equal("told 1\n", get("d"))
    end)
end)
