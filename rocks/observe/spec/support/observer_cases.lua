-- One list of cases that every observer passes (docs/architecture.md "Extension points", the row observe: the
-- events the core calls on cfg.observe), run by rocks/observe/spec/observer_cases_spec.lua on the one observer
-- (starvideos.observe, observe/observer.lua).  A real run against the emulator, on a client with metrics on whose
-- observer is wrapped to record each call (its arguments, and the metrics' text before and after it), is what
-- the cases read: each event is called with its documented arguments and moves the families it feeds.
--
-- A case: name; covers, the events it holds (every event of the docs' row is covered by one); run(env, assert)
-- with
--   env.run()      the recorded run (once per env): calls (event -> list of { args =, n =, moved = { family ->
--                  true } }), task (the generate's), client
--   env.observer() a fresh observer of the implementation, counting (store's case: a store's commands need a
--                  redis-server, the hosts tier's)
--   env.text()     the metrics' text

local M = {}

local function is(t, v) return type(v) == t end
local function maybe(t, v) return v == nil or type(v) == t end
-- An event: a plain table (the core's observed.lua makes it), never a job or a request (each has a metatable).
local function event(v) return type(v) == "table" and getmetatable(v) == nil end

-- Each event: its documented arguments (a check of the call's, and the reason a call fails it), the families its
-- calls move (a family's samples, a filter of its lines: store's, operation="store").
M.EVENTS = {
  exchange = { args = "(ev)", families = { "starvideos_request_duration_seconds", "starvideos_requests_total" },
    check = function(a) local ev = a[1]
      return event(ev) and is("string", ev.op) and is("number", ev.t) and maybe("number", ev.started)
        and maybe("number", ev.status) and maybe("table", ev.err) and is("string", ev.wire)
        and maybe("number", ev.bytes) and is("boolean", ev.poll) and is("boolean", ev.of_job) and a[2] == nil
    end }, -- (bytes: a download's or an exchange's, from its offset; never an API answer's limits)
  retry = { args = "(err)", families = { "starvideos_retries_total" },
    check = function(a) return is("table", a[1]) and is("string", a[1].kind) and a[2] == nil end },
  created = { args = "(ev)", families = { "starvideos_creates_total" },
    check = function(a) return event(a[1]) and is("string", a[1].model) and maybe("boolean", a[1].made) end },
  cost = { args = "(model, price)", families = { "starvideos_cost_total" },
    check = function(a) return is("string", a[1]) and is("number", a[2]) end },
  budget = { args = "(obj, t, at)", families = { "starvideos_budget_wait_seconds" },
    check = function(a) return is("table", a[1]) and is("number", a[2]) and maybe("number", a[3]) end },
  rate_limit = { args = "(seen)", families = { "starvideos_rate_limit_remaining" },
    check = function(a) return is("table", a[1]) and maybe("number", a[1].remaining) end },
  noticed = { args = "(ev, t)", families = { "starvideos_notice_lag_seconds" },
    check = function(a) return event(a[1]) and is("string", a[1].id) and is("number", a[2]) end },
  saved = { args = "(ev)", families = { "starvideos_videos_total", "starvideos_video_seconds_total" },
    check = function(a) return event(a[1]) and is("string", a[1].model) and is("number", a[1].seconds) end },
  state = { args = "(ev, t)", families = { "starvideos_tasks" },
    check = function(a) return event(a[1]) and is("string", a[1].state) and is("boolean", a[1].done)
      and is("number", a[2]) end },
  store = { args = "(seconds, ok)", families = { 'operation="store"' },
    check = function(a) return is("number", a[1]) and is("boolean", a[2]) end },
}

-- The lines of text that are samples of family (a name, or a filter of the lines, such as a label).
function M.samples(text, family)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if not line:find("^#") and line:find(family, 1, true) then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

local function event_case(name)
  local e = M.EVENTS[name]
  return { name = name .. e.args .. ": a method of the observer, called in a run with its documented arguments; "
    .. "the metrics then show " .. table.concat(e.families, ", ") .. " moved",
    covers = { name }, promise = "metrics",
    run = function(env, assert)
      local calls = env.run().calls[name]
      assert.truthy(calls and #calls > 0, name .. " was not called in the run")
      local moved = {}
      for i, call in ipairs(calls) do
        assert.truthy(e.check(call.args), name .. "'s call " .. i .. " has other arguments than " .. e.args)
        for f in pairs(call.moved) do moved[f] = true end
      end
      for _, f in ipairs(e.families) do
        assert.truthy(moved[f], name .. " moved no sample of " .. f)
        assert.truthy(M.samples(env.text(), f) ~= "", f .. " has no sample")
      end
    end }
end

M.cases = {}
for _, name in ipairs { "exchange", "retry", "created", "cost", "budget", "rate_limit", "noticed", "saved",
  "state" } do
  M.cases[#M.cases + 1] = event_case(name)
end

M.cases[#M.cases + 1] = {
  name = "store(seconds, ok): a method of the observer (a store's command answered); the metrics then show the "
    .. "store's durations (its real calls: the hosts tier's, on a redis-server)",
  covers = { "store" },
  run = function(env, assert)
    local o = env.observer()
    assert.equal("function", type(o.store))
    local before = M.samples(env.text(), 'operation="store"')
    o:store(0.002, true)
    o:store(0.003, false)
    local after = M.samples(env.text(), 'operation="store"')
    assert.truthy(after ~= before, "store moved nothing")
    assert.matches('code="2xx"', after, 1, true)
    assert.matches('code="error"', after, 1, true)
  end }

-- The events the core calls (cfg.observe:NAME(...), and o:NAME(...) where o is a local of cfg.observe) outside
-- the observer's rock: a list of { name =, path =, line = (its text) }.
function M.sites()
  local helper = require "spec.helper"
  local sites = {}
  local files = io.popen("cd " .. helper.shell_quote(helper.root) .. " && ls lua/starvideos/*.lua "
    .. "lua/starvideos/*/*.lua rocks/*/lua/starvideos/*/*.lua | grep -v '^rocks/observe/'")
  for path in files:lines() do
    local src = assert(helper.read_file(helper.root .. "/" .. path))
    local local_o = src:find("local o = [^\n]*observe") ~= nil
    for line in src:gmatch("[^\n]+") do
      local code = line:gsub("%-%-.*", "")
      local name = code:match("observe:([%a_][%w_]*)%(") or local_o and code:match("[^%w_.]o:([%a_][%w_]*)%(")
      if name then sites[#sites + 1] = { name = name, path = path, line = line } end
    end
  end
  files:close()
  return sites
end

-- The events named by docs/architecture.md's row of the observe point: the list in its contract cell.
function M.documented()
  local helper = require "spec.helper"
  local text = assert(helper.read_file(helper.root .. "/docs/architecture.md"))
  local row = assert(text:match("\n| observe | `starvideos.observe` |[^\n]*"), "no observe row")
  local list = assert(row:match("at its events %(([^)]*)%)"), "the observe row names no events")
  local names = {}
  for name in list:gmatch("`([%w_]+)`") do names[#names + 1] = name end
  return names
end

-- The list run with busted's functions (b: describe, it, assert) on `on`, a name; make() -> env (run, observer,
-- text); places: the matrix's places of its runs (spec/support/matrix.lua), or nil.
function M.run(on, make, b, places)
  local env
  require("spec.support.case_list").each(b, "the observer cases on " .. on, M.cases, function(case)
    env = env or make()
    case.run(env, b.assert)
  end, nil, places)
end

return M
