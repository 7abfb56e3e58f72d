-- The emulator's videos play: H.264 in MP4 (rocks/emulator/lua/starvideos/emulator/mp4.lua,
-- h264.lua) that ffmpeg decodes without an error, of the duration and the
-- picture size asked.  Each model's sizes (every ratio it takes, at 720p) at
-- its shortest and longest duration, as the emulator serves them; the writer's
-- other shapes (moov at the end, fragmented, padded, 1080 rows, a QuickTime
-- brand, pictures too small for the bar or the digit); what the pictures show
-- (the prompt's colours, a bar that fills as they play, the second's digit),
-- pixel by pixel; a task's video through the emulator over HTTP, downloaded by
-- the library from its video_url; and /media/'s refusal of sizes ffmpeg cannot
-- decode.  Needs ffmpeg (Debian's package `ffmpeg`, in the Makefile's DEPS);
-- pends without it.

local helper = require "spec.helper"
local files = require "starvideos.emulator.files"
local media = require "starvideos.emulator.media"
local h264 = require "starvideos.emulator.h264"
local mp4 = require "starvideos.emulator.mp4"

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

-- Pictures n of the list (from 0) of the file at path, decoded, of w x h: each as 4:2:0 planes (Y, Cb, Cr).
local function pictures(path, w, h, list)
  local select = {}
  for i, n in ipairs(list) do select[i] = "eq(n\\," .. n .. ")" end
  local raw = helper.capture("ffmpeg -nostdin -v error -i " .. q(path) .. " -vf "
    .. q("select=" .. table.concat(select, "+")) .. " -vsync 0 -f rawvideo -pix_fmt yuv420p -")
  local size = w * h + 2 * math.ceil(w / 2) * math.ceil(h / 2)
  assert.are.equal(size * #list, #raw)
  local out = {}
  for i = 1, #list do out[i] = raw:sub((i - 1) * size + 1, i * size) end
  return out
end

-- The colour {y, cb, cr} of pixel x, y (from 0) of picture p (pictures') of width w and height h.
local function pixel(p, w, h, x, y)
  local cw, ch = math.ceil(w / 2), math.ceil(h / 2)
  local c = math.floor(y / 2) * cw + math.floor(x / 2)
  return { p:byte(y * w + x + 1), p:byte(w * h + c + 1), p:byte(w * h + cw * ch + c + 1) }
end

-- The seven segments of a digit, each by a cell of it ({column, row} of its 3 x 5 cells).
local SEGMENT_AT = { a = { 1, 0 }, b = { 2, 1 }, c = { 2, 3 }, d = { 1, 4 }, e = { 0, 3 }, f = { 0, 1 }, g = { 1, 2 } }
local DIGIT_OF = { abcdef = 0, bc = 1, abdeg = 2, abcdg = 3, bcfg = 4, acdfg = 5, acdefg = 6, abc = 7, abcdefg = 8,
  abcdfg = 9 }

-- The number picture p (w x h) shows in colour c: `places` digits of cells of
-- `cell` pixels (48 at 720 rows, 16 under 240), a cell from the top left corner
-- and apart; a digit it cannot read as the segments it shows, in brackets.
local function number(p, w, h, c, cell, places)
  local out = {}
  for i = 0, places - 1 do
    local lit = {}
    for _, name in ipairs { "a", "b", "c", "d", "e", "f", "g" } do
      local at = SEGMENT_AT[name]
      local x, y = cell * (at[1] + 1 + 4 * i) + cell / 2, cell * (at[2] + 1) + cell / 2
      if table.concat(pixel(p, w, h, x, y), ",") == table.concat(c, ",") then lit[#lit + 1] = name end
    end
    local segments = table.concat(lit)
    out[#out + 1] = DIGIT_OF[segments] or "[" .. segments .. "]"
  end
  return table.concat(out)
end

-- The pixels from the left of row y of picture p (1280 wide) of colour c.
local function run_of(p, y, c)
  local n = 0
  while n < 1280 and table.concat(pixel(p, 1280, 720, n, y), ",") == table.concat(c, ",") do n = n + 1 end
  return n
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
    -- too small for the bar and the digit (1x1, 2 rows), for the digit (8 rows), and just for both (9 rows)
    for _, wh in ipairs { { 1, 1 }, { 640, 40 }, { 640, 128 }, { 80, 144 } } do
      plays(media.mp4 { seconds = 1.5, width = wh[1], height = wh[2] }, wh[1], wh[2], 1.5, wh[1] .. "x" .. wh[2])
    end
  end)

  it("show the prompt's colours, a bar that fills as they play and the digit of the second, in a darker shade",
    function()
      local fox, whale = h264.colours("a red fox"), h264.colours("a blue whale")
      local apart = 0
      for i = 1, 3 do apart = apart + math.abs(fox[1][i] - whale[1][i]) end
      assert.is_true(apart >= 60, "the fox's and the whale's backgrounds are alike: " .. apart)
      -- a colour word picks the hue: the fox reads red (much Cr, little Cb), the whale blue
      assert.is_true(fox[1][3] >= 160 and fox[1][2] < 128, "the red fox is not red: " .. table.concat(fox[1], ","))
      assert.is_true(whale[1][2] >= 160 and whale[1][3] < 128, "the blue whale is not blue: "
        .. table.concat(whale[1], ","))
      local last = {}
      for _, case in ipairs { { "a red fox", fox }, { "a blue whale", whale } } do
        local path = plays(media.mp4 { seconds = 3, prompt = case[1] }, 1280, 720, 3, case[1])
        local c = case[2]
        local p = pictures(path, 1280, 720, { 0, 15, 29 })
        for i, pic in ipairs(p) do
          for _, at in ipairs { { 1279, 0 }, { 640, 360 }, { 1279, 719 }, { 0, 719 }, { 300, 100 } } do
            assert.are.same(c[1], pixel(pic, 1280, 720, at[1], at[2]), case[1] .. " " .. i .. ": the background")
          end
        end
        -- the bar, along the bottom: a sliver, half, all of it
        local bar = { run_of(p[1], 680, c[2]), run_of(p[2], 680, c[2]), run_of(p[3], 680, c[2]) }
        assert.is_true(bar[1] > 0 and bar[1] < 100, case[1] .. ": the first bar " .. bar[1])
        assert.is_true(math.abs(bar[2] / 1280 - 16 / 30) < 0.05, case[1] .. ": the middle bar " .. bar[2])
        assert.are.equal(1280, bar[3], case[1] .. ": the last bar")
        -- the digit: second 0, 1, 2
        assert.are.same({ "0", "1", "2" }, { number(p[1], 1280, 720, c[2], 48, 1), number(p[2], 1280, 720, c[2], 48, 1),
          number(p[3], 1280, 720, c[2], 48, 1) }, case[1])
        last[#last + 1] = p[3]
      end
      assert.is_false(last[1] == last[2])
      -- two digits when the last second has two: 09 at 9.5 s, 10 at 10.5 s, 13 at 13.5 s
      local path = plays(media.mp4 { seconds = 14, prompt = "a red fox" }, 1280, 720, 14, "14 s")
      local p = pictures(path, 1280, 720, { 95, 105, 135 })
      assert.are.same({ "09", "10", "13" }, { number(p[1], 1280, 720, fox[2], 48, 2),
        number(p[2], 1280, 720, fox[2], 48, 2), number(p[3], 1280, 720, fox[2], 48, 2) })
      -- four in an hour's /media/ video: 1234 at 1234.5 s (at 320x176, cells of 16 pixels)
      path = plays(media.mp4 { seconds = 3600, width = 320, height = 176, prompt = "a clock" }, 320, 176, 3600, "1 h")
      local at = helper.capture("ffmpeg -nostdin -v error -ss 1234.5 -i " .. q(path)
        .. " -frames:v 1 -f rawvideo -pix_fmt yuv420p -")
      assert.are.equal("1234", number(at, 320, 176, h264.colours("a clock")[2], 16, 4))
    end)

  it("play as the library downloads them from a task's video_url, in its prompt's colours", function()
    local emu = helper.emulator { key = "k-video", queued = 0, processing = 0 } -- (video_colours "fixed")
    finally(function() emu:stop() end)
    local client = require("starvideos").new { api_key = "k-video", base_url = emu.url }
    finally(function() client:close() end)
    local dir = helper.tmpdir()
    local function download(params, name)
      local out = dir .. "/" .. name .. ".mp4"
      assert(client:generate(params, { out = out, interval = 0.05, timeout = 20 }))
      return assert(helper.read_video(out)) -- (the bytes served)
    end
    for _, case in ipairs { { { model = "videos", prompt = "a kitten", duration = 4, ratio = "9:16" }, 720, 1280, 4 },
      { { model = "starvideos_o3", prompt = "a kitten", duration = 15 }, 720, 1280, 15 },
      { { model = "videos_fast", prompt = "a kitten", duration = 6 }, 1280, 720, 6 } } do
      local s = download(case[1], case[1].model)
      assert.are.equal(files.VIDEO_BYTES, #s) -- video_size's default: padded after the samples
      assert.is_true(s == files.video(case[4], nil, case[2], case[3]), case[1].model .. ": not files.video's")
      plays(s, case[2], case[3], case[4], case[1].model)
    end
    -- the emulator's own default: each task's video in its prompt's colours
    assert.are.equal("prompt", emu:config { video_colours = "prompt" }.video_colours)
    local got = {}
    for _, prompt in ipairs { "a red fox", "a blue whale" } do -- (red and blue)
      local s = download({ model = "videos", prompt = prompt, duration = 4 }, (prompt:gsub(" ", "_")))
      assert.is_true(s == files.video(4, nil, 1280, 720, prompt), prompt .. ": not files.video's of its prompt")
      local path = plays(s, 1280, 720, 4, prompt)
      got[#got + 1] = pixel(pictures(path, 1280, 720, { 0 })[1], 1280, 720, 640, 360)
      assert.are.same(h264.colour(prompt), got[#got], prompt)
    end
    assert.are_not.same(got[1], got[2])
    -- a reference video of /media/, its colour picked by prompt=
    local http = require "socket.http"
    local body, status = http.request(emu.url .. "/media/dog.mp4?seconds=3&w=720&h=960&prompt=a%20dog")
    assert.are.equal(200, status)
    assert.is_true(body == media.mp4 { seconds = 3, width = 720, height = 960, prompt = "a dog" }, "not the dog's MP4")
    local path = plays(body, 720, 960, 3, "/media/")
    assert.are.same(h264.colour("a dog"), pixel(pictures(path, 720, 960, { 0 })[1], 720, 960, 700, 500))
  end)

  it("/media/ refuses a picture larger than ffmpeg decodes with a 400 naming the limit, and serves the largest",
    function()
    local emu = helper.emulator { key = "k-media" }
    finally(function() emu:stop() end)
    local http = require "socket.http"
    local cjson = require "cjson"
    for _, case in ipairs { { 16384, 16384, "2^28" }, { 16256, 16256, "2^28" }, { 65535, 65535, "at most 32767" },
      { 32768, 16, "at most 32767" }, { 16, 32768, "at most 32767" } } do
      local what = case[1] .. "x" .. case[2]
      local body, status = http.request(emu.url .. "/media/big.mp4?w=" .. case[1] .. "&h=" .. case[2])
      assert.are.equal(400, status, what)
      local message = cjson.decode(body).error.message
      assert.are.equal(1, message:find("media: " .. what .. ": ", 1, true), message)
      assert.is_truthy(message:find(case[3], 1, true), message)
      assert.has_error(function() media.mp4 { seconds = 1, width = case[1], height = case[2] } end)
    end
    -- the largest that ffmpeg decodes (16240x16240 needs 900 MB to: the rule's own check)
    assert.is_true(mp4.decodable(16240, 16240))
    assert.is_nil(mp4.decodable(16256, 16241)) -- (16256x16256 in macroblocks)
    plays(media.mp4 { seconds = 0.2, width = 32767, height = 16 }, 32767, 16, 0.2, "32767 wide")
    plays(media.mp4 { seconds = 0.2, width = 16, height = 32767 }, 16, 32767, 0.2, "32767 tall")
  end)
end)
