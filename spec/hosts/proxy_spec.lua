-- The proxy option and libcurl's proxy variables, on both transports, against
-- a real forwarding proxy (Debian's tinyproxy) started here on a free loopback
-- port with its own config and log.  Between the client and tinyproxy a relay
-- of this spec's own (RELAY below, a child process) copies every byte and keeps
-- the client's side in a file: over https the proxy sees a CONNECT and then TLS,
-- and the key is never among its bytes.  The https server is an nginx with TLS
-- in front of the emulator (a self-signed certificate for 127.0.0.1).  The same
-- relay, given the Proxy-Authorization it wants, is a proxy that asks for Basic
-- credentials (the gate): it answers 407 to a connection whose first request
-- lacks them (tinyproxy's BasicAuth answers 401 to wrong ones, and resets a POST).

local helper = require "spec.helper"
local U = helper.UNINSTRUMENTED -- before a program not built with the sanitizers (make check)
local nginx_run = require "spec.support.nginx_run"
local starvideos = require "starvideos"

local q, str_format = helper.shell_quote, string.format

local KEY = "proxy-spec-key-5f1c9a"
-- a child lua process of this VM finds the checkout's modules (this VM's build)
local LUA_ENV = "LUA_PATH=" .. q(helper.lua_path(helper.root) .. ";;")
  .. " LUA_CPATH=" .. q(helper.cpath .. ";;")
local PARAMS = { model = "videos", prompt = "a cat through a proxy", duration = 4 }
-- the gate's credentials: the password has a ':' and an '@', percent-encoded in the URL
local USER, PASSWORD, WRITTEN = "alice", "s3cr:t@x", "s3cr%3At%40x"

-- A TCP relay: listens on arg[1], connects each client to 127.0.0.1:arg[2],
-- copies bytes both ways, and appends what the clients sent to the file arg[3].
-- With arg[4], a connection's first request (read whole) goes on only when its
-- Proxy-Authorization is arg[4]; else it is answered 407 and closed.
local RELAY = [[
local socket = require "socket"
local server = assert(socket.bind("127.0.0.1", tonumber(arg[1])))
local log = assert(io.open(arg[3], "ab"))
log:setvbuf("no")
local want = arg[4]
local function admitted(c) -- the first request, when its credentials are the ones wanted
  c:settimeout(5)
  local head = {}
  repeat
    local l = c:receive("*l")
    if not l then return nil end
    head[#head + 1] = l .. "\r\n"
  until l == ""
  head = table.concat(head)
  local n = tonumber(head:match("\n[Cc]ontent%-[Ll]ength:%s*(%d+)")) or 0
  local req = head .. (n > 0 and (c:receive(n) or "") or "")
  log:write(req)
  if head:match("\n[Pp]roxy%-[Aa]uthorization: ([^\r]*)") == want then return req end
  c:send("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"spec\"\r\n"
    .. "Content-Length: 0\r\nConnection: close\r\n\r\n")
end
local peer, client, list = {}, {}, { server }
local function drop(s)
  local o = peer[s]
  for i = #list, 1, -1 do if list[i] == s or list[i] == o then table.remove(list, i) end end
  peer[s], client[s], s = nil, nil, s:close()
  if o then peer[o], client[o] = nil, nil; o:close() end
end
while true do
  for _, s in ipairs((socket.select(list, nil, 1))) do
    if s == server then
      local c = server:accept()
      local first = c and want and admitted(c)
      local up = c and (first or not want) and socket.connect("127.0.0.1", tonumber(arg[2]))
      if up then
        if first then up:send(first) end
        peer[c], peer[up], client[c] = up, c, true
        c:settimeout(0); up:settimeout(0)
        list[#list + 1], list[#list + 2] = c, up
      elseif c then c:close() end
    elseif peer[s] then
      local data, err, part = s:receive(65536)
      data = data or part
      if data and #data > 0 then
        if client[s] then log:write(data) end
        peer[s]:settimeout(5); peer[s]:send(data); peer[s]:settimeout(0)
      end
      if err == "closed" then drop(s) end
    end
  end
end
]]

local function tinyproxy_missing()
  if not helper.execute("command -v tinyproxy >/dev/null 2>&1") then
    return "tinyproxy is not installed (apt-get install tinyproxy)"
  end
end

describe("proxies", function()
  local dir, emu, tp, relay, gate, ngx_srv, tls_port, tp_port, relay_port, ngx_port, gate_port, cert
  local why_not_nginx = nginx_run.unavailable { "nginx", "openssl" } -- (libcurl's https cases use its TLS server)

  local function read(path) return helper.read_file(path) or "" end

  -- What tinyproxy logged since `from` (a byte offset of its log), and the new end.
  local function tp_log(from)
    local all = read(dir .. "/tinyproxy.log")
    return all:sub((from or 0) + 1), #all
  end

  local function count(text, plain)
    local n, at = 0, 1
    while true do
      local s, e = text:find(plain, at, true)
      if not s then return n end
      n, at = n + 1, e + 1
    end
  end

  -- tinyproxy's log shows one create, the polls and one download, each sent
  -- to it whole (absolute form)
  local function went_through(log)
    assert.equal(1, count(log, "POST " .. emu.url .. "/v1/videos/videos HTTP/1.1"), log)
    assert.is_true(count(log, "GET " .. emu.url .. "/v1/result/") >= 1, log)
    assert.equal(1, count(log, "GET " .. emu.url .. "/videos/"), log)
  end

  setup(function()
    local why = tinyproxy_missing()
    if why then return end
    dir = helper.tmpdir()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0 }
    local ports = helper.free_ports(5)
    tp_port, relay_port, tls_port, ngx_port, gate_port = ports[1], ports[2], ports[3], ports[4], ports[5]
    assert(helper.execute(str_format(U .. "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
      .. "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1", q(dir .. "/tls.key"),
      q(dir .. "/tls.pem"))))
    cert = dir .. "/tls.pem"
    helper.write_file(dir .. "/tinyproxy.conf", table.concat({
      "Port " .. tp_port, "Listen 127.0.0.1", "Timeout 60", "MaxClients 50", "Allow 127.0.0.1",
      "ConnectPort " .. tls_port, str_format('LogFile "%s/tinyproxy.log"', dir), "LogLevel Info", "" }, "\n"))
    helper.write_file(dir .. "/tinyproxy.log", "")
    helper.execute("chmod 0777 " .. q(dir) .. " && chmod 0666 " .. q(dir .. "/tinyproxy.log"))
    tp = helper.spawn(str_format("%stinyproxy -d -c %s >%s 2>&1", helper.UNINSTRUMENTED, q(dir .. "/tinyproxy.conf"),
      q(dir .. "/tinyproxy.out")))
    helper.write_file(dir .. "/relay.lua", RELAY)
    relay = helper.spawn(str_format("%s %s %d %d %s", q(helper.lua), q(dir .. "/relay.lua"), relay_port, tp_port,
      q(dir .. "/relay.bytes")))
    assert(helper.wait_until(function() return nginx_run.listening(tp_port) end, 10),
      "tinyproxy did not start: " .. read(dir .. "/tinyproxy.out"))
    assert(helper.wait_until(function() return nginx_run.listening(relay_port) end, 10), "the relay did not start")
    gate = helper.spawn(str_format("%s %s %d %d %s %s", q(helper.lua), q(dir .. "/relay.lua"), gate_port, tp_port,
      q(dir .. "/gate.bytes"), q("Basic " .. require("mime").b64(USER .. ":" .. PASSWORD))))
    assert(helper.wait_until(function() return nginx_run.listening(gate_port) end, 10), "the gate did not start")
  end)

  teardown(function()
    if ngx_srv then ngx_srv.stop() end
    for _, p in ipairs { gate or false, relay or false, tp or false } do
      if p then helper.execute(str_format("kill %d 2>/dev/null", p.pid)); p:close() end
    end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("takes http://[user:password@]host:port; refuses anything else naming proxy, never showing the password",
    function()
    for _, url in ipairs { "http://127.0.0.1:3128", "http://user:secret@127.0.0.1:3128/", "http://u%40x:p%3Aq@h:1" } do
      starvideos.new({ api_key = KEY, base_url = "http://127.0.0.1:1", proxy = url }):close()
    end
    for _, bad in ipairs { "https://127.0.0.1:3128", "http://127.0.0.1", "http://127.0.0.1:3128/path",
      "http://user:secret@127.0.0.1", "http://user:se cret@127.0.0.1:3128", "https://user:secret@127.0.0.1:3128",
      "http://user:secret@127.0.0.1:3128/path", "http://user:a%00secret@127.0.0.1:3128", "socks5://127.0.0.1:1080",
      "127.0.0.1:3128", 3128 } do
      local ok, err = pcall(starvideos.new, { api_key = KEY, base_url = emu and emu.url or "http://127.0.0.1:1",
        proxy = bad })
      assert.is_false(ok, tostring(bad))
      assert.matches("proxy", tostring(err), 1, true)
      assert.is_nil(tostring(err):find("secret", 1, true), tostring(err))
    end
  end)

  -- the gate's URL with its credentials, or with a wrong password
  local function good() return str_format("http://%s:%s@127.0.0.1:%d", USER, WRITTEN, gate_port) end
  local function bad() return str_format("http://%s:wr0ngpass@127.0.0.1:%d", USER, gate_port) end

  -- What the gate was sent since `from` (a byte offset), and the new end.
  local function gate_bytes(from)
    local all = read(dir .. "/gate.bytes")
    return all:sub((from or 0) + 1), #all
  end

  -- Every request (a CONNECT too) in bytes carries the credentials, decoded and encoded as Basic.
  local function all_signed(bytes)
    local requests = count(bytes, " HTTP/1.1\r\n")
    assert.is_true(requests >= 1, bytes)
    assert.equal(requests, count(bytes, "\r\nProxy-Authorization: Basic " .. require("mime").b64(USER .. ":"
      .. PASSWORD) .. "\r\n"), bytes)
  end

  -- No trace of either password in text (a log, an error, events).
  local function no_password(text)
    for _, secret in ipairs { PASSWORD, WRITTEN, "s3cr", "wr0ngpass" } do
      assert.is_nil(text:find(secret, 1, true), text)
    end
  end

  -- Every string in a list of events, nested tables included.
  local function strings(v, out, seen)
    if type(v) == "string" then out[#out + 1] = v end
    if type(v) ~= "table" or seen[v] then return out end
    seen[v] = true
    for k, x in pairs(v) do
      strings(k, out, seen)
      strings(x, out, seen)
    end
    return out
  end

  describe("on libcurl's transport", function()
    local why = tinyproxy_missing() -- (pending(): in a block or a case, not before_each)
    if why then return pending(why) end

    -- A generate in a lua process of its own with env (a shell prefix) and the
    -- client options given as Lua text: its task's status or its error.
    local function child(env, opts)
      local script = str_format([[
        local starvideos = require "starvideos"
        local c = starvideos.new { api_key = %q, interval = 0.2, min_interval = 0.1, %s }
        local task, err = c:generate(%s, { out = %q, interval = 0.2, timeout = 60 })
        io.write(task and task.status .. " " .. tostring(task.path) or tostring(err))
      ]], KEY, opts, "{ model = 'videos', prompt = 'a cat', duration = 4 }", dir .. "/child.mp4")
      helper.write_file(dir .. "/child.lua", script)
      os.remove(dir .. "/child.mp4")
      return helper.capture(str_format("env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY "
        .. "-u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY %s %s %s %s 2>&1", env, LUA_ENV, q(helper.lua),
        q(dir .. "/child.lua")))
    end

    it("sends a create, a poll and a download through the proxy option", function()
      local _, from = tp_log()
      local c = starvideos.new { api_key = KEY, base_url = emu.url, proxy = "http://127.0.0.1:" .. tp_port,
        interval = 0.2, min_interval = 0.1 }
      local task, err = c:generate(PARAMS, { out = dir .. "/opt.mp4", interval = 0.2, timeout = 60 })
      c:close()
      assert.is_truthy(task, tostring(err))
      assert.is_true(helper.file_size(dir .. "/opt.mp4") > 0)
      went_through(tp_log(from))
    end)

    it("with allow_private_media = false refuses a reference's redirect to 169.254.169.254 by its host as written",
      function()
      local name = require("socket").dns.gethostname() -- a name: the proxy resolves it (here, to the emulator)
      if not name or require("starvideos.core").private_host(name) then return pending("no usable host name") end
      local _, from = tp_log()
      local before = emu:creates()
      emu:fault { path = "/media/meta.png", status = 302,
        headers = { Location = "http://169.254.169.254/latest/meta-data/" } }
      local c = starvideos.new { api_key = KEY, base_url = emu.url, proxy = "http://127.0.0.1:" .. tp_port,
        allow_private_media = false }
      local task, err = c:create { model = "videos", prompt = "a cat", duration = 4,
        referenceImages = { "http://" .. name .. ":" .. emu.url:match(":(%d+)$") .. "/media/meta.png" } }
      c:close()
      assert.is_nil(task, "created")
      assert.same({ "invalid_request", "referenceImages[1]" }, { err.kind, err.field }, tostring(err))
      assert.truthy(err.message:find("169.254.169.254 is a link-local address", 1, true), err.message)
      local log = tp_log(from)
      assert.equal(1, count(log, "/media/meta.png HTTP/1.1"), log) -- the HEAD that was answered 302; then nothing
      assert.equal(0, count(log, "169.254.169.254"), log)
      assert.equal(before, emu:creates())
    end)

    it("reads a create's reference media through the proxy option (a HEAD and a Range GET), never with the key",
      function()
      local _, from = tp_log()
      local before = #read(dir .. "/relay.bytes")
      local c = starvideos.new { api_key = KEY, base_url = emu.url, proxy = "http://127.0.0.1:" .. relay_port }
      local media = emu.url .. "/media/ref.png?w=800&h=600"
      local notes, err = c:check { model = "videos", prompt = "a cat", duration = 4, referenceImages = { media } }
      c:close()
      assert.same({}, notes, tostring(err))
      local log = tp_log(from)
      -- one HEAD and one GET asked; libcurl sends a request again, once, on a fresh connection when the
      -- kept-alive one it chose was closed by the proxy meanwhile (seen in .ci/run: two GETs through the
      -- relay, one at tinyproxy)
      local heads, gets = count(log, "HEAD " .. media .. " HTTP/1.1"), count(log, "GET " .. media .. " HTTP/1.1")
      assert.is_true(heads == 1 and gets == 1, log) -- what reached the proxy
      local bytes = read(dir .. "/relay.bytes"):sub(before + 1) -- what the client sent to it
      local sent = count(bytes, "GET " .. media .. " HTTP/1.1")
      assert.is_true(sent == 1 or sent == 2, bytes)
      assert.equal(sent, count(bytes, "\r\nRange: bytes=0-65535\r\n"), bytes)
      assert.equal(0, count(bytes, KEY))
    end)

    it("honours http_proxy and HTTP_PROXY (a download's too), and no_proxy; not HTTP_PROXY in a CGI request",
      function()
      local _, from = tp_log()
      local log
      for _, env in ipairs { "http_proxy=", "HTTP_PROXY=" } do
        local out = child(env .. "http://127.0.0.1:" .. tp_port, str_format("base_url = %q", emu.url))
        assert.matches("^completed ", out)
        log, from = tp_log(from)
        went_through(log)
      end
      for _, env in ipairs { "no_proxy=127.0.0.1 http_proxy=", "NO_PROXY=127.0.0.1 http_proxy=",
        "NO_PROXY=127.0.0.1 HTTP_PROXY=", "REQUEST_METHOD=GET HTTP_PROXY=" } do
        local out = child(env .. "http://127.0.0.1:" .. tp_port, str_format("base_url = %q", emu.url))
        assert.matches("^completed ", out)
        log, from = tp_log(from)
        assert.equal("", log, env)
      end
    end)

    it("credentials: Basic on every request, the password decoded; a 407 named, the password in no log or error",
      function()
      local _, from = gate_bytes()
      local lines, events = {}, {}
      local c = starvideos.new { api_key = KEY, base_url = emu.url, proxy = good(), interval = 0.2, min_interval = 0.1,
        log = function(l) lines[#lines + 1] = l end, on_event = function(ev) events[#events + 1] = ev end }
      local task, err = c:generate(PARAMS, { out = dir .. "/auth.mp4", interval = 0.2, timeout = 60 })
      c:close()
      assert.is_truthy(task, tostring(err))
      assert.is_true(helper.file_size(dir .. "/auth.mp4") > 0)
      all_signed((gate_bytes(from)))
      local before = emu:creates()
      c = starvideos.new { api_key = KEY, base_url = emu.url, proxy = bad(), max_retries = 0,
        log = function(l) lines[#lines + 1] = l end, on_event = function(ev) events[#events + 1] = ev end }
      local refused = { select(2, c:create(PARAMS)), select(2, c:query(task.id)) }
      c:close()
      assert.equal(before, emu:creates())
      for _, e in ipairs(refused) do
        assert.equal("auth", e.kind, tostring(e))
        assert.equal(407, e.status)
        assert.matches("HTTP 407: the proxy asks for a user name and password", tostring(e), 1, true)
        assert.is_falsy(e.maybe_created)
        lines[#lines + 1] = tostring(e)
      end
      assert.is_true(#lines > 4)
      no_password(table.concat(lines, "\n") .. table.concat(strings(events, {}, {}), "\n"))
    end)

    -- (it printed `--proxy http://alice:[redacted]@...`, which pasted was refused 407)
    it("the command line's go-on line through a proxy with a password: `--proxy \"$STARVIDEOS_PROXY\"` and a note, "
      .. "no password; pasted with the variable set, it fetches the video through the proxy", function()
      local C = require "spec.support.cli_run"
      local env = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
      emu:config { queued = 6 } -- (the wait times out after 1 s; the pasted one sees it completed)
      local c = starvideos.new { api_key = KEY, base_url = emu.url }
      local task = assert(c:create(PARAMS))
      c:close()
      local out = dir .. "/go-on.mp4"
      local r = C.run({ "wait", task.id, "--out", out, "--interval", "0.2", "--timeout", "1", "--proxy", good() }, env)
      emu:config { queued = 0 }
      assert.equals(1, r.code, r.err)
      no_password(r.out .. r.err)
      local cmd = assert(r.err:match("`([^`]*wait [^`]*)` picks it up again"), r.err)
      assert.matches('--interval 0.2 --proxy "$STARVIDEOS_PROXY"', cmd, 1, true)
      assert.matches("(with STARVIDEOS_PROXY set to the proxy's URL http://alice:***@127.0.0.1:" .. gate_port, r.err, 1,
        true)
      local _, from = gate_bytes()
      env.STARVIDEOS_PROXY = good()
      local pasted = C.run_printed(cmd, env)
      assert.equals(0, pasted.code, pasted.err)
      assert.is_true(helper.file_size(out) > 0)
      all_signed((gate_bytes(from)))
    end)
  end)

  -- nginx: TLS in front of the emulator (tls_port), and a location that runs a
  -- generate with the nginx transport (ngx_port)
  local HANDLER = [[
local cjson = require "cjson.safe"
local starvideos = require "starvideos"
local M = {}
function M.run()
  local a = ngx.req.get_uri_args()
  local c = starvideos.new { api_key = a.key, base_url = a.base, proxy = a.proxy, interval = 0.2, min_interval = 0.1 }
  local task, err
  if a.query then
    task, err = c:query(a.query)
  else
    task, err = c:generate({ model = "videos", prompt = "a cat", duration = 4 }, { out = a.out, interval = 0.2,
      timeout = 60 })
  end
  c:close()
  ngx.say(cjson.encode { status = task and task.status, err = err and tostring(err), kind = err and err.kind })
end
return M
]]

  local function start_nginx()
    if ngx_srv then return ngx_srv end
    helper.write_file(dir .. "/handler.lua", HANDLER)
    local conf = nginx_run.conf_head(dir, 1)
    conf[#conf] = nil -- its lua_package_cpath: ours adds the handler's folder to the path
    conf[#conf] = nil
    for _, l in ipairs {
      str_format('    lua_package_path "%s;%s/?.lua;;";', helper.lua_path(nginx_run.ROOT),
        dir),
      str_format('    lua_package_cpath "%s/build/luajit/?.so;;";', nginx_run.ROOT),
      str_format("    proxy_temp_path %s/proxy; fastcgi_temp_path %s/fastcgi; uwsgi_temp_path %s/uwsgi; "
        .. "scgi_temp_path %s/scgi;", dir, dir, dir, dir),
      "    lua_ssl_trusted_certificate " .. cert .. ";", "    lua_ssl_verify_depth 2;",
      "    server {", str_format("        listen 127.0.0.1:%d ssl;", tls_port),
      str_format("        ssl_certificate %s; ssl_certificate_key %s/tls.key;", cert, dir),
      "        location / { proxy_pass " .. emu.url .. "; proxy_http_version 1.1; }", "    }",
      "    server {", str_format("        listen 127.0.0.1:%d;", ngx_port),
      "        location = /run { content_by_lua_block { require('handler').run() } }", "    }", "}", "" } do
      conf[#conf + 1] = l
    end
    ngx_srv = nginx_run.serve(dir, function() return table.concat(conf, "\n") end, ngx_port)
    assert(helper.wait_until(function() return nginx_run.listening(tls_port) end, 10), "nginx's TLS port is not up")
    return ngx_srv
  end

  local function esc(s) return (s:gsub("[^%w]", function(ch) return str_format("%%%02X", ch:byte()) end)) end

  -- GET /run on nginx: the decoded answer.
  local function in_nginx(base, proxy, out, query)
    local http = require "socket.http"
    local body, code = http.request(str_format("http://127.0.0.1:%d/run?key=%s&base=%s&proxy=%s&out=%s%s", ngx_port,
      esc(KEY), esc(base), esc(proxy), esc(out), query and "&query=" .. esc(query) or ""))
    assert.equal(200, code, tostring(body) .. read(dir .. "/error.log"))
    return assert(helper.json(body))
  end

  describe("over https", function()
    local why = tinyproxy_missing() or why_not_nginx -- (pending(): in a block or a case, not before_each)
    if why then return pending(why) end

    it("libcurl: CONNECT through the proxy (option and HTTPS_PROXY), the key never in its bytes", function()
      start_nginx()
      local base = "https://127.0.0.1:" .. tls_port
      local _, from = tp_log()
      local before = #read(dir .. "/relay.bytes")
      local c = starvideos.new { api_key = KEY, base_url = base, ca_file = cert,
        proxy = "http://127.0.0.1:" .. relay_port, interval = 0.2, min_interval = 0.1 }
      local task, err = c:generate(PARAMS, { out = dir .. "/tls.mp4", interval = 0.2, timeout = 60 })
      c:close()
      assert.is_truthy(task, tostring(err))
      assert.is_true(helper.file_size(dir .. "/tls.mp4") > 0)
      local log = tp_log(from)
      assert.is_true(count(log, "CONNECT 127.0.0.1:" .. tls_port) >= 1, log)
      assert.equal(0, count(log, "/v1/videos/videos"), log)
      local bytes = read(dir .. "/relay.bytes"):sub(before + 1)
      assert.is_true(count(bytes, "CONNECT 127.0.0.1:" .. tls_port .. " HTTP/1.1") >= 1, bytes)
      assert.equal(0, count(bytes, KEY))
      assert.equal(0, count(bytes, "Authorization"))
      -- HTTPS_PROXY (upper case) from the environment
      _, from = tp_log()
      helper.write_file(dir .. "/child.lua", str_format([[
        local c = require("starvideos").new { api_key = %q, base_url = %q, ca_file = %q }
        local t, e = c:query("video_videos_1")
        io.write(t and "task" or tostring(e))
      ]], KEY, base, cert))
      local out = helper.capture(str_format("env -u https_proxy -u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY "
        .. "HTTPS_PROXY=%s %s %s %s 2>&1", q("http://127.0.0.1:" .. tp_port), LUA_ENV, q(helper.lua),
        q(dir .. "/child.lua")))
      assert.is_nil(out:find("cannot connect", 1, true), out)
      log = tp_log(from)
      assert.equal(1, count(log, "CONNECT 127.0.0.1:" .. tls_port), log)
    end)

    it("libcurl: with an http base URL the key does go to the proxy in clear", function()
      local before = #read(dir .. "/relay.bytes")
      local c = starvideos.new { api_key = KEY, base_url = emu.url, proxy = "http://127.0.0.1:" .. relay_port }
      local task, err = c:create(PARAMS)
      c:close()
      assert.is_truthy(task, tostring(err))
      assert.equal(1, count(read(dir .. "/relay.bytes"):sub(before + 1), "Authorization: Bearer " .. KEY))
    end)

    it("nginx: a create, a poll and a download through the proxy, absolute-form over http", function()
      start_nginx()
      local _, from = tp_log()
      local o = in_nginx(emu.url, "http://127.0.0.1:" .. tp_port, dir .. "/ngx.mp4")
      assert.equal("completed", o.status, tostring(o.err))
      assert.is_true(helper.file_size(dir .. "/ngx.mp4") > 0)
      went_through(tp_log(from))
    end)

    it("nginx: CONNECT then TLS to the target over https, the key never in the proxy's bytes", function()
      start_nginx()
      local _, from = tp_log()
      local before = #read(dir .. "/relay.bytes")
      local o = in_nginx("https://127.0.0.1:" .. tls_port, "http://127.0.0.1:" .. relay_port, dir .. "/ngx-tls.mp4")
      assert.equal("completed", o.status, tostring(o.err) .. read(dir .. "/error.log"))
      assert.is_true(helper.file_size(dir .. "/ngx-tls.mp4") > 0)
      local log = tp_log(from)
      assert.is_true(count(log, "CONNECT 127.0.0.1:" .. tls_port) >= 1, log)
      assert.equal(0, count(log, "/v1/videos/videos"), log)
      local bytes = read(dir .. "/relay.bytes"):sub(before + 1)
      assert.is_true(count(bytes, "CONNECT 127.0.0.1:" .. tls_port .. " HTTP/1.1\r\nHost: 127.0.0.1:" .. tls_port)
        >= 1, bytes)
      assert.equal(0, count(bytes, KEY))
      assert.equal(0, count(bytes, "Authorization"))
    end)

    it("libcurl: the credentials on the CONNECT (option, HTTPS_PROXY, https_proxy via the CLI); 407 named", function()
      start_nginx()
      local base = "https://127.0.0.1:" .. tls_port
      local connect = "CONNECT 127.0.0.1:" .. tls_port .. " HTTP/1.1\r\n"
      local from = select(2, gate_bytes())
      local c = starvideos.new { api_key = KEY, base_url = base, ca_file = cert, proxy = good() }
      local task, err = c:create(PARAMS)
      c:close()
      assert.is_truthy(task, tostring(err))
      local bytes = gate_bytes(from)
      assert.equal(1, count(bytes, connect), bytes)
      all_signed(bytes)
      assert.equal(0, count(bytes, KEY))
      c = starvideos.new { api_key = KEY, base_url = base, ca_file = cert, proxy = bad(), max_retries = 0 }
      task, err = c:create(PARAMS)
      c:close()
      assert.is_nil(task)
      assert.equal("network", err.kind, tostring(err))
      assert.matches("the proxy did not open a tunnel: answered 407: the proxy asks for a user name and password",
        tostring(err), 1, true)
      assert.is_falsy(err.maybe_created) -- nothing reached the service
      no_password(tostring(err))
      from = select(2, gate_bytes())
      -- the environment's, read by libcurl for the command line (its TLS then fails: the CLI knows no ca_file)
      for _, var in ipairs { "HTTPS_PROXY", "https_proxy" } do
        for _, url in ipairs { good(), bad() } do
          local out, ok = helper.capture(str_format("env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY "
            .. "-u all_proxy -u ALL_PROXY -u no_proxy -u NO_PROXY %s=%s STARVIDEOS_API_KEY=%s STARVIDEOS_BASE_URL=%s "
            .. "%s %s %s status video_videos_1 --log debug 2>&1", var, q(url), q(KEY), q(base), LUA_ENV, q(helper.lua),
            q(helper.root .. "/bin/starvideos")))
          assert.is_nil(ok, out)
          bytes, from = gate_bytes(from)
          assert.is_true(count(bytes, connect) >= 1, var .. ": " .. bytes)
          no_password(out)
          if url == good() then
            all_signed(bytes)
            assert.is_nil(out:find("answered 407", 1, true), out) -- (a request id may hold "407")
          else
            assert.matches("answered 407", out, 1, true)
          end
        end
      end
    end)

    it("nginx: the credentials on the CONNECT and on each http request; 407 named, never the password", function()
      start_nginx()
      local tls, connect = "https://127.0.0.1:" .. tls_port, "CONNECT 127.0.0.1:" .. tls_port .. " HTTP/1.1\r\n"
      local from = select(2, gate_bytes())
      local o = in_nginx(emu.url, good(), dir .. "/ngx-auth.mp4")
      assert.equal("completed", o.status, tostring(o.err))
      assert.is_true(helper.file_size(dir .. "/ngx-auth.mp4") > 0)
      local bytes
      bytes, from = gate_bytes(from)
      all_signed(bytes)
      o = in_nginx(tls, good(), dir .. "/ngx-auth-tls.mp4")
      assert.equal("completed", o.status, tostring(o.err) .. read(dir .. "/error.log"))
      bytes = gate_bytes(from)
      assert.is_true(count(bytes, connect) >= 1, bytes)
      all_signed(bytes)
      assert.equal(0, count(bytes, KEY))
      local before = emu:creates()
      o = in_nginx(emu.url, bad(), dir .. "/unused.mp4")
      assert.equal("auth", o.kind, tostring(o.err))
      assert.matches("HTTP 407: the proxy asks for a user name and password", o.err, 1, true)
      no_password(o.err)
      o = in_nginx(tls, bad(), dir .. "/unused.mp4")
      assert.equal("network", o.kind, tostring(o.err))
      assert.matches(str_format("the proxy 127.0.0.1:%d did not open a tunnel to 127.0.0.1:%d: answered 407: the proxy "
        .. "asks for a user name and password", gate_port, tls_port), o.err, 1, true)
      no_password(o.err)
      assert.equal(before, emu:creates())
    end)

    it("a proxy that refuses the tunnel: an error naming it, on both transports", function()
      start_nginx()
      -- nginx's plain port is not a ConnectPort of tinyproxy's: it answers 403
      local base, proxy = "https://127.0.0.1:" .. ngx_port, "http://127.0.0.1:" .. tp_port
      local _, from = tp_log()
      local c = starvideos.new { api_key = KEY, base_url = base, ca_file = cert, proxy = proxy, max_retries = 0 }
      local task, err = c:query("video_videos_1")
      c:close()
      assert.is_nil(task)
      assert.equal("network", err.kind, tostring(err))
      assert.matches("403", tostring(err), 1, true)
      local o = in_nginx(base, proxy, dir .. "/unused.mp4", "video_videos_1")
      assert.is_nil(o.status)
      assert.equal("network", o.kind, tostring(o.err))
      assert.matches("the proxy 127.0.0.1:" .. tp_port .. " did not open a tunnel to 127.0.0.1:" .. ngx_port
        .. ": answered 403", o.err, 1, true)
      assert.is_true(count(tp_log(from), "CONNECT 127.0.0.1:" .. ngx_port) >= 2)
    end)
  end)
end)
