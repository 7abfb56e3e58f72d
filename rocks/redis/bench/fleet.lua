-- Two rows of make bench for the fleet (issue 14), on the project's emulator
-- and a redis-server of this script's own (127.0.0.1, a free port, no
-- persistence; stopped at the end, also on failure):
--   1. the cost of a create and a poll: client:create then client:query of
--      that task, on a client whose ledger is the store, against the same on
--      a client whose ledger is a journal (a file in BENCH_TMP), on an
--      emulator of its own started alike (one loop and budget per base URL and key:
--      on the first emulator the journal's client would share the store
--      client's budget, and so take its tokens from Redis too); rounds
--      taking turns, the median time per create+poll of each.
--   2. the fleet's throughput at a budget R: two processes
--      (rocks/redis/bench/lib/fleet_child.lua) sharing the store, each creating N tasks
--      at one moment and waiting for them all (interval 0.2 s: the budget,
--      not the interval, sets the pace); tasks per second from the first
--      start to the last end, against R / (API requests per task): the
--      creates and polls counted at the emulator (a create draws a token from
--      the key's budget as a poll does): what the budget allows when it is
--      used to the full.
--      Over 1x would mean the two processes polled beyond one budget.
local B = require "bench.common"
local starvideos = require "starvideos"
local redis_run = require "rocks.redis.spec.support.redis_run"
local helper = require "spec.helper"

local str_format = string.format
local KEY = "bench-fleet-key"
local EMU_ARGS = "--queued 0 --processing " .. (B.quick and "0.3" or "1")
local emu = B.emulator(KEY, EMU_ARGS)
local srv, emu2 -- emu2: the cost row's baseline's own emulator

local function polls_and_creates(list)
  local polls, creates = 0, 0
  for _, r in ipairs(list) do
    if r.method == "GET" and r.path:find("^/v1/result/") then polls = polls + 1 end
    if r.method == "POST" then creates = creates + 1 end
  end
  return polls, creates
end

local function cost_row()
  local n = B.quick and 20 or 200
  local rounds = B.quick and 1 or 5
  local params = { model = "videos", prompt = "bench ledger", duration = 5 }
  local function pairs_of(client)
    return function()
      local t0 = B.now()
      for _ = 1, n do
        local task = assert(client:create(params))
        assert(client:query(task.id))
      end
      return (B.now() - t0) / n
    end
  end
  emu2 = B.emulator(KEY, EMU_ARGS) -- the baseline's: no budget, no token shared with the store's client
  local store = starvideos.new { api_key = KEY, base_url = emu.url, store = srv.url, requests_per_second = 1e6 }
  local journal = starvideos.new { api_key = KEY, base_url = emu2.url, journal = B.tmp .. "/fleet-bench.jsonl",
    requests_per_second = 1e6 }
  local ours, theirs = pairs_of(store), pairs_of(journal)
  ours()
  theirs()
  local res = B.rounds(rounds, { { name = "store", run = ours }, { name = "journal", run = theirs } })
  store:close()
  journal:close()
  local o, t = B.median(res.store), B.median(res.journal)
  local ratio = B.paired(res.store, res.journal)
  print(str_format("create+poll: store %.2f ms, journal %.2f ms (%d pairs a run, %d rounds)", o * 1e3, t * 1e3, n,
    rounds))
  B.row { scenario = "a create and a poll, the ledger on Redis (store)",
    baseline = "the same, the ledger a journal file",
    ours = o * 1e3, theirs = t * 1e3, ratio = ratio, unit = "ms", target = "<= 1.5x", ok = ratio <= 1.5,
    note = str_format("client:create then client:query of its task, %d pairs a run, on the emulator (LuaSocket, one "
      .. "process: most of each pair's time is its two HTTP exchanges; the baseline's client on an emulator of its "
      .. "own, so that it shares no budget with the store's); medians of %d rounds taking turns; "
      .. "redis-server on loopback, no persistence", n, rounds) }
end

local function throughput_row()
  local rate = 5
  local per = B.quick and 10 or 40
  local before = #emu.requests()
  local start_at = B.now() + 1.5 -- both processes loaded by then
  local procs = {}
  for i = 1, 2 do
    procs[i] = assert(io.popen(str_format("%s rocks/redis/bench/lib/fleet_child.lua %s %s %s %d %d %.6f 2>&1",
      B.q(B.lua), B.q(emu.url), B.q(KEY), B.q(srv.url), rate, per, start_at), "r"))
  end
  local first, last = math.huge, 0
  for i = 1, 2 do
    local out = procs[i]:read("*a")
    procs[i]:close()
    local t0, t1 = out:match("done (%S+) (%S+)")
    assert(t0, "fleet process " .. i .. ": " .. out)
    first, last = math.min(first, tonumber(t0)), math.max(last, tonumber(t1))
  end
  local list = emu.requests()
  local seen = {}
  for i = before + 1, #list do seen[#seen + 1] = list[i] end
  local polls, creates = polls_and_creates(seen)
  local tasks = 2 * per
  assert(creates == tasks, creates .. " creates for " .. tasks .. " tasks")
  local ours = tasks / (last - first)
  local ppt, rpt = polls / tasks, (polls + creates) / tasks
  local theirs = rate / rpt
  local ratio = ours / theirs
  print(str_format("fleet: %d tasks over 2 processes in %.2f s (%.2f tasks/s); %d polls (%.2f a task), %d creates; "
    .. "R / API requests per task = %.2f tasks/s (R / polls per task = %.2f)", tasks, last - first, ours, polls, ppt,
    creates, theirs, rate / ppt))
  B.row { scenario = str_format("fleet throughput, 2 processes on one store, budget R = %d/s", rate),
    baseline = "R / (API requests per task)", ours = ours, theirs = theirs, ratio = ratio, unit = "tasks/s",
    target = ">= 0.7x, <= 1.1x", ok = ratio >= 0.7 and ratio <= 1.1,
    note = str_format("%d tasks each, created at one moment, waited with wait_all (interval 0.2 s), the emulator "
      .. "processing each %s s; %d polls counted at the emulator (%.2f a task), and a create a task, each drawing "
      .. "a token; R / polls per task alone would be %.2f tasks/s; one run (the "
      .. "budget, not the machine, sets the pace); the bucket starts full (R polls), so a run of T s may poll "
      .. "R x (T + 1): a short run is over 1x by that much; far over 1.1x: the processes polled beyond one budget", per,
      B.quick and "0.3" or "1", polls, ppt, rate / ppt) }
end

local ok, err = pcall(function()
  local why = redis_run.missing()
  if why then error(why, 0) end
  srv = redis_run.start()
  cost_row()
  throughput_row()
end)
if srv then srv.stop() end
helper.cleanup()
emu.stop()
if emu2 then emu2.stop() end
if not ok then error(err, 0) end
