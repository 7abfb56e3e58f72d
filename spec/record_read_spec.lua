-- A provenance record is a regular file of bounded size (docs/lineage.md, "Where each video came from"): PATH.json
-- is read from one open handle judged a regular file (core.read_whole) of 1 MiB at most, and a parent a record names
-- is opened only as a regular file at an absolute path.  A remix whose parent's record is a FIFO, a link to
-- /dev/zero or larger than the bound, and `starvideos verify` of such a record or of a forged one naming a parent
-- that is a FIFO, /dev/zero or a relative path, each end at once with an error naming the file and what is wrong.
-- Every child runs under coreutils' timeout, so that a hang fails the case (exit 124) rather than the suite.
local helper = require "spec.helper"
local cli = require "spec.support.cli_run"
local P = require "starvideos.provenance"
local sign = require "starvideos.sign"

local KEY = cli.KEY
local q = helper.shell_quote

describe("a provenance record read with a bound", function()
  local emu, dir, env, parent, journal
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.1 }
    dir = helper.tmpdir()
    journal = dir .. "/j.jsonl"
    env = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
    local r = cli.run({ "generate", "--model", "videos", "--prompt", "a fox", "--duration", "5", "--out",
      dir .. "/fox.mp4", "--journal", journal, "--interval", "0.05", "--json" }, env)
    assert.equal(0, r.code, r.err)
    parent = assert(helper.json(r.out))
  end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)

  -- The command line under `timeout 20`, from the folder cwd (or the specs' own).
  local function run(args, cwd)
    local lua = (cwd and "cd " .. q(cwd) .. " && " or "") .. "exec timeout 20 " .. q(helper.lua)
    return cli.run(args, env, { lua = "sh -c " .. q(lua .. ' "$@"') .. " sh" })
  end
  local function verify(path, cwd) return run({ "verify", path }, cwd) end

  -- path.json replaced by what make(path .. ".json") makes, for fn's time.
  local function replaced(path, make, fn)
    local rec = path .. ".json"
    assert(os.rename(rec, rec .. ".kept"))
    assert(helper.execute(make(q(rec))))
    local ok, err = pcall(fn)
    os.remove(rec)
    assert(os.rename(rec .. ".kept", rec))
    if not ok then error(err, 0) end
  end

  local BAD = {
    { "a FIFO", function(r) return "mkfifo " .. r end, "is not a regular file: it is a FIFO" },
    { "a link to /dev/zero", function(r) return "ln -s /dev/zero " .. r end, "is not a regular file: it is a device" },
    { "300 MB", function(r) return "truncate -s 300M " .. r end, "is larger than 1 MiB" },
  }

  it("a remix whose parent's record is a FIFO, a link to /dev/zero or 300 MB: refused at once naming the record, "
    .. "nothing sent", function()
      local video = parent.path
      local before = emu:creates()
      for i, c in ipairs(BAD) do
        replaced(video, c[2], function()
          local r = run({ "remix", parent.id, "--out", dir .. "/remix" .. i .. ".mp4", "--journal", journal,
            "--prompt", "as a cartoon", "--interval", "0.05" })
          assert.is_not.equal(124, r.code, c[1] .. ": it hung")
          assert.is_not.equal(0, r.code, c[1])
          assert.matches(video .. ".json " .. c[3], r.err, 1, true)
        end)
      end
      assert.equal(before, emu:creates(), "nothing sent")
      local r = run({ "remix", parent.id, "--out", dir .. "/remix.mp4", "--journal", journal, "--prompt",
        "as a cartoon", "--interval", "0.05" })
      assert.equal(0, r.code, r.err)
      assert.equal(before + 1, emu:creates(), "its record whole again: the remix made")
    end)

  it("verify of a record that is a FIFO, a link to /dev/zero or 300 MB: exit 1 at once, naming it and what it is",
    function()
      for _, c in ipairs(BAD) do
        replaced(parent.path, c[2], function()
          local r = verify(parent.path)
          assert.equal(1, r.code, c[1] .. (r.code == 124 and ": it hung" or "") .. r.err)
          assert.matches(parent.path .. ".json " .. c[3], r.err, 1, true)
        end)
      end
      assert.equal(0, verify(parent.path).code)
    end)

  -- A child's record (sealed, as verify would find it whole) naming one parent whose video is at path and whose
  -- record's SHA-256 is that of the text beside it.
  local function forged(child, path, beside)
    helper.write_file(child, "a child's bytes")
    local rec = P.record(child, sign.sha256_file(child), #"a child's bytes", { model = "videos", task_id = "t2",
      parents = { { relation = "again", task = "t1", video = { path = path, sha256 = ("0"):rep(64), bytes = 1 },
        record_sha256 = sign.sha256(beside) } } })
    helper.write_file(child .. ".json", P.text(rec))
  end

  it("verify of a forged record naming a parent that is a FIFO, /dev/zero or a relative path: exit 1 at once, "
    .. "naming the parent and what it is", function()
      local text = '{"format": "starvideos-provenance/1"}\n'
      local fifo, zero, rel = dir .. "/fifo.mp4", dir .. "/zero.mp4", dir .. "/rel"
      assert(helper.execute("mkfifo " .. q(fifo) .. " && ln -s /dev/zero " .. q(zero) .. " && mkdir " .. q(rel)
        .. " && mkfifo " .. q(rel .. "/p.mp4")))
      for _, p in ipairs { fifo, zero, rel .. "/p.mp4" } do helper.write_file(p .. ".json", text) end
      for _, c in ipairs {
        { fifo, fifo .. " is not a regular file (a FIFO, a device or a socket): not read" },
        { zero, zero .. " is not a regular file (a FIFO, a device or a socket): not read" },
        { "p.mp4", "p.mp4 is not an absolute path (a record names its parent's file by one): not read", rel },
      } do
        local child = dir .. "/child.mp4"
        forged(child, c[1], text)
        local r = verify(child, c[3])
        assert.equal(1, r.code, c[1] .. (r.code == 124 and ": it hung" or "") .. r.err)
        assert.matches("parent 1 (again, task t1): " .. c[2], r.err, 1, true)
      end
    end)
end)
