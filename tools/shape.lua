-- The shape of the library's Lua (make lint runs it): every module of
-- lua/starvideos/ but the tools (cli/, emulator/), its lines, its longest
-- function, the layer it sits in, and the require graph; and of its C: every
-- function of csrc/ but test/, fuzz/ and bench/.  Fails (exit 1), naming the
-- culprit, on a module over MAX_LINES lines, a function (Lua or C) over
-- MAX_FUNCTION lines, or a require cycle.  Runs on any Lua.
--
--   lua tools/shape.lua [ROOT]        (ROOT: the checkout, default .)
local root = (arg[1] or "."):gsub("/+$", "")
local MAX_LINES, MAX_FUNCTION = 400, 60

-- The files a find command (run in root) lists, sorted.
local function listing(find)
  local p = assert(io.popen("cd '" .. root .. "' && " .. find .. " 2>/dev/null | sort"))
  local list = {}
  for f in p:lines() do list[#list + 1] = f end
  p:close()
  return list
end

local function blank(s) return (s:gsub("[^\n]", " ")) end

-- src[i, e] blanked onto out: the index after it.
local function blanked(out, src, i, e)
  out[#out + 1] = blank(src:sub(i, e))
  return e + 1
end

-- The string the quote src[i] opens, to its closing quote (or its line's end), onto
-- out, its inside blanked unless keep: the index after it.
local function quoted(out, src, i, keep)
  local c, j, n = src:sub(i, i), i + 1, #src
  while j <= n and src:sub(j, j) ~= c and src:sub(j, j) ~= "\n" do
    j = j + (src:sub(j, j) == "\\" and 2 or 1)
  end
  out[#out + 1] = keep and src:sub(i, j) or c .. blank(src:sub(i + 1, j - 1)) .. c
  return j + 1
end

local function module_of(file)
  return (file:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."))
end

-- The source with comments (and strings, unless keep_strings) blanked,
-- newlines kept, so that words and lines can be read off it.
local function code_of(src, keep_strings)
  local out, i, n = {}, 1, #src
  while i <= n do
    local c = src:sub(i, i)
    local long = src:match("^%-%-%[(=*)%[", i) or src:match("^%[(=*)%[", i)
    if long then
      local open = src:match("^%-%-", i) and 2 or 0
      local close = "]" .. long .. "]"
      local e = src:find(close, i + open + #long + 2, true) or n
      local text = src:sub(i, e + #close - 1)
      out[#out + 1] = (keep_strings and open == 0) and text or blank(text)
      i = e + #close
    elseif src:sub(i, i + 1) == "--" then
      i = blanked(out, src, i, (src:find("\n", i, true) or n + 1) - 1)
    elseif c == '"' or c == "'" then
      i = quoted(out, src, i, keep_strings)
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- Each function's first line and length: {line =, lines =}, in order.
local function functions(code)
  local stack, found, line = {}, {}, 1
  local pos = 1
  while true do
    local s, e, word = code:find("([%a_][%w_]*)", pos)
    if not s then break end
    local _, nl = code:sub(pos, s - 1):gsub("\n", "")
    line = line + nl
    if word == "function" then
      stack[#stack + 1] = { fn = true, line = line }
    elseif word == "if" or word == "do" or word == "repeat" then
      stack[#stack + 1] = { line = line }
    elseif word == "end" or word == "until" then
      local top = table.remove(stack)
      if top and top.fn then found[#found + 1] = { line = top.line, lines = line - top.line + 1 } end
    end
    local _, nl2 = code:sub(s, e):gsub("\n", "")
    line, pos = line + nl2, e + 1
  end
  return found
end

local function requires(src)
  local out = {}
  for name in src:gmatch("require%s*%(?%s*[\"'](starvideos[%w_.]*)[\"']") do out[name] = true end
  return out
end

local bad, modules, graph = {}, {}, {}
for _, file in ipairs(listing("find lua/starvideos -name '*.lua' -not -path '*/cli/*' -not -path '*/emulator/*'")) do
  local f = assert(io.open(root .. "/" .. file, "rb"))
  local src = f:read("*a")
  f:close()
  local _, lines = src:gsub("\n", "")
  local longest = { lines = 0 }
  for _, fn in ipairs(functions(code_of(src))) do
    if fn.lines > longest.lines then longest = fn end
    if fn.lines > MAX_FUNCTION then
      bad[#bad + 1] = string.format("%s:%d: a function of %d lines (at most %d)", file, fn.line, fn.lines, MAX_FUNCTION)
    end
  end
  if lines > MAX_LINES then bad[#bad + 1] = string.format("%s: %d lines (at most %d)", file, lines, MAX_LINES) end
  local name = module_of(file)
  modules[#modules + 1] = { name = name, file = file, lines = lines, longest = longest }
  graph[name] = requires(code_of(src, true))
end

-- the layer of a module: its folder (the client's layer for those at the top)
local layers, total = {}, 0
for _, m in ipairs(modules) do
  local layer = m.file:match("^lua/starvideos/([%w_]+)/") or "client"
  layers[layer] = (layers[layer] or 0) + m.lines
  total = total + m.lines
end

table.sort(modules, function(a, b) return a.lines > b.lines end)
print("modules (lines, longest function):")
for _, m in ipairs(modules) do
  print(string.format("  %5d  %-30s %3d lines at line %s", m.lines, m.name, m.longest.lines, m.longest.line or "-"))
end
print("layers:")
local names = {}
for k in pairs(layers) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do print(string.format("  %5d  %s", layers[k], k)) end
print(string.format("  %5d  in all", total))

-- the require graph, and any cycle in it
print("requires:")
local sorted = {}
for name in pairs(graph) do sorted[#sorted + 1] = name end
table.sort(sorted)
for _, name in ipairs(sorted) do
  local to = {}
  for t in pairs(graph[name]) do if graph[t] then to[#to + 1] = t end end
  table.sort(to)
  print(string.format("  %-30s -> %s", name, #to > 0 and table.concat(to, ", ") or "-"))
end
local state = {}
local function visit(name, path)
  if state[name] == "done" then return end
  if state[name] == "open" then
    local from
    for i, p in ipairs(path) do if p == name then from = i end end
    local cycle = {}
    for i = from, #path do cycle[#cycle + 1] = path[i] end
    cycle[#cycle + 1] = name
    bad[#bad + 1] = "a require cycle: " .. table.concat(cycle, " -> ")
    return
  end
  state[name] = "open"
  path[#path + 1] = name
  local to = {}
  for t in pairs(graph[name] or {}) do if graph[t] then to[#to + 1] = t end end
  table.sort(to)
  for _, t in ipairs(to) do visit(t, path) end
  path[#path] = nil
  state[name] = "done"
end
for _, name in ipairs(sorted) do visit(name, {}) end

-- C: every function of csrc/ but the C tests, fuzz targets and bench baselines
-- (test/, fuzz/, bench/) within MAX_FUNCTION lines, from the line of its name
-- to its closing brace.
-- C source with comments, the insides of strings and characters, and
-- preprocessor lines blanked, newlines kept.
local function c_code_of(src)
  local out, i, n, line_start = {}, 1, #src, true
  while i <= n do
    local c = src:sub(i, i)
    if line_start and src:match("^[ \t]*#", i) then -- a directive, with its continuation lines
      local e = i
      repeat e = (src:find("\n", e, true) or n + 1) + 1 until src:sub(e - 2, e - 2) ~= "\\" or e > n
      out[#out + 1] = blank(src:sub(i, e - 2)) .. (e - 1 <= n and "\n" or "")
      i = e
    elseif src:sub(i, i + 1) == "/*" then
      i = blanked(out, src, i, select(2, src:find("*/", i + 2, true)) or n)
    elseif src:sub(i, i + 1) == "//" then
      i = blanked(out, src, i, (src:find("\n", i, true) or n + 1) - 1)
    elseif c == '"' or c == "'" then
      i = quoted(out, src, i)
    else
      out[#out + 1] = c
      i = i + 1
    end
    line_start = c == "\n" or (line_start and (c == " " or c == "\t"))
  end
  return table.concat(out)
end

-- Each function of code (from `from`, line `line0`): {name =, line =, lines =};
-- the blocks of an extern "C" { ... } are looked into.
local function c_functions(code, found, from, to, line0)
  local pos, line = from, line0
  while true do
    local s, e = code:find("%b{}", pos)
    if not s or s > to then break end
    local seg = code:sub(pos, s - 1)
    local _, nl = seg:gsub("\n", "")
    local name = seg:match("([%a_][%w_]*)%s*%b()%s*$")
    local _, inner = code:sub(s, e):gsub("\n", "")
    if name then
      local _, after = seg:sub(seg:find("[%a_][%w_]*%s*%b()%s*$")):gsub("\n", "")
      found[#found + 1] = { name = name, line = line + nl - after, lines = after + inner + 1 }
    elseif seg:match('extern%s*"%s*"%s*$') then
      c_functions(code, found, s + 1, e - 1, line + nl)
    end
    line, pos = line + nl + inner, e + 1
  end
  return found
end

local c_longest = { lines = 0 }
for _, file in ipairs(listing("find csrc \\( -name '*.c' -o -name '*.h' \\) -not -path 'csrc/test/*' "
  .. "-not -path 'csrc/fuzz/*' -not -path 'csrc/bench/*'")) do
  local f = assert(io.open(root .. "/" .. file, "rb"))
  local code = c_code_of(f:read("*a"))
  f:close()
  for _, fn in ipairs(c_functions(code, {}, 1, #code, 1)) do
    if fn.lines > c_longest.lines then c_longest = { file = file, name = fn.name, line = fn.line, lines = fn.lines } end
    if fn.lines > MAX_FUNCTION then
      bad[#bad + 1] = string.format("%s:%d:%s: a C function of %d lines (at most %d)", file, fn.line, fn.name, fn.lines,
        MAX_FUNCTION)
    end
  end
end
if c_longest.file then
  print(string.format("C: the longest function %s (%s:%d), %d lines", c_longest.name, c_longest.file, c_longest.line,
    c_longest.lines))
end

if bad[1] then
  for _, b in ipairs(bad) do io.stderr:write("shape: ", b, "\n") end
  os.exit(1)
end
print("shape: every module within " .. MAX_LINES .. " lines, every function within " .. MAX_FUNCTION
  .. ", no require cycle")
