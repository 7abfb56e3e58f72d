-- A key's identity (key.lua's K.identity): one service however its base URL is spelled, so that its budget,
-- spend, learned schedule and store records are one (docs/keep-and-fleet.md, "A key's identity").
local starvideos = require "starvideos"
local Key = require "starvideos.key"
local shared_emulator = require "spec.support.shared_emulator"

local KEY = "k-identity"

describe("a key's identity", function()
  it("is the base URL with its scheme and host in lowercase, localhost as 127.0.0.1, no default port, dot "
    .. "segment or trailing slash", function()
    for written, identity in pairs {
      ["http://localhost:8080"] = "http://127.0.0.1:8080",
      ["HTTP://127.0.0.1:8080"] = "http://127.0.0.1:8080",
      ["http://LOCALHOST:8080"] = "http://127.0.0.1:8080",
      ["http://127.0.0.1:8080/./"] = "http://127.0.0.1:8080",
      ["http://127.0.0.1:08080"] = "http://127.0.0.1:8080",
      ["http://api.localhost:8080/"] = "http://127.0.0.1:8080",
      ["https://Example.COM:443/v1/../api//"] = "https://example.com/api",
      ["http://example.com:80/a/%2fb"] = "http://example.com/a/%2Fb",
      ["https://example.com:8443/API"] = "https://example.com:8443/API",
      ["https://[::1]/x"] = "https://[::1]/x",
    } do
      assert.equal(identity, Key.identity(written), written)
    end
  end)

  it("keeps a canonical URL as it is, so a fleet's records stay under their prefix", function()
    local url = "https://zcbservice.aizfw.cn/kyyReactApiServer"
    assert.equal(url, Key.identity(url))
    assert.equal(require("starvideos.core").hash(url .. "\0" .. require("starvideos.core").hash(KEY)),
      Key.hash_of(url, KEY))
  end)
end)

describe("clients of one key whose base URLs spell one service", function()
  local emu
  shared_emulator({ key = KEY, queued = 0, processing = 0 }, function(e) emu = e end)

  local function spellings()
    local port = emu.url:match(":(%d+)$")
    return { "http://localhost:" .. port, "HTTP://127.0.0.1:" .. port, "http://LOCALHOST:" .. port,
      "http://127.0.0.1:" .. port .. "/./", "http://127.0.0.1:0" .. port }
  end

  it("share one spend_limit in a process: 5 creates of 0.40 under 2.00 reach the service, not 25", function()
    local clients, ok, refused = {}, 0, 0
    for i, url in ipairs(spellings()) do
      clients[i] = starvideos.new { api_key = KEY, base_url = url, prices = require("spec.support.spend_runs").PRICES,
        spend_limit = { amount = 2, per = "day" }, sleep = function() end }
    end
    for _, c in ipairs(clients) do
      for _ = 1, 5 do
        local task, err = c:create { model = "videos", prompt = "identity", duration = 5 }
        if task then ok = ok + 1 elseif err.kind == "spend_limited" then refused = refused + 1 end
      end
    end
    for _, c in ipairs(clients) do c:close() end
    assert.equal(5, ok)
    assert.equal(20, refused)
    assert.equal(5, emu:creates())
  end)

  it("are one key of the process: one object, one name in a store", function()
    local names = {}
    for _, url in ipairs(spellings()) do
      local c = starvideos.new { api_key = KEY, base_url = url }
      names[url] = c.key.hash
      c:close()
    end
    local first
    for url, name in pairs(names) do
      first = first or name
      assert.equal(first, name, url)
    end
  end)
end)
