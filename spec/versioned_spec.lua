-- The versioned rockspecs are made from the scm ones (tools/versioned.lua; docs/install.md, "Releases"): `make
-- release` makes its own, `make rockspecs` writes the checkout's, and tools/shape_rocks.lua (make lint) fails a
-- checkout's versioned rockspec that is not what the scm one makes.  A change to an scm rockspec reaches the
-- release's; the release's own build (the rocks, the folder) is spec/hosts/release_spec.lua's.
local helper = require "spec.helper"
local versioned = dofile("tools/versioned.lua")
local load_rockspec = dofile("tools/rockspec.lua")

local q = helper.shell_quote
local V = require("starvideos.config").VERSION
local RANGE = versioned.needs_range("rocks/needs.lua")
-- the core's scm rockspec, then each product rock's of this checkout (SCMS[2]: a product rock's, for the cases below)
local SCMS = { "rockspec/starvideos-scm-1.rockspec" }
for f in helper.capture("ls rocks/*/*-scm-1.rockspec"):gmatch("%S+") do SCMS[#SCMS + 1] = f end

-- the rockspec text as LuaRocks reads it: its fields
local function fields(text)
  local path = helper.tmpdir() .. "/x.rockspec"
  helper.write_file(path, text)
  return load_rockspec(path)
end

describe("versioned rockspecs", function()
  it("are each what tools/versioned.lua makes of the scm one, in the checkout (make rockspecs) and from the "
    .. "command line", function()
    assert.is_string(RANGE)
    assert.is_true(#SCMS >= 5, #SCMS .. " scm rockspecs")
    for _, scm in ipairs(SCMS) do
      local path = scm:gsub("%-scm%-1%.", "-" .. V .. "-1.")
      local made = assert(versioned.make(helper.read_file(scm), scm, V, RANGE))
      assert.are.equal(helper.read_file(path), made, path)
      assert.are.equal(made, helper.capture(helper.lua .. " tools/versioned.lua " .. q(scm) .. " " .. V), scm)
    end
  end)

  it("say the scm one's fields but version, source and the core's range", function()
    for _, scm in ipairs(SCMS) do
      local text = helper.read_file(scm)
      local a, b = fields(text), fields(assert(versioned.make(text, scm, "1.2.3", RANGE)))
      assert.are.equal("1.2.3-1", b.version)
      assert.are.same({ url = "starvideos-1.2.3.tar.gz", dir = "starvideos-1.2.3" }, b.source)
      assert.are.same(a.build, b.build, scm)
      assert.are.same(a.description, b.description, scm)
      assert.are.same(a.external_dependencies, b.external_dependencies, scm)
      for i, dep in ipairs(a.dependencies) do
        local want = dep:match("^starvideos >=") and "starvideos " .. RANGE or dep
        assert.are.equal(want, b.dependencies[i], scm)
      end
      assert.are.equal(#a.dependencies, #b.dependencies)
    end
  end)

  it("carry a change to the scm rockspec: a module added there is in the versioned one", function()
    local scm = "rockspec/starvideos-scm-1.rockspec"
    local text = helper.read_file(scm):gsub('\n    %["starvideos%.video"%] = "lua/starvideos/video%.lua",\n',
      '%0    ["starvideos.added"] = "lua/starvideos/added.lua",\n')
    local b = fields(assert(versioned.make(text, scm, V, RANGE)))
    assert.are.equal("lua/starvideos/added.lua", b.build.modules["starvideos.added"])
    assert.are.equal("lua/starvideos/failure.lua", b.build.modules["starvideos.failure"])
  end)

  it("refuse what they cannot make, naming what is wrong", function()
    local scm = SCMS[2]
    local text = helper.read_file(scm)
    local cases = {
      { text, "0.4", RANGE, "the version must be X.Y.Z, not 0.4" },
      { text:gsub('\nversion = "scm%-1"', '\nversion = "1.0-1"'), V, RANGE, 'has no line version = "scm-1"' },
      { text:gsub("\nsource = ", "\nsrc = "), V, RANGE, "has no source = {...}" },
      { text, V, ">= 9.9, < 10.0", "needs starvideos >= 0.4: the core's range must be '>= 0.4, < X.Y', not " },
    }
    for _, case in ipairs(cases) do
      local out, err = versioned.make(case[1], scm, case[2], case[3])
      assert.is_nil(out)
      assert.truthy(err:find(case[4], 1, true), err)
    end
    local out, ok = helper.capture(helper.lua .. " tools/versioned.lua rockspec/nothing-scm-1.rockspec " .. V
      .. " 2>&1")
    assert.is_falsy(ok)
    assert.truthy(out:find("versioned: no rockspec rockspec/nothing-scm-1.rockspec", 1, true), out)
  end)

  it("drifted by hand in the checkout: tools/shape_rocks.lua names the file and make rockspecs", function()
    local root = helper.tmpdir()
    assert(helper.execute("cp -r rockspec rocks docs " .. q(root) .. "/"))
    local drifted = SCMS[2]:gsub("%-scm%-1%.", "-" .. V .. "-1.")
    local path = root .. "/" .. drifted
    helper.write_file(path, helper.read_file(path) .. "-- mended by hand\n")
    local bad = {}
    local function listing(cmd) -- (the shape's own: the lines of cmd run at root)
      local list = {}
      for line in helper.capture("cd " .. q(root) .. " && " .. cmd .. " 2>/dev/null"):gmatch("[^\n]+") do
        list[#list + 1] = line
      end
      return list
    end
    local id = function(s) return s end
    dofile("tools/shape_rocks.lua")(root, bad, listing, id, id, function() return "" end)
    local found
    for _, b in ipairs(bad) do
      found = found or b == drifted .. ": not what tools/versioned.lua makes of " .. SCMS[2]
        .. " (make rockspecs writes it)"
    end
    assert.is_true(found, table.concat(bad, "\n"))
  end)
end)
