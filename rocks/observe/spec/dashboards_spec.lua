-- The observe rock's dashboards/: the Grafana dashboard and the Prometheus rules against the families the library
-- exports (their
-- table, observe/metrics.lua's FAMILIES, the one client:metrics() writes): every query names only those families
-- and their labels (and the scrape's job and instance), every family has a panel, the dashboard imports (a
-- Prometheus input, a unit and a place on the grid for each panel), every alert has a `for:` and its
-- annotations.  promtool checks and tests the rules in rocks/observe/spec/hosts/dashboards_spec.lua.

local cjson = require "cjson"
local helper = require "spec.helper"
local P = require "rocks.observe.spec.support.promql"
local metrics = require "starvideos.observe.metrics"
local starvideos = require "starvideos"

local function read(path) return (assert(helper.read_file(helper.root .. "/" .. path))) end
local function dashboard() return cjson.decode(read("rocks/observe/dashboards/starvideos.json")) end
local families = P.families(metrics.FAMILIES)

-- The messages of list that contain text.
local function naming(list, text)
  local out = {}
  for _, m in ipairs(list) do if m:find(text, 1, true) then out[#out + 1] = m end end
  return out
end

describe("dashboards/", function()
  it("takes the families from the table client:metrics() writes: every family, in its order", function()
    local client = starvideos.new { api_key = "k", metrics = true }
    local text = client:metrics()
    client:close()
    local written = {}
    for name, kind in text:gmatch("# TYPE (%S+) (%S+)") do written[#written + 1] = name .. " " .. kind end
    local table_ = {}
    for _, f in ipairs(metrics.FAMILIES) do table_[#table_ + 1] = f[1] .. " " .. f[2] end
    assert.are.same(table_, written)
    assert.is_true(#written >= 13, #written)
  end)

  it("every query of the dashboard names only the library's families and labels; every family has a panel",
    function()
      local dash = dashboard()
      assert.are.same({}, P.dashboard(dash, families))
      local n, queries = 0, 0
      for _ in pairs(families) do n = n + 1 end
      for _, p in ipairs(P.panels(dash)) do queries = queries + #p.targets end
      print(string.format("%d families, %d panels, %d queries", n, #P.panels(dash), queries))
    end)

  it("imports: a Prometheus input, each panel a unit and a place of its own on the grid, its queries filtered by "
    .. "the job and instance variables", function()
    local dash = dashboard()
    local input = dash.__inputs[1]
    assert.are.same({ "DS_PROMETHEUS", "datasource", "prometheus" }, { input.name, input.type, input.pluginId })
    local vars = {}
    for _, v in ipairs(dash.templating.list) do vars[#vars + 1] = v.name end
    assert.are.same({ "job", "instance" }, vars)
    local cells, ids = {}, {}
    for _, p in ipairs(P.panels(dash)) do
      assert(not ids[p.id], "two panels with id " .. tostring(p.id))
      ids[p.id] = true
      assert.are.equal("${DS_PROMETHEUS}", p.datasource.uid, p.title)
      assert.are.equal("string", type(p.fieldConfig.defaults.unit), p.title .. ": no unit")
      local g = p.gridPos
      assert(g.x >= 0 and g.w > 0 and g.h > 0 and g.x + g.w <= 24, p.title .. ": off the grid")
      for x = g.x, g.x + g.w - 1 do
        for y = g.y, g.y + g.h - 1 do
          local k = x .. "," .. y
          assert(not cells[k], p.title .. " overlaps " .. tostring(cells[k]))
          cells[k] = p.title
        end
      end
      for _, t in ipairs(p.targets) do
        for _, sel in ipairs(P.scan(t.expr).selectors) do
          local m = {}
          for _, x in ipairs(sel.matchers) do m[x[1]] = x[2] .. x[3] end
          assert.are.same({ '=~$job', '=~$instance' }, { m.job, m.instance }, p.title .. ": " .. t.expr)
        end
      end
    end
  end)

  it("the check finds a family the library does not export, a family with no panel, a label or bucket it does "
    .. "not have", function()
    local function with(expr, drop)
      local dash = dashboard()
      for _, p in ipairs(P.panels(dash)) do
        local keep = {}
        for _, t in ipairs(p.targets) do if not (drop and t.expr:find(drop, 1, true)) then keep[#keep + 1] = t end end
        p.targets = keep
      end
      if expr then table.insert(P.panels(dash)[1].targets, { refId = "Z", expr = expr }) end
      return P.dashboard(dash, families)
    end
    assert.are.equal(1, #naming(with("sum(rate(starvideos_widgets_total[5m]))"), "starvideos_widgets_total is no "
      .. "family"))
    assert.are.equal(1, #naming(with("sum(starvideos_tasks_total)"), "starvideos_tasks_total is no family"))
    assert.are.same({ "starvideos_cost_total has no panel" }, naming(with(nil, "starvideos_cost_total"), "no panel"))
    assert.are.equal(1, #naming(with('sum(starvideos_tasks{tenant="a"})'), "starvideos_tasks has no label tenant"))
    assert.are.equal(1, #naming(with("sum by (task_id) (starvideos_tasks)"), "has the label task_id"))
    assert.are.equal(1, #naming(with('starvideos_budget_wait_seconds_bucket{le="2"}'), 'no bucket le="2"'))
    assert.are.equal(1, #naming(with('starvideos_tasks_bucket{le="1"}'), "starvideos_tasks_bucket is no family"))
    assert.are.equal(1, #naming(with("sum(rated(starvideos_videos_total[5m]))"), "rated( is no PromQL function"))
    assert.are.same({}, with("histogram_quantile(0.5, sum by (le, model) (rate(starvideos_notice_lag_seconds_bucket"
      .. '{le="+Inf",job=~"$job"}[$__rate_interval])))'))
    local dash = dashboard()
    dash.templating.list[1].query.query = "label_values(starvideos_tasks, operation)"
    assert.are.equal(1, #naming(P.dashboard(dash, families), "starvideos_tasks has no label operation"))
  end)

  it("alerts.yml: every rule names only the library's families and labels, waits a `for:`, has a severity, a "
    .. "summary and a description", function()
    local text = read("rocks/observe/dashboards/alerts.yml")
    local rules = P.rules(text)
    local _, n = text:gsub("\n%s*%- alert:", "")
    assert.are.equal(n, #rules)
    local names = {}
    for _, r in ipairs(rules) do
      names[r.alert] = true
      assert.are.same({}, P.problems(r.expr, families))
      assert.matches("^%d+[smh]$", r["for"], 1, false, r.alert)
      assert.matches("^%a+$", r.severity, 1, false, r.alert)
      assert(#r.summary > 10 and #r.description > 40, r.alert .. ": no summary or description")
    end
    for _, name in ipairs { "StarvideosCreatesFailing", "StarvideosTasksStuck", "StarvideosBudgetSaturated",
      "StarvideosMetricsDropped", "StarvideosSpansDropped", "StarvideosStoreUnreachable" } do
      assert(names[name], "no alert " .. name)
    end
    print(string.format("%d alerts", #rules))
    local planted = text:gsub("starvideos_spans_dropped_total", "starvideos_spans_lost_total")
    local found = {}
    for _, r in ipairs(P.rules(planted)) do
      for _, m in ipairs(P.problems(r.expr, families)) do found[#found + 1] = m end
    end
    assert.are.equal(1, #naming(found, "starvideos_spans_lost_total is no family"))
  end)
end)
