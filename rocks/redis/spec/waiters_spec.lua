-- Several waiters on one store command (fleet/store.lua's take and wait), as inside nginx: the coroutines of a
-- worker share the key's budget (its tenant's ask), the process's lease (its renewal) and a queue of records (a
-- client's, or the worker's for loop-less ledgers), and a cosocket's send and read each yield to another
-- coroutine.  The store's connection is the spec's own, driven by hand: each send and each read of an answer
-- yields once (a cosocket's I/O), and the coroutines take turns in a fixed order, so each interleaving is the
-- same at every run.  Nothing of Redis is needed.
local Store = require "starvideos.fleet.store"
local Budget = require "starvideos.fleet.budget"
local Queue = require "starvideos.fleet.queue"
local leases = require "starvideos.fleet.leases"
local core = require "starvideos.core"
require "starvideos.fleet.scripts" -- (the ledger's scripts: ledger_created, ledger_lease)

-- A store on the spec's connection: every command answered "ok" (the budget's script a token, the others 1), its
-- send and its read each yielding once.  sent: the commands' args in order.  Inside "nginx": a pause yields too.
local function store()
  local st = Store.new("redis://127.0.0.1:1")
  local b = { name = "spec", null = false, sent = {} }
  function b.send(_, args)
    coroutine.yield("send")
    b.sent[#b.sent + 1] = args
    return #b.sent
  end
  function b.poll() return true end
  function b.pending() return 0 end
  function b.reply(_, cn)
    coroutine.yield("read")
    return "ok", tostring(b.sent[cn][2]):find("share(", 1, true) and "0.000000" or 1 -- (a token; a record written)
  end
  function b.close() end
  st.b, st.ngx = b, { sleep = function() coroutine.yield("sleep") end }
  return st, b
end

-- fns run as coroutines taking turns (each resumed in order until it yields or ends), every error raised.
local function race(fns)
  local cos = {}
  for i, f in ipairs(fns) do cos[i] = coroutine.create(f) end
  for _ = 1, 1000 do
    local live = false
    for _, co in ipairs(cos) do
      if coroutine.status(co) == "suspended" then
        live = true
        local ok, err = coroutine.resume(co)
        if not ok then error(debug.traceback(co, err), 0) end
      end
    end
    if not live then return end
  end
  error("the coroutines did not end in 1000 turns")
end

-- A queue of 4 created records (own: a client's, else the worker's) on a store of store(): q, its entries, st, b.
local function queue(own)
  local st, b = store()
  local q = Queue.for_key(st.server, st.where, "starvideos:{h}:", own, "spec waiters " .. core.random_id())
  local es = {}
  for i = 1, 4 do es[i] = q:push("created", { "starvideos:{h}:task:t" .. i }, { "t" .. i }) end
  return q, es, st, b
end

-- The commands sent with an argument (the script's body, a key) containing `what`.
local function sent(b, what)
  local n = 0
  for _, args in ipairs(b.sent) do
    for i = 1, args.n or #args do
      if tostring(args[i]):find(what, 1, true) then n = n + 1; break end
    end
  end
  return n
end

describe("waiters on one store command", function()
  it("a tenant's budget: two coroutines of a worker each get a token of their own, one script per token, none "
    .. "left in flight", function()
    local st, b = store()
    local key = { hash = "h", bucket = { rate = 5 }, warn = function(_, m) error("warned: " .. m) end }
    local loop = { await = function(_, _, t) return t + 0.002 end }
    local budget = Budget.new(st, key, loop)
    local tokens = 0
    local function asker()
      while budget:take(core.now(), {}, "T") ~= nil do coroutine.yield("turn") end
      tokens = tokens + 1
    end
    race { asker, asker }
    assert.equal(2, tokens)
    assert.equal(2, sent(b, "share("), "budget scripts sent for 2 tokens")
    assert.is_nil(next(st.jobs), "a command left in flight, never taken")
  end)

  it("a command forgotten while a waiter reads its answer (a queue's record handed over): not taken, no raise",
    function()
    local st = store()
    local h, got = {}, "none"
    race {
      function() h.n = st:send("PING") end,
      function()
        while not h.n do coroutine.yield("turn") end
        got = st:take(h) or false
      end,
      function()
        while not (h.n and st.jobs[h.n].reading) do coroutine.yield("turn") end
        st:forget(h.n)
        h.n = nil
      end,
    }
    assert.is_false(got)
    assert.is_nil(h.answer)
  end)

  it("the process's lease: two clients' turns wait on one renewal; it is taken once, neither raises", function()
    local st, b = store()
    local answered = 0
    local ledger = { store = st, lease_ms = 30000, prefix = "starvideos:{h}:",
      queue = { down_now = function() end, answered = function() answered = answered + 1 end } }
    local lease = leases.hold("spec waiters " .. core.random_id())
    local function turns()
      while not lease:renew_async(ledger, core.now()) do coroutine.yield("turn") end
    end
    race { turns, turns }
    assert.same({ 1, 1 }, { sent(b, "owner:"), #b.sent }, "renewals sent")
    assert.equal(1, answered)
    assert.is_nil(next(st.jobs))
    assert.is_true(lease.renewed > 0, "the renewal was not heard")
  end)

  it("a queue flushed by two coroutines at once (the worker's, loop-less ledgers): every record written once, "
    .. "in order", function()
    local q, es, st, b = queue(false)
    local results = {}
    local function flusher(i) return function() results[i] = { q:flush(st) } end end
    race { flusher(1), flusher(2) }
    assert.same({ { true }, { true } }, results)
    assert.is_nil(q[1])
    local order = {}
    for _, args in ipairs(b.sent) do order[#order + 1] = args[#args] end
    for i, e in ipairs(es) do assert.is_true(e.written, "record t" .. i .. " not written (sent: "
      .. table.concat(order, " ") .. ")") end
    assert.same({ "t1", "t2", "t3", "t4" }, order, "each record sent once, in order")
  end)

  it("a queue pumped by two coroutines (a client's loop in two threads): each record written, none taken off "
    .. "unwritten", function()
    local q, es, st, b = queue(true)
    local function pumper() while not q:pump(st) do coroutine.yield("turn") end end
    race { pumper, pumper }
    for i, e in ipairs(es) do assert.is_true(e.written, "record t" .. i) end
    assert.equal(4, #b.sent, "records sent")
    assert.is_false(q.link.down, "the store was taken as failed")
    assert.is_nil(next(st.jobs))
  end)
end)
