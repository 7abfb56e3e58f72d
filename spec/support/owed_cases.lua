-- The ledger's owed webhooks (docs/keep-and-fleet.md), one list of cases every ledger passes: the journal's
-- (spec/extras/notify_spec.lua) and the store's (the redis rock's owed_redis_spec.lua).
-- run(name, b, backend): b = { it =, pending =, assert = } (busted's); backend = { new = function() -> a
-- ledger (a new one on the same place each call), unready = function() -> why the cases cannot run here or nil,
-- broken = function(ledger) -> break_it, mend (the ledger's owed events made unreadable, then put back) }.
local M = {}

function M.run(name, b, backend)
  local it, assert = b.it, b.assert

  b.it(name .. ": an owed event is claimed by one keeper once its owner let go, never after it was delivered",
    function()
      local why = backend.unready()
      if why then return b.pending(why) end
      local owner, other = backend.new(), backend.new()
      assert.truthy(owner:owe("msg_a", "task-a", '{"type":"task.completed"}'))
      local k1 = assert(other:keeper())
      assert.are.same({}, k1:owed()) -- its owner is alive
      owner:close() -- the owner lets go of its lease (as a process that died)
      local got = k1:owed()
      assert.are.same({ { wid = "msg_a", task = "task-a", body = '{"type":"task.completed"}' } }, got)
      local k2 = assert(other:keeper())
      assert.are.same({}, k2:owed()) -- k1 has it (alive)
      assert.are.same({}, k1:owed()) -- and is not handed it twice
      k1:close()
      assert.are.same("msg_a", k2:owed()[1].wid) -- k1 gone: k2 takes it
      other:delivered("msg_a")
      local k3 = assert(other:keeper())
      k2:close()
      assert.are.same({}, k3:owed())
      k3:close()
      other:close()
    end)

  -- A ledger that cannot look says why, and keep's sweep says so in a warning: the event stays owed and is claimed
  -- at a later look (before, an empty list hid the failure, and nothing was said).
  it(name .. ": a look that fails says why (a warning from keep's sweep), and the event is claimed later", function()
    local why = backend.unready()
    if why then return b.pending(why) end
    local Notify = require "starvideos.extras.notify"
    local owner, other = backend.new(), backend.new()
    assert.truthy(owner:owe("msg_c", "task-c", '{"type":"task.completed"}'))
    owner:close()
    local k = assert(other:keeper())
    local break_it, mend = backend.broken(other)
    break_it()
    local got, err = k:owed()
    assert.is_nil(got)
    assert.is_string(err)
    local events = {}
    local cfg = { notify = { url = "http://127.0.0.1:9/hook", secret = "whsec_" .. string.rep("A", 32) },
      on_event = function(e) events[#events + 1] = e end }
    assert.are.same({}, Notify.sweep({ ledger = other, cfg = cfg }, k))
    assert.are.equal(1, #events)
    assert.are.equal("warning", events[1].type)
    assert.truthy(events[1].message:find("the webhooks owed could not be looked at: ", 1, true), events[1].message)
    mend()
    got = assert(k:owed())
    assert.are.same({ { wid = "msg_c", task = "task-c", body = '{"type":"task.completed"}' } }, got)
    k:close()
    other:close()
  end)
end

return M
