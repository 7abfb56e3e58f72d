-- A connection is shared only by clients of the same endpoint, TLS settings, user, password and db (issue 38
-- item 1; the bug of pooled connections that keep another configuration's AUTH or SELECT): two clients of one
-- key on one redis-server, with different users and dbs, 10,000 mixed operations between them, outside nginx
-- (the key's stores) and inside (nginx's pool of cosockets); then 0 records in the other's db, and 0 refusals
-- (each user may touch only its own keys: a command on the other's connection would be NOPERM).  A pair with
-- one db and one password but two users too (nginx's pool was named by db and password alone).

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local nginx_run = require "spec.support.nginx_run"

local why = redis_run.missing(true)
if why then
  describe("a store's connections", function() pending(why) end)
  return
end

local Store = require "starvideos.fleet.store"
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- Each user its own keys ("alice:*") and commands; dave and erin share a password.
local USERS = {
  { "alice", "pw-a", "'~alice:*' '+@all' '-flushall'" }, { "bob", "pw-b", "'~bob:*' '+@all'" },
  { "dave", "same", "'~dave:*' '+@all'" }, { "erin", "same", "'~erin:*' '+@all'" },
}
-- The clients: user, password, db.
local PAIRS = { { { "alice", "pw-a", 1 }, { "bob", "pw-b", 2 } }, { { "dave", "same", 3 }, { "erin", "same", 3 } } }

-- Operation i of user u (its keys u:*): the command (the same text runs inside nginx).
local OP = [=[
return function(u, i)
  local k, kind = u .. ":" .. (i % 50), i % 5
  if kind == 0 then return { "SET", k, u .. i } end
  if kind == 1 then return { "INCR", u .. ":n" } end
  if kind == 2 then return { "HSET", u .. ":h", "f" .. (i % 7), tostring(i) } end
  if kind == 3 then return { "GET", u .. ":0" } end
  return { "EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", u .. ":s" .. (i % 9), tostring(i) }
end
]=]
local op = assert((rawget(_G, "loadstring") or load)(OP))()

-- The keys of db n.
local function keys_of(url, db)
  local s = Store.new(url .. "/" .. db)
  local list = assert(s:call("KEYS", "*"))
  s:close()
  return list
end

local function owners(list)
  local seen = {}
  for _, k in ipairs(list) do seen[k:match("^(%a+):") or k] = true end
  local out = {}
  for name in pairs(seen) do out[#out + 1] = name end
  table.sort(out)
  return out
end

local function url_of(srv, c) return string.format("redis://%s:%s@127.0.0.1:%d/%d", c[1], c[2], srv.port, c[3]) end

describe("a store's connections outside nginx", function()
  local srv
  setup(function() srv = redis_run.start { users = USERS, password = "root pw" } end)
  teardown(function() if srv then srv.stop() end; helper.cleanup() end)

  it("are never shared between two clients of another user or db: 10,000 operations, 0 in the other's db", function()
    local key = require("starvideos.key")
    for _, pair in ipairs(PAIRS) do
      local k = key.for_client { base_url = "http://pools", api_key = "k-pools", requests_per_second = 10,
        max_connections = 4 }
      local a = Store.for_key(url_of(srv, pair[1]), k, 5)
      local b = Store.for_key(url_of(srv, pair[2]), k, 5)
      assert.are_not.equal(a, b)
      local sent, errors = {}, {}
      for i = 1, 5000 do
        for j, s in ipairs { a, b } do
          local cmd = op(pair[j][1], i)
          sent[#sent + 1] = { s, assert(s:send(unpack(cmd))) }
        end
      end
      for _, e in ipairs(sent) do
        local _, err = e[1]:wait(e[2])
        if err then errors[#errors + 1] = err.message end
      end
      assert.same({}, { unpack(errors, 1, 3) })
      a:close(); b:close()
    end
    local root = "redis://:root%20pw@127.0.0.1:" .. srv.port
    assert.same({ "alice" }, owners(keys_of(root, 1)))
    assert.same({ "bob" }, owners(keys_of(root, 2)))
    assert.same({ "dave", "erin" }, owners(keys_of(root, 3)))
    local s = Store.new(root .. "/1")
    finally(function() s:close() end)
    assert.equal("1000", (s:call("GET", "alice:n"))) -- each of its own INCRs (1 in 5), in its own db
  end)
end)

if nginx_run.pending_unless_ready("a store's connections inside nginx", { "nginx" }) then return end

-- GET /ops?a=URL&b=URL&from=N: 250 operations of each client's user taking turns (a store of each made in the
-- request, as a client per request does), one line: the errors, or "ok".
local HANDLER = [[
local Store = require "starvideos.fleet.store"
local OP = loadstring(OP_SOURCE)()
local a = Store.new(ngx.unescape_uri(ngx.var.arg_a))
local b = Store.new(ngx.unescape_uri(ngx.var.arg_b))
local ua, ub = ngx.var.arg_ua, ngx.var.arg_ub
local errs = {}
for i = tonumber(ngx.var.arg_from), tonumber(ngx.var.arg_from) + 249 do
  for _, e in ipairs { { a, ua }, { b, ub } } do
    local _, err = e[1]:call(unpack(OP(e[2], i)))
    if err then errs[#errs + 1] = err.message end
  end
end
ngx.say(#errs == 0 and "ok" or table.concat(errs, "; ", 1, math.min(#errs, 3)))
]]

describe("a store's connections inside nginx", function()
  local srv, ngx_srv, dir

  setup(function()
    dir = helper.tmpdir()
    srv = redis_run.start { users = USERS, password = "root pw" }
    local code = HANDLER:gsub("OP_SOURCE", function() return string.format("%q", OP) end)
    ngx_srv = nginx_run.serve_lua(dir, { { "/ops", code } }, 2)
  end)
  teardown(function()
    if ngx_srv then ngx_srv.stop() end
    if srv then srv.stop() end
    helper.cleanup()
  end)

  it("are never shared between two clients of another user or db: 10,000 operations, 0 in the other's db", function()
    local function esc(s) return (s:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)) end
    for _, pair in ipairs(PAIRS) do
      for from = 1, 5000, 250 do
        assert.equal("ok", ngx_srv.get(string.format("/ops?a=%s&b=%s&ua=%s&ub=%s&from=%d",
          esc(url_of(srv, pair[1])), esc(url_of(srv, pair[2])), pair[1][1], pair[2][1], from)))
      end
    end
    local root = "redis://:root%20pw@127.0.0.1:" .. srv.port
    assert.same({ "alice" }, owners(keys_of(root, 1)))
    assert.same({ "bob" }, owners(keys_of(root, 2)))
    assert.same({ "dave", "erin" }, owners(keys_of(root, 3)))
  end)
end)
