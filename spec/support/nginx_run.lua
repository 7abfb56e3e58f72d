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

return M
