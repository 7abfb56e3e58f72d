-- What the queue (issue 80, fleet/queued.lua) costs its callers, in the fast tier: the store's scripts run in the
-- sandbox of rocks/redis/spec/support/redis_sandbox.lua (no server).  A submit probes each out's folder once, not
-- once an entry (download.lua's cfg.probed); a keeper's claim names the lines of the tenants it took from, so that
-- once it knows them a claim is one script, not two (the script asking for the lines: fleet/declared.lua).  The
-- figures on a real Redis: rocks/redis/bench/queue.lua.
local Route = require "starvideos.fleet.route"
local sandbox = require "rocks.redis.spec.support.redis_sandbox"
local helper = require "spec.helper"
local starvideos = require "starvideos"

local r = sandbox.new()
local open = Route.open

local function entries(n, word)
  local list = {}
  for i = 1, n do list[i] = { model = "videos", prompt = word .. " " .. i, duration = 5 } end
  return list
end

describe("the queue's costs", function()
  local c
  setup(function() Route.open = function() return sandbox.backend(r) end end)
  teardown(function() Route.open = open end)
  before_each(function()
    c = starvideos.new { api_key = "k-queue-costs-" .. tostring(os.time()) .. math.random(1e6),
      base_url = "http://127.0.0.1:9", store = "redis://127.0.0.1:1/0",
      transport = require("spec.support.fake_transport").new() }
  end)
  after_each(function()
    c:close()
    helper.cleanup()
  end)

  it("a submit of 20 entries into two folders makes 2 probe files, not 20; a folder it cannot write is still refused",
    function()
    local a, b = helper.tmpdir(), helper.tmpdir()
    local real, probes = io.open, 0
    io.open = function(path, mode) -- luacheck: ignore 122 (counted, then opened as asked)
      if tostring(path):find("/.starvideos-probe-", 1, true) then probes = probes + 1 end
      return real(path, mode)
    end
    local ok, got = pcall(c.submit, c, entries(20, "probed"), { out = function(i)
      return (i % 2 == 0 and a or b) .. "/" .. i .. ".mp4"
    end })
    io.open = real -- luacheck: ignore 122
    assert(ok, got)
    assert.same({ 20, 0, 2 }, { got.queued, got.known, probes })
    local none, err = c:submit(entries(1, "nowhere"), { out = a .. "/no-such-folder/%d.mp4" })
    assert.is_nil(none)
    assert.same({ "io", "out" }, { err.kind, err.field })
  end)

  it("a keeper's claims of two tenants' entries: a claim is one script once it took from each tenant", function()
    local dir = helper.tmpdir()
    assert(c:submit(entries(5, "a"), { out = dir .. "/a%d.mp4", tenant = "a" }))
    assert(c:submit(entries(5, "b"), { out = dir .. "/b%d.mp4", tenant = "b" }))
    local k = assert(c.ctx.ledger:keeper())
    local sent0, asked0 = r.sent.queue_claim or 0, r.asked.queue_claim or 0
    local took = {}
    for i = 1, 10 do
      local e = assert(k:queued {})
      took[i] = e.tenant
      assert(k:queue_state(e, "d"))
    end
    assert.is_false(k:queued {})
    k:close()
    local sent, asked = (r.sent.queue_claim or 0) - sent0, (r.asked.queue_claim or 0) - asked0
    -- (11 claims; the first asks for both lines, the second for the other tenant's: 2 asked, every other claim one)
    assert.same({ 13, 2 }, { sent, asked }, table.concat(took, " "))
  end)
end)
