-- `starvideos store check URL [--replicas N]` (issue 38 item 4; fleet/check.lua of rocks/redis): what the store
-- reaches, and a warning for each setting that can lose records; exit 0 usable, 1 not, 2 bad usage.  The
-- command line as a child process against real redis-servers: AOF off, eviction on, no replica; AOF on with a
-- replica; the replica itself; CONFIG refused; a wrong password; nothing listening.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local q = helper.shell_quote
local BIN = helper.root .. "/bin/starvideos"

-- The command line (env: a table of variables, first when given): { out, err, code, doc (--json's document) }.
local function check(url, ...)
  local env = ""
  if type(url) == "table" then
    for k, v in pairs(url) do if k ~= 1 then env = env .. k .. "=" .. q(v) .. " " end end
    url = url[1]
  end
  local parts = { "env -u STARVIDEOS_STORE " .. env, q(helper.lua), q(BIN), "store", "check", q(url) }
  for _, a in ipairs { ... } do parts[#parts + 1] = q(a) end
  local errfile = os.tmpname()
  local out, _, code = helper.capture(table.concat(parts, " ") .. " </dev/null 2>" .. q(errfile))
  local err = helper.read_file(errfile) or ""
  os.remove(errfile)
  return { out = out, err = err, code = code, doc = cjson.decode(out) }
end

-- The settings a report warns of, in order.
local function warned(doc)
  local list = {}
  for i, w in ipairs(doc.warnings) do list[i] = w.setting end
  return list
end

describe("starvideos store check: bad usage", function()
  it("a bad URL, another subcommand (the one meant named, the command as typed) or a negative --replicas: exit 2, "
    .. "the password never shown", function()
    local r = check("redis://:hunter2@127.0.0.1:70000")
    assert.equal(2, r.code, r.err)
    assert.matches('URL "redis://***@127.0.0.1:70000": the port is not 1 to 65535', r.err, 1, true)
    assert.is_nil(r.err:find("hunter2", 1, true))
    local parts = string.format("%s %s store chek redis://127.0.0.1:6379 2>&1", q(helper.lua), q(BIN))
    local out, _, code = helper.capture(parts)
    assert.equal(2, code)
    assert.matches(string.format('store\'s subcommands are check and hold (%s store check URL, %s store hold URL '
      .. '[--clear]), got "chek" (did you mean check?)', BIN, BIN), out, 1, true) -- (the command as it was typed)
    r = check("redis://127.0.0.1:6379", "--replicas=-1") -- (alone, -1 reads as a flag: argparse's rule)
    assert.equal(2, r.code)
    assert.matches("--replicas expects a whole number >= 0, got -1", r.err, 1, true)
    r = check("redis://127.0.0.1:6379", "--replicas", "-1")
    assert.equal(2, r.code)
    assert.matches("unknown option -1 (flags start with --; a value that starts with - is given as --flag=VALUE)",
      r.err, 1, true)
  end)
end)

local missing = redis_run.missing()
local describe_redis = missing and pending or describe

describe_redis("starvideos store check", function()
  it("AOF off, an eviction policy and no replica: usable (exit 0), each of the three warned of by name", function()
    local srv = redis_run.start { args = { "--maxmemory-policy allkeys-lru" } }
    finally(srv.stop)
    local r = check(srv.url, "--json")
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({ "replicas", "appendonly", "maxmemory-policy" }, warned(r.doc))
    assert.same({ true, "master", "ok", "no", "allkeys-lru", 0 }, { r.doc.usable, r.doc.role, r.doc.write,
      r.doc.persistence.appendonly, r.doc.persistence.maxmemory_policy, r.doc.online })
    local info = redis_run.info(srv.port, "server")
    assert.same({ info.redis_version, info.run_id }, { r.doc.server.version, r.doc.server.run_id })
    r = check(srv.url)
    assert.equal(0, r.code)
    assert.matches("warning (appendonly): appendonly is no: a restart of Redis loses every record", r.out, 1, true)
    assert.matches("warning (maxmemory-policy): maxmemory-policy is allkeys-lru: Redis may evict records", r.out, 1,
      true)
    assert.matches("warning (replicas): no replica", r.out, 1, true)
    assert.matches("\nusable\n$", r.out)
  end)

  it("AOF with appendfsync always and a replica online: no warning; --replicas 2: not usable (exit 1); the "
    .. "replica itself: not usable, its role named", function()
      local primary = redis_run.primary { aof = true }
      local replica = redis_run.replica(primary.port)
      finally(function() replica.stop(); primary.stop() end)
      assert(redis_run.wait_online(primary.port, 1))
      local r = check(primary.url, "--replicas", "1", "--json")
      assert.equal(0, r.code, r.out .. r.err)
      assert.same({}, warned(r.doc))
      assert.same({ 1, 1, "online" }, { r.doc.online, #r.doc.replicas, r.doc.replicas[1].state })
      assert.equal("always", r.doc.persistence.appendfsync)
      r = check(primary.url) -- (replicas = 0 while one is online: a failover to it may lose a record)
      assert.equal(0, r.code)
      assert.matches("warning (replicas): replicas = 0 while 1 are online", r.out, 1, true)
      r = check(primary.url, "--replicas", "2")
      assert.equal(1, r.code)
      assert.matches("not usable: 1 replicas online, fewer than the 2 records wait for", r.out, 1, true)
      r = check(replica.url, "--json")
      assert.equal(1, r.code)
      assert.same({ false, "slave" }, { r.doc.usable, r.doc.role })
      assert.matches("its role is slave, not master", r.doc.error, 1, true)
    end)

  it("CONFIG refused (as managed services do): appendonly read from INFO, appendfsync unknown and warned", function()
    local srv = redis_run.start { aof = true, args = { "--rename-command CONFIG ''" } }
    finally(srv.stop)
    local r = check(srv.url, "--json")
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal("yes", r.doc.persistence.appendonly)
    assert.same({ "replicas", "appendfsync" }, warned(r.doc))
    assert.matches("appendfsync unknown", r.doc.warnings[2].message, 1, true)
  end)

  it("an ACL user on a unix socket, INFO and CONFIG refused to it: usable, its role and replicas from ROLE, the "
    .. "refused INFO warned of; ROLE refused too: the role unknown, warned of", function()
      local dir = helper.tmpdir()
      local users = { { "bob", "pw-of-bob", "'~*' '&*' '+@all' -info -config -acl" },
        { "eve", "pw-of-eve", "'~*' '&*' '+@all' -info -config -acl -role" } }
      local primary = redis_run.primary { unix = dir .. "/r.sock", users = users }
      local replica = redis_run.replica(primary.port, { users = users }) -- (the users on every node, as the docs say)
      finally(function() replica.stop(); primary.stop() end)
      assert(redis_run.wait_online(primary.port, 1))
      local r = check("unix://bob:pw-of-bob@" .. dir .. "/r.sock", "--replicas", "1", "--json")
      assert.equal(0, r.code, r.out .. r.err)
      assert.same({ "info", "appendonly", "maxmemory-policy" }, warned(r.doc))
      assert.same({ "master", 1, "connected", "ok" },
        { r.doc.role, r.doc.online, r.doc.replicas[1].state, r.doc.write })
      assert.is_nil(r.doc.server)
      assert.matches("INFO is refused to this user: a failover (a promoted replica, Sentinel's new master)",
        r.doc.warnings[1].message, 1, true)
      r = check("unix://bob:pw-of-bob@" .. dir .. "/r.sock")
      assert.matches("\nuser: bob\nrole: master, 1 of 1 replicas online", r.out, 1, true)
      assert.matches("replica 127.0.0.1:%d+: connected, lag unknown, %d+ bytes behind, the user ok\npersistence: "
        .. "appendonly "
        .. "unknown, appendfsync unknown, maxmemory%-policy unknown\n", r.out)
      assert.is_nil((r.out .. r.err):find("pw-of-bob", 1, true))
      r = check("unix://eve:pw-of-eve@" .. dir .. "/r.sock", "--json") -- (ROLE refused too: unknown, warned of)
      assert.equal("unknown", r.doc and r.doc.role, r.out .. r.err)
      assert.same({ "info", "role", "appendonly", "maxmemory-policy" }, warned(r.doc))
      assert.matches("neither INFO nor ROLE may be asked: the role and replicas are unknown",
        r.doc.warnings[2].message, 1, true)
    end)

  it("a wrong password or nothing listening: not usable (exit 1), the password never shown", function()
    local srv = redis_run.start { password = "right-one" }
    finally(srv.stop)
    local r = check(("redis://:hunter2@127.0.0.1:%d"):format(srv.port))
    assert.equal(1, r.code)
    assert.matches("not usable: store redis://127.0.0.1:%d+/0: AUTH failed", r.out)
    assert.is_nil((r.out .. r.err):find("hunter2", 1, true))
    local port = helper.free_ports(1)[1]
    r = check(("redis://:hunter2@127.0.0.1:%d"):format(port), "--json")
    assert.equal(1, r.code)
    assert.matches("connect", r.doc.error, 1, true)
    assert.is_nil((r.out .. r.err):find("hunter2", 1, true))
  end)

  it("TLS: the certificate it reached (its subject and issuer), the protocol and cipher", function()
    local why = require("spec.support.tls_ca").missing()
    if why then return pending(why) end
    local ca = require("spec.support.tls_ca").make(helper.tmpdir())
    local srv = redis_run.start { tls = ca, aof = true }
    finally(srv.stop)
    local r = check({ srv.url, SSL_CERT_FILE = ca.ca }, "--json")
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches("localhost", r.doc.tls.subject, 1, true)
    assert.matches("TLS", r.doc.tls.version, 1, true)
    assert.is_string(r.doc.tls.issuer)
    r = check({ srv.url, SSL_CERT_FILE = ca.ca })
    assert.matches("\ntls: TLS", r.out)
    r = check({ srv.url, SSL_CERT_FILE = ca.other_ca }) -- (the wrong CA: refused)
    assert.equal(1, r.code)
    assert.matches("certificate", r.out, 1, true)
  end)

  it("Sentinel: each sentinel's view of the service (its master, replicas, quorum), the master's role", function()
    local set, proc = redis_run.start_sentinel(), nil
    finally(function() -- (one finally a case: busted keeps the last one given)
      if proc then helper.execute("kill " .. proc.pid .. " 2>/dev/null"); proc:close() end
      set.stop()
    end)
    assert(redis_run.wait_online(set.primary.port, 2)) -- (their first sync done)
    local r = check(set.url, "--json")
    assert.equal(0, r.code, r.out .. r.err)
    assert.equal(3, #r.doc.sentinels)
    for _, sn in ipairs(r.doc.sentinels) do
      assert.same({ "127.0.0.1:" .. set.primary.port, 2, 3, 2 }, { sn.master, sn.replicas, sn.sentinels, sn.quorum })
    end
    assert.same({ "master", 2 }, { r.doc.role, r.doc.online })
    set.sentinels[3].stop()
    r = check(set.url)
    assert.equal(0, r.code)
    assert.matches("warning %(sentinel%): sentinel 127%.0%.0%.1:%d+ cannot be asked: store", r.out)
    -- a third host that is no sentinel of the service, answering SENTINEL MASTER without a master's address:
    -- no second master (it was counted one, "master nil:nil"), a host that cannot be asked
    local dir = helper.tmpdir()
    proc = helper.spawn(q(helper.lua) .. " rocks/redis/spec/support/fake_sentinel.lua " .. q(dir .. "/port") .. " 2>&1")
    assert(helper.wait_until(function() return (helper.read_file(dir .. "/port") or ""):match("%d+\n") end, 10))
    local fake = tonumber(helper.read_file(dir .. "/port"):match("%d+"))
    local url = string.format("redis+sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/mymaster",
      set.sentinels[1].port, set.sentinels[2].port, fake)
    r = check(url, "--json")
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({ "127.0.0.1:" .. set.primary.port, "127.0.0.1:" .. set.primary.port },
      { r.doc.sentinels[1].master, r.doc.sentinels[2].master })
    assert.is_nil(r.doc.sentinels[3].master)
    assert.matches("without the master's address", r.doc.sentinels[3].error, 1, true)
    for _, w in ipairs(r.doc.warnings) do assert.is_nil(w.message:find("more than one master", 1, true)) end
  end)

  it("the docs' Sentinel recipe's two servers, as written: store check --replicas 1 of its primary warns of "
    .. "nothing (before, appendfsync everysec)", function()
    local text = assert(helper.read_file(helper.root .. "/docs/keep-and-fleet.md"))
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l:match("^(redis%-server %-%-port 638%d .*) &$") end
    assert.equal(2, #lines, "the recipe's redis-server lines")
    local dir, ports, procs = helper.tmpdir(), helper.free_ports(2), {}
    finally(function()
      for _, p in ipairs(procs) do helper.execute("kill " .. p.pid .. " 2>/dev/null"); p:close() end
    end)
    for _, l in ipairs(lines) do -- (the page's ports and folder made ours)
      l = l:gsub("%f[%d]6380%f[%D]", tostring(ports[1])):gsub("%f[%d]6381%f[%D]", tostring(ports[2]))
      l = l:gsub("/tmp/sentinel", dir)
      local sub = l:match("%-%-dir (%S+)")
      assert(helper.execute("mkdir -p " .. q(sub)))
      procs[#procs + 1] = helper.spawn(l .. " --save '' >/dev/null 2>&1")
    end
    assert(helper.wait_until(function() -- (a server not listening yet: asked again, not an error)
      local ok, n = pcall(redis_run.online, ports[1])
      return ok and n == 1
    end, 20), "no replica online")
    local r = check("redis://127.0.0.1:" .. ports[1], "--replicas", "1", "--json")
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({}, warned(r.doc))
    assert.same({ "yes", "always" }, { r.doc.persistence.appendonly, r.doc.persistence.appendfsync })
  end)

  it("Cluster: the cluster's state and slots", function()
    local set = redis_run.start_cluster()
    finally(set.stop)
    local r = check(set.url, "--json")
    assert.equal(0, r.code, r.out .. r.err)
    assert.same({ "ok", 16384, 3, 3 }, { r.doc.cluster.state, r.doc.cluster.slots_ok, r.doc.cluster.size,
      r.doc.cluster.nodes })
    local want = {} -- (CLUSTER SLOTS as redis-cli gives it: each node's ranges)
    for _, n in ipairs(set.nodes) do
      local ranges = {}
      for _, l in ipairs(redis_run.cli(n.port, "CLUSTER", "NODES")) do
        if l:find("myself", 1, true) then
          for a, b in l:gmatch(" (%d+)%-(%d+)") do ranges[#ranges + 1] = a .. "-" .. b end
        end
      end
      want[#want + 1] = { address = "127.0.0.1:" .. n.port, slots = table.concat(ranges, ","), replicas = 0 }
    end
    table.sort(want, function(a, b) return a.slots < b.slots end)
    assert.same(want, r.doc.cluster.primaries)
    r = check(set.url)
    assert.matches("\ncluster: ok, 16384 of 16384 slots ok, 3 primaries, 3 nodes\n", r.out, 1, true)
    assert.matches("\n  primary " .. want[1].address .. ": slots 0%-%d+, 0 replicas\n", r.out)
  end)
end)
