-- client:sse's window in a journal (records/events.lua): the one case list of the event stream (spec/support/
-- sse_cases.lua) with every task run by another process of the journal (spec/support/sse_two.lua), a stream that
-- comes back with the last id that process's stream wrote, and the file's bound.
local helper = require "spec.helper"
local starvideos = require "starvideos"
local case_list = require "spec.support.case_list"
local cases = require "spec.support.sse_cases"
local two = require "spec.support.sse_two"

describe("client:sse's window in a journal two processes share", function()
  local emu, dir, p
  setup(function()
    emu = helper.emulator { queued = 0.3, processing = 0.3 }
    dir = helper.tmpdir()
    p = two.place(emu, dir, { journal = dir .. "/tasks.jsonl" })
  end)
  teardown(function()
    if p then p.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  case_list.each({ describe = describe, it = it }, "the event stream's cases", cases.cases,
    function(case) case.run(p, assert) end, nil, { "journal", "file", "lua" })

  it("resumes a stream of process B from the last id process A's stream wrote: the rest, nothing twice", function()
    two.resumed(p, dir, assert)
  end)

  it("keeps the file to its last events_window lines once past its bound, each kept line with its id", function()
    local Window = require "starvideos.records.events"
    local path = dir .. "/bound.jsonl"
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, journal = path }
    local w = Window.new(path, "k", c.ledger, 4)
    local line_bytes, every = Window.LINE_BYTES, Window.CHECK_EVERY
    Window.LINE_BYTES, Window.CHECK_EVERY = 8, 1
    local ok, err = pcall(function()
      local ids = {} -- (each entry's id as it was given, the file cut back at each put once past its bound)
      for i = 1, 12 do
        assert(w:put("entry " .. i))
        w:flush(5)
        local list = w:since(0)
        ids[i] = list[#list][1]
        assert.are.equal("entry " .. i, list[#list][2])
      end
      local function texts(list)
        local out = {}
        for i, e in ipairs(list) do out[i] = e[2] end
        return out
      end
      -- (cut back as 12 was queued, before or after the writer's thread wrote it: size lines at least, CHECK_EVERY
      -- more at most)
      local all = texts(w:since(0))
      assert.is_true(#all == 4 or #all == 5, #all .. " lines kept")
      assert.are.same({ "entry 9", "entry 10", "entry 11", "entry 12" }, { all[#all - 3], all[#all - 2], all[#all - 1],
        all[#all] })
      w:bound()
      local kept = w:since(0)
      assert.are.same({ "entry 9", "entry 10", "entry 11", "entry 12" }, texts(kept))
      assert.are.same({ ids[9], ids[10], ids[11], ids[12] }, { kept[1][1], kept[2][1], kept[3][1], kept[4][1] })
      assert.is_true(helper.file_size(path .. ".events") < 25 + 4 * 40, "the file cut back")
      local rest = w:since(ids[10]) -- (an id given before the cut: the lines after it)
      assert.are.same({ ids[11], ids[12] }, { rest[1][1], rest[2][1] })
      assert.are.equal(2, #rest)
    end)
    Window.LINE_BYTES, Window.CHECK_EVERY = line_bytes, every
    c:close()
    if not ok then error(err, 0) end
  end)
end)
