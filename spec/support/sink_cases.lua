-- One list of cases that every sink passes (docs/architecture.md "The sink interface"): the file's
-- (download.lua) and the bucket's (storage/object.lua, on s3rver where it is installed), run by
-- spec/sink_cases_spec.lua.  Each case states one contract of the table, on a client of the emulator whose
-- outs are the sink's.
--
-- A case: name; covers, the interface's names it holds (every name of the table is covered by one);
-- run(env, assert) with
--   env.sink            the sink (sink.lua's of(cfg, out) for the env's outs)
--   env.out(name)       an out of the sink (a file path in a folder of the case's own, an s3:// URL)
--   env.dir             a folder of the sink that takes videos (check_dir's)
--   env.bad_out         an out the sink refuses; env.bad_dir: a folder it refuses
--   env.client(opts)    a client of the emulator (a journal, the store's credentials), closed after the case
--   env.saved(out)      what is saved at out: { sha256 =, bytes = }, or nil
--   env.remove(out)     the saved video removed (by hand)
--   env.emu             the emulator
--   env.refusing        options of a client whose outs the sink's store refuses (a sink with reach)

local helper = require "spec.helper"

local M = {}

local PARAMS = { model = "videos", prompt = "a cat", duration = 5 }

-- The ledger's record of task id as c lists it.
local function recorded(c, id)
  for _, t in ipairs(assert(c:tasks())) do if t.id == id then return t end end
end

M.cases = {
  { name = "check_out: an out it can make is true; one it cannot, nil and an error of field out, and "
    .. "generate then sends nothing",
    covers = { "check_out" },
    run = function(env, assert)
      assert.is_true(env.sink.check_out(env.out("ok.mp4"), env.cfg))
      local ok, err = env.sink.check_out(env.bad_out, env.cfg)
      assert.is_nil(ok)
      assert.equal("out", err.field)
      local c = env.client()
      local before = env.emu:creates()
      local task, gerr = c:generate(PARAMS, { out = env.bad_out, interval = 0.05 })
      assert.same({ nil, "out" }, { task, gerr and gerr.field })
      assert.equal(before, env.emu:creates(), "no create sent")
    end },

  { name = "check_dir: a folder it can fill is true; one it cannot, nil and an error naming the option's field",
    covers = { "check_dir" },
    run = function(env, assert)
      assert.is_true(env.sink.check_dir(env.dir, "out_dir", env.cfg))
      local ok, err = env.sink.check_dir(env.bad_dir, "out_dir", env.cfg)
      assert.is_nil(ok)
      assert.equal("out_dir", err.field)
      ok, err = env.sink.check_dir(env.bad_dir, "dir", env.cfg)
      assert.same({ nil, "dir" }, { ok, err.field })
    end },

  { name = "reach (the sink may lack it: a file's): an out its store refuses is found before a create, which "
    .. "is not sent",
    covers = { "reach" },
    run = function(env, assert)
      if not env.sink.reach then return assert.is_nil(env.refusing, "a sink without reach refuses nothing so") end
      local c = env.client(env.refusing)
      local before = env.emu:creates()
      local task, err = c:generate(PARAMS, { out = env.out("refused.mp4"), interval = 0.05 })
      assert.same({ nil, "out" }, { task, err and err.field })
      assert.matches("cannot be written", err.message, 1, true)
      assert.equal(before, env.emu:creates(), "no create sent")
    end },

  { name = "fetch and commit: a generate's video is saved whole at its out, its SHA-256 and size recorded",
    promise = "generate",
    covers = { "fetch", "commit" },
    run = function(env, assert)
      local out = env.out("made.mp4")
      local task = assert(env.client():generate(PARAMS, { out = out, interval = 0.05 }))
      assert.equal(out, task.path)
      local saved = assert(env.saved(out), "nothing saved at " .. out)
      assert.truthy(saved.bytes > 1000, saved.bytes .. " bytes")
      assert.equal(saved.sha256, task.sha256)
      local t
      for _, r in ipairs(assert(env.client():tasks())) do if r.id == task.id then t = r end end
      assert.same({ "downloaded", out, saved.bytes, task.sha256 }, { t.state, t.path, t.bytes, t.sha256 })
    end },

  { name = "check: a saved video against its record is ok; removed, missing; recorded of another size, changed",
    covers = { "check" },
    run = function(env, assert)
      local out = env.out("checked.mp4")
      local c = env.client()
      local task = assert(c:generate(PARAMS, { out = out, interval = 0.05 }))
      local function checked()
        for _, t in ipairs(assert(c:tasks { check = true })) do if t.id == task.id then return t end end
      end
      assert.equal("ok", checked().check)
      local t = checked()
      local state, why = env.sink.check({ path = t.path, bytes = t.bytes + 1, sha256 = t.sha256 }, c.ctx)
      assert.same({ "changed", "string" }, { state, type(why) })
      env.remove(out)
      t = checked()
      assert.same({ "missing", "string" }, { t.check, type(t.check_error) })
    end },

  { name = "source: a saved video is read back from where its sink names it, whole: its bytes the recorded ones",
    covers = { "source" },
    run = function(env, assert)
      local c = env.client()
      local task = assert(c:generate(PARAMS, { out = env.out("source.mp4"), interval = 0.05 }))
      local t = recorded(c, task.id)
      local src = assert(env.sink.source(t, c.ctx, 60))
      local back = src -- (a file's path; a URL's bytes downloaded)
      if src:find("^%a[%w+.-]*://") then -- (a copy: unmarked, as lineage.lua reads a parent back)
        back = assert(c:download(src, helper.tmpdir() .. "/back.mp4", { mark = false }))
      end
      assert.same({ t.bytes, t.sha256 }, { #helper.read_file(back), require("starvideos.sign").sha256_file(back) })
    end },

  { name = "check, for a remix and a continue: a parent whose recorded out is whole is taken (one create); once it "
    .. "is not, both are refused naming it, nothing sent",
    covers = { "check" },
    run = function(env, assert)
      local c = env.client()
      local out = env.out("parent.mp4")
      local parent = assert(c:generate(PARAMS, { out = out, interval = 0.05 }))
      local before = env.emu:creates()
      assert(c:remix(parent.id, { prompt = "as a cartoon", duration = 5 },
        { out = env.out("remixed.mp4"), interval = 0.05 }))
      assert.equal(before + 1, env.emu:creates(), "one create")
      env.remove(out)
      local t, err = c:remix(parent.id, { prompt = "again", duration = 5 },
        { out = env.out("remixed2.mp4"), interval = 0.05 })
      assert.same({ nil, "task" }, { t, err and err.field })
      assert.matches(out, err.message, 1, true)
      t, err = c:continue(parent.id, { prompt = "on", duration = 5, last_image = "https://example.com/end.png" },
        { out = env.out("continued.mp4"), interval = 0.05 })
      assert.same({ nil, "task" }, { t, err and err.field })
      assert.matches(out, err.message, 1, true)
      assert.equal(before + 1, env.emu:creates(), "nothing sent")
    end },

  { name = "record and record_of: a saved video's provenance record is beside it (its SHA-256, size, model, task, "
      .. "params); a remix's names its parent's record by its SHA-256; neither holds the key, the bucket's secret "
      .. "or a presigned URL's signature; provenance = false writes none",
    promise = "provenance",
    covers = { "record", "record_of" },
    run = function(env, assert)
      local P, sign = require "starvideos.provenance", require "starvideos.sign"
      local c = env.client { preflight = false }
      local signed = "http://127.0.0.1:9/ref.png?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=f00dfeed"
      local out = env.out("recorded.mp4")
      local task = assert(c:generate({ model = "videos", prompt = "a cat", duration = 5, referenceImages = { signed } },
        { out = out, interval = 0.05 }))
      local text = assert(env.sink.record_of(out, c.ctx), "no record beside " .. out)
      local rec = assert(P.decode(text))
      assert.same({ task.sha256, env.saved(out).bytes, task.id, "videos", P.SOURCE, P.seal(rec) },
        { rec.video.sha256, rec.video.bytes, rec.task_id, rec.model, rec.digital_source_type, rec.record_sha256 })
      assert.equal("http://127.0.0.1:9/ref.png", rec.params.referenceImages[1].url)
      local child = assert(c:remix(task.id, { prompt = "as a cartoon", duration = 5 },
        { out = env.out("recorded-remix.mp4"), interval = 0.05 }))
      local kid = assert(env.sink.record_of(child.path, c.ctx), "no record beside the remix")
      local parent = assert(P.decode(kid)).parents[1]
      assert.same({ "remix", task.id, sign.sha256(text), task.sha256 },
        { parent.relation, parent.task, parent.record_sha256, parent.video.sha256 })
      local opts = env.options()
      for _, secret in ipairs { opts.api_key, opts.storage and opts.storage.secret_key, "f00dfeed", "AKIDEXAMPLE" } do
        for _, t in ipairs { text, kid } do assert.is_nil(t:find(secret, 1, true), "the record holds " .. secret) end
      end
      local off = env.out("unrecorded.mp4")
      assert(env.client({ provenance = false }):generate(PARAMS, { out = off, interval = 0.05 }))
      assert.truthy(env.saved(off), "saved")
      assert.is_nil(env.sink.record_of(off, c.ctx), "no record with provenance = false")
    end },

  { name = "place (the sink may lack it: a file's): a local file put as an out is saved whole, its SHA-256 the file's",
    covers = { "place" },
    run = function(env, assert)
      if not env.sink.place then return assert.is_nil(env.sink.place) end
      local file, out = helper.tmpdir() .. "/placed.mp4", env.out("placed.mp4")
      helper.write_file(file, require("starvideos.emulator.files").video(5))
      local sum = require("starvideos.sign").sha256_file(file)
      assert.is_true(env.sink.place(file, out, env.client().ctx, sum))
      assert.same({ sha256 = sum, bytes = #helper.read_file(file) }, env.saved(out))
    end },

  { name = "keeps and left: an API request is not kept by a close; a transfer that holds nothing leaves nothing",
    covers = { "keeps", "left" },
    run = function(env, assert)
      assert.falsy(env.sink.keeps({ op = "create" }))
      assert.falsy(env.sink.keeps({ op = "status" }))
      assert.is_nil(env.sink.left({ op = "download", part = env.dir .. "/none.mp4.part" }))
    end },

  { name = "release: a whole transfer let go uncommitted makes no video at its out",
    covers = { "release" },
    run = function(env, assert)
      local out = env.out("released.mp4")
      local part = helper.tmpdir() .. "/released.mp4.part"
      helper.write_file(part, "whole but not committed")
      env.sink.release({ loop = { transport = {} }, part = part, dest = out, whole = false })
      assert.is_nil(env.saved(out))
    end },
}

-- The interface's names, read from docs/architecture.md's table (first cells, each name backticked):
-- { name =, optional = true when the file's cell says none }.
function M.interface()
  local text = assert(helper.read_file(helper.root .. "/docs/architecture.md"))
  local body = assert(text:match("\n## The sink interface\n(.-)\n## "), "no sink interface section")
  local names = {}
  for name, file in body:gmatch("\n| `([%w_]+)%([^|]*| ([^|]*) |") do
    names[#names + 1] = { name = name, optional = file:match("^none") ~= nil }
  end
  return names
end

-- That sink s, called `on`, gives each of the interface's names as a function (an optional one: only a sink but the
-- file's, which has none).
function M.gives(names, s, on, assert)
  for _, n in ipairs(names) do
    if not (n.optional and on == "file") then assert.equal("function", type(s[n.name]), on .. "'s " .. n.name) end
  end
end

-- The names the library uses of a sink (job.sink.NAME, Sink.of(...).NAME), the rocks' files too, outside the file
-- sink's own.
function M.uses()
  return require("spec.support.case_list").uses({ "lua/starvideos/*.lua", "lua/starvideos/*/*.lua",
    "rocks/*/lua/starvideos/*/*.lua" }, { ["lua/starvideos/download.lua"] = true, ["lua/starvideos/sink.lua"] = true },
    { "%.sink%.([%a_][%w_]*)", "[Ss]ink\"?%)?%.of%b()%.([%a_][%w_]*)" })
end

-- The list run with busted's functions (b: describe, it, after_each, assert, pending) on `on`, a name; make() ->
-- env (sink, out, dir, bad_out, bad_dir, options(), saved, remove, emu); missing: why it cannot run here (then one
-- pending test says so), or nil; place: the matrix's place of the sink ("file", "bucket").
function M.run(on, make, b, missing, place)
  local title = "the sink cases on " .. on
  if missing then return b.pending(title .. ": " .. missing) end
  local env, opened
  require("spec.support.case_list").each(b, title, M.cases, function(case)
    env = env or make()
    opened = {}
    function env.client(opts)
      local o = env.options()
      for k, v in pairs(opts or {}) do o[k] = v end
      local c = require("starvideos").new(o)
      opened[#opened + 1] = c
      env.cfg = c.cfg
      return c
    end
    env.client()
    case.run(env, b.assert)
  end, function()
    for _, c in ipairs(opened or {}) do c:close() end
  end, { place, "journal", "lua" })
end

return M
