-- The studio (examples/studio/, docs/studio.md) run as `make studio` runs it (tools/studio.sh: Debian's nginx
-- on 127.0.0.1, the library's C modules built for LuaJIT), against the emulator this spec starts with a known
-- fake key, and used in a real browser: Debian's chromium driven by playwright-core from spec/npm
-- (spec/hosts/support/studio_browser.js, never a downloaded browser).
--
-- A prompt typed and sent; its card moving through its states to saved; the video playing in the card
-- (currentTime advancing) and seeking (nginx answers ranges); a reload and a second tab showing the card,
-- another browser (another tenant) not; a prompt too long for videos_fast refused with the library's own
-- message and 0 creates at the emulator; the page's own create replayed without its token (and with a token
-- made up) refused, 0 creates; a foreign Host refused (421); then nginx stopped while a second task runs and
-- started again: both cards shown, the second carried to its video, and 0 new creates at the emulator.  The
-- API key is in no answer the browser got (headers and bodies), nor in the event stream.  Prints the
-- screenshot's path, the page's size, the time from the task's completion at the emulator to its video
-- playing (against the library's own notice lag, the journal's `within`) and the time to the URL.

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("the studio in a browser", { "/usr/sbin/nginx", "curl" }) then return end
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local socket = require "socket"
local studio_run = require "spec.hosts.support.studio_run"
local starvideos = require "starvideos"

local q, str_format = helper.shell_quote, string.format
local ROOT = nginx_run.ROOT
local KEY = "sk-studio-FAKE-7d1e0c9b4a55f2e8"

if studio_run.missing() then
  describe("the studio in a browser", function() pending(studio_run.missing()) end)
  return
end
local browser = studio_run.browser

-- Every place of the browser's answers holding the key.
local function key_seen(answers)
  local where = {}
  for _, a in ipairs(answers) do
    local text = cjson.encode(a.headers or {}) .. (a.body or "")
    if text:find(KEY, 1, true) then where[#where + 1] = a.url end
  end
  return where
end

-- The raw answer's status line of one request to the studio.
local function raw(port, text)
  local c = assert(socket.tcp())
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  assert(c:send(text))
  local line = c:receive("*l")
  c:close()
  return line
end

describe("the studio in a browser", function()
  local emu, dir, port, proc, url, first, started
  local shot

  lazy_setup(function()
    emu = helper.emulator { key = KEY, queued = 1, processing = 2 }
    dir = helper.tmpdir()
    -- started as root, the studio's workers are nobody: they must reach its folder
    assert(helper.execute("chmod 755 " .. q(dir)))
    port = helper.free_ports(1)[1]
    proc, url, started = studio_run.start(dir, port, emu)
    shot = dir .. "/studio.png"
  end)

  lazy_teardown(function()
    if proc then studio_run.stop(proc, port) end
    if emu then emu:stop() end
    -- the screenshot is kept where the output says
    if shot and helper.exists(shot) then
      helper.execute(str_format("cp %s /tmp/starvideos-studio.png", q(shot)))
      print("studio screenshot: /tmp/starvideos-studio.png")
    end
    helper.cleanup()
  end)

  it("sends a prompt, moves its card to saved, shows it on reload and in a second tab, not in another browser",
    function()
    first = browser { phase = "first", url = url, state = dir .. "/browser.json", screenshot = shot,
      prompt = "A cute kitten playing on a sunlit meadow, cinematic lens", long_model = "videos_fast",
      long_prompt = string.rep("k", 1501) }
    assert.is_true(first.token_sent)
    -- nothing refused by the CSP, no script error (the refused creates' 400s are the only answers the console names)
    for _, e in ipairs(first.console_errors) do assert.matches("status of 400 .*/tasks%)$", e) end
    assert.same({ "starvideos_o3", "videos", "videos_fast", "videos_stable", "videos_stable_fast" }, first.models)
    -- its states as they changed, in order, to saved (the first events may come before the page looks)
    local states = table.concat(first.states, " ")
    assert.matches("processing.*saved$", states)
    assert.truthy(states:find("queued", 1, true) or states:find("creating", 1, true), states)
    assert.equal(1, emu:creates())
    assert.matches("cost%s+0%.40", first.card_text)
    assert.equal(first.key, first.after_reload[1].key)
    assert.equal("saved", first.after_reload[1].state)
    assert.equal(first.key, first.second_tab[1].key)
    assert.same({}, first.other_browser)
    assert.equal(404, first.other_video_status)
  end)

  it("plays the video in its card, and seeks in it (ranges)", function()
    assert.truthy(first, "the first case ran")
    assert.is_nil(first.play.failure, cjson.encode(first.play))
    assert.is_nil(first.play.error)
    assert.is_true(first.play.t2 > first.play.t1, str_format("currentTime %s then %s", first.play.t1, first.play.t2))
    assert.is_true(math.abs(first.play.seek - math.min(1, first.play.duration / 2)) < 0.2)
    local ranges = 0
    for _, a in ipairs(first.answers) do
      if a.url:find("/videos/", 1, true) and a.status == 206 then ranges = ranges + 1 end
    end
    assert.is_true(ranges > 0, "no 206 for the video")
    -- the figures
    local task
    for _, t in ipairs(emu:tasks()) do task = t end
    local within
    for line in helper.whole_lines(dir .. "/studio/tasks.jsonl") do
      local r = cjson.decode(line)
      if r and r.id == task.id and r.status == "completed" then within = r.within end
    end
    local size = 0
    for _, f in ipairs { "index.html", "studio.css", "studio.js" } do
      size = size + helper.file_size(ROOT .. "/examples/studio/static/" .. f)
    end
    print(str_format("studio: URL printed %.2f s after tools/studio.sh started; page %d bytes (HTML+CSS+JS); "
      .. "completion at the emulator to the video playing %.2f s (the library's notice lag: %.2f s)", started, size,
      first.play.at / 1000 - task.ends_at, within or -1))
  end)

  it("refuses a prompt too long, and a first frame without its last, with the library's messages: nothing sent",
    function()
    assert.truthy(first, "the first case ran")
    assert.equal("prompt: expected at most 1500 characters on videos_fast, got 1501", first.long_error)
    assert.matches("^last_image: ", first.frame_error)
    assert.equal(1, first.cards_after_long)
    -- videos_fast takes no reference audio (starvideos.models: max_audios 0): its box is not shown; videos' is
    assert.equal(0, starvideos.models.videos_fast.max_audios)
    assert.is_false(first.audios_long_model)
    assert.is_true(first.audios_videos)
    assert.equal(1, emu:creates())
  end)

  it("refuses the page's own create replayed without its token, or with one made up", function()
    assert.truthy(first, "the first case ran")
    assert.equal(403, first.replay_status)
    assert.equal(403, first.forged_status)
    assert.equal(1, emu:creates())
  end)

  it("takes reference media by URL only: a file of the server's, or extra, refused before validation", function()
    assert.truthy(first, "the first case ran")
    local cookie = cjson.decode(helper.read_file(dir .. "/browser.json")).cookies[1].value
    local base = '"model":"videos","prompt":"a cat","duration":5'
    for body, says in pairs {
      ["{" .. base .. ',"referenceImages":[{"file":"/etc/passwd"}]}'] = "referenceImages%[1%]: expected a URL",
      ["{" .. base .. ',"first_image":{"file":"/etc/passwd"},"last_image":"https://x.test/b.png"}'] =
        "first_image: expected a URL",
      ["{" .. base .. ',"extra":{"seed":1}}'] = "extra: not taken by the studio",
      ["[1, 2]"] = "%[1%]: unknown field",
    } do
      local status, answer = studio_run.post(url, cookie, body)
      assert.equal(400, status, answer)
      assert.matches(says, cjson.decode(answer).error)
    end
    assert.equal(1, emu:creates())
  end)

  it("refuses a Host it does not serve, and answers its own", function()
    assert.equal("HTTP/1.1 421 Misdirected Request",
      raw(port, str_format("GET / HTTP/1.1\r\nHost: rebound.example:%d\r\nConnection: close\r\n\r\n", port)))
    assert.equal("HTTP/1.1 421 Misdirected Request",
      raw(port, str_format("GET /events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", port + 1)))
    assert.equal("HTTP/1.1 200 OK",
      raw(port, str_format("GET / HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n", port)))
  end)

  it("puts the API key in no answer: headers, bodies, the event stream", function()
    assert.truthy(first, "the first case ran")
    assert.is_true(#first.answers > 5)
    assert.same({}, key_seen(first.answers))
    local cookie = cjson.decode(helper.read_file(dir .. "/browser.json")).cookies[1]
    local stream = helper.capture(str_format("curl -s -i -m 2 -N -H %s %s", q("Cookie: " .. cookie.name .. "="
      .. cookie.value), q(url .. "events")))
    assert.matches("\nid: %d+\nevent: saved\ndata: {", stream) -- (the library's stream: the first case's run)
    assert.is_nil(stream:find(KEY, 1, true))
  end)

  it("shows the cards after nginx restarts, carries an unfinished task to its video, and pays nothing again",
    function()
    assert.truthy(first, "the first case ran")
    emu:config { processing = 6 }
    local cookie = cjson.decode(helper.read_file(dir .. "/browser.json")).cookies[1]
    local status, answer = studio_run.post(url, cookie.value,
      '{"model":"videos","prompt":"A fox in the snow","duration":5}')
    assert.equal(202, status, answer)
    local second = assert(cjson.decode(answer), answer).key
    assert.truthy(helper.wait_until(function() return emu:creates() == 2 end, 10))
    assert.is_true(studio_run.stop(proc, port))
    proc = studio_run.start(dir, port, emu)
    local again = browser { phase = "again", url = url, state = dir .. "/browser.json", key = second }
    local keys = {}
    for _, c in ipairs(again.cards) do keys[#keys + 1] = c.key end
    assert.same({ second, first.key }, keys)
    assert.equal(2, emu:creates())
    assert.same({}, key_seen(again.answers))
    assert.is_nil(again.play.failure, cjson.encode(again.play))
    assert.is_true(again.play.t2 > again.play.t1)
  end)

  it("caps each browser's creates at STUDIO_TENANT_LIMIT: the third of 2/60 refused on its card, not sent", function()
    local jar = dir .. "/jar"
    local page = helper.capture(str_format("curl -s -c %s %s", q(jar), q(url)))
    local token = page:match('name="studio%-token" content="([^"]+)"')
    local before = emu:creates()
    for i = 1, 3 do
      local answer = helper.capture(str_format("curl -s -b %s -H %s -H 'Content-Type: application/json' -d %s %s",
        q(jar), q("X-Studio-Token: " .. token),
        q('{"model":"videos","prompt":"A heron, take ' .. i .. '","duration":5}'), q(url .. "tasks")))
      assert.truthy(answer:find('"key"', 1, true), answer)
    end
    local cards
    assert.truthy(helper.wait_until(function()
      cards = cjson.decode((helper.capture(str_format("curl -s -b %s %s", q(jar), q(url .. "tasks"))))).cards
      local settled = 0
      for _, c in ipairs(cards) do
        if c.state == "failed" or c.state == "queued" or c.state == "processing" or c.state == "saved" then
          settled = settled + 1
        end
      end
      return settled == 3
    end, 20), cjson.encode(cards))
    local refused = {}
    for _, c in ipairs(cards) do
      if c.state == "failed" then refused[#refused + 1] = c.error end
    end
    assert.equal(1, #refused, cjson.encode(cards))
    assert.matches("tenant_limit", refused[1])
    assert.equal(before + 2, emu:creates())
  end)
end)
