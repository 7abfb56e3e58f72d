-- The core's note of an HTTP exchange (csrc/lua/observe.c: core.exchanges, exchange_note, exchanges_take),
-- which extras/observe.lua calls where each exchange ends: the durations counted by operation, status class
-- and bucket, a download's bytes, the op's name given back; bad arguments refused by name.

local core = require "starvideos.core"

local BOUNDS = { 0.1, 1 }
local OPS = { { "query", "query" }, { "download", "download" }, { "media", "media" }, { "notify", "webhook" } }

-- exchanges_take's list as "op code part=value" strings, sorted; and the bytes.
local function taken(h)
  local t, bytes = core.exchanges_take(h)
  local out = {}
  for i = 1, #t, 4 do out[#out + 1] = string.format("%s %s %d=%g", t[i], t[i + 1], t[i + 2], t[i + 3]) end
  table.sort(out)
  return out, bytes
end

describe("core.exchanges", function()
  it("counts each exchange's duration by op, status class and bucket, with the sum; take zeroes them", function()
    local h, req = core.exchanges(BOUNDS, OPS, true), {}
    assert.equal("query", core.exchange_note(h, req, "query", 10, 10.05, 200, "none"))
    core.exchange_note(h, req, "query", 10, 10.5, 204, "none")
    core.exchange_note(h, req, "query", 10, 12, 503, "none")
    core.exchange_note(h, req, "query", 10, 10.05, nil, "timeout") -- no answer: error
    core.exchange_note(h, req, "query", 10, 10.05, 200, "reset") -- a status but the wire broke: error
    assert.equal("webhook", core.exchange_note(h, req, "notify", nil, 3, 200, "none")) -- never sent: 0 s
    local list, bytes = taken(h)
    assert.same({ "query 2xx 0=0.55", "query 2xx 1=1", "query 2xx 2=1", "query 5xx 0=2", "query 5xx 3=1",
      "query error 0=0.1", "query error 1=2", "webhook 2xx 1=1" }, list)
    assert.equal(0, bytes)
    assert.same({}, (taken(h)))
  end)

  it("counts a download's bytes from its offset, and a job's media GET as a download", function()
    local h = core.exchanges(BOUNDS, OPS, true)
    core.exchange_note(h, { offset = 100 }, "download", 1, 1.5, 206, "none", 1100)
    assert.equal("download", core.exchange_note(h, { owner = { job = {} } }, "media", 1, 1.5, 200, "none", 50))
    assert.equal("media", core.exchange_note(h, { owner = {} }, "media", 1, 1.5, 200, "none", 70))
    local list, bytes = taken(h)
    assert.same({ "download 2xx 0=1", "download 2xx 2=2", "media 2xx 0=0.5", "media 2xx 2=1" }, list)
    assert.equal(1050, bytes)
  end)

  it("names the op of an exchange it does not count; an op it does not know is none", function()
    local h = core.exchanges({}, OPS, false)
    assert.equal("query", core.exchange_note(h, {}, "query", 1, 2, 200, "none"))
    assert.is_nil(core.exchange_note(h, {}, "create", 1, 2, 200, "none"))
    assert.is_nil(core.exchange_note(h, {}, nil, 1, 2, 200, "none"))
    assert.same({}, (taken(h)))
  end)

  it("refuses what is not its object, and bad bounds or ops, naming them", function()
    local h = core.exchanges(BOUNDS, OPS, true)
    assert.has_error(function() core.exchange_note({}, {}, "query", 1, 2, 200, "none") end,
      "bad argument #1 to 'exchange_note' (an object of core.exchanges)")
    assert.has_error(function() core.exchange_note(io.stdout, {}, "query", 1, 2, 200, "none") end,
      "bad argument #1 to 'exchange_note' (an object of core.exchanges)")
    assert.has_error(function() core.exchange_note(h, {}, "query", 1, nil, 200, "none") end)
    assert.has_error(function() core.exchanges({ "x" }, OPS, true) end)
    assert.has_error(function() core.exchanges(BOUNDS, { { "query" } }, true) end,
      "bad argument #2 to 'exchanges' (ops: {request op, metrics op} strings)")
    assert.has_error(function() core.exchanges(BOUNDS, { "query" }, true) end,
      "bad argument #2 to 'exchanges' (ops: a list of {request op, metrics op})")
    local many = {}
    for i = 1, 17 do many[i] = i end
    assert.has_error(function() core.exchanges(many, OPS, true) end,
      "bad argument #1 to 'exchanges' (at most 16 bounds)")
  end)

  it("span_slots and span_put: a slot out of the queue, or another object, refused by name", function()
    local slots = core.span_slots(2)
    assert.has_error(function() core.span_slots(0) end,
      "bad argument #1 to 'span_slots' (a number of slots from 1 to 1000000)")
    assert.has_error(function() core.span_put(slots, 3, "http://h/", "GET", "query", 1, 2, 200, 1, false, false) end,
      "bad argument #2 to 'span_put' (a slot of the queue)")
    assert.has_error(function() core.span_put({}, 1, "http://h/", "GET", "query", 1, 2, 200, 1, false, false) end)
    assert.has_error(function() core.otlp_spans({ true }, 1, 1, 1, 0, "00112233aabbccdd", 1, 2, "[", "]", {}) end)
  end)
end)
