-- The store over TLS, with ACL users and on a unix socket (issue 38 item 1), against a real redis-server
-- started here from Debian's package with its TLS port and a test CA made with openssl
-- (spec/support/tls_ca.lua), outside nginx (starvideos.redis) and inside (cosockets): a fleet of two
-- processes over rediss:// with a user; a wrong CA, a wrong host name, a wrong password each refused with
-- a clear io error that shows no password; verification off only when asked, said once; a client
-- certificate; a unix socket.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local tls_ca = require "spec.support.tls_ca"
local nginx_run = require "spec.support.nginx_run"

local q = helper.shell_quote
local PW, PARAMS = "app pw", { model = "videos", prompt = "over TLS", duration = 5 }
local ESC = "app%20pw" -- (PW in a URL)

local why = redis_run.missing(true) or tls_ca.missing()
if why then
  describe("the store over TLS", function() pending(why) end)
  return
end

local starvideos = require "starvideos"

-- A create through a client on `store` (an emulator behind): its task, or nil and the error; the warnings said.
local function create_on(emu, store)
  local warnings = {}
  local client = starvideos.new { api_key = emu.key, base_url = emu.url, store = store, connect_timeout = 3,
    on_event = function(ev) if ev.type == "warning" then warnings[#warnings + 1] = ev.message end end }
  local task, err = client:create(PARAMS)
  client:close()
  return task, err, warnings
end

-- Two servers of the test CA: srv (TLS, an ACL user, a unix socket), csrv asking a client certificate.
local function start_servers(dir, ca)
  local srv = redis_run.start { tls = ca, users = { { "app", PW } }, unix = dir .. "/redis.sock" }
  local ok, csrv = pcall(redis_run.start, { tls = { cert = ca.cert, key = ca.key, ca = ca.ca, clients = true } })
  if not ok then srv.stop(); error(csrv, 0) end
  return srv, csrv
end

describe("the store over TLS outside nginx", function()
  local ca, srv, csrv, emu, dir

  setup(function()
    dir = helper.tmpdir()
    ca = tls_ca.make(dir)
    srv, csrv = start_servers(dir, ca)
    emu = helper.emulator { queued = 0.05, processing = 0.1 }
  end)
  teardown(function()
    if emu then emu:stop() end
    if srv then srv.stop() end
    if csrv then csrv.stop() end
    helper.cleanup()
  end)
  before_each(function() emu:reset() end)

  local function url(host, pw) return string.format("rediss://app:%s@%s:%d", pw or ESC, host, srv.port) end

  it("carries a fleet of two processes over rediss:// with an ACL user (the system's CAs: SSL_CERT_FILE)", function()
    local cmd = "env SSL_CERT_FILE=" .. q(ca.ca) .. " " .. q(helper.lua) .. " " .. q(helper.root
      .. "/spec/fixtures/store_child.lua") .. " tasks " .. q(emu.url) .. " " .. q(emu.key) .. " "
      .. q(url("localhost")) .. " 3 2>&1"
    local a, b = helper.spawn(cmd), helper.spawn(cmd)
    local out_a, out_b = a.pipe:read("*a"), b.pipe:read("*a")
    assert.is_true(a:close() and b:close() and true, out_a .. out_b)
    assert.matches("\ndone\n$", "\n" .. out_a) -- (after its warnings: Redis without appendfsync always)
    assert.matches("\ndone\n$", "\n" .. out_b)
    assert.equal(6, emu:creates())
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, store = { url = url("localhost"),
      ca_file = ca.ca } }
    finally(function() client:close() end)
    local tasks = assert(client:tasks())
    assert.equal(6, #tasks)
    for _, t in ipairs(tasks) do assert.equal("completed", t.status) end
  end)

  it("refuses a wrong CA, a wrong host name and a wrong password with an io error naming the store", function()
    local cases = {
      { { url = url("localhost"), ca_file = ca.other_ca }, "TLS: the server's certificate is refused (" },
      { url("localhost"), "TLS: the server's certificate is refused (" }, -- (the system's CAs: not the test CA)
      { { url = url("127.0.0.1"), ca_file = ca.ca }, "TLS: the server's certificate is refused (IP address mismatch)" },
      { { url = url("127.0.0.1"), ca_file = ca.ca, server_name = "redis.example" },
        "TLS: the server's certificate is refused (hostname mismatch)" },
      { { url = url("localhost", "not%20it"), ca_file = ca.ca }, "AUTH failed: WRONGPASS" },
    }
    for _, case in ipairs(cases) do
      local task, err = create_on(emu, case[1])
      assert.is_nil(task)
      assert.same({ "io", "store" }, { err.kind, err.field })
      assert.truthy(err.message:find(case[2], 1, true), err.message)
      assert.matches("^store rediss://", err.message)
      assert.is_nil(err.message:find("pw", 1, true), err.message)
      assert.is_nil(err.message:find("not it", 1, true), err.message)
    end
    assert.equal(0, emu:creates()) -- refused before anything was sent
  end)

  it("skips the certificate's checks only with verify = false, and says so once", function()
    local function unchecked(list) -- the warnings of verify = false
      local out = {}
      for _, w in ipairs(list) do if w:find("verify", 1, true) then out[#out + 1] = w end end
      return out
    end
    local task, err, warnings = create_on(emu, { url = url("127.0.0.1"), ca_file = ca.other_ca, verify = false })
    assert.is_table(task, err and err.message)
    assert.same({ "store rediss://127.0.0.1:" .. srv.port .. "/0: verify = false: the server's certificate and name "
      .. "are not checked (whoever is on the path can read and change the records)" }, unchecked(warnings))
    local _, _, again = create_on(emu, { url = url("127.0.0.1"), ca_file = ca.other_ca, verify = false })
    assert.same({}, unchecked(again)) -- once in a process
    local _, _, checked = create_on(emu, { url = url("localhost"), ca_file = ca.ca })
    assert.same({}, unchecked(checked))
  end)

  it("reaches Redis on a unix socket with a user and a db", function()
    local s = require("starvideos.fleet.store").new("unix://app:" .. ESC .. "@" .. dir .. "/redis.sock?db=5")
    local s0 = require("starvideos.fleet.store").new("unix://app:" .. ESC .. "@" .. dir .. "/redis.sock")
    finally(function() s:close(); s0:close() end)
    local before = assert(s0:call("DBSIZE"))
    assert.equal(0, assert(s:call("DBSIZE")))
    local task, err = create_on(emu, "unix://app:" .. ESC .. "@" .. dir .. "/redis.sock?db=5")
    assert.is_table(task, err and err.message)
    assert.is_true(assert(s:call("DBSIZE")) > 0)
    assert.equal(before, assert(s0:call("DBSIZE")))
  end)

  it("asked for a client certificate, is refused without one, and works with cert_file and key_file", function()
    local u = "rediss://localhost:" .. csrv.port
    local task, err = create_on(emu, { url = u, ca_file = ca.ca })
    assert.is_nil(task)
    assert.equal("io", err.kind)
    assert.matches("^store rediss://localhost:%d+/0: ", err.message)
    task, err = create_on(emu, { url = u, ca_file = ca.ca, cert_file = ca.client_cert, key_file = ca.client_key })
    assert.is_table(task, err and err.message)
    local _, kerr = create_on(emu, { url = u, ca_file = ca.ca, cert_file = ca.client_cert, key_file = ca.key })
    assert.equal("io", kerr and kerr.kind)
    assert.truthy(kerr.message:find("TLS: key_file cannot be read, or is not cert_file's key", 1, true), kerr.message)
  end)
end)

if nginx_run.pending_unless_ready("the store over TLS inside nginx", { "nginx" }) then return end

-- GET /store?url=...[&verify=0][&cert=1][&server=NAME]: the store's PING from a request, one line: "PONG" or
-- the error's kind and message.  /other: the same under another CA (lua_ssl_trusted_certificate).
local HANDLER = [[
local function run(ca)
  local v = { url = ngx.unescape_uri(ngx.var.arg_url) }
  if ngx.var.arg_verify == "0" then v.verify = false end
  if ngx.var.arg_cert then v.cert_file, v.key_file = ca .. "/client.pem", ca .. "/client.key" end
  if ngx.var.arg_server then v.server_name = ngx.var.arg_server end
  local s = require("starvideos.fleet.store").new(v, { timeout = 2 })
  local r, err = s:call("PING")
  ngx.say(r or (err.kind .. " " .. err.message))
end
run(DIR)
]]

describe("the store over TLS inside nginx", function()
  local ca, srv, csrv, ngx_srv, dir

  setup(function()
    dir = helper.tmpdir()
    ca = tls_ca.make(dir)
    srv, csrv = start_servers(dir, ca)
    local code = HANDLER:gsub("DIR", string.format("%q", dir))
    ngx_srv = nginx_run.serve_lua(dir, { { "/store", code, "lua_ssl_trusted_certificate " .. ca.ca .. ";" },
      { "/other", code, "lua_ssl_trusted_certificate " .. ca.other_ca .. ";" } })
  end)
  teardown(function()
    if ngx_srv then ngx_srv.stop() end
    if srv then srv.stop() end
    if csrv then csrv.stop() end
    helper.cleanup()
  end)

  local function ping(where, url, extra)
    local body = ngx_srv.get(string.format("/%s?url=%s%s", where,
      (url:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)), extra or ""))
    if body:find("500 Internal", 1, true) then body = body .. tostring(helper.read_file(dir .. "/error.log")) end
    return body
  end
  local function url(host, pw) return string.format("rediss://app:%s@%s:%d", pw or ESC, host, srv.port) end

  -- (a host name inside nginx needs its `resolver`: the address, and the name checked given as server_name)
  it("works over rediss:// with a user, a unix socket, and a client certificate", function()
    assert.equal("PONG", ping("store", url("127.0.0.1"), "&server=localhost"))
    assert.equal("PONG", ping("store", "unix://app:" .. ESC .. "@" .. dir .. "/redis.sock?db=2"))
    assert.equal("PONG", ping("store", "rediss://127.0.0.1:" .. csrv.port, "&server=localhost&cert=1"))
    assert.matches("^io store rediss://127.0.0.1:%d+/0: ", ping("store", "rediss://127.0.0.1:" .. csrv.port,
      "&server=localhost"))
  end)

  it("refuses a wrong CA, a wrong host name and a wrong password; verification off only when asked", function()
    local refused = "TLS: the server's certificate is refused (" -- (and why: the error log's at times, below)
    local cases = {
      -- (db 1: nginx's pool of the store's settings holds /store's sockets, verified under its CA, for db 0)
      { "other", url("127.0.0.1") .. "/1", "&server=localhost", refused },
      { "store", url("127.0.0.1"), "", refused },
      { "store", url("127.0.0.1"), "&server=redis.example", refused },
      { "store", url("127.0.0.1", "not%20it"), "&server=localhost", "AUTH failed: WRONGPASS" },
    }
    for _, case in ipairs(cases) do
      local out = ping(case[1], case[2], case[3])
      assert.matches("^io store rediss://", out)
      assert.truthy(out:find(case[4], 1, true), case[2] .. case[3] .. ": " .. out)
      assert.is_nil(out:find("pw", 1, true), out)
    end
    assert.equal("PONG", ping("other", url("127.0.0.1") .. "/1", "&verify=0"))
  end)
end)
