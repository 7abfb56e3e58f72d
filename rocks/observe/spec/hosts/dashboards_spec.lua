-- The observe rock's dashboards/ with Prometheus's own tools: promtool checks the rules and runs their unit tests
-- (dashboards/alerts_test.yml), and those tests catch each alert broken (never firing, always firing, firing before
-- its `for:`); every query of the dashboard is PromQL promtool reads; and tools/dashboard-picture.lua (the rock's:
-- rocks/observe/) draws every panel from a real Prometheus scraping a real client (spec/dashboards_spec.lua beside
-- this folder: the names the queries use).

local helper = require "spec.helper"
local P = require "rocks.observe.spec.support.promql"

local q, fmt = helper.shell_quote, string.format
local ROOT = helper.root

if not helper.execute("command -v promtool prometheus >/dev/null 2>&1") then
  describe("dashboards/ with promtool", function() it("needs prometheus", function()
    pending("prometheus is not installed (apt-get install prometheus)") end) end)
  return
end

local function sh(cmd) return helper.capture(cmd .. " 2>&1") end
local function read(path) return (assert(helper.read_file(ROOT .. "/" .. path))) end

-- alerts.yml with alert `name`'s expr or its `for:` (when given) replaced, in dir beside the tests.
local function broken(dir, name, expr, wait)
  local text = read("rocks/observe/dashboards/alerts.yml")
  local head, rest = text:match("^(.-)(\n      %- alert: " .. name .. "\n.*)$")
  assert(head, "no alert " .. name)
  local this, after = rest:match("^(\n.-)(\n      %- alert:.*)$")
  this, after = this or rest, after or ""
  local n, m = 1, 1
  if expr then
    this, n = this:gsub("\n        expr:.-\n        for:", "\n        expr: " .. expr .. "\n        for:", 1)
  end
  if wait then this, m = this:gsub("\n        for: [^\n]*", "\n        for: " .. wait, 1) end
  assert(n == 1 and m == 1, name .. ": no expr or for")
  helper.write_file(dir .. "/alerts.yml", head .. this .. after)
end

describe("dashboards/ with promtool", function()
  local dir
  setup(function()
    dir = helper.tmpdir()
    helper.write_file(dir .. "/alerts_test.yml", read("rocks/observe/dashboards/alerts_test.yml"))
  end)
  teardown(function() helper.cleanup() end)

  it("promtool checks the rules and passes their unit tests", function()
    local rules = P.rules(read("rocks/observe/dashboards/alerts.yml"))
    local out, ok = sh("promtool check rules " .. q(ROOT .. "/rocks/observe/dashboards/alerts.yml"))
    assert(ok, out)
    assert.matches("SUCCESS: " .. #rules .. " rules found", out, 1, true)
    out, ok = sh("cd " .. q(ROOT) .. " && promtool test rules rocks/observe/dashboards/alerts_test.yml")
    assert(ok, out)
    assert.matches("SUCCESS", out, 1, true)
    local _, cases = read("rocks/observe/dashboards/alerts_test.yml"):gsub("\n%s*%- eval_time:", "")
    local tests = 0
    for _, r in ipairs(rules) do
      local _, n = read("rocks/observe/dashboards/alerts_test.yml"):gsub("alertname: " .. r.alert .. "\n", "")
      assert(n >= 2, r.alert .. ": fewer than 2 cases")
      tests = tests + n
    end
    assert.are.equal(cases, tests)
    print(fmt("%d rules, %d promtool test cases", #rules, cases))
  end)

  it("the unit tests catch each alert that never fires, always fires, or fires before its for:", function()
    for _, r in ipairs(P.rules(read("rocks/observe/dashboards/alerts.yml"))) do
      for _, how in ipairs { { "vector(0) > 1" }, { "vector(1)" }, { nil, "0s" } } do
        broken(dir, r.alert, how[1], how[2])
        local out, ok = sh("promtool test rules " .. q(dir .. "/alerts_test.yml"))
        assert(not ok, r.alert .. " as " .. (how[1] or "for: " .. how[2]) .. ": the tests pass")
        assert.matches("alertname: " .. r.alert .. ",", out, 1, true)
      end
    end
  end)

  it("every query of the dashboard is PromQL promtool reads (Grafana's variables filled)", function()
    local dash = require("cjson").decode(read("rocks/observe/dashboards/starvideos.json"))
    local lines, n = { "groups:", "  - name: dashboard", "    rules:" }, 0
    for _, p in ipairs(P.panels(dash)) do
      for _, t in ipairs(p.targets) do
        n = n + 1
        local expr = t.expr:gsub("%$__rate_interval", "1m"):gsub("%$__range", "1h"):gsub("%$job", ".*")
          :gsub("%$instance", ".*")
        lines[#lines + 1] = fmt("      - record: dashboard:query:%d\n        expr: '%s'", n, expr:gsub("'", "''"))
      end
    end
    helper.write_file(dir .. "/queries.yml", table.concat(lines, "\n") .. "\n")
    local out, ok = sh("promtool check rules " .. q(dir .. "/queries.yml"))
    assert(ok, out)
    assert.matches("SUCCESS: " .. n .. " rules found", out, 1, true)
  end)

  it("tools/dashboard-picture.lua draws every panel from a real scrape: no panel without data", function()
    local png = dir .. "/dashboard.png"
    local out, ok = sh(fmt("cd %s && %s rocks/observe/tools/dashboard-picture.lua --seconds 45 --out %s", q(ROOT),
      q(helper.lua), q(png)))
    assert(ok, out)
    assert.matches("picture: " .. png, out, 1, true)
    assert.are.equal("\137PNG", (assert(helper.read_file(png))):sub(1, 4))
    local dash = require("cjson").decode(read("rocks/observe/dashboards/starvideos.json"))
    for _, p in ipairs(P.panels(dash)) do
      assert.is_nil(out:find("  " .. p.title .. " +no data\n"), p.title .. " has no data:\n" .. out)
      assert(out:find("\n  " .. p.title .. " ", 1, true), p.title .. " not drawn:\n" .. out)
    end
    print((out:match("^[^\n]*")))
  end)
end)
