-- The command line's warnings (docs/cli.md "Warnings"): what the service will ignore, a `warning:` line on stderr
-- for validate, check, create, generate and batch (its entry named), a `warnings` array under --json, listed under
-- their entry by --dry-run; none where the service takes what was asked.  Against the emulator.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run, lines = C.run, C.lines

-- The documents' words (api/000 lines 44 and 50; api/001 line 236), as spec/warnings_spec.lua has them.
local DURATION = "duration: ignored by starvideos_o3 beside referenceVideos (the output duration is determined by "
  .. "the reference video)"
local RATIO = "ratio: ignored by starvideos_o3 beside referenceVideos (the aspect ratio follows the reference "
  .. "video's dimensions)"
local IMAGE = "image: ignored by videos beside first_image (the same URL; first_image takes precedence over its "
  .. "legacy alias)"

local O3 = { "--model", "starvideos_o3", "--prompt", "a cat surfing", "--duration", "8", "--ratio", "1:1",
  "--ref-video", "https://example.com/ref.mp4" }
local CLEAN = { "--model", "starvideos_o3", "--prompt", "a cat surfing", "--duration", "8", "--ratio", "1:1" }
local OFF = { "--preflight", "off" } -- (creates: the reference is not fetched)

local function with(cmd, list, more, last)
  local a = { cmd }
  for _, l in ipairs { list, more or {}, last or {} } do
    for _, v in ipairs(l) do a[#a + 1] = v end
  end
  return a
end

-- The stderr lines with "warning:".
local function warned(r)
  local out = {}
  for _, l in ipairs(lines(r.err)) do if l:find("warning:", 1, true) then out[#out + 1] = l end end
  return out
end

local O3_WARNINGS = { { field = "duration", because = "referenceVideos", message = DURATION },
  { field = "ratio", because = "referenceVideos", message = RATIO } }

describe("the command line's warnings", function()
  local emu
  local env, posts = C.session(function(e) emu = e end)

  it("validate: a line each on stderr, exit 0; --json a warnings array; none for a clean request", function()
    local r = run(with("validate", O3))
    assert.equal(0, r.code, r.err)
    assert.same({ "starvideos validate: warning: " .. DURATION, "starvideos validate: warning: " .. RATIO },
      warned(r))
    r = run(with("validate", O3, { "--json" }))
    assert.same({ ok = true, warnings = O3_WARNINGS }, cjson.decode(r.out))
    r = run(with("validate", CLEAN, { "--json" }))
    assert.equal(0, r.code, r.err)
    assert.same({ ok = true, warnings = {} }, cjson.decode(r.out))
    assert.equal('"warnings": []', r.out:match('"warnings": %[%]'), "an empty array, not an object")
    assert.same({}, warned(r))
    assert.same({}, emu:requests())
  end)

  it("check: the same lines beside its notes", function()
    local port = helper.free_ports(1)[1]
    local r = run(with("check", { "--model", "starvideos_o3", "--prompt", "a cat", "--ratio", "16:9", "--ref-video",
      "http://127.0.0.1:" .. port .. "/ref.mp4", "--json" }), env()) -- (the base URL's host: a reference may be there)
    assert.equal(0, r.code, r.err)
    local doc = cjson.decode(r.out)
    assert.same({ { field = "ratio", because = "referenceVideos", message = RATIO } }, doc.warnings)
    assert.equal(1, #doc.notes)
    assert.same({ "starvideos check: warning: " .. RATIO }, warned(r))
  end)

  it("generate --dry-run: under its entry, before anything is sent; --json entries[].warnings", function()
    local r = run(with("generate", O3, { "--dry-run" }, OFF), env())
    assert.equal(0, r.code, r.err)
    local out = lines(r.out)
    assert.matches("^ACTION%s+ENTRY", out[1]) -- (the table's header)
    assert.matches("^create", out[2])
    assert.same({ "  warning: " .. DURATION, "  warning: " .. RATIO }, { out[3], out[4] })
    r = run(with("generate", O3, { "--dry-run", "--json" }, OFF), env())
    assert.same(O3_WARNINGS, cjson.decode(r.out).entries[1].warnings)
    r = run(with("generate", CLEAN, { "--dry-run", "--json" }, OFF), env())
    assert.same({}, cjson.decode(r.out).entries[1].warnings)
    assert.is_nil(r.out:find("warning: ", 1, true))
    assert.same({}, posts())
  end)

  it("create and generate: a line each, once, on stderr; the task's warnings under --json; none when clean",
    function()
    local r = run(with("create", O3, { "--json" }, OFF), env())
    assert.equal(0, r.code, r.err)
    assert.same(O3_WARNINGS, cjson.decode(r.out).warnings)
    assert.same({ "starvideos create: warning: " .. DURATION, "starvideos create: warning: " .. RATIO }, warned(r))
    r = run(with("generate", O3, { "--interval", "0.1" }, OFF), env())
    assert.equal(0, r.code, r.err)
    assert.same({ "starvideos generate: warning: " .. DURATION, "starvideos generate: warning: " .. RATIO },
      warned(r))
    r = run(with("generate", CLEAN, { "--interval", "0.1", "--json" }, OFF), env())
    assert.equal(0, r.code, r.err)
    local task = cjson.decode(r.out)
    assert.same({}, task.warnings)
    assert.equal(8, task.actualDuration)
    assert.same({}, warned(r))
    assert.equal(3, #posts())
  end)

  it("batch: each entry's line names it (the legacy image of a .jsonl line)", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/p.jsonl", '{"prompt": "a"}\n'
      .. '{"prompt": "b", "first_image": "https://x/a.png", "image": "https://x/a.png", '
      .. '"last_image": "https://x/b.png"}\n')
    local r = run({ "batch", "--prompts-file", dir .. "/p.jsonl", "--out-dir", dir .. "/out", "--model", "videos",
      "--duration", "5", "--preflight", "off", "--interval", "0.1" }, env())
    assert.equal(0, r.code, r.err)
    assert.same({ "starvideos batch: warning: 0002.mp4 (line 2): " .. IMAGE }, warned(r))
  end)

  it("models lists what each model ignores", function()
    local r = run { "models" }
    assert.equal(0, r.code, r.err)
    assert.truthy(r.out:find("ignores     duration beside referenceVideos (the output duration is determined by the "
      .. "reference video)", 1, true), r.out)
    assert.truthy(r.out:find("ignores     image beside first_image", 1, true), r.out)
  end)
end)
