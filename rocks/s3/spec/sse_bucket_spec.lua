-- client:sse with the video saved to a bucket (an s3:// out: s3rver behind the specs' SigV4-checking proxy,
-- rocks/s3/spec/support/s3_run.lua): the task run by another process of the journal (spec/support/sse_two.lua), every
-- event of its run told to this process's stream, its `saved` event naming the object and its SHA-256.
local helper = require "spec.helper"
local S3run = require "rocks.s3.spec.support.s3_run"
local cases = require "spec.support.sse_cases"
local two = require "spec.support.sse_two"

local why = S3run.missing()

describe("client:sse with an s3:// out", function()
  local emu, st, dir, p
  setup(function()
    if why then return end
    emu, st, dir = helper.emulator { queued = 0.2, processing = 0.2 }, S3run.start {}, helper.tmpdir()
    p = two.place(emu, dir, { journal = dir .. "/tasks.jsonl", storage = { endpoint = st.url, access_key = "S3RVER",
      secret_key = "S3RVER" } }, function(n) return "s3://vids/sse/" .. n .. ".mp4" end)
  end)
  teardown(function()
    if p then p.stop() end
    if st then st.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("tells a run saved to a bucket by another process, its saved event naming the object and its SHA-256", function()
    if why then pending(why) return end
    cases.cases[1].run(p, assert) -- (every event once, in order: the case list's first case)
    local s = p.open { tenant = "bucket" }
    p.start { tenant = "bucket", prompt = "a run into the bucket" }
    local saved
    assert.is_true(p.until_(function()
      local evs = s:events()
      saved = evs[#evs] and evs[#evs].event == "saved" and evs[#evs] or nil
      return saved ~= nil
    end, 60), s:text())
    assert.are.equal("s3://vids/sse/2.mp4", saved.data.path)
    assert.is_true(st.exists("sse/2.mp4"), "the object is in the bucket")
    local object = helper.shell_quote(st.dir .. "/vids/sse/2.mp4._S3rver_object")
    assert.are.equal(helper.capture("sha256sum " .. object):match("^(%x+)"), saved.data.sha256)
    s:close()
  end)
end)
