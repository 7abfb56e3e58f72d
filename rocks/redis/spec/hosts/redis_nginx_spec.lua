-- The store inside nginx (rocks/redis/lua/starvideos/fleet/store.lua over cosockets, fleet/conn.lua speaking RESP): a
-- real nginx (2 workers) started here, against a real redis-server; both stopped after.

local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local redis_run = require "rocks.redis.spec.support.redis_run"
local http = require "socket.http"
local socket = require "socket"

local q = helper.shell_quote

local why = nginx_run.missing { "/usr/sbin/nginx" } or redis_run.missing()
if why then
  describe("the store inside nginx", function() pending(why) end)
  return
end

-- What each request does with the store at ?url=: one JSON object back.
local HANDLER = [[
local cjson = require "cjson"
local store = require "starvideos.fleet.store"
local F = require "starvideos.fleet.budget"
local M = {}
-- create_limit's count alone (the library runs it only inside the ledger's keyed script)
store.define("budget_create", F.CREATE
  .. "return string.format('%.6f', count_create(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])))")
local function seconds(s, name, what, args)
  return tonumber((s:script(name, what == "tat" and F.keys("ngxkey", "") or { F.key("ngxkey", what) }, args)))
end
function M.run()
  local out = {}
  local s = store.new(ngx.unescape_uri(ngx.var.arg_url), { timeout = 0.5 })
  local _, err = s:call("PING")
  if err then
    out.kind, out.message = err.kind, err.message
    ngx.say(cjson.encode(out))
    return
  end
  out.client = s.client
  out.set = s:call("SET", "ngx", "worker " .. ngx.worker.pid())
  out.get = s:call("GET", "ngx")
  out.null = s:call("GET", "nothing") == store.null and ngx.null == store.null
  local _, werr = s:call("HGET", "ngx", "f")
  out.wrongtype = werr and werr.reply
  local n = s:send("INCR", "async")
  assert(s:step(0))
  out.ready = s:ready(n)
  out.async = s:result(n)
  out.taken = 0
  for _ = 1, 8 do
    if seconds(s, "budget_token", "tat", { "5" }) == 0 then out.taken = out.taken + 1 end
  end
  out.allowed = 0
  for _ = 1, 3 do
    if seconds(s, "budget_create", "creates", { "2", "60" }) == 0 then out.allowed = out.allowed + 1 end
  end
  if ngx.var.arg_stop then -- the spec stops Redis now: the next call must end with an error
    os.execute("kill -STOP " .. ngx.var.arg_stop)
    local t0 = ngx.now()
    local v, serr = s:call("GET", "ngx")
    ngx.update_time()
    out.stopped = { v = v, kind = serr and serr.kind, message = serr and serr.message, took = ngx.now() - t0 }
    os.execute("kill -CONT " .. ngx.var.arg_stop)
  end
  s:close()
  ngx.say(cjson.encode(out))
end
return M
]]

local function start_nginx(dir)
  local port = helper.free_ports(1)[1]
  helper.write_file(dir .. "/handler.lua", HANDLER)
  local conf = table.concat({
    "load_module " .. nginx_run.MODULES .. "ndk_http_module.so;",
    "load_module " .. nginx_run.MODULES .. "ngx_http_lua_module.so;",
    "worker_processes 2;", "daemon off;",
    "error_log " .. dir .. "/error.log info;", "pid " .. dir .. "/nginx.pid;",
    "events { worker_connections 64; }",
    "http {", "  access_log off;",
    "  client_body_temp_path " .. dir .. "/body;", "  proxy_temp_path " .. dir .. "/proxy;",
    "  fastcgi_temp_path " .. dir .. "/fastcgi;", "  uwsgi_temp_path " .. dir .. "/uwsgi;",
    "  scgi_temp_path " .. dir .. "/scgi;",
    string.format('  lua_package_path "%s;%s/?.lua;;";', helper.lua_path(nginx_run.ROOT),
      dir),
    string.format('  lua_package_cpath "%s/build/luajit/?.so;;";', nginx_run.ROOT),
    "  server {", "    listen 127.0.0.1:" .. port .. ";",
    "    location = /store { content_by_lua_block { require('handler').run() } }",
    "  }", "}", "" }, "\n")
  if helper.capture("id -u"):match("^0%s*$") then conf = "user root;\n" .. conf end
  helper.write_file(dir .. "/nginx.conf", conf)
  local proc = helper.spawn(string.format(helper.UNINSTRUMENTED .. "nginx -p %s -c %s 2>%s", q(dir .. "/"),
    q(dir .. "/nginx.conf"), q(dir .. "/nginx.stderr")))
  local function stop()
    if proc then helper.execute(string.format("kill %d 2>/dev/null", proc.pid)); proc:close(); proc = nil end
  end
  if not helper.wait_until(function() return nginx_run.listening(port) end, 15) then
    stop()
    error("nginx did not start: " .. tostring(helper.read_file(dir .. "/nginx.stderr"))
      .. tostring(helper.read_file(dir .. "/error.log")))
  end
  return { port = port, stop = stop }
end

describe("the store inside nginx", function()
  local srv, ngx_srv, dir

  setup(function()
    dir = helper.tmpdir()
    srv = redis_run.start { password = "ngx secret" }
    local ok, err = pcall(start_nginx, dir)
    if not ok then srv.stop(); error(err, 0) end
    ngx_srv = err
  end)

  teardown(function()
    if ngx_srv then ngx_srv.stop() end
    if srv then srv.stop() end
    helper.cleanup()
  end)

  local function get(url, extra)
    local body, code = http.request(string.format("http://127.0.0.1:%d/store?url=%s%s", ngx_srv.port,
      (url:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)), extra or ""))
    assert.equal(200, code, tostring(body) .. tostring(helper.read_file(dir .. "/error.log")))
    return helper.json(body)
  end

  local function url(db)
    return "redis://:ngx%20secret@127.0.0.1:" .. srv.port .. "/" .. db
  end

  it("works on cosockets: AUTH, SELECT, commands, the async form, the token bucket, the create limit", function()
    local out = get(url(2))
    assert.equal("cosocket", out.client)
    assert.equal("OK", out.set)
    assert.matches("^worker %d+$", out.get)
    assert.is_true(out.null)
    assert.matches("^WRONGTYPE", out.wrongtype)
    assert.is_true(out.ready)
    assert.equal(1, out.async)
    assert.equal(5, out.taken) -- the burst of rate 5, then waits
    assert.equal(2, out.allowed)
    -- what nginx wrote is where the store outside nginx reads it: db 2, not db 0
    local store = require "starvideos.fleet.store"
    if pcall(require, "starvideos.redis") then
      local s2 = store.new(url(2))
      local s0 = store.new(url(0))
      finally(function() s2:close(); s0:close() end)
      assert.equal(out.get, s2:call("GET", "ngx"))
      assert.equal(store.null, s0:call("GET", "ngx"))
      assert.equal(2, s2:call("INCR", "async"))
    end
  end)

  it("shares the create limit between requests (whichever worker takes each)", function()
    local total = 0
    for _ = 1, 3 do total = total + get(url(3)).allowed end
    assert.equal(2, total)
  end)

  it("gives kind io naming host:port when Redis is unreachable or the password is wrong", function()
    local port = helper.free_ports(1)[1]
    local out = get("redis://:ngx%20secret@127.0.0.1:" .. port)
    assert.equal("io", out.kind)
    assert.equal("store redis://127.0.0.1:" .. port .. "/0: connect: connection refused", out.message)
    out = get("redis://:not-it@127.0.0.1:" .. srv.port)
    assert.equal("io", out.kind)
    assert.matches("^store redis://127%.0%.0%.1:" .. srv.port .. "/0: AUTH failed: WRONGPASS", out.message)
    assert.is_nil(out.message:find("not-it", 1, true))
    assert.is_nil(out.message:find("secret", 1, true))
  end)

  it("ends a call on a stopped Redis after the timeout, with a clear error", function()
    local t0 = socket.gettime()
    local out = get(url(4), "&stop=" .. srv.pid)
    assert.is_table(out.stopped, helper.read_file(dir .. "/error.log"))
    assert.equal("io", out.stopped.kind)
    assert.equal("store redis://127.0.0.1:" .. srv.port .. "/4: no answer within 0.5 s", out.stopped.message)
    assert.is_true(out.stopped.took >= 0.4 and out.stopped.took < 2, tostring(out.stopped.took))
    assert.is_true(socket.gettime() - t0 < 5)
  end)
end)
