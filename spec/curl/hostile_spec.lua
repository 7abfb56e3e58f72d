-- The hostile HTTP server itself (spec/support/hostile.lua), and what needs
-- processes of its own.  What the transports must do facing the hostile
-- server (answers cut short, resets, dribbles, bombs, redirects, .part
-- meddling, links planted at the .part) is one list run on libcurl and nginx
-- alike: spec/support/transport_cases.lua, run by spec/curl/transport_cases_spec.lua.

local socket = require "socket"
local cjson = require "cjson.safe"
local helper = require "spec.helper"
local starvideos = require "starvideos"
local cases = require "spec.support.transport_cases"

local read_file, shell_quote = helper.read_file, helper.shell_quote

local KEY = "k-secret"
local VIDEO = cases.video(cases.VIDEO_SIZE)

-- A shell command succeeded (os.execute answers differently on 5.1).
local function sh(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

describe("a client facing hostile HTTP servers", function()
  local hs, dir

  setup(function()
    hs = helper.hostile()
    dir = helper.tmpdir()
  end)

  teardown(function()
    if hs then hs:stop() end
    helper.cleanup()
  end)

  describe("the hostile server itself", function()
    -- (the fast answer read while the slow one is still unfinished, its socket open: before, a bound of 1 s)
    it("answers another connection while one scenario dribbles", function()
      local slow = assert(socket.tcp())
      assert(slow:connect("127.0.0.1", hs.port))
      assert(slow:send("GET " .. hs:url("dribble"):gsub("^http://[^/]+", "") .. "/x HTTP/1.1\r\nHost: x\r\n\r\n"))
      local fast = assert(socket.tcp())
      fast:settimeout(60)
      assert(fast:connect("127.0.0.1", hs.port))
      assert(fast:send("POST " .. hs:url("ok"):gsub("^http://[^/]+", "")
        .. "/v1/videos/videos HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"))
      local text = fast:receive("*a")
      fast:close()
      slow:settimeout(0)
      local got, err, partial = slow:receive("*a") -- (the dribble: a byte a second, 100 or so)
      slow:close()
      assert.truthy(text and text:find('"id":"task_ok"', 1, true), tostring(text))
      assert.same({ nil, "timeout" }, { got, err }, "the dribble had ended: " .. tostring(got or partial))
    end)

    it("logs what reached it, headers included", function()
      local base = hs:url("ok")
      local client = starvideos.new { base_url = base, api_key = KEY, timeout = 2, max_retries = 0 }
      assert(client:create { model = "videos", prompt = "a cat", duration = 5 })
      client:close()
      local reqs = hs:requests(base)
      assert.equal(1, #reqs)
      assert.equal("POST", reqs[1].method)
      assert.equal(base:gsub("^http://[^/]+", "") .. "/v1/videos/videos", reqs[1].path)
      assert.equal("Bearer " .. KEY, reqs[1].headers.authorization)
    end)
  end)

  describe("the hostile server's download cases", function()
    local read = require "spec.support.media_read"
    local GOOD = require("starvideos.emulator.media").mp4 { seconds = 5, bytes = 100000 }

    -- One raw request: status, headers (lowercased), body (all the server sent after the head).
    local function get(url, method, headers)
      local path = url:gsub("^http://[^/]+", "")
      local c = assert(socket.tcp())
      c:settimeout(5)
      assert(c:connect("127.0.0.1", hs.port))
      local lines = { (method or "GET") .. " " .. path .. " HTTP/1.1", "Host: x" }
      for _, h in ipairs(headers or {}) do lines[#lines + 1] = h end
      assert(c:send(table.concat(lines, "\r\n") .. "\r\n\r\n"))
      local text = c:receive("*a")
      c:close()
      local head, body = text:match("^(.-)\r\n\r\n(.*)$")
      local res = { status = tonumber(head:match("^HTTP/1%.1 (%d+)")), headers = {}, body = body }
      for name, value in head:gmatch("\n([^:\r]+):%s*([^\r]*)") do res.headers[name:lower()] = value end
      return res
    end

    it("answers create and result as a service whose task is 5 s, its video at <base>/v.mp4", function()
      local base = hs:url("dl_duration")
      assert.matches('"id":"task_dl"', get(base .. "/v1/videos/videos", "POST", { "Content-Length: 0" }).body)
      local task = cjson.decode(get(base .. "/v1/result/task_dl").body)
      assert.equal(5, task.actualDuration)
      assert.equal(base .. "/v.mp4", task.video_url)
      local res = get(task.video_url)
      assert.equal(200, res.status)
      assert.equal(9, read.mp4(res.body).duration)
      assert.equal(5, read.mp4(GOOD).duration)
    end)

    it("dl_html: 200 and an HTML page", function()
      local res = get(hs:url("dl_html") .. "/v.mp4")
      assert.equal(200, res.status)
      assert.matches("^text/html", res.headers["content-type"])
      assert.matches("^<!DOCTYPE html>", res.body)
    end)

    it("dl_short: half the MP4 with a Content-Length that matches it", function()
      local res = get(hs:url("dl_short") .. "/v.mp4")
      assert.equal(200, res.status)
      assert.equal("50000", res.headers["content-length"])
      assert.is_true(res.body == GOOD:sub(1, 50000))
    end)

    it("dl_range200: a cut first answer, then 200 and the whole file to a Range request", function()
      local url = hs:url("dl_range200") .. "/v.mp4"
      local res = get(url)
      assert.equal("100000", res.headers["content-length"])
      assert.equal(50000, #res.body)
      res = get(url, "GET", { "Range: bytes=50000-" })
      assert.equal(200, res.status)
      assert.is_nil(res.headers["content-range"])
      assert.is_true(res.body == GOOD)
    end)

    it("dl_overrun: an MP4 whose mdat runs past the end", function()
      local res = get(hs:url("dl_overrun") .. "/v.mp4")
      assert.equal(100000, #res.body)
      local boxes, cut = read.boxes(res.body)
      assert.equal("ftyp", boxes[1].type)
      assert.equal("mdat", cut.type)
      assert.equal(100000 + 64, cut.at - 1 + cut.size)
    end)

    it("dl_*_once: only the first video GET is bad, later ones get the good MP4 with Range", function()
      local url = hs:url("dl_short_once") .. "/v.mp4"
      assert.equal(50000, #get(url).body)
      assert.is_true(get(url).body == GOOD)
      local res = get(url, "GET", { "Range: bytes=99990-" })
      assert.equal(206, res.status)
      assert.equal("bytes 99990-99999/100000", res.headers["content-range"])
      res = get(url, "HEAD")
      assert.equal("100000", res.headers["content-length"])
      assert.equal("", res.body)
    end)
  end)

  describe("download", function()
    local n = 0
    local function target()
      n = n + 1
      return dir .. "/video-" .. n .. ".mp4"
    end

    it("a task table without an id (its video_url, its duration) whose video is not whole: nil and protocol, "
      .. "the same URL asked once more, nothing raised", function()
      local base = hs:url("dl_duration")
      local c = starvideos.new { api_key = KEY, base_url = base, retry_backoff = 0.01 }
      local ok, path, err = pcall(c.download, c, { video_url = base .. "/v.mp4", actualDuration = 5 }, target())
      c:close()
      assert.is_true(ok, tostring(path))
      assert.is_nil(path)
      assert.equal("protocol", err.kind, err.message)
      assert.truthy(err.message:find("the task says 5 s", 1, true), err.message)
      local gets = 0
      for _, r in ipairs(hs:requests(base)) do
        assert.equal("/v.mp4", r.path:sub(-6), r.path) -- (no query of a task: it has no id)
        gets = gets + 1
      end
      assert.equal(2, gets)
    end)

    -- Two processes download one video to one path at once: B's fresh start
    -- replaces A's .part, then B dies mid-body.  A's commit must not rename B's
    -- partial file as A's video: A ends with a clear error, never with a short file.
    -- Each is sent half the video, then held (the gated scenario) until the spec
    -- opens the gate: A is mid-body while B replaces its .part and dies, and ends
    -- only after, however slow the processes (before, the video came in 2 s: at load
    -- 15, A or B could be done before the other had begun).
    it("two processes racing on one .part: A's commit refuses B's partial file with a clear error", function()
      local path = target()
      local part = path .. ".part"
      local base = hs:url("gated_video")
      local script = dir .. "/race-" .. n .. ".lua"
      helper.write_file(script, table.concat({
        'local starvideos = require "starvideos"',
        'local c = starvideos.new { base_url = arg[1], api_key = "k", timeout = 60, max_retries = 0 }',
        'local res, err = c:download(arg[1] .. "/v.mp4", arg[2])',
        'io.write(res and ("ok " .. res) or ("err " .. tostring(err)), "\\n")',
      }, "\n"))
      local cmd = helper.CHILD_ENV .. shell_quote(helper.lua) .. " " .. shell_quote(script) .. " "
        .. shell_quote(base) .. " " .. shell_quote(path) .. " 2>&1"
      local function inode()
        local out = helper.capture("stat -c %i " .. shell_quote(part) .. " 2>/dev/null")
        return out and out:match("%d+")
      end
      local a = helper.spawn(cmd)
      -- A has written some of the half it was sent (and is held there)
      if not helper.wait_until(function() return (helper.file_size(part) or 0) > 0 end, 60) then
        error("A never wrote: " .. a.pipe:read("*a"))
      end
      local a_inode = inode()
      local b = helper.spawn(cmd)
      -- B has replaced A's .part with its own and written into it (held too): B dies there
      assert.is_true(helper.wait_until(function()
        local i = inode()
        return i and i ~= a_inode and (helper.file_size(part) or 0) > 0
      end, 60), "B never replaced the .part")
      assert(sh("kill -9 " .. b.pid))
      b:close()
      assert.equal("open\n", (require("socket.http").request((base:gsub("/s/gated_video/", "/s/open/")) .. "/x")))
      local out = a.pipe:read("*a")
      a:close()
      assert.truthy(out:find("io: download: cannot commit " .. part, 1, true), out)
      assert.truthy(out:find("another file took its name during the download", 1, true), out)
      -- nothing short took the video's name
      local got = read_file(path)
      assert.is_true(got == nil or got == VIDEO, "a file of " .. #(got or "") .. " bytes took the video's name")
    end)
  end)
end)
