-- A child process on this checkout's modules that says what it loaded (spec/require_spec.lua, and the rocks'
-- require specs): its body calls state(label) to print `STATE <label> crypto=<yes|no> <module> ...`.
local helper = require "spec.helper"

local q = helper.shell_quote
local M = {}

-- What a child prints about itself: `STATE <label> crypto=<yes|no> <module> ...`.
M.PRELUDE = [[
local function state(label)
  local f = assert(io.open("/proc/self/maps"))
  local maps = f:read("*a")
  f:close()
  local names = {}
  for k in pairs(package.loaded) do
    if type(k) == "string" and k:find("^starvideos") then names[#names + 1] = k end
  end
  table.sort(names)
  print("STATE " .. label .. " crypto=" .. (maps:find("/libcrypto", 1, true) and "yes" or "no") .. " "
    .. table.concat(names, " "))
end
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
local BASE = "http://127.0.0.1:9"
]]

-- Runs the Lua program body in a child (PRELUDE first); env: more of the command
-- line before the interpreter.  Returns its output, with the states by label.
function M.child(body, env)
  local dir = helper.tmpdir()
  helper.write_file(dir .. "/child.lua", M.PRELUDE .. body)
  local out, ok = helper.capture((env or helper.CHILD_ENV) .. " " .. q(helper.lua) .. " " .. q(dir .. "/child.lua")
    .. " 2>&1")
  assert(ok, out)
  local states = {}
  for label, crypto, mods in out:gmatch("STATE (%S+) crypto=(%a+) ?([^\n]*)") do
    local set = {}
    for m in mods:gmatch("%S+") do set[m] = true end
    states[label] = { crypto = crypto == "yes", loaded = set }
  end
  return out, states
end

-- The names in loaded (a set) of modules that are not the core's (lua/'s, or its C modules core, curl and sign):
-- another rock's, sorted.
local C = { ["starvideos.core"] = true, ["starvideos.curl"] = true, ["starvideos.sign"] = true }
function M.foreign(loaded)
  local out = {}
  for m in pairs(loaded) do
    local path = helper.root .. "/lua/" .. m:gsub("%.", "/")
    if not C[m] and not helper.exists(path .. ".lua") and not helper.exists(path .. "/init.lua") then
      out[#out + 1] = m
    end
  end
  table.sort(out)
  return out
end

return M
