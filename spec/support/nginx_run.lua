-- What the specs and the bench running nginx share (spec/*nginx*_spec.lua,
-- spec/hosts/ngx_wire_spec.lua, spec/curl/transport_cases_spec.lua, bench/run.lua): the
-- checkout's absolute path (nginx's prefix), why nginx cannot run here,
-- whether a port listens, and the one way nginx is started and stopped.

local socket = require "socket"
local helper = require "spec.helper"

local M = {}

M.MODULES = "/usr/lib/nginx/modules/"

-- The checkout, as an absolute path.
M.ROOT = (function()
  local p = assert(io.popen("cd " .. helper.shell_quote(helper.root) .. " && pwd"))
  local dir = p:read("*l")
  p:close()
  return dir
end)()

-- The Debian package of each program a spec may need.
local PACKAGE = { nginx = "nginx", ["/usr/sbin/nginx"] = "nginx", curl = "curl", openssl = "openssl" }

-- Why nginx with its lua module cannot run here, or nil: each of `programs`
-- (names on PATH or absolute paths; default nginx), the lua module.
function M.missing_nginx(programs)
  for _, cmd in ipairs(programs or { "nginx" }) do
    if not helper.execute("command -v " .. helper.shell_quote(cmd) .. " >/dev/null 2>&1") then
      return string.format("%s is not installed (apt-get install %s)", cmd, PACKAGE[cmd] or cmd)
    end
  end
  for _, m in ipairs { "ndk_http_module.so", "ngx_http_lua_module.so" } do
    if not helper.exists(M.MODULES .. m) then
      return "the nginx lua module is not installed (apt-get install libnginx-mod-http-lua)"
    end
  end
end

-- Why nginx cannot run here with the library, or nil: M.missing_nginx, and
-- the core built for LuaJIT (whatever VM runs busted: for a spec whose own
-- side, in busted's VM, is under test too).
function M.unavailable(programs)
  local why = M.missing_nginx(programs)
  if why then return why end
  for _, so in ipairs { "core", "sign" } do
    local path = "build/luajit/starvideos/" .. so .. ".so"
    if not helper.exists(M.ROOT .. "/" .. path) then
      return "starvideos." .. so .. " is not built for LuaJIT (make " .. path .. ")"
    end
  end
end

-- M.unavailable, and under a VM other than lua5.4 always a reason: what runs
-- inside nginx runs on nginx's LuaJIT, whatever VM runs busted, so once is
-- enough (make test-all runs every VM; make test is lua5.4's).
function M.missing(programs)
  if helper.vm ~= "lua5.4" then return "nginx's LuaJIT runs it whatever VM runs busted: checked under lua5.4" end
  return M.unavailable(programs)
end

-- A spec file that needs nginx: when it cannot run here (M.missing), a
-- describe block `name` with one pending test saying why, and true (the
-- file returns); else nil.
function M.pending_unless_ready(name, programs)
  local why = M.missing(programs)
  if not why then return nil end
  -- busted's functions are in the spec file's environment, not in this
  -- module's globals (under 5.1-5.3 and LuaJIT): its API table has them (its
  -- `pending` there is the block, named here with the reason)
  local busted = require "busted"
  busted.describe(name, function() busted.pending("needs nginx with its lua module: " .. why) end)
  return true
end

-- A keep-alive connection asking /ping of 127.0.0.1:port (a location answering "pong\n"): ping() returns the
-- seconds each took (a new connection when nginx ended the last one, after keepalive_requests); close().
function M.pinger(port)
  local c
  local function open()
    c = assert(socket.tcp())
    c:settimeout(5)
    assert(c:connect("127.0.0.1", port))
    c:setoption("tcp-nodelay", true)
  end
  open()
  return function()
    local t0 = socket.gettime()
    assert(c:send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"))
    local status = assert(c:receive("*l"))
    assert(status == "HTTP/1.1 200 OK", "/ping answered " .. status)
    local len, closing
    repeat
      local l = assert(c:receive("*l")):lower()
      len = tonumber(l:match("^content%-length:%s*(%d+)")) or len
      closing = closing or l:find("^connection:%s*close") ~= nil
    until l == ""
    local body = c:receive(len)
    assert(body == "pong\n", "/ping's body: " .. tostring(body))
    local dt = socket.gettime() - t0
    if closing then c:close(); open() end
    return dt
  end, function() c:close() end
end

-- Does something accept connections on 127.0.0.1:port?
function M.listening(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

-- Whether process pid runs (a zombie does not).
local function running(pid)
  local stat = helper.read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- This process's id.
local function own_pid()
  return tonumber(helper.read_file("/proc/self/stat"):match("^(%d+)"))
end

-- Every nginx of the specs and the bench starts here.  o: dir (its files:
-- nginx.out gets what nginx says before its error log is open, error.log is
-- given with -e), conf (default dir/nginx.conf), prefix (-p; default the
-- checkout), ports (it is up once each accepts connections, within 15 s),
-- env (variables for nginx), wrap (a command nginx runs under, such as strace: nginx, its child, is the one
-- stopped).  A watchdog stops nginx should this process die first (and removes dir when remove_dir).  Returns
-- { pid = nginx's, stop = fn (TERM, KILL after 5 s; twice is fine) }, or stops it and raises with nginx's own words.
function M.launch(o)
  local q, str_format = helper.shell_quote, string.format
  local out, log = o.dir .. "/nginx.out", o.dir .. "/error.log"
  local vars = {}
  for k, v in pairs(o.env or {}) do vars[#vars + 1] = k .. "=" .. q(v) .. " " end
  table.sort(vars)
  local proc = helper.spawn(str_format("%s%s%snginx -p %s -e %s -c %s >%s 2>&1 </dev/null", helper.UNINSTRUMENTED,
    table.concat(vars), o.wrap and o.wrap .. " " or "", q(o.prefix or M.ROOT .. "/"), q(log),
    q(o.conf or o.dir .. "/nginx.conf"), q(out)))
  local pid = proc.pid
  if o.wrap then -- the wrapper's child once it is nginx (strace first forks children of its own to test the kernel)
    local children, wrapper = "/proc/" .. pid .. "/task/" .. pid .. "/children", pid
    helper.wait_until(function()
      for c in (helper.read_file(children) or ""):gmatch("%d+") do
        if (helper.read_file("/proc/" .. c .. "/comm") or ""):find("^nginx") then pid = tonumber(c) end
      end
      return pid ~= wrapper
    end, 15)
  end
  local watchdog = tonumber((helper.capture(str_format("(while kill -0 %d 2>/dev/null; do sleep 1; done; "
    .. "kill %d 2>/dev/null%s) >/dev/null 2>&1 </dev/null & echo $!", own_pid(), pid,
    o.remove_dir and "; sleep 1; rm -rf " .. q(o.dir) or ""))))
  local function stop()
    if not proc then return end
    if watchdog then helper.execute(str_format("kill %d 2>/dev/null", watchdog)) end
    helper.execute(str_format("kill -TERM %d 2>/dev/null", pid))
    local t = socket.gettime()
    while running(pid) and socket.gettime() - t < 5 do socket.sleep(0.02) end
    if running(pid) then helper.execute(str_format("kill -KILL %d 2>/dev/null", pid)) end
    proc:close()
    proc = nil
  end
  local up = helper.wait_until(function()
    if not running(pid) then return true end
    for _, port in ipairs(o.ports) do
      if not M.listening(port) then return false end
    end
    return true
  end, 15)
  if not (up and running(pid)) then
    stop()
    error("nginx did not start: " .. (helper.read_file(out) or "") .. (helper.read_file(log) or ""), 0)
  end
  return { pid = pid, stop = stop }
end

-- Start the example's nginx.conf (examples/openresty/nginx.conf) with its
-- paths in dir, on a free port, plus /ping, /pid and /probe
-- (spec/support/ngx_probe.lua): { port =, pid = the worker's, stop = fn }, or
-- raises with nginx's own words.
function M.start(dir)
  local str_format = string.format
  local port = helper.free_ports(1)[1]
  local text = assert(helper.read_file(M.ROOT .. "/examples/openresty/nginx.conf"))
  for _, sub in ipairs {
    { "build/openresty/", dir .. "/" }, { "127.0.0.1:8080", "127.0.0.1:" .. port },
    { "$prefix/examples/openresty/?.lua;", "$prefix/examples/openresty/?.lua;$prefix/spec/support/?.lua;" },
    { "\n    }\n}\n", table.concat({ "",
      "        location = /ping { return 200 \"pong\\n\"; }",
      "        location = /pid { content_by_lua_block { ngx.say(ngx.worker.pid()) } }",
      "        location = /probe { content_by_lua_file spec/support/ngx_probe.lua; }",
      "    }", "}", "" }, "\n") },
  } do
    local k
    text, k = text:gsub(sub[1]:gsub("%p", "%%%0"), (sub[2]:gsub("%%", "%%%%")))
    assert(k > 0, "the example's nginx.conf has no " .. sub[1])
  end
  local stop = M.serve(dir, function() return text end, port).stop
  local http = require "socket.http"
  local pid = tonumber((http.request(str_format("http://127.0.0.1:%d/pid", port))))
  return { port = port, pid = pid, stop = stop }
end

-- The first lines of a spec's nginx.conf, up to the http block's Lua paths
-- (the checkout's lua/ and build/luajit/), its files in dir, `connections` (1024) a worker: a list to go on.
function M.conf_head(dir, workers, connections)
  local str_format = string.format
  return {
    "load_module " .. M.MODULES .. "ndk_http_module.so;",
    "load_module " .. M.MODULES .. "ngx_http_lua_module.so;",
    str_format("worker_processes %d;", workers), "thread_pool starvideos threads=2;", "daemon off;",
    str_format("error_log %s/error.log info;", dir), str_format("pid %s/nginx.pid;", dir),
    str_format("events { worker_connections %d; }", connections or 1024),
    "http {", "    access_log off;",
    str_format("    client_body_temp_path %s/body;", dir),
    "    lua_package_path \"" .. helper.lua_path("$prefix") .. ";;\";",
    "    lua_package_cpath \"$prefix/build/luajit/?.so;;\";",
  }
end

-- Start nginx with the configuration conf(port) returns (port: a free one, or
-- the one given) written to dir/nginx.conf (as root, with `user root;`: the
-- workers as nobody may not write the spec's files), env: variables for nginx
-- (a table, or nil), wrap: M.launch's (nil: none): { port =, pid = nginx's, stop = fn }, or raises with
-- nginx's own words.
function M.serve(dir, conf, port, env, wrap)
  port = port or helper.free_ports(1)[1]
  local text = conf(port)
  if helper.capture("id -u"):match("^0%s*$") then text = "user root;\n" .. text end
  helper.write_file(dir .. "/nginx.conf", text)
  local n = M.launch { dir = dir, ports = { port }, env = env, wrap = wrap }
  return { port = port, pid = n.pid, stop = n.stop }
end

-- nginx (serve) with one server of Lua locations: each of `list` {path, code[, directives]} as `location =
-- path { directives content_by_lua_block { code } }`; `workers` (1) of them; `http`: lines of the http block
-- (shared dicts), or nil; `connections`: conf_head's; `listen`: more of the listen directive (" reuseport": each
-- worker a socket of its own, the kernel spreading the connections between them, or nil).  The body of a GET of
-- path-and-query is then get(what), without its last newline.
function M.serve_lua(dir, list, workers, http, connections, listen)
  local n = M.serve(dir, function(port)
    local lines = M.conf_head(dir, workers or 1, connections)
    for _, l in ipairs(http or {}) do lines[#lines + 1] = "    " .. l end
    lines[#lines + 1] = "    server { listen 127.0.0.1:" .. port .. (listen or "") .. ";"
    for _, l in ipairs(list) do
      lines[#lines + 1] = string.format("      location = %s { %s content_by_lua_block { %s } }", l[1], l[3] or "",
        l[2])
    end
    lines[#lines + 1] = "    }\n}\n"
    return table.concat(lines, "\n")
  end)
  function n.get(what)
    return (helper.capture(string.format("curl -s 'http://127.0.0.1:%d%s'", n.port, what)):gsub("\n$", ""))
  end
  return n
end

-- GET http://127.0.0.1:port/<path(i)> for i = 1..n, all at once (a curl each),
-- each answer's body in dir/out.<i>; returns when all have answered.
function M.get_all(port, n, dir, path)
  local q, str_format = helper.shell_quote, string.format
  local cmd = {}
  for i = 1, n do
    cmd[#cmd + 1] = str_format("curl -s -m 150 'http://127.0.0.1:%d/%s' > %s &", port, path(i), q(dir .. "/out." .. i))
  end
  cmd[#cmd + 1] = "wait"
  assert(helper.execute(helper.UNINSTRUMENTED .. "sh -c " .. q(table.concat(cmd, "\n"))))
end

-- The times (the emulator's clock) of the polls in its log, in order, and the
-- most of them in any one second (a window [t, t + 1)): a figure to print, no verdict on the key's budget (the
-- way to the service, slower than its 50 ms on a loaded machine, can bunch them: spec/support/grants.lua is read).
function M.polls(emu)
  local polls = {}
  for _, r in ipairs(emu:requests()) do
    if r.method == "GET" and r.path:find("^/v1/result/") then polls[#polls + 1] = r.at end
  end
  table.sort(polls)
  return polls, M.busiest(polls)
end

-- The times of every request of the API (creates and polls: /v1/, not the videos' downloads) in the emulator's
-- log, in order.  (Their busiest second is a figure, no verdict: the budget decides when a request may go and
-- spares 50 ms for its way, bucket.lua's PER; the emulator logs when it arrives, and a loaded machine may take
-- longer between the two: spec/support/grants.lua reads the budget where it grants.)
function M.api_requests(emu)
  local at = {}
  for _, r in ipairs(emu:requests()) do
    if r.path:find("^/v1/") then at[#at + 1] = r.at end
  end
  table.sort(at)
  return at
end

-- The most of the sorted times `at` in any window [t, t + width) (width: 1 s unless given).
function M.busiest(at, width)
  local most, j = 0, 1
  for i = 1, #at do
    while at[i] - at[j] >= (width or 1) do j = j + 1 end
    if i - j + 1 > most then most = i - j + 1 end
  end
  return most
end

return M
