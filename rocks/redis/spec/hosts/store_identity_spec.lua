-- The store's identity (fleet/identity.lua's GUARD, rocks/redis): every script on a fleet's keys checks it as it
-- runs; a reset it finds has its store's watchers' records written before the script is run again.  Against a
-- real redis-server, through the store alone (rocks/redis/spec/hosts/store_reset_spec.lua: the ledger and keep over
-- it).

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local why = redis_run.missing()
local describe_redis = why and pending or describe

local P = "starvideos:{spec-identity}:"

describe_redis("a store's identity", function()
  local Store = require "starvideos.fleet.store"
  -- KEYS[1] set to ARGV[1]; the answer: whether KEYS[2] is there (a watcher's record written before)
  Store.define("spec_seen", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('EXISTS', KEYS[2])")
  Store.define("spec_refused", "return redis.error_reply('BAD no')")
  local srv, admin
  local opened = {}

  before_each(function()
    srv = redis_run.start()
    admin = Store.new(srv.url)
  end)

  after_each(function()
    for _, s in ipairs(opened) do s:close() end
    opened = {}
    admin:close()
    srv.stop()
    helper.cleanup()
  end)

  -- A store with a watcher whose record (script name, key) is written first at a reset: w.told counts its
  -- resets, w.calls every time it was asked.
  local function watched(name, key)
    local s = Store.new(srv.url)
    opened[#opened + 1] = s
    local w = { told = 0, calls = 0 }
    function w.records_again(_, told)
      w.calls, w.told = w.calls + 1, w.told + (told and 1 or 0)
      return { { name, { key, key }, { "again" } } }
    end
    s:watch(P, w, true)
    return s, w
  end

  local function identity() return admin:call("GET", P .. "identity") end

  it("is written by the first script a store runs; another store learns it without a reset", function()
    local a, wa = watched("spec_seen", P .. "kept-a")
    assert.equal(0, a:script("spec_seen", { P .. "x", P .. "none" }, { "1" }))
    local id = identity()
    assert.is_string(id)
    local b, wb = watched("spec_seen", P .. "kept-b")
    assert.equal(0, b:script("spec_seen", { P .. "y", P .. "none" }, { "1" }))
    assert.equal(id, identity())
    assert.same({ 0, 0 }, { wa.calls, wb.calls })
    assert.equal("1", admin:call("GET", P .. "y"))
  end)

  it("after a FLUSHALL the next script writes nothing until the watchers' records are written again, "
    .. "told once; then it runs on the store's new identity", function()
      local s, w = watched("spec_seen", P .. "kept")
      assert.equal(0, s:script("spec_seen", { P .. "x", P .. "kept" }, { "1" }))
      local old = identity()
      assert(admin:call("FLUSHALL"))
      assert.equal(1, s:script("spec_seen", { P .. "x", P .. "kept" }, { "2" })) -- (the record was there first)
      assert.same({ 1, 1 }, { w.calls, w.told })
      assert.is_string(identity())
      assert.are_not.equal(old, identity())
      assert.equal(1, s:script("spec_seen", { P .. "y", P .. "kept" }, { "3" }))
      assert.same({ 1, 1 }, { w.calls, w.told })
    end)

  it("two stores finding one reset: one identity, each store's records written, each told once", function()
    local a, wa = watched("spec_seen", P .. "kept-a")
    local b, wb = watched("spec_seen", P .. "kept-b")
    assert.equal(0, a:script("spec_seen", { P .. "x", P .. "none" }, { "1" }))
    assert.equal(0, b:script("spec_seen", { P .. "x", P .. "none" }, { "1" }))
    assert(admin:call("FLUSHALL"))
    -- a's script runs on the empty store (its answer read later); b then finds the reset and writes its identity,
    -- so that a's records, sent with a new identity of its own, are refused and sent again under b's
    local n = assert(a:send_script("spec_seen", { P .. "ya", P .. "kept-a" }, { "1" }))
    assert(helper.wait_until(function() assert(a:step(0.05)); return a:waiting() == false end, 5))
    assert.equal(1, b:script("spec_seen", { P .. "yb", P .. "kept-b" }, { "1" }))
    local id = identity()
    assert.equal(1, a:wait(n))
    assert.equal(id, identity())
    assert.same({ 1, 1, 2, 1 }, { wb.calls, wb.told, wa.calls, wa.told })
    assert.same({ "again", "again" }, { admin:call("GET", P .. "kept-a"), admin:call("GET", P .. "kept-b") })
  end)

  it("a record the watcher gives that Redis refuses: the identity heard is set back, so the next script finds "
    .. "the reset again and the records are sent again", function()
      local s, w = watched("spec_refused", P .. "kept")
      assert.equal(0, s:script("spec_seen", { P .. "x", P .. "none" }, { "1" }))
      assert(admin:call("FLUSHALL"))
      assert.equal(0, s:script("spec_seen", { P .. "x", P .. "none" }, { "2" }))
      assert.same({ 1, 1 }, { w.calls, w.told })
      assert.equal(0, s:script("spec_seen", { P .. "x", P .. "none" }, { "3" }))
      assert.same({ 2, 2 }, { w.calls, w.told })
    end)
end)

-- The same inside nginx (the store on cosockets): GET /reset?port= answers the
-- first script's answer, the one after a FLUSHALL, and how many resets its watcher was told.
local HANDLER = [[
local store = require "starvideos.fleet.store"
store.define("spec_seen", "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('EXISTS', KEYS[2])")
local P = "]] .. P .. [["
local s = store.new("redis://127.0.0.1:" .. ngx.var.arg_port, { timeout = 2 })
local w = { told = 0 }
function w.records_again(_, told)
  w.told = w.told + (told and 1 or 0)
  return { { "spec_seen", { P .. "kept", P .. "kept" }, { "again" } } }
end
s:watch(P, w, true)
local a = s:script("spec_seen", { P .. "x", P .. "kept" }, { "1" })
assert(s:call("FLUSHALL"))
local b, err = s:script("spec_seen", { P .. "x", P .. "kept" }, { "2" })
ngx.say(tostring(a), " ", tostring(b or err and err.message), " ", w.told)
]]

local ngx_why = require("spec.support.nginx_run").missing { "nginx" } or redis_run.missing()
local describe_nginx = ngx_why and pending or describe

describe_nginx("a store's identity inside nginx", function()
  it("a FLUSHALL found by the next script on cosockets: the watcher's record written first, told once", function()
    local nginx_run = require "spec.support.nginx_run"
    local dir = helper.tmpdir()
    local srv, run = redis_run.start(), nil
    finally(function() -- (one finally: busted keeps the last)
      if run then run.stop() end
      srv.stop()
      helper.cleanup()
    end)
    helper.write_file(dir .. "/reset.lua", HANDLER)
    run = nginx_run.serve(dir, function(port)
      local lines = nginx_run.conf_head(dir, 1)
      for _, l in ipairs { string.format("    server { listen 127.0.0.1:%d;", port),
        string.format("        location = /reset { content_by_lua_file %s/reset.lua; }", dir), "    }", "}", "" } do
        lines[#lines + 1] = l
      end
      return table.concat(lines, "\n")
    end)
    local body = require("socket.http").request(string.format("http://127.0.0.1:%d/reset?port=%d", run.port,
      srv.port))
    assert.equal("0 1 1\n", body, helper.read_file(dir .. "/error.log"))
  end)
end)

