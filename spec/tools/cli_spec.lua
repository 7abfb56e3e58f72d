-- The command line, run as a child process against the local emulator: exit
-- codes, what reached the server, the files on disk and what a person sees.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"

local BIN = helper.root .. "/bin/starvideos"
local SAMPLE = require("starvideos.emulator.files").video(5)
local KEY = "sk-cli-spec-7f3a9c2e" -- distinctive: no output may ever contain it

local q = helper.shell_quote

local function lines(text)
  local list = {}
  for l in (text or ""):gmatch("[^\n]+") do list[#list + 1] = l end
  return list
end

-- cmd (a shell command line) run with stdin from opts.stdin (text) or
-- /dev/null: { out =, err =, code = }, the API key in neither.
local function run_command(cmd, opts)
  local errfile = os.tmpname()
  local infile
  if opts.stdin then
    infile = os.tmpname()
    local f = assert(io.open(infile, "w"))
    f:write(opts.stdin)
    f:close()
  end
  if opts.tty then
    cmd = "script -qec " .. q(cmd) .. " /dev/null"
  end
  cmd = cmd .. " <" .. q(infile or "/dev/null") .. " 2>" .. q(errfile)
  local out, _, code = helper.capture(cmd)
  local err = helper.read_file(errfile) or ""
  os.remove(errfile)
  if infile then os.remove(infile) end
  -- key hygiene, for every single run
  assert(not out:find(KEY, 1, true), "the API key appeared on stdout of: " .. cmd)
  assert(not err:find(KEY, 1, true), "the API key appeared on stderr of: " .. cmd)
  return { out = out, err = err, code = code }
end

-- "env -u STARVIDEOS_API_KEY -u STARVIDEOS_BASE_URL K=V ...": the caller's
-- STARVIDEOS_* cleared, then env's variables set.
local function env_prefix(env)
  local parts = { "env", "-u", "STARVIDEOS_API_KEY", "-u", "STARVIDEOS_BASE_URL" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  return table.concat(parts, " ")
end

-- run(args, env, opts) -> { out =, err =, code = }.  env: variables to set (the
-- caller's STARVIDEOS_* are always cleared first); opts.stdin: text for stdin;
-- opts.tty: run under script(1), so that stdout is a terminal (err is then merged);
-- opts.lua: the interpreter (default lua5.4).
local function run(args, env, opts)
  opts = opts or {}
  local parts = { env_prefix(env) }
  parts[#parts + 1] = opts.lua or q(helper.lua) -- the VM running the specs, unless a spec picks one
  parts[#parts + 1] = q(BIN)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return run_command(table.concat(parts, " "), opts)
end

-- A command the command line printed for a person ("starvideos wait ..."),
-- run by a shell as they would paste it, `starvideos` on the PATH being
-- bin/starvideos under the VM of the specs: what run() returns.
local function run_printed(command, env)
  local dir = helper.tmpdir()
  helper.write_file(dir .. "/starvideos", "#!/bin/sh\nexec " .. q(helper.lua) .. " " .. q(BIN) .. ' "$@"\n')
  assert(helper.execute("chmod +x " .. q(dir .. "/starvideos")))
  return run_command(env_prefix(env) .. " PATH=" .. q(dir) .. ':"$PATH" sh -c ' .. q(command), {})
end

local function until_true(f)
  if not helper.wait_until(f, 10) then error("gave up waiting") end
end

-- The command line in the background: its pid, :stop(signal), which sends
-- the signal (none: nil) and returns what run() does once the command ended,
-- and :err_line(text), the line of its stderr with text, once it is there (a
-- killed command's line comes from its watcher, after it ended).
local function background(args, env, lua)
  local dir = helper.tmpdir()
  local parts = { env_prefix(env) }
  parts[#parts + 1] = q(lua or helper.lua)
  parts[#parts + 1] = q(BIN)
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local inner = "echo $$ >" .. q(dir .. "/pid") .. "; exec " .. table.concat(parts, " ")
  assert(os.execute("(sh -c " .. q(inner) .. " >" .. q(dir .. "/out") .. " 2>" .. q(dir .. "/err")
    .. " </dev/null; echo $? >" .. q(dir .. "/rc") .. ") &"))
  until_true(function() return (helper.read_file(dir .. "/pid") or ""):match("%d+\n") end)
  local proc = { pid = helper.read_file(dir .. "/pid"):match("%d+") }
  function proc.stop(_, signal)
    if signal then os.execute("kill -" .. signal .. " " .. proc.pid) end
    until_true(function() return (helper.read_file(dir .. "/rc") or ""):match("%d") end)
    return { code = tonumber(helper.read_file(dir .. "/rc"):match("%d+")), out = helper.read_file(dir .. "/out"),
      err = helper.read_file(dir .. "/err") }
  end
  function proc.err_line(_, text)
    local found
    until_true(function()
      for l in (helper.read_file(dir .. "/err") or ""):gmatch("[^\n]+") do
        if l:find(text, 1, true) then found = l end
      end
      return found
    end)
    return found
  end
  return proc
end

local function has_command(name)
  local p = io.popen("command -v " .. name)
  local found = p:read("*a")
  p:close()
  return found ~= ""
end

local function has_script() return has_command("script") end

describe("the starvideos command line", function()
  local emu

  local function env(extra)
    local e = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  local function posts()
    local list = {}
    for _, r in ipairs(emu:requests()) do
      if r.method == "POST" then list[#list + 1] = r end
    end
    return list
  end

  -- A task created through the command line: its decoded JSON.
  local function create(extra_args, e)
    local args = { "create", "--model", "videos", "--prompt", "a cat surfing", "--duration", "5", "--json" }
    for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
    local r = run(args, e or env())
    assert.equals(0, r.code, r.err)
    local task = assert(cjson.decode(r.out), r.out)
    assert.is_string(task.id)
    return task
  end

  local function completed(extra_args)
    local task = create(extra_args)
    local r = run({ "wait", task.id, "--interval", "0.1" }, env())
    assert.equals(0, r.code, r.err)
    return task
  end

  shared_emulator({ key = KEY, queued = 0.2, processing = 0.2 }, function(e) emu = e end)

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
      usage({ "status", "a", "b" }, "starvideos status: expects 1 argument (ID), got 2")
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
      assert.same({ ok = true }, cjson.decode(r.out))
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
      assert.equals(SAMPLE, helper.read_file(path))
      assert.is_nil(helper.read_file(path .. ".part"))
      assert.equals("saved " .. path .. " (18.8 KiB, " .. #SAMPLE .. " bytes)\n", r.out)
    end)

    it("names the file <id>.mp4 in a directory, and --json says where", function()
      local task = completed()
      local dir = helper.tmpdir()
      local r = run({ "download", task.id, dir, "--json" }, env())
      assert.equals(0, r.code, r.err)
      local res = assert(cjson.decode(r.out))
      assert.equals(dir .. "/" .. task.id .. ".mp4", res.path)
      assert.equals(#SAMPLE, res.bytes)
      assert.equals(SAMPLE, helper.read_file(res.path))
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
      local data = assert(helper.read_file(path))
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
      assert.equal(SIZE, helper.file_size(path))
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
      assert.equals(SAMPLE, helper.read_file(path))
      assert.matches("\nstatus: +completed\n", r.out)
      assert.matches("\nsaved " .. path .. " (18.8 KiB, ", r.out, 1, true)
      -- --json: the task with its path; a directory gets <id>.mp4, as download's PATH
      local dir = helper.tmpdir()
      r = run({ "wait", task.id, "--interval", "0.1", "--out", dir, "--json" }, env())
      assert.equals(0, r.code, r.err)
      local t = assert(cjson.decode(r.out), r.out)
      assert.equals("completed", t.status)
      assert.equals(dir .. "/" .. task.id .. ".mp4", t.path)
      assert.equals(SAMPLE, helper.read_file(t.path))
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
  describe("how to go on after Ctrl-C, SIGTERM, kill -9 or a timeout", function()
    -- the id of the first task polled since the last reset
    local function polled_task()
      local id
      until_true(function()
        for _, r in ipairs(emu:requests()) do id = id or r.path:match("^/v1/result/([^/?]+)") end
        return id
      end)
      return id
    end

    local function works_as_printed(line, path, env_vars, journal)
      local command = assert(line:match("`(starvideos [^`]+)`"), line)
      local creates = #posts()
      local r = run_printed(command, env_vars)
      assert.equals(0, r.code, command .. "\n" .. r.err)
      assert.equals(SAMPLE, helper.read_file(path))
      assert.equals(creates, #posts())
      if journal then assert.matches('"event":"downloaded"', helper.read_file(journal), 1, true) end
    end

    for _, case in ipairs { { "INT", 130, "interrupted" }, { "TERM", 143, "stopped by a signal" },
      { "KILL", 137, "stopped by a signal" } } do
      local signal, code, said = case[1], case[2], case[3]
      it("SIG" .. signal .. " in generate --out --journal --base-url: `starvideos wait ID --out PATH` with them, "
        .. "which works as printed", function()
        emu:config { queued = 1.5 }
        local dir = helper.tmpdir()
        local path, journal = dir .. "/a cat.mp4", dir .. "/tasks.jsonl"
        local key_only = { STARVIDEOS_API_KEY = KEY } -- the base URL is the flag's
        local proc = background({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
          "--interval", "0.1", "--out", path, "--journal", journal, "--base-url", emu.url }, key_only)
        local id = polled_task()
        assert.equals(code, proc:stop(signal).code)
        local line = proc:err_line(said)
        assert.equals("starvideos generate: " .. said .. "; task " .. id .. " is still running on the server: "
          .. "`starvideos wait " .. id .. " --out '" .. path .. "' --interval 0.1 --journal " .. journal
          .. " --base-url " .. emu.url .. "` picks it up again", line)
        works_as_printed(line, path, key_only, journal)
      end)
    end

    it("SIGTERM in wait ID --out PATH: the same command, which works as printed", function()
      -- (made before the command starts: queued long enough for a loaded machine to start it)
      emu:config { queued = 4 }
      local task = create()
      local path = helper.tmpdir() .. "/w.mp4"
      local proc = background({ "wait", task.id, "--interval", "0.1", "--out", path }, env())
      polled_task()
      assert.equals(143, proc:stop("TERM").code)
      local line = proc:err_line("stopped by a signal")
      assert.equals("starvideos wait: stopped by a signal; task " .. task.id .. " is still running on the server: "
        .. "`starvideos wait " .. task.id .. " --out " .. path .. " --interval 0.1` picks it up again", line)
      works_as_printed(line, path, env())
    end)

    it("a wait --out that timed out names the command with its --out, which works as printed", function()
      -- (made before the command starts: queued long enough for a loaded machine to start it)
      emu:config { queued = 4 }
      local task = create()
      local path = helper.tmpdir() .. "/t.mp4"
      local r = run({ "wait", task.id, "--interval", "0.1", "--timeout", "0.3", "--out", path }, env())
      assert.equals(1, r.code)
      assert.equals("task " .. task.id .. " is still running on the server: `starvideos wait " .. task.id .. " --out "
        .. path .. " --interval 0.1` picks it up again", lines(r.err)[2])
      works_as_printed(lines(r.err)[2], path, env())
    end)
  end)

  describe("the operator's flags", function()
    it("--extra JSON: its fields go with the request, as the unknown-field message says they would", function()
      -- a field the model does not take: the message names the flags, and --extra for API additions
      local r = run({ "validate", "--model", "starvideos_o3", "--prompt", "a cat", "--resolution", "720p" }, env())
      assert.equals(2, r.code)
      assert.matches("^starvideos validate: %-%-resolution: unknown field for starvideos_o3 %(it takes %-%-model, "
        .. "%-%-prompt, .*, %-%-extra; pass API additions in `%-%-extra JSON`%)$", lines(r.err)[1])
      local extra = { "--extra", '{"camera_motion": "dolly", "seed": 7}' }
      r = run({ "validate", "--model", "videos", "--prompt", "a cat", "--duration", "5", extra[1], extra[2] }, env())
      assert.equals(0, r.code, r.err)
      create(extra)
      local body = assert(cjson.decode(posts()[1].body))
      assert.equals("dolly", body.camera_motion)
      assert.equals(7, body.seed)
      assert.equals("a cat surfing", body.prompt)
      local path = helper.tmpdir() .. "/x.mp4"
      r = run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--interval", "0.1",
        "--out", path, extra[1], extra[2] }, env())
      assert.equals(0, r.code, r.err)
      assert.equals("dolly", cjson.decode(posts()[2].body).camera_motion)
    end)

    it("--extra: a text that is not one JSON object, or a checked field in it, is a usage error (exit 2)", function()
      for _, text in ipairs { "{bad", "[1, 2]", '"noir"', "7", "null", "" } do
        local r = run({ "create", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--extra", text },
          env())
        assert.equals(2, r.code, text)
        assert.matches("^starvideos create: %-%-extra expects a JSON object, e%.g%. '{\"seed\": 7}', got ",
          lines(r.err)[1])
      end
      local r = run({ "validate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
        "--extra", '{"duration": 8}' }, env())
      assert.equals(2, r.code)
      assert.equals("starvideos validate: --extra: duration is a checked field; give it with --duration, not in "
        .. "--extra", lines(r.err)[1])
      assert.same({}, emu:requests())
    end)

    it("--create-limit N/SECONDS: a create over it is refused, not sent; it needs a ledger", function()
      local journal = helper.tmpdir() .. "/tasks.jsonl"
      local limited = { "--journal", journal, "--create-limit", "2/3600" }
      create(limited)
      create(limited)
      local args = { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" }
      for _, a in ipairs(limited) do args[#args + 1] = a end
      local r = run(args, env())
      assert.equals(1, r.code)
      assert.matches("^starvideos create: rate_limited: %-%-create%-limit: 2 creates in the last 3600 s %(at most 2%)",
        r.err)
      args[1] = "generate"
      args[#args + 1] = "--json"
      r = run(args, env())
      assert.equals(1, r.code)
      local doc = assert(cjson.decode(r.out), r.out)
      assert.equals("rate_limited", doc.error.kind)
      assert.equals("create_limit", doc.error.field)
      assert.equals(2, #posts())
      for _, c in ipairs {
        { { "--create-limit", "2x3600", "--journal", journal }, '--create-limit expects N/SECONDS' },
        { { "--create-limit", "2/3600" }, "--create-limit needs --journal PATH or --store URL" },
        { { "--create-limit", "0/3600", "--journal", journal }, "--create-limit: N: a whole number of creates" },
        { { "--create-limit", "2/0", "--journal", journal }, "--create-limit: SECONDS: a number of seconds" },
      } do
        local a = { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" }
        for _, v in ipairs(c[1]) do a[#a + 1] = v end
        r = run(a, env())
        assert.equals(2, r.code, c[2])
        assert.equals(1, lines(r.err)[1]:find("starvideos create: " .. c[2], 1, true), r.err)
      end
      assert.equals(2, #posts())
    end)

    it("--log debug|info: the client's log lines on stderr; another level is a usage error", function()
      local task = completed()
      local r = run({ "status", task.id, "--log", "debug" }, env())
      assert.equals(0, r.code, r.err)
      assert.matches("request #1 GET /v1/result/" .. task.id, r.err, 1, true)
      r = run({ "status", task.id, "--log", "INFO" }, env())
      assert.equals(0, r.code, r.err)
      assert.is_nil(r.err:find("request #", 1, true))
      assert.equals("", run({ "status", task.id }, env()).err)
      r = run({ "status", task.id, "--log", "warn" }, env())
      assert.equals(2, r.code)
      assert.equals('starvideos status: --log expects debug or info, got "warn"', lines(r.err)[1])
    end)

    it("--proxy URL: the requests go to that proxy; a URL that is not http://host:port is a usage error", function()
      local proxy = helper.hostile() -- it logs what it is sent (and is no proxy: the status fails)
      finally(function() proxy:stop() end)
      local r = run({ "status", "video_1", "--proxy", "http://127.0.0.1:" .. proxy.port }, env())
      assert.equals(1, r.code)
      assert.equals(emu.url .. "/v1/result/video_1", proxy:requests()[1].path) -- a proxy's absolute form
      for _, url in ipairs { "http://127.0.0.1", "ftp://127.0.0.1:8080", "http://127.0.0.1:8080/x" } do
        r = run({ "status", "video_1", "--proxy", url }, env())
        assert.equals(2, r.code, url)
        assert.matches("^starvideos status: %-%-proxy: expected http", lines(r.err)[1])
      end
      assert.same({}, emu:requests())
    end)

    it("proxy credentials (--proxy, HTTP_PROXY, http_proxy): Basic on each request, decoded; in no output", function()
      local proxy = helper.hostile() -- it logs what it is sent (and is no proxy: the status fails)
      finally(function() proxy:stop() end)
      local want = "Basic " .. require("mime").b64("alice:p@ss:w0rd!") -- what curl decodes from the URL
      local url = "http://alice:p%40ss:w0rd!@127.0.0.1:" .. proxy.port
      for i, case in ipairs { { args = { "--proxy", url, "--log", "debug", "--json" } }, { env = { HTTP_PROXY = url } },
        { env = { http_proxy = url }, args = { "--log", "info" } } } do
        local args = { "status", "video_1" }
        for _, a in ipairs(case.args or {}) do args[#args + 1] = a end
        local r = run(args, env(case.env))
        assert.equals(1, r.code, r.err) -- the proxy's answer, not a usage error (2)
        local got = proxy:requests()
        assert.equals(i, #got)
        assert.equals(emu.url .. "/v1/result/video_1", got[i].path)
        assert.equals(want, got[i].headers["proxy-authorization"])
        for _, secret in ipairs { "p@ss", "p%40ss", "w0rd" } do
          assert.is_nil((r.out .. r.err):find(secret, 1, true), r.out .. r.err)
        end
      end
      assert.same({}, emu:requests())
    end)

    it("every flag is in its command's --help", function()
      for cmd, flags in pairs {
        create = { "--extra JSON", "--create-limit N/SECONDS", "--proxy URL", "--log debug|info" },
        generate = { "--extra JSON", "--create-limit N/SECONDS", "--proxy URL", "--log debug|info" },
        validate = { "--extra JSON" },
        status = { "--proxy URL", "--log debug|info" },
        wait = { "--out PATH", "--journal PATH", "--store URL", "--proxy URL", "--log debug|info" },
      } do
        local r = run { cmd, "--help" }
        for _, f in ipairs(flags) do assert.matches("\n  " .. f .. " ", r.out, 1, true) end
      end
    end)
  end)

  it("--json writes a URL's slashes as they are, never \\/", function()
    local task = completed()
    local r = run({ "status", task.id, "--json" }, env())
    assert.equals(0, r.code, r.err)
    local url = assert(cjson.decode(r.out), r.out).video_url
    assert.matches("^http://127%.0%.0%.1:%d+/videos/video_", url)
    assert.matches('"video_url": "' .. url .. '"', r.out, 1, true)
    assert.is_nil(r.out:find("\\/", 1, true))
  end)

  describe("--api-key-file", function()
    it("reads the key from the file's first line, trimmed", function()
      local file = helper.tmpdir() .. "/key"
      local f = assert(io.open(file, "w"))
      f:write("  ", KEY, "  \nsecond line\n")
      f:close()
      local e = { STARVIDEOS_BASE_URL = emu.url }
      local r = run({ "create", "--model", "videos", "--prompt", "a cat", "--duration", "5",
        "--api-key-file", file, "--json" }, e)
      assert.equals(0, r.code, r.err)
      assert.equals("Bearer " .. KEY, posts()[1].headers.authorization)
      local id = cjson.decode(r.out).id
      r = run({ "status", id, "--api-key-file=-" }, e, { stdin = KEY .. "\n" })
      assert.equals(0, r.code, r.err)
      -- the file wins over the environment
      r = run({ "status", id, "--api-key-file", file }, env { STARVIDEOS_API_KEY = "wrong-key" })
      assert.equals(0, r.code, r.err)
    end)

    it("refuses an unreadable or empty key file with exit 2", function()
      local dir = helper.tmpdir()
      assert(io.open(dir .. "/empty", "w")):close()
      local r = run({ "status", "x", "--api-key-file", dir .. "/missing" }, { STARVIDEOS_BASE_URL = emu.url })
      assert.equals(2, r.code)
      assert.matches("^starvideos status: cannot read the API key file: ", r.err)
      r = run({ "status", "x", "--api-key-file", dir .. "/empty" }, { STARVIDEOS_BASE_URL = emu.url })
      assert.equals(2, r.code)
      assert.matches("is empty", r.err, 1, true)
      r = run({ "status", "x", "--api-key-file", dir }, { STARVIDEOS_BASE_URL = emu.url })
      assert.equals(2, r.code)
      assert.matches("is a directory", r.err, 1, true)
      assert.is_nil(r.err:find("is empty", 1, true))
      assert.same({}, emu:requests())
    end)

    it("keeps a wrong key out of the error", function()
      local file = helper.tmpdir() .. "/key"
      local f = assert(io.open(file, "w"))
      f:write("sk-wrong-key-in-file-1234\n")
      f:close()
      local r = run({ "status", "x", "--api-key-file", file }, { STARVIDEOS_BASE_URL = emu.url })
      assert.equals(1, r.code)
      assert.matches("^starvideos status: auth: ", r.err)
      assert.not_matches("sk-wrong-key-in-file-1234", r.out .. r.err, 1, true)
    end)
  end)

  describe("--json errors", function()
    -- Every failure under --json: one JSON document on stdout, the same shape for
    -- every command: { ok = false, error = {...}, task = {...} (when there is one) }.
    local DOC_KEYS = { ok = true, error = true, task = true }
    local ERROR_KEYS = { kind = true, message = true, field = true, status = true, retry_after = true,
      id = true, maybe_created = true, created = true }

    local function error_fields(e, what)
      assert.is_table(e, what)
      for k in pairs(e) do assert.is_true(ERROR_KEYS[k] ~= nil, what .. ": unexpected error field " .. k) end
      assert.is_string(e.kind, what)
      assert.is_string(e.message, what)
      assert.not_equals("", e.message, what)
    end

    -- The document of a failed run: checks the shape, the exit status, the kind
    -- and that stderr still has the line for a person.
    local function failed(r, cmd, code, kind)
      local what = cmd .. ": " .. r.out .. r.err
      assert.equals(code, r.code, what)
      local doc = cjson.decode(r.out)
      assert.is_table(doc, what)
      for k in pairs(doc) do assert.is_true(DOC_KEYS[k] ~= nil, what .. ": unexpected key " .. k) end
      assert.is_false(doc.ok, what)
      error_fields(doc.error, what)
      assert.equals(kind, doc.error.kind, what)
      assert.matches("^starvideos " .. cmd .. ": ", r.err)
      return doc
    end

    it("status: an unknown task or a wrong key", function()
      local doc = failed(run({ "status", "video_nope", "--json" }, env()), "status", 1, "not_found")
      assert.equals(404, doc.error.status)
      assert.is_nil(doc.task)
      doc = failed(run({ "status", "video_nope", "--json" }, env { STARVIDEOS_API_KEY = "wrong-key" }),
        "status", 1, "auth")
      assert.equals(401, doc.error.status)
    end)

    it("wait: an unknown task", function()
      failed(run({ "wait", "video_nope", "--interval", "0.1", "--json" }, env()), "wait", 1, "not_found")
    end)

    it("download: a task that is not completed, and an unknown task", function()
      emu:config { queued = 5 } -- (unfinished when the next child asks, under load too)
      local task = create()
      local path = helper.tmpdir() .. "/cat.mp4"
      local doc = failed(run({ "download", task.id, path, "--json" }, env()), "download", 1, "invalid_request")
      assert.matches("not completed", doc.error.message, 1, true)
      assert.equals(task.id, doc.error.id)
      assert.is_nil(helper.read_file(path))
      doc = failed(run({ "download", "video_nope", path, "--json" }, env()), "download", 1, "not_found")
      assert.equals(404, doc.error.status)
      assert.is_nil(helper.read_file(path))
    end)

    it("create: an API error", function()
      emu:fault { status = 500, path = "/v1/videos/videos" }
      local doc = failed(run({ "create", "--model", "videos", "--prompt", "a cat", "--duration", "5", "--json" },
        env()), "create", 1, "server")
      assert.equals(500, doc.error.status)
    end)

    it("create, generate and validate: the very same document for the same invalid request", function()
      local request = { "--model", "videos", "--prompt", "a cat", "--duration", "99", "--json" }
      local docs = {}
      for _, cmd in ipairs { "create", "generate", "validate" } do
        local args = { cmd }
        for _, a in ipairs(request) do args[#args + 1] = a end
        local r = run(args, env())
        docs[cmd] = failed(r, cmd, 2, "invalid_request")
        assert.equals("duration", docs[cmd].error.field)
        assert.matches("^starvideos " .. cmd .. ": %-%-duration: expected", r.err)
      end
      assert.same(docs.validate, docs.create)
      assert.same(docs.validate, docs.generate)
      assert.same({}, emu:requests())
    end)

    it("generate: an API error", function()
      emu:fault { status = 500, path = "/v1/videos/videos" }
      local path = helper.tmpdir() .. "/gen.mp4"
      local doc = failed(run({ "generate", "--model", "videos", "--prompt", "a cat", "--duration", "5",
        "--out", path, "--json" }, env()), "generate", 1, "server")
      assert.equals(500, doc.error.status)
      assert.is_nil(helper.read_file(path))
    end)

    it("resume: a journal that cannot be read, and each failed task in the list", function()
      local dir = helper.tmpdir()
      local doc = failed(run({ "resume", "--journal", dir .. "/none.jsonl", "--dir", dir, "--json" }, env()),
        "resume", 2, "usage")
      assert.matches("^%-%-journal: cannot read", doc.error.message)
      emu:config { outcome = "failed" }
      local journal = dir .. "/tasks.jsonl"
      local task = create { "--journal", journal }
      local r = run({ "resume", "--journal", journal, "--dir", dir, "--interval", "0.1", "--json" }, env())
      assert.equals(1, r.code, r.err)
      local list = assert(cjson.decode(r.out), r.out)
      assert.equals(1, #list)
      assert.equals(task.id, list[1].id)
      error_fields(list[1].error, "resume entry")
      assert.equals("task_failed", list[1].error.kind)
      assert.equals(task.id, list[1].error.id)
      assert.equals("failed", list[1].task.status)
    end)

    it("Ctrl-C: the same document, kind interrupted, with the id to wait for again", function()
      emu:config { queued = 30 }
      local task = create()
      local proc = background({ "wait", task.id, "--interval", "0.1", "--json" }, env(), "lua5.4")
      until_true(function() -- the wait has polled the task at least once
        for _, r in ipairs(emu:requests()) do
          if r.method == "GET" and r.path:find(task.id, 1, true) then return true end
        end
      end)
      local r = proc:stop("INT")
      local doc = failed(r, "wait", 130, "interrupted")
      assert.equals(task.id, doc.error.id)
      assert.matches("`starvideos wait " .. task.id .. " --interval 0.1` picks it up again", doc.error.message, 1, true)
      assert.equals("starvideos wait: " .. doc.error.message, lines(r.err)[1])
    end)

    it("bad usage: the same document, kind usage, exit 2, and nothing sent", function()
      local cases = {
        { { "status", "--json" }, "status", "missing ID" },
        { { "create", "--colour", "red", "--json" }, "create", "unknown option --colour" },
        { { "wait", "x", "--json", "--timeout", "0" }, "wait", 'expects a number of seconds > 0, got "0"' },
        { { "download", "x", "--json" }, "download", "missing PATH" },
        { { "generate", "--json", "--duration", "abc" }, "generate", 'expects a number, got "abc"' },
        { { "validate", "--json", "extra" }, "validate", "takes no arguments" },
        { { "resume", "--json" }, "resume", "--journal PATH or --store URL is required" },
        { { "status", "x", "--json", "--base-url", "ftp://x" }, "status", "--base-url: expected http(s)://" },
      }
      for _, c in ipairs(cases) do
        local r = run(c[1], env())
        local doc = failed(r, c[2], 2, "usage")
        assert.matches(c[3], doc.error.message, 1, true)
        assert.equals(2, #lines(r.err), r.err)
        assert.equals("starvideos " .. c[2] .. ": " .. doc.error.message, lines(r.err)[1])
      end
      -- no key: refused before any request, as JSON too
      local r = run({ "wait", "video_1", "--json" }, { STARVIDEOS_BASE_URL = emu.url })
      assert.matches("no API key", failed(r, "wait", 2, "usage").error.message, 1, true)
      -- an unknown command, with --json anywhere on the line
      r = run({ "frobnicate", "--json" }, env())
      assert.equals(2, r.code)
      assert.same({ ok = false, error = { kind = "usage", message = 'unknown command "frobnicate"' } },
        cjson.decode(r.out))
      assert.same({}, emu:requests())
    end)
  end)

  describe("pending", function()
    it("lists the creates whose answer never came, and only those", function()
      local journal = helper.tmpdir() .. "/tasks.jsonl"
      local f = assert(io.open(journal, "w"))
      f:write('{"event":"pending","local":"aaaa","model":"videos","prompt_hash":"11","time":1700000000}\n')
      f:write('{"event":"created","local":"aaaa","id":"video_1","model":"videos","time":1700000001}\n')
      f:write('{"event":"pending","local":"bbbb","model":"videos_fast","prompt_hash":"22","time":1700000002}\n')
      f:write('{"event":"pending","local":"cccc","model":"videos","prompt_hash":"33","time":1700000003}\n')
      f:write('{"event":"abandoned","local":"cccc","time":1700000004}\n')
      f:close()
      local r = run({ "pending", "--journal", journal, "--json" }, {})
      assert.equals(0, r.code, r.err)
      local list = cjson.decode(r.out)
      assert.equals(1, #list)
      assert.equals("bbbb", list[1]["local"])
      assert.equals("videos_fast", list[1].model)
      assert.equals("22", list[1].prompt_hash)
      r = run({ "pending", "--journal", journal }, {})
      assert.equals(0, r.code, r.err)
      assert.matches("bbbb", r.out, 1, true)
      assert.is_nil(r.out:find("aaaa", 1, true))
      assert.matches("1 create sent without an answer", r.out, 1, true)
    end)

    it("needs --journal, and says so under --json", function()
      local r = run({ "pending", "--json" }, {})
      assert.equals(2, r.code)
      assert.equals("usage", cjson.decode(r.out).error.kind)
    end)
  end)

  describe("list", function()
    it("lists a journal's tasks with no key: a table, or one JSON object a line; --state filters", function()
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      local r = run({ "generate", "--model", "videos", "--prompt", string.rep("long prompt ", 10), "--duration", "5",
        "--journal", journal, "--out", dir .. "/a.mp4", "--interval", "0.1" }, env())
      assert.equals(0, r.code, r.err)
      local b = create { "--journal", journal }
      r = run({ "list", "--journal", journal }, {})
      assert.equals(0, r.code, r.err)
      local l = lines(r.out)
      assert.equals(4, #l, r.out)
      assert.matches("^ID +STATE +CREATED %(UTC%) +MODEL +FILE +PROMPT$", l[1])
      assert.matches("^video_%S+ +downloaded +%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d +videos +"
        .. dir:gsub("%p", "%%%0") .. "/a%.mp4 +long prompt", l[2])
      assert.matches("^" .. b.id .. " +created +.* +videos +%- +a cat surfing$", l[3])
      assert.equals("2 tasks: 1 created, 1 downloaded", l[4])
      r = run({ "list", "--journal", journal, "--json" }, {})
      assert.equals(0, r.code, r.err)
      l = lines(r.out)
      assert.equals(2, #l)
      local first, second = cjson.decode(l[1]), cjson.decode(l[2])
      assert.same({ "downloaded", dir .. "/a.mp4", dir .. "/a.mp4", helper.file_size(dir .. "/a.mp4") },
        { first.state, first.path, first.out, first.bytes })
      assert.equals(string.rep("long prompt ", 10):sub(1, 80), first.prompt)
      assert.same({ b.id, "created", "queued", "a cat surfing" }, { second.id, second.state, second.status,
        second.prompt })
      r = run({ "list", "--journal", journal, "--state", "created", "--json" }, {})
      assert.equals(0, r.code, r.err)
      assert.equals(b.id, cjson.decode(r.out).id)
      r = run({ "list", "--journal", journal, "--state", "failed" }, {})
      assert.equals(0, r.code, r.err)
      assert.matches("no failed tasks in " .. journal, r.out, 1, true)
    end)

    it("--tenant and --prices: each task's tenant and cost recorded; list --tenant T keeps T's, the costs added up",
      function()
        local journal = helper.tmpdir() .. "/tasks.jsonl"
        local a = create { "--journal", journal, "--prices", '{"videos": 0.4}', "--tenant", "alice" }
        local b = create { "--journal", journal, "--prices", '{"videos": 0.4}', "--tenant", "bob" }
        local c = create { "--journal", journal, "--tenant", "alice" } -- (no price given: unknown)
        local r = run({ "list", "--journal", journal, "--tenant", "alice", "--json" }, {})
        assert.equals(0, r.code, r.err)
        local l = lines(r.out)
        assert.equals(2, #l, r.out)
        local first, second = cjson.decode(l[1]), cjson.decode(l[2])
        assert.same({ a.id, "alice", 0.4 }, { first.id, first.tenant, first.cost })
        assert.same({ c.id, "alice" }, { second.id, second.tenant })
        assert.is_nil(second.cost)
        r = run({ "list", "--journal", journal }, {})
        assert.equals(0, r.code, r.err)
        l = lines(r.out)
        assert.matches("^ID +STATE +CREATED %(UTC%) +MODEL +TENANT +COST +FILE +PROMPT$", l[1])
        assert.matches("^" .. b.id .. " +created +.* +videos +bob +0%.4 +%- +a cat surfing$", l[3])
        assert.matches("^" .. c.id .. " +created +.* +videos +alice +unknown +%-", l[4])
        assert.equals("3 tasks: 3 created; cost 0.8 (1 task of unknown price not counted)", l[5])
        r = run({ "list", "--journal", journal, "--tenant", "carol" }, {})
        assert.matches('no tasks of tenant "carol" in ' .. journal, r.out, 1, true)
        for _, case in ipairs {
          { { "--prices", "[1]" }, "--prices expects a JSON object of prices by model" },
          { { "--prices", '{"video": 1}' }, '--prices: prices["video"]: not a model' },
          { { "--prices", '{"videos": -1}' }, "--prices: prices.videos: a price >= 0 expected, got -1" },
          { { "--tenant", "" }, "--tenant expects a name of 1 to 200 bytes without control characters" },
          { { "--tenant-limit", "2/60", "--journal", journal }, "--tenant-limit counts the creates of one --tenant" },
        } do
          local args = { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" }
          for _, v in ipairs(case[1]) do args[#args + 1] = v end
          r = run(args, env())
          assert.equals(2, r.code, case[2])
          assert.equals(1, lines(r.err)[1]:find("starvideos create: " .. case[2], 1, true), r.err)
        end
        assert.equals(3, #posts())
      end)

    it("counts and names the lines of the journal it cannot read (list and pending)", function()
      local journal = helper.tmpdir() .. "/tasks.jsonl"
      helper.write_file(journal, '{"event":"created","id":"t1","time":1}\n{"event":"crea\nnot json\n'
        .. '{"event":"status","id":"t1","status":"queued"}\n')
      for _, cmd in ipairs { "list", "pending" } do
        local r = run({ cmd, "--journal", journal }, {})
        assert.equals(0, r.code, r.err)
        assert.matches(string.format("starvideos %s: warning: 2 unreadable lines in %s (%s:2, %s:3): skipped", cmd,
          journal, journal, journal), r.err, 1, true)
      end
    end)

    it("refuses a state that is not one, naming them, and a missing ledger (exit 2)", function()
      local journal = helper.tmpdir() .. "/tasks.jsonl"
      helper.write_file(journal, "")
      local r = run({ "list", "--journal", journal, "--state", "done" }, {})
      assert.equals(2, r.code)
      assert.matches('--state expects pending, created, completed, failed, downloaded or abandoned, got "done"',
        r.err, 1, true)
      r = run({ "list", "--json" }, {})
      assert.equals(2, r.code)
      assert.matches("--journal PATH or --store URL is required", cjson.decode(r.out).error.message, 1, true)
      r = run({ "list", "--journal", journal .. ".none" }, {})
      assert.equals(2, r.code)
      assert.matches("--journal: cannot read", r.err, 1, true)
    end)
  end)

  describe("resume", function()
    it("waits for and downloads every journalled task into --dir", function()
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      local a = create { "--journal", journal }
      local b = create { "--journal", journal }
      local out = helper.tmpdir()
      local r = run({ "resume", "--journal", journal, "--dir", out, "--interval", "0.1", "--json" }, env())
      assert.equals(0, r.code, r.err)
      local results = assert(cjson.decode(r.out), r.out)
      assert.equals(2, #results)
      for i, t in ipairs { a, b } do
        assert.equals(t.id, results[i].id)
        assert.equals(out .. "/" .. t.id .. ".mp4", results[i].path)
        assert.equals("dir", results[i].saved_to) -- (created with no --out)
        assert.equals(SAMPLE, helper.read_file(results[i].path))
      end
      -- all done: a second resume has nothing left, and says so
      r = run({ "resume", "--journal", journal, "--dir", out, "--json" }, env())
      assert.equals(0, r.code, r.err)
      assert.equals("[]", r.out:match("^%s*(.-)%s*$"))
      r = run({ "resume", "--journal", journal, "--dir", out }, env())
      assert.equals(0, r.code, r.err)
      assert.matches("nothing to resume", r.out, 1, true)
    end)

    it("exits 1 when a journalled task failed, reporting it", function()
      local dir = helper.tmpdir()
      local journal = dir .. "/tasks.jsonl"
      emu:config { outcome = "failed" }
      local task = create { "--journal", journal }
      local r = run({ "resume", "--journal", journal, "--dir", dir, "--interval", "0.1" }, env())
      assert.equals(1, r.code)
      assert.matches(task.id .. "  task_failed: ", r.out, 1, true)
    end)

    it("refuses a journal that cannot be read or a --dir that is not a directory", function()
      local dir = helper.tmpdir()
      local r = run({ "resume", "--journal", dir .. "/none.jsonl", "--dir", dir }, env())
      assert.equals(2, r.code)
      assert.matches("^starvideos resume: %-%-journal: cannot read", r.err)
      assert(io.open(dir .. "/j.jsonl", "w")):close()
      r = run({ "resume", "--journal", dir .. "/j.jsonl", "--dir", dir .. "/nope" }, env())
      assert.equals(2, r.code)
      assert.matches("is not a directory", r.err, 1, true)
    end)
  end)

  describe("on every Lua", function()
    -- What needs no library (help, parsing, usage errors) is the same, byte for
    -- byte, on 5.1, 5.2, 5.3 and LuaJIT as on 5.4.
    local cases = {
      { "--help" }, { "wait", "--help" }, { "create", "-h" }, { "help", "resume" }, {}, { "frobnicate" },
      { "create", "--colour", "red" }, { "create", "--duration=abc" }, { "create", "--duration", "5.5" },
      { "create", "--duration", "1e999" }, { "wait", "x", "--interval", "-1" }, { "wait", "x", "--timeout", "0" },
      { "status" }, { "status", "a", "b" }, { "download", "x" }, { "resume", "--dir", "." },
      { "models", "--json=yes" }, { "status", "x", "--api-key", "k" }, { "status", "x" },
      { "wait", "x", "--interval", "1", "--interval", "2" }, { "--base" },
      { "create", "--duration", "5", "--duration", "6" }, { "generate", "--duration=5.0", "--colour" },
      { "wait", "x", "y", "--interval", "0.5", "--timeout", "2" },
    }
    for _, lua in ipairs { "lua5.1", "lua5.2", "lua5.3", "luajit" } do
      local it_lua = has_command(lua) and it or pending
      it_lua("parses and refuses arguments on " .. lua .. " exactly as on lua5.4", function()
        for _, args in ipairs(cases) do
          local e = { STARVIDEOS_BASE_URL = "http://127.0.0.1:9" } -- never reached: no key
          local want, got = run(args, e), run(args, e, { lua = lua })
          local what = lua .. " " .. table.concat(args, " ")
          assert.equals(want.code, got.code, what .. "\n" .. got.err)
          assert.equals(want.out, got.out, what)
          assert.equals(want.err, got.err, what)
          assert.is_true(want.code == 0 or want.code == 2, what)
        end
      end)
    end
  end)

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
      assert.equals(SAMPLE, helper.read_file(path))
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
        assert.equals(SAMPLE, helper.read_file(dir .. "/" .. t.id .. ".mp4"))
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
      assert.equals(3 * 1024 * 1024, #helper.read_file(path))
    end)
  end)
end)
