-- A row of make bench for spend_limit (issue 56), on the project's emulator and a redis-server of this script's own
-- (127.0.0.1, a free port, no persistence; stopped at the end, also on failure): the time of a create
-- (client:create, its ledger the store) with three limits covering it (the key's a month, its tenant's a day, its
-- model's an hour) against the same with none, each client on an emulator of its own (no budget shared); rounds
-- taking turns, the median time per create of each.  And what Redis ran for each: the commands per create
-- (INFO commandstats, those the scripts call counted too) and the round trips (the EVALs and the top-level
-- commands a create sends: the same with and without a limit, the reservation inside the create's own script).
local B = require "bench.common"
local starvideos = require "starvideos"
local redis_run = require "rocks.redis.spec.support.redis_run"
local helper = require "spec.helper"

local str_format = string.format
local KEY = "bench-spend-key"
local EMU_ARGS = "--queued 30 --processing 30"
local PRICES = { videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }
local LIMITS = { { amount = 1e6, per = "month" }, { amount = 1e6, per = "day", scope = "tenant" },
  { amount = 1e6, per = 3600, scope = "model", model = "videos" } }
local emus, srv = {}, nil

-- Redis' count of each command so far, and their sum.
local function stats(st)
  local text = assert(st:call("INFO", "commandstats"))
  local by, sum = {}, 0
  for name, calls in text:gmatch("cmdstat_([%w|_]+):calls=(%d+)") do
    by[name], sum = tonumber(calls), sum + tonumber(calls)
  end
  return by, sum
end

local function row()
  local n = B.quick and 20 or 200
  local rounds = B.quick and 1 or 5
  local params = { model = "videos", prompt = "bench spend", duration = 5 }
  local st = require("starvideos.fleet.store").new(srv.url)
  local counted = {}
  local function creates(name, client)
    return function()
      local by0, sum0 = stats(st)
      local t0 = B.now()
      for _ = 1, n do assert(client:create(params, { tenant = "bench" })) end
      local secs = (B.now() - t0) / n
      local by1, sum1 = stats(st)
      counted[name] = { commands = (sum1 - sum0 - 1) / n, evals = ((by1.eval or 0) - (by0.eval or 0)) / n }
      return secs
    end
  end
  emus[1], emus[2] = B.emulator(KEY, EMU_ARGS), B.emulator(KEY, EMU_ARGS)
  local capped = starvideos.new { api_key = KEY, base_url = emus[1].url, store = srv.url .. "/1",
    requests_per_second = 1e6, prices = PRICES, spend_limit = LIMITS }
  local plain = starvideos.new { api_key = KEY, base_url = emus[2].url, store = srv.url .. "/2",
    requests_per_second = 1e6, prices = PRICES }
  local ours, theirs = creates("capped", capped), creates("plain", plain)
  ours()
  theirs()
  local res = B.rounds(rounds, { { name = "capped", run = ours }, { name = "plain", run = theirs } })
  capped:close()
  plain:close()
  st:close()
  local o, t = B.median(res.capped), B.median(res.plain)
  local ratio = B.paired(res.capped, res.plain)
  local c, p = counted.capped, counted.plain
  print(str_format("a create: %.3f ms with 3 limits, %.3f ms without (+%.3f ms); Redis commands a create %.1f and "
    .. "%.1f, EVALs %.2f and %.2f", o * 1e3, t * 1e3, (o - t) * 1e3, c.commands, p.commands, c.evals, p.evals))
  B.row { scenario = "a create under 3 spend limits (key, tenant, model), the ledger on Redis",
    baseline = "the same create without a limit", ours = o * 1e3, theirs = t * 1e3, ratio = ratio, unit = "ms",
    target = "<= 1.2x", ok = ratio <= 1.2,
    note = str_format("client:create, %d a run, on the emulator (each client its own); +%.3f ms a create; Redis "
      .. "commands a create %.1f with the limits, %.1f without (INFO commandstats, the scripts' own counted), EVALs "
      .. "%.2f and %.2f (the round trips: the reservation is in the create's own script); medians of %d rounds "
      .. "taking turns; redis-server on loopback, no persistence", n, (o - t) * 1e3, c.commands, p.commands,
      c.evals, p.evals, rounds) }
end

local ok, err = pcall(function()
  local why = redis_run.missing()
  if why then error(why, 0) end
  srv = redis_run.start()
  row()
end)
if srv then srv.stop() end
helper.cleanup()
for _, e in ipairs(emus) do e.stop() end
if not ok then error(err, 0) end
