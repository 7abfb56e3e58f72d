-- Every documented step, in a fresh clone: each fenced block of README.md,
-- docs/*.md and examples/*/README.md is classified below (BLOCKS, keyed by file
-- and the block's number in it) and run or checked as written.  A block not in
-- the table, or a row naming no such block (or another language), fails.
--
-- The clone: `git clone` of this checkout, at its working tree's state (`git
-- stash create`: the tracked files as they are now, committed or not), built
-- with the docs' `make`, `make luajit` and `make static`.  The emulator the pages
-- start (`bin/starvideos emulator ...` from the clone, on a port the system
-- picks) serves the blocks that talk to the service; its printed `export` lines
-- are what a shell is given, and a page's http://127.0.0.1:40123 or :PORT and
-- its STARVIDEOS_API_KEY=... are made its URL and key.  Nothing of this suite's
-- Lua paths reaches a block: a shell gets them from `eval "$(make -s env)"` as
-- the pages say.
--
-- run:   the lines run in a shell, the Lua written to a file and run by the VM
--        its page names (a free name the snippet leaves to its reader, such as
--        `prompts`, set by `-e`); what they leave (videos, output) is checked.
--        Snippets that poll every 10 or 30 s run at once, in the background.
-- check: a block too costly or impossible here (apt-get, `make test`, LuaRocks
--        into /usr/local, a real cloud URL, a game window, nginx waiting 30 s for
--        its first poll): every command it names exists (make -n TARGET, the
--        command line's SUB --help lists each flag, the Debian packages are
--        installed, luarocks' help lists each flag), Lua compiles and the
--        starvideos names it uses exist, nginx -t accepts nginx text, C compiles
--        against the headers; where another hosts spec runs it as written, the
--        row names that spec too.
-- shown: an output sample or a diagram: its fixed words are in the code, the
--        files it names exist.

local socket = require "socket"
local helper = require "spec.helper"
local D = require "spec.support.docs_blocks"
local ccache = require "spec.hosts.support.ccache"

local q = helper.shell_quote
local str_format = string.format
local AS_TYPED = helper.UNINSTRUMENTED .. "-u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
local CLEAN = "unset LUA_INIT LUA_INIT_5_4 LUA_PATH LUA_CPATH LUA_PATH_5_2 LUA_CPATH_5_2 LUA_PATH_5_3 LUA_CPATH_5_3"
  .. " LUA_PATH_5_4 LUA_CPATH_5_4 STARVIDEOS_API_KEY STARVIDEOS_BASE_URL STARVIDEOS_STORE STARVIDEOS_LOG"
  .. " STARVIDEOS_LUA STARVIDEOS_CPATH"

if helper.vm ~= "lua5.4" then
  describe("the docs' blocks", function()
    it("run once, under lua5.4 (bin/starvideos, make)", function() pending("checked under lua5.4") end)
  end)
  return
end

-- ------------------------------------------------------------ the clone

local ROOT = helper.capture("cd " .. q(helper.root) .. " && pwd"):match("^([^\n]+)")
local TOP = helper.tmpdir()
local CLONE = TOP .. "/starvideos"
local ctx = { root = CLONE }

local function sh(cmd)
  local out, ok = helper.capture(AS_TYPED .. "sh -c " .. q(cmd) .. " 2>&1 </dev/null")
  return out, ok
end

local function clone()
  local state = helper.capture("cd " .. q(ROOT) .. " && git stash create 2>/dev/null"):match("^(%x+)")
    or helper.capture("cd " .. q(ROOT) .. " && git rev-parse HEAD"):match("^(%x+)")
  local out, ok = sh("git clone -q " .. q(ROOT) .. " " .. q(CLONE) .. " && cd " .. q(CLONE)
    .. " && git -c advice.detachedHead=false checkout -q " .. state)
  assert(ok, "git clone: " .. out)
end
clone()

-- ------------------------------------------------------------ sessions

local jobs, emulators = {}, {}

-- A shell script: the page's lines in `dir`, each announced by ">>> file#n: line"
-- (set -e: the first failing line ends it), after `before` (lines of ours:
-- the exports an emulator printed).
local function script(dir, lines, before)
  local s = { "set -e", CLEAN, "cd " .. q(CLONE) }
  for _, l in ipairs(before or {}) do s[#s + 1] = l end
  s[#s + 1] = "cd " .. q(dir)
  for _, l in ipairs(lines) do
    s[#s + 1] = "echo " .. q(">>> " .. l[1] .. ": " .. l[2])
    s[#s + 1] = l[2]
  end
  return table.concat(s, "\n") .. "\n"
end

-- Starts a script in bash (a user's shell: `kill %1` knows its jobs), in a
-- session of its own, its output and status in dir's .out and .rc: the job.
local function launch(dir, lines, before)
  local path = dir .. "/.session.sh"
  helper.write_file(path, script(dir, lines, before))
  os.remove(dir .. "/.rc")
  local sid = tonumber(helper.capture(AS_TYPED .. "setsid sh -c " .. q("bash " .. q(path) .. " >" .. q(dir .. "/.out")
    .. " 2>&1 </dev/null; echo $? >" .. q(dir .. "/.rc")) .. " </dev/null >/dev/null 2>&1 & echo $!"):match("%d+"))
  return { dir = dir, sid = sid }
end

-- Ends what a job's session left running (a background line the page never stopped).
local function reap(job)
  for pid in helper.capture("ps -o pid= -s " .. job.sid .. " 2>/dev/null"):gmatch("%d+") do
    helper.execute("kill " .. pid .. " 2>/dev/null")
  end
end

-- Waits for a job (150 s at most): its output, whether it succeeded, its status.
local function finish(job)
  helper.wait_until(function() return helper.exists(job.dir .. "/.rc") end, 150)
  reap(job)
  local rc = (helper.read_file(job.dir .. "/.rc") or "none"):match("%S+")
  return helper.read_file(job.dir .. "/.out") or "", rc == "0", rc
end

-- Runs a script now: its output, whether it succeeded.
local function run(dir, lines, before)
  return finish(launch(dir, lines, before))
end

-- Starts a script in the background, a job to wait for by name.
local function start(name, dir, lines, before)
  jobs[name] = launch(dir, lines, before)
end

-- Waits for a job started by name.
local function wait(name)
  return finish(assert(jobs[name], "no job " .. name))
end

-- The emulator a page's line starts, from the clone: { url, port, key, exports, stop }.
local function emulator(line)
  assert(line:find("^bin/starvideos emulator"), "not an emulator line: " .. line)
  local proc = helper.spawn(AS_TYPED .. "sh -c " .. q(CLEAN .. "; cd " .. q(CLONE) .. " && exec " .. line
    .. " 2>/dev/null"))
  local e = { exports = {} }
  for _ = 1, 4 do
    local l = proc.pipe:read("*l")
    if not l then break end
    e.url = e.url or l:match("listening on (http://127%.0%.0%.1:%d+)$")
    if l:find("^export STARVIDEOS_") then e.exports[#e.exports + 1] = l end
    e.key = e.key or l:match("^export STARVIDEOS_API_KEY=(%S+)$")
  end
  e.stop = function()
    helper.execute("kill " .. proc.pid .. " 2>/dev/null")
    proc.pipe:close()
  end
  emulators[#emulators + 1] = e
  assert(e.url and e.key, "`" .. line .. "` printed no URL and export lines")
  e.port = e.url:match(":(%d+)$")
  return e
end

-- A line with the page's stand-ins made real (subs: { from = to }).
local function fill(line, subs, seen)
  for from, to in pairs(subs or {}) do
    local out, n = line:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
    seen[from] = (seen[from] or 0) + n
    line = out
  end
  return line
end

-- The blocks by key, read from the clone.
local BY_KEY, ORDER = {}, D.extract(CLONE)
for _, b in ipairs(ORDER) do BY_KEY[D.key(b)] = b end
local function block(key) return assert(BY_KEY[key], "no block " .. key) end

-- The page's lines of a sh block, each { key, line }, its stand-ins made real
-- (each of subs found in the block); pick: the lines to take (all when nil).
local function lines_of(key, subs, pick)
  local list, seen = {}, {}
  for i, l in ipairs(D.sh_lines(block(key).body)) do
    if not pick or pick[i] then list[#list + 1] = { key, fill(l, subs, seen) } end
  end
  for from in pairs(subs or {}) do assert(seen[from] > 0, key .. " has no " .. from) end
  return list
end

-- A shell line of a page checked (D.check_line): raises naming it when wrong.
local function check_line(key, line, made)
  local why = D.check_line(ctx, line, made)
  assert(not why, key .. ": " .. line .. "\n" .. tostring(why))
end

-- Each line of a sh block checked (pick: the lines to check, all when nil).
local function check_sh(key, made, pick)
  for i, l in ipairs(D.sh_lines(block(key).body)) do
    if not pick or pick[i] then check_line(key, l, made) end
  end
end

-- A fresh folder for a session.
local function folder(name)
  local dir = TOP .. "/" .. name
  assert(helper.execute("mkdir -p " .. q(dir)))
  return dir
end

-- A Lua block as a file of a folder (its bytes as the page has them, but for
-- subs: { from = to }, each found).
local function lua_file(dir, name, key, subs)
  local text = block(key).body
  for from, to in pairs(subs or {}) do
    local n
    text, n = text:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
    assert(n > 0, key .. " has no " .. from)
  end
  helper.write_file(dir .. "/" .. name, text)
  return name
end

-- A line of a page with its http://127.0.0.1:PORT made url.
local function with_url(line, url)
  assert(line:find("http://127.0.0.1:PORT", 1, true), "no http://127.0.0.1:PORT in: " .. line)
  return (line:gsub("http://127%.0%.0%.1:PORT", url))
end

local function assert_ok(out, ok, what)
  assert(ok, what .. " failed:\n" .. out)
end

local function video(path)
  local text = helper.read_file(path)
  assert(text and text:sub(5, 8) == "ftyp", "no video at " .. path)
  assert(not helper.exists(path .. ".part"), path .. ".part is left")
end

-- Our line between a page's lines, for the pause a user makes: until `test` holds (10 s at most).
local function until_line(test)
  return { "(the reader waits)", "i=0; until " .. test .. "; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; "
    .. "sleep 0.1; done" }
end
local function listens(port) return until_line("curl -s -o /dev/null http://127.0.0.1:" .. port .. "/") end

-- Started as root, nginx's workers are nobody: the clone readable, `dir` theirs to write.
local AS_ROOT = helper.capture("id -u"):match("^0%s*$") ~= nil
local function nobody_writes(dir)
  assert(helper.execute("chmod 755 " .. q(TOP) .. " " .. q(CLONE)))
  if AS_ROOT then assert(helper.execute("chown nobody " .. q(dir))) end
end

local ENV = 'eval "$(make -s env)"'
local ENV_JIT = 'eval "$(make -s env VM=luajit)"'

-- ------------------------------------------------------------ the table

-- nginx text in a whole nginx.conf: `where` "main" (the page's whole file),
-- "http" (lines for the http block) or "server".
local function nginx_wrap(where)
  return function(text, dir)
    local head = "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n"
      .. "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n"
      .. "error_log " .. dir .. "/error.log;\npid " .. dir .. "/nginx.pid;\nevents {}\n"
    if where == "main" then
      return (text:gsub("/path/to/starvideos", CLONE):gsub("/path/to/out", dir))
    end
    return head .. "http {\nclient_body_temp_path " .. dir .. "/body;\nlua_package_path \"" .. helper.lua_path(CLONE)
      .. ";;\";\n" .. text .. "\n}\n"
  end
end

-- Pends the test and says so when a program a block runs is not installed here
-- (`make deps` installs each): whether it is missing.
local function missing(program)
  if helper.execute("command -v " .. q(program) .. " >/dev/null 2>&1") then return false end
  pending(program .. " is not installed (make deps)")
  return true
end
local NGINX = "/usr/sbin/nginx"

local function check_nginx(key, where)
  if missing(NGINX) then return end
  local dir = folder("nginx-" .. key:gsub("%W", "-"))
  local why = D.check_nginx(block(key).body, nginx_wrap(where), dir)
  assert(not why, key .. ": " .. tostring(why))
end

local function check_lua(key, vms)
  local why = D.check_lua(block(key).body, vms)
  assert(not why, key .. ": " .. tostring(why))
end

local function check_sample(key, min)
  local why = D.check_sample(CLONE, block(key).body, min)
  assert(not why, key .. ": " .. tostring(why))
end

-- C lines of a page compiled in a host's function (its #include lines first),
-- against Lua 5.4's and `make static`'s headers, lua-cjson's openers declared.
local function check_c(key)
  local includes, body = {}, {}
  for l in block(key).body:gmatch("[^\n]+") do
    if l:find("^#include") then includes[#includes + 1] = l else body[#body + 1] = l end
  end
  local dir = folder("c-" .. key:gsub("%W", "-"))
  helper.write_file(dir .. "/host.c", "#include <lua.h>\n#include <lauxlib.h>\n" .. table.concat(includes, "\n")
    .. "\nint luaopen_cjson(lua_State *L);\nint luaopen_cjson_safe(lua_State *L);\n"
    .. "int luaopen_starvideos(lua_State *L);\nvoid host(lua_State *L);\nvoid host(lua_State *L) {\n"
    .. table.concat(body, "\n") .. "\n}\n")
  local out, ok = sh("cc -std=c99 -Wall -Werror -fsyntax-only -I/usr/include/lua5.4 -I" .. q(CLONE .. "/build/include")
    .. " " .. q(dir .. "/host.c"))
  assert(ok, key .. " does not compile in a host's function:\n" .. out)
end

-- Names of the tree under lua/starvideos/ and csrc/ (the rocks' too) the architecture page must name.
local function sources(pattern)
  local list = {}
  for f in helper.capture("cd " .. q(CLONE) .. " && find lua/starvideos rocks/*/lua/starvideos csrc rocks/*/csrc "
    .. "-type f -name " .. q(pattern) .. " | sort"):gmatch("[^\n]+") do
    list[#list + 1] = f
  end
  return list
end

local E -- the emulator of docs/emulator.md's first block: the environment's

local BLOCKS = {
  ["README.md#1"] = { "sh", "run `make demo` (the clone's own), check `make test`", function()
    local out, ok = run(CLONE, lines_of("README.md#1", nil, { true }))
    assert_ok(out, ok, "README.md#1's make demo")
    video(CLONE .. "/demo-out/kitten.mp4")
    check_sh("README.md#1", nil, { false, true })
  end },
  ["README.md#2"] = { "sh", "run with #3 and #4: see README.md#3", function()
    check_sh("README.md#2")
  end },
  ["README.md#3"] = { "sh", "run: #2 in one terminal, #3 in another, #4 as kitten.lua", function()
    local first = D.sh_lines(block("README.md#2").body)
    assert(#first == 2, "README.md#2 has two lines")
    local out, ok = run(CLONE, { { "README.md#2", first[1] } })
    assert_ok(out, ok, "README.md#2's " .. first[1])
    local e = emulator(first[2])
    local five = lua_file(CLONE, "kitten.lua", "README.md#4")
    assert(select(2, helper.read_file(CLONE .. "/" .. five):gsub("\n", "")) == 5, "README.md#4 is not five lines")
    local shown = lines_of("README.md#3", { ["http://127.0.0.1:40123"] = e.url })
    assert(shown[1][2] == e.exports[1] and shown[2][2] == e.exports[2], "README.md#3's exports are not the emulator's")
    local t0 = socket.gettime()
    out, ok = run(CLONE, shown)
    local took = socket.gettime() - t0
    e.stop()
    assert_ok(out, ok, "README.md#3")
    assert(out:find("\nvideo_videos_%d+\tkitten%.mp4\n$"), out)
    video(CLONE .. "/kitten.mp4")
    assert(took < 12, str_format("README.md#3 took %.1f s (\"a few seconds\")", took))
  end },
  ["README.md#4"] = { "lua", "run as kitten.lua by README.md#3" },
  ["docs/architecture.md#1"] = { "-", "shown: every module it names exists", function()
    local body = block("docs/architecture.md#1").body
    local n = 0
    for path in body:gmatch("([%w_/]+%.lua)") do
      n = n + 1
      assert(helper.exists(CLONE .. "/lua/starvideos/" .. path) or helper.capture("cd " .. q(CLONE)
        .. " && ls rocks/*/lua/starvideos/" .. q(path) .. " 2>/dev/null"):find("%S"),
        "docs/architecture.md#1 names " .. path) -- (the core's lua/, or another rock's rocks/<rock>/lua/)
    end
    for name in body:gmatch("starvideos%.(%a+)%)") do
      assert(helper.exists(CLONE .. "/build/starvideos/" .. name .. ".so"), "no starvideos." .. name)
    end
    assert(n >= 10, "docs/architecture.md#1 names " .. n .. " modules")
  end },
  ["docs/architecture.md#2"] = { "-", "shown: it names every Lua module and C file, and each exists", function()
    local body = block("docs/architecture.md#2").body
    local named = {}
    for name in body:gmatch("([%w_-]+%.[chlua]+)%f[^%w_.]") do named[name] = true end
    for _, f in ipairs(sources("*.lua")) do
      assert(named[f:match("[^/]+$")], "docs/architecture.md#2 does not name " .. f)
    end
    for _, f in ipairs(sources("*.c")) do
      if not f:find("^csrc/test/") and not f:find("^csrc/fuzz/") and not f:find("^csrc/bench/") then
        assert(named[f:match("[^/]+$")], "docs/architecture.md#2 does not name " .. f)
      end
    end
    for name in pairs(named) do
      assert(helper.capture("cd " .. q(CLONE) .. " && find lua rocks csrc tools examples -name " .. q(name)):find("%S"),
        "docs/architecture.md#2 names " .. name .. ", which does not exist")
    end
  end },
  ["docs/batch.md#1"] = { "lua", "run (in the background: polls every 10 s), prompts = two lines", function()
    local out, ok = wait("batch1")
    assert_ok(out, ok, "docs/batch.md#1")
    video(TOP .. "/batch1/videos/0001.mp4")
    video(TOP .. "/batch1/videos/0002.mp4")
    assert(out:find("\nbatch\n") == nil and out:find("2\t2\t0\t2\n", 1, true), "its last progress: " .. out)
  end },
  ["docs/batch.md#2"] = { "sh", "run (in the background: the CLI's first poll after 30 s)", function()
    local out, ok = wait("batch2")
    assert_ok(out, ok, "docs/batch.md#2")
    video(TOP .. "/batch2/videos/0001.mp4")
  end },
  ["docs/batch.md#3"] = { "lua", "run (in the background; then #5, #4, keep --once and docs/cli.md#1's "
    .. "pending, list and compact)", function()
    local out, ok = wait("batch3")
    assert_ok(out, ok, "docs/batch.md#3, #5, #4, docs/keep-and-fleet.md#1 and docs/cli.md#1")
    local dir = TOP .. "/batch3/videos/"
    local own = assert(out:match(">>> docs/batch%.md#3: [^\n]*(\n.-)\n>>> "), out) -- what #3 printed
    for id in own:gmatch("\n(video_videos_%d+)\t") do video(dir .. id .. ".mp4") end
    assert(select(2, own:gsub("\nvideo_videos_%d+\t", "")) == 2, out)
  end },
  ["docs/batch.md#4"] = { "sh", "run after #3 (see docs/batch.md#3)", function() check_sh("docs/batch.md#4") end },
  ["docs/batch.md#6"] = { "lua", "shown (a store's queue: rocks/redis/spec/hosts/queue_store_spec.lua runs it)",
    function() check_lua("docs/batch.md#6") end },
  ["docs/batch.md#5"] = { "lua", "run after #3, client its journal's (see docs/batch.md#3)", function()
    check_lua("docs/batch.md#5")
  end },
  ["docs/cli.md#1"] = { "sh", "run: the generate line (in the background), pending, list and compact on "
    .. "docs/batch.md#3's journal; check: every line", function()
    check_sh("docs/cli.md#1")
    local out, ok = wait("cli")
    assert_ok(out, ok, "docs/cli.md#1's generate")
    video(TOP .. "/cli/kitten.mp4")
  end },
  ["docs/cli.md#2"] = { "sh", "check: a batch with --spend-limit", function() check_sh("docs/cli.md#2") end },
  ["docs/cli.md#3"] = { "json", "check: a storyboard that decodes, each shot's fields the API's, a continued shot with "
    .. "its last_image (spec/tools/lineage_cli_spec.lua runs a film)", function()
    local doc = require("cjson").decode(block("docs/cli.md#3").body)
    local fields = {} -- (a request's, the core's list: lineage.lua's params)
    for _, name in ipairs(require("starvideos.core").fields) do fields[name] = name ~= "extra" or nil end
    for i, shot in ipairs(doc.shots) do
      assert.is_string(shot.prompt, "shot " .. i)
      for k in pairs(shot) do
        assert(k == "continue" or fields[k], "shot " .. i .. ": " .. k)
      end
      if shot.continue then assert.is_string(shot.last_image, "shot " .. i) end
    end
  end },
  ["docs/cli.md#4"] = { "-", "shown: what `starvideos spend` prints", function() check_sample("docs/cli.md#4") end },
  ["docs/cli.md#5"] = { "-", "shown: a message the command line prints", function() check_sample("docs/cli.md#5") end },
  ["docs/cli.md#6"] = { "sh", "check: the completion lines (spec/tools/completion_spec.lua loads the bash script)",
    function() check_sh("docs/cli.md#6") end },
  ["docs/downloads.md#1"] = { "-", "shown", function() check_sample("docs/downloads.md#1") end },
  ["docs/downloads.md#2"] = { "-", "shown", function() check_sample("docs/downloads.md#2") end },
  ["docs/downloads.md#3"] = { "-", "shown", function()
    local body = block("docs/downloads.md#3").body
    check_line("docs/downloads.md#3", assert(body:match("^%$ (.-)\n"), "no $ line"))
    check_sample("docs/downloads.md#3")
  end },
  ["docs/emulator.md#1"] = { "sh", "run: the environment's emulator", function()
    assert(E and E.url, "docs/emulator.md#1 started no emulator")
  end },
  ["docs/emulator.md#2"] = { "sh", "run against docs/emulator.md#1's emulator", function()
    local shown = lines_of("docs/emulator.md#2", { ["http://127.0.0.1:40123"] = E.url })
    assert(shown[1][2] == E.exports[1] and shown[2][2] == E.exports[2], "the export lines are not the emulator's")
    local dir = folder("emulator2")
    assert(helper.execute("ln -s " .. q(CLONE .. "/bin") .. " " .. q(dir .. "/bin")))
    local t0 = socket.gettime()
    local out, ok = run(dir, shown)
    local took = socket.gettime() - t0
    assert_ok(out, ok, "docs/emulator.md#2")
    video(dir .. "/kitten.mp4")
    assert(took < 12, str_format("docs/emulator.md#2 took %.1f s: its interval is the 30 s default?", took))
  end },
  ["docs/emulator.md#3"] = { "sh", "run against an emulator of its own: each fault is taken", function()
    local e = emulator(D.sh_lines(block("docs/emulator.md#1").body)[1])
    local out, ok = run(folder("faults"), lines_of("docs/emulator.md#3"), e.exports)
    e.stop()
    assert_ok(out, ok, "docs/emulator.md#3")
    assert(not out:find('"error"', 1, true), out)
    assert(select(2, out:gsub('"path":"', "")) == 3, out) -- the list after each: 1 fault, then 2
  end },
  ["docs/game-engines.md#1"] = { "lua", "run on LuaJIT (in the background: its first poll after 30 s), "
    .. "running and draw_frame the frame loop's", function()
    local out, ok = wait("game")
    assert_ok(out, ok, "docs/game-engines.md#1")
    video(TOP .. "/game/rain.mp4")
    assert(out:find("\ncompleted\n"), out)
  end },
  ["docs/game-engines.md#2"] = { "lua", "check: compiles, its names exist (spec/lineage_jobs_spec.lua runs a remix as "
    .. "a job)", function() check_lua("docs/game-engines.md#2") end },
  ["docs/game-engines.md#3"] = { "sh", "run: the builds, the emulator, the game on an Xvfb display of ours, "
    .. "ended once its video is saved", function()
    local lines = D.sh_lines(block("docs/game-engines.md#3").body)
    local key = "docs/game-engines.md#3"
    local out, ok = run(CLONE, { { key, lines[1] }, { key, lines[2] } })
    assert_ok(out, ok, "docs/game-engines.md#3's builds")
    for _, so in ipairs { "core", "curl", "sign" } do
      assert(helper.exists(CLONE .. "/build/luajit/starvideos/" .. so .. ".so"), "make luajit built no " .. so .. ".so")
    end
    local e = emulator(lines[3])
    check_sh(key, nil, { false, false, false, true })
    if not helper.execute("command -v love >/dev/null && command -v Xvfb >/dev/null") then
      return pending("love or Xvfb is not installed: the game's line checked only")
    end
    local xvfb = helper.spawn(helper.UNINSTRUMENTED
      .. "Xvfb -displayfd 1 -screen 0 640x360x24 -nolisten tcp 2>/dev/null")
    finally(function() helper.execute("kill " .. xvfb.pid .. " 2>/dev/null") xvfb.pipe:close() end)
    local display = assert(tonumber(xvfb.pipe:read("*l")), "Xvfb did not start")
    local game = with_url(lines[4], e.url)
    local file = assert(game:match("(%S+%.mp4)$"), game)
    out, ok = run(CLONE, { { key, game .. " &" }, until_line("[ -f " .. file .. " ]"),
      { "(the reader quits)", "kill $!" } }, { "export DISPLAY=:" .. display })
    e.stop()
    assert_ok(out, ok, "docs/game-engines.md#3's game")
    video(CLONE .. "/" .. file)
  end },
  ["docs/game-engines.md#4"] = { "c", "check: compiles in a host's function", function()
    check_c("docs/game-engines.md#4")
  end },
  ["docs/install.md#1"] = { "sh", "check: every package installed here", function() check_sh("docs/install.md#1") end },
  ["docs/install.md#2"] = { "sh", "run, then a script elsewhere finds the library", function()
    local lines = lines_of("docs/install.md#2")
    lines[#lines + 1] = { "docs/install.md#2",
      "cd / && lua5.4 -e 'require \"starvideos\"; require \"starvideos.curl\"'" }
    local out, ok = run(CLONE, lines)
    assert_ok(out, ok, "docs/install.md#2")
  end },
  ["docs/install.md#3"] = { "sh", "check (spec/hosts/luarocks_spec.lua builds these rocks)", function()
    if missing("luarocks") then return end
    check_sh("docs/install.md#3")
  end },
  ["docs/install.md#4"] = { "sh", "run, the command line the rock installs being the clone's", function()
    local dir = folder("installed")
    helper.write_file(dir .. "/starvideos", "#!/bin/sh\nexec lua5.4 " .. q(CLONE .. "/bin/starvideos") .. ' "$@"\n')
    assert(helper.execute("chmod +x " .. q(dir .. "/starvideos")))
    local out, ok = run(dir, lines_of("docs/install.md#4"), { "export PATH=" .. q(dir) .. ":$PATH",
      E.exports[1], E.exports[2] })
    assert_ok(out, ok, "docs/install.md#4")
    video(dir .. "/kitten.mp4")
  end },
  ["docs/install.md#5"] = { "text", "shown: luarocks' words, for the dependency the rockspec names", function()
    local rockspec = assert(helper.read_file(CLONE .. "/rockspec/starvideos-scm-1.rockspec"))
    local dep = assert(block("docs/install.md#5").body:match("\n%s+(lua%-cjson >= [%d.]+) %(not installed%)"))
    assert(rockspec:find('"' .. dep .. '"', 1, true), "the rockspec does not depend on " .. dep)
  end },
  ["docs/install.md#6"] = { "sh", "check (spec/hosts/luarocks_spec.lua runs it)", function()
    if missing("luarocks") then return end
    check_sh("docs/install.md#6")
  end },
  ["docs/install.md#7"] = { "sh", "check (spec/hosts/luarocks_spec.lua runs it)", function()
    if missing("luarocks") then return end
    check_sh("docs/install.md#7")
  end },
  ["docs/install.md#8"] = { "sh", "check: each rockspec it names is the checkout's (spec/hosts/rocks_spec.lua "
    .. "builds these rocks)", function()
    if missing("luarocks") then return end
    check_sh("docs/install.md#8")
    for _, l in ipairs(D.sh_lines(block("docs/install.md#8").body)) do
      local spec = l:match("%s(%S+%.rockspec)")
      assert(not spec or helper.exists(CLONE .. "/" .. spec), "docs/install.md#8 names " .. tostring(spec))
    end
  end },
  ["docs/install.md#9"] = { "sh", "check (spec/hosts/release_spec.lua runs it as written, its two folders the "
    .. "release's): the programs it runs installed, its first line the folders release_spec gives", function()
    for _, program in ipairs { "unzip", "qemu-aarch64" } do
      if missing(program) then return end
    end
    assert(block("docs/install.md#9").body:find("^REL=build/release SYSROOT=build/sysroot%-aarch64\n"),
      "docs/install.md#9's first line")
  end },
  ["docs/keep-and-fleet.md#1"] = { "sh", "check: the first line (it runs an hour); run: --once, after "
    .. "docs/batch.md#3", function()
    check_sh("docs/keep-and-fleet.md#1")
  end },
  ["docs/keep-and-fleet.md#2"] = { "nginx", "check: nginx -t, its Lua (rocks/redis/spec/hosts/fleet_spec.lua runs "
    .. "it)", function()
    check_nginx("docs/keep-and-fleet.md#2", "http")
  end },
  ["docs/keep-and-fleet.md#3"] = { "conf", "run by #4 as its sentinel.conf" },
  ["docs/keep-and-fleet.md#4"] = { "sh", "run: a primary, a replica and three sentinels on ports of the system's, "
    .. "store check through them, then the five stopped", function()
    if missing("redis-server") then return end
    local dir = folder("sentinel")
    local ports = helper.free_ports(5)
    local function real(text) -- the page's ports and folder made ours (whole numbers only: 6380 is in no other)
      for i, p in ipairs { "6380", "6381", "26379", "26389", "26399" } do
        text = text:gsub("%f[%d]" .. p .. "%f[%D]", tostring(ports[i]))
      end
      return (text:gsub("/tmp/sentinel", dir))
    end
    helper.write_file(dir .. "/sentinel.conf", real(block("docs/keep-and-fleet.md#3").body))
    local lines = {}
    for _, l in ipairs(lines_of("docs/keep-and-fleet.md#4")) do
      l[2] = real(l[2])
      if l[2]:find("^bin/starvideos store check") then -- (the reader waits for the sentinels to find each other)
        lines[#lines + 1] = until_line("redis-cli -p " .. ports[3] .. " SENTINEL master mymaster 2>/dev/null | "
          .. "grep -A1 -x num-other-sentinels | grep -qx 2")
      end
      lines[#lines + 1] = l
    end
    local out, ok = run(CLONE, lines)
    assert_ok(out, ok, "docs/keep-and-fleet.md#4")
    for i = 3, 5 do -- (each sentinel finds the replica at its next INFO of the master, within 10 s: not waited for)
      local said = str_format("\nsentinel 127.0.0.1:%d: master 127.0.0.1:%d %%(master%%), %%d replicas, "
        .. "3 sentinels, quorum 2, ", ports[i], ports[1])
      assert(out:find(said), out)
    end
    assert(out:find("\nusable\n", 1, true), out)
  end },
  ["docs/keep-and-fleet.md#5"] = { "-", "run: rocks/redis/spec/hosts/store_acl_spec.lua makes this user on a real "
    .. "redis-server and runs the fleet as it", function()
    local line = block("docs/keep-and-fleet.md#5").body:match("^ACL SETUSER [^\n]+")
    assert(line, "docs/keep-and-fleet.md#5: not an ACL SETUSER line")
    local spec = assert(helper.read_file(helper.root .. "/rocks/redis/spec/hosts/store_acl_spec.lua"))
    assert(spec:find("\\nACL SETUSER", 1, true),
      "rocks/redis/spec/hosts/store_acl_spec.lua no longer reads the docs' line")
  end },
  ["docs/logs-and-proxies.md#1"] = { "-", "shown: log lines (each word)", function()
    check_sample("docs/logs-and-proxies.md#1", 1)
  end },
  ["docs/media.md#1"] = { "sh", "check: a real URL", function() check_sh("docs/media.md#1") end },
  ["docs/observability.md#1"] = { "lua", "check: compiles, its names exist (rocks/observe/spec/observe_spec.lua runs "
    .. "the same)", function() check_lua("docs/observability.md#1") end },
  ["docs/observability.md#2"] = { "nginx", "check: nginx -t, its Lua "
    .. "(rocks/observe/spec/hosts/observe_nginx_spec.lua serves it)",
    function() check_nginx("docs/observability.md#2", "http") end },
  ["docs/observability.md#3"] = { "promql", "check: promtool check rules, each query a recording rule", function()
    if missing("promtool") then return end
    local rules = { "groups:", "  - name: docs", "    rules:" }
    for l in block("docs/observability.md#3").body:gmatch("[^\n]+") do
      if not l:find("^#") then
        rules[#rules + 1] = "      - record: docs:query:" .. #rules
        rules[#rules + 1] = "        expr: " .. string.format("%q", l)
      end
    end
    local dir = folder("promql")
    helper.write_file(dir .. "/rules.yml", table.concat(rules, "\n") .. "\n")
    local out, ok = sh("promtool check rules " .. q(dir .. "/rules.yml"))
    assert(ok and out:find("SUCCESS"), "docs/observability.md#3: " .. out)
  end },
  ["docs/observability.md#4"] = { "yaml", "check: promtool check config, the rules' path the clone's", function()
    if missing("promtool") then return end
    local dir = folder("prometheus")
    local text = block("docs/observability.md#4").body
    local n
    text, n = text:gsub("/path/to/starvideos/", CLONE .. "/")
    assert(n == 1, "docs/observability.md#4: no /path/to/starvideos/")
    helper.write_file(dir .. "/prometheus.yml", text)
    local out, ok = sh("promtool check config " .. q(dir .. "/prometheus.yml"))
    assert(ok and out:find("SUCCESS: 1 rule files found", 1, true), "docs/observability.md#4: " .. out)
  end },
  ["docs/observability.md#5"] = { "sh", "run: the promtool lines in the clone; check: the picture's "
    .. "(rocks/observe/spec/hosts/dashboards_spec.lua runs it)", function()
    if missing("promtool") then return end
    check_sh("docs/observability.md#5", nil, { false, false, true })
    local out, ok = run(CLONE, lines_of("docs/observability.md#5", nil, { true, true, false }))
    assert_ok(out, ok, "docs/observability.md#5")
    assert(select(2, out:gsub("SUCCESS", "")) == 2, "docs/observability.md#5: " .. out)
  end },
  ["docs/observability.md#6"] = { "lua", "check: compiles, its names exist (rocks/observe/spec/observe_spec.lua runs "
    .. "the same)", function() check_lua("docs/observability.md#6") end },
  ["docs/openresty.md#1"] = { "sh", "check: apt-get; run: the builds", function()
    check_sh("docs/openresty.md#1", nil, { true })
    local out, ok = run(CLONE, lines_of("docs/openresty.md#1", nil, { false, true, true }))
    assert_ok(out, ok, "docs/openresty.md#1")
  end },
  ["docs/openresty.md#2"] = { "sh", "run with #3 (in the background: its first poll after 30 s), nginx in one "
    .. "terminal, curl in another", function()
    if missing(NGINX) then return end
    local out, ok = wait("openresty")
    assert_ok(out, ok, "docs/openresty.md#2 with #3")
    local path = assert(out:match("\n(/[^\n]+%.mp4)\n"), "curl printed no path: " .. out)
    assert(path:find(TOP .. "/openresty/out/", 1, true) == 1, path)
    video(path)
  end },
  ["docs/openresty.md#3"] = { "nginx", "run by #2 as nginx.conf, its /path/to/ and port filled in; nginx -t",
    function() check_nginx("docs/openresty.md#3", "main") end },
  ["docs/openresty.md#4"] = { "sh", "run by #2's session beside #3's nginx.conf (its resolver.conf); run here: "
    .. "the host's first nameserver, as a resolver line nginx -t accepts", function()
    local dir = folder("resolver")
    local out, ok = run(dir, lines_of("docs/openresty.md#4"))
    assert_ok(out, ok, "docs/openresty.md#4")
    local conf = assert(helper.read_file(dir .. "/resolver.conf"))
    local want = (helper.read_file("/etc/resolv.conf") or ""):match("%f[^\n%z]nameserver%s+(%S+)")
    if not want then return assert(conf == "", conf) end
    assert(conf == "resolver " .. (want:find(":") and "[" .. want .. "]" or want) .. " ipv6=off;\n", conf)
    if missing(NGINX) then return end
    local why = D.check_nginx("include " .. dir .. "/resolver.conf;\n", nginx_wrap("http"), folder("nginx-resolver"))
    assert(not why, "docs/openresty.md#4's resolver.conf: " .. tostring(why))
  end },
  ["docs/openresty.md#5"] = { "nginx", "check: nginx -t, its Lua (spec/hosts/sse_nginx_spec.lua serves the same "
    .. "stream)", function() check_nginx("docs/openresty.md#5", "http") end },
  ["docs/openresty.md#6"] = { "nginx", "check: nginx -t, its Lua (spec/hosts/keep_nginx_spec.lua runs it)", function()
    check_nginx("docs/openresty.md#6", "http")
  end },
  ["docs/openresty.md#7"] = { "sh", "check: luarocks' help lists each flag (no OpenResty here: its tree is the "
    .. "--lua-dir's)", function() check_sh("docs/openresty.md#7") end },
  ["docs/tenants-and-costs.md#1"] = { "lua", "run with #2 (list: two prompts): the plan printed", function()
    local dir = folder("plan")
    helper.write_file(dir .. "/plan.lua", block("docs/tenants-and-costs.md#1").body .. "\nlocal list = { { model = "
      .. '"videos", prompt = "a cat", duration = 5 }, { model = "videos_fast", prompt = "a dog", duration = 5 } }\n'
      .. "os.execute('mkdir -p videos')\n" .. block("docs/tenants-and-costs.md#2").body)
    local out, ok = run(dir, { { "docs/tenants-and-costs.md#1", "lua5.4 -e 'starvideos = require \"starvideos\"' "
      .. "plan.lua" } }, { ENV, E.exports[1], E.exports[2] })
    assert_ok(out, ok, "docs/tenants-and-costs.md#1 and #2")
    assert(out:find("\n1\tcreate\tnew\tvideos\t0.4\n2\tcreate\tnew\tvideos_fast\tunknown\n2\tunknown\n", 1, true), out)
  end },
  ["docs/tenants-and-costs.md#2"] = { "lua", "run by #1", function() check_lua("docs/tenants-and-costs.md#2") end },
  ["docs/tenants-and-costs.md#4"] = { "lua", "shown: failed_prices beside a limit of its model",
    function() check_lua("docs/tenants-and-costs.md#4") end },
  ["docs/tenants-and-costs.md#3"] = { "-", "shown: a dry run's lines", function()
    check_sample("docs/tenants-and-costs.md#3")
  end },
  ["docs/spend.md#1"] = { "lua", "run with #2 (in a loop: tenant acme's creates of videos until one is refused, the "
    .. "13th) and #3: the warnings, the refusal and the spend printed", function()
    local dir = folder("spend")
    helper.write_file(dir .. "/spend.lua", block("docs/spend.md#1").body .. "\nfor _ = 1, 30 do\n"
      .. block("docs/spend.md#2").body .. "\nif not task then break end\nend\n" .. block("docs/spend.md#3").body)
    local out, ok = run(dir, { { "docs/spend.md#1", "lua5.4 spend.lua" } }, { ENV, E.exports[1], E.exports[2] })
    assert_ok(out, ok, "docs/spend.md#1, #2 and #3")
    for _, line in ipairs { 'spend_limit[2]: 50% of 5 reached for tenant "acme" in the window ending ',
      'spend_limit[2]: 80% of 5 reached for tenant "acme" in the window ending ',
      'spend_limit[2]: 100% of 5 reached for tenant "acme" in the window ending ',
      'spend_limit[2]: 4.8 spent of tenant "acme" in this window (at most 5, counted in the journal spend.jsonl): '
        .. "the next create is refused until ", "4.8\t5.0\t", "tenant\tacme\t4.8\t0.0\t5.0\t",
      "model\tstarvideos_o3\t0.0\t0.0\t20.0\t" } do
      assert(out:find("\n" .. line, 1, true) or out:find(line, 1, true) == 1, "docs/spend.md: no line " .. line
        .. " in:\n" .. out)
    end
  end },
  ["docs/spend.md#2"] = { "lua", "run by #1", function() check_lua("docs/spend.md#2") end },
  ["docs/spend.md#3"] = { "lua", "run by #1", function() check_lua("docs/spend.md#3") end },
  ["docs/spend.md#4"] = { "sh", "check: pending's flags (--journal, --forget, --adopt)", function()
    check_sh("docs/spend.md#4")
  end },
  ["docs/studio.md#1"] = { "sh", "check: make -n studio (spec/hosts/studio_spec.lua runs tools/studio.sh, its recipe)",
    function() check_sh("docs/studio.md#1") end },
  ["docs/failures.md#1"] = { "lua", "check: compiles, its names exist (spec/failure_spec.lua honours a user's pattern "
    .. "on a failed task)", function() check_lua("docs/failures.md#1") end },
  ["docs/failures.md#2"] = { "lua", "check: compiles, its names exist (spec/refused_before_spec.lua refuses the same "
    .. "content again, resend sends it)", function() check_lua("docs/failures.md#2") end },
  ["docs/lineage.md#1"] = { "lua", "check: compiles, its names exist (spec/lineage_spec.lua runs again, and each "
    .. "refusal)", function() check_lua("docs/lineage.md#1") end },
  ["docs/lineage.md#2"] = { "lua", "check: compiles, its names exist (spec/lineage_jobs_spec.lua runs again, remix, "
    .. "continue and film as jobs)", function() check_lua("docs/lineage.md#2") end },
  ["docs/lineage.md#3"] = { "json", "check: it decodes, and provenance.lua writes each field (spec/provenance_spec.lua "
    .. "writes and verifies records)", function()
    local rec = require("cjson").decode(block("docs/lineage.md#3").body)
    local source = assert(helper.read_file(CLONE .. "/lua/starvideos/provenance.lua"))
    for k in pairs(rec) do assert(source:find("%f[%w_]" .. k .. " = "), "provenance.lua writes no " .. k) end
  end },
  ["docs/lineage.md#4"] = { "json", "check: a member that decodes, and provenance.lua writes each field (spec/"
    .. "signed_spec.lua signs and verifies records)", function()
    local member = require("cjson").decode("{" .. block("docs/lineage.md#4").body .. "}")
    local source = assert(helper.read_file(CLONE .. "/lua/starvideos/provenance.lua"))
    assert(member.signature, "docs/lineage.md#4 is no signature member")
    for _, t in ipairs { member, member.signature } do
      for k in pairs(t) do assert(source:find("%f[%w_]" .. k .. " = "), "provenance.lua writes no " .. k) end
    end
  end },
  ["docs/lineage.md#5"] = { "sh", "run: the block's lines verify a record the library signed with a key made here "
    .. "(python3, jq, base64, openssl)", function()
    for _, p in ipairs { "python3", "jq", "openssl" } do if missing(p) then return end end
    local dir = folder("signed")
    helper.write_file(dir .. "/verify.sh", block("docs/lineage.md#5").body) -- (as written: its python spans lines)
    local out, ok = run(dir, { { "docs/lineage.md#5", "openssl genpkey -algorithm ed25519 -out key.pem" },
      { "docs/lineage.md#5", "openssl pkey -in key.pem -pubout -out pub.pem" },
      { "docs/lineage.md#5", "lua5.4 -e " .. q("local P = require 'starvideos.provenance'; local f = assert(io.open("
        .. "'video.mp4.json', 'w')); f:write(P.text(P.record('video.mp4', string.rep('0', 64), 5, { model = 'videos', "
        .. "task_id = 'é \\\\ \\\"q\\\"' }), require('starvideos').sign_key('key.pem'))); f:close()") },
      { "docs/lineage.md#5", "bash -e verify.sh" } }, { ENV })
    assert_ok(out, ok, "docs/lineage.md#5")
    assert(out:find("Signature Verified Successfully", 1, true), out)
  end },
  ["docs/storage.md#1"] = { "lua", "check: compiles (rocks/s3/spec/hosts/s3_spec.lua runs the same generate to s3://)",
    function() check_lua("docs/storage.md#1") end },
  ["docs/storage.md#2"] = { "lua", "check: compiles (rocks/s3/spec/hosts/refs_s3_spec.lua runs local files as "
    .. "references against s3rver)", function() check_lua("docs/storage.md#2") end },
  ["docs/webhooks.md#1"] = { "lua", "run: the client it makes (starvideos the module, whsec_... a secret)", function()
    local dir = folder("webhooks")
    lua_file(dir, "notify.lua", "docs/webhooks.md#1", { ['"whsec_..."'] = '"whsec_c2VjcmV0LXNlY3JldA=="' })
    local out, ok = run(dir, { { "docs/webhooks.md#1", "lua5.4 -e 'starvideos = require \"starvideos\"' notify.lua" } },
      { ENV })
    assert_ok(out, ok, "docs/webhooks.md#1")
  end },
  ["docs/webhooks.md#2"] = { "json", "check: it decodes, and notify.lua sends each field", function()
    local cjson = require "cjson"
    local event = cjson.decode(block("docs/webhooks.md#2").body)
    local notify = assert(helper.read_file(CLONE .. "/lua/starvideos/extras/notify.lua"))
    for k in pairs(event) do assert(notify:find("%f[%w_]" .. k .. " = "), "notify.lua sends no " .. k) end
  end },
  ["docs/webhooks.md#3"] = { "lua", "check: compiles on LuaJIT (spec/extras/webhook_spec.lua serves it)", function()
    check_lua("docs/webhooks.md#3", { "luajit" })
  end },
  ["docs/webhooks.md#4"] = { "python", "check: compiles (spec/extras/webhook_spec.lua runs it)", function()
    local path = folder("python") .. "/hook.py"
    helper.write_file(path, block("docs/webhooks.md#4").body)
    if missing("python3") then return end
    local out, ok = sh("python3 -c " .. q("import sys; compile(open(sys.argv[1]).read(), 'hook.py', 'exec')") .. " "
      .. q(path))
    assert_ok(out, ok, "docs/webhooks.md#4")
  end },
  ["examples/embed/README.md#1"] = { "sh", "run: the host generates against the emulator", function()
    local lines = D.sh_lines(block("examples/embed/README.md#1").body)
    local out, ok = run(CLONE, { { "examples/embed/README.md#1", lines[1] }, { "examples/embed/README.md#1", lines[2] },
      { "examples/embed/README.md#1", lines[3] } })
    assert_ok(out, ok, "examples/embed/README.md#1's builds")
    local e = emulator(lines[4])
    out, ok = run(CLONE, { { "examples/embed/README.md#1", with_url(lines[5], e.url) } })
    e.stop()
    assert_ok(out, ok, "examples/embed/README.md#1's host")
    assert(out:find("result ok build/demo.mp4", 1, true), out)
    video(CLONE .. "/build/demo.mp4")
  end },
  ["examples/embed/README.md#2"] = { "c", "check: compiles in a host's function", function()
    check_c("examples/embed/README.md#2")
  end },
  ["examples/openresty/README.md#1"] = { "sh", "check: every package installed here", function()
    check_sh("examples/openresty/README.md#1")
  end },
  ["examples/openresty/README.md#2"] = { "sh", "run line by line (#3 after its mkdir as root), its ports the "
    .. "system's (nginx.conf's listen too)", function()
    local key = "examples/openresty/README.md#2"
    if missing(NGINX) then return end
    local ports = helper.free_ports(2)
    local conf = CLONE .. "/examples/openresty/nginx.conf"
    local text, n = assert(helper.read_file(conf)):gsub("listen 127%.0%.0%.1:8080;",
      "listen 127.0.0.1:" .. ports[2] .. ";")
    assert(n == 1, "examples/openresty/nginx.conf does not listen on 127.0.0.1:8080")
    helper.write_file(conf, text)
    local lines = {}
    for _, l in ipairs(lines_of(key, { ["8090"] = tostring(ports[1]), ["8080"] = tostring(ports[2]) })) do
      lines[#lines + 1] = l
      if l[2]:find("^bin/starvideos emulator") then lines[#lines + 1] = listens(ports[1]) end
      if l[2]:find("/usr/sbin/nginx") then lines[#lines + 1] = listens(ports[2]) end
      if l[2]:find("^mkdir") and AS_ROOT then
        for _, r in ipairs(lines_of("examples/openresty/README.md#3")) do lines[#lines + 1] = r end
      end
    end
    nobody_writes(CLONE)
    local out, ok = run(CLONE, lines)
    assert_ok(out, ok, key)
    local path = assert(out:match('"path":"([^"]+)"'), "curl printed no path: " .. out):gsub("\\/", "/")
    assert(path:find(CLONE .. "/build/openresty/videos/", 1, true) == 1, path)
    video(path)
  end },
  ["examples/openresty/README.md#3"] = { "sh", "run by #2 when root", function()
    check_sh("examples/openresty/README.md#3")
  end },
  ["examples/openresty/README.md#4"] = { "sh", "check (spec/hosts/openresty_readme_spec.lua runs it as root)",
    function() check_sh("examples/openresty/README.md#4") end },
  ["examples/openresty/README.md#5"] = { "-", "shown: a log line", function()
    check_sample("examples/openresty/README.md#5", 2)
  end },
}

-- ------------------------------------------------------------ the background

local PROMPTS = "prompts = { 'a red fox', 'a blue bird' }"
local FRAME = "running = true; function draw_frame() local f = io.open('rain.mp4') "
  .. "if f then f:close() running = false end require('socket').sleep(0.01) end"

-- The snippets that wait 10 or 30 s for their first poll, started at once.
local function start_jobs()
  local key = { ["STARVIDEOS_API_KEY=..."] = "STARVIDEOS_API_KEY=" .. E.key }
  local function user_dir(name) -- a folder of the user's, the checkout's bin/ in it
    local dir = folder(name)
    assert(helper.execute("ln -s " .. q(CLONE .. "/bin") .. " " .. q(dir .. "/bin")))
    return dir
  end
  local dir = user_dir("batch1")
  lua_file(dir, "batch.lua", "docs/batch.md#1")
  start("batch1", dir, { { "docs/batch.md#1", "lua5.4 -e " .. q(PROMPTS) .. " batch.lua" } },
    { ENV, E.exports[1], E.exports[2] })

  dir = user_dir("batch2")
  helper.write_file(dir .. "/prompts.txt", "a red fox\n")
  start("batch2", dir, lines_of("docs/batch.md#2", key), { E.exports[1] })

  dir = user_dir("batch3")
  lua_file(dir, "batch.lua", "docs/batch.md#3")
  lua_file(dir, "failed.lua", "docs/batch.md#5")
  local lines = { { "docs/batch.md#3", "lua5.4 -e " .. q(PROMPTS) .. " batch.lua" },
    { "docs/batch.md#5", "lua5.4 -e " .. q("client = require('starvideos').new { journal = 'tasks.jsonl' }")
      .. " failed.lua" } }
  for _, l in ipairs(lines_of("docs/batch.md#4")) do lines[#lines + 1] = l end
  lines[#lines + 1] = lines_of("docs/keep-and-fleet.md#1", nil, { false, true })[1]
  -- docs/cli.md#1's pending, list and compact, on this journal
  for _, l in ipairs(lines_of("docs/cli.md#1", nil, { [7] = true, [8] = true, [9] = true })) do
    lines[#lines + 1] = l
  end
  start("batch3", dir, lines, { ENV, E.exports[1], E.exports[2] })

  dir = folder("game")
  lua_file(dir, "game.lua", "docs/game-engines.md#1")
  start("game", dir, { { "docs/game-engines.md#1", "luajit -e " .. q(FRAME) .. " game.lua" } },
    { ENV_JIT, E.exports[1], E.exports[2] })

  if helper.execute("command -v " .. NGINX .. " >/dev/null 2>&1") then
    dir = folder("openresty")
    local port = helper.free_ports(1)[1]
    local conf = block("docs/openresty.md#3").body:gsub("/path/to/starvideos", CLONE)
      :gsub("/path/to/out", dir .. "/out")
    local n
    conf, n = conf:gsub("127%.0%.0%.1:8080", "127.0.0.1:" .. port)
    assert(n == 1, "docs/openresty.md#3 does not listen on 127.0.0.1:8080")
    helper.write_file(dir .. "/nginx.conf", conf)
    assert(helper.execute("mkdir " .. q(dir .. "/out")))
    nobody_writes(dir .. "/out")
    local nginx = lines_of("docs/openresty.md#2", { ["STARVIDEOS_API_KEY=..."] = "STARVIDEOS_API_KEY=" .. E.key,
      ["127.0.0.1:8080"] = "127.0.0.1:" .. port })
    nginx[1][2] = nginx[1][2] .. " &"
    local resolver = lines_of("docs/openresty.md#4")[1] -- (beside nginx.conf, as the page says)
    start("openresty", dir, { resolver, nginx[1], listens(port), nginx[2], { "(the reader stops nginx)", "kill $!" } },
      { E.exports[1] })
  end

  dir = user_dir("cli")
  start("cli", dir, lines_of("docs/cli.md#1", key, { true, true }), { E.exports[1] })
end

-- ------------------------------------------------------------ the spec

describe("the docs' fenced blocks, in a fresh clone", function()
  setup(function()
    -- (through a cold ccache of its own: `make luajit` and `make static` compile many of `make`'s files again)
    local out, ok = sh("export " .. ccache.env(ccache.dir()) .. "&& cd " .. q(CLONE)
      .. " && make -s && make -s luajit && make -s static")
    assert_ok(out, ok, "building the clone")
    E = emulator(D.sh_lines(block("docs/emulator.md#1").body)[1])
    start_jobs()
  end)

  teardown(function()
    for _, job in pairs(jobs) do reap(job) end
    for _, e in ipairs(emulators) do pcall(e.stop) end
    helper.cleanup()
  end)

  it("are each classified, and each row of the table is a block of the language it says", function()
    local seen = {}
    for _, b in ipairs(ORDER) do
      local key = D.key(b)
      local row = BLOCKS[key]
      assert(row, str_format("%s (a %s block at line %d) has no row in BLOCKS: run it or check it", key, b.lang,
        b.line))
      assert(row[1] == b.lang, str_format("%s is a %s block, its row says %s", key, b.lang, row[1]))
      seen[key] = true
    end
    for key in pairs(BLOCKS) do assert(seen[key], "BLOCKS has a row for " .. key .. ", which is no block") end
    assert(#ORDER >= 40, #ORDER .. " blocks")
  end)

  for _, b in ipairs(ORDER) do
    local key = D.key(b)
    local row = BLOCKS[key]
    if row and row[3] and row[1] == b.lang then
      it(str_format("%s (%s, line %d): %s", key, b.lang, b.line, row[2]), row[3])
    end
  end
end)
