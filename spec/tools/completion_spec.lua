-- `starvideos completion bash|zsh|fish`: the script of the command line's own commands, flags and arguments
-- (cli/complete.lua).  Each is loaded into its real shell and asked what a half-typed line completes to, as a Tab
-- asks it: bash's function called with the line's words; fish's `complete -C`; zsh's completion on a
-- pseudo-terminal (spec/support/zsh_complete.zsh).  The commands, a command's flags (not another's), a flag's
-- choices, the models, no file names where a URL, a prompt or a number goes, file names whole (a space, a tab, a
-- newline inside).

local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local q = helper.shell_quote

-- The script of `starvideos completion shell` (installed on the PATH, as C.run runs it), in a file.
local function script(shell)
  local path = helper.tmpdir() .. "/starvideos." .. shell
  local r = C.run { "completion", shell }
  assert.equal(0, r.code, r.err)
  helper.write_file(path, r.out)
  return path
end

-- The words of out split at sep (default NUL), sorted, the empty ones left out.
local function words(out, sep)
  local list, at = {}, 1
  while at <= #out do
    local stop = out:find(sep or "\0", at, true) or #out + 1
    if stop > at then list[#list + 1] = out:sub(at, stop - 1) end
    at = stop + 1
  end
  table.sort(list)
  return list
end

-- What bash completes `words` (the line's words, the last one half typed) to, with the script of `starvideos
-- completion bash` loaded: COMPREPLY's words, whole (printed NUL-separated), sorted.
local function complete(line, cwd)
  local quoted = {}
  for i, w in ipairs(line) do quoted[i] = q(w) end
  local cmd = "cd " .. q(cwd or ".") .. " && bash -c " .. q("source " .. q(script("bash"))
    .. " && complete -p starvideos && COMP_WORDS=(" .. table.concat(quoted, " ") .. ") && COMP_CWORD=" .. (#line - 1)
    .. " && { _starvideos; printf '%s\\0' \"${COMPREPLY[@]}\"; }")
  local out, ok = helper.capture(cmd)
  assert.is_true(ok, out)
  local registered, said = out:match("^([^\n]*)\n(.*)$")
  -- (no -o default: a line with nothing to offer, a URL's, offers nothing, not the files bash would fall back to)
  assert.equal("complete -F _starvideos starvideos", registered)
  return words(said)
end

-- What fish completes line to (`complete -C --escape`), sorted; with descriptions (after a tab) unless bare.
local function fish(line, cwd, bare)
  local out, ok = helper.capture("cd " .. q(cwd or ".") .. " && timeout 60 fish --no-config -c "
    .. q("source " .. q(script("fish")) .. "; complete -C --escape " .. q(line)))
  assert.is_true(ok, out)
  local list = words(out, "\n")
  if not bare then for i, w in ipairs(list) do list[i] = w:match("^[^\t]*") end end
  return list
end

-- What zsh completes line to, each match as ${(q)...} writes it, sorted.
local function zsh(line, cwd)
  local out, ok = helper.capture("cd " .. q(cwd or ".") .. " && timeout 60 zsh -f "
    .. q(C.ROOT .. "/spec/support/zsh_complete.zsh") .. " " .. q(script("zsh")) .. " " .. q(line))
  assert.is_true(ok, out)
  return words(out, "\n")
end

-- A folder of files whose names a shell's words would split: a space, a tab, a newline.
local function odd_names()
  local dir = helper.tmpdir()
  for _, name in ipairs { "a b.png", "a\tc.png", "a\nd.png", "plain.png" } do
    helper.write_file(dir .. "/" .. name, "")
  end
  return dir
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

  it("bash: completion's shells, store's subcommands, a flag's choices and the models", function()
    assert.same({ "bash", "fish", "zsh" }, complete { "starvideos", "completion", "" })
    assert.same({ "check", "hold" }, complete { "starvideos", "store", "" })
    assert.same({ "hold" }, complete { "starvideos", "store", "h" })
    assert.same({}, complete { "starvideos", "store", "check", "" }) -- (its URL: nothing offered)
    assert.same({ "completed", "created" }, complete { "starvideos", "list", "--state", "c" })
    assert.same({ "debug", "info" }, complete { "starvideos", "status", "x", "--log", "" })
    assert.same({ "strict" }, complete { "starvideos", "generate", "--preflight", "s" })
    local models = complete { "starvideos", "generate", "--model", "" }
    assert.is_true(has(models, "videos") and has(models, "videos_fast") and has(models, "starvideos_o3"))
    assert.same({ "videos_fast" }, complete { "starvideos", "create", "--model", "videos_f" })
  end)

  it("bash: no file names where a URL, a prompt, a number or an id goes; file names whole where a file goes", function()
    local dir = odd_names()
    for _, line in ipairs {
      { "starvideos", "generate", "--base-url", "" }, { "starvideos", "generate", "--prompt", "" },
      { "starvideos", "generate", "--duration", "" }, { "starvideos", "wait", "--notify", "" },
      { "starvideos", "status", "" }, { "starvideos", "generate", "--prompt", "a" },
      { "starvideos", "list", "--store", "a" }, { "starvideos", "generate", "--model", "a" },
    } do
      assert.same({}, complete(line, dir), table.concat(line, " "))
    end
    local whole = { "a\tc.png", "a\nd.png", "a b.png" }
    table.sort(whole)
    assert.same(whole, complete({ "starvideos", "generate", "--ref-image", "a" }, dir))
    assert.same(whole, complete({ "starvideos", "generate", "--out", "a" }, dir))
    assert.same(whole, complete({ "starvideos", "generate", "--out", "=", "a" }, dir)) -- (--out=a: bash's words)
    assert.same(whole, complete({ "starvideos", "download", "video_1", "a" }, dir)) -- (its PATH)
    assert.same({ "a b.png" }, complete({ "starvideos", "film", "a\\ " }, dir)) -- (typed a\ )
    assert.same({ "--out=a b.png" }, complete({ "starvideos", "generate", "--out=a " }, dir))
    -- a flag's value counted: the ID after pending --adopt ID TASK_ID is no file either
    assert.same({}, complete({ "starvideos", "pending", "--adopt", "x", "a" }, dir))
  end)

  -- zsh and fish: the same lines, each shell's words for a whole file name (zsh's ${(q)...}; fish's --escape, which
  -- writes a newline as \n and a space as "\ " and leaves a tab a tab, so that its lines are compared whole)
  local WHOLE = { zsh = { "a$'\\n'd.png", "a$'\\t'c.png", "a\\ b.png" },
    fish = { "a\\ b.png", "a\\nd.png", "a\tc.png" } }
  for _, shell in ipairs { "zsh", "fish" } do
    it(shell .. ": the commands, a command's flags, choices, subcommands, no file names for a URL, file names whole",
      function()
      local ask = shell == "zsh" and zsh or fish
      local dir = odd_names()
      for line, offered in pairs {
        ["gen"] = { "generate" }, ["batch --prompt"] = { "--prompts-file" },
        ["completion "] = { "bash", "fish", "zsh" },
        ["store "] = { "check", "hold" }, ["store check "] = {}, ["list --state c"] = { "completed", "created" },
        ["generate --model videos_f"] = { "videos_fast" }, ["generate --base-url "] = {},
        ["generate --prompt a"] = {}, ["status "] = {}, ["emulator --fa"] = { "--fail-rate", "--failures" },
      } do
        assert.same(offered, ask("starvideos " .. line, dir), shell .. ": " .. line)
      end
      local whole = WHOLE[shell]
      table.sort(whole)
      assert.same(whole, ask("starvideos generate --ref-image a", dir, true))
      assert.same(whole, ask("starvideos download video_1 a", dir, true))
    end)
  end

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
