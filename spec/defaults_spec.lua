-- Every number a user sees comes from config.lua's DEFAULTS (issue 36, item 8): for each one
-- moved there, the behaviour follows the table (a client made after a change to it behaves
-- by the new value).  No server: a scripted transport, a journal in a folder of the spec's.
-- (the webhook cases on a clock of their own, moved by the scripted transport's waits: first, before the library)
local clock = require "spec.support.fake_clock"
local helper = require "spec.helper"
local starvideos = require "starvideos"
local core = require "starvideos.core"
local journal = require "starvideos.records.journal"
local Fake = require "spec.support.fake_transport"
local Notify = require "starvideos.extras.notify"

local NOTIFY = { url = "http://127.0.0.1:9/hook", secret = "a webhook secret" }

local with_defaults = helper.with_defaults

-- fn(client, delivery) with `over` in DEFAULTS: a webhook in flight on a client whose
-- deliveries are answered only a minute later, on a clock of the case's (spec/support/fake_clock.lua: it moves only
-- as the transport waits, so that what close waits is counted at any pace, issue 78, 2).
local function delivering(over, fn)
  clock.start()
  finally(clock.stop)
  with_defaults(over, function()
    local fake = Fake.scripted(function() return { after = 60, status = 200, body = "" } end, { fake_clock = clock })
    local c = starvideos.new { api_key = "k-defaults", base_url = "http://fake", transport = fake, notify = NOTIFY }
    fn(c, Notify.send(c.ctx, c.cfg.notify, "msg_1", "task_1", "{}"))
  end)
end

describe("the numbers a user sees, each from config.DEFAULTS", function()
  teardown(helper.cleanup)

  it("retry_for: how long a webhook is retried when notify gives no retry_for", function()
    for _, v in ipairs { 7, 90 } do
      delivering({ retry_for = v, settle = 0 }, function(c, d)
        assert.near(v, d.req.deadline - core.now(), 1e-6)
        c:close()
      end)
    end
  end)

  it("settle: how long close waits for the webhooks in flight", function()
    for _, v in ipairs { 0.2, 1 } do
      delivering({ settle = v }, function(c, d)
        local t0 = core.now()
        c:close()
        local took = core.now() - t0
        assert.near(v, took, 1e-6, string.format("close took %.6f s of the clock, settle %g", took, v))
        assert.equal("cancelled", d.outcome) -- what was left stays owed
      end)
    end
  end)

  it("compact_at: the journal size past which a client compacts it when it opens it", function()
    local path = helper.tmpdir() .. "/j.jsonl"
    for i = 1, 40 do
      assert(journal.append(path, { event = "created", id = "t" .. i, model = "videos", duration = 5,
        prompt = ("a prompt long enough to count "):rep(4) }))
      assert(journal.append(path, { event = "status", id = "t" .. i, status = "failed" }))
    end
    local size = helper.file_size(path)
    local function open() starvideos.new({ api_key = "k-defaults", base_url = "http://fake",
      transport = Fake.new(), journal = path }):close() end
    with_defaults({ compact_at = size }, open) -- not larger than the limit: left as it is
    assert.equal(size, helper.file_size(path))
    with_defaults({ compact_at = size - 1 }, open)
    assert.is_true(helper.file_size(path) < size / 2, "not compacted past compact_at")
  end)

  it("log_line: the longest line of the log", function()
    local Log = require "starvideos.extras.log"
    for _, v in ipairs { 100, 300 } do
      with_defaults({ log_line = v }, function()
        assert.equal(v, #Log.redact(("x"):rep(1000), {}))
      end)
    end
  end)

  it("tolerance: how far from now verify_webhook takes a webhook's timestamp", function()
    local sign = require("starvideos.notify_option").sign()
    local function verified(age)
      local ts = tostring(os.time() - age)
      local headers = { ["webhook-id"] = "msg_5", ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sign.sign(NOTIFY.secret, "msg_5", ts, "{}") }
      return starvideos.verify_webhook(NOTIFY.secret, headers, "{}") ~= nil
    end
    assert.is_true(verified(200))
    with_defaults({ tolerance = 100 }, function() assert.is_false(verified(200)) end)
  end)

  it("prompt_head: the characters of a prompt that records and task lists keep", function()
    for _, v in ipairs { 5, 12 } do
      with_defaults({ prompt_head = v }, function()
        assert.equal(("é"):rep(v), require("starvideos.rules").head(("é"):rep(100)))
      end)
    end
  end)

  it("clock_skew: how often the service's clock is looked at, and the skew that is a warning", function()
    local function warned(most, skew)
      local said = {}
      local ctx
      with_defaults({ clock_skew = most }, function()
        ctx = require("spec.support.ctx").new { api_key = "k-skew-" .. most, base_url = "http://fake",
          transport = Fake.new(), on_event = function(e) said[#said + 1] = e.type end }
        ctx.key:clock({ clock = function() return skew end }, 100)
        assert.equal(100 + most, ctx.key.clock_at)
      end)
      ctx:release()
      return said[1]
    end
    assert.is_nil(warned(60, 30))
    assert.equal("warning", warned(10, 30))
  end)
end)
