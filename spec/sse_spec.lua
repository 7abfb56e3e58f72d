-- client:sse's writer form (a Lua script's server: client:sse{write = ...}, a job its client's step drives) passes
-- the one case list of the event stream (spec/support/sse_cases.lua; nginx's handler: spec/hosts/sse_nginx_spec.lua);
-- and what only this form has: a writer that refuses ends the stream, a bad option raises, the window's bound.
local helper = require "spec.helper"
local starvideos = require "starvideos"
local case_list = require "spec.support.case_list"
local cases = require "spec.support.sse_cases"

-- A place of the case list on one client (its jobs and its streams stepped together).
local function place(emu, dir)
  local client = starvideos.new { api_key = emu.key, base_url = emu.url, requests_per_second = 1e6 }
  local p, made = { emu = emu, client = client }, 0
  function p.start(o)
    made = made + 1
    assert(client:start({ model = "videos", prompt = o.prompt, duration = 5 },
      { out = dir .. "/" .. made .. ".mp4", tenant = o.tenant, interval = 0.2 }))
  end
  p.open, p.until_ = cases.opener(client)
  return p
end

describe("client:sse's writer", function()
  local emu, dir, p
  setup(function()
    emu = helper.emulator { queued = 0.3, processing = 0.3 }
    dir = helper.tmpdir()
    p = place(emu, dir)
  end)
  teardown(function()
    if p then p.client:close() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  case_list.each({ describe = describe, it = it }, "the event stream's cases", cases.cases,
    function(case) case.run(p, assert) end, nil, { "process", "file", "lua" })

  it("ends its job once the writer returns false, and a step then finishes it", function()
    local wrote = 0
    local job = p.client:sse { write = function() wrote = wrote + 1; return false end }
    assert.is_false(job.done)
    assert.is_true(helper.wait_until(function() p.client:step(0.02); return job.done end, 5))
    assert.are.equal(1, wrote)
    assert.are.equal("done", job.state)
  end)

  it("is cancelled by its client's close", function()
    local c = starvideos.new { api_key = emu.key, base_url = emu.url }
    local job = c:sse { write = function() return true end }
    c:close()
    assert.are.equal("cancelled", job.state)
  end)

  it("refuses a last_event_id that is not an id and a call without a writer outside nginx, naming them", function()
    assert.has_error(function() p.client:sse { write = print, last_event_id = "abc" } end,
      "bad option 'last_event_id' to 'sse' (an event id: a whole number >= 0 (or its text) expected, got \"abc\")")
    local ok, err = pcall(p.client.sse, p.client, {})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("bad option 'write' to 'sse'", 1, true), tostring(err))
  end)

  -- A key's window made again in the same second (os.time's second held, as a restart within it gives it), 6 events
  -- told in each, n times in one run: their ids.  In the process's memory, or with a journal (arg[3]) in its file.
  local AGAIN = [[
local second = tonumber(arg[1])
os.time = function() return second end -- (every window of this run made in that second)
local sv, sse = require "starvideos", require "starvideos.sse"
local out = {}
for _ = 1, tonumber(arg[2]) do -- (a key's last client closed, a new one made: its window made again)
  local c = sv.new { api_key = "k-again", base_url = "http://127.0.0.1:9", journal = arg[3] }
  local w, ids = sse.window(c.key, c.ledger), {}
  for _ = 1, 6 do assert(w:put(string.char(31, 31, 31) .. "{}")) end
  if w.flush then w:flush(5) end
  local list = w:since(0, 0, {})
  for i = #list - 5, #list do ids[#ids + 1] = string.format("%d", list[i][1]) end
  out[#out + 1] = table.concat(ids, " ")
  c:close()
end
print(table.concat(out, "\n"))
]]
  local function ids_of(text)
    local l = {}
    for id in text:gmatch("%d+") do l[#l + 1] = tonumber(id) end
    return l
  end

  local function again(journal)
    local second, runs = tostring(os.time()), {}
    for i = 1, 2 do -- (a process, then the same started again: each makes the window twice)
      local proc = helper.run_lua(dir, "again-" .. i, AGAIN, { second, "2", journal })
      runs[i] = proc.pipe:read("*a")
      assert.is_truthy(proc:close(), runs[i])
    end
    local ids = ids_of(runs[1] .. "\n" .. runs[2])
    assert.are.equal(24, #ids, runs[1] .. runs[2])
    for i = 2, #ids do
      assert.is_true(ids[i] > ids[i - 1], "id " .. i .. " after " .. ids[i - 1] .. ": " .. runs[1] .. "\n" .. runs[2])
    end
  end

  it("numbers a window made again in the same second after the one before (a process or a key's client started "
    .. "again): its ids only grow", function() again() end)

  it("numbers a journal's window after its ids before, its process started again in the same second", function()
    again(dir .. "/again.jsonl")
  end)

  it("numbers a window made again after every id of the one before: a reader come back with an old id gets it whole",
    function()
    local chunks = {}
    local t = "again-" .. os.time()
    p.start { tenant = t, prompt = "a window made again" }
    local s = p.client:sse { tenant = t, last_event_id = 41,
      write = function(ch) chunks[#chunks + 1] = ch; return true end }
    assert.is_true(p.until_(function()
      local evs = cases.parse(table.concat(chunks))
      return evs[1] and evs[#evs].event == "saved"
    end, 30))
    local evs = cases.parse(table.concat(chunks))
    assert.are.equal("created", evs[1].event)
    assert.is_true(evs[1].id > os.time() * 1000000 - 3600 * 1000000, "an id of this window's start: " .. evs[1].id)
    assert.is_truthy(s)
  end)

  it("tells a stream an again refused before paying as a failed event with its words", function()
    local chunks, t = {}, "refused-" .. os.time()
    p.client:sse { tenant = t, write = function(ch) chunks[#chunks + 1] = ch; return true end }
    local made, err = p.client:again("video_no_such_task", nil, { tenant = t })
    assert.is_nil(made)
    assert.is_true(p.until_(function() return cases.parse(table.concat(chunks))[1] ~= nil end, 5))
    local evs = cases.parse(table.concat(chunks))
    assert.are.same({ "failed", err.message, err.kind }, { evs[1].event, evs[1].data.error.message,
      evs[1].data.error.kind })
  end)

  it("tells a tenant's stream a step of the key's spend limit, never another tenant's tasks", function()
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, prices = { videos = 0.6 },
      spend_limit = { amount = 1, scope = "model", model = "videos" } }
    local chunks = {}
    c:sse { tenant = "watching", write = function(ch) chunks[#chunks + 1] = ch; return true end }
    assert(c:create({ model = "videos", prompt = "half the key's", duration = 5 }, { tenant = "paying" }))
    assert.is_true(helper.wait_until(function()
      c:step(0.02)
      return cases.parse(table.concat(chunks))[1] ~= nil
    end, 5))
    c:step(0.3)
    local evs = cases.parse(table.concat(chunks))
    assert.are.equal(1, #evs)
    assert.are.same({ "warning", "spend_limit", 50 }, { evs[1].event, evs[1].data.field, evs[1].data.percent })
    c:close()
  end)

  it("keeps the last events_window events of the key: an older id gets those kept, in order", function()
    helper.with_defaults({ events_window = 3 }, function()
      local e2 = helper.emulator { queued = 0.1, processing = 0.1, key = "window-key" }
      local told = 0 -- (the events of the stream's types the client's jobs told)
      local c = starvideos.new { api_key = e2.key, base_url = e2.url, on_event = function(ev)
        if require("starvideos.sse").TYPES[ev.type] then told = told + 1 end
      end }
      assert(c:generate({ model = "videos", prompt = "windowed", duration = 5 },
        { out = dir .. "/window.mp4", interval = 0.1 }))
      assert.is_true(told > 3)
      local late = {}
      c:sse { last_event_id = 0, write = function(ch) late[#late + 1] = ch; return true end }
      c:step(0)
      local kept = cases.parse(table.concat(late))
      local w = require("starvideos.sse").window(c.key)
      assert.are.equal(told, w:last() - w.base) -- (every event told was numbered)
      assert.are.same({ w:last() - 2, w:last() - 1, w:last() }, { kept[1].id, kept[2].id, kept[3].id })
      assert.are.equal(3, #kept)
      assert.are.equal("saved", kept[3].event)
      c:close()
      e2:stop()
    end)
  end)
end)
