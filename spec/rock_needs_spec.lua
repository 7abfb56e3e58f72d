-- A product rock beside a core outside its range (issue: LuaRocks' --deps-mode=none installs it, and it loaded):
-- each rock's entry modules load rocks/needs.lua first, which refuses, naming both versions and the install line.
-- The core's version is played here by config.VERSION changed in this process; spec/hosts/rocks_spec.lua installs a
-- core of another version with LuaRocks for real.
local config = require "starvideos.config"

-- each rock's modules the core finds by convention, and its name
local ENTRIES = {
  { "starvideos-redis", "starvideos.ledger.redis" }, { "starvideos-redis", "starvideos.ledger.rediss" },
  { "starvideos-redis", "starvideos.ledger.unix" }, { "starvideos-redis", "starvideos.command.store" },
  { "starvideos-s3", "starvideos.sink.s3" }, { "starvideos-s3", "starvideos.references" },
  { "starvideos-observe", "starvideos.observe" }, { "starvideos-emulator", "starvideos.command.emulator" },
}

-- require name afresh (it and the rocks' checks unloaded) under a core of version v: ok, the error
local function load_under(v, name)
  local was = config.VERSION
  for n in pairs(package.loaded) do
    if n:match("^starvideos%.needs%.") or n:match("^starvideos%.ledger%.") then package.loaded[n] = nil end
  end
  package.loaded[name] = nil
  config.VERSION = v
  local ok, err = pcall(require, name)
  config.VERSION = was
  package.loaded[name] = nil
  return ok, err
end

describe("a product rock beside a core", function()
  after_each(function()
    for n in pairs(package.loaded) do if n:match("^starvideos%.needs%.") then package.loaded[n] = nil end end
  end)

  for _, v in ipairs { "0.3.0", "0.5.0", "1.0.0" } do
    it("of version " .. v .. " (outside >= 0.4, < 0.5) refuses to load, naming both versions and the install line",
      function()
        for _, e in ipairs(ENTRIES) do
          local ok, err = load_under(v, e[2])
          assert.is_false(ok, e[2])
          local head = e[1] .. " needs starvideos >= 0.4, < 0.5, and the starvideos loaded is " .. v .. " ("
          assert.equal(head, tostring(err):sub(1, #head), e[2])
          assert.truthy(tostring(err):find("luarocks make --deps-mode=none rockspec/starvideos-0.4.0-1.rockspec",
            1, true), err)
        end
      end)
  end

  for _, v in ipairs { "0.4.0", "0.4.7" } do
    it("of version " .. v .. " (within its range) loads", function()
      for _, e in ipairs(ENTRIES) do
        local ok, err = load_under(v, e[2])
        assert.is_true(ok, tostring(err))
      end
    end)
  end

  -- 0.4.0 as released: in the range, but its extension.lua has no window (X.WINDOW) for a rock to read the core by.
  it("of version 0.4.0 without the rocks' window refuses to load, naming what it lacks", function()
    local X = require "starvideos.extension"
    package.loaded["starvideos.extension"] = { name = X.name } -- (a point without the window)
    local ok, err = load_under("0.4.0", "starvideos.observe")
    package.loaded["starvideos.extension"] = X
    assert.is_false(ok)
    assert.matches("starvideos-observe needs a starvideos core with the rocks' window (extension.lua's WINDOW: this "
      .. "checkout's, the next release's), and the starvideos loaded (0.4.0) has none", tostring(err), 1, true)
  end)

  it("outside its range refuses the client a store asks for, nothing made", function()
    local was = config.VERSION
    for n in pairs(package.loaded) do
      if n:match("^starvideos%.needs%.") or n:match("^starvideos%.ledger%.") then package.loaded[n] = nil end
    end
    config.VERSION = "0.3.0"
    local ok, err = pcall(require("starvideos").new, { api_key = "k", base_url = "http://127.0.0.1:9",
      store = "redis://127.0.0.1:1" })
    config.VERSION = was
    package.loaded["starvideos.ledger.redis"] = nil
    assert.is_false(ok)
    assert.matches("starvideos-redis needs starvideos >= 0.4, < 0.5, and the starvideos loaded is 0.3.0", err, 1,
      true)
  end)
end)
