-- spend_limit inside nginx (docs/spend.md): a limit needs a journal (or a store), kept across restarts; one with
-- neither is refused when the client is made, since nginx's memory (its lua_shared_dict, a worker's own) is emptied
-- when nginx stops.  One nginx of 4 workers, each location a ledger of its own:
-- - /bare: a client with neither: refused when made, naming journal and store; nothing reaches the service.
-- - /ask (journal a.jsonl): 50 requests at once, each asking 10 creates of a 0.40 model against a key limit of
--   8.00: exactly 20 reach the service (counted at the emulator), the other 480 are refused spend_limited, and
--   client:spend() in any worker says 8 spent.
-- - /day (journal day.jsonl): 8 requests at once, a create each against a day's 2.00: 5 reach the service, and
--   50%, 80% and 100% are each said once in the error log (error_log at info: a warning shows); nginx stopped and
--   started (TERM, not HUP), then reloaded (HUP, its workers replaced): 3 more asks after each, 0 more creates at
--   the emulator, nothing said again.
-- And a worker of its own: spend.lua loaded by a client with a limit, not by one without nor by its create.
-- Pending where nginx or its lua module is missing, and under any VM but lua5.4 (nginx's LuaJIT runs it).

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("spend_limit inside nginx", { "nginx", "curl" }) then return end
local helper = require "spec.helper"
local cjson = require "cjson.safe"

local str_format = string.format
local KEY = "k-spend-nginx"
local PRICES = '{ videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }'

-- starvideos.new's text for a location: its limit's amount and more options (Lua text).
local function new(emu_url, amount, more)
  return str_format("require(\"starvideos\").new { api_key = %q, base_url = %q, requests_per_second = 1000, "
    .. "prices = %s, spend_limit = { amount = %s, per = \"day\" }%s }", KEY, emu_url, PRICES, amount, more)
end

-- nginx.conf: GET /ask?from=I&n=N makes N creates one after another (prompts "p I" ...), answering a line each
-- ("ok", or the error's kind); GET /spend prints client:spend()'s first entry as JSON; GET /day?i=I one create of
-- day.jsonl's client, which logs each spend_limit warning as "SAID <percent>"; GET /bare makes a client with neither
-- journal nor store and answers what new raised.
local function conf(dir, port, emu_url)
  local ask = new(emu_url, 8, str_format(", journal = %q", dir .. "/a.jsonl"))
  local day = new(emu_url, 2, str_format(", journal = %q, on_event = function(e) if e.field == \"spend_limit\" "
    .. "then ngx.log(ngx.WARN, \"SAID \", e.percent) end end", dir .. "/day.jsonl"))
  local lines = nginx_run.conf_head(dir, 4)
  for _, l in ipairs {
    "    lua_shared_dict starvideos 1m;",
    str_format("    server { listen 127.0.0.1:%d;", port),
    "        location = /ask { content_by_lua_block {",
    "            local from, n = tonumber(ngx.var.arg_from), tonumber(ngx.var.arg_n)",
    "            local client = " .. ask,
    "            for i = from, from + n - 1 do",
    "                local task, err = client:create { model = \"videos\", prompt = \"p \" .. i, duration = 5 }",
    "                ngx.say(task and \"ok\" or tostring(err.kind))",
    "            end",
    "            client:close()",
    "        } }",
    "        location = /spend { content_by_lua_block {",
    "            local client = " .. ask,
    "            ngx.say(require(\"cjson\").encode(client:spend()[1]))",
    "            client:close()",
    "        } }",
    "        location = /day { content_by_lua_block {",
    "            local client = " .. day,
    "            local task, err = client:create { model = \"videos\", prompt = \"d \" .. ngx.var.arg_i,",
    "              duration = 5 }",
    "            ngx.say(task and \"ok\" or tostring(err.kind))",
    "            client:close()",
    "        } }",
    "        location = /bare { content_by_lua_block {",
    "            local ok, err = pcall(function() return " .. new(emu_url, 2, "") .. " end)",
    "            ngx.say(ok and \"made\" or tostring(err))",
    "        } }",
    "    }", "}", "" } do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

-- The answers of the n requests of a get_all in dir, counted: {line = count}.
local function tally(dir, n)
  local counts = {}
  for i = 1, n do
    for line in (helper.read_file(dir .. "/out." .. i) or ""):gmatch("[^\n]+") do
      counts[line] = (counts[line] or 0) + 1
    end
  end
  return counts
end

-- The worker processes of nginx's master pid, as a set.
local function workers(pid)
  local set = {}
  for c in (helper.read_file(str_format("/proc/%d/task/%d/children", pid, pid)) or ""):gmatch("%d+") do
    set[c] = true
  end
  return set
end

describe("spend_limit inside nginx", function()
  local emu, host, dir
  local function start()
    host = nginx_run.serve(dir, function(p) return conf(dir, p, emu.url) end, host and host.port)
  end
  lazy_setup(function()
    dir = helper.tmpdir()
    emu = helper.emulator { key = KEY, queued = 30, processing = 30 }
    start()
  end)
  lazy_teardown(function()
    if host then host.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("with neither journal nor store the client is refused when made, naming both; nothing is sent", function()
    local before = emu:creates()
    local said = helper.capture(str_format("curl -s http://127.0.0.1:%d/bare", host.port))
    assert.matches("bad option 'spend_limit' to 'new' (inside nginx a limit needs journal = PATH (every worker of "
      .. "this host) or store = URL (every host): without either it is counted in nginx's memory, which a restart "
      .. "of nginx empties, letting creates past the limit)", said, 1, true)
    assert.equal(before, emu:creates())
  end)

  it("50 requests over 4 workers, 10 creates each of 0.40 against 8.00: exactly 20 reach the service", function()
    local before = emu:creates()
    nginx_run.get_all(host.port, 50, dir, function(i) return str_format("ask?from=%d&n=10", i * 10) end)
    local counts = tally(dir, 50)
    io.stderr:write(str_format("spend_nginx_spec: %s; the emulator received %d creates\n", cjson.encode(counts),
      emu:creates() - before))
    assert.same({ ok = 20, spend_limited = 480 }, counts)
    assert.equal(20, emu:creates() - before)
    local seen = cjson.decode((helper.capture(str_format("curl -s http://127.0.0.1:%d/spend", host.port))))
    assert.same({ 8, 0, 8 }, { seen.spent, seen.reserved, seen.amount })
  end)

  it("a day's cap reached over 4 workers says 50%, 80% and 100% once each; nginx stopped and started, then "
    .. "reloaded (HUP): 0 creates past the cap", function()
    local before = emu:creates()
    nginx_run.get_all(host.port, 8, dir, function(i) return "day?i=" .. i end)
    assert.same({ ok = 5, spend_limited = 3 }, tally(dir, 8))
    assert.equal(5, emu:creates() - before)
    host.stop() -- TERM: nginx's memory gone
    start()
    nginx_run.get_all(host.port, 3, dir, function(i) return "day?i=" .. (10 + i) end)
    assert.same({ spend_limited = 3 }, tally(dir, 3), "after a restart")
    assert.equal(5, emu:creates() - before, "creates past the cap after a restart")
    local old = workers(host.pid)
    assert.truthy(next(old), "nginx's workers")
    assert(helper.execute(str_format("kill -HUP %d", host.pid)))
    assert.truthy(helper.wait_until(function()
      for pid in pairs(workers(host.pid)) do if old[pid] then return false end end
      return true
    end, 15), "HUP's new workers")
    nginx_run.get_all(host.port, 3, dir, function(i) return "day?i=" .. (20 + i) end)
    assert.same({ spend_limited = 3 }, tally(dir, 3), "after a reload")
    assert.equal(5, emu:creates() - before, "creates past the cap after a reload")
    local said = {}
    for pct in (helper.read_file(dir .. "/error.log") or ""):gmatch("SAID (%d+)") do
      said[#said + 1] = tonumber(pct)
    end
    table.sort(said)
    assert.same({ 50, 80, 100 }, said, "each once in the window, across workers, restarts and reloads")
  end)
end)

-- What loads in a worker (issue 68 part 6): a client without a spend limit, and its create counted in nginx's dict,
-- load no spend.lua; a client with one (and its journal) does.  One worker, so that the second answer is the same
-- worker's as the first.
describe("spend.lua inside nginx", function()
  it("is not loaded by a client without a spend limit nor by its create (the budget in the dict); a limit loads it",
    function()
    local emu = helper.emulator { key = KEY }
    local dir = helper.tmpdir()
    local loaded = 'tostring(package.loaded["starvideos.spend"] ~= nil)'
    local host = nginx_run.serve(dir, function(port)
      local lines = nginx_run.conf_head(dir, 1)
      for _, l in ipairs {
        "    lua_shared_dict starvideos 1m;",
        str_format("    server { listen 127.0.0.1:%d;", port),
        "        location = /plain { content_by_lua_block {",
        str_format("            local c = require(\"starvideos\").new { api_key = %q, base_url = %q }", KEY, emu.url),
        "            local task = c:create { model = \"videos\", prompt = \"a cat\", duration = 5 }",
        "            ngx.say(tostring(task and task.id ~= nil), \" \", " .. loaded .. ")",
        "            c:close()",
        "        } }",
        "        location = /limited { content_by_lua_block {",
        "            local c = " .. new(emu.url, 2, str_format(", journal = %q", dir .. "/l.jsonl")),
        "            ngx.say(" .. loaded .. ")",
        "            c:close()",
        "        } }",
        "    }", "}", "" } do lines[#lines + 1] = l end
      return table.concat(lines, "\n")
    end)
    finally(function() host.stop() emu:stop() end)
    local get = function(path) return helper.capture(str_format("curl -s http://127.0.0.1:%d%s", host.port, path)) end
    assert.equal("true false\n", get("/plain"))
    assert.equal(1, emu:creates())
    assert.equal("true\n", get("/limited"))
  end)
end)
