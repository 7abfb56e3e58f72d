-- A rockspec's fields, read as LuaRocks reads them: its file run in an empty environment, on any VM
-- (5.1 and LuaJIT take the environment with setfenv).  nil when there is no such file.
-- Used as `dofile("tools/rockspec.lua")(path)` by tools/shape_rocks.lua and the hosts' specs.
return function(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  local env = {}
  local setfenv = rawget(_G, "setfenv")
  local chunk
  if setfenv then -- 5.1, LuaJIT
    chunk = assert(rawget(_G, "loadstring")(text, "=" .. path))
    setfenv(chunk, env)
  else
    chunk = assert(load(text, "=" .. path, "t", env))
  end
  chunk()
  return env
end
