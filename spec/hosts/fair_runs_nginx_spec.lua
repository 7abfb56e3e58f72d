-- Issue 82 in nginx's dict: tenant B's 5 creates beside tenant A's backlog on one host of 2 workers sharing the key's
-- budget in `lua_shared_dict starvideos` (no store), each create a client of its own in a timer (an app's request).
-- A asks 200 creates in worker 0, and once 8 of them reached the emulator B asks 5 in worker 1 (`two`), or 100 of A's
-- and B's 5 in worker 0 (`one`).  The verdict is spec/support/fair_runs.lua's, on the order the emulator logged the
-- creates in: B's in turn with A's, never behind A's backlog; the seconds from B's asking are said.  A fresh nginx and
-- emulator a run, three runs each (FAIR_RUNS=10 for more).  Pending where nginx or its lua module is missing, and
-- under any VM but lua5.4 (nginx's LuaJIT runs it).
local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("tenant B beside tenant A's backlog in nginx's dict", { "nginx" }) then return end
local helper = require "spec.helper"
local Runs = require "spec.support.fair_runs"
local http = require "socket.http"

local str_format = string.format
local KEY, RATE = "k-fair-runs", 5
local RUNS = tonumber(os.getenv("FAIR_RUNS") or "") or 3

-- GET /ask?tenant=T&n=N&worker=W: in worker W alone (another answers 409: asked again, the kernel gives the next
-- connection to either), N creates of T (prompts "T 1" ...) each in a timer with a client of its own; the answer is
-- "asking <the wall clock>", said before the first is started.  Each outcome goes to the dict `outcomes` ("ok" or
-- the error), which GET /outcomes?tenant=T lists.
local function conf(dir, port, emu_url)
  local lines = nginx_run.conf_head(dir, 2)
  for _, l in ipairs {
    "    lua_shared_dict starvideos 1m;",
    "    lua_shared_dict outcomes 1m;",
    str_format("    server { listen 127.0.0.1:%d reuseport;", port),
    "        location = /ask { content_by_lua_block {",
    "            local a = ngx.req.get_uri_args()",
    "            if tonumber(a.worker) ~= ngx.worker.id() then return ngx.exit(409) end",
    "            ngx.say(string.format(\"asking %.6f\", require(\"starvideos.core\").wall()))",
    "            for i = 1, tonumber(a.n) do",
    "                assert(ngx.timer.at(0, function(premature)",
    "                    if premature then return end",
    str_format("                    local c = require(\"starvideos\").new { api_key = %q, base_url = %q, "
      .. "requests_per_second = %d }", KEY, emu_url, RATE),
    "                    local task, err = c:create({ model = \"videos\", prompt = a.tenant .. \" \" .. i,",
    "                      duration = 5 }, { tenant = a.tenant })",
    "                    c:close()",
    "                    ngx.shared.outcomes:set(a.tenant .. \" \" .. i, task and \"ok\" or tostring(err))",
    "                end))",
    "            end",
    "        } }",
    "        location = /outcomes { content_by_lua_block {",
    "            local o = ngx.shared.outcomes",
    "            for _, k in ipairs(o:get_keys(0)) do",
    "                if k:sub(1, #ngx.var.arg_tenant + 1) == ngx.var.arg_tenant .. \" \" then ngx.say(k, \"=\", "
      .. "o:get(k)) end",
    "            end",
    "        } }",
    "    }", "}", "" } do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

-- Ask worker w of the host on port for n creates of tenant: when it asked (its wall clock).
local function ask(port, w, tenant, n)
  local said, code
  for _ = 1, 200 do -- (each a new connection: reuseport gives it to either worker)
    said, code = http.request(str_format("http://127.0.0.1:%d/ask?tenant=%s&n=%d&worker=%d", port, tenant, n, w))
    if code ~= 409 then break end
  end
  return assert(tonumber((said or ""):match("^asking (%S+)")), str_format("/ask of worker %d: %s %s", w,
    tostring(code), tostring(said)))
end

-- B's outcomes once all 5 ended: "B i" -> what it ended with.
local function b_ended(port)
  local out
  assert(helper.wait_until(function()
    out = {}
    for k, v in (http.request(str_format("http://127.0.0.1:%d/outcomes?tenant=B", port)) or "")
      :gmatch("([^\n=]+)=([^\n]+)") do out[k] = v end
    for i = 1, 5 do if not out["B " .. i] then return false end end
    return true
  end, 120), "B's 5 creates did not all end in 120 s")
  return out
end

-- One run on a fresh host and emulator: A's in worker 0, B's in worker b_worker once 8 of A's were logged.
local function run(a_count, b_worker)
  local emu = helper.emulator { key = KEY, queued = 60, processing = 60 }
  local dir = helper.tmpdir()
  local host
  local ok, res = pcall(function()
    host = nginx_run.serve(dir, function(p) return conf(dir, p, emu.url) end)
    ask(host.port, 0, "A", a_count)
    assert(helper.wait_until(function() return emu:creates() >= 8 end, 60), "A's first creates never came")
    local at = ask(host.port, b_worker, "B", 5)
    local out = b_ended(host.port)
    for i = 1, 5 do assert(out["B " .. i] == "ok", "B " .. i .. ": " .. out["B " .. i]) end
    return Runs.tally(emu, at)
  end)
  if host then host.stop() end
  emu:stop()
  if not ok then error(res, 0) end
  return res
end

describe("tenant B beside tenant A's backlog in nginx's dict", function()
  teardown(function() helper.cleanup() end)

  it(str_format("B's 5 creates in turn with A's, A's 200 in one worker and B's 5 in the other (%d runs)", RUNS),
    function()
    for i = 1, RUNS do Runs.check(assert, run(200, 1), "nginx two workers, run " .. i) end
  end)

  it(str_format("B's 5 creates in turn with A's, beside 100 of A's in one worker (%d runs)", RUNS), function()
    for i = 1, RUNS do Runs.check(assert, run(100, 0), "nginx one worker, run " .. i) end
  end)
end)
