-- tools/shape.lua, which make lint runs: it passes this tree, and fails on a
-- module over 400 lines, a function over 60 or a require cycle, naming each.
local helper = require "spec.helper"

local q = helper.shell_quote
local shape = q(helper.lua) .. " " .. q(helper.root .. "/tools/shape.lua")

-- A tree of lua/starvideos/<name>.lua files with the given sources.
local function tree(files)
  local dir = helper.tmpdir()
  assert(helper.execute("mkdir -p " .. q(dir .. "/lua/starvideos/cli")))
  for name, src in pairs(files) do helper.write_file(dir .. "/lua/starvideos/" .. name .. ".lua", src) end
  return dir
end

local function lines(n, text)
  local out = {}
  for i = 1, n do out[i] = text or ("local x" .. i .. " = " .. i) end
  return table.concat(out, "\n") .. "\n"
end

describe("tools/shape.lua", function()
  teardown(helper.cleanup)

  it("passes the library as it is, printing its modules, layers and require graph", function()
    local out, ok = helper.capture(shape .. " " .. q(helper.root))
    assert.is_true(ok, out)
    assert.matches("starvideos.client", out, 1, true)
    assert.matches("in all", out, 1, true)
    assert.matches("shape: every module within 400 lines, every function within 60, no require cycle", out, 1, true)
  end)

  it("fails naming a module over 400 lines, a function over 60 and a cycle; cli/ is not counted", function()
    local dir = tree {
      big = lines(401),
      long = "local M = {}\nfunction M.f()\n" .. lines(60, "  local y = 1") .. "end\nreturn M\n",
      a = 'local b = require "starvideos.b"\nreturn {}\n',
      b = 'local a = require("starvideos.a")\nreturn {}\n',
      ["cli/huge"] = lines(900),
    }
    local out, ok, code = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_falsy(ok)
    assert.equal(1, code)
    assert.matches("lua/starvideos/big.lua: 401 lines (at most 400)", out, 1, true)
    assert.matches("lua/starvideos/long.lua:2: a function of 62 lines (at most 60)", out, 1, true)
    assert.matches("a require cycle: starvideos.", out, 1, true)
    assert.is_nil(out:find("huge", 1, true), out)
  end)

  it("passes a module of 400 lines and a function of 60", function()
    local dir = tree { edge = lines(400), fn = "local M = {}\nfunction M.f()\n" .. lines(58, "  local y = 1")
      .. "end\nreturn M\n" }
    local out, ok = helper.capture(shape .. " " .. q(dir) .. " 2>&1")
    assert.is_true(ok, out)
  end)
end)
