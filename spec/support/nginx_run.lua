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
  local text = assert(helper.read_file(M.ROOT .. "/examples/openresty/nginx.conf"))
  local port, stop = M.run(dir, function(port)
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
    return text
  end)
  local http = require "socket.http"
  local pid = tonumber((http.request(string.format("http://127.0.0.1:%d/pid", port))))
  return { port = port, pid = pid, stop = stop }
end

-- Start nginx on the configuration conf(port) returns (a free port), with dir
-- as its folder and env ("NAME=value ..." for its environment, or nil): port,
-- stop (a function), or raises with nginx's own words.
function M.run(dir, conf, env)
  local q, str_format = helper.shell_quote, string.format
  local port = helper.free_ports(1)[1]
  local text = conf(port)
  -- as root the workers would run as nobody, who may not write the spec's files
  if helper.capture("id -u"):match("^0%s*$") then text = "user root;\n" .. text end
  helper.write_file(dir .. "/nginx.conf", text)
  local proc = helper.spawn(str_format(helper.UNINSTRUMENTED .. "%snginx -p %s -c %s 2>%s", env or "",
    q(M.ROOT .. "/"), q(dir .. "/nginx.conf"), q(dir .. "/nginx.stderr")))
  local function stop()
    if proc then helper.execute(str_format("kill %d 2>/dev/null", proc.pid)); proc:close(); proc = nil end
  end
  if not helper.wait_until(function() return M.listening(port) end, 15) then
    stop()
    error("nginx did not start: " .. tostring(helper.read_file(dir .. "/nginx.stderr"))
      .. tostring(helper.read_file(dir .. "/error.log")))
  end
  return port, stop
end

return M
