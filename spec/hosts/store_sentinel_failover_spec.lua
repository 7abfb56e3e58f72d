-- No paid task lost when a Sentinel-managed primary fails over (issue 38 item 3, "Done when": Sentinel).  Real
-- servers: a primary, 2 replicas and 3 sentinels (down-after-milliseconds 1000), the emulator counting creates.
-- A batch of 200 creates through redis+sentinel://: an owner creates; both replicas are cut from the primary's
-- replication (their replication AUTH made to fail, their links killed: nothing more reaches them), the
-- primary and the owner are killed -9 a second later, the sentinels promote a replica (which lacks that second's
-- writes), and a second owner creates the rest; then both owners are dead, and the tasks the store holds
-- (client:tasks through the sentinels: the new primary) are compared with those the emulator made.
-- replicas = 1: no create is sent while no replica acknowledges its pending record, so every task paid for is on
-- the new primary (200 of 200); the control run with replicas = 0 shows what is lost (the tasks paid while cut,
-- recorded on the dead primary only).

local helper = require "spec.helper"
local redis_run = require "spec.support.redis_run"
local socket = require "socket"

local missing = redis_run.missing()
local describe_redis = missing and pending or describe

local KEY = "k-sentinel-failover"
local N, DOWN_AFTER = 200, 1000

-- The owner: creates FIRST..LAST ("created I" each; a create refused, as while the master is being found
-- again: "refused I", tried again), then "done" and waits to be killed.
local OWNER = [[
local starvideos = require "starvideos"
local socket = require "socket"
local url, store, first, last, replicas = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local pause, go = tonumber(arg[6]), arg[7]
local function say(line) io.write(line, "\n"); io.stdout:flush() end
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, lease = 2, requests_per_second = 1e6,
  store = { url = store, replicas = replicas, replica_timeout = 0.3 } }
local i = first
while i <= last do
  local task, err = client:create { model = "videos", prompt = "task " .. i, duration = 5 }
  if task then
    say("created " .. i)
    if i == pause then while not io.open(go) do socket.sleep(0.01) end end
    i = i + 1
    socket.sleep(0.01)
  else say("refused " .. i .. ": " .. tostring(err)); socket.sleep(0.05) end
end
say("done")
os.execute("sleep 60")
]]

-- The ids of the tasks the store at arg[2] holds, a line each.
local LISTER = [[
local starvideos = require "starvideos"
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = arg[1], store = arg[2] }
for _, t in ipairs(assert(client:tasks {})) do io.write(tostring(t.id), "\n") end
client:close()
]]

-- Each replica's replication cut (AUTH to the primary fails from now on) or healed.  (Sentinel resets the
-- clients of a node it reconfigures, redis-cli's too: a connection reset or closed by the server is tried again.)
local function replication(set, cut)
  local function config(port, name, value)
    for _ = 1, 10 do
      local ok, err = pcall(redis_run.cli, port, "CONFIG", "SET", name, value)
      if ok then return end
      local e = tostring(err)
      assert(e:find("reset by peer", 1, true) or e:find("Server closed the connection", 1, true), e)
      helper.sleep(0.2)
    end
    error("CONFIG SET " .. name .. " on " .. port .. ": reset or closed 10 times")
  end
  for _, r in ipairs(set.replicas) do
    config(r.port, "masteruser", cut and "cut-off" or "")
    config(r.port, "masterauth", cut and "cut-off" or "")
  end
end

-- One run with `replicas`: {paid, saved, while_cut (creates paid while the replicas were cut), resumed (seconds
-- from the kill to the second owner's first create), said (what happened)}.
local function run(replicas)
  local dir = helper.tmpdir()
  local set = redis_run.start_sentinel { down_after = DOWN_AFTER }
  local emu = helper.emulator { key = KEY, queued = 0, processing = 0.2 }
  emu:config { video_size = 2000 }
  local owners = {}
  finally(function()
    for _, o in ipairs(owners) do helper.execute("kill -9 " .. o.pid .. " 2>/dev/null"); o:close() end
    set.stop()
    emu:stop()
  end)
  local lines = {}
  local function line(o)
    local l = o.pipe:read("*l")
    assert(l, "the owner ended:\n" .. table.concat(lines, "\n"))
    lines[#lines + 1] = l
    return l
  end
  assert(redis_run.wait_online(set.primary.port, 2)) -- (their first sync done: diskless, after 5 s)
  local go = dir .. "/go"
  owners[1] = helper.run_lua(dir, "owner", OWNER, { emu.url, set.url, "1", tostring(N), tostring(replicas), "40",
    go })
  repeat until line(owners[1]) == "created 40"
  local old = set.primary.port
  replication(set, true)
  redis_run.cli(old, "CLIENT", "KILL", "TYPE", "replica")
  assert(helper.wait_until(function() return redis_run.online(old) == 0 end, 10))
  local at_cut = emu:creates()
  helper.write_file(go, "")
  helper.sleep(0.5)
  set.primary.signal("KILL")
  helper.execute("kill -9 " .. owners[1].pid)
  local t0 = socket.gettime()
  helper.sleep(0.2) -- (a create the owner had sent is answered, or not, by now)
  local paid_first = emu:creates()
  owners[2] = helper.run_lua(dir, "owner2", OWNER, { emu.url, set.url, tostring(paid_first + 1), tostring(N),
    tostring(replicas) })
  assert(helper.wait_until(function() local m = set.master(); return m and m ~= old end, 20), "no failover")
  replication(set, false) -- (the replica left syncs from the new primary)
  local resumed
  repeat
    local l = line(owners[2])
    if not resumed and l and l:match("^created") then resumed = socket.gettime() - t0 end
  until l == "done"
  helper.execute("kill -9 " .. owners[2].pid)
  local lister = helper.run_lua(dir, "lister", LISTER, { emu.url, set.url })
  owners[3] = lister
  local out, found, saved = lister.pipe:read("*a"), {}, 0
  for id in out:gmatch("[^\n]+") do found[id] = true end
  local paid, lost = 0, {}
  for k, t in pairs(emu:tasks()) do
    local id = type(t) == "table" and t.id or k
    paid = paid + 1
    if found[id] then saved = saved + 1 else lost[#lost + 1] = id end
  end
  local told = {} -- (what was said but the creates)
  for _, l in ipairs(lines) do if not l:match("^created") then told[#told + 1] = l end end
  return { paid = paid, creates = emu:creates(), saved = saved, while_cut = paid_first - at_cut, resumed = resumed,
    said = string.format("replicas = %d: %d creates, %d tasks (%d while cut, %d before the failover), %d found on "
      .. "the new primary, lost %s, resumed after %s s\n%s\n%s", replicas, emu:creates(), paid, paid_first - at_cut,
      paid_first, saved, table.concat(lost, " "), tostring(resumed), table.concat(told, "\n"):sub(1, 2000),
      out:sub(1, 300)) }
end

describe_redis("a Sentinel-managed primary killed -9 mid-batch, its replicas cut", function()
  it("replicas = 1: 200 creates, each paid task's record found on the new primary (0 lost ids); writes resume "
    .. "within down-after + 5 s", function()
      local r = run(1)
      assert.are.same({ N, N }, { r.creates, r.paid }, r.said)
      assert.are.equal(0, r.while_cut, r.said) -- (no pending record acknowledged: nothing sent)
      assert.are.equal(r.paid, r.saved, r.said) -- 0 lost ids
      assert.is_true(r.resumed < DOWN_AFTER / 1000 + 5, r.said)
    end)

  it("the control run, replicas = 0: the creates paid while the replicas were cut are lost", function()
    local r = run(0)
    assert.are.same({ N, N }, { r.creates, r.paid }, r.said)
    assert.is_true(r.while_cut > 0, r.said)
    assert.are.equal(r.paid - r.while_cut, r.saved, r.said) -- (each lost task is one paid while cut)
  end)
end)
