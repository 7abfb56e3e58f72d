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
-- Sentinel's and Cluster's rows wait for those forms (issue 38 items 1-2) to land.
local B = require "bench.common"
local starvideos = require "starvideos"
local redis_run = require "spec.support.redis_run"
local helper = require "spec.helper"

local str_format = string.format
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

local NOT_THE_TASKS = { info = true, config = true, ["config|get"] = true }

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

local function cost_row(primary)
  local n = B.quick and 10 or 100
  local dir = B.tmp .. "/fleet-redis"
  assert(os.execute("mkdir -p " .. B.q(dir)))
  local client = starvideos.new { api_key = KEY, base_url = emu.url, store = primary.url, requests_per_second = 1e6 }
  assert(client:create { model = "videos", prompt = "warm up", duration = 5 }) -- (its CONFIG GET, the lease)
  local list = {}
  for i = 1, n do list[i] = { model = "videos", prompt = "bench task " .. i, duration = 5 } end
  local st = client.ctx.ledger.store -- (the client's store: what it sent, a command a round trip at most)
  local before, sent, cpu0, t0 = stats(primary.port), st.seq, cpu(primary.port), B.now()
  local results = client:generate_all(list, { out = dir .. "/%04d.mp4", interval = 0.1 })
  local took, sends, cpu1 = B.now() - t0, st.seq - sent, cpu(primary.port)
  local after = stats(primary.port)
  client:close()
  for i, r in ipairs(results) do assert(r.path and not r.err, "task " .. i .. ": " .. tostring(r.err)) end
  local calls, _, by = delta(before, after)
  local idle0 = cpu(primary.port) -- (Redis's own work in as long a time, no task: taken off)
  B.sleep(took)
  local idle = cpu(primary.port) - idle0
  local per, us = sends / n, math.max(cpu1 - cpu0 - idle, 0) * 1e6 / n
  print(str_format("one Redis: %d tasks created to saved in %.2f s: %d commands sent (%.2f a task); Redis ran %d "
    .. "(scripts' own included: %s) and used %.0f us of CPU a task (%.0f tasks/s on one Redis core)", n, took, sends,
    per, calls, table.concat(by, ", "), us, 1e6 / us))
  B.row { scenario = "Redis commands per task, create to saved (one Redis, replicas = 0)", baseline = "none",
    ours = per, unit = "commands", target = "<= 12", ok = per <= 12,
    note = str_format("client:generate_all of %d tasks to files, polled every 0.1 s (the emulator: queued 0 s, "
      .. "processing 0.1 s), requests_per_second 1e6 (each request's token a script too); the commands the client "
      .. "sent (a round trip at most: pipelined); Redis ran %d commands, scripts' own included (INFO commandstats, "
      .. "but INFO and CONFIG: %s); Redis's CPU (INFO cpu, less its %.0f ms in as long a time idle) %.0f us a task: "
      .. "%.0f tasks/s on one Redis core; %.2f s in all", n, calls, table.concat(by, ", "), idle * 1e3, us, 1e6 / us,
      took) }
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
  cost_row(servers[1])
  servers[2] = redis_run.primary() -- (no AOF: a write's fsync, a millisecond, would hide WAIT's cost)
  servers[3] = redis_run.replica(servers[2].port)
  assert(redis_run.wait_online(servers[2].port, 1), "the replica did not come online")
  wait_row(servers[2])
end)
for i = #servers, 1, -1 do servers[i].stop() end
helper.cleanup()
emu.stop()
if not ok then error(err, 0) end
