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

  -- A process that tells a few events and ends (every CLI command): its window of size events (events_window),
  -- each line bounded at line_bytes, `count` status events told, its client closed.
  local SHORT = [[
local path, count, size, line_bytes = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
require("starvideos.config").DEFAULTS.events_window = size
require("starvideos.records.events").LINE_BYTES = line_bytes
local sv, told = require "starvideos", require "starvideos.told"
local c = sv.new { api_key = "k-short-runs", base_url = "http://127.0.0.1:9", journal = path }
local record = told.recorder(told.window(c.key, c.ledger))
for i = 1, count do record({ type = "status", id = "video_" .. i, status = "processing" }, "short") end
c:close()
print("told " .. count)
]]

  it("keeps the file within its bound however few events each of many processes tells, a new stream the window's "
    .. "count at most", function()
    local path, size, line_bytes, runs, each = dir .. "/short.jsonl", 10, 200, 40, 5
    helper.write_file(dir .. "/short.lua", SHORT)
    for i = 1, runs do
      local out = helper.capture(helper.CHILD_ENV .. helper.shell_quote(helper.lua) .. " " .. helper.shell_quote(dir
        .. "/short.lua") .. " " .. helper.shell_quote(path) .. " " .. each .. " " .. size .. " " .. line_bytes
        .. " 2>&1")
      assert.are.equal("told " .. each .. "\n", out, "run " .. i)
    end
    local bytes = helper.file_size(path .. ".events")
    assert.is_true(bytes <= 25 + size * line_bytes, bytes .. " bytes left by " .. runs .. " runs of " .. each
      .. " events (the bound: " .. (25 + size * line_bytes) .. ")")
    local config = require "starvideos.config"
    local window = config.DEFAULTS.events_window
    config.DEFAULTS.events_window = size
    local c = starvideos.new { api_key = "k-short-runs", base_url = "http://127.0.0.1:9", journal = path }
    local cases_ = require "spec.support.sse_cases"
    local open, until_ = cases_.opener(c)
    local ok, err = pcall(function()
      local s = open { tenant = "short" }
      assert.is_true(until_(function() return s.text():find("retry:", 1, true) ~= nil end, 10), s.text())
      local evs = s.events()
      assert.are.equal(size, #evs, #evs .. " events told to a new stream (the window: " .. size .. ")")
      s.close()
    end)
    config.DEFAULTS.events_window = window
    c:close()
    if not ok then error(err, 0) end
  end)
end)
