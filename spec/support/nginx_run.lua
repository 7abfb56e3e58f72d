-- What the specs and the bench running nginx share (spec/*nginx*_spec.lua,
-- spec/ngx_wire_spec.lua, spec/transport_cases_spec.lua, bench/run.lua): the
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
-- the core built for LuaJIT.
function M.missing(programs)
  local why = M.missing_nginx(programs)
  if why then return why end
  if not helper.exists(M.ROOT .. "/build/luajit/starvideos/core.so") then
    return "the core is not built for LuaJIT (make build/luajit/starvideos/core.so)"
  end
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
-- env (variables for nginx).  A watchdog stops nginx should this process die
-- first (and removes dir when remove_dir).  Returns { pid = nginx's, stop = fn (TERM, KILL after 5 s; twice is
-- fine) }, or stops it and raises with nginx's own words.
function M.launch(o)
  local q, str_format = helper.shell_quote, string.format
  local out, log = o.dir .. "/nginx.out", o.dir .. "/error.log"
  local vars = {}
  for k, v in pairs(o.env or {}) do vars[#vars + 1] = k .. "=" .. q(v) .. " " end
  table.sort(vars)
  local proc = helper.spawn(str_format("%s%snginx -p %s -e %s -c %s >%s 2>&1 </dev/null", helper.UNINSTRUMENTED,
    table.concat(vars), q(o.prefix or M.ROOT .. "/"), q(log), q(o.conf or o.dir .. "/nginx.conf"), q(out)))
  local pid = proc.pid
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
  -- as root the workers would run as nobody, who may not write the spec's files
  if helper.capture("id -u"):match("^0%s*$") then text = "user root;\n" .. text end
  helper.write_file(dir .. "/nginx.conf", text)
  local n = M.launch { dir = dir, ports = { port } }
  local http = require "socket.http"
  local pid = tonumber((http.request(string.format("http://127.0.0.1:%d/pid", port))))
  return { port = port, pid = pid, stop = n.stop }
end

return M
