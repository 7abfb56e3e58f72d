-- Videos streamed into a bucket (docs/storage.md), against a real S3-compatible server: s3rver 3.7.1 behind the
-- specs' own proxy that checks every request's SigV4 with the AWS SDK's signer (spec/npm/s3_server.js), the
-- objects read back by the AWS SDK's own S3 client (spec/npm/s3_read.js), the videos served by the emulator.
-- The 200 MB cases are here, in one file (the slow ones); the download faults are
-- rocks/s3/spec/hosts/s3_faults_spec.lua's.
local helper = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"

local S3run = require "rocks.s3.spec.support.s3_run"
local Redis = require "rocks.redis.spec.support.redis_run"
local MB = 1000 * 1000

local function start_store(refuse) return S3run.start { refuse = refuse } end

-- A child process that generates to out and prints its result and its peak RSS (kB) as JSON.
local GEN = [[
local starvideos = require "starvideos"
local base, key, port, out, journal, mode, secret, store, pid_file = (unpack or table.unpack)(arg, 1, 9)
if pid_file then -- (for the store's kill_at_part)
  local f = io.open(pid_file, "w")
  f:write(io.open("/proc/self/stat"):read("*l"):match("^%d+"))
  f:close()
end
local c = starvideos.new { base_url = base, api_key = key, journal = journal ~= "-" and journal or nil,
  store = store ~= "" and store or nil,
  storage = { endpoint = "http://127.0.0.1:" .. port, access_key = "S3RVER", secret_key = secret or "S3RVER" },
  on_event = function(ev) if ev.type == "warning" then io.stderr:write("warning: ", ev.message, "\n") end end }
if mode == "slow ledger" then -- (each record taken 50 ms after it is asked for: a disk, a Redis, slow to sync)
  local ledger, now, asked = c.ledger, require("starvideos.core").now, {}
  local written = ledger.written
  ledger.written = function(self, ticket)
    if not ticket then return true end
    asked[ticket] = asked[ticket] or now()
    return now() - asked[ticket] >= 0.05 and written(self, ticket)
  end
elseif mode == "stuck ledger" then -- (the first record written, then none: a store that stopped answering)
  local written, n = c.ledger.written, 0
  c.ledger.written = function(self, ticket)
    if not ticket then return true end
    n = n + 1
    return n == 1 and written(self, ticket)
  end
end
local r
if mode == "resume" then
  local list = assert(c:resume { interval = 0.2, dir = "s3://vids/" })
  r = list[1] or {}
else
  local task, err = c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = out, interval = 0.2,
    timeout = mode == "stuck ledger" and 6 or nil })
  r = { task = task, err = err, path = task and task.path }
end
local hwm = io.open("/proc/self/status"):read("*a"):match("VmHWM:%s*(%d+)")
io.stdout:write(require("cjson").encode { path = r.path or (r.task and r.task.path), sha256 = r.task and r.task.sha256,
  err = r.err and tostring(r.err), check = r.err and r.err.check, hwm = tonumber(hwm) }, "\n")
]]

local function gen(dir, emu, st, out, journal, mode, secret, store, pid_file)
  local p = helper.run_lua(dir, "gen", GEN, { emu.url, emu.key, tostring(st.port), out, journal or "-",
    mode or "generate", secret or "S3RVER", store or "", pid_file })
  return p
end

-- (the SDK's warning that node 22 will be needed from 2027 is not ours to show)
local function result_of(p)
  local text = p.pipe:read("*a")
  p:close()
  local line = text:match("(%b{})%s*$")
  return line and cjson.decode(line) or { err = text }, text
end

-- The parts the journal holds for the upload now (the child writes it).
local function parts_recorded(journal)
  local n = 0
  for l in helper.whole_lines(journal) do
    local e = cjson.decode(l)
    if e.event == "upload" then n = type(e.upload) == "string" and #cjson.decode(e.upload).parts or 0 end
  end
  return n
end

-- The part numbers of key PUT (answered 200) since `at` in the store's proxy's log.
local function parts_put(st, key, at)
  local out = {}
  for _, e in ipairs(st.log()) do
    if e.method == "PUT" and e.part and e.at > at and e.status == 200 and e.path == "/vids/" .. key then
      out[#out + 1] = e.part
    end
  end
  return out
end

describe("videos streamed into a bucket (s3rver behind a SigV4-checking proxy)", function()
  local why = S3run.missing()
  local emu, st
  setup(function()
    if why then return end
    emu = helper.emulator { queued = 0, processing = 0.3 }
    st = start_store()
  end)
  teardown(function()
    if st then st.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("a 200 MB video generated to s3://: the SDK reads back the SHA-256 the journal recorded, the process's RSS "
    .. "stays under 40 MB, no object at the key until the upload completes, every request's signature checked",
    function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { video_size = 200 * MB }
    local journal = dir .. "/j.jsonl"
    local p = gen(dir, emu, st, "s3://vids/big/cat 200.mp4", journal)
    local seen_before -- the object's file in s3rver's folder, looked at while the upload runs
    local object = st.dir .. "/vids/big/cat 200.mp4._S3rver_object"
    helper.wait_until(function()
      local done = (helper.read_file(journal) or ""):find('"event":"downloaded"', 1, true)
      if not done and helper.exists(object) then -- (every part taken first: then the upload is completed)
        seen_before = seen_before or S3run.parts(st.log()) < math.ceil(200 * MB / (5 * 1024 * 1024))
      end
      return done
    end, 240)
    local r, text = result_of(p)
    assert.are.equal("s3://vids/big/cat 200.mp4", r.path, text)
    local back = st.video("big/cat 200.mp4") -- (and the served video in it: up to the mark's box)
    assert.are.equal(200 * MB, back.served)
    assert.are.equal(r.sha256, back.sha256)
    assert.are.equal(r.sha256, back.meta, "x-amz-meta-sha256")
    assert.are.equal("video/mp4", back.type)
    local rec
    for l in helper.read_file(journal):gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.event == "downloaded" then rec = e end
    end
    assert.are.same({ "s3://vids/big/cat 200.mp4", back.bytes, back.sha256 }, { rec.path, rec.bytes, rec.sha256 })
    assert.truthy(rec.etag)
    assert.is_true(r.hwm < 40 * 1024, "peak RSS " .. tostring(r.hwm) .. " kB")
    local log, complete_at, parts = st.log(), nil, 0
    for _, e in ipairs(log) do
      assert.are.equal("ok", e.signature, cjson.encode(e))
      if e.method == "PUT" and e.part then parts = parts + 1 end
      if e.method == "POST" and e.query.uploadId then complete_at = e.at end
    end
    assert.are.equal(math.ceil(200 * MB / (5 * 1024 * 1024)), parts)
    assert.truthy(complete_at)
    assert.is_falsy(seen_before, "the object was at its key before every part was taken")
    assert.truthy(helper.exists(object))
    assert.are.equal(0, st.uploads_left())
  end)

  it("kill -9 at a random part, 5 times, then resume: the object whole, no part the journal recorded sent again",
    function()
    if why then pending(why) return end
    helper.seed("s3 kill")
    local dir = helper.tmpdir()
    emu:config { video_size = 200 * MB }
    local journal, key = dir .. "/j.jsonl", "killed.mp4"
    local function recorded() return parts_recorded(journal) end
    local function puts_after(at) return parts_put(st, key, at) end
    for i = 1, 6 do -- five runs killed at a random part, then one to the end
      local kept, t0 = recorded(), socket.gettime()
      local p = gen(dir, emu, st, "s3://vids/" .. key, journal, i == 1 and "generate" or "resume")
      if i <= 5 then
        local stop_at = kept + math.random(1, 3)
        assert.is_true(helper.wait_until(function() return recorded() >= stop_at end, 120), "no part recorded")
        os.execute("kill -9 " .. p.pid)
        p:close()
      else
        local r, text = result_of(p)
        assert.are.equal("s3://vids/" .. key, r.path, text)
      end
      for _, n in ipairs(puts_after(t0)) do
        assert.is_true(n > kept, string.format("run %d sent part %d again (%d were recorded)", i, n, kept))
      end
    end
    local back = st.video(key) -- (and the served video in it: up to the mark's box)
    assert.are.equal(200 * MB, back.served)
    assert.are.equal(back.meta, back.sha256)
    assert.are.equal(0, st.uploads_left())
  end)

  -- The emulator's videos of `size` bytes served whole to any Range (as a host that ignores it), for this case.
  local function ignoring_range(size)
    emu:config { video_size = size, ranges = false }
    finally(function() emu:config { ranges = true } end)
  end

  it("a video host that ignores Range: one GET feeds every part (held between them), the host serves the video "
    .. "once: whole with its SHA-256, 1 create, 8 parts", function()
    if why then pending(why) return end
    local dir, key = helper.tmpdir(), "norange-40.mp4"
    ignoring_range(40 * MB)
    local creates, seen, t0 = emu:creates(), #emu:requests(), socket.gettime()
    local r, text = result_of(gen(dir, emu, st, "s3://vids/" .. key, dir .. "/j.jsonl"))
    assert.are.equal("s3://vids/" .. key, r.path, text)
    local back = st.video(key) -- (and the served video in it: up to the mark's box)
    assert.are.same({ 40 * MB, back.sha256, r.sha256 }, { back.served, back.meta, back.sha256 })
    assert.are.equal(creates + 1, emu:creates())
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8 }, parts_put(st, key, t0))
    assert.are.equal(0, st.uploads_left())
    local bytes, gets = emu:video_served(seen)
    io.write(string.format("\n40 MB video, 8 parts, from a host that ignores Range: %d GET, %.1f MB served, peak RSS "
      .. "%.1f MB\n", gets, bytes / MB, (r.hwm or 0) / 1024))
    assert.are.same({ 1, 40 * MB }, { gets, bytes }) -- (a GET a part: n(n+1)/2 parts, 8: about 189 MB)
    assert.is_true(r.hwm < 40 * 1024, "peak RSS " .. tostring(r.hwm) .. " kB") -- (two parts, not the video)
  end)

  it("a video host that ignores Range, kill -9 after a part, then resume: the object whole, no part the journal "
    .. "recorded sent again, 1 create, the host's bytes at most twice the video", function()
    if why then pending(why) return end
    local dir, key = helper.tmpdir(), "norange-killed.mp4"
    ignoring_range(16 * MB)
    local journal, creates, seen = dir .. "/j.jsonl", emu:creates(), #emu:requests()
    st.fault { kill_at_part = 1, part = 3, pid_file = dir .. "/pid" } -- (killed as part 3 reaches the store)
    local p = gen(dir, emu, st, "s3://vids/" .. key, journal, nil, nil, nil, dir .. "/pid")
    local ok = helper.wait_until(function() return st.faults_left().kill_at_part == 0 end, 60)
    p:close()
    assert.is_true(ok, "part 3 was never sent")
    local kept, t0 = parts_recorded(journal), socket.gettime()
    assert.are.equal(2, kept)
    local r, text = result_of(gen(dir, emu, st, "s3://vids/" .. key, journal, "resume"))
    assert.are.equal("s3://vids/" .. key, r.path, text)
    assert.are.same({ 3, 4 }, parts_put(st, key, t0))
    local back = st.video(key) -- (and the served video in it: up to the mark's box)
    assert.are.same({ 16 * MB, back.sha256 }, { back.served, back.meta })
    assert.are.equal(r.sha256, back.sha256)
    assert.are.equal(creates + 1, emu:creates())
    assert.are.equal(0, st.uploads_left())
    local bytes, gets = emu:video_served(seen) -- (the resume reads from byte 0 once, the recorded parts' bytes dropped)
    io.write(string.format("\n16 MB video killed at part 3 and resumed: %d GETs, %.1f MB served\n", gets, bytes / MB))
    assert.are.equal(2, gets)
    assert.is_true(bytes <= 32 * MB, bytes) -- (a GET a part: parts 1-3, then 3-4: about 63 MB)
  end)

  it("a ledger that stops writing mid-upload: the call ends at its timeout (timeout, naming the ledger), 1 create",
    function()
      if why then pending(why) return end
      local dir, creates = helper.tmpdir(), emu:creates()
      emu:config { video_size = 16 * MB }
      local t0 = socket.gettime()
      local p = gen(dir, emu, st, "s3://vids/stuck.mp4", dir .. "/j.jsonl", "stuck ledger")
      local ended
      finally(function() if not ended then os.execute("kill -9 " .. p.pid .. " 2>/dev/null"); p:close() end end)
      local function gone() -- (ended: a zombie till its pipe is closed)
        local stat = helper.read_file("/proc/" .. p.pid .. "/stat")
        return not stat or stat:match("^%d+ %b() Z") ~= nil
      end
      if not helper.wait_until(gone, 30) then error("still running 30 s after a 6 s timeout") end
      local done = socket.gettime() - t0
      local r = result_of(p)
      ended = true
      io.write(string.format("\nstuck ledger: ended after %.1f s (timeout 6 s): %s\n", done, tostring(r.err)))
      assert.matches("timeout", tostring(r.err), 1, true)
      assert.matches("the ledger did not write the upload's record before the call's timeout", tostring(r.err), 1,
        true)
      assert.are.equal(creates + 1, emu:creates())
    end)

  for _, ledger in ipairs { "journal", "Redis" } do
    it("a " .. ledger .. " slow to take each record: a part waits for the record of the one before, woken meanwhile "
      .. "by the store's answers, and the upload ends", function()
      if why then pending(why) return end
      local dir, srv = helper.tmpdir(), nil
      if ledger == "Redis" then
        local missing = Redis.missing("module")
        if missing then pending(missing) return end
        srv = Redis.start()
      end
      emu:config { video_size = 16 * MB }
      local t0, key = socket.gettime(), "slow-" .. ledger .. ".mp4"
      local p = gen(dir, emu, st, "s3://vids/" .. key, srv and "-" or dir .. "/j.jsonl", "slow ledger", nil,
        srv and srv.url)
      local ended
      finally(function()
        if not ended then os.execute("kill -9 " .. p.pid .. " 2>/dev/null"); p:close() end
        if srv then srv.stop() end
      end)
      local r, text
      if not helper.wait_until(function() return helper.exists(st.dir .. "/vids/" .. key .. "._S3rver_object") end, 60)
      then
        os.execute("kill -9 " .. p.pid .. " 2>/dev/null")
        ended = true
        error("the upload stalled: " .. p.pipe:read("*a") .. cjson.encode(st.log()):sub(-600))
      end
      r, text = result_of(p)
      ended = true
      assert.are.equal("s3://vids/" .. key, r.path, text)
      assert.are.equal(r.sha256, st.read(key).sha256)
      local parts = 0
      for _, e in ipairs(st.log()) do
        if e.method == "PUT" and e.part and e.at > t0 and e.path == "/vids/" .. key then parts = parts + 1 end
      end
      assert.are.equal(math.ceil(16 * MB / (5 * 1024 * 1024)), parts)
    end)
  end

  it("a store that refuses x-amz-checksum-*: the parts carry Content-MD5, said once", function()
    if why then pending(why) return end
    local md5 = start_store(true)
    local dir = helper.tmpdir()
    emu:config { video_size = 12 * MB }
    local p = helper.run_lua(dir, "gen", GEN, { emu.url, emu.key, tostring(md5.port), "s3://vids/md5.mp4", "-",
      "generate" })
    local r, text = result_of(p)
    md5.stop()
    assert.are.equal("s3://vids/md5.mp4", r.path, text)
    local _, warnings = text:gsub("refused x%-amz%-checksum", "")
    assert.are.equal(1, warnings, text)
    local puts = 0
    for _, e in ipairs(md5.log()) do
      if e.method == "PUT" and e.part then
        puts = puts + 1
        assert.are.equal(200, e.status)
      end
    end
    assert.are.equal(3, puts)
  end)

  it("a rerun on an object already saved: its result carries the SHA-256 recorded, nothing created or sent",
    function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { video_size = 1 * MB }
    local journal = dir .. "/j.jsonl"
    local first, text = result_of(gen(dir, emu, st, "s3://vids/rerun.mp4", journal))
    assert.are.equal("s3://vids/rerun.mp4", first.path, text)
    local back = st.read("rerun.mp4")
    assert.are.equal(back.sha256, first.sha256)
    local creates, sent = #emu:tasks(), #st.log()
    local again, text2 = result_of(gen(dir, emu, st, "s3://vids/rerun.mp4", journal))
    assert.are.same({ "s3://vids/rerun.mp4", back.sha256 }, { again.path, again.sha256 }, text2)
    assert.are.equal(creates, #emu:tasks())
    assert.are.equal(sent, #st.log())
  end)

  it("a wrong secret key: refused before the create (0 sent), naming the bucket, never the secret; the right "
    .. "key: the bucket asked once", function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { video_size = 1 * MB }
    local creates = #emu:tasks()
    local bad, text = result_of(gen(dir, emu, st, "s3://vids/badkey.mp4", nil, "generate", "NOT-THE-SECRET"))
    assert.are.equal(creates, #emu:tasks(), text)
    assert.truthy(bad.err and bad.err:find("bucket vids", 1, true), text)
    assert.is_nil(text:find("NOT-THE-SECRET", 1, true), text)
    local function asks()
      local n = 0
      for _, e in ipairs(st.log()) do if e.method == "GET" and e.query.uploads then n = n + 1 end end
      return n
    end
    local before = asks()
    local ok, text2 = result_of(gen(dir, emu, st, "s3://vids/goodkey.mp4"))
    assert.are.equal("s3://vids/goodkey.mp4", ok.path, text2)
    assert.are.equal(creates + 1, #emu:tasks())
    assert.are.equal(before + 1, asks())
  end)
end)
