-- spend_limit inside nginx without a ledger (docs/spend.md): the reservations are kept in `lua_shared_dict
-- starvideos`, under the key's lock, for every worker.  One nginx of 4 workers; 50 requests at once, each asking
-- 10 creates of a 0.40 model against a key limit of 8.00: exactly 20 reach the service (counted at the emulator),
-- the other 480 are refused spend_limited, and client:spend() in any worker says 8 spent.  Pending where nginx or
-- its lua module is missing, and under any VM but lua5.4 (nginx's LuaJIT runs it).

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("spend_limit inside nginx", { "nginx", "curl" }) then return end
local helper = require "spec.helper"
local cjson = require "cjson.safe"

local str_format = string.format
local KEY = "k-spend-nginx"
local PRICES = '{ videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }'

-- nginx.conf: GET /ask?from=I&n=N makes N creates one after another (prompts "p I" ...), answering a line each
-- ("ok", or the error's kind); GET /spend prints client:spend()'s first entry as JSON.
local function conf(dir, port, emu_url)
  local new = str_format("require(\"starvideos\").new { api_key = %q, base_url = %q, requests_per_second = 1000, "
    .. "prices = %s, spend_limit = { amount = 8, per = \"day\" } }", KEY, emu_url, PRICES)
  local lines = nginx_run.conf_head(dir, 4)
  for _, l in ipairs {
    "    lua_shared_dict starvideos 1m;",
    str_format("    server { listen 127.0.0.1:%d;", port),
    "        location = /ask { content_by_lua_block {",
    "            local from, n = tonumber(ngx.var.arg_from), tonumber(ngx.var.arg_n)",
    "            local client = " .. new,
    "            for i = from, from + n - 1 do",
    "                local task, err = client:create { model = \"videos\", prompt = \"p \" .. i, duration = 5 }",
    "                ngx.say(task and \"ok\" or tostring(err.kind))",
    "            end",
    "            client:close()",
    "        } }",
    "        location = /spend { content_by_lua_block {",
    "            local client = " .. new,
    "            ngx.say(require(\"cjson\").encode(client:spend()[1]))",
    "            client:close()",
    "        } }",
    "        location = /pid { content_by_lua_block { ngx.say(ngx.worker.pid()) } }",
    "    }", "}", "" } do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

describe("spend_limit inside nginx, in the shared dict", function()
  local emu, host, dir
  lazy_setup(function()
    dir = helper.tmpdir()
    emu = helper.emulator { key = KEY, queued = 30, processing = 30 }
    host = nginx_run.serve(dir, function(p) return conf(dir, p, emu.url) end)
  end)
  lazy_teardown(function()
    if host then host.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("50 requests over 4 workers, 10 creates each of 0.40 against 8.00: exactly 20 reach the service", function()
    nginx_run.get_all(host.port, 50, dir, function(i) return str_format("ask?from=%d&n=10", i * 10) end)
    local tally = {}
    for i = 1, 50 do
      for line in (helper.read_file(dir .. "/out." .. i) or ""):gmatch("[^\n]+") do
        tally[line] = (tally[line] or 0) + 1
      end
    end
    io.stderr:write(str_format("spend_nginx_spec: %s; the emulator received %d creates\n", cjson.encode(tally),
      emu:creates()))
    assert.same({ ok = 20, spend_limited = 480 }, tally)
    assert.equal(20, emu:creates())
    local seen = cjson.decode((helper.capture(str_format("curl -s http://127.0.0.1:%d/spend", host.port))))
    assert.same({ 8, 0, 8 }, { seen.spent, seen.reserved, seen.amount })
  end)
end)
