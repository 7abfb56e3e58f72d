-- A clock a case moves (issue 78, 2): the library reads time through core.now, which each of its modules keeps as a
-- local as it loads; required before them, this makes core.now read this clock.  Real time until a case starts it
-- (clock.start(t)); then it stands still but where the fake transport's poll moves it by the wait it was asked for
-- (Fake.new { fake_clock = clock }: no sleep), so a budget's tokens come on the case's time, at any pace.
local core = require "starvideos.core"

local real, t = core.now, nil
assert(not package.loaded["starvideos.loop"], "spec.support.fake_clock is required before the library")
core.now = function()
  if t then return t end
  return real()
end

local M = {}
function M.start(at) t = at or 1000 end
function M.stop() t = nil end
function M.running() return t ~= nil end
function M.advance(seconds) t = t + seconds end
return M
