-- The workflows over the core (download, generate, journal and resume,
-- wait_all, non-blocking jobs), against the local emulator: the file on disk,
-- what reached the server and what the caller got.

local cjson = require "cjson.safe"
local socket = require "socket"
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"

local gettime = socket.gettime

local SAMPLE = assert(require("starvideos.emulator.files").video(5))

local shell_quote = helper.shell_quote

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end


local listing = helper.listing

local function cat(prompt)
  return { model = "videos", prompt = prompt or "a cat on a skateboard", duration = 5 }
end

-- The requests the emulator logged whose path starts with prefix (and method, if given).
local function logged(emu, prefix, method)
  local list = {}
  for _, r in ipairs(emu:requests()) do
    if r.path:sub(1, #prefix) == prefix and (not method or r.method == method) then list[#list + 1] = r end
  end
  return list
end

-- The journal's records, decoded; a line that is not JSON is kept as false.
local function journal_records(path)
  local recs = {}
  for line in ((helper.read_file(path) or "") .. "\n"):gmatch("([^\n]*)\n") do
    if line ~= "" then recs[#recs + 1] = cjson.decode(line) or false end
  end
  return recs
end

local function records_of(recs, event, id)
  local list = {}
  for _, r in ipairs(recs) do
    if r and r.event == event and (not id or r.id == id) then list[#list + 1] = r end
  end
  return list
end

-- Peak resident memory of this process, in kB (Linux).
local function peak_rss_kb()
  local status = helper.read_file("/proc/self/status") or ""
  return tonumber(status:match("VmHWM:%s*(%d+)"))
end

describe("starvideos workflows", function()
  local emu

  shared_emulator({ queued = 0.2, processing = 0.2 }, function(e) emu = e end)

  local function new_client(opts)
    local o = { api_key = emu.key, base_url = emu.url, retry_backoff = 0.01 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return starvideos.new(o)
  end

  -- A task the emulator already reports as completed, with its video_url.
  local function completed_task(client, prompt)
    local task = assert(client:create(cat(prompt)))
    return assert(client:wait(task.id, { interval = 0.05, timeout = 10 }))
  end

  -------------------------------------------------------------------------
  describe("download", function()
    it("writes a completed task's video to path, byte for byte", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      local path = dir .. "/video.mp4"
      local got, err = client:download(task, path)
      assert.is_nil(err)
      assert.equal(path, got)
      assert.equal(SAMPLE, helper.read_video(path))
      assert.same({ "video.mp4", "video.mp4.json" }, listing(dir))
    end)

    it("writes the video at a URL to path, byte for byte", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      emu:clear()
      local path = dir .. "/by-url.mp4"
      assert.equal(path, assert(client:download(task.video_url, path)))
      assert.equal(SAMPLE, helper.read_video(path))
      local log = emu:requests()
      assert.equal(1, #log)
      assert.equal("GET", log[1].method)
      assert.truthy(log[1].path:match("^/videos/"))
    end)

    it("downloads a completed task given only by its id in a table, with one query", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      emu:clear()
      local path = dir .. "/by-id.mp4"
      assert.equal(path, assert(client:download({ id = task.id }, path)))
      assert.equal(SAMPLE, helper.read_video(path))
      assert.equal(1, #logged(emu, "/v1/result/" .. task.id, "GET"))
    end)

    it("reports progress with growing byte counts and a known total", function()
      emu:config { video_size = 2000000 }
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      local events = {}
      local path = dir .. "/progress.mp4"
      assert(client:download(task, path, { on_progress = function(ev) events[#events + 1] = ev end }))
      assert.equal(2000000, helper.video_size(path))
      assert.is_true(#events >= 1)
      local last = 0
      for _, ev in ipairs(events) do
        assert.equal("progress", ev.type)
        assert.is_true(ev.bytes > last, "bytes did not increase: " .. ev.bytes .. " after " .. last)
        assert.equal(2000000, ev.total)
        last = ev.bytes
      end
      assert.equal(2000000, last)
    end)

    it("never sends the API key to the video's host", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      assert(client:download(task, dir .. "/a.mp4"))
      assert(client:download(task.video_url, dir .. "/b.mp4"))
      local videos = logged(emu, "/videos/")
      assert.equal(2, #videos)
      for _, r in ipairs(videos) do
        assert.is_nil(r.headers.authorization)
        for _, v in pairs(r.headers) do
          assert.is_nil(tostring(v):find(emu.key, 1, true), "the key reached the video's host")
        end
      end
      -- while the API itself gets it
      local queries = logged(emu, "/v1/result/")
      assert.is_true(#queries >= 1)
      assert.equal("Bearer " .. emu.key, queries[1].headers.authorization)
    end)

    it("resumes with Range requests after the connection drops twice and ends with the right bytes", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      emu:clear()
      emu:fault {
        { path = "/videos/", drop_after_bytes = 5000 },
        { path = "/videos/", drop_after_bytes = 5000 },
      }
      local path = dir .. "/dropped.mp4"
      assert.equal(path, assert(client:download(task, path)))
      assert.equal(SAMPLE, helper.read_video(path))
      local videos = logged(emu, "/videos/")
      assert.equal(3, #videos)
      assert.is_nil(videos[1].headers.range)
      assert.equal("bytes=5000-", videos[2].headers.range)
      assert.equal("bytes=10000-", videos[3].headers.range)
      assert.same({ "dropped.mp4", "dropped.mp4.json" }, listing(dir))
    end)

    -- A .part an earlier call left (a Ctrl-C, a crash) is gone on from: the
    -- 64 KiB before its end are asked for again and compared with what it held,
    -- so that a .part of another video is never completed into a wrong file.
    describe("with a .part an earlier call left", function()
      local SIZE, OVERLAP = 3000000, 65536

      -- A completed task of SIZE bytes and its video, byte for byte.
      local function big_task(client, dir)
        emu:config { video_size = SIZE }
        local task = completed_task(client)
        assert(client:download(task, dir .. "/whole.mp4"))
        local video = assert(helper.read_video(dir .. "/whole.mp4"))
        assert.equal(SIZE, #video)
        emu:clear()
        return task, video
      end

      it("asks for the rest with Range and ends with the video byte for byte", function()
        local client = new_client()
        local dir = helper.tmpdir()
        local task, video = big_task(client, dir)
        local path = dir .. "/cut.mp4"
        helper.write_file(path .. ".part", video:sub(1, 1000000))
        local seen = {}
        assert.equal(path, assert(client:download(task.id, path, { on_progress = function(ev)
          seen[#seen + 1] = ev.bytes
        end })))
        assert.same({ "bytes=" .. (1000000 - OVERLAP) .. "-" }, emu:video_ranges())
        assert.is_true(helper.read_video(path) == video, "the file is not the video")
        assert.is_true(seen[1] >= 1000000 - OVERLAP, "the progress started again from 0")
        assert.same({ "cut.mp4", "cut.mp4.json", "whole.mp4", "whole.mp4.json" }, listing(dir))
      end)

      it("starts again from byte 0 when the .part is another video's, or longer than the video", function()
        local client = new_client()
        local dir = helper.tmpdir()
        local task, video = big_task(client, dir)
        local cases = {
          { "other", string.rep("x", 500000), "bytes=" .. (500000 - OVERLAP) .. "-" },
          { "longer", video .. string.rep("x", 500000), "bytes=" .. (SIZE + 500000 - OVERLAP) .. "-" }, -- 416
          { "longer_by_less_than_the_overlap", video .. "xyz", "bytes=" .. (SIZE + 3 - OVERLAP) .. "-" },
        }
        for _, c in ipairs(cases) do
          emu:clear()
          local path = dir .. "/" .. c[1] .. ".mp4"
          helper.write_file(path .. ".part", c[2])
          assert.equal(path, assert(client:download(task, path)))
          assert.same({ c[3], "none" }, emu:video_ranges(), c[1])
          assert.is_true(helper.read_video(path) == video, c[1] .. ": the file is not the video")
          assert.is_false(exists(path .. ".part"), c[1])
        end
      end)

      it("starts again from byte 0, never writing through it, when the .part is a symbolic link", function()
        local client = new_client()
        local dir = helper.tmpdir()
        local task, video = big_task(client, dir)
        local path, victim = dir .. "/linked.mp4", dir .. "/victim"
        helper.write_file(victim, video:sub(1, 200000))
        assert(helper.execute("ln -s victim " .. shell_quote(path .. ".part")))
        assert.equal(path, assert(client:download(task, path)))
        assert.same({ "none" }, emu:video_ranges())
        assert.is_true(helper.read_video(path) == video, "the file is not the video")
        assert.is_true(helper.read_file(victim) == video:sub(1, 200000), "the link's target was written")
        assert.same({ "linked.mp4", "linked.mp4.json", "victim", "whole.mp4", "whole.mp4.json" }, listing(dir))
      end)
    end)

    it("gives up with a network error and no file once resume_limit resumes are used", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      emu:clear()
      emu:fault { path = "/videos/", drop_after_bytes = 1000, count = 3 }
      local path = dir .. "/limited.mp4"
      local got, err = client:download(task, path, { resume_limit = 1 })
      assert.is_nil(got)
      assert.equal("network", err.kind)
      assert.equal(2, #logged(emu, "/videos/"))
      assert.same({}, listing(dir))
    end)

    it("refreshes an expired URL once by querying the task, then succeeds", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      emu:expire()
      emu:clear()
      local path = dir .. "/refreshed.mp4"
      assert.equal(path, assert(client:download(task, path)))
      assert.equal(SAMPLE, helper.read_video(path))
      local log = emu:requests()
      assert.equal(3, #log)
      assert.truthy(log[1].path:match("^/videos/"))
      assert.equal("/v1/result/" .. task.id, log[2].path)
      assert.truthy(log[3].path:match("^/videos/"))
      assert.are_not.equal(log[1].path, log[3].path) -- a fresh token
    end)

    it("fails with not_found or auth after one refresh when the URL stays expired", function()
      for _, status in ipairs { 404, 403, 410 } do
        emu:clear_faults()
        local client = new_client()
        local dir = helper.tmpdir()
        local task = completed_task(client)
        emu:clear()
        emu:fault { path = "/videos/", status = status, count = 5 }
        local path = dir .. "/gone.mp4"
        local got, err = client:download(task, path)
        assert.is_nil(got)
        assert.equal(status, err.status)
        assert.equal(task.id, err.id)
        assert.equal(2, #logged(emu, "/videos/"), "HTTP " .. status)
        assert.equal(1, #logged(emu, "/v1/result/"), "HTTP " .. status)
        assert.same({}, listing(dir))
        -- an expired video is gone or forbidden, not a fault of the caller's request
        assert.truthy(err.kind == "not_found" or err.kind == "auth",
          "HTTP " .. status .. " on the video gave kind " .. tostring(err.kind))
      end
    end)

    it("refuses a video_url that is not http(s) without a request and without a file", function()
      local client = new_client()
      local dir = helper.tmpdir()
      emu:clear()
      local path = dir .. "/passwd.mp4"
      local got, err = client:download({ id = "video_x_1", video_url = "file:///etc/passwd" }, path)
      assert.is_nil(got)
      assert.equal("invalid_request", err.kind)
      assert.truthy(err.message:find("http", 1, true))
      got, err = client:download("ftp://127.0.0.1/video.mp4", path)
      assert.is_nil(got)
      assert.equal("invalid_request", err.kind)
      assert.same({}, emu:requests())
      assert.same({}, listing(dir))
    end)

    it("gives kind io and leaves nothing behind when path's directory does not exist", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      local path = dir .. "/missing/video.mp4"
      local got, err = client:download(task, path)
      assert.is_nil(got)
      assert.equal("io", err.kind)
      assert.is_false(exists(path))
      assert.is_false(exists(path .. ".part"))
      assert.same({}, listing(dir))
    end)

    it("gives kind io and leaves nothing behind when writing fails (file size limit)", function()
      -- A child process whose files may not grow past 4 KB (ulimit -f, with
      -- SIGXFSZ ignored): every write past it fails with EFBIG, as on a full disk.
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      local path = dir .. "/full.mp4"
      local code = "local sv = require 'starvideos'\n"
        .. "local c = sv.new { base_url = arg[1], api_key = arg[2], retry_backoff = 0.01 }\n"
        .. "local ok, err = c:download(arg[3], arg[4])\n"
        .. "io.write(tostring(ok), '\\t', err and err.kind or '-', '\\t', err and err.message or '-', '\\n')\n"
      local env = "LUA_PATH=" .. shell_quote(helper.lua_path(helper.root) .. ";;")
        .. " LUA_CPATH=" .. shell_quote(helper.cpath .. ";;")
      local script = dir .. "/child.lua"
      local f = assert(io.open(script, "w"))
      f:write(code)
      f:close()
      local p = assert(io.popen("sh -c " .. shell_quote("trap '' XFSZ; ulimit -f 8; exec env " .. env .. " "
        .. helper.lua .. " " .. shell_quote(script) .. " "
        .. shell_quote(emu.url) .. " " .. shell_quote(emu.key) .. " " .. shell_quote(task.video_url) .. " "
        .. shell_quote(path)) .. " 2>&1"))
      local out = p:read("*a")
      p:close()
      local got, kind, msg = out:match("^(%S+)\t(%S+)\t([^\n]*)")
      assert.equal("nil", got, out)
      assert.equal("io", kind, out)
      assert.truthy(msg:lower():find("too large", 1, true), msg)
      assert.is_false(exists(path))
      assert.same({ "child.lua" }, listing(dir)) -- neither path nor path .. ".part"
    end)

    it("never leaves the .part file behind after a success", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      for i = 1, 3 do assert(client:download(task, dir .. "/v" .. i .. ".mp4")) end
      assert.same({ "v1.mp4", "v1.mp4.json", "v2.mp4", "v2.mp4.json", "v3.mp4", "v3.mp4.json" }, listing(dir))
    end)

    it("downloads a 20 MB video with the right size and flat memory", function()
      emu:config { video_size = 20000000 }
      local client = new_client()
      local dir = helper.tmpdir()
      local task = completed_task(client)
      local path = dir .. "/big.mp4"
      local head = require("starvideos.emulator.files").video_parts(5, 20000000)[1] -- ftyp, moov, mdat's head
      collectgarbage()
      local lua_kb, rss_kb = collectgarbage("count"), peak_rss_kb()
      assert.equal(path, assert(client:download(task, path)))
      assert.equal(20000000, helper.video_size(path))
      local f = assert(io.open(path, "rb"))
      assert.equal(head, f:read(#head))
      f:close()
      assert.is_true(collectgarbage("count") - lua_kb < 2048, "the Lua heap grew with the file")
      if rss_kb then
        assert.is_true(peak_rss_kb() - rss_kb < 8 * 1024, "peak memory grew by "
          .. (peak_rss_kb() - rss_kb) .. " kB for a 20 MB file")
      end
      assert.same({ "big.mp4", "big.mp4.json" }, listing(dir))
    end)
  end)

  -------------------------------------------------------------------------
  describe("generate", function()
    it("creates, waits and downloads to out, reporting every stage in order", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local out = dir .. "/gen.mp4"
      local events = {}
      local task, err = client:generate(cat(), { out = out, interval = 0.05, timeout = 20,
        on_progress = function(ev) events[#events + 1] = ev end })
      assert.is_nil(err)
      assert.equal("completed", task.status)
      assert.equal(out, task.path)
      assert.equal(SAMPLE, helper.read_video(out))
      assert.same({ "gen.mp4", "gen.mp4.json" }, listing(dir))
      -- one event shape: status events (created, then each poll), then download progress
      assert.equal("status", events[1].type)
      assert.equal("queued", events[1].status)
      assert.equal("progress", events[#events].type)
      local rank, seen = 0, { status = 0, progress = 0 }
      local order = { status = 1, progress = 2 }
      for _, ev in ipairs(events) do
        local r = order[ev.type]
        assert.is_not_nil(r, "unknown event type " .. tostring(ev.type))
        assert.is_true(r >= rank, ev.type .. " after a later stage")
        rank, seen[ev.type] = r, seen[ev.type] + 1
        assert.equal(task.id, ev.id)
        assert.equal(task.id, ev.task and ev.task.id)
        if ev.type == "progress" then assert.equal(out, ev.path) end
      end
      assert.is_true(seen.status >= 2) -- created, and at least the completed poll
      local statuses = {}
      for _, ev in ipairs(events) do if ev.type == "status" then statuses[#statuses + 1] = ev.status end end
      assert.equal("completed", statuses[#statuses])
      assert.equal(#SAMPLE, events[#events].bytes)
      assert.equal(#SAMPLE, events[#events].total)
    end)

    it("applies its timeout to the whole run and keeps the task id", function()
      emu:config { processing = 30 }
      local client = new_client()
      local dir = helper.tmpdir()
      local t0 = gettime()
      local task, err = client:generate(cat(), { out = dir .. "/never.mp4", interval = 0.1, timeout = 1 })
      local took = gettime() - t0
      assert.is_nil(task)
      assert.equal("timeout", err.kind)
      assert.is_string(err.id)
      assert.equal(err.id, err.task and err.task.id)
      -- not before its second; and given up while the task still ran (its 30 s), at any pace: what it last saw
      assert.is_true(took >= 0.9, "generate gave up after " .. took .. " s with timeout = 1")
      assert.equal("processing", err.task.status)
      assert.equal(1, #logged(emu, "/v1/videos/videos", "POST"))
      assert.same({}, listing(dir))
    end)

    it("returns invalid params as an error without a request", function()
      local client = new_client()
      emu:clear()
      local task, err = client:generate({ model = "videos", prompt = "x", duration = 99 })
      assert.is_nil(task)
      assert.equal("invalid_request", err.kind)
      assert.equal("duration", err.field)
      assert.same({}, emu:requests())
    end)
  end)

  -------------------------------------------------------------------------
  describe("the journal", function()
    it("holds the created line before create returns", function()
      local dir = helper.tmpdir()
      local jpath = dir .. "/journal.jsonl"
      local client = new_client { journal = jpath }
      local task = assert(client:create(cat("journalled")))
      local recs = journal_records(jpath)
      assert.equal(2, #recs)
      -- first the synced pending record, written before the request was sent
      assert.equal("pending", recs[1].event)
      assert.matches("^%x+$", recs[1]["local"])
      assert.equal("videos", recs[1].model)
      assert.is_string(recs[1].prompt_hash)
      assert.equal("created", recs[2].event)
      assert.equal(recs[1]["local"], recs[2]["local"])
      assert.equal(task.id, recs[2].id)
      assert.equal("videos", recs[2].model)
      assert.equal("journalled", recs[2].prompt)
      assert.same({}, assert(client:pending()))
    end)

    it("records statuses as they change and the downloaded path", function()
      local dir = helper.tmpdir()
      local jpath = dir .. "/journal.jsonl"
      local client = new_client { journal = jpath }
      local task = assert(client:create(cat()))
      assert.equal(1, #records_of(journal_records(jpath), "created", task.id))
      task = assert(client:wait(task.id, { interval = 0.05, timeout = 10 }))
      local recs = journal_records(jpath)
      local statuses = records_of(recs, "status", task.id)
      assert.is_true(#statuses >= 1)
      assert.equal("completed", statuses[#statuses].status)
      for i = 2, #statuses do
        assert.are_not.equal(statuses[i - 1].status, statuses[i].status) -- changes only
      end
      local path = dir .. "/video.mp4"
      assert(client:download(task, path))
      local done = records_of(journal_records(jpath), "downloaded", task.id)
      assert.equal(1, #done)
      assert.equal(path, done[1].path)
    end)

    it("lets resume carry every unfinished task to <id>.mp4 and skip downloaded and failed ones", function()
      local dir = helper.tmpdir()
      local out = helper.tmpdir()
      local jpath = dir .. "/journal.jsonl"
      local client = new_client { journal = jpath }
      -- done: downloaded already
      local done = completed_task(client, "done")
      assert(client:download(done, dir .. "/done.mp4"))
      -- failed
      emu:config { outcome = "failed" }
      local failed = assert(client:create(cat("failed")))
      emu:config { outcome = "completed" }
      local _, ferr = client:wait(failed.id, { interval = 0.05, timeout = 10 })
      assert.equal("task_failed", ferr.kind)
      -- unfinished: one completed but not downloaded, one just created
      local ready = completed_task(client, "ready")
      local fresh = assert(client:create(cat("fresh")))
      emu:clear()

      local results, err = new_client { journal = jpath }:resume { dir = out, interval = 0.05, timeout = 20 }
      assert.is_nil(err)
      assert.equal(2, #results)
      assert.equal(ready.id, results[1].task.id)
      assert.equal(fresh.id, results[2].task.id)
      for _, r in ipairs(results) do
        assert.is_nil(r.err)
        assert.equal(out .. "/" .. r.task.id .. ".mp4", r.path)
        assert.equal(SAMPLE, helper.read_video(r.path))
      end
      local names = listing(out)
      local want = { fresh.id .. ".mp4", fresh.id .. ".mp4.json", ready.id .. ".mp4", ready.id .. ".mp4.json" }
      table.sort(want)
      assert.same(want, names)
      assert.same({}, logged(emu, "/v1/result/" .. done.id))
      assert.same({}, logged(emu, "/v1/result/" .. failed.id))
      -- and now both are recorded as downloaded: a second resume has nothing to do
      emu:clear()
      assert.same({}, assert(client:resume { dir = out, interval = 0.05, timeout = 5 }))
      assert.same({}, emu:requests())
    end)

    it("still resumes when the last line is torn", function()
      local dir = helper.tmpdir()
      local jpath = dir .. "/journal.jsonl"
      local client = new_client { journal = jpath }
      local task = assert(client:create(cat("torn")))
      local f = assert(io.open(jpath, "ab"))
      f:write('{"event":"created","id":"video_videos_9')
      f:close()
      local results, err = new_client { journal = jpath }:resume { dir = dir, interval = 0.05, timeout = 20 }
      assert.is_nil(err)
      assert.equal(1, #results)
      assert.equal(task.id, results[1].task.id)
      assert.is_nil(results[1].err)
      assert.equal(dir .. "/" .. task.id .. ".mp4", results[1].path)
      assert.equal(SAMPLE, helper.read_video(results[1].path))
    end)

    it("loses no paid task when the process is killed with SIGKILL mid-wait", function()
      local dir = helper.tmpdir()
      local jpath = dir .. "/journal.jsonl"
      local env = "LUA_PATH=" .. shell_quote(helper.lua_path(helper.root) .. ";;")
        .. " LUA_CPATH=" .. shell_quote(helper.cpath .. ";;")
      local child = helper.spawn("env " .. env .. " " .. shell_quote(helper.lua) .. " "
        .. shell_quote(helper.root .. "/spec/fixtures/killme.lua") .. " "
        .. shell_quote(emu.url) .. " " .. shell_quote(emu.key) .. " " .. shell_quote(jpath))
      local pid = assert(child.pid)
      -- once the journal holds the created line, kill it
      local deadline = gettime() + 10
      local recs
      repeat
        recs = records_of(journal_records(jpath), "created")
        if #recs == 0 then helper.sleep(0.02) end
      until #recs > 0 or gettime() > deadline
      assert.equal(1, #recs, "the child wrote no created line")
      -- it is waiting: its first poll reached the server
      deadline = gettime() + 5
      while #logged(emu, "/v1/result/" .. recs[1].id) == 0 and gettime() < deadline do helper.sleep(0.02) end
      assert(helper.execute("kill -9 " .. pid))
      local ok, how, code = child:close()
      assert.is_falsy(ok)
      assert.equal("signal", how)
      assert.equal(9, code)

      local out = helper.tmpdir()
      local results = assert(new_client { journal = jpath }:resume { dir = out, interval = 0.05, timeout = 20 })
      assert.equal(1, #results)
      assert.is_nil(results[1].err)
      assert.equal(recs[1].id, results[1].task.id)
      assert.equal(out .. "/" .. recs[1].id .. ".mp4", results[1].path)
      assert.equal(SAMPLE, helper.read_video(results[1].path))
    end)
  end)

  -------------------------------------------------------------------------
  describe("wait_all", function()
    it("waits for 30 tasks in input order; a failed task and a bogus id do not stop the others", function()
      local client = new_client { requests_per_second = 100 }
      local list = {}
      for i = 1, 30 do
        if i == 7 then emu:config { outcome = "failed" } end
        list[i] = assert(client:create(cat("task " .. i))).id
        if i == 7 then emu:config { outcome = "completed" } end
      end
      table.insert(list, 12, "video_videos_bogus")
      -- mixed ids and task tables
      list[3] = { id = list[3] }
      local results = client:wait_all(list, { interval = 0.1, timeout = 20 })
      assert.equal(31, #results)
      for i, r in ipairs(results) do
        local id = type(list[i]) == "table" and list[i].id or list[i]
        if i == 7 then
          assert.equal("task_failed", r.err.kind)
          assert.equal(id, r.err.id)
          assert.equal("failed", r.task.status)
        elseif i == 12 then
          assert.equal("not_found", r.err.kind)
          assert.equal(id, r.err.id)
        else
          assert.is_nil(r.err, "slot " .. i .. ": " .. tostring(r.err))
          assert.equal(id, r.task.id)
          assert.equal("completed", r.task.status)
        end
      end
    end)

    it("keeps every poll under requests_per_second across all tasks", function()
      emu:config { processing = 2 }
      local client = new_client { requests_per_second = 5 }
      local ids = {}
      for i = 1, 4 do ids[i] = assert(client:create(cat("rate " .. i))).id end
      emu:clear()
      local t0 = gettime()
      local results = client:wait_all(ids, { interval = 0, timeout = 20 })
      local took = gettime() - t0
      for _, r in ipairs(results) do assert.is_nil(r.err) end
      local polls = #logged(emu, "/v1/result/")
      assert.is_true(took >= 1.5, "the tasks finished too soon to measure: " .. took .. " s")
      -- a budget of 5 per second, plus one second's worth of burst (a slower machine only sends fewer; that the
      -- budget is used, not only kept, is counted on a clock of its own: budget_spec, issue 78, 2)
      assert.is_true(polls <= 5 * took + 5 + 1, polls .. " polls in " .. took .. " s with requests_per_second = 5")
    end)

    it("honours max_connections = 2", function()
      local setup = new_client()
      local ids = {}
      for i = 1, 6 do ids[i] = assert(setup:create(cat("conn " .. i))).id end
      assert(setup:wait_all(ids, { interval = 0.05, timeout = 20 }))
      setup:close()
      -- a fresh client, its request budget no obstacle: only the connections limit
      local client = new_client { max_connections = 2, requests_per_second = 100 }
      emu:clear()
      emu:fault { path = "/v1/result/", delay = 0.5, count = 6 }
      local results = client:wait_all(ids, { interval = 0.05, timeout = 20 })
      for i, r in ipairs(results) do
        assert.is_nil(r.err)
        assert.equal(ids[i], r.task.id)
      end
      local polls = logged(emu, "/v1/result/")
      assert.equal(6, #polls)
      -- six answers held 0.5 s each, two at a time on the server (from each one's arrival to its answer written,
      -- the emulator's clock: at any pace), never more (all at once: six)
      local edges, held, most = {}, 0, 0
      for _, r in ipairs(polls) do
        edges[#edges + 1] = { r.at, 1 }
        edges[#edges + 1] = { r.answered, -1 }
      end
      table.sort(edges, function(x, y) if x[1] ~= y[1] then return x[1] < y[1] end return x[2] < y[2] end)
      for _, e in ipairs(edges) do
        held = held + e[2]
        most = math.max(most, held)
      end
      assert.equal(2, most, "the most polls the server held at once, over 2 connections")
    end)

    it("downloads every task into out_dir", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local ids = {}
      for i = 1, 3 do ids[i] = assert(client:create(cat("dir " .. i))).id end
      local results = client:wait_all(ids, { interval = 0.05, timeout = 20, out_dir = dir })
      for i, r in ipairs(results) do
        assert.is_nil(r.err)
        assert.equal(dir .. "/" .. ids[i] .. ".mp4", r.path)
        assert.equal(SAMPLE, helper.read_video(r.path))
      end
      assert.equal(6, #listing(dir)) -- (each video and its provenance record)
    end)
  end)

  -------------------------------------------------------------------------
  describe("jobs", function()
    -- Step with step(0) like a frame loop until the job is done; returns the
    -- jobs step reported as finished.
    local function frame_loop(client, job, limit)
      local finished, deadline = {}, gettime() + (limit or 10)
      while not job.done and gettime() < deadline do
        for _, j in ipairs(client:step(0)) do finished[#finished + 1] = j end
        helper.sleep(0.01)
      end
      return finished
    end

    it("drives a started job to completed with step(0) and calls on_status", function()
      local client = new_client()
      local seen = {}
      local job = assert(client:start(cat(), { interval = 0.05, timeout = 20,
        on_status = function(j) seen[#seen + 1] = j.status end }))
      assert.is_false(job.done)
      local finished = frame_loop(client, job)
      assert.is_true(job.done)
      assert.equal("completed", job.status)
      assert.is_nil(job.err)
      assert.equal(job, finished[1])
      assert.equal(1, #finished)
      assert.is_string(job.id)
      assert.equal(job.id, job.task.id)
      assert.is_true(#seen >= 1)
      assert.equal("completed", seen[#seen])
      assert.equal(1, #logged(emu, "/v1/videos/videos", "POST"))
    end)

    it("watches an existing id to a downloaded file", function()
      local client = new_client()
      local dir = helper.tmpdir()
      local task = assert(client:create(cat()))
      local path = dir .. "/watched.mp4"
      local job = client:watch(task.id, { interval = 0.05, timeout = 20, out = path })
      frame_loop(client, job)
      assert.is_true(job.done)
      assert.is_nil(job.err)
      assert.equal("completed", job.status)
      assert.equal(path, job.path)
      assert.equal(SAMPLE, helper.read_video(path))
      assert.same({ "watched.mp4", "watched.mp4.json" }, listing(dir))
    end)

    -- (issue 78, 2: the poll held 600 s and the steps read by what came of the poll meanwhile, not 'a step under
    -- 0.5 s, 95% under 0.05 s' of a 2 s answer; how long a step(0) takes is bench/step.lua's)
    it("returns from step(0) at once while the server holds the answer", function()
      local sent, ended = 0, {} -- the polls sent; their exchanges' ends: a response, a retry (a timeout: 30 s)
      local client = new_client { on_event = function(ev)
        if ev.type == "request" then sent = sent + 1 end
        if ev.type == "response" or ev.type == "retry" then ended[#ended + 1] = ev.type end
      end }
      local task = completed_task(client)
      sent, ended = 0, {}
      emu:clear()
      emu:fault { path = "/v1/result/", delay = 600 }
      local job = client:watch(task.id, { interval = 0.05, timeout = 60 })
      -- (its poll sent once the key's budget has a token: the wait before spent this second's)
      local t0 = gettime()
      while sent == 0 and gettime() - t0 < 30 do
        client:step(0)
        helper.sleep(0.01)
      end
      assert.equal(1, sent, "the poll was not sent")
      for _ = 1, 20 do
        client:step(0)
        helper.sleep(0.01)
      end
      -- 20 steps returned, and the one poll still in flight: no step waited for its answer (nor for its timeout)
      assert.same({}, ended)
      local polls = emu:requests()
      assert.equal(1, #polls)
      assert.is_nil(polls[1].answered, "the server answered the poll")
      assert.is_false(job.done)
      job:cancel()
    end)

    it("is harmless to step after the job ended", function()
      local client = new_client()
      local job = assert(client:start(cat(), { interval = 0.05, timeout = 20 }))
      frame_loop(client, job)
      assert.equal("completed", job.status)
      local task = job.task
      emu:clear()
      assert.same({}, client:step(0))
      assert.same({}, client:step(0.1))
      assert.same({}, client:step(0))
      assert.equal("completed", job.status)
      assert.is_true(job.done)
      assert.equal(task, job.task)
      assert.same({}, emu:requests())
    end)

    it("returns nil and an error from start for invalid params, sending nothing", function()
      local client = new_client()
      emu:clear()
      local job, err = client:start { model = "videos", prompt = "x", duration = 99 }
      assert.is_nil(job)
      assert.equal("invalid_request", err.kind)
      assert.equal("duration", err.field)
      assert.same({}, client:step(0))
      assert.same({}, emu:requests())
    end)

    it("lets wait yield through a sleep function inside a coroutine scheduler", function()
      local client = new_client()
      local task = assert(client:create(cat()))
      local sleeps, ticks = 0, 0
      local result, rerr
      local waiter = coroutine.create(function()
        result, rerr = client:wait(task.id, { interval = 0.05, timeout = 10,
          sleep = function(s) sleeps = sleeps + 1; coroutine.yield(s) end })
      end)
      local ticker = coroutine.create(function()
        while true do ticks = ticks + 1; coroutine.yield(0.01) end
      end)
      -- a tiny scheduler: resume each coroutine in turn, sleep the shortest asked
      local deadline = gettime() + 10
      while coroutine.status(waiter) ~= "dead" and gettime() < deadline do
        local ok, s1 = coroutine.resume(waiter)
        assert(ok, s1)
        local _, s2 = coroutine.resume(ticker)
        helper.sleep(math.min(s1 or 0, s2 or 0.01, 0.05))
      end
      assert.equal("dead", coroutine.status(waiter))
      assert.is_nil(rerr)
      assert.equal("completed", result.status)
      assert.is_true(sleeps >= 1)
      assert.is_true(ticks >= 2, "the scheduler's other coroutine never ran")
    end)
  end)
end)
