-- Each download fault the library refuses, with an s3:// out (docs/storage.md; issue 39): no object at the key,
-- no upload left, every upload the library made aborted.  The store: s3rver behind the specs' SigV4-checking proxy
-- (rocks/s3/spec/support/s3_run.lua); the bad videos: spec/support/hostile.lua's download cases (a whole service each:
-- an HTML page, a short body, a box cut, a 9 s video for a 5 s task), and nginx serving a 12 MB video with
-- `max_ranges 0` (a real server that answers each Range with 200 and the whole file: the video's second part).
local helper = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"
local s3_run = require "rocks.s3.spec.support.s3_run"
local nginx_run = require "spec.support.nginx_run"
local starvideos = require "starvideos"

local MB = 1000 * 1000
local why = s3_run.missing()

-- A client of the store st (and of base: the service, key its API key), its journal in dir.
local function client(st, base, dir, key)
  return starvideos.new { api_key = key or "k", base_url = base, journal = dir .. "/j.jsonl", interval = 0.05,
    retry_backoff = 0.01, max_retries = 1, storage = { endpoint = st.url, access_key = "S3RVER",
      secret_key = "S3RVER" } }
end

-- What the store's log says of the key: uploads created, aborted (answered 204), parts taken, completes.
local function told(st, key)
  local n = { created = 0, aborted = 0, parts = 0, completed = 0 }
  for _, e in ipairs(st.log()) do
    if e.path == "/vids/" .. key then
      if e.method == "POST" and e.query.uploads then n.created = n.created + 1 end
      if e.method == "DELETE" and e.query.uploadId and e.status == 204 then n.aborted = n.aborted + 1 end
      if e.method == "PUT" and e.part and e.status == 200 then n.parts = n.parts + 1 end
      if e.method == "POST" and e.query.uploadId then n.completed = n.completed + 1 end
    end
  end
  return n
end

-- Nothing at the key, no upload of the store's left, each upload made aborted; the journal holds no upload.
local function nothing_left(st, key, dir, text)
  assert.is_true(st.read(key).missing, "an object is at " .. key .. ": " .. text)
  assert.are.equal(0, st.uploads_left(), text)
  local n = told(st, key)
  assert.is_true(n.created >= 1, "no upload was made: " .. cjson.encode(n))
  assert.are.same({ n.created, 0 }, { n.aborted, n.completed }, cjson.encode(n))
  local upload
  for l in (helper.read_file(dir .. "/j.jsonl") or ""):gmatch("[^\n]+") do
    local e = cjson.decode(l)
    if e.event == "upload" then upload = e.upload end
  end
  assert.is_falsy(upload, "the journal still holds an upload") -- (false: the upload gone)
  return n
end

describe("download faults with an s3:// out: no object, no upload left", function()
  local st, hs
  setup(function()
    if why then return end
    st = s3_run.start {}
    hs = helper.hostile()
  end)
  teardown(function()
    if hs then hs:stop() end
    if st then st.stop() end
    helper.cleanup()
  end)

  for _, case in ipairs {
    { "dl_html", "an HTML page for the video", "not an MP4" },
    { "dl_short", "a body cut short with a Content-Length (and Content-Range) to match", "runs past the end" },
    { "dl_overrun", "an MP4 whose last box runs past its end", "runs past the end" },
    { "dl_duration", "a 9 s video for a task of 5 s", "the task says 5 s" },
  } do
    it(case[2] .. ", twice (a fresh URL asked once): protocol naming the check", function()
      if why then pending(why) return end
      local dir, key = helper.tmpdir(), case[1] .. ".mp4"
      local c = client(st, hs:url(case[1]), dir)
      local task, err = c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = "s3://vids/" .. key })
      c:close()
      local text = tostring(err)
      assert.is_nil(task, text)
      assert.are.equal("protocol", err.kind, text)
      assert.truthy(text:find(case[3], 1, true), text)
      assert.truthy(err.check, text)
      local n = nothing_left(st, key, dir, text)
      assert.are.equal(2, n.created, cjson.encode(n)) -- (the check refused it twice: two uploads, both aborted)
    end)
  end

  it("a host that ignores Range (nginx, max_ranges 0: 200 and the whole file to each part's Range): one GET feeds "
    .. "the 3 parts, the file served once; the object whole with its SHA-256, 1 upload created, nothing aborted",
    function()
    if why then pending(why) return end
    local nowhy = nginx_run.missing_nginx()
    if nowhy then pending(nowhy) return end
    local dir, key = helper.tmpdir(), "range200.mp4"
    assert(helper.execute("mkdir -p " .. helper.shell_quote(dir .. "/www")))
    local video = require("starvideos.emulator.media").mp4 { seconds = 5, bytes = 12 * MB }
    helper.write_file(dir .. "/www/v.mp4", video)
    local ngx = nginx_run.serve(dir, function(port)
      local lines = nginx_run.conf_head(dir, 1)
      for _, l in ipairs { "    log_format served '$request_method $uri $status $body_bytes_sent';",
        string.format("    server { listen 127.0.0.1:%d; max_ranges 0; access_log %s/served.log served;", port, dir),
        "        location / { root " .. dir .. "/www; } }", "}", "" } do lines[#lines + 1] = l end
      return table.concat(lines, "\n")
    end)
    local c = client(st, "http://127.0.0.1:1", dir)
    local path, err = c:download({ video_url = "http://127.0.0.1:" .. ngx.port .. "/v.mp4", actualDuration = 5 },
      "s3://vids/" .. key)
    c:close()
    ngx.stop()
    local text = tostring(err)
    assert.are.equal("s3://vids/" .. key, path, text)
    local served = {} -- (nginx's access log: each video GET's status and the bytes it sent)
    for l in (helper.read_file(dir .. "/served.log") or ""):gmatch("[^\n]+") do
      served[#served + 1] = l:match("^GET /v%.mp4 (%d+ %d+)$")
    end
    assert.are.same({ "200 " .. #video }, served) -- (a GET a part: 3, 6 parts' worth)
    local back = st.video(key) -- (the served video in it, up to the mark's box: back.served, back.served_sha256)
    assert.are.equal(#video, back.served)
    assert.are.equal(require("starvideos.sign").sha256(video), back.served_sha256)
    assert.are.equal(back.sha256, back.meta, "x-amz-meta-sha256")
    local n = told(st, key)
    assert.are.same({ created = 1, aborted = 0, parts = 3, completed = 1 }, n)
    assert.are.equal(0, st.uploads_left())
  end)
end)

describe("a close mid-upload (the bucket sink's own cancel rule)", function()
  local emu, st
  setup(function()
    if why then return end
    emu = helper.emulator { queued = 0, processing = 0.1 }
    emu:config { video_size = 60 * MB }
    st = s3_run.start {}
  end)
  teardown(function()
    if st then st.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("a host that ignores Range, closed while its one GET is held between parts: that GET let go of, the upload "
    .. "kept with its recorded parts (no abort); the rerun goes on with one GET: whole, 1 create", function()
    if why then pending(why) return end
    local dir, key = helper.tmpdir(), "held-closed.mp4"
    local params = { model = "videos", prompt = "a cat closed while held", duration = 5 }
    emu:config { ranges = false }
    finally(function() emu:config { ranges = true } end)
    local seen = #emu:requests()
    local c = client(st, emu.url, dir, emu.key)
    local job = assert(c:start(params, { out = "s3://vids/" .. key, interval = 0.05 }))
    local held = function() return job.req and job.req.held ~= nil end -- (the sink's GET, paused between parts)
    assert.is_true(helper.wait_until(function()
      c:step(0.01)
      return held() or job.done
    end, 60), "the GET was never held")
    assert.is_true(held(), "the job ended before its GET was held")
    for _ = 1, 10 do c:step(0.02) end -- (held on while the store takes the part before)
    job:cancel(true)
    for _ = 1, 20 do c:step(0.05) end
    c:close()
    local bytes, gets = emu:video_served(seen)
    assert.are.equal(1, gets)
    assert.is_true(bytes < 60 * MB, "the held GET read on after the close: " .. bytes)
    local n = told(st, key)
    assert.are.same({ 1, 0, 0 }, { n.created, n.aborted, n.completed }, cjson.encode(n))
    c = client(st, emu.url, dir, emu.key)
    local task, err = c:generate(params, { out = "s3://vids/" .. key, interval = 0.05 })
    c:close()
    assert.truthy(task, tostring(err))
    local back = st.video(key) -- (the served video in it, up to the mark's box: back.served)
    assert.are.same({ 60 * MB, task.sha256 }, { back.served, back.sha256 })
    n = told(st, key)
    assert.are.same({ 1, 0, 1 }, { n.created, n.aborted, n.completed }, cjson.encode(n))
    assert.are.equal(0, st.uploads_left())
    local again
    bytes, again = emu:video_served(seen)
    io.write(string.format("\nclosed while held, then rerun: %d GETs, %.1f MB served for a 60 MB video\n", again,
      bytes / MB))
    assert.are.equal(2, again)
    assert.is_true(bytes <= 120 * MB, bytes)
  end)

  it("a host that ignores Range and a store slow to take part 1: the GET held meanwhile ends with the job at its "
    .. "deadline, the call returns then", function()
    if why then pending(why) return end
    local dir, key = helper.tmpdir(), "held-late.mp4"
    local slow = s3_run.start {} -- (its own: the upload's abort past the deadline is not sent, the sweep's to do)
    emu:config { ranges = false }
    slow.fault { slow_part = 1, part = 1, delay = 30 }
    finally(function() emu:config { ranges = true }; slow.stop() end)
    local seen = #emu:requests()
    local c = client(slow, emu.url, dir, emu.key)
    local t0 = socket.gettime()
    local task, err = c:generate({ model = "videos", prompt = "a cat held too long", duration = 5 },
      { out = "s3://vids/" .. key, interval = 0.05, timeout = 5 })
    local took = socket.gettime() - t0
    c:close()
    assert.is_nil(task)
    assert.are.equal("timeout", err and err.kind, tostring(err))
    assert.is_true(took < 9, "the call took " .. took .. " s")
    local bytes, gets = emu:video_served(seen)
    assert.are.equal(1, gets)
    assert.is_true(bytes < 60 * MB, "the held GET read on after the deadline: " .. bytes)
  end)

  it("three videos from a host that ignores Range on two connections: a GET is held only while a connection is "
    .. "left for the rest (else none could put its parts): all three whole", function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { ranges = false, video_size = 16 * MB }
    finally(function() emu:config { ranges = true, video_size = 60 * MB } end)
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, journal = dir .. "/j.jsonl", max_connections = 2,
      storage = { endpoint = st.url, access_key = "S3RVER", secret_key = "S3RVER" } }
    local list = {}
    for i = 1, 3 do list[i] = { model = "videos", prompt = "a held cat " .. i, duration = 5 } end
    list = c:generate_all(list, { out = "s3://vids/two/%04d.mp4", interval = 0.05, timeout = 40 })
    c:close()
    for i = 1, 3 do
      local r, key = list[i] or {}, string.format("two/%04d.mp4", i)
      assert.are.equal("s3://vids/" .. key, r.path, tostring(r.err))
      local back = st.video(key) -- (the served video in it, up to the mark's box: back.served)
      assert.are.same({ 16 * MB, back.sha256 }, { back.served, back.meta }, key)
    end
  end)

  it("keeps the upload and its recorded parts (no abort); the rerun puts only the parts not recorded: whole, "
    .. "1 create, 0 aborts", function()
    if why then pending(why) return end
    local dir, key = helper.tmpdir(), "closed.mp4"
    local params = { model = "videos", prompt = "a closed cat", duration = 5 }
    local c = client(st, emu.url, dir, emu.key)
    local job = assert(c:start(params, { out = "s3://vids/" .. key, interval = 0.05 }))
    assert.is_true(helper.wait_until(function()
      c:step(0.05)
      return told(st, key).parts >= 1 or job.done
    end, 60), "no part taken")
    assert.is_falsy(job.done, "the job ended before the close")
    job:cancel(true) -- (what a close does to each job), then the loop driven on: an abort would go out now
    for _ = 1, 20 do c:step(0.05) end
    c:close()
    assert.is_falsy(job.err and job.err.kind ~= "io", tostring(job.err))
    local n = told(st, key)
    assert.are.same({ 1, 0, 0 }, { n.created, n.aborted, n.completed }, cjson.encode(n))
    assert.are.equal(1, st.uploads_left())
    local recorded, seen = 0, #st.log() -- (the parts the journal holds; the store's log so far)
    for l in helper.read_file(dir .. "/j.jsonl"):gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.event == "upload" then recorded = type(e.upload) == "string" and #cjson.decode(e.upload).parts or 0 end
    end
    assert.is_true(recorded >= 1, "no part recorded")
    c = client(st, emu.url, dir, emu.key)
    local task, err = c:generate(params, { out = "s3://vids/" .. key, interval = 0.05 })
    c:close()
    assert.truthy(task, tostring(err))
    local back = st.video(key) -- (the served video in it, up to the mark's box: back.served)
    assert.are.equal(60 * MB, back.served)
    assert.are.equal(task.sha256, back.sha256)
    local again = {} -- the parts the rerun put: each past those recorded, each once
    for k, e in ipairs(st.log()) do
      if k > seen and e.method == "PUT" and e.part and e.status == 200 then again[#again + 1] = tonumber(e.part) end
    end
    table.sort(again)
    local want = {}
    for p = recorded + 1, 12 do want[#want + 1] = p end
    assert.are.same(want, again)
    n = told(st, key)
    assert.are.same({ 1, 0, 1 }, { n.created, n.aborted, n.completed }, cjson.encode(n))
    assert.are.equal(0, st.uploads_left())
  end)
end)
