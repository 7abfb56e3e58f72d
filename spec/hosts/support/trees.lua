-- LuaRocks trees for the hosts specs (spec/hosts/rocks_spec.lua): a VM's luarocks flags, and the environment of
-- a child that sees one tree and the system's own Lua directories (Debian's cjson, LuaSocket), nothing else.
--   local t = trees.vm("luajit", tmp)   -- {lua =, luav =, flags =} (LuaJIT: --lua-version=5.1 --lua-dir)
--   trees.env(t, tree)                  -- "env -u LUA_INIT ... LUA_PATH=... LUA_CPATH=... "
--   trees.env_paths(path, cpath)        -- the same for the paths given
--   trees.system_dirs(lua, "path")      -- the system's own directories of lua's package.path (or "cpath")
--   trees.files(dir)                    -- every file under dir, relative names, sorted ({}: no dir)
local helper = require "spec.helper"

local q = helper.shell_quote
local M = {}

-- The VM's own default search paths, keeping only Debian's system directories (/usr/share/lua, /usr/lib/...):
-- not ./, not /usr/local (another tree).
function M.system_dirs(lua, which)
  local out = helper.capture("env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_2 -u LUA_PATH_5_3 -u LUA_PATH_5_4 "
    .. "-u LUA_CPATH_5_2 -u LUA_CPATH_5_3 -u LUA_CPATH_5_4 -u LUA_INIT " .. q(lua) .. " -e "
    .. q("io.write(package." .. which .. ")"))
  local keep = {}
  for entry in out:gmatch("[^;]+") do
    if entry:match("^/usr/share/lua/") or entry:match("^/usr/lib/") then keep[#keep + 1] = entry end
  end
  return table.concat(keep, ";")
end

-- vm ("lua5.4", "luajit"): its interpreter, Lua version directory and luarocks flags; LuaJIT through a prefix
-- made in tmp (OpenResty's luajit2 on Debian: luarocks finds the interpreter in <prefix>/bin and the headers in
-- <prefix>/include/luajit-2.1).
function M.vm(vm, tmp)
  if vm ~= "luajit" then
    local luav = vm:match("^lua(%d%.%d)$")
    return { lua = vm, luav = luav, flags = "--lua-version=" .. luav }
  end
  local prefix = tmp .. "/luajit"
  local luajit = helper.capture("readlink -f \"$(command -v luajit)\""):match("^(%S+)")
  local inc = (helper.capture("pkg-config --cflags-only-I luajit"):match("%-I(%S+)")) or "/usr/include/luajit-2.1"
  assert(helper.execute("mkdir -p " .. q(prefix .. "/bin") .. " " .. q(prefix .. "/include") .. " && ln -s "
    .. q(luajit) .. " " .. q(prefix .. "/bin/luajit") .. " && ln -s " .. q(inc) .. " "
    .. q(prefix .. "/include/luajit-2.1")))
  return { lua = "luajit", luav = "5.1", flags = "--lua-version=5.1 --lua-dir=" .. q(prefix) }
end

-- The environment of a child that must see no Lua module but those of path and cpath: no LUA_INIT, no
-- version-specific paths.
function M.env_paths(path, cpath)
  return "env -u LUA_INIT -u LUA_INIT_5_2 -u LUA_INIT_5_3 -u LUA_INIT_5_4 -u LUA_INIT_5_5 -u LUA_PATH_5_2 "
    .. "-u LUA_PATH_5_3 -u LUA_PATH_5_4 -u LUA_PATH_5_5 -u LUA_CPATH_5_2 -u LUA_CPATH_5_3 -u LUA_CPATH_5_4 "
    .. "-u LUA_CPATH_5_5 LUA_PATH=" .. q(path)
    .. " LUA_CPATH=" .. q(cpath) .. " "
end

-- The environment of a child of t's VM that sees only tree's modules and the system's.
function M.env(t, tree)
  local share, lib = tree .. "/share/lua/" .. t.luav, tree .. "/lib/lua/" .. t.luav
  return M.env_paths(share .. "/?.lua;" .. share .. "/?/init.lua;" .. M.system_dirs(t.lua, "path"),
    lib .. "/?.so;" .. M.system_dirs(t.lua, "cpath"))
end

-- Every file under dir (relative names), sorted; {} when there is no dir.
function M.files(dir)
  local out = helper.capture("cd " .. q(dir) .. " 2>/dev/null && find . -type f | sed 's|^\\./||' | sort")
  local list = {}
  for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
  return list
end

return M
