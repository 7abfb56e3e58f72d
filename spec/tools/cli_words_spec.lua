-- What new and hostile users found (issue 55, items 11 and 13): the command line's exit statuses agree (a path
-- refused before anything is sent exits 2, whichever command), a misspelt option gets a "did you mean", as a
-- misspelt field does, and the words of a stop say what a person expects.

local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run, lines = C.run, C.lines

describe("the command line's words (issue 55)", function()
  local emu
  local env = C.session(function(e) emu = e end)

  describe("exit statuses", function()
    it("generate --out and wait --out into a folder that does not exist: both exit 2, naming --out, sending nothing",
      function()
      local dir = helper.tmpdir()
      local g = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--out",
        dir .. "/nope/a.mp4" }, env())
      local w = run({ "wait", "video_1", "--out", dir .. "/nope/x.mp4" }, env())
      assert.equals(2, w.code, w.err)
      assert.equals(2, g.code, g.err)
      assert.equals("starvideos generate: --out: cannot write " .. dir .. "/nope/a.mp4: the folder " .. dir
        .. "/nope does not exist; nothing was sent", lines(g.err)[1])
      assert.same({}, emu:requests())
      local j = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--json", "--out",
        dir .. "/nope/a.mp4" }, env())
      assert.equals(2, j.code, j.err)
      assert.matches('"kind": "io"', j.out, 1, true)
    end)

    it("a journal that cannot be opened is refused as --out is: exit 2, before the create", function()
      local dir = helper.tmpdir()
      local r = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--journal",
        dir .. "/nope/j.jsonl" }, env())
      assert.equals(2, r.code, r.err)
      assert.matches("^starvideos generate: %-%-journal: ", lines(r.err)[1])
      assert.same({}, emu:requests())
    end)

    it("an io error once something was sent stays exit 1 (the rule: before sending 2, after it 1)", function()
      local output = require "starvideos.cli.output"
      assert.equals(2, output.exit_code { kind = "io", field = "out", message = "out: cannot write x" })
      assert.equals(1, output.exit_code { kind = "io", field = "out", id = "video_1", message = "x" })
      assert.equals(1, output.exit_code { kind = "io", field = "journal", created = true, message = "x" })
      assert.equals(1, output.exit_code { kind = "io", field = "path", message = "download: disk full" })
    end)
  end)

  describe("did you mean", function()
    local function first(args)
      local r = run(args, env())
      assert.equals(2, r.code, r.err)
      return lines(r.err)[1]
    end

    it("a misspelt option of the command names the one meant, as a misspelt field does", function()
      assert.equals("starvideos generate: unknown option --promt (did you mean --prompt?)",
        first { "generate", "--promt", "a cat" })
      assert.equals("starvideos generate: unknown option --duraton (did you mean --duration?)",
        first { "generate", "--duraton=5" })
      assert.equals("starvideos wait: unknown option --timout (did you mean --timeout?)",
        first { "wait", "video_1", "--timout", "3" })
      assert.equals("starvideos generate: unknown option --first_image (did you mean --first-image?)",
        first { "generate", "--first_image", "https://x/y.png" })
      assert.equals('starvideos: unknown command "genrate" (did you mean generate?)', first { "genrate" })
      assert.same({}, emu:requests())
    end)

    it("a command cut short or missing a letter names the one meant: lst, lis, complet (not compact), stat",
      function()
      assert.equals('starvideos: unknown command "lst" (did you mean list?)', first { "lst" })
      assert.equals('starvideos: unknown command "lis" (did you mean list?)', first { "lis" })
      assert.equals('starvideos: unknown command "complet" (did you mean completion?)', first { "complet" })
      assert.equals('starvideos: unknown command "stat" (did you mean status?)', first { "stat" })
      assert.equals("starvideos generate: unknown option --promp (did you mean --prompt?)",
        first { "generate", "--promp", "a cat" })
      local nearest = require("starvideos.errors").nearest
      assert.is_nil(nearest("com", { "compact", "completion" })) -- (the start of two: no guess)
      assert.equals("first_image", nearest("FIRST-IMAGE", { "first_image", "first_images" }))
      assert.same({}, emu:requests())
    end)

    it("no guess when nothing is near, or when two are as near", function()
      assert.equals("starvideos create: unknown option --colour", first { "create", "--colour", "red" })
      local nearest = require("starvideos.errors").nearest
      assert.is_nil(nearest("out", { "json", "help" }))
      assert.is_nil(nearest("cat", { "bat", "hat" }))
      assert.is_nil(nearest("ab", { "abc" })) -- (two letters or fewer: case and punctuation only)
      assert.equals("dry_run", nearest("dry-run", { "dry_run", "dir" }))
    end)

    it("a library option misspelt: starvideos.new and a call's options name the one meant", function()
      local starvideos = require "starvideos"
      local ok, err = pcall(starvideos.new, { api_kye = "k" })
      assert.is_false(ok)
      assert.matches("unknown option 'api_kye' (did you mean 'api_key'?)", err, 1, true)
      local client = starvideos.new { api_key = "k", base_url = emu.url }
      ok, err = pcall(client.wait, client, "video_1", { timout = 3 })
      client:close()
      assert.is_false(ok)
      assert.matches("bad option to 'wait': unknown option 'timout' (did you mean 'timeout'?)", err, 1, true)
    end)
  end)

  describe("help", function()
    it("pending --help shows the TASK_ID that --adopt takes, as its usage error asks for it", function()
      local r = run { "pending", "--help" }
      assert.equals(0, r.code, r.err)
      assert.matches("\n  %-%-adopt ID TASK_ID +settle the pending create ID with TASK_ID", r.out)
      r = run({ "pending", "--journal", helper.tmpdir() .. "/j.jsonl", "--adopt", "a1" }, env())
      assert.equals(2, r.code)
      assert.equals("starvideos pending: --adopt expects ID TASK_ID", lines(r.err)[1])
    end)
  end)

  describe("without argparse", function()
    it("reads its line, refuses in its own words, helps and completes: it needs no module the library does not",
      function()
      local none = { LUA_PATH = "/nonexistent/?.lua" } -- (no ;;: Lua's own path, where Debian's argparse is, left out)
      local r = run({ "models" }, none)
      assert.equals(0, r.code, r.err)
      assert.matches("videos_fast", r.out, 1, true)
      for argv, said in pairs {
        [{ "validate", "--model", "videos", "--duraton", "5" }] = "unknown option --duraton (did you mean --duration?)",
        [{ "wait", "video_1", "--interval" }] = "--interval expects a value (S)",
        [{ "status", "video_1", "--log", "loud" }] = '--log expects debug or info, got "loud"',
        [{ "completion", "ksh" }] = "SHELL expects one of bash, zsh, fish",
      } do
        r = run(argv, none)
        assert.equals(2, r.code, r.err)
        assert.equals("starvideos " .. argv[1] .. ": " .. said, lines(r.err)[1])
      end
      r = run({ "status", "x", "--bogus", "--json" }, none)
      assert.equals(2, r.code, r.err)
      assert.equals("usage", require("cjson").decode(r.out).error.kind)
      r = run({ "generate", "--help" }, none)
      assert.equals(0, r.code, r.err)
      assert.matches("usage: starvideos generate [options]", r.out, 1, true)
      r = run({ "completion", "bash" }, none)
      assert.equals(0, r.code, r.err)
      assert.matches("complete -F _starvideos starvideos", r.out, 1, true)
      assert.equals(0, run({ "--version" }, none).code)
    end)
  end)

  describe("what a batch says it created", function()
    local function batch(dir)
      return { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
        "--duration", "5", "--interval", "0.1" }
    end

    it("a rerun that creates nothing says 0 created, the tasks of the earlier run apart", function()
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/p.txt", "a cat\na dog\na fish\n")
      local r = run(batch(dir), env())
      assert.equals(0, r.code, r.err)
      local creates = emu:creates()
      r = run(batch(dir), env())
      assert.equals(0, r.code, r.err)
      assert.equals(creates, emu:creates())
      local l = lines(r.out)
      local last
      for _, line in ipairs(l) do if line:find("^3 videos: %d+ created") then last = line end end
      assert.equals("3 videos: 0 created, 3 from an earlier run, 3 done, 0 failed", last, r.out)
    end)

    it("kill -9 while a create is sent and unanswered: the line a kill prints counts it, apart from those created",
      function()
      local dir = helper.tmpdir()
      helper.write_file(dir .. "/p.txt", "a slow cat\na quick dog\n")
      emu:config { queued = 30 }
      emu:fault { method = "POST", path = "/v1/", delay = 30 } -- (the first create: no answer for now)
      local proc = C.background(batch(dir), env { STARVIDEOS_PROGRESS_EVERY = "0.2" })
      finally(function() os.execute("kill -9 " .. proc.pid .. " 2>/dev/null") end) -- (when the wait gives up)
      local want = "2 videos: 1 created, 1 sent without an answer yet, 0 done, 0 failed"
      C.until_true(function() return (helper.read_file(proc.dir .. "/out") or ""):find(want, 1, true) end)
      local r = proc:stop("KILL")
      emu:config { queued = 0.2 }
      assert.equals(137, r.code, r.err)
      assert.matches("starvideos batch: stopped by a signal; 1 created (each a paid task), 1 more sent without an "
        .. "answer yet (it may be paid for), 0 done, 0 failed of 2 videos; `", proc:err_line("stopped by a signal"),
        1, true)
    end)
  end)
end)
