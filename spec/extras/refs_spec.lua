-- References that can work (issue 37, item 5): what the preflight refuses before a create
-- is paid for, against the emulator's log (no create where refused, and the media requests
-- that reached it), with the time each reference took printed.  Text behind a media URL;
-- an image's shorter side (min_image_side, a note under image_side_note); a reference on a
-- non-public address (allow_private_media: its host before any request, a name at connect
-- time; a name to 10.0.0.1 and a redirect to 169.254.169.254 need a first hop on a public
-- address: spec/hosts/refs_netns_spec.lua); a host that never answers: one timeout.

local socket = require "socket"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"
local core = require "starvideos.core"

local KEY = "sk-refs-spec-7a41"
local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

local emu
shared_emulator({ key = KEY, queued = 0.05, processing = 0.05 }, function(e) emu = e end)

local function client(opts)
  local o = { api_key = KEY, base_url = emu.url, max_retries = 0, timeout = 5 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local notes = {}
  o.on_event = function(ev) if ev.type == "preflight" then notes[#notes + 1] = ev end end
  return starvideos.new(o), notes
end

local function media_requests()
  local n = 0
  for _, r in ipairs(emu:requests()) do if r.path:find("^/media/") then n = n + 1 end end
  return n
end

-- client:create with these reference images: task, err, the seconds its preflight and
-- create took (printed; the references of one create are read at once).
local function create(c, images, what)
  local p = { referenceImages = images }
  for k, v in pairs(PARAMS) do p[k] = v end
  local t0 = core.now()
  local task, err = c:create(p)
  local took = core.now() - t0
  print(string.format("  %-44s %6.3f s for %d reference(s) at once: %s", what, took, #images,
    task and "created" or err.kind .. " " .. tostring(err.field)))
  return task, err, took
end

local function refused(c, images, what, match)
  local before = emu:creates()
  local task, err, took = create(c, images, what)
  assert.is_nil(task, what .. ": a create was sent")
  assert.same({ "invalid_request", "referenceImages[1]" }, { err.kind, err.field }, tostring(err))
  assert.truthy(err.message:find(match, 1, true), err.message)
  assert.equal(before, emu:creates(), what .. ": a create reached the emulator")
  return err, took
end

describe("a reference that cannot work", function()
  it("is refused when it holds text behind a media name: an HTML page, JSON, plain text", function()
    local c = starvideos.new { api_key = KEY, base_url = emu.url }
    for name, body in pairs { ["page.png"] = "<!DOCTYPE html><html><body>Not found</body></html>",
      ["err.png"] = '{"error": "no such object"}', ["note.png"] = "hello, this is not a picture" } do
      emu:fault { path = "/media/" .. name, body = body, count = 2 }
      local kind = name == "page.png" and "html" or name == "err.png" and "json" or "text"
      refused(c, { emu.url .. "/media/" .. name }, "text behind " .. name, "the URL holds text (" .. kind .. ")")
    end
    assert.equal(6, media_requests()) -- each read (HEAD, GET), then refused
    c:close()
  end)

  it("is refused as a 1x1 PNG with min_image_side = 64, and is a note without it", function()
    local tiny = emu.url .. "/media/tiny.png?w=1&h=1"
    local c = client { min_image_side = 64 }
    refused(c, { tiny }, "1x1 PNG, min_image_side = 64", "1x1 px; min_image_side refuses a shorter side under 64 px")
    c:close()
    local notes
    c, notes = client()
    assert.is_table((create(c, { tiny, emu.url .. "/media/ok.png?w=64&h=64" }, "1x1 PNG and 64x64 PNG, no rule")))
    assert.equal(1, emu:creates())
    assert.equal(1, #notes, "one note: the 1x1 image's")
    assert.equal("referenceImages[1]", notes[1].field)
    assert.truthy(notes[1].message:find("under 64 px: the service may refuse it", 1, true), notes[1].message)
    c:close()
  end)

  it("is refused before any request on 127.0.0.1 or localhost with allow_private_media = false", function()
    local c = client { allow_private_media = false }
    local port = emu.url:match(":(%d+)$")
    refused(c, { emu.url .. "/media/a.png" }, "127.0.0.1, allow_private_media = false",
      "127.0.0.1 is a loopback address, which the service cannot fetch")
    refused(c, { "http://localhost:" .. port .. "/media/a.png" }, "localhost", "localhost is a loopback name")
    refused(c, { "http://[::1]:" .. port .. "/media/a.png" }, "[::1]", "is a loopback address")
    assert.equal(0, media_requests(), "a private reference was read")
    c:close()
    c = client { allow_private_media = true } -- read, and created
    assert.is_table((create(c, { emu.url .. "/media/a.png" }, "127.0.0.1, allow_private_media = true")))
    assert.same({ 2, 1 }, { media_requests(), emu:creates() })
    c:close()
  end)

  it("is refused when connecting: a name that resolves to a non-public address (this machine's name)", function()
    local name = socket.dns.gethostname()
    local ip = name and socket.dns.toip(name)
    if not (ip and core.private_host(ip) and not core.private_host(name)) then
      return pending("this machine's name (" .. tostring(name) .. ") does not resolve to a non-public address")
    end
    local url = "http://" .. name .. ":" .. emu.url:match(":(%d+)$") .. "/media/a.png"
    -- a client of the same key that allows it reads it first: its kept connection is not reused
    local open = client { allow_private_media = true }
    assert.is_table((create(open, { url }, name .. ", allow_private_media = true")))
    local c = client { allow_private_media = false }
    refused(c, { url }, name .. " (" .. ip .. "), allow_private_media = false", "connecting to it: " .. ip .. " is a")
    assert.equal(2, media_requests(), "the name's address was read with allow_private_media = false")
    c:close()
    open:close()
  end)

  it("is refused by default when base_url is not a local address; allowed when it is", function()
    local url = emu.url .. "/media/a.png"
    local c = starvideos.new { base_url = "https://api.example.com", timeout = 5 }
    local notes, err = c:check { model = "videos", prompt = "a cat", duration = 5, referenceImages = { url } }
    assert.is_nil(notes)
    assert.same({ "invalid_request", "referenceImages[1]" }, { err.kind, err.field })
    assert.equal(0, media_requests())
    c:close()
    c = starvideos.new { base_url = "http://localhost:1", timeout = 5 } -- a local emulator's form
    assert.same({}, (c:check { model = "videos", prompt = "a cat", duration = 5, referenceImages = { url } }))
    assert.equal(2, media_requests())
    c:close()
  end)

  -- The connections a listener that never accepts took in (each attempt one: the kernel completes them), counted
  -- by accepting them now.
  local function connections(silent)
    silent:settimeout(0)
    local n = 0
    while true do
      local s = silent:accept()
      if not s then return n end
      s:close()
      n = n + 1
    end
  end

  -- (one timeout, not one per attempt: one connection to the host, issue 78, 2; not 'under 1.6 s')
  it("on a host that never answers costs one timeout (not one per attempt), then the usual note", function()
    local silent = assert(socket.bind("127.0.0.1", 0)) -- listens, never accepts: connects, never answers
    local _, port = silent:getsockname()
    local c, notes = client { timeout = 1, max_retries = 2 }
    local url = "http://127.0.0.1:" .. port .. "/never.png"
    local task, err, took = create(c, { url, emu.url .. "/media/ok.png" }, "a host that never answers, timeout = 1")
    assert.equal(1, connections(silent), "the preflight's attempts at the host")
    silent:close()
    assert.is_table(task, tostring(err))
    assert.equal(1, emu:creates())
    assert.is_true(took >= 0.9, string.format("the preflight took %.2f s for a timeout of 1 s", took))
    assert.equal(1, #notes)
    assert.truthy(notes[1].message:find("timed out", 1, true), notes[1].message)
    c:close()
    c = client { timeout = 1, max_retries = 2, preflight = "strict" } -- strict: the usual refusal, as soon
    silent = assert(socket.bind("127.0.0.1", 0))
    _, port = silent:getsockname()
    local e2 = refused(c, { "http://127.0.0.1:" .. port .. "/never.png" }, "the same, strict", "timed out")
    assert.equal(1, connections(silent), "the strict preflight's attempts at the host")
    silent:close()
    assert.truthy(e2.message:find('preflight = "strict"', 1, true))
    c:close()
  end)
end)
