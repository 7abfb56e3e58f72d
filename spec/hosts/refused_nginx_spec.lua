-- The same refusal never paid twice inside nginx (refusal.lua; docs/failures.md): no journal nor store, so the
-- refusal is kept in `lua_shared_dict starvideos` (nginx/budget.lua), for every worker.  A location generates the
-- prompt with a client of its own, its failure_patterns naming the emulator's text policy: the first request's task
-- fails; then 4 requests at once over the 2 workers are refused before sending (refused_before, naming the first
-- task); with ?resend=1 it is sent.  And a fallback inside nginx: a service failure, then the next model.  Counted
-- at the emulator.  Pending where nginx or its lua module is missing.

local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"

local KEY = "k-refused-nginx"

if nginx_run.pending_unless_ready("refused before inside nginx", { "nginx", "curl" }) then return end

-- ?resend=1: send it anyway.  Answers the error's kind, its task's id and its reason, or "ok".
local GENERATE = [[
  local a = ngx.req.get_uri_args()
  local c = require("starvideos").new { api_key = %q, base_url = %q, failure_patterns = {
    { match = "flagged by the moderation", reason = "policy", input = "prompt" } } }
  local _, err = c:generate({ model = "videos", prompt = "a flagged cat", duration = 5 },
    { interval = 0.05, timeout = 20, resend = a.resend == "1" })
  c:close()
  ngx.say(err and (tostring(err.kind) .. " " .. tostring(err.task and err.task.id) .. " " .. tostring(err.reason))
    or "ok")
]]

-- A generate with fallback = {"videos_fast"}: "ok", its relation and parent, or the error's kind and reason.
local FALLBACK = [[
  local c = require("starvideos").new { api_key = %q, base_url = %q, failure_patterns = {
    { match = "overloaded", reason = "service" } } }
  local t, err = c:generate({ model = "videos", prompt = "a cat that falls back", duration = 5 },
    { interval = 0.05, timeout = 20, fallback = { "videos_fast" } })
  c:close()
  ngx.say(t and ("ok " .. tostring(t.relation) .. " " .. tostring(t.parent)) or (tostring(err.kind) .. " "
    .. tostring(err.reason)))
]]

describe("refused before and fallback inside nginx (the dict)", function()
  it("a policy refusal: the same create from 4 requests over 2 workers is refused before sending; resend: sent; "
    .. "a fallback after a service failure",
    function()
      local emu = helper.emulator { key = KEY }
      emu:config { queued = 0, processing = 0, outcome = "failed", error = "Prompt flagged by the moderation model" }
      local dir = helper.tmpdir()
      local n = nginx_run.serve(dir, function(port)
        local lines = nginx_run.conf_head(dir, 2)
        lines[#lines + 1] = "    lua_shared_dict starvideos 1m;"
        lines[#lines + 1] = "    server { listen 127.0.0.1:" .. port .. ";"
        lines[#lines + 1] = "      location = /generate { content_by_lua_block { " .. GENERATE:format(KEY, emu.url)
          .. " } }"
        lines[#lines + 1] = "      location = /fallback { content_by_lua_block { " .. FALLBACK:format(KEY, emu.url)
          .. " } }"
        lines[#lines + 1] = "    }\n}\n"
        return table.concat(lines, "\n")
      end)
      finally(function() n.stop(); emu:stop() end)
      local first = helper.capture(string.format("curl -s 'http://127.0.0.1:%d/generate'", n.port))
      local id = assert(first:match("^task_failed (%S+) policy\n$"), first)
      assert.equal(1, emu:creates())
      nginx_run.get_all(n.port, 4, dir, function() return "generate" end)
      for i = 1, 4 do
        assert.equal("refused_before " .. id .. " policy\n", helper.read_file(dir .. "/out." .. i))
      end
      assert.equal(1, emu:creates(), "none of the 4 sent")
      local sent = helper.capture(string.format("curl -s 'http://127.0.0.1:%d/generate?resend=1'", n.port))
      assert.matches("^task_failed %S+ policy\n$", sent)
      assert.equal(2, emu:creates(), "resend: sent")
      -- a fallback: the first task (queued 1 s) fails for service, the next model's completes
      emu:reset()
      emu:config { queued = 1, processing = 0, outcome = "failed", error = "The service is overloaded" }
      local curl = helper.spawn(string.format("curl -s 'http://127.0.0.1:%d/fallback'", n.port))
      assert(helper.wait_until(function() return emu:creates() == 1 end, 10))
      emu:config { queued = 0, outcome = "completed" } -- (the first task still fails: its outcome was set)
      local said = curl.pipe:read("*a")
      curl:close()
      local parent = assert(said:match("^ok fallback (%S+)\n$"), said)
      local models = {}
      for _, r in ipairs(emu:requests()) do
        if r.method == "POST" then models[#models + 1] = helper.json(r.body).model end
      end
      assert.same({ "videos", "videos_fast" }, models)
      assert.matches("^video_videos_", parent)
    end)
end)
