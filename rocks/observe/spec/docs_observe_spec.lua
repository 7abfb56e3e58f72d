-- What newcomers found wrong in the observe rock's docs (issue 55, item 17): observability.md's hourly queries
-- computed by promtool against a known count, its panel count the dashboard's; and tools/dashboard-picture.lua.

local helper = require "spec.helper"
local D = require "spec.support.docs_blocks"
local P = require "rocks.observe.spec.support.promql"
local cjson = require "cjson"

local q = helper.shell_quote
local page, flat, says = D.page, D.flat, D.says

describe("docs/observability.md", function()
  -- the page's promql block (its "A dashboard's queries")
  local QUERIES
  for _, b in ipairs(D.extract(helper.root)) do
    if b.file == "docs/observability.md" and b.lang == "promql" then QUERIES = "\n" .. b.body end
  end

  -- The query under the comment line `comment` of the page's promql block.
  local function query(comment)
    local line = QUERIES:match("\n# " .. comment:gsub("%p", "%%%0") .. "[^\n]*\n([^\n]+)")
    return assert(line, "no query under # " .. comment)
  end

  it("counts an hour of creates right for a series born in the hour: 40 creates read 40 (promtool)", function()
    if not helper.execute("command -v promtool >/dev/null 2>&1") then
      return pending("promtool is not installed (make deps)")
    end
    -- the client starts 30 minutes in: its first scrape reads 25 creates, then one a minute to 40
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/test.yml", table.concat({
      "tests:",
      "  - interval: 1m",
      "    input_series:",
      "      - series: 'starvideos_creates_total{model=\"videos\",outcome=\"created\"}'",
      "        values: '_x30 25+1x15'",
      "      - series: 'starvideos_creates_total{model=\"videos\",outcome=\"refused\"}'",
      "        values: '_x30 3+0x15'",
      "    promql_expr_test:",
      "      - expr: " .. string.format("%q", query("creates an hour by model")),
      "        eval_time: 46m",
      "        exp_samples:",
      "          - labels: '{model=\"videos\"}'",
      "            value: 40",
    }, "\n") .. "\n")
    local out, ok = helper.capture("cd " .. q(dir) .. " && promtool test rules test.yml 2>&1")
    assert(ok and out:find("SUCCESS", 1, true), "the creates an hour query:\n" .. out)
    helper.cleanup()
  end)

  it("counts every hourly total as the dashboard does: a series new in the hour by its value", function()
    local n = 0
    for line in QUERIES:gmatch("[^\n]+") do
      if line:find("increase%(starvideos_[%w_]+_total[^%[]*%[1h%]%)") then
        n = n + 1
        assert.matches(" unless ", line, 1, true)
        assert.matches(" offset 1h", line, 1, true)
      end
    end
    assert.is_true(n >= 4, n .. " hourly totals")
  end)

  it("says how many panels the dashboard has: as many as it ships", function()
    local dash = cjson.decode(page("rocks/observe/dashboards/starvideos.json"))
    local said = tonumber(flat("docs/observability.md"):match("%((%d+) panels:"))
    assert.equal(#P.panels(dash), said)
  end)
end)

describe("tools/dashboard-picture.lua", function()
  local function picture(args)
    return helper.capture("cd " .. q(helper.root) .. " && " .. helper.UNINSTRUMENTED .. helper.lua
      .. " rocks/observe/tools/dashboard-picture.lua " .. args .. " 2>&1")
  end

  it("writes no tracked file unless told: its default --out is build/'s", function()
    local out, ok = picture("--help")
    assert(ok, out)
    local default = assert(out:match("%-%-out PATH +the PNG %(default (%S+);"), out)
    assert.equal("build/dashboard.png", default)
    says("docs/observability.md", "lua5.4 rocks/observe/tools/dashboard-picture.lua --out docs/img/dashboard.png",
      "`lua5.4 rocks/observe/tools/dashboard-picture.lua --prometheus http://127.0.0.1:9090 --seconds 3600`")
    local _, tracked = helper.capture("cd " .. q(helper.root) .. " && git ls-files --error-unmatch " .. q(default)
      .. " 2>&1")
    assert.is_falsy(tracked, default .. " is a tracked file")
    for a, why in pairs { ["--prometheus ftp://x"] = "--prometheus: an http:// URL",
      ["--job x"] = "--job and --instance filter a Prometheus of yours: with --prometheus only",
      ["--bogus 1"] = "unknown option --bogus" } do
      local said, fine = picture(a)
      assert.is_falsy(fine, a)
      assert.matches("dashboard-picture: " .. why, said, 1, true)
    end
  end)

  it("draws from a Prometheus of one's own (--prometheus URL), starting nothing #hosts", function()
    if not helper.execute("command -v prometheus chromium >/dev/null 2>&1") then
      return pending("prometheus or chromium is not installed (make deps)")
    end
    local dir = helper.tmpdir()
    local port = helper.free_ports(1)[1]
    helper.write_file(dir .. "/prometheus.yml", "global:\n  scrape_interval: 1s\n")
    local prom = helper.spawn(string.format("%sprometheus --config.file=%s --storage.tsdb.path=%s "
      .. "--web.listen-address=127.0.0.1:%d > %s 2>&1", helper.UNINSTRUMENTED, q(dir .. "/prometheus.yml"),
      q(dir .. "/tsdb"), port, q(dir .. "/prometheus.log")))
    finally(function() helper.execute("kill " .. prom.pid .. " 2>/dev/null") prom:close() end)
    local url = "http://127.0.0.1:" .. port
    assert(helper.wait_until(function()
      return helper.execute("curl -sf -o /dev/null " .. q(url .. "/-/ready"))
    end, 30), "prometheus did not start: " .. tostring(helper.read_file(dir .. "/prometheus.log")))
    local png = dir .. "/mine.png"
    local out, ok = picture("--prometheus " .. q(url .. "/") .. " --seconds 600 --job video-app --out " .. q(png))
    assert(ok, out)
    assert.matches("starvideos: the dashboard's 25 panels from the Prometheus at " .. url .. ", ", out, 1, true)
    assert.matches("\npicture: " .. png .. "\n", out, 1, true)
    assert.equal("\137PNG", (assert(helper.read_file(png))):sub(1, 4))
    local dash = cjson.decode(page("rocks/observe/dashboards/starvideos.json"))
    for _, p in ipairs(P.panels(dash)) do
      assert(out:find("\n  " .. p.title .. " ", 1, true), p.title .. ":\n" .. out)
    end
    helper.cleanup()
  end)
end)
