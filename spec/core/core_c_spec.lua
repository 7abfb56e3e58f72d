-- The C core's own tests (csrc/test/test_core.c, no Lua inside), one busted test
-- per TAP line, so a broken validator or retry rule fails here even without Lua.
local helper = require "spec.helper"

describe("the C core tested from C", function()
  local bin = helper.root .. "/build/test_core"
  -- (without a preloaded sanitizer runtime: `make check` preloads ASan for the Lua
  -- VM, and this binary is not instrumented; check runs an ASan build of it itself)
  local out, _, code = helper.capture(helper.UNINSTRUMENTED .. helper.shell_quote(bin) .. " 2>&1")
  local lines = {}
  for line in out:gmatch("[^\n]+") do
    local status, rest = line:match("^(n?o?t? ?ok) %d+ %- (.*)$")
    if status then
      local name, detail = rest:match("^(.-)%s*# (.*)$")
      lines[#lines + 1] = { ok = status == "ok", name = name or rest, detail = detail or "" }
    end
  end

  it("runs and reports its plan", function()
    assert.is_true(#lines >= 30, "too few results from " .. bin .. ":\n" .. out)
    assert.matches("1%.%." .. #lines, out)
    assert.equal(0, code, out)
  end)

  for _, t in ipairs(lines) do
    it(t.name, function()
      assert.is_true(t.ok, t.detail)
    end)
  end
end)
