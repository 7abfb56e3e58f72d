-- starvideos.shell: the one shell_word of the library, the command line and the
-- emulator (what they print for a person to paste into a shell).

local helper = require "spec.helper"
local word = require("starvideos.shell").word

describe("starvideos.shell.word", function()
  it("leaves a plain word bare", function()
    for _, s in ipairs { "out.mp4", "/tmp/v-1/clip_2.mp4", "sk-emu:a@b,c+d" } do
      assert.equal(s, word(s))
    end
  end)

  it("quotes what a shell would read otherwise, and the shell reads it back as it was", function()
    for _, s in ipairs { "", "my video.mp4", "it's", "~/v.mp4", "$HOME/v.mp4", "a;rm -rf x", "`x`", "a\nb", "*", "'",
      "a=b", "100%" } do
      local w = word(s)
      assert.not_equal(s, w, "left bare: " .. s)
      local out, ok = helper.capture("printf '%s' " .. w)
      assert.is_true(ok, w)
      assert.equal(s, out, "the shell read " .. w .. " otherwise")
    end
  end)
end)
