-- The same refusal never paid twice on a store (refusal.lua, fleet/refusals.lua): a real redis-server
-- (rocks/redis/spec/support/redis_run.lua) holds a task's policy refusal by its create's content; 4 processes on other
-- clients of the store are each refused before sending (refused_before, naming the first task); resend = true sends it.
-- Counted at the emulator.
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local why = redis_run.missing()
if why then
  pending("refused before on a store: " .. why)
  return
end

local SRC = [[
  local c = require("starvideos").new { api_key = arg[1], base_url = arg[2], store = arg[3], failure_patterns = {
    { match = "flagged by the moderation", reason = "policy", input = "prompt" } } }
  local _, err = c:generate({ model = "videos", prompt = "a flagged cat", duration = 5 },
    { interval = 0.05, timeout = 20, resend = arg[4] == "resend" })
  print(err and err.kind, err and err.task and err.task.id, err and err.reason)
  c:close()
]]

describe("refused before and fallback on a store", function()
  it("a policy refusal: 4 processes refused before sending, 1 create in all; resend: sent", function()
    local redis = redis_run.start()
    local emu = helper.emulator()
    finally(function() emu:stop(); redis.stop() end)
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "Prompt flagged by the moderation model" }
    local dir = helper.tmpdir()
    local function run(n, extra)
      local procs, outs = {}, {}
      for i = 1, n do procs[i] = helper.run_lua(dir, "p" .. i, SRC, { emu.key, emu.url, redis.url, extra or "" }) end
      for i = 1, n do outs[i] = procs[i].pipe:read("*a"); procs[i]:close() end
      return outs
    end
    local first = run(1)[1]
    local id = assert(first:match("^task_failed\t(%S+)\tpolicy\n$"), first)
    assert.equal(1, emu:creates())
    for _, out in ipairs(run(4)) do assert.equal("refused_before\t" .. id .. "\tpolicy\n", out) end
    assert.equal(1, emu:creates(), "none of the 4 sent")
    assert.matches("^task_failed\t%S+\tpolicy\n$", run(1, "resend")[1])
    assert.equal(2, emu:creates(), "resend: sent")
  end)

  it("a fallback on a store: a service failure, then 1 create on the next model, the lineage showing both", function()
    local redis = redis_run.start()
    local emu = helper.emulator()
    finally(function() emu:stop(); redis.stop() end)
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "The service is overloaded" }
    local c = require("starvideos").new { api_key = emu.key, base_url = emu.url, store = redis.url,
      failure_patterns = { { match = "overloaded", reason = "service" } } }
    local switched = false
    local task = assert(c:generate({ model = "videos", prompt = "a cat that falls back", duration = 5 },
      { out = helper.tmpdir() .. "/v.mp4", interval = 0.05, timeout = 20, fallback = { "videos_fast" },
        on_progress = function(ev)
          if not switched and ev.type == "status" then switched = true; emu:config { outcome = "completed" } end
        end }))
    assert.equal(2, emu:creates())
    local by = {}
    for _, t in ipairs(assert(c:tasks())) do by[t.model] = t end
    assert.same({ "failed", "downloaded" }, { by.videos.state, by.videos_fast.state })
    assert.same({ by.videos.id, "fallback", by.videos_fast.id }, { by.videos_fast.parent, by.videos_fast.relation,
      task.id })
    c:close()
  end)
end)
