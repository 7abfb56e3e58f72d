-- The key's budget read where it grants, for the hosts specs whose processes, workers or hosts share one budget
-- (spec/hosts/shared_budget_spec.lua, spec/hosts/budget_nginx_spec.lua, rocks/redis/spec/hosts/fleet_spec.lua and
-- redis_spec.lua): not the service's arrivals, whose spacing a loaded machine's way to the service can bunch past
-- the 50 ms the rule leaves it (issue 78, 2), but each token the shared budget gave, with its `tat` (bucket.lua:
-- the time its next token is due, one gap after this grant's slot) read from the budget's own state as it granted.
-- The rule's arithmetic is proved on a fake clock (spec/budget_spec.lua, spec/fair_spec.lua); what these runs
-- prove is that every request took its token from the one shared budget (none from a process's own bucket) and
-- that its grants followed one another on its one state.
--
-- The recorders are Lua for nginx's init_by_lua (before the workers fork): each grant a line "<pid> <t> <tat>"
-- appended to a file (one write each, O_APPEND: the workers' lines whole).  Redis' grants: redis_run.monitor.

local helper = require "spec.helper"
local busiest = require("spec.support.nginx_run").busiest

local M = {}

-- bucket.lua's PER: the rule's second (a second and 50 ms for the way to the service).
M.PER = require("starvideos.bucket").PER

-- init_by_lua code recording every token nginx's dict grants (nginx/budget.lua's take: bucket.lua's share_rule
-- under the dict's lock, its tat read there too) to path.  A worker's own bucket, standing in, is not recorded.
function M.dict_recorder(path)
  return string.format([[
local B = require "starvideos.bucket"
local share = B.share_rule
B.share_rule = function(kv, tenant, now, rate)
  local wait = share(kv, tenant, now, rate)
  if wait == 0 then
    local f = assert(io.open(%q, "a"))
    f:write(string.format("%%d %%.6f %%.17g\n", ngx.worker.pid(), now, tonumber(kv.get("tat"))))
    f:close()
  end
  return wait
end
]], path)
end

-- init_by_lua code recording every token a worker's bucket of a key gives (bucket.lua's B:token, no remote: the
-- key's bucket in the worker, shared by its clients) to path, with the bucket's tat.
function M.bucket_recorder(path)
  return string.format([[
local B = require "starvideos.bucket"
local token = B.token
B.token = function(self, t, ...)
  local at, held = token(self, t, ...)
  if at == nil then
    local f = assert(io.open(%q, "a"))
    f:write(string.format("%%d %%.6f %%.17g\n", ngx.worker.pid(), t, tonumber(self.kv.get("tat"))))
    f:close()
  end
  return at, held
end
]], path)
end

-- The grants a recorder wrote to path: { {pid =, t =, tat =}, ... } in the order of their tat.
function M.read(path)
  local list = {}
  for l in helper.whole_lines(path) do
    local pid, t, tat = l:match("^(%d+) (%S+) (%S+)$")
    list[#list + 1] = { pid = tonumber(pid), t = tonumber(t), tat = assert(tonumber(tat), l) }
  end
  table.sort(list, function(a, b) return a.tat < b.tat end)
  return list
end

-- A MONITOR of the redis-server on port (redis-cli, a process of its own), attached when this returns: stop()
-- ends it once it saw every command sent before the call (a word echoed, awaited) and returns the grants of the
-- key's budgets it saw: each SET of a key's tat by the budget's script (fleet/budget.lua's budget_token, bucket.lua's
-- share: it sets tat when it gives a token, and only then), in the order of their tat ({tat =}, no pid or t).
function M.redis_monitor(port)
  local file = helper.tmpdir() .. "/monitor.txt"
  local proc = helper.spawn(string.format("%sredis-cli -h 127.0.0.1 -p %d monitor >%s 2>&1", helper.UNINSTRUMENTED,
    port, helper.shell_quote(file)))
  assert(helper.wait_until(function() return (helper.read_file(file) or ""):find("^OK\n") ~= nil end, 15),
    "redis-cli monitor did not attach: " .. tostring(helper.read_file(file)))
  return function()
    local mark = string.format("starvideos-grants-%d-%d", proc.pid, math.random(1e9))
    assert(helper.execute(string.format("redis-cli -h 127.0.0.1 -p %d ECHO %s >/dev/null", port, mark)))
    local seen = helper.wait_until(function()
      return (helper.read_file(file) or ""):find('"ECHO" "' .. mark .. '"', 1, true) ~= nil
    end, 60)
    helper.execute("kill " .. proc.pid .. " 2>/dev/null")
    proc:close()
    assert(seen, "the monitor did not see the ECHO sent after the run")
    local list = {}
    for l in helper.whole_lines(file) do
      local tat = l:match('^[%d.]+ %[%d+ lua%] "SET" "starvideos:{[^}]*}:tat" "([^"]+)"')
      if tat then list[#list + 1] = { tat = assert(tonumber(tat), l) } end
    end
    table.sort(list, function(a, b) return a.tat < b.tat end)
    return list
  end
end

-- The verdict on `grants` (read's, or redis_run.monitor's) for `requests` API requests the server saw, at `rate`
-- tokens a second: nil when every request had its token from the shared budget (no fewer grants than requests)
-- and its grants came one after another on its one state (at most rate of their tats in any PER s: two budgets,
-- or two grants read from the same state, put more there); else why not.  And the figures, as a line.
function M.verdict(grants, requests, rate)
  local tats = {}
  for i, g in ipairs(grants) do tats[i] = g.tat end
  table.sort(tats)
  local most = busiest(tats, M.PER - 1e-6)
  local line = string.format("%d tokens granted where the budget is kept for %d API requests the server saw, at most "
    .. "%d of them in any %.2f s of its clock (requests_per_second %d)", #grants, requests, most, M.PER, rate)
  if #grants < requests then
    return line .. ": " .. (requests - #grants) .. " requests took no token from the shared budget", line
  end
  if most > rate then return line .. ": more than requests_per_second in one of its seconds", line end
  return nil, line
end

return M
