-- The build's one source list (mk/sources.mk, the core's; a rock's in its rocks/<rock>/rock.mk) and the places that
-- build from it: the Makefile's per-VM modules, the static library, the fuzz targets and the
-- rockspecs (which cannot include a file: this spec is their guard).  And the
-- binding split: no C file is compiled twice, nor under a -D that changes it.

local helper = require "spec.helper"

local q = helper.shell_quote
local root = assert(helper.capture("cd " .. q(helper.root) .. " && pwd")):match("^(.-)\n?$")
-- make as a user runs it, not as the make running this suite
local MAKE = "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make -s --no-print-directory"

local function words(s)
  local list = {}
  for w in s:gmatch("%S+") do list[#list + 1] = w end
  return list
end

-- A make variable's value, as make expands it in this checkout.
local function make_var(name)
  local out = assert(helper.capture("cd " .. q(root) .. " && " .. MAKE .. " --eval "
    .. q("sv-print-var: ; @echo $(" .. name .. ")") .. " sv-print-var 2>&1"))
  return words(out)
end

-- The commands `make -n -B` would run for these goals.
local function dry_run(goals)
  return assert(helper.capture("cd " .. q(root) .. " && " .. MAKE .. " -n -B " .. goals .. " 2>&1"))
end

-- How many times each csrc/*.c is compiled in these commands, and with which -D flags.
local function compiles(commands)
  local count, defines = {}, {}
  for line in commands:gmatch("[^\n]+") do
    for file in line:gmatch("%s([%w_/]*csrc/[%w_/]+%.c)") do -- (csrc/..., and a rock's rocks/<rock>/csrc/...)
      count[file] = (count[file] or 0) + 1
      for d in line:gmatch("%s%-D(%S+)") do defines[d] = true end
    end
  end
  return count, defines
end

local read_rockspec = dofile(helper.root .. "/tools/rockspec.lua")
local function load_rockspec(path) return assert(read_rockspec(path), path) end

local SV_SRC = make_var("SV_SRC")
local CORE_MOD_SRC, CURL_MOD_SRC = make_var("CORE_MOD_SRC"), make_var("CURL_MOD_SRC")
local SIGN_MOD_SRC = make_var("SIGN_MOD_SRC") -- starvideos.sign: the one module on libcrypto
local ALL_SRC = make_var("ALL_SRC")
-- the rocks' lists, in their rocks/<rock>/rock.mk
local REDIS_MOD_SRC = make_var("REDIS_MOD_SRC") -- starvideos.redis: built where hiredis is
local SIGV4_MOD_SRC = make_var("SIGV4_MOD_SRC") -- starvideos.sigv4: the starvideos-s3 rock's
local FLEET_MOD_SRC = make_var("FLEET_MOD_SRC") -- starvideos.fleet.native: the starvideos-redis rock's grammar
local DEFS = make_var("DEFS")

describe("mk/sources.mk and the rocks' rock.mk", function()
  it("names every C file of the library once, and each exists", function()
    local seen = {}
    local every = {}
    for _, list in ipairs { ALL_SRC, REDIS_MOD_SRC, FLEET_MOD_SRC, make_var("SIGV4_SRC"), { "rocks/s3/csrc/lua.c" } } do
      for _, f in ipairs(list) do every[#every + 1] = f end
    end
    for _, f in ipairs(every) do
      assert.is_nil(seen[f], f .. " listed twice")
      seen[f] = true
      assert.is_true(helper.exists(root .. "/" .. f), f)
    end
    -- every C file of the layers but the static library's face is in the list
    local listing = assert(helper.capture("cd " .. q(root)
      .. " && ls csrc/core/*.c csrc/curl/*.c csrc/lua/*.c rocks/redis/csrc/*.c rocks/s3/csrc/*.c"))
    for f in listing:gmatch("%S+") do
      if f ~= "csrc/lua/static.c" then assert.is_true(seen[f], f .. " is not in mk/sources.mk nor a rock.mk") end
    end
    -- and nothing else is there: the folders are the layers; the other rocks' C is theirs (rocks/<rock>/csrc/)
    local other = helper.capture("cd " .. q(root) .. " && ls csrc/*.c csrc/*.h 2>/dev/null || true")
    assert.equal("", other)
    assert.equal("", helper.capture("cd " .. q(root) .. " && ls -d csrc/redis csrc/s3 2>/dev/null || true"))
  end)

  it("keeps the layers apart: the core includes neither Lua nor libcurl, the transport no Lua", function()
    local function includers(dir, pattern)
      return helper.capture("cd " .. q(root) .. " && grep -lE " .. q(pattern) .. " " .. dir .. "/*.[ch] || true")
    end
    assert.equal("", includers("csrc/core", "#include [<\"](lua|lauxlib|curl/|\\.\\./)"))
    assert.equal("", includers("csrc/curl", "#include [<\"](lua|lauxlib|\\.\\./lua)"))
  end)

  it("keeps libcurl's transport out of starvideos.core and in starvideos.curl", function()
    local core, curl = table.concat(CORE_MOD_SRC, " "), table.concat(CURL_MOD_SRC, " ")
    assert.is_nil(core:find("csrc/curl/", 1, true))
    assert.is_nil(core:find("lua/curl.c", 1, true))
    assert.truthy(curl:find("csrc/curl/multi.c", 1, true))
    assert.truthy(curl:find("csrc/curl/body.c", 1, true))
    assert.truthy(curl:find("csrc/lua/curl.c", 1, true))
    assert.is_nil(curl:find("lua/core.c", 1, true))
  end)

  it("keeps the webhook signatures (libcrypto) out of starvideos.core and curl, in starvideos.sign", function()
    local sign = table.concat(SIGN_MOD_SRC, " ")
    for _, list in ipairs { CORE_MOD_SRC, CURL_MOD_SRC } do
      local l = table.concat(list, " ")
      assert.is_nil(l:find("sign.c", 1, true), l)
    end
    assert.truthy(sign:find("csrc/core/sign.c", 1, true))
    assert.truthy(sign:find("csrc/lua/sign.c", 1, true))
    assert.is_nil(sign:find("lua/core.c", 1, true))
    assert.is_nil(sign:find("csrc/curl/", 1, true))
    -- SigV4 is the starvideos-s3 rock's own module, not the core's sign.so
    assert.is_nil(sign:find("sigv4", 1, true), sign)
    -- and links only the core files it uses: no request, answer, verdict, model, URL or journal of the core's
    local sigv4 = " " .. table.concat(SIGV4_MOD_SRC, " ") .. " "
    assert.truthy(sigv4:find(" rocks/s3/csrc/sigv4.c rocks/s3/csrc/parts.c rocks/s3/csrc/lua.c ", 1, true), sigv4)
    for _, f in ipairs { "json", "verdict", "answer", "models", "url", "id", "journal", "limits", "part", "sign" } do
      assert.is_nil(sigv4:find("/" .. f .. ".c ", 1, true), f .. ".c in " .. sigv4)
    end
  end)

  it("leaves no C file that changes under #ifdef SV_NO_CURL", function()
    local hits = helper.capture("cd " .. q(root)
      .. " && grep -rln 'SV_NO_CURL' csrc mk Makefile rockspec rocks || true")
    assert.equal("", hits)
  end)
end)

describe("the rockspecs", function()
  local listing = assert(helper.capture("cd " .. q(root) .. " && ls rockspec/*.rockspec"))
  local specs = words(listing)

  it("are both there", function()
    assert.equal(2, #specs)
  end)

  it("each install every Lua module of lua/starvideos", function()
    local files = words(assert(helper.capture("cd " .. q(root) .. " && find lua/starvideos -name '*.lua'")))
    assert.is_true(#files > 20, "found only " .. #files .. " Lua files")
    for _, spec in ipairs(specs) do
      local text = assert(helper.read_file(root .. "/" .. spec))
      for _, file in ipairs(files) do
        assert.truthy(text:find('"' .. file .. '"', 1, true), spec .. " does not list " .. file)
      end
    end
  end)

  for _, path in ipairs(specs) do
    it(path .. " builds each C module from mk/sources.mk's list, with the Makefile's defines", function()
      local spec = load_rockspec(root .. "/" .. path)
      local modules = spec.build.modules
      assert.same(CORE_MOD_SRC, modules["starvideos.core"].sources)
      assert.same(CURL_MOD_SRC, modules["starvideos.curl"].sources)
      assert.same(SIGN_MOD_SRC, modules["starvideos.sign"].sources)
      for _, m in ipairs { "starvideos.core", "starvideos.curl", "starvideos.sign" } do
        local defs = {}
        for _, d in ipairs(modules[m].defines) do defs[#defs + 1] = "-D" .. d end
        assert.same(DEFS, defs, m .. "'s defines")
      end
      -- the core links neither libcurl nor libcrypto; libcrypto is starvideos.sign's alone
      local function links(m, lib)
        for _, l in ipairs(modules[m].libraries) do if l == lib then return true end end
        return false
      end
      assert.is_false(links("starvideos.core", "curl"))
      assert.is_true(links("starvideos.curl", "curl"))
      for _, m in ipairs { "starvideos.core", "starvideos.curl" } do assert.is_false(links(m, "crypto"), m) end
      assert.is_true(links("starvideos.sign", "crypto"))
    end)
  end
end)

-- The rocks with a C module beside the core (rocks/<rock>/): built by a command, not LuaRocks' builtin
-- backend (which copies a top-level lua/, the core's, into every rock), from the same lists and defines.
describe("the rocks' C modules", function()
  -- a command's sources (csrc/...c, in order), its -D flags (each once: a command of two compiles gives both the
  -- same) and its -l libraries
  local function command_parts(cmd)
    local sources, defs, libs, seen = {}, {}, {}, {}
    for w in cmd:gmatch("%S+") do
      if w:match("^csrc/.*%.c$") or w:match("^rocks/[%w_-]+/csrc/.*%.c$") then sources[#sources + 1] = w
      elseif w:match("^%-D") then
        if not seen[w] then defs[#defs + 1] = w end
        seen[w] = true
      elseif w:match("^%-l") then libs[#libs + 1] = w:sub(3) end
    end
    return sources, defs, libs
  end
  local mains = words(assert(helper.capture("cd " .. q(root) .. " && ls rockspec/*.rockspec")))

  -- rocks/<rock>/'s rockspec's build: a command compiling exactly sources with the Makefile's defines, on lib first,
  -- installing module from build/rock/so; the rockspec's fields.
  local function command_rock(rock, module, so, sources, lib)
    local spec = load_rockspec(root .. "/rocks/" .. rock .. "/starvideos-" .. rock .. "-scm-1.rockspec")
    assert.equal("command", spec.build.type)
    local got, defs, libs = command_parts(spec.build.build_command)
    assert.same(sources, got)
    assert.same(DEFS, defs)
    assert.equal(lib, libs[1])
    assert.equal("build/rock/" .. so, spec.build.install.lib[module])
    return spec
  end

  it("starvideos-redis builds starvideos.redis from rocks/redis/rock.mk's REDIS_MOD_SRC, with the Makefile's defines, "
    .. "on hiredis, and starvideos.fleet.native from its FLEET_MOD_SRC", function()
    local both = {}
    for _, list in ipairs { REDIS_MOD_SRC, FLEET_MOD_SRC } do
      for _, f in ipairs(list) do both[#both + 1] = f end
    end
    local spec = command_rock("redis", "starvideos.redis", "redis.so", both, "hiredis")
    assert.equal("build/rock/native.so", spec.build.install.lib["starvideos.fleet.native"])
    assert.same({ header = "hiredis/hiredis.h", library = "hiredis" }, spec.external_dependencies.HIREDIS)
    -- the starvideos rock needs no hiredis
    for _, main in ipairs(mains) do
      local text = assert(helper.read_file(root .. "/" .. main))
      assert.is_nil(text:find("hiredis", 1, true), main)
      assert.is_nil(load_rockspec(root .. "/" .. main).build.modules["starvideos.redis"], main)
    end
  end)

  it("starvideos-s3 builds starvideos.sigv4 from rocks/s3/rock.mk's SIGV4_MOD_SRC, on libcrypto; the core has no "
    .. "SigV4", function()
    command_rock("s3", "starvideos.sigv4", "sigv4.so", SIGV4_MOD_SRC, "crypto")
    for _, main in ipairs(mains) do
      local text = assert(helper.read_file(root .. "/" .. main))
      assert.is_nil(text:find("sigv4", 1, true), main)
    end
  end)
end)

describe("the Makefile's rules", function()
  local function expect_once(goals, files)
    local count, defines = compiles(dry_run(goals))
    for _, f in ipairs(files) do
      assert.equal(1, count[f], f .. " compiled " .. tostring(count[f]) .. " times for " .. goals)
    end
    for f, n in pairs(count) do assert.equal(1, n, f .. " compiled " .. n .. " times for " .. goals) end
    local allowed = {}
    for _, d in ipairs(DEFS) do allowed[d:sub(3)] = true end
    for d in pairs(defines) do assert.is_true(allowed[d], "-D" .. d .. " for " .. goals) end
  end

  local function modules(dir)
    return dir .. "starvideos/core.so " .. dir .. "starvideos/curl.so " .. dir .. "starvideos/sign.so"
  end

  it("compile each file of the three modules once for the default VM", function()
    expect_once(modules("build/"), ALL_SRC)
  end)

  it("compile each file of the three modules once per VM", function()
    for _, vm in ipairs { "luajit", "lua5.1" } do expect_once(modules("build/" .. vm .. "/"), ALL_SRC) end
  end)

  it("link the modules from the lists, libcrypto into sign.so alone", function()
    for _, dir in ipairs { "", "luajit/", "lua5.1/" } do
      local cmds = dry_run(modules("build/" .. dir))
      local function linked(so)
        local line = assert(cmds:match("[^\n]*%-shared %-o " .. so:gsub("%p", "%%%0") .. "[^\n]*"), so)
        local objs = {}
        for o in line:gmatch("build/" .. dir:gsub("%p", "%%%0") .. "obj/([%w_/]+)%.o") do
          objs[#objs + 1] = "csrc/" .. o .. ".c"
        end
        return objs, line
      end
      local core, core_line = linked("build/" .. dir .. "starvideos/core.so")
      local curl, curl_line = linked("build/" .. dir .. "starvideos/curl.so")
      local sign, sign_line = linked("build/" .. dir .. "starvideos/sign.so")
      assert.same(CORE_MOD_SRC, core)
      assert.same(CURL_MOD_SRC, curl)
      assert.same(SIGN_MOD_SRC, sign)
      assert.is_nil(core_line:find("crypto", 1, true), core_line)
      assert.is_nil(curl_line:find("crypto", 1, true), curl_line)
      assert.truthy(sign_line:find("%-lcrypto") or sign_line:find("libcrypto", 1, true), sign_line)
    end
  end)

  it("build, before the specs of make test and test-all, the compat_test.so each VM's compat_spec loads", function()
    -- the rules' prerequisites as make reads them (no recipe runs: the goal is an empty one)
    local db = dry_run("sv-none --eval 'sv-none: ;' -p")
    local want = { test = { "build/compat_test.so" }, ["test-all"] = { "build/compat_test.so" } }
    for _, vm in ipairs { "lua5.1", "lua5.2", "lua5.3", "lua5.5", "luajit" } do
      want["test-all"][#want["test-all"] + 1] = "build/" .. vm .. "/compat_test.so"
    end
    for goal, files in pairs(want) do
      local rule = " " .. assert(db:match("\n" .. goal:gsub("%-", "%%-") .. ":([^\n]*)"), goal) .. " "
      for _, so in ipairs(files) do
        assert.truthy(rule:find(" " .. so .. " ", 1, true), "make " .. goal .. " does not build " .. so)
      end
    end
  end)

  it("build sign.so for make, make test, make test-hosts (nginx LuaJIT), every VM of test-all and check", function()
    -- (test-all's recipe runs make itself, so its list is read, not dry-run)
    local vm_sos = " " .. table.concat(make_var("VM_SOS"), " ") .. " "
    for _, vm in ipairs { "lua5.1", "lua5.2", "lua5.3", "lua5.4", "lua5.5", "luajit" } do
      assert.truthy(vm_sos:find(" build/" .. vm .. "/starvideos/sign.so ", 1, true), vm)
    end
    local want = {
      all = { "build/starvideos/sign.so" },
      test = { "build/starvideos/sign.so" },
      ["test-hosts"] = { "build/starvideos/sign.so", "build/luajit/starvideos/sign.so" },
      ["check-build"] = { "build/asan/starvideos/sign.so" },
    }
    for goal, files in pairs(want) do
      local cmds = dry_run(goal)
      for _, so in ipairs(files) do
        assert.truthy(cmds:find("-o " .. so, 1, true), goal .. " does not build " .. so)
      end
    end
    -- the ASan core.so, like core.so, leaves the signatures (libcrypto) to sign.so
    local line = assert(dry_run("check-build"):match("[^\n]*%-o build/asan/starvideos/core%.so[^\n]*"))
    assert.is_nil(line:find("sign.c", 1, true), line)
    assert.is_nil(line:find("crypto", 1, true), line)
  end)

  it("build the static library from every file, each once", function()
    local files = {}
    for _, f in ipairs(ALL_SRC) do files[#files + 1] = f end
    files[#files + 1] = "csrc/lua/static.c"
    expect_once("build/static/libstarvideos.a", files)
  end)

  it("compile starvideos.redis once per VM and link it with hiredis and OpenSSL alone, where hiredis is", function()
    for _, vm in ipairs { "", "luajit/", "lua5.1/" } do
      local so = "build/" .. vm .. "starvideos/redis.so"
      local cmds = dry_run("HIREDIS=yes " .. so)
      local count, defines = compiles(cmds)
      assert.same({ ["rocks/redis/csrc/redis.c"] = 1, ["rocks/redis/csrc/sock.c"] = 1 }, count, so)
      local allowed = {}
      for _, d in ipairs(DEFS) do allowed[d:sub(3)] = true end
      for d in pairs(defines) do assert.is_true(allowed[d], "-D" .. d .. " for " .. so) end
      local line = assert(cmds:match("[^\n]*%-shared %-o " .. so:gsub("%p", "%%%0") .. "[^\n]*"), so)
      assert.matches("%-lhiredis", line)
      assert.matches("%-lssl", line)
      assert.is_nil(line:find("-lcurl", 1, true))
    end
  end)

  it("skip starvideos.redis with one line under HIREDIS=no, and build the rest", function()
    local cmds = dry_run("HIREDIS=no all")
    assert.is_nil(cmds:find("redis.so", 1, true), cmds)
    for _, f in ipairs(REDIS_MOD_SRC) do assert.is_nil(cmds:find(f, 1, true), cmds) end
    -- (the rock's grammar needs no hiredis: built all the same)
    assert.truthy(cmds:find("-o build/starvideos/fleet/native.so", 1, true), cmds)
    assert.truthy(cmds:find("starvideos.redis not built: hiredis not found", 1, true), cmds)
    assert.truthy(cmds:find("-o build/starvideos/curl.so", 1, true), cmds)
    local with = dry_run("HIREDIS=yes all")
    assert.truthy(with:find("-o build/starvideos/redis.so", 1, true), with)
    assert.is_nil(with:find("not built", 1, true), with)
  end)

  it("build under HIREDIS=no (a copy of the checkout): every module but starvideos.redis", function()
    local dir = helper.tmpdir()
    finally(helper.cleanup)
    local out, ok = helper.capture("cd " .. q(root) .. " && cp -R Makefile mk csrc rocks " .. q(dir) .. " && cd "
      .. q(dir) .. " && " .. MAKE .. " HIREDIS=no 2>&1")
    assert.is_true(ok, out)
    assert.truthy(out:find("starvideos.redis not built: hiredis not found", 1, true), out)
    assert.is_true(helper.exists(dir .. "/build/starvideos/core.so"))
    assert.is_true(helper.exists(dir .. "/build/starvideos/curl.so"))
    assert.is_true(helper.exists(dir .. "/build/starvideos/sign.so"))
    assert.is_true(helper.exists(dir .. "/build/starvideos/fleet/native.so"))
    assert.is_false(helper.exists(dir .. "/build/starvideos/redis.so"))
  end)

  it("link each fuzz target with the core of the list", function()
    local cmds = dry_run("build/fuzz/fuzz_json")
    local line = assert(cmds:match("[^\n]*fuzz_json%.c[^\n]*"))
    local linked = {}
    for f in line:gmatch("(csrc/core/[%w_]+%.c)") do linked[#linked + 1] = f end
    assert.same(SV_SRC, linked)
  end)
end)
