-- client:sse's window on a store (fleet/events.lua): the one case list of the event stream (spec/support/
-- sse_cases.lua) with every task run by another process of the store (spec/support/sse_two.lua: another host's, as
-- the store sees it), a stream that comes back with the last id that process's stream wrote; the window on a
-- Cluster's node of the key's slot.
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local case_list = require "spec.support.case_list"
local cases = require "spec.support.sse_cases"
local two = require "spec.support.sse_two"

local why = redis_run.missing()
if why then
  pending("client:sse on a store: " .. why)
  return
end

describe("client:sse's window on a Redis store two processes share", function()
  local srv, emu, dir, p
  setup(function()
    srv, emu = redis_run.start_pair { queued = 0.3, processing = 0.3 }
    dir = helper.tmpdir()
    p = two.place(emu, dir, { store = srv.url })
  end)
  teardown(function()
    if p then p.stop() end
    redis_run.stop_pair(srv, emu)
    helper.cleanup()
  end)

  case_list.each({ describe = describe, it = it }, "the event stream's cases", cases.cases,
    function(case) case.run(p, assert) end, nil, { "redis", "file", "lua" })

  it("resumes a stream of process B from the last id process A's stream wrote: the rest, nothing twice", function()
    two.resumed(p, dir, assert)
  end)

  it("keeps the key's events in a Redis stream of events_window entries at least, its ids Redis's", function()
    local t = "xadd-" .. os.time()
    local s = p.open { tenant = t }
    p.start { tenant = t, prompt = "a run on the store" }
    assert.is_true(p.until_(function() return s:text():find("event: saved", 1, true) ~= nil end, 60), s:text())
    local key = "starvideos:{" .. redis_run.key_hash(emu.url, emu.key) .. "}:events"
    assert.is_true(tonumber(redis_run.cli(srv.port, "XLEN", key)[1]) >= #s:events())
    local ms, seq = redis_run.cli(srv.port, "XREVRANGE", key, "+", "-", "COUNT", "1")[1]:match("^(%d+)%-(%d+)$")
    local evs = s:events()
    assert.are.equal(ms * 1000 + seq, evs[#evs].id) -- (the saved event: the stream's last entry)
    s:close()
  end)
end)

describe("client:sse's window on a Redis Cluster", function()
  local set, emu, dir, p
  setup(function()
    set = redis_run.start_cluster()
    emu, dir = helper.emulator { queued = 0.3, processing = 0.3 }, helper.tmpdir()
    p = two.place(emu, dir, { store = set.url })
  end)
  teardown(function()
    if p then p.stop() end
    if emu then emu:stop() end
    if set then set.stop() end
    helper.cleanup()
  end)

  it("keeps the key's events on the node of its slot: a run of another process told, resumed from a middle id",
    function()
    cases.cases[2].run(p, assert) -- (the case list's "a stream given the last id it saw gets the rest")
    local key = "starvideos:{" .. redis_run.key_hash(emu.url, emu.key) .. "}:events"
    local slot = tonumber(redis_run.cli(set.nodes[1].port, "CLUSTER", "KEYSLOT", key)[1])
    local node = set.nodes[redis_run.slot_node(set, slot)]
    assert.is_true(tonumber(redis_run.cli(node.port, "XLEN", key)[1]) >= 3)
  end)
end)
