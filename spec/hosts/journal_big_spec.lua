-- A journal of 80 MB (the hosts tier: writing it takes most of a minute of a core; moved
-- from spec/records/journal_spec.lua).
local helper = require "spec.helper"
local compact = require "starvideos.records.compact"
local samples = require "starvideos.records.samples"

-- Every sample a reader gives, reading max_bytes per call.
local function all_samples(path, max_bytes)
  local reader, out = samples.reader(path), {}
  repeat
    local list, done = reader:next(max_bytes)
    for _, s in ipairs(list) do out[#out + 1] = s end
  until done
  return out
end

-- Issue 13: the schedule's reading of a big journal costs a bounded slice per call.
describe("a journal of 80 MB", function()
  local big = require "bench.lib.big_journal" -- (bench/journal_read.lua times its reading)
  local dir, path, tasks
  local PROMPT, kind_of = big.PROMPT, big.kind_of

  setup(function()
    dir = helper.tmpdir()
    path = dir .. "/big.jsonl"
    tasks = big.write(path, 80e6)
  end)
  teardown(function() helper.cleanup() end)

  -- the samples a reader must give: per kind the newest SAMPLE_KEEP, newest first
  local function newest(first, last)
    local want, per = {}, {}
    for i = last, first, -1 do
      local model, duration = kind_of(i)
      local key = model .. duration
      per[key] = (per[key] or 0) + 1
      if per[key] <= require("starvideos.config").DEFAULTS.samples then want[#want + 1] = i end
    end
    return want
  end

  it("reads its newest samples 64 KiB a call, never more, and stops at its cap", function()
    assert.is_true(helper.file_size(path) >= 80e6)
    -- the work of a call is bounded by the bytes it reads (a frame's time is a
    -- bench figure, bench/journal: not asserted here): count them at the file
    local reader, list, calls, most, total = samples.reader(path), {}, 0, 0, 0
    local f, read = reader.f, 0
    reader.f = setmetatable({}, { __index = function(_, name)
      return function(_, ...)
        local a, b = f[name](f, ...)
        if name == "read" and type(a) == "string" then read = read + #a end
        return a, b
      end
    end })
    local done = false
    while not done do
      read = 0
      local slice
      slice, done = reader:next(65536)
      most, total, calls = math.max(most, read), total + read, calls + 1
      for _, s in ipairs(slice) do list[#list + 1] = s.took end
    end
    local got = list
    assert.equal(65536, most)
    assert.equal(samples.BYTES, total)
    assert.equal(samples.BYTES / 65536, calls) -- the byte cap, far from the start
    -- the newest tasks of each kind, newest first, from the last 8 MiB only
    local want = newest(1, tasks)
    local oldest = got[#got]
    assert.is_true(tasks - oldest < samples.BYTES / #PROMPT)
    for i, took in ipairs(got) do assert.equal(want[i], took) end
  end)

  it("compacts to its samples, which the reader then gives the same", function()
    local function tooks()
      local t = {}
      for i, sample in ipairs(all_samples(path, 65536)) do t[i] = sample.took end
      return t
    end
    local before = tooks()
    local stats = assert(compact.compact(path))
    assert.equal(4 * require("starvideos.config").DEFAULTS.samples, stats.samples)
    assert.equal(0, stats.unsettled)
    assert.is_true(stats.after_bytes < 200e3, "after: " .. stats.after_bytes)
    local after = tooks()
    assert.same(newest(1, tasks), after)
    assert.same(before, after)
  end)
end)
