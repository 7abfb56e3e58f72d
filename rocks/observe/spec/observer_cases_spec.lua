-- The observer cases (rocks/observe/spec/support/observer_cases.lua) on the one observer (starvideos.observe, the
-- observe rock's
-- observe/observer.lua), against the emulator.  And what they hold: docs/architecture.md's observe row names every
-- event the core calls, the observer has each as a method, and the list covers each; a client that neither
-- counts nor traces has no observer, every call site guards it, and a run then completes.
local cases = require "rocks.observe.spec.support.observer_cases"
local helper = require "spec.helper"
local starvideos = require "starvideos"

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

local emu
local function emulator()
  if not emu then
    emu = helper.emulator { queued = 0, processing = 0.3 }
    emu:config { rate_limit = { count = 1000, per = 60 }, rate_limit_headers = "x" }
  end
  emu:clear_faults()
  emu:fault { path = "/v1/result/", status = 503, count = 1 } -- (a poll sent again: a retry)
  return emu
end

teardown(function()
  if emu then emu:stop() end
  helper.cleanup()
end)

-- A client of the emulator (opts: more options), its journal in a folder of its own.
local function client(opts)
  local e, o = emulator(), { journal = helper.tmpdir() .. "/tasks.jsonl", prices = { videos = 0.4 } }
  o.base_url, o.api_key = e.url, e.key
  for k, v in pairs(opts or {}) do o[k] = v end
  return starvideos.new(o)
end

local function text() return require("starvideos.observe").text() end

local function pack(...) return { n = select("#", ...), ... } end
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- The real observer of c wrapped: each call recorded (its arguments; the families whose samples it moved), then
-- made on the real one.
local function record(c, calls)
  local real = assert(c.cfg.observe, "a client with metrics on has an observer")
  c.cfg.observe = setmetatable({}, { __index = function(_, name)
    local v = real[name]
    if type(v) ~= "function" then return v end
    return function(_, ...)
      local before = text()
      local out = pack(v(real, ...))
      local after, moved = text(), {}
      for _, f in ipairs(cases.EVENTS[name] and cases.EVENTS[name].families or {}) do
        if cases.samples(before, f) ~= cases.samples(after, f) then moved[f] = true end
      end
      calls[name] = calls[name] or {}
      table.insert(calls[name], { args = pack(...), moved = moved })
      return unpack(out, 1, out.n)
    end
  end })
end

cases.run("starvideos.observe (observe/observer.lua)", function()
  local recorded
  return {
    run = function()
      if recorded then return recorded end
      local c, calls = client { metrics = true }, {}
      record(c, calls)
      local task, err = c:generate(PARAMS, { out = helper.tmpdir() .. "/v.mp4", interval = 0.05 })
      c:close()
      assert(task, tostring(err))
      recorded = { calls = calls, task = task, client = c }
      return recorded
    end,
    observer = function() return require("starvideos.observe").new({}, "k-observer-cases", nil, true) end,
    text = text,
  }
end, { describe = describe, it = it, assert = assert }, { "journal", "lua" })

describe("the observe point's events (docs/architecture.md)", function()
  local documented, sites = cases.documented(), cases.sites()
  local named = {}
  for _, n in ipairs(documented) do named[n] = true end

  it("the docs' row names every event the core calls", function()
    assert.truthy(#sites >= 10, #sites .. " call sites read")
    for _, s in ipairs(sites) do
      assert.truthy(named[s.name], s.name .. " (" .. s.path .. ") is not in the observe row")
    end
  end)

  it("the observer has every event as a method, and the case list covers each", function()
    local o = require("starvideos.observe").new({}, "k-observer-methods", nil, true)
    local covered = require("spec.support.case_list").covered(cases.cases, named, assert)
    for _, name in ipairs(documented) do
      assert.equal("function", type(o[name]), "the observer's " .. name)
      assert.truthy(covered[name], name .. " is covered by no case")
      assert.truthy(cases.EVENTS[name], name .. " has no documented arguments in the list")
    end
  end)

  it("every call site guards the observer (an if on its line)", function()
    for _, s in ipairs(sites) do
      assert.truthy(s.line:find("if ", 1, true), s.path .. " calls " .. s.name .. " unguarded: " .. s.line)
    end
  end)

  it("a client without metrics or trace has no observer, and a run with a retry completes", function()
    local c = client()
    assert.is_nil(c.cfg.observe)
    local task, err = c:generate(PARAMS, { out = helper.tmpdir() .. "/v.mp4", interval = 0.05 })
    c:close()
    assert.truthy(task and task.path, tostring(err))
    assert.same({}, emu:call("GET", "/_emulator/faults"), "the fault was met: the run retried")
  end)
end)
