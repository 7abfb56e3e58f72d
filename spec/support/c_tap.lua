-- A C test program's TAP lines as busted tests (spec/core/core_c_spec.lua's csrc/test/test_core.c, the redis
-- rock's rocks/redis/spec/url_c_spec.lua): one test that it ran and gave its plan (at least `least` lines), then one
-- per line.  Run without a preloaded sanitizer runtime: `make check` preloads ASan for the Lua VM, and these
-- binaries are not instrumented (check runs ASan builds of them itself).
local helper = require "spec.helper"

local M = {}

-- b: the spec's {describe =, it =, assert =} (busted's, which a required module does not see).
function M.describe(b, what, bin, least)
  local it, assert = b.it, b.assert
  b.describe(what, function()
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
      assert.is_true(#lines >= least, "too few results from " .. bin .. ":\n" .. out)
      assert.matches("1%.%." .. #lines, out)
      assert.equal(0, code, out)
    end)

    for _, t in ipairs(lines) do
      it(t.name, function()
        assert.is_true(t.ok, t.detail)
      end)
    end
  end)
end

return M
