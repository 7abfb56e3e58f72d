-- What newcomers found wrong in the docs and recipes (issue 55, items 10, 14 and 17), each read from the
-- page or the file and tried where it can be here: the README's word on the types, the demo's and the tiers'
-- installs, the rocks' builds.  (observability.md's queries and the dashboard's picture: the observe rock's
-- docs_observe_spec.lua.)

local helper = require "spec.helper"
local D = require "spec.support.docs_blocks"

local q = helper.shell_quote
local page, flat, says = D.page, D.flat, D.says

describe("the README", function()
  it("names the types (types/starvideos.lua) and links the editors' section", function()
    says("README.md", "`types/starvideos.lua`", "(docs/reference.md#editors)")
  end)
end)

describe("what a goal installs", function()
  -- the packages a goal's `make -n` has tools/deps.sh install, as a sorted list
  local function installs(goal)
    local out = helper.capture("cd " .. q(helper.root) .. " && " .. helper.UNINSTRUMENTED
      .. "-u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n " .. goal .. " 2>&1")
    local line = assert(out:match("sh tools/deps%.sh %-%-if%-possible ([^\n]+)"), "make -n " .. goal .. ":\n" .. out)
    local list = {}
    for name in line:gmatch("%S+") do list[#list + 1] = name end
    table.sort(list)
    return list
  end

  it("installs what the demo needs (the build, Lua 5.4, lua-cjson, argparse, LuaSocket), not the test set", function()
    assert.same({ "gcc", "libcurl4-openssl-dev", "liblua5.4-dev", "libssl-dev", "lua-argparse", "lua-cjson",
      "lua-socket", "lua5.4", "make", "pkg-config" }, installs("demo"))
  end)

  it("make test installs the fast tier's own (busted, luacheck, LuaSocket, Redis, ...), not the other tiers'",
    function()
    local set = {}
    for _, name in ipairs(installs("test")) do set[name] = true end
    for _, name in ipairs { "lua5.4", "liblua5.4-dev", "gcc", "lua-socket", "lua-busted", "lua-check", "redis-server",
      "libhiredis-dev" } do
      assert.is_true(set[name] or false, name)
    end
    -- the hosts tier's, the other VMs', the release's cross tools, make check's
    for _, name in ipairs { "chromium", "love", "xvfb", "nginx", "qemu-user", "gcc-aarch64-linux-gnu", "lua5.1",
      "lua5.2", "lua5.3", "luajit2", "valgrind", "prometheus", "clang" } do
      assert.is_nil(set[name], name)
    end
  end)

  it("make test VM=<vm> installs that VM's too and runs the fast tier on it as make test-all does; another VM refused",
    function()
    local set = {}
    for _, name in ipairs(installs("test VM=lua5.1")) do set[name] = true end
    assert.is_true(set["lua5.1"] and set["liblua5.1-0-dev"] and set["lua-busted"] or false)
    assert.is_nil(set["luajit2"])
    local make = "cd " .. q(helper.root) .. " && " .. helper.UNINSTRUMENTED
      .. "-u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n SV_DEPS_DONE=1 "
    local out = helper.capture(make .. "test VM=luajit 2>&1")
    assert.matches("\nsh tools/test%-all%.sh %-%-fast luajit *\n$", out)
    local said, ok = helper.capture(make .. "test VM=lua5.9 2>&1")
    assert.is_nil(ok)
    assert.matches("make test: VM=lua5.9 is not one of: lua5.1 lua5.2 lua5.3 lua5.4 lua5.5 luajit", said, 1, true)
  end)

  it("make test-all installs the whole set (every VM, nginx, LÖVE, Chromium, the release's tools, ...)", function()
    local set = {}
    for _, name in ipairs(installs("test-all")) do set[name] = true end
    for _, name in ipairs { "lua-socket", "lua-busted", "luajit2", "lua5.1", "lua5.2", "lua5.3", "nginx",
      "redis-server", "love", "xvfb", "chromium", "prometheus", "valgrind", "qemu-user", "zip" } do
      assert.is_true(set[name] or false, name)
    end
  end)
end)

describe("a rock's build from a checkout #hosts", function()
  -- what a build left in a clone that git does not track: its ignored files, but build/'s
  local function left(dir)
    local list = {}
    local status = helper.capture("cd " .. q(dir) .. " && git status --short --ignored --untracked-files=all")
    for f in status:gmatch("[^\n]+") do
      local path = f:match("^!! (.+)$") or f:match("^%?%? (.+)$")
      if path and not path:find("^build/") then list[#list + 1] = path end
    end
    return list
  end

  it("make clean removes what luarocks make left; make rock leaves nothing beside the sources", function()
    if not helper.execute("command -v luarocks >/dev/null 2>&1") then return pending("luarocks is not installed") end
    local top = helper.tmpdir()
    local clone, tree = top .. "/clone", top .. "/tree"
    local state = helper.capture("cd " .. q(helper.root) .. " && (git stash create || true)"):match("^(%x+)")
      or helper.capture("cd " .. q(helper.root) .. " && git rev-parse HEAD"):match("^(%x+)")
    local bare = helper.UNINSTRUMENTED .. "-u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
    local function sh(cmd)
      local out, ok = helper.capture(bare .. "sh -c " .. q("cd " .. q(clone) .. " && " .. cmd) .. " 2>&1")
      assert(ok, cmd .. ":\n" .. out)
    end
    assert(helper.execute("git clone -q " .. q(helper.root) .. " " .. q(clone)))
    sh("git -c advice.detachedHead=false checkout -q " .. state)
    sh("luarocks --lua-version=5.4 make --deps-mode=none --tree " .. q(tree))
    local before = left(clone)
    assert.is_true(#before > 10, "luarocks make left " .. #before .. " files") -- (what the docs say it leaves)
    sh("make -s clean")
    assert.same({}, left(clone))
    sh("make -s rock LUAROCKS_FLAGS=" .. q("--lua-version=5.4 --deps-mode=none --tree " .. tree))
    assert.same({}, left(clone))
    assert.is_true(helper.exists(tree .. "/lib/lua/5.4/starvideos/core.so"))
    helper.cleanup()
  end)
end)

describe("docs/install.md's LuaRocks", function()
  local text = flat("docs/install.md")

  it("names every header the rock's build needs: Lua's, libcurl's, OpenSSL's", function()
    local sec = assert(text:match("## LuaRocks (.-)## The other rocks"))
    for _, pkg in ipairs { "liblua5.4-dev", "liblua5.1-0-dev", "libluajit2-5.1-dev", "libcurl4-openssl-dev",
      "libssl-dev", "lua-devel", "libcurl-devel", "openssl-devel" } do
      assert.matches("`" .. pkg .. "`", sec, 1, true)
    end
  end)

  it("makes each product rock from its rockspec (none is published), in a checkout and a release folder", function()
    assert.matches("No rock is published on luarocks.org yet", text, 1, true)
    for _, p in ipairs { "README.md", "docs/install.md", "docs/keep-and-fleet.md", "docs/storage.md",
      "docs/observability.md", "docs/emulator.md" } do
      local told = flat(p):gsub("`luarocks install starvideos%-%a+` answers", "")
      assert.is_nil(told:find("luarocks install starvideos", 1, true), p .. " tells to luarocks install a rock")
    end
    local made = {}
    for _, b in ipairs(D.extract(helper.root)) do
      if b.file == "docs/install.md" then
        for spec in b.body:gmatch("make %-%-deps%-mode=none (%S+%.rockspec)") do made[#made + 1] = spec end
      end
    end
    table.sort(made)
    local each = {} -- (every product rock's scm rockspec of this checkout)
    for f in helper.capture("cd " .. q(helper.root) .. " && ls rocks/*/*-scm-1.rockspec"):gmatch("%S+") do
      each[#each + 1] = f
    end
    table.sort(each)
    assert.is_true(#each >= 4, #each .. " rockspecs")
    assert.same(each, made)
    for _, spec in ipairs(made) do assert.is_true(helper.exists(helper.root .. "/" .. spec), spec) end
    local release = assert(text:match("`luarocks %-%-lua%-version=5%.4 make %-%-deps%-mode=none "
      .. "(rockspec/starvideos%-[%d.]+%-1%.rockspec)`"))
    assert.is_true(helper.exists(helper.root .. "/" .. release), release)
  end)
end)

describe("docs/storage.md's local S3 recipe", function()
  it("generates with --interval 1 against the emulator, a flag the command line has", function()
    local text = flat("docs/storage.md")
    local line = assert(text:match("`(bin/starvideos generate [^`]-s3://videos/cat%.mp4)`"), "no generate line")
    assert.matches(" --interval 1 ", line, 1, true)
    local help = helper.capture("cd " .. q(helper.root) .. " && " .. helper.lua .. " bin/starvideos generate --help")
    assert.matches("\n%s+%-%-interval[%s=]", help)
  end)

  it("its server's --help prints the usage and starts nothing; a wrong option is refused, named", function()
    if not helper.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    local js = q(helper.root .. "/spec/npm/s3_server.js")
    local out, ok = helper.capture("timeout 10 node " .. js .. " --help 2>&1")
    assert(ok, "--help: " .. out)
    assert.matches("^usage: node spec/npm/s3_server%.js %-%-dir DIR %-%-log FILE", out)
    assert.is_nil(out:find('"port":%d'), out) -- (a server's first line)
    for arg, why in pairs { ["--dir /tmp/x --log /tmp/y --bukcet v"] = "unknown option --bukcet",
      ["--log /tmp/y"] = "--dir DIR is required", ["--dir"] = "--dir needs a value" } do
      out, ok = helper.capture("timeout 10 node " .. js .. " " .. arg .. " 2>&1")
      assert.is_falsy(ok, arg)
      assert.matches("s3_server.js: " .. why .. "\nusage:", out, 1, true)
    end
  end)
end)

describe("the nginx confs' resolver", function()
  it("is the host's, written by the docs' awk line, never a hard-coded address (127.0.0.53 is not on every host)",
    function()
    -- (examples/studio/nginx.conf names public resolvers: tools/studio.sh, which fills it in, is not this change's)
    local files = { "docs/openresty.md", "examples/openresty/nginx.conf", "examples/openresty/README.md" }
    for f in helper.capture("cd " .. q(helper.root) .. " && find docs examples -name '*.conf' -o -name '*.md'")
      :gmatch("[^\n]+") do files[#files + 1] = f end
    for i, f in ipairs(files) do
      for line in page(f):gmatch("[^\n]+") do
        assert.is_nil(line:match("^%s*resolver%s+127%.0%.0%.53"), f .. ": " .. line)
        assert.is_true(i > 3 or not line:match("^%s*resolver%s+[%d%.%[]"), f .. ": " .. line)
      end
    end
    local conf = page("examples/openresty/nginx.conf")
    assert.matches("\n    include ../../build/openresty/resolver*.conf;\n", conf, 1, true)
    assert.matches("\n    include resolver*.conf;", page("docs/openresty.md"), 1, true)
    local awk = "awk '/^nameserver/ { a = $2; if (a ~ /:/) a = \"[\" a \"]\"; print \"resolver \" a \" ipv6=off;\"; "
      .. "exit }' /etc/resolv.conf"
    assert.matches("\n" .. awk .. " > build/openresty/resolver.conf\n", page("examples/openresty/README.md"), 1, true)
    assert.matches("\n  " .. awk .. " > resolver.conf\n", page("docs/openresty.md"), 1, true)
    -- the line, run here: this host's first nameserver, as nginx wants it
    local want = (helper.read_file("/etc/resolv.conf") or ""):match("%f[^\n%z]nameserver%s+(%S+)")
    local out = helper.capture(awk)
    assert.equal(want and "resolver " .. (want:find(":") and "[" .. want .. "]" or want) .. " ipv6=off;\n" or "", out)
    local v6 = helper.capture("printf 'nameserver fd00::53\\n' | " .. awk:gsub(" /etc/resolv%.conf$", ""))
    assert.equal("resolver [fd00::53] ipv6=off;\n", v6)
  end)

  it("and the example's emulator writes its request lines to a log, not the terminal curl answers in", function()
    local line = assert(page("examples/openresty/README.md"):match("\n(bin/starvideos emulator [^\n]+)\n"))
    assert.matches(" > build/openresty/emulator.log 2>&1 &$", line)
  end)
end)

describe("docs/keep-and-fleet.md's Sentinel", function()
  local blocks = {}
  for _, b in ipairs(D.extract(helper.root)) do
    if b.file == "docs/keep-and-fleet.md" then blocks[#blocks + 1] = b end
  end

  it("has a recipe: sentinel.conf's lines, a primary, a replica and three sentinels started, store check through them "
    .. "(spec/hosts/docs_run_spec.lua runs it)", function()
    local conf, sh
    for i, b in ipairs(blocks) do
      if b.lang == "conf" then conf, sh = b.body, blocks[i + 1] and blocks[i + 1].body end
    end
    assert(conf, "no sentinel.conf block")
    assert.matches("\nsentinel monitor mymaster 127%.0%.0%.1 (%d+) 2\n", conf)
    local primary = conf:match("\nsentinel monitor mymaster 127%.0%.0%.1 (%d+) 2\n")
    assert(sh, "no commands after sentinel.conf")
    assert.matches("\nredis%-server %-%-port " .. primary .. " ", "\n" .. sh)
    assert.matches("%-%-replicaof 127%.0%.0%.1 " .. primary .. " &\n", sh)
    local ports = assert(sh:match("\nfor port in ([%d ]+); do [^\n]* %-%-sentinel [^\n]*& done\n"),
      "no three sentinels")
    assert.equal(3, select(2, ports:gsub("%d+", "")))
    local three = "127%.0%.0%.1:%d+,127%.0%.0%.1:%d+,127%.0%.0%.1:%d+"
    assert.matches("\nbin/starvideos store check 'redis%+sentinel://" .. three .. "/mymaster'\n", sh)
  end)

  it("says that ACL SETUSER must run on every replica (Redis does not replicate it)", function()
    says("docs/keep-and-fleet.md", "Run it on every node, each replica too", "Redis does not replicate `ACL SETUSER`")
  end)
end)

describe("examples/love's messages", function()
  local saved = package.path
  package.path = helper.root .. "/examples/love/?.lua;" .. package.path
  local messages = require "messages"
  package.path = saved

  it("the quit hint keeps the game's --interval (wait would poll every 30 s without it)", function()
    assert.equal("starvideos wait t1 --out q.mp4 --interval 0.5", messages.fetch_command("t1", "q.mp4", false, 0.5))
    assert.equal("starvideos wait t1 --out q.mp4", messages.fetch_command("t1", "q.mp4"))
    assert.equal("starvideos download t1 q.mp4", messages.fetch_command("t1", "q.mp4", true, 0.5))
    assert.matches("`starvideos wait t1 --out q.mp4 --interval 2` picks it up",
      messages.describe({ kind = "timeout", id = "t1" }, { out = "q.mp4", interval = 2 }), 1, true)
    local main = page("examples/love/main.lua")
    assert.matches('messages.fetch_command(job.id, opts.out, job.state == "downloading", opts.interval)', main, 1, true)
  end)

  it("the window says the video is being checked once its bytes are all in, not still downloading", function()
    assert.equal("Downloading the video", messages.state_text { state = "downloading", bytes = 10, total = 3e9 })
    assert.equal("Downloading the video", messages.state_text { state = "downloading" })
    assert.matches("^Checking the video", messages.state_text { state = "downloading", bytes = 3e9, total = 3e9 })
    assert.equal("Waiting for the video", messages.state_text { state = "polling" })
    assert.matches("messages.state_text(job)", page("examples/love/main.lua"), 1, true)
  end)
end)

