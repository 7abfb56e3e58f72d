-- The files the command line reads whole (docs/cli.md, "Input limits"): a batch's prompts file, a film's
-- storyboard, the API key's and the webhook secret's files.  Endless input (/dev/zero, which says it has no size)
-- is refused at the file's limit, read with a bound, under a memory cap the old whole read ran past; a file whose
-- size is over its limit is refused by that size; each a usage error naming the file and the limit, nothing sent.
-- A command that runs out of memory all the same ends in its one line, not a traceback.

local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run, lines, q = C.run, C.lines, helper.shell_quote

-- The VM under a cap of 1 GB of address space: a whole read of /dev/zero runs out of it within a second.
local CAPPED = "sh -c 'ulimit -v 1048576; exec \"$0\" \"$@\"' " .. q(helper.lua)

describe("the command line's input limits", function()
  local emu
  local env = C.session(function(e) emu = e end)
  local dir
  before_each(function() dir = helper.tmpdir() end)

  -- The first line of stderr of the command run under the cap, asserting exit 2.
  local function refused(args, e)
    local r = run(args, e or env(), { lua = CAPPED })
    assert.equals(2, r.code, r.err)
    return lines(r.err)[1]
  end

  it("/dev/zero as --prompts-file, a storyboard, --api-key-file or --notify-secret-file: refused at its limit, "
    .. "exit 2, nothing sent", function()
    assert.equals('starvideos batch: --prompts-file "/dev/zero" is larger than 16 MiB (its limit: split it into '
      .. "several batches)", refused { "batch", "--prompts-file", "/dev/zero", "--out-dir", dir, "--model", "videos",
      "--duration", "5" })
    assert.equals('starvideos film: "/dev/zero": the storyboard is larger than 4 MiB (its limit)',
      refused { "film", "/dev/zero", "--out", dir .. "/f.mp4", "--journal", dir .. "/j.jsonl" })
    local e = env()
    e.STARVIDEOS_API_KEY = nil
    assert.equals("starvideos status: the API key file /dev/zero is larger than 4096 bytes with no line end (its "
      .. "limit: the key goes on its first line)", refused({ "status", "video_1", "--api-key-file", "/dev/zero" }, e))
    assert.equals("starvideos generate: the webhook secret file /dev/zero is larger than 4096 bytes with no line "
      .. "end (its limit: the secret goes on its first line)", refused { "generate", "--model", "videos", "--prompt",
      "a cat", "--duration", "5", "--out", dir .. "/a.mp4", "--notify", "http://127.0.0.1:1/hook",
      "--notify-secret-file", "/dev/zero" })
    assert.same({}, emu:requests())
  end)

  it("a file over its limit is refused by its size, its text never read (a sparse file of zeros)", function()
    local function sized(name, bytes)
      local path = dir .. "/" .. name
      assert(helper.execute("truncate -s " .. bytes .. " " .. q(path)))
      return path
    end
    assert.equals('starvideos batch: --prompts-file "' .. dir .. '/p.txt" is larger than 16 MiB (its limit: split '
      .. "it into several batches)", refused { "batch", "--prompts-file", sized("p.txt", 16777217), "--out-dir", dir,
      "--model", "videos", "--duration", "5" })
    assert.equals('starvideos film: "' .. dir .. '/s.json": the storyboard is larger than 4 MiB (its limit)',
      refused { "film", sized("s.json", 4194305), "--out", dir .. "/f.mp4", "--journal", dir .. "/j.jsonl" })
    local e = env()
    e.STARVIDEOS_API_KEY = nil
    assert.equals("starvideos status: the API key file " .. dir .. "/k is larger than 4096 bytes (its limit: the "
      .. "key goes on its first line)", refused({ "status", "video_1", "--api-key-file", sized("k", 4097) }, e))
    assert.same({}, emu:requests())
  end)

  it("a command that runs out of memory says so in its one line, exit 1, no traceback", function()
    local path = dir .. "/p.txt"
    local f = assert(io.open(path, "w"))
    for i = 1, 300000 do f:write("a cat number ", i, " on a surfboard in the sea at dawn\n") end -- (15 MiB)
    f:close()
    local capped = "sh -c 'ulimit -v 102400; exec \"$0\" \"$@\"' " .. q(helper.lua) -- (100 MB: it starts in 30)
    local r = run({ "batch", "--prompts-file", path, "--out-dir", dir, "--model", "videos", "--duration", "5",
      "--dry-run" }, env(), { lua = capped })
    assert.equals(1, r.code, r.err)
    assert.equals("starvideos batch: internal error: not enough memory", lines(r.err)[1])
    assert.is_nil(r.err:find("traceback", 1, true), r.err)
    assert.same({}, emu:requests())
  end)

  it("a key file at its limit, and a key from stdin, are read as before: the first line", function()
    local e = env()
    local key = e.STARVIDEOS_API_KEY
    e.STARVIDEOS_API_KEY = nil
    local path = dir .. "/k"
    helper.write_file(path, key .. "\n" .. ("#"):rep(4096 - #key - 1))
    local r = run({ "status", "video_1", "--api-key-file", path }, e)
    assert.equals("starvideos status: not_found: query: HTTP 404: task not found", lines(r.err)[1])
    r = run({ "status", "video_1", "--api-key-file", "-" }, e, { stdin = key .. "\nmore\n" })
    assert.equals("starvideos status: not_found: query: HTTP 404: task not found", lines(r.err)[1])
  end)
end)
