-- storage/sweep.lua's reading of a store's Initiated times (ISO 8601, UTC), which decides which uploads are old
-- enough to abort: the seconds date(1) gives for the same times, nil for what is not one.
local Sweep = require "starvideos.storage.sweep"

describe("storage.sweep.iso_time", function()
  it("reads UTC times as date -u gives them, leap days and centuries too", function()
    assert.equal(0, Sweep.iso_time("1970-01-01T00:00:00.000Z"))
    assert.equal(951868800, Sweep.iso_time("2000-03-01T00:00:00.000Z"))
    assert.equal(946684799, Sweep.iso_time("1999-12-31T23:59:59Z"))
    assert.equal(1709210096, Sweep.iso_time("2024-02-29T12:34:56.789Z"))
    assert.equal(1795644000, Sweep.iso_time("2026-11-25T22:00:00.000Z"))
  end)

  it("is nil for what is not such a time (an upload without one is never aborted)", function()
    for _, v in ipairs { "", "yesterday", "2026-11-25", "25/11/2026 22:00:00", false } do
      assert.is_nil(Sweep.iso_time(v or nil), tostring(v))
    end
  end)
end)
