-- What a store puts on the wire and what it does with a refusal no retry changes (issue 49), without a server:
-- the store's connection is the spec's own (the seam of rocks/redis/spec/waiters_spec.lua), recording each command and
-- its WAIT, answering as a case scripts.  A store table decoded from JSON (cjson: every number a float on Lua
-- 5.3+) sends whole numbers as integers (WAIT 1 1000, not 1.0: Redis refuses those); a WAIT the user may not
-- run (NOPERM) ends a create at once, nothing sent, rather than writing its pending record again forever; a
-- failover to a primary short of replicas stops nothing that does not need them.
local cjson = require "cjson.safe"
local Store = require "starvideos.fleet.store"
local Queue = require "starvideos.fleet.queue"
local Ask = require "starvideos.fleet.ask"
local Acks = require "starvideos.fleet.acks"
local core = require "starvideos.core"
require "starvideos.fleet.scripts" -- (the ledger's scripts)

local NOPERM = "NOPERM User app has no permissions to run the 'wait' command"

-- A store of `url` on the spec's connection: sent {args, post} in order; each answered by answer(args, post) ->
-- status, value, post's answer (default: "ok", 1, b.acked: the record written, acknowledged by that many
-- replicas, 1 unless set); the next answer read carries the run id b.next_run (a new connection's hello) when set.
local function store(url, answer)
  local st = Store.new(url)
  local b = { name = "spec", null = false, sent = {}, acked = 1 }
  function b.send(_, args, post)
    b.sent[#b.sent + 1] = { args = args, post = post }
    return #b.sent
  end
  function b.poll() return true end
  function b.pending() return 0 end
  function b.reply(_, cn)
    local s = b.sent[cn]
    if b.next_run then b.run, b.next_run = b.next_run, nil end
    if answer then return answer(s.args, s.post) end
    return "ok", 1, s.post and b.acked or nil
  end
  function b.close() end
  st.b = b
  return st, b
end

-- The store's table as a JSON config file gives it to a program that decodes it with cjson.
local JSON = '{"url": "redis://127.0.0.1:1", "replicas": 1, "replica_timeout": 1}'

describe("numbers on the wire", function()
  it("a store table decoded from JSON (replicas = 1.0, replica_timeout = 1.0) sends WAIT 1 1000", function()
    local st, b = store(assert(cjson.decode(JSON)))
    assert(st:script("ledger_lease", { "starvideos:{h}:owner:me" }, { 30000.0 }, true))
    local sent = b.sent[1]
    assert.same({ "WAIT", "1", "1000" }, sent.post)
    assert.equal("30000", sent.args[#sent.args]) -- (the lease's milliseconds, given as a float)
  end)

  it("the same as Lua numbers made floats, and a command's own numbers (SET PX, EXPIRE) as integers", function()
    local st, b = store({ url = "redis://127.0.0.1:1", replicas = 2 / 2, replica_timeout = 0.25 * 2 })
    assert(st:script("ledger_lease", { "starvideos:{h}:owner:me" }, { 1500.0 }, true))
    assert.same({ "WAIT", "1", "500" }, b.sent[1].post)
    assert(st:call("SET", "k", "v", "PX", 1000.0))
    assert(st:call("EXPIRE", "k", 30 / 1))
    assert.same({ "SET", "k", "v", "PX", "1000", n = 5 }, b.sent[2].args)
    assert.same({ "EXPIRE", "k", "30", n = 3 }, b.sent[3].args)
    assert.equal("0.5", Store.wire(0.5)) -- (not whole: as it is)
  end)

  it("a replicas that is not whole is refused where it is given, naming store.replicas", function()
    local ok, err = pcall(Store.new, { url = "redis://127.0.0.1:1", replicas = 1.5 })
    assert.is_false(ok)
    assert.matches("store.replicas: expected a whole number from 0 to 100, got 1.5", err, 1, true)
  end)
end)

-- A ledger's fields an ask reads, on st.
local function ledger(st, events)
  return { store = st, prefix = "starvideos:{h}:", lease_ms = 30000, where = st.where, spends = {},
    cfg = { on_event = function(ev) events[#events + 1] = ev end } }
end

local PRE = "starvideos:{h}:"

-- The EVALs sent (a record's scripts).
local function evals(b)
  local n = 0
  for _, s in ipairs(b.sent) do if s.args[1] == "EVAL" then n = n + 1 end end
  return n
end

-- A queue of records of its own on st.
local function queue_of(st) return Queue.for_key(st.server, st.where, PRE, false, "spec wire " .. core.random_id()) end

-- A create's ask on a store whose WAITs answer post() (its settings: appendfsync always): the ask, the store,
-- its connection, the events said.
local function asking(post)
  local events = {}
  local st, b = store({ url = "redis://127.0.0.1:1", replicas = 1 }, function(args, p)
    if args[1] == "CONFIG" then return "ok", { args[3], ({ appendfsync = "always" })[args[3]] or "0" } end
    return "ok", 1, p and post() or nil
  end)
  local ask = assert(Ask.new(ledger(st, events), { model = "videos", prompt = "p" }, "lid-" .. core.random_id(),
    nil, nil, { id = "me" }))
  return ask, st, b, events
end

-- The ask stepped until it answers (20 steps at most): ok, err.
local function answered(ask)
  local ok, err
  for _ = 1, 20 do
    ok, err = ask:step()
    if ok ~= false then break end
  end
  return ok, err
end

-- The WAITs sent (each after a command, its post).
local function waits(b)
  local n = 0
  for _, s in ipairs(b.sent) do if s.post then n = n + 1 end end
  return n
end

describe("a WAIT the user may not run, with replicas = 1", function()
  for _, words in ipairs { NOPERM, "ERR unknown command 'WAIT', with args beginning with: 'WAIT' " } do
    it("ends a create's ask at its first answer with an error naming +wait, its pending record sent once ("
      .. words:sub(1, 14) .. ")", function()
        local ask, _, b = asking(function() return words end)
        local ok, err = answered(ask)
        assert.is_nil(ok)
        assert.equal("io", err.kind)
        assert.equal("store", err.field)
        assert.matches("WAIT is refused (" .. words, err.message, 1, true)
        assert.matches("allow the user +wait", err.message, 1, true)
        assert.equal(1, evals(b))
      end)
  end

  -- A created record written on a store whose WAITs answer words: the store, its connection, the queue, the
  -- record's entry and the events said, a few steps after.
  local function created_record(words)
    local events = {}
    local st, b = store({ url = "redis://127.0.0.1:1", replicas = 1 }, function(_, post)
      return "ok", 1, post and words or nil
    end)
    local q = queue_of(st)
    local e = q:push("created", { "starvideos:{h}:task:t1" }, { "t1" }, true)
    assert.is_true(q:flush(st, function(ev) events[#events + 1] = ev end))
    for _ = 1, 5 do st:step(0) end
    return st, b, q, e, events
  end

  it("a created record written while WAIT is refused is not written again forever: said once, then done", function()
    local st, b, q, e, events = created_record(NOPERM)
    assert.is_true(e.written)
    assert.falsy(st.acks:waiting())
    assert.equal(1, evals(b))
    assert.equal(1, waits(b))
    assert.equal(1, #events)
    assert.matches("the created record of t1: WAIT is refused (NOPERM", events[1].message, 1, true)
    e = q:push("created", { "starvideos:{h}:task:t2" }, { "t2" }, true) -- (no WAIT again: none waits)
    assert.is_true(q:flush(st))
    assert.is_true(e.written)
    assert.equal(1, waits(b))
    assert.equal(1, #events)
  end)

  it("a WAIT that answers a passing error is still waited for again (not final), its record not written again",
    function()
      local st, b, _, e, events = created_record("ERR WAIT cannot be used with replica instances")
      assert.is_true(e.written) -- (its job goes on)
      assert.equal(1, #events)
      assert.matches("not acknowledged by 1 replicas", events[1].message, 1, true)
      assert.equal(1, evals(b))
      assert.truthy(st.acks:waiting())
    end)
end)

-- The records of tasks already paid for (issue 55 item 3): each followed by a WAIT of its own, they held the
-- store's connection replica_timeout each while the replicas were short (Redis runs a connection's commands in
-- order): 10 of them, every answer behind them 10 × replica_timeout late, and a created record not acknowledged
-- held every record queued behind it.  Now they are written as any record and one WAIT covers them all.
describe("the records of tasks already paid for, with replicas = 1", function()
  local least, again = Acks.LEAST, Acks.AGAIN
  after_each(function() Acks.LEAST, Acks.AGAIN = least, again end)

  it("10 created records: no WAIT of their own, one covers them; short, they and the records behind them are "
    .. "written, the store's other answers read, and the WAIT sent again until they are acknowledged", function()
      local events = {}
      local st, b = store { url = "redis://127.0.0.1:" .. math.random(20000, 60000), replicas = 1 }
      b.acked = 0 -- (a primary with no replica)
      local q = queue_of(st)
      local created, status = {}, {}
      for i = 1, 10 do created[i] = q:push("created", { PRE .. "task:t" .. i }, { "t" .. i }, true) end
      for i = 1, 10 do status[i] = q:push("status", { PRE .. "task:t" .. i }, { "t" .. i, "succeeded" }) end
      local tell = function(ev) events[#events + 1] = ev end
      for _ = 1, 5 do q:pump(st, tell) end
      assert.equal(20, evals(b))
      assert.equal(1, waits(b))
      for i = 1, 10 do
        assert.is_true(created[i].written, "created " .. i)
        assert.is_true(status[i].written, "status " .. i)
      end
      assert.truthy(st.acks:waiting())
      assert.is_true(q:settled())
      assert.equal(1, #events)
      assert.matches("the created record of t1: not acknowledged by 1 replicas within 1 s (0 did); waited for again "
        .. "until it is", events[1].message, 1, true)
      assert.equal(1, (st:call("GET", PRE .. "x")))
      Acks.LEAST, Acks.AGAIN = 0, 0
      b.acked = 1
      for _ = 1, 3 do st:step(0) end
      assert.equal(2, waits(b))
      assert.equal(20, evals(b)) -- (none written again)
      assert.falsy(st.acks:waiting())
      for _ = 1, 3 do st:step(0) end
      assert.equal(2, waits(b))
    end)

  it("a create's pending record not acknowledged is written and waited on again only Acks.spacing later, the "
    .. "store's other answers read meanwhile, and the create goes once acknowledged", function()
      local acked = 0
      local ask, st, b, events = asking(function() return acked end)
      for _ = 1, 20 do assert.is_false(ask:step()) end
      assert.equal(1, waits(b)) -- (each step sent it again, a WAIT of replica_timeout each, before)
      assert.equal(1, (st:call("GET", PRE .. "x")))
      assert.equal(1, #events)
      assert.matches("the pending record of create lid-%S+: not acknowledged by 1 replicas", events[1].message)
      Acks.LEAST, Acks.AGAIN, acked = 0, 0, 1
      assert.is_true((answered(ask)))
      assert.equal(2, waits(b))
    end)
end)

-- A failover that leaves fewer replicas than `replicas`: the records the process writes again for the new server
-- (fleet/identity.lua's, sent first) are written there but not acknowledged; before, every other answer of the
-- store (a budget's token, a lease, a poll's record) waited behind them, sent again forever, in silence: no poll, no
-- download.  Now the other answers are read, one WAIT covers the records (sent again a while after each short one,
-- fleet/acks.lua: only what needs the replicas waits) and the shortage is said, again at most once a RETELL while
-- it lasts.

-- Command n's answer, reading at most `turns` steps: it, or nil when it is not there.
local function answer(st, n, turns)
  for _ = 1, turns do
    st:step(0)
    if st:ready(n) then return st:result(n) end
  end
end

describe("a failover to a primary with fewer replicas than asked", function()
  local retell, least, again = Store.RETELL, Acks.LEAST, Acks.AGAIN
  after_each(function() Store.RETELL, Acks.LEAST, Acks.AGAIN = retell, least, again end)

  it("the store's other answers go on while the records written again wait for the replicas, said once a "
    .. "RETELL, and their WAIT stops being sent once acknowledged", function()
      local st, s = store { url = "redis://127.0.0.1:" .. math.random(20000, 60000), replicas = 1 }
      local events = {}
      local w = { cfg = { on_event = function(ev) events[#events + 1] = ev end } }
      function w.records_again() return { { "ledger_lease", { PRE .. "owner:me" }, { "30000" }, true } } end
      st:watch(PRE, w, true)
      s.next_run = "aaaa"
      assert.equal(1, (st:script("ledger_lease", { PRE .. "owner:me" }, { "30000" })))
      s.next_run, s.acked = "bbbb", 0 -- (the promoted replica: another run id, no replica of its own)
      for i = 1, 3 do -- (a token, a poll's record...: answered, each of them)
        assert.equal(1, answer(st, st:send("GET", PRE .. "x" .. i), 20), "answer " .. i)
      end
      assert.equal(2, evals(s)) -- (the lease recorded again, once)
      assert.equal(1, waits(s)) -- (one WAIT, not sent again before Acks.LEAST)
      assert.equal(1, #events)
      assert.equal("warning", events[1].type)
      assert.matches("a record written again after a failover: not acknowledged by 1 replicas within 1 s (0 did)",
        events[1].message, 1, true)
      Store.RETELL, Acks.LEAST, Acks.AGAIN = 0.05, 0, 0
      core.sleep(0.1)
      assert.equal(1, answer(st, st:send("GET", PRE .. "y"), 20))
      for _ = 1, 2 do st:step(0) end -- (the next WAIT sent, answered)
      assert.equal(2, #events) -- (said again: it lasts)
      s.acked = 1
      assert.equal(1, answer(st, st:send("GET", PRE .. "z"), 20))
      st:step(0)
      local sent = evals(s)
      local covers = waits(s)
      for _ = 1, 5 do st:step(0) end
      assert.equal(sent, evals(s))
      assert.equal(covers, waits(s)) -- (acknowledged: no longer waited for)
      assert.falsy(st.acks:waiting())
      assert.equal(2, #events)
    end)
end)

-- A Redis that may evict (issue 49, decided: told, not refused; docs/keep-and-fleet.md#redis-settings): the first
-- create on a store says so once through on_event, naming the policy; noeviction, or no maxmemory, says nothing.
describe("the first create on a store that may evict", function()
  local function first_create(settings)
    local events = {}
    local st = store("redis://127.0.0.1:" .. math.random(20000, 60000), function(args)
      if args[1] == "CONFIG" then return "ok", { args[3], settings[args[3]] } end
      return "ok", 1
    end)
    local ask = assert(Ask.new(ledger(st, events), { model = "videos", prompt = "p" }, "lid-" .. core.random_id(),
      nil, nil, { id = "me" }))
    assert.is_true((answered(ask)))
    local said = {}
    for _, ev in ipairs(events) do said[#said + 1] = ev.type .. ": " .. ev.message end
    return said
  end

  it("allkeys-lru with a maxmemory: one warning naming the policy and what it can cost", function()
    local said = first_create { appendfsync = "always", ["maxmemory-policy"] = "allkeys-lru", maxmemory = "104857600" }
    assert.equal(1, #said)
    assert.matches("^warning: store redis://127%.0%.0%.1:%d+/0: maxmemory%-policy is allkeys%-lru %(maxmemory "
      .. "104857600%): Redis may evict the fleet's records when its memory is full, and a task whose records are gone "
      .. "is paid again by a rerun; set maxmemory%-policy noeviction$", said[1])
  end)

  it("noeviction, or a policy with no maxmemory: nothing said", function()
    assert.same({}, first_create { appendfsync = "always", ["maxmemory-policy"] = "noeviction", maxmemory = "1000" })
    assert.same({}, first_create { appendfsync = "always", ["maxmemory-policy"] = "allkeys-lru", maxmemory = "0" })
  end)
end)
