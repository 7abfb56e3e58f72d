-- The names PromQL expressions use, checked against the families the library exports (observe/metrics.lua's
-- FAMILIES): a scanner of the language's tokens (not a parser; promtool checks the syntax: spec/hosts/
-- dashboards_spec.lua) that finds every metric name, label name and `le` value of an expression, with
-- Grafana's variables ($job, ${x}, $__rate_interval) taken as opaque.  Used by rocks/observe/spec/dashboards_spec.lua
-- on rocks/observe/dashboards/starvideos.json and rocks/observe/dashboards/alerts.yml.
--
--   P.families(list)                 -> by name: {type =, labels = set, le = set of bucket bounds as written}
--   P.problems(expr, families)       -> list of messages (empty: every name is the library's)
--   P.dashboard(dash, families)      -> list of messages: each target's and variable's, and a family no panel shows
--   P.rules(yaml_text)               -> list of {alert =, expr =, ["for"] =, summary =, description =}

local P = {}

-- The labels every scraped series has from its target (Prometheus's, not the library's).
P.TARGET = { job = true, instance = true }

local SUFFIXES = { "_bucket", "_sum", "_count" } -- a histogram's series

-- PromQL's functions and aggregations (a name followed by "("), and Grafana's label_values.
local FUNCTIONS = {}
for name in ([[sum min max avg group stddev stdvar count count_values bottomk topk quantile abs absent
  absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week day_of_year days_in_month delta
  deriv exp floor histogram_quantile holt_winters hour idelta increase irate label_join label_replace ln log2 log10
  minute month predict_linear rate resets round scalar sgn sort sort_desc sqrt time timestamp vector year
  avg_over_time min_over_time max_over_time sum_over_time count_over_time quantile_over_time stddev_over_time
  stdvar_over_time last_over_time present_over_time label_values]]):gmatch("%S+") do
  FUNCTIONS[name] = true
end
local LISTS = { by = true, without = true, on = true, ignoring = true, group_left = true, group_right = true }
local WORDS = { ["and"] = true, ["or"] = true, unless = true, bool = true, offset = true, atan2 = true,
  Inf = true, NaN = true, inf = true, nan = true }

-- The families of the library's table (observe/metrics.lua's FAMILIES: name, type, labels, help, bounds).
function P.families(list)
  local by = {}
  for _, f in ipairs(list) do
    local labels, le = {}, {}
    for _, l in ipairs(f[3]) do labels[l] = true end
    for _, b in ipairs(f[5] or {}) do le[string.format("%.15g", b)] = true end
    le["+Inf"] = true
    by[f[1]] = { type = f[2], labels = labels, le = f[2] == "histogram" and le or nil }
  end
  return by
end

-- The string a quote at expr[i] opens: its text and the index after it.
local function quoted(expr, i)
  local q, j = expr:sub(i, i), i + 1
  while j <= #expr and expr:sub(j, j) ~= q do j = j + (expr:sub(j, j) == "\\" and 2 or 1) end
  if j > #expr then error("an unterminated string in " .. expr, 0) end
  return expr:sub(i + 1, j - 1), j + 1
end

-- The tokens of expr: {kind, text}, kind one of name, string, number, range, var, op.
local function tokens(expr)
  local list, i = {}, 1
  while i <= #expr do
    local c = expr:sub(i, i)
    if c:find("%s") then
      i = i + 1
    elseif c == '"' or c == "'" or c == "`" then
      local text
      text, i = quoted(expr, i)
      list[#list + 1] = { "string", text }
    else
      local kind, text
      if c == "[" then kind, text = "range", expr:match("^%b[]", i) -- a range's or a subquery's: no names
      elseif c == "$" then kind, text = "var", expr:match("^%${[%w_]+}", i) or expr:match("^%$[%w_]+", i)
      elseif c:find("[%a_:]") then kind, text = "name", expr:match("^[%a_:][%w_:]*", i)
      elseif c:find("[%d.]") then kind, text = "number", expr:match("^[%d.][%w.]*", i)
      else kind, text = "op", expr:match("^[=!<>]=", i) or expr:match("^[=!]~", i) or c end
      if not text then error("cannot read " .. expr:sub(i) .. " in " .. expr, 0) end
      list[#list + 1] = { kind, text }
      i = i + #text
    end
  end
  return list
end

-- The matchers of the braces at tokens t[i] ("{"): a list of {label, op, value}, and the index after "}".
local function matchers(t, i, expr)
  local list = {}
  i = i + 1
  while t[i] and t[i][2] ~= "}" do
    local label, op, value = t[i], t[i + 1], t[i + 2]
    if not (label[1] == "name" and op and op[1] == "op" and value and value[1] == "string") then
      error("a matcher that is not label op \"value\" in " .. expr, 0)
    end
    list[#list + 1] = { label[2], op[2], value[2] }
    i = i + 3
    if t[i] and t[i][2] == "," then i = i + 1 end
  end
  return list, i + 1
end

-- The label list of parentheses at t[i] ("("): the names, and the index after ")".
local function label_list(t, i)
  local list = {}
  i = i + 1
  while t[i] and t[i][2] ~= ")" do
    if t[i][1] == "name" then list[#list + 1] = t[i][2] end
    i = i + 1
  end
  return list, i + 1
end

-- What expr names: selectors {metric, matchers}, grouping labels, functions unknown to PromQL.
function P.scan(expr)
  local t, i = tokens(expr), 1
  local found = { selectors = {}, grouping = {}, unknown = {} }
  while t[i] do
    local kind, text, nxt = t[i][1], t[i][2], t[i + 1] and t[i + 1][2]
    if kind == "name" and nxt == "(" and LISTS[text] then
      local labels
      labels, i = label_list(t, i + 1)
      for _, l in ipairs(labels) do found.grouping[#found.grouping + 1] = l end
    elseif kind == "name" and (nxt == "(" or FUNCTIONS[text] and LISTS[nxt]) then -- (sum by (l) (...))
      if not FUNCTIONS[text] then found.unknown[#found.unknown + 1] = text end
      i = i + 1
    elseif kind == "name" and not LISTS[text] and not WORDS[text] or kind == "op" and text == "{" then
      local sel = { metric = kind == "name" and text or nil, matchers = {} }
      i = kind == "name" and i + 1 or i
      if t[i] and t[i][2] == "{" then sel.matchers, i = matchers(t, i, expr) end
      found.selectors[#found.selectors + 1] = sel
    else
      i = i + 1
    end
  end
  return found
end

-- The family a series name belongs to, whether it is a histogram's bucket series, and the family's name.
local function family_of(name, families)
  if families[name] and families[name].type ~= "histogram" then return families[name], false, name end
  for _, s in ipairs(SUFFIXES) do
    local base = name:sub(-#s) == s and name:sub(1, -#s - 1)
    local f = base and families[base]
    if f and f.type == "histogram" then return f, s == "_bucket", base end
  end
end

-- A selector's problems; the labels its series have are added to `allowed`.
local function selector_problems(sel, families, allowed, out, expr)
  local f, bucket = family_of(sel.metric or "", families)
  if not f then
    out[#out + 1] = string.format("%s is no family the library exports (in %s)",
      sel.metric or "a selector with no metric name", expr)
    return
  end
  for l in pairs(f.labels) do allowed[l] = true end
  if bucket then allowed.le = true end
  for _, m in ipairs(sel.matchers) do
    local label, op, value = m[1], m[2], m[3]
    if not (f.labels[label] or P.TARGET[label] or bucket and label == "le") then
      out[#out + 1] = string.format("%s has no label %s (in %s)", sel.metric, label, expr)
    elseif label == "le" and op == "=" and not f.le[value] then
      out[#out + 1] = string.format("%s has no bucket le=\"%s\" (in %s)", sel.metric, value, expr)
    end
  end
end

function P.problems(expr, families)
  local ok, found = pcall(P.scan, expr)
  if not ok then return { found } end
  local out, allowed = {}, { job = true, instance = true }
  for _, name in ipairs(found.unknown) do
    out[#out + 1] = string.format("%s( is no PromQL function (in %s)", name, expr)
  end
  for _, sel in ipairs(found.selectors) do selector_problems(sel, families, allowed, out, expr) end
  for _, l in ipairs(found.grouping) do
    if not allowed[l] then out[#out + 1] = string.format("no family of the query has the label %s (in %s)", l, expr) end
  end
  if #found.selectors == 0 then out[#out + 1] = "a query that names no family: " .. expr end
  return out, found
end

-- The families expr names (name -> true) onto used.
local function uses(expr, families, used)
  local ok, found = pcall(P.scan, expr)
  for _, sel in ipairs(ok and found.selectors or {}) do
    local _, _, name = family_of(sel.metric or "", families)
    if name then used[name] = true end
  end
end

-- A template variable's problems: its query label_values(selector, label).
local function variable_problems(v, families, out)
  local q = type(v.query) == "table" and v.query.query or v.query
  local sel, label = tostring(q):match("^label_values%((.*),%s*([%w_]+)%)$")
  if not sel then
    out[#out + 1] = string.format("variable %s: not label_values(selector, label): %s", v.name, q)
    return
  end
  local list, found = P.problems(sel, families)
  for _, m in ipairs(list) do out[#out + 1] = "variable " .. v.name .. ": " .. m end
  local f = found and found.selectors[1] and family_of(found.selectors[1].metric or "", families)
  if f and not (f.labels[label] or P.TARGET[label]) then
    out[#out + 1] = string.format("variable %s: %s has no label %s", v.name, found.selectors[1].metric, label)
  end
end

-- The panels of dash, rows' nested panels included (a row itself excluded).
local function panels(dash)
  local list = {}
  for _, p in ipairs(dash.panels or {}) do
    if p.type ~= "row" then list[#list + 1] = p end
    for _, q in ipairs(p.type == "row" and p.panels or {}) do list[#list + 1] = q end
  end
  return list
end
P.panels = panels

-- Every problem of a Grafana dashboard (decoded JSON) against the families: a query naming what the library does
-- not export, a variable's, a panel with no query, a family no panel shows.
function P.dashboard(dash, families)
  local out, used = {}, {}
  for _, p in ipairs(panels(dash)) do
    if not (p.targets and p.targets[1]) then out[#out + 1] = string.format("panel %q has no query", p.title) end
    for _, t in ipairs(p.targets or {}) do
      for _, m in ipairs((P.problems(t.expr or "", families))) do
        out[#out + 1] = string.format("panel %q: %s", p.title, m)
      end
      uses(t.expr or "", families, used)
    end
  end
  for _, v in ipairs(dash.templating and dash.templating.list or {}) do variable_problems(v, families, out) end
  local names = {}
  for name in pairs(families) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    if not used[name] then out[#out + 1] = name .. " has no panel" end
  end
  return out
end

-- The alerting rules of a rules file as this project writes them (rocks/observe/dashboards/alerts.yml: `- alert:` then
-- its keys, `expr: |` with its lines below, annotations' values on one line or folded `>-` below): a list of
-- {alert =, expr =, ["for"] =, severity =, summary =, description =}.
function P.rules(text)
  local list, rule, block, indent = {}, nil, nil, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local lead, key, value = line:match("^(%s*)%-?%s*([%w_]+):%s*(.-)%s*$")
    if block and (line:match("^%s*$") or #line:match("^%s*") > indent) then
      rule[block] = (rule[block] and rule[block] .. " " or "") .. line:match("^%s*(.-)%s*$")
    elseif key then
      block = nil
      if key == "alert" then rule = { alert = value }; list[#list + 1] = rule end
      if rule and key ~= "alert" then
        if value == "|" or value == ">-" or value == ">" then block, indent = key, #lead
        else rule[key] = value:match('^"(.*)"$') or value end
      end
    end
  end
  for _, r in ipairs(list) do
    for k, v in pairs(r) do r[k] = v:match("^%s*(.-)%s*$") end
  end
  return list
end

return P
