-- The Lua search templates of a checkout at root (nil: the working folder, the templates relative): the core's lua/,
-- then each other rock's rocks/<rock>/lua/ (the list of rocks/folders.lua, as bin/starvideos reads it), each as
-- "D/?.lua;D/?/init.lua;"; and the folders.
--   package.path = dofile("tools/lua_dirs.lua")() .. package.path
return function(root)
  local dirs, at = { "lua" }, root and root .. "/" or ""
  for _, d in ipairs(dofile(at .. "rocks/folders.lua")) do dirs[#dirs + 1] = d end
  local t = {}
  for _, d in ipairs(dirs) do t[#t + 1] = at .. d .. "/?.lua;" .. at .. d .. "/?/init.lua;" end
  return table.concat(t), dirs
end
