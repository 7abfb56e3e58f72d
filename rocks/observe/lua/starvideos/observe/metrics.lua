-- Metrics in Prometheus's text format, 0.0.4 (docs/observability.md): counters, gauges and histograms of
-- bounded labels, kept for the process (inside nginx, with `lua_shared_dict starvideos_metrics`, for the host:
-- every worker adds into the dict).  A series is a key "family\tlabels\tpart" (part: "" for a counter or a
-- gauge; b<i>, s for a histogram's bucket i (not cumulative: summed as it is written out) and sum).  A family
-- with a `count` of another (requests_total) is written from that histogram's counts: nothing adds to it.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local M = {}

M.DICT = X.config.DEFAULTS.metrics_dict -- the shared dict's name inside nginx
M.LOG_EVERY = 60 -- seconds: a full dict is logged at most this often

local DURATION = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }
local WAIT = { 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }
local LAG = { 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300 }
local WAITED = "starvideos_budget_wait_seconds"

-- name, type, labels, help (, a histogram's buckets): every family, in the order they are written.
M.FAMILIES = {
  { "starvideos_requests_total", "counter", { "operation", "code" },
    "Exchanges with the service, video hosts, webhook receivers and the store, by operation and status class.",
    count = "starvideos_request_duration_seconds" },
  { "starvideos_request_duration_seconds", "histogram", { "operation", "code" },
    "Seconds from sending a request to the end of its answer.", DURATION },
  { "starvideos_creates_total", "counter", { "model", "outcome" },
    "Creates sent, by model and outcome (created, refused, unknown: the answer never came)." },
  { "starvideos_tasks", "gauge", { "state" }, "Tasks followed now, by the state of their job." },
  { "starvideos_failures_total", "counter", { "model", "reason" },
    "Tasks failed and creates the service refused, by model and why (policy, input, service, unknown)." },
  { "starvideos_videos_total", "counter", { "model" }, "Videos saved whole." },
  { "starvideos_video_seconds_total", "counter", { "model" }, "Seconds of video saved." },
  { "starvideos_downloaded_bytes_total", "counter", {}, "Bytes of video received." },
  { "starvideos_retries_total", "counter", { "reason" }, "Requests sent again, by the kind of error before." },
  { "starvideos_budget_wait_seconds", "histogram", {}, "Seconds a request waited for the key's budget.", WAIT },
  { "starvideos_rate_limit_remaining", "gauge", {},
    "Requests the service's last answer said are left before its rate limit resets (RateLimit, x-ratelimit-*)." },
  { "starvideos_notice_lag_seconds", "histogram", { "model" },
    "Seconds from a task's completion to the poll that saw it (half the last gap between polls).", LAG },
  { "starvideos_cost_total", "counter", { "model" }, "The price of the creates sent, in the prices' currency." },
  { "starvideos_spend", "gauge", { "scope", "model", "tenant" },
    "Spent in the current window of each spend_limit, in the prices' currency, reservations not included (model: "
    .. "of scope model; tenant: of a limit of one tenant; a label set's limit nearest its amount).", spend = "spent" },
  { "starvideos_spend_limit", "gauge", { "scope", "model", "tenant" },
    "The amount of each spend_limit, in the prices' currency (the labels and limit of starvideos_spend's series).",
    spend = "amount" },
  { "starvideos_spans_dropped_total", "counter", {}, "Spans never exported: the queue was full or the export failed." },
  { "starvideos_metrics_dropped_total", "counter", {}, "Updates lost: the shared dict was full." },
}
local BY_NAME, KEYS = {}, {} -- KEYS: family name -> label value a -> b -> its series' key (made once)
for i, f in ipairs(M.FAMILIES) do BY_NAME[f[1]], KEYS[f[1]] = i, {} end
local DROPPED = "starvideos_metrics_dropped_total\t\t"
local GATE = "starvideos_log\t\t" -- the minute of the last line about a full dict

-- The store of a host: nginx's shared dict, added to from the worker's own sums (the registry's acc) every FLUSH
-- seconds by one timer of the worker's, and before the worker writes the text.  A new key is added only with
-- room for it (safe_add: nothing is ever evicted); without room the update is counted in DROPPED (made first,
-- while there is room) and the log says so at most once every LOG_EVERY seconds for the whole host.
M.FLUSH = 1
function M:start()
  self.timer = self.ngx.timer.every(M.FLUSH, function() self:flush() end) or false -- (at the worker's exit too)
end
function M:flush()
  self:fold()
  local acc = self.acc
  self.acc = {}
  for k, v in pairs(acc) do self:into_dict(k, v) end
end
function M:into_dict(k, v)
  local d = self.d
  if d:incr(k, v) then return end
  local ok, err = d:safe_add(k, v)
  if ok or (err == "exists" and d:incr(k, v)) then return end
  d:incr(DROPPED, 1) -- (never with an init value: a key made now could evict another)
  local ngx = self.ngx
  local minute = math.floor(ngx.now() / M.LOG_EVERY)
  if self.logged == minute then return end
  self.logged = minute -- this worker's; the dict's GATE: one worker wins each minute
  local last = d:get(GATE)
  if last and (last >= minute or d:incr(GATE, minute - last) ~= minute) then return end
  ngx.log(ngx.WARN, "starvideos: the shared dict ", M.DICT, " is full: metrics updates are dropped (counted in ",
    "starvideos_metrics_dropped_total); make it larger")
end

-- f(key, value) for every series: the process's, or (flushed first) the host's.
function M:each(f)
  local d = self.d
  if not d then
    self:fold()
    for k, v in pairs(self.acc) do f(k, v) end
    return
  end
  self:flush()
  for _, k in ipairs(d:get_keys(0)) do
    local v = d:get(k)
    if type(v) == "number" then f(k, v) end
  end
end

local registry -- the process's (the worker's inside nginx)

-- A registry on nginx's shared dict d (ngx: nginx's table), else on a table of its own.
-- acc: the table updates add into (a process's values; inside nginx the worker's sums since the last flush);
-- timer: false inside nginx until the worker's flush timer is set (nil: none needed).
function M.new(d, ngx)
  if d then
    d:safe_add(DROPPED, 0) -- made while there is room, so that a full dict is still counted
    d:safe_add(GATE, 0)
  end
  return setmetatable({ acc = {}, d = d, ngx = ngx, timer = d and false, zeros = 0 }, { __index = M })
end

-- The process's registry: on nginx's dict when there is one.
function M.registry()
  local ngx = X.config.nginx()
  registry = registry or M.new(ngx and ngx.shared and ngx.shared[M.DICT], ngx)
  return registry
end

local function escape(v) return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" })) end

-- The labels of family f as written: name="value",... (values in the family's order).
local function labels(f, a, b)
  local s = {}
  for i, name in ipairs(f[3]) do s[i] = name .. '="' .. escape((select(i, a, b))) .. '"' end
  return table.concat(s, ",")
end

local NONE = {} -- (a label value not given, as a key of KEYS)

-- The key of the series of family `name` with label values a, b: a counter's or a gauge's; a histogram's, the
-- list of its buckets' keys, with its bounds (.le) and its sum's key (.s).  Made at a series' first use, then
-- looked up: the labels are bounded sets, so are these.
local function make(name, a, b)
  local f = M.FAMILIES[BY_NAME[name]]
  local k = name .. "\t" .. labels(f, a, b) .. "\t"
  if f[5] then
    local parts = { s = k .. "s", le = {} }
    for i = 1, #f[5] + 1 do -- (the last, +Inf: every value's bucket is found before the end)
      parts[i], parts.le[i] = k .. "b" .. i, f[5][i] or math.huge
    end
    k = parts
  end
  local by_a = KEYS[name]
  by_a[a or NONE] = by_a[a or NONE] or {}
  by_a[a or NONE][b or NONE] = k
  return k
end
local function series(name, a, b)
  local k = KEYS[name][a or NONE]
  return k and k[b or NONE] or make(name, a, b)
end

-- Add v to the counter or gauge `name` with its label values a, b.
function M:add(name, v, a, b)
  local k, acc = series(name, a, b), self.acc
  acc[k] = (acc[k] or 0) + v
  if self.timer == false then self:start() end
end

-- One observation v of the histogram `name` with its label values a, b.
function M:observe(name, v, a, b)
  local parts = series(name, a, b)
  local le, acc, i = parts.le, self.acc, 1
  while v > le[i] do i = i + 1 end
  local k = parts[i] -- (the count: the buckets' sum, as it is written out)
  acc[k] = (acc[k] or 0) + 1
  if v ~= 0 then local s = parts.s; acc[s] = (acc[s] or 0) + v end
  if self.timer == false then self:start() end
end

-- The budget's waits of 0 (what most are: the hook counts them, observe/observer.lua) join the registry's at
-- fold(), before the series are read or flushed.
function M:fold()
  if self.zeros == 0 then return end
  local acc, k = self.acc, series(WAITED)[1]
  acc[k], self.zeros = (acc[k] or 0) + self.zeros, 0
end

local function num(v)
  if v == math.huge then return "+Inf" end
  local s = string.format("%.15g", v)
  if tonumber(s) ~= v then s = string.format("%.17g", v) end
  return s
end

local function braces(l, more)
  if more then l = l == "" and more or l .. "," .. more end
  return l == "" and "" or "{" .. l .. "}"
end

-- A histogram's lines of one label set (parts: bucket index or "s" / "c" -> value).
local function histogram(out, f, l, parts)
  local cum = 0
  for i = 1, #f[5] + 1 do -- (the last, +Inf: num's)
    cum = cum + (parts["b" .. i] or 0)
    out[#out + 1] = f[1] .. "_bucket" .. braces(l, 'le="' .. num(f[5][i] or math.huge) .. '"') .. " " .. num(cum)
  end
  out[#out + 1] = f[1] .. "_sum" .. braces(l) .. " " .. num(parts.s or 0)
  out[#out + 1] = f[1] .. "_count" .. braces(l) .. " " .. num(cum)
end

-- A counter from a histogram's label sets: each one's count (its buckets' sum).
local function counted(sets)
  local out = {}
  for l, parts in pairs(sets) do
    local n = 0
    for part, v in pairs(parts) do if part:find("^b") then n = n + v end end
    out[l] = { [""] = n }
  end
  return out
end

local function near(e) return e.amount > 0 and e.spent / e.amount or -1 end -- (an amount of 0: never the nearest)

-- The spend families' series of client:spend()'s list (nil: none), by label set: scope; model for scope model;
-- tenant for a limit of one tenant (bounded: the options name it).  A limit of every tenant is one series without
-- a tenant (its tenant nearest the amount: the most spent); of limits with one label set (a day's and a month's of
-- the key), the one nearest its amount.
local function spend_sets(spend)
  local by = {}
  for _, e in ipairs(spend or {}) do
    local one = e.scope == "tenant" and e.limit.tenant
    local l = 'scope="' .. escape(e.scope) .. '"' .. (e.scope == "model" and ',model="' .. escape(e.model) .. '"'
      or "") .. (one and ',tenant="' .. escape(one) .. '"' or "")
    local was = by[l]
    if not was or near(e) > near(was) or near(e) == near(was) and e.spent > was.spent then by[l] = e end
  end
  return by
end

-- The text format of every family: HELP and TYPE, then each series (label sets in order); spend: client:spend()'s
-- list, the spend families' series (nil: none).
function M:text(spend)
  local found = {} -- family -> labels -> part -> value
  self:each(function(k, v)
    local name, l, part = k:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    if name and BY_NAME[name] then
      found[name] = found[name] or {}
      found[name][l] = found[name][l] or {}
      found[name][l][part] = v
    end
  end)
  local out, limits = {}, spend_sets(spend)
  for _, f in ipairs(self.FAMILIES) do
    out[#out + 1] = "# HELP " .. f[1] .. " " .. f[4]
    out[#out + 1] = "# TYPE " .. f[1] .. " " .. f[2]
    local sets, order = found[f[1]] or {}, {}
    if f.count then sets = counted(found[f.count] or {}) end
    if f.spend then sets = {} for l, e in pairs(limits) do sets[l] = { [""] = e[f.spend] } end end
    if not f[3][1] and f[2] == "counter" then sets[""] = sets[""] or { [""] = 0 } end -- 0 until it counts
    for l in pairs(sets) do order[#order + 1] = l end
    table.sort(order)
    for _, l in ipairs(order) do
      if f[2] == "histogram" then histogram(out, f, l, sets[l])
      else out[#out + 1] = f[1] .. braces(l) .. " " .. num(sets[l][""] or 0) end
    end
  end
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

return M
