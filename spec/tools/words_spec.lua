-- What two commands say (issue 49): check names a local reference file as a file, not a URL; pending shows each
-- create's prompt where list does, not a hash.  (store check's: the redis rock's store_words_spec.lua.)

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run = C.run

describe("the words of check and pending", function()
  local emu
  local env = C.session(function(e) emu = e end)

  it("check --ref-image ./notimage.png names the file, not a URL", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/notimage.png", "hello, I am text\n")
    local out, _, code = helper.capture("cd " .. helper.shell_quote(dir) .. " && " .. helper.shell_quote(helper.lua)
      .. " " .. helper.shell_quote(C.ROOT .. "/bin/starvideos") .. " check --model videos --prompt 'a cat' "
      .. "--duration 5 --ref-image ./notimage.png 2>&1")
    assert.equals(2, code, out)
    assert.matches("--ref-image #1: the file ./notimage.png holds text (text), not media; referenceImages takes "
      .. "image media", out, 1, true)
    assert.is_nil(out:find("URL", 1, true), out)
  end)

  it("pending shows the prompt of each create, as list does", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a lost owl in the snow\n")
    emu:fault { method = "POST", path = "/v1/", after = true, drop = true }
    local r = run({ "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }, env())
    emu:clear_faults()
    assert.equals(1, r.code, r.out .. r.err)
    r = run({ "pending", "--journal", dir .. "/v/starvideos.jsonl" }, env())
    assert.equals(0, r.code, r.err)
    assert.matches("  videos  a lost owl in the snow\n", r.out, 1, true)
    local list = run({ "list", "--journal", dir .. "/v/starvideos.jsonl" }, env())
    assert.matches("a lost owl in the snow", list.out, 1, true)
    r = run({ "pending", "--journal", dir .. "/v/starvideos.jsonl", "--json" }, env())
    assert.equals("a lost owl in the snow", cjson.decode(r.out)[1].prompt)
  end)
end)
