-- A reader of the LuaCATS annotations types/starvideos.lua is written in
-- (spec/types_spec.lua), strict where lua-language-server is lenient: every
-- line is a known form, every type parses, and what it declares is returned.
--   ---@meta NAME | ---@class NAME[: PARENT] | ---@field NAME TYPE LINE
--   ---@alias NAME TYPE | ---@alias NAME then ---| "literal" lines
--   ---@param NAME[?] TYPE | ---@return TYPE NAME | ---text | -- comment
--   local NAME = {} | function A.f(p, ...) end | function A:m(p, ...) end | return NAME
-- Types: NAME (a.b.c), "literal", T[], T?, A|B, (T), table<K, V>,
-- fun(p: T, ...)[: T].

local M = {}

M.BUILTIN = { ["nil"] = true, any = true, boolean = true, string = true, number = true, integer = true,
  ["function"] = true, table = true, ["true"] = true, ["false"] = true }

local parse_type

-- One primary type at s[i]: the index after it, or nil and why.
local function primary(s, i, refs)
  if s:sub(i, i) == "(" then
    local j, why = parse_type(s, i + 1, refs)
    if not j then return nil, why end
    if s:sub(j, j) ~= ")" then return nil, "no ) at " .. j end
    return j + 1
  elseif s:sub(i, i) == '"' then
    local j = s:find('"', i + 1, true)
    if not j or j == i + 1 then return nil, "an empty or unclosed literal at " .. i end
    return j + 1
  elseif s:find("^fun%(", i) then
    local j = i + 4
    while s:sub(j, j) ~= ")" do
      local name_end = s:match("^[%a_][%w_]*%??: ()", j)
      if not name_end then return nil, "a fun parameter without `name: type` at " .. j end
      local why
      j, why = parse_type(s, name_end, refs)
      if not j then return nil, why end
      if s:sub(j, j + 1) == ", " then j = j + 2 elseif s:sub(j, j) ~= ")" then return nil, "no , or ) at " .. j end
    end
    j = j + 1
    if s:sub(j, j + 1) == ": " then return parse_type(s, j + 2, refs) end
    return j
  elseif s:find("^table<", i) then
    local j, why = parse_type(s, i + 6, refs)
    if not j then return nil, why end
    if s:sub(j, j + 1) ~= ", " then return nil, "table<K, V> without its , at " .. j end
    j, why = parse_type(s, j + 2, refs)
    if not j then return nil, why end
    if s:sub(j, j) ~= ">" then return nil, "no > at " .. j end
    return j + 1
  end
  local name, j = s:match("^([%a_][%w_]*[%w_.]*)()", i)
  if not name or name:find("%.$") or name:find("%.%.") then return nil, "no type at " .. i end
  refs[#refs + 1] = name
  return j
end

-- A type at s[i] (unions of primaries with [] and ?): the index after it, or nil and why.
function parse_type(s, i, refs)
  while true do
    local j, why = primary(s, i, refs)
    if not j then return nil, why end
    while s:sub(j, j + 1) == "[]" do j = j + 2 end
    if s:sub(j, j) == "?" then j = j + 1 end
    if s:sub(j, j) ~= "|" then return j end
    i = j + 1
  end
end

-- The whole of s as a type: its names referenced, or nil and why.
function M.type(s)
  local refs = {}
  local j, why = parse_type(s, 1, refs)
  if not j then return nil, why end
  if j <= #s then return nil, "more after the type at " .. j end
  return refs
end

-- A type at the start of s followed by " LINE": the type's text, its names and the line; or nil and why.
local function typed_line(s)
  local refs = {}
  local j, why = parse_type(s, 1, refs)
  if not j then return nil, why end
  local line = s:match("^ (%S.*)$", j)
  if not line then return nil, "no line after the type" end
  return s:sub(1, j - 1), refs, line
end

-- The reader's state for one line: each form's handler, (state, rest) -> why or nil.
local TAGS = {}
function TAGS.meta(_, rest) if not rest:match("^[%w_.]+$") then return "a bad @meta" end end
function TAGS.class(st, rest)
  local name, parent = rest:match("^([%a_][%w_.]*)$")
  if not name then name, parent = rest:match("^([%a_][%w_.]*): ([%a_][%w_.]*)$") end
  if not name then return "a bad @class" end
  if st.classes[name] then return "the class " .. name .. " twice" end
  st.class = { name = name, fields = {}, methods = {}, parent = parent }
  st.classes[name] = st.class
  if parent then st.refs[#st.refs + 1] = { parent, st.n } end
end
function TAGS.field(st, rest)
  local name, after = rest:match('^%["([%a_][%w_]*)"%] (.*)$')
  if not name then name, after = rest:match("^([%a_][%w_]*)%?? (.*)$") end
  if not name or not st.class then return "a bad @field, or one outside a class" end
  local typ, refs, line = typed_line(after)
  if not typ then return "@field " .. name .. ": " .. refs end
  if st.class.fields[name] then return "the field " .. name .. " twice" end
  st.class.fields[name] = { type = typ, line = line }
  for _, r in ipairs(refs) do st.refs[#st.refs + 1] = { r, st.n } end
end
function TAGS.alias(st, rest)
  local name, typ = rest:match("^([%a_][%w_.]*) (.+)$")
  name = name or rest:match("^([%a_][%w_.]*)$")
  if not name then return "a bad @alias" end
  if st.aliases[name] then return "the alias " .. name .. " twice" end
  st.alias = { name = name, values = {}, type = typ }
  st.aliases[name] = st.alias
  if typ then
    local refs, why = M.type(typ)
    if not refs then return "@alias " .. name .. ": " .. why end
    for _, r in ipairs(refs) do st.refs[#st.refs + 1] = { r, st.n } end
  end
end
function TAGS.param(st, rest)
  local name, optional, typ = rest:match("^([%a_][%w_]*)(%??) (.+)$")
  if not name then return "a bad @param" end
  local refs, why = M.type(typ)
  if not refs then return "@param " .. name .. ": " .. why end
  for _, r in ipairs(refs) do st.refs[#st.refs + 1] = { r, st.n } end
  st.params[#st.params + 1] = { name = name, type = typ, optional = optional == "?" }
end
TAGS["return"] = function(st, rest)
  local typ, refs, name = typed_line(rest)
  if not typ then return "@return: " .. refs end
  if not name:match("^[%a_][%w_]*$") then return "@return " .. typ .. ": its name is no name" end
  for _, r in ipairs(refs) do st.refs[#st.refs + 1] = { r, st.n } end
  st.returns[#st.returns + 1] = { name = name, type = typ }
end

-- A function's line: its annotations checked against its parameters.
local function func(st, line)
  local owner, sep, name, params = line:match("^function ([%a_][%w_]*)([.:])([%a_][%w_]*)%(([^)]*)%) end$")
  if not owner then return "not a form this reader knows" end
  local class = st.locals[owner]
  if not class then return "function of " .. owner .. ", which no local names a class of" end
  local names = {}
  for p in params:gmatch("[^, ]+") do names[#names + 1] = p end
  if #names ~= #st.params then return name .. ": " .. #names .. " parameters, " .. #st.params .. " @param" end
  for i, p in ipairs(st.params) do
    if p.name ~= names[i] then return name .. ": parameter " .. i .. " is " .. names[i] .. ", @param " .. p.name end
  end
  class.methods[name] = { params = st.params, returns = st.returns, method = sep == ":" }
  st.params, st.returns = {}, {}
end

-- Reads the text: { classes = {name = {fields =, methods =}}, aliases = {name = {values =, type =}},
-- problems = {"line N: why", ...} }, every name a type refers to checked as defined.
function M.read(text)
  local st = { classes = {}, aliases = {}, locals = {}, refs = {}, params = {}, returns = {}, problems = {} }
  local n = 0
  for line in (text:gsub("\n$", "") .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    st.n = n
    local why
    local tag, rest = line:match("^%-%-%-@(%a+) ?(.*)$")
    if tag then
      why = TAGS[tag] and TAGS[tag](st, rest) or (not TAGS[tag] and "an unknown tag @" .. tag)
      if tag ~= "alias" then st.alias = nil end
    elseif line:match("^%-%-%-| ") then
      local lit = line:match('^%-%-%-| ("[^"]+")$')
      if not (lit and st.alias and not st.alias.type) then why = "a ---| line not under an @alias NAME" end
      if lit and st.alias then st.alias.values[#st.alias.values + 1] = lit:sub(2, -2) end
    elseif line:match("^local [%a_][%w_]* = {}$") then
      if not st.class then why = "a local before any class" end
      st.locals[line:match("^local ([%a_][%w_]*)")] = st.class
    elseif line:match("^function ") then
      why = func(st, line)
    elseif not (line == "" or line:match("^%-%-") or line:match("^return [%a_][%w_]*$")) then
      why = "not a form this reader knows"
    end
    if why then st.problems[#st.problems + 1] = "line " .. n .. ": " .. why .. ": " .. line end
  end
  for _, r in ipairs(st.refs) do
    local name = r[1]
    if not (M.BUILTIN[name] or st.classes[name] or st.aliases[name]) then
      st.problems[#st.problems + 1] = "line " .. r[2] .. ": the type " .. name .. " is defined nowhere"
    end
  end
  return st
end

return M
