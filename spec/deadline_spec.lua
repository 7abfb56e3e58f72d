-- A create not sent by its call's deadline is never sent (issue "What new and hostile users found", item 1):
-- generate{timeout = 1} three times on a key whose budget gives a token every 10 s.  Before, each call waited for
-- its token past its timeout, then sent its create (paid) and ended `timeout` with the task queued; now the first
-- call's create goes at once, the next two end at their timeout with nothing sent, and the service saw one create.
local starvideos = require "starvideos"
local core = require "starvideos.core"
local socket = require "socket"
local shared_emulator = require "spec.support.shared_emulator"

describe("a create waiting for the key's budget", function()
  local emu
  shared_emulator({ queued = 0, processing = 600 }, function(e) emu = e end)

  it("ends at its call's timeout, never sent after it: 3 generate{timeout = 1} at 0.1 a second, 1 create", function()
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, requests_per_second = 0.1, max_retries = 0 }
    local ended, errs = {}, {}
    local first = core.now()
    for i = 1, 3 do
      local task, err = c:generate({ model = "videos", prompt = "deadline " .. i, duration = 5 },
        { timeout = 1, interval = 0.1 })
      ended[i], errs[i] = core.now() - first, err
      assert.is_nil(task)
      assert.are.equal("timeout", err.kind, err.message)
    end
    -- the first create was sent at once (its task is the service's, its wait timed out); the others never went
    assert.truthy(errs[1].id, errs[1].message)
    for i = 2, 3 do
      assert.truthy(errs[i].message:find("create not sent", 1, true), errs[i].message)
      assert.truthy(errs[i].message:find("nothing was sent", 1, true), errs[i].message)
      assert.is_nil(errs[i].id)
    end
    -- each ended at its timeout, not at the key's next token (10 s after the first create): no call waited for it
    for i = 1, 3 do
      assert.is_true(ended[i] < 10, string.format("call %d ended %.2f s after the first, past its token", i, ended[i]))
    end
    c:close()
    assert.are.equal(1, emu:creates())
  end)

  it("a create retried after an answer that made nothing is not sent again past the call's timeout", function()
    emu:clear()
    -- a 503 with Retry-After 2 s: nothing made; its retry would fall 1 s past the call's 1 s timeout
    emu:fault { method = "POST", path = "/v1/", status = 503, headers = { ["Retry-After"] = "2" }, count = 1 }
    local c = starvideos.new { api_key = emu.key, base_url = emu.url, max_retries = 3 }
    local task, err = c:generate({ model = "videos", prompt = "retried", duration = 5 }, { timeout = 1 })
    local ended = socket.gettime() -- (the emulator's clock is this machine's too)
    assert.is_nil(task)
    assert.are.equal(503, err.status, err.message) -- (the answer that made nothing: its retry never went)
    -- ended at its timeout, before the retry's time (2 s after the 503 was written): it did not wait for it
    local answered = emu:requests()[1].answered
    assert.is_true(ended < answered + 2, string.format("ended %.2f s after the 503, past its retry", ended - answered))
    c:close()
    assert.are.equal(1, emu:creates())
  end)
end)
