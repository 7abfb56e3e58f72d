-- Every command the command line prints for a person starts as the command was invoked
-- (issue 49): `bin/starvideos ...` from a checkout, `starvideos ...` once installed on the
-- PATH; pasted into the same shell, each works.  And LÖVE's quit line the same way.

local helper = require "spec.helper"
local C = require "spec.support.cli_run"
local args = require "starvideos.cli.args"

local q, KEY = helper.shell_quote, C.KEY
-- the checkout, absolute (helper.root may be "." when busted runs from it)
local ROOT = helper.root:sub(1, 1) == "/" and helper.root or (os.getenv("PWD") .. "/" .. helper.root):gsub("/%.$", "")

-- The command line run from dir (default: the checkout) as `cmd ARGS...` with PATH
-- prefixed by path: { out =, err =, code = }.
local function run_in(dir, cmd, argv, env, path)
  local parts = { "cd " .. q(dir) .. " &&", "env -u STARVIDEOS_API_KEY -u STARVIDEOS_BASE_URL" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  if path then parts[#parts + 1] = "PATH=" .. q(path) .. ':"$PATH"' end
  parts[#parts + 1] = cmd
  for _, a in ipairs(argv) do parts[#parts + 1] = q(a) end
  local errfile = os.tmpname()
  local out, _, code = helper.capture(table.concat(parts, " ") .. " </dev/null 2>" .. errfile)
  local err = helper.read_file(errfile) or ""
  os.remove(errfile)
  return { out = out, err = err, code = code }
end

-- A command printed between backquotes (or in 'Run '...''), pasted into sh from dir.
local function paste(dir, command, env, path)
  return run_in(dir, "sh -c " .. q(command), {}, env, path)
end

describe("hints name the command as it was invoked", function()
  it("args.invoked_as: the bare name when found on the PATH or through a LuaRocks wrapper, else arg[0] as given",
    function()
      local path = "/usr/local/bin:/opt/sv/bin/:/usr/bin"
      assert.equals("bin/starvideos", args.invoked_as("bin/starvideos", path))
      assert.equals("./bin/starvideos", args.invoked_as("./bin/starvideos", path))
      assert.equals("/home/me/sv/bin/starvideos", args.invoked_as("/home/me/sv/bin/starvideos", path))
      assert.equals("starvideos", args.invoked_as("/usr/local/bin/starvideos", path))
      assert.equals("starvideos", args.invoked_as("/opt/sv/bin/starvideos", path))
      assert.equals("starvideos",
        args.invoked_as("/usr/local/lib/luarocks/rocks-5.4/starvideos/0.3.0-1/bin/starvideos", path))
      assert.equals("/home/me/.luarocks/bin/starvideos", -- (a tree whose bin is not on the PATH: its wrapper)
        args.invoked_as("/home/me/.luarocks/lib/luarocks/rocks-5.4/starvideos/scm-1/bin/starvideos", path))
      assert.equals("starvideos", args.invoked_as(nil, path))
      assert.equals("starvideos", args.invoked_as("starvideos", nil))
    end)

  describe("from a checkout (bin/starvideos), against the emulator", function()
    local emu
    local env = C.session(function(e) emu = e end)
    local root = ROOT

    it("a usage error's 'Run ...' line and --help's name bin/starvideos, and work pasted", function()
      local r = run_in(root, "bin/starvideos", { "batch", "--bogus" })
      assert.equals(2, r.code)
      local hint = assert(r.err:match("Run '([^']+)' for usage%."), r.err)
      assert.equals("bin/starvideos batch --help", hint)
      local pasted = paste(root, hint)
      assert.equals(0, pasted.code, pasted.err)
      assert.matches("usage: bin/starvideos batch [options]", pasted.out, 1, true)
      assert.matches("130 interrupted (Ctrl-C), 143 killed by SIGTERM, 137 by SIGKILL", pasted.out, 1, true)
      -- a command's example, pasted, runs (models needs no key, no network)
      r = run_in(root, "bin/starvideos", { "models", "--help" })
      local example = assert(r.out:match("\nexample:\n  ([^\n]+)"), r.out)
      assert.equals("bin/starvideos models --json", example)
      pasted = paste(root, example)
      assert.equals(0, pasted.code, pasted.err)
      assert.matches('"starvideos_o3"', pasted.out, 1, true)
      r = run_in(root, "bin/starvideos", { "--help" })
      assert.matches("Run 'bin/starvideos <command> --help'", r.out, 1, true)
      assert.matches("130 interrupted", r.out, 1, true)
      assert.matches("143 killed by SIGTERM, 137 by SIGKILL", r.out, 1, true)
    end)

    it("a timed-out wait's next step is `bin/starvideos wait ...`, which works pasted", function()
      emu:config { queued = 4 }
      local r = run_in(root, "bin/starvideos", { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5",
        "--json" }, env())
      assert.equals(0, r.code, r.err)
      local id = assert(r.out:match('"id": *"([^"]+)"'), r.out)
      local dir = helper.tmpdir()
      r = run_in(root, "bin/starvideos", { "wait", id, "--interval", "0.1", "--timeout", "0.3", "--out",
        dir .. "/w.mp4" }, env())
      assert.equals(1, r.code, r.err)
      local command = assert(r.err:match("`([^`]+)` picks it up again"), r.err)
      assert.equals("bin/starvideos wait " .. id, command:sub(1, #("bin/starvideos wait " .. id)))
      emu:config { queued = 0 }
      local pasted = paste(root, command, env())
      assert.equals(0, pasted.code, command .. "\n" .. pasted.err)
      assert.equals(C.SAMPLE, helper.read_video(dir .. "/w.mp4"))
    end)

    it("a batch's lost create: its `pending --forget` line names bin/starvideos and works pasted", function()
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/p.txt", "a lost cat\n")
      emu:fault { method = "POST", path = "/v1/", after = true, drop = true }
      local r = run_in(root, "bin/starvideos", { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v",
        "--model", "videos", "--duration", "5", "--interval", "0.1" }, env())
      emu:fault {}
      assert.equals(1, r.code, r.err)
      local command = assert(r.out:match("`(bin/starvideos pending %-%-journal [^`]+ %-%-forget [^`]+)`"), r.out)
      local pasted = paste(root, command, env())
      assert.equals(0, pasted.code, command .. "\n" .. pasted.err)
    end)

    it("list --check's repair line names bin/starvideos", function()
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/p.txt", "a saved cat\n")
      local r = run_in(root, "bin/starvideos", { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v",
        "--model", "videos", "--duration", "5", "--interval", "0.1" }, env())
      assert.equals(0, r.code, r.err)
      os.remove(dir .. "/v/0001.mp4")
      r = run_in(root, "bin/starvideos", { "list", "--journal", dir .. "/v/starvideos.jsonl", "--check" }, env())
      assert.equals(1, r.code, r.err)
      assert.matches("(the same `bin/starvideos batch`, or `bin/starvideos generate` with the same --out)", r.out,
        1, true)
    end)
  end)

  it("installed on the PATH, the hints name `starvideos`, which works pasted", function()
    -- an install's layout: DIR/bin/starvideos beside DIR/lua and DIR/build
    local dir = helper.tmpdir()
    assert(helper.execute("mkdir " .. q(dir .. "/bin") .. " && cp " .. q(C.BIN) .. " " .. q(dir .. "/bin/")
      .. " && ln -s " .. q(ROOT .. "/lua") .. " " .. q(dir .. "/lua")
      .. " && ln -s " .. q(ROOT .. "/rocks") .. " " .. q(dir .. "/rocks")
      .. " && ln -s " .. q(ROOT .. "/build") .. " " .. q(dir .. "/build")))
    local r = run_in(dir, "starvideos", { "pending", "--bogus" }, {}, dir .. "/bin")
    assert.equals(2, r.code, r.err)
    assert.equals("Run 'starvideos pending --help' for usage.", r.err:match("Run '[^\n]+"))
    local pasted = paste(dir, "starvideos pending --help", {}, dir .. "/bin")
    assert.equals(0, pasted.code, pasted.err)
    assert.is_nil(r.err:find(KEY, 1, true))
  end)

  it("LÖVE's quit line names the checkout's bin/starvideos when the game loaded the library from it", function()
    local saved = package.path
    package.path = helper.root .. "/examples/love/?.lua;" .. package.path
    local messages = require "messages"
    package.path = saved
    assert.equals("starvideos wait t1 --out q.mp4", messages.fetch_command("t1", "q.mp4"))
    messages.command = helper.root .. "/bin/starvideos"
    assert.equals(helper.root .. "/bin/starvideos download t1 q.mp4", messages.fetch_command("t1", "q.mp4", true))
    assert.truthy(messages.describe({ kind = "timeout", id = "t1" }, {}):find(helper.root .. "/bin/starvideos wait t1",
      1, true))
    local main = helper.read_file(helper.root .. "/examples/love/main.lua")
    assert.matches('messages.command = root .. "/bin/starvideos"', main, 1, true)
    messages.command = "starvideos"
  end)
end)
