-- The rocks' part of tools/shape.lua (CONTRACT.md "Rocks", docs/architecture.md "Extension points"): it reads
-- the rockspecs (rockspec/starvideos-scm-1.rockspec, the core; rocks/<rock>/starvideos-<rock>-scm-1.rockspec,
-- the others, each in its rock's folder) and adds to bad, naming the file and line:
--   * a name of another rock's module (a Lua module, or a C module such as starvideos.redis) in the core rock's
--     files: its Lua modules, its C sources and its command, in code or in a string (a require, a pcall, a
--     name put together from "starvideos.fleet." and a word: any module folder that only other rocks have);
--     comments are not read.  The core finds another rock only by its extension points (extension.lua);
--   * a dependency of the core rock the library does not need (CORE_DEPENDS: lua, lua-cjson; argparse was the
--     command line's, which now reads its line itself);
--   * a product's word (PRODUCT_WORDS: redis, s3, sentinel, cluster, crc16, sigv4, amz ...) in the core rock's
--     code: its Lua, its C (the sources and the headers of their folders) and its command, in a name or in a
--     string, so that no name is built at run time from a word either; comments are not read, nor extension.lua's
--     X.HINTS (HINTS below: the one table of the rocks the core knows, which words a refusal);
--   * rocks/folders.lua (the other rocks' Lua folders, for a checkout's command line) against the rockspecs;
--   * a require by another rock of a core module docs/architecture.md does not list under "What a rock may require
--     of the core" (the core's stated interface to its rocks);
--   * a C file of the core's tree (csrc/: its tests, fuzz targets and benches too) that includes a rock's C
--     (rocks/...), or one of its fuzz targets and benches that names another rock's module: each product's C
--     tests and fuzz targets are its rock's (rocks/<rock>/csrc/test/, rocks/<rock>/csrc/fuzz/).  (csrc/test/'s
--     static_test.c names the emulator to assert that the static library holds no other rock's module;)
--   * a Lua file of lua/ that the core rockspec does not install, or a rock's file of rocks/<rock>/lua that its
--     rockspec does not install (or installs under another module name), or a listed file that is missing:
--     LuaRocks' builtin backend copies lua/ into every rock built at the top of a checkout, so lua/ is the
--     core's alone and each other rock names its files in build.install.lua.
-- Used as `dofile("tools/shape_rocks.lua")(root, bad, listing, code_of, c_code_of, module_of)`: the number of
-- rockspecs read (0: no rockspec/ at root, nothing checked).

-- (tools/rockspec.lua, beside this file)
local load_rockspec = dofile(((debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or ".") .. "/rockspec.lua")

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- (tools/versioned.lua, beside this file: a versioned rockspec made from its scm one)
local versioned = dofile(((debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$")) or ".") .. "/versioned.lua")

-- Each versioned rockspec of the checkout (rockspec/, rocks/<rock>/) is what tools/versioned.lua makes of its scm
-- one (`make rockspecs` writes them; `make release` makes its own the same way): none kept by hand.
local function check_versioned(root, listing, bad)
  local range = versioned.needs_range(root .. "/rocks/needs.lua")
  for _, path in ipairs(listing("ls rockspec/*.rockspec rocks/*/*.rockspec")) do
    local v = path:match("%-(%d+%.%d+%.%d+)%-1%.rockspec$")
    if v then
      local scm = path:sub(1, -#v - #"-1.rockspec" - 1) .. "scm-1.rockspec"
      local text = read(root .. "/" .. scm)
      local want, err
      if text then want, err = versioned.make(text, scm, v, range) else err = "no " .. scm end
      if want ~= read(root .. "/" .. path) then
        bad[#bad + 1] = string.format("%s: not what tools/versioned.lua makes of %s (%s)", path, scm,
          err or "make rockspecs writes it")
      end
    end
  end
end

-- The range of the core rocks/needs.lua checks as a product rock loads (its RANGE, the one place of it) against
-- each product rock's rockspecs: the release ones' dependency is "starvideos" and that range, the scm ones' its
-- lower bound; and each product rock installs rocks/needs.lua as starvideos.needs.<rock>.
local function check_range(root, rocks, listing, bad)
  local text = read(root .. "/rocks/needs.lua") or ""
  local lo_op, lo, hi_op, hi = text:match('\nlocal RANGE = { "(>=)", "([%d.]+)", "(<)", "([%d.]+)" }')
  if not lo then
    bad[#bad + 1] = "rocks/needs.lua: no line 'local RANGE = { \">=\", \"X.Y\", \"<\", \"X.Z\" }'"
    return
  end
  local want = { scm = "starvideos " .. lo_op .. " " .. lo,
    release = "starvideos " .. lo_op .. " " .. lo .. ", " .. hi_op .. " " .. hi }
  for i = 2, #rocks do
    local short = rocks[i].package:gsub("^starvideos%-", "")
    local needs = "starvideos.needs." .. short
    if rocks[i].lua[needs] ~= rocks[i].dir .. "/starvideos/needs/" .. short .. ".lua" then
      bad[#bad + 1] = string.format("%s: installs no %s (rocks/needs.lua, linked from %s/starvideos/needs/%s.lua)",
        rocks[i].path, needs, rocks[i].dir, short)
    end
    for _, path in ipairs(listing("ls rocks/" .. short .. "/*.rockspec")) do
      local spec = load_rockspec(root .. "/" .. path)
      local which = path:match("%-scm%-1%.rockspec$") and "scm" or "release"
      local dep
      for _, d in ipairs(spec and spec.dependencies or {}) do if d:match("^starvideos%s") then dep = d end end
      if dep ~= want[which] then
        bad[#bad + 1] = string.format("%s: depends on %s, not on %q (rocks/needs.lua's RANGE)", path,
          tostring(dep), want[which])
      end
    end
  end
end

-- The rocks: { {package =, path =, dir = (rocks/<rock>/lua, nil for the core), lua = {module = file},
-- lib = {module = true}, c = {file}, bin = {file}} }, the core first.
local function rocks_of(root, listing)
  local list = {}
  local core = load_rockspec(root .. "/rockspec/starvideos-scm-1.rockspec")
  if not core then return list end
  local r = { package = core.package, path = "rockspec/starvideos-scm-1.rockspec", lua = {}, lib = {}, c = {},
    bin = {} }
  for name, m in pairs(core.build.modules or {}) do
    if type(m) == "string" then r.lua[name] = m
    else
      r.lib[name] = true
      for _, src in ipairs(m.sources or m) do r.c[#r.c + 1] = src end
    end
  end
  for _, file in pairs((core.build.install or {}).bin or {}) do r.bin[#r.bin + 1] = file end
  list[1] = r
  for _, path in ipairs(listing("find rocks -mindepth 2 -maxdepth 2 -name '*-scm-1.rockspec'")) do
    local spec = load_rockspec(root .. "/" .. path)
    local install = spec.build.install or {}
    local o = { package = spec.package, path = path, dir = "rocks/" .. spec.package:gsub("^starvideos%-", "") .. "/lua",
      lua = {}, lib = {}, core_dep = false }
    for _, d in ipairs(spec.dependencies or {}) do
      if d:match("^starvideos%s") or d == "starvideos" then o.core_dep = d end
    end
    for name, file in pairs(install.lua or {}) do o.lua[name] = file end
    for name in pairs(install.lib or {}) do o.lib[name] = true end
    for name, m in pairs(spec.build.modules or {}) do
      if type(m) == "string" and m:match("%.lua$") then o.lua[name] = m else o.lib[name] = true end
    end
    list[#list + 1] = o
  end
  return list
end

-- The line of text's byte at.
local function line_at(text, at)
  local _, lines = text:sub(1, at):gsub("\n", "")
  return lines + 1
end

-- Each name of another rock's module (or of a folder only other rocks have) in code, onto bad.
local function check_names(file, code, others, folders, bad)
  for at, name, dot in code:gmatch("()(starvideos%.[%w_%.]*[%w_])(%.?)") do
    local rock = others[name] or (dot == "." and folders[name .. "."])
    if rock then
      bad[#bad + 1] = string.format("%s:%d: names %s, %s of the %s rock (the core finds another rock only through "
        .. "its extension points: lua/starvideos/extension.lua)", file, line_at(code, at), name .. dot,
        dot == "." and "a module folder" or "a module", rock)
    end
  end
end

-- The words of the other rocks' products: their names, their schemes and what only they speak (a Redis
-- Sentinel or Cluster, its slot's crc16; S3's SigV4, x-amz- headers and ETag); matched whole, in any case, so that
-- sv_redis_slot and "x-amz-checksum" count and "redistribute" does not.
local PRODUCT_WORDS = { "redis", "rediss", "hiredis", "s3", "sigv4", "amz", "sentinel", "cluster", "crc16", "etag" }
-- What a sink's rock owns (docs/architecture.md "The sink interface"): its option's fields (cfg.storage's), its
-- states' kinds (the bucket's "upload", the references' "refs"), patterns of the core's code (lowercase).
local SINK_NAMES = { ["cfg.storage"] = "cfg%.storage", ['"upload"'] = "[\"']upload[\"']",
  ['"refs"'] = "[\"']refs[\"']" }
-- The one place of the core that names the rocks it ships (issue 54 item 2: "one table of hints, used only to
-- word a refusal"): a file and the table constructor assigned there, whose words are not counted.
local HINTS = { file = "lua/starvideos/extension.lua", table = "X.HINTS" }

-- code with the constructor of HINTS.table (`X.HINTS = { ... }`, its braces matched) blanked, its lines kept.
local function without_hints(code)
  local from = code:match("\n" .. HINTS.table:gsub("%.", "%%.") .. "%s*=%s*(){")
  local to = from and select(2, code:find("%b{}", from))
  if not to then return code end
  return code:sub(1, from - 1) .. code:sub(from, to):gsub("[^\n]", " ") .. code:sub(to + 1)
end

-- Each product word in code (comments blanked, strings kept) onto bad.
local function check_words(file, code, bad)
  if file == HINTS.file then code = without_hints(code) end
  local low = code:lower()
  for _, w in ipairs(PRODUCT_WORDS) do
    for at in low:gmatch("()%f[%w]" .. w .. "%f[^%w]") do
      bad[#bad + 1] = string.format("%s:%d: names %s, another rock's product (the core finds a rock only "
        .. "through its extension points, and names none, not even to build a name at run time)", file,
        line_at(low, at), w)
    end
  end
  for name, pattern in pairs(SINK_NAMES) do
    -- (host.lua hands the bucket's rock its storage option whole, unread: host:storage())
    for at in (file == "lua/starvideos/host.lua" and name == "cfg.storage" and "" or low):gmatch("()" .. pattern) do
      bad[#bad + 1] = string.format("%s:%d: names %s, a sink's own (its rock checks its options and records its "
        .. "states: docs/architecture.md \"The sink interface\")", file, line_at(low, at), name)
    end
  end
end

-- rocks/folders.lua (bin/starvideos' checkout path) against each other rock's Lua folder, onto bad.
local function check_folders_file(root, rocks, bad)
  local ok, list = pcall(dofile, root .. "/rocks/folders.lua")
  local listed, want = {}, {}
  for _, d in ipairs(ok and type(list) == "table" and list or {}) do listed[d] = true end
  for i = 2, #rocks do
    want[rocks[i].dir] = true
    if not listed[rocks[i].dir] then
      bad[#bad + 1] = string.format("rocks/folders.lua: does not list %s (%s's Lua)", rocks[i].dir, rocks[i].path)
    end
  end
  for d in pairs(listed) do
    if not want[d] then bad[#bad + 1] = "rocks/folders.lua: lists " .. d .. ", no rock's Lua folder" end
  end
end

-- Each Lua file of dir (rocks/<rock>/lua or lua) against the files the rock installs, onto bad.
local function check_folder(r, dir, listing, module_of, bad)
  local listed = {}
  for name, file in pairs(r.lua) do
    listed[file] = name
    if not read(r.root .. "/" .. file) then bad[#bad + 1] = string.format("%s: installs %s, which is missing",
      r.path, file) end
    if file:sub(1, #dir + 1) ~= dir .. "/" then
      bad[#bad + 1] = string.format("%s: installs %s from outside its folder %s/", r.path, file, dir)
    end
  end
  for _, file in ipairs(listing("find " .. dir .. " -name '*.lua'")) do
    local want = module_of(file)
    if not listed[file] then
      bad[#bad + 1] = string.format("%s: in no rockspec (%s installs the Lua files of %s/)", file, r.path, dir)
    elseif listed[file] ~= want then
      bad[#bad + 1] = string.format("%s: %s installs it as %s, not %s", file, r.path, listed[file], want)
    end
  end
end

-- The core modules another rock may require (docs/architecture.md's table under "What a rock may require of the
-- core": each row's first cell): name -> true, or nil when the page has no such table.
local function allowed_of(root)
  local page = read(root .. "/docs/architecture.md") or ""
  local at = page:find("\n## What a rock may require of the core\n", 1, true)
  if not at then return nil end
  local section = page:sub(at + 1):match("^(.-)\n## ") or page:sub(at + 1)
  local list = {}
  for name in section:gmatch("\n| `(starvideos[%w_.]*)` |") do list[name] = true end
  return list
end

-- The window a rock reads of the core (extension.lua's X.WINDOW: part -> {name}) as name sets, and each of its
-- parts the page's table under "What a rock may require of the core" does not list as it is, onto bad.
local function window_of(root, bad)
  local ok, X = pcall(dofile, root .. "/lua/starvideos/extension.lua")
  local window = {}
  if not (ok and type(X) == "table" and type(rawget(X, "WINDOW")) == "table") then
    bad[#bad + 1] = "lua/starvideos/extension.lua: no X.WINDOW (what a rock may use of the core)"
    return window
  end
  local page = read(root .. "/docs/architecture.md") or ""
  page = page:match("\n## What a rock may require of the core\n(.-)\n## ") or ""
  local rows = {}
  for part, names in page:gmatch("\n| `([%w_]+)` | (`[^|]*`) |") do rows[part] = names end
  for part, names in pairs(X.WINDOW) do
    window[part] = {}
    for _, n in ipairs(names) do window[part][n] = true end
    local want = "`" .. table.concat(names, "` `") .. "`"
    if rows[part] ~= want then
      bad[#bad + 1] = string.format("docs/architecture.md: the window's row of %s is not %s (extension.lua's "
        .. "X.WINDOW)", part, want)
    end
    rows[part] = nil
  end
  for part in pairs(rows) do
    bad[#bad + 1] = string.format("docs/architecture.md: the window's row of %s is not extension.lua's", part)
  end
  return window
end

-- Each X.<part>.<name> of a rock's Lua (X: the local its extension.lua is, or a local made of X.<part>) that the
-- window does not give, onto bad.
local function check_window(r, window, code_of, bad)
  for _, file in pairs(r.lua) do
    local src = read(r.root .. "/" .. file)
    local code, strings = src and code_of(src) or "", src and code_of(src, true) or "" -- (strings: the require's)
    local ext = strings:match("local%s+([%a_][%w_]*)%s*=%s*require%s*%(?%s*[\"']starvideos%.extension[\"']")
    local views, reads = {}, {}
    if ext then
      for names, values in code:gmatch("local%s+([%a_][%w_,%s]-)%s*=%s*([^\n]+)") do -- (one local or several)
        local list = {}
        for v in (values .. ","):gmatch("%s*([^,]-)%s*,") do list[#list + 1] = v end
        local i = 0
        for name in names:gmatch("[%a_][%w_]*") do
          i = i + 1
          views[name] = (list[i] or ""):match("^" .. ext .. "%.([%a_][%w_]*)$") or views[name]
        end
      end
      for at, part, name in code:gmatch("()%f[%w_]" .. ext .. "%.([%a_][%w_]*)[.:]([%a_][%w_]*)") do
        reads[#reads + 1] = { at, part, name }
      end
    end
    for view, part in pairs(views) do
      for at, name in code:gmatch("()%f[%w_.]" .. view .. "[.:]([%a_][%w_]*)") do
        reads[#reads + 1] = { at, part, name }
      end
    end
    for _, x in ipairs(reads) do
      if not (window[x[2]] and window[x[2]][x[3]]) then
        bad[#bad + 1] = string.format("%s:%d: reads %s.%s, not in the window (extension.lua's X.WINDOW)", file,
          line_at(code, x[1]), x[2], x[3])
      end
    end
  end
end

-- The fields of the core's jobs and requests (job.lua's and request.lua's: those their new makes and those they
-- assign), less what a request a rock sent gives back (RESULTS: its result, error, answer, bytes and the stream its
-- tap fed): no rock reads
-- them (a rock learns of a job through what it is handed: the observer through events, observed.lua's).
local RESULTS = { done = true, err = true, task = true, wire = true, bytes = true, total = true, status = true,
  body = true, heads = true, held = true, tap = true }
-- Each field of var assigned in text (one target or several: `self.a, self.b = ...`) into out.
-- (and one target anywhere on a line: `if not x then self.a = y end`)
local function assigned(text, var, out)
  for line in text:gmatch("[^\n]+") do
    local lhs = line:match("^%s*([%w_.,%s]-)%s*=[^=]")
    for name in (lhs or ""):gmatch("%f[%w_]" .. var .. "%.([%a_][%w_]*)%s*%f[,%z]") do out[name] = true end
    for name in line:gmatch("%f[%w_]" .. var .. "%.([%a_][%w_]*)%s*=[^=]") do out[name] = true end
  end
end
-- The fields of what made (the pattern before its table) makes in text, its KEPT table's, and those of self
-- assigned there; then those of var assigned anywhere in the core's Lua (lua/starvideos/).
local function fields_of(root, text, made, var, listing)
  local out = {}
  for _, t in ipairs { text:match(made .. "(%b{})") or "", text:match("\nlocal KEPT = (%b{})") or "" } do
    for name in t:gmatch("[{,]%s*([%a_][%w_]*)%s*=") do out[name] = true end
    for name in t:gmatch("=%s*\"([%a_][%w_]*)\"") do out[name] = true end -- (a spec's field kept by another name)
  end
  assigned(text, "self", out)
  for _, file in ipairs(listing("find lua/starvideos -name '*.lua'")) do
    assigned(read(root .. "/" .. file) or "", var, out)
  end
  return out
end
local function core_fields(root, listing)
  local job = fields_of(root, read(root .. "/lua/starvideos/job.lua") or "", "local job = setmetatable%(", "job",
    listing)
  local req = fields_of(root, read(root .. "/lua/starvideos/request.lua") or "", "local self = setmetatable%(", "req",
    listing)
  for name in pairs(RESULTS) do req[name] = nil end
  return { job = job, req = req, request = req }
end

-- job.lua's list of every field a job has (its comment "Every field a job has"), against the fields the core gives
-- a job: its new's table, KEPT's (a spec's field by its own name, or another), those assigned to self in job.lua and
-- to job anywhere in the core.  Each one assigned and not listed, or listed and never assigned, onto bad.
local JOB_LIST = "\"Every field a job has\""
local function check_job_named(root, listing, bad)
  local text = read(root .. "/lua/starvideos/job.lua") or ""
  local given = {}
  for name in (text:match("local job = setmetatable%((%b{})") or ""):gmatch("[{,]%s*([%a_][%w_]*)%s*=") do
    given[name] = true
  end
  for key, to in (text:match("\nlocal KEPT = (%b{})") or ""):gmatch("([%a_][%w_]*)%s*=%s*([%w_\"]+)") do
    given[to == "true" and key or to:match('^"(.*)"$') or key] = true
  end
  assigned(text, "self", given)
  for _, file in ipairs(listing("find lua/starvideos -name '*.lua'")) do
    assigned(read(root .. "/" .. file) or "", "job", given)
  end
  local block = text:match("\n%-%- Every field a job has[^\n]*\n(.-)\n[^%-]")
  if not block then
    bad[#bad + 1] = "lua/starvideos/job.lua: no comment " .. JOB_LIST .. " naming each field (tools/shape_rocks.lua)"
    return
  end
  local words, listed = {}, {}
  for line in block:gmatch("[^\n]+") do
    words[#words + 1] = line:match("^%-%-%s+[%a ]+:%s+(.*)$") or line:match("^%-%-%s+(.*)$") or ""
  end
  for name in table.concat(words, " "):gsub("%b()", ""):gmatch("[%a_][%w_]*") do
    if name ~= "and" then listed[name] = true end
  end
  for _, d in ipairs { { given, listed, "the core gives a job the field %s, not named in its list " .. JOB_LIST },
      { listed, given, "its list " .. JOB_LIST .. " names %s, a field the core never gives a job" } } do
    for name in pairs(d[1]) do
      if not d[2][name] then bad[#bad + 1] = "lua/starvideos/job.lua: " .. string.format(d[3], name) end
    end
  end
end

-- (The emulator's is not read: a server, its req the HTTP request it serves.)

-- Each read by a rock's Lua of a core job's or request's field (job.<field>, req.<field>, request.<field>), onto
-- bad.
local function check_fields(r, fields, code_of, bad)
  for _, file in pairs(r.package == "starvideos-emulator" and {} or r.lua) do
    local src = read(r.root .. "/" .. file)
    local code = src and code_of(src) or ""
    for at, name, field in code:gmatch("()%f[%w_]([%a_][%w_]*)[.:]([%a_][%w_]*)") do
      if fields[name] and fields[name][field] then
        bad[#bad + 1] = string.format("%s:%d: reads %s.%s, a field of the core's %s (a rock learns of them through "
          .. "what it is handed: events, a request's results)", file, line_at(code, at), name, field,
          name == "job" and "jobs" or "requests")
      end
    end
  end
end

-- Each require by another rock's Lua of a core module the list does not name, onto bad.
local function check_allowed(r, core, allowed, code_of, bad)
  for _, file in pairs(r.lua) do
    local src = read(r.root .. "/" .. file)
    local code = src and code_of(src, true) or ""
    for at, name in code:gmatch("()require%s*%(?%s*[\"'](starvideos[%w_.]*)[\"']") do
      if (core.lua[name] or core.lib[name]) and not allowed[name] then
        bad[#bad + 1] = string.format("%s:%d: requires %s, a core module not in docs/architecture.md's list of what "
          .. "a rock may require of the core", file, line_at(code, at), name)
      end
    end
  end
end

-- What the core rock may depend on: what the library needs (its command line needs nothing more: cli/parser.lua
-- reads its line and writes its help, docs/install.md "The command line needs nothing more"), so that a tree with
-- the library holds nothing a library user never calls.
local CORE_DEPENDS = { lua = true, ["lua-cjson"] = true }

-- Each dependency of the core rockspec (at path) not in CORE_DEPENDS, onto bad.
local function check_core_depends(root, path, bad)
  local spec = load_rockspec(root .. "/" .. path)
  for _, d in ipairs(spec and spec.dependencies or {}) do
    local name = tostring(d):match("^%s*([%w_.-]+)")
    if not CORE_DEPENDS[name] then
      bad[#bad + 1] = string.format("%s: depends on %s, which the library does not need (the core rock's "
        .. "dependencies are the library's alone: lua, lua-cjson)", path, tostring(d))
    end
  end
end

-- The files outside rocks/ that are the house's own, not the core's: they build, release and check every rock, so
-- they name the rocks' modules and files (docs/architecture.md, "Each product whole in its rock").
local HOUSE = {
  ["spec/hosts/build_spec.lua"] = "each rock's C built from its own source list",
  ["spec/hosts/release_spec.lua"] = "the release of every rock",
  ["spec/hosts/rocks_spec.lua"] = "each rock installed into a fresh tree, alone and together",
  ["spec/rock_needs_spec.lua"] = "each rock's needs module against the core's version",
  ["spec/extension_spec.lua"] = "the extension points: each rock found installed, refused hidden",
  ["spec/core_alone_spec.lua"] = "the core on a journal written with every rock, the rocks hidden",
  ["spec/tools/shape_spec.lua"] = "this check's own cases (a rock's name planted in the core)",
  ["tools/shape_rocks.lua"] = "this check: the emulator's place in it, the needs module each rock installs",
  ["spec/hosts/docs_run_spec.lua"] = "the manual's every block, run or checked: docs/ is every rock's manual",
  ["tools/types.lua"] = "the manual's option types, each rock's options with the core's",
}
-- The emulator rock is the service the core's specs, C hosts' tests and benches talk to: named there, never in the
-- core's code.
local SERVICE_DOUBLE = { package = "starvideos-emulator", under = { "spec/", "bench/", "csrc/test/" } }

-- Each line of a file outside rocks/ (but the house's) that names a product's module, folder or files (rocks/<rock>/,
-- rocks.<rock>. in a require), onto bad: each product's specs, benches, tools and build are its rock's; and each
-- house's file that names none, or is not tracked (HOUSE lists only what must name the rocks).
local function check_outside(root, rocks, others, folders, code_of, c_code_of, listing, bad)
  local dirs, double, files = {}, {}, listing("git ls-files")
  for i = 2, #rocks do dirs[rocks[i].dir:match("^rocks/([^/]+)/")] = rocks[i].package end
  for name, package in pairs(others) do if package == SERVICE_DOUBLE.package then double[name] = true end end
  local house = {}
  for file in pairs(HOUSE) do house[file] = files[1] and 0 end -- (no listing: a copy outside git, nothing to say)
  for _, file in ipairs(files) do
    local kind = file:match("%.lua$") and "lua" or file:match("%.[ch]$") and "c"
      or (file:match("%.mk$") or file:match("%.sh$") or file == "Makefile" or file:match("^bin/") or
        file:match("^%.ci/")) and "sh"
    local src = kind and not file:find("^rocks/") and read(root .. "/" .. file)
    if src then
      local code = kind == "lua" and code_of(src, true) or kind == "c" and c_code_of(src, true)
        or src:gsub("#[^\n]*", "")
      local service, mine, found = false, {}, {}
      for _, under in ipairs(SERVICE_DOUBLE.under) do service = service or file:sub(1, #under) == under end
      check_names(file, code, others, folders, mine)
      for _, line in ipairs(mine) do
        if not (service and double[line:match(": names (starvideos[%w_.]*[%w_])")]) then found[#found + 1] = line end
      end
      for at, dir in code:gmatch("()rocks[/.]([%w_-]+)[/.]") do
        if dirs[dir] and not (service and dirs[dir] == SERVICE_DOUBLE.package) then
          found[#found + 1] = string.format("%s:%d: names rocks/%s/, the %s rock's files (a product's specs, "
            .. "benches, tools and build are its rock's: rocks/<rock>/)", file, line_at(code, at), dir, dirs[dir])
        end
      end
      if HOUSE[file] then house[file] = #found else for _, line in ipairs(found) do bad[#bad + 1] = line end end
    end
  end
  for file, n in pairs(house) do
    if n == 0 then
      bad[#bad + 1] = string.format("tools/shape_rocks.lua: HOUSE lists %s, which names no rock's module or files "
        .. "(or is not tracked): take it off the list", file)
    end
  end
end

return function(root, bad, listing, code_of, c_code_of, module_of)
  local rocks = rocks_of(root, listing)
  if not rocks[1] then return 0 end
  local core, others, folders, core_folders = rocks[1], {}, {}, {}
  for name in pairs(core.lua) do core_folders[name:match("^(.*%.)") or name] = true end
  for i = 2, #rocks do
    for _, t in ipairs { rocks[i].lua, rocks[i].lib } do
      for name in pairs(t) do
        others[name] = rocks[i].package
        local folder = name:match("^(starvideos%.[%w_]+%.)")
        if folder and not core_folders[folder] then folders[folder] = rocks[i].package end
      end
    end
  end
  for _, r in ipairs(rocks) do r.root = root end
  for _, file in pairs(core.lua) do
    local src = read(root .. "/" .. file)
    local code = src and code_of(src, true)
    if code then check_names(file, code, others, folders, bad) check_words(file, code, bad) end
  end
  local seen, headers = {}, listing("ls csrc/core/*.h csrc/lua/*.h")
  for _, list in ipairs { core.c, headers, core.bin } do
    for _, file in ipairs(list) do
      local src = not seen[file] and read(root .. "/" .. file)
      seen[file] = true
      if src then
        local code = file:match("%.[ch]$") and c_code_of(src, true) or code_of((src:gsub("^#![^\n]*", "")), true)
        check_names(file, code, others, folders, bad)
        check_words(file, code, bad)
      end
    end
  end
  for _, file in ipairs(listing("find csrc \\( -name '*.c' -o -name '*.h' \\)")) do -- (the whole C tree)
    local src = read(root .. "/" .. file) -- (the core rock's sources too; their names were read above)
    if src then
      for at in src:gmatch("()#[ \t]*include[ \t]*[\"<][^\">\n]*rocks/") do
        bad[#bad + 1] = string.format("%s:%d: includes a rock's C (a product's C tests and fuzz targets are its "
          .. "rock's: rocks/<rock>/csrc/)", file, line_at(src, at))
      end
      if not (seen[file] or file:find("^csrc/test/")) then check_names(file, c_code_of(src, true), others, folders,
        bad) end
    end
  end
  check_folders_file(root, rocks, bad)
  check_outside(root, rocks, others, folders, code_of, c_code_of, listing, bad)
  check_folder(core, "lua", listing, module_of, bad)
  for i = 2, #rocks do check_folder(rocks[i], rocks[i].dir, listing, module_of, bad) end
  for i = 2, #rocks do -- (a rock against a stated core: a version of it, not any)
    if not (rocks[i].core_dep and rocks[i].core_dep:match("^starvideos%s*>=%s*%d")) then
      bad[#bad + 1] = string.format("%s: depends on %s, not on a stated version of the core (\"starvideos >= X.Y\")",
        rocks[i].path, tostring(rocks[i].core_dep or "no starvideos"))
    end
  end
  check_range(root, rocks, listing, bad)
  check_core_depends(root, core.path, bad)
  check_versioned(root, listing, bad)
  local allowed = allowed_of(root)
  if not allowed then
    bad[#bad + 1] = "docs/architecture.md: no section \"What a rock may require of the core\" (tools/shape_rocks.lua)"
  else
    local n = 0
    for _ in pairs(allowed) do n = n + 1 end
    if n > 3 then
      bad[#bad + 1] = string.format("docs/architecture.md: %d core modules a rock may require, more than three", n)
    end
    local window, fields = window_of(root, bad), core_fields(root, listing)
    check_job_named(root, listing, bad)
    for i = 2, #rocks do
      check_allowed(rocks[i], core, allowed, code_of, bad)
      check_window(rocks[i], window, code_of, bad)
      check_fields(rocks[i], fields, code_of, bad)
    end
  end
  return #rocks
end
