-- What the specs running nginx share (spec/nginx_spec.lua,
-- spec/openresty_readme_spec.lua): the checkout's absolute path (nginx's
-- prefix), why nginx cannot run here, and whether a port listens.

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

-- Why nginx cannot run here with the library, or nil: each of `programs`
-- (names on PATH or absolute paths), the lua module, the core built for LuaJIT.
function M.missing(programs)
  for _, cmd in ipairs(programs) do
    if not helper.execute("command -v " .. helper.shell_quote(cmd) .. " >/dev/null 2>&1") then
      return string.format("%s is not installed (apt-get install %s)", cmd, PACKAGE[cmd] or cmd)
    end
  end
  for _, m in ipairs { "ndk_http_module.so", "ngx_http_lua_module.so" } do
    if not helper.exists(M.MODULES .. m) then
      return "the nginx lua module is not installed (apt-get install libnginx-mod-http-lua)"
    end
  end
  if not helper.exists(M.ROOT .. "/build/luajit/starvideos/core.so") then
    return "the core is not built for LuaJIT (make build/luajit/starvideos/core.so)"
  end
end

-- A spec file that needs nginx: when it cannot run here (M.missing), a
-- describe block `name` with one pending test saying why, and true (the
-- file returns); else nil.
function M.pending_unless_ready(name, programs)
  local why = M.missing(programs)
  if not why then return nil end
  describe(name, function()
    it("needs nginx with its lua module", function() pending(why) end)
  end)
  return true
end

-- Does something accept connections on 127.0.0.1:port?
function M.listening(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
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
-- (the checkout's lua/ and build/luajit/), its files in dir: a list to go on.
function M.conf_head(dir, workers)
  local str_format = string.format
  return {
    "load_module " .. M.MODULES .. "ndk_http_module.so;",
    "load_module " .. M.MODULES .. "ngx_http_lua_module.so;",
    str_format("worker_processes %d;", workers), "thread_pool starvideos threads=2;", "daemon off;",
    str_format("error_log %s/error.log info;", dir), str_format("pid %s/nginx.pid;", dir),
    "events { worker_connections 1024; }",
    "http {", "    access_log off;",
    str_format("    client_body_temp_path %s/body;", dir),
    "    lua_package_path \"$prefix/lua/?.lua;$prefix/lua/?/init.lua;;\";",
    "    lua_package_cpath \"$prefix/build/luajit/?.so;;\";",
  }
end

-- Start nginx with the configuration conf(port) returns (port: a free one, or
-- the one given) written to dir/nginx.conf (as root, with `user root;`: the
-- workers as nobody may not write the spec's files): { port =, stop = fn }, or
-- raises with nginx's own words.
function M.serve(dir, conf, port)
  local q, str_format = helper.shell_quote, string.format
  port = port or helper.free_ports(1)[1]
  local text = conf(port)
  if helper.capture("id -u"):match("^0%s*$") then text = "user root;\n" .. text end
  helper.write_file(dir .. "/nginx.conf", text)
  local proc = helper.spawn(str_format(helper.UNINSTRUMENTED .. "nginx -p %s -c %s 2>%s", q(M.ROOT .. "/"),
    q(dir .. "/nginx.conf"), q(dir .. "/nginx.stderr")))
  local function stop()
    if proc then helper.execute(str_format("kill %d 2>/dev/null", proc.pid)); proc:close(); proc = nil end
  end
  if not helper.wait_until(function() return M.listening(port) end, 15) then
    stop()
    error("nginx did not start: " .. tostring(helper.read_file(dir .. "/nginx.stderr"))
      .. tostring(helper.read_file(dir .. "/error.log")))
  end
  return { port = port, stop = stop }
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
-- most of them in any one second (a window [t, t + 1)).
function M.polls(emu)
  local polls = {}
  for _, r in ipairs(emu:requests()) do
    if r.method == "GET" and r.path:find("^/v1/result/") then polls[#polls + 1] = r.at end
  end
  table.sort(polls)
  local most, j = 0, 1
  for i = 1, #polls do
    while polls[i] - polls[j] >= 1 do j = j + 1 end
    if i - j + 1 > most then most = i - j + 1 end
  end
  return polls, most
end

return M
