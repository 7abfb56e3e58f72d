-- Rows of make bench for the queue on a store (issue 80: client:submit, every keep working the queue), on
-- redis-servers of this script's own (127.0.0.1, free ports, appendonly with appendfsync always as
-- docs/keep-and-fleet.md's Redis settings ask; stopped at the end, also on failure):
--   1. client:submit of N = 10,000 entries (files' outs, 3 tenants, priorities 1-5): its wall time per entry (the
--      client's checks of each entry, as generate_all's, included), against the same entries' JSON written by one
--      bare script a chunk (one HSET an entry, as many scripts as submit sends: the write floor); rounds taking turns,
--      each on a key of its own (a prefix of its own: nothing known).
--   2. what a submit costs Redis per entry: the bytes it received (INFO stats total_net_input_bytes) against the bare
--      write's; in the note the commands Redis ran per entry (INFO commandstats, the scripts' own included).
--   3. a keeper taking the N entries one at a time with no create (the queue's claim, then its states "d" and "s",
--      as keep tells them): the commands Redis ran per entry (scripts' own included), and the claims' time at the
--      queue's start and end (no growth with the queue's length).  No baseline: the row says the count.
--   4. the idle cost of keepers with the queue empty and nothing to carry: 4 keeper processes (client:keep, the
--      defaults: a 30 s lease, a look every 5 s) on one Redis, the commands it received per second per keeper
--      (INFO stats total_commands_processed), against 4 keepers on a second Redis in the same window whose claims of
--      the queue answer "none" without the store (keep as it was before the queue).
local B = require "bench.common"
local redis_run = require "rocks.redis.spec.support.redis_run"
local helper = require "spec.helper"
local cjson = require "cjson"
local core = require "starvideos.core"
local str_format = string.format

local N = B.quick and 1000 or 10000
local ROUNDS = B.quick and 1 or 5
local IDLE = B.quick and 5 or 60 -- seconds the idle keepers are measured
local KEEPERS = 4
local servers = {}

-- INFO stats' total_net_input_bytes, INFO commandstats' calls summed (the scripts' own included; INFO and CONFIG left
-- out: the bench's own) and its scripts (EVAL), at port.
local function counters(port)
  local s = redis_run.info(port, "stats")
  local calls, bench, scripts = 0, 0, 0
  local text = table.concat(redis_run.cli(port, "INFO", "commandstats"), "\n")
  for name, n in text:gmatch("cmdstat_([%w|_]+):calls=(%d+)") do
    if name == "info" or name:find("^config") then bench = bench + tonumber(n) else calls = calls + tonumber(n) end
    if name:find("^eval") then scripts = scripts + tonumber(n) end -- (a script calls no script: each one sent)
  end
  return { bytes = tonumber(s.total_net_input_bytes), calls = calls, scripts = scripts }
end

-- What Redis did from a to b: bytes received, commands run (the scripts' own included), scripts received.
local function since(a, b)
  return { bytes = b.bytes - a.bytes, calls = b.calls - a.calls, scripts = b.scripts - a.scripts }
end

local TENANTS = { "pro", "free", "team" }
local function entries(n)
  local list = {}
  for i = 1, n do
    list[i] = { model = "videos", prompt = "queued bench entry " .. i, duration = 5, priority = i % 5 + 1 }
  end
  return list
end

-- One submit of the list on a key of its own (round r), tenant by thirds: {took, cost} (cost: Redis's counters).
local function submit(primary, list, dir, r)
  local starvideos = require "starvideos"
  local client = starvideos.new { api_key = "bench-queue-" .. r, base_url = "http://127.0.0.1:9", store = primary.url }
  assert(client:batch("none") == nil) -- (its connection, identity and prefix made before the clock starts)
  local third = math.ceil(#list / 3)
  local ledger, store_took = client.ctx.ledger, 0
  local enqueue = ledger.enqueue -- (the store's part timed: the rest is the client's checks of each entry)
  ledger.enqueue = function(...)
    local s0 = B.now()
    local a, b = enqueue(...)
    store_took = store_took + B.now() - s0
    return a, b
  end
  local before, t0 = counters(primary.port), B.now()
  for k, tenant in ipairs(TENANTS) do
    local part = {}
    for i = (k - 1) * third + 1, math.min(#list, k * third) do part[#part + 1] = list[i] end
    local got = assert(client:submit(part, { out = dir .. "/" .. tenant .. "-%05d.mp4", tenant = tenant }))
    assert(got.queued == #part, "queued " .. got.queued .. " of " .. #part)
  end
  local took = B.now() - t0
  local cost = since(before, counters(primary.port))
  ledger.enqueue = nil
  return { took = took, cost = cost, client = client, store = store_took }
end

-- The bare write of the same entries: each entry's JSON (as submit encodes it) and id, by one script a chunk of
-- submit's size, HSET an entry.
local function bare(primary, list, dir, r)
  local Store = require "starvideos.fleet.store"
  Store.define("bench_put", "for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end return 1")
  local st = Store.new(primary.url)
  assert(st:call("PING"))
  local chunk = require("starvideos.submit").CHUNK
  local before, t0 = counters(primary.port), B.now()
  local third = math.ceil(#list / 3)
  local args = {}
  for i, e in ipairs(list) do
    local tenant = TENANTS[math.floor((i - 1) / third) + 1]
    local out = str_format(dir .. "/" .. tenant .. "-%05d.mp4", i)
    local params = { model = e.model, prompt = e.prompt, duration = e.duration } -- (an entry's priority is the queue's)
    local data = cjson.encode { params = params, out = out, tenant = tenant, priority = e.priority }
    args[#args + 1], args[#args + 2] = core.hash(out), data
    if #args == 2 * chunk or i == #list then
      assert(st:script("bench_put", { "bench:{queue" .. r .. "}:data" }, args) == 1)
      args = {}
    end
  end
  local took = B.now() - t0
  local cost = since(before, counters(primary.port))
  st:close()
  return { took = took, cost = cost }
end

local function submit_rows(primary)
  local dir = B.tmp .. "/queue"
  assert(os.execute("mkdir -p " .. B.q(dir)))
  local list, ours, theirs, last = entries(N), {}, {}, nil
  local res = B.rounds(ROUNDS, {
    { name = "submit", run = function()
      if last then last.client:close() end
      last = submit(primary, list, dir, #ours + 1)
      ours[#ours + 1] = last
      return last.took / N
    end },
    { name = "bare", run = function()
      local b = bare(primary, list, dir, #theirs + 1)
      theirs[#theirs + 1] = b
      return b.took / N
    end } })
  local o, t = B.median(res.submit), B.median(res.bare)
  local ratio, ratios = B.paired(res.submit, res.bare)
  local us = function(l) local x = {} for i, v in ipairs(l) do x[i] = v * 1e6 end return B.list(x, "%.1f") end
  local oc, tc = ours[1].cost, theirs[1].cost
  local stores = {}
  for i, r in ipairs(ours) do stores[i] = r.store / N end
  local in_store = B.median(stores)
  print(str_format("submit of %d entries: %.1f us an entry (%.2f s; the store's scripts %.1f us of it), the bare write "
    .. "%.1f us (%.2fx); bytes in %.0f an entry (bare %.0f), commands %.2f an entry (scripts' own; bare %.2f), %d "
    .. "scripts (bare %d)", N, o * 1e6, o * N, in_store * 1e6, t * 1e6, ratio, oc.bytes / N, tc.bytes / N,
    oc.calls / N, tc.calls / N, oc.scripts, tc.scripts))
  B.row { scenario = str_format("client:submit of %d entries on one Redis: wall time per entry", N),
    baseline = "the same entries' JSON written by a bare script a chunk (HSET each)", ours = o * 1e6, theirs = t * 1e6,
    ratio = ratio, unit = "us", target = "<= 1000 us (10,000 in 10 s)", ok = o <= 1e-3,
    note = str_format("%d entries (model, prompt, duration 5, priorities 1-5) in 3 tenants' submits of a third each, "
      .. "files' outs; submit checks each entry as generate_all would (its params, its out; its folder probed once "
      .. "a submit), hashes its out, encodes it and sends a script each %d entries, which queues each in its "
      .. "tenant's line by priority: the store's scripts took %.1f us an entry of it (median of the rounds), the rest "
      .. "is the client's checks; the bare write encodes and hashes the same and HSETs each by a script each %d: %.2f "
      .. "s for all %d (bare %.2f s); %d rounds taking turns, each on a key (prefix) of its own, medians, the ratio "
      .. "the median of the rounds' (%s); rounds (us an entry): submit %s; bare %s; appendonly, appendfsync always", N,
      require("starvideos.submit").CHUNK, in_store * 1e6, require("starvideos.submit").CHUNK, o * N, N, t * N, ROUNDS,
      B.list(ratios, "%.2f"), us(res.submit), us(res.bare)) }
  B.row { scenario = str_format("client:submit of %d entries: bytes Redis received per entry", N),
    baseline = "the bare write of the same entries", ours = oc.bytes / N, theirs = tc.bytes / N, unit = "bytes",
    target = "<= 2x (its keys named beside its data)", ok = oc.bytes / tc.bytes <= 2,
    note = str_format("INFO stats total_net_input_bytes before and after the first round's submit (and bare write); "
      .. "Redis ran %.2f commands an entry, the scripts' own included (INFO commandstats; bare %.2f), in %d scripts "
      .. "(bare %d): each entry's line, state, data and batch, the tenant's name and waiting mark, its sequence "
      .. "number, and whether its key is known", oc.calls / N, tc.calls / N, oc.scripts, tc.scripts) }
  return last
end

-- A keeper taking every entry of the last submit, with no create: claim, "d", "s".
local function claim_row(primary, last)
  local ledger = last.client.ctx.ledger
  local k = assert(ledger:keeper())
  local times, before, t0 = {}, counters(primary.port), B.now()
  for i = 1, N do
    local c0 = B.now()
    local e = assert(k:queued { pro = 3, free = 1 }, "no entry " .. i)
    times[i] = B.now() - c0
    assert(k:queue_state(e, "d"))
    assert(k:queue_state(e, "s"))
  end
  local took = B.now() - t0
  assert(k:queued {} == false, "entries left")
  local cost = since(before, counters(primary.port))
  k:close()
  last.client:close()
  local head, tail = {}, {}
  for i = 1, math.floor(N / 10) do head[i], tail[i] = times[i], times[N - math.floor(N / 10) + i] end
  local per = cost.calls / N
  print(str_format("a keeper took %d entries (claim, d, s) in %.2f s: %.2f commands an entry (%.2f scripts), claims "
    .. "%.0f us at the start, %.0f us at the end", N, took, per, cost.scripts / N, B.median(head) * 1e6,
    B.median(tail) * 1e6))
  B.row { scenario = str_format("a keeper taking %d queued entries (claim, then the states \"d\" and \"s\"; no "
    .. "create): Redis commands per entry", N), baseline = "none", ours = per, unit = "commands", target = "<= 40",
    ok = per <= 40,
    note = str_format("the scripts' own included (INFO commandstats); %.2f scripts sent an entry; %.2f s for all, "
      .. "%.0f us an entry; a claim's median %.0f us over the first tenth of the queue, %.0f us over the last "
      .. "(3 tenants, weights 3, 1 and 1, priorities 1-5); a create's own records are row 29's", cost.scripts / N,
      took, took / N * 1e6, B.median(head) * 1e6, B.median(tail) * 1e6) }
end

-- KEEPERS keeper processes on each of two Redis (mode queue, noqueue), IDLE seconds measured once all started.
local function idle_row()
  local a, b = redis_run.primary { aof = true }, redis_run.primary { aof = true }
  servers[#servers + 1], servers[#servers + 2] = a, b
  local dir = B.tmp .. "/queue-idle"
  assert(os.execute("mkdir -p " .. B.q(dir)))
  local procs = {}
  for _, s in ipairs { { a, "queue" }, { b, "noqueue" } } do
    for _ = 1, KEEPERS do
      local p = assert(io.popen(str_format("%s rocks/redis/bench/lib/queue_keeper.lua %s %s %d %s 2>&1", B.lua,
        B.q(s[1].url), s[2], IDLE + 4, B.q(dir)))) -- (each ends 2 s after the window: read then)
      procs[#procs + 1] = p
    end
  end
  for _, p in ipairs(procs) do assert(p:read("*l") == "keeping", "a keeper did not start") end
  B.sleep(2) -- (their first looks, connections and leases made: not idle yet)
  local a0, b0, t0 = counters(a.port), counters(b.port), B.now()
  B.sleep(IDLE)
  local a1, b1 = counters(a.port), counters(b.port)
  local secs = B.now() - t0
  for _, p in ipairs(procs) do
    local said = p:read("*a")
    assert(said:find("ended\n", 1, true) == 1, "a keeper: " .. said)
    p:close()
  end
  local q, nq = since(a0, a1), since(b0, b1)
  local per = function(v) return v / secs / KEEPERS end
  local ours, theirs = per(q.calls), per(nq.calls)
  print(str_format("idle keepers, the queue empty: Redis ran %.3f commands/s a keeper, scripts' own included (%.3f "
    .. "scripts/s, %.0f bytes/s); without the queue's claims %.3f (%.3f scripts/s, %.0f bytes/s)", ours, per(q.scripts),
    per(q.bytes), theirs, per(nq.scripts), per(nq.bytes)))
  B.row { scenario = "an idle keeper, the queue empty, nothing to carry: Redis commands per second per keeper",
    baseline = "the same keepers without the queue's claims (keep before the queue)", ours = ours, theirs = theirs,
    unit = "commands/s", target = "<= 2x (a script more a look)", ok = ours / theirs <= 2,
    note = str_format("%d keeper processes on each of two Redis (client:keep with the defaults: a 30 s lease renewed "
      .. "every 10 s, a look at the ledger every 5 s and, the queue empty, a claim as often), measured together for "
      .. "%.0f s once all had started: the commands Redis ran (INFO commandstats, the scripts' own included); the "
      .. "scripts a keeper sent, %.3f a second (without the queue %.3f: %.2f more a 5 s look), the bytes Redis "
      .. "received, %.0f a second a keeper (without %.0f)", KEEPERS, secs, per(q.scripts), per(nq.scripts),
      (per(q.scripts) - per(nq.scripts)) * 5, per(q.bytes), per(nq.bytes)) }
end

local ok, err = pcall(function()
  local why = redis_run.missing(true)
  if why then error(why, 0) end
  servers[1] = redis_run.primary { aof = true }
  local last = submit_rows(servers[1])
  claim_row(servers[1], last)
  idle_row()
end)
for i = #servers, 1, -1 do servers[i].stop() end
helper.cleanup()
if not ok then error(err, 0) end
