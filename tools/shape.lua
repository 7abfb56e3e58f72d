-- The shape of the library's Lua (make lint runs it): every module of
-- lua/starvideos/ but the tools (cli/, emulator/), its lines, its longest
-- function, the layer it sits in, the files and lines of each layer, and the
-- require graph; and of its C: every function of csrc/ but test/, fuzz/ and
-- bench/, and of the rocks' (rocks/<rock>/csrc/).  A module over MAX_LINES lines is an alarm it prints (a module
-- is cut by concept, never packed to a number: ../shared/STYLE.md), not a failure.  Fails (exit 1), naming the
-- culprit, on a function (Lua or C) over MAX_FUNCTION lines, a require cycle, or a require against the layers' order
-- (LAYERS), or a module without INTERPRETED (docs/architecture.md's other rules).  Runs on any Lua.
--
--   lua tools/shape.lua [ROOT]        (ROOT: the checkout, default .)
local root = (arg[1] or "."):gsub("/+$", "")
local MAX_LINES, MAX_FUNCTION = 400, 60
local INTERPRETED = 'local jit = rawget(_G, "jit") if jit then jit.off(true, true) end'

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
  return (file:gsub("^rocks/[%w_-]+/", ""):gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."))
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

-- The starvideos modules a source requires, at its top or inside a function
-- (require "x", require("x"), pcall(require, "x")): name -> the line of the first.
local function requires(src)
  local out = {}
  for _, pattern in ipairs { "()require%s*%(?%s*[\"'](starvideos[%w_.]*)[\"']",
      "()pcall%s*%(%s*require%s*,%s*[\"'](starvideos[%w_.]*)[\"']" } do
    for at, name in src:gmatch(pattern) do
      local _, nl = src:sub(1, at):gsub("\n", "")
      if not out[name] or out[name] > nl + 1 then out[name] = nl + 1 end
    end
  end
  return out
end

-- The layers' order (docs/architecture.md#the-layers): a module's layer is its folder; the
-- modules at the top are the core's but the entry modules, which wire options to layers and
-- may load any.  A layer requires its own modules and those of the layers it lists: core ->
-- records -> fleet; extras and nginx beside each other, above the core (keep, of extras, names
-- its files as a journal does); none requires an entry module.
local ENTRY = { ["starvideos"] = true, ["starvideos.client"] = true, ["starvideos.client_ledger"] = true }
-- The extension points' modules (sink/, ledger/, references/, observe/, command/: docs/architecture.md
-- "Extension points")
-- are their rocks' entries into the core: each may load the layers of its rock.
-- needs/ is each rock's check of the core's version (rocks/needs.lua), which its entries load first.
local LAYERS = { core = {}, records = { "core" }, fleet = { "core", "records" }, extras = { "core", "records" },
  storage = { "core" }, needs = { "core" },
  nginx = { "core" }, sink = { "core", "storage", "needs" }, references = { "core", "storage", "needs" },
  ledger = { "core", "records", "fleet", "needs" },
  observe = { "core", "needs" }, command = { "core", "fleet", "needs" } }

local function layer_of(file, name)
  if ENTRY[name] then return "entry" end
  return file:match("^[%w_/-]-lua/starvideos/([%w_]+)/") or "core"
end

-- Each require against LAYERS, as a line of bad: the module, its layer, the require and its line.
local function check_layers(modules, graph, bad)
  local layer, file = {}, {}
  for _, m in ipairs(modules) do layer[m.name], file[m.name] = layer_of(m.file, m.name), m.file end
  for _, m in ipairs(modules) do
    local from, may = layer[m.name], { layer[m.name] }
    for _, l in ipairs(LAYERS[from] or {}) do may[#may + 1], may[l] = l, true end
    local why = LAYERS[from] and "against the layers' order: " .. from .. " may require " .. table.concat(may, ", ")
      or "a layer tools/shape.lua does not declare"
    local to = {}
    for t in pairs(graph[m.name]) do if layer[t] then to[#to + 1] = t end end
    table.sort(to)
    for _, t in ipairs(to) do
      if from ~= "entry" and layer[t] ~= from and not may[layer[t]] then
        bad[#bad + 1] = string.format("%s:%d: %s (%s) requires %s (%s), %s", file[m.name], graph[m.name][t], m.name,
          from, t, layer[t], why)
      end
    end
  end
  return layer
end

-- A cfg field that holds a function returning a module (cfg.x = function() return require "m" end): a layer
-- threaded through the core's options.  The core finds another rock's work by its extension points
-- (lua/starvideos/extension.lua), never by a module handed around in the cfg.
local function module_hooks(file, code, bad)
  local at = 1
  while true do
    local s, e, field = code:find("cfg%.([%w_]+)%s*=%s*function%s*%(%s*%)%s*return%s+require%f[^%w_]", at)
    if not s then return end
    local _, line = code:sub(1, s):gsub("\n", "")
    bad[#bad + 1] = string.format("%s:%d: cfg.%s holds a function returning a module (use an extension point: "
      .. "lua/starvideos/extension.lua)", file, line + 1, field)
    at = e + 1
  end
end

local bad, alarms, modules, graph = {}, {}, {}, {}
for _, file in ipairs(listing("find lua/starvideos rocks/*/lua/starvideos "
  .. "-name '*.lua' -not -path '*/cli/*' -not -path '*/emulator/*'")) do
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
  if lines > MAX_LINES then
    alarms[#alarms + 1] = string.format("%s: %d lines (past %d: its concepts apart?)", file, lines, MAX_LINES)
  end
  if not src:find("\n" .. INTERPRETED, 1, true) then bad[#bad + 1] = file .. ": no line " .. INTERPRETED end
  module_hooks(file, code_of(src), bad)
  local name = module_of(file)
  modules[#modules + 1] = { name = name, file = file, lines = lines, longest = longest }
  graph[name] = requires(code_of(src, true))
end

local layer_of_module = check_layers(modules, graph, bad)
local layers, total = {}, { files = 0, lines = 0 }
for _, m in ipairs(modules) do
  local l = layer_of_module[m.name]
  layers[l] = layers[l] or { files = 0, lines = 0 }
  for _, count in ipairs { layers[l], total } do count.files, count.lines = count.files + 1, count.lines + m.lines end
end

table.sort(modules, function(a, b) return a.lines > b.lines end)
print("modules (lines, longest function, layer):")
for _, m in ipairs(modules) do
  print(string.format("  %5d  %-30s %3d lines at line %-4s %s", m.lines, m.name, m.longest.lines,
    m.longest.line or "-", layer_of_module[m.name]))
end
print("layers (files, lines):")
local names = {}
for k in pairs(layers) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do print(string.format("  %3d  %5d  %s", layers[k].files, layers[k].lines, k)) end
print(string.format("  %3d  %5d  in all", total.files, total.lines))

-- the require graph, and any cycle in it
print("requires:")
local sorted = {}
for name in pairs(graph) do sorted[#sorted + 1] = name end
table.sort(sorted)
for _, name in ipairs(sorted) do
  local to = {}
  for t in pairs(graph[name]) do if graph[t] then to[#to + 1] = t end end
  table.sort(to)
  print(string.format("  %-30s %-8s -> %s", name, layer_of_module[name], #to > 0 and table.concat(to, ", ") or "-"))
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
-- preprocessor lines blanked, newlines kept (keep_strings: strings and
-- preprocessor lines kept).
local function c_code_of(src, keep_strings)
  local out, i, n, line_start = {}, 1, #src, true
  while i <= n do
    local c = src:sub(i, i)
    if line_start and src:match("^[ \t]*#", i) then -- a directive, with its continuation lines
      local e = i
      repeat e = (src:find("\n", e, true) or n + 1) + 1 until src:sub(e - 2, e - 2) ~= "\\" or e > n
      out[#out + 1] = (keep_strings and src:sub(i, e - 2) or blank(src:sub(i, e - 2))) .. (e - 1 <= n and "\n" or "")
      i = e
    elseif src:sub(i, i + 1) == "/*" then
      i = blanked(out, src, i, select(2, src:find("*/", i + 2, true)) or n)
    elseif src:sub(i, i + 1) == "//" then
      i = blanked(out, src, i, (src:find("\n", i, true) or n + 1) - 1)
    elseif c == '"' or c == "'" then
      i = quoted(out, src, i, keep_strings)
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
for _, file in ipairs(listing("find csrc rocks \\( -name '*.c' -o -name '*.h' \\) -not -path 'csrc/test/*' "
  .. "-not -path 'csrc/fuzz/*' -not -path 'csrc/bench/*' -not -path 'rocks/*/lua/*'")) do
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

-- The rocks (rockspec/, the core's; rocks/<rock>/, each other's): the core rock's files name no module of another rock,
-- each rock installs its folder.
local here = (arg[0] or ""):match("^(.*)[/\\][^/\\]*$") or "."
local rockspecs = dofile(here .. "/shape_rocks.lua")(root, bad, listing, code_of, c_code_of, module_of)
print(string.format("rocks: %d rockspecs read", rockspecs))

for _, a in ipairs(alarms) do io.stderr:write("shape: alarm: ", a, "\n") end
if bad[1] then
  for _, b in ipairs(bad) do io.stderr:write("shape: ", b, "\n") end
  os.exit(1)
end
print("shape: every function within " .. MAX_FUNCTION .. " lines, no require cycle, every require within the layers' "
  .. "order, no module of another rock named in the core's; modules past " .. MAX_LINES .. " lines (alarms): "
  .. #alarms)
