-- One list of cases that every ledger passes (docs/architecture.md "The ledger interface"): the journal's
-- and no ledger's (spec/records/ledger_cases_spec.lua, fast) and the store's on a real redis-server
-- (rocks/redis/spec/hosts/ledger_cases_redis_spec.lua).  Each case drives a client's ledger on its loop, so that an
-- answer may be false ("not yet", a store's; a journal written off the caller's thread too): env.answer
-- asks again, the loop stepped between, until it is given.
--
-- A case: name; covers, the interface's names it holds (every name of the table is covered by one);
-- records, true when it needs a ledger that records (not the one of a client without journal or store);
-- run(env, assert) with
--   env.open(opts)       a client's ledger, of the case's own key (opts: more options of starvideos.new)
--   env.answer(fn, ...)  fn(...)'s values once they are not false
--   env.held(h)          a confirm's h:poll() once it is not nil
--   env.settle()         the records written (a store's queued ones sent and answered)
--   env.lapse()          the process's lease of the key lapsed (a journal: its file removed; a store: a
--                        lease, 1 s, not renewed)
--   env.dir              a folder of the case's own

local helper = require "spec.helper"
local core = require "starvideos.core"

local M = {}

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }
local PRICES = { videos = 0.4, videos_fast = 0.5, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }
local BODY = '{"model":"videos","prompt":"a cat","duration":5}'

-- A keyed job's want (job.lua's) for the file out; fp and body: other params than PARAMS'.
local function want(out, fp, body)
  return { key = out, fp = fp or core.hash(BODY), body = body or BODY, out = out }
end

local function ids(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = t.id or t.wid or t["local"] end
  table.sort(out)
  return out
end

M.cases = {
  { name = "records a task from its pending create to its file: pending, unfinished, part, tasks",
    promise = "generate",
    covers = { "before_create", "created", "status", "sink_state", "downloaded", "unfinished", "tasks", "pending",
      "records", "field", "confirm" },
    records = true,
    run = function(env, assert)
      local l, out = env.open(), env.dir .. "/v.mp4"
      assert.is_true(l.records)
      assert.truthy(l.field == "journal" or l.field == "store", tostring(l.field))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "l1", out))
      local p = assert(l:pending())
      assert.same({ 1, "l1", "videos", out }, { #p, p[1]["local"], p[1].model, p[1].out })
      assert.is_true(env.answer(l.created, l, { id = "t1" }, PARAMS, "l1"))
      assert.same({}, l:pending())
      assert.same({ { id = "t1", model = "videos", out = out } }, l:unfinished())
      l:status("t1", "processing")
      l:sink_state("t1", "part", out .. ".part", out)
      assert.same({ { id = "t1", model = "videos", out = out } }, l:unfinished(), "no .part on disk: afresh")
      helper.write_file(out .. ".part", "x")
      assert.same({ { id = "t1", model = "videos", out = out, part = out } }, l:unfinished())
      l:status("t1", "completed", 120, 2)
      helper.write_file(out, "video")
      l:downloaded("t1", out, "ab12", 5) -- (its size: the caller's, video.lua's)
      assert.same({}, l:unfinished())
      assert.is_nil(l:confirm("t1"), "settled: held no more")
      assert.is_true(env.answer(l.before_create, l, PARAMS, "l2"))
      assert.is_true(env.answer(l.created, l, { id = "t2" }, PARAMS, "l2"))
      l:status("t2", "failed", nil, nil, "refused")
      assert.same({}, l:unfinished(), "a failed task is finished")
      assert.is_nil(l:confirm("t2"))
      local other = env.open() -- another client's view of the same records
      local by = {}
      for _, t in ipairs(assert(other:tasks())) do by[t.id] = t end
      assert.same({ "downloaded", out, 5, "ab12" }, { by.t1.state, by.t1.path, by.t1.bytes, by.t1.sha256 })
      assert.equal("failed", by.t2.state)
    end },

  { name = "refused: a policy or input failure kept by its create's content, seen by another client of the ledger",
    promise = "refused_before",
    covers = { "refusal", "refused" },
    run = function(env, assert)
      local l, addr = env.open(), "addr-" .. core.random_id()
      assert.is_nil(env.answer(l.refusal, l, addr), "none kept yet")
      l:refused("t9", addr, "policy", "prompt", "Prompt flagged", "alice")
      env.settle()
      local other = env.open() -- another client's view of the same ledger
      local e = env.answer(other.refusal, other, addr)
      assert.same({ "t9", "policy", "prompt", "Prompt flagged", "alice" }, { e.id, e.reason, e.input, e.error,
        e.tenant })
      assert.is_nil(env.answer(other.refusal, other, addr .. "-other"), "other content: none")
    end },

  { name = "refused by its status: a task recorded with its create's content address, its policy failure recorded "
    .. "by another client (resume's, keep's, a query's), refuses that content; a service failure does not; a task "
    .. "of that content completed since clears it",
    covers = { "before_create", "created", "status", "refusal" },
    records = true,
    run = function(env, assert)
      local l, addr, other = env.open(), "addr-" .. core.random_id(), nil
      for i, reason in ipairs { "policy", "service" } do
        assert.is_true(env.answer(l.before_create, l, PARAMS, "s" .. i, nil, nil, "alice", addr .. i))
        assert.is_true(env.answer(l.created, l, { id = "ts" .. i }, PARAMS, "s" .. i))
        env.settle()
        other = env.open() -- (one that did not make it: it knows the task by its record alone)
        other:status("ts" .. i, "failed", nil, nil, "Prompt flagged", reason, reason == "policy" and "prompt" or nil)
        env.settle()
      end
      local e = env.answer(l.refusal, l, addr .. 1)
      assert.same({ "ts1", "policy", "prompt", "Prompt flagged", "alice" }, { e and e.id, e and e.reason,
        e and e.input, e and e.error, e and e.tenant })
      assert.is_nil(env.answer(other.refusal, other, addr .. 2), "a service failure: not kept")
      assert.is_true(env.answer(l.before_create, l, PARAMS, "s3", nil, nil, nil, addr .. 1)) -- (a resend)
      assert.is_true(env.answer(l.created, l, { id = "ts3" }, PARAMS, "s3"))
      env.settle()
      other:status("ts3", "completed", 3)
      env.settle()
      assert.is_nil(env.answer(l.refusal, l, addr .. 1), "its content passed since: refused no more")
    end },

  { name = "events: client:sse's window of a key, shared by another client of the ledger, ids that only grow",
    promise = "sse",
    covers = { "events" },
    records = true,
    run = function(env, assert)
      local hash, part = "events-" .. core.random_id(), require("starvideos.key").part
      local function key() return { hash = hash, parts = {}, part = part } end -- (a key object of each client's)
      local a, b = env.open(), env.open()
      local wa, wb, who = a:events(key(), 10), b:events(key(), 10), {} -- (who: a stream, its read under way)
      local function past(seen) -- (the entries past seen, once there are some)
        local list = wb:since(seen, core.now(), who)
        return #list > 0 and list or false
      end
      assert(wa:put("one"))
      wa:flush(5)
      local first = env.answer(past, 0)
      assert.same({ 1, "one" }, { #first, first[1][2] })
      assert(wb:put("two"))
      wb:flush(5)
      local second = env.answer(past, first[1][1])
      assert.same({ 1, "two" }, { #second, second[1][2] })
      assert.is_true(second[1][1] > first[1][1])
      local other = { hash = hash .. "-other", parts = {}, part = part }
      assert.same({}, (a:events(other, 10):since(0, core.now(), {})), "another key's window: nothing")
    end },

  { name = "flush: what it recorded is there for another client once it returns, its loop not stepped (Ctrl-C's)",
    covers = { "flush" },
    records = true,
    run = function(env, assert)
      local l, out = env.open(), env.dir .. "/f.mp4"
      assert.is_true(env.answer(l.before_create, l, PARAMS, "f1", out))
      assert.is_true(env.answer(l.created, l, { id = "f1" }, PARAMS, "f1"))
      helper.write_file(out .. ".part", "x")
      -- (queued: a journal's by its thread, a store's at the loop's next turn)
      l:sink_state("f1", "part", out .. ".part", out)
      l:flush(5)
      if l.path then -- (the file itself: the process's readers would flush its writer first)
        assert.matches('"event":"part"', helper.read_file(l.path), 1, true)
      end
      assert.same({ { id = "f1", model = "videos", out = out, part = out } }, env.open():unfinished())
    end },

  { name = "records an upload to an object as its parts are taken: unfinished and tasks carry it, it ends with the "
    .. "object or without (aborted)",
    covers = { "sink_state", "written" },
    records = true,
    run = function(env, assert)
      local l, out = env.open(), "s3://bucket/v.mp4"
      local one, two = '{"upload":"up1","parts":[["e1","s1"]]}', '{"upload":"up1","parts":[["e1","s1"],["e2","s2"]]}'
      assert.is_true(env.answer(l.before_create, l, PARAMS, "u1", out))
      assert.is_true(env.answer(l.created, l, { id = "ut1" }, PARAMS, "u1"))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "u2", out .. "2"))
      assert.is_true(env.answer(l.created, l, { id = "ut2" }, PARAMS, "u2"))
      l:sink_state("ut1", "upload", one, out)
      local ticket = l:sink_state("ut1", "upload", two, out) -- (its record's: written() once it is)
      l:sink_state("ut2", "upload", one, out .. "2")
      env.settle()
      assert.is_true(l:written(ticket))
      local by = {}
      for _, t in ipairs(assert(l:unfinished())) do by[t.id] = t end
      assert.same({ two, one }, { by.ut1.upload, by.ut2.upload })
      for _, t in ipairs(assert(l:tasks())) do by[t.id] = t end
      assert.same({ parts = 2, id = "up1" }, by.ut1.uploading)
      l:downloaded("ut1", out, "cd34", 1234, { etag = '"etag-1"' })
      l:sink_state("ut2", "upload", nil, out .. "2") -- aborted
      env.settle()
      by = {}
      for _, t in ipairs(assert(l:unfinished())) do by[t.id] = t end
      assert.same({ "ut2" }, ids(l:unfinished()))
      assert.is_nil(by.ut2.upload)
      for _, t in ipairs(assert(l:tasks())) do by[t.id] = t end
      assert.same({ "downloaded", out, 1234, "cd34", '"etag-1"' },
        { by.ut1.state, by.ut1.path, by.ut1.bytes, by.ut1.sha256, by.ut1.etag })
      assert.is_nil(by.ut1.uploading)
      assert.is_nil(by.ut2.uploading)
    end },

  { name = "records a task's reference objects: unfinished and tasks carry them, past the task's end, until none is "
    .. "left",
    covers = { "sink_state" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      local refs = '["s3://b/refs/aa.png","s3://b/refs/bb.mp4"]'
      for _, id in ipairs { "r1", "r2" } do
        assert.is_true(env.answer(l.before_create, l, PARAMS, "l" .. id))
        assert.is_true(env.answer(l.created, l, { id = id }, PARAMS, "l" .. id))
      end
      l:sink_state("r1", "refs", refs)
      l:sink_state("r2", "refs", '["s3://b/refs/aa.png"]')
      env.settle()
      local by = {}
      for _, t in ipairs(assert(l:unfinished())) do by[t.id] = t end
      assert.same({ refs, '["s3://b/refs/aa.png"]' }, { by.r1.refs, by.r2.refs })
      l:status("r1", "completed", 3)
      l:downloaded("r1", env.dir .. "/r1.mp4", "cd34", 12)
      l:status("r2", "failed")
      l:sink_state("r2", "refs", nil) -- (deleted)
      env.settle()
      assert.same({}, l:unfinished())
      by = {}
      for _, t in ipairs(assert(l:tasks())) do by[t.id] = t end
      assert.same({ "s3://b/refs/aa.png", "s3://b/refs/bb.mp4" }, by.r1.refs) -- (ended, its objects still there)
      assert.is_nil(by.r2.refs)
    end },

  { name = "settles a failed create: abandoned (nothing made), left pending (maybe made), uncertain (an id read)",
    covers = { "create_failed" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      assert.is_true(env.answer(l.before_create, l, PARAMS, "gone"))
      l:create_failed({ kind = "invalid_request" }, PARAMS, "gone")
      assert.same({}, l:pending())
      assert.is_true(env.answer(l.before_create, l, PARAMS, "maybe"))
      local err = { kind = "network", maybe_created = true }
      l:create_failed(err, PARAMS, "maybe")
      assert.equal("maybe", err.pending)
      assert.is_true(env.answer(l.before_create, l, PARAMS, "read"))
      l:create_failed({ kind = "protocol", created = true, id = "t-uncertain" }, PARAMS, "read")
      assert.same({ { id = "t-uncertain", model = "videos" } }, l:unfinished())
      assert.same({ "maybe" }, ids(l:pending()))
    end },

  { name = "records a failed task's words, its reason and the input they named: tasks lists them, to another client",
    promise = "failure_reason",
    covers = { "status" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      local words = "A reference image was flagged by content moderation; no video was generated."
      assert.is_true(env.answer(l.before_create, l, PARAMS, "f1"))
      assert.is_true(env.answer(l.created, l, { id = "tf" }, PARAMS, "f1"))
      l:status("tf", "failed", nil, nil, words, "policy", "referenceImages")
      env.settle()
      for _, list in ipairs { assert(l:tasks()), assert(env.open():tasks()) } do
        assert.same({ { "tf", "failed", words, "policy", "referenceImages" } }, { { list[1].id, list[1].state,
          list[1].error, list[1].reason, list[1].input } })
      end
    end },

  { name = "a create forgotten while asked, then failed, leaves no pending record, at once or later",
    covers = { "forget" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      l:before_create(PARAMS, "cancelled") -- (a store's first answer: not yet)
      l:forget("cancelled")
      l:create_failed({}, PARAMS, "cancelled")
      assert.same({}, l:pending())
      assert.same({}, env.open():pending())
    end },

  { name = "a key: none peeked, its pending create refused, its task followed, other params refused, fresh creates",
    promise = "rerun",
    covers = { "peek", "before_create" },
    records = true,
    run = function(env, assert)
      local l, out = env.open(), env.dir .. "/k.mp4"
      assert.is_nil(env.answer(l.peek, l, want(out)))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "k1", out, want(out)))
      local ok, err = env.answer(l.before_create, l, PARAMS, "k2", out, want(out))
      assert.is_nil(ok)
      assert.same({ "invalid_request", "out", "k1" }, { err.kind, err.field, err.pending })
      assert.is_nil(env.answer(l.peek, l, want(out)), "a pending create: nothing to follow")
      assert.is_true(env.answer(l.created, l, { id = "tk" }, PARAMS, "k1"))
      helper.write_file(out, "12345")
      l:downloaded("tk", out, (require("starvideos.sign").sha256_file(out)), 5)
      env.settle()
      local task = env.answer(l.peek, l, want(out))
      assert.same({ "tk", "videos", true }, { task.id, task.model, task.whole })
      local other = env.open()
      task = env.answer(other.peek, other, want(out)) -- another client's
      assert.same({ "tk", true }, { task.id, task.whole })
      task = env.answer(l.before_create, l, PARAMS, "k3", out, want(out))
      assert.same({ "tk", true }, { task.id, task.whole })
      helper.write_file(out, "12346")
      assert.is_false(env.answer(l.peek, l, want(out)).whole, "a file changed in place since: fetched again")
      helper.write_file(out, "cut")
      assert.is_false(env.answer(l.peek, l, want(out)).whole, "a file cut since: fetched again")
      local body = '{"model":"videos","prompt":"a cat","duration":10}'
      other = want(out, core.hash(body), body)
      assert.is_nil(env.answer(l.peek, l, other))
      ok, err = env.answer(l.before_create, l, PARAMS, "k4", out, other)
      assert.is_nil(ok)
      assert.same({ "invalid_request", "out", "tk" }, { err.kind, err.field, err.id })
      assert.matches("duration 5 there, 10 here", err.message, 1, true)
      other = want(out, core.hash(body), body)
      other.fresh = true
      assert.is_nil(env.answer(l.peek, l, other))
      l:status("tk", "failed")
      env.settle()
      assert.is_nil(env.answer(l.peek, l, want(out)), "a failed task's key creates anew")
      assert.is_true(env.answer(l.before_create, l, PARAMS, "k5", out, want(out, core.hash(body), body)))
    end },

  { name = "create_limit: the creates past its count are refused, rate_limited, with when the next may go",
    promise = "create_limit",
    covers = { "before_create" },
    run = function(env, assert)
      local l = env.open { create_limit = { count = 2, per = 60 } }
      assert.is_true(env.answer(l.before_create, l, PARAMS, "c1"))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "c2"))
      local ok, err = env.answer(l.before_create, l, PARAMS, "c3")
      assert.is_nil(ok)
      assert.same({ "rate_limited", "create_limit" }, { err.kind, err.field })
      assert.truthy(err.retry_after > 50 and err.retry_after <= 60, tostring(err.retry_after))
    end },

  { name = "tenant_limit: each tenant's creates counted apart, past its count refused (counted in no limit); "
    .. "none named: not counted",
    promise = "tenant_limit",
    covers = { "before_create" },
    run = function(env, assert)
      local l = env.open { create_limit = { count = 4, per = 60 }, tenant_limit = { count = 1, per = 60 } }
      assert.is_true(env.answer(l.before_create, l, PARAMS, "a1", nil, nil, "alice"))
      local ok, err = env.answer(l.before_create, l, PARAMS, "a2", nil, nil, "alice")
      assert.is_nil(ok)
      assert.same({ "rate_limited", "tenant_limit", "alice" }, { err.kind, err.field, err.tenant })
      assert.matches('^tenant_limit: 1 creates of tenant "alice" in the last 60 s %(at most 1', err.message)
      assert.truthy(err.retry_after > 50 and err.retry_after <= 60, tostring(err.retry_after))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "b1", nil, nil, "bob"))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "n1")) -- (no tenant: tenant_limit is not its)
      assert.is_true(env.answer(l.before_create, l, PARAMS, "n2")) -- the 4th of create_limit: alice's refusal
      ok, err = env.answer(l.before_create, l, PARAMS, "c1", nil, nil, "carol") -- was not counted there
      assert.same({ nil, "rate_limited", "create_limit", nil }, { ok, err.kind, err.field, err.tenant })
      ok, err = env.answer(l.before_create, l, PARAMS, "b2", nil, nil, "bob")
      assert.same({ nil, "rate_limited", "create_limit" }, { ok, err.kind, err.field }, "the key's limit first")
    end },

  { name = "a key's task is followed whatever the limits: create_limit and tenant_limit full, its create names "
    .. "the task (counted in no limit), as its peek does",
    covers = { "before_create", "peek" },
    records = true,
    run = function(env, assert)
      local l = env.open { create_limit = { count = 1, per = 60 }, tenant_limit = { count = 1, per = 60 } }
      local out = env.dir .. "/k.mp4"
      assert.is_true(env.answer(l.before_create, l, PARAMS, "k1", out, want(out), "alice"))
      assert.is_true(env.answer(l.created, l, { id = "tk" }, PARAMS, "k1"))
      env.settle()
      local ok, err = env.answer(l.before_create, l, PARAMS, "n1", nil, nil, "alice")
      assert.same({ nil, "rate_limited" }, { ok, err and err.kind }, "both limits are full")
      assert.same("tk", env.answer(l.peek, l, want(out)).id)
      local task, terr = env.answer(l.before_create, l, PARAMS, "k2", out, want(out), "alice")
      assert.same({ "tk" }, { task and task.id }, "the key's task, not " .. tostring(terr and terr.message))
    end },

  { name = "a create's tenant and cost (its model's price, else unknown: none) are recorded with its task",
    covers = { "before_create", "created", "tasks" },
    records = true,
    run = function(env, assert)
      local l = env.open { prices = { videos = 0.4, starvideos_o3 = 0 } }
      local paid = {} -- (the cost counter's hook, as observe/observer.lua gives it to a client that measures)
      l.cfg.observe = { cost = function(_, model, amount) paid[#paid + 1] = model .. " " .. amount end }
      local fast = { model = "videos_fast", prompt = "a dog", duration = 5 }
      local o3 = { model = "starvideos_o3", prompt = "a fox", duration = 5 }
      assert.is_true(env.answer(l.before_create, l, PARAMS, "a1", nil, nil, "alice"))
      assert.is_true(env.answer(l.created, l, { id = "ta1" }, PARAMS, "a1"))
      assert.is_true(env.answer(l.before_create, l, fast, "b1", nil, nil, "bob"))
      assert.is_true(env.answer(l.created, l, { id = "tb1" }, fast, "b1"))
      assert.is_true(env.answer(l.before_create, l, o3, "n1"))
      assert.is_true(env.answer(l.created, l, { id = "tn1" }, o3, "n1"))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "a2", nil, nil, "alice"))
      env.settle()
      local by = {}
      for _, t in ipairs(assert(env.open():tasks())) do by[t.id or t["local"]] = t end
      assert.same({ "alice", 0.4 }, { by.ta1.tenant, by.ta1.cost })
      assert.same({ "bob" }, { by.tb1.tenant, by.tb1.cost }, "no price: unknown (nil), never 0")
      assert.same({ nil, 0 }, { by.tn1.tenant, by.tn1.cost }, "a price of 0 is a price")
      assert.same({ "pending", "alice" }, { by.a2.state, by.a2.tenant })
      assert.same({ "videos 0.4", "starvideos_o3 0" }, paid, "each task's cost counted once; unknown: not at all")
    end },

  { name = "spend_limit: each create reserves its price; past the amount refused (spend_limited, counted in no "
    .. "other limit); a create surely not sent releases its price, one maybe sent keeps it; 50/80/100% said once",
    promise = { "spend_refusal", "spend_reservation" },
    covers = { "before_create", "created", "create_failed", "spend" },
    run = function(env, assert)
      local said = {}
      local l = env.open { prices = PRICES, create_limit = { count = 5, per = 60 },
        spend_limit = { amount = 1.2, per = "day" },
        on_event = function(e) if e.field == "spend_limit" then said[#said + 1] = e.percent end end }
      assert.is_true(env.answer(l.before_create, l, PARAMS, "s1"))
      assert.is_true(env.answer(l.created, l, { id = "ts1" }, PARAMS, "s1"))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "s2"))
      env.settle()
      local e = assert(l:spend())[1]
      assert.same({ 0.4, 0.4, 1.2, "key" }, { e.spent, e.reserved, e.amount, e.scope })
      assert.truthy(e.resets_at > os.time() and e.resets_at <= os.time() + 86400, tostring(e.resets_at))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "s3"))
      local ok, err = env.answer(l.before_create, l, PARAMS, "s4")
      assert.is_nil(ok)
      assert.same({ "spend_limited", "spend_limit", 1.2, 1.2 }, { err.kind, err.field, err.spent, err.amount })
      assert.equal(l.cfg.spend_limit, err.limit)
      assert.truthy(err.retry_after > 0 and err.retry_after <= 86400, tostring(err.retry_after))
      assert.matches("^spend_limit: 1.2 spent of the key in this window %(at most 1.2", err.message)
      l:create_failed({}, PARAMS, "s2") -- surely not sent: its price released
      env.settle()
      assert.is_true(env.answer(l.before_create, l, PARAMS, "s5"), "0.4 released: room again")
      l:create_failed({ maybe_created = true }, PARAMS, "s3") -- maybe sent: kept
      env.settle()
      ok, err = env.answer(l.before_create, l, PARAMS, "s6")
      assert.same({ nil, "spend_limited" }, { ok, err and err.kind })
      e = assert(l:spend())[1]
      assert.same("1.20", ("%.2f"):format(e.spent + e.reserved))
      assert.same({ 50, 80, 100 }, said, "each step once in the window, though 100% was crossed twice")
      if l.records then -- forgotten by hand (`starvideos pending --forget`): it made nothing, its price released
        assert.is_true(l:settle_pending("s3"))
        env.settle()
        e = assert(l:spend())[1]
        assert.same("0.80", ("%.2f"):format(e.spent + e.reserved))
      else
        l:create_failed({}, PARAMS, "s5")
      end
      assert.is_true(env.answer(l.before_create, l, PARAMS, "s7"), "create_limit's 5th: the refused not counted")
      local limit = l.cfg.create_limit
      l.cfg.create_limit = nil -- (its count is of asks, and would refuse it)
      assert.is_true(env.answer(l.before_create, l, PARAMS, "s7"), "asked again (its record written again): its own")
      l.cfg.create_limit = limit
      env.settle()
      e = assert(l:spend())[1]
      assert.same("1.20", ("%.2f"):format(e.spent + e.reserved), "a reservation counted once")
    end },

  { name = "failed_prices: a task known failed costs its model's failed price in every limit (the difference "
    .. "released, once, whoever learns it), and in its cost; a completed one and another model's failure their price",
    promise = "failed_prices",
    covers = { "before_create", "created", "status", "spend", "tasks" },
    run = function(env, assert)
      local opts = { prices = PRICES, failed_prices = { videos = 0.1, videos_fast = 0.5 },
        spend_limit = { { amount = 5, per = "day" },
          { amount = 1.2, per = "day", scope = "model", model = "videos" } } }
      local l = env.open(opts)
      local fast = { model = "videos_fast", prompt = "a dog", duration = 5 }
      for i, params in ipairs { PARAMS, PARAMS, PARAMS, fast } do
        assert.is_true(env.answer(l.before_create, l, params, "f" .. i))
        assert.is_true(env.answer(l.created, l, { id = "tf" .. i }, params, "f" .. i))
      end
      env.settle()
      local function spent(c)
        local out = {}
        for _, e in ipairs(assert((c or l):spend())) do out[#out + 1] = ("%.2f"):format(e.spent + e.reserved) end
        return out
      end
      assert.same({ "1.70", "1.20" }, spent())
      local ok, err = env.answer(l.before_create, l, PARAMS, "f5")
      assert.same({ nil, "spend_limited" }, { ok, err and err.kind }, "videos' limit full")
      l:status("tf1", "failed", nil, nil, "Internal error", "service", nil, "videos")
      l:status("tf2", "completed", 100, 1, nil, nil, nil, "videos")
      l:status("tf4", "failed", nil, nil, "Internal error", "service", nil, "videos_fast") -- (its price: the same)
      env.settle()
      assert.same({ "1.40", "0.90" }, spent(), "0.4 became 0.1: 0.3 released in each limit")
      l:status("tf1", "failed", nil, nil, "Internal error", "service", nil, "videos")
      env.settle()
      assert.same({ "1.40", "0.90" }, spent(), "counted once")
      if l.records then -- another client of the ledger learns a failure (resume's, keep's): counted as well
        local other = env.open(opts)
        other:status("tf3", "failed", nil, nil, "Internal error", "service", nil, "videos")
        env.settle()
        assert.same({ "1.10", "0.60" }, spent(env.open(opts)), "read again: what a restart reads")
        local by = {}
        for _, t in ipairs(assert(env.open():tasks())) do by[t.id] = t.cost end
        assert.same({ tf1 = 0.1, tf2 = 0.4, tf3 = 0.1, tf4 = 0.5 }, by)
      else
        l:status("tf3", "failed", nil, nil, "Internal error", "service", nil, "videos")
        env.settle()
      end
      assert.is_true(env.answer(l.before_create, l, PARAMS, "f6"), "room again: 0.6 spent of 1.2")
      ok, err = env.answer(l.before_create, l, PARAMS, "f7")
      assert.same({ nil, "spend_limited", 1 }, { ok, err and err.kind, err and err.spent })
    end },

  { name = "spend_limit's scopes: a tenant at its limit refused while another goes on; a model's refuses that model "
    .. "only; a day's opens again at the day's turn (the clock set)",
    promise = "spend_refusal",
    covers = { "before_create", "spend" },
    run = function(env, assert)
      local Spend = require "starvideos.spend"
      local real, now = Spend.clock, os.time()
      local turn = select(2, Spend.window("day", now, 0))
      Spend.clock = function() return now end
      local ok, err = pcall(function()
        local l = env.open { prices = PRICES, spend_limit = { { amount = 0.4, per = "day", scope = "tenant" },
          { amount = 1, scope = "model", model = "videos_fast", per = 3600 } } }
        local fast = { model = "videos_fast", prompt = "a dog", duration = 5 }
        assert.is_true(env.answer(l.before_create, l, PARAMS, "a1", nil, nil, "alice"))
        local got, aerr = env.answer(l.before_create, l, PARAMS, "a2", nil, nil, "alice")
        assert.same({ nil, "spend_limited", "alice" }, { got, aerr.kind, aerr.tenant })
        assert.matches('of tenant "alice"', aerr.message)
        assert.is_true(env.answer(l.before_create, l, PARAMS, "b1", nil, nil, "bob"), "bob has his own")
        assert.is_true(env.answer(l.before_create, l, PARAMS, "n1"), "no tenant: no tenant limit")
        for i = 1, 2 do assert.is_true(env.answer(l.before_create, l, fast, "f" .. i)) end
        got, aerr = env.answer(l.before_create, l, fast, "f3")
        assert.same({ nil, "spend_limited", "videos_fast" }, { got, aerr.kind, aerr.model })
        assert.is_true(env.answer(l.before_create, l, PARAMS, "n2"), "another model goes on")
        env.settle()
        local seen = {}
        local function both(e) return ("%s %.2f"):format(e.tenant or e.model, e.spent + e.reserved) end
        for _, e in ipairs(assert(l:spend())) do seen[#seen + 1] = both(e) end
        table.sort(seen)
        assert.same({ "alice 0.40", "bob 0.40", "videos_fast 1.00" }, seen)
        assert.same({ "bob 0.40" }, { both(assert(l:spend("bob"))[1]) })
        now = turn - 1
        got = env.answer(l.before_create, l, PARAMS, "a3", nil, nil, "alice")
        assert.is_nil(got, "alice's day has not turned")
        now = turn
        assert.is_true(env.answer(l.before_create, l, PARAMS, "a4", nil, nil, "alice"), "a new day")
      end)
      Spend.clock = real
      assert(ok, err)
    end },

  { name = "a limit the creates were not made with reads what they spent in its window (a create released: "
    .. "nothing), those made without it since too; the next create past it is refused",
    promise = "spend_refusal",
    covers = { "before_create", "spend" },
    records = true,
    run = function(env, assert)
      local Spend = require "starvideos.spend"
      local real, now = Spend.clock, os.time()
      Spend.clock = function() return now end -- (one day's window, whenever the case runs)
      local ok, err = pcall(function()
        local plain, fast = env.open { prices = PRICES }, { model = "videos_fast", prompt = "a dog", duration = 5 }
        local function made(l, params, lid, tenant)
          assert.is_true(env.answer(l.before_create, l, params, lid, nil, nil, tenant))
          assert.is_true(env.answer(l.created, l, { id = "t" .. lid }, params, lid))
        end
        made(plain, PARAMS, "p1")
        made(plain, PARAMS, "p2", "alice")
        made(plain, PARAMS, "p3", "alice")
        assert.is_true(env.answer(plain.before_create, plain, PARAMS, "p4"))
        plain:create_failed({ maybe_created = true }, PARAMS, "p4") -- maybe sent: counted
        assert.is_true(env.answer(plain.before_create, plain, PARAMS, "p5", nil, nil, "bob"))
        plain:create_failed({}, PARAMS, "p5") -- surely not sent: nothing spent
        env.settle()
        local l = env.open { prices = PRICES, spend_limit = { { amount = 2, per = "day", scope = "model",
          model = "videos" }, { amount = 2, per = "day", scope = "tenant" } } }
        local function spent(tenant) -- (a tenant whose create was released: listed, or not, at 0)
          local seen = {}
          for _, e in ipairs(assert(l:spend(tenant))) do
            local n = e.spent + e.reserved
            if n > 0 then seen[#seen + 1] = ("%s %.2f"):format(e.tenant or e.model, n) end
          end
          table.sort(seen)
          return seen
        end
        assert.same({ "alice 0.80", "videos 1.60" }, spent())
        made(l, fast, "l1", "alice")
        made(plain, PARAMS, "p6", "alice") -- (made without the limit, after it counted)
        env.settle()
        assert.same({ "alice 1.70", "videos 2.00" }, spent())
        local got, lerr = env.answer(l.before_create, l, PARAMS, "l2")
        assert.same({ nil, "spend_limited", "videos", "2.00" }, { got, lerr.kind, lerr.model,
          ("%.2f"):format(lerr.spent) })
        got, lerr = env.answer(l.before_create, l, fast, "l3", nil, nil, "alice")
        assert.same({ nil, "spend_limited", "alice", "1.70" }, { got, lerr.kind, lerr.tenant,
          ("%.2f"):format(lerr.spent) })
        made(l, fast, "l4", "bob")
        env.settle()
        assert.same({ "bob 0.50", "videos 2.00" }, spent("bob"))
      end)
      Spend.clock = real
      assert(ok, err)
    end },

  { name = "lineage: a child's parent and relation recorded with it (again, remix, continue), and its create's body",
    promise = "lineage",
    covers = { "before_create", "created", "tasks" },
    records = true,
    run = function(env, assert)
      local l, out = env.open(), env.dir .. "/child.mp4"
      local w = want(out)
      w.parent, w.relation = "tp", "continue"
      assert.is_true(env.answer(l.before_create, l, PARAMS, "p1", nil, nil))
      assert.is_true(env.answer(l.created, l, { id = "tp" }, PARAMS, "p1"))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "c1", out, w))
      assert.is_true(env.answer(l.created, l, { id = "tc" }, PARAMS, "c1"))
      env.settle()
      local by = {}
      for _, t in ipairs(assert(env.open():tasks())) do by[t.id] = t end
      assert.same({ "tp", "continue" }, { by.tc.parent, by.tc.relation })
      assert.same({}, { by.tp.parent, by.tp.relation })
      assert.same(PARAMS, require("cjson").decode(by.tp.body), "a create's body, keyed or not")
      local w2 = want(env.dir .. "/child2.mp4")
      w2.parent, w2.relation = "tc", "again"
      assert.is_true(env.answer(l.before_create, l, PARAMS, "c2", env.dir .. "/child2.mp4", w2))
      env.settle()
      assert.is_true(l:settle_pending("c2", "tc2")) -- (its answer never came: adopted by hand)
      env.settle()
      for _, t in ipairs(assert(env.open():tasks())) do by[t.id] = t end
      assert.same({ "tc", "again" }, { by.tc2.parent, by.tc2.relation }, "an adopted create keeps its lineage")
    end },

  { name = "a task never held: not lapsed, nothing to confirm, let go and forgotten without error",
    covers = { "confirm", "let_go", "forget", "before_create", "created", "create_failed" },
    run = function(env, assert)
      local l = env.open()
      assert.is_false(l:lapsed("nosuch"))
      assert.is_nil(l:confirm("nosuch"))
      l:let_go("nosuch", true)
      l:forget(nil, "nosuch")
      assert.is_true(env.answer(l.before_create, l, PARAMS, "n1"))
      l:create_failed({}, PARAMS, "n1")
      assert.is_true(env.answer(l.before_create, l, PARAMS, "n2"))
      assert.is_true(env.answer(l.created, l, { id = "n2" }, PARAMS, "n2"))
      if not l.records then
        assert.same({ false, nil }, { l:lapsed("n2"), l:confirm("n2") })
        for _, read in ipairs { "unfinished", "tasks", "pending" } do
          local list, why = l[read](l)
          assert.same({ nil, "string" }, { list, type(why) }, read)
        end
      end
    end },

  { name = "a task it made is held (let go once ended: forgotten); claimed by a keeper while its lease lapsed: "
    .. "lapsed, confirm (asked when lapsed for a part) names the keeper, only the keeper's file is recorded",
    covers = { "confirm", "let_go", "keeper", "downloaded" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      assert.is_true(env.answer(l.before_create, l, PARAMS, "h1"))
      assert.is_true(env.answer(l.created, l, { id = "h1" }, PARAMS, "h1"))
      assert.is_string((l:owner()))
      assert.is_false(l:lapsed("h1"))
      assert.is_nil(l:confirm("h1", nil, 0.9), "not asked: its lease lives")
      assert.is_true((env.held(l:confirm("h1"))))
      assert.is_true(env.answer(l.before_create, l, PARAMS, "h2"))
      assert.is_true(env.answer(l.created, l, { id = "h2" }, PARAMS, "h2"))
      l:let_go("h2", true) -- (its job ended 'taken')
      assert.is_nil(l:confirm("h2"))
      env.lapse()
      assert.is_true(l:lapsed("h1"))
      local asked = l:confirm("h1", nil, 0.9)
      assert.is_table(asked, "asked: its lease lapsed")
      asked:drop()
      local keep = env.open()
      local k = assert(keep:keeper())
      assert.same({ "h1", "h2" }, ids(assert(k:orphans())))
      assert.same({}, (k:orphans()), "claimed once")
      local held, why = env.held(l:confirm("h1"))
      assert.same({ false, k.id }, { held, why.by })
      assert.is_true((env.held(keep:confirm("h1"))))
      local saved = env.dir .. "/kept.mp4"
      helper.write_file(saved, "video")
      keep:downloaded("h1", saved, "ef56", 5)
      env.settle()
      held, why = env.held(l:confirm("h1"))
      assert.same({ false, saved, "ef56" }, { held, why.path, why.sha256 })
      helper.write_file(env.dir .. "/mine.mp4", "video too")
      l:downloaded("h1", env.dir .. "/mine.mp4", "0000", 9)
      local t = assert(env.open():tasks())[1]
      assert.same({ "h1", "downloaded", saved, "ef56" }, { t.id, t.state, t.path, t.sha256 })
      k:close()
    end },

  { name = "a closed owner's unfinished task, pending create and owed webhook are a keeper's, each once",
    covers = { "keeper", "owe", "delivered", "close" },
    records = true,
    run = function(env, assert)
      local owner, keep = env.open(), env.open()
      assert.is_true(env.answer(owner.before_create, owner, PARAMS, "o1"))
      assert.is_true(env.answer(owner.created, owner, { id = "o1" }, PARAMS, "o1"))
      assert.is_true(env.answer(owner.before_create, owner, PARAMS, "lost", env.dir .. "/lost.mp4"))
      owner:owe("w1", "o1", '{"id":"o1"}')
      owner:owe("w2", "o1", '{"id":"o1","again":1}')
      owner:delivered("w2", 200)
      local k = assert(keep:keeper())
      local tasks, pendings = k:orphans()
      assert.same({ {}, {} }, { tasks, pendings }, "its owner is alive")
      assert.same({}, k:owed())
      owner:close()
      assert.same({ nil, "string" }, { owner:owner(), type(select(2, owner:owner())) })
      tasks, pendings = k:orphans()
      assert.same({ { "o1" }, { "lost" } }, { ids(tasks), ids(pendings) })
      assert.equal(env.dir .. "/lost.mp4", pendings[1].out)
      tasks, pendings = k:orphans()
      assert.same({ {}, {} }, { tasks, pendings }, "each once")
      local owed = k:owed()
      assert.same({ { wid = "w1", task = "o1", body = '{"id":"o1"}' } }, owed)
      keep:delivered("w1", 200)
      k:close() -- (w1 its keeper's no more: delivered, nobody's to claim)
      local third = env.open()
      local k2 = assert(third:keeper())
      assert.same({}, k2:owed())
      k2:close()
    end },

  { name = "leased: the tasks and creates a keep cannot take yet (a live lease's), and when that lease lapses",
    covers = { "keeper" },
    records = true,
    run = function(env, assert)
      local owner, keep = env.open(), env.open()
      assert.equal(0, assert(keep:keeper(true):leased()).tasks)
      assert.is_true(env.answer(owner.before_create, owner, PARAMS, "o1"))
      assert.is_true(env.answer(owner.created, owner, { id = "o1" }, PARAMS, "o1"))
      assert.is_true(env.answer(owner.before_create, owner, PARAMS, "lost"))
      env.settle()
      local l = assert(keep:keeper(true):leased())
      assert.same({ 2, 1 }, { l.tasks, l.owners })
      if l.last then -- (a store's lease: its time left; a journal's ends with its process)
        assert.truthy(l.first > 0 and l.first <= l.last and l.last <= 30, l.first .. " " .. l.last)
      end
      owner:close()
      assert.equal(0, assert(keep:keeper(true):leased()).tasks)
    end },

  { name = "orphaned: what a keeper's orphans would claim now, claimed by none (keep's dry run)",
    covers = { "keeper" },
    records = true,
    run = function(env, assert)
      local owner, keep = env.open(), env.open()
      assert.is_true(env.answer(owner.before_create, owner, PARAMS, "o1"))
      assert.is_true(env.answer(owner.created, owner, { id = "o1" }, PARAMS, "o1"))
      assert.is_true(env.answer(owner.before_create, owner, PARAMS, "lost"))
      env.settle()
      local tasks, pendings = keep:keeper(true):orphaned()
      assert.same({ {}, {} }, { tasks, pendings }, "its owner is alive")
      owner:close()
      for _ = 1, 2 do -- (twice: the first claimed nothing)
        tasks, pendings = keep:keeper(true):orphaned()
        assert.same({ { "o1" }, { "lost" } }, { ids(tasks), ids(pendings) })
      end
      local k = assert(keep:keeper())
      assert.same({ "o1" }, ids((k:orphans())))
      assert.same({}, (keep:keeper(true):orphaned()), "claimed by the keeper, whose lease lives")
      k:close()
    end },

  { name = "a pending create settled by hand: no longer pending; one unknown refused, naming it",
    covers = { "settle_pending", "pending" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      assert.is_true(env.answer(l.before_create, l, PARAMS, "p1"))
      assert.is_true(l:settle_pending("p1"))
      assert.same({}, l:pending())
      local ok, why = l:settle_pending("nosuch")
      assert.is_nil(ok)
      assert.matches("no pending create nosuch", why, 1, true)
    end },

  { name = "the queue: entries queued for a batch once (a key known not again), claimed by a keeper one at a time, "
    .. "counted by the batch; a journal refuses it, naming store",
    covers = { "enqueue", "batch" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      local function entry(i)
        local out = env.dir .. "/q" .. i .. ".mp4"
        return { id = core.hash(out), key = out, out = out, priority = 3, data = '{"out":"' .. out .. '"}' }
      end
      local got, err = l:enqueue("b1", { entry(1), entry(2) }, 2)
      if l.field == "journal" then
        assert.is_nil(got)
        assert.same({ "invalid_request", "store" }, { err.kind, err.field })
        assert.is_nil((l:batch("b1")))
        return
      end
      assert.same({ queued = 2, known = 0 }, got)
      assert.same({ queued = 1, known = 1 }, l:enqueue("b2", { entry(2), entry(3) }, 2))
      assert.same({ queued = 2, created = 0, saved = 0, failed = 0, total = 2 }, l:batch("b1"))
      assert.same({ queued = 2, created = 0, saved = 0, failed = 0, total = 2 }, env.open():batch("b2"))
      got, err = l:batch("nosuch")
      assert.is_nil(got)
      assert.is_nil(err, "no such batch: nil alone")
      local k = l:keeper() -- (a keeper claims them one at a time, by the queue's rule: the oldest first here)
      local e1, e2 = k:queued(), k:queued()
      assert.same({ env.dir .. "/q1.mp4", env.dir .. "/q2.mp4" }, { e1 and e1.out, e2 and e2.out })
      assert.truthy(k:queue_state(e1, "s"))
      assert.truthy(k:queue_state(e2, "f"))
      assert.same({ queued = 0, created = 0, saved = 1, failed = 1, total = 2 }, l:batch("b1"))
      k:close()
    end },

  { name = "a pending create adopted by hand: its task recorded created for it, no longer pending; one unknown "
    .. "refused, naming it",
    covers = { "settle_pending", "pending", "tasks" },
    records = true,
    run = function(env, assert)
      local l = env.open()
      assert.is_true(env.answer(l.before_create, l, PARAMS, "p2"))
      assert.is_true(l:settle_pending("p2", "t-adopted"))
      env.settle()
      assert.same({}, l:pending())
      local found
      for _, t in ipairs(l:tasks()) do if t.id == "t-adopted" then found = t end end
      assert.truthy(found, "the adopted task is the ledger's")
      assert.equals(PARAMS.model, found.model)
      local ok, why = l:settle_pending("nosuch", "t-other")
      assert.is_nil(ok)
      assert.matches("no pending create nosuch", why, 1, true)
    end },
}

-- The interface's names, read from docs/architecture.md's table (first cells, each name backticked):
-- {name =, method = true when called}.
function M.interface()
  local text = assert(helper.read_file(helper.root .. "/docs/architecture.md"))
  local body = assert(text:match("\n## The ledger interface\n(.-)\n## "), "no ledger interface section")
  body = assert(body:match("\n| name | its contract |\n(.*)$"), "no table of the methods") -- (not ledger.lua's)
  local names = {}
  for cell in body:gmatch("\n| ([^|]+) |") do
    for name, after in cell:gmatch("`([%w_]+)([%(`])") do names[#names + 1] = { name = name, method = after == "(" } end
  end
  return names
end

-- That ledger l, called `on`, gives each of the interface's names: each method a function, each field set but the
-- fields of one ledger (a journal's path, a store's where).
local ONLY = { path = "journal", where = "store" }
function M.gives(names, l, on, assert)
  for _, n in ipairs(names) do
    if n.method then
      assert.equal("function", type(l[n.name]), on .. "'s " .. n.name)
    elseif not ONLY[n.name] or ONLY[n.name] == on then
      assert.is_not_nil(l[n.name], on .. "'s " .. n.name)
    end
  end
end

-- The names the library's callers use of a ledger (ledger:NAME, ledger.NAME), outside the ledgers' folders.
function M.uses()
  -- (rules.lua: the ledgers' own rules, not a use of a ledger)
  return require("spec.support.case_list").uses({ "lua/starvideos/*.lua", "lua/starvideos/extras/*.lua",
    "lua/starvideos/cli/*.lua", "lua/starvideos/nginx/*.lua" }, { ["lua/starvideos/rules.lua"] = true },
    { "ledger[:.]([%a_][%w_]*)" })
end

-- The env of a case (M.run's make) of a client's options on dir (a journal, a store, or neither) and how the
-- process's lease lapses there; with(client, dir), when given, once each client is made (its key's bucket handed a
-- remote: nginx's dict).
function M.env(options, lapse, with)
  return function(dir, opened)
    local key, env = "k-ledger-cases-" .. core.random_id(), { lapse = function() lapse(dir) end }
    function env.open(opts)
      local o = options(dir)
      o.api_key, o.base_url, o.transport = key, "http://fake", require("spec.support.fake_transport").new()
      for k, v in pairs(opts or {}) do o[k] = v end
      local c = require("starvideos").new(o)
      opened[#opened + 1] = c
      if with then with(c, dir) end
      return c.ledger
    end
    return env
  end
end

-- The list run with busted's functions (b: describe, it, after_each, assert) on `on`, a name, by
-- make(case_dir, opened) -> env (open, lapse; the rest added); records: whether its ledger records (else the
-- cases that need one are left out); place: the matrix's place of the ledger (spec/support/matrix.lua), a script's
-- calls, or a list of places.
function M.run(on, records, make, b, place)
  local list, opened = {}, nil
  for _, case in ipairs(M.cases) do
    if records or not case.records then list[#list + 1] = case end
  end
  require("spec.support.case_list").each(b, "the ledger cases on " .. on, list, function(case)
    opened = {}
    local env = make(helper.tmpdir(), opened)
    env.dir = env.dir or helper.tmpdir()
    local function until_not(no, fn, ...)
      local stop = core.now() + 5
      while true do
        local v, why = fn(...) -- (every answer of the interface: at most two values)
        if v ~= no then return v, why end
        b.assert(core.now() < stop, "no answer in 5 s")
        for _, c in ipairs(opened) do c:step(0.01) end
      end
    end
    function env.answer(fn, ...) return until_not(false, fn, ...) end
    function env.held(h) return until_not(nil, b.assert(h, "nothing to confirm").poll, h) end
    function env.settle()
      for _, c in ipairs(opened) do if c.loop then c.loop:settle() end end
    end
    case.run(env, b.assert)
  end, function()
    for _, c in ipairs(opened or {}) do c:close() end
    helper.cleanup()
  end, type(place) == "string" and { place, "lua" } or place)
end

return M
