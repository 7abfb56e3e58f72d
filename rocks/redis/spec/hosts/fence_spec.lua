-- An owner that lost its lease stands down, and the keeper that took over is the
-- only one that finishes (issue 28, item 2).  Real processes: redis-server
-- (appendonly, appendfsync always), the emulator, the spec's webhook receiver,
-- the spec's TCP proxy (spec/support/tcp_proxy.lua) between the owner and Redis,
-- an owner with N jobs and a 2 s lease, and a keep in a process of its own
-- (straight to Redis, its own webhook to the same receiver).  While the owner's
-- tasks are processing it loses Redis for 3 leases: its path blackholed, or
-- cut (every connection reset), or the owner stopped (SIGSTOP, then SIGCONT),
-- or stopped while its video GETs wait for their answers (an emulator fault).
-- Counted at the emulator (creates, video GETs: each a whole 19 KB video on
-- loopback, none ranged) and at the receiver (webhook POSTs): N of each,
-- whoever did them (in the last case the owner's N GETs sent before it stopped
-- too).  Each case prints its counts on stderr and in its failure.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local notify_run = require "spec.support.notify_run"
local tcp_proxy = require "spec.support.tcp_proxy"
local cjson = require "cjson"

local q = helper.shell_quote
local missing = redis_run.missing()
local describe_redis = missing and pending or describe

local KEY = "k-fence"
local SECRET = "fence-webhook-secret"
local N = 4
local QUEUED, PROCESSING = 0.5, 5 -- the tasks complete about 4.5 s into the fault: after the keeper's claims
local FAULT = 6                   -- 3 leases of 2 s
local OWNER_FOR = 30              -- the owner's deadline for its jobs (s)
-- the keeper's timeout (s): it runs to it.  The owner is processing 1-2 s after the keeper starts, the fault
-- ends 6 s later, the tasks complete about 4.5 s into it: 15 s leaves the keeper 6 s and more to claim, fetch and
-- post after the fault (its results are all in by then), and the owner's end to be seen beside it
local KEEP_FOR = 15


-- The owner (args: emulator URL, store URL, n, folder of its outs, receiver URL, secret): n jobs, each to
-- DIR/i.mp4; "processing ID..." once every task is processing; each taken event as "taken ID BY" (on_event)
-- and "job_taken I ID BY" (the job's on_progress); each video GET it starts "get PATH", each retry "retry
-- METHOD PATH REASON"; at the end (every
-- job done, or its deadline) a line per job: "job I ID STATE ERRKIND PATH" ("-" for no error), then
-- "err I message" for each error, then "end".
local OWNER = [[
local starvideos = require "starvideos"
local socket = require "socket"
local url, store, n, dir, hook, secret = arg[1], arg[2], tonumber(arg[3]), arg[4], arg[5], arg[6]
local function say(...) io.write(table.concat({ ... }, " "), "\n"); io.stdout:flush() end
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, store = store, lease = 2,
  notify = { url = hook, secret = secret },
  on_event = function(ev)
    if ev.type == "taken" then say("taken", tostring(ev.id), tostring(ev.by)) end
    if ev.type == "warning" then say("warning", (tostring(ev.message):gsub("\n", " "))) end
    if ev.type == "request" and ev.method == "GET" and tostring(ev.path):find("^/videos/") then
      say("get", tostring(ev.path))
    end
    if ev.type == "retry" then say("retry", tostring(ev.method), tostring(ev.path), tostring(ev.reason)) end
  end }
local jobs = {}
for i = 1, n do
  jobs[i] = assert(client:start({ model = "videos", prompt = "fence " .. i, duration = 5 },
    { out = dir .. "/" .. i .. ".mp4", interval = 0.2,
      on_progress = function(ev)
        if ev.type == "taken" then say("job_taken", tostring(i), tostring(ev.id), tostring(ev.by)) end
      end }))
end
local function all(pred)
  for _, j in ipairs(jobs) do if not pred(j) then return false end end
  return true
end
local deadline = socket.gettime() + ]] .. OWNER_FOR .. [[

while not all(function(j) return j.status == "processing" or j.done end) and socket.gettime() < deadline do
  client:step(0.05)
end
local ids = {}
for i, j in ipairs(jobs) do ids[i] = tostring(j.id) end
say("processing", table.concat(ids, " "))
while not all(function(j) return j.done end) and socket.gettime() < deadline do client:step(0.05) end
for i, j in ipairs(jobs) do
  say("job", tostring(i), tostring(j.id), tostring(j.state), j.err and tostring(j.err.kind) or "-", tostring(j.path))
end
for i, j in ipairs(jobs) do
  if j.err then say("err", tostring(i), (tostring(j.err):gsub("\n", " "))) end
end
client:close()
say("end")
]]

-- A process killed -9 after `seconds` unless it ended before: a spec never hangs on a stopped owner.
local function watchdog(pid, seconds)
  return helper.spawn("sh -c " .. q("sleep " .. seconds .. " >/dev/null 2>&1 && kill -9 " .. pid .. " 2>/dev/null"))
end

local function lines_of(text)
  local t = {}
  for line in text:gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

-- What the owner said: jobs[i] = {id, state, err, path}, taken[id] = by (on_event), job_taken[id] = by.
local function owner_said(text)
  local jobs, taken, job_taken = {}, {}, {}
  for _, line in ipairs(lines_of(text)) do
    local i, id, state, kind, path = line:match("^job (%d+) (%S+) (%S+) (%S+) (.*)$")
    if i then jobs[tonumber(i)] = { id = id, state = state, err = kind, path = path } end
    local tid, by = line:match("^taken (%S+) (%S+)$")
    if tid then taken[tid] = by end
    local _, jid, jby = line:match("^job_taken (%d+) (%S+) (%S+)$")
    if jid then job_taken[jid] = jby end
  end
  return jobs, taken, job_taken
end

-- What the keeper said: claims[id] = path.
local function keeper_claims(text)
  local claims, n = {}, 0
  for _, line in ipairs(lines_of(text)) do
    local id, _, path = line:match("^claim (%S+) (%S+) (.*)$")
    if id then claims[id], n = path, n + 1 end
  end
  return claims, n
end

-- What the run left: the counts at the emulator and the receiver, what the owner and the keeper said, and
-- a message with all of it (short enough for tools/run-specs.sh's last 80 lines to hold the four cases:
-- the owner's GET and processing lines and the keeper's claims and results left out).
local function tally(name, emu, hooks, owner_out, keeper_out)
  local t = { creates = emu:creates(), posts = 0, per_task = {}, owner_gets = 0 }
  local ranges = emu:video_ranges()
  t.gets = #ranges
  for _, r in ipairs(notify_run.received(hooks)) do
    if r.method == "POST" then
      t.posts = t.posts + 1
      local ev = cjson.decode(r.body)
      local id = ev.task and ev.task.id or "?"
      t.per_task[id] = (t.per_task[id] or 0) + 1
    end
  end
  t.jobs, t.taken, t.job_taken = owner_said(owner_out)
  t.claims, t.claims_n = keeper_claims(keeper_out)
  local outcomes, owner_lines, keeper_lines = {}, {}, {}
  for i = 1, N do
    local j = t.jobs[i]
    outcomes[i] = j and (j.state .. "/" .. j.err) or "no line"
  end
  for _, line in ipairs(lines_of(owner_out)) do
    if line:find("^get ") then t.owner_gets = t.owner_gets + 1 end
    if not line:find("^get ") and not line:find("^processing ") then owner_lines[#owner_lines + 1] = line end
  end
  for _, line in ipairs(lines_of(keeper_out)) do
    if not line:find("^result ") and not line:find("^claim ") then keeper_lines[#keeper_lines + 1] = line end
  end
  t.counts = string.format("%s: creates %d, video GETs %d (the owner's %d; ranges %s), webhook POSTs %d, "
    .. "keeper claims %d, owner jobs [%s]", name, t.creates, t.gets, t.owner_gets, table.concat(ranges, ","),
    t.posts, t.claims_n, table.concat(outcomes, ", "))
  t.why = t.counts .. "\n-- owner:\n" .. table.concat(owner_lines, "\n")
    .. "\n-- keeper:\n" .. table.concat(keeper_lines, "\n")
  return t
end

describe_redis("an owner that lost its lease (" .. N .. " tasks, lease 2 s, " .. FAULT .. " s fault)", function()
  local srv, emu, rcv, proxy, procs

  after_each(function()
    for _, p in ipairs(procs or {}) do
      helper.execute("kill -CONT " .. p.pid .. " 2>/dev/null; kill -9 " .. p.pid .. " 2>/dev/null")
      p:close()
    end
    if proxy then proxy.stop() end
    if rcv then rcv.stop() end
    if srv then srv.stop() end
    if emu then emu:stop() end
    srv, emu, rcv, proxy, procs = nil, nil, nil, nil, nil
    helper.cleanup()
  end)

  -- fault(owner) starts the fault, and returns what ends it (owner: pid, proxy, read() its next line);
  -- opts.get_delay: the owner's N video GETs are answered that many seconds late; opts.gets: the video GETs
  -- the emulator is to see (N: the keeper's alone).
  local function case(name, fault, opts)
    opts = opts or {}
    local dir = helper.tmpdir()
    local rdir, hooks, outs, videos = dir .. "/redis", dir .. "/hooks", dir .. "/out", dir .. "/videos"
    for _, d in ipairs { rdir, hooks, outs, videos } do assert(helper.execute("mkdir " .. q(d))) end
    srv = redis_run.start { dir = rdir, aof = true }
    emu = helper.emulator { key = KEY, queued = QUEUED, processing = PROCESSING }
    rcv = notify_run.receiver(hooks)
    proxy = tcp_proxy.start { target = srv.port }
    procs = {}
    if opts.get_delay then emu:fault { path = "/videos/", delay = opts.get_delay, count = N } end

    local keeper = helper.run_lua(dir, "keeper", redis_run.keeper(KEY),
      { emu.url, srv.url, videos, tostring(KEEP_FOR), rcv.url, SECRET })
    procs[#procs + 1] = keeper
    procs[#procs + 1] = watchdog(keeper.pid, KEEP_FOR + 15)
    assert.are.equal("keeping", keeper.pipe:read("*l"))
    local owner = helper.run_lua(dir, "owner", OWNER,
      { emu.url, proxy.url("redis"), tostring(N), outs, rcv.url, SECRET })
    procs[#procs + 1] = owner
    procs[#procs + 1] = watchdog(owner.pid, OWNER_FOR + 15)
    local first = owner.pipe:read("*l")
    local said = { first }
    while first and not first:find("^processing ") do first = owner.pipe:read("*l"); said[#said + 1] = first end
    assert.truthy(first and first:find("^processing "), table.concat(said, "\n"))

    local undo = fault { pid = owner.pid, proxy = proxy, read = function()
      local line = owner.pipe:read("*l")
      said[#said + 1] = line
      return line
    end }
    helper.sleep(FAULT)
    undo()

    local owner_out = table.concat(said, "\n") .. "\n" .. owner.pipe:read("*a")
    local keeper_out = keeper.pipe:read("*a")

    local t = tally(name, emu, hooks, owner_out, keeper_out)
    local why, jobs = t.why, t.jobs
    io.stderr:write(t.counts, "\n")

    assert.truthy(owner_out:find("\nend\n?$"), why)
    assert.truthy(keeper_out:find("ended: %d+ results"), why)
    assert.are.equal(N, t.claims_n, why) -- (the fault outlasts the lease: the keeper takes every task)
    assert.are.equal(N, t.creates, why)
    assert.are.equal(opts.gets or N, t.gets, why)
    assert.are.equal((opts.gets or N) - N, t.owner_gets, why) -- none started once its lease had lapsed
    assert.are.equal(N, t.posts, why)
    for id, k in pairs(t.per_task) do assert.are.equal(1, k, "webhooks of " .. id .. "\n" .. why) end
    for i = 1, N do
      local j, out = jobs[i], outs .. "/" .. i .. ".mp4"
      assert.truthy(j, why)
      assert.are.equal("-", j.err, why)
      assert.are.equal(1, t.per_task[j.id], "webhooks of " .. j.id .. "\n" .. why)
      if t.claims[j.id] then
        assert.truthy(t.taken[j.id] and t.taken[j.id] ~= "nil", "taken event of " .. j.id .. "\n" .. why)
        assert.truthy(t.job_taken[j.id] and t.job_taken[j.id] ~= "nil", "job's taken event of " .. j.id .. "\n" .. why)
        assert.are.equal("taken", j.state, why)
      else
        assert.are.equal("done", j.state, why)
      end
      assert.are.equal(out, j.path, why)
      assert.truthy(helper.whole_mp4(out, 5), out .. " is not a whole MP4\n" .. why)
    end
  end

  for _, mode in ipairs { "blackhole", "cut" } do
    it("its path to Redis " .. (mode == "cut" and "cut (every connection reset)" or "blackholed")
      .. " for 3 leases: every task downloaded once, one webhook each, the owner's jobs end without error",
      function()
        case(mode, function(o)
          o.proxy.mode(mode)
          return function() o.proxy.mode("pass") end
        end)
      end)
  end

  it("the owner stopped (SIGSTOP) for 3 leases, then continued: the same", function()
    case("sigstop", function(o)
      assert(helper.execute("kill -STOP " .. o.pid))
      return function() assert(helper.execute("kill -CONT " .. o.pid)) end
    end)
  end)

  it("the owner stopped (SIGSTOP) for 3 leases while its video GETs wait for their answers: it starts no other "
    .. "(N GETs its own, N the keeper's), one webhook per task, its jobs end without error", function()
    case("sigstop mid-download", function(o)
      local gets = 0
      repeat
        local line = o.read()
        if line and line:find("^get ") then gets = gets + 1 end
      until gets == N or not line
      assert.are.equal(N, gets, "the owner's video GETs")
      assert(helper.execute("kill -STOP " .. o.pid))
      return function() assert(helper.execute("kill -CONT " .. o.pid)) end
    end, { get_delay = 1.5, gets = 2 * N }) -- the owner's N GETs were sent before it stopped, the keeper's N after
  end)
end)
