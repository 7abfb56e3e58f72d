-- The same refusal never paid twice, wherever its failure is learned (docs/failures.md), one list run on each ledger
-- place of spec/support/places.lua that a case names: a journal and the process alone
-- (spec/records/refusal_cases_spec.lua), Redis (rocks/redis/spec/hosts/refusal_cases_redis_spec.lua).  The
-- emulator refuses content by its prompt ("forbidden": a policy failure at the task's end, in the service's words);
-- every count is its creates.  A case: name, on (the places it runs on), run(env, assert) with
--   env.place, env.emu, env.dir
--   env.client(more)       a client of the place's ledger and the emulator (more: options of starvideos.new)
--   env.killed(out)        a process of the place's ledger that created PARAMS' task into out (its answer read, its
--                          created record written) and was killed -9 before it learned how the task ended: its id
local helper = require "spec.helper"

local M = {}

M.PARAMS = { model = "videos", prompt = "a forbidden cat", duration = 5 }
local PARAMS = M.PARAMS
local POLICY = { { kind = "policy", prompt = "forbidden" } } -- (the emulator's failures: at the task's end)
local WORDS = "flagged by content moderation" -- (the emulator's words of it)
local FAST = { interval = 0.05, timeout = 20 }

local function with(base, more)
  local o = {}
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(more or {}) do o[k] = v end
  return o
end

-- The child of env.killed: its create's id said once its task is made, then a poll 300 s later (never reached).
local CHILD = [==[
local o = { api_key = arg[1], base_url = arg[2], lease = 1, on_event = function(ev)
  if ev.type == "created" then io.stdout:write(ev.id, "\n"); io.stdout:flush() end
end }
if arg[3] ~= "" then o[arg[3]] = arg[4] end
local c = require("starvideos").new(o)
c:generate({ model = "videos", prompt = "a forbidden cat", duration = 5 }, { out = arg[5], interval = 300,
  timeout = 600 })
]==]

-- Whether any text of err (its fields, its task's) holds s.
local function says(err, s)
  local seen = {}
  local function walk(v)
    if type(v) == "string" then return v:find(s, 1, true) ~= nil end
    if type(v) ~= "table" or seen[v] then return false end
    seen[v] = true
    for k, x in pairs(v) do if walk(k) or walk(x) then return true end end
    return false
  end
  return walk(err) or tostring(err):find(s, 1, true) ~= nil
end
M.says = says

-- A plain generate of PARAMS into out (nil: none) by c: its task, err.
local function generate(c, out, more)
  return c:generate(PARAMS, with(FAST, with({ out = out }, more)))
end

-- The task id's policy failure learned by way(c, id) from a client of the ledger that did not make it; then the same
-- content into another out is refused before anything is sent: 0 creates more.
local function learned_then_refused(env, assert, id, way)
  local c = env.client()
  local err = way(c, id)
  assert.same({ "policy", id }, { err and err.reason, err and (err.id or err.task and err.task.id) })
  c:close()
  local again = env.client()
  local _, refused = generate(again, env.dir .. "/b.mp4")
  again:close()
  assert.equal("refused_before", refused and refused.kind, refused and refused.message)
  assert.equal(id, refused.task.id)
  assert.equal(1, env.emu:creates(), "the same content into another out: 0 creates more")
end

M.cases = {
  { name = "a policy failure learned by resume after its process was killed -9 is kept: the same content into "
    .. "another out is refused before sending, 1 create in all",
    promise = "refused_before", on = { journal = true, redis = true },
    run = function(env, assert)
      local id = env.killed(env.dir .. "/a.mp4")
      learned_then_refused(env, assert, id, function(c)
        local results = assert(c:resume { dir = env.dir, interval = 0.05, timeout = 20 })
        assert.equal(1, #results)
        return results[1].err
      end)
    end },

  { name = "a policy failure learned by keep once after its process was killed -9 is kept: the same content into "
    .. "another out is refused before sending, 1 create in all",
    promise = "refused_before", on = { journal = true, redis = true },
    run = function(env, assert)
      local id = env.killed(env.dir .. "/a.mp4")
      learned_then_refused(env, assert, id, function(c)
        assert(helper.wait_until(function() -- (the killed process's lease lapsed: its task is an orphan)
          local plan = c:keep { dry_run = true, dir = env.dir }
          return plan and #plan.entries == 1
        end, 20), "the killed process's task never was an orphan")
        local results = assert(c:keep { once = true, dir = env.dir, interval = 0.05, timeout = 20 })
        assert.equal(1, #results)
        return results[1].err
      end)
    end },

  { name = "a policy failure learned by wait, or by a query, of a task made by create is kept: the same content is "
    .. "refused before sending",
    promise = "refused_before", on = { journal = true, redis = true },
    run = function(env, assert)
      env.emu:config { queued = 0, processing = 0 }
      for n, way in ipairs {
        function(c, id) return select(2, c:wait(id, FAST)) end,
        function(c, id)
          local task = assert(c:query(id))
          assert.equal("failed", task.status)
          return { reason = "policy", id = task.id } -- (a query answers the task: its failure is no error)
        end } do
        local c = env.client()
        local task = assert(c:create(with(PARAMS, { prompt = "a forbidden cat " .. n })))
        c:close()
        local w = env.client()
        local err = way(w, task.id)
        assert.same({ "policy", task.id }, { err.reason, err.id or err.task.id })
        w:close()
        local again = env.client()
        local _, refused = again:generate(with(PARAMS, { prompt = "a forbidden cat " .. n }), FAST)
        again:close()
        assert.same({ "refused_before", task.id }, { refused and refused.kind, refused and refused.task.id })
        assert.equal(n, env.emu:creates(), "the same content again: 0 creates")
      end
    end },
}

M.cases[#M.cases + 1] = {
  name = "a resend that completed clears its content's refusal: the next plain call is sent, by the same client and "
    .. "by another, 4 creates in all",
  promise = "refused_before", on = { journal = true, redis = true },
  run = function(env, assert)
    env.emu:config { queued = 0, processing = 0 }
    local c = env.client()
    local _, err = generate(c)
    assert.same({ "task_failed", "policy" }, { err.kind, err.reason })
    env.emu:config { failures = require("cjson").null } -- (the service lifted its rule)
    local resent = assert(generate(c, nil, { resend = true }))
    assert.same({ "completed", 2 }, { resent.status, env.emu:creates() })
    for n, client in ipairs { c, env.client() } do
      local task, again = generate(client)
      assert.equal("completed", task and task.status, again and again.message)
      assert.equal(2 + n, env.emu:creates(), "sent: its content passed since")
      client:close()
    end
  end }

M.cases[#M.cases + 1] = {
  name = "another tenant's refusal is kept but never shown: the same content from tenant bob is refused before "
    .. "sending, naming no task of alice's nor her words (its error, the command line's output); alice's own names it",
  promise = "refused_before", on = { journal = true, redis = true, process = true },
  run = function(env, assert)
    env.emu:config { queued = 0, processing = 0 }
    local _, first = generate(env.client(), nil, { tenant = "alice" })
    assert.same({ "task_failed", "policy" }, { first.kind, first.reason })
    local id = first.task.id
    assert.truthy(says(first, WORDS), "alice's own error says the service's words")
    local _, err = generate(env.client(), nil, { tenant = "bob" })
    assert.same({ "refused_before", "policy", 1 }, { err and err.kind, err and err.reason, env.emu:creates() })
    assert.is_false(says(err, id), "bob's error names alice's task: " .. err.message)
    assert.is_false(says(err, WORDS), "bob's error says alice's words: " .. err.message)
    assert.is_nil(err.task)
    if env.place.option then -- (the command line: a process of its own, on the ledger)
      local C = require "spec.support.cli_run"
      local r = C.run({ "generate", "--model", "videos", "--prompt", PARAMS.prompt, "--duration", "5", "--tenant",
        "bob", "--interval", "0.05", "--" .. env.place.option, env.place.where, "--json" },
        { STARVIDEOS_API_KEY = env.emu.key, STARVIDEOS_BASE_URL = env.emu.url })
      assert.equal(1, r.code, r.err)
      assert.matches("refused_before", r.out .. r.err, 1, true)
      assert.is_nil((r.out .. r.err):find(id, 1, true), r.out .. r.err)
      assert.is_nil((r.out .. r.err):find(WORDS, 1, true), r.out .. r.err)
      assert.equal(1, env.emu:creates())
    end
    local _, own = generate(env.client(), nil, { tenant = "alice" })
    assert.same({ "refused_before", id }, { own.kind, own.task and own.task.id })
    assert.equal(1, env.emu:creates())
  end }

-- The list run with busted's functions (b: describe, it, before_each, after_each, assert, pending) on the ledger
-- place name (spec/support/places.lua; opts: its options, as places.ledger takes them), against an emulator of its
-- own: the cases that name the place.
function M.run(name, b, opts)
  local places = require "spec.support.places"
  local why = places.missing(name)
  if why then return b.pending("the refusal cases on " .. name .. ": " .. why) end
  local env, list = {}, {}
  for _, case in ipairs(M.cases) do if case.on[name] then list[#list + 1] = case end end
  b.before_each(function()
    env.emu = helper.emulator { queued = 0, processing = 0.2 }
    env.emu:config { failures = POLICY }
    env.dir = helper.tmpdir()
    env.place = places.ledger(name, env.dir, opts)
  end)
  b.after_each(function()
    env.place.stop()
    env.emu:stop()
    helper.cleanup()
  end)
  function env.client(more)
    local o = env.place.options()
    o.api_key, o.base_url = env.emu.key, env.emu.url
    return require("starvideos").new(with(o, more))
  end
  function env.killed(out)
    local proc = helper.run_lua(env.dir, "killed", CHILD, { env.emu.key, env.emu.url, env.place.option or "",
      env.place.where or "", out })
    local id = proc.pipe:read("*l")
    b.assert(id and id:match("^%S+$"), "the child made no task: " .. tostring(id))
    local c = env.client()
    b.assert(helper.wait_until(function() -- (its created record written: what a rerun finds)
      for _, t in ipairs(c:tasks() or {}) do if t.id == id then return true end end
      return false
    end, 20), "no created record of " .. id)
    c:close()
    b.assert(helper.execute("kill -9 " .. proc.pid))
    proc:close()
    return id
  end
  require("spec.support.case_list").each(b, "the refusal cases on " .. name, list, function(case)
    case.run(env, b.assert)
  end, nil, { name, "lua" })
end

M.WORDS = WORDS
return M
