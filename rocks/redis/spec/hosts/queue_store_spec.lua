-- The queue on a store (issue 80, docs/keep-and-fleet.md "A batch bigger than one host"), on a real redis-server and
-- the emulator, creates counted there: client:submit sends nothing; 4 keepers (processes of their own), one killed -9
-- mid-way, create every entry once and save it whole; tenant_weights share the creates 3:1 under the key's budget;
-- priority 1 entries submitted late are created next.
local redis_run = require "rocks.redis.spec.support.redis_run"
local why = redis_run.missing()
if why then
  pending("the queue on a store: " .. why)
  return
end
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local starvideos = require "starvideos"

local KEY = "k-queue"

-- A keeper's program: keep on the store (args: the emulator's URL, the store's, the folder, the timeout, the rate)
-- with a 2 s lease, "keeping" first, then a line "made OUT" as each of its creates is answered.
local KEEPER = [=[
local starvideos = require "starvideos"
local url, store, dir, timeout, rate = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5])
local function say(...) io.write(table.concat({ ... }, " "), "\n"); io.stdout:flush() end
local client = starvideos.new { api_key = "]=] .. KEY .. [=[", base_url = url, store = store, lease = 2,
  requests_per_second = rate, interval = 0.5, tenant_weights = { a = 3, b = 1 } }
say("keeping")
local seen = {}
local results, err = client:keep { dir = dir, lease = 2, interval = 0.5, timeout = timeout,
  on_progress = function(ev)
    if ev.type == "status" and ev.id and not seen[ev.id] then seen[ev.id] = true; say("made", ev.id) end
  end }
say("ended:", results and #results or tostring(err))
client:close()
]=]

-- The prompts of the creates the emulator received, in order.
local function created(emu)
  local out = {}
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then out[#out + 1] = (cjson.decode(r.body) or {}).prompt end
  end
  return out
end

local function entries(n, word, extra)
  local list = {}
  for i = 1, n do
    list[i] = { model = "videos", prompt = word .. " " .. i, duration = 5 }
    for k, v in pairs(extra or {}) do list[i][k] = v end
  end
  return list
end

describe("the queue on a store", function()
  local srv, emu, procs
  before_each(function()
    srv, emu = redis_run.start_pair { key = KEY, queued = 0.2, processing = 0.5 }
    procs = {}
  end)
  after_each(function()
    for _, p in ipairs(procs) do helper.execute("kill -9 " .. p.pid .. " 2>/dev/null"); p:close() end
    redis_run.stop_pair(srv, emu)
  end)

  local function client(opts)
    local o = { api_key = KEY, base_url = emu.url, store = srv.url, interval = 0.5 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return starvideos.new(o)
  end

  local function keeper(dir, videos, rate)
    local p = helper.run_lua(dir, "keeper" .. (#procs + 1), KEEPER, { emu.url, srv.url, videos, "120", tostring(rate) })
    procs[#procs + 1] = p
    assert.are.equal("keeping", p.pipe:read("*l"))
    return p
  end

  it("submits 200 entries sending nothing; 4 keepers, one killed -9 mid-way, create each once, 200 whole files",
    function()
    local dir, videos = helper.tmpdir(), helper.tmpdir()
    local c = client()
    local b = assert(c:submit(entries(200, "fleet"), { out = videos .. "/%03d.mp4" }))
    assert.same({ 200, 0 }, { b.queued, b.known })
    assert.are.equal(0, emu:creates(), "submit sent nothing")
    local again = assert(c:submit(entries(200, "fleet"), { out = videos .. "/%03d.mp4" }))
    assert.same({ 0, 200 }, { again.queued, again.known }, "an entry the ledger knows is not queued again")
    assert.same({ queued = 200, created = 0, saved = 0, failed = 0, total = 200 }, assert(c:batch(b.batch)))

    for _ = 1, 4 do keeper(dir, videos, 20) end
    local victim = procs[1]
    local made = 0 -- the victim's creates, read until a few are made
    while made < 25 do
      local line = assert(victim.pipe:read("*l"), "the victim ended")
      if line:find("^made ") then made = made + 1 end
    end
    -- killed while no create of its is in flight: stopped, the ledger asked (a pending create may be anyone's: go on
    -- and stop it again), then killed
    local killed = false
    for _ = 1, 50 do
      helper.execute("kill -STOP " .. victim.pid)
      if #assert(c:pending()) == 0 and #created(emu) < 200 then
        helper.execute("kill -9 " .. victim.pid)
        killed = true
        break
      end
      helper.execute("kill -CONT " .. victim.pid)
      victim.pipe:read("*l")
    end
    assert.is_true(killed, "the victim had a create in flight at every look")
    local left_at_kill = 200 - #created(emu)
    assert.truthy(left_at_kill > 0, "every entry was created before the kill")

    assert.is_true(helper.wait_until(function()
      helper.sleep(0.2) -- (the ledger asked 5 times a second)
      return assert(c:batch(b.batch)).saved == 200
    end, 120), cjson.encode((c:batch(b.batch))))
    local prompts, seen = created(emu), {}
    for _, p in ipairs(prompts) do seen[p] = (seen[p] or 0) + 1 end
    local twice = 0
    for _, n in pairs(seen) do if n > 1 then twice = twice + 1 end end
    local whole = 0
    for i = 1, 200 do
      if helper.whole_mp4(string.format("%s/%03d.mp4", videos, i), 5) then whole = whole + 1 end
    end
    io.stderr:write(string.format("\nqueue: 200 entries, 4 keepers, one killed -9 with %d not yet created: %d creates, "
      .. "%d entries created twice, %d whole files\n", left_at_kill, #prompts, twice, whole))
    assert.are.equal(200, #prompts)
    assert.are.equal(0, twice)
    assert.are.equal(200, whole)
    assert.same({ queued = 0, created = 0, saved = 200, failed = 0, total = 200 }, c:batch(b.batch))
    c:close()
  end)

  it("shares the creates 3:1 between tenants weighted 3 and 1, both waiting, the key's budget the bound", function()
    local dir, videos = helper.tmpdir(), helper.tmpdir()
    local c = client()
    assert(c:submit(entries(40, "b"), { out = videos .. "/b%02d.mp4", tenant = "b" }))
    assert(c:submit(entries(40, "a"), { out = videos .. "/a%02d.mp4", tenant = "a" }))
    keeper(dir, videos, 4)
    keeper(dir, videos, 4)
    assert.is_true(helper.wait_until(function() return emu:creates() >= 40 end, 120))
    local n = { a = 0, b = 0 }
    for i, p in ipairs(created(emu)) do
      if i <= 40 then n[p:sub(1, 1)] = n[p:sub(1, 1)] + 1 end
    end
    io.stderr:write(string.format("\nqueue: weights 3:1, the first 40 creates: a %d, b %d\n", n.a, n.b))
    assert.truthy(math.abs(n.a - 30) <= 5 and math.abs(n.b - 10) <= 5, n.a .. ":" .. n.b)
    c:close()
  end)

  it("creates the priority 1 entries submitted after priority 3 ones have started next", function()
    local dir, videos = helper.tmpdir(), helper.tmpdir()
    local c = client()
    assert(c:submit(entries(12, "late"), { out = videos .. "/l%02d.mp4" }))
    keeper(dir, videos, 2)
    assert.is_true(helper.wait_until(function() return emu:creates() >= 2 end, 60))
    local before = #created(emu)
    assert(c:submit(entries(4, "first"), { out = videos .. "/f%02d.mp4", priority = 1 }))
    assert.is_true(helper.wait_until(function() return emu:creates() >= before + 5 end, 60))
    local after = {}
    for i, p in ipairs(created(emu)) do if i > before then after[#after + 1] = p:match("^%a+") end end
    -- (one priority 3 entry may have been claimed already: its create goes first)
    local from = after[1] == "late" and 2 or 1
    assert.same({ "first", "first", "first", "first" }, { after[from], after[from + 1], after[from + 2],
      after[from + 3] }, table.concat(after, " "))
    c:close()
  end)

  it("batch --submit prints the batch id and sends nothing; --status counts it; --priority outside 1-5 is refused",
    function()
    local dir, videos = helper.tmpdir(), helper.tmpdir()
    helper.write_file(dir .. "/prompts.txt", "a cat\na dog\na fox\n")
    local function cli(...)
      local words = { "env", "STARVIDEOS_API_KEY=" .. KEY, "STARVIDEOS_BASE_URL=" .. emu.url, helper.lua,
        helper.root .. "/bin/starvideos", "batch", ... }
      for i, w in ipairs(words) do words[i] = helper.shell_quote(w) end
      local out, _, code = helper.capture(helper.CHILD_ENV .. table.concat(words, " ") .. " 2>&1 </dev/null")
      return out, code
    end
    local out, code = cli("--prompts-file", dir .. "/prompts.txt", "--out-dir", videos, "--model", "videos",
      "--duration", "5", "--store", srv.url, "--submit", "--priority", "2")
    assert.are.equal(0, code, out)
    local id = assert(out:match("^(%x+)\n"), out)
    assert.are.equal(0, emu:creates())
    out, code = cli("--status", id, "--store", srv.url)
    assert.are.equal(0, code, out)
    assert.matches("3 queued, 0 created, 0 saved, 0 failed of 3", out, 1, true)
    out, code = cli("--prompts-file", dir .. "/prompts.txt", "--out-dir", videos, "--model", "videos", "--store",
      srv.url, "--submit", "--priority", "9")
    assert.are.equal(2, code, out)
    assert.matches("--priority 9", out, 1, true)
    out, code = cli("--status", "nosuch", "--store", srv.url)
    assert.are_not.equal(0, code, out)
    assert.matches("no batch nosuch", out, 1, true)
    assert.are.equal(0, emu:creates())
  end)

  it("refuses an unknown batch id, naming batch; a journal's submit, naming store", function()
    local c = client()
    local got, err = c:batch("nosuch")
    assert.is_nil(got)
    assert.same({ "invalid_request", "batch" }, { err.kind, err.field })
    c:close()
    local j = starvideos.new { api_key = KEY, base_url = emu.url, journal = helper.tmpdir() .. "/j.jsonl" }
    got, err = j:submit(entries(1, "x"), { out = helper.tmpdir() .. "/%d.mp4" })
    assert.is_nil(got)
    assert.same({ "invalid_request", "store" }, { err.kind, err.field })
    j:close()
    assert.are.equal(0, emu:creates())
  end)
end)
