-- Local files as references (docs/storage.md, storage/refs.lua), what is decided without a network: the form
-- {file = path} in every reference field (the core's validator: it passes as a reference, anything else near it
-- is refused naming its field; the service's side, the emulator, takes URLs only), and the local check a file gets
-- before anything is sent (the preflight's rules on its bytes, read from the disk; a file that is not there, is a
-- folder, cannot be read or is empty refused naming its field), and what must be set for its upload (storage.refs).
-- Every refusal here sends nothing: no create reaches the emulator, and the store named is a port where nothing
-- listens (a request there would be a network error, not the refusal asserted).  The upload itself, against a
-- real S3 server: rocks/s3/spec/hosts/refs_s3_spec.lua.
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local media = require "starvideos.emulator.media"
local starvideos = require "starvideos"
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"

local KEY = "sk-local-refs-3c9"
local BASE = { model = "videos", prompt = "a cat", duration = 5 }

local function with(t)
  local p = {}
  for k, v in pairs(BASE) do p[k] = v end
  for k, v in pairs(t) do p[k] = v end
  return p
end

describe("{file = path} as a reference (validation)", function()
  it("passes in every reference field, alone or among URLs, and in the legacy aliases", function()
    local f = { file = "cat.png" }
    for _, p in ipairs {
      with { referenceImages = { f, "https://x/2.png" } }, with { referenceVideos = { { file = "v.mp4" } } },
      with { referenceAudios = { { file = "a.wav" } } }, with { first_image = f, last_image = { file = "b.png" } },
      with { image = f, lastFrameImage = "https://x/b.png" },
      { model = "starvideos_o3", prompt = "a", referenceImages = { f }, referenceVideos = { { file = "v.mp4" } } },
    } do
      assert.is_true(starvideos.validate(p))
    end
  end)

  it("refuses a table that is not {file = path}, naming the field and saying what it is", function()
    for _, c in ipairs {
      { with { referenceImages = { { file = 7 } } }, "referenceImages[1]",
        "referenceImages[1]: expected an http(s) URL or {file = path}, got a table whose file is not a string" },
      { with { referenceImages = { "https://x/1.png", { file = "a.png", url = "https://x" } } }, "referenceImages[2]",
        "referenceImages[2]: expected an http(s) URL or {file = path}, got a table with fields besides file" },
      { with { first_image = { path = "a.png" }, last_image = { file = "b.png" } }, "first_image",
        "first_image: expected an http(s) URL or {file = path}, got a table that is not a list" },
      { with { referenceVideos = { { file = "" } } }, "referenceVideos[1]",
        'referenceVideos[1]: expected {file = path} with a path, got a local file {file = ""}' },
      { with { referenceAudios = { { file = "a\0b.wav" } } }, "referenceAudios[1]",
        "referenceAudios[1]: expected {file = path} with a path without NUL bytes" },
      { with { referenceImages = { file = "cat.png" } } , "referenceImages",
        "referenceImages: expected a list of http(s) URLs or {file = path}s" },
    } do
      local ok, err = starvideos.validate(c[1])
      assert.is_nil(ok)
      assert.are.same({ "invalid_request", c[2] }, { err.kind, err.field })
      assert.matches(c[3], err.message, 1, true)
    end
  end)

  it("a body as the service gets it takes URLs only: the emulator refuses a file object", function()
    local emu = helper.emulator { key = KEY }
    local body = cjson.encode(with { referenceImages = { { file = "/etc/passwd" } } })
    local out = {}
    local _, code = http.request { url = emu.url .. "/v1/videos/videos", method = "POST",
      source = ltn12.source.string(body), sink = ltn12.sink.table(out),
      headers = { authorization = "Bearer " .. KEY, ["content-type"] = "application/json", ["content-length"] = #body }
    }
    emu:stop()
    assert.are.equal(400, code)
    assert.matches("referenceImages[1]: expected an http(s) URL, got a local file", table.concat(out), 1, true)
  end)
end)

describe("a local file checked before anything is sent", function()
  local emu
  shared_emulator({ key = KEY, queued = 0.05, processing = 0.05 }, function(e) emu = e end)
  local dir, port

  setup(function()
    dir = helper.tmpdir()
    port = helper.refusing_port() -- (nothing listens there: a request would fail as a network error)
    helper.write_file(dir .. "/cat.png", media.png { width = 320, height = 240 })
    helper.write_file(dir .. "/tiny.png", media.png { width = 20, height = 20 })
    helper.write_file(dir .. "/page.png", "<!DOCTYPE html><html><body>not an image</body></html>")
    helper.write_file(dir .. "/empty.png", "")
    helper.write_file(dir .. "/clip.mp4", media.mp4 { seconds = 4, width = 1280, height = 720 })
    helper.write_file(dir .. "/long.mp4", media.mp4 { seconds = 12, width = 1280, height = 720, moov = "end" })
    os.execute("mkdir " .. helper.shell_quote(dir .. "/folder.png") .. " && mkfifo "
      .. helper.shell_quote(dir .. "/fifo.png") .. " && ln -s folder.png " .. helper.shell_quote(dir .. "/link.png"))
  end)

  local function client(opts)
    local o = { api_key = KEY, base_url = emu.url, max_retries = 0, timeout = 5,
      storage = { endpoint = "http://127.0.0.1:" .. port, access_key = "AK", secret_key = "SK",
        refs = "s3://refs-bucket/refs/" } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return starvideos.new(o)
  end

  -- A create naming params, refused: its error; nothing reached the emulator.
  local function refused(c, params, field, words)
    local task, err = c:create(params)
    assert.is_nil(task)
    assert.are.same({ "invalid_request", field }, { err.kind, err.field }, tostring(err))
    assert.matches(words, err.message, 1, true)
    assert.are.same({}, emu:requests())
    return err
  end

  it("refuses a file that is not there, a folder, a FIFO, a link to a folder, one that cannot be read, an empty "
    .. "one, naming its field", function()
    local c = client()
    for _, x in ipairs {
      { "missing.png", "missing.png cannot be read: No such file or directory" },
      { "folder.png", "folder.png is a folder" },
      { "fifo.png", "fifo.png is not a regular file" },
      { "link.png", "link.png is a folder" },
      { "empty.png", "empty.png is empty" },
    } do
      refused(c, with { referenceImages = { "https://x/1.png", { file = dir .. "/" .. x[1] } } },
        "referenceImages[2]", x[2])
    end
    refused(c, with { first_image = { file = "/proc/self/mem" }, last_image = { file = dir .. "/cat.png" } },
      "first_image", "/proc/self/mem cannot be read: ")
    c:close()
  end)

  -- A create naming file, in a process of its own killed after 60 s: its output (the error's kind, field, message),
  -- and the bytes the process read while the create ran (/proc/self/io's rchar: every read(2), a file's or a
  -- device's; the first create's modules loaded before it).
  local CREATE = [[
local starvideos = require "starvideos"
local c = starvideos.new { api_key = arg[1], base_url = arg[2], max_retries = 0, timeout = 5,
  storage = { endpoint = arg[3], access_key = "AK", secret_key = "SK", refs = "s3://refs-bucket/refs/" } }
local function read_bytes()
  local f = assert(io.open("/proc/self/io"))
  local n = tonumber(f:read("*a"):match("rchar: (%d+)"))
  f:close()
  return n
end
local params = { model = "videos", prompt = "a cat", duration = 5, referenceImages = { { file = arg[4] } } }
c:create(params) -- (the modules a create loads, read)
local before = read_bytes()
local _, err = c:create(params)
print(read_bytes() - before, err and err.kind, err and err.field, err)
]]
  local function create_apart(file)
    helper.write_file(dir .. "/create.lua", CREATE)
    local words = { "timeout", "-s", "KILL", "60", helper.lua, dir .. "/create.lua", KEY, emu.url,
      "http://127.0.0.1:" .. port, file }
    for i, w in ipairs(words) do words[i] = helper.shell_quote(w) end
    local out, _, code = helper.capture(helper.CHILD_ENV .. table.concat(words, " ") .. " 2>&1")
    return out, code
  end

  -- (Before, the create had to end within 0.1 s: it took longer on a loaded machine.  Nothing read is what says
  -- nothing was hashed (a hash of /dev/zero reads up to the 200 MB a reference may hold), and the FIFO has no
  -- writer: an open that waits for one never returns, so the process killed at 60 s says so (at 5 s before: a
  -- bound a loaded machine's start of a process came near), at any pace.)
  it("refuses a link to /dev/zero and a link to a FIFO, naming the file and what it leads to (one open, judged by "
    .. "fstat: nothing hashed, fewer than 64 KiB read, no open that waits)", function()
    os.execute("ln -s /dev/zero " .. helper.shell_quote(dir .. "/zero.png") .. " && ln -s fifo.png "
      .. helper.shell_quote(dir .. "/tofifo.png"))
    for _, x in ipairs { { "zero.png", "is not a regular file: it is a device" },
      { "tofifo.png", "is not a regular file: it is a FIFO" } } do
      local out, code = create_apart(dir .. "/" .. x[1])
      assert.are_not.equal(137, code, x[1] .. ": the create was still running after 60 s")
      local read, kind, field, message = out:match("^(%S+)\t(%S+)\t(%S+)\t([^\n]*)")
      assert.are.same({ "invalid_request", "referenceImages[1]" }, { kind, field }, out)
      assert.are.equal("invalid_request: referenceImages[1]: " .. dir .. "/" .. x[1] .. " " .. x[2], message)
      assert.is_true(tonumber(read) < 65536, x[1] .. ": the create read " .. read .. " bytes")
    end
    assert.are.same({}, emu:requests())
  end)

  it("a file replaced after its check (an image by a text) is refused at its upload, never sent; nothing created",
    function()
    local file = dir .. "/swapped.png"
    helper.write_file(file, media.png { width = 320, height = 240 })
    local swapped = 0
    -- the emulator is the store here: it answers the HEAD 404 (not there: put it); a URL reference that cannot be
    -- fetched gives the check a note, said (an event) between the check and the upload: the file is replaced then
    local c = client { storage = { endpoint = emu.url, access_key = "AK", secret_key = "SK",
      refs = "s3://refs-bucket/refs/" }, on_event = function(ev)
        if ev.type == "preflight" and swapped == 0 then
          swapped = 1
          helper.write_file(file, "<!DOCTYPE html><html><body>not an image</body></html>")
        end
      end }
    local task, err = c:create(with { referenceImages = { "http://127.0.0.1:" .. port .. "/x.png", { file = file } } })
    c:close()
    assert.are.equal(1, swapped, "no note came between the check and the upload")
    assert.is_nil(task)
    assert.are.equal("io", err.kind, tostring(err))
    assert.matches(file .. " changed since it was checked", err.message, 1, true)
    for _, r in ipairs(emu:requests()) do
      assert.are_not.equal("PUT", r.method, "the replaced file was sent: " .. cjson.encode(r))
      assert.is_falsy(r.method == "POST" and r.path:find("^/v1/"), "a create was sent")
    end
  end)

  it("judges its bytes by the preflight's rules: text is not media, an image in a video field, an image under "
    .. "min_image_side, a video too long for starvideos_o3 (its moov at its end: its tail read)", function()
    local c = client { min_image_side = 64 }
    refused(c, with { referenceImages = { { file = dir .. "/page.png" } } }, "referenceImages[1]", "html")
    refused(c, with { referenceVideos = { { file = dir .. "/cat.png" } } }, "referenceVideos[1]", "image")
    refused(c, with { referenceImages = { { file = dir .. "/tiny.png" } } }, "referenceImages[1]",
      "the image is 20x20 px; min_image_side refuses a shorter side under 64 px")
    refused(c, { model = "starvideos_o3", prompt = "a", referenceVideos = { { file = dir .. "/long.mp4" } } },
      "referenceVideos[1]", "12")
    c:close()
  end)

  it("checks it with preflight = false too (it is read to be uploaded anyway); the URLs beside it are not read",
    function()
    local c = client { preflight = false }
    local url = "http://127.0.0.1:" .. port .. "/x.png"
    refused(c, with { referenceImages = { url, { file = dir .. "/missing.png" } } }, "referenceImages[2]",
      "No such file or directory")
    c:close()
  end)

  it("a job whose file is being put when its client closes ends once, cancelled, nothing created", function()
    local srv = assert(require("socket").bind("127.0.0.1", 0)) -- (it takes the connection, never answers)
    local _, sport = srv:getsockname()
    local c = client { storage = { endpoint = "http://127.0.0.1:" .. sport, access_key = "AK", secret_key = "SK",
      refs = "s3://refs-bucket/refs/" } }
    local ends = 0
    local job = assert(c:start(with { referenceImages = { { file = dir .. "/cat.png" } } },
      { on_status = function(j) if j.done then ends = ends + 1 end end }))
    for _ = 1, 10 do c:step(0.02) end -- (its HEAD in flight)
    assert.is_false(job.done)
    c:close()
    srv:close()
    assert.are.same({ true, "cancelled", "io", 1 }, { job.done, job.state, job.err.kind, ends })
    assert.are.same({}, emu:requests())
  end)

  it("check passes a good file with no store configured, and uploads nothing", function()
    local c = starvideos.new { api_key = KEY, base_url = emu.url }
    local notes = assert(c:check(with { referenceImages = { { file = dir .. "/cat.png" } },
      referenceVideos = { { file = dir .. "/clip.mp4" } } }))
    assert.are.same({}, notes)
    assert.are.same({}, emu:requests())
    local _, err = c:check(with { referenceImages = { { file = dir .. "/page.png" } } })
    assert.are.equal("referenceImages[1]", err.field)
    c:close()
  end)

  it("a good file with no refs configured: refused naming storage.refs and STARVIDEOS_REFS; no credentials: "
    .. "naming them; a store on a private address the service cannot reach: naming storage.endpoint", function()
    local params = with { referenceImages = { { file = dir .. "/cat.png" } } }
    local c = client { storage = { endpoint = "http://127.0.0.1:" .. port, access_key = "AK", secret_key = "SK" } }
    if os.getenv("STARVIDEOS_REFS") then pending("STARVIDEOS_REFS is set in this environment") return end
    refused(c, params, "storage.refs", "give storage = {refs = \"s3://bucket/prefix/\"} or set STARVIDEOS_REFS")
    c:close()
    if os.getenv("AWS_ACCESS_KEY_ID") then pending("AWS_ACCESS_KEY_ID is set in this environment") return end
    c = client { storage = { endpoint = "http://127.0.0.1:" .. port, refs = "s3://refs-bucket/refs/" } }
    refused(c, params, "storage.access_key", "AWS_ACCESS_KEY_ID")
    c:close()
    c = client { allow_private_media = false }
    refused(c, params, "storage.endpoint", "is not a public address")
    c:close()
  end)
end)
