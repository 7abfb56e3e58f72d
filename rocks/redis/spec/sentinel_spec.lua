-- Sentinel's master found (fleet/sentinel.lua) when the first sentinel listed is no help (issue 49): one that
-- names a replica, one that hangs, one that names an address where nothing answers as Redis.  Before, each sent
-- the client back to the first sentinel, round after round, until the store's timeout: every create refused
-- while a healthy second sentinel was never asked.  Now a master that fails ROLE sends the client to the next
-- sentinel, each host is waited for a share of the timeout (S.budget), and the sentinel that named the master is
-- asked first next time.  Without a server: fleet/conn.lua's open is the spec's own, each endpoint scripted.
-- (on a clock of their own, moved by the waits, issue 78, 2: first, before the library)
local clock = require "spec.support.fake_clock"
local Conn = require "starvideos.fleet.conn"
local S = require "starvideos.fleet.sentinel"
local core = require "starvideos.core"

local MASTER, REPLICA, DEAD = { "10.0.0.1", "6379" }, { "10.0.0.2", "6379" }, { "10.0.0.3", "8080" }

-- Endpoints by "host:port": a sentinel {names = {host, port}} or {hang = true}; a server {role = "master"} or
-- {role = "slave"} or {silent = true} (a port that is not Redis: its hello never answered).  asked: the
-- connections made to each.
local function hosts(list)
  local asked = {}
  local function open(ep)
    local at = ep.host .. ":" .. ep.port
    local e = assert(list[at], "no endpoint " .. at)
    asked[at] = (asked[at] or 0) + 1
    local c = { name = "spec", null = false }
    function c.send() return 1 end
    function c.reply()
      if e.hang then return "wait" end
      return "ok", e.names
    end
    function c.ready()
      if e.silent then return false end
      if e.role ~= "master" then
        return nil, "ROLE failed: the server is a " .. tostring(e.role) .. ", not the master"
      end
      return true
    end
    function c.poll(_, wait) core.sleep(math.min(wait, 0.01)); return 0 end -- (find's: the clock moved)
    function c.pending() return 0 end
    function c.close() end
    c.at = at
    return c
  end
  return open, asked
end

-- The sentinel way of cfg found (timeout s), each step polled: the master's address and the seconds it took, or
-- nil and the error; on a clock of its own (spec/support/fake_clock.lua), which each wait moves by what it asked
-- (core.sleep, the hosts' polls' and the pauses' between rounds), so that the seconds counted are the budget's, at
-- any pace.
-- (server: what the process knows of the store's server, store.server: the master remembered there)
local found
local last = 0 -- (the clock where the last find left it: it never goes back)
local function find(cfg, timeout, server)
  local sleep = core.sleep
  clock.start(math.max(core.now(), last))
  core.sleep = function(s) clock.advance(math.max(s, 1e-6)) end -- (as real time, past a due it waited for)
  local ok, a, b = pcall(found, cfg, timeout, server)
  last = core.now()
  clock.stop()
  core.sleep = sleep
  if not ok then error(a, 0) end
  return a, b
end

function found(cfg, timeout, server)
  local t0 = core.now()
  local w, err = S.new(cfg, timeout, nil, server)
  if not w then return nil, err end
  while core.now() - t0 < timeout + 2 do
    local c, cerr = w:conn_for()
    if c then return c.at, core.now() - t0 end
    if c == nil then return nil, cerr end
    w:poll(0.05)
  end
  error(string.format("neither found nor refused in %g s", timeout + 2))
end

local function cfg_of()
  return { kind = "sentinel", service = "mymaster", db = 0, id = "spec sentinel " .. core.random_id(),
    hosts = { { host = "s1", port = 26379 }, { host = "s2", port = 26379 } } }
end

describe("Sentinel's sentinels asked in turn", function()
  local open = Conn.open
  after_each(function() Conn.open = open end)

  local function servers(first)
    return { ["s1:26379"] = first, ["s2:26379"] = { names = MASTER },
      ["10.0.0.1:6379"] = { role = "master" }, ["10.0.0.2:6379"] = { role = "slave" },
      ["10.0.0.3:8080"] = { silent = true } }
  end

  it("a first sentinel that names a replica: the master that fails ROLE sends the client to the next sentinel",
    function()
      local asked
      Conn.open, asked = hosts(servers { names = REPLICA })
      local at, took = find(cfg_of(), 2)
      assert.equal("10.0.0.1:6379", at, took)
      assert.truthy(took < 0.5, took)
      assert.same({ 1, 1, 1 }, { asked["s1:26379"], asked["10.0.0.2:6379"], asked["s2:26379"] })
    end)

  it("a first sentinel that hangs: the next asked once its share of the timeout is spent", function()
    Conn.open = hosts(servers { hang = true })
    local at, took = find(cfg_of(), 1.5)
    assert.equal("10.0.0.1:6379", at)
    local per = S.budget(1.5, 2)
    assert.truthy(took >= per - 0.05 and took < per + 0.4, took)
  end)

  it("a first sentinel that names a port where nothing answers as Redis: the next asked after its share", function()
    local asked
    Conn.open, asked = hosts(servers { names = DEAD })
    local at, took = find(cfg_of(), 1.5)
    assert.equal("10.0.0.1:6379", at)
    assert.truthy(took < S.budget(1.5, 2) + 0.4, took)
    assert.equal(1, asked["10.0.0.3:8080"])
  end)

  it("the master remembered; once it fails ROLE, the sentinel that named it is asked first", function()
    local list = servers { names = REPLICA }
    local asked
    Conn.open, asked = hosts(list)
    local cfg, server = cfg_of(), {}
    assert.equal("10.0.0.1:6379", (find(cfg, 2, server)))
    assert.equal("10.0.0.1:6379", (find(cfg, 2, server)))
    assert.equal(1, asked["s2:26379"]) -- (remembered: no sentinel asked)
    list["10.0.0.1:6379"].role, list["10.0.0.4:6379"] = "slave", { role = "master" } -- (a failover)
    list["s2:26379"].names = { "10.0.0.4", "6379" }
    assert.equal("10.0.0.4:6379", (find(cfg, 2, server)))
    assert.same({ 1, 2 }, { asked["s1:26379"], asked["s2:26379"] })
  end)

  it("no sentinel of help: refused at the store's timeout, naming the last failure", function()
    Conn.open = hosts { ["s1:26379"] = { names = REPLICA }, ["s2:26379"] = { hang = true },
      ["10.0.0.2:6379"] = { role = "slave" } }
    local at, err = find(cfg_of(), 1)
    assert.is_nil(at)
    assert.matches("no master for mymaster from the sentinels within 1 s", err, 1, true)
  end)
end)
