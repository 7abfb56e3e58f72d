-- spend_limit on a store: the key's identity, the store's clock and its persistence (real processes on a real
-- redis-server, spec/support/spend_runs.lua): one process per spelling of the base URL (localhost, HTTP://,
-- LOCALHOST, /./, a port's leading 0) is one key's spend (before: five); processes whose clocks are a day apart
-- (one under faketime +1d) count in one day's window, the store's, as the budget does (before: each opened its own
-- day, twice the limit paid); and a client with a spend_limit on a Redis without its AOF is told once that a restart
-- forgets what the limit counted; and a limit given later (spend, create on the command line) reads what the
-- creates made without it spent in its window (before: 0, and the next create went past it).
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local runs = require "spec.support.spend_runs"

local why = redis_run.missing()
if why then
  pending("spend_limit: a store's key, clock and persistence: " .. why)
  return
end
local faketime = helper.execute("command -v faketime >/dev/null 2>&1")

describe("spend_limit on a store", function()
  local redis, emu
  setup(function()
    redis = redis_run.start() -- (no AOF: redis_run's default)
    emu = helper.emulator { key = runs.KEY, queued = 30, processing = 30 }
  end)
  teardown(function()
    emu:stop()
    redis.stop()
    helper.cleanup()
  end)
  before_each(function()
    emu:reset()
    emu:clear()
  end)

  it("of processes whose clocks are a day apart is one window, the store's day: 2 creates of 0.40 under "
    .. "1.00/day, not 4", function()
    if not faketime then pending("no faketime (Debian's faketime)") return end
    local run = runs.new(helper.tmpdir(), "store", redis.url .. "/1", emu)
    local now = runs.tally { run.start(3, "today", 1) }
    local ahead = runs.tally { run.start(3, "tomorrow", 1, "faketime -f +1d") }
    assert.same({ ok = 2, ["spend_limited spend_limit"] = 1, ["warning 50"] = 1, ["warning 80"] = 1,
      ["warning 100"] = 1 }, now)
    assert.same({ ["spend_limited spend_limit"] = 3 }, ahead)
    assert.equal(2, emu:creates())
  end)

  it("of processes spelling the base URL five ways is one key's spend: 5 creates of 0.40 under 2.00 reach the "
    .. "service, not 25", function()
    local port = emu.url:match(":(%d+)$")
    local procs = {}
    for i, url in ipairs { "http://localhost:" .. port, "HTTP://127.0.0.1:" .. port, "http://LOCALHOST:" .. port,
        "http://127.0.0.1:" .. port .. "/./", "http://127.0.0.1:0" .. port } do
      local spelled = setmetatable({ url = url }, { __index = emu })
      procs[i] = runs.new(helper.tmpdir(), "store", redis.url .. "/3", spelled).start(5, "s" .. i, 2)
    end
    local tally, text = runs.tally(procs)
    assert.same({ ok = 5, ["spend_limited spend_limit"] = 20, ["warning 50"] = 1, ["warning 80"] = 1,
      ["warning 100"] = 1 }, tally, text) -- (each step said once across the processes)
    assert.equal(5, emu:creates())
  end)

  it("on a Redis without its AOF says once that a restart forgets what the limit counted", function()
    local said = {}
    local c = require("starvideos").new { api_key = runs.KEY, base_url = emu.url, store = redis.url .. "/2",
      prices = runs.PRICES, spend_limit = { amount = 2, per = "day" },
      on_event = function(ev) if ev.type == "warning" then said[#said + 1] = ev.message end end }
    for i = 1, 3 do assert(c:create { model = "videos", prompt = "aof " .. i, duration = 5 }) end
    c:close()
    local n = 0
    for _, m in ipairs(said) do
      if m:find("appendonly is no: a restart of Redis loses every record written since its last snapshot, and "
        .. "with them what spend_limit counted", 1, true) then n = n + 1 end
    end
    assert.equal(1, n, table.concat(said, "\n"))
  end)

  it("spend --store --spend-limit after creates made without it reads what they spent in its window (before: 0), "
    .. "and the next create past it is refused, not sent", function()
    local C = require "spec.support.cli_run"
    local store, env = redis.url .. "/4", { STARVIDEOS_API_KEY = runs.KEY, STARVIDEOS_BASE_URL = emu.url }
    local price, limit = '{"videos": 0.4}', '{"amount": 2, "per": "day", "scope": "model", "model": "videos"}'
    for i = 1, 5 do
      local r = C.run({ "create", "--model", "videos", "--prompt", "a cat " .. i, "--duration", "5", "--store", store,
        "--prices", price }, env)
      assert.equals(0, r.code, r.err)
    end
    local r = C.run({ "list", "--store", store }, env)
    assert.equals("5 tasks: 5 created; cost 2", C.lines(r.out)[#C.lines(r.out)])
    r = C.run({ "spend", "--store", store, "--prices", price, "--spend-limit", limit }, env)
    assert.equals(0, r.code, r.err)
    assert.matches("^model videos, per day: 2 spent, 0 reserved, of 2; resets ", C.lines(r.out)[1])
    r = C.run({ "create", "--model", "videos", "--prompt", "a cat 6", "--duration", "5", "--store", store, "--prices",
      price, "--spend-limit", limit }, env)
    assert.equals(1, r.code, r.err)
    assert.matches("spend_limited: %-%-spend%-limit: 2 spent of model videos in this window", r.err)
    assert.equal(5, emu:creates())
  end)
end)
