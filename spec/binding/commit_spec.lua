-- core.commit_start with starvideos.sign's hasher (download.lua's commit of a libcurl
-- download): the .part hashed on the commit's helper thread, read back through a
-- descriptor of its own that must be the file written, before its fsync and rename.

local helper = require "spec.helper"
local core = require "starvideos.core"
local sign = require "starvideos.sign"

local function sha256sum(path)
  return (helper.capture("sha256sum " .. helper.shell_quote(path)):match("^(%x+)"))
end

describe("core.commit_start(part, dest, sign.SHA256)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(helper.cleanup)

  it("commits the .part and gives its SHA-256, as sha256sum reads the file", function()
    local fh = assert(core.part_open(dir .. "/v.mp4.part", 0))
    for i = 1, 40 do assert(fh:write(string.rep(string.char(i), 50000))) end -- 2 MB, the last bytes buffered
    local ok, sum = helper.committed(assert(core.commit_start(fh, dir .. "/v.mp4", sign.SHA256)))
    assert.is_true(ok)
    assert.equal(sha256sum(dir .. "/v.mp4"), sum)
    assert.equal(2000000, helper.file_size(dir .. "/v.mp4"))
    assert.is_false(helper.exists(dir .. "/v.mp4.part"))
  end)

  it("of an empty file too", function()
    local fh = assert(core.part_open(dir .. "/e.part", 0))
    local ok, sum = helper.committed(assert(core.commit_start(fh, dir .. "/e.mp4", sign.SHA256)))
    assert.same({ true, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }, { ok, sum })
  end)

  it("hashes nothing and commits nothing when another file took the .part's name", function()
    local fh = assert(core.part_open(dir .. "/r.mp4.part", 0))
    assert(fh:write("the video"))
    assert(fh:flush())
    assert(os.remove(dir .. "/r.mp4.part"))
    helper.write_file(dir .. "/r.mp4.part", "another file")
    local ok, why = helper.committed(assert(core.commit_start(fh, dir .. "/r.mp4", sign.SHA256)))
    assert.is_false(ok)
    assert.equal("cannot commit " .. dir .. "/r.mp4.part: another file took its name during the download", why)
    assert.is_false(helper.exists(dir .. "/r.mp4"))
    assert.equal("another file", helper.read_file(dir .. "/r.mp4.part"))
  end)

  it("sign.part_commit (nginx's pool) commits prepare()'s values and gives the SHA-256; core's alone", function()
    local fh = assert(core.part_open(dir .. "/n.mp4.part", 0))
    assert(fh:write(string.rep("n", 70000)))
    local fd, size, name = fh:prepare()
    local ok, sum = sign.part_commit(fd, size, name, dir .. "/n.mp4")
    fh:close()
    assert.same({ true, sha256sum(dir .. "/n.mp4") }, { ok, sum })
    assert.equal(64, #sum)
    fh = assert(core.part_open(dir .. "/m.mp4.part", 0))
    assert(fh:write(string.rep("n", 70000)))
    fd, size, name = fh:prepare()
    assert.same({ true }, { core.part_commit(fd, size, name, dir .. "/m.mp4") })
    fh:close()
    assert.equal(sum, sha256sum(dir .. "/m.mp4"))
  end)

  it("without a hasher polls true alone; anything but the hasher is refused before the .part is taken", function()
    local fh = assert(core.part_open(dir .. "/p.part", 0))
    for _, bad in ipairs { "SHA256", 1, {}, io.stdout } do
      local ok, err = pcall(core.commit_start, fh, dir .. "/p.mp4", bad)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("bad argument #3", 1, true), tostring(err))
    end
    assert.same({ true }, { helper.committed(assert(core.commit_start(fh, dir .. "/p.mp4"))) })
  end)
end)
