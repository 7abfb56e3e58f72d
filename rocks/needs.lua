-- The core a product rock runs on (CONTRACT.md, "Rocks": each product rock depends on a version range of the
-- core).  One file for every product rock: each installs it as starvideos.needs.<rock> (its
-- rocks/<rock>/lua/starvideos/needs/<rock>.lua is a link to this file) and requires it first from each module the
-- core finds by convention (a ledger, a sink, the references, the observer, a command).  LuaRocks checks the range
-- at install, unless told --deps-mode=none (docs/install.md's line): then this check, as the rock loads, refuses
-- a core outside it, naming both versions and the install line, rather than run on a core it was not written for.
-- RANGE is the one place of the range: every release rockspec's dependency says it, every scm one its lower bound
-- (tools/shape_rocks.lua checks both).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local RANGE = { ">=", "0.4", "<", "0.5" }

local rock = "starvideos-" .. tostring(... or "?"):match("([^.]*)$")

-- A version's numbers ("0.4.0", "0.4", "scm": nil).
local function numbers(v)
  local list = {}
  for n in tostring(v):gmatch("%d+") do list[#list + 1] = tonumber(n) end
  return tostring(v):match("^%d+[%.%d]*$") and list or nil
end

-- a <=> b, numbers compared in turn, a missing one as 0: -1, 0 or 1.
local function compare(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = a[i] or 0, b[i] or 0
    if x ~= y then return x < y and -1 or 1 end
  end
  return 0
end

-- true when version is in RANGE.
local function within(version)
  local have = numbers(version)
  if not have then return false end
  for i = 1, #RANGE, 2 do
    local c = compare(have, numbers(RANGE[i + 1]))
    if (RANGE[i] == ">=" and c < 0) or (RANGE[i] == "<" and c >= 0) then return false end
  end
  return true
end

local range = table.concat(RANGE, " "):gsub("(%d) <", "%1, <")

-- The core's version: its config's VERSION (starvideos._VERSION is "starvideos " .. it), read without loading the
-- rest of the core; a core whose config does not load (its C module missing) is not checked here: it fails itself.
local ok, config = pcall(require, "starvideos.config")
local searchpath = rawget(package, "searchpath") -- (Lua 5.2 on, LuaJIT)
local version = ok and type(config) == "table" and config.VERSION or nil
if version ~= nil and not within(version) then
  error(string.format("%s needs starvideos %s, and the starvideos loaded is %s (%s): install a core in that "
    .. "range beside it (luarocks make --deps-mode=none rockspec/starvideos-%s.0-1.rockspec at the top of its "
    .. "checkout, or luarocks install --only-server=DIR/5.x --deps-mode=none starvideos from its release folder: "
    .. "docs/install.md, \"The other rocks\"), or the %s of that core's release", rock, range, tostring(version),
    searchpath and searchpath("starvideos.config", package.path) or "starvideos.config",
    RANGE[2], rock), 0)
end

-- A core in the range that has no window yet (0.4.0 as released: extension.lua without WINDOW, where a rock's first
-- X.<part> would index nil) is refused the same way, naming what it lacks.
local okx, X = pcall(require, "starvideos.extension")
if version ~= nil and okx and type(X) == "table" and rawget(X, "WINDOW") == nil then
  error(string.format("%s needs a starvideos core with the rocks' window (extension.lua's WINDOW: this checkout's, "
    .. "the next release's), and the starvideos loaded (%s) has none: install the core of the same checkout or "
    .. "release beside it (docs/install.md, \"The other rocks\")", rock, tostring(version)), 0)
end

return { rock = rock, range = range, core = version }
