-- A string as one word of a POSIX shell command line, in the commands printed for a
-- person to copy.  It needs nothing: the emulator loads it without the C core.

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

return M
