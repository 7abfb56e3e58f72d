-- Every key a script of the Redis rock touches is one of its KEYS (issue 58, part 4; fleet/declared.lua;
-- docs/keep-and-fleet.md#scripts-declare-their-keys), in the fast tier: no server, the scripts run in a plain Lua
-- sandbox (rocks/redis/spec/support/redis_sandbox.lua) whose redis.call refuses a key that is not among the script's
-- KEYS, as Dragonfly refuses it by default (and Cluster when it is another slot's).  The ledger's case list
-- (spec/support/ledger_cases.lua) runs on a store whose connection is that sandbox: every script the cases send, as
-- the ledger sends it; then the scripts no case sends (the budget's hold, the recount of a reset, check's) as their
-- callers send them; a planted script that builds a key inside is refused.
local Route = require "starvideos.fleet.route"
local Store = require "starvideos.fleet.store"
local Check = require "starvideos.fleet.check"
local Budget = require "starvideos.fleet.budget"
require "starvideos.fleet.ledger" -- (the ledger's scripts)
local core = require "starvideos.core"
local sandbox = require "rocks.redis.spec.support.redis_sandbox"
local helper = require "spec.helper"
local cases = require "spec.support.ledger_cases"

local r = sandbox.new()
local open = Route.open

-- Whether v is the sandbox's refusal of a key not declared.
local function refused(v)
  return type(v) == "table" and type(v.err) == "string" and v.err:find("not one of its KEYS", 1, true) ~= nil
end

describe("the scripts of the Redis rock in a sandbox that refuses a key not in KEYS", function()
  setup(function() Route.open = function() return sandbox.backend(r) end end)
  teardown(function() Route.open = open end)

  cases.run("a store", true, cases.env(function() return { store = "redis://127.0.0.1:1/0", lease = 2 } end,
    function() helper.sleep(2.2) end), -- (the sandbox's keys expire on the clock, as Redis')
    { describe = describe, it = it, after_each = after_each, assert = assert })

  it("the scripts no case sends, as their callers send them: the budget's hold, a reset's recount, check's", function()
    local P = "starvideos:{" .. core.random_id() .. "}:"
    local hash = P:match("{(.-)}")
    assert.equal("ok", r:run("budget_hold", Budget.keys(hash, ""), { "2.000", "3600" }))
    local wait = r:run("budget_token", Budget.keys(hash, "t1"), { "5", "t1" })
    assert.truthy(tostring(wait):match("^h[%d.]+$"), tostring(wait)) -- (held: the hold's wait)
    assert.equal(1, r:run("ledger_recount", { P .. "creates" }, { "60", "1.5", "2.5" }))
    assert.same({}, r:run("check_commands", Check.PROBES, {}))
    assert.equal(1, r:run("check_write", { "starvideos:check:probe" }, { "1" }))
    -- the samples of a key whose tasks took some, as a ledger's first read sends it (fleet/ledger.lua)
    r:call("HSET", P .. "kinds", "videos:5:", "videos")
    r:call("LPUSH", P .. "samples:videos:5:", "40 60")
    assert.same({ { "videos:5:", "videos", { "40 60" } } }, r:run("ledger_samples", { P .. "kinds" }, {}))
    assert.equal(1, r:run("ledger_refs", { P .. "task:nope", }, { "x" }) + 1) -- (no record: 0)
  end)

  it("every script the store defines was run, and none touched a key it did not declare", function()
    local never, ran = {}, {} -- (by text: pending and owe are keyed's, delivered abandoned's)
    for name in pairs(r.touched) do ran[Store.script_text(name) or name] = true end
    for _, name in ipairs(Store.script_names()) do
      if not ran[Store.script_text(name)] and not name:find("^spec_") then never[#never + 1] = name end
    end
    assert.same({}, never)
    assert.same({}, r.refused) -- (whether or not the caller looked at the answer)
    local asked = {}
    for name, n in pairs(r.asked) do asked[#asked + 1] = string.format("%s %d/%d", name, n, r.sent[name]) end
    table.sort(asked)
    print("\nscripts answered STARVIDEOS_KEYS (asked/sent): " .. table.concat(asked, ", "))
  end)

  it("every command the scripts ran is one store check tries and one docs/keep-and-fleet.md's ACL line allows",
    function()
    local doc = assert(helper.read_file(helper.root .. "/docs/keep-and-fleet.md"))
    local acl = assert(doc:match("\nACL SETUSER ([^\n]+)\n"), "no ACL SETUSER line")
    local tries = Store.script_text("check_commands")
    local missing = {}
    for cmd in pairs(r.ran) do
      if not (acl:find(" %+" .. cmd:lower() .. "%f[^%w|]") and tries:find("{'" .. cmd .. "'", 1, true)) then
        missing[#missing + 1] = cmd
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("a planted script that builds a key inside is refused (a key of the prefix, as the scripts did before)", function()
    local P = "starvideos:{" .. core.random_id() .. "}:"
    Store.define("spec_planted", "return redis.call('HGETALL', string.sub(KEYS[1], 1, -6) .. 'task:' .. ARGV[1])")
    local v = r:run("spec_planted", { P .. "kinds" }, { "t1" })
    assert.is_true(refused(v), tostring(v and v.err))
    assert.truthy(v.err:find(P .. "task:t1", 1, true))
    -- the same read through key(label): asked for, declared by the store's client, then run
    Store.define("spec_declared", "local k = key('task:' .. ARGV[1]) return needed() or redis.call('HGETALL', k)")
    local got, runs = r:run("spec_declared", { P .. "kinds" }, { "t1" })
    assert.same({ {}, 2 }, { got, runs })
    r:call("HSET", P .. "task:a b%20\t", "id", "x") -- (a label with spaces, % and a tab: sent escaped)
    assert.same({ { "id", "x" }, 2 }, { r:run("spec_declared", { P .. "kinds" }, { "a b%20\t" }) })
    -- a key the ledger passes wrongly: refused too
    assert.is_true(refused(r:run("ledger_samples", { P .. "kinds", more = {} }, {}) and
      r:eval("return redis.call('GET', 'starvideos:{x}:other')", { P .. "kinds" }, {})))
  end)

  it("key_locking = true (Upstash's allow-key-locking): every script opens with its line; without it none does; "
    .. "not a boolean: refused, naming store.key_locking", function()
    local sent = {}
    local function store(opts)
      local st = Store.new(opts)
      st.b = { name = "spec", null = false, send = function(_, args) sent[#sent + 1] = args; return #sent end,
        poll = function() return true end, pending = function() return 0 end,
        reply = function() return "ok", 1 end, close = function() end }
      return st
    end
    local keys = { "starvideos:{h}:owner:me", "starvideos:{h}:identity" }
    assert.equal(1, store({ url = "redis://127.0.0.1:1/0", key_locking = true }):script("ledger_lease", keys, { 9 }))
    assert.equal(1, store({ url = "redis://127.0.0.1:1/0" }):script("ledger_lease", keys, { 9 }))
    assert.equal("#!lua flags=allow-key-locking\n", sent[1][2]:sub(1, #Store.KEY_LOCKING))
    assert.equal("\n", sent[1][2]:sub(#Store.KEY_LOCKING, #Store.KEY_LOCKING)) -- (its first line)
    assert.is_nil(sent[2][2]:find("#!", 1, true))
    assert.has_error(function() Store.new({ url = "redis://127.0.0.1:1/0", key_locking = "yes" }) end,
      'store.key_locking: expected true or false, got "yes"')
  end)

  it("a key's name that is not a string is refused before anything is sent, naming it", function()
    local st = Store.new("redis://127.0.0.1:1/0")
    assert.has_error(function() st:send_script("ledger_peek", { "starvideos:{h}:key:k", more = { false } }, {}) end,
      "store: a script's key #1 is a boolean, not a name")
  end)
end)
