-- How to install a rock the library does not find (extension.lua's why, beside which this file is loaded, at a
-- missing rock only): luarocks make of its rockspec at the top of the checkout this library was loaded from, the
-- release's line where it was installed from a release, or luarocks make at the top of the checkout the starvideos
-- rock was built from (a LuaRocks tree has no rockspecs of the others).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

-- The numbered version of starvideos in the LuaRocks tree's manifest of lua (tree/lib/luarocks/rocks-LUA/manifest,
-- which LuaRocks writes at each install: a file of Lua assignments, read as data; of several, the greatest as text);
-- else nil (none there, or an scm one).  (Not config's VERSION: the command line's `emulator` and `store` ask before
-- anything loaded it, and config requires extension.lua.)
local function tree_version(tree, lua)
  local f = io.open(string.format("%s/lib/luarocks/rocks-%s/manifest", tree, lua))
  if not f then return nil end
  local text, env = f:read("*a"), {}
  f:close()
  local setfenv = rawget(_G, "setfenv") -- (Lua 5.1, LuaJIT: load takes no env)
  local chunk
  if setfenv then
    chunk = text:sub(1, 1) ~= "\27" and rawget(_G, "loadstring")(text, "=manifest")
    if chunk then setfenv(chunk, env) end
  else
    chunk = load(text, "=manifest", "t", env)
  end
  if not (chunk and pcall(chunk)) then return nil end
  local repo = type(env.repository) == "table" and env.repository.starvideos
  local newest
  for v in pairs(type(repo) == "table" and repo or {}) do
    if type(v) == "string" and v:find("^%d") and (not newest or v > newest) then newest = v end
  end
  return newest and newest:match("^(.-)%-%d+$")
end

-- A LuaRocks tree's starvideos, installed from a release (a numbered version, not scm): the release's install line
-- for rock, from the folder of that release (docs/install.md, "Releases"); else nil.  file: this file's path.
local function release_hint(rock, file)
  local tree, lua = file:match("^(.-)/share/lua/(%d+%.%d+)/starvideos/install_hint%.lua$")
  local version = tree and tree_version(tree, lua)
  if not version then return nil end
  return string.format("from the starvideos-%s release folder it came from, with no server asked: luarocks "
    .. "--lua-version=%s --tree=%s install --only-server=<that folder>/%s --deps-mode=none %s", version, lua, tree,
    lua, rock)
end

-- How to install rock: luarocks make of its rockspec at the top of the checkout this library was loaded from, the
-- release's line where it was installed from a release, or luarocks make at the top of the checkout the starvideos
-- rock was built from (a LuaRocks tree has no rockspecs of the others).
return function(rock)
  local short = rock:gsub("^starvideos%-", "")
  local spec = "rocks/" .. short .. "/" .. rock .. "-scm-1.rockspec"
  local file = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
  if file:sub(1, 1) ~= "/" then file = (os.getenv("PWD") or ".") .. "/" .. file end
  local root = file:match("^(.-)lua/starvideos/install_hint%.lua$")
  local f = root and io.open(root .. spec)
  if f then
    f:close()
    return string.format("from this checkout: cd %s && luarocks make --deps-mode=none %s", (root:gsub("/+$", "")),
      spec)
  end
  local release = release_hint(rock, file)
  if release then return release end
  return "luarocks make --deps-mode=none " .. spec .. " at the top of the checkout starvideos came from: "
    .. "docs/install.md, \"The other rocks\""
end
