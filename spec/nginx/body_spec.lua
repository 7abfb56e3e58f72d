-- nginx's units (nginx/body.lua), where an exchange's answer goes, driven as nginx/answer.lua and wire.lua call
-- them, outside nginx: memory, memory and a tap, a file, chosen once from the request.

local helper = require "spec.helper"
local core = require "starvideos.core"
local sign = require "starvideos.sign"
local cases = require "spec.support.transport_cases"
local B = require "starvideos.nginx.body"

-- An exchange as nginx/transport.lua makes it of r, its unit opened, its answer's status read.
local function exchange(r, status, from)
  local unit = B.of(r)
  local x = { r = r, unit = unit, parts = {}, kept = 0, cap = unit.cap(r), from = from, status = status, skip = 0,
    buf = "", pos = 1 }
  assert(unit.open(x))
  return x
end

describe("nginx's units", function()
  local dir
  setup(function() dir = helper.tmpdir() end)
  teardown(function() helper.cleanup() end)

  it("are chosen once from the request: a file, else a tap (without a body), else memory", function()
    assert.equal(B.FILE, B.of { file = "x.part", tap = {} })
    assert.equal(B.TAP, B.of { tap = {} })
    assert.equal(B.MEMORY, B.of { tap = {}, body = "b" })
    assert.equal(B.MEMORY, B.of {})
  end)

  it("memory keeps a ranged answer to its cap (capped), another's past it is garbled, a Range asked of its from",
    function()
      local x = exchange({ max_body = 4 }, 206, 10)
      assert.equal("10-13", x.unit.asks(x))
      assert.same({ nil, "capped" }, { x.unit.write(x, "abcdef") })
      assert.equal("abcd", table.concat(x.parts))
      x = exchange({ max_body = 4 }, 200)
      assert.is_nil(x.unit.asks(x))
      local ok, wire, msg = x.unit.write(x, "abcdef")
      assert.same({ false, "garbled" }, { ok ~= nil, wire })
      assert.truthy(msg:find("larger than 4 bytes", 1, true), msg)
    end)

  it("a tap is fed the kept bytes of a 2xx from the byte asked, never an error page nor a 206 from elsewhere",
    function()
      local video = cases.video(200000)
      local s = assert(sign.stream(-1))
      local x = exchange({ max_body = 1000, tap = s }, 206, 0)
      assert.is_true(x.unit.start(x, { ["content-range"] = "bytes 0-999/200000" }))
      assert.same({ nil, "capped" }, { x.unit.write(x, video:sub(1, 1500)) })
      assert.equal(1000, s:at()) -- (the bytes kept, those past the cap not)
      assert.equal(video:sub(1, 1000), table.concat(x.parts))
      for _, answer in ipairs { { 206, "bytes 5-999/200000" }, { 404 } } do
        local other = assert(sign.stream(-1))
        x = exchange({ max_body = 1000, tap = other }, answer[1], 0)
        assert.is_true(x.unit.start(x, { ["content-range"] = answer[2] }))
        x.unit.write(x, video:sub(1, 100))
        assert.equal(0, other:at(), tostring(answer[1]))
      end
    end)

  it("a file writes a 206 from its offset into the .part and keeps an error page in memory", function()
    local part = dir .. "/v.part"
    helper.write_file(part, string.rep("a", 70000))
    local x = exchange({ file = part, offset = 65536, max_body = 1e9 }, 206)
    assert.equal("65536-", x.unit.asks(x))
    assert.is_true(x.unit.start(x, { ["content-range"] = "bytes 65536-65545/65546" }))
    assert.is_true(x.unit.write(x, "0123456789"))
    x.unit.ended(x)
    assert.is_true(x.unit.flush(x))
    assert.same({ 65546, 65546 }, { x.have, x.total })
    local fh = x.unit.take(x)
    assert.is_nil(x.unit.take(x)) -- (given up once)
    fh:close()
    assert.equal(string.rep("a", 65536) .. "0123456789", helper.read_file(part))
    x = exchange({ file = part, max_body = 1e9 }, 503)
    assert.is_true(x.unit.start(x, {}))
    assert.is_true(x.unit.write(x, string.rep("e", core.error_page_max + 10)))
    assert.equal(core.error_page_max, x.kept)
    x.unit.take(x):close()
  end)
end)
