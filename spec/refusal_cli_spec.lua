-- The command line's --resend and --fallback (CONTRACT "Failures that say why"): a create whose content failed for
-- input before is refused before sending, saying why and how to send it anyway; --fallback tries the next model
-- after a service failure; --dry-run prices the worst case; a model that is none is bad usage.  Counted at the
-- emulator.
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

describe("the command line's --resend and --fallback", function()
  local emu
  local env, posts = C.session(function(e) emu = e end)
  after_each(function() emu:config { queued = 0.2, processing = 0.2, outcome = "completed" } end)

  local REQ = { "--model", "videos", "--prompt", "a cat at a low resolution", "--duration", "5" }
  local function args(...)
    local l = {}
    for _, a in ipairs { ... } do l[#l + 1] = a end
    for _, a in ipairs(REQ) do l[#l + 1] = a end
    return l
  end

  it("generate: an input refusal is not sent again; --resend sends it", function()
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "Reference image resolution is too low." }
    local journal = helper.tmpdir() .. "/j.jsonl"
    local before = #posts()
    local r = C.run(args("generate", "--journal", journal, "--interval", "0.05"), env())
    assert.equals(1, r.code, r.err)
    assert.equals(before + 1, #posts())
    r = C.run(args("generate", "--journal", journal, "--interval", "0.05"), env())
    assert.equals(1, r.code)
    assert.matches("refused_before: the same create %(model, parameters and references%) failed before as task "
      .. "%S+, for input", r.err)
    -- (in the command line's words: --resend and the flag of the input, not the Lua API's resend = true)
    assert.matches("; nothing was sent, nothing paid; change %-%-%S+, or send it anyway with %-%-resend\n", r.err)
    assert.is_nil(r.err:find("resend = true", 1, true), r.err)
    assert.equals(before + 1, #posts(), "refused before sending")
    r = C.run(args("generate", "--journal", journal, "--interval", "0.05", "--resend"), env())
    assert.equals(1, r.code)
    assert.equals(before + 2, #posts(), "--resend: sent")
  end)

  it("generate: a policy refusal is not sent again when --extra is respelled (its keys reordered, respaced): 1 "
    .. "create, then 0", function()
      emu:config { queued = 0, processing = 0, failures = { { kind = "policy", prompt = "forbidden" } } }
      local journal = helper.tmpdir() .. "/j.jsonl"
      local function gen(extra)
        return C.run({ "generate", "--journal", journal, "--interval", "0.05", "--model", "videos", "--prompt",
          "a forbidden cat", "--duration", "5", "--extra", extra }, env())
      end
      local before = #posts()
      local r = gen('{"seed": 7, "style": "noir", "camera": {"lens": 35, "grain": true}}')
      emu:config { failures = require("cjson").null }
      assert.equals(1, r.code, r.err)
      assert.matches("policy", r.err, 1, true)
      assert.equals(before + 1, #posts())
      for _, extra in ipairs { '{"camera":{"grain":true,"lens":35},"style":"noir","seed":7}',
        '{ "style" : "noir" ,\n "camera" : { "lens" : 35 , "grain" : true } , "seed" : 7 }' } do
        r = gen(extra)
        assert.equals(1, r.code, r.err)
        assert.matches("refused_before: the same create", r.err, 1, true)
      end
      assert.equals(before + 1, #posts(), "every respelling refused before sending")
    end)

  it("batch: a rerun after an input refusal creates nothing for that line, its summary says why", function()
    emu:config { queued = 0, processing = 0, outcome = "failed", error = "Reference image resolution is too low." }
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.txt", "a cat at a low resolution\n")
    local before = #posts()
    local function batch()
      return C.run({ "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
        "--duration", "5", "--interval", "0.05" }, env())
    end
    assert.equals(1, batch().code)
    assert.equals(before + 1, #posts())
    local r = batch()
    assert.equals(1, r.code)
    assert.matches("0001.mp4 (line 1)  refused_before: the same create", r.out, 1, true)
    assert.equals(before + 1, #posts(), "nothing sent for the line")
  end)

  it("generate --fallback: after an unknown failure the next model, 2 creates in all, the task's parent shown",
    function()
      emu:config { queued = 1, processing = 0, outcome = "failed", error = "a failure nobody wrote down" }
      local dir = helper.tmpdir()
      local before = #posts()
      local proc = C.background(args("generate", "--journal", dir .. "/j.jsonl", "--out", dir .. "/v.mp4",
        "--fallback", "videos_fast", "--interval", "0.05"), env())
      C.until_true(function() return #posts() == before + 1 end)
      emu:config { queued = 0, outcome = "completed" } -- (the first task still fails: its outcome was set)
      local r = proc:stop()
      assert.equals(0, r.code, r.err)
      local models = {}
      for i, p in ipairs(posts()) do if i > before then models[#models + 1] = helper.json(p.body).model end end
      assert.same({ "videos", "videos_fast" }, models)
      assert.matches("parent: %S+ %(fallback%)", r.out)
      assert.truthy(helper.exists(dir .. "/v.mp4"))
    end)

  it("generate --fallback: --dry-run prices the worst case; a model that is none is bad usage", function()
    local dir = helper.tmpdir()
    local r = C.run(args("generate", "--journal", dir .. "/j.jsonl", "--out", dir .. "/v.mp4", "--fallback",
      "videos_fast,videos_stable", "--prices", '{"videos": 0.4, "videos_fast": 0.1, "videos_stable": 1}',
      "--dry-run"), env())
    assert.equals(0, r.code, r.err)
    assert.matches("worst case with --fallback (every model tried): 3 creates, cost 1.5", r.out, 1, true)
    r = C.run(args("generate", "--fallback", "videos_fast,nope"), env())
    assert.equals(2, r.code)
    assert.matches('--fallback: "nope" is no model', r.err, 1, true)
  end)

  it("--fallback naming a model twice: refused before anything is sent (generate, batch), 0 creates", function()
    local dir = helper.tmpdir()
    local before = #posts()
    local r = C.run(args("generate", "--journal", dir .. "/j.jsonl", "--out", dir .. "/v.mp4", "--fallback", "videos",
      "--interval", "0.05"), env())
    assert.equals(2, r.code, r.err)
    assert.matches("fallback[1] videos repeats the call's own model", r.err, 1, true)
    r = C.run(args("generate", "--fallback", "videos_fast,videos_fast", "--interval", "0.05"), env())
    assert.equals(2, r.code, r.err)
    assert.matches("fallback[2] videos_fast repeats fallback[1]", r.err, 1, true)
    helper.write_file(dir .. "/p.txt", "a cat in a batch\n")
    r = C.run({ "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--journal", dir .. "/j.jsonl", "--fallback", "videos_fast,videos", "--interval", "0.05" },
      env())
    assert.is_not.equals(0, r.code)
    assert.matches("fallback[2] videos repeats the call's own model", r.out .. r.err, 1, true)
    assert.equals(before, #posts(), "0 creates")
  end)
end)
