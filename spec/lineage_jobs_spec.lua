-- again, remix, continue and film as jobs (opts.job = true; lua/starvideos/verb_job.lua, docs/reference.md) against
-- the emulator, the ledger a journal: each call returns a job at once, nothing sent yet; client:step(0) in a loop
-- drives it to the same creates as the blocking form (one each, a film of 3 shots 3), a rerun pays nothing, the child
-- records its parent and relation; the parent's SHA-256 is taken and every command (ffmpeg, ffprobe) run on a
-- helper thread, none in the stepping thread; a film's shot failed for service falls back (opts.fallback) as the
-- blocking form's does; bad input ends the job with the blocking form's error, nothing sent.
-- (continue needs a bucket for its frame: s3rver, rocks/s3/spec/support/s3_run.lua.)
local helper = require "spec.helper"
local socket = require "socket"
local starvideos = require "starvideos"
local shell = require "starvideos.shell"
local sign = require "starvideos.sign"
local core = require "starvideos.core"
local S3run = require("spec.support.places").fixture("s3")
local media = require "starvideos.emulator.media"

local KEY = "k-lineage-jobs"
local FFMPEG = helper.execute("command -v ffmpeg >/dev/null 2>&1") and helper.execute(
  "command -v ffprobe >/dev/null 2>&1")

-- The job's state and phase: what moves as it goes (helper.wait_moving's watched).
local function where(job) return function() return tostring(job.state) .. "/" .. tostring(job.phase) end end
-- the pids of the servers a describe started (the emulator, the bucket's): their work is none of the job's moves
local servers = {}

-- Steps the client (as a frame loop: step(0), then the frame's own time) until the job is done: the steps taken.
-- It waits for the job's end as long as the job moves (its state, its commands: ffmpeg at a helper thread's lowest
-- priority may crawl on a busy machine), not a number of seconds (issue 78, 2: a 60 s bound failed at load 15).
local function drive(client, job)
  local steps = 0
  assert.is_true(helper.wait_moving(function()
    client:step(0)
    steps = steps + 1
    return job.done
  end, where(job), servers), "the job stopped moving before its end: " .. tostring(job.state))
  return steps
end

-- What the stepping thread ran itself while fn ran: its commands (shell.popen_ok) and its files hashed
-- (sign.sha256_file); and the files hashed and the commands run on a helper thread (sign.sha256_start,
-- core.run_start).
local function watched(fn)
  local seen = { popen = {}, here = {}, thread = {}, run = {} }
  local popen, here, thread, run = shell.popen_ok, sign.sha256_file, sign.sha256_start, core.run_start
  shell.popen_ok = function(c) seen.popen[#seen.popen + 1] = c; return popen(c) end
  sign.sha256_file = function(p) seen.here[#seen.here + 1] = p; return here(p) end
  sign.sha256_start = function(p) seen.thread[#seen.thread + 1] = p; return thread(p) end
  core.run_start = function(c) seen.run[#seen.run + 1] = c; return run(c) end
  local ok, err = pcall(fn)
  shell.popen_ok, sign.sha256_file, sign.sha256_start, core.run_start = popen, here, thread, run
  assert(ok, err)
  return seen
end

describe("again, remix and film as jobs", function()
  local emu, dir, client, parent
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.2 }
    servers = { emu.pid }
    dir = helper.tmpdir()
    client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j.jsonl", interval = 0.1,
      min_interval = 0.1 }
    parent = assert(client:generate({ model = "videos", prompt = "a red fox", duration = 5, ratio = "4:3" },
      { out = dir .. "/parent.mp4" }))
  end)
  teardown(function()
    client:close()
    emu:stop()
    helper.cleanup()
  end)

  it("again as a job: returned at once, nothing sent; step(0) makes one create of the parent's params changed; the "
    .. "same job again pays nothing; the child is listed under its parent", function()
    emu:clear()
    local job = client:again(parent.id, { prompt = "a blue fox" }, { out = dir .. "/again.mp4", job = true })
    assert.same({ false, 0 }, { job.done, emu:creates() }, "nothing done before a step")
    drive(client, job)
    assert.is_nil(job.err, job.err and job.err.message)
    assert.same({ "done", 1, "completed", dir .. "/again.mp4" }, { job.state, emu:creates(), job.status, job.path })
    assert.same({ parent.id, "again", job.id }, { job.task.parent, job.task.relation, job.result.id })
    local rerun = client:again(parent.id, { prompt = "a blue fox" }, { out = dir .. "/again.mp4", job = true })
    drive(client, rerun)
    assert.same({ 1, job.id }, { emu:creates(), rerun.id }, "a rerun follows its task")
    local kids = assert(client:tasks { parent = parent.id })
    assert.same({ { job.id, "again" } }, { { kids[1].id, kids[1].relation } })
  end)

  it("remix as a job: the parent hashed on a helper thread, never in the stepping thread; one create whose "
    .. "reference video is the parent's; a rerun pays nothing", function()
    emu:clear()
    local job
    local seen = watched(function()
      job = client:remix(parent.id, { prompt = "as a cartoon" }, { out = dir .. "/remix.mp4", job = true })
      assert.same({ false, "preparing" }, { job.done, job.state })
      drive(client, job)
    end)
    assert.is_nil(job.err, job.err and job.err.message)
    assert.same({ dir .. "/parent.mp4" }, seen.thread, "the parent's file, on a helper thread")
    assert.same({}, seen.here, "no file hashed in the stepping thread")
    assert.equal(1, emu:creates())
    local tasks = emu:tasks()
    assert.equal(1, #tasks[#tasks].params.referenceVideos)
    assert.same({ parent.id, "remix" }, { job.task.parent, job.task.relation })
    local rerun = client:remix(parent.id, { prompt = "as a cartoon" }, { out = dir .. "/remix.mp4", job = true })
    drive(client, rerun)
    assert.same({ 1, job.id }, { emu:creates(), rerun.id }, "a rerun follows its task")
    assert.same({ "remix" }, { assert(client:tasks { parent = parent.id })[2].relation })
  end)

  it("film of 3 shots as a job: 3 creates, one film joined, every ffprobe and ffmpeg run by a helper thread; the "
    .. "same job again pays for no shot", function()
    if not FFMPEG then pending("ffmpeg and ffprobe") return end
    emu:clear()
    local shots = { { model = "videos", prompt = "one", duration = 4 }, { model = "videos", prompt = "two",
      duration = 5 }, { model = "videos", prompt = "three", duration = 4 } }
    local job, made
    local seen = watched(function()
      job = client:film(shots, { out = dir .. "/film.mp4", job = true })
      assert.same({ false, 0 }, { job.done, emu:creates() })
      made = {}
      assert.is_true(helper.wait_moving(function() -- (the shot each step shows)
        client:step(0)
        if job.shot then made[job.shot] = true end
        socket.sleep(0.005) -- (a frame's own time)
        return job.done
      end, where(job), servers), "the job stopped moving before its end: " .. tostring(job.state))
    end)
    assert.is_nil(job.err, job.err and job.err.message)
    assert.same({ "done", 3, dir .. "/film.mp4", 3 }, { job.state, emu:creates(), job.path, #job.shots })
    assert.same({ true, true, true }, made)
    assert.same({}, seen.popen, "no command run in the stepping thread")
    local joined = false
    for _, c in ipairs(seen.run) do joined = joined or c:find("-f concat", 1, true) ~= nil end
    assert.is_true(joined, "the join on a helper thread")
    local seconds = tonumber((helper.capture("ffprobe -v error -show_entries format=duration -of csv=p=0 "
      .. helper.shell_quote(dir .. "/film.mp4"))))
    assert.equal(13, seconds)
    local rec = assert(require("starvideos.provenance").decode((assert(helper.read_file(dir .. "/film.mp4.json")))))
    assert.same({ 3, require("starvideos.sign").sha256_file(dir .. "/film.mp4") }, { #rec.parents, rec.video.sha256 },
      "the film's provenance record, its shots' named")
    local rerun = client:film(shots, { out = dir .. "/film2.mp4", job = true })
    drive(client, rerun)
    assert.is_nil(rerun.err, rerun.err and rerun.err.message)
    assert.equal(6, emu:creates(), "another out: its own shots")
    local again = client:film(shots, { out = dir .. "/film.mp4", job = true })
    drive(client, again)
    assert.same({ 6, dir .. "/film.mp4" }, { emu:creates(), again.path }, "the same film again pays for no shot")
  end)

  it("bad input as a job: the blocking form's error as job.err, nothing sent; a bad option raises at once",
    function()
    emu:clear()
    local out = { out = dir .. "/x.mp4", job = true }
    local cases = {
      { function() return client:again("task-nope", {}, out) end, "task",
        "again: task task%-nope is not in the ledger" },
      { function() return client:again(parent.id, 5, out) end, "overrides", "a table of params to change expected" },
      { function() return client:remix(parent.id, { prompt = "r" }, { job = true }) end, "out",
        "remix: opts.out is required" },
      { function() return client:continue(parent.id, { prompt = "on" }, out) end, "last_image",
        "params.last_image is required" },
      { function() return client:film({}, out) end, "shots", "a list of shots expected" },
    }
    for i, c in ipairs(cases) do
      local job = c[1]()
      assert.is_false(job.done, "case " .. i .. ": a job, at once")
      drive(client, job)
      assert.same({ "done", "invalid_request", c[2] }, { job.state, job.err.kind, job.err.field }, "case " .. i)
      assert.matches(c[3], job.err.message)
    end
    assert.has_error(function() client:remix(parent.id, {}, { out = dir .. "/y.mp4", job = "yes" }) end,
      "bad option 'job' to 'remix' (true or false expected, got \"yes\")")
    assert.equal(0, emu:creates())
  end)

  it("a parent whose file changed by one byte, or is gone: the job is refused as the blocking call is, its hash "
    .. "taken on a helper thread, nothing sent", function()
    emu:clear()
    local path = dir .. "/parent.mp4"
    local before = helper.read_file(path)
    helper.write_file(path, before:sub(1, -2) .. "x")
    local job = client:remix(parent.id, { prompt = "r" }, { out = dir .. "/changed.mp4", job = true })
    local ok = pcall(drive, client, job)
    os.rename(path, path .. ".away")
    local gone = client:continue(parent.id, { prompt = "on", last_image = "https://example.com/e.png" },
      { out = dir .. "/gone.mp4", job = true })
    local ok2 = pcall(drive, client, gone)
    os.rename(path .. ".away", path)
    helper.write_file(path, before)
    assert.is_true(ok and ok2)
    assert.same({ "invalid_request", "task" }, { job.err.kind, job.err.field })
    assert.matches("remix: task .*'s video is not whole: .* has SHA%-256 %x+; %x+ was saved", job.err.message)
    assert.matches("continue: task .*'s video is not whole: .* is missing", gone.err.message)
    assert.equal(0, emu:creates())
  end)

  it("a film as a job past a spend limit: refused before its first create, as the blocking call is, nothing sent",
    function()
    if not FFMPEG then pending("ffmpeg and ffprobe") return end
    emu:clear()
    local capped = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/capped.jsonl",
      interval = 0.1, min_interval = 0.1, prices = { videos = 0.4 },
      spend_limit = { amount = 1, scope = "model", model = "videos" } }
    local shots = {}
    for i = 1, 3 do shots[i] = { model = "videos", prompt = "c" .. i, duration = 4 } end
    local film = capped:film(shots, { out = dir .. "/capped.mp4", job = true })
    drive(capped, film)
    assert.same({ "spend_limited", 3, "spend_limit" }, { film.err.kind, film.err.shot, film.err.field })
    assert.matches("film: shot 3: the film's 3 creates (cost 1.2) are more than the spend limits let through",
      film.err.message, 1, true)
    assert.equal(0, emu:creates(), "no shot paid")
    capped:close()
  end)

  it("job = false is the blocking form: a film of one shot made and returned", function()
    if not FFMPEG then pending("ffmpeg and ffprobe") return end
    emu:clear()
    local made = assert(client:film({ { model = "videos", prompt = "alone", duration = 4 } },
      { out = dir .. "/alone.mp4", job = false }))
    assert.same({ dir .. "/alone.mp4", 1, 1 }, { made.path, #made.shots, emu:creates() })
  end)

  it("a film as a job whose first shot fails for service falls back: 2 creates in all, the shot made by the "
    .. "fallback model, recorded with relation fallback", function()
    if not FFMPEG then pending("ffmpeg and ffprobe") return end
    emu:clear()
    -- (the emulator's rule fails every create of the prompt: it is taken away once the first create is answered,
    -- the failure decided then, so that the fallback's create is made)
    emu:config { failures = { { kind = "service", prompt = "a falling shot" } } }
    local job = client:film({ { model = "videos", prompt = "a falling shot", duration = 5 } },
      { out = dir .. "/fallen.mp4", job = true, fallback = { "videos_fast" } })
    assert.same({ false, 0 }, { job.done, emu:creates() }, "nothing done before a step")
    local cleared = false
    assert.is_true(helper.wait_moving(function()
      client:step(0)
      if not cleared and emu:creates() >= 1 then
        emu:config { failures = require("cjson").null }
        cleared = true
      end
      return job.done
    end, where(job), servers), "the job stopped moving before its end: " .. tostring(job.state))
    assert.is_nil(job.err, job.err and job.err.message)
    local all = emu:tasks()
    local tasks = { all[#all - 1], all[#all] } -- (the film's two creates, the last the emulator made)
    assert.same({ 2, "videos", "videos_fast" }, { emu:creates(), tasks[1].params.model, tasks[2].params.model })
    assert.same({ "done", dir .. "/fallen.mp4", 1 }, { job.state, job.path, #job.shots })
    local shot = job.shots[1]
    assert.same({ "videos_fast", "fallback", tasks[1].id }, { shot.model, shot.relation, shot.parent })
    local kids = assert(client:tasks { parent = tasks[1].id })
    assert.same({ { shot.id, "fallback" } }, { { kids[1].id, kids[1].relation } })
    local failed = {}
    for _, t in ipairs(assert(client:tasks {})) do
      if t.id == tasks[1].id then failed = { t.state, t.reason } end
    end
    assert.same({ "failed", "service" }, failed, "the first create's task, in the journal")
  end)

  it("a film as a job cancelled after its last create: not joined, it ends cancelled with an io error saying its "
    .. "shots are paid for; nothing of the join left", function()
    if not FFMPEG then pending("ffmpeg and ffprobe") return end
    emu:clear()
    local out = dir .. "/cut.mp4"
    local job = client:film({ { model = "videos", prompt = "cut one", duration = 4 },
      { model = "videos", prompt = "cut two", duration = 4 } }, { out = out, job = true })
    assert.is_true(helper.wait_moving(function() client:step(0) return job.done or job.phase == "joining" end,
      where(job), servers), "the job stopped moving before it joined: " .. tostring(job.state))
    job:cancel()
    drive(client, job)
    local err = job.err or {}
    assert.same({ "cancelled", "io", 2, 2 }, { job.state, err.kind, emu:creates(), err.made })
    assert.matches("^the job was cancelled", job.err.message)
    assert.matches("shots 1 to 2 are made and paid for", job.err.message, 1, true)
    assert.same({}, { helper.read_file(out), helper.read_file(out .. ".film-list"),
      helper.read_file(out .. ".film-part.mp4") })
  end)

  it("a film as a job whose client closes while it joins: its command killed, its scratch files removed",
    function()
    if not FFMPEG then pending("ffmpeg and ffprobe") return end
    emu:clear()
    local c = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/closes.jsonl", interval = 0.1,
      min_interval = 0.1 }
    local out = dir .. "/closes.mp4"
    local job = c:film({ { model = "videos", prompt = "closes", duration = 4 } }, { out = out, job = true })
    assert.is_true(helper.wait_moving(function()
      c:step(0)
      return job.done or job.phase == "joining" and helper.read_file(out .. ".film-list") ~= nil
    end, where(job), servers), "the job stopped moving before it joined: " .. tostring(job.state))
    c:close()
    assert.same({ true, "io" }, { job.done, job.err and job.err.kind })
    assert.same({}, { helper.read_file(out), helper.read_file(out .. ".film-list"),
      helper.read_file(out .. ".film-part.mp4") }, "nothing of the join left")
  end)

  it("cancelled before its create is sent: nothing created, the job ends cancelled", function()
    emu:clear()
    local job = client:again(parent.id, { prompt = "never" }, { out = dir .. "/never.mp4", job = true })
    job:cancel()
    drive(client, job)
    assert.same({ "cancelled", "io", 0 }, { job.state, job.err.kind, emu:creates() })
  end)
end)

describe("continue as a job", function()
  local why = S3run.missing() or (not FFMPEG and "no ffmpeg") or nil
  local emu, dir, client, parent
  S3run.lineage(why, { queued = 0, processing = 0.2, key = KEY }, function(d) return d .. "/parent.mp4" end,
    function(e)
      emu, dir, client, parent = e.emu, e.dir, e.client, e.parent
      servers = { e.emu.pid, e.st.proc.pid }
    end)

  it("continue as a job: ffmpeg's last frame run by a helper thread; one create whose first_image is that frame; a "
    .. "rerun pays nothing", function()
    if why then pending(why) return end
    helper.write_file(dir .. "/end.png", media.png { width = 320, height = 240 })
    local before, job = emu:creates(), nil
    local params = { prompt = "she walks on", last_image = { file = dir .. "/end.png" } }
    local seen = watched(function()
      job = client:continue(parent.id, params, { out = dir .. "/c.mp4", job = true })
      drive(client, job)
    end)
    assert.is_nil(job.err, job.err and job.err.message)
    assert.same({}, seen.popen, "ffmpeg not in the stepping thread")
    local framed = false
    for _, c in ipairs(seen.run) do framed = framed or c:find("-sseof -1", 1, true) ~= nil end
    assert.is_true(framed, "ffmpeg's last frame on a helper thread")
    assert.same({ dir .. "/parent.mp4" }, seen.thread)
    assert.equal(before + 1, emu:creates())
    local tasks = emu:tasks()
    local fetched
    for _, f in ipairs(tasks[#tasks].fetched or {}) do if f.field == "first_image" then fetched = f end end
    assert.same({ 200, require("starvideos.core").hash(helper.read_file(dir .. "/c.mp4.first.png")) },
      { fetched.status, fetched.hash })
    assert.same({ parent.id, "continue" }, { job.task.parent, job.task.relation })
    local rerun = client:continue(parent.id, params, { out = dir .. "/c.mp4", job = true })
    drive(client, rerun)
    assert.same({ before + 1, job.id }, { emu:creates(), rerun.id })
  end)
end)

-- The helper threads a job's long work runs on (core.run_start, sign.sha256_start): a handle let go of never waits
-- for its thread (a frame's collection, LÖVE quitting), a command's is killed; a command's status is its shell's own
-- words, whatever the host does with its children.
describe("a job's helper threads", function()
  local dir
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.cleanup() end)

  local function alive(pid) -- (a zombie is dead: a process whose parent was killed may stay one here)
    local status = helper.read_file("/proc/" .. pid .. "/status")
    if not status then return helper.execute("kill -0 " .. pid .. " 2>/dev/null") end
    return not status:find("\nState:%s*Z")
  end

  -- A command that says its shell's pid, sleeps, then leaves a file (wrap: its command line made from that one's):
  -- started, and its pid once it runs.
  local function sleeper(name, wrap)
    local pidfile, late = dir .. "/" .. name .. ".pid", dir .. "/" .. name .. ".late"
    local command = "echo $$ > " .. pidfile .. "; sleep 30; touch " .. late
    local h = assert(core.run_start(wrap and wrap(command) or command))
    -- (the command starts on a helper thread at the lowest priority: its start waited for while it moves)
    assert.is_true(helper.wait_moving(function() return (helper.read_file(pidfile) or ""):find("%d\n") ~= nil end),
      "the command never said its pid")
    return h, tonumber(helper.read_file(pidfile)), late
  end

  it("a command's handle closed or collected while it runs: its command killed (its process group), the caller "
    .. "never waits for it", function()
    local h, pid, late = sleeper("closed")
    h:close()
    assert.is_nil(helper.read_file(late), "close returned before the command's end")
    assert.is_true(helper.wait_moving(function() return not alive(pid) end), "the command was killed")
    assert.is_nil(helper.read_file(late))
    assert.has_error(function() h:poll() end, "the run handle was closed")
    local pid2, late2 = (function() local _, p, l = sleeper("dropped") return p, l end)() -- (its handle dropped)
    collectgarbage()
    collectgarbage()
    assert.is_nil(helper.read_file(late2), "the collection returned before the command's end")
    assert.is_true(helper.wait_moving(function() return not alive(pid2) end), "the command was killed")
  end)

  it("a command under the call's timeout (lineage.timed: coreutils' timeout) closed while it runs: killed too",
    function()
    if not helper.execute("command -v timeout >/dev/null 2>&1") then pending("coreutils' timeout") return end
    local h, pid, late = sleeper("timed", function(c)
      return require("starvideos.lineage").timed("sh -c " .. helper.shell_quote(c), 60)
    end)
    h:close()
    assert.is_true(helper.wait_moving(function() return not alive(pid) end), "the command was killed")
    assert.is_nil(helper.read_file(late))
  end)

  it("a command whose host ignores SIGCHLD (trap '' CHLD, nginx's handler): its output and exit status as its shell "
    .. "said them; over 1 MiB of output, its end (the status) kept", function()
    helper.write_file(dir .. "/chld.lua", [[
        local core, shell = require "starvideos.core", require "starvideos.shell"
        local function run(c)
          local h = assert(core.run_start(shell.saying(c)))
          while true do
            local o, why = h:poll()
            if o then local words, ok = shell.said(o) return #words .. " " .. words:sub(-6) .. " " .. tostring(ok) end
            if why then return "failed: " .. why end
            core.sleep(0.005)
          end
        end
        print(run("echo made"))
        print(run("echo broke; exit 3"))
        print(run("head -c 1500000 /dev/zero | tr '\\0' x; echo end"))
      ]])
    local out, ok = helper.capture("trap '' CHLD; " .. helper.CHILD_ENV .. helper.shell_quote(helper.lua) .. " "
      .. helper.shell_quote(dir .. "/chld.lua"))
    assert.is_true(ok, out)
    assert.equal("5 made\n true\n6 broke\n false\n1048574 xxend\n true\n", out)
  end)

  it("a hash's handle collected while its thread waits on the file: the caller never waits for it", function()
    local fifo, safety = dir .. "/slow.fifo", dir .. "/safety"
    assert.is_true(helper.execute("mkfifo " .. helper.shell_quote(fifo)))
    -- (were the collection to wait for the thread, a writer 20 s later lets it end: that writer's mark then says so)
    assert.is_true(helper.execute("( sleep 20; [ -e " .. helper.shell_quote(dir .. "/fed") .. " ] || { touch "
      .. helper.shell_quote(safety) .. "; echo late > " .. helper.shell_quote(fifo) .. "; } ) >/dev/null 2>&1 &"))
    local h = assert(sign.sha256_start(fifo))
    assert.is_nil(h:poll())
    h = nil -- luacheck: ignore h
    collectgarbage()
    collectgarbage()
    assert.is_nil(helper.read_file(safety), "the collection waited for the hash's thread")
    helper.write_file(dir .. "/fed", "")
    local w = assert(io.open(fifo, "w")) -- (the thread's open returns: it hashes nothing and ends)
    w:close()
  end)
end)
