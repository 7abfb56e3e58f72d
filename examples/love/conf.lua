-- luacheck: globals love
-- LÖVE 11 configuration of the example (see main.lua).
function love.conf(t)
  t.version = "11.4"
  t.identity = "starvideos-example"
  t.window.title = "starvideos: a video generated in the background"
  t.window.width = 720
  t.window.height = 360
  t.window.vsync = 1
  -- nothing here plays sound or uses these: skipping them starts LÖVE faster
  -- (and quietly on a machine with no sound card, such as a CI box under Xvfb)
  t.modules.audio = false
  t.modules.sound = false
  t.modules.physics = false
  t.modules.joystick = false
  t.modules.video = false
end
