-- The studio's tenants and event streams against hostile requests (examples/studio/, docs/studio.md), run as
-- `make studio` runs it (tools/studio.sh: Debian's nginx on 127.0.0.1) against an emulator, over HTTP (curl,
-- LuaSocket; no browser):
--   * the tenant's cookie is signed with the studio's secret (a file of its folder, kept 0600): a cookie of
--     the victim's tenant id alone (or with a made-up signature) is no tenant; its page makes a new one, which
--     sees none of the victim's cards;
--   * a card's key and its video's URL hold no tenant id, and the video is served to its tenant's cookie only;
--   * a browser holds at most 4 event streams (429 past that, the connection closed): 600 of one client
--     leave the page answering; all browsers together hold at most 128, and a stream's end frees its place.

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("the studio's tenants and streams", { "/usr/sbin/nginx", "curl" }) then return end
local helper = require "spec.helper"
local studio_run = require "spec.hosts.support.studio_run"
local cjson = require "cjson.safe"
local socket = require "socket"

local q, str_format = helper.shell_quote, string.format

-- One request (curl) with cookie (studio_tenant's value, or nil): its status, body and Set-Cookie's tenant value.
local function get(url, cookie)
  local out = helper.capture(str_format("curl -s -D - -w '\n%%{http_code}' %s %s",
    cookie and "-H " .. q("Cookie: studio_tenant=" .. cookie) or "", q(url)))
  local text, status = out:match("^(.*)\n(%d+)$")
  return tonumber(status), text, text:match("[Ss]et%-[Cc]ookie: studio_tenant=([^;\r\n]+)")
end

-- A new browser: the cookie its first page was given.
local function browser(url)
  local status, _, cookie = get(url)
  assert(status == 200 and cookie, "the page made no tenant")
  return cookie
end

local function cards_of(url, cookie)
  local status, text = get(url .. "tasks", cookie)
  return status, status == 200 and cjson.decode(text:match("\r\n\r\n(.*)$")).cards or nil
end

-- An event stream asked for each cookie of the list, each connection kept: the status of each, the sockets.
local function streams(port, cookies)
  local status, held = {}, {}
  for i, cookie in ipairs(cookies) do
    local c = assert(socket.tcp())
    c:settimeout(10)
    held[#held + 1] = c
    local line = c:connect("127.0.0.1", port) and c:send(str_format(
      "GET /events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: studio_tenant=%s\r\n\r\n", port, cookie))
      and c:receive("*l")
    status[i] = tonumber(line and line:match("^HTTP/1%.1 (%d+)")) or line or "no answer"
  end
  return status, held
end

local function close(held)
  for _, c in ipairs(held) do c:close() end
end

-- Streams for cookies once each is answered 200, within 30 s: their sockets, or nil.  A try that is refused
-- closes what it opened and waits half a second, so that the studio sees those streams end (it looks every
-- 0.2 s) before the next: a try at once would find its own last try's streams still counted.
local function streams_once_free(port, cookies)
  local deadline = socket.gettime() + 30
  repeat
    local status, held = streams(port, cookies)
    local all = true
    for i = 1, #cookies do all = all and status[i] == 200 end
    if all then return held end
    close(held)
    socket.sleep(0.5)
  until socket.gettime() > deadline
end

local function count(list, value)
  local n = 0
  for _, v in ipairs(list) do n = n + (v == value and 1 or 0) end
  return n
end

-- The rest of a 429's answer: its body, and whether the server closed the connection after it.
local function rest(c)
  local length
  repeat
    local line = assert(c:receive("*l"))
    length = length or tonumber(line:match("^[Cc]ontent%-[Ll]ength: (%d+)"))
  until line == ""
  local body = c:receive(length)
  local _, err = c:receive(1)
  return body, err == "closed"
end

local function rep(v, n)
  local t = {}
  for i = 1, n do t[i] = v end
  return t
end

describe("the studio's tenants and streams", function()
  local emu, dir, port, proc, url, victim, card

  lazy_setup(function()
    emu = helper.emulator { key = "sk-studio-guard-FAKE", queued = 0.2, processing = 0.5 }
    dir = helper.tmpdir()
    -- started as root, the studio's workers are nobody: they must reach its folder
    assert(helper.execute("chmod 755 " .. q(dir)))
    -- a secret of an earlier studio, readable by all: the studio keeps it to its owner
    assert(helper.execute("mkdir -p " .. q(dir .. "/studio")))
    helper.write_file(dir .. "/studio/secret", string.rep("5e", 32))
    assert(helper.execute("chmod 644 " .. q(dir .. "/studio/secret")))
    port = helper.free_ports(1)[1]
    proc, url = studio_run.start(dir, port, emu)
    victim = browser(url)
    local status, answer = studio_run.post(url, victim, '{"model":"videos","prompt":"a heron at dawn","duration":5}')
    assert(status == 202, answer)
    local cards
    assert(helper.wait_until(function()
      local _, list = cards_of(url, victim)
      cards = list
      return list and list[1] and list[1].state == "saved"
    end, 30), "the victim's card was not saved: " .. cjson.encode(cards))
    card = cards[1]
  end)

  lazy_teardown(function()
    if proc then studio_run.stop(proc, port) end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("takes a forged or unsigned cookie for no tenant: its page makes a new one, which sees none of the cards",
    function()
    local id = victim:match("^(%x+)")
    assert.equal(40, #id)
    for _, forged in ipairs { id, id .. "." .. string.rep("0", 64), id .. "." .. id .. id:sub(1, 24) } do
      assert.equal(403, (cards_of(url, forged)))
      local status, _, given = get(url, forged)
      assert.equal(200, status)
      assert.truthy(given, "the page of a forged cookie sets a new one")
      assert.are_not.equal(id, given:match("^(%x+)"))
      local _, seen = cards_of(url, given)
      assert.same({}, seen)
    end
    local _, own = cards_of(url, victim)
    assert.equal(card.key, own[1].key)
  end)

  it("keeps its secret to its owner: 0600, even one made readable by all", function()
    assert.equal("600", (helper.capture("stat -c %a " .. q(dir .. "/studio/secret")):gsub("%s+$", "")))
  end)

  it("does not start with a secret it cannot sign with, and says why", function()
    local bad = dir .. "/bad"
    assert(helper.execute("mkdir -p " .. q(bad)))
    helper.write_file(bad .. "/secret", "whsec_" .. string.rep("!", 40))
    local out = helper.capture(str_format("cd %s && %s STUDIO_DIR=%s STUDIO_PORT=%d STARVIDEOS_BASE_URL=%s "
      .. "STARVIDEOS_API_KEY=%s timeout 30 sh tools/studio.sh 2>&1", q(nginx_run.ROOT), helper.UNINSTRUMENTED, q(bad),
      helper.free_ports(1)[1], q(emu.url), q(emu.key)))
    assert.matches("the secret at " .. bad .. "/secret cannot sign: secret: the part after whsec_ is not base64", out,
      1, true)
  end)

  it("names a card and its video with no tenant id, and serves the video to its tenant's cookie only", function()
    local id = victim:match("^(%x+)")
    assert.is_nil(card.key:find(id, 1, true))
    assert.is_nil(card.video:find(id, 1, true))
    assert.equal(200, (get(url .. card.video:sub(2), victim)))
    assert.equal(404, (get(url .. card.video:sub(2), browser(url))))
    assert.equal(404, (get(url .. card.video:sub(2))))
    assert.equal(404, (get(url .. card.video:sub(2), id)))
  end)

  it("holds at most 4 event streams a browser: 600 of one client refused past 4, closed, the page answering",
    function()
    local status, held = streams(port, rep(victim, 600))
    local ok, body, closed = pcall(function()
      assert.equal(4, count(status, 200))
      assert.equal(596, count(status, 429))
      return rest(held[5])
    end)
    local page = ok and get(url)
    close(held)
    assert(ok, body)
    assert.matches("at most 4 event streams a browser", cjson.decode(body).error)
    assert.is_true(closed)
    assert.equal(200, page)
    assert.is_nil((helper.read_file(dir .. "/studio/error.log") or ""):find("worker_connections", 1, true))
  end)

  it("holds at most 128 event streams in all, and a stream's end frees its place", function()
    -- the victim's 4 streams of the case before are let go: 4 of its own open again
    local held = streams_once_free(port, rep(victim, 4))
    assert.truthy(held, "the victim's 4 streams were not let go within 30 s")
    local cookies = {}
    for _ = 1, 39 do
      local c = browser(url)
      for _ = 1, 4 do cookies[#cookies + 1] = c end
    end
    local more, also = streams(port, cookies)
    for _, c in ipairs(also) do held[#held + 1] = c end
    local page = get(url)
    close(held)
    assert.equal(124, count(more, 200))
    assert.equal(32, count(more, 429))
    assert.equal(200, page)
    local fresh = browser(url)
    local one = streams_once_free(port, { fresh })
    assert.truthy(one, "the streams closed freed no place within 30 s")
    close(one)
  end)
end)
