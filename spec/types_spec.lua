-- types/starvideos.lua, the LuaCATS annotations of the public API (fast tier,
-- no network): it is what tools/types.lua makes from config.lua's option tables
-- and the loaded module (`make types`), and the generator refuses an option
-- without its type; it is valid Lua, every annotation line well-formed and
-- every type it names defined (spec/support/luacats.lua: lua-language-server
-- is not a Debian package); and every name docs/reference.md documents (a
-- function, a method, an option, a field of what a call returns, an error kind
-- and field, an event and its fields) has its annotation, read from the page as
-- spec/docs_spec.lua reads it (spec/support/markdown.lua).

local helper = require "spec.helper"
local config = require "starvideos.config"
local markdown = require "spec.support.markdown"
local luacats = require "spec.support.luacats"

local root = helper.root
local section = markdown.section

local function read(path) return assert(helper.read_file(root .. "/" .. path), "cannot read " .. path) end

local TYPES = read("types/starvideos.lua")
local REFERENCE = read("docs/reference.md")
local generator = dofile(root .. "/tools/types.lua")
local T = luacats.read(TYPES)

-- The first line where two texts differ, for a message.
local function first_difference(a, b)
  local n = 0
  local la, lb = (a .. "\n"):gmatch("([^\n]*)\n"), (b .. "\n"):gmatch("([^\n]*)\n")
  while true do
    n = n + 1
    local x, y = la(), lb()
    if x ~= y then return string.format("line %d: committed %q, made %q", n, tostring(x), tostring(y)) end
    if x == nil then return "none" end
  end
end

describe("types/starvideos.lua", function()
  it("is what tools/types.lua makes from the tables now (else: make types)", function()
    local made = generator.render()
    assert.is_true(made == TYPES, "types/starvideos.lua is not what `make types` makes: "
      .. first_difference(TYPES, made))
  end)

  it("is valid Lua (luac5.4 -p, and load)", function()
    local compile = rawget(_G, "loadstring") or load -- (5.1's load takes no string)
    assert.truthy(compile(TYPES, "=types/starvideos.lua"))
    if helper.execute("command -v luac5.4 >/dev/null 2>&1") then
      local out, ok = helper.capture("luac5.4 -p " .. helper.shell_quote(root .. "/types/starvideos.lua") .. " 2>&1")
      assert.is_true(ok, out)
    end
  end)

  it("has only well-formed annotation lines, and every type it names defined", function()
    assert.same({}, T.problems)
    assert.is_true(TYPES:find("^%-%-%-@meta starvideos\n") ~= nil)
  end)
end)

describe("the annotations' reader", function()
  it("finds what is wrong: an unknown type, a bad line, a parameter that is not the function's", function()
    local bad = luacats.read(table.concat({
      "---@class starvideos.X",
      "---@field a strng the a",
      "---@field b string",
      "---@field c fun(x): string the c",
      "---@fiedl d string the d",
      "local X = {}",
      "---@param y string",
      "function X:f(x) end",
      "x = 1",
    }, "\n"))
    local text = table.concat(bad.problems, "\n")
    assert.matches("line 2: the type strng is defined nowhere", text, 1, true)
    assert.matches("line 3: @field b: no line after the type", text, 1, true)
    assert.matches("line 4: @field c: a fun parameter without `name: type`", text, 1, true)
    assert.matches("line 5: an unknown tag @fiedl", text, 1, true)
    assert.matches("line 8: f: parameter 1 is x, @param y", text, 1, true)
    assert.matches("line 9: not a form this reader knows", text, 1, true)
    assert.equal(6, #bad.problems, text)
  end)
end)

describe("tools/types.lua", function()
  -- the generator run with config.lua's tables changed as `change` says, restored after
  local function render_with(change)
    local undo = change()
    local ok, err = pcall(generator.render)
    undo()
    return ok, err
  end

  it("refuses an option of config.lua that has no type, naming it", function()
    local ok, err = render_with(function()
      config.CALLS.wait.planted_option = function() end
      return function() config.CALLS.wait.planted_option = nil end
    end)
    assert.is_false(ok)
    assert.matches("the option planted_option of config.CALLS.wait has no type in tools/types/api.lua", err, 1, true)
    ok, err = render_with(function()
      config.CLIENT.planted_option = function() end
      return function() config.CLIENT.planted_option = nil end
    end)
    assert.is_false(ok)
    assert.matches("the option planted_option of config.CLIENT has no type", err, 1, true)
  end)

  it("refuses a type of an option config.lua no longer has, and a call's options no function takes", function()
    local before = generator.render()
    local ok, err = render_with(function()
      local saved = config.CALLS.pending
      config.CALLS.pending = nil
      return function() config.CALLS.pending = saved end
    end)
    assert.is_false(ok)
    assert.matches("a signature names @pending, not a call", err, 1, true)
    ok, err = render_with(function()
      local saved = config.CALLS.tasks
      config.CALLS.tasks = nil
      return function() config.CALLS.tasks = saved end
    end)
    assert.is_false(ok)
    assert.matches("tools/types/api.lua's CALLS_BY names tasks, which config.CALLS has not", err, 1, true)
    ok, err = render_with(function()
      config.CALLS.planted_call = {}
      return function() config.CALLS.planted_call = nil end
    end)
    assert.is_false(ok)
    assert.matches("no signature takes config.CALLS.planted_call's options", err, 1, true)
    assert.equal(before, generator.render()) -- and the tables as they were make the same text again
  end)
end)

-- ------------------------------------------------------------ docs/reference.md's names

local MODULE, CLIENT = assert(T.classes["starvideos"]), assert(T.classes["starvideos.Client"])

-- The names of the backticked identifiers of a text, but `x`'s (another call
-- named) and literals; what is in parentheses (asides, links) dropped first.
local LITERALS = { ["true"] = true, ["false"] = true, ["nil"] = true }
local function names(text)
  local list = {}
  text = text:gsub("%b()", "")
  for name, after in text:gmatch("`([%a_][%w_]*)`(.?.?)") do
    if after ~= "'s" and not LITERALS[name] then list[#list + 1] = name end
  end
  return list
end

-- The sentence of text that goes on after `start` (a plain string): up to the first
-- ". " or ".\n" outside a code span, or a blank line; nil when start is not there.
local function sentence(text, start)
  local i = text:find(start, 1, true)
  if not i then return nil end
  i = i + #start
  local code, j = false, i
  while j <= #text do
    local c = text:sub(j, j)
    if c == "`" then code = not code
    elseif not code and (c == "." and text:sub(j + 1, j + 1):match("^%s?$") or text:sub(j, j + 1) == "\n\n") then
      break
    end
    j = j + 1
  end
  return text:sub(i, j)
end

-- The rows of the table under the header whose first cell is `header`: each row's cells.
local function table_rows(text, header)
  local rows, inside = {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:find("^|%s*" .. markdown.plain(header) .. "%s*|") then inside = true
    elseif inside and line:match("^|") then
      if not line:match("^|%-") then
        local cells = {}
        for cell in line:sub(2):gmatch("%s*(.-)%s*|") do cells[#cells + 1] = cell end
        rows[#rows + 1] = cells
      end
    elseif inside then
      break
    end
  end
  return rows
end

-- Whether a class has every field of `list`; else false and the first missing.
local function class_has(class, list)
  for _, name in ipairs(list) do
    if not class.fields[name] then return false, name end
  end
  return true
end

-- The class that has every field of `list`; else nil and the fields missing from
-- the class that has the most of them, and its name.
local function class_with(list)
  local best, best_missing
  for cname, class in pairs(T.classes) do
    local missing = {}
    for _, name in ipairs(list) do
      if not class.fields[name] then missing[#missing + 1] = name end
    end
    if #missing == 0 then return cname end
    if not best_missing or #missing < #best_missing or #missing == #best_missing and cname < best then
      best, best_missing = cname, missing
    end
  end
  return nil, table.concat(best_missing, ", ") .. " (not in " .. best .. ")"
end

-- The function a heading documents: its signature in the annotations.
local function documented(heading)
  local name = heading:match("^## starvideos%.([%w_]+)$")
  if name then return MODULE.methods[name], MODULE.fields[name] end
  name = heading:match("^## client:([%w_]+)$")
  if name then return CLIENT.methods[name] end
  name = heading:match("^## client%.([%w_]+)$")
  if name then return nil, CLIENT.fields[name] end
end

-- The headings of the page's functions and methods.
local HEADINGS = {}
for h in markdown.prose(REFERENCE):gmatch("\n(## [^\n]+)") do
  if h:find("^## starvideos[.:]") or h:find("^## client[.:]") then HEADINGS[#HEADINGS + 1] = h end
end

-- The options class a function's `opts` parameter names.
local function opts_class(sig)
  for _, p in ipairs(sig and sig.params or {}) do
    if p.name == "opts" or p.name == "fields" then return T.classes[p.type] end
  end
end

describe("every name docs/reference.md documents has its annotation", function()
  it("every function of the module and method of a client (its ## heading)", function()
    assert.is_true(#HEADINGS >= 30, #HEADINGS .. " headings")
    for _, h in ipairs(HEADINGS) do
      local sig, field = documented(h)
      assert.is_true(sig ~= nil or field ~= nil, "types/starvideos.lua has no annotation for " .. h)
    end
  end)

  it("every option of each function: its table's rows, its opts.X (in prose), its sentence of options", function()
    local checked = 0
    for _, h in ipairs(HEADINGS) do
      local sig = documented(h)
      local text = section(REFERENCE, h)
      local class = opts_class(sig)
      local found = {}
      for _, cells in ipairs(table_rows(text, "option")) do found[#found + 1] = cells[1]:match("^`([%w_]+)`$") end
      for name in text:gsub("\n|[^\n]*", ""):gmatch("`opts%.([%w_]+)") do found[#found + 1] = name end
      for _, name in ipairs(found) do
        assert.truthy(class and class.fields[name], h .. ": the option " .. name .. " has no annotation")
        checked = checked + 1
      end
      local options = sentence(text, "The options")
      for _, name in ipairs(options and names(options) or {}) do
        local param = false
        for _, p in ipairs(sig.params) do param = param or p.name == name end
        assert.truthy(param or class and class.fields[name], h .. ": " .. name .. " (in \"" .. options
          .. "\") is neither a parameter nor an option of its annotation")
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 90, checked .. " options")
  end)

  it("every field of a table of fields, and of a {name =, ...} a call returns or takes", function()
    local shapes = {}
    for _, h in ipairs { "## Jobs", "## client:plan", "## client:tasks", "## Errors" } do
      local list = {}
      for _, cells in ipairs(table_rows(section(REFERENCE, h), "field")) do
        for name in cells[1]:gmatch("`([%w_]+)`") do list[#list + 1] = name end
      end
      assert.is_true(#list >= 4, h)
      shapes[#shapes + 1] = { h, list }
    end
    for span in markdown.prose(REFERENCE):gmatch("`([^`]+)`") do
      for braces in span:gmatch("%b{}") do
        local inner = braces:sub(2, -2):gsub("%b{}", "")
        local list = {}
        for name in inner:gmatch('%[?"?([%a_][%w_]*)"?%]?%s*=') do list[#list + 1] = name end
        if #list > 0 and not inner:find("%.%.%.%s*$") then shapes[#shapes + 1] = { braces, list } end
      end
    end
    assert.is_true(#shapes >= 15, #shapes .. " shapes")
    for _, shape in ipairs(shapes) do
      local class, miss = class_with(shape[2])
      assert.truthy(class, "no class has every field of " .. shape[1] .. ": " .. tostring(miss))
    end
    assert.truthy(T.classes["starvideos.Job"].methods.cancel, "job:cancel()")
  end)

  it("every error kind, and no other", function()
    local kinds = {}
    for _, cells in ipairs(table_rows(section(REFERENCE, "## Errors"), "`err.kind`")) do
      kinds[#kinds + 1] = cells[1]:match("^`([%w_]+)`$")
    end
    table.sort(kinds)
    local values = {}
    for i, v in ipairs(T.aliases["starvideos.ErrorKind"].values) do values[i] = v end
    table.sort(values)
    assert.equal(12, #kinds)
    assert.same(kinds, values)
    assert.equal("starvideos.ErrorKind", T.classes["starvideos.Error"].fields.kind.type)
  end)

  it("every event, with its fields", function()
    local by_type = {}
    for cname, class in pairs(T.classes) do
      local t = class.fields.type and class.fields.type.type:match('^"(.+)"$')
      if t then by_type[t] = cname end
    end
    local rows = table_rows(section(REFERENCE, "## Events"), "`type`")
    assert.is_true(#rows >= 13, #rows .. " events")
    local fields_of = {}
    for _, cells in ipairs(rows) do
      local t = cells[1]:match("^`([%w_]+)`$")
      local list = {}
      for _, name in ipairs(names((cells[3]:gsub("as `(%w+)`", function(other) return fields_of[other] end)))) do
        list[#list + 1] = name
      end
      fields_of[t] = "`" .. table.concat(list, "`, `") .. "`"
      local class = by_type[t]
      assert.truthy(class, "no annotation of the event " .. t)
      local ok, miss = class_has(T.classes[class], list)
      assert.is_true(ok, "the event " .. t .. "'s field " .. tostring(miss) .. " has no annotation")
    end
    assert.truthy(T.aliases["starvideos.Event"].type:find(by_type.status, 1, true))
  end)

  it("a model's capabilities, a task's fields and a request's", function()
    for _, case in ipairs {
      { "## starvideos.models", "for each model", "starvideos.ModelInfo" },
      { "## Tasks and parameters", "as integers:", "starvideos.Task" },
      { "## Tasks and parameters", "`validate`:", "starvideos.Params" },
    } do
      local text = assert(sentence(assert(section(REFERENCE, case[1])), case[2]), case[2])
      local list = names((text:gsub("once `%w+`", "")))
      assert.is_true(#list >= 8, case[2])
      local ok, miss = class_has(T.classes[case[3]], list)
      assert.is_true(ok, case[1] .. ": " .. tostring(miss) .. " is not a field of " .. case[3])
    end
  end)
end)
