-- What a newcomer meets in the first hour (issue 16, "what the walkthrough
-- found"): the command line on a narrow terminal (sizes, clipping, a 40-column
-- pseudo-terminal); an error against the default host naming STARVIDEOS_BASE_URL
-- (no network: a fake transport, or a namespace of its own); docs/install.md's
-- "From a checkout" with a script in another directory, on Lua 5.4 and LuaJIT;
-- what `make luajit` builds, the snippets' intervals, `make demo`'s stderr;
-- docs/api.md against the validator; and every README/docs link inside the
-- repository.  (Every fenced block of the docs, README.md's "Five lines" and
-- docs/emulator.md's "Start it" among them, run in a fresh clone:
-- spec/hosts/docs_run_spec.lua.  The emulator's own flags and output:
-- rocks/emulator/spec/emulator_spec.lua.)

local helper = require "spec.helper"
local display = require "starvideos.cli.display"

local q = helper.shell_quote
-- the checkout, as an absolute path (helper.root may be ".")
local root = helper.capture("cd " .. q(helper.root) .. " && pwd"):match("^([^\n]+)")
local BIN = q(helper.lua) .. " " .. q(root .. "/bin/starvideos")

local function has_command(name)
  return helper.capture("command -v " .. name):match("%S") ~= nil
end

describe("the command line on a narrow terminal", function()
  describe("sizes", function()
    it("are binary, and labelled so", function()
      assert.are.equal("0 B", display.human_size(0))
      assert.are.equal("1023 B", display.human_size(1023))
      assert.are.equal("1.0 KiB", display.human_size(1024))
      assert.are.equal("1.5 KiB", display.human_size(1536))
      assert.are.equal("3.0 MiB", display.human_size(3 * 2 ^ 20))
      assert.are.equal("1.5 GiB", display.human_size(1.5 * 2 ^ 30))
      assert.are.equal("2.0 TiB", display.human_size(2 ^ 41))
    end)
  end)

  describe("the width", function()
    local function no_popen() error("stty was run although COLUMNS was set") end
    local function env(t) return function(name) return t[name] end end
    local function stty(text)
      local cmds = {}
      return function(cmd)
        cmds[#cmds + 1] = cmd
        return { read = function() return text end, close = function() end }
      end, cmds
    end

    it("is $COLUMNS when that is a whole number, and nothing is run", function()
      assert.are.equal(40, display.terminal_width(env { COLUMNS = "40" }, no_popen))
    end)

    it("is what stty says of the terminal otherwise, and 80 when nobody knows", function()
      local popen, cmds = stty("24 57\n")
      assert.are.equal(57, display.terminal_width(env { COLUMNS = "wide" }, popen))
      assert.matches("^stty size", cmds[1])
      assert.are.equal(80, display.terminal_width(env {}, (stty("0 0\n"))))
      assert.are.equal(80, display.terminal_width(env {}, (stty(""))))
    end)
  end)

  describe("a line", function()
    it("is clipped by columns, never inside a UTF-8 character", function()
      assert.are.equal("abc", display.clip("abcdef", 3))
      assert.are.equal("été", display.clip("étés", 3))
      assert.are.equal(3, display.columns("été"))
      assert.are.equal("abcdef", display.clip("abcdef", 10))
    end)

    it("keeps its tail whole and shortens its head when it must", function()
      assert.are.equal("video_1  processing  0:02 |", display.fit("video_1", "  processing  0:02 |", 39))
      local line = display.fit("video_videos_1795385856001", "  processing  0:02 |", 39)
      assert.are.equal("video_videos_1795..  processing  0:02 |", line)
      assert.are.equal(39, display.columns(line))
    end)

    it("of a download narrows its bar, then drops the rate, then the bar", function()
      local total = 18.8 * 1024
      assert.are.equal("[########################] 100%  18.8 KiB / 18.8 KiB  3.1 MiB/s",
        display.bar_text(total, total, "3.1 MiB/s", 79))
      assert.are.equal("[###########] 100%  18.8 KiB / 18.8 KiB", display.bar_text(total, total, "3.1 MiB/s", 39))
      assert.are.equal("[######......]  50%  9.4 KiB / 18.8 KiB", display.bar_text(total / 2, total, "", 39))
      assert.are.equal("100%  18.8 KiB / 18.8 KiB", display.bar_text(total, total, "", 30))
      for n = 10, 100 do
        assert.is_true(display.columns(display.bar_text(total / 3, total, "312.5 KiB/s", n)) <= n, n)
      end
    end)
  end)

  describe("redrawn under a pseudo-terminal of 40 columns", function()
    local it_tty = has_command("script") and it or pending
    local emu
    setup(function() emu = helper.emulator { queued = 0.3, processing = 0.6 } end)
    teardown(function() emu:stop() helper.cleanup() end)

    -- The live lines a command drew: each "\r" TEXT "\27[K" of its output.
    local function live_lines(out)
      local list = {}
      for text in out:gsub("\r\n", "\n"):gmatch("\r([^\r\n]-)\27%[K") do
        if text ~= "" then list[#list + 1] = text end
      end
      return list
    end

    -- generate under script(1); `setup` runs first in the terminal's shell
    local function generate(env, setup_cmd)
      local path = helper.tmpdir() .. "/narrow.mp4"
      local cmd = BIN .. " generate --model videos --prompt 'a cat' --duration 5 --interval 0.1 --out " .. q(path)
      local out, ok = helper.capture("env -u COLUMNS STARVIDEOS_API_KEY=" .. q(emu.key) .. " STARVIDEOS_BASE_URL="
        .. q(emu.url) .. " " .. env .. " script -qec " .. q(setup_cmd .. cmd) .. " /dev/null </dev/null 2>&1")
      assert.is_true(ok, out)
      assert.are.equal(8 * 2 ^ 20, helper.video_size(path)) -- (up to the mark's box its commit appended)
      return out
    end

    -- columns on the terminal: UTF-8 characters (counted here, not by the display)
    local function width(s) return #s:gsub("[\128-\191]", "") end

    local function check(out)
      local lines = live_lines(out)
      local status, bar = 0, 0
      for _, l in ipairs(lines) do
        assert.is_true(width(l) <= 40, ("%d columns: %q"):format(width(l), l))
        if l:find("  queued  ", 1, true) or l:find("  processing  ", 1, true) then status = status + 1 end
        if l:find("] 100%  8.0 MiB / 8.0 MiB", 1, true) then bar = bar + 1 end
      end
      assert.is_true(status >= 2, out)   -- the status line was redrawn
      assert.is_true(bar >= 1, out)      -- and the finished bar drawn, in the width
    end

    it_tty("clips every redraw to $COLUMNS", function()
      emu:config { video_size = 8 * 2 ^ 20 }
      check(generate("COLUMNS=40", ""))
    end)

    it_tty("clips every redraw to the width stty reports when COLUMNS is not set", function()
      emu:config { video_size = 8 * 2 ^ 20 }
      check(generate("", "stty cols 40 rows 24; "))
    end)
  end)
end)

describe("an error against the default host", function()
  local DEFAULT = require("starvideos.config").DEFAULT_BASE_URL
  -- (the command as the library names it: `starvideos` on the PATH, else the checkout's bin/starvideos; the
  -- command line: as it was invoked, the checkout's bin/starvideos here)
  local function note(command)
    return "(STARVIDEOS_BASE_URL is not set: using " .. DEFAULT .. "; for the local emulator, export the lines `"
      .. command .. " emulator` prints)"
  end
  local on_path = helper.execute("command -v starvideos >/dev/null 2>&1")
  local NOTE = note(on_path and "starvideos" or root .. "/bin/starvideos")

  -- the fixture's lines: { [what] = { url =, kind =, message = } }
  local function fake_run(env, base_url)
    local dir = helper.tmpdir()
    local out, ok = helper.capture("env -u STARVIDEOS_BASE_URL " .. env .. " LUA_PATH="
      .. q(helper.lua_path(root) .. ";;") .. " LUA_CPATH=" .. q(helper.cpath .. ";;")
      .. " " .. q(helper.lua) .. " " .. q(root .. "/spec/fixtures/default_host.lua") .. " " .. q(dir)
      .. (base_url and " " .. q(base_url) or "") .. " 2>&1")
    assert.is_true(ok, out)
    local seen = {}
    for what, url, kind, message in out:gmatch("(%w+)\t([^\t]*)\t([^\t]*)\t([^\n]*)\n") do
      seen[what] = { url = url, kind = kind, message = message }
    end
    assert.is_table(seen.query, out)
    return seen
  end

  after_each(helper.cleanup)

  it("says STARVIDEOS_BASE_URL is not set, and where the request went", function()
    -- a fake transport: every exchange fails at once, no network is touched
    local seen = fake_run("")
    for _, what in ipairs { "query", "create" } do
      assert.are.equal(DEFAULT, seen[what].url:sub(1, #DEFAULT))
      assert.are.equal("network", seen[what].kind)
      assert.are.equal(what .. ": network error: Could not resolve host: the fake's " .. NOTE, seen[what].message)
    end
    -- a video's host is not the base URL: nothing to say there
    assert.are.equal("download: network error: Could not resolve host: the fake's", seen.download.message)
  end)

  it("says nothing when the base URL was chosen, by the environment or the option", function()
    for _, seen in ipairs { fake_run("STARVIDEOS_BASE_URL=http://127.0.0.1:7"), fake_run("", "http://127.0.0.1:7") } do
      assert.are.equal("http://127.0.0.1:7/v1/result/video_1", seen.query.url)
      assert.are.equal("query: network error: Could not resolve host: the fake's", seen.query.message)
      assert.are.equal("create: network error: Could not resolve host: the fake's", seen.create.message)
    end
  end)

  -- The command line, for real, with nothing able to leave the machine: a
  -- network namespace of its own (unshare -rn: no interface but a loopback that
  -- is down) and a proxy on 127.0.0.1 (so libcurl never even looks the host up).
  local isolated = helper.execute("unshare -rn true 2>/dev/null")
  local it_isolated = isolated and it or pending
  it_isolated("reaches the command line's message (in a network namespace of its own)", function()
    local strace = has_command("strace")
    local trace = os.tmpname()
    local traced = strace and ("strace -f -qq -e trace=connect -o " .. q(trace) .. " ") or ""
    local out, ok, code = helper.capture("unshare -rn " .. traced
      .. "env -u STARVIDEOS_BASE_URL -u no_proxy -u NO_PROXY -u all_proxy -u ALL_PROXY https_proxy=http://127.0.0.1:1"
      .. " STARVIDEOS_API_KEY=sk-newcomer " .. BIN .. " status video_1 2>&1")
    local connects = helper.read_file(trace) or ""
    os.remove(trace)
    assert.is_nil(ok)
    assert.are.equal(1, code)
    -- (the command line names the command as it was invoked: the checkout's bin/starvideos)
    local said = note(root .. "/bin/starvideos"):gsub("%p", "%%%0")
    assert.matches("^starvideos status: network: query: network error: [^\n]* " .. said .. "\n$", out)
    if strace then -- and every connect it tried was to the loopback
      local n = 0
      for line in connects:gmatch("[^\n]+") do
        if line:find("AF_INET", 1, true) then -- AF_INET or AF_INET6: its address is the quoted one
          n = n + 1
          assert.are.equal("127.0.0.1", line:match('_addr=[^"]*"([^"]+)"'), connects)
        end
      end
      assert.is_true(n >= 1, connects)
    end
  end)
end)

-- ------------------------------------------------------------ the docs' lines

local README = assert(helper.read_file(root .. "/README.md"))

-- The text of the section "## name" of a page (default README.md), up to the
-- next "## ".
local function section(name, path)
  local text = path and assert(helper.read_file(root .. "/" .. path), path) or README
  local start = text:find("\n## " .. name .. "\n", 1, true)
  assert(start, (path or "README.md") .. " has no section " .. name)
  local stop = text:find("\n## ", start + 1, true) or #text
  return text:sub(start, stop)
end

-- The ```sh blocks of a text, each a list of its lines.
local function sh_blocks(text)
  local blocks = {}
  for body in text:gmatch("\n```sh\n(.-)\n```") do
    local lines = {}
    for l in (body .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    blocks[#blocks + 1] = lines
  end
  return blocks
end

describe("the docs' lines", function()
  if helper.vm ~= "lua5.4" then
    pending("their lines run lua5.4 (bin/starvideos, make): checked under lua5.4 only")
    return
  end
  after_each(helper.cleanup)

  describe("docs/install.md's 'From a checkout'", function()
    -- A script as the docs' users write one: validate, then generate against
    -- the emulator (the environment says where).
    local SCRIPT = [[
local starvideos = require "starvideos"
assert(starvideos.validate { model = "videos", prompt = "a kitten", duration = 5 })
local client = starvideos.new()
local task = assert(client:generate({ model = "videos", prompt = "a kitten", duration = 5 },
  { out = "kitten.mp4", interval = 0.2 }))
print(task.status, task.path)
]]

    local function run_here(dir, lines, lua)
      local emu = helper.emulator { queued = 0.2, processing = 0.2 }
      finally(function() emu:stop() end)
      helper.write_file(dir .. "/script.lua", SCRIPT)
      -- a shell with none of the caller's Lua paths, as a newcomer's
      local cmd = "unset LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4; cd " .. q(root) .. " && "
        .. table.concat(lines, "\n") .. "\ncd " .. q(dir) .. " && STARVIDEOS_API_KEY=" .. q(emu.key)
        .. " STARVIDEOS_BASE_URL=" .. q(emu.url) .. " " .. lua .. " script.lua 2>&1"
      local out, ok = helper.capture("sh -c " .. q(cmd))
      assert.is_true(ok, out)
      assert.are.equal("completed\tkitten.mp4\n", out:match("[^\n]*\n$"))
      assert.are.equal("ftyp", helper.read_file(dir .. "/kitten.mp4"):sub(5, 8))
    end

    it("runs as written, and a script elsewhere finds the library", function()
      local block = sh_blocks(section("From a checkout", "docs/install.md"))[1]
      assert.is_table(block)
      run_here(helper.tmpdir(), block, "lua5.4")
    end)

    local built = helper.exists(root .. "/build/luajit/starvideos/core.so")
      and helper.exists(root .. "/build/luajit/starvideos/curl.so")
    local it_jit = (built and has_command("luajit")) and it or pending
    it_jit("runs on LuaJIT with the line docs/install.md gives for another VM", function()
      local line = section("Every VM", "docs/install.md"):match('`(eval "%$%(make %-s env VM=luajit%)")`')
      assert.is_string(line, "no `eval \"$(make -s env VM=luajit)\"` in docs/install.md's Every VM")
      run_here(helper.tmpdir(), { line }, "luajit")
    end)
  end)

  describe("the LuaJIT hosts' build line and the snippets' polls", function()
    it("`make luajit`, which the pages name, builds every C module a LuaJIT host loads", function()
      for _, page in ipairs { { "Every VM", "docs/install.md" }, { "LÖVE", "docs/game-engines.md" },
        { "Run it", "docs/openresty.md" } } do
        assert.truthy(section(page[1], page[2]):find("make luajit", 1, true), page[2] .. " does not name make luajit")
      end
      local plan = helper.capture("make --no-print-directory -B -n -C " .. q(root) .. " luajit 2>&1")
      for _, so in ipairs { "core", "curl", "sign" } do -- (the game's download needs sign.so)
        assert.truthy(plan:find("-o build/luajit/starvideos/" .. so .. ".so", 1, true), so .. ".so:\n" .. plan)
      end
    end)

    it("docs/batch.md's and docs/keep-and-fleet.md's snippets poll at an interval they set", function()
      local batch = section("A batch in one call", "docs/batch.md"):match("\n```lua\n(.-)```")
      assert.truthy(batch and batch:find("\n  interval = %d+,"), batch)
      assert.truthy(section("Waiting for many tasks", "docs/batch.md"):find("interval = %d+ }"))
      local keep = helper.read_file(root .. "/docs/keep-and-fleet.md"):match("client:keep {(.-)}")
      assert.truthy(keep and keep:find("interval = %d+"), keep)
    end)

    it("docs/batch.md says where the batch's leases go", function()
      assert.truthy(section("The batch command", "docs/batch.md"):find("`videos/starvideos.jsonl.owners/`", 1, true))
    end)

    it("make demo ends with the video and no stray line on stderr", function()
      local errfile = helper.tmpdir() .. "/demo.err"
      -- (as a newcomer runs it, from a shell: not as a child of `make test-hosts`, whose jobserver it cannot reach)
      local out, ok = helper.capture("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C " .. q(root)
        .. " demo 2>" .. q(errfile))
      assert.is_true(ok, out)
      local err = helper.read_file(errfile) or ""
      for line in err:gmatch("[^\n]+") do -- (set -x's lines of the generate command only)
        assert.truthy(line:find("^%+ "), "make demo wrote on stderr: " .. err)
      end
    end)
  end)
end)

-- ------------------------------------------------------------ docs/api.md

describe("docs/api.md", function()
  local starvideos = require "starvideos"
  local cjson = require "cjson.safe"
  local API = assert(helper.read_file(root .. "/docs/api.md"), "no docs/api.md")

  -- The rows of the first markdown table under the heading "## name" (its
  -- separator row left out), each a list of its cells.
  local function table_under(name)
    local start = assert(API:find("\n## " .. name .. "\n", 1, true), "no section " .. name)
    local text = API:sub(start + 1):match("^(.-)\n## ") or API:sub(start + 1)
    local rows, in_table = {}, false
    for line in text:gmatch("[^\n]*") do
      if line:sub(1, 1) == "|" then
        in_table = true
        local cells = {}
        for cell in line:sub(2):gmatch("%s*(.-)%s*|") do cells[#cells + 1] = cell end
        if not cells[1]:match("^%-+$") then rows[#rows + 1] = cells end
      elseif in_table and line ~= "" then
        break
      end
    end
    return rows
  end

  local function backticked(cell)
    local list = {}
    for w in cell:gmatch("`([^`]+)`") do list[#list + 1] = w end
    return list
  end

  it("states each model's rules as the validator's table has them", function()
    local rows = table_under("The models")
    local header, by_rule = rows[1], {}
    for i = 2, #rows do by_rule[rows[i][1]] = rows[i] end
    local seen = 0
    for col = 2, #header do
      local name = header[col]
      local m = assert(starvideos.models[name], "docs/api.md names a model the client lacks: " .. name)
      seen = seen + 1
      local function cell(rule) return assert(by_rule[rule], "no row " .. rule)[col] end
      assert.are.equal("`" .. m.endpoint .. "`", cell("endpoint"), name)

      local lo, hi = cell("duration"):match("^(%d+) to (%d+), ")
      assert.are.same({ m.duration.min, m.duration.max }, { tonumber(lo), tonumber(hi) }, name)
      assert.are.equal(m.duration.required, cell("duration"):find("required", 1, true) ~= nil, name)
      assert.are.equal(m.duration.default, tonumber(cell("duration"):match("default: (%d+)")), name)

      local ratios = backticked(cell("ratio"))
      table.sort(ratios)
      local want = {}
      for _, r in ipairs(m.ratios) do want[#want + 1] = r end
      table.sort(want)
      assert.are.same(want, ratios, name)
      assert.are.equal(m.default_ratio, cell("ratio"):match("`([^`]+)` %(default%)"), name)

      if #m.resolutions == 0 then
        assert.are.equal("not a field", cell("resolution"), name)
      else
        assert.are.same({ m.resolutions[1] }, backticked(cell("resolution")), name)
      end
      if (m.prompt_max or 0) == 0 then
        assert.are.equal("no limit", cell("prompt length"), name)
      else
        assert.are.equal(m.prompt_max .. " characters", cell("prompt length"), name)
      end

      local images = cell("referenceImages")
      assert.are.equal(m.max_images, tonumber(images:match("^(%d+)")), name)
      assert.are.equal(m.max_images_with_video, tonumber(images:match("; (%d+) with a reference video$"))
        or m.max_images, name)
      assert.are.equal(tostring(m.max_videos), cell("referenceVideos"), name)
      assert.are.equal(m.max_audios == 0 and "none" or tostring(m.max_audios), cell("referenceAudios"), name)
      assert.are.equal(m.legacy_aliases and "taken" or "not fields", cell("`image`, `lastFrameImage`"), name)
    end
    local models = 0
    for _ in pairs(starvideos.models) do models = models + 1 end
    assert.are.equal(models, seen) -- every model of the client
  end)

  it("gives examples that the validator refuses, naming the field it says", function()
    local rows = table_under("Examples")
    assert.is_true(#rows >= 11)
    for i = 2, #rows do
      local json, field = rows[i][1]:match("^`(.*)`$"), rows[i][2]:match("^`(.*)`$")
      local params = assert(cjson.decode(json), json)
      local ok, err = starvideos.validate(params)
      assert.is_nil(ok, json)
      assert.are.equal("invalid_request", err.kind, json)
      assert.are.equal(field, err.field, json .. ": " .. tostring(err))
    end
  end)

  it("names the endpoints and the base URL the client uses", function()
    local endpoints = {}
    for _, m in pairs(starvideos.models) do endpoints[m.endpoint] = true end
    for path in pairs(endpoints) do assert.matches("`POST " .. path .. "`", API, 1, true) end
    assert.matches("`GET /v1/result/{id}`", API, 1, true)
    assert.matches("`" .. require("starvideos.config").DEFAULT_BASE_URL .. "`", API, 1, true)
  end)
end)

-- ------------------------------------------------------------ links

describe("the README and docs/", function()
  -- every markdown link [text](target) of a file, without its #fragment
  local function links(path)
    local list = {}
    local text = assert(helper.read_file(root .. "/" .. path), path)
    text = text:gsub("```.-```", "") -- code blocks hold no links
    for target in text:gmatch("%]%(([^)%s]+)%)") do list[#list + 1] = target end
    return list
  end

  local function docs()
    local files = { "README.md" }
    local p = io.popen("cd " .. q(root) .. " && ls docs/*.md 2>/dev/null")
    for f in p:lines() do files[#files + 1] = f end
    p:close()
    return files
  end

  it("link only to files inside the repository, each of which exists", function()
    local files = docs()
    assert.is_true(#files >= 2, "no docs/*.md")
    local checked = 0
    for _, file in ipairs(files) do
      local dir = file:match("^(.*)/[^/]*$") or "."
      for _, target in ipairs(links(file)) do
        if not target:match("^%a[%w+.-]*:") then -- not http:, https:, mailto:
          local rel = target:gsub("#.*$", "")
          assert.is_nil(rel:match("^/"), file .. " links to an absolute path: " .. target)
          -- resolve dir/rel by segments; it may never climb above the repository
          local parts = {}
          for seg in (dir .. "/" .. rel):gmatch("[^/]+") do
            if seg == ".." then
              assert.is_true(#parts > 0, file .. " links outside the repository: " .. target)
              parts[#parts] = nil
            elseif seg ~= "." then
              parts[#parts + 1] = seg
            end
          end
          local resolved = table.concat(parts, "/")
          assert.is_true(helper.exists(root .. "/" .. resolved), file .. " links to a missing file: " .. target)
          checked = checked + 1
        end
      end
    end
    assert.is_true(checked >= 1)
  end)

  it("send no reader to the API's documents outside the repository", function()
    for _, file in ipairs(docs()) do
      local text = helper.read_file(root .. "/" .. file)
      assert.is_nil(text:find("shared/api", 1, true), file)
    end
    assert.matches("[docs/api.md](docs/api.md)", README, 1, true)
  end)
end)
