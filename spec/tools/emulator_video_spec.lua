-- The emulator's videos play: H.264 in MP4 (rocks/emulator/lua/starvideos/emulator/mp4.lua,
-- h264.lua) that ffmpeg decodes without an error, of the duration and the
-- picture size asked.  Each model's sizes (every ratio it takes, at 720p) at
-- its shortest and longest duration, as the emulator serves them; the writer's
-- other shapes (moov at the end, fragmented, padded, 1080 rows, a QuickTime
-- brand); the colour of the pictures; and a task's video through the emulator
-- over HTTP, downloaded by the library from its video_url.  Needs ffmpeg
-- (Debian's package `ffmpeg`, in the Makefile's DEPS); pends without it.

local helper = require "spec.helper"
local files = require "starvideos.emulator.files"
local media = require "starvideos.emulator.media"
local h264 = require "starvideos.emulator.h264"

local q = helper.shell_quote

-- ffmpeg's decode of the file at path to nothing: its error output, exit
-- status and the pictures it decoded (its -progress report's last frame=).
local function decode(path)
  local errors = path .. ".err"
  local out, _, code = helper.capture("ffmpeg -nostdin -v error -progress pipe:1 -i " .. q(path) .. " -f null - 2>"
    .. q(errors))
  local frames = 0
  for n in out:gmatch("frame=(%d+)") do frames = tonumber(n) end
  return helper.read_file(errors), code, frames
end

-- ffprobe's view of the file's video: codec_name, width, height, nb_frames
-- (the container's count), duration (the container's); and its whole output.
local function probe(path)
  local out = helper.capture("ffprobe -v error -select_streams v:0 -show_entries "
    .. "stream=codec_name,width,height,nb_frames -show_entries format=duration -of default=noprint_wrappers=1 "
    .. q(path) .. " 2>&1")
  local t = {}
  for k, v in out:gmatch("([%w_]+)=([^\n]*)") do t[k] = tonumber(v) or v end
  return t, out
end

-- The file s (a string) decodes without a word from ffmpeg, every picture of
-- it, and ffprobe finds H.264 of w x h lasting `seconds`, 10 pictures a second.
local function plays(s, w, h, seconds, what)
  local path = helper.tmpdir() .. "/v.mp4"
  helper.write_file(path, s)
  local out, code, frames = decode(path)
  local pictures = math.ceil(seconds * 10)
  assert.are.same({ "", 0, pictures }, { out, code, frames }, what)
  local t, said = probe(path)
  assert.are.same({ "h264", w, h }, { t.codec_name, t.width, t.height }, what .. ": " .. said)
  if t.nb_frames ~= "N/A" then assert.are.equal(pictures, t.nb_frames, what .. ": " .. said) end
  assert.is_true(math.abs(t.duration - seconds) < 0.001, what .. ": " .. said)
  return path
end

-- The first decoded picture, as 4:2:0 planes (Y, then Cb, then Cr).
local function first_picture(path)
  return (helper.capture("ffmpeg -nostdin -v error -i " .. q(path) .. " -frames:v 1 -f rawvideo -pix_fmt yuv420p -"))
end

-- A picture of w x h all of colour c ({y, cb, cr}), as first_picture gives it.
local function flat(w, h, c)
  local cw, ch = math.ceil(w / 2), math.ceil(h / 2)
  return string.rep(string.char(c[1]), w * h) .. string.rep(string.char(c[2]), cw * ch)
    .. string.rep(string.char(c[3]), cw * ch)
end

describe("the emulator's videos", function()
  if not helper.execute("command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1") then
    pending("ffmpeg is not installed (Debian: ffmpeg; make deps)")
    return
  end

  it("decode at each model's sizes (each ratio at 720p) at its longest duration, and at its default ratio's shortest",
    function()
      local models = require("starvideos.core").models
      local done, files_made = {}, 0
      local function check(name, ratio, m, seconds)
        local w, h = files.dimensions(ratio, m.resolutions[1])
        local key = w .. "x" .. h .. "@" .. seconds
        if done[key] then return end
        done[key], files_made = true, files_made + 1
        plays(files.video(seconds, nil, w, h), w, h, seconds, name .. " " .. ratio .. " " .. key)
      end
      for name, m in pairs(models) do
        for _, ratio in ipairs(m.ratios) do check(name, ratio, m, m.duration.max) end
        check(name, m.default_ratio, m, m.duration.min)
      end
      -- 16:9, 9:16, 1:1, 21:9, 4:3, 3:4 at 15 s; O3's 9:16 at 3 s, the others' 16:9 at 4 s
      assert.are.equal(8, files_made)
    end)

  it("decode with moov at the end, fragmented, padded past 4 MB, at 1080 rows (cropped), as QuickTime", function()
    plays(media.mp4 { seconds = 12, width = 720, height = 1280, moov = "end", bytes = 50000 }, 720, 1280, 12, "end")
    plays(media.mp4 { seconds = 4, fragmented = true, bytes = 20000 }, 1280, 720, 4, "fragmented")
    local big = media.mp4 { seconds = 5, bytes = 4 * 2 ^ 20 + 3 }
    assert.are.equal(4 * 2 ^ 20 + 3, #big)
    plays(big, 1280, 720, 5, "padded")
    plays(media.mp4 { seconds = 6, width = 1920, height = 1080 }, 1920, 1080, 6, "1080")
    plays(media.mp4 { seconds = 2.55, width = 1680, height = 720 }, 1680, 720, 2.55, "2.55 s")
    plays(media.mov { seconds = 3 }, 1280, 720, 3, "mov")
  end)

  it("are pictures of one flat colour, which a prompt picks", function()
    local kitten, dog = h264.colour("a kitten"), h264.colour("a dog")
    assert.are_not.same(kitten, dog)
    local path = plays(media.mp4 { seconds = 3, width = 1920, height = 1080, prompt = "a kitten" }, 1920, 1080, 3,
      "kitten")
    assert.is_true(first_picture(path) == flat(1920, 1080, kitten), "not a flat picture of the kitten's colour")
    path = plays(media.mp4 { seconds = 3, width = 720, height = 960, prompt = "a dog" }, 720, 960, 3, "dog")
    assert.is_true(first_picture(path) == flat(720, 960, dog), "not a flat picture of the dog's colour")
    -- the last picture too: the P pictures repeat the first
    local last = helper.capture("ffmpeg -nostdin -v error -sseof -0.2 -i " .. q(path)
      .. " -frames:v 1 -f rawvideo -pix_fmt yuv420p -")
    assert.is_true(last == flat(720, 960, dog), "the last picture is not the first")
  end)

  it("play as the library downloads them from a task's video_url", function()
    local emu = helper.emulator { key = "k-video", queued = 0, processing = 0 }
    finally(function() emu:stop() end)
    local client = require("starvideos").new { api_key = "k-video", base_url = emu.url }
    finally(function() client:close() end)
    local dir = helper.tmpdir()
    for _, case in ipairs { { { model = "videos", prompt = "a kitten", duration = 4, ratio = "9:16" }, 720, 1280, 4 },
      { { model = "starvideos_o3", prompt = "a kitten", duration = 15 }, 720, 1280, 15 },
      { { model = "videos_fast", prompt = "a kitten", duration = 6 }, 1280, 720, 6 } } do
      local out = dir .. "/" .. case[1].model .. ".mp4"
      assert(client:generate(case[1], { out = out, interval = 0.05, timeout = 20 }))
      local s = assert(helper.read_file(out))
      assert.are.equal(files.VIDEO_BYTES, #s) -- video_size's default: padded after the samples
      plays(s, case[2], case[3], case[4], case[1].model)
    end
    -- a reference video of /media/, its colour picked by prompt=
    local http = require "socket.http"
    local body, status = http.request(emu.url .. "/media/dog.mp4?seconds=3&w=720&h=960&prompt=a%20dog")
    assert.are.equal(200, status)
    assert.is_true(body == media.mp4 { seconds = 3, width = 720, height = 960, prompt = "a dog" }, "not the dog's MP4")
    local path = plays(body, 720, 960, 3, "/media/")
    assert.is_true(first_picture(path) == flat(720, 960, h264.colour("a dog")), "not the dog's colour")
  end)
end)
