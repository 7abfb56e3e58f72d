-- A journal on a disk that fills (issue: a journal that never tears): a batch whose journal sits on an 8 KiB
-- tmpfs (mounted here: root only, else pending) leaves every record whole or none (the file cut back to the
-- last whole record), says so at error level, and exits non-zero.  Before: exit 0, "5 saved", the journal cut
-- mid-record at 4096 bytes, nothing said.
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local cjson = require "cjson.safe"

local q = helper.shell_quote
local KEY = "sk-journal-full-spec"

describe("a journal whose disk fills", function()
  local emu, dir, mnt, skip
  shared_emulator({ queued = 0.1, processing = 0.1, key = KEY }, function(e) emu = e end)
  setup(function()
    dir = helper.tmpdir()
    mnt = helper.capture("mktemp -d /tmp/starvideos-full.XXXXXX"):gsub("\n$", "") -- (not in dir: removed first)
    local out, ok = helper.capture("mount -t tmpfs -o size=8k tmpfs " .. q(mnt) .. " 2>&1")
    if not ok then skip = "cannot mount a tmpfs here (root only): " .. out end
  end)
  teardown(function()
    if not skip then helper.execute("umount " .. q(mnt)) end
    helper.execute("rmdir " .. q(mnt))
    helper.cleanup()
  end)

  it("keeps every record whole or none, writes an error line and exits non-zero", function()
    if skip then pending(skip) return end
    local prompts = dir .. "/prompts.txt"
    helper.write_file(prompts, "one\ntwo\nthree\nfour\nfive\n")
    local journal = mnt .. "/tasks.jsonl"
    local out, _, code = helper.capture(table.concat({ "env", "STARVIDEOS_API_KEY=" .. q(KEY),
      "STARVIDEOS_BASE_URL=" .. q(emu.url), q(helper.lua), q(helper.root .. "/bin/starvideos"), "batch",
      "--prompts-file", q(prompts), "--out-dir", q(dir .. "/videos"), "--journal", q(journal), "--model", "videos",
      "--duration", "5", "--interval", "0.1", "</dev/null", "2>" .. q(dir .. "/stderr") }, " "))
    local err = helper.read_file(dir .. "/stderr") or ""
    assert.are_not.equal(0, code, out .. err)
    -- said at error level: a record nobody waited for (a status) as the journal's error line; a created record, by
    -- each task that awaited it (which of the two the disk fills at is the writer's timing)
    assert.truthy(err:find(": error: journal " .. journal .. ": ", 1, true)
      or out:find("was created but cannot write the journal " .. journal .. ": ", 1, true), out .. err)
    local text = assert(helper.read_file(journal))
    print(string.format("\n%d bytes of journal, exit %s; %s", #text, tostring(code), (err:match("[^\n]*error[^\n]*"))))
    assert.truthy(#text > 0 and text:sub(-1) == "\n", "the journal does not end with a whole line")
    local n = 0
    for line in text:gmatch("([^\n]*)\n") do
      n = n + 1
      assert.is_table(cjson.decode(line), "line " .. n .. " is not a whole record: " .. line)
    end
  end)
end)
