-- The sink cases (spec/support/sink_cases.lua) on the bucket sink (storage/object.lua, the sink point's s3
-- extension) against s3rver where it is installed (support/s3_run.lua: node and spec/npm's packages; else its cases
-- are pending, saying why), and the sink interface (docs/architecture.md) it gives, optional names too.  The file
-- sink's run: the core's spec/sink_cases_spec.lua.
local cases = require "spec.support.sink_cases"
local helper = require "spec.helper"
local S3run = require "rocks.s3.spec.support.s3_run"
local Sink = require "starvideos.sink"

local b = { describe = describe, it = it, after_each = after_each, assert = assert, pending = pending }

local emu, store
local function emulator()
  emu = emu or helper.emulator { queued = 0, processing = 0.1 }
  return emu
end

teardown(function()
  if store then store.stop() end
  if emu then emu:stop() end
  helper.cleanup()
end)

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

describe("the sink interface (docs/architecture.md) on the bucket", function()
  it("is given by the bucket sink, the sink point's s3:// extension: each name a function, optional ones too",
    function()
      local bucket = require("starvideos.sink.s3").sink
      assert.equal(bucket, Sink.of(nil, "s3://b/v.mp4"))
      cases.gives(cases.interface(), bucket, "bucket", assert)
    end)
end)
