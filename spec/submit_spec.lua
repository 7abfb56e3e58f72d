-- client:submit's refusals before anything is queued (each naming its field) and the queue's rule (queue.lua):
-- priority first, then the tenants' weights, then the oldest.  The queue itself on a store:
-- rocks/redis/spec/hosts/queue_store_spec.lua.
local starvideos = require "starvideos"
local Queue = require "starvideos.queue"
local helper = require "spec.helper"

local LIST = { { model = "videos", prompt = "a cat", duration = 5 } }

local function new(opts)
  local o = { api_key = "k-submit", base_url = "http://127.0.0.1:9",
    transport = require("spec.support.fake_transport").new() }
  for k, v in pairs(opts or {}) do o[k] = v end
  return starvideos.new(o)
end

describe("client:submit refuses before anything is queued", function()
  after_each(helper.cleanup)

  it("a priority outside 1-5, or not whole, naming priority (the option, or an entry's)", function()
    local c = new()
    for _, p in ipairs { 0, 6, 2.5, "1" } do
      assert.has_error(function() c:submit(LIST, { out = "%d.mp4", priority = p }) end)
      local ok, err = pcall(c.submit, c, LIST, { out = "%d.mp4", priority = p })
      assert.is_false(ok)
      assert.matches("'priority'", tostring(err), 1, true)
    end
    local ok, err = pcall(c.submit, c, { { model = "videos", prompt = "x", duration = 5, priority = 9 } },
      { out = "%d.mp4" })
    assert.is_false(ok)
    assert.matches("'priority' to 'submit' (entry 1", tostring(err), 1, true)
    c:close()
  end)

  it("a tenant weight that is not a positive number, naming tenant_weights", function()
    for _, w in ipairs { { a = 0 }, { a = -1 }, { a = "3" }, { a = 0 / 0 }, { a = math.huge }, "3" } do
      local ok, err = pcall(new, { tenant_weights = w })
      assert.is_false(ok)
      assert.matches("tenant_weights", tostring(err), 1, true)
    end
    new({ tenant_weights = { a = 3, b = 0.5 } }):close()
  end)

  it("no out, naming out; no shared ledger (none, or a journal), naming store", function()
    local c = new()
    local ok, err = pcall(c.submit, c, LIST, {})
    assert.is_false(ok)
    assert.matches("'out'", tostring(err), 1, true)
    local got, serr = c:submit(LIST, { out = helper.tmpdir() .. "/%d.mp4" })
    assert.is_nil(got)
    assert.same({ "invalid_request", "store" }, { serr.kind, serr.field })
    c:close()
    local j = new { journal = helper.tmpdir() .. "/j.jsonl" }
    got, serr = j:submit(LIST, { out = helper.tmpdir() .. "/%d.mp4" })
    assert.is_nil(got)
    assert.same({ "invalid_request", "store" }, { serr.kind, serr.field })
    got, serr = j:batch("nosuch")
    assert.is_nil(got)
    assert.same({ "invalid_request", "store" }, { serr.kind, serr.field })
    j:close()
  end)
end)

describe("the queue's rule (queue.lua)", function()
  -- n picks from lines (tenant -> {priority...}), each line's entries numbered in order from seq.
  local function picks(lines, weights, n)
    local pass, vnow, got, at = {}, 0, {}, {}
    for t in pairs(lines) do at[t] = 1 end
    for _ = 1, n do
      local heads = {}
      for t, l in pairs(lines) do
        if l[at[t]] then
          heads[#heads + 1] = { tenant = t, priority = l[at[t]], seq = (t == "a" and 0 or 1000) + at[t] }
        end
      end
      local best, after, taken = Queue.pick(heads, pass, vnow, function(t) return weights[t] or 1 end)
      if not best then break end
      pass[best.tenant], vnow, at[best.tenant] = after, taken, at[best.tenant] + 1
      got[#got + 1] = best.tenant
    end
    return got
  end

  it("shares 3:1 between tenants weighted 3 and 1, both waiting: 30 and 10 of 40", function()
    local a, b = {}, {}
    for i = 1, 100 do a[i], b[i] = 3, 3 end
    local n = { a = 0, b = 0 }
    for _, t in ipairs(picks({ a = a, b = b }, { a = 3, b = 1 }, 40)) do n[t] = n[t] + 1 end
    assert.same({ a = 30, b = 10 }, n)
  end)

  it("shares equally without weights, and takes priority 1 before any priority 3, whatever the weights", function()
    local a, b = {}, {}
    for i = 1, 10 do a[i], b[i] = 3, 3 end
    local n = { a = 0, b = 0 }
    for _, t in ipairs(picks({ a = a, b = b }, {}, 10)) do n[t] = n[t] + 1 end
    assert.same({ a = 5, b = 5 }, n)
    assert.same({ "b", "b", "a" }, picks({ a = { 3, 3 }, b = { 1, 1 } }, { a = 100 }, 3))
  end)
end)
