-- core.commit_start with starvideos.sign's hasher (download.lua's commit of a libcurl
-- download): the .part checked (a whole MP4) and hashed on the commit's helper thread,
-- read back through a descriptor of its own that must be the file written, before its
-- fsync and rename.

local helper = require "spec.helper"
local core = require "starvideos.core"
local sign = require "starvideos.sign"
local Fake = require "spec.support.fake_transport"

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

  -- The commit's thread held up: the .part's name taken by a FIFO, which the thread's read opens and waits on until
  -- a writer comes.  (Were close or the collection to wait for the thread, a writer 20 s later lets it end: that
  -- writer's mark then says so.)
  for _, how in ipairs { "closed", "collected" } do
    it("a commit's handle " .. how .. " while its thread works: the caller never waits for it", function()
      local part = dir .. "/" .. how .. ".mp4.part"
      local safety, fed = dir .. "/" .. how .. ".safety", dir .. "/" .. how .. ".fed"
      local fh = assert(core.part_open(part, 0))
      assert(fh:write("the video"))
      assert(fh:flush())
      assert(os.remove(part))
      assert.is_true(helper.execute("mkfifo " .. helper.shell_quote(part)))
      assert.is_true(helper.execute("( sleep 20; [ -e " .. helper.shell_quote(fed) .. " ] || { touch "
        .. helper.shell_quote(safety) .. "; echo late > " .. helper.shell_quote(part) .. "; } ) >/dev/null 2>&1 &"))
      local h = assert(core.commit_start(fh, dir .. "/" .. how .. ".mp4", sign.SHA256))
      assert.is_nil(h:poll())
      if how == "closed" then
        h:close()
        assert.has_error(function() h:poll() end, "the commit handle was closed")
      else
        h = nil -- luacheck: ignore h
        collectgarbage()
        collectgarbage()
      end
      assert.is_nil(helper.read_file(safety), "the " .. how .. " handle waited for the commit's thread")
      helper.write_file(fed, "")
      local w = assert(io.open(part, "w")) -- (the thread's open returns: another file took the name, it ends)
      w:close()
    end)
  end

  it("sign.part_commit (nginx's pool) commits prepare()'s values and gives the SHA-256", function()
    local fh = assert(core.part_open(dir .. "/n.mp4.part", 0))
    assert(fh:write(string.rep("n", 70000)))
    local fd, size, name = fh:prepare()
    local ok, sum = sign.part_commit(fd, size, name, dir .. "/n.mp4")
    fh:close()
    assert.same({ true, sha256sum(dir .. "/n.mp4") }, { ok, sum })
    assert.equal(64, #sum)
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

  -- A .part of `bytes` through a handle.
  local function part(name, bytes)
    local fh = assert(core.part_open(dir .. "/" .. name .. ".part", 0))
    assert(fh:write(bytes))
    return fh, dir .. "/" .. name .. ".part", dir .. "/" .. name
  end

  it("with mp4 checks the .part in the read that hashes it: a whole MP4 of its seconds is committed, anything "
    .. "else stays unrenamed with the check's words and a third value, true", function()
    local video = Fake.mp4(150000, 5)
    local fh, _, dest = part("w.mp4", video)
    local ok, sum, notwhole = helper.committed(assert(core.commit_start(fh, dest, sign.SHA256, 5)))
    assert.same({ true, sha256sum(dest) }, { ok, sum })
    assert.is_nil(notwhole)
    local cases = { { video, 9, "duration 5.0 s, the task says 9 s" }, { video:sub(1, 100000), true, "runs past" },
      { "<!DOCTYPE html><html></html>", true, "not an MP4" } }
    for i, case in ipairs(cases) do
      local p, path
      fh, path, dest = part("bad" .. i .. ".mp4", case[1])
      ok, p, notwhole = helper.committed(assert(core.commit_start(fh, dest, sign.SHA256, case[2])))
      assert.same({ false, true }, { ok, notwhole })
      assert.truthy(p:find(case[3], 1, true), p)
      assert.is_false(helper.exists(dest))
      assert.equal(#case[1], helper.file_size(path))
    end
    -- nginx's pool: the same check in sign.part_commit
    do
      local path
      fh, path, dest = part("pool.mp4", "<!DOCTYPE html><html></html>")
      local fd, size, name = fh:prepare()
      local a, why, c = sign.part_commit(fd, size, name, dest, true)
      fh:close()
      assert.same({ nil, true }, { a, c })
      assert.truthy(why:find("not an MP4", 1, true), why)
      assert.is_false(helper.exists(dest))
      assert.truthy(helper.exists(path))
    end
    fh = part("arg.mp4", video)
    local raised, err = pcall(core.commit_start, fh, dir .. "/arg.mp4", nil, -5)
    assert.is_false(raised)
    assert.truthy(tostring(err):find("bad argument #4", 1, true), tostring(err))
    fh:close()
  end)
end)

describe("core.part_open(path, offset, left): where a download goes on, the one rule of both transports", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(helper.cleanup)

  local function filled(path, n) -- a .part of n bytes, its handle left open (an attempt that ended short)
    local fh, at = core.part_open(path, 0)
    assert.equal(0, at)
    assert(fh:write(string.rep("a", n)))
    assert(fh:flush())
    return fh
  end

  it("goes on with the handle left while it is still the file and holds the offset, cut there", function()
    local path = dir .. "/v.mp4.part"
    local left = filled(path, 100)
    local fh, at = core.part_open(path, 60, left)
    assert.same({ 60, 60 }, { at, fh:at() })
    assert.equal(60, helper.file_size(path))
    assert.has_error(function() left:at() end) -- (taken: the new handle is the same descriptor)
    fh:close()
  end)

  it("starts from byte 0, in a new file, when the file left was replaced or is shorter than the offset", function()
    local path = dir .. "/v.mp4.part"
    local left = filled(path, 100)
    assert(os.rename(filled(dir .. "/other", 100) and dir .. "/other", path)) -- another file at the name
    local fh, at = core.part_open(path, 60, left)
    assert.same({ 0, 0, 0 }, { at, fh:at(), helper.file_size(path) })
    fh:close()
    left = filled(path, 100)
    fh, at = core.part_open(path, 150, left) -- (more than the file holds)
    assert.same({ 0, 0 }, { at, fh:at() })
    fh:close()
  end)

  it("with no handle left, goes on from an earlier call's file when it holds the offset, else from byte 0", function()
    local path = dir .. "/v.mp4.part"
    filled(path, 100):close()
    local fh, at = core.part_open(path, 80)
    assert.same({ 80, 80 }, { at, fh:at() })
    fh:close()
    fh, at = core.part_open(path, 500)
    assert.same({ 0, 0, 0 }, { at, fh:at(), helper.file_size(path) })
    fh:close()
    local none, why = core.part_open(dir .. "/no/such/folder/v.part", 0)
    assert.is_nil(none)
    assert.truthy(why:find("cannot write", 1, true), why)
  end)
end)
