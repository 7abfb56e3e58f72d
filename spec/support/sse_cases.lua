-- The one list of cases of client:sse (docs/reference.md#clientsse), run on each of its two forms: the writer of a
-- Lua script (spec/sse_spec.lua: client:sse{write = ...} stepped with the client) and the handler inside nginx
-- (spec/hosts/sse_nginx_spec.lua: content_by_lua, read by curl -N).  A place p gives:
--   p.start{tenant =, prompt =}   a generate of one task to a file started there (it runs in the background)
--   p.open{tenant =, task =, last_event_id =, heartbeat =}   a stream: s:events() (what it wrote so far, parsed:
--                                 {id =, event =, data =}s in order), s:text() (its bytes), s:close()
--   p.until_(pred, seconds)       pred() asked until true (the place moved meanwhile): whether it became true
--   p.emu                         the emulator it runs against
-- Each case takes a tenant of its own, so that the window, which outlives a case, holds other cases' events too.
local cjson = require "cjson.safe"
local helper = require "spec.helper"

local M = {}

local n = 0
local function tenant()
  n = n + 1
  return string.format("sse-%d-%d", os.time(), n)
end

-- SSE's text as events: {id = number, event = type, data = the decoded JSON}; comments left out.
function M.parse(text)
  local out = {}
  for block in text:gmatch("(.-)\n\n") do
    local ev = {}
    for line in (block .. "\n"):gmatch("(.-)\n") do
      local k, v = line:match("^(%a+): ?(.*)$")
      if k == "id" then ev.id = tonumber(v) elseif k == "event" then ev.event = v
      elseif k == "data" then ev.data = cjson.decode(v) end
    end
    if ev.id then out[#out + 1] = ev end
  end
  return out
end

local function last_of(s, kind)
  local evs = s:events()
  for i = #evs, 1, -1 do if evs[i].event == kind then return evs[i], evs end end
  return nil, evs
end

-- Until the stream s has an event of kind ("saved", "failed") for each of `count` tasks: its events.
local function ended(p, s, kind, count)
  local evs
  assert(p.until_(function()
    local seen = 0
    evs = s:events()
    for _, e in ipairs(evs) do if e.event == kind then seen = seen + 1 end end
    return seen >= (count or 1)
  end, 60), "the stream did not tell " .. kind .. ": " .. s:text())
  return evs
end

-- A stream of tenant t opened with the id of the middle one of all (the events a stream of t told, at least 3):
-- the rest of all, the same ids, types and tasks, and nothing twice.
function M.resume(p, t, all, assert)
  assert.is_true(#all >= 3)
  local k = math.floor(#all / 2)
  local b = p.open { tenant = t, last_event_id = all[k].id }
  assert.is_true(p.until_(function() return #b:events() >= #all - k end, 20), b:text())
  p.until_(function() return false end, 0.5) -- (anything more it would tell, given the time to)
  local rest = b:events()
  assert.are.equal(#all - k, #rest)
  for i, e in ipairs(rest) do
    assert.are.same({ all[k + i].id, all[k + i].event, all[k + i].data.id }, { e.id, e.event, e.data.id })
  end
  b:close()
end

-- A place's streams on client: p.open (open(o) -> s: s:text(), s:events(), s:close()) and p.until_ (the client
-- stepped meanwhile).
function M.opener(client)
  local function until_(pred, seconds)
    return helper.wait_until(function()
      client:step(0.02)
      return pred()
    end, seconds)
  end
  return function(o)
    local chunks, s = {}, {}
    local opts = { write = function(chunk)
      if s.closed then return false end
      chunks[#chunks + 1] = chunk
      return true
    end }
    for k, v in pairs(o) do opts[k] = v end
    s.job = client:sse(opts)
    function s.text() client:step(0); return table.concat(chunks) end
    function s.events() return M.parse(s.text()) end
    function s.close() s.closed = true end
    return s
  end, until_
end

local function ids_in(evs)
  local ids = {}
  for _, e in ipairs(evs) do if e.data and e.data.id then ids[e.data.id] = true end end
  return ids
end

M.cases = {
  { name = "tells every event of a run once, in order, each with its id, type and data",
    promise = "sse",
    run = function(p, assert)
      local t = tenant()
      local s = p.open { tenant = t }
      p.start { tenant = t, prompt = "a run told" }
      local evs = ended(p, s, "saved")
      local kinds, last = {}, 0
      for _, e in ipairs(evs) do
        assert.is_true(e.id > last, "ids in order: " .. s:text())
        last = e.id
        assert.are.equal(e.event, e.data.type)
        kinds[#kinds + 1] = e.event
      end
      assert.are.equal("created", kinds[1])
      assert.are.equal("saved", kinds[#kinds])
      local statuses = {}
      for _, e in ipairs(evs) do if e.event == "status" then statuses[#statuses + 1] = e.data.status end end
      assert.are.equal("completed", statuses[#statuses])
      local saved = evs[#evs].data
      assert.is_truthy(saved.path and saved.sha256, "the saved event names the file and its SHA-256")
      assert.is_nil(saved.task, "the service's whole task (its video_url) is not sent")
      s:close()
    end },

  { name = "a stream given the last id it saw gets the rest and nothing twice",
    promise = "sse",
    run = function(p, assert)
      local t = tenant()
      local a = p.open { tenant = t }
      p.start { tenant = t, prompt = "a run resumed" }
      local all = ended(p, a, "saved")
      a:close()
      M.resume(p, t, all, assert)
    end },

  { name = "a stream given an id past the newest (2^63 - 1, 1e300) tells what comes from now, each once",
    promise = { "sse", "sse_bounds" },
    run = function(p, assert)
      local t = tenant()
      local a = p.open { tenant = t }
      p.start { tenant = t, prompt = "a run before the far ids" }
      local before = #ended(p, a, "saved")
      local far = { p.open { tenant = t, last_event_id = "9223372036854775807" },
        p.open { tenant = t, last_event_id = "1e300" } }
      p.until_(function() return false end, 0.5) -- (anything they would tell of the window, given the time to)
      for _, b in ipairs(far) do assert.are.same({}, b:events(), "the window told again: " .. b:text()) end
      p.start { tenant = t, prompt = "a run after the far ids" }
      local all = ended(p, a, "saved", 2)
      for _, b in ipairs(far) do
        ended(p, b, "saved")
        local got = b:events()
        assert.are.equal(#all - before, #got, b:text())
        for i, e in ipairs(got) do
          assert.are.same({ all[before + i].id, all[before + i].event }, { e.id, e.event })
        end
        b:close()
      end
      a:close()
    end },

  { name = "a stream of a tenant tells that tenant's tasks only",
    promise = "sse",
    run = function(p, assert)
      local t1, t2 = tenant(), tenant()
      local s1, s2 = p.open { tenant = t1 }, p.open { tenant = t2 }
      p.start { tenant = t1, prompt = "the first tenant's" }
      p.start { tenant = t2, prompt = "the second tenant's" }
      local e1, e2 = ended(p, s1, "saved"), ended(p, s2, "saved")
      local ids1, ids2 = ids_in(e1), ids_in(e2)
      local n1 = 0
      for id in pairs(ids1) do
        n1 = n1 + 1
        assert.is_nil(ids2[id], "a task of both tenants' streams: " .. id)
      end
      assert.are.equal(1, n1)
      s1:close()
      s2:close()
    end },

  { name = "a stream of a task tells that task's events only",
    promise = "sse",
    run = function(p, assert)
      local t = tenant()
      local all = p.open { tenant = t }
      p.start { tenant = t, prompt = "task one" }
      p.start { tenant = t, prompt = "task two" }
      local evs = ended(p, all, "saved", 2)
      local first = assert(evs[1].data.id)
      local one = p.open { task = first }
      local got = ended(p, one, "saved")
      for _, e in ipairs(got) do assert.are.equal(first, e.data.id) end
      local n1 = 0
      for _, e in ipairs(evs) do if e.data.id == first then n1 = n1 + 1 end end
      assert.are.equal(n1, #got)
      all:close()
      one:close()
    end },

  { name = "a failed task's event carries the failure's words",
    promise = "sse",
    run = function(p, assert)
      local t = tenant()
      p.emu:config { outcome = "failed" }
      local s = p.open { tenant = t }
      local ok, err = pcall(function()
        p.start { tenant = t, prompt = "a run that fails" }
        local failed = ended(p, s, "failed")
        local e = last_of(s, "failed") or failed[#failed]
        assert.are.equal("task_failed", e.data.error.kind)
        assert.is_truthy(e.data.error.message:find("failed", 1, true), e.data.error.message)
        assert.is_nil(last_of(s, "saved"))
      end)
      p.emu:config { outcome = "completed" }
      s:close()
      if not ok then error(err, 0) end
    end },

  { name = "an event carries no path of the server's: a failure's words name a file by its base name and a URL "
    .. "without its password, a saved event its file by its name",
    promise = { "sse", "sse_bounds" },
    run = function(p, assert)
      local t = tenant()
      local s = p.open { tenant = t }
      p.start { tenant = t, prompt = "a run saved, named" }
      ended(p, s, "saved")
      local was = p.emu:config()
      p.emu:config { outcome = "failed", error = "cannot append to the journal /srv/private/sv/tasks.jsonl (--journal "
        .. "/srv/private/sv/tasks.jsonl), nor to redis://:hunter2-pass@10.0.0.5:6379/0" }
      local ok, err = pcall(function()
        p.start { tenant = t, prompt = "a run that fails, naming paths" }
        ended(p, s, "failed")
      end)
      p.emu:config { outcome = was.outcome, error = was.error }
      if not ok then error(err, 0) end
      local found = {} -- (every text of every event's data that names an absolute path or a URL's password)
      local function look(v)
        if type(v) == "table" then for _, x in pairs(v) do look(x) end
        elseif type(v) == "string" and (v:find("^/") or v:find("[%s\"'(=]/[^%s/]") or v:find("://[^/%s]*@")) then
          found[#found + 1] = v
        end
      end
      for _, e in ipairs(s:events()) do look(e.data) end
      assert.are.same({}, found)
      local saved, failed = last_of(s, "saved"), last_of(s, "failed")
      assert.is_truthy(saved.data.path:find("^[^/]+%.mp4$"), saved.data.path)
      assert.are.equal("cannot append to the journal tasks.jsonl (--journal tasks.jsonl), nor to "
        .. "redis://10.0.0.5:6379/0", failed.data.error.message:match("cannot append.*$"))
      s:close()
    end },

  { name = "a stream with nothing to tell writes a heartbeat comment every heartbeat seconds",
    promise = "sse",
    run = function(p, assert)
      local s = p.open { tenant = tenant(), heartbeat = 0.2 }
      assert.is_true(p.until_(function()
        local _, k = s:text():gsub(": heartbeat\n\n", "")
        return k >= 2
      end, 10), "no heartbeat: " .. s:text())
      assert.are.same({}, s:events())
      s:close()
    end },
}

return M
