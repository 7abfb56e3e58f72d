-- The mark inside a video saved to a bucket (docs/lineage.md, "The mark inside the file"): the multipart upload's
-- last part ends with the XMP box (storage/object.lua, handed it by the job's seat), the object's recorded SHA-256
-- and size are the marked bytes', and Debian's exiftool reads IPTC's DigitalSourceType from the object fetched back
-- (s3rver behind the specs' SigV4-checking proxy: rocks/s3/spec/support/s3_run.lua).
local helper = require "spec.helper"
local S3run = require "rocks.s3.spec.support.s3_run"

local q = helper.shell_quote

describe("the mark of an object saved to s3:// (s3rver)", function()
  local why = S3run.missing() or (not helper.execute("command -v exiftool >/dev/null 2>&1") and "no exiftool")
  local emu, st
  setup(function()
    if why then return end
    emu = helper.emulator { queued = 0, processing = 0.2 }
    st = S3run.start()
  end)
  teardown(function()
    if st then st.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  local function client(opts)
    opts.base_url, opts.api_key, opts.interval, opts.min_interval = emu.url, emu.key, 0.1, 0.1
    opts.storage = { endpoint = st.url, access_key = "S3RVER", secret_key = "S3RVER" }
    return require("starvideos").new(opts)
  end

  -- The object at key as the SDK reads it, and its bytes (s3rver's file, the same SHA-256).
  local function fetched(key)
    local back = st.read(key)
    local bytes = assert(helper.read_file(st.dir .. "/vids/" .. key .. "._S3rver_object"))
    assert.equal(back.sha256, require("starvideos.sign").sha256(bytes), "s3rver's file is the object")
    return back, bytes
  end

  it("a video of 2 parts generated to s3://: exiftool reads DigitalSourceType from the object fetched back; its "
    .. "record's SHA-256 and size are the marked object's, its bytes before the box the served video's", function()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    emu:config { video_size = 6 * 1000 * 1000 } -- (two parts: the mark after the last)
    local c = client { journal = dir .. "/j.jsonl" }
    local t = assert(c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = "s3://vids/m/cat.mp4" }))
    local rec = assert(c:tasks())[1]
    c:close()
    local back, bytes = fetched("m/cat.mp4")
    assert.same({ back.sha256, back.bytes }, { t.sha256, #bytes })
    assert.same({ back.sha256, back.bytes }, { rec.sha256, rec.bytes })
    local served = helper.unmarked(bytes)
    assert.is_true(#served < #bytes, "the object ends with the mark's box")
    assert.equal(6 * 1000 * 1000, #served)
    local file = dir .. "/back.mp4"
    helper.write_file(file, bytes)
    local tags = assert(helper.json(helper.capture("exiftool -j -XMP:all " .. q(file))))[1]
    assert.equal("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia", tags.DigitalSourceType)
    assert.equal(t.id, tags.TaskId)
  end)

  it("mark = false: the object is the served video's bytes", function()
    if why then pending(why) return end
    emu:config { video_size = 100 * 1000 }
    local c = client { mark = false }
    local t = assert(c:generate({ model = "videos", prompt = "a dog", duration = 5 }, { out = "s3://vids/m/dog.mp4" }))
    c:close()
    local back, bytes = fetched("m/dog.mp4")
    assert.same({ back.sha256, 100 * 1000 }, { t.sha256, #bytes })
    assert.equal(bytes, helper.unmarked(bytes))
  end)
end)
