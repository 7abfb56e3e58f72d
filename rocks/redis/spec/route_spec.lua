-- fleet/route.lua without a server, through its seam (R.wrap over a way of the spec's own, whose connections
-- answer what each case scripts): Redis' answers as the one table says (ANSWERS, the same table as
-- docs/keep-and-fleet.md's "Redis' answers"), the key a command is routed by, a Cluster's hash slots.
local R = require "starvideos.fleet.route"
local core = require "starvideos.core"
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- A connection answering each command with the next of `answers` ({status, value}), recording what it got.
local function conn(name, answers)
  local c = { name = name, got = {}, n = 0 }
  function c.send(_, args, pre)
    c.n = c.n + 1
    c.got[#c.got + 1] = { args = args[1], pre = pre and pre[1][1] or nil }
    return c.n
  end
  function c.reply() return unpack(table.remove(answers, 1) or { "wait" }) end
  function c.pending() return 0 end
  return c
end

-- A way of named connections: conn_for gives "home", conn_at(addr) that address's; finds and moves counted.
local function way(conns)
  local w = { name = "spec", null = false, found = 0, moves = {} }
  function w.conn_for() return conns.home end
  function w.conn_at(_, addr) return conns[addr] end
  function w.poll() return 0 end
  function w.find() w.found = w.found + 1; return w.finds ~= false end
  function w.moved(_, slot, addr) w.moves[#w.moves + 1] = slot .. " " .. addr; conns.home = conns[addr] end
  function w.broke() end
  function w.pending() return 0 end
  function w.close() end
  return w
end

-- Command args sent on a route over w (timeout s), its reply read until it is not "wait" (polling between).
local function run(w, timeout, args)
  local r = R.wrap(w, timeout or 1)
  local n = assert(r:send(args or { "SET", "k", "v", n = 3 }))
  local status, v = r:reply(n)
  local deadline = core.now() + 5
  while status == "wait" and core.now() < deadline do
    r:poll(0.01)
    status, v = r:reply(n)
  end
  return status, v
end

describe("a route", function()
  it("follows MOVED to the node named, and learns the slot's node", function()
    local b = conn("b", { { "ok", "OK" } })
    local w = way { home = conn("a", { { "error", "MOVED 866 127.0.0.1:7001" } }), ["127.0.0.1:7001"] = b }
    assert.same({ "ok", "OK" }, { run(w) })
    assert.same({ "866 127.0.0.1:7001" }, w.moves)
    assert.same({ { args = "SET" } }, b.got)
  end)

  it("follows ASK once, with ASKING before the command on the same connection, learning nothing", function()
    local b = conn("b", { { "ok", "OK" } })
    local w = way { home = conn("a", { { "error", "ASK 866 127.0.0.1:7001" } }), ["127.0.0.1:7001"] = b }
    assert.same({ "ok", "OK" }, { run(w) })
    assert.same({}, w.moves)
    assert.same({ { args = "SET", pre = "ASKING" } }, b.got)
  end)

  it("stops following after 5 redirections in a row, pauses, and gives the error when no pause fits", function()
    local answers = {}
    for i = 1, 200 do answers[i] = { "error", "MOVED 1 127.0.0.1:7001" } end
    local loop = conn("loop", answers)
    local w = way { home = loop, ["127.0.0.1:7001"] = loop }
    local t0 = core.now()
    local status, v = run(w, 0.3)
    assert.same({ "error", "MOVED 1 127.0.0.1:7001" }, { status, v })
    assert.is_true(core.now() - t0 >= 0.05 and #loop.got > 5 and #loop.got < 40, #loop.got .. " sends")
  end)

  it("sends again after a pause on LOADING, BUSY, TRYAGAIN and CLUSTERDOWN, until the timeout", function()
    for _, code in ipairs { "LOADING Redis is loading", "BUSY script", "TRYAGAIN Multiple keys", "CLUSTERDOWN down" } do
      local c = conn("a", { { "error", code }, { "error", code }, { "ok", 7 } })
      assert.same({ "ok", 7 }, { run(way { home = c }) }, code)
      assert.equal(3, #c.got)
      local stuck = {}
      for i = 1, 100 do stuck[i] = { "error", code } end
      assert.same({ "error", code }, { run(way { home = conn("b", stuck) }, 0.2) })
    end
  end)

  it("finds the way again on READONLY and MASTERDOWN (a script's wrapped one too), or ends where it cannot", function()
    for _, msg in ipairs { "READONLY You can't write against a read only replica.",
      "MASTERDOWN Link with MASTER is down", "ERR Error running script: @user_script:1: -READONLY You can't write" } do
      local w = way { home = conn("a", { { "error", msg }, { "ok", 1 } }) }
      assert.same({ "ok", 1 }, { run(w) }, msg)
      assert.equal(1, w.found)
      local one = way { home = conn("a", { { "error", msg } }) }
      one.finds = false -- (one server: nowhere else to look)
      assert.same({ "error", msg }, { run(one) })
    end
  end)

  it("gives NOREPLICAS, OOM, NOSCRIPT and any other error to the caller at once, with what it is told", function()
    for _, msg in ipairs { "NOREPLICAS Not enough good replicas to write.", "OOM command not allowed",
      "NOSCRIPT No matching script.", "WRONGTYPE Operation against a key", "CROSSSLOT Keys in request" } do
      local c = conn("a", { { "error", msg } })
      assert.same({ "error", msg }, { run(way { home = c }) })
      assert.equal(1, #c.got)
    end
    assert.matches("^fewer replicas than min%-replicas%-to%-write", R.told("NOREPLICAS Not enough good replicas"))
    assert.matches("^Redis is full", R.told("OOM command not allowed"))
    assert.is_nil(R.told("WRONGTYPE Operation against a key"))
  end)

  it("routes a command by its key: EVAL's first key, none for the server's own commands", function()
    assert.equal("k", R.key_of { "EVAL", "return 1", "2", "k", "j" })
    assert.is_nil(R.key_of { "EVAL", "return 1", "0" })
    assert.is_nil(R.key_of { "CONFIG", "GET", "appendfsync" })
    assert.is_nil(R.key_of { "wait", "1", "100" })
    assert.equal("x", R.key_of { "hget", "x", "f" })
  end)
end)

describe("a Cluster's hash slot", function()
  it("is CRC16 modulo 16384 of the key, or of its {hash tag}: every key of a fleet in one slot", function()
    local slot = require("starvideos.fleet.native").slot -- (the redis rock's C: rocks/redis/csrc/url.c)
    assert.equal(12182, slot("foo"))
    assert.equal(slot("{abc}"), slot("starvideos:{abc}:task:1"))
    assert.equal(slot("starvideos:{abc}:identity"), slot("starvideos:{abc}:pending"))
    assert.are_not.equal(slot("starvideos:{abc}:x"), slot("starvideos:{abd}:x"))
  end)
end)

describe("Redis' answers in docs/keep-and-fleet.md", function()
  it("are the table of the code, row for row", function()
    local doc = assert(io.open("docs/keep-and-fleet.md")):read("*a")
    local sec = assert(doc:match("\n## Redis' answers\n(.-)\n## "), "docs/keep-and-fleet.md has no ## Redis' answers")
    local rows = {}
    for code, what, told in sec:gmatch("\n| `(%u+)` | (%a+) | ([^|\n]+) |") do rows[code] = { what, told } end
    local names = { move = "followed", ask = "followed", find = "rediscovered", pause = "retried", ends = "ends" }
    for code, row in pairs(R.ANSWERS) do
      assert.is_table(rows[code], "no row for " .. code)
      assert.equal(names[row[1]], rows[code][1], code)
      assert.equal(row[2], (rows[code][2]:gsub("%s+$", "")), code)
      rows[code] = nil
    end
    assert.same({}, rows)
  end)
end)
