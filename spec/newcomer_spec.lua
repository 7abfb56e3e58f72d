-- What a newcomer meets in the first hour (issue 16, "what the walkthrough
-- found"): the command line on a narrow terminal, ...

local helper = require "spec.helper"
local display = require "starvideos.cli.display"

local q = helper.shell_quote
local root = helper.root
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
      assert.are.equal(8 * 2 ^ 20, helper.file_size(path))
      return out
    end

    -- columns on the terminal: UTF-8 characters (counted here, not by the display)
    local function width(s) return #s:gsub("[\128-\191]", "") end

    local function check(out)
      local lines = live_lines(out)
      local status, bar = 0, 0
      for _, l in ipairs(lines) do
        assert.is_true(width(l) <= 40, ("%d columns: %q"):format(width(l), l))
        if l:find("processing", 1, true) then status = status + 1 end
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
  local DEFAULT = require("starvideos.options").DEFAULT_BASE_URL
  local NOTE = "(STARVIDEOS_BASE_URL is not set: using " .. DEFAULT
    .. "; for the local emulator, export the lines `starvideos emulator` prints)"

  -- the fixture's lines: { [what] = { url =, kind =, message = } }
  local function fake_run(env, base_url)
    local dir = helper.tmpdir()
    local out, ok = helper.capture("env -u STARVIDEOS_BASE_URL " .. env .. " LUA_PATH="
      .. q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;") .. " LUA_CPATH=" .. q(helper.cpath .. ";;")
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
    local note = NOTE:gsub("%p", "%%%0")
    assert.matches("^starvideos status: network: query: network error: [^\n]* " .. note .. "\n$", out)
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
