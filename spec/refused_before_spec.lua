-- The same refusal never paid twice (refusal.lua, CONTRACT "Failures that say why"): a task that failed for policy
-- or input is kept in the ledger by its create's content, and a create of the same content is refused before
-- anything is sent (err.kind refused_before, naming the earlier task and its reason) unless resend = true; a
-- service or unknown failure is not kept.  Counted at the emulator, in the process and on a journal shared by 4
-- processes.
local helper = require "spec.helper"
local sv = require "starvideos"

local PATTERNS = { { match = "flagged by the moderation", reason = "policy", input = "prompt" },
  { match = "overloaded", reason = "service" } }
local PARAMS = { model = "videos_fast", prompt = "a flagged cat", duration = 4 }

local function client_of(emu, more)
  local o = { api_key = emu.key, base_url = emu.url, failure_patterns = PATTERNS }
  for k, v in pairs(more or {}) do o[k] = v end
  return sv.new(o)
end

local function failing(emu, text)
  emu:config { queued = 0, processing = 0, outcome = "failed", error = text }
end

describe("a create's content address", function()
  it("takes a local file's bytes: the same path with other bytes is other content", function()
    local refusal, Create = require "starvideos.refusal", require "starvideos.create"
    local core = require "starvideos.core"
    local file = helper.tmpdir() .. "/cat.png"
    local params = { model = "videos", prompt = "a cat", duration = 5, referenceImages = { { file = file } } }
    local path, body = core.build_create(params)
    local function addr() return refusal.address(path, body, (Create.references(params))) end
    helper.write_file(file, "one")
    local a = addr()
    assert.equal(a, addr(), "the same bytes: the same content")
    helper.write_file(file, "two")
    assert.are_not.equal(a, addr())
    helper.cleanup()
  end)

  it("is the content, not its spelling: a local file by a relative or absolute path, a copy, a hard link or a "
    .. "symlink is one address; extra's keys in any order, one address; other bytes or other extra, another",
    function()
      local refusal, Create = require "starvideos.refusal", require "starvideos.create"
      local core = require "starvideos.core"
      local dir = helper.tmpdir()
      local file = dir .. "/ref.png"
      helper.write_file(file, "the same bytes")
      local q = helper.shell_quote
      assert(helper.execute("cp " .. q(file) .. " " .. q(dir .. "/copy.png") .. " && ln " .. q(file) .. " "
        .. q(dir .. "/hard.png") .. " && ln -s " .. q(file) .. " " .. q(dir .. "/soft.png")))
      local depth = select(2, helper.capture("pwd -P"):gsub("/[^/\n]+", ""))
      local relative = "./" .. string.rep("../", depth) .. file:gsub("^/", "") -- (from this process's folder)
      local function addr(params)
        local p = { model = "videos", prompt = "a cat", duration = 5 }
        for k, v in pairs(params) do p[k] = v end
        local path, body = core.build_create(p, (Create.extra_json(p)))
        return refusal.address(path, assert(body), (Create.references(p)))
      end
      local a = addr { referenceImages = { { file = file } } }
      for _, f in ipairs { relative, dir .. "/./ref.png", dir .. "//ref.png", dir .. "/copy.png", dir .. "/hard.png",
        dir .. "/soft.png" } do
        assert(helper.exists(f), f)
        assert.equal(a, addr { referenceImages = { { file = f } } }, f)
      end
      helper.write_file(dir .. "/other.png", "other bytes")
      assert.are_not.equal(a, addr { referenceImages = { { file = dir .. "/other.png" } } })
      local keys = { "seed", "style", "camera", "mood", "lens", "grain" }
      local function extra(order)
        local t = {}
        for _, k in ipairs(order) do t[k] = k == "seed" and 7 or k end
        return t
      end
      local e = addr { extra = extra(keys) }
      assert.equal(e, addr { extra = extra { "grain", "lens", "mood", "camera", "style", "seed" } })
      assert.are_not.equal(e, addr { extra = extra { "grain", "lens", "mood", "camera", "style" } })
      helper.cleanup()
    end)
end)

describe("refused before", function()
  local emu
  before_each(function() emu = helper.emulator() end)
  after_each(function() emu:stop(); helper.cleanup() end)

  it("refuses a policy-refused create run again in the process: 0 creates, naming the earlier task; resend: 1",
    function()
      failing(emu, "Prompt flagged by the moderation model")
      local c = client_of(emu)
      local _, err = c:generate(PARAMS, { interval = 0.05, timeout = 10 })
      assert.same({ "task_failed", "policy", "prompt" }, { err.kind, err.reason, err.input })
      local first = err.task.id
      assert.equal(1, emu:creates())
      local c2 = client_of(emu) -- (another client of the same key: the process's ledger)
      local _, again = c2:generate(PARAMS, { interval = 0.05, timeout = 10 })
      assert.equal("refused_before", again.kind)
      assert.same({ first, "policy", "prompt" }, { again.task.id, again.reason, again.input })
      assert.matches("failed before as task " .. first .. ", for policy %(prompt%)", again.message)
      assert.matches("resend = true", again.message)
      assert.equal(1, emu:creates(), "refused before anything was sent")
      local _, sent = c2:generate(PARAMS, { interval = 0.05, timeout = 10, resend = true })
      assert.equal("task_failed", sent.kind)
      assert.equal(2, emu:creates(), "sent anyway")
      local other = { model = "videos_fast", prompt = "another cat", duration = 4 }
      local _, fresh = c2:generate(other, { interval = 0.05, timeout = 10 })
      assert.equal("task_failed", fresh.kind, "other content is sent")
      assert.equal(3, emu:creates())
      c:close(); c2:close()
    end)

  it("refuses refused content whose extra holds its keys in another order: 1 create, then 0", function()
    emu:config { queued = 0, processing = 0, failures = { { kind = "policy", prompt = "forbidden" } } }
    local c = client_of(emu)
    local order = { "seed", "style", "camera", "mood", "lens", "grain" }
    local function extra(list)
      local t = {}
      for _, k in ipairs(list) do t[k] = k == "seed" and 7 or { k, 1.5 } end
      return t
    end
    local params = { model = "videos_fast", prompt = "a forbidden cat", duration = 4, extra = extra(order) }
    local _, err = c:generate(params, { interval = 0.05, timeout = 10 })
    assert.same({ "task_failed", "policy" }, { err.kind, err.reason })
    assert.equal(1, emu:creates())
    for _, list in ipairs { { "grain", "lens", "mood", "camera", "style", "seed" },
      { "mood", "seed", "grain", "style", "lens", "camera" } } do
      params.extra = extra(list)
      local _, again = c:generate(params, { interval = 0.05, timeout = 10 })
      assert.same({ "refused_before", err.task.id }, { again.kind, again.task.id })
    end
    assert.equal(1, emu:creates(), "every respelling refused before anything was sent")
    c:close()
  end)

  it("refuses a started job of refused content before sending: the job ends refused_before", function()
    failing(emu, "Prompt flagged by the moderation model")
    local c = client_of(emu)
    local _, err = c:generate(PARAMS, { interval = 0.05, timeout = 10 })
    assert.equal("policy", err.reason)
    local job = assert(c:start(PARAMS, { interval = 0.05 }))
    assert(helper.wait_until(function() c:step(0.05); return job.done end, 10))
    assert.same({ "refused_before", err.task.id }, { job.err.kind, job.err.task.id })
    assert.equal(1, emu:creates())
    c:close()
  end)

  it("keeps no service or unknown failure: the same create is sent again", function()
    local c = client_of(emu)
    for n, text in ipairs { "The service is overloaded", "something nobody wrote down" } do
      failing(emu, text)
      for i = 1, 2 do
        local _, err = c:generate(PARAMS, { interval = 0.05, timeout = 10 })
        assert.equal("task_failed", err.kind)
        assert.equal((n - 1) * 2 + i, emu:creates())
      end
    end
    c:close()
  end)

  it("keeps an input refusal on a journal: a new process's create of it is refused, another duration is sent",
    function()
      failing(emu, "Reference image resolution is too low.")
      local journal = helper.tmpdir() .. "/tasks.jsonl"
      local c = client_of(emu, { journal = journal })
      local _, err = c:generate(PARAMS, { interval = 0.05, timeout = 10 })
      assert.equal("input", err.reason)
      c:close()
      local c2 = client_of(emu, { journal = journal })
      local _, again = c2:create(PARAMS)
      assert.same({ "refused_before", err.task.id, "input" }, { again.kind, again.task.id, again.reason })
      assert.equal(1, emu:creates())
      assert(c2:create { model = "videos_fast", prompt = "a flagged cat", duration = 8 })
      assert.equal(2, emu:creates(), "other parameters: other content")
      c2:close()
    end)

  it("holds on a journal shared by 4 processes: one create in all, each other process refused before sending",
    function()
      failing(emu, "Prompt flagged by the moderation model")
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      local c = client_of(emu, { journal = journal })
      local _, err = c:generate(PARAMS, { interval = 0.05, timeout = 10 })
      assert.equal("policy", err.reason)
      c:close()
      local src = [[
        local sv = require "starvideos"
        local c = sv.new { api_key = arg[1], base_url = arg[2], journal = arg[3], failure_patterns = {
          { match = "flagged by the moderation", reason = "policy", input = "prompt" } } }
        local _, err = c:generate({ model = "videos_fast", prompt = "a flagged cat", duration = 4 },
          { interval = 0.05, timeout = 10 })
        print(err and err.kind, err and err.task and err.task.id)
        c:close()
      ]]
      local procs = {}
      for i = 1, 4 do procs[i] = helper.run_lua(dir, "p" .. i, src, { emu.key, emu.url, journal }) end
      for i = 1, 4 do
        local out = procs[i].pipe:read("*a")
        procs[i]:close()
        assert.equal("refused_before\t" .. err.task.id .. "\n", out)
      end
      assert.equal(1, emu:creates())
    end)

  it("a batch rerun after a policy refusal creates nothing for that line, its plan and result saying why",
    function()
      local dir = helper.tmpdir()
      local c = client_of(emu, { journal = dir .. "/j.jsonl" })
      local list = { PARAMS, { model = "videos_fast", prompt = "a calm cat", duration = 4 } }
      emu:config { queued = 0, processing = 0, outcome = "failed", error = "Prompt flagged by the moderation model" }
      local first = c:generate_all(list, { out = dir .. "/%d.mp4", interval = 0.05, timeout = 10 })
      assert.same({ "policy", "policy" }, { first[1].err.reason, first[2].err.reason })
      assert.equal(2, emu:creates())
      emu:config { outcome = "completed" }
      local list2 = { PARAMS, { model = "videos_fast", prompt = "a calmer cat", duration = 4 } } -- (line 2 changed)
      local plan = c:plan(list2, { out = dir .. "/%d.mp4" })
      assert.same({ "none", "refused_before", first[1].err.task.id }, { plan.entries[1].action,
        plan.entries[1].reason, plan.entries[1].id })
      assert.same({ "create", 1 }, { plan.entries[2].action, plan.creates })
      local again = c:generate_all(list2, { out = dir .. "/%d.mp4", interval = 0.05, timeout = 10 })
      assert.same({ "refused_before", first[1].err.task.id }, { again[1].err.kind, again[1].err.task.id })
      assert.truthy(again[2].path)
      assert.equal(3, emu:creates(), "the changed line alone")
      local resent = c:generate_all({ PARAMS }, { out = dir .. "/%d.mp4", interval = 0.05, timeout = 10,
        resend = true })
      assert.truthy(resent[1].path)
      assert.equal(4, emu:creates(), "resend = true: sent")
      c:close()
    end)

  it("survives the journal's compaction", function()
    failing(emu, "Prompt flagged by the moderation model")
    local journal = helper.tmpdir() .. "/tasks.jsonl"
    local c = client_of(emu, { journal = journal })
    local _, err = c:generate(PARAMS, { interval = 0.05, timeout = 10 })
    c:close()
    assert(require("starvideos.records.compact").compact(journal))
    assert.matches('"event":"sample"', helper.read_file(journal))
    local c2 = client_of(emu, { journal = journal })
    local _, again = c2:generate(PARAMS, { interval = 0.05, timeout = 10 })
    assert.same({ "refused_before", err.task.id }, { again.kind, again.task.id })
    assert.equal(1, emu:creates())
    c2:close()
  end)
end)
