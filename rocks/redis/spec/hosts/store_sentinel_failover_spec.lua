-- No paid task lost when a Sentinel-managed primary fails over (issue 38 item 3, "Done when": Sentinel).  Real
-- servers: a primary, 2 replicas and 3 sentinels (down-after-milliseconds 1000), the emulator counting creates.
-- A batch of 200 creates through redis+sentinel://: an owner creates; both replicas are cut from the primary's
-- replication (their replication AUTH made to fail, their links killed: nothing more reaches them), the
-- primary and the owner are killed -9 a second later, the sentinels promote a replica (which lacks that second's
-- writes), and a second owner creates the rest; then both owners are dead.
-- replicas = 1: no create is sent while no replica acknowledges its pending record; the old primary is started
-- again once the sentinels named the new one (empty: the sentinels make it a replica of the new primary), and a
-- keep through the sentinels (client:keep, once) saves every task paid for: 200 whole files, 0 lost ids, and
-- none of our clients' commands ever reached the demoted node (INFO commandstats there: no ROLE, which each of
-- our connections sends first, no EVAL/EVALSHA/SCRIPT/WAIT, which a Redis 7 primary never replicates: its
-- replication stream carries the scripts' effects).  The control run with replicas = 0 shows what is lost: the
-- tasks paid while cut, recorded on the dead primary only, absent from the new primary's records
-- (client:tasks through the sentinels).
-- replicas = 1 again, the new primary stopped 4 s (SIGSTOP) after the second owner's 40th create: the sentinels fail
-- over again, to the replica that acknowledged its records, and demote the stopped one (the owner's connection there
-- closed); the second owner's last creates renew its lease on that second primary only.  So each keep waits for the
-- owners' leases to lapse on every node, not on the primary promoted first: a loaded box fails over a second time
-- unasked, and a keep run while the second owner's lease lives on the primary it reaches rightly leaves its tasks
-- (keep once carries what is orphaned at its look).

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
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

-- redis-cli on port, tried again when the server reset or closed the connection (a sentinel resets the clients of
-- a node it reconfigures, redis-cli's too); anything else raises.
local function cli(port, ...)
  for _ = 1, 10 do
    local ok, lines = pcall(redis_run.cli, port, ...)
    if ok then return lines end
    local e = tostring(lines)
    assert(e:find("reset by peer", 1, true) or e:find("Server closed the connection", 1, true), e)
    helper.sleep(0.2)
  end
  error(table.concat({ ... }, " ") .. " on " .. port .. ": reset or closed 10 times")
end

-- Each replica's replication cut (AUTH to the primary fails from now on) or healed.
local function replication(set, cut)
  for _, r in ipairs(set.replicas) do
    cli(r.port, "CONFIG", "SET", "masteruser", cut and "cut-off" or "")
    cli(r.port, "CONFIG", "SET", "masterauth", cut and "cut-off" or "")
  end
end

-- INFO's fields of section at port (name -> value), read through a sentinel's reset.
local function info(port, section)
  local t = {}
  for _, l in ipairs(cli(port, "INFO", section)) do
    local k, v = l:match("^([%w_]+):(.-)%s*$")
    if k then t[k] = v end
  end
  return t
end

-- The commands of ours that reached the server at port (INFO commandstats: calls, rejected and failed ones, of
-- ROLE, EVAL, EVALSHA, SCRIPT and WAIT, none of which a Redis 7 primary's replication stream carries): n, what.
local OURS = { "role", "eval", "evalsha", "script", "wait" }
local function ours(port)
  local stats, n, what = info(port, "commandstats"), 0, {}
  for _, c in ipairs(OURS) do
    for k, v in (stats["cmdstat_" .. c] or ""):gmatch("(%w+)=(%d+)") do
      if k == "calls" or k == "rejected_calls" or k == "failed_calls" then n = n + tonumber(v) end
    end
  end
  for k, v in pairs(stats) do what[#what + 1] = k:gsub("^cmdstat_", "") .. " " .. v end
  table.sort(what)
  return n, table.concat(what, "\n")
end

-- The old primary started again (empty), until the sentinels made it a replica of the primary they name (`new`,
-- or the next one if a loaded box made them fail over again), its link up: it then carries that primary's writes,
-- none of ours.  { server, wait = fn -> seconds until converted }.
local function demote(set, old, new)
  local server, t0 = redis_run.start { port = old, dir = set.primary.dir }, socket.gettime()
  return { server = server, wait = function()
    local ok = helper.wait_until(function()
      local r = info(old, "replication")
      if r.role ~= "slave" or r.master_link_status ~= "up" then return false end
      new = set.master() or new -- (asked only of a replica linked up: one redis-cli a poll till then, not two)
      return tonumber(r.master_port) == new
    end, 40)
    if not ok then
      local said = { "the sentinels did not make the old primary a replica of " .. new .. " within 40 s; its "
        .. "replication:" }
      for k, v in pairs(info(old, "replication")) do said[#said + 1] = "  " .. k .. ":" .. v end
      for i, sn in ipairs(set.sentinels) do
        local log = tostring(helper.read_file(sn.dir .. "/sentinel.log"))
        said[#said + 1] = "sentinel " .. i .. "'s log:\n" .. log:sub(-2500)
      end
      error(table.concat(said, "\n"))
    end
    return socket.gettime() - t0
  end }
end

local SAMPLE = require("starvideos.emulator.files").video(5, 2000)

-- The emulator's tasks against the store's (found(id)): paid, saved, the lost ids, the lost owners' numbers (a
-- task's prompt is "task I": I -> true).
local function compare(emu, found)
  local paid, saved, lost, numbers = 0, 0, {}, {}
  for _, t in ipairs(emu:tasks()) do
    paid = paid + 1
    if found(t.id) then
      saved = saved + 1
    else
      lost[#lost + 1] = t.id
      numbers[tonumber(t.params.prompt:match("^task (%d+)$"))] = true
    end
  end
  return paid, saved, lost, numbers
end

-- The unfinished tasks of the node at port by owner: "OWNER=N/MS" each (MS: its lease's PTTL, -2 gone).  EVAL_RO:
-- none of the commands `ours` counts.
local BY_OWNER = [[
local t, o = {}, {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local w = redis.call('HGET', ARGV[1] .. 'task:' .. id, 'owner') or '?'
  if not t[w] then t[w] = 0; o[#o + 1] = w end
  t[w] = t[w] + 1
end
for i, w in ipairs(o) do o[i] = w .. '=' .. t[w] .. '/' .. redis.call('PTTL', ARGV[1] .. 'owner:' .. w) end
return o]]

-- Where things are (a keep's evidence): the master each sentinel names; each node's role, its master and link,
-- its offset, its keys, its unfinished tasks by owner.  A line each.
local function where(set, old)
  local names, lines = {}, {}
  for i, sn in ipairs(set.sentinels) do
    local ok, l = pcall(redis_run.cli, sn.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
    names[i] = ok and tostring(l[2]) or "?"
  end
  lines[1] = "sentinels name " .. table.concat(names, " ")
  local ports = { old, set.replicas[1].port, set.replicas[2].port }
  for _, port in ipairs(ports) do
    local ok, said = pcall(function()
      local r, n = info(port, "replication"), cli(port, "DBSIZE")[1]
      local set_key = cli(port, "KEYS", "*:unfinished")[1]
      local owners = set_key and table.concat(cli(port, "EVAL_RO", BY_OWNER, "1", set_key,
        (set_key:gsub("unfinished$", ""))), " ") or "-"
      return string.format("%d: %s of %s link %s offset %s, %s keys, unfinished by owner: %s", port, r.role,
        tostring(r.master_port or "-"), tostring(r.master_link_status or "-"), tostring(r.master_repl_offset), n,
        owners)
    end)
    lines[#lines + 1] = ok and said or port .. ": " .. tostring(said)
  end
  return table.concat(lines, "\n")
end

-- What the sentinels did (their logs' events: failovers, promotions, reconfigurations, TILT), a line each: "sentinel
-- I: TIME EVENT".
local EVENTS = { "sdown master", "odown", "new-epoch", "try-failover", "elected-leader", "selected-slave",
  "promoted-slave", "switch-master", "convert-to-slave", "failover-abort", "failover-end", "tilt", "slave-reconf-done",
  "vote-for-leader" }
local function events(set)
  local lines = {}
  for i, sn in ipairs(set.sentinels) do
    for l in tostring(helper.read_file(sn.dir .. "/sentinel.log")):gmatch("[^\n]+") do
      for _, e in ipairs(EVENTS) do
        if l:find(e, 1, true) then
          lines[#lines + 1] = "sentinel " .. i .. ": " .. (l:match("(%d+:%d+:%d+%.%d+ .*)$") or l)
          break
        end
      end
    end
  end
  return table.concat(lines, "\n")
end

-- The masters the sentinels switched to, in the order they did (their logs' +switch-master, the first time each):
-- "P1 P2..." (more than one: they failed over again).
local function switched(set)
  local seen, at = {}, {}
  for _, sn in ipairs(set.sentinels) do
    for t, port in tostring(helper.read_file(sn.dir .. "/sentinel.log")):gmatch(
      "(%d+:%d+:%d+%.%d+) # %+switch%-master mymaster %S+ %d+ %S+ (%d+)") do
      if not seen[port] or t < seen[port] then seen[port] = t end
    end
  end
  for port in pairs(seen) do at[#at + 1] = port end
  table.sort(at, function(a, b) return seen[a] < seen[b] end)
  return table.concat(at, " ")
end

-- Whether no node of set has an owner's lease (owner:* keys).  The master the sentinels name at the keep may be
-- another than the one promoted first (a loaded box can have them fail over again, mid-batch), where the second
-- owner's last creates renewed its lease: asked of every node, the old primary too.
local function leases_gone(set, old)
  for _, port in ipairs { old, set.replicas[1].port, set.replicas[2].port } do
    local ok, keys = pcall(cli, port, "KEYS", "*owner:*")
    if not ok or #keys > 0 then return false end
  end
  return true
end

-- The keep (replicas = 1) after the failover: the owners' leases lapsed on every node, a keeper process through the
-- sentinels, once: what it said (its whole output in dir/keeper.out; here its claims counted, where things were
-- before and after it), and the ids whose file is the whole video.
local function keep(dir, emu, set, old)
  assert(helper.wait_until(function() return leases_gone(set, old) end, 10), "a lease stayed:\n" .. where(set, old))
  local videos = helper.tmpdir()
  local before = where(set, old)
  local t0 = socket.gettime()
  local keeper = helper.run_lua(dir, "keeper", redis_run.keeper(KEY, { once = true, rate = 1e6 }),
    { emu.url, set.url, videos, "60" })
  local out = keeper.pipe:read("*a")
  keeper:close()
  local took = socket.gettime() - t0
  helper.write_file(dir .. "/keeper.out", out)
  local rest, claims, saved = {}, 0, 0
  for l in out:gmatch("[^\n]+") do
    if l:match("^claim ") then claims = claims + 1
    elseif l:match("^result %S+ %- ") then saved = saved + 1
    elseif #rest < 20 then rest[#rest + 1] = l end
  end
  return string.format("keep took %.1f s: %d claims, %d results saved\nthe rest it said (the whole in "
    .. "%s/keeper.out):\n%s\nbefore the keep:\n%s\nafter:\n%s", took, claims, saved, dir, table.concat(rest, "\n"),
    before, where(set, old)),
    function(id) return helper.read_video(videos .. "/" .. id .. ".mp4") == SAMPLE end -- (up to the mark's box)
end

-- The ids the store holds (client:tasks through the sentinels): said, found(id).
local function listed(dir, emu, set)
  local lister = helper.run_lua(dir, "lister", LISTER, { emu.url, set.url })
  local out, found = lister.pipe:read("*a"), {}
  lister:close()
  for id in out:gmatch("[^\n]+") do found[id] = true end
  return out, function(id) return found[id] end
end

-- The node of set at port stopped for `seconds` (SIGSTOP, as a loaded box or a paused VM stops it), then continued.
local function stop(set, port, seconds)
  for _, node in ipairs(set.replicas) do
    if node.port == port then
      node.signal("STOP")
      helper.sleep(seconds)
      node.signal("CONT")
    end
  end
end

-- One run with `replicas` (and `stall`: the new primary stopped that long after the second owner's 40th create):
-- {creates, paid, saved, while_cut (creates paid while the replicas were cut), resumed (seconds from the kill to the
-- second owner's first create), ours (our commands at the demoted node, replicas = 1), masters (how many the
-- sentinels switched to), said (what happened)}.
local function run(replicas, stall)
  local dir = helper.tmpdir()
  local set = redis_run.start_sentinel { down_after = DOWN_AFTER }
  local emu = helper.emulator { key = KEY, queued = 0, processing = 0.1 }
  emu:config { video_size = 2000 }
  local owners, demoted = {}, nil
  finally(function()
    for _, o in ipairs(owners) do helper.execute("kill -9 " .. o.pid .. " 2>/dev/null"); o:close() end
    if demoted then demoted.server.stop() end
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
  -- (a split vote, each sentinel voting for itself, is tried again after twice the failover-timeout, 20 s)
  local new -- (the master named then: asked again, a sentinel not yet switched could name the old one)
  assert(helper.wait_until(function() new = set.master(); return new and new ~= old end, 40), "no failover:\n"
    .. tostring(helper.read_file(set.sentinels[1].dir .. "/sentinel.log")):sub(-3000))
  local named, last = socket.gettime() - t0, new
  if replicas > 0 then demoted = demote(set, old, new) end
  replication(set, false) -- (the replica left syncs from the new primary)
  local resumed
  repeat
    local l = line(owners[2])
    if not resumed then -- (a loaded box may have the sentinels fail over again before writes resume: the resume is
      -- timed from the last naming before it, not the first; a stall still stops the first named, as before)
      local m = set.master()
      if m and m ~= last and m ~= old then named, last = socket.gettime() - t0, m end
    end
    if not resumed and l and l:match("^created") then resumed = socket.gettime() - t0 end
    if stall and l == "created " .. (paid_first + 40) then stop(set, new, stall) end
  until l == "done"
  helper.execute("kill -9 " .. owners[2].pid)
  local out, found = (demoted and keep or listed)(dir, emu, set, old)
  local paid, saved, lost, numbers = compare(emu, found)
  local r = { paid = paid, creates = emu:creates(), saved = saved, while_cut = paid_first - at_cut,
    resumed = resumed, named = named, cut_lost = 0 }
  for i = at_cut + 1, paid_first do if numbers[i] then r.cut_lost = r.cut_lost + 1 end end
  local stats = ""
  if demoted then
    r.converted = demoted.wait()
    r.ours, stats = ours(old)
  end
  local told = {} -- (what was said but the creates)
  for _, l in ipairs(lines) do if not l:match("^created") then told[#told + 1] = l end end
  local masters = switched(set)
  r.masters = select(2, masters:gsub("%d+", ""))
  local summary = string.format("replicas = %d%s: %d creates, %d tasks (%d while cut, %d before the failover), %d "
    .. "saved, %d lost (%d of those paid while cut), the new primary named after %.2f s, resumed after %.2f s; the "
    .. "old primary a replica after %s s, %s commands of ours there; the sentinels switched to %s", replicas,
    stall and string.format(", the new primary stopped %g s", stall) or "", r.creates, paid, r.while_cut, paid_first,
    saved, #lost, r.cut_lost, named, resumed or -1, r.converted and string.format("%.1f", r.converted) or "-",
    tostring(r.ours or "-"), masters)
  io.write("\n", summary, "; ", out:match("^keep took [^\n]*") or "no keep", "\n")
  r.said = string.format("%s\nlost: %s\n%s\n%s\nwhat the sentinels did:\n%s\n%s", summary,
    table.concat(lost, " "), table.concat(told, "\n"):sub(1, 2000), out:sub(1, 4000), events(set), stats)
  return r
end

describe_redis("a Sentinel-managed primary killed -9 mid-batch, its replicas cut", function()
  it("replicas = 1: 200 creates, a keep on the new primary saves 200 whole files (0 lost ids), 0 commands of ours "
    .. "at the demoted node; writes resume within 5 s of the sentinels naming the new primary", function()
      local r = run(1)
      assert.are.same({ N, N }, { r.creates, r.paid }, r.said)
      assert.are.equal(0, r.while_cut, r.said) -- (no pending record acknowledged: nothing sent)
      assert.are.equal(r.paid, r.saved, r.said) -- files = 200, 0 lost ids
      assert.are.equal(0, r.ours, r.said) -- 0 writes to the demoted node
      -- (down-after + 5 s when they name it at once; a split vote of theirs delays it by their own rule)
      assert.is_true(r.resumed < math.max(r.named, DOWN_AFTER / 1000) + 5, r.said)
    end)

  it("replicas = 1, the new primary stopped 4 s mid-batch (the sentinels fail over again, to the replica that "
    .. "acknowledged the records): 200 creates, a keep on the primary then saves 200 whole files", function()
      local r = run(1, 4)
      assert.is_true(r.masters >= 2, r.said) -- (the second failover happened)
      assert.are.same({ N, N }, { r.creates, r.paid }, r.said)
      assert.are.equal(r.paid, r.saved, r.said)
      assert.are.equal(0, r.ours, r.said)
    end)

  it("the control run, replicas = 0: the creates paid while the replicas were cut are lost", function()
    local r = run(0)
    assert.are.same({ N, N }, { r.creates, r.paid }, r.said)
    assert.is_true(r.while_cut > 0, r.said)
    -- each task paid while cut is lost (recorded on the dead primary only); a loaded box may add a second
    -- failover, which loses more (printed), never fewer
    assert.are.equal(r.while_cut, r.cut_lost, r.said)
  end)
end)
