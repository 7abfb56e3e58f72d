-- The fenced blocks of the docs, and the checks spec/hosts/docs_run_spec.lua
-- makes of a block it cannot run here: README.md, docs/*.md and
-- examples/*/README.md of a checkout, each block { file =, n = (its number in
-- the file), lang =, line = (of its opening fence), body = }; a shell line's
-- commands named and known (make targets, the command line's subcommands and
-- flags, Debian packages, LuaRocks flags, files); a Lua block compiled and the
-- starvideos names it uses found; an nginx block tested by nginx -t and its
-- Lua compiled; an output sample's fixed words found in the code.

local helper = require "spec.helper"
local readme = require "spec.support.readme"

local q = helper.shell_quote
local str_format = string.format

local M = {}

-- A page of the checkout (p: its path from the top), its lines joined (flat), and whether it says each phrase (its
-- lines joined: luassert's match for each).
function M.page(p) return (assert(helper.read_file(helper.root .. "/" .. p), p)) end
function M.flat(p) return (M.page(p):gsub("\n%s*", " ")) end
function M.says(p, ...)
  local text = M.flat(p)
  for _, phrase in ipairs { ... } do require("luassert").matches(phrase, text, 1, true) end
end

-- The pages whose blocks are run or checked, as paths from the top of `root`.
function M.pages(root)
  local pages = { "README.md" }
  local p = assert(io.popen("cd " .. q(root) .. " && ls docs/*.md examples/*/README.md 2>/dev/null"))
  for f in p:lines() do pages[#pages + 1] = f end
  p:close()
  return pages
end

-- Every fenced block of the pages of root, in page then text order.
function M.extract(root)
  local list = {}
  for _, file in ipairs(M.pages(root)) do
    local text = assert(helper.read_file(root .. "/" .. file), "cannot read " .. file)
    local n, lineno, open = 0, 0, nil
    for l in (text .. "\n"):gmatch("([^\n]*)\n") do
      lineno = lineno + 1
      local fence, lang = l:match("^(%s*)```%s*([%w_+-]*)%s*$")
      if not open and fence then
        n = n + 1
        open = { file = file, n = n, lang = lang == "" and "-" or lang, line = lineno, lines = {}, indent = #fence }
      elseif open and fence and lang == "" then
        for i, b in ipairs(open.lines) do open.lines[i] = b:sub(open.indent + 1) end
        open.body = table.concat(open.lines, "\n") .. (#open.lines > 0 and "\n" or "")
        open.lines, open.indent = nil, nil
        list[#list + 1] = open
        open = nil
      elseif open then
        open.lines[#open.lines + 1] = l
      end
    end
    assert(not open, file .. ": a fence opened at line " .. (open and open.line or 0) .. " is never closed")
  end
  return list
end

-- The key a block is classified under: "docs/batch.md#3".
function M.key(b) return b.file .. "#" .. b.n end

-- ------------------------------------------------------------ shell lines

local function words(line)
  local list = {}
  -- a quoted word ("..." or '...') counts as one
  local rest = line
  while true do
    rest = rest:gsub("^%s+", "")
    if rest == "" then break end
    local w, after = rest:match('^("[^"]*")(.*)$')
    if not w then w, after = rest:match("^('[^']*')(.*)$") end
    if not w then w, after = rest:match("^(%S+)(.*)$") end
    list[#list + 1], rest = w, after
  end
  return list
end

-- Each environment variable the library or the command line reads.
local function read_vars(root)
  local out = helper.capture("cd " .. q(root) .. " && grep -rhoE 'getenv\\(\"[A-Z_]+\"\\)' lua bin examples")
  local set = {}
  for name in out:gmatch('getenv%("([A-Z_]+)"%)') do set[name] = true end
  return set
end

-- The help of `starvideos sub` (nil when there is no such subcommand).
local function help_of(root, sub)
  local out, ok = helper.capture("cd " .. q(root) .. " && " .. helper.UNINSTRUMENTED .. "lua5.4 bin/starvideos "
    .. (sub and q(sub) .. " " or "") .. "--help 2>&1")
  return ok and out or nil, out
end

local checkers = {}

-- make [-s] [-C dir] TARGET...: make -n knows every target
function checkers.make(ctx, w)
  local args = {}
  for i = 2, #w do args[#args + 1] = w[i] end
  local out, ok = helper.capture("cd " .. q(ctx.root) .. " && " .. helper.UNINSTRUMENTED
    .. "-u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n " .. table.concat(args, " ") .. " 2>&1")
  if not ok then return "`make -n " .. table.concat(args, " ") .. "` fails: " .. out:sub(1, 400) end
end

-- [bin/]starvideos SUB --flag...: the subcommand and each flag are in its --help
local function starvideos(ctx, w)
  local sub = w[2]
  if not sub or sub:find("^%-") then
    return (help_of(ctx.root)) and nil or "`starvideos --help` fails"
  end
  local help, out = help_of(ctx.root, sub)
  if not help then return str_format("`starvideos %s --help` fails: %s", sub, out:sub(1, 300)) end
  for i = 3, #w do
    local flag = w[i]:match("^(%-%-[%w-]+)")
    if flag and not help:find("\n%s+" .. flag:gsub("%p", "%%%0") .. "[%s=]") then
      return str_format("`starvideos %s --help` lists no %s", sub, flag)
    end
  end
end
checkers.starvideos = starvideos
checkers["bin/starvideos"] = starvideos

-- apt-get install PKG...: each a package installed here (when dpkg is)
checkers["apt-get"] = function(_, w)
  if w[2] ~= "install" then return "apt-get " .. tostring(w[2]) .. ": only install is checked" end
  if not helper.execute("command -v dpkg-query >/dev/null 2>&1") then return end
  for i = 3, #w do
    local status = helper.capture("dpkg-query -W -f='${Status}' " .. q(w[i]) .. " 2>&1")
    if status ~= "install ok installed" then return "the package " .. w[i] .. " is not installed here: " .. status end
  end
end

-- luarocks [--lua-version=V] [--lua-dir=D] [--tree T] SUB --flag... [VAR=dir]: the subcommand's help
-- lists each flag, each VAR=dir is a folder, the rockspec is in the checkout
checkers.luarocks = function(ctx, w)
  if not helper.execute("command -v luarocks >/dev/null 2>&1") then return "luarocks is not installed" end
  local i, global, lua_dir = 2, {}, nil
  while w[i] and w[i]:find("^%-%-") do -- the options before the subcommand (--tree takes a word, or =)
    global[#global + 1] = w[i]
    lua_dir = w[i]:match("^%-%-lua%-dir=(%S+)$") or lua_dir
    local tree = w[i]:match("^%-%-tree=(%S+)$")
    if w[i] == "--tree" then tree, i = w[i + 1] or "", i + 1 end
    -- (a tree of the home folder, or the Lua's own given with --lua-dir: OpenResty's LuaJIT)
    if tree and not (tree:find("^~/") or tree == lua_dir) then return "--tree outside the home folder: " .. tree end
    i = i + 1
  end
  local sub = w[i]
  local version = table.concat(global, " "):match("%-%-lua%-version=(%S+)")
  local lr = "luarocks " .. (version and "--lua-version=" .. version .. " " or "")
  local help, ok = helper.capture(lr .. "help " .. q(sub or "") .. " 2>&1")
  help = help .. helper.capture(lr .. "help 2>&1") -- (--local, --tree: the general options)
  if not (sub and ok) then return "`luarocks help " .. tostring(sub) .. "` fails: " .. help:sub(1, 300) end
  for j = i + 1, #w do
    local flag = w[j]:match("^(%-%-[%w-]+)")
    local var, dir = w[j]:match("^([A-Z_]+)=(%S+)$")
    if flag and not help:find(flag:gsub("%p", "%%%0") .. "%f[^%w-]") then
      return "`luarocks help " .. sub .. "` lists no " .. flag
    end
    if var and not helper.execute("test -d " .. q(dir)) then return w[j] .. ": no such folder" end
  end
  if sub == "make" and not helper.exists(ctx.root .. "/rockspec/starvideos-scm-1.rockspec") then
    return "luarocks make: no rockspec/starvideos-scm-1.rockspec"
  end
end

-- cc ... : each -I folder and each input file exists in the checkout (once built)
checkers.cc = function(ctx, w)
  for i = 2, #w do
    local inc = w[i]:match("^%-I(.+)$")
    local path = inc or (w[i]:find("^[^-]") and w[i - 1] ~= "-o" and w[i])
    if path then
      local full = path:find("^/") and path or ctx.root .. "/" .. path
      if not helper.execute("test -e " .. q(full)) then return "cc: no " .. path end
    end
  end
end

-- /usr/sbin/nginx -p DIR -c FILE: nginx is there and FILE is the checkout's (or the page's)
checkers["/usr/sbin/nginx"] = function(ctx, w)
  if not helper.execute("test -x /usr/sbin/nginx") then return "no /usr/sbin/nginx" end
  for i = 2, #w do
    if w[i] == "-c" and w[i + 1] ~= "nginx.conf" and not helper.exists(ctx.root .. "/" .. w[i + 1]) then
      return "nginx -c " .. w[i + 1] .. ": no such file in the checkout"
    end
  end
end

-- love GAME --flag...: the game's folder, and each flag one its main.lua reads
checkers.love = function(ctx, w)
  local main = helper.read_file(ctx.root .. "/" .. tostring(w[2]) .. "/main.lua")
  if not main then return "love " .. tostring(w[2]) .. ": no main.lua there" end
  for i = 3, #w do
    if w[i]:find("^%-%-") and not main:find('"' .. w[i] .. '"', 1, true) then
      return "love " .. w[2] .. ": its main.lua reads no " .. w[i]
    end
  end
end

-- curl [options] URL: a URL on the loopback or in a variable the docs set
checkers.curl = function(_, w)
  local url = w[#w]:gsub("^['\"]", ""):gsub("['\"]$", "")
  if not (url:find("^http://127%.0%.0%.1:%d+/") or url:find("^%$STARVIDEOS_BASE_URL/")) then
    return "curl to " .. url .. ": not the loopback"
  end
end

-- plain commands: they exist here
for _, name in ipairs { "mkdir", "touch", "chown", "kill", "cd", "lua5.4", "luajit", "python3" } do
  checkers[name] = function(_, w)
    if not helper.execute("command -v " .. q(w[1]) .. " >/dev/null 2>&1") then return "no command " .. w[1] end
  end
end

-- nil when every command of a shell line is one the checkout or this machine
-- has (see the checkers above), else what is wrong.  `made`: files earlier
-- lines make (a program they build).
function M.check_line(ctx, line, made)
  ctx.vars = ctx.vars or read_vars(ctx.root)
  for each in (line .. "&&"):gmatch("%s*(.-)%s*&&") do
    local part = each:gsub("%s*&$", "")
    local w = words(part)
    if w[1] == "sudo" then table.remove(w, 1) end
    if w[1] == "export" then table.remove(w, 1) end
    while w[1] and w[1]:match("^[%a_][%w_]*=") do
      local var = w[1]:match("^([%a_][%w_]*)=")
      if var:find("^STARVIDEOS_") and not ctx.vars[var] then return "no code reads $" .. var end
      table.remove(w, 1)
    end
    if w[1] == "eval" then
      local inner = assert(part:match('^eval "%$%((.*)%)"$'), "an eval other than eval \"$(...)\": " .. part)
      local why = M.check_line(ctx, inner, made)
      if why then return why end
    elseif w[1] then
      local fn = checkers[w[1]]
      if made and made[w[1]] then fn = function() end end
      if not fn then return "no rule to check the command " .. w[1] end
      local why = fn(ctx, w)
      if why then return why end
    end
  end
end

-- The commands of a sh block (readme.sh_lines: continuations joined, comments dropped).
M.sh_lines = readme.sh_lines

-- ------------------------------------------------------------ Lua, nginx, samples

-- The names the module exports and the methods a client has.
local function api_names()
  local module = require "starvideos"
  local names, methods = {}, {}
  for k in pairs(module) do names[k] = true end
  local client = module.new { api_key = "k", base_url = "http://127.0.0.1:9" }
  local mt = getmetatable(client)
  local index = mt and mt.__index
  for k in pairs(type(index) == "table" and index or {}) do methods[k] = true end
  client:close()
  return names, methods
end

-- nil when the Lua text compiles (under lua5.4 and luajit: `vms`) and every
-- starvideos.NAME and client:METHOD it uses exists, else what is wrong.
function M.check_lua(text, vms)
  for _, vm in ipairs(vms or { "lua5.4" }) do
    local path = os.tmpname()
    helper.write_file(path, text)
    local out, ok = helper.capture(helper.UNINSTRUMENTED .. vm .. " -e " .. q(str_format(
      "local f = assert(io.open(%q)) local s = f:read('*a') f:close() assert((loadstring or load)(s, '=block'))", path))
      .. " 2>&1")
    os.remove(path)
    if not ok then return vm .. " does not compile it: " .. out end
  end
  local names, methods = api_names()
  for name in text:gmatch("%f[%w_/]starvideos%.([%a_][%w_]*)") do
    if not names[name] then return "starvideos." .. name .. " does not exist" end
  end
  for name in text:gmatch('require%("starvideos"%)%.([%a_][%w_]*)') do
    if not names[name] then return "starvideos." .. name .. " does not exist" end
  end
  for name in text:gmatch("client:([%a_][%w_]*)") do
    if not methods[name] then return "client:" .. name .. " does not exist" end
  end
end

-- The Lua of each *_by_lua_block { ... } of an nginx text.
function M.nginx_lua(text)
  local list = {}
  for start in text:gmatch("_by_lua_block%s*{()") do
    local depth, i = 1, start
    while depth > 0 and i <= #text do
      local c = text:sub(i, i)
      if c == "{" then depth = depth + 1 elseif c == "}" then depth = depth - 1 end
      i = i + 1
    end
    list[#list + 1] = text:sub(start, i - 2)
  end
  return list
end

-- nil when nginx -t accepts the text (`wrap` puts it in a whole nginx.conf:
-- the text given a folder for nginx's files) and its Lua compiles under
-- LuaJIT with the starvideos names it uses, else what is wrong.
function M.check_nginx(text, wrap, dir)
  if not helper.execute("test -x /usr/sbin/nginx") then return "no /usr/sbin/nginx" end
  helper.write_file(dir .. "/nginx.conf", wrap(text, dir))
  local out, ok = helper.capture(helper.UNINSTRUMENTED .. "/usr/sbin/nginx -q -t -p " .. q(dir .. "/") .. " -c "
    .. q(dir .. "/nginx.conf") .. " 2>&1")
  if not ok then return "nginx -t: " .. out end
  local lua = M.nginx_lua(text)
  if #lua == 0 and text:find("_by_lua") then return "a *_by_lua_block whose Lua was not found" end
  for _, chunk in ipairs(lua) do
    local why = M.check_lua(chunk, { "luajit" })
    if why then return why end
  end
end

-- The words of a sample line that the code must say: its runs of `min` (3)
-- or more plain words (ids, numbers, paths, quoted text and times left out);
-- with `min` 1, each plain word (a log line's words are its fields' values).
function M.phrases(line, min)
  local list, run = {}, {}
  local function flush()
    if min == 1 then
      for _, w in ipairs(run) do list[#list + 1] = w end
    elseif #run >= (min or 3) then
      list[#list + 1] = table.concat(run, " ")
    end
    run = {}
  end
  for w in line:gmatch("%S+") do
    if w:find("^[%a][%a']*[,:;]?$") and not w:find("^video_") then
      local bare, punct = w:match("^(.-)([,:;]?)$")
      run[#run + 1] = bare
      if punct ~= "" then flush() end
    else
      flush()
    end
  end
  flush()
  return list
end

-- The code's text: lua/, bin/ and csrc/ of root, one string (cached per root).
local code_cache = {}
function M.code(root)
  if not code_cache[root] then
    code_cache[root] = helper.capture("cd " .. q(root) .. " && find lua bin csrc examples -type f "
      .. "\\( -name '*.lua' -o -name '*.c' -o -name '*.h' -o -name starvideos \\) -exec cat {} +")
      :gsub("%s+", " ")
  end
  return code_cache[root]
end

-- nil when every phrase of every line of a sample is in the code, else the first missing.
function M.check_sample(root, body, min)
  local code, n = M.code(root), 0
  for line in body:gmatch("[^\n]+") do
    for _, phrase in ipairs(M.phrases(line, min)) do
      n = n + 1
      local found = phrase:find(" ", 1, true) and code:find(phrase, 1, true)
        or code:find("%f[%w_]" .. phrase:gsub("%p", "%%%0") .. "%f[^%w_]")
      if not found then return "the code never says \"" .. phrase .. "\"" end
    end
  end
  if n == 0 then return "no phrase to look for" end
end

return M
