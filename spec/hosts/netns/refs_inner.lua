-- Run by spec/hosts/refs_netns_spec.lua inside a network and mount namespace of its own
-- (SV_NETNS=1): only lo, with 198.20.0.1 beside 127.0.0.1, and a hosts file naming
-- media.test (198.20.0.1: an address the client counts as public), private.test (10.0.0.1)
-- and metadata.test (169.254.169.254).  The emulator listens on every address of lo, so a
-- reference's first hop can be public while its name or redirect leads to a non-public one.
-- Nothing here can leave the machine: the namespace has no other interface.
local helper = require "spec.helper"
local starvideos = require "starvideos"
local core = require "starvideos.core"

local KEY = "sk-refs-netns-2c9e"

describe("inside the namespace, with allow_private_media = false", function()
  local emu, port
  setup(function()
    assert(os.getenv("SV_NETNS") == "1", "run by spec/hosts/refs_netns_spec.lua only")
    emu = helper.emulator { key = KEY, host = "0.0.0.0", queued = 0.05, processing = 0.05 }
    port = emu.url:match(":(%d+)$")
  end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:reset() end)

  local function media_paths()
    local list = {}
    for _, r in ipairs(emu:requests()) do
      if r.path:find("^/media/") then list[#list + 1] = r.method .. " " .. r.path end
    end
    return list
  end

  -- client:create with this reference image: task, err (the time taken printed)
  local function create(url, what)
    local c = starvideos.new { api_key = KEY, base_url = emu.url, allow_private_media = false, timeout = 5 }
    local t0 = core.now()
    local task, err = c:create { model = "videos", prompt = "a cat", duration = 5, referenceImages = { url } }
    print(string.format("  %-46s %6.3f s for its reference: %s", what, core.now() - t0,
      task and "created" or err.kind .. ": " .. err.message))
    c:close()
    return task, err
  end

  local function refused(url, what, match)
    local task, err = create(url, what)
    assert.is_nil(task, what .. ": created")
    assert.same({ "invalid_request", "referenceImages[1]" }, { err.kind, err.field }, tostring(err))
    assert.truthy(err.message:find(match, 1, true), err.message)
    assert.equal(0, emu:creates(), what .. ": a create reached the emulator")
  end

  it("reads and creates with a reference on a public address (media.test: 198.20.0.1)", function()
    assert.is_table((create("http://media.test:" .. port .. "/media/ok.png", "media.test (198.20.0.1)")))
    assert.equal(1, emu:creates())
    assert.same({ "HEAD /media/ok.png", "GET /media/ok.png" }, media_paths())
  end)

  it("refuses a name that resolves to 10.0.0.1, at connect time: nothing sent", function()
    refused("http://private.test:" .. port .. "/media/a.png", "private.test (10.0.0.1)",
      "connecting to it: 10.0.0.1 is a private address, which the service cannot fetch")
    assert.same({}, media_paths())
  end)

  it("refuses a redirect to 169.254.169.254, and to a name resolving there, before connecting", function()
    for _, to in ipairs { "169.254.169.254", "metadata.test" } do
      emu:reset()
      emu:fault { path = "/media/meta.png", status = 302,
        headers = { Location = "http://" .. to .. "/latest/meta-data/" } }
      refused("http://media.test:" .. port .. "/media/meta.png", "a redirect to " .. to,
        "connecting to it: 169.254.169.254 is a link-local address")
      assert.same({ "HEAD /media/meta.png" }, media_paths()) -- the 302, then nothing
    end
  end)
end)
