-- The ACL a fleet's user needs (issue 49): the `ACL SETUSER` line of docs/keep-and-fleet.md, run on a real
-- redis-server (a primary and a replica), makes a user that passes `starvideos store check --replicas 1` and runs
-- a fleet's work with replicas = 1 (creates, polls, downloads, a keep); `store check` tries what the fleet runs and
-- names what a user may not (TIME, EVAL; before, a user without +time was `usable` and a +@read one an internal
-- error); a user without +wait ends a create with replicas = 1 at once, nothing sent (before: never returned); a
-- user made on the primary alone is not usable (before: usable, and a failover to the replica answered WRONGPASS).

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local q = helper.shell_quote
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
local BIN = helper.root .. "/bin/starvideos"
local PW = "fleet-pw"

local why = redis_run.missing(true)
if why then
  describe("a fleet's ACL user", function() pending(why) end)
  return
end

local starvideos = require "starvideos"

-- The docs' line, its password PW: the words after ACL SETUSER.
local function docs_line()
  local text = assert(helper.read_file(helper.root .. "/docs/keep-and-fleet.md"))
  local line = assert(text:match("\nACL SETUSER ([^\n]+)\n"), "no ACL SETUSER line in docs/keep-and-fleet.md")
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w == ">PASSWORD" and ">" .. PW or w end
  return words
end

-- `starvideos store check URL ARGS... --json`: its exit status and document.
local function check(url, ...)
  local parts = { "env -u STARVIDEOS_STORE", q(helper.lua), q(BIN), "store", "check", q(url), "--json" }
  for _, a in ipairs { ... } do parts[#parts + 1] = q(a) end
  local out, _, code = helper.capture(table.concat(parts, " ") .. " </dev/null 2>&1")
  return code, cjson.decode(out), out
end

describe("a fleet's ACL user", function()
  local primary, replica, emu, dir

  setup(function()
    primary = redis_run.primary { aof = true, users = {
      { "notime", PW, "'~*' '&*' '+@all' -time" },
      { "reader", PW, "'~*' '+@read'" },
      { "nowait", PW, "'~*' '&*' '+@all' -wait" } } }
    replica = redis_run.replica(primary.port)
    assert(redis_run.wait_online(primary.port, 1))
    local words = docs_line()
    assert.equal("starvideos", words[1])
    for _, node in ipairs { primary, replica } do -- (on every node, as the docs say)
      assert.same({ "OK" }, redis_run.cli(node.port, "ACL", "SETUSER", unpack(words)))
    end
    emu = helper.emulator { key = "k-acl", queued = 0.1, processing = 0.1 }
    dir = helper.tmpdir()
  end)

  teardown(function()
    if emu then emu:stop() end
    if replica then replica.stop() end
    if primary then primary.stop() end
    helper.cleanup()
  end)

  local function url(user) return string.format("redis://%s:%s@127.0.0.1:%d", user, PW, primary.port) end

  it("made by the docs' ACL SETUSER line: store check --replicas 1 usable, nothing refused; creates, polls, "
    .. "downloads and a keep with replicas = 1 as that user", function()
      local code, doc, out = check(url("starvideos"), "--replicas", "1")
      assert.equal(0, code, out)
      assert.same({}, doc.refused)
      local warnings = {}
      local client = starvideos.new { api_key = "k-acl", base_url = emu.url, interval = 0.2,
        store = { url = url("starvideos"), replicas = 1, replica_timeout = 1 },
        on_event = function(ev) if ev.type == "warning" then warnings[#warnings + 1] = ev.message end end }
      finally(function() client:close() end)
      for i = 1, 2 do
        local task = assert(client:generate({ model = "videos", prompt = "acl " .. i, duration = 5 },
          { out = dir .. "/v" .. i .. ".mp4" }))
        assert.equal("completed", task.status)
        assert.truthy(helper.read_file(dir .. "/v" .. i .. ".mp4"))
      end
      local tasks = assert(client:tasks())
      assert.equal(2, #tasks)
      local results = assert(client:keep { dir = dir, once = true, timeout = 10 })
      assert.same({}, results)
      assert.equal(2, emu:creates())
      for _, w in ipairs(warnings) do -- (none of a refusal: the AOF's fsync is always here)
        assert.is_nil(w:find("NOPERM", 1, true) or w:find("can't run", 1, true), w)
      end
    end)

  it("made by the docs' line on the primary alone: store check --replicas 1 not usable, naming the replica and "
    .. "its WRONGPASS (a failover to it would refuse the fleet); made there too: usable", function()
    local words = docs_line()
    words[1] = "onlyprimary"
    assert.same({ "OK" }, redis_run.cli(primary.port, "ACL", "SETUSER", unpack(words)))
    local code, doc, out = check(url("onlyprimary"), "--replicas", "1")
    assert.equal(1, code, out)
    assert.is_false(doc.usable)
    local at = "127.0.0.1:" .. replica.port
    assert.matches("the user onlyprimary is refused on replica " .. at .. " (WRONGPASS", doc.error, 1, true)
    assert.matches("^refused: WRONGPASS", doc.replicas[1].user)
    assert.is_nil(out:find(PW, 1, true))
    assert.same({ "OK" }, redis_run.cli(replica.port, "ACL", "SETUSER", unpack(words)))
    code, doc, out = check(url("onlyprimary"), "--replicas", "1")
    assert.equal(0, code, out)
    assert.equal("ok", doc.replicas[1].user)
  end)

  it("store check names what a user may not run: TIME for one without +time, EVAL for a +@read one", function()
    local code, doc, out = check(url("notime"))
    assert.equal(1, code, out)
    assert.is_false(doc.usable)
    assert.matches("^TIME: ", doc.refused[1])
    assert.matches("the user notime may not run what the fleet runs (TIME: ", doc.error, 1, true)
    code, doc, out = check(url("reader"))
    assert.equal(1, code, out)
    assert.matches("^EVAL: NOPERM", doc.refused[1])
    local text = helper.capture(table.concat({ "env -u STARVIDEOS_STORE", q(helper.lua), q(BIN), "store", "check",
      q(url("reader")) }, " ") .. " 2>&1")
    assert.is_nil(text:find("internal error", 1, true), text)
    assert.matches("\nrole: unknown, replicas unknown\n", text, 1, true)
    assert.matches("\nnot usable: the user reader may not run what the fleet runs (EVAL: NOPERM", text, 1, true)
    assert.is_nil(text:find(PW, 1, true))
  end)

  it("a user without +wait, replicas = 1: create ends at once with an io error naming +wait, nothing sent; "
    .. "store check --replicas 1 not usable", function()
      local before = emu:creates()
      local client = starvideos.new { api_key = "k-acl", base_url = emu.url,
        store = { url = url("nowait"), replicas = 1 } }
      finally(function() client:close() end)
      local t0 = os.time()
      local task, err = client:create { model = "videos", prompt = "no wait", duration = 5 }
      assert.is_nil(task)
      assert.same({ "io", "store" }, { err.kind, err.field })
      assert.matches("WAIT is refused (NOPERM", err.message, 1, true)
      assert.matches("allow the user +wait", err.message, 1, true)
      assert.truthy(os.time() - t0 <= 5)
      assert.equal(before, emu:creates())
      local code, doc = check(url("nowait"), "--replicas", "1")
      assert.equal(1, code)
      assert.matches("^WAIT: NOPERM", doc.refused[1])
    end)
end)
