-- Webhooks and nginx (issue 15, "Tests with real processes"): docs/webhooks.md's
-- OpenResty receiver (spec/support/readme.lua's hook_receiver; its access log
-- gives each request's webhook-id, status and Authorization) takes the events
-- of 20 generates when it is down for their first 5 s, and the event of a
-- process killed -9 between download and delivery, sent by keep; and a client
-- inside nginx sends its own webhooks, to the spec's Python receiver and to the
-- docs'.  Pending, with the reason, where nginx or its lua module is missing.

local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"

if nginx_run.pending_unless_ready("webhooks and nginx", { "nginx", "curl" }) then return end

local starvideos = require "starvideos"
local Notify = require "starvideos.extras.notify"
local notify_run = require "spec.support.notify_run"
local readme = require "spec.support.readme"

local q, str_format = helper.shell_quote, string.format
local KEY = "k-notify-ngx-0123456789"
local SECRET = "whsec_JgVRKmU6J8n1MyQv4lLdQPim3S/tVC9c"
local hooks, hook_ids = notify_run.hooks, notify_run.hook_ids

describe("webhooks and nginx:", function()
  local emu

  setup(function() emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.3 } end)
  teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)

  describe("docs/webhooks.md's OpenResty receiver", function()
    local dir

    before_each(function() dir = helper.tmpdir() end)

    it("down for the first 5 s: the sender's retries carry each of 20 generates' events to it once", function()
      local port = helper.free_ports(1)[1] -- chosen now, listened on 5 s later
      local log = dir .. "/hooks.log"
      local retried = {} -- the deliveries (request numbers) that failed while the receiver was down
      local run
      local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = dir .. "/j",
        requests_per_second = 50, retry_backoff = 0.2,
        notify = { url = "http://127.0.0.1:" .. port .. "/hook", secret = SECRET },
        on_event = function(ev)
          if not run and ev.type == "retry" and ev.path == "http://127.0.0.1:" .. port .. "/hook" then
            retried[ev.request] = true
          end
        end }
      local ok, err = pcall(function()
        local jobs, ended_before = notify_run.late(client, dir,
          function() run = readme.hook_receiver(dir, SECRET, nil, log, port) end,
          function() return #hooks(log) >= 20 end)
        client:close()
        assert.is_true(ended_before, "the 20 jobs took more than 5 s: their events were not made while it was down")
        local down = 0
        for _ in pairs(retried) do down = down + 1 end
        assert.are.equal(20, down) -- each delivery failed and was retried before the receiver was up
        local ids, n = hook_ids(log) -- each 200 (verified), no Authorization
        assert.are.equal(20, n)
        for _, j in ipairs(jobs) do assert.is_true(ids[Notify.id(j.id, "task.completed")]) end
        local _, delivered = notify_run.delivered(dir .. "/j")
        assert.are.equal(20, #delivered)
        for _, rec in ipairs(delivered) do assert.is_nil(rec.status) end -- taken, not refused
      end)
      if run then run.stop() end
      assert(ok, err)
    end)

    it("a process killed -9 between download and delivery: keep sends its event once, with the same webhook-id, "
      .. "without downloading again", function()
      local port = helper.free_ports(1)[1] -- closed while the child runs: its delivery fails and is retried
      local url = "http://127.0.0.1:" .. port .. "/hook"
      local journal, out, log = dir .. "/j", dir .. "/v.mp4", dir .. "/hooks.log"
      local child = helper.spawn(helper.CHILD_ENV .. "STARVIDEOS_API_KEY=" .. KEY .. " " .. q(helper.lua) .. " "
        .. q(helper.root .. "/spec/fixtures/notify_child.lua") .. " " .. q(emu.url) .. " " .. q(journal) .. " "
        .. q(out) .. " killed " .. q(url) .. " " .. q(SECRET))
      local killed, run = false, nil
      local gets = notify_run.video_gets(emu)
      local ok, err = pcall(function()
        assert.is_true(helper.wait_until(function()
          return (helper.read_file(journal) or ""):find('"event":"owed"', 1, true) ~= nil
        end, 30))
        assert.is_true(helper.execute("kill -9 " .. child.pid))
        killed = true
        child:close()
        local id
        for _, t in ipairs(emu:tasks()) do
          if t.params.prompt == "killed" then
            assert.is_nil(id) -- created once
            id = t.id
          end
        end
        local wid = Notify.id(assert(id), "task.completed") -- the id it would have had
        assert.is_true(helper.file_size(out) > 0)              -- downloaded,
        assert.are.same({}, (notify_run.delivered(journal)))  -- not delivered
        gets = gets + 1
        assert.are.equal(gets, notify_run.video_gets(emu))   -- once
        run = readme.hook_receiver(dir, SECRET, nil, log, port)
        local client = starvideos.new { api_key = KEY, base_url = emu.url, journal = journal }
        local notify = { url = url, secret = SECRET }
        local results = assert(client:keep { lease = 1, timeout = 2, dir = dir, notify = notify })
        assert.are.equal(0, #results) -- the task was downloaded: only its event was owed
        assert.is_true(helper.wait_until(function() return #hooks(log) >= 1 end, 5))
        local ids, n = hook_ids(log) -- 200 (verified), no Authorization
        assert.are.equal(1, n)
        assert.are.equal(1, #hooks(log))
        assert.is_true(ids[wid])
        assert.are.equal(gets, notify_run.video_gets(emu)) -- not downloaded again
        assert.are.same({ wid }, (notify_run.delivered(journal)))
        -- a later keep sends nothing
        assert(client:keep { lease = 1, timeout = 1, dir = dir, notify = notify })
        client:close()
        assert.is_false(helper.wait_until(function() return #hooks(log) > 1 end, 0.5))
        assert.are.same({ wid }, (notify_run.delivered(journal)))
      end)
      if not killed then helper.execute("kill -9 " .. child.pid); child:close() end
      if run then run.stop() end
      assert(ok, err)
    end)
  end)

  describe("a client inside nginx sending webhooks", function()
    local dir, rx, run

    -- GET /gen?to=py|ngx: a client (a journal dir/<to>.j, notify to the Python
    -- receiver or to the docs' receiver at /hook of this nginx) generates into
    -- dir/<to>.mp4; the answer is "ok <id>" or the error.
    local function gen_location()
      return {
        "        location = /gen { access_log off; content_by_lua_block {",
        "            local starvideos = require \"starvideos\"",
        "            local to = ngx.var.arg_to",
        "            local url = to == \"ngx\" and \"http://127.0.0.1:\" .. ngx.var.server_port .. \"/hook\"",
        str_format("              or %q", rx.url),
        str_format("            local client = starvideos.new { api_key = %q, base_url = %q,", KEY, emu.url),
        str_format("              journal = %q .. to .. \".j\",", dir .. "/"),
        str_format("              notify = { url = url, secret = %q } }", SECRET),
        "            local task, err = client:generate(",
        "              { model = \"videos\", prompt = \"in nginx \" .. to, duration = 5 },",
        str_format("              { out = %q .. to .. \".mp4\", interval = 0.2, timeout = 60 })", dir .. "/"),
        "            client:close()",
        "            ngx.say(task and (\"ok \" .. task.id) or (\"err \" .. tostring(err)))",
        "        } }",
      }
    end

    setup(function()
      dir = helper.tmpdir()
      rx = notify_run.receiver(dir)
      run = readme.hook_receiver(dir, SECRET, gen_location(), dir .. "/hooks.log")
    end)
    teardown(function()
      if run then run.stop() end
      if rx then rx.stop() end
    end)

    -- GET /gen?to=...: the task id nginx answered.
    local function gen(to)
      local said = helper.capture(str_format(helper.UNINSTRUMENTED .. "curl -s -m 60 'http://127.0.0.1:%d/gen?to=%s'",
        run.port, to))
      local id = said:match("^ok (%S+)\n$")
      assert.truthy(id, said .. (helper.read_file(dir .. "/error.log") or ""))
      return id
    end

    it("the spec's receiver gets one signed task.completed with the file's path and bytes, no key; "
      .. "the journal records it delivered", function()
      local id = gen("py")
      local wid = Notify.id(id, "task.completed")
      local by_id, n = notify_run.events_of(dir, KEY, SECRET) -- each verified, no Authorization, the key nowhere
      assert.are.equal(1, n)
      assert.are.equal(1, #notify_run.received(dir)) -- taken at the first attempt
      local ev = assert(by_id[wid])
      assert.are.equal("task.completed", ev.type)
      assert.are.equal(id, ev.task.id)
      assert.are.equal("completed", ev.task.status)
      assert.are.equal(dir .. "/py.mp4", ev.path)
      assert.is_true(ev.bytes > 0)
      assert.are.equal(helper.file_size(dir .. "/py.mp4"), ev.bytes)
      local ids, delivered = notify_run.delivered(dir .. "/py.j")
      assert.are.same({ wid }, ids)
      assert.is_nil(delivered[1].status) -- taken, not refused
    end)

    it("docs/webhooks.md's OpenResty receiver in the same nginx verifies its event (200), no Authorization; "
      .. "the journal records it delivered", function()
      local id = gen("ngx")
      local wid = Notify.id(id, "task.completed")
      assert.is_true(helper.wait_until(function() return #hooks(dir .. "/hooks.log") >= 1 end, 5))
      local ids, n = hook_ids(dir .. "/hooks.log")
      assert.are.equal(1, n)
      assert.is_true(ids[wid])
      local delivered = notify_run.delivered(dir .. "/ngx.j")
      assert.are.same({ wid }, delivered)
    end)
  end)
end)
