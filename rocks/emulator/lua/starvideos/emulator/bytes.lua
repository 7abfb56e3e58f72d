-- starvideos.emulator.bytes: integers as bytes and the option checks shared
-- by the emulator's file writers (media.lua, mp4.lua).  Arithmetic only: no
-- string.pack, no bit operators, so Lua 5.1 to 5.4 and LuaJIT run it.

local str_char = string.char
local math_floor, math_max = math.floor, math.max
local error, type, tostring = error, type, tostring
local unpack = table.unpack or unpack -- luacheck: ignore 113 143 (unpack: 5.1, LuaJIT)

local B = {}

-- n (an integer >= 0 below 2^53) as k bytes, big-endian.
function B.be(n, k)
  local b = {}
  for i = k, 1, -1 do
    b[i] = n % 256
    n = math_floor(n / 256)
  end
  return str_char(unpack(b))
end

-- n as k bytes, little-endian.
function B.le(n, k)
  return B.be(n, k):reverse()
end

-- The zero bytes to add so that a file of `size` bytes reaches `bytes` (none when it is past them).
function B.pad_of(bytes, size)
  return math_max(0, (bytes or 0) - size)
end

-- Option k of the options o: a number >= 0, else default when absent; raises
-- naming k (at the writer's caller) for anything else.
function B.num(o, k, default)
  local v = o[k]
  if v == nil then return default end
  if type(v) ~= "number" or v < 0 then error("media: " .. k .. " must be a number >= 0, got " .. tostring(v), 3) end
  return v
end

return B
