-- Webhooks sent by the library (`notify`, lua/starvideos/notify.lua): a
-- receiver in Python's standard library (spec/fixtures/webhook_receiver.py)
-- records every request; each is checked with starvideos.verify_webhook.

local helper = require "spec.helper"
local starvideos = require "starvideos"
local cjson = require "cjson"

local q = helper.shell_quote
local KEY = "k-notify-0123456789"
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
local ENV = helper.CHILD_ENV .. "STARVIDEOS_API_KEY=" .. KEY .. " "

local notify_run = require "spec.support.notify_run"
local receiver, received = notify_run.receiver, notify_run.received
local function events_of(dir) return notify_run.events_of(dir, KEY, SECRET) end

describe("notify", function()
  local emu, dir

  before_each(function()
    emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.3 }
    dir = helper.tmpdir()
  end)
  after_each(function()
    emu:stop()
    helper.cleanup()
  end)

  it("refuses a bad option, naming notify.url or notify.secret and never showing the secret", function()
    local function refused(notify, where)
      local ok, err = pcall(starvideos.new, { api_key = KEY, base_url = emu.url, notify = notify })
      assert.is_false(ok)
      assert.matches(where, err, 1, true)
      assert.is_nil(tostring(err):find("s3cr3t-value", 1, true))
    end
    refused({ url = "ftp://127.0.0.1/x", secret = "s3cr3t-value" }, "notify.url")
    refused({ url = "not a url", secret = "s3cr3t-value" }, "notify.url")
    refused({ secret = "s3cr3t-value" }, "notify.url")
    refused({ url = "http://127.0.0.1/x" }, "notify.secret")
    refused({ url = "http://127.0.0.1/x", secret = "" }, "notify.secret")
    refused({ url = "http://127.0.0.1/x", secret = "whsec_!!s3cr3t-value" }, "notify.secret")
    refused({ url = "http://127.0.0.1/x", secret = "s3cr3t-value", retry_for = -1 }, "notify.retry_for")
    refused({ url = "http://127.0.0.1/x", secret = "s3cr3t-value", urll = 1 }, "unknown field 'urll'")
    refused("http://127.0.0.1/x", "notify")
    local c = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j" }
    local ok, err = pcall(c.keep, c, { notify = { url = "http://127.0.0.1/x", secret = "" }, timeout = 1 })
    assert.is_false(ok)
    assert.matches("notify.secret", err, 1, true)
    c:close()
  end)

  local function twenty(client, each_step) return notify_run.twenty(client, dir, each_step) end
  local check_twenty = notify_run.check_twenty

  it("sends each of 20 generates' events once after dedup by webhook-id, each signed, no key sent", function()
    local rx = receiver(dir)
    local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j",
      notify = { url = rx.url, secret = SECRET } }
    local ok, err = pcall(function()
      local jobs = twenty(client)
      client:close() -- waits for the deliveries in flight
      check_twenty(jobs, events_of(dir))
      -- each recorded delivered in the journal
      local _, delivered = notify_run.delivered(dir .. "/j")
      assert.are.equal(20, #delivered)
      for _, rec in ipairs(delivered) do assert.is_nil(rec.status) end -- taken, not refused
    end)
    rx.stop()
    assert(ok, err)
  end)

  it("still sends each once when the receiver starts 5 s late on its port #hosts", function()
    local port = helper.free_ports(1)[1]
    local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j",
      notify = { url = "http://127.0.0.1:" .. port .. "/hook", secret = SECRET } }
    local rx
    local ok, err = pcall(function()
      local jobs = notify_run.late(client, dir, function() rx = receiver(dir, port) end,
        function() return #received(dir) >= 20 and select(2, events_of(dir)) == 20 end)
      client:close()
      check_twenty(jobs, events_of(dir))
    end)
    if rx then rx.stop() end
    assert(ok, err)
  end)

  it("a process killed -9 while its delivery waits: keep sends the event with the same webhook-id #hosts", function()
    local rx = receiver(dir)
    helper.write_file(dir .. "/hang", "")
    local journal, out = dir .. "/j", dir .. "/v.mp4"
    local child = helper.spawn(ENV .. q(helper.lua) .. " " .. q(helper.root .. "/spec/fixtures/notify_child.lua") .. " "
      .. q(emu.url) .. " " .. q(journal) .. " " .. q(out) .. " killed " .. q(rx.url) .. " " .. q(SECRET))
    local killed = false
    local ok, err = pcall(function()
      assert.is_true(helper.wait_until(function() return #received(dir) >= 1 end, 30))
      assert.matches('"event":"owed"', helper.read_file(journal), 1, true)
      assert.is_true(helper.execute("kill -9 " .. child.pid))
      killed = true
      child:close()
      os.remove(dir .. "/hang")
      local first = received(dir)[1].headers["webhook-id"][1]
      local gets = notify_run.video_gets(emu)
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = journal }
      local results = assert(client:keep { lease = 1, timeout = 2, dir = dir,
        notify = { url = rx.url, secret = SECRET } })
      assert.are.equal(0, #results) -- the task was downloaded: only its event was owed
      local list = received(dir)
      assert.are.equal(2, #list)
      assert.are.equal(first, list[2].headers["webhook-id"][1])
      local by_id, n = events_of(dir)
      assert.are.equal(1, n)
      assert.are.equal("task.completed", by_id[first].type)
      assert.are.equal(out, by_id[first].path)
      assert.are.equal(gets, notify_run.video_gets(emu)) -- not downloaded again
      assert.are.same({ first }, (notify_run.delivered(journal)))
      -- a later keep finds nothing owed
      assert(client:keep { lease = 1, timeout = 1, dir = dir, notify = { url = rx.url, secret = SECRET } })
      assert.are.equal(2, #received(dir))
      client:close()
    end)
    if not killed then helper.execute("kill -9 " .. child.pid); child:close() end
    os.remove(dir .. "/hang")
    rx.stop()
    assert(ok, err)
  end)

  it("tells on_event a delivery with the receiver's own 2xx status; the log names the webhook's host", function()
    local rx = receiver(dir)
    helper.write_file(dir .. "/status", "202")
    local seen, lines = {}, {}
    local ok, err = pcall(function()
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j",
        notify = { url = rx.url, secret = SECRET }, log = function(l) lines[#lines + 1] = l end,
        on_event = function(ev) if ev.type == "delivery" then seen[#seen + 1] = ev end end }
      local task = assert(client:generate({ model = "videos", prompt = "a cat", duration = 5 }, { interval = 0.2 }))
      client:close()
      assert.are.equal(1, #received(dir))
      assert.are.equal(1, #seen)
      assert.are.equal("delivered", seen[1].outcome)
      assert.are.equal(202, seen[1].status)
      assert.are.equal(rx.url, seen[1].url)
      assert.is_nil(seen[1].reason)
      local want = { ["starvideos: request #%d+ POST " .. rx.url:gsub("%p", "%%%0") .. " attempt 1$"] = 0,
        ["^starvideos: delivery POST " .. rx.url:gsub("%p", "%%%0") .. " delivered status 202 task " .. task.id
          .. " webhook msg_%S+$"] = 0 }
      for _, l in ipairs(lines) do
        for pattern, n in pairs(want) do if l:find(pattern) then want[pattern] = n + 1 end end
      end
      for pattern, n in pairs(want) do assert.are.equal(1, n, pattern .. "\n" .. table.concat(lines, "\n")) end
    end)
    os.remove(dir .. "/status")
    rx.stop()
    assert(ok, err)
  end)

  it("does not follow a 3xx: one request, recorded refused, not sent again; a failed task's event", function()
    local rx = receiver(dir)
    helper.write_file(dir .. "/status", "302")
    local seen = {}
    local ok, err = pcall(function()
      emu:config { outcome = "failed" }
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j",
        notify = { url = rx.url, secret = SECRET },
        on_event = function(ev) if ev.type == "delivery" then seen[#seen + 1] = ev end end }
      local task, gerr = client:generate({ model = "videos", prompt = "fails", duration = 5 }, { interval = 0.2 })
      assert.is_nil(task)
      assert.are.equal("task_failed", gerr.kind)
      client:close()
      local list = received(dir)
      assert.are.equal(1, #list)
      local ev = cjson.decode(list[1].body)
      assert.are.equal("task.failed", ev.type)
      assert.are.equal("failed", ev.task.status)
      assert.are.same({ "input", "referenceImages" }, { ev.reason, ev.input }) -- (the emulator's default words)
      assert.are.equal(1, #seen)
      assert.are.equal("refused", seen[1].outcome)
      assert.are.equal(302, seen[1].status)
      assert.matches('"status":302', helper.read_file(dir .. "/j"), 1, true)
      -- refused for good: a keep sends nothing again
      local c2 = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j" }
      assert(c2:keep { lease = 1, timeout = 1, notify = { url = rx.url, secret = SECRET } })
      c2:close()
      assert.are.equal(1, #received(dir))
    end)
    rx.stop()
    assert(ok, err)
  end)

  it("keep's own notify: a task keep downloads for a closed owner without notify sends its event there #hosts",
    function()
    local rx = receiver(dir)
    local ok, err = pcall(function()
      local owner = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j" }
      local task = assert(owner:create { model = "videos", prompt = "kept", duration = 5 })
      owner:close() -- its unfinished task is a keeper's
      local c2 = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j" }
      assert(c2:keep { lease = 1, timeout = 10, dir = dir, interval = 0.2,
        notify = { url = rx.url, secret = SECRET } })
      c2:close()
      local list = received(dir)
      assert.are.equal(1, #list, "webhooks received") -- (0 when keep's jobs did not take its notify)
      local ev = cjson.decode(list[1].body)
      assert.are.equal("task.completed", ev.type)
      assert.are.equal(task.id, ev.task.id)
    end)
    rx.stop()
    assert(ok, err)
  end)

  it("CLI: generate --notify URL --notify-secret-file PATH sends the event; a bad secret file: usage error", function()
    local rx = receiver(dir)
    local function cli(extra)
      return helper.capture(ENV .. q(helper.lua) .. " " .. q(helper.root .. "/bin/starvideos")
        .. " generate --model videos --prompt cli --duration 5 --interval 0.2 --base-url " .. q(emu.url)
        .. " --out " .. q(dir .. "/c.mp4") .. " " .. extra .. " 2>&1")
    end
    local ok, err = pcall(function()
      helper.write_file(dir .. "/secret", SECRET .. "\n")
      helper.write_file(dir .. "/empty", "")
      local out, good, code = cli("--notify " .. q(rx.url) .. " --notify-secret-file " .. q(dir .. "/secret"))
      assert(good, out)
      assert.are.equal(0, code)
      local by_id, n = events_of(dir)
      assert.are.equal(1, n)
      local _, ev = next(by_id)
      assert.are.equal("task.completed", ev.type)
      assert.are.equal(dir .. "/c.mp4", ev.path)
      out, good, code = cli("--notify " .. q(rx.url) .. " --notify-secret-file " .. q(dir .. "/empty"))
      assert.is_nil(good)
      assert.are.equal(2, code)
      assert.matches("the webhook secret file " .. dir .. "/empty is empty", out, 1, true)
      out, _, code = cli("--notify " .. q(rx.url) .. " --notify-secret-file " .. q(dir .. "/none"))
      assert.are.equal(2, code)
      assert.matches("cannot read the webhook secret file", out, 1, true)
      out, _, code = cli("--notify " .. q(rx.url))
      assert.are.equal(2, code)
      assert.matches("--notify needs --notify-secret-file", out, 1, true)
      assert.are.equal(1, #received(dir)) -- none of those sent anything
    end)
    rx.stop()
    assert(ok, err)
  end)

  it("retries a 503 until retry_for runs out, leaves the event owed, and a later client's keep sends it", function()
    local rx = receiver(dir)
    helper.write_file(dir .. "/status", "503")
    local seen = {}
    local ok, err = pcall(function()
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j", retry_backoff = 0.1,
        notify = { url = rx.url, secret = SECRET, retry_for = 1.5 },
        on_event = function(ev) if ev.type == "delivery" then seen[#seen + 1] = ev end end }
      local task = assert(client:generate({ model = "videos", prompt = "503", duration = 5 },
        { out = dir .. "/v.mp4", interval = 0.2 }))
      client:close() -- waits: retry_for ends first
      assert.are.equal(1, #seen)
      assert.are.equal("owed", seen[1].outcome)
      assert.are.equal(503, seen[1].status)
      local tries = #received(dir)
      assert.is_true(tries >= 3, "only " .. tries .. " attempts")
      os.remove(dir .. "/status")
      local c2 = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j" }
      assert(c2:keep { lease = 1, timeout = 1, notify = { url = rx.url, secret = SECRET } })
      c2:close()
      local list = received(dir)
      assert.are.equal(tries + 1, #list)
      local by_id, n = events_of(dir)
      assert.are.equal(1, n)
      assert.truthy(by_id[require("starvideos.extras.notify").id(task.id, "task.completed")])
    end)
    rx.stop()
    assert(ok, err)
  end)

  it("a keep whose own delivery ran out of retry_for sends it again keep_again later, with its webhook-id #hosts",
    function()
    local rx = receiver(dir)
    helper.write_file(dir .. "/status", "503")
    local seen = {}
    local ok, err = pcall(function()
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j", retry_backoff = 0.1,
        notify = { url = rx.url, secret = SECRET, retry_for = 0.3 } }
      local task = assert(client:generate({ model = "videos", prompt = "503 long", duration = 5 },
        { out = dir .. "/v.mp4", interval = 0.2 }))
      client:close() -- owed, its owner gone
      local c2 = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j", retry_backoff = 0.1,
        on_event = function(ev) if ev.type == "delivery" then seen[#seen + 1] = ev.outcome end end }
      c2.cfg.keep_again = 1 -- (60 s by default)
      local start = os.time()
      -- the receiver refuses for the keep's first delivery's whole retry_for, then takes it
      assert(c2:keep { lease = 1, timeout = 6, notify = { url = rx.url, secret = SECRET, retry_for = 0.5 },
        sleep = function(s)
          if os.time() - start >= 2 then os.remove(dir .. "/status") end
          require("socket").sleep(s)
        end })
      c2:close()
      assert.are.equal("owed", seen[1]) -- keep's own delivery ran out
      assert.are.equal("delivered", seen[#seen])
      local by_id, n = events_of(dir)
      assert.are.equal(1, n)
      assert.truthy(by_id[require("starvideos.extras.notify").id(task.id, "task.completed")])
      local delivered = 0
      for line in helper.read_file(dir .. "/j"):gmatch("[^\n]+") do
        if line:find('"event":"delivered"', 1, true) then delivered = delivered + 1 end
      end
      assert.are.equal(1, delivered)
    end)
    os.remove(dir .. "/status")
    rx.stop()
    assert(ok, err)
  end)

  it("resume, on a client with notify, sends the event a closed client left owed, once, and waits for it", function()
    local rx = receiver(dir)
    helper.write_file(dir .. "/status", "503")
    local ok, err = pcall(function()
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j", retry_backoff = 0.1,
        notify = { url = rx.url, secret = SECRET, retry_for = 1 } }
      local task = assert(client:generate({ model = "videos", prompt = "owed", duration = 5 },
        { out = dir .. "/v.mp4", interval = 0.2 }))
      client:close() -- retry_for ran out: the event stays owed, its owner gone
      assert.matches('"event":"owed"', helper.read_file(dir .. "/j"), 1, true)
      -- (a retry the close cancelled may reach the receiver after it, logged as it is read: counted once settled)
      local tries = #received(dir)
      while true do
        helper.sleep(0.3)
        local now = #received(dir)
        if now == tries then break end
        tries = now
      end
      os.remove(dir .. "/status")
      -- without notify, resume sends nothing
      local plain = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j" }
      assert.are.same({}, assert(plain:resume { dir = dir }))
      plain:close()
      assert.are.equal(tries, #received(dir))
      local c2 = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j",
        notify = { url = rx.url, secret = SECRET } }
      assert.are.same({}, assert(c2:resume { dir = dir })) -- no unfinished task: only the event
      assert.are.equal(tries + 1, #received(dir)) -- delivered before resume returned
      local by_id, n = events_of(dir)
      assert.are.equal(1, n)
      local ev = by_id[require("starvideos.extras.notify").id(task.id, "task.completed")]
      assert.are.equal("task.completed", ev.type)
      assert.are.equal(dir .. "/v.mp4", ev.path)
      -- delivered is recorded: a second resume (and a keep) sends nothing again
      assert.are.same({}, assert(c2:resume { dir = dir }))
      c2:close()
      local c3 = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j" }
      assert(c3:keep { lease = 1, timeout = 1, notify = { url = rx.url, secret = SECRET } })
      c3:close()
      assert.are.equal(tries + 1, #received(dir))
    end)
    rx.stop()
    assert(ok, err)
  end)

  it("docs/webhooks.md's OpenResty receiver takes each of 20 generates' events once after dedup, each verified",
    function()
    local why = require("spec.support.nginx_run").missing { "nginx" }
    if why then return pending(why) end
    local run = require("spec.support.readme").hook_receiver(dir, SECRET, nil, dir .. "/hooks.log")
    local ok, err = pcall(function()
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j",
        notify = { url = "http://127.0.0.1:" .. run.port .. "/hook", secret = SECRET } }
      local jobs = twenty(client)
      client:close()
      assert.is_true(helper.wait_until(function() -- nginx writes its log as each request ends
        return #notify_run.hooks(dir .. "/hooks.log") >= 20
      end, 10))
      local ids, n = notify_run.hook_ids(dir .. "/hooks.log")
      assert.are.equal(20, n)
      local Notify = require "starvideos.extras.notify"
      for _, j in ipairs(jobs) do assert.is_true(ids[Notify.id(j.id, "task.completed")]) end
    end)
    run.stop()
    assert(ok, err)
  end)
end)

-- The ledger's owed events: the journal's run of spec/support/owed_cases.lua (the store's: the redis rock's
-- owed_redis_spec.lua).
describe("owed webhooks in the ledger", function()
  local Ledger = require "starvideos.records.ledger"
  local dir

  teardown(helper.cleanup)

  require("spec.support.owed_cases").run("journal", { it = it, pending = pending, assert = assert }, {
    new = function()
      dir = dir or helper.tmpdir()
      return Ledger.new(dir .. "/j", { lease = 1 })
    end,
    unready = function() dir = nil end, -- (each case a folder of its own)
    -- a FIFO put at its path (refused at once, never waited on)
    broken = function()
      local path = dir .. "/j"
      return function()
        assert(os.rename(path, path .. ".away"))
        assert(helper.execute("mkfifo " .. helper.shell_quote(path)))
      end, function()
        assert(os.remove(path))
        assert(os.rename(path .. ".away", path))
      end
    end })

  it("journal: keep's looks for owed events read what is new, at most leases.FOLLOW bytes a look", function()
    local leases = require "starvideos.records.leases"
    dir = helper.tmpdir()
    local path = dir .. "/j"
    require("bench.lib.big_journal").write(path, 3.5 * leases.FOLLOW) -- settled tasks, before the event
    local owner, other = Ledger.new(path, { lease = 1 }), Ledger.new(path, { lease = 1 })
    assert.truthy(owner:owe("msg_b", "task-b", '{"type":"task.completed"}'))
    owner:close()
    local k = assert(other:keeper())
    local looks, got = 0
    repeat
      local before = k.state and k.state.pos or 0
      got, looks = k:owed(), looks + 1
      assert.is_true(k.state.pos - before <= leases.FOLLOW, "a look read " .. (k.state.pos - before) .. " bytes")
    until got[1] or looks > 10
    assert.are.equal(4, looks) -- 3.5 MiB and the event: 4 slices of 1 MiB
    assert.are.equal("msg_b", got[1].wid)
    local pos = k.state.pos
    assert.are.same({}, k:owed()) -- claimed: its own now
    assert.are.equal(helper.file_size(path), k.state.pos) -- only its claim's line was new
    assert.is_true(k.state.pos > pos)
    k:close()
    other:close()
  end)
end)

