-- The OTLP collector of the specs (spec/npm/otlp_collector.js: each export decoded with OpenTelemetry's own
-- definitions, a JSON line per span), started on a port the system picks and stopped after.
--   local col = Otlp.start(dir[, silent])   col.url (…/v1/traces), col.names (the conventions' names), col:stop()
--   col:spans() -> the spans decoded so far (and col:errors(): the exports refused, col:exports(): those taken)
--   col:task(id) -> the span of task id, and the CLIENT spans

local helper = require "spec.helper"
local cjson = require "cjson"

local M = {}

M.DIR = helper.root .. "/spec/npm"

-- Why the collector cannot run here, or nil (node, and the npm packages: make npm-deps).
function M.missing()
  if not helper.execute("command -v node >/dev/null 2>&1") then return "node is not installed" end
  if not helper.exists(M.DIR .. "/node_modules/@opentelemetry/otlp-transformer/package.json") then
    return "the OTLP definitions are not installed (make npm-deps)"
  end
end

local C = {}
C.__index = C

function M.start(dir, silent)
  local port_file, out = dir .. "/otlp.port", dir .. "/otlp.jsonl"
  local q = helper.shell_quote
  local proc = helper.spawn("node " .. q(M.DIR .. "/otlp_collector.js") .. " " .. q(port_file) .. " " .. q(out)
    .. (silent and " silent" or "") .. " 2>" .. q(dir .. "/otlp.err"))
  assert(helper.wait_until(function() return helper.exists(port_file) and helper.read_file(port_file) ~= "" end, 30),
    "the OTLP collector did not start: " .. tostring(helper.read_file(dir .. "/otlp.err")))
  local port = tonumber(helper.read_file(port_file))
  return setmetatable({ proc = proc, out = out, url = "http://127.0.0.1:" .. port .. "/v1/traces", port = port,
    names = cjson.decode(helper.read_file(port_file .. ".names")) }, C)
end

local function lines(self, pick)
  local list = {}
  for l in (helper.read_file(self.out) or ""):gmatch("[^\n]+") do
    local v = cjson.decode(l)
    if pick(v) then list[#list + 1] = v end
  end
  return list
end

function C:spans() return lines(self, function(v) return v.id ~= nil end) end
function C:errors() return lines(self, function(v) return v.error ~= nil end) end
function C:exports() return lines(self, function(v) return v.export ~= nil end) end

-- The span of task id (its starvideos.task.id) and every CLIENT span decoded so far.
function C:task(id)
  local root, clients = nil, {}
  for _, sp in ipairs(self:spans()) do
    if sp.attrs["starvideos.task.id"] == id then root = sp end
    if sp.kind == 3 then clients[#clients + 1] = sp end
  end
  return root, clients
end

function C:stop()
  if not self.proc then return end
  helper.execute("kill " .. self.proc.pid .. " 2>/dev/null")
  self.proc:close()
  self.proc = nil
end

return M
