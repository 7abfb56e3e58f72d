-- The command line, run as a child process against the local emulator: how to go
-- on after Ctrl-C, a signal, kill -9 or a timeout; the operator's flags, the key's file,
-- errors as JSON; pending, list and resume; the same parsing on every Lua.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local KEY, SAMPLE = C.KEY, C.SAMPLE
local run, run_printed, background, until_true, lines = C.run, C.run_printed, C.background, C.until_true, C.lines
local has_command = C.has_command

describe("the starvideos command line, how to go on and the operator's commands", function()
  local emu
  local env, posts, create, completed = C.session(function(e) emu = e end)

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
      assert.equals(SAMPLE, helper.read_video(path))
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
      id = true, maybe_created = true, created = true, request_id = true, server_request_id = true, reason = true,
      input = true }

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
        assert.equals(SAMPLE, helper.read_video(results[i].path))
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

  describe("on every Lua #hosts", function()
    -- What needs no library (help, parsing, usage errors) is the same, byte for
    -- byte, on 5.1, 5.2, 5.3, 5.5 and LuaJIT as on 5.4.
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
    for _, lua in ipairs { "lua5.1", "lua5.2", "lua5.3", "lua5.5", "luajit" } do
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

end)
