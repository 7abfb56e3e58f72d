-- A client with a store inside nginx (2 workers): a client per request, each
-- with a store of its own on cosockets from the
-- keepalive pool, no PING per request; its records and the key's budget in
-- Redis, as outside.  Pending where nginx, its lua module, a Lua Redis client
-- for nginx or redis-server is missing.

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("a client with a store inside nginx", { "nginx", "curl" }) then return end

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local Store = require "starvideos.fleet.store"
local R = require "starvideos.fleet.ledger"
local str_format = string.format

local why = redis_run.missing()
if why then
  describe("a client with a store inside nginx", function() pending(why) end)
  return
end

local KEY, N = "k-store-nginx", 6

-- GET /gen?i=N: a client with the store generates one video into dir/N.mp4:
-- "ok <id>" or the error.
local function nginx_conf(dir, port, emu_url, store_url)
  local lines = nginx_run.conf_head(dir, 2)
  for _, l in ipairs {
    str_format("    server { listen 127.0.0.1:%d reuseport;", port),
    "        location = /gen { content_by_lua_block {",
    "            local starvideos = require \"starvideos\"",
    str_format("            local client = starvideos.new { api_key = %q, base_url = %q, store = %q }", KEY, emu_url,
      store_url),
    "            local i = tonumber(ngx.var.arg_i)",
    "            local task, err = client:generate({ model = \"videos\", prompt = \"cat \" .. i, duration = 5 },",
    str_format("              { out = %q .. i .. \".mp4\", interval = 0.3, timeout = 60 })", dir .. "/"),
    "            client:close()",
    "            ngx.say(task and (\"ok \" .. task.id) or (\"err \" .. tostring(err)))",
    "        } }",
    "    }",
    "}", "",
  } do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

describe("a client with a store inside nginx", function()
  local emu, redis, srv, dir
  setup(function()
    dir = helper.tmpdir()
    emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.6 }
    redis = redis_run.start { password = "ngx-store-pw" }
    srv = nginx_run.serve(dir, function(port) return nginx_conf(dir, port, emu.url, redis.url) end)
  end)
  teardown(function()
    if srv then srv.stop() end
    if redis then redis.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("generates with a store per request: records and budget in Redis, no PING", function()
    local st = Store.new(redis.url)
    assert.equal("OK", st:call("CONFIG", "RESETSTAT"))
    nginx_run.get_all(srv.port, N, dir, function(i) return "gen?i=" .. i end)
    local ids = {}
    for i = 1, N do
      local said = helper.read_file(dir .. "/out." .. i) or ""
      local id = said:match("^ok (%S+)")
      assert.truthy(id, said .. (helper.read_file(dir .. "/error.log") or ""))
      ids[#ids + 1] = id
      assert.is_true(helper.file_size(dir .. "/" .. i .. ".mp4") > 0)
    end
    assert.equal(N, emu:creates())
    local prefix = "starvideos:{" .. redis_run.key_hash(emu.url, KEY) .. "}:"
    for i, id in ipairs(ids) do
      assert.equal(dir .. "/" .. i .. ".mp4", st:call("HGET", prefix .. "task:" .. id, "path"))
    end
    assert.equal(1, st:call("EXISTS", prefix .. "tat")) -- the polls' tokens came from the store
    local stats = st:call("INFO", "commandstats")
    assert.matches("cmdstat_eval:calls=%d+", stats) -- the records and tokens went there
    assert.is_nil(stats:find("cmdstat_ping", 1, true), stats) -- no PING per request's store
    st:close()
    local view = R.new(redis.url, { base_url = emu.url, api_key = KEY, connect_timeout = 2 })
    assert.same({}, assert(view:unfinished()))
    assert.same({}, assert(view:pending()))
  end)
end)
