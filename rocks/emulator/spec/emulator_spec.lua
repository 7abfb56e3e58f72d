-- The emulator itself, spoken to over raw HTTP (LuaSocket).

local socket = require "socket"
local cjson = require "cjson.safe"
local helper = require "spec.helper"

local files = require "starvideos.emulator.files"
local read = require "spec.support.media_read"

local SAMPLE = files.video(5)

-- The big-endian unsigned integer in s[i .. i + n - 1] (string.unpack is 5.3+).
local function uint_be(s, i, n)
  local v = 0
  for k = i, i + n - 1 do v = v * 256 + s:byte(k) end
  return v
end

---------------------------------------------------------------------------
-- a tiny raw HTTP client

local function connect(url)
  local host, port = url:match("^http://([^:/]+):(%d+)")
  local sock = assert(socket.connect(host, tonumber(port)))
  sock:settimeout(10)
  return sock
end

local function send_request(sock, method, path, opts)
  opts = opts or {}
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1" }
  for name, value in pairs(opts.headers or {}) do lines[#lines + 1] = name .. ": " .. value end
  if opts.body then lines[#lines + 1] = "Content-Length: " .. #opts.body end
  assert(sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (opts.body or "")))
end

-- Returns { status, headers, body, err }, or nil, err when no status line came.
local function read_response(sock, head)
  local line, err = sock:receive("*l")
  if not line then return nil, err end
  local res = { status = tonumber(line:match("^HTTP/1%.1 (%d%d%d) ")), headers = {} }
  while true do
    local l = assert(sock:receive("*l"))
    if l == "" then break end
    local name, value = l:match("^([^:]+):%s*(.-)%s*$")
    res.headers[name:lower()] = value
  end
  if res.status == 100 then return read_response(sock, head) end
  local n = head and 0 or tonumber(res.headers["content-length"] or "0")
  if n > 0 then
    local body, berr, partial = sock:receive(n)
    res.body, res.err = body or partial, berr
  else
    res.body = ""
  end
  res.json = cjson.decode(res.body)
  return res
end

-- One request on its own connection. opts: key (sent as Bearer), headers, body, json.
local function request(emu, method, path, opts)
  opts = opts or {}
  local headers = opts.headers or {}
  if opts.key then headers.Authorization = "Bearer " .. opts.key end
  local body = opts.body
  if opts.json then
    body = assert(cjson.encode(opts.json))
    headers["Content-Type"] = "application/json"
  end
  local sock = connect(emu.url)
  send_request(sock, method, path, { headers = headers, body = body })
  local res, err = read_response(sock, method == "HEAD")
  sock:close()
  return res, err
end

local function create(emu, params, path)
  if not path then
    path = params.model == "starvideos_o3" and "/v1/starvideos/videos" or "/v1/videos/videos"
  end
  return request(emu, "POST", path, { key = emu.key, json = params })
end

local function query(emu, id)
  return request(emu, "GET", "/v1/result/" .. id, { key = emu.key })
end

-- Query until the task reaches a final status; the distinct statuses seen, in order.
local function follow(emu, id)
  local seen = {}
  for _ = 1, 500 do
    local res = query(emu, id)
    assert.are.equal(200, res.status)
    local task = res.json
    if seen[#seen] ~= task.status then seen[#seen + 1] = task.status end
    if task.status == "completed" or task.status == "failed" then return seen, task end
    socket.sleep(0.02)
  end
  error("task never finished")
end

local function completed_task(emu, params)
  local res = create(emu, params or { model = "videos", prompt = "a cat", duration = 5 })
  assert.are.equal(200, res.status)
  local _, task = follow(emu, res.json.id)
  assert.are.equal("completed", task.status)
  return task
end

local function path_of(url)
  return (url:match("^http://[^/]+(/.*)$"))
end

---------------------------------------------------------------------------

describe("the emulator", function()
  local emu

  setup(function()
    emu = helper.emulator { queued = 0.1, processing = 0.1 }
  end)

  teardown(function()
    emu:stop()
  end)

  before_each(function()
    emu:reset()
  end)

  it("listens on a port the system chose and says so on its first line", function()
    assert.matches("^http://127%.0%.0%.1:%d+$", emu.url)
    assert.is_true(emu.pid > 0)
  end)

  it("refuses to start without the C core, exit status 2, saying to run make", function()
    -- a checkout with no build/, and no core on the VM's own paths
    local dir = helper.tmpdir()
    assert(helper.execute("cp -R " .. helper.shell_quote(helper.root .. "/bin") .. " "
      .. helper.shell_quote(helper.root .. "/lua") .. " " .. helper.shell_quote(helper.root .. "/rocks") .. " "
      .. helper.shell_quote(dir)))
    local out, ok, code = helper.capture("cd " .. helper.shell_quote(dir) .. " && env -u LUA_CPATH -u LUA_CPATH_5_2 "
      .. "-u LUA_CPATH_5_3 -u LUA_CPATH_5_4 LUA_CPATH='./none/?.so;;' " .. helper.shell_quote(helper.lua)
      .. " bin/starvideos emulator --port 0 --max-lifetime 5 2>&1")
    assert.is_falsy(ok)
    assert.are.equal(2, code)
    assert.matches("starvideos emulator: the C core (starvideos.core) is not built: run make first (", out, 1, true)
    assert.is_nil(out:find("listening", 1, true), out)
  end)

  it("prints usage for --help and refuses an unknown flag with exit status 2", function()
    local bin = helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(helper.root .. "/bin/starvideos")
    local out, help_ok, help_code = helper.capture(bin .. " emulator --help")
    assert.matches("usage: " .. helper.root .. "/bin/starvideos emulator [options]", out, 1, true) -- (as invoked)
    assert.is_true(help_ok)
    assert.are.equal(0, help_code)
    local ok, code = helper.execute(bin .. " emulator --bogus 2>/dev/null")
    assert.is_falsy(ok)
    assert.are.equal(2, code)
    for argv, said in pairs { ["--prot 3"] = "unknown option '--prot' (did you mean '--port'?) (see --help)",
      ["--queued -1"] = "unknown option '-1': a value that starts with - goes as --flag=value (see --help)",
      ["--port"] = "option '--port' requires an argument (see --help)", x = "too many arguments (see --help)" } do
      local said_out, _, c = helper.capture(bin .. " emulator " .. argv .. " 2>&1")
      assert.are.same({ 2, "starvideos emulator: " .. said .. "\n" }, { c, said_out }, argv)
    end
    -- without argparse (Lua's own path, where Debian's is, left out of LUA_PATH): which module, and how to get it
    local none, _, c = helper.capture("LUA_PATH=/nonexistent/?.lua " .. bin .. " emulator --port 0 2>&1")
    assert.are.equal(2, c)
    assert.matches("^starvideos emulator: its command line needs the argparse module %(Debian: apt%-get install "
      .. "lua%-argparse; LuaRocks: luarocks install argparse%): .*module 'argparse' not found", none)
  end)

  describe("authentication", function()
    it("refuses a request without a key with 401 and an authentication_error", function()
      local res = request(emu, "GET", "/v1/result/anything")
      assert.are.equal(401, res.status)
      assert.are.same({ error = { message = "invalid API key", type = "authentication_error" } }, res.json)
    end)

    it("refuses a request with the wrong key with 401", function()
      local res = request(emu, "POST", "/v1/videos/videos",
        { key = "wrong", json = { model = "videos", prompt = "x", duration = 5 } })
      assert.are.equal(401, res.status)
      assert.are.same({}, emu:tasks())
    end)
  end)

  describe("creating a task", function()
    it("accepts starvideos_o3 on /v1/starvideos/videos and answers a queued task", function()
      local res = create(emu, { model = "starvideos_o3", prompt = "a cat" })
      assert.are.equal(200, res.status)
      assert.matches("^application/json", res.headers["content-type"])
      local task = res.json
      assert.matches("^video_starvideos_o3_%d+$", task.id)
      assert.are.equal("video", task.object)
      assert.are.equal("starvideos_o3", task.model)
      assert.are.equal("queued", task.status)
      assert.are.equal(cjson.null, task.error)
      assert.are.equal("number", type(task.created))
    end)

    it("accepts every Videos model on /v1/videos/videos", function()
      for _, model in ipairs { "videos", "videos_fast", "videos_stable", "videos_stable_fast" } do
        local res = create(emu, { model = model, prompt = "a cat", duration = 5, ratio = "16:9" })
        assert.are.equal(200, res.status, model)
        assert.matches("^video_" .. model .. "_%d+$", res.json.id)
      end
    end)

    it("refuses a model sent to the other endpoint with 400 naming model", function()
      local res = create(emu, { model = "videos", prompt = "a cat", duration = 5 }, "/v1/starvideos/videos")
      assert.are.equal(400, res.status)
      assert.are.equal("model", res.json.error.param)
      res = create(emu, { model = "starvideos_o3", prompt = "a cat" }, "/v1/videos/videos")
      assert.are.equal(400, res.status)
      assert.are.equal("model", res.json.error.param)
    end)

    it("refuses a body that is not a JSON object with 400", function()
      for _, body in ipairs { "not json", "[1,2]", "\"text\"", "" } do
        local res = request(emu, "POST", "/v1/videos/videos", { key = emu.key, body = body })
        assert.are.equal(400, res.status, body)
        assert.are.equal("string", type(res.json.error), body)
      end
    end)

    it("refuses what the service's rules refuse, naming the field", function()
      local res = create(emu, { model = "starvideos_o3", prompt = "a cat", duration = 99 })
      assert.are.equal(400, res.status)
      assert.are.equal("duration", res.json.error.param)
      assert.are.equal("string", type(res.json.error.message))
    end)

    it("ignores null values and unknown fields, as the service does", function()
      local res = create(emu, { model = "starvideos_o3", prompt = "a cat", ratio = cjson.null,
        some_future_field = 1, extra = "x" })
      assert.are.equal(200, res.status)
    end)

    it("gives every task its own id", function()
      local ids = {}
      for _ = 1, 10 do
        local res = create(emu, { model = "videos", prompt = "a cat", duration = 5 })
        assert.is_nil(ids[res.json.id])
        ids[res.json.id] = true
      end
    end)

    it("lists the tasks it created on /_emulator/tasks", function()
      local res = create(emu, { model = "videos_fast", prompt = "a dog", duration = 4 })
      local tasks = emu:tasks()
      assert.are.equal(res.json.id, tasks[#tasks].id)
      assert.are.equal("a dog", tasks[#tasks].params.prompt)
    end)
  end)

  describe("querying a task", function()
    it("moves it from queued to processing to completed, with a video_url at the end", function()
      -- (each state 0.5 s, not 0.1: under load a query took longer than 0.1 s and processing went unseen)
      emu:config { queued = 0.5, processing = 0.5 }
      finally(function() emu:config { queued = 0.1, processing = 0.1 } end)
      local res = create(emu, { model = "videos", prompt = "a cat", duration = 7 })
      local first = query(emu, res.json.id).json
      assert.are.equal("queued", first.status)
      assert.are.equal(cjson.null, first.video_url)
      assert.are.equal(cjson.null, first.error)
      local seen, task = follow(emu, res.json.id)
      assert.are.same({ "queued", "processing", "completed" }, seen)
      assert.matches("^" .. emu.url:gsub("%p", "%%%0") .. "/videos/.+%.mp4%?token=%w+$", task.video_url)
      assert.are.equal(7, task.actualDuration)
      assert.are.equal(cjson.null, task.error)
    end)

    it("reports 5 seconds as actualDuration when none was requested", function()
      local task = completed_task(emu, { model = "starvideos_o3", prompt = "a cat" })
      assert.are.equal(5, task.actualDuration)
    end)

    it("ends a task as failed with the configured error when the outcome is failed", function()
      emu:config { outcome = "failed", error = "no luck" }
      local res = create(emu, { model = "videos", prompt = "a cat", duration = 5 })
      local seen, task = follow(emu, res.json.id)
      assert.are.same({ "queued", "processing", "failed" }, seen)
      assert.are.equal("no luck", task.error)
      assert.are.equal(cjson.null, task.video_url)
    end)

    it("keeps the lifecycle a task was created with when the config changes later", function()
      emu:config { queued = 30 }
      local res = create(emu, { model = "videos", prompt = "a cat", duration = 5 })
      emu:config { queued = 0, processing = 0, outcome = "failed" }
      assert.are.equal("queued", query(emu, res.json.id).json.status)
    end)

    it("ends a task on demand (POST /_emulator/end): an hour's task queued, then processing, ends as its outcome; "
      .. "an unknown id is a 404, a body without an id a 400", function()
      emu:config { queued = 3600, processing = 3600 }
      local id = create(emu, { model = "videos", prompt = "a cat", duration = 5 }).json.id
      assert.are.equal("queued", query(emu, id).json.status)
      local ended = emu:finish(id)
      assert.are.same({ id, "completed" }, { ended.id, ended.status })
      local task = query(emu, id).json
      assert.are.equal("completed", task.status)
      assert.matches("%.mp4%?token=%w+$", task.video_url)
      emu:config { queued = 0, outcome = "failed", error = "no luck" }
      local failing = create(emu, { model = "videos", prompt = "a cat", duration = 5 }).json.id
      assert.are.equal("processing", query(emu, failing).json.status)
      emu:finish(failing)
      assert.are.same({ "failed", "no luck" }, { query(emu, failing).json.status, query(emu, failing).json.error })
      assert.are.equal("completed", emu:finish(id).status, "a task ended already stays as it was")
      assert.has_error(function() emu:finish("video_videos_0") end,
        'emulator POST /_emulator/end: HTTP 404 {"error":"no task video_videos_0"}')
      assert.has_error(function() emu:call("POST", "/_emulator/end", {}) end)
    end)

    it("answers 404 for an unknown task", function()
      local res = query(emu, "video_videos_0")
      assert.are.equal(404, res.status)
      assert.are.same({ error = "task not found" }, res.json)
    end)

    it("percent-decodes the id, so an encoded slash is looked up as a slash", function()
      local id = create(emu, { model = "videos", prompt = "a cat", duration = 5 }).json.id
      local encoded = "%" .. string.format("%02X", id:byte(1)) .. id:sub(2)
      assert.are.equal(id, query(emu, encoded).json.id)
      local res = query(emu, "video%2F..%2F" .. id)
      assert.are.equal(404, res.status)
      local log = emu:requests()
      assert.are.equal("/v1/result/video%2F..%2F" .. id, log[#log].path)
    end)
  end)

  describe("serving the video", function()
    it("serves an MP4 of the task's duration whole at video_url, without needing a key", function()
      local task = completed_task(emu)
      local res = request(emu, "GET", path_of(task.video_url))
      assert.are.equal(200, res.status)
      assert.are.equal("video/mp4", res.headers["content-type"])
      assert.are.equal("bytes", res.headers["accept-ranges"])
      assert.are.equal(tostring(#SAMPLE), res.headers["content-length"])
      assert.is_true(res.body == SAMPLE)
    end)

    it("serves a byte range with 206 and Content-Range", function()
      local path = path_of(completed_task(emu).video_url)
      local res = request(emu, "GET", path, { headers = { Range = "bytes=100-199" } })
      assert.are.equal(206, res.status)
      assert.are.equal("bytes 100-199/" .. #SAMPLE, res.headers["content-range"])
      assert.is_true(res.body == SAMPLE:sub(101, 200))
      res = request(emu, "GET", path, { headers = { Range = "bytes=1000-" } })
      assert.are.equal(206, res.status)
      assert.are.equal(("bytes 1000-%d/%d"):format(#SAMPLE - 1, #SAMPLE), res.headers["content-range"])
      assert.is_true(res.body == SAMPLE:sub(1001))
    end)

    it("ranges = false: 200 and the whole file to any Range, Accept-Ranges none (a host that ignores Range)",
    function()
      emu:config { ranges = false }
      local path = path_of(completed_task(emu).video_url)
      local res = request(emu, "GET", path, { headers = { Range = "bytes=100-199" } })
      assert.are.same({ 200, "none", nil, tostring(#SAMPLE) }, { res.status, res.headers["accept-ranges"],
        res.headers["content-range"], res.headers["content-length"] })
      assert.is_true(res.body == SAMPLE)
      assert.has_error(function() emu:config { ranges = 0 } end)
    end)

    it("answers 416 to a range that starts past the end", function()
      local path = path_of(completed_task(emu).video_url)
      local res = request(emu, "GET", path, { headers = { Range = "bytes=" .. #SAMPLE .. "-" } })
      assert.are.equal(416, res.status)
      assert.are.equal("bytes */" .. #SAMPLE, res.headers["content-range"])
    end)

    it("pads the video to video_size in its mdat box", function()
      emu:config { video_size = 1000000 }
      local path = path_of(completed_task(emu).video_url)
      local res = request(emu, "GET", path)
      assert.are.equal(200, res.status)
      assert.are.equal(1000000, #res.body)
      assert.is_true(res.body == files.video(5, 1000000))
      local boxes = read.boxes(res.body)
      assert.are.same({ "ftyp", "moov", "mdat" }, { boxes[1].type, boxes[2].type, boxes[3].type })
      assert.are.equal(1000000, boxes[3].at + boxes[3].size - 1) -- the mdat runs to the end
      res = request(emu, "GET", path, { headers = { Range = "bytes=999990-" } })
      assert.are.equal(206, res.status)
      assert.are.equal(string.rep("\0", 10), res.body)
    end)

    it("pads past 4 GiB with an mdat of 64-bit size", function()
      local size = 2 ^ 32 + 2 ^ 20
      emu:config { video_size = size }
      local path = path_of(completed_task(emu).video_url)
      local res = request(emu, "GET", path, { headers = { Range = "bytes=0-4095" } })
      assert.are.equal(206, res.status)
      assert.are.equal(("bytes 0-4095/%d"):format(size), res.headers["content-range"])
      local boxes, cut = read.boxes(res.body)
      assert.are.same({ "ftyp", "moov" }, { boxes[1].type, boxes[2].type })
      assert.are.equal("mdat", cut.type)
      assert.are.equal(1, uint_be(res.body, cut.at, 4)) -- 1: the size follows the type
      assert.are.equal(16, cut.head)
      assert.are.equal(size, cut.at - 1 + cut.size)
    end)

    it("streams a large video while answering other requests", function()
      emu:config { video_size = 64 * 1024 * 1024 }
      local path = path_of(completed_task(emu).video_url)
      local big = connect(emu.url)
      send_request(big, "GET", path)
      local line = assert(big:receive("*l"))
      assert.matches(" 200 ", line)
      assert.are.equal(404, query(emu, "nothing").status)
      -- answered while the video was still being written (this side reads none of its body yet: it cannot end)
      local streaming
      for _, r in ipairs(emu:requests()) do
        if r.path == path then streaming = r end
      end
      assert.is_nil(assert(streaming, "the video's request in the log").answered, "the video ended before the query")
      local length
      repeat
        local l = assert(big:receive("*l"))
        length = length or tonumber(l:match("^Content%-Length: (%d+)"))
      until l == ""
      assert.are.equal(64 * 1024 * 1024, length)
      local got = 0
      while got < length do
        local chunk, err, partial = big:receive(math.min(1024 * 1024, length - got))
        chunk = chunk or partial
        assert(err == nil or err == "timeout", err)
        got = got + #chunk
      end
      big:close()
      assert.are.equal(length, got)
    end)

    it("answers an expired or invalid token with the configured status", function()
      local task = completed_task(emu)
      local path = path_of(task.video_url)
      assert.are.equal(200, request(emu, "HEAD", path).status)
      emu:expire()
      local res = request(emu, "GET", path)
      assert.are.equal(410, res.status)
      assert.is_table(res.json.error)
      emu:config { expired_status = 403 }
      assert.are.equal(403, request(emu, "GET", path).status)
      assert.are.equal(403, request(emu, "GET", (path:gsub("token=%w+", "token=bogus"))).status)
      local fresh = query(emu, task.id).json
      assert.are_not.equal(task.video_url, fresh.video_url)
      assert.are.equal(200, request(emu, "GET", path_of(fresh.video_url)).status)
    end)
  end)

  describe("the video's length", function()
    -- sizes: too small for the boxes (then the smallest well-formed MP4), small, large
    for _, size in ipairs { 100, 20000, 3000000 } do
      it("is an MP4 of the task's duration at video_size " .. size, function()
        emu:config { video_size = size }
        local task = completed_task(emu, { model = "videos", prompt = "a cat", duration = 10 })
        assert.are.equal(10, task.actualDuration)
        local res = request(emu, "GET", path_of(task.video_url))
        assert.are.equal(200, res.status)
        local mp4 = read.mp4(res.body)
        assert.are.same({ "ftyp", "moov", "mdat" }, mp4.top)
        assert.are.equal(10, mp4.duration)
        assert.are.same({ 1280, 720, 1280, 720 }, { mp4.width, mp4.height, mp4.entry_width, mp4.entry_height })
        local boxes = read.boxes(res.body)
        assert.are.equal(#res.body, boxes[3].at + boxes[3].size - 1)
        -- the boxes and the samples: a byte a macroblock, then 100 P pictures (the bar's and the digit's changes)
        local smallest = #files.video(10, 0)
        assert.is_true(smallest > 3600 and smallest < 16000, smallest)
        assert.are.equal(math.max(size, smallest), #res.body)
      end)
    end

    it("is of the picture size the task's ratio asks (or its model's default ratio), 720 pixels on its short side",
      function()
        for _, case in ipairs { { "videos", "16:9", 1280, 720 }, { "videos", "21:9", 1680, 720 },
          { "videos", "3:4", 720, 960 }, { "videos_fast", "1:1", 720, 720 }, { "starvideos_o3", nil, 720, 1280 } } do
          local task = completed_task(emu, { model = case[1], prompt = "a cat", duration = 4, ratio = case[2] })
          local res = request(emu, "GET", path_of(task.video_url))
          assert.are.equal(200, res.status)
          assert.is_true(res.body == files.video(4, nil, case[3], case[4]), case[1] .. " " .. tostring(case[2]))
          local mp4 = read.mp4(res.body)
          assert.are.same({ case[3], case[4], case[3], case[4] },
            { mp4.width, mp4.height, mp4.entry_width, mp4.entry_height })
        end
      end)
  end)

  describe("reference media at /media/", function()
    it("serves each type with its dimensions, and HEAD gives the length alone", function()
      local res = request(emu, "GET", "/media/a.png?w=1920&h=1080&bytes=300000")
      assert.are.equal(200, res.status)
      assert.are.equal("image/png", res.headers["content-type"])
      assert.are.equal(300000, #res.body)
      assert.are.same({ width = 1920, height = 1080 }, read.png(res.body))
      local head = request(emu, "HEAD", "/media/a.png?w=1920&h=1080&bytes=300000")
      assert.are.equal(200, head.status)
      assert.are.equal("300000", head.headers["content-length"])
      assert.are.equal("", head.body)
      res = request(emu, "GET", "/media/ref?type=mp4&seconds=12&w=720&h=1280&moov=end")
      assert.are.equal("video/mp4", res.headers["content-type"])
      local mp4 = read.mp4(res.body)
      assert.are.same({ "ftyp", "mdat", "moov" }, mp4.top)
      assert.are.same({ 12, 720, 1280 }, { mp4.duration, mp4.width, mp4.height })
      res = request(emu, "GET", "/media/x.jpg?w=640&h=480")
      assert.are.same({ width = 640, height = 480 }, read.jpeg(res.body))
      res = request(emu, "GET", "/media/s?type=wav&seconds=3&rate=8000")
      assert.are.equal("audio/wav", res.headers["content-type"])
      assert.are.equal(3, read.wav(res.body).duration)
    end)

    it("answers a Range with 206 and Content-Range, and 416 past the end", function()
      local whole = request(emu, "GET", "/media/v.mp4?bytes=100000").body
      assert.are.equal(100000, #whole)
      local res = request(emu, "GET", "/media/v.mp4?bytes=100000", { headers = { Range = "bytes=0-65535" } })
      assert.are.equal(206, res.status)
      assert.are.equal("bytes 0-65535/100000", res.headers["content-range"])
      assert.is_true(res.body == whole:sub(1, 65536))
      res = request(emu, "GET", "/media/v.mp4?bytes=100000", { headers = { Range = "bytes=100000-" } })
      assert.are.equal(416, res.status)
      assert.are.equal("bytes */100000", res.headers["content-range"])
    end)

    it("answers the status asked, redirects once with redirect=1, refuses a bad query", function()
      local res = request(emu, "GET", "/media/gone.png?status=404")
      assert.are.equal(404, res.status)
      res = request(emu, "HEAD", "/media/a.png?w=800&redirect=1&h=600")
      assert.are.equal(302, res.status)
      assert.are.equal("/media/a.png?w=800&h=600", res.headers.location)
      res = request(emu, "GET", res.headers.location)
      assert.are.same({ width = 800, height = 600 }, read.png(res.body))
      res = request(emu, "GET", "/media/a?type=bmp")
      assert.are.equal(400, res.status)
      assert.matches("type: expected one of png", res.json.error.message, 1, true)
      assert.are.equal(400, request(emu, "GET", "/media/a.png?bytes=-3").status)
      assert.are.equal(405, request(emu, "POST", "/media/a.png").status)
    end)

    it("logs each request's method, its Range and whether it carried an Authorization header", function()
      request(emu, "HEAD", "/media/r.mp4")
      request(emu, "GET", "/media/r.mp4", { headers = { Range = "bytes=0-99" } })
      request(emu, "GET", "/media/r.mp4", { key = "leaked" })
      local log = emu:requests()
      assert.are.equal(3, #log)
      assert.are.same({ "HEAD", "GET", "GET" }, { log[1].method, log[2].method, log[3].method })
      assert.are.equal("bytes=0-99", log[2].range)
      assert.is_nil(log[1].range)
      assert.are.same({ false, false, true }, { log[1].authorization, log[2].authorization, log[3].authorization })
    end)
  end)

  describe("faults", function()
    it("answers with an injected status and Retry-After, once", function()
      emu:fault { path = "/v1/result/", status = 429, headers = { ["Retry-After"] = "2" } }
      local res = query(emu, "nothing")
      assert.are.equal(429, res.status)
      assert.are.equal("2", res.headers["retry-after"])
      assert.is_table(res.json.error)
      assert.are.equal(404, query(emu, "nothing").status)
    end)

    it("matches by method and path prefix, for the next count requests, first fault first", function()
      emu:fault {
        { method = "POST", status = 503, count = 2 },
        { path = "/v1/result/", status = 502 },
        { path = "/v1/result/", status = 500 },
      }
      assert.are.equal(502, query(emu, "x").status)
      assert.are.equal(503, create(emu, { model = "videos", prompt = "a", duration = 5 }).status)
      assert.are.equal(500, query(emu, "x").status)
      assert.are.equal(503, create(emu, { model = "videos", prompt = "a", duration = 5 }).status)
      assert.are.equal(404, query(emu, "x").status)
      assert.are.equal(200, create(emu, { model = "videos", prompt = "a", duration = 5 }).status)
    end)

    it("delays one answer without holding up a concurrent request", function()
      emu:clear()
      emu:fault { path = "/v1/result/slow", delay = 600 } -- (held longer than any machine's pace)
      local slow = connect(emu.url)
      send_request(slow, "GET", "/v1/result/slow", { headers = { Authorization = "Bearer " .. emu.key } })
      -- the held request has reached the server before the other is sent
      assert.is_true(helper.wait_until(function() return #emu:requests() >= 1 end), "the slow request never came")
      assert.are.equal(404, query(emu, "fast").status)
      -- the other answered while the first is still held: no answer written to it yet, nor any byte of one
      local log = emu:requests()
      assert.are.same({ "/v1/result/slow", "/v1/result/fast" }, { log[1].path, log[2].path })
      assert.is_nil(log[1].answered, "the held request was answered before the other")
      slow:settimeout(0)
      assert.are.same({ nil, "timeout", "" }, { slow:receive(1) })
      slow:close()
    end)

    it("drops the connection without any answer", function()
      emu:fault { path = "/v1/result/", drop = true }
      local res, err = query(emu, "x")
      assert.is_nil(res)
      assert.are.equal("closed", err)
      assert.are.equal(1, #emu:requests())
    end)

    it("cuts a download after drop_after_bytes, having announced the full length", function()
      local path = path_of(completed_task(emu).video_url)
      emu:fault { path = "/videos/", drop_after_bytes = 1000 }
      local res = request(emu, "GET", path)
      assert.are.equal(200, res.status)
      assert.are.equal(tostring(#SAMPLE), res.headers["content-length"])
      assert.are.equal("closed", res.err)
      assert.are.equal(1000, #res.body)
      assert.is_true(res.body == SAMPLE:sub(1, 1000))
    end)

    it("answers a raw body with 200 when no status is given", function()
      emu:fault { path = "/v1/result/", body = '{"id": "trunc' }
      local res = query(emu, "x")
      assert.are.equal(200, res.status)
      assert.are.equal('{"id": "trunc', res.body)
      emu:fault { path = "/v1/result/", status = 502, body = "<html>Bad Gateway</html>" }
      res = query(emu, "x")
      assert.are.equal(502, res.status)
      assert.are.equal("<html>Bad Gateway</html>", res.body)
      assert.matches("^text/html", res.headers["content-type"])
    end)

    it("with after, creates the task for real and then answers with the fault", function()
      local before = #emu:tasks()
      emu:fault { method = "POST", after = true, status = 500 }
      local res = create(emu, { model = "videos", prompt = "a cat", duration = 5 })
      assert.are.equal(500, res.status)
      assert.are.equal(before + 1, #emu:tasks())
      emu:fault { method = "POST", after = true, drop = true }
      assert.is_nil(create(emu, { model = "videos", prompt = "a cat", duration = 5 }))
      assert.are.equal(before + 2, #emu:tasks())
    end)

    it("without after, creates nothing when it answers with the fault", function()
      local before = #emu:tasks()
      emu:fault { method = "POST", status = 500 }
      assert.are.equal(500, create(emu, { model = "videos", prompt = "a cat", duration = 5 }).status)
      assert.are.equal(before, #emu:tasks())
    end)

    it("never touches the control endpoints, and can be cleared", function()
      emu:fault { status = 500, count = 5 }
      assert.are.same({}, emu:requests())
      emu:clear_faults()
      assert.are.equal(404, query(emu, "x").status)
    end)

    it("refuses a fault with an unknown field", function()
      assert.has_error(function() emu:fault { stauts = 500 } end)
    end)

    it("sends Retry-After with retry_after's seconds on each faulted answer, over the headers' one", function()
      emu:fault { path = "/v1/result/", status = 503, retry_after = 2, count = 2, headers = { ["Retry-After"] = "9" } }
      for _ = 1, 2 do
        local res = query(emu, "nothing")
        assert.are.equal(503, res.status)
        assert.are.equal("2", res.headers["retry-after"])
      end
      local res = query(emu, "nothing")
      assert.are.equal(404, res.status)
      assert.is_nil(res.headers["retry-after"])
      -- without status, body or drop: on the real answer
      emu:fault { path = "/v1/result/", retry_after = 0 }
      res = query(emu, "nothing")
      assert.are.equal(404, res.status)
      assert.are.equal("0", res.headers["retry-after"])
    end)

    it("refuses a retry_after that is not whole seconds >= 0, with 400 naming it", function()
      for _, v in ipairs { -1, 1.5, "2", true } do
        local res = request(emu, "POST", "/_emulator/faults", { json = { status = 503, retry_after = v } })
        assert.are.equal(400, res.status)
        assert.matches('fault 1: fault field "retry_after": expected a whole number of seconds >= 0',
          res.json.error, 1, true)
      end
      assert.are.equal("[]", request(emu, "GET", "/_emulator/faults").body)
    end)
  end)

  describe("the request log", function()
    it("records method, raw path, lowercased headers and body of each request, in order", function()
      request(emu, "POST", "/v1/videos/videos?x=1", { key = emu.key, body = '{"model":"videos"}',
        headers = { ["X-Trace"] = "abc" } })
      query(emu, "video%2Fx")
      local log = emu:requests()
      assert.are.equal(2, #log)
      assert.are.equal("POST", log[1].method)
      assert.are.equal("/v1/videos/videos?x=1", log[1].path)
      assert.are.equal("abc", log[1].headers["x-trace"])
      assert.are.equal("Bearer " .. emu.key, log[1].headers.authorization)
      assert.are.equal('{"model":"videos"}', log[1].body)
      assert.are.equal("GET", log[2].method)
      assert.are.equal("/v1/result/video%2Fx", log[2].path)
      assert.are.equal("", log[2].body)
    end)

    it("shows the headers a video download arrived with", function()
      local path = path_of(completed_task(emu).video_url)
      emu:clear()
      request(emu, "GET", path, { headers = { ["User-Agent"] = "probe" } })
      local log = emu:requests()
      assert.are.equal(path, log[1].path)
      assert.are.equal("probe", log[1].headers["user-agent"])
      assert.is_nil(log[1].headers.authorization)
    end)

    it("is emptied by clear", function()
      query(emu, "x")
      emu:clear()
      assert.are.same({}, emu:requests())
    end)
  end)

  describe("HTTP", function()
    it("serves 20 keep-alive connections at once", function()
      local socks = {}
      for i = 1, 20 do socks[i] = connect(emu.url) end
      for round = 1, 3 do
        for i, sock in ipairs(socks) do
          send_request(sock, "GET", "/v1/result/r" .. round .. "c" .. i,
            { headers = { Authorization = "Bearer " .. emu.key } })
        end
        for i = #socks, 1, -1 do
          local res = assert(read_response(socks[i]))
          assert.are.equal(404, res.status)
          assert.is_nil(res.headers.connection)
        end
      end
      for _, sock in ipairs(socks) do sock:close() end
      assert.are.equal(60, #emu:requests())
    end)

    it("closes the connection after answering when asked to", function()
      local sock = connect(emu.url)
      send_request(sock, "GET", "/v1/result/x", { headers = { Connection = "close" } })
      local res = read_response(sock)
      assert.are.equal(401, res.status)
      assert.are.equal("close", res.headers.connection)
      local data, err = sock:receive(1)
      assert.is_nil(data)
      assert.are.equal("closed", err)
      sock:close()
    end)

    it("answers a malformed request with 400 and keeps serving", function()
      local sock = connect(emu.url)
      assert(sock:send("NONSENSE\r\n\r\n"))
      local res = read_response(sock)
      sock:close()
      assert.are.equal(400, res.status)
      assert.are.equal(404, query(emu, "x").status)
    end)

    it("refuses a body over 1 MB with 413", function()
      local res = request(emu, "POST", "/v1/videos/videos",
        { key = emu.key, body = string.rep("x", 1024 * 1024 + 1) })
      assert.are.equal(413, res.status)
    end)

    it("answers 100 Continue before reading a body the client holds back", function()
      local sock = connect(emu.url)
      local body = cjson.encode { model = "videos", prompt = "a cat", duration = 5 }
      assert(sock:send("POST /v1/videos/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. emu.key
        .. "\r\nExpect: 100-continue\r\nContent-Length: " .. #body .. "\r\n\r\n"))
      assert.are.equal("HTTP/1.1 100 Continue", sock:receive("*l"))
      assert.are.equal("", sock:receive("*l"))
      assert(sock:send(body))
      local res = read_response(sock)
      sock:close()
      assert.are.equal(200, res.status)
    end)

    it("accepts a chunked request body", function()
      local sock = connect(emu.url)
      local body = cjson.encode { model = "videos", prompt = "a cat", duration = 5 }
      local a, b = body:sub(1, 10), body:sub(11)
      assert(sock:send("POST /v1/videos/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " .. emu.key
        .. "\r\nTransfer-Encoding: chunked\r\n\r\n"
        .. ("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"):format(#a, a, #b, b)))
      local res = read_response(sock)
      sock:close()
      assert.are.equal(200, res.status)
      assert.are.equal(body, emu:requests()[1].body)
    end)

    it("answers 404 to an unknown path", function()
      assert.are.equal(404, request(emu, "GET", "/nowhere").status)
      assert.are.equal(404, request(emu, "GET", "/v1/nowhere", { key = emu.key }).status)
    end)
  end)

  describe("the config", function()
    it("merges what it is given and returns the whole", function()
      local cfg = emu:config { processing = 0.5, video_size = 123456 }
      assert.are.equal(0.5, cfg.processing)
      assert.are.equal(123456, cfg.video_size)
      assert.are.equal(0.1, cfg.queued)
      assert.are.equal(410, cfg.expired_status)
      cfg = emu:config { video_size = cjson.null }
      assert.are.equal(cjson.null, cfg.video_size)
    end)

    it("refuses an unknown field or a bad value", function()
      assert.has_error(function() emu:config { queud = 1 } end)
      assert.has_error(function() emu:config { expired_status = 500 } end)
      assert.has_error(function() emu:config { outcome = "maybe" } end)
      assert.has_error(function() emu:config { fetch_refs = 1 } end)
    end)
  end)

  describe("fetch_refs", function()
    it("a create fetches each reference URL first (its own /media/ too: it serves while it waits), and what came "
      .. "is in /_emulator/tasks; one not answering 200 fails the task naming it", function()
      emu:config { fetch_refs = true }
      local png = emu.url .. "/media/a.png?w=300&h=200"
      local task = completed_task(emu, { model = "videos", prompt = "a cat", duration = 5,
        referenceImages = { png, emu.url .. "/media/b.png" } })
      local t = request(emu, "GET", "/_emulator/tasks").json
      t = t[#t]
      assert.are.equal(task.id, t.id)
      local body = request(emu, "GET", "/media/a.png?w=300&h=200").body
      assert.are.same({ "referenceImages[1]", png, 200, #body, require("starvideos.core").hash(body) },
        { t.fetched[1].field, t.fetched[1].url, t.fetched[1].status, t.fetched[1].bytes, t.fetched[1].hash })
      assert.are.equal(2, #t.fetched)
      local res = create(emu, { model = "videos", prompt = "a cat", duration = 5,
        referenceImages = { png, emu.url .. "/media/missing.mp4?seconds=oops" } })
      local _, failed = follow(emu, res.json.id)
      assert.are.same({ "failed", "Reference media could not be fetched: referenceImages[2]: HTTP 400" },
        { failed.status, failed.error })
      emu:config { fetch_refs = false }
      assert.are.equal(200, create(emu, { model = "videos", prompt = "a cat", duration = 5,
        referenceImages = { png } }).status)
      t = request(emu, "GET", "/_emulator/tasks").json
      assert.is_nil(t[#t].fetched)
    end)
  end)
end)

describe("the test helper", function()
  it("starts an emulator with the given key and stops it idempotently", function()
    local emu = helper.emulator { key = "other key" }
    assert.are.equal(200, create(emu, { model = "videos", prompt = "x", duration = 5 }).status)
    emu:stop()
    emu:stop()
    assert.is_nil((socket.connect(emu.url:match("//([^:]+):(%d+)"))))
  end)

  it("makes temporary directories and removes them on cleanup", function()
    local dir = helper.tmpdir()
    local f = assert(io.open(dir .. "/x", "w"))
    f:write("hello")
    f:close()
    assert.are.equal("hello", helper.read_file(dir .. "/x"))
    helper.cleanup()
    assert.is_nil(helper.read_file(dir .. "/x"))
  end)
end)

describe("the emulator's command line", function()
  local bin = helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(helper.root .. "/bin/starvideos")

  -- Starts `starvideos emulator ARGS` with env (a shell prefix such as
  -- "STARVIDEOS_API_KEY=x", after the caller's key is cleared) and reads what it
  -- prints on stdout once it accepts: { url =, key =, lines =, proc = }.
  local function start(args, env)
    -- popen, as helper.emulator does (helper.spawn's wrapper on 5.1 reports the kill)
    local pipe = assert(io.popen("echo $$; exec env -u STARVIDEOS_API_KEY " .. (env or "") .. " " .. bin
      .. " emulator --port 0 --max-lifetime 120 " .. args .. " 2>/dev/null"))
    local proc = { pipe = pipe, pid = tonumber(pipe:read("*l")) }
    local first = assert(proc.pipe:read("*l"), "no line from the emulator")
    local lines = { first }
    local url = lines[1]:match("^starvideos emulator listening on (http://127%.0%.0%.1:%d+)$")
    assert(url, lines[1])
    repeat
      lines[#lines + 1] = proc.pipe:read("*l")
    until not lines[#lines] or lines[#lines]:match("^export STARVIDEOS_BASE_URL=")
    if env == nil or not env:find("STARVIDEOS_API_KEY", 1, true) then lines[#lines + 1] = proc.pipe:read("*l") end
    return { url = url, lines = lines, proc = proc }
  end

  -- Stops it (once); returns the rest of what it printed on stdout.
  local function stop(e)
    if e.stopped then return "" end
    e.stopped = true
    helper.execute("kill " .. e.proc.pid .. " 2>/dev/null")
    local rest = e.proc.pipe:read("*a")
    e.proc.pipe:close()
    return rest
  end

  -- the status of a create sent to the emulator e with this key
  local function create_with(e, key)
    return create({ url = e.url, key = key }, { model = "videos", prompt = "x", duration = 5 }).status
  end

  it("prints the key it accepts and the two export lines, which work as printed", function()
    local e = start("--key 'sk emu'")
    finally(function() stop(e) end)
    assert.are.equal("# it accepts the key 'sk emu'; to use it from another shell:", e.lines[2])
    assert.are.equal("export STARVIDEOS_BASE_URL=" .. e.url, e.lines[3])
    assert.are.equal("export STARVIDEOS_API_KEY='sk emu'", e.lines[4])
    -- the lines, run by a shell, give what a client needs: the URL and a key it takes
    local out = helper.capture(e.lines[3] .. "; " .. e.lines[4]
      .. [[; printf '%s\n%s' "$STARVIDEOS_BASE_URL" "$STARVIDEOS_API_KEY"]])
    local url, key = out:match("^([^\n]*)\n(.*)$")
    assert.are.equal(e.url, url)
    assert.are.equal(200, create_with(e, key))
    assert.are.equal(401, create_with(e, "sk other"))
  end)

  it("prints its default key when given none", function()
    local e = start("")
    finally(function() stop(e) end)
    assert.are.equal("# it accepts the key emulator-key (the default; --key KEY picks one); to use it from"
      .. " another shell:", e.lines[2])
    assert.are.equal("export STARVIDEOS_API_KEY=emulator-key", e.lines[4])
    assert.are.equal(200, create_with(e, "emulator-key"))
  end)

  it("accepts the key of $STARVIDEOS_API_KEY without printing it", function()
    local e = start("", "STARVIDEOS_API_KEY=sk-from-env-31337")
    finally(function() stop(e) end)
    for _, l in ipairs(e.lines) do assert.is_nil(l:find("sk-from-env-31337", 1, true), l) end
    assert.are.equal("export STARVIDEOS_BASE_URL=" .. e.url, e.lines[3])
    assert.matches("STARVIDEOS_API_KEY", e.lines[2], 1, true)
    assert.are.equal(200, create_with(e, "sk-from-env-31337"))
    assert.are.equal("", stop(e)) -- nothing more: no export of a key it does not show
  end)

  it("serves videos of --video-size bytes, and keeps that size across a reset", function()
    local e = start("--key k --queued 0 --processing 0 --video-size 250000")
    finally(function() stop(e) end)
    e.key = "k"
    local res = request(e, "GET", path_of(completed_task(e).video_url))
    assert.are.equal(200, res.status)
    assert.are.equal(250000, #res.body)
    assert.is_true(res.body == files.video(5, 250000, nil, nil, "a cat")) -- (in its prompt's colours: the default)
    assert.are.equal(250000, request(e, "GET", "/_emulator/config").json.video_size)
    assert.are.equal(200, request(e, "POST", "/_emulator/reset").status)
    assert.are.equal(250000, request(e, "GET", "/_emulator/config").json.video_size)
  end)

  -- the outcomes of n tasks made now (queued and processing 0), from /_emulator/tasks
  local function outcomes(e, n)
    for _ = 1, n do assert.are.equal(200, create_with(e, e.key)) end
    local list = {}
    for i, t in ipairs(request(e, "GET", "/_emulator/tasks").json) do list[i] = t.outcome end
    return list
  end

  local function count(list, value)
    local n = 0
    for _, v in ipairs(list) do if v == value then n = n + 1 end end
    return n
  end

  it("--outcome failed: every task ends failed, with the config's error; --outcome completed: none", function()
    local e, c
    finally(function() stop(e); if c then stop(c) end end) -- (one finally per test: the last one given runs)
    e = start("--key k --queued 0 --processing 0 --outcome failed")
    e.key = "k"
    assert.are.equal(5, count(outcomes(e, 5), "failed"))
    local res = create(e, { model = "videos", prompt = "x", duration = 5 })
    local _, task = follow(e, res.json.id)
    assert.are.same({ "failed", "Reference image resolution is too low." }, { task.status, task.error })
    assert.are.equal(200, request(e, "POST", "/_emulator/reset").status) -- the flag's outcome stays
    assert.are.equal("failed", request(e, "GET", "/_emulator/config").json.outcome)
    c = start("--key k --queued 0 --processing 0 --outcome completed --fail-rate 0")
    c.key = "k"
    assert.are.equal(8, count(outcomes(c, 8), "completed"))
  end)

  it("--fail-rate P: P = 1 fails every task, P = 0.5 a share, the same tasks for the same --seed", function()
    local started = {}
    finally(function() for _, e in ipairs(started) do stop(e) end end)
    local all = start("--key k --queued 0 --processing 0 --fail-rate 1")
    started[1], all.key = all, "k"
    assert.are.equal(6, count(outcomes(all, 6), "failed"))
    local runs = {}
    for i, seed in ipairs { "7", "7", "8" } do
      local e = start("--key k --queued 0 --processing 0 --fail-rate 0.5 --seed " .. seed)
      started[#started + 1], e.key = e, "k"
      runs[i] = outcomes(e, 30)
      local failed = count(runs[i], "failed")
      assert.is_true(failed >= 5 and failed <= 25, failed .. " of 30 failed with --fail-rate 0.5")
      local cfg = request(e, "GET", "/_emulator/config").json
      assert.are.same({ 0.5, tonumber(seed) }, { cfg.fail_rate, cfg.seed })
    end
    assert.are.same(runs[1], runs[2])
    assert.are_not.same(runs[1], runs[3])
  end)

  it("--failures JSON: its rules from the start (a create refused, another's task failed), kept by a reset; a "
    .. "malformed one refused naming it (exit 2)", function()
    local e = start("--key k --queued 0 --processing 0 " .. helper.shell_quote('--failures=[{"kind":"policy",'
      .. '"at":"create","prompt":"forbidden"},{"kind":"service","prompt":"boom"}]'))
    finally(function() stop(e) end)
    e.key = "k"
    local res = create(e, { model = "videos", prompt = "a forbidden cat", duration = 5 })
    assert.are.equal(400, res.status)
    assert.are.same({ "The prompt was rejected by content moderation.", "prompt", "content_policy_violation" },
      { res.json.error.message, res.json.error.param, res.json.error.type })
    assert.are.equal(200, request(e, "POST", "/_emulator/reset").status)
    res = create(e, { model = "videos", prompt = "boom", duration = 5 })
    local _, task = follow(e, res.json.id)
    assert.are.same({ "failed", "Generation failed due to an internal error, please retry." }, { task.status,
      task.error })
    local out, ok, code = helper.capture(bin .. " emulator --port 0 --max-lifetime 5 "
      .. helper.shell_quote('--failures=[{"kind":"policy","rate":2}]') .. " 2>&1")
    assert.is_nil(ok)
    assert.are.equal(2, code)
    assert.matches("option --failures: expected a list of rules; rule 1.rate: a number from 0 to 1", out, 1, true)
  end)

  it("refuses a bad --fail-rate, --outcome or --seed with a usage error naming it (exit 2)", function()
    for _, c in ipairs {
      { "--fail-rate", "1.5", "a number from 0 to 1" }, { "--fail-rate", "-0.1", "a number from 0 to 1" },
      { "--fail-rate", "half", "a number from 0 to 1" }, { "--outcome", "maybe", "completed or failed" },
      { "--seed", "0", "a whole number from 1 to 2147483647" },
    } do
      local out, ok, code = helper.capture(bin .. " emulator --port 0 --max-lifetime 5 " .. c[1] .. "="
        .. helper.shell_quote(c[2]) .. " 2>&1") -- (=: -0.1 alone reads as a flag)
      assert.is_nil(ok, c[1] .. " " .. c[2])
      assert.are.equal(2, code, c[1] .. " " .. c[2])
      assert.are.equal("starvideos emulator: option " .. c[1] .. ": expected " .. c[3] .. ', got "' .. c[2]
        .. '" (see --help)\n', out)
    end
  end)

  -- Each field the emulator takes, as its refusal of an unknown one lists them,
  -- is in --help and in docs/emulator.md's tables.
  it("documents every field of the config and of a fault in --help and in docs/emulator.md", function()
    local e = start("--key k")
    finally(function() stop(e) end)
    local help = helper.capture(bin .. " emulator --help")
    local docs = assert(helper.read_file(helper.root .. "/docs/emulator.md"))
    for what, body in pairs { config = { nonesuch = 1 }, fault = { { nonesuch = 1 } } } do
      local res = request(e, "POST", "/_emulator/" .. (what == "config" and "config" or "faults"), { json = body })
      assert.are.equal(400, res.status)
      local known = assert(res.json.error:match("%(known: ([%w_, ]+)%)$"), res.json.error)
      -- from the section's heading to the next blank line (or the end)
      local section = assert((help .. "\n\n"):match("\n" .. what .. " fields (.-)\n\n"), help)
      local n = 0
      for name in known:gmatch("[%w_]+") do
        n = n + 1
        assert.matches("\n  " .. name .. " ", section, 1, true)
        assert.matches("\n| `" .. name .. "` |", docs, 1, true)
      end
      assert.is_true(n >= (what == "config" and 10 or 11), known)
    end
    for _, flag in ipairs { "--fail-rate P", "--outcome", "--seed N" } do
      assert.matches("\n  " .. flag, help, 1, true)
    end
  end)

  it("refuses a bad --video-size with a usage error naming it (exit 2)", function()
    for _, v in ipairs { "-1", "abc", "1.5", "1e30", "2199023255552", "" } do
      local out, ok, code = helper.capture(bin .. " emulator --port 0 --max-lifetime 5 --video-size="
        .. helper.shell_quote(v) .. " 2>&1")
      assert.is_nil(ok, v)
      assert.are.equal(2, code, v)
      assert.are.equal('starvideos emulator: option --video-size: expected a whole number of bytes from 0 to '
        .. '1099511627776 (1 TiB), got "' .. v .. '" (see --help)\n', out)
    end
  end)
end)
