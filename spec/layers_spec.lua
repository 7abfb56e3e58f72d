-- The shape issue 13 asked for, read from the sources: client.lua holds only the
-- public API (300 lines at most), nothing below it calls back into a client,
-- there is one path for a query (no lane of its own), and every Lua module is
-- in both rockspecs.
local helper = require "spec.helper"

local function source(name)
  return assert(helper.read_file(helper.root .. "/lua/starvideos/" .. name .. ".lua"), name)
end

local BELOW = { "engine", "ledger", "job", "request", "keep", "schedule", "journal", "transport", "transport/ngx",
  "transport/ngx_wire", "store" }

describe("the layers", function()
  it("client.lua has 300 lines or fewer", function()
    local _, lines = source("client"):gsub("\n", "\n")
    assert.is_true(lines <= 300, "client.lua has " .. lines .. " lines")
  end)

  it("nothing below the client requires it or calls a client's private method", function()
    for _, name in ipairs(BELOW) do
      local text = source(name)
      assert.is_nil(text:find('require%s*%(?%s*"starvideos%.client"'), name .. " requires the client")
      assert.is_nil(text:find("client:_%a"), name .. " calls a client's private method")
      assert.is_nil(text:find("owner%.client"), name .. " reaches a client through its owner")
    end
  end)

  it("has one path for a query: the engine has no lane of its own", function()
    local Engine = require "starvideos.engine"
    assert.is_nil(rawget(Engine, "query_now"))
    assert.is_nil(source("engine"):find("query_now", 1, true))
    assert.is_nil(source("client"):find("query_now", 1, true))
  end)

  it("lists every Lua module in both rockspecs", function()
    local files = helper.capture("cd " .. helper.shell_quote(helper.root) .. " && find lua/starvideos -name '*.lua'")
    for _, spec in ipairs { "starvideos-scm-1.rockspec", "starvideos-0.2.0-1.rockspec" } do
      local text = assert(helper.read_file(helper.root .. "/rockspec/" .. spec))
      local n = 0
      for file in files:gmatch("%S+") do
        n = n + 1
        assert.truthy(text:find('"' .. file .. '"', 1, true), spec .. " does not list " .. file)
      end
      assert.is_true(n > 20, "found only " .. n .. " Lua files")
    end
  end)
end)
