-- The command line, run as a child process against the local emulator: exit
-- codes, what reached the server, the files on disk and what a person sees
-- (spec/tools/cli_ops_spec.lua: how to go on after a stop, the operator's flags, the lists).

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local KEY, SAMPLE, q = C.KEY, C.SAMPLE, helper.shell_quote
local run, run_printed, background, until_true, lines = C.run, C.run_printed, C.background, C.until_true, C.lines
local has_script = C.has_script

describe("the starvideos command line", function()
  local emu
  local env, posts, create, completed = C.session(function(e) emu = e end)

  describe("help", function()
    it("lists every command at the top level and exits 0", function()
      for _, flag in ipairs { "--help", "-h", "help" } do
        local r = run { flag }
        assert.equals(0, r.code)
        for _, cmd in ipairs { "create", "status", "wait", "download", "generate", "models", "validate",
          "resume", "emulator" } do
          assert.matches("\n  " .. cmd .. " ", r.out, 1, true)
        end
        assert.matches("STARVIDEOS_API_KEY", r.out, 1, true)
      end
    end)

    it("shows every subcommand's flags with --help and -h, and exits 0", function()
      local request = { "--model", "--prompt", "--duration", "--ratio", "--resolution", "--first-image",
        "--last-image", "--ref-image", "--ref-video", "--ref-audio" }
      local client = { "--base-url", "--api-key-file", "--json" }
      local function join(...)
        local all = {}
        for _, list in ipairs { ... } do
          for _, v in ipairs(list) do all[#all + 1] = v end
        end
        return all
      end
      local expect = {
        create = join(request, client, { "--journal" }),
        status = join(client, { "ID" }),
        wait = join(client, { "ID", "--interval", "--timeout" }),
        download = join(client, { "ID", "PATH" }),
        generate = join(request, client, { "--out", "--interval", "--timeout", "--journal" }),
        models = { "--json" },
        validate = join(request, { "--json" }),
        resume = join(client, { "--journal", "--dir", "--interval", "--timeout" }),
      }
      for cmd, flags in pairs(expect) do
        for _, h in ipairs { "--help", "-h" } do
          local r = run { cmd, h }
          assert.equals(0, r.code, cmd .. " " .. h)
          assert.equals("", r.err)
          assert.matches("usage: starvideos " .. cmd, r.out, 1, true)
          for _, f in ipairs(flags) do
            assert.matches(f, r.out, 1, true)
          end
        end
      end
      local r = run { "help", "wait" }
      assert.equals(0, r.code)
      assert.matches("usage: starvideos wait ID", r.out, 1, true)
      -- a command that reads a journal does not say it appends to it
      for _, cmd in ipairs { "resume", "pending", "list", "keep" } do
        local line = run({ cmd, "--help" }).out:match("\n  %-%-journal PATH +([^\n]+)")
        assert.truthy(line, cmd)
        assert.is_nil(line:find("append", 1, true), cmd .. ": " .. line)
      end
      assert.matches("--journal PATH +the JSON%-lines journal whose tasks to wait for and download",
        run({ "resume", "--help" }).out)
    end)

    it("shows every command's usage, the exit statuses and an example, the help in the house's words",
      function()
      local top = run { "--help" }
      assert.matches("^usage: starvideos <command> %[options%]\n", top.out)
      assert.matches("\nexit status: 0 success, 1 a failed task", top.out)
      for _, cmd in ipairs(require("starvideos.cli.args").ORDER) do
        local r = run { cmd, "--help" }
        assert.equals(0, r.code, cmd)
        assert.matches("^usage: starvideos " .. cmd .. " [^\n]*%[options%]\n", r.out)
        assert.matches("\n  " .. cmd .. " +%S", top.out) -- (listed at the top, with its summary)
        assert.matches("\nexit status: 0 success, 1 a failed task or an API error, 2 bad usage", r.out, 1, true)
        assert.matches("\nexample:\n  starvideos " .. cmd .. " [^\n]+\n$", r.out)
        assert.matches("\n  %-h, %-%-help +show this help and exit\n", r.out)
      end
    end)

    it("shows help even with other, wrong arguments around it", function()
      local r = run { "create", "--duration", "abc", "--help" }
      assert.equals(0, r.code)
      assert.matches("usage: starvideos create", r.out, 1, true)
    end)

    it("dispatches the emulator", function()
      local r = run { "emulator", "--help" }
      assert.equals(0, r.code)
      assert.matches("usage: starvideos emulator", r.out, 1, true)
    end)
  end)

  describe("bad usage", function()
    -- One clear line, then the hint; nothing on stdout; exit 2; no request.
    local function usage(args, first_line, e)
      local r = run(args, e or env())
      assert.equals(2, r.code, r.err)
      assert.equals("", r.out)
      local l = lines(r.err)
      assert.equals(2, #l, r.err)
      if first_line then assert.equals(first_line, l[1]) end
      assert.matches("^Run 'starvideos.* %-%-help' for usage%.$", l[2])
      return l[1]
    end

    it("refuses an unknown command", function()
      usage({ "frobnicate" }, 'starvideos: unknown command "frobnicate"')
      assert.same({}, emu:requests())
    end)

    it("refuses an unknown flag, naming it", function()
      usage({ "create", "--colour", "red" }, "starvideos create: unknown option --colour")
      usage({ "status", "x", "--colour=red" }, "starvideos status: unknown option --colour")
      usage({ "models", "--out", "x" }, "starvideos models: unknown option --out")
      assert.same({}, emu:requests())
    end)

    it("refuses a non-number where a number is expected, in both flag forms", function()
      usage({ "create", "--duration", "abc" }, 'starvideos create: --duration expects a number, got "abc"')
      usage({ "create", "--duration=abc" }, 'starvideos create: --duration expects a number, got "abc"')
      usage({ "generate", "--duration", "5.5" }, 'starvideos generate: --duration expects a whole number, got "5.5"')
      usage({ "wait", "x", "--interval", "soon" }, 'starvideos wait: --interval expects a number, got "soon"')
      usage({ "wait", "x", "--timeout", "0" }, 'starvideos wait: --timeout expects a number of seconds > 0, got "0"')
      assert.same({}, emu:requests())
    end)

    it("refuses missing arguments and values", function()
      usage({ "status" }, "starvideos status: missing ID")
      usage({ "download", "x" }, "starvideos download: missing PATH")
      usage({ "wait", "x", "--interval" }, "starvideos wait: --interval expects a value (S)")
      usage({ "status", "a", "b" }, "starvideos status: too many arguments: it takes ID")
      usage({ "resume", "--dir", "." },
        "starvideos resume: --journal PATH or --store URL is required (or set STARVIDEOS_STORE)")
      usage({ "models", "--json=yes" }, "starvideos models: --json takes no value")
      assert.same({}, emu:requests())
    end)

    it("refuses a missing API key with one clear line, before any request", function()
      local e = { STARVIDEOS_BASE_URL = emu.url }
      local dir = helper.tmpdir()
      local journal = dir .. "/j.jsonl"
      assert(io.open(journal, "w")):close()
      for _, args in ipairs {
        { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" },
        { "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--out", dir .. "/x.mp4" },
        { "status", "video_1" }, { "wait", "video_1" }, { "download", "video_1", dir .. "/x.mp4" },
        { "resume", "--journal", journal, "--dir", dir },
      } do
        local line = usage(args, nil, e)
        assert.matches("^starvideos " .. args[1] .. ": no API key: set STARVIDEOS_API_KEY or use "
          .. "%-%-api%-key%-file PATH$", line)
      end
      assert.same({}, emu:requests())
    end)

    it("never takes the key from an argument, nor echoes it", function()
      local line = usage({ "status", "x", "--api-key=" .. KEY .. "-typed" }, nil, { STARVIDEOS_BASE_URL = emu.url })
      assert.matches("--api-key is not accepted", line, 1, true)
      assert.not_matches(KEY, line, 1, true)
      assert.same({}, emu:requests())
    end)

    it("refuses a base URL that is not http(s)", function()
      usage({ "status", "x", "--base-url", "ftp://example.com" },
        'starvideos status: --base-url: expected http(s)://host[:port][/path], found the scheme "ftp" '
          .. "(only http and https)")
    end)
  end)

  describe("invalid parameters", function()
    it("exit 2 naming the field, and nothing is sent", function()
      local cases = {
        { { "--model", "videos", "--prompt", "a cat", "--duration", "99" }, "--duration: expected" },
        { { "--model", "videos", "--prompt", "a cat", "--duration", "5", "--ref-image", "ftp://x/cat.png" },
          '--ref-image #1: expected an http(s) URL, got "ftp://x/cat.png"' },
        { { "--model", "videos", "--prompt", "a cat", "--duration", "5", "--ref-image", "./no-cat.png" },
          "--ref-image #1: ./no-cat.png cannot be read: No such file or directory" },
        { { "--model", "videos", "--prompt", "a cat", "--duration", "5", "--first-image", "https://x/a.png" },
          "--last-image: required together with first_image" },
        { { "--model", "nope", "--prompt", "a cat", "--duration", "5" }, "--model: expected" },
        { { "--model", "starvideos_o3", "--prompt", "a cat", "--resolution", "720p" }, "resolution" },
      }
      for _, cmd in ipairs { "create", "generate" } do
        for _, c in ipairs(cases) do
          local args = { cmd }
          for _, a in ipairs(c[1]) do args[#args + 1] = a end
          local r = run(args, env())
          assert.equals(2, r.code, r.err)
          assert.equals("", r.out)
          assert.matches("^starvideos " .. cmd .. ": ", r.err)
          assert.matches(c[2], lines(r.err)[1], 1, true)
        end
      end
      assert.same({}, emu:requests())
    end)
  end)

  describe("validate", function()
    it("accepts a valid request without a key or the network", function()
      local r = run({ "validate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
        "--ref-image", "https://x/1.png" }, { STARVIDEOS_BASE_URL = emu.url })
      assert.equals(0, r.code, r.err)
      assert.matches("valid", r.out)
      r = run({ "validate", "--model", "videos_fast", "--prompt", "a cat", "--duration", "4", "--json" })
      assert.equals(0, r.code, r.err)
      assert.same({ ok = true, warnings = {} }, cjson.decode(r.out))
      assert.same({}, emu:requests())
    end)

    it("refuses an invalid request with exit 2, naming the field", function()
      local r = run { "validate", "--model", "videos", "--prompt", "a cat", "--duration", "99" }
      assert.equals(2, r.code)
      assert.matches("^starvideos validate: %-%-duration: expected", r.err)
      r = run { "validate", "--model", "videos_fast", "--prompt", "a cat", "--duration", "5", "--json",
        "--ref-image", "https://x/1", "--ref-image", "https://x/2", "--ref-image", "https://x/3",
        "--ref-image", "https://x/4", "--ref-image", "https://x/5" }
      assert.equals(2, r.code)
      local res = assert(cjson.decode(r.out), r.out)
      assert.is_false(res.ok)
      assert.equals("invalid_request", res.error.kind)
      assert.equals("referenceImages", res.error.field)
    end)
  end)

  describe("models", function()
    it("--json lists the five models", function()
      local r = run { "models", "--json" }
      assert.equals(0, r.code, r.err)
      local models = assert(cjson.decode(r.out), r.out)
      local names = {}
      for name, m in pairs(models) do
        names[#names + 1] = name
        assert.equals(name, m.name)
        assert.is_table(m.ratios)
        assert.is_table(m.duration)
      end
      table.sort(names)
      assert.same({ "starvideos_o3", "videos", "videos_fast", "videos_stable", "videos_stable_fast" }, names)
      assert.matches('"resolutions": []', r.out, 1, true) -- an empty list stays a list
      assert.equals(3, models.starvideos_o3.duration.min)
      assert.equals(1500, models.videos_fast.prompt_max)
    end)

    it("prints a readable table without --json", function()
      local r = run { "models" }
      assert.equals(0, r.code)
      for _, name in ipairs { "starvideos_o3", "videos", "videos_fast", "videos_stable", "videos_stable_fast" } do
        assert.matches("\n?" .. name .. "  %(POST ", r.out)
      end
      assert.matches("duration    4-15 s, required", r.out, 1, true)
    end)
  end)

  describe("create", function()
    it("--json returns a task the server knows, after sending the right body", function()
      local task = create { "--ratio", "9:16", "--ref-image", "https://x/3.png", "--ref-image=https://x/1.png",
        "--ref-image", "https://x/2.png", "--ref-video", "https://x/v.mp4", "--preflight", "off" } -- (not served)
      assert.equals("queued", task.status)
      local known = {}
      for _, t in ipairs(emu:tasks()) do known[t.id] = t end
      assert.is_table(known[task.id])
      local sent = posts()
      assert.equals(1, #sent)
      assert.equals("/v1/videos/videos", sent[1].path)
      assert.equals("Bearer " .. KEY, sent[1].headers.authorization)
      assert.same({ model = "videos", prompt = "a cat surfing", duration = 5, ratio = "9:16",
        referenceImages = { "https://x/3.png", "https://x/1.png", "https://x/2.png" },
        referenceVideos = { "https://x/v.mp4" } }, cjson.decode(sent[1].body))
    end)

    it("sends frame mode to the O3 endpoint", function()
      run({ "create", "--model", "starvideos_o3", "--prompt", "a dog", "--first-image", "https://x/a.png",
        "--last-image", "https://x/b.png", "--preflight", "off" }, env())
      local sent = posts()
      assert.equals(1, #sent)
      assert.equals("/v1/starvideos/videos", sent[1].path)
      assert.same({ model = "starvideos_o3", prompt = "a dog", first_image = "https://x/a.png",
        last_image = "https://x/b.png" }, cjson.decode(sent[1].body))
    end)

    it("prints the id and the status for a person", function()
      local r = run({ "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" }, env())
      assert.equals(0, r.code, r.err)
      assert.matches("^id: +video_%S+\n", r.out)
      assert.matches("\nstatus: +queued\n", r.out)
    end)

    it("records the task in --journal", function()
      local journal = helper.tmpdir() .. "/tasks.jsonl"
      local task = create { "--journal", journal }
      local recs = lines(helper.read_file(journal))
      assert.equals(2, #recs)
      local pending, rec = cjson.decode(recs[1]), cjson.decode(recs[2])
      assert.equals("pending", pending.event)
      assert.equals("created", rec.event)
      assert.equals(task.id, rec.id)
      assert.equals(pending["local"], rec["local"])
    end)

    it("reports an API error with exit 1", function()
      emu:fault { status = 500, path = "/v1/videos/videos" }
      local r = run({ "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" }, env())
      assert.equals(1, r.code)
      assert.matches("^starvideos create: server: ", r.err)
    end)
  end)

  describe("status", function()
    it("prints id, status and, once completed, video_url", function()
      emu:config { queued = 3 } -- (queued still when the next child asks, under load too)
      local task = create()
      local r = run({ "status", task.id }, env())
      assert.equals(0, r.code, r.err)
      assert.matches("^id: +" .. task.id .. "\n", r.out)
      assert.matches("\nstatus: +queued\n", r.out)
      run({ "wait", task.id, "--interval", "0.1" }, env())
      r = run({ "status", task.id, "--json" }, env())
      assert.equals(0, r.code, r.err)
      local t = assert(cjson.decode(r.out))
      assert.equals("completed", t.status)
      assert.matches("^http://", t.video_url)
      assert.not_matches("userdata", r.out)
      r = run({ "status", task.id }, env())
      assert.matches("\nvideo_url: +http://", r.out)
    end)

    it("exits 1 on an unknown task or a wrong key", function()
      local r = run({ "status", "video_nope" }, env())
      assert.equals(1, r.code)
      assert.matches("^starvideos status: not_found: ", r.err)
      r = run({ "status", "video_nope" }, env { STARVIDEOS_API_KEY = "wrong-key" })
      assert.equals(1, r.code)
      assert.matches("^starvideos status: auth: ", r.err)
    end)
  end)

  describe("wait", function()
    it("waits to completion with quiet plain lines off a terminal", function()
      emu:config { queued = 3, processing = 1.5 } -- (each state seen, under load too)
      local task = create()
      local r = run({ "wait", task.id, "--interval", "0.1", "--timeout", "20" }, env())
      assert.equals(0, r.code, r.err)
      assert.matches("^status: queued\n", r.out)
      assert.matches("\nstatus: processing\n", r.out, 1, true)
      assert.matches("\nvideo_url: +http://", r.out)
      assert.not_matches("\r", r.out, 1, true)
      r = run({ "wait", task.id, "--interval=0.1", "--json" }, env())
      assert.equals(0, r.code, r.err)
      assert.equals("completed", cjson.decode(r.out).status)
    end)

    it("says the time left, from the samples of its journal", function()
      -- five tasks of the model that took 100 s (each within 1 s): about 100 s left (2 min) at first
      local journal = helper.tmpdir() .. "/eta.jsonl"
      local f = assert(io.open(journal, "w"))
      for i = 1, 5 do
        f:write(string.format('{"event":"created","id":"t%d","model":"videos","duration":5,"time":1}\n'
          .. '{"event":"status","id":"t%d","status":"completed","took":100,"within":1,"time":2}\n', i, i))
      end
      f:close()
      emu:config { queued = 1.5 } -- processing from 1.5 s: the journal was read by then
      local task = create()
      local r = run({ "wait", task.id, "--interval", "0.1", "--journal", journal }, env())
      assert.equals(0, r.code, r.err)
      assert.matches("status: processing (about 2 min left)\n", r.out, 1, true)
      assert.matches("\nstatus: completed\n", r.out, 1, true) -- done: no time left to tell
    end)

    it("exits 1 on a failed task, and --json still prints the task (in the error document)", function()
      emu:config { outcome = "failed" }
      local task = create()
      local r = run({ "wait", task.id, "--interval", "0.1", "--json" }, env())
      assert.equals(1, r.code)
      assert.matches("^starvideos wait: task_failed: task " .. task.id .. " failed: ", r.err)
      local t = assert(cjson.decode(r.out), r.out).task
      assert.equals(task.id, t.id)
      assert.equals("failed", t.status)
      r = run({ "status", task.id }, env())
      assert.equals(1, r.code)
      assert.matches("\nerror: +Reference image", r.out)
    end)

    it("exits 1 at --timeout, keeping the task id", function()
      emu:config { queued = 30 }
      local task = create()
      local r = run({ "wait", task.id, "--interval", "0.1", "--timeout", "0.4", "--json" }, env())
      assert.equals(1, r.code)
      assert.matches("^starvideos wait: timeout: ", r.err)
      assert.matches("starvideos wait " .. task.id, r.err, 1, true)
      local doc = assert(cjson.decode(r.out), r.out)
      assert.equals(task.id, doc.error.id)
      assert.equals(task.id, doc.task.id)
    end)
  end)

  describe("download", function()
    it("writes the video to PATH and says where", function()
      local task = completed()
      local path = helper.tmpdir() .. "/cat.mp4"
      local r = run({ "download", task.id, path }, env())
      assert.equals(0, r.code, r.err)
      assert.equals(SAMPLE, helper.read_video(path))
      assert.is_nil(helper.read_file(path .. ".part"))
      local size = helper.file_size(path) -- (the saved file's: the served video and its mark)
      assert.equals(string.format("saved %s (%.1f KiB, %d bytes)\n", path, size / 1024, size), r.out)
    end)

    it("names the file <id>.mp4 in a directory, and --json says where", function()
      local task = completed()
      local dir = helper.tmpdir()
      local r = run({ "download", task.id, dir, "--json" }, env())
      assert.equals(0, r.code, r.err)
      local res = assert(cjson.decode(r.out))
      assert.equals(dir .. "/" .. task.id .. ".mp4", res.path)
      assert.equals(helper.file_size(res.path), res.bytes) -- (the saved file's: the served video and its mark)
      assert.equals(SAMPLE, helper.read_video(res.path))
    end)

    it("exits 1 for a task that is not completed", function()
      emu:config { queued = 5 } -- (unfinished when the next child asks, under load too)
      local task = create()
      local path = helper.tmpdir() .. "/cat.mp4"
      local r = run({ "download", task.id, path }, env())
      assert.equals(1, r.code)
      assert.matches("not completed", r.err, 1, true)
      assert.is_nil(helper.read_file(path))
    end)
  end)

  describe("generate", function()
    it("--out writes a playable file and prints its path", function()
      local path = helper.tmpdir() .. "/gen.mp4"
      local r = run({ "generate", "--model", "videos_fast", "--prompt", "a cat", "--duration", "4",
        "--interval", "0.1", "--out", path }, env())
      assert.equals(0, r.code, r.err)
      local data = assert(helper.read_video(path))
      assert.equals("ftyp", data:sub(5, 8))
      assert.equals(require("starvideos.emulator.files").video(4), data) -- the task's 4 s
      assert.matches("^id: video_", r.out)
      assert.matches("\nstatus: completed\n", r.out, 1, true)
      assert.matches("\nsaved " .. path .. " (", r.out, 1, true)
      assert.not_matches("\r", r.out, 1, true)
      assert.equals(1, #posts())
    end)

    it("when --out's folder goes while the task is polled: exit 1, naming the command that fetches the video",
      function()
        emu:config { queued = 1 }
        local dir = helper.tmpdir()
        local path = dir .. "/gone/gen.mp4"
        assert(os.execute("mkdir " .. q(dir .. "/gone")))
        local proc = background({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
          "--interval", "0.1", "--out", path }, env())
        until_true(function() return #posts() == 1 end)
        assert(os.execute("rm -r " .. q(dir .. "/gone")))
        local r = proc:stop()
        assert.equal(1, r.code, r.err)
        local id = emu:requests()[2].path:match("^/v1/result/(.+)$")
        assert.equal("starvideos generate: io: cannot write " .. path .. ".part: No such file or directory; task " .. id
          .. " is completed: `starvideos download " .. id .. " " .. path .. "` fetches its video\n", r.err)
        assert.equal(1, #posts())
      end)

    it("--json prints the completed task with its path", function()
      local path = helper.tmpdir() .. "/gen.mp4"
      local r = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--interval", "0.1",
        "--out", path, "--json" }, env())
      assert.equals(0, r.code, r.err)
      local task = assert(cjson.decode(r.out), r.out)
      assert.equals("completed", task.status)
      assert.equals(path, task.path)
    end)

    it("exits 1 on a failed task, --json still printing it (in the error document)", function()
      emu:config { outcome = "failed" }
      local path = helper.tmpdir() .. "/gen.mp4"
      local r = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--interval", "0.1",
        "--out", path, "--json" }, env())
      assert.equals(1, r.code)
      assert.matches("^starvideos generate: task_failed: ", r.err)
      assert.equals("failed", assert(cjson.decode(r.out), r.out).task.status)
      assert.is_nil(helper.read_file(path))
    end)
  end)

  -- A download cut short (kill -9, Ctrl-C) leaves its .part, and `download ID
  -- PATH` goes on from it.  The video is 3 MB; the emulator drops the first
  -- transfer after CUT bytes and holds the next one for 30 s, so that the
  -- command is surely inside its download, with CUT bytes in its .part, when
  -- the signal comes.
  describe("a download cut short", function()
    local SIZE, CUT, OVERLAP = 3000000, 1000000, 65536

    -- The id of the first task polled since the last reset, or nil.
    local function polled_id()
      for _, r in ipairs(emu:requests()) do
        local id = r.path:match("^/v1/result/([^/?]+)")
        if id then return id end
      end
    end

    local function hold_downloads()
      emu:config { video_size = SIZE }
      emu:fault { { path = "/videos/", drop_after_bytes = CUT }, { path = "/videos/", delay = 30 } }
    end

    -- Wait until the command sits in its second transfer with CUT bytes in the .part.
    local function inside_download(path)
      until_true(function() return #emu:video_ranges() == 2 and helper.file_size(path .. ".part") == CUT end)
    end

    -- The command that goes on (as printed: "starvideos download ID PATH",
    -- "starvideos wait ID --out PATH ..."), run: it asks for the rest only, and
    -- the file is the video (as a fresh download of it gives it).
    local function goes_on(command, id, path)
      emu:clear_faults()
      emu:clear()
      local r = run_printed(command, env())
      assert.equal(0, r.code, r.err)
      assert.same({ "bytes=" .. (CUT - OVERLAP) .. "-" }, emu:video_ranges())
      assert.is_nil(helper.read_file(path .. ".part"))
      local whole = path .. ".whole.mp4"
      assert.equal(0, run({ "download", id, whole }, env()).code)
      assert.equal(SIZE, helper.video_size(path))
      assert.is_true(helper.read_file(path) == helper.read_file(whole), "the file is not the video")
    end

    -- generate --out in the background, Ctrl-C once when() returned: what it
    -- said (exit 130), the task's id, the out path.
    local function interrupted_generate(when)
      local path = helper.tmpdir() .. "/gen.mp4"
      local proc = background({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
        "--interval", "0.1", "--out", path }, env())
      when(path)
      local r = proc:stop("INT")
      assert.equal(130, r.code, r.err)
      return r, polled_id(), path
    end

    it("after kill -9, download ID PATH goes on from the .part with Range", function()
      local task = completed()
      local path = helper.tmpdir() .. "/cut.mp4"
      hold_downloads()
      local proc = background({ "download", task.id, path }, env())
      inside_download(path)
      assert.equal(137, proc:stop("KILL").code)
      local said = proc:err_line("stopped by a signal")
      assert.equal("starvideos download: stopped by a signal; task " .. task.id .. " is completed: "
        .. "`starvideos download " .. task.id .. " " .. path .. "` fetches its video", said)
      goes_on("starvideos download " .. task.id .. " " .. path, task.id, path)
    end)

    it("Ctrl-C in generate's download names `starvideos wait ID --out PATH`, which goes on from the .part", function()
      hold_downloads()
      local r, id, path = interrupted_generate(inside_download)
      assert.equal(1, #posts())
      local command = "starvideos wait " .. id .. " --out " .. path .. " --interval 0.1"
      assert.equal("starvideos generate: interrupted; task " .. id .. " is completed: `" .. command
        .. "` fetches its video", lines(r.err)[1])
      goes_on(command, id, path)
      assert.equal(0, #posts()) -- the download created nothing
    end)

    it("Ctrl-C in generate before the task completed says `wait ID --out PATH` picks it up", function()
      emu:config { queued = 30 }
      local r, id, path = interrupted_generate(function() until_true(polled_id) end)
      assert.equal("starvideos generate: interrupted; task " .. id .. " is still running on the server: "
        .. "`starvideos wait " .. id .. " --out " .. path .. " --interval 0.1` picks it up again", lines(r.err)[1])
    end)
  end)

  describe("wait --out", function()
    it("waits for the task, then downloads its video to PATH and says where", function()
      local task = create()
      local path = helper.tmpdir() .. "/waited.mp4"
      local r = run({ "wait", task.id, "--interval", "0.1", "--out", path }, env())
      assert.equals(0, r.code, r.err)
      assert.equals("", r.err)
      assert.equals(SAMPLE, helper.read_video(path))
      assert.matches("\nstatus: +completed\n", r.out)
      assert.matches(string.format("\nsaved %s (%.1f KiB, ", path, helper.file_size(path) / 1024), r.out, 1, true)
      -- --json: the task with its path; a directory gets <id>.mp4, as download's PATH
      local dir = helper.tmpdir()
      r = run({ "wait", task.id, "--interval", "0.1", "--out", dir, "--json" }, env())
      assert.equals(0, r.code, r.err)
      local t = assert(cjson.decode(r.out), r.out)
      assert.equals("completed", t.status)
      assert.equals(dir .. "/" .. task.id .. ".mp4", t.path)
      assert.equals(SAMPLE, helper.read_video(t.path))
      assert.equals(1, #posts())
    end)

    it("records the download in --journal, so that resume has nothing left", function()
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      local task = create { "--journal", journal }
      local r = run({ "wait", task.id, "--interval", "0.1", "--out", dir .. "/a.mp4", "--journal", journal }, env())
      assert.equals(0, r.code, r.err)
      assert.matches('"event":"downloaded"', helper.read_file(journal), 1, true)
      r = run({ "resume", "--journal", journal, "--dir", dir, "--json" }, env())
      assert.equals(0, r.code, r.err)
      assert.equals("[]", r.out:match("^%s*(.-)%s*$"))
      assert.is_nil(r.err:find("unreadable", 1, true), r.err)
      -- a line it cannot read: counted and named as FILE:LINE, as list and pending name it
      local n = select(2, helper.read_file(journal):gsub("\n", "")) + 1
      local f = assert(io.open(journal, "a"))
      f:write('{"event":"crea\n')
      f:close()
      r = run({ "resume", "--journal", journal, "--dir", dir, "--json" }, env())
      assert.equals(0, r.code, r.err)
      assert.equals("[]", r.out:match("^%s*(.-)%s*$"))
      assert.matches(string.format("starvideos resume: warning: 1 unreadable line in %s (%s:%d): skipped\n", journal,
        journal, n), r.err, 1, true)
    end)

    it("refuses a PATH whose folder does not exist (exit 2) before asking the service anything", function()
      local dir = helper.tmpdir()
      local r = run({ "wait", "video_1", "--out", dir .. "/nope/a.mp4" }, env())
      assert.equals(2, r.code)
      assert.equals("starvideos wait: --out \"" .. dir .. "/nope/a.mp4\": the folder \"" .. dir
        .. "/nope\" does not exist (nothing was waited for)", lines(r.err)[1])
      assert.same({}, emu:requests())
    end)
  end)

  -- The next step a stopped command prints is a command that works as printed:
  -- run by a shell, as a person pastes it, it writes the file the stopped one
  -- was to write, creating nothing.

  describe("on a terminal", function()
    local it_tty = has_script() and it or pending

    it_tty("shows a live status line and a \\r progress bar", function()
      emu:config { processing = 1 } -- (a poll sees it processing, under load too)
      local path = helper.tmpdir() .. "/tty.mp4"
      local r = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--interval", "0.1",
        "--out", path }, env(), { tty = true })
      assert.equals(0, r.code, r.out)
      assert.matches("\r" .. ("video_%S+  processing  0:0%d"), r.out)
      assert.matches("\r[########################] 100%  18.8 KiB / 18.8 KiB", r.out, 1, true)
      assert.matches("saved " .. path, r.out, 1, true)
      assert.equals(SAMPLE, helper.read_video(path))
    end)

    it_tty("counts resume's tasks by status on the live line, then shows each download's bar", function()
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      emu:config { processing = 3 } -- (both unfinished when resume looks, under load too)
      local a = create { "--journal", journal }
      local b = create { "--journal", journal }
      local r = run({ "resume", "--journal", journal, "--dir", dir, "--interval", "0.1" }, env(), { tty = true })
      assert.equals(0, r.code, r.out)
      assert.matches("\r2 tasks: [%w ,]*%d processing[%w ,]*  0:0%d", r.out)
      for _, t in ipairs { a, b } do
        assert.matches("\r" .. t.id .. "  [", r.out, 1, true)
        assert.equals(SAMPLE, helper.read_video(dir .. "/" .. t.id .. ".mp4"))
      end
      assert.matches("2 tasks: 2 downloaded, 0 not", r.out, 1, true)
    end)

    it_tty("redraws the download bar for a bigger file", function()
      local task = completed()
      emu:config { video_size = 3 * 1024 * 1024 }
      local path = helper.tmpdir() .. "/big.mp4"
      local r = run({ "download", task.id, path }, env(), { tty = true })
      assert.equals(0, r.code, r.out)
      assert.matches("\r%[[#.]+%] +%d+%%  [%d.]+ %a?i?B / 3%.0 MiB", r.out)
      assert.matches("100%  3.0 MiB / 3.0 MiB", r.out, 1, true)
      assert.equals(3 * 1024 * 1024, helper.video_size(path))
    end)
  end)
end)
