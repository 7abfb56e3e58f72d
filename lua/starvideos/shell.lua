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

return M
