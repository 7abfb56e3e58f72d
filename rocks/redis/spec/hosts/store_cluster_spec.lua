-- The store on a Redis Cluster (issue 38 item 1), against real servers started here from Debian's package (3
-- primaries made one by redis-cli --cluster create, rocks/redis/spec/support/redis_run.lua's start_cluster): a batch of
-- N creates (bin/starvideos batch --store redis+cluster://...) against the emulator while the fleet's slot is
-- moved to another node as an operator does it (SETSLOT IMPORTING/MIGRATING, MIGRATE 3 keys at a time,
-- SETSLOT NODE): every key of the fleet in one slot, so 0 CROSSSLOT; the commands meanwhile followed through
-- ASK or TRYAGAIN (counted at the servers) and then MOVED; creates = files = N; the tasks' numbers (INCR in
-- the created script) 1..N, each once, each task at its first fence.  A slot half moved: ASK followed with
-- ASKING, then MOVED (counted at the servers).  Then inside nginx, a slot moved between two requests.
--
-- N = 200, the issue's batch: the emulator answers at once (queued 0, processing 0.05) and the batch polls every
-- 0.1 s, so that a poll each task: its 200 creates and 200 polls at the key's 10 requests a second (about 45 s)
-- are most of the spec's time; each file is compared with the emulator's video.  The move (3 keys a
-- MIGRATE, 0.05 s between) waits after its first MIGRATE until the batch met the half-moved slot.  A command of
-- several keys gets TRYAGAIN while some of its keys have moved and others not: sent again until the store's
-- timeout (a move slower than that refuses the creates meanwhile, io, nothing sent).

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local nginx_run = require "spec.support.nginx_run"
local core = require "starvideos.core"
local redis_slot = require("starvideos.fleet.native").slot

local why = redis_run.missing(true)
if why then
  describe("the store on a Cluster", function() pending(why) end)
  return
end

local Store = require "starvideos.fleet.store"
local q = helper.shell_quote

-- What the node on port counted since it started: its error answers of code `code` (INFO errorstats), or
-- its calls of command `cmd` (INFO commandstats).
local function errors_of(port, code)
  local n = table.concat(redis_run.cli(port, "INFO", "errorstats"), "\n"):match("errorstat_" .. code .. ":count=(%d+)")
  return tonumber(n) or 0
end
local function calls_of(port, cmd)
  local n = table.concat(redis_run.cli(port, "INFO", "commandstats"), "\n"):match("cmdstat_" .. cmd .. ":calls=(%d+)")
  return tonumber(n) or 0
end
local N, KEY = 200, "k-cluster"
local BIN = helper.root .. "/bin/starvideos"
local SAMPLE = require("starvideos.emulator.files").video(5)

describe("the store on a Cluster", function()
  local set, emu, dir

  setup(function()
    dir = helper.tmpdir()
    set = redis_run.start_cluster()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.05 }
  end)
  teardown(function()
    if emu then emu:stop() end
    if set then set.stop() end
    helper.cleanup()
  end)

  it("carries a batch while the fleet's slot moves to another node: 0 CROSSSLOT, creates = files", function()
    local lines = {}
    for i = 1, N do lines[i] = "cluster prompt " .. i end
    helper.write_file(dir .. "/prompts.txt", table.concat(lines, "\n") .. "\n")
    local log = dir .. "/batch.log"
    local t0 = core.now()
    local proc = helper.spawn(table.concat({ "env", "STARVIDEOS_API_KEY=" .. q(KEY),
      "STARVIDEOS_BASE_URL=" .. q(emu.url),
      q(helper.lua), q(BIN), "batch", "--prompts-file", q(dir .. "/prompts.txt"), "--out-dir", q(dir .. "/videos"),
      "--model", "videos", "--duration", "5", "--interval", "0.1", "--store", q(set.url), ">" .. q(log), "2>&1",
      "</dev/null" }, " "))
    local hash = redis_run.key_hash(emu.url, KEY)
    local slot = redis_slot("{" .. hash .. "}")
    assert(helper.wait_until(function() return emu:creates() >= 20 end, 30), helper.read_file(log))
    local from = redis_run.slot_node(set, slot)
    local to = from % #set.nodes + 1
    local src, dst = set.nodes[from].port, set.nodes[to].port
    local function bounced() return errors_of(src, "ASK") + errors_of(src, "TRYAGAIN") + errors_of(dst, "TRYAGAIN") end
    local bounced0 = bounced()
    -- 3 keys a MIGRATE, 0.05 s between; the first pause lasts until the batch met the half-moved slot (at most
    -- 10 s: a loaded box may run the whole move between two of the batch's store commands)
    local first = true
    local moved = redis_run.migrate_slot(set, slot, to, function()
      if first then helper.wait_until(function() return bounced() > bounced0 end, 10) end
      first = false
      helper.sleep(0.05)
    end, 3)
    assert.equal(to, redis_run.slot_node(set, slot))
    local ok = proc:close()
    local took, polls = core.now() - t0, 0
    for _, r in ipairs(emu:requests()) do if r.method == "GET" and r.path:find("^/v1/") then polls = polls + 1 end end
    local out = helper.read_file(log) or ""
    assert.is_true(ok and true, out)
    assert.is_nil(out:find("CROSSSLOT", 1, true), out)
    assert.equal(N, emu:creates())
    local whole = 0 -- (each file the emulator's video, byte for byte up to the mark's box: helper.read_video)
    for i = 1, N do
      if helper.read_video(string.format("%s/videos/%04d.mp4", dir, i)) == SAMPLE then whole = whole + 1 end
    end
    assert.equal(N, whole)
    -- the tasks' numbers and fences, read on the slot's node now
    local s = Store.new(set.url)
    finally(function() s:close() end)
    local pre = "starvideos:{" .. hash .. "}:"
    local ids = assert(s:call("ZRANGE", pre .. "tasks", "0", "-1", "WITHSCORES"))
    local seqs = {}
    for i = 2, #ids, 2 do seqs[#seqs + 1] = tonumber(ids[i]) end
    local want = {}
    for i = 1, N do want[i] = i end
    assert.same(want, seqs)
    for i = 1, #ids, 2 do assert.equal("1", s:call("HGET", pre .. "task:" .. ids[i], "fence")) end
    -- counted at the servers: ASK answered by the old node and ASKING sent to the new one during the move,
    -- MOVED after it; no CROSSSLOT anywhere
    local ask, asking, redirected = errors_of(src, "ASK"), calls_of(dst, "asking"), errors_of(src, "MOVED")
    local again = errors_of(src, "TRYAGAIN") + errors_of(dst, "TRYAGAIN")
    assert.is_true(ask == asking or ask > 0 and asking > 0, "ASK " .. ask .. ", ASKING " .. asking)
    assert.is_true(ask + again > 0, "neither ASK nor TRYAGAIN during the move")
    assert.is_true(redirected > 0, "MOVED " .. redirected)
    for _, n in ipairs(set.nodes) do assert.equal(0, errors_of(n.port, "CROSSSLOT")) end
    print(string.format("\nCluster: %d creates, %d polls, %d files in %.1f s; %d keys moved from node %d to %d while "
      .. "the batch ran: %d ASK (%d ASKING), %d TRYAGAIN, %d MOVED, 0 CROSSSLOT", N, polls, whole, took, moved, from,
      to, ask, asking, again, redirected))
  end)

  it("follows ASK with ASKING on the same connection while its key has moved, then MOVED", function()
    local s = Store.new(set.url)
    finally(function() s:close() end)
    local key, slot = "{ask}k", redis_slot("{ask}")
    assert.equal(1, s:call("INCR", key))
    local from = redis_run.slot_node(set, slot)
    local to = from % #set.nodes + 1
    local src, dst = set.nodes[from].port, set.nodes[to].port
    local src_id, dst_id = redis_run.cli(src, "CLUSTER", "MYID")[1], redis_run.cli(dst, "CLUSTER", "MYID")[1]
    redis_run.cli(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    redis_run.cli(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    redis_run.cli(src, "MIGRATE", "127.0.0.1", dst, key, 0, 5000)
    local function counts() return { errors_of(src, "ASK"), calls_of(dst, "asking"), errors_of(src, "MOVED") } end
    local c0 = counts()
    assert.equal(2, s:call("INCR", key)) -- the old node: ASK; the new one: ASKING, INCR
    assert.same({ c0[1] + 1, c0[2] + 1, c0[3] }, counts())
    redis_run.cli(dst, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    redis_run.cli(src, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    assert.equal(3, s:call("INCR", key)) -- the old node: MOVED, learned
    assert.equal(4, s:call("INCR", key))
    assert.same({ c0[1] + 1, c0[2] + 1, c0[3] + 1 }, counts())
  end)
end)

if nginx_run.pending_unless_ready("the store on a Cluster inside nginx", { "nginx" }) then return end

describe("the store on a Cluster inside nginx", function()
  local set, ngx_srv, dir

  setup(function()
    dir = helper.tmpdir()
    set = redis_run.start_cluster()
    local code = string.format([[
local s = require("starvideos.fleet.store").new(%q, { timeout = 2 })
local v, err = s:call("EVAL", "return redis.call('INCR', KEYS[1])", "1", "{ngx}writes")
ngx.say(v or (err.kind .. " " .. err.message))]], set.url)
    ngx_srv = nginx_run.serve_lua(dir, { { "/write", code } })
  end)
  teardown(function()
    if ngx_srv then ngx_srv.stop() end
    if set then set.stop() end
    helper.cleanup()
  end)

  local function write() return ngx_srv.get("/write") end

  it("writes on the slot's node, and follows the slot to its new node (MOVED)", function()
    for i = 1, 5 do assert.equal(tostring(i), write()) end
    local slot = redis_slot("{ngx}")
    local to = redis_run.slot_node(set, slot) % #set.nodes + 1
    redis_run.migrate_slot(set, slot, to)
    for i = 6, 10 do assert.equal(tostring(i), write()) end
    assert.equal("10", redis_run.cli(set.nodes[to].port, "GET", "{ngx}writes")[1])
  end)
end)
