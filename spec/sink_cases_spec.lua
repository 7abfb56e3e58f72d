-- The sink cases (spec/support/sink_cases.lua) on the file sink (download.lua); the s3 rock's
-- sink_cases_bucket_spec.lua runs them on its bucket sink.  And the interface they hold, docs/architecture.md's
-- table: it names every use of a sink by the library, the file sink gives it (the bucket: the s3 rock), and the list
-- covers each of its names.
local cases = require "spec.support.sink_cases"
local helper = require "spec.helper"
local Sink = require "starvideos.sink"

local b = { describe = describe, it = it, after_each = after_each, assert = assert, pending = pending }

local emu
local function emulator()
  emu = emu or helper.emulator { queued = 0, processing = 0.1 }
  return emu
end

teardown(function()
  if emu then emu:stop() end
  helper.cleanup()
end)

cases.run("a file (download.lua)", function()
  local dir, e = helper.tmpdir(), emulator()
  local function options() return { base_url = e.url, api_key = e.key, journal = dir .. "/tasks.jsonl" } end
  return { sink = Sink.of(nil, dir .. "/x.mp4"), emu = e, options = options, dir = dir,
    out = function(name) return dir .. "/" .. name end,
    bad_out = dir .. "/no-such-folder/x.mp4", bad_dir = dir .. "/no-such-folder",
    saved = function(out)
      local sum = require("starvideos.sign").sha256_file(out)
      return sum and { sha256 = sum, bytes = #helper.read_file(out) }
    end,
    remove = function(out) assert(os.remove(out)) end }
end, b, nil, "file")


describe("the sink interface (docs/architecture.md)", function()
  local names = cases.interface()
  local listed = {}
  for _, n in ipairs(names) do listed[n.name] = n end

  it("names every use of a sink by the library outside the sinks", function()
    assert.truthy(#names >= 8, #names .. " names read")
    local used = cases.uses()
    assert.truthy(used.fetch and used.check_out and used.check, "uses read")
    for name, path in pairs(used) do
      assert.truthy(listed[name], "sink." .. name .. " (" .. path .. ") is not in the table")
    end
  end)

  it("is given by the file sink: each name a function but an optional one", function()
    local file = require "starvideos.download"
    assert.equal(file, Sink.of(nil, "v.mp4"))
    cases.gives(names, file, "file", assert)
  end)

  it("is held by the case list: each of its names covered by a case", function()
    local covered = require("spec.support.case_list").covered(cases.cases, listed, assert)
    for _, n in ipairs(names) do
      assert.truthy(covered[n.name], n.name .. " is covered by no case")
    end
  end)
end)
