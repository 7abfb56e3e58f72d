-- Every Lua file the VMs run (the library's, the rocks', the specs', the command line's) compiles on the VM running
-- the specs: `make lint`'s luac5.1 sees 5.1's grammar only, and Lua 5.5 refuses what the others take (an
-- assignment to a for-loop variable, which 5.5 makes constant).
local helper = require "spec.helper"

describe("the checkout's Lua on " .. helper.vm, function()
  it("compiles, every file", function()
    local p = assert(io.popen("find lua rocks spec -name '*.lua' | sort; echo bin/starvideos"))
    local refused, n = {}, 0
    for path in p:lines() do
      n = n + 1
      local f = assert(io.open(path, "rb"))
      local text = f:read("*a"):gsub("^#![^\n]*", "") -- (bin/starvideos' first line)
      f:close()
      local ok, err = (rawget(_G, "loadstring") or load)(text, "@" .. path)
      if not ok then refused[#refused + 1] = err end
    end
    p:close()
    assert.is_true(n > 300, "the files were found: " .. n)
    assert.same({}, refused)
  end)
end)
