-- A fallback that cannot pay twice (fallback.lua, CONTRACT "Failures that say why"): after a task failed for
-- service or unknown the next model is tried with the same parameters, each attempt a keyed generate of its own
-- recorded with parent and relation = "fallback"; never after policy, nor after a create whose answer was not seen;
-- a model that could never take the parameters refused before anything is sent; a spend limit reached on the first
-- attempt refuses the second; a rerun after Ctrl-C between the attempts pays for none twice.  Counted at the
-- emulator.
local helper = require "spec.helper"
local sv = require "starvideos"
local C = require "spec.support.cli_run"

local PATTERNS = { { match = "flagged by the moderation", reason = "policy", input = "prompt" },
  { match = "overloaded", reason = "service" } }
local PARAMS = { model = "videos", prompt = "a cat that falls back", duration = 5 }

local function client_of(emu, more)
  local o = { api_key = emu.key, base_url = emu.url, failure_patterns = PATTERNS }
  for k, v in pairs(more or {}) do o[k] = v end
  return sv.new(o)
end

-- The models of the creates the emulator received, in order.
local function created_models(emu)
  local list = {}
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then list[#list + 1] = (helper.json(r.body or "") or {}).model end
  end
  return list
end

-- The emulator fails every task with text until the first create is answered, then completes them.
local function fail_first(emu, text)
  emu:config { queued = 0, processing = 0, outcome = "failed", error = text }
  local switched = false
  return function(ev)
    if not switched and ev.type == "status" then
      switched = true
      emu:config { outcome = "completed" }
    end
  end
end

describe("fallback", function()
  local emu
  before_each(function() emu = helper.emulator() end)
  after_each(function() emu:stop(); helper.cleanup() end)

  it("after a service failure: 1 create on the next model, 2 in all, the lineage showing both", function()
    local dir = helper.tmpdir()
    local c = client_of(emu, { journal = dir .. "/j.jsonl" })
    local events = {}
    c.on_event = function(ev) if ev.type == "fallback" then events[#events + 1] = ev end end
    local task = assert(c:generate(PARAMS, { out = dir .. "/v.mp4", interval = 0.05, timeout = 20,
      fallback = { "videos_fast" }, on_progress = fail_first(emu, "The service is overloaded") }))
    assert.same({ "videos", "videos_fast" }, created_models(emu))
    assert.equal("completed", task.status)
    assert.truthy(helper.exists(dir .. "/v.mp4"))
    local tasks = assert(c:tasks())
    assert.equal(2, #tasks)
    local first, second = tasks[1], tasks[2]
    assert.same({ "failed", "videos" }, { first.state, first.model })
    assert.same({ "downloaded", "videos_fast", first.id, "fallback" },
      { second.state, second.model, second.parent, second.relation })
    assert.same({ first.id, "fallback" }, { task.parent, task.relation })
    assert.same({ 1, first.id, "videos_fast", "service" }, { #events, events[1].id, events[1].model,
      events[1].reason })
    c:close()
  end)

  it("without a ledger: a service failure, then the next model (nothing keyed), 2 creates", function()
    local c = client_of(emu)
    local task = assert(c:generate(PARAMS, { interval = 0.05, timeout = 20, fallback = { "videos_fast" },
      on_progress = fail_first(emu, "The service is overloaded") }))
    assert.same({ "videos", "videos_fast" }, created_models(emu))
    assert.same({ "completed", "fallback" }, { task.status, task.relation })
    c:close()
  end)

  it("generate_all: the lines failed for service run again on the next model, each into its own file", function()
    local dir = helper.tmpdir()
    local c = client_of(emu, { journal = dir .. "/j.jsonl" })
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "The service is overloaded" }
    local list = { { model = "videos", prompt = "cat one", duration = 5 },
      { model = "videos", prompt = "cat two", duration = 5 } }
    local done = 0
    local res = c:generate_all(list, { out = dir .. "/%d.mp4", interval = 0.05, timeout = 20,
      fallback = { "videos_fast" }, on_progress = function(ev)
        if ev.type == "status" and ev.status == "failed" then
          done = done + 1
          if done == 2 then emu:config { outcome = "completed" } end
        end
      end })
    assert.same({ "videos", "videos", "videos_fast", "videos_fast" }, created_models(emu))
    for i = 1, 2 do
      assert.equal(dir .. "/" .. i .. ".mp4", res[i].path)
      assert.equal("fallback", res[i].task.relation)
    end
    local parents = {}
    for _, t in ipairs(assert(c:tasks())) do if t.relation == "fallback" then parents[#parents + 1] = t.parent end end
    assert.equal(2, #parents)
    c:close()
  end)

  it("film: a new shot falls back (a remix does not); its dry run prices the worst case", function()
    local dir = helper.tmpdir()
    local c = client_of(emu, { journal = dir .. "/j.jsonl", prices = { videos = 0.4, videos_fast = 0.1 } })
    local shots = { { model = "videos", prompt = "shot one", duration = 4 },
      { model = "videos", prompt = "shot two", duration = 4, remix = 1 } }
    local plan = assert(c:film(shots, { out = dir .. "/film.mp4", dry_run = true, fallback = { "videos_fast" } }))
    assert.same({ 2, 0.8 }, { plan.creates, plan.cost })
    assert.same({ creates = 3, cost = 0.9 }, plan.worst, "shot 1 may fall back, the remix not")
    local song = { model = "videos", prompt = "shot three", duration = 4,
      referenceImages = { "https://example.com/a.png" }, referenceAudios = { "https://example.com/a.mp3" } }
    local _, err = c:film({ shots[1], shots[2], song }, { out = dir .. "/film.mp4", fallback = { "videos_fast" } })
    assert.same({ "invalid_request", 3, "fallback" }, { err.kind, err.shot, err.field })
    assert.matches("film: shot 3: fallback%[1%] videos_fast could never take these parameters", err.message)
    assert.same({}, created_models(emu), "refused before the first shot's create")
    local made = assert(c:film({ shots[1] }, { out = dir .. "/one.mp4", interval = 0.05, timeout = 20,
      fallback = { "videos_fast" }, on_progress = fail_first(emu, "The service is overloaded") }))
    assert.same({ "videos", "videos_fast" }, created_models(emu))
    assert.equal("fallback", made.shots[1].relation)
    c:close()
  end)

  it("never after policy: 1 create, the refusal returned; run again: refused before, nothing sent", function()
    local dir = helper.tmpdir()
    local c = client_of(emu, { journal = dir .. "/j.jsonl" })
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "Prompt flagged by the moderation model" }
    local opts = { out = dir .. "/v.mp4", interval = 0.05, timeout = 20, fallback = { "videos_fast" } }
    local _, err = c:generate(PARAMS, opts)
    assert.same({ "task_failed", "policy", 1 }, { err.kind, err.reason, err.attempts })
    local _, again = c:generate(PARAMS, opts)
    assert.same({ "refused_before", err.task.id, 1 }, { again.kind, again.task.id, again.attempts })
    assert.same({ "videos" }, created_models(emu))
    c:close()
  end)

  it("never after a create whose answer was not seen: followed, not replaced (0 fallback creates)", function()
    local dir = helper.tmpdir()
    local c = client_of(emu, { journal = dir .. "/j.jsonl", max_retries = 0 })
    emu:fault { method = "POST", drop = true, after = true, count = 1 } -- (made, then the connection cut)
    local _, err = c:generate(PARAMS, { out = dir .. "/v.mp4", interval = 0.05, timeout = 20,
      fallback = { "videos_fast" } })
    assert.truthy(err.maybe_created, tostring(err))
    assert.same({ "videos" }, created_models(emu))
    c:close()
  end)

  it("refuses a fallback that could never take the parameters before anything is sent", function()
    local c = client_of(emu)
    local p = { model = "videos", prompt = "a cat with a song", duration = 5,
      referenceImages = { "https://example.com/a.png" }, referenceAudios = { "https://example.com/a.mp3" } }
    local _, err = c:generate(p, { interval = 0.05, timeout = 20, fallback = { "videos_fast" } })
    assert.same({ "invalid_request", "fallback" }, { err.kind, err.field })
    assert.matches("fallback%[1%] videos_fast could never take these parameters", err.message)
    assert.same({}, created_models(emu))
    assert.has_error(function() c:generate(PARAMS, { fallback = { "nope" } }) end,
      'bad option \'fallback\' to \'generate\' (a list of model names (fallback[1]: "nope" is no model))')
    c:close()
  end)

  it("refuses a list that names a model twice before anything is sent: 0 creates", function()
    local dir = helper.tmpdir()
    local c = client_of(emu, { journal = dir .. "/j.jsonl" })
    local _, err = c:generate(PARAMS, { out = dir .. "/v.mp4", interval = 0.05, timeout = 20,
      fallback = { "videos" } })
    assert.same({ "invalid_request", "fallback", "videos" }, { err.kind, err.field, err.model })
    assert.matches("fallback[1] videos repeats the call's own model", err.message, 1, true)
    _, err = c:generate(PARAMS, { interval = 0.05, timeout = 20, fallback = { "videos_fast", "videos_fast" } })
    assert.same({ "invalid_request", "fallback", "videos_fast" }, { err.kind, err.field, err.model })
    assert.matches("fallback[2] videos_fast repeats fallback[1]", err.message, 1, true)
    local res = c:generate_all({ PARAMS, PARAMS }, { out = dir .. "/%d.mp4", interval = 0.05, timeout = 20,
      fallback = { "videos_fast", "videos" } })
    assert.same({ "invalid_request", "fallback" }, { res[2].err.kind, res[2].err.field })
    local _, ferr = c:film({ { model = "videos", prompt = "shot one", duration = 4 } },
      { out = dir .. "/film.mp4", dry_run = true, fallback = { "videos" } })
    assert.same({ "invalid_request", 1, "fallback" }, { ferr.kind, ferr.shot, ferr.field })
    assert.same({}, created_models(emu))
    c:close()
  end)

  it("a spend limit reached on the first attempt refuses the second", function()
    local dir = helper.tmpdir()
    local prices = { videos = 1, videos_fast = 1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 1 }
    local c = client_of(emu, { journal = dir .. "/j.jsonl", prices = prices, spend_limit = { { amount = 1,
      per = "day" } } })
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "The service is overloaded" }
    local _, err = c:generate(PARAMS, { out = dir .. "/v.mp4", interval = 0.05, timeout = 20,
      fallback = { "videos_fast" } })
    assert.equal(2, err.attempts)
    assert.equal("spend_limit", err.field, tostring(err))
    assert.same({ "videos" }, created_models(emu))
    c:close()
  end)

  it("Ctrl-C between the attempts, then a rerun: no attempt paid twice", function()
    local dir = helper.tmpdir()
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "The service is overloaded" }
    local src = [[
      local sv = require "starvideos"
      local c = sv.new { journal = %q, failure_patterns = { { match = "overloaded", reason = "service" } },
        on_event = function(ev)
          if ev.type == "fallback" and os.getenv("HOLD") then
            io.stdout:write("fallback\n"); io.stdout:flush()
            local t = os.time()
            while os.time() < t + 30 do end -- (Ctrl-C comes here: between the attempts)
          end
        end }
      assert(c:generate({ model = "videos", prompt = "a cat that falls back", duration = 5 },
        { out = %q, interval = 0.05, timeout = 20, fallback = { "videos_fast" } }))
      io.stdout:write("saved\n")
    ]]
    src = src:format(dir .. "/j.jsonl", dir .. "/v.mp4")
    local proc = C.script(dir, src, emu, { HOLD = "1" })
    C.until_true(function() return (helper.read_file(dir .. "/out") or ""):find("fallback", 1, true) end)
    local r = proc:stop()
    assert.is_not.equal(0, r.code)
    assert.same({ "videos" }, created_models(emu))
    emu:config { outcome = "completed" }
    local dir2 = helper.tmpdir() -- (its own folder for its output; the same journal)
    C.script(dir2, src, emu)
    C.until_true(function() return (helper.read_file(dir2 .. "/rc") or ""):match("%d") end)
    assert.equal("0\n", helper.read_file(dir2 .. "/rc"), helper.read_file(dir2 .. "/err"))
    assert.same({ "videos", "videos_fast" }, created_models(emu), "the failed attempt is not paid again")
    assert.truthy(helper.exists(dir .. "/v.mp4"))
  end)
end)
