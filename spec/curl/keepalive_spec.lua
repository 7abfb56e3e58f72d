-- keepalive_timeout on libcurl's path (CURLOPT_MAXAGE_CONN): a connection idle longer is not reused; the default
-- keeps libcurl's own (a connection reused a moment later).  The emulator numbers each TCP connection.
-- (Inside nginx: spec/hosts/keepalive_nginx_spec.lua.)
local helper = require "spec.helper"
local starvideos = require "starvideos"

describe("keepalive_timeout on libcurl", function()
  local emu
  setup(function() emu = helper.emulator { key = "k-keepalive", queued = 30, processing = 30 } end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)

  -- The connections of two queries of task id by a client of opts, `pause` s apart.
  local function two_queries(opts, pause)
    opts.api_key, opts.base_url = "k-keepalive", emu.url
    local c = starvideos.new(opts)
    local t = assert(c:create { model = "videos", prompt = "keep", duration = 5 })
    emu:clear()
    assert(c:query(t.id))
    helper.sleep(pause)
    assert(c:query(t.id))
    c:close()
    local conns = {}
    for _, r in ipairs(emu:requests()) do conns[#conns + 1] = r.connection end
    return conns
  end

  it("reuses a connection a moment later by default, and not once it was idle past keepalive_timeout", function()
    local kept = two_queries({ user_agent = "ka-default" }, 0.1)
    assert.equal(2, #kept)
    assert.equal(kept[1], kept[2], "the default: reused")
    local gone = two_queries({ user_agent = "ka-short", keepalive_timeout = 1 }, 2.5)
    assert.equal(2, #gone)
    assert.are_not.equal(gone[1], gone[2], "idle 2.5 s, keepalive_timeout 1: a new connection")
  end)
end)
