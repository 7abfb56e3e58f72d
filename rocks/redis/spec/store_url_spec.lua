-- A store's URL and table form (config.store_url over core.store_url, the one parse; CONTRACT.md's "Redis
-- as operators run it"), without a server: what each form gives, what a connection may be shared by, and
-- the refusals, each naming `store` and never a password.
local config = require "starvideos.config"

local store_url = require("starvideos.fleet.url").parse
local SECRET = "s3cr%2Ft" -- (unescaped: s3cr/t)

-- The message of what store_url raises on v.
local function refusal(v)
  local ok, err = pcall(store_url, v)
  assert.is_false(ok, "accepted: " .. tostring(type(v) == "table" and v.url or v))
  return tostring(err)
end

describe("a store's URL", function()
  it("gives one server's parts: host, port, db, user and password unescaped, where without them", function()
    local c = store_url("redis://user:" .. SECRET .. "@[::1]:7000/3")
    assert.same({ "one", false, "::1", 7000, 3, "user", "s3cr/t", "redis://[::1]:7000/3" },
      { c.kind, c.tls, c.host, c.port, c.db, c.user, c.password, c.where })
    c = store_url("rediss://default:" .. SECRET .. "@cache.example.com:6380")
    assert.same({ "one", true, "cache.example.com", 6380, 0, "default", "rediss://cache.example.com:6380/0" },
      { c.kind, c.tls, c.host, c.port, c.db, c.user, c.where })
    assert.same({ 6379, 0, "redis://h:6379/0" }, { store_url("redis://h").port, store_url("redis://h").db,
      store_url("redis://h").where })
  end)

  it("gives a unix socket's path and db", function()
    local c = store_url("unix://:" .. SECRET .. "@/run/redis/redis.sock?db=2")
    assert.same({ "unix", false, "/run/redis/redis.sock", 2, "s3cr/t", "unix:///run/redis/redis.sock?db=2" },
      { c.kind, c.tls, c.path, c.db, c.password, c.where })
  end)

  it("gives Sentinel's sentinels (26379 by default), its service and its db", function()
    local c = store_url("rediss+sentinel://app:" .. SECRET .. "@s1,s2:5000,[::1]/mymaster/4")
    assert.same({ "sentinel", true, "mymaster", 4, "app" }, { c.kind, c.tls, c.service, c.db, c.user })
    assert.same({ { host = "s1", port = 26379 }, { host = "s2", port = 5000 }, { host = "::1", port = 26379 } },
      c.hosts)
    assert.equal("rediss+sentinel://s1:26379,s2:5000,[::1]:26379/mymaster/4", c.where)
  end)

  it("gives a Cluster's nodes, db 0", function()
    local c = store_url("redis+cluster://n1:7000,n2:7001")
    assert.same({ "cluster", false, 0, 2, "redis+cluster://n1:7000,n2:7001" },
      { c.kind, c.tls, c.db, #c.hosts, c.where })
    assert.is_true(store_url("rediss+cluster://n1").tls)
  end)

  it("is refused with what is wrong and the form expected, naming store, never the password", function()
    local cases = {
      { "http://u:" .. SECRET .. "@h", "the scheme is not redis://, rediss://, unix://" },
      { "redis://u:" .. SECRET .. "@h:1/x", "after host:port only /db (a number) may follow (expected redis://" },
      { "rediss://:" .. SECRET .. "@a,b", "one host only (a list of hosts is for redis+sentinel://" },
      { "redis+sentinel://:" .. SECRET .. "@a:1", "no service after the sentinels" },
      { "redis+cluster://:" .. SECRET .. "@a/1",
        "a cluster has db 0 only: nothing may follow its hosts (expected redis+cluster://" },
      { "unix://:" .. SECRET .. "@relative", "no socket path (unix:///path/redis.sock)" },
      { "redis://:" .. SECRET .. "@h:70000", "the port is not 1 to 65535" },
    }
    for _, case in ipairs(cases) do
      local err = refusal(case[1])
      assert.matches("^store \"", err)
      assert.truthy(err:find(case[2], 1, true), err)
      assert.is_nil(err:find("s3cr", 1, true), err)
    end
    assert.equal("store \"42\": a URL or a table {url = URL, ...} expected, got number", refusal(42))
  end)
end)

describe("a store's table form", function()
  local ca = os.tmpname()
  teardown(function() os.remove(ca) end)

  it("carries its TLS, Sentinel and replica fields; verify is true unless false; defaults from DEFAULTS", function()
    local c = store_url { url = "rediss+sentinel://h/m", ca_file = ca, cert_file = ca, key_file = ca,
      server_name = "redis.internal", sentinel_user = "s", sentinel_password = "sp", replicas = 2,
      replica_timeout = 0.5 }
    assert.same({ ca, ca, ca, "redis.internal", "s", "sp", 2, 0.5, true },
      { c.ca_file, c.cert_file, c.key_file, c.server_name, c.sentinel_user, c.sentinel_password, c.replicas,
        c.replica_timeout, c.verify })
    c = store_url { url = "rediss://h", verify = false }
    assert.same({ false, config.DEFAULTS.replicas, config.DEFAULTS.replica_timeout },
      { c.verify, c.replicas, c.replica_timeout })
    assert.is_true(store_url("rediss://h").verify)
  end)

  it("refuses a field that is unknown, of the wrong type, or for another form, naming store.FIELD", function()
    local cases = {
      { { url = "redis://h", tls = true }, "store: no field \"tls\"" },
      { { url = "rediss://h", ca_file = "/nonexistent/ca.pem" }, "store.ca_file: expected a file that can be read" },
      { { url = "rediss://h", verify = "no" }, "store.verify: expected true or false, got \"no\"" },
      { { url = "redis://h", ca_file = ca }, "store.ca_file: for TLS only, and redis://h:6379/0 is not rediss://" },
      { { url = "redis://h", verify = false }, "store.verify: for TLS only" },
      { { url = "rediss://h", sentinel_password = "x" }, "store.sentinel_password: for Sentinel only" },
      { { url = "rediss://h", cert_file = ca }, "store: cert_file and key_file go together" },
      { { url = "redis+sentinel://h/m", sentinel_user = "u" }, "store.sentinel_user: needs sentinel_password" },
      { { url = "redis://h", replicas = -1 }, "store.replicas: expected a whole number from 0 to 100" },
      { { url = "redis://h", replica_timeout = 0 }, "store.replica_timeout: expected a number of seconds" },
      { { ca_file = ca }, "store.url \"nil\": a URL or a table {url = URL, ...} expected, got nil" },
      { { url = "redis://:" .. SECRET .. "@h/x" }, "store.url \"redis://***@h/x\": after host:port only /db" },
    }
    for _, case in ipairs(cases) do
      local err = refusal(case[1])
      assert.truthy(err:find(case[2], 1, true), err)
      assert.is_nil(err:find("s3cr", 1, true), err)
    end
  end)

  it("is refused by starvideos.new as its store option", function()
    local ok, err = pcall(require("starvideos").new, { api_key = "k", store = { url = "redis://h", verify = 1 } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("store.verify: expected true or false", 1, true), err)
  end)
end)

describe("what a store's connection may be shared by", function()
  it("is the same for the same endpoint, TLS settings, user, password and db, else another", function()
    local base = store_url { url = "rediss://u:pw@h:6380/1", server_name = "a" }
    assert.equal(base.id, store_url({ url = "rediss://u:pw@h:6380/1", server_name = "a" }).id)
    local others = {
      { url = "rediss://u:pw@h:6380/2", server_name = "a" }, { url = "rediss://v:pw@h:6380/1", server_name = "a" },
      { url = "rediss://u:px@h:6380/1", server_name = "a" }, { url = "rediss://u:pw@h:6381/1", server_name = "a" },
      { url = "rediss://u:pw@h:6380/1", server_name = "b" }, { url = "rediss://u:pw@h:6380/1", verify = false },
      { url = "redis://u:pw@h:6380/1" },
    }
    for _, o in ipairs(others) do assert.not_equal(base.id, store_url(o).id, o.url) end
  end)
end)

describe("a client's store", function()
  -- (issue 70: it was parsed 4 times a client, by config's check, the client's where, store.for_key, store.new)
  it("is parsed once for a client, by its config: the ledger and its store are made from that parse", function()
    local native = require "starvideos.fleet.native"
    local parse, n = native.store_url, 0
    native.store_url = function(...) n = n + 1; return parse(...) end
    finally(function() native.store_url = parse end)
    for _, store in ipairs { "redis://127.0.0.1:1/2", { url = "redis://127.0.0.1:1/3", replicas = 1 } } do
      n = 0
      local client = require("starvideos").new { api_key = "k", base_url = "http://127.0.0.1:1", store = store }
      assert.equal(1, n, type(store))
      assert.equal("redis://127.0.0.1:1/" .. (type(store) == "table" and 3 or 2), client.ledger.where)
      client:close()
      assert.equal(1, n, type(store))
    end
  end)
end)
