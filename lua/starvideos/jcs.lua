-- JSON in canonical form, the one writer of it (RFC 8785, the JSON Canonicalization Scheme): no insignificant
-- space, an object's members sorted by their names' UTF-16 code units, each string with the fewest escapes (\" \\
-- \b \f \n \r \t, other controls \u00xx, the rest as its UTF-8), each number as ECMAScript writes a double.  Read
-- from JSON text, so that what is canonical is what was written: a provenance record's signed bytes
-- (provenance.lua), and a create's content address (refusal.lua), which keeps its strings and numbers as the
-- service receives them (spelled: an address kept by an older version stays the same) and names a local file by its
-- SHA-256 (sums).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local cjson = require("cjson.safe").new()

local ipairs, tonumber, string_format, string_rep, table_concat, table_sort, math_abs = ipairs, tonumber,
  string.format, string.rep, table.concat, table.sort, math.abs

local J = {}

local function skip(s, i) return s:find("[^ \t\r\n]", i) or #s + 1 end

-- The index of the quote that ends the JSON string of s opened at i.
local function string_end(s, i)
  local j = i + 1
  while true do
    local q = s:find('["\\]', j)
    if not q or s:byte(q) == 34 then return q or #s end
    j = q + 2
  end
end

local SHORT = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t" }

-- s as RFC 8785 writes a string.
function J.quote(s)
  return '"' .. s:gsub('[%z\1-\31"\\]', function(c) return SHORT[c] or string_format("\\u%04x", c:byte()) end) .. '"'
end

-- n (a finite number) as ECMAScript's Number.prototype.toString writes it (RFC 8785, 3.2.2.3): the fewest digits that
-- read back as n, in plain form from 1e-6 to 1e21, else as d.ddde+x.
function J.number(n)
  if n ~= n or n == math.huge or n == -math.huge then error("JSON has no NaN nor infinity", 2) end
  if n == 0 then return "0" end
  local s
  for p = 0, 16 do
    s = string_format("%." .. p .. "e", n)
    if tonumber(s) == n then break end
  end
  local sign, first, rest, exp = s:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (first .. rest):gsub("0+$", "")
  local k, e = #digits, tonumber(exp) + 1 -- n = 0.<digits> x 10^e
  if k <= e and e <= 21 then return sign .. digits .. string_rep("0", e - k) end
  if e > 0 and e <= 21 then return sign .. digits:sub(1, e) .. "." .. digits:sub(e + 1) end
  if e > -6 and e <= 0 then return sign .. "0." .. string_rep("0", -e) .. digits end
  local x = (e - 1 >= 0 and "+" or "-") .. math_abs(e - 1)
  return sign .. digits:sub(1, 1) .. (k > 1 and "." .. digits:sub(2) or "") .. "e" .. x
end

-- A name's sort key: UTF-8 sorts as code points, which is UTF-16's order but for U+E000-U+FFFF (lead bytes EE,
-- EF), which UTF-16 puts after the characters past U+FFFF (its surrogates, D800-DFFF; lead bytes F0-F4): those two
-- lead bytes are moved past F4.
local PAST = { ["\238"] = "\246", ["\239"] = "\247" }
local function utf16_order(name) return (name:gsub("[\238\239]", PAST)) end

-- The JSON value of s at i in canonical form, and the index past it.  o: spelled (strings and numbers as written,
-- members sorted by their names as written), sums (a local file's SHA-256 by its path: within a reference field's
-- value, where {"file": path} is written as {"sha256": SUM}), media (the body's reference fields, by name as
-- written); top: the value is the body itself.
local function canonical(s, i, o, sums, top)
  i = skip(s, i)
  local c = s:byte(i)
  if c == 34 then
    local e = string_end(s, i)
    return o.spelled and s:sub(i, e) or J.quote(cjson.decode(s:sub(i, e)) or ""), e + 1
  end
  if c ~= 123 and c ~= 91 then
    local e = s:find("[,%]} \t\r\n]", i) or #s + 1
    local text = s:sub(i, e - 1)
    local n = not o.spelled and text:find("^[-%d]") and tonumber(text)
    return n and J.number(n) or text, e
  end
  local object, items = c == 123, {}
  local close = object and "}" or "]"
  i = skip(s, i + 1)
  while i <= #s and s:sub(i, i) ~= close do
    local name, v
    if object then
      local e = string_end(s, i)
      name, i = s:sub(i, e), skip(s, e + 1) + 1 -- (past its colon)
    end
    v, i = canonical(s, i, o, (not top or o.media[name]) and sums or nil)
    local sum = name == '"file"' and sums and sums[cjson.decode(v)]
    if sum then name, v = '"sha256"', '"' .. sum .. '"' end -- (a local file: its bytes, whatever path spells it)
    if object and not o.spelled then
      local decoded = cjson.decode(name) or ""
      name = J.quote(decoded)
      items[#items + 1] = { utf16_order(decoded), name .. ":" .. v }
    else
      items[#items + 1] = object and { name, name .. ":" .. v } or v
    end
    i = skip(s, i)
    if s:sub(i, i) == "," then i = skip(s, i + 1) end
  end
  if object then
    table_sort(items, function(x, y) return x[1] < y[1] end)
    for k, m in ipairs(items) do items[k] = m[2] end
  end
  return (object and "{" or "[") .. table_concat(items, ",") .. close, i + 1
end

local EXACT = { media = {} }

-- The JSON text s in RFC 8785's canonical form.
function J.canonical(s) return (canonical(s, 1, EXACT, nil, true)) end

-- The JSON text s (a create's body) in canonical form but its strings and numbers as spelled, each {"file": path}
-- within a member of media (a set of names, quoted as written) as {"sha256": sums[path]}.
function J.spelled(s, sums, media) return (canonical(s, 1, { spelled = true, media = media }, sums, true)) end

return J
