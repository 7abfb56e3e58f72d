-- starvideos.cli.json: JSON for the command line's --json output, as people
-- read it: keys sorted (stable output), whole numbers without ".0", empty lists
-- kept as [] when marked with M.array, cjson.null as null, slashes as they are.
-- cjson escapes strings.

local cjson = require "cjson"
local visible = require("starvideos.shell").visible

local type, pairs, ipairs, tostring, tonumber, setmetatable, getmetatable =
  type, pairs, ipairs, tostring, tonumber, setmetatable, getmetatable
local string_format, string_rep, table_concat, table_sort = string.format, string.rep, table.concat, table.sort
local math_huge, math_type = math.huge, rawget(math, "type") -- math.type: nil before 5.3

local M = {}

local ARRAY = {} -- metatable marking a table to encode as a JSON array, even when empty

function M.array(t) return setmetatable(t or {}, ARRAY) end

local function is_index(k, n)
  return type(k) == "number" and k % 1 == 0 and k >= 1 and k <= n
end

local function is_sequence(t)
  local n = #t
  if n == 0 then return getmetatable(t) == ARRAY end
  local count = 0
  for k in pairs(t) do
    if not is_index(k, n) then return false end
    count = count + 1
  end
  return count == n
end

-- A number as JSON and people write it: 5 rather than 5.0 (cjson decodes every
-- number as a float). Integers of 5.3+ print whole; floats print whole while
-- they are exact (below 2^53), else with 14 significant digits.
function M.number_text(v)
  if math_type and math_type(v) == "integer" then return string_format("%d", v) end
  if v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 then return string_format("%.0f", v) end
  return string_format("%.14g", v)
end
local number_text = M.number_text

-- A string as JSON, its slashes unescaped: cjson writes every / as \/, which
-- JSON allows but nobody reads (a URL's).  In cjson's text a backslash before
-- a / is always that escape (a backslash itself is written \\).  A byte that makes no UTF-8 character (a path's,
-- a tenant's) is written \xNN (shell.visible): cjson would pass it through, and the document would be no JSON.
local function string_text(s)
  return (cjson.encode(visible(s)):gsub("\\/", "/"))
end

-- indent: nil for one line, else the string of one level of indentation.
local function encode(v, indent, depth)
  local tv = type(v)
  if v == nil or v == cjson.null then return "null" end
  if tv == "boolean" then return tostring(v) end
  if tv == "number" then
    if v ~= v or v == math_huge or v == -math_huge then return "null" end
    return number_text(v)
  end
  if tv == "string" then return string_text(v) end
  if tv ~= "table" then return string_text(tostring(v)) end
  depth = depth or 0
  local pad = indent and ("\n" .. string_rep(indent, depth + 1)) or ""
  local close = indent and ("\n" .. string_rep(indent, depth)) or ""
  local sep = indent and ": " or ":"
  local items = {}
  if is_sequence(v) then
    for i = 1, #v do items[i] = pad .. encode(v[i], indent, depth + 1) end
    if #items == 0 then return "[]" end
    return "[" .. table_concat(items, ",") .. close .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table_sort(keys)
  for i, k in ipairs(keys) do
    local val = v[k]
    if val == nil then val = v[tonumber(k)] end
    items[i] = pad .. string_text(k) .. sep .. encode(val, indent, depth + 1)
  end
  if #items == 0 then return "{}" end
  return "{" .. table_concat(items, ",") .. close .. "}"
end

-- M.encode(v [, indent]) -> text
function M.encode(v, indent) return encode(v, indent, 0) end

return M
