-- `starvideos completion bash|zsh|fish`: the script argparse writes of the command line's own commands and flags.
-- The bash one is loaded into a real bash, and its function asked what a half-typed line completes to, as the
-- shell asks it on a Tab: the commands, a command's flags (not another's), a path after a flag that takes one.

local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local q = helper.shell_quote

-- What bash completes `words` (the line's words, the last one half typed) to, with the script of `starvideos
-- completion bash` loaded (installed on the PATH, as C.run runs it): COMPREPLY's words, sorted.
local function complete(words, cwd)
  local script = helper.tmpdir() .. "/starvideos.bash"
  local r = C.run { "completion", "bash" }
  assert.equal(0, r.code, r.err)
  helper.write_file(script, r.out)
  local quoted = {}
  for i, w in ipairs(words) do quoted[i] = q(w) end
  local cmd = "cd " .. q(cwd or ".") .. " && bash -c " .. q("source " .. q(script) .. " && complete -p starvideos"
    .. " && COMP_WORDS=(" .. table.concat(quoted, " ") .. ") && COMP_CWORD=" .. (#words - 1)
    .. " && { _starvideos; printf '%s\\n' \"${COMPREPLY[@]}\"; }") -- (no match: compgen fails, said as none)
  local out, ok = helper.capture(cmd)
  assert.is_true(ok, out)
  local registered, said = out:match("^([^\n]*)\n(.*)$")
  assert.equal("complete -o bashdefault -o default -F _starvideos starvideos", registered)
  local list = {}
  for w in said:gmatch("[^\n]+") do list[#list + 1] = w end
  table.sort(list)
  return list
end

local function has(list, word)
  for _, w in ipairs(list) do if w == word then return true end end
  return false
end

describe("starvideos completion", function()
  it("bash: a Tab after the command's name completes the commands, the rocks' among them", function()
    assert.same({ "generate" }, complete { "starvideos", "gen" })
    assert.same({ "check", "compact", "completion", "continue", "create" }, complete { "starvideos", "c" })
    local all = complete { "starvideos", "" }
    for _, cmd in ipairs { "create", "status", "wait", "download", "batch", "resume", "keep", "list", "spend", "film",
      "emulator", "store" } do
      assert.is_true(has(all, cmd), cmd)
    end
  end)

  it("bash: a command's flags, and only its own, the rocks' commands' too", function()
    assert.same({ "--prompts-file" }, complete { "starvideos", "batch", "--prompt" }) -- (batch takes no --prompt)
    assert.same({ "--prompt" }, complete { "starvideos", "generate", "--prom" })
    local wait = complete { "starvideos", "wait", "--" }
    for _, f in ipairs { "--out", "--interval", "--timeout", "--journal", "--store", "--notify", "--json", "--help" } do
      assert.is_true(has(wait, f), f)
    end
    assert.is_false(has(wait, "--prompt"))
    assert.same({ "--adopt" }, complete { "starvideos", "pending", "--ad" })
    assert.same({}, complete { "starvideos", "models", "--jour" })
    -- a rock's command that parses its own line (the emulator): its flags, from its own argparse options
    assert.same({ "--fail-rate", "--failures" }, complete { "starvideos", "emulator", "--fa" })
    assert.same({ "--failures" }, complete { "starvideos", "emulator", "--failu" })
    assert.same({ "--replicas" }, complete { "starvideos", "store", "--rep" }) -- (and one of usage rows: store)
  end)

  it("bash: a path after a flag that takes one", function()
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/tasks.jsonl", "")
    assert.same({ "tasks.jsonl" }, complete({ "starvideos", "list", "--journal", "ta" }, dir))
  end)

  it("zsh and fish: scripts of the same commands and flags", function()
    local zsh = C.run { "completion", "zsh" }
    assert.equal(0, zsh.code, zsh.err)
    assert.matches("^#compdef starvideos\n", zsh.out)
    assert.matches('"--prompts-file[', zsh.out, 1, true)
    local fish = C.run { "completion", "fish" }
    assert.equal(0, fish.code, fish.err)
    assert.matches("complete -c starvideos -n '__fish_starvideos_seen_command batch' -l prompts-file -r -d ",
      fish.out, 1, true)
  end)

  it("refuses a shell it has no script for, and gives its help as every command does", function()
    local r = C.run { "completion", "ksh" }
    assert.equal(2, r.code)
    assert.equal("", r.out)
    assert.matches("^starvideos completion: SHELL expects one of bash, zsh, fish\n", r.err)
    r = C.run { "completion" }
    assert.equal(2, r.code)
    assert.matches("^starvideos completion: missing SHELL\n", r.err)
    r = C.run { "completion", "--help" }
    assert.equal(0, r.code, r.err)
    assert.matches("usage: starvideos completion SHELL [options]", r.out, 1, true)
    assert.matches("\nexit status: 0 success", r.out, 1, true)
    assert.matches("\nexample:\n  starvideos completion bash > ", r.out, 1, true)
  end)
end)
