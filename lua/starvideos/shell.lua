-- A string as one word of a POSIX shell command line, in the commands printed for a
-- person to copy; a command's success, a program on PATH, a command run (in nginx without
-- holding its worker).  It needs nothing: the emulator loads it without the C core.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local M = {}

-- s bare when it is plain (letters, digits and . / _ + , : @ -; no ~, which a
-- shell expands at a word's start), else in single quotes, each ' as '\''.
function M.word(s)
  if s:find("^[%w%./_+,:@%-]+$") then return s end
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- Whether the command exits 0, on every Lua: os.execute gives a status number on 5.1 and LuaJIT (256 for a
-- command that failed: a true value), true or nil from 5.2 on.
function M.ok(command)
  local r = os.execute(command)
  return r == true or r == 0
end

-- Whether the program is on PATH.
function M.has(program)
  return M.ok("command -v " .. program .. " >/dev/null 2>&1")
end

-- The shell command run to its end, here: what it wrote (stdout and stderr together).
function M.popen(command)
  local p = io.popen(command .. " 2>&1")
  if not p then return "cannot run it" end
  local said = p:read("*a") or ""
  p:close()
  return said
end

-- nginx's phases whose handler may wait on the thread pool.
local YIELDS = { rewrite = true, server_rewrite = true, access = true, content = true, timer = true }

-- The shell command run to its end: what it wrote (stdout and stderr together).  In nginx's request handlers and
-- timers in its thread pool `starvideos` (`thread_pool starvideos threads=4;`, as downloads' commits use), so that
-- the worker goes on serving while it runs; without that pool, and elsewhere, here (io.popen waits for it).
function M.run(command)
  local ngx = rawget(_G, "ngx")
  local phase = type(ngx) == "table" and type(ngx.get_phase) == "function" and ngx.get_phase()
  if YIELDS[phase] and ngx.run_worker_thread then
    local ok, said = ngx.run_worker_thread("starvideos", "starvideos.shell", "popen", command)
    if ok then return said end
    ngx.log(ngx.WARN, "starvideos: a command runs in the worker (", tostring(said), "): add `thread_pool starvideos "
      .. "threads=4;` to the main context of nginx.conf")
  end
  return M.popen(command)
end

return M
