-- client:plan (docs/tenants-and-costs.md#what-a-run-will-cost): what generate_all would do, decided as the run
-- decides (its jobs' peek at the ledger), sending nothing; its totals by model and price; and the run after it
-- sends exactly its creates.  resume's and keep's dry_run: their downloads, claiming nothing.  Against the
-- emulator, which counts what reaches it.
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local starvideos = require "starvideos"

local function prompts(n, model)
  local list = {}
  for i = 1, n do list[i] = { model = model or "videos", prompt = "plan " .. i, duration = 5 } end
  return list
end

-- The prompts of the creates that reached the emulator since `from` (its tasks, in order).
local function created_prompts(emu, from)
  local list = {}
  for i, t in ipairs(emu:tasks()) do if i > (from or 0) then list[#list + 1] = t.params.prompt end end
  table.sort(list)
  return list
end

-- The prompts of a plan's creates, of list's entries.
local function planned_prompts(plan, list)
  local out = {}
  for _, e in ipairs(plan.entries) do if e.action == "create" then out[#out + 1] = list[e.index].prompt end end
  table.sort(out)
  return out
end

local function by(plan, field)
  local out = {}
  for i, e in ipairs(plan.entries) do out[i] = e[field] or false end
  return out
end

describe("client:plan", function()
  local emu, dir
  shared_emulator({ queued = 0.1, processing = 0.1 }, function(e) emu = e end)
  before_each(function() dir = helper.tmpdir() end)

  local function client(opts)
    local o = { api_key = emu.key, base_url = emu.url, journal = dir .. "/j.jsonl", min_interval = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    if o.journal == false then o.journal = nil end
    return starvideos.new(o)
  end

  it("sends nothing; a new list: each entry a create, its model and price; totals by model, the cost when every "
    .. "price is known", function()
    local c = client { prices = { videos = 0.4 } }
    local list = prompts(3)
    list[4] = { model = "videos_fast", prompt = "fast", duration = 5 }
    local plan = c:plan(list, { out = dir .. "/%d.mp4" })
    assert.same({}, emu:requests())
    assert.same({ "create", "create", "create", "create" }, by(plan, "action"))
    assert.same({ "new", "new", "new", "new" }, by(plan, "reason"))
    assert.same({ 0.4, 0.4, 0.4, false }, by(plan, "price"), "no price: unknown, never 0")
    assert.same({ 4, 0 }, { plan.creates, plan.downloads })
    assert.same({ videos = { creates = 3, cost = 0.4 * 3 }, videos_fast = { creates = 1 } }, plan.by_model)
    assert.is_nil(plan.cost, "a model without a price: the total is unknown")
    c:close()
    c = client { prices = { videos = 0.4, videos_fast = 0.25 } }
    plan = c:plan(list, { out = dir .. "/%d.mp4" })
    assert.equal(0.4 * 3 + 0.25, plan.cost)
    assert.same({}, emu:requests())
    c:close()
  end)

  it("after a run: a saved file none, a task not downloaded a download, a failed task and a fresh one created "
    .. "again; the rerun sends exactly the plan's creates", function()
    local c = client { prices = { videos = 0.4 } }
    local list = prompts(6)
    local first = c:generate_all({ list[1], list[2], list[3] }, { out = dir .. "/%d.mp4", interval = 0.05 })
    for i = 1, 3 do assert.is_string(first[i].path) end
    emu:config { outcome = "failed", error = "a failure nobody wrote down" } -- (unknown: not kept, created again)
    assert.is_nil(c:generate(list[4], { out = dir .. "/4.mp4", interval = 0.05 }))
    emu:config { outcome = "completed" }
    assert(c:create(list[5], { key = "five" })) -- (a key of its own: the plan's entry 5 has a file)
    os.remove(dir .. "/2.mp4") -- entry 2's task is followed and fetched again
    local before, made = #emu:requests(), #emu:tasks()
    local plan = c:plan(list, { out = dir .. "/%d.mp4" })
    assert.equal(before, #emu:requests(), "the plan sent nothing")
    assert.same({ "none", "download", "none", "create", "create", "create" }, by(plan, "action"))
    assert.same({ "saved", "created before", "saved", "failed before", "new", "new" }, by(plan, "reason"))
    assert.same({ first[1].task.id, first[2].task.id, first[3].task.id }, { plan.entries[1].id, plan.entries[2].id,
      plan.entries[3].id })
    assert.is_string(plan.entries[4].id, "the task that failed is named")
    assert.same({ 3, 1, 0.4 * 3 }, { plan.creates, plan.downloads, plan.cost })
    local ran = c:generate_all(list, { out = dir .. "/%d.mp4", interval = 0.05 })
    for i = 1, 6 do assert.is_string(ran[i].path, "entry " .. i) end
    assert.same(planned_prompts(plan, list), created_prompts(emu, made))
    local again = c:plan(list, { out = dir .. "/%d.mp4" })
    assert.same({ 0, 0 }, { again.creates, again.downloads })
    c:close()
  end)

  it("refusals as the run refuses: a create sent and never answered, other params, bad params, an out that "
    .. "cannot be written; no key, no ledger, fresh", function()
    local c = client()
    local list = prompts(2)
    local Job = require "starvideos.job"
    local job = assert(Job.new(c.ctx, nil, nil, { params = list[1], out = dir .. "/1.mp4" }))
    assert(helper.wait_until(function() -- its pending record: the create sent, its answer never came
      c:step(0)
      return c.ledger:before_create(list[1], job.create.local_id, dir .. "/1.mp4", job.create.want) == true
    end, 5))
    assert(c:generate(list[2], { out = dir .. "/2.mp4", interval = 0.05 }))
    local changed = { { model = "videos", prompt = "plan 1", duration = 5 },
      { model = "videos", prompt = "plan 2 but other", duration = 5 },
      { model = "videos", prompt = "plan 3", duration = 99 }, { model = "videos", prompt = "plan 4", duration = 5 } }
    local outs = { dir .. "/1.mp4", dir .. "/2.mp4", dir .. "/3.mp4", dir .. "/no/such/4.mp4" }
    local before = #emu:requests()
    local plan = c:plan(changed, { out = function(i) return outs[i] end })
    assert.equal(before, #emu:requests())
    assert.same({ "none", "none", "none", "none" }, by(plan, "action"))
    assert.same({ "refused", "refused", "refused", "refused" }, by(plan, "reason"))
    assert.same({ "invalid_request", "out", job.create.local_id }, { plan.entries[1].err.kind,
      plan.entries[1].err.field, plan.entries[1].err.pending })
    assert.matches("made with other params", plan.entries[2].err.message, 1, true)
    assert.same({ "invalid_request", "duration" }, { plan.entries[3].err.kind, plan.entries[3].err.field })
    assert.same({ "io", "out" }, { plan.entries[4].err.kind, plan.entries[4].err.field })
    assert.same({ 0, 0 }, { plan.creates, plan.downloads })
    local ran = c:generate_all(changed, { out = function(i) return outs[i] end, interval = 0.05 })
    assert.equal(before, #emu:requests(), "the run refuses the same: nothing sent")
    for i = 1, 4 do assert.equal(plan.entries[i].err.kind, ran[i].err.kind) end
    plan = c:plan(prompts(2), { fresh = true, out = dir .. "/%d.mp4" })
    assert.same({ "fresh", "fresh" }, by(plan, "reason"))
    assert.same({ "no key", "no key" }, by(c:plan(prompts(2)), "reason"))
    assert.same({ "k1", "k2" }, by(c:plan(prompts(2), { key = function(i) return "k" .. i end }), "key"))
    c:close()
    local none = client { journal = false }
    assert.same({ "no ledger" }, by(none:plan(prompts(1), { out = dir .. "/%d.mp4" }), "reason"))
    none:close()
    assert.equal(before, #emu:requests())
  end)

  it("raises as generate_all does: no list, a key or out function that gives no name, two entries on one file "
    .. "or of one key (the run would send one create and refuse the other as never answered)", function()
      local c = client()
      local before = #emu:requests()
      for _, call in ipairs { "plan", "generate_all" } do
        assert.error_matches(function() c[call](c, prompts(3), { key = function(i) return i == 1 and "a" or "b" end })
        end, "bad option 'key' to '" .. call .. "' (entries 2 and 3 both have the key \"b\")", 1, true)
      end
      assert.equal(before, #emu:requests(), "nothing sent")
      assert.equal(2, c:plan(prompts(2), { out = dir .. "/%d.mp4", key = function() return "k" end }).creates,
        "with out each entry is keyed by its file, not by key")
      assert.error_matches(function() c:plan("x") end, "bad argument #1 to 'plan'", 1, true)
      assert.error_matches(function() c:plan(prompts(1), { key = function() return "" end }) end,
        "bad option 'key' to 'plan' (key(1, params) returned an empty string: a key expected)", 1, true)
      assert.error_matches(function() c:plan(prompts(2), { out = function() return dir .. "/same.mp4" end }) end,
        "bad option 'out' to 'plan' (entries 1 and 2 both write", 1, true)
      assert.error_matches(function() c:plan(prompts(1), { dry = true }) end, "unknown option 'dry'", 1, true)
      c:close()
    end)

  it("with spend_limit: the creates walked in order on top of what is spent, each past a limit none, reason "
    .. "spend_limited, its error the run's; refused counted, creates and cost only those that go (no ledger too)",
    function()
      local limit = { amount = 1, scope = "model", model = "videos" }
      local c = client { journal = false, prices = { videos = 0.4, videos_fast = 0.25 }, spend_limit = limit }
      local list = prompts(3)
      list[4] = { model = "videos_fast", prompt = "fast", duration = 5 } -- (not covered: it goes)
      local plan = c:plan(list, {})
      assert.same({ "create", "create", "none", "create" }, by(plan, "action"))
      assert.same({ "no ledger", "no ledger", "spend_limited", "no ledger" }, by(plan, "reason"))
      local err = plan.entries[3].err
      assert.same({ "spend_limited", "spend_limit", 0.8, 1, limit.model }, { err.kind, err.field, err.spent, err.amount,
        err.limit.model })
      assert.same({ 3, 1, 0.4 * 2 + 0.25 }, { plan.creates, plan.refused, plan.cost })
      assert.same({ videos = { creates = 2, cost = 0.8 }, videos_fast = { creates = 1, cost = 0.25 } }, plan.by_model)
      assert.same({}, emu:requests())
      assert(c:create(list[1])) -- 0.4 spent now: one create of videos goes
      plan = c:plan(list, {})
      assert.same({ "create", "none", "none", "create" }, by(plan, "action"))
      assert.same({ 2, 2 }, { plan.creates, plan.refused })
      local made = emu:creates()
      c:generate_all(prompts(3), { interval = 0.05 }) -- the run: as the plan said, one more create goes
      assert.equal(made + 1, emu:creates())
      c:close()
    end)

  it("resume's and keep's dry_run: the downloads they would make, to where, claiming nothing", function()
    local c = client()
    local a = assert(c:create(prompts(1)[1]))
    local b = assert(c:create(prompts(2)[2], { key = "b" }))
    local plan = c:resume { dry_run = true, dir = dir }
    assert.same({ "download", "download" }, by(plan, "action"))
    assert.same({ a.id, b.id }, by(plan, "id"))
    assert.same({ dir .. "/" .. a.id .. ".mp4", "dir" }, { plan.entries[1].out, plan.entries[1].saved_to })
    assert.same({ 0, 2, 0 }, { plan.creates, plan.downloads, plan.cost })
    local other = client()
    assert.same({}, other:keep({ dry_run = true, dir = dir }).entries, "their owner lives: nothing orphaned")
    c:close() -- its lease let go: both orphaned
    local kept = other:keep { dry_run = true, dir = dir }
    assert.same({ a.id, b.id }, by(kept, "id"))
    assert.same({ "orphaned", "orphaned" }, by(kept, "reason"))
    local requests = #emu:requests()
    local results = other:keep { once = true, dir = dir, interval = 0.05, timeout = 20 }
    assert.equal(2, #results, "the dry run claimed nothing: keep carries both")
    assert.truthy(#emu:requests() > requests)
    assert.is_nil(other:keep({ dry_run = true, dir = dir }).entries[1])
    other:close()
  end)
end)
