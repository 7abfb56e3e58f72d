-- csrc/test/oom_test.c under valgrind (the hosts tier: minutes of CPU, moved from
-- spec/curl/transport_spec.lua): a Lua 5.4 host whose allocator refuses the n-th
-- allocation of a t:send, a t:result, for n = 0, 1, 2... against the emulator.
local helper = require "spec.helper"
local starvideos = require "starvideos"

local q = helper.shell_quote

describe("the transport's errors of memory", function()
  local emu
  require "spec.support.shared_emulator"({ queued = 0.1, processing = 0.1 }, function(e) emu = e end)

  -- a finished task's video URL
  local function video_url()
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, retry_backoff = 0.01 }
    local task = assert(c:create { model = "videos", prompt = "a cat", duration = 5 })
    local url = assert(c:wait(task.id, { interval = 0.05, timeout = 10 })).video_url
    c:close()
    return url
  end

  -- csrc/test/NAME.c built with the Lua 5.4 module it loads: the command that runs it (uninstrumented), or nil
  -- under another VM (pending)
  local function lua54_host(name)
    if helper.vm ~= "lua5.4" then pending("runs under lua5.4 (the host is Lua 5.4)") return end
    local root = helper.root
    local built, ok = helper.capture("make --no-print-directory -C " .. q(root)
      .. " build/" .. name .. " build/lua5.4/starvideos/curl.so 2>&1")
    assert.is_true(ok, built)
    return q(root .. "/build/" .. name) .. " " .. q(root .. "/build/lua5.4/?.so")
  end

  -- csrc/test/oom_test.c: its Lua allocator refuses the n-th allocation of a
  -- t:send, a t:result, for n = 0, 1, 2...; valgrind counts what was lost
  it("an error of memory in send or result loses no exchange and no file (valgrind)", function()
    local host = lua54_host("oom_test")
    if not host then return end
    local run = host .. " " .. q(video_url()) .. " " .. q(helper.tmpdir()) .. " 2>&1"
    local out, ok = helper.capture(helper.UNINSTRUMENTED .. run)
    assert.is_true(ok, out)
    local sends, s_refused, results, r_refused = out:match("^ok (%d+) sends %((%d+) refused for "
      .. "memory%), (%d+) results %((%d+) refused for memory%)")
    assert.truthy(sends, out)
    print("\n  " .. out:gsub("\n$", ""))
    -- the sweep reached the points where memory is asked for
    assert.is_true(tonumber(s_refused) > 0 and tonumber(s_refused) < tonumber(sends), out)
    assert.is_true(tonumber(r_refused) > 0 and tonumber(r_refused) < tonumber(results), out)
    local _, has_valgrind = helper.capture("command -v valgrind")
    if not has_valgrind then
      print("\n  valgrind is not installed: the lost exchanges are not counted (make check installs it)")
      return
    end
    out, ok = helper.capture(helper.UNINSTRUMENTED .. "valgrind -q --error-exitcode=3 --leak-check=full"
      .. " --errors-for-leak-kinds=definite --show-leak-kinds=definite " .. run)
    assert.is_true(ok, out)
  end)
end)
