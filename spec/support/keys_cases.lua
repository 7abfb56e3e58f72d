-- The key cases (docs/batch.md "Keys"), run on a journal (spec/records/keys_spec.lua)
-- and on a store (rocks/redis/spec/hosts/keys_store_spec.lua): a job is keyed by the file it
-- makes (its out, as an absolute path) or by opts.key, and a rerun never pays
-- twice.  Against the emulator, counting creates there.
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"
local compact = require "starvideos.records.compact"

local q = helper.shell_quote
local ROOT = helper.capture("cd " .. q(helper.root) .. " && pwd"):match("^([^\n]+)")
-- the library of this checkout for a child run from any directory
local CHILD = "env LUA_PATH=" .. q(helper.lua_path(ROOT) .. ";;") .. " LUA_CPATH="
  .. q(require("starvideos.core").file_key(helper.cpath) .. ";;") .. " "
local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

-- on: "journal", or "store" with store_url (a redis-server's, one per run: each
-- case's keys are its own folder's paths, or names made unique); b: busted's
-- functions (describe, it, pending, before_each, assert).
return function(on, store_url, b)
  local describe, pending, before_each, assert = b.describe, b.pending, b.before_each, b.assert
  -- each case, passed, proves a rerun pays nothing on its ledger, for a script's files (docs/matrix.md)
  local function it(name, fn)
    b.it(name, function()
      fn()
      require("spec.support.matrix").record("rerun", { on == "store" and "redis" or "journal", "file", "lua" }, name)
    end)
  end
  describe("keys on a " .. on .. ": a rerun never pays twice", function()
    local emu, dir
    shared_emulator({ queued = 0.2, processing = 0.2 }, function(e) emu = e end)
    before_each(function() dir = helper.tmpdir() end)

    local function ledger() return on == "store" and store_url or dir .. "/tasks.jsonl" end
    -- the ledger as its messages name it (a store: its URL without a password)
    local function shown()
      return on == "store" and require("starvideos.store_option").where(store_url) or ledger()
    end
    local function client(events)
      return starvideos.new { api_key = emu.key, base_url = emu.url, [on] = ledger(),
        retry_backoff = 0.01, min_interval = 0, on_event = events and function(ev) events[#events + 1] = ev end }
    end

    -- a shell command: ok, and what it wrote on stderr
    local function sh(cmd)
      local ok = helper.execute("(" .. cmd .. ") 2>" .. q(dir .. "/stderr"))
      return { ok = ok == true, err = helper.read_file(dir .. "/stderr") or "" }
    end

    local function attached(events)
      local list = {}
      for _, ev in ipairs(events) do if ev.type == "attached" then list[#list + 1] = ev end end
      return list
    end

    it("a finished out is not made again: the second generate sends nothing at all", function()
      local out = dir .. "/a.mp4"
      local task = assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      assert.equal(1, emu:creates())
      local requests, events = #emu:requests(), {}
      local again = assert(client(events):generate(PARAMS, { out = out, interval = 0.1 }))
      assert.equal(task.id, again.id)
      assert.equal(out, again.path)
      assert.equal(requests, #emu:requests()) -- no create, no poll, no download
      local ev = attached(events)
      assert.equal(1, #ev)
      assert.equal(task.id, ev[1].id)
      assert.equal(dir .. "/a.mp4", ev[1].key)
    end)

    it("a created task not yet downloaded is attached to: polled and downloaded, not created", function()
      emu:config { queued = 1 }
      local c = client()
      local outs, jobs = {}, {}
      for i = 1, 3 do
        outs[i] = dir .. "/" .. i .. ".mp4"
        jobs[i] = assert(c:start({ model = "videos", prompt = "cat " .. i, duration = 5 },
          { out = outs[i], interval = 0.1 }))
      end
      assert.is_true(helper.wait_until(function() -- (each create answered and recorded: under load the
        c:step(0.05)                               -- emulator's count of creates came sooner than the answers)
        for _, j in ipairs(jobs) do if j.state == "creating" then return false end end
        return true
      end, 30))
      c:close() -- Ctrl-C: three tasks created, none downloaded
      assert.is_falsy(helper.exists(outs[1]))
      local events = {}
      local c2 = client(events)
      for i = 1, 3 do
        assert.truthy(c2:generate({ model = "videos", prompt = "cat " .. i, duration = 5 },
          { out = outs[i], interval = 0.1 }))
        assert.equal(require("starvideos.emulator.files").video(5),
          helper.read_video(outs[i]))
      end
      assert.equal(3, emu:creates())
      assert.equal(3, #attached(events))
    end)

    it("a batch run again over its files made takes no token of the key's budget and sends nothing", function()
      local list = {}
      for i = 1, 6 do list[i] = { model = "videos", prompt = "batch " .. i, duration = 5 } end
      local out = dir .. "/b%d.mp4"
      for _, r in ipairs(client():generate_all(list, { out = out, interval = 0.1 })) do assert.is_nil(r.err) end
      local requests, c, tokens = #emu:requests(), client(), 0
      local budget = c.key.bucket
      function budget.token(...) tokens = tokens + 1; return getmetatable(budget).token(...) end
      local ok, results = pcall(c.generate_all, c, list, { out = out, interval = 0.1 })
      budget.token = nil -- (the key's bucket: its method again)
      for i, r in ipairs(assert(ok and results, results)) do
        assert.same({ nil, string.format(out, i) }, { r.err, r.path })
      end
      assert.equal(0, tokens) -- (a store asked per key: none taken while it answers)
      assert.equal(requests, #emu:requests())
    end)

    it("a relative out is the same key as its absolute path", function()
      local out = dir .. "/rel.mp4"
      assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      local script = [=[
        local c = require("starvideos").new { api_key = arg[1], base_url = arg[2], [arg[4]] = arg[3] }
        assert(c:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = "rel.mp4", interval = 0.1 }))]=]
      helper.write_file(dir .. "/rel.lua", script)
      local r = sh("cd " .. q(dir) .. " && " .. CHILD .. q(helper.lua) .. " rel.lua " .. q(emu.key) .. " "
        .. q(emu.url) .. " " .. q(ledger()) .. " " .. on)
      assert.is_true(r.ok, r.err)
      assert.equal(1, emu:creates())
    end)

    it("one file under six spellings is one key: ., .., repeated slashes and a symlinked folder resolved", function()
      assert(os.execute("mkdir " .. q(dir .. "/out") .. " " .. q(dir .. "/x") .. " && ln -s out " .. q(dir .. "/link")))
      local events = {}
      for _, out in ipairs { "out/0001.mp4", "out/./0001.mp4", "out//0001.mp4", "x/../out/0001.mp4",
          "link/0001.mp4", "./link//./0001.mp4" } do
        local task, err = client(events):generate(PARAMS, { out = dir .. "/" .. out, interval = 0.1 })
        assert.truthy(task, out .. ": " .. tostring(err))
      end
      assert.equal(1, emu:creates())
      for _, ev in ipairs(events) do
        if ev.type == "attached" then assert.equal(dir .. "/out/0001.mp4", ev.key) end
      end
    end)

    it("the same out with other params is refused, naming the task and what differs; fresh = true creates", function()
      local out = dir .. "/b.mp4"
      local task = assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      local got, err = client():generate({ model = "videos", prompt = "a cat", duration = 10 }, { out = out })
      assert.is_nil(got)
      assert.equal("invalid_request", err.kind)
      assert.equal("out", err.field)
      assert.matches(task.id, err.message, 1, true)
      assert.matches('duration 5 there, 10 here', err.message, 1, true)
      assert.equal(1, emu:creates())
      assert(client():generate({ model = "videos", prompt = "a cat", duration = 10 },
        { out = out, fresh = true, interval = 0.1 }))
      assert.equal(2, emu:creates())
    end)

    it("opts.key keys a job without out; a failed task's key creates anew", function()
      local key = "cat-1 " .. dir
      emu:config { outcome = "failed", error = "a failure nobody wrote down" } -- (unknown: not kept, created again)
      local _, err = client():generate(PARAMS, { key = key, interval = 0.1 })
      assert.equal("task_failed", err.kind)
      emu:config { outcome = "completed" }
      local task = assert(client():generate(PARAMS, { key = key, interval = 0.1 }))
      assert.equal(2, emu:creates())
      local events = {}
      local again = assert(client(events):generate(PARAMS, { key = key, interval = 0.1 }))
      assert.equal(task.id, again.id)
      assert.equal(2, emu:creates())
      assert.equal(1, #attached(events))
    end)

    it("a create whose answer never came refuses its key, naming the record, until pending --forget", function()
      local out = dir .. "/c.mp4"
      emu:fault { method = "POST", drop = true, after = true }
      local _, err = client():generate(PARAMS, { out = out })
      assert.is_true(err.maybe_created)
      assert.equal(1, emu:creates())
      local lid
      for _, p in ipairs(assert(client():pending())) do
        if p.out == out then lid = p["local"] end
      end
      assert.truthy(lid)
      local got, rerr = client():generate(PARAMS, { out = out })
      assert.is_nil(got)
      assert.equal("invalid_request", rerr.kind)
      assert.equal("out", rerr.field)
      assert.matches("pending record " .. lid, rerr.message, 1, true)
      local forget = "starvideos pending --" .. on .. " " .. shown() .. " --forget " .. lid
      assert.matches(forget, rerr.message, 1, true)
      assert.equal(1, emu:creates())
      -- (a store's records are its key's: the CLI has the key and base URL as a user's shell does)
      local cli = "STARVIDEOS_API_KEY=" .. q(emu.key) .. " STARVIDEOS_BASE_URL=" .. q(emu.url) .. " " .. q(helper.lua)
        .. " " .. q(helper.root .. "/bin/starvideos")
      local r = sh(cli .. forget:sub(#"starvideos" + 1) .. " >/dev/null")
      assert.is_true(r.ok, r.err)
      assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      assert.equal(2, emu:creates())
      r = sh(cli .. " pending --" .. on .. " " .. q(ledger()) .. " --forget nosuch")
      assert.is_false(r.ok)
      assert.matches("no pending create nosuch", r.err, 1, true)
    end)

    local journal_it = on == "journal" and it or pending
    journal_it("compaction keeps a downloaded file's key", function()
      local out = dir .. "/d.mp4"
      assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      assert(compact.compact(dir .. "/tasks.jsonl"))
      local requests = #emu:requests()
      assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      assert.equal(requests, #emu:requests())
    end)

    it("a file gone, cut or changed since its download is fetched again, not created", function()
      local out = dir .. "/e.mp4"
      assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      helper.write_file(out, "cut")
      assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      assert.equal(1, emu:creates())
      assert.equal(require("starvideos.emulator.files").video(5), helper.read_video(out))
      local video = helper.read_file(out) -- changed in place, its size kept: its SHA-256 tells
      helper.write_file(out, video:sub(1, -2) .. (video:sub(-1) == "x" and "y" or "x"))
      assert(client():generate(PARAMS, { out = out, interval = 0.1 }))
      assert.equal(1, emu:creates())
      assert.equal(video, helper.read_file(out))
    end)

    it("a task of the key that a live process holds is downloaded to a .part of the job's own; a dead "
      .. "process's, to out's .part (a keep's or a resume's to go on from)", function()
      local out = dir .. "/g.mp4"
      emu:config { processing = 2 }
      helper.write_file(dir .. "/hold.lua", [=[
        local c = require("starvideos").new { api_key = arg[1], base_url = arg[2], [arg[5]] = arg[3], lease = 1 }
        assert(c:start({ model = "videos", prompt = "a cat", duration = 5 }, { out = arg[4], interval = 0.05 }))
        local stop = os.time() + 20 -- (a failed case ends it too)
        while not io.open(arg[6]) and os.time() < stop do c:step(0.05) end -- (its lease renewed; its job runs)
        c:close()]=])
      local stop_file = dir .. "/stop"
      local child = helper.spawn(CHILD .. q(helper.lua) .. " " .. q(dir .. "/hold.lua") .. " " .. q(emu.key) .. " "
        .. q(emu.url) .. " " .. q(ledger()) .. " " .. q(out) .. " " .. on .. " " .. q(stop_file))
      local function follow()
        local c = client()
        local job = assert(c:start(PARAMS, { out = out, interval = 0.05 }))
        local stop = os.time() + 10
        while not job.done and os.time() < stop do c:step(0.01) end
        c:close()
        return job
      end
      -- (the child's task recorded, not only sent: a live process's pending record refuses the key, by design)
      assert(helper.wait_until(function()
        local c = client()
        local list = emu:creates() == 1 and c:tasks() or {}
        c:close()
        return list[1] and list[1].id ~= nil
      end, 10), "the child made no task")
      local job = follow()
      assert.is_nil(job.err)
      assert.truthy(job.part and job.part:find(out .. ".part-", 1, true), tostring(job.part))
      assert.equal(out, job.path)
      helper.write_file(stop_file, "")
      child:close()
      os.remove(out)
      job = follow() -- the holder gone: the key's task fetched again, its .part out's
      assert.is_nil(job.err)
      assert.is_nil(job.part)
      assert.equal(1, emu:creates())
    end)

    it("two processes on one " .. on .. " and one out create once", function()
      emu:config { queued = 0.5 }
      local out = dir .. "/f.mp4"
      local script = [=[
        local c = require("starvideos").new { api_key = arg[1], base_url = arg[2], [arg[5]] = arg[3] }
        local t, err = c:generate({ model = "videos", prompt = "a cat", duration = 5 },
          { out = arg[4], interval = 0.1 })
        io.write(t and t.id or tostring(err))]=]
      helper.write_file(dir .. "/race.lua", script)
      local cmd = CHILD .. q(helper.lua) .. " " .. q(dir .. "/race.lua") .. " " .. q(emu.key) .. " "
        .. q(emu.url) .. " " .. q(ledger()) .. " " .. q(out) .. " " .. on
      local r = sh("(" .. cmd .. " > " .. q(dir .. "/1") .. " & " .. cmd .. " > " .. q(dir .. "/2")
        .. " & wait)")
      assert.is_true(r.ok, r.err)
      assert.equal(1, emu:creates())
      -- one made it; the other attached to it or found it pending, never created
      local one, two = helper.read_file(dir .. "/1"), helper.read_file(dir .. "/2")
      assert.truthy(one:match("^video") or two:match("^video"), one .. " / " .. two)
      assert.equal(require("starvideos.emulator.files").video(5), helper.read_video(out))
      -- the one that followed a live process's task wrote a .part of its own, gone once committed
      for name in io.popen("ls -a " .. q(dir)):lines() do assert.falsy(name:find(".part", 1, true), name) end
    end)
  end)
end
