-- What one `client:generate(params, {out = ...})` passes through, counted by a
-- debug hook (Lua 5.4: the transferred values of calls and returns), against the
-- emulator on 127.0.0.1.  Run from a checkout, after `make`:
--
--   lua5.4 tools/trace.lua
--
-- It prints:
--   * the Lua functions of lua/starvideos/ that ran, and their files;
--   * the answer's crossings: how often a query's answer (its body text, or the
--     task table read from it) went from Lua into C or from C into Lua, during
--     one poll of the task (a call of a C function with it among its arguments,
--     or a C function returning it).
-- The numbers are for the README's Architecture section and the issue's note;
-- nothing here is a test.
package.path = dofile("tools/lua_dirs.lua")() .. "./?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

assert(_VERSION == "Lua 5.4", "tools/trace.lua needs Lua 5.4 (transferred values in hooks)")
local helper = require "spec.helper"
local starvideos = require "starvideos"

local emu = helper.emulator { queued = 0.05, processing = 0.05, interval = 0.05 }
local dir = helper.tmpdir and helper.tmpdir() or os.tmpname() .. ".d"
os.execute("mkdir -p " .. dir)
local out = dir .. "/trace.mp4"

local client = starvideos.new { base_url = emu.url, api_key = emu.key, min_interval = 0.01 }
-- warm up (modules loaded, the transport made) before counting
assert(client:generate({ model = "videos_fast", prompt = "warm", duration = 4 }, { out = out, interval = 0.05 }))
os.remove(out)

local getinfo, getlocal, sethook = debug.getinfo, debug.getlocal, debug.sethook

-- Lua's own C functions (the standard library), by value: every other C
-- function called from the library's Lua is the library's (the core, the libcurl
-- transport, lua-cjson, whichever instance of it a module made).
local std = {}
for _, lib in ipairs { _G, string, table, math, io, os, coroutine, debug, rawget(_G, "utf8"), package } do
  for _, v in pairs(lib) do if type(v) == "function" then std[v] = true end end
end
for _, v in pairs(getmetatable(io.stdout).__index) do std[v] = true end
std[(pairs {})], std[(ipairs {})] = true, true -- the iterators pairs and ipairs hand out
local cused, ncused = {}, 0
local funcs, files, nfuncs = {}, {}, 0
local answer_id -- the task id, once the create answered: its answers are then known by it
local crossings, watching = 0, false

local function is_answer(v)
  if not answer_id then return false end
  if type(v) == "string" then
    return #v < 65536 and v:find(answer_id, 1, true) ~= nil and v:find('"status"', 1, true) ~= nil
  end
  if type(v) == "table" then return rawget(v, "id") == answer_id and rawget(v, "status") ~= nil end
  return false
end

local function hook(event)
  local info = getinfo(2, "Srf")
  if not info then return end
  local cname
  if info.what == "C" and not std[info.func] then
    local caller = getinfo(3, "S")
    if caller and caller.short_src:find("starvideos/", 1, true) then
      local n = getinfo(2, "n")
      cname = n and n.name or "?"
    end
  end
  if event == "call" and cname and not cused[cname] then cused[cname], ncused = true, ncused + 1 end
  if event == "call" and info.what == "Lua" then
    local src = info.short_src
    if src:find("starvideos/", 1, true) then
      local key = src .. ":" .. info.linedefined
      if not funcs[key] then funcs[key], nfuncs = true, nfuncs + 1 end
      files[src] = true
    end
  end
  -- a C function called from (or returning to) the library's Lua: not this script's
  if watching and cname and info.ntransfer and info.ntransfer > 0 then
    for i = info.ftransfer, info.ftransfer + info.ntransfer - 1 do
      local _, v = getlocal(2, i)
      if is_answer(v) then
        crossings = crossings + 1
        if os.getenv("TRACE_WHO") then -- which function, for a person reading
          local w = getinfo(2, "n")
          io.stderr:write(event, " ", tostring(w and w.name), " ", type(v), "\n")
        end
        break
      end
    end
  end
end

-- the generate, traced whole; the crossings counted during its polls only
local seen_polls = 0
sethook(hook, "cr")
local params = { model = "videos_fast", prompt = "traced", duration = 4 }
local task, err = client:generate(params, { out = out, interval = 0.05,
  on_progress = function(ev)
    if ev.type == "status" and ev.id and not answer_id then answer_id = ev.id; watching = true end
    if ev.type == "status" then seen_polls = seen_polls + 1 end
  end })
sethook()
assert(task, err and tostring(err))

local list = {}
for f in pairs(files) do list[#list + 1] = f end
table.sort(list)
print(string.format("generate: %d Lua functions of starvideos in %d files", nfuncs, #list))
for _, f in ipairs(list) do print("  " .. f) end
local cl = {}
for name in pairs(cused) do cl[#cl + 1] = name end
table.sort(cl)
print(string.format("and %d C functions (the core, the transport, lua-cjson), by the name they were called by:",
  ncused))
for _, name in ipairs(cl) do print("  " .. name) end

-- one poll alone: a query of the finished task, its crossings counted
crossings, watching = 0, true
sethook(hook, "cr")
assert(client:query(answer_id))
sethook()
print(string.format("one query's answer: %d crossings between C and Lua", crossings))
print(string.format("(statuses seen during the generate: %d)", seen_polls))
client:close()
emu:stop()
os.execute("rm -rf " .. dir)
