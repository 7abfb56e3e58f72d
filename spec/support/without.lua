-- without(hidden, f): f run with the modules named in hidden not installed: require raises Lua's own "not found"
-- for them, as in a tree without their rock (the real trees, luarocks make, are the hosts tier's).
return function(hidden, f)
  local real, saved = require, {}
  for _, name in ipairs(hidden) do saved[name], package.loaded[name] = package.loaded[name], nil end
  _G.require = function(name)
    for _, h in ipairs(hidden) do
      if name == h then error("module '" .. name .. "' not found:\n\tno field package.preload['" .. name .. "']", 2) end
    end
    return real(name)
  end
  local ok, err = pcall(f)
  _G.require = real
  for name, m in pairs(saved) do package.loaded[name] = m end
  if not ok then error(err, 0) end
end
