-- The sink cases (spec/support/sink_cases.lua) on the file sink (download.lua) and on the bucket sink
-- (storage/object.lua, the sink point's s3 extension) against s3rver where it is installed
-- (rocks/s3/spec/support/s3_run.lua:
-- node and spec/npm's packages; else its cases are pending, saying why).  And the interface they hold,
-- docs/architecture.md's table: it names every use of a sink by the library, both sinks give it, and the list
-- covers each of its names.
local cases = require "spec.support.sink_cases"
local helper = require "spec.helper"
local S3run = require "rocks.s3.spec.support.s3_run"
local Sink = require "starvideos.sink"

local b = { describe = describe, it = it, after_each = after_each, assert = assert, pending = pending }

local emu
local function emulator()
  emu = emu or helper.emulator { queued = 0, processing = 0.1 }
  return emu
end
local store

teardown(function()
  if store then store.stop() end
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

cases.run("a bucket (storage/object.lua, s3rver)", function()
  store = S3run.start {}
  local dir, e, prefix = helper.tmpdir(), emulator(), "cases/" .. require("starvideos.core").random_id() .. "/"
  local function options()
    return { base_url = e.url, api_key = e.key, journal = dir .. "/tasks.jsonl",
      storage = { endpoint = store.url, access_key = "S3RVER", secret_key = "S3RVER" } }
  end
  local function key(out) return (out:gsub("^s3://vids/", "")) end
  return { sink = Sink.of(nil, "s3://vids/x.mp4"), emu = e, options = options, dir = "s3://vids/" .. prefix,
    out = function(name) return "s3://vids/" .. prefix .. name end,
    bad_out = "s3://vids", bad_dir = "s3:///",
    refusing = { storage = { endpoint = store.url, access_key = "S3RVER", secret_key = "not-the-key" } },
    saved = function(out)
      local r = store.exists(key(out)) and store.read(key(out))
      return r and { sha256 = r.sha256, bytes = r.bytes } or nil
    end,
    remove = function(out) assert(os.remove(store.dir .. "/vids/" .. key(out) .. "._S3rver_object")) end }
end, b, S3run.missing(), "bucket")

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

  it("is given by both sinks: each name a function (an optional one: the bucket's)", function()
    local sinks = { file = require "starvideos.download", bucket = require("starvideos.sink.s3").sink }
    assert.equal(sinks.file, Sink.of(nil, "v.mp4"))
    assert.equal(sinks.bucket, Sink.of(nil, "s3://b/v.mp4"))
    for on, s in pairs(sinks) do
      for _, n in ipairs(names) do
        if not (n.optional and on == "file") then assert.equal("function", type(s[n.name]), on .. "'s " .. n.name) end
      end
    end
  end)

  it("is held by the case list: each of its names covered by a case", function()
    local covered = require("spec.support.case_list").covered(cases.cases, listed, assert)
    for _, n in ipairs(names) do
      assert.truthy(covered[n.name], n.name .. " is covered by no case")
    end
  end)
end)
