-- The bound of a video's body without a length (issue 49): what a video of the service can be, not 2 GiB,
-- so that a small disk never fills first; docs/downloads.md and docs/reference.md give the same number.

local helper = require "spec.helper"
local config = require "starvideos.config"

describe("max_video_bytes, a body without a length", function()
  local bound = config.DEFAULTS.max_video_bytes

  it("holds the service's longest video (15 s at 720p) at 64 Mbit/s, and not much more", function()
    local longest = 15 * 64e6 / 8 -- (docs/api: duration at most 15 s, 720p)
    assert.is_true(bound >= longest, tostring(bound))
    assert.is_true(bound <= 2 * longest, tostring(bound))
    assert.equals(128 * 1024 * 1024, bound)
  end)

  it("is the number the docs give", function()
    local downloads = helper.read_file(helper.root .. "/docs/downloads.md")
    assert.matches("past `max_video_bytes` (" .. math.floor(bound / 1048576) .. " MiB", downloads, 1, true)
    assert.matches("past " .. bound .. " bytes (max_video_bytes)", downloads, 1, true)
    assert.matches("| `max_video_bytes` | `" .. bound .. "` |", helper.read_file(helper.root .. "/docs/reference.md"),
      1, true)
  end)
end)
