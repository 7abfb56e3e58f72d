-- The matrix's bucket column (spec/support/matrix.lua's sink place "bucket": an s3:// out, the s3 rock; s3rver
-- behind the specs' SigV4-checking proxy, rocks/s3/spec/support/s3_run.lua), against the emulator counting creates: a
-- script's generate_all into s3:// objects, its keys in AWS_* as a user gives them, interrupted (Ctrl-C), says
-- what was paid and the `resume --journal` that goes on; pasted, it pays for nothing again and each object ends
-- whole.
local helper = require "spec.helper"
local sha256 = require("starvideos.sign").sha256
local S3run = require "rocks.s3.spec.support.s3_run"
local C = require "spec.support.cli_run"

describe("Ctrl-C in a script whose out is s3://", function()
  local why = S3run.missing()
  local emu, st
  local env = C.session(function(e) emu = e end)
  setup(function() if not why then st = S3run.start {} end end)
  teardown(function() if st then st.stop() end end)

  it("generate_all: one error saying what was paid and naming `starvideos resume --journal`, which, pasted, pays "
    .. "for nothing again and saves each object whole", function()
    if why then pending(why) return end
    local aws = { AWS_ACCESS_KEY_ID = "S3RVER", AWS_SECRET_ACCESS_KEY = "S3RVER", AWS_ENDPOINT_URL = st.url }
    local dir = helper.tmpdir()
    local before = emu:creates()
    local cmd = C.interrupted_batch(dir, emu, string.format("{ journal = %q }", dir .. "/j.jsonl"),
      "s3://vids/ctrl/%04d.mp4", aws)
    assert.matches("starvideos resume --journal ", cmd, 1, true)
    for i = 1, 3 do assert.is_false(st.exists(string.format("ctrl/%04d.mp4", i)), "not saved before") end
    local pasted = C.run_printed(cmd, env(aws))
    assert.equals(0, pasted.code, pasted.err)
    assert.equals(before + 3, emu:creates(), "nothing paid again")
    for i = 1, 3 do
      local got = st.video(string.format("ctrl/%04d.mp4", i)) -- (the served video in it: up to the mark's box)
      assert.same({ #C.SAMPLE, sha256(C.SAMPLE) }, { got.served, got.served_sha256 }, "object " .. i)
    end
  end)
end)
