-- Two rows of make bench for the fleet on the Redis operators run (issue 38), on the project's emulator and
-- redis-servers of this script's own (127.0.0.1, free ports; stopped at the end, also on failure):
--   1. what a task costs Redis, create to saved: client:generate_all of N tasks to files with the ledger on
--      one Redis (appendonly, appendfsync always; replicas = 0): the commands the client's store sent (a round
--      trip at most: pipelined), per task; in the note the commands Redis ran (INFO commandstats, scripts' own
--      included) and Redis's CPU per task (INFO cpu), whose inverse is the sizing line of docs/keep-and-fleet.md
--      (tasks/s on one Redis core).  No baseline: the row says the count.
--   2. what WAIT adds per create: a create's two records (pending, created: a script each, waited for) on a
--      store with replicas = 1 (each followed by WAIT 1 on its connection) on a primary with a replica (no AOF:
--      its fsync would hide WAIT's cost), against the same records on a store with replicas = 0 on the same
--      primary; rounds taking turns, medians, the ratio the median of the rounds'.  (A whole create is
--      dominated by its HTTP exchange: the store alone.)
--   3-4. the same tasks through Sentinel (a primary, 2 replicas, 3 sentinels; redis+sentinel://, replicas = 1)
--      and through a Cluster (3 primaries; redis+cluster://), against one Redis: every command the client wrote
--      on the wire a task (its connections' hellos, the sentinels' lookups, ASKING and WAIT included: counted
--      where starvideos.redis's connections send), whose ratio is what each way adds; in the note the commands
--      Redis ran and Redis's CPU a task, over the primary (Sentinel) or the 3 nodes (Cluster).
local B = require "bench.common"
local str_format = string.format
local redis_run = require "rocks.redis.spec.support.redis_run"
local helper = require "spec.helper"

-- Every command starvideos.redis's connections write, counted by the server's port and by name (loaded before
-- fleet/conn.lua asks for it: its connections are these).
local wire = { by_port = {}, by_name = {} }
do
  local real = require "starvideos.redis"
  package.loaded["starvideos.redis"] = setmetatable({ connect = function(host, port, opts)
    local c, err = real.connect(host, port, opts)
    if not c then return c, err end
    return setmetatable({}, { __index = function(_, k)
      local f = c[k]
      if k ~= "send" then return function(_, ...) return f(c, ...) end end
      return function(_, name, ...)
        local key, cmd = tostring(port), tostring(name):upper()
        wire.by_port[key] = (wire.by_port[key] or 0) + 1
        wire.by_name[cmd] = (wire.by_name[cmd] or 0) + 1
        return f(c, name, ...)
      end
    end })
  end }, { __index = real })
end
local starvideos = require "starvideos"

-- The wire's counts now (a copy).
local function wire_now()
  local t = { by_port = {}, by_name = {} }
  for k, v in pairs(wire.by_port) do t.by_port[k] = v end
  for k, v in pairs(wire.by_name) do t.by_name[k] = v end
  return t
end

-- What was written since w0: commands in all, to the ports of `sentinels` (a set), and "NAME n" by name.
local function wire_since(w0, sentinels)
  local all, to_sentinels, by = 0, 0, {}
  for k, v in pairs(wire.by_port) do
    local d = v - (w0.by_port[k] or 0)
    all = all + d
    if sentinels and sentinels[k] then to_sentinels = to_sentinels + d end
  end
  for k, v in pairs(wire.by_name) do
    local d = v - (w0.by_name[k] or 0)
    if d > 0 then by[#by + 1] = str_format("%s %d", k, d) end
  end
  table.sort(by)
  return all, to_sentinels, table.concat(by, ", ")
end

local KEY = "bench-fleet-redis-key"
local emu = B.emulator(KEY, "--queued 0 --processing 0.1")
local servers = {}

-- INFO commandstats: command -> {calls, usec}.
local function stats(port)
  local t = {}
  local text = table.concat(redis_run.cli(port, "INFO", "commandstats"), "\n")
  for name, calls, usec in text:gmatch("cmdstat_([%w|_]+):calls=(%d+),usec=(%d+)") do
    t[name] = { calls = tonumber(calls), usec = tonumber(usec) }
  end
  return t
end

local NOT_THE_TASKS = { info = true, config = true, ["config|get"] = true, replconf = true, ping = true,
  publish = true } -- (INFO, CONFIG, and a replica's acknowledgements, a sentinel's pings and hellos)

-- The commands of b not in a (but INFO and CONFIG), their calls and usec, and the calls by command.
local function delta(a, b)
  local calls, usec, by = 0, 0, {}
  for name, s in pairs(b) do
    local d = s.calls - (a[name] and a[name].calls or 0)
    if d > 0 and not NOT_THE_TASKS[name] then
      calls, usec = calls + d, usec + s.usec - (a[name] and a[name].usec or 0)
      by[#by + 1] = str_format("%s %d", name, d)
    end
  end
  table.sort(by)
  return calls, usec, by
end

-- The server's CPU seconds (user + system) so far.
local function cpu(port)
  local i = redis_run.info(port, "cpu")
  return tonumber(i.used_cpu_user) + tonumber(i.used_cpu_sys)
end

-- INFO commandstats and cpu summed over the servers at ports.
local function stats_of(ports)
  local t = {}
  for _, port in ipairs(ports) do
    for name, v in pairs(stats(port)) do
      local s = t[name] or { calls = 0, usec = 0 }
      s.calls, s.usec, t[name] = s.calls + v.calls, s.usec + v.usec, s
    end
  end
  return t
end
local function cpu_of(ports)
  local sum = 0
  for _, port in ipairs(ports) do sum = sum + cpu(port) end
  return sum
end

-- N tasks created to saved through the store `store` (its Redis servers at ports; sentinels: a set of the
-- sentinels' ports): {n, took, per (the client's store commands a task), wire (every command written a task),
-- sentinel (those to the sentinels, a task), wire_by, calls, by, us (Redis's CPU a task), idle}.
local function cost(store, ports, sentinels)
  local n = B.quick and 10 or 100
  local dir = B.tmp .. "/fleet-redis"
  assert(os.execute("rm -rf " .. B.q(dir) .. " && mkdir -p " .. B.q(dir)))
  local start = wire_now()
  local client = starvideos.new { api_key = KEY, base_url = emu.url, store = store, requests_per_second = 1e6 }
  assert(client:create { model = "videos", prompt = "warm up", duration = 5 }) -- (its CONFIG GET, the lease)
  local set_up, _, set_up_by = wire_since(start)
  local list = {}
  for i = 1, n do list[i] = { model = "videos", prompt = "bench task " .. i, duration = 5 } end
  local st = client.ctx.ledger.store -- (the client's store: what it sent, a command a round trip at most)
  local before, sent, cpu0, w0, t0 = stats_of(ports), st.seq, cpu_of(ports), wire_now(), B.now()
  local results = client:generate_all(list, { out = dir .. "/%04d.mp4", interval = 0.1 })
  local took, sends, cpu1 = B.now() - t0, st.seq - sent, cpu_of(ports)
  local written, to_sentinels, wire_by = wire_since(w0, sentinels)
  local after = stats_of(ports)
  client:close()
  for i, r in ipairs(results) do assert(r.path and not r.err, "task " .. i .. ": " .. tostring(r.err)) end
  local calls, _, by = delta(before, after)
  local idle0 = cpu_of(ports) -- (Redis's own work in as long a time, no task: taken off)
  B.sleep(took)
  local idle = cpu_of(ports) - idle0
  return { n = n, took = took, per = sends / n, wire = written / n, sentinel = to_sentinels / n, wire_by = wire_by,
    calls = calls, by = table.concat(by, ", "), us = math.max(cpu1 - cpu0 - idle, 0) * 1e6 / n, idle = idle,
    set_up = str_format("%d (%s)", set_up, set_up_by) }
end

local function cost_row(primary)
  local c = cost(primary.url, { primary.port })
  print(str_format("one Redis: %d tasks created to saved in %.2f s: %d commands sent (%.2f a task; on the wire %.2f: "
    .. "%s); Redis ran %d (scripts' own included: %s) and used %.0f us of CPU a task (%.0f tasks/s on one Redis core)",
    c.n, c.took, c.per * c.n, c.per, c.wire, c.wire_by, c.calls, c.by, c.us, 1e6 / c.us))
  B.row { scenario = "Redis commands per task, create to saved (one Redis, replicas = 0)", baseline = "none",
    ours = c.per, unit = "commands", target = "<= 12", ok = c.per <= 12,
    note = str_format("client:generate_all of %d tasks to files, polled every 0.1 s (the emulator: queued 0 s, "
      .. "processing 0.1 s), requests_per_second 1e6 (each request's token a script too); the commands the client "
      .. "sent (a round trip at most: pipelined); on the wire, its connections' hellos too, %.2f a task (%s); Redis "
      .. "ran %d commands, scripts' own included (INFO commandstats, but INFO and CONFIG: %s); Redis's CPU (INFO "
      .. "cpu, less its %.0f ms in as long a time idle) %.0f us a task: %.0f tasks/s on one Redis core; %.2f s in all",
      c.n, c.wire, c.wire_by, c.calls, c.by, c.idle * 1e3, c.us, 1e6 / c.us, c.took) }
  return c
end

-- Sentinel's and Cluster's rows: every command written a task, against one Redis's (base, cost_row's).
local function ha_rows(base)
  local set = redis_run.start_sentinel()
  servers[#servers + 1] = set
  assert(redis_run.wait_online(set.primary.port, 2), "the replicas did not come online")
  local sentinels = {}
  for _, sn in ipairs(set.sentinels) do sentinels[tostring(sn.port)] = true end
  local s = cost({ url = set.url, replicas = 1, replica_timeout = 1 }, { set.primary.port }, sentinels)
  local cluster = redis_run.start_cluster()
  servers[#servers + 1] = cluster
  local ports = {}
  for i, node in ipairs(cluster.nodes) do ports[i] = node.port end
  local c = cost(cluster.url, ports)
  for _, r in ipairs { { "Sentinel", s, "Sentinel (a primary, 2 replicas, 3 sentinels; replicas = 1)",
    "redis+sentinel://, no AOF, replicas = 1 (a WAIT 1 after each record of a paid task, pipelined with it); "
      .. str_format("%.2f a task to the sentinels;", s.sentinel) },
    { "Cluster", c, "Cluster (3 primaries)",
      "redis+cluster://, no AOF, replicas = 0 (the fleet's keys on one node);" } } do
    local label, m, what, how = r[1], r[2], r[3], r[4]
    print(str_format("%s: %d tasks in %.2f s: on the wire %.2f commands a task (one Redis %.2f: %.2fx): %s; Redis "
      .. "ran %d, %.0f us of CPU a task", label, m.n, m.took, m.wire, base.wire, m.wire / base.wire, m.wire_by,
      m.calls, m.us))
    B.row { scenario = "Redis commands per task on the wire, create to saved: " .. what,
      baseline = "the same on one Redis (replicas = 0)", ours = m.wire, theirs = base.wire, ratio = m.wire / base.wire,
      unit = "commands", target = "<= 1.5x", ok = m.wire / base.wire <= 1.5,
      note = str_format("as row 29's tasks (%d, generate_all to files), %s every command the client's connections "
        .. "wrote (hellos, lookups, ASKING, WAIT included): %s; the client's store sent %.2f a task (one Redis "
        .. "%.2f); before, the client's first create wrote %s (one Redis %s); Redis ran %d commands (scripts' own "
        .. "included: %s), %.0f us of CPU a task (one Redis %.0f, with appendfsync always); %.2f s in all", m.n, how,
        m.wire_by, m.per, base.per, m.set_up, base.set_up, m.calls, m.by, m.us, base.us, m.took) }
  end
end

-- Seconds as the note shows them: microseconds.
local function us(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v * 1e6 end
  return B.list(t, "%.0f")
end

-- What WAIT adds to a create: its two records (pending, created), each a script and, with replicas = 1, its
-- WAIT on the same connection, written one after another and waited for, as a create's are.
local function wait_row(primary)
  local n = B.quick and 50 or 500
  local rounds = B.quick and 1 or 7
  local Store = require "starvideos.fleet.store"
  Store.define("bench_record", "redis.call('HSET', KEYS[1], 'state', ARGV[1]) return 1")
  local function records(st)
    return function()
      local t0 = B.now()
      for i = 1, n do
        for _, state in ipairs { "pending", "created" } do
          local v, e, short = st:script("bench_record", { "bench:{fleet}:task:" .. i }, { state }, true)
          assert(v == 1 and not short, tostring(e and e.message or short))
        end
      end
      return (B.now() - t0) / n
    end
  end
  local waited = Store.new(primary.url, { replicas = 1, replica_timeout = 1 })
  local plain = Store.new(primary.url)
  local ours, theirs = records(waited), records(plain)
  ours()
  theirs()
  local res = B.rounds(rounds, { { name = "wait", run = ours }, { name = "plain", run = theirs } })
  waited:close()
  plain:close()
  local o, t = B.median(res.wait), B.median(res.plain)
  local ratio = B.paired(res.wait, res.plain)
  print(str_format("a create's two records: replicas = 1 %.0f us, replicas = 0 %.0f us (WAIT adds %.0f us; %d a run, "
    .. "%d rounds)", o * 1e6, t * 1e6, (o - t) * 1e6, n, rounds))
  B.row { scenario = "a create's two records (pending, created) with replicas = 1: each WAITs for the replica",
    baseline = "the same records, replicas = 0", ours = o * 1e6, theirs = t * 1e6, ratio = ratio, unit = "us",
    target = "<= 3x", ok = ratio <= 3,
    note = str_format("the store alone (fleet/store.lua): a script writing a hash field, then its WAIT 1 on the same "
      .. "connection, waited for, twice a create, %d creates a run; a primary (no AOF: its fsync would hide WAIT) "
      .. "with one replica, both on loopback: WAIT adds %.0f us a create (a create's HTTP exchange with the service "
      .. "is tens of ms); medians of %d rounds taking turns; rounds (us): replicas = 1 %s; replicas = 0 %s", n,
      (o - t) * 1e6, rounds, us(res.wait), us(res.plain)) }
end

local ok, err = pcall(function()
  local why = redis_run.missing()
  if why then error(why, 0) end
  servers[1] = redis_run.primary { aof = true }
  local base = cost_row(servers[1])
  servers[2] = redis_run.primary() -- (no AOF: a write's fsync, a millisecond, would hide WAIT's cost)
  servers[3] = redis_run.replica(servers[2].port)
  assert(redis_run.wait_online(servers[2].port, 1), "the replica did not come online")
  wait_row(servers[2])
  ha_rows(base)
end)
for i = #servers, 1, -1 do servers[i].stop() end
helper.cleanup()
emu.stop()
if not ok then error(err, 0) end
