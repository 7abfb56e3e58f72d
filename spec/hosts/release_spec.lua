-- The release (issues 58 and 68; docs/install.md, "Releases"): `make release` once, into a folder of the spec's own
-- (RELEASE_DIR), then from that folder alone:
--   * the folder: the source archive, a source rock and the versioned rockspec of each rock (what tools/versioned.lua
--     makes of its scm one), a binary rock of each rock for each Lua (5.1 to 5.5) and platform (linux-x86_64 and
--     linux-aarch64; the pure-Lua rocks "all") in <folder>/<lua>/, LuaRocks manifests for every Lua (5.5's too) in
--     each, BUILD naming `ldd --version`'s glibc (and the arm64 sysroot's) and the newest glibc symbol version the
--     modules take (none newer, objdump -T), and SHA256SUMS that `sha256sum -c` accepts; `readelf -h` of each
--     module says the machine of its rock's platform;
--   * under Lua 5.4, Lua 5.1, LuaJIT (5.1's rocks) and Lua 5.5: every rock installed by `luarocks install
--     --only-server` into a fresh tree with a PATH from which cc, gcc, clang, make and pkg-config are absent, no line
--     naming luarocks.org (on 5.5 lua-cjson too, from the folder: Debian has none for 5.5); a video generated
--     against the emulator from that tree (on 5.5 by a Lua 5.5 built from ../shared/vendor), every C module of the
--     tree loaded there, and `ldd` of each naming only the C library, libm, libpthread/libdl, libcurl,
--     libcrypto/libssl and (the Redis rock's) hiredis;
--   * on arm64, under qemu-aarch64 with the sysroot `make release` unpacked (Debian's arm64 Lua 5.4 and 5.1): the
--     linux-aarch64 and all rocks unpacked as LuaRocks lays a tree out, a video generated against the (native)
--     emulator, every module loaded, and spec/core/ passing on that Lua with the tree's C modules; and on 5.4
--     docs/install.md's arm64 try run as written;
--   * `luarocks lint` passes every rockspec (scm and versioned), and fails a broken one; each versioned rockspec
--     is its scm one but for version, source and (a product rock) the core's range;
--   * a product rock against a core outside its range (0.5.0, the only one a second server folder offers) is
--     refused by LuaRocks, and installs beside the release's core.
-- Nothing here asks a LuaRocks server for anything but the folders the spec made (--only-server).
local helper = require "spec.helper"
local ccache = require "spec.hosts.support.ccache"
local trees = require "spec.hosts.support.trees"

local q = helper.shell_quote
local ROCKS = { "starvideos", "starvideos-redis", "starvideos-s3", "starvideos-observe", "starvideos-emulator" }
local LUAS = { "5.1", "5.2", "5.3", "5.4", "5.5" }
-- each rock's binary rocks in a Lua's folder, by arch: the C rocks' for both platforms, the pure-Lua rocks' "all"
local C_ROCKS = { starvideos = true, ["starvideos-redis"] = true, ["starvideos-s3"] = true }
local function arches(rock) return C_ROCKS[rock] and { "linux-aarch64", "linux-x86_64" } or { "all" } end
local versioned = dofile(helper.root .. "/tools/versioned.lua")
local SAMPLE = assert(require("starvideos.emulator.files").video(5))
-- the shared libraries an installed C module may need, by name (the loader and the vDSO besides)
local ALLOWED = { "libc", "libm", "libpthread", "libdl", "libcurl", "libcrypto", "libssl", "libhiredis" }
-- what a build needs and an install from the folder must not
local TOOLS = { "cc", "gcc", "clang", "make", "pkg-config" }

local function sh(cmd) return helper.capture(cmd .. " 2>&1") end

-- From the fresh tree: a video against the emulator, then each rock's modules (every C one) required.
local RUN = [[
local s = require "starvideos"
local url, key, out = arg[1], arg[2], arg[3]
local c = assert(s.new { api_key = key, base_url = url })
local task = assert(c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = out, interval = 0.05 }))
print("generated", task.status, task.path)
for _, m in ipairs { "starvideos.core", "starvideos.curl", "starvideos.sign", "starvideos.redis",
  "starvideos.fleet.native", "starvideos.sigv4", "starvideos.ledger.redis", "starvideos.sink.s3",
  "starvideos.observe", "starvideos.emulator" } do
  print("loaded", m, type(require(m)))
end
]]

-- What `ldd file` names: { {name = "libcurl", path = "/usr/lib/..."}, ... } (the loader and the vDSO left out).
local function ldd(file)
  local list = {}
  for line in assert(helper.capture("ldd " .. q(file))):gmatch("[^\n]+") do
    local so, path = line:match("^%s*(%S+%.so[%.%d]*) => (%S+)")
    if so then list[#list + 1] = { name = so:match("^(.-)%.so"), path = path }
    elseif not (line:find("linux%-vdso") or line:find("ld%-linux")) then list[#list + 1] = { name = line } end
  end
  return list
end

-- The libraries of file's `ldd` that are neither ALLOWED nor brought by one that is (libcurl's own, the
-- system's libcurl linking libnghttp2, libssh2, ...), sorted; and whether libc is among them.
local function foreign(file)
  local allowed, brought, bad = {}, {}, {}
  for _, n in ipairs(ALLOWED) do allowed[n] = true end
  local libs = ldd(file)
  for _, lib in ipairs(libs) do
    if allowed[lib.name] and lib.path then
      for _, dep in ipairs(ldd(lib.path)) do brought[dep.name] = true end
    end
  end
  local libc = false
  for _, lib in ipairs(libs) do
    libc = libc or lib.name == "libc"
    if not (allowed[lib.name] or brought[lib.name]) then bad[#bad + 1] = lib.name end
  end
  table.sort(bad)
  return bad, libc
end

-- Every rockspec of the checkout: rockspec/*.rockspec and rocks/<rock>/*.rockspec, relative names.
local function rockspecs()
  local list = {}
  for f in assert(helper.capture("cd " .. q(helper.root) .. " && ls rockspec/*.rockspec rocks/*/*.rockspec"))
    :gmatch("[^\n]+") do list[#list + 1] = f end
  return list
end

-- a <= b, for glibc versions ("2.34", "2.36")
local function not_newer(a, b)
  local a1, a2 = a:match("^(%d+)%.(%d+)")
  local b1, b2 = b:match("^(%d+)%.(%d+)")
  a1, a2, b1, b2 = tonumber(a1), tonumber(a2), tonumber(b1), tonumber(b2)
  return a1 < b1 or (a1 == b1 and a2 <= b2)
end

-- The newest GLIBC_x.y symbol version file takes (objdump -T), or nil.
local function glibc_symbols(file)
  local newest
  for ver in helper.capture("objdump -T " .. q(file)):gmatch("GLIBC_(%d+%.%d+)") do
    if not newest or not not_newer(ver, newest) then newest = ver end
  end
  return newest
end

local function version()
  local out = assert(helper.capture("cd " .. q(helper.root) .. " && ls rockspec"))
  local v = out:match("starvideos%-(%d+%.%d+%.%d+)%-1%.rockspec")
  return assert(v, "no versioned rockspec in rockspec/: " .. out)
end

-- A folder of links to every command of PATH's folders but the compilers, linkers, make and pkg-config: what
-- luarocks runs (sh, unzip, cp, ...) and no build tool.
local function no_compiler_path(dir)
  local script = [[
for d in /usr/local/bin /usr/bin /bin /usr/sbin /sbin; do
  for f in "$d"/*; do
    n=${f##*/}
    case $n in
      cc|c89|c99|c++|cpp|gcc|g++|make|gmake|pkg-config|pkgconf|tcc|ccache|ld|ld.*|as|clang*|*-gcc|*-gcc-*|gcc-*|\
      *-g++*|*-cpp*|*pkg-config*|*-ld|*-ld.*|*-as) continue ;;
    esac
    [ -e "$0/$n" ] || ln -s "$f" "$0/$n"
  done
done]]
  assert(helper.execute("mkdir -p " .. q(dir) .. " && sh -c " .. q(script) .. " " .. q(dir)))
  return dir
end

describe("make release", function()
  if not helper.execute("command -v luarocks >/dev/null 2>&1 && command -v luarocks-admin >/dev/null 2>&1 "
    .. "&& command -v zip >/dev/null 2>&1") then
    pending("luarocks, luarocks-admin or zip is not installed (make deps)")
    return
  end
  local v = version()
  local tmp, rel, nocc, cache

  lazy_setup(function()
    tmp = helper.tmpdir()
    rel = tmp .. "/release"
    cache = ccache.dir()
    local out, ok = sh("cd " .. q(helper.root) .. " && env " .. ccache.env(cache) .. "make -s release RELEASE_DIR="
      .. q(rel))
    assert(ok, out)
    nocc = no_compiler_path(tmp .. "/bin")
  end)
  lazy_teardown(helper.cleanup)

  it("writes the source rocks, a binary rock of each rock for each Lua, the manifests, BUILD and SHA256SUMS",
    function()
    local function has(path) return helper.execute("test -f " .. q(rel .. "/" .. path)) end
    assert.is_true(has("starvideos-" .. v .. ".tar.gz"))
    for _, rock in ipairs(ROCKS) do
      assert.is_true(has(rock .. "-" .. v .. "-1.src.rock"), rock)
      -- the versioned rockspec beside it (CONTRACT, "Releases"), the checkout's own
      local rockspec = rock .. "-" .. v .. "-1.rockspec"
      local mine = rock == "starvideos" and "rockspec/" or "rocks/" .. rock:gsub("^starvideos%-", "") .. "/"
      assert.equal(helper.read_file(helper.root .. "/" .. mine .. rockspec), helper.read_file(rel .. "/" .. rockspec),
        rockspec)
      -- made from the scm one (tools/versioned.lua), not a copy kept by hand: every module the scm one installs
      local scm = mine .. rock .. "-scm-1.rockspec"
      assert.equal(versioned.make(helper.read_file(helper.root .. "/" .. scm), scm, v,
        versioned.needs_range(helper.root .. "/rocks/needs.lua")), helper.read_file(rel .. "/" .. rockspec))
      for _, lua in ipairs(LUAS) do
        for _, arch in ipairs(arches(rock)) do
          assert.is_true(has(lua .. "/" .. rock .. "-" .. v .. "-1." .. arch .. ".rock"), lua .. " " .. rock)
        end
      end
    end
    -- lua-cjson for Lua 5.5 (Debian packages none), built from ../shared/vendor's archive, for both platforms, in the
    -- 5.5 folder and its manifest, and named in BUILD
    local cv = assert(helper.capture("cd " .. q(rel .. "/5.5") .. " && ls lua-cjson-*-1.linux-x86_64.rock")
      :match("^lua%-cjson%-([%d.]+)%-1%.linux%-x86_64%.rock\n$"), "no lua-cjson rock in 5.5/")
    assert.is_true(has("5.5/lua-cjson-" .. cv .. "-1.linux-aarch64.rock"))
    local m55 = {}
    assert(load(assert(helper.read_file(rel .. "/5.5/manifest-5.5")), "manifest-5.5", "t", m55))()
    assert.is_table(m55.repository["lua-cjson"] and m55.repository["lua-cjson"][cv .. "-1"], "5.5/manifest-5.5")
    assert.matches("\nlua%-cjson for Lua 5%.5: " .. cv:gsub("%.", "%%.") .. ", built from lua%-cjson%-", "\n"
      .. helper.read_file(rel .. "/BUILD"))
    -- a manifest for every Lua in every folder, 5.5's too (LuaRocks 3.8's make-manifest writes 5.1-5.4's only)
    for _, dir in ipairs { "", "5.1/", "5.2/", "5.3/", "5.4/", "5.5/" } do
      for _, name in ipairs { "manifest", "manifest-5.1", "manifest-5.4", "manifest-5.5" } do
        local manifest = {}
        assert(load(assert(helper.read_file(rel .. "/" .. dir .. name), dir .. name), name, "t", manifest))()
        for _, rock in ipairs(ROCKS) do
          local entry = manifest.repository[rock] and manifest.repository[rock][v .. "-1"]
          assert.is_table(entry, dir .. name .. ": " .. rock)
          local got = {}
          for _, e in ipairs(entry) do got[#got + 1] = e.arch end
          table.sort(got)
          assert.same(dir == "" and { "rockspec", "src" } or arches(rock), got, dir .. name .. " " .. rock)
        end
      end
    end
    local glibc = helper.capture("ldd --version"):match("^[^\n]* (%d+%.%d+)\n")
    local build = "\n" .. helper.read_file(rel .. "/BUILD")
    -- the arm64 rocks' platform: Debian 12's glibc, and no symbol newer
    assert.matches("\nplatform: linux%-aarch64, cross%-built by aarch64%-linux%-gnu%-gcc ", build)
    local arm_glibc = build:match("\naarch64 glibc: (%d+%.%d+)\n")
    local arm_symbols = build:match("\naarch64 glibc symbols: (%d+%.%d+) at most\n")
    assert.is_string(arm_symbols, build)
    assert.is_true(not_newer(arm_symbols, arm_glibc), arm_symbols .. " is newer than the glibc " .. arm_glibc)
    assert.matches("\nglibc: " .. glibc:gsub("%.", "%%.") .. "\n", build)
    local symbols = build:match("\nglibc symbols: (%d+%.%d+) at most\n")
    assert.is_string(symbols, build)
    assert.is_true(not_newer(symbols, glibc), symbols .. " is newer than the glibc " .. glibc)
    local out, ok = sh("cd " .. q(rel) .. " && sha256sum -c --strict SHA256SUMS")
    assert.is_true(ok, out)
    local listed = select(2, helper.read_file(rel .. "/SHA256SUMS"):gsub("\n", ""))
    local files = select(2, helper.capture("cd " .. q(rel) .. " && find . -type f ! -name SHA256SUMS"):gsub("\n", ""))
    assert.equal(files, listed)
    -- the folder's binary rocks were built, never asked of a server: each holds its .so files
    out = helper.capture("unzip -l " .. q(rel .. "/5.4/starvideos-" .. v .. "-1.linux-x86_64.rock"))
    for _, so in ipairs { "lib/starvideos/core.so", "lib/starvideos/curl.so", "lib/starvideos/sign.so" } do
      assert.matches(so, out, 1, true)
    end
  end)

  for _, vm in ipairs { "lua5.4", "lua5.1", "luajit" } do
    describe("installed from the folder with no compiler (" .. vm .. ")", function()
      if not helper.execute("command -v " .. vm .. " >/dev/null 2>&1") then
        pending(vm .. " is not installed (make deps)")
        return
      end
      local t, tree

      lazy_setup(function()
        t = trees.vm(vm, helper.tmpdir())
        tree = helper.tmpdir() .. "/tree"
      end)

      it("has no cc, gcc, clang, make or pkg-config on its PATH, and installs every rock's binary rock", function()
        for _, tool in ipairs(TOOLS) do
          assert.is_falsy(helper.execute("PATH=" .. q(nocc) .. " command -v " .. tool .. " >/dev/null 2>&1"), tool)
        end
        assert.is_true(helper.execute("PATH=" .. q(nocc) .. " command -v luarocks unzip >/dev/null 2>&1"))
        for _, rock in ipairs(ROCKS) do
          local out, ok = sh("PATH=" .. q(nocc) .. " luarocks " .. t.flags .. " install --only-server="
            .. q(rel .. "/" .. t.luav) .. " --tree=" .. q(tree) .. " --deps-mode=none " .. rock)
          assert.is_true(ok, out)
          assert.matches("Installing " .. rel .. "/" .. t.luav .. "/" .. rock .. "-" .. v .. "-1.", out, 1, true)
          assert.matches(rock .. " " .. v .. "-1 is now installed", out, 1, true)
          assert.is_nil(out:find("luarocks.org", 1, true), out)
        end
      end)

      it("generates a video against the emulator from that tree, every C module of it loaded there", function()
        local emu = helper.emulator { queued = 0.1, processing = 0.1 }
        finally(function() emu:stop() end)
        local dir = helper.tmpdir()
        helper.write_file(dir .. "/run.lua", RUN)
        local out, ok = sh("cd " .. q(dir) .. " && " .. trees.env(t, tree) .. t.lua .. " run.lua " .. q(emu.url)
          .. " " .. q(emu.key) .. " " .. q(dir .. "/cat.mp4"))
        assert.is_true(ok, out)
        assert.matches("generated\tcompleted\t" .. dir .. "/cat.mp4", out, 1, true)
        assert.is_true(helper.read_video(dir .. "/cat.mp4") == SAMPLE, "the video differs from the emulator's")
        assert.equal(1, emu:creates())
        local loaded = select(2, out:gsub("\nloaded\t[%w.]+\ttable", ""))
        assert.equal(10, loaded, out)
      end)

      it("has C modules whose ldd names only libc, libm, libpthread/libdl, libcurl, libcrypto/libssl, hiredis",
        function()
        local sos = {}
        for _, f in ipairs(trees.files(tree .. "/lib/lua/" .. t.luav)) do
          if f:match("%.so$") then sos[#sos + 1] = f end
        end
        assert.same({ "starvideos/core.so", "starvideos/curl.so", "starvideos/fleet/native.so",
          "starvideos/redis.so", "starvideos/sign.so", "starvideos/sigv4.so" }, sos)
        local symbols = helper.read_file(rel .. "/BUILD"):match("\nglibc symbols: (%d+%.%d+) at most\n")
        local objdump = helper.execute("command -v objdump >/dev/null 2>&1")
        for _, f in ipairs(sos) do
          local bad, libc = foreign(tree .. "/lib/lua/" .. t.luav .. "/" .. f)
          assert.same({}, bad, f)
          assert.is_true(libc, f .. " names no libc")
          -- and takes no glibc symbol newer than BUILD says
          local newest = objdump and glibc_symbols(tree .. "/lib/lua/" .. t.luav .. "/" .. f)
          assert.is_true(not objdump or (newest ~= nil and not_newer(newest, symbols)), f .. ": " .. tostring(newest))
        end
      end)
    end)
  end

  it("has linux-aarch64 modules that readelf -h calls AArch64, and linux-x86_64 ones X86-64", function()
    local seen = {}
    for _, lua in ipairs(LUAS) do
      for rock in pairs(C_ROCKS) do
        for _, arch in ipairs(arches(rock)) do
          local dir = tmp .. "/elf/" .. lua .. "-" .. rock .. "-" .. arch
          assert(helper.execute("mkdir -p " .. q(dir) .. " && cd " .. q(dir) .. " && unzip -q "
            .. q(rel .. "/" .. lua .. "/" .. rock .. "-" .. v .. "-1." .. arch .. ".rock") .. " 'lib/*'"))
          local sos = trees.files(dir)
          assert.is_true(#sos > 0, dir)
          for _, so in ipairs(sos) do
            local machine = helper.capture("readelf -h " .. q(dir .. "/" .. so)):match("\n%s*Machine:%s*([^\n]-)%s*\n")
            assert.equal(arch == "linux-aarch64" and "AArch64" or "Advanced Micro Devices X86-64", machine,
              lua .. " " .. arch .. " " .. so)
            seen[arch] = (seen[arch] or 0) + 1
          end
        end
      end
    end
    -- core.so, curl.so, sign.so, redis.so, fleet/native.so, sigv4.so for each Lua
    assert.same({ ["linux-aarch64"] = 6 * #LUAS, ["linux-x86_64"] = 6 * #LUAS }, seen)
  end)

  it("installs every rock and lua-cjson for Lua 5.5 from its folder with no compiler, asking no server; a Lua 5.5 "
    .. "loads its C modules and generates a video from that tree alone", function()
    local tree = tmp .. "/tree-5.5"
    local out55, ok55 = sh("PATH=" .. q(nocc) .. " luarocks --lua-version=5.5 install --only-server="
      .. q(rel .. "/5.5") .. " --tree=" .. q(tree) .. " --deps-mode=none lua-cjson")
    assert.is_true(ok55, out55)
    assert.matches("Installing " .. rel .. "/5.5/lua-cjson-", out55, 1, true)
    assert.is_nil(out55:find("luarocks.org", 1, true), out55)
    for _, rock in ipairs(ROCKS) do
      local out, ok = sh("PATH=" .. q(nocc) .. " luarocks --lua-version=5.5 install --only-server="
        .. q(rel .. "/5.5") .. " --tree=" .. q(tree) .. " --deps-mode=none " .. rock)
      assert.is_true(ok, out)
      assert.matches("Installing " .. rel .. "/5.5/" .. rock .. "-" .. v .. "-1.", out, 1, true)
      assert.matches(rock .. " " .. v .. "-1 is now installed", out, 1, true)
      assert.is_nil(out:find("luarocks.org", 1, true), out)
    end
    assert.same({ "cjson.so", "cjson/safe.so", "starvideos/core.so", "starvideos/curl.so", "starvideos/fleet/native.so",
      "starvideos/redis.so", "starvideos/sign.so", "starvideos/sigv4.so" }, trees.files(tree .. "/lib/lua/5.5"))
    -- then on a Lua 5.5 (the vendored sources' interpreter, built here as ../shared/vendor's README says), every C
    -- module of that tree loaded (lua-cjson's from the folder), the core reading an answer, and a video generated
    -- against the emulator
    local vendor
    for _, d in ipairs { os.getenv("VENDOR") or "", helper.root .. "/../shared/vendor",
      helper.root .. "/../../shared/vendor" } do
      if not vendor and d ~= "" and helper.exists(d .. "/lua-5.5.0.tar.gz") then
        vendor = helper.capture("cd " .. q(d) .. " && pwd"):match("^(.-)\n")
      end
    end
    assert.is_string(vendor, "no ../shared/vendor/lua-5.5.0.tar.gz (VENDOR=" .. (os.getenv("VENDOR") or "") .. ")")
    local l55 = tmp .. "/lua5.5"
    local out, ok = sh("mkdir -p " .. q(l55) .. " && cd " .. q(l55) .. " && tar xzf " .. q(vendor
      .. "/lua-5.5.0.tar.gz") .. " && cc -O2 -DLUA_USE_LINUX -Wl,-E -o lua lua-5.5.0/onelua.c -lm -ldl")
    assert.is_true(ok, out)
    helper.write_file(l55 .. "/run.lua", [[
for _, m in ipairs { "starvideos.core", "starvideos.curl", "starvideos.sign", "starvideos.redis",
  "starvideos.fleet.native", "starvideos.sigv4", "cjson", "cjson.safe" } do
  print("loaded", m, type(require(m)))
end
local t = assert(require("starvideos.core").verdict("query", 200, '{"id":"t","status":"queued"}'))
print(_VERSION, t.id, t.status)
local c = assert(require("starvideos").new { api_key = arg[2], base_url = arg[1] })
local task = assert(c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = arg[3], interval = 0.05 }))
print("generated", task.status, task.path)
]])
    local emu = helper.emulator { queued = 0.1, processing = 0.1 }
    finally(function() emu:stop() end)
    -- (the tree's modules alone: no system folder, whose Lua 5.4 modules a 5.5 would not load)
    out, ok = sh("cd " .. q(l55) .. " && " .. trees.env_paths(tree .. "/share/lua/5.5/?.lua;" .. tree
      .. "/share/lua/5.5/?/init.lua", tree .. "/lib/lua/5.5/?.so") .. "./lua run.lua " .. q(emu.url) .. " "
      .. q(emu.key) .. " " .. q(l55 .. "/cat.mp4"))
    assert.is_true(ok, out)
    assert.equal(8, select(2, out:gsub("loaded\t[%w.]+\ttable\n", "")), out)
    assert.matches("\nLua 5.5\tt\tqueued\n", out, 1, true)
    assert.matches("generated\tcompleted\t" .. l55 .. "/cat.mp4", out, 1, true)
    assert.is_true(helper.read_video(l55 .. "/cat.mp4") == SAMPLE, "the video differs from the emulator's")
    assert.equal(1, emu:creates())
  end)

  -- The arm64 rocks on an arm64 Lua (Debian's lua5.4 and lua5.1 of the sysroot `make release` unpacked) under
  -- qemu-aarch64: each rock of the Lua's folder (linux-aarch64 and all) unpacked as LuaRocks lays a tree out
  -- (lib/ into lib/lua/5.x, lua/ into share/lua/5.x), then a video generated against the emulator (native) and every
  -- module loaded, and the core's specs (spec/core/) run by busted on that Lua with the tree's C modules.
  local ROOT = helper.capture("cd " .. q(helper.root) .. " && pwd"):match("^(.-)\n")
  local SYSROOT = ROOT .. "/build/sysroot-aarch64"
  for _, luav in ipairs { "5.4", "5.1" } do
    describe("on arm64 (qemu-aarch64, Lua " .. luav .. ")", function()
      if not helper.execute("command -v qemu-aarch64 >/dev/null 2>&1") then
        pending("qemu-aarch64 is not installed (Debian: qemu-user; make deps)")
        return
      end
      local tree, arm

      lazy_setup(function()
        tree = helper.tmpdir() .. "/tree"
        for _, rock in ipairs(ROCKS) do
          local arch = arches(rock)[1]
          local file = rel .. "/" .. luav .. "/" .. rock .. "-" .. v .. "-1." .. arch .. ".rock"
          assert(helper.execute("mkdir -p " .. q(tree .. "/x") .. " && cd " .. q(tree .. "/x") .. " && unzip -q -o "
            .. q(file) .. " && mkdir -p ../lib/lua/" .. luav .. " ../share/lua/" .. luav
            .. " && { [ ! -d lib ] || cp -r lib/. ../lib/lua/" .. luav .. "/; } && { [ ! -d lua ] || cp -r lua/. "
            .. "../share/lua/" .. luav .. "/; } && cd .. && rm -rf x"))
        end
        -- the arm64 interpreter, its files (/usr/..., /lib/...) looked for in the sysroot first
        arm = "qemu-aarch64 -L " .. q(SYSROOT) .. " " .. q(SYSROOT .. "/usr/bin/lua" .. luav)
      end)

      it("loads the arm64 core and every module of its tree, and saves a video from the emulator", function()
        local emu = helper.emulator { queued = 0.1, processing = 0.1 }
        finally(function() emu:stop() end)
        local dir = helper.tmpdir()
        helper.write_file(dir .. "/run.lua", RUN .. "print(_VERSION, jit and 'jit' or 'no jit')\n")
        local share, lib = tree .. "/share/lua/" .. luav, tree .. "/lib/lua/" .. luav
        local out, ok = sh("cd " .. q(dir) .. " && " .. trees.env_paths(share .. "/?.lua;" .. share .. "/?/init.lua;;",
          lib .. "/?.so;;") .. arm .. " run.lua " .. q(emu.url) .. " " .. q(emu.key) .. " " .. q(dir .. "/cat.mp4"))
        assert.is_true(ok, out)
        assert.matches("generated\tcompleted\t" .. dir .. "/cat.mp4", out, 1, true)
        assert.matches("\nLua " .. luav .. "\tno jit\n", out, 1, true)
        assert.is_true(helper.read_video(dir .. "/cat.mp4") == SAMPLE, "the video differs from the emulator's")
        assert.equal(1, emu:creates())
        assert.equal(10, select(2, out:gsub("\nloaded\t[%w.]+\ttable", "")), out)
      end)

      if luav == "5.4" then
        it("runs docs/install.md's arm64 try as written (its two folders the spec's): a video, `completed cat.mp4 "
          .. "Lua 5.4`", function()
          local text = helper.read_file(helper.root .. "/docs/install.md")
          local block = assert(text:match("<!%-%- the arm64 try: spec/hosts/release_spec%.lua runs this block %-%->\n"
            .. "```sh\n(.-)```"), "docs/install.md's arm64 try")
          local first = "REL=build/release SYSROOT=build/sysroot-aarch64\n"
          assert.equal(first, block:sub(1, #first))
          local emu = helper.emulator { queued = 0.1, processing = 0.1 }
          finally(function() emu:stop() end)
          local dir = helper.tmpdir()
          helper.write_file(dir .. "/try.sh", "REL=" .. q(rel) .. " SYSROOT=" .. q(SYSROOT) .. "\n"
            .. block:sub(#first + 1))
          local out, ok = sh("cd " .. q(dir) .. " && " .. trees.env_paths(";;", ";;") .. "STARVIDEOS_BASE_URL="
            .. q(emu.url) .. " STARVIDEOS_API_KEY=" .. q(emu.key) .. " sh try.sh")
          assert.is_true(ok, out)
          assert.equal("completed\tcat.mp4\tLua 5.4\n", out)
          assert.equal(1, emu:creates())
          assert.is_true(helper.read_video(dir .. "/cat.mp4") == SAMPLE, "the video differs from the emulator's")
        end)
      end

      it("passes the core's specs (spec/core/) on that Lua, the emulator native", function()
        -- busted on the arm64 Lua (the sysroot's lua-busted), the checkout's Lua beside the tree's C modules
        -- (STARVIDEOS_CPATH, .busted's cpath); the emulator a native lua5.4 (STARVIDEOS_LUA).  The one case that
        -- runs a child Lua on those modules (the locale's) is left out: the child would be native.
        local out, ok = sh("cd " .. q(helper.root) .. " && STARVIDEOS_LUA=lua5.4 STARVIDEOS_CPATH=" .. q(tree
          .. "/lib/lua/" .. luav .. "/?.so") .. " " .. trees.env_paths(";;", ";;") .. arm
          .. " /usr/bin/busted --exclude-tags=hosts --filter-out='locale' -o TAP spec/core/answer_spec.lua "
          .. "spec/core/validate_spec.lua spec/core/media_spec.lua")
        assert.is_true(ok, out)
        local passed = select(2, out:gsub("\nok %d+ ", ""))
        assert.is_true(passed > 100, out)
        assert.is_nil(out:find("\nnot ok ", 1, true), out)
      end)
    end)
  end

  it("has every rockspec pass luarocks lint (a broken one fails it), each versioned one its scm one but for version, "
    .. "source and the core's range", function()
    local specs = rockspecs()
    assert.equal(10, #specs, table.concat(specs, " "))
    for _, f in ipairs(specs) do
      local out, ok = sh("cd " .. q(helper.root) .. " && luarocks lint " .. q(f))
      assert.is_true(ok, f .. ": " .. out)
    end
    local broken = tmp .. "/starvideos-9.9.9-1.rockspec"
    helper.write_file(broken, (helper.read_file(helper.root .. "/rockspec/starvideos-" .. v .. "-1.rockspec")
      :gsub('\nversion = "[^"]*"', '\nversion = "9.9.9"')))
    assert.is_falsy(select(2, sh("luarocks lint " .. q(broken))), "a version without its revision passed lint")
    for _, f in ipairs(specs) do
      if not f:find("-scm-1", 1, true) then
        local scm_name = f:gsub("%-" .. v:gsub("%.", "%%.") .. "%-1%.", "-scm-1.")
        local scm = assert(helper.read_file(helper.root .. "/" .. scm_name), scm_name)
        local made = assert(helper.read_file(helper.root .. "/" .. f))
        -- from the description on, the dependencies without their comments and without the core's range
        local function body(text)
          local deps = text:match("\ndependencies = (%b{})"):gsub("\n%s*%-%-[^\n]*", "")
            :gsub('\n  "starvideos >= [^"\n]*",', "")
          return text:match("\ndescription = .*$"):gsub("\ndependencies = %b{}", function() return deps end)
        end
        assert.equal(body(scm), body(made), f)
        assert.matches('\nversion = "' .. v:gsub("%.", "%%.") .. '%-1"\n', made, nil, f)
        assert.matches('\nsource = {\n  url = "starvideos%-' .. v:gsub("%.", "%%.") .. '%.tar%.gz",', made, nil, f)
        if f:find("^rocks/") then
          local major, minor = v:match("^(%d+)%.(%d+)")
          assert.matches('\n  "starvideos >= ' .. major .. "%." .. minor .. ", < " .. major .. "%." .. (minor + 1)
            .. '",\n', made, nil, f)
        end
      end
    end
  end)

  it("refuses a product rock against a core outside its range (0.5.0 the only one offered), and installs it beside "
    .. "the release's core", function()
    local major, minor = v:match("^(%d+)%.(%d+)")
    local next_v = major .. "." .. (minor + 1) .. ".0"
    local other = tmp .. "/other"
    assert(helper.execute("mkdir " .. q(other) .. " && cp " .. q(rel .. "/5.4/starvideos-redis-" .. v
      .. "-1.linux-x86_64.rock") .. " " .. q(other)))
    helper.write_file(other .. "/starvideos-" .. next_v .. "-1.rockspec",
      (helper.read_file(helper.root .. "/rockspec/starvideos-" .. v .. "-1.rockspec")
        :gsub('\nversion = "[^"]*"', '\nversion = "' .. next_v .. '-1"')))
    local out, ok = sh("luarocks-admin make-manifest " .. q(other))
    assert.is_true(ok, out)
    -- (the PATH's own: with a --deps-mode but none LuaRocks 3.8 checks the external libraries, and finds Debian's
    -- multiarch folder through `gcc -print-multiarch` alone; docs/install.md, "Releases")
    local function install(tree, rock, server, mode)
      return sh("luarocks --lua-version=5.4 install --only-server=" .. q(server)
        .. " --tree=" .. q(tree) .. " --deps-mode=" .. mode .. " " .. rock)
    end
    -- a fresh tree: the one core offered is 0.5.0, outside starvideos >= 0.4, < 0.5
    local fresh = tmp .. "/range-fresh"
    out, ok = install(fresh, "starvideos-redis", other, "one")
    assert.is_falsy(ok, out)
    assert.matches("starvideos >= " .. major .. "." .. minor .. ", < " .. major .. "." .. (minor + 1), out, 1, true)
    assert.is_falsy(helper.execute("test -e " .. q(fresh .. "/lib/luarocks/rocks-5.4/starvideos-redis")), out)
    -- beside the release's core, the same server folder's rock installs
    local beside = tmp .. "/range-beside"
    out, ok = install(beside, "starvideos", rel .. "/5.4", "none")
    assert.is_true(ok, out)
    out, ok = install(beside, "starvideos-redis", other, "one")
    assert.is_true(ok, out)
    assert.matches("starvideos-redis " .. v .. "-1 is now installed", out, 1, true)
  end)
end)
