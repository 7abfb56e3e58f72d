-- The journal file itself: what survives a crash mid-write.
local helper = require "spec.helper"
local journal = require "starvideos.journal"

describe("the journal", function()
  local dir, path
  before_each(function()
    dir = helper.tmpdir()
    path = dir .. "/tasks.jsonl"
  end)
  after_each(function() helper.cleanup() end)

  it("starts a new line after a torn last line, so the next task is not lost", function()
    assert(journal.append(path, { event = "created", id = "a" }))
    local f = assert(io.open(path, "a"))
    f:write('{"event":"created","id":"b') -- a crash mid-write
    f:close()
    assert(journal.append(path, { event = "created", id = "c" }))
    local list, bad = journal.read(path)
    assert.equal(1, bad)
    assert.same({ "a", "c" }, { list[1].id, list[2].id })
  end)

  it("folds statuses and downloads into one entry per task, in creation order", function()
    assert(journal.append(path, { event = "created", id = "a", model = "videos" }))
    assert(journal.append(path, { event = "created", id = "b", model = "videos" }))
    assert(journal.append(path, { event = "status", id = "a", status = "completed" }))
    assert(journal.append(path, { event = "downloaded", id = "a", path = "/x/a.mp4" }))
    assert(journal.append(path, { event = "status", id = "b", status = "failed" }))
    local list = journal.read(path)
    assert.equal(2, #list)
    assert.same({ "completed", "/x/a.mp4" }, { list[1].status, list[1].path })
    assert.same({}, journal.unfinished(list))
  end)

  it("says why it cannot write, naming the file", function()
    local ok, err = journal.append(dir .. "/missing/dir/tasks.jsonl", { event = "created", id = "a" })
    assert.is_nil(ok)
    assert.matches("cannot open the journal", err)
  end)

  it("says why it cannot read a journal that is not there", function()
    local list, err = journal.read(dir .. "/none.jsonl")
    assert.is_nil(list)
    assert.matches("cannot read the journal", err)
  end)
end)
