-- File names from task ids (names.lua's file_name): injective, within the
-- filesystem's 255 bytes with ".mp4.part", readable for ordinary ids.
local helper = require "spec.helper"
local name = require("starvideos.names").file_name

describe("file names from task ids", function()
  after_each(function() helper.cleanup() end)

  it("keeps ordinary ids as they are", function()
    for _, id in ipairs { "abc-123_X.y", "video_1700000000abcdef", "a.b.c", "Z" } do
      assert.equal(id, name(id))
    end
  end)

  it("escapes every other byte as %XX, '%' and '~' and a leading '.' included", function()
    assert.equal("clip%2F1", name("clip/1"))
    assert.equal("clip%3A1", name("clip:1"))
    assert.equal("clip%252F1", name("clip%2F1"))
    assert.equal("a%7Eb", name("a~b"))
    assert.equal("%2E.", name(".."))
    assert.equal("%2E", name("."))
    assert.equal("%2Ehidden", name(".hidden"))
    assert.equal("x%00y%0A", name("x\0y\n"))
    assert.equal("%C3%A9t%C3%A9", name("été"))
  end)

  it("maps docs/batch.md's examples as docs/batch.md says", function()
    local doc = assert(helper.read_file(helper.root .. "/docs/batch.md"))
    local para = doc:match("\n## File names from task ids\n\n(.-)\n\n")
    assert.truthy(para, "docs/batch.md: no section '## File names from task ids'")
    local n = 0
    for id, file in para:gsub("%s+", " "):gmatch("`([^`]+)` (%l+ `[^`]+)`") do
      local verb, shown = file:match("^(%l+) `(.*)$")
      if verb == "is" or verb == "stays" then
        assert.equal(shown, name(id))
        n = n + 1
      end
    end
    assert.equal(3, n)
  end)

  it("refuses what is not a task id", function()
    assert.has_error(function() name("") end, 'file_name: expected a task id (a non-empty string), got ""')
    assert.has_error(function() name(nil) end, "file_name: expected a task id (a non-empty string), got nil")
  end)

  -- the ids of the cases below: collisions of the old names, every byte, every length
  local function ids()
    local list = { "clip/1", "clip:1", "clip%2F1", "clip_1", "clip%3A1", "clip~1", ".clip", "%2Eclip", "clip" }
    for b = 0, 255 do list[#list + 1] = "id" .. string.char(b) end
    -- non-ASCII ids of one byte length (the old names were all "____")
    for _, s in ipairs { "été!", "ça va", "中文", "日本", "\xff\xfe", "\xfe\xff" } do list[#list + 1] = s end
    for n = 1, 600 do
      list[#list + 1] = string.rep("a", n) -- plain: cut past 246 bytes
      list[#list + 1] = string.rep("é", math.ceil(n / 2)):sub(1, n) -- 6 bytes a byte once escaped
      list[#list + 1] = string.rep("a", n - 1) .. "/" -- differ only at the end, past the cut
      list[#list + 1] = string.rep("a", n - 1) .. ":"
    end
    return list
  end

  it("gives different ids different names, each within 255 bytes with .mp4.part", function()
    local seen, count = {}, 0
    for _, id in ipairs(ids()) do
      local n = name(id)
      if not seen[n] then count = count + 1 end
      assert.is_true(seen[n] == nil or seen[n] == id, "same name for two ids: " .. n)
      seen[n] = id
      assert.is_true(#(n .. ".mp4.part") <= 255, #n .. " bytes: " .. n)
      assert.truthy(n:find("^[A-Za-z0-9_.%%~-]+$"), n)
      assert.is_nil(n:find("^%."))
      if #id > 246 or n:find("~", 1, true) then -- the cut form: 229 bytes at most, "~", 16 hex digits
        assert.truthy(n:find("^[^~]+~%x+$") and #n:match("~(%x+)$") == 16, n)
      end
    end
    local list = ids()
    local distinct = {}
    for _, id in ipairs(list) do distinct[id] = true end
    local n = 0
    for _ in pairs(distinct) do n = n + 1 end
    assert.equal(n, count)
  end)

  it("creates each of those files on disk, and lists them back by name", function()
    local dir = helper.tmpdir()
    local want = {}
    for _, id in ipairs(ids()) do
      local file = name(id) .. ".mp4.part"
      if not want[file] then
        local f = assert(io.open(dir .. "/" .. file, "wb"))
        f:write(id)
        f:close()
        want[file] = id
      end
    end
    local listed = {}
    for _, file in ipairs(helper.listing(dir)) do listed[file] = true end
    for file, id in pairs(want) do
      assert.is_true(listed[file], "not on disk: " .. file)
      assert.equal(id, helper.read_file(dir .. "/" .. file)) -- no two ids shared a file
      listed[file] = nil
    end
    assert.same({}, listed)
  end)
end)
