-- Metrics in Prometheus's text format, 0.0.4 (docs/observability.md): counters, gauges and histograms of
-- bounded labels, kept for the process (inside nginx, with `lua_shared_dict starvideos_metrics`, for the host:
-- every worker adds into the dict).  A series is a key "family\tlabels\tpart" (part: "" for a counter or a
-- gauge; b<i>, s for a histogram's bucket i (not cumulative: summed as it is written out) and sum).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local M = {}

M.DICT = require("starvideos.config").DEFAULTS.metrics_dict -- the shared dict's name inside nginx
M.LOG_EVERY = 60 -- seconds: a full dict is logged at most this often

local DURATION = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }
local WAIT = { 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }
local LAG = { 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300 }

-- name, type, labels, help (, a histogram's buckets): every family, in the order they are written.
M.FAMILIES = {
  { "starvideos_requests_total", "counter", { "operation", "code" },
    "Exchanges with the service, video hosts, webhook receivers and the store, by operation and status class." },
  { "starvideos_request_duration_seconds", "histogram", { "operation", "code" },
    "Seconds from sending a request to the end of its answer.", DURATION },
  { "starvideos_creates_total", "counter", { "model", "outcome" },
    "Creates sent, by model and outcome (created, refused, unknown: the answer never came)." },
  { "starvideos_tasks", "gauge", { "state" }, "Tasks followed now, by the state of their job." },
  { "starvideos_videos_total", "counter", { "model" }, "Videos saved whole." },
  { "starvideos_video_seconds_total", "counter", { "model" }, "Seconds of video saved." },
  { "starvideos_downloaded_bytes_total", "counter", {}, "Bytes of video received." },
  { "starvideos_retries_total", "counter", { "reason" }, "Requests sent again, by the kind of error before." },
  { "starvideos_budget_wait_seconds", "histogram", {}, "Seconds a request waited for the key's budget.", WAIT },
  { "starvideos_notice_lag_seconds", "histogram", { "model" },
    "Seconds from a task's completion to the poll that saw it (half the last gap between polls).", LAG },
  { "starvideos_cost_total", "counter", { "model" }, "The price of the creates sent, in the prices' currency." },
  { "starvideos_spans_dropped_total", "counter", {}, "Spans never exported: the queue was full or the export failed." },
  { "starvideos_metrics_dropped_total", "counter", {}, "Updates lost: the shared dict was full." },
}
local BY_NAME = {}
for i, f in ipairs(M.FAMILIES) do BY_NAME[f[1]] = i end
local DROPPED = "starvideos_metrics_dropped_total\t\t"
local GATE = "starvideos_log\t\t" -- the minute of the last line about a full dict

-- The store of a process: a table.
local Table = {}
Table.__index = Table
function Table:incr(k, v) self.v[k] = (self.v[k] or 0) + v end
function Table:each(f) for k, v in pairs(self.v) do f(k, v) end end

-- The store of a host: nginx's shared dict, added to from the worker's own sums (pend) every FLUSH seconds by
-- one timer of the worker's, and before the worker writes the text.  A new key is added only with room for it
-- (safe_add: nothing is ever evicted); without room the update is counted in DROPPED (made first, while there
-- is room) and the log says so at most once every LOG_EVERY seconds for the whole host.
local Dict = {}
Dict.__index = Dict
M.FLUSH = 1
function Dict:incr(k, v)
  local pend = self.pend
  pend[k] = (pend[k] or 0) + v
  if self.timer then return end
  local ngx = self.ngx
  self.timer = ngx.timer.every(M.FLUSH, function() self:flush() end) -- (also at the worker's exit: premature)
end
function Dict:flush()
  local pend = self.pend
  self.pend = {}
  for k, v in pairs(pend) do self:add(k, v) end
end
function Dict:add(k, v)
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
function Dict:each(f)
  self:flush()
  local d = self.d
  for _, k in ipairs(d:get_keys(0)) do
    local v = d:get(k)
    if type(v) == "number" then f(k, v) end
  end
end

local registry -- the process's (the worker's inside nginx)

-- A registry on nginx's shared dict d (ngx: nginx's table), else on a table of its own.
function M.new(d, ngx)
  if d then
    d:safe_add(DROPPED, 0) -- made while there is room, so that a full dict is still counted
    d:safe_add(GATE, 0)
  end
  local store = d and setmetatable({ d = d, ngx = ngx, pend = {}, timer = false }, Dict)
    or setmetatable({ v = {} }, Table)
  return setmetatable({ store = store, shared = d ~= nil }, { __index = M })
end

-- The process's registry: on nginx's dict when there is one.
function M.registry()
  local ngx = require("starvideos.config").nginx()
  registry = registry or M.new(ngx and ngx.shared and ngx.shared[M.DICT], ngx)
  return registry
end

local function escape(v) return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" })) end

-- The labels of family f as written: name="value",... (values in the family's order).
local function labels(f, a, b)
  local names = f[3]
  if not names[1] then return "" end
  local s = names[1] .. '="' .. escape(a) .. '"'
  if names[2] then s = s .. "," .. names[2] .. '="' .. escape(b) .. '"' end
  return s
end

-- Add v to the counter or gauge `name` with its label values a, b.
function M:add(name, v, a, b)
  local f = self.FAMILIES[BY_NAME[name]]
  self.store:incr(name .. "\t" .. labels(f, a, b) .. "\t", v)
end

-- One observation v of the histogram `name` with its label values a, b.
function M:observe(name, v, a, b)
  local f = self.FAMILIES[BY_NAME[name]]
  local buckets, i = f[5], 1
  while buckets[i] and v > buckets[i] do i = i + 1 end
  local pre = name .. "\t" .. labels(f, a, b) .. "\t"
  local store = self.store
  store:incr(pre .. "b" .. i, 1) -- (the count: the buckets' sum, as it is written out)
  store:incr(pre .. "s", v)
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
  for i, le in ipairs(f[5]) do
    cum = cum + (parts["b" .. i] or 0)
    out[#out + 1] = f[1] .. "_bucket" .. braces(l, 'le="' .. num(le) .. '"') .. " " .. num(cum)
  end
  cum = cum + (parts["b" .. #f[5] + 1] or 0)
  out[#out + 1] = f[1] .. "_bucket" .. braces(l, 'le="+Inf"') .. " " .. num(cum)
  out[#out + 1] = f[1] .. "_sum" .. braces(l) .. " " .. num(parts.s or 0)
  out[#out + 1] = f[1] .. "_count" .. braces(l) .. " " .. num(cum)
end

-- The text format of every family: HELP and TYPE, then each series (label sets in order).
function M:text()
  local series = {} -- family -> labels -> part -> value
  self.store:each(function(k, v)
    local name, l, part = k:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    if name and BY_NAME[name] then
      series[name] = series[name] or {}
      series[name][l] = series[name][l] or {}
      series[name][l][part] = v
    end
  end)
  local out = {}
  for _, f in ipairs(self.FAMILIES) do
    out[#out + 1] = "# HELP " .. f[1] .. " " .. f[4]
    out[#out + 1] = "# TYPE " .. f[1] .. " " .. f[2]
    local sets, order = series[f[1]] or {}, {}
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
