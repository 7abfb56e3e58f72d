-- The command line's display of the time left (cli/display.lua): the text of an eta, the live line
-- on a terminal and the plain lines off one, fed status events at times the spec chooses.
local display = require "starvideos.cli.display"

-- A display writing into a list (a terminal of 80 columns when tty).
local function screen(tty)
  local written = {}
  local stream = { write = function(_, s) written[#written + 1] = s end, flush = function() end }
  local d = display.new(stream, tty, false)
  d.width = 80
  return d, written
end

describe("the time left on the command line", function()
  it("reads an eta as about so many seconds or minutes, counting down from when it came", function()
    local eta = { p50 = 40.4, p90 = 75 }
    assert.equal("about 40 s left", display.eta_text(eta))
    assert.equal("about 30 s left", display.eta_text(eta, 10.4))
    assert.equal("about 3 min left", display.eta_text({ p50 = 170, p90 = 300 }))
    assert.equal("any moment now", display.eta_text(eta, 40))   -- past p50, not p90
    assert.equal("longer than usual", display.eta_text({ p50 = 0, p90 = 0 }))
    assert.equal("longer than usual", display.eta_text(eta, 80))
    assert.is_nil(display.eta_text(nil))
    assert.is_nil(display.eta_text({ p50 = "40" }))
  end)

  it("shows it on the live line of `wait` and `generate`, and in the plain status lines", function()
    local d, written = screen(true)
    d.started = 100
    d:event({ type = "status", id = "video_1", status = "processing", eta = { p50 = 40, p90 = 70 } }, 112)
    assert.equal("\rvideo_1  processing  about 40 s left  0:12 |\27[K", written[#written])
    d:status_line(122, true) -- ten seconds on, no answer since: it counts down
    assert.equal("\rvideo_1  processing  about 30 s left  0:22 /\27[K", written[#written])
    d:event({ type = "status", id = "video_1", status = "processing" }, 130) -- no eta (none learned)
    assert.equal("\rvideo_1  processing  0:30 -\27[K", written[#written])
    local plain, lines = screen(false)
    plain:event({ type = "status", id = "video_2", status = "queued", eta = { p50 = 95, p90 = 200 } }, 1)
    plain:event({ type = "status", id = "video_2", status = "completed" }, 2)
    assert.same({ "id: video_2\n", "status: queued (about 2 min left)\n", "status: completed\n" }, lines)
  end)

  it("on a batch's bar, the longest task's estimate: past its median 'any moment now', past its 90th percentile "
    .. "'longer than usual'", function()
    local progress = require "starvideos.cli.progress"
    local p = progress.new(select(1, screen(true)), 100, 3, function() end)
    p:event({ type = "status", index = 1, status = "processing", eta = { p50 = 3, p90 = 6 } }, 100)
    p:event({ type = "status", index = 2, status = "processing", eta = { p50 = 2, p90 = 4 } }, 100)
    assert.equal("about 3 s left", p:left(100))
    assert.equal("about 2 s left", p:left(101))
    assert.equal("any moment now", p:left(103.5)) -- (before: "longer than usual" once the median passed)
    assert.equal("longer than usual", p:left(106.5))
    p:event({ type = "status", index = 1, status = "completed" }, 107)
    assert.equal("longer than usual", p:left(107))
    p:event({ type = "status", index = 2, status = "completed" }, 107)
    assert.is_nil(p:left(107))
  end)
end)
