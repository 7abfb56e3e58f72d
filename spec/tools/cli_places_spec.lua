-- The matrix's cli column (docs/matrix.md): promises the library keeps, held through bin/starvideos run as child
-- processes against the emulator, each a new process as a user's commands are.  --tenant-limit refuses a tenant's
-- create past it, nothing sent, another tenant going on; a 429's Retry-After holds the command's next requests (none
-- at the emulator in its window), one longer than max_retry_wait ends the command with rate_limited and its seconds;
-- --spend-limit's 50%, 80% and 100% are said once each by generate (a process each) and batch; a cap reached by one
-- command (or by a create killed before its answer) refuses the next command on the same --journal, and a limit
-- with no ledger is refused; continue sends the parent's last frame, put into a bucket (s3rver), as first_image,
-- into a file or an s3:// out; OTEL_EXPORTER_OTLP_ENDPOINT makes a command export its task's spans.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local core = require "starvideos.core"
local C = require "spec.support.cli_run"
local S3run = require("spec.support.places").fixture("s3")
local Otlp = require("spec.support.places").fixture("otlp")
local media_read = require "spec.support.media_read"

local run, lines, with = C.run, C.lines, C.with

local PRICE = '{"videos": 0.4}'
local CREATE = { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" }

-- The lines of text holding word.
local function said(text, word)
  local found = {}
  for _, l in ipairs(lines(text)) do
    if l:find(word, 1, true) then found[#found + 1] = l end
  end
  return found
end

describe("the command line as a place of the matrix", function()
  local emu
  local env, posts, create = C.session(function(e) emu = e end)
  local dir, journal
  before_each(function()
    dir = helper.tmpdir()
    journal = dir .. "/tasks.jsonl"
  end)

  it("--tenant-limit N/SECONDS: a tenant's create past it is refused, not sent (exit 1, rate_limited naming "
    .. "--tenant-limit), in a new process too; another tenant's creates go on; a batch's entries past it too",
    function()
    local function of(tenant, words)
      return with(words or CREATE, "--journal", journal, "--tenant", tenant, "--tenant-limit", "2/3600")
    end
    local made = #emu:tasks()
    assert.equals(0, run(of("alice"), env()).code)
    assert.equals(0, run(of("alice"), env()).code)
    local r = run(of("alice"), env())
    assert.equals(1, r.code)
    assert.matches('^starvideos create: rate_limited: %-%-tenant%-limit: 2 creates of tenant "alice" in the last '
      .. "3600 s %(at most 2%): the next create is allowed in %d+ s", lines(r.err)[1])
    r = run(with(of("alice", { "generate", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--out",
      dir .. "/dog.mp4", "--interval", "0.1" }), "--json"), env())
    assert.equals(1, r.code)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.same({ "rate_limited", "tenant_limit" }, { doc.error.kind, doc.error.field })
    assert.is_false(helper.exists(dir .. "/dog.mp4"))
    assert.equals(0, run(of("bob"), env()).code, "another tenant goes on")
    assert.equals(3, emu:creates())
    -- a batch of carol's: two entries made, the third refused, not sent
    helper.write_file(dir .. "/p.txt", "a cat\na dog\na fox\n")
    r = run(of("carol", { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1" }), env())
    assert.equals(1, r.code, r.err)
    assert.equals(1, #said(r.out, '0003.mp4 (line 3)  rate_limited: --tenant-limit: 2 creates of tenant "carol" in '
      .. "the last 3600 s (at most 2)"), r.out)
    assert.equals("3 videos: 2 saved in " .. dir .. "/v, 1 not", lines(r.out)[#lines(r.out)])
    assert.equals(5, emu:creates())
    assert.equals(made + 5, #emu:tasks())
  end)

  describe("a 429 with Retry-After", function()
    -- A request that reached the emulator this soon after the 429 was on its way already (another entry's poll, sent
    -- before the 429 was read): not counted (spec/hosts/shared_hold_spec.lua's IN_FLIGHT).  Unheld, the batch's
    -- polls every 0.1 s and its downloads would fall inside the hold.
    local HOLD, IN_FLIGHT = 3, 0.3

    it("seen by a batch's poll holds every request of the command for its seconds (0 requests in the window at "
      .. "the emulator), then the batch goes on and saves every entry, one create each", function()
      helper.write_file(dir .. "/p.txt", "a cat\na dog\na fox\n")
      emu:fault { method = "GET", path = "/v1/result/", status = 429, retry_after = HOLD }
      local r = run({ "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
        "--duration", "5", "--interval", "0.1" }, env())
      assert.equals(0, r.code, r.err)
      local told, api = nil, {}
      for _, req in ipairs(emu:requests()) do
        if req.path:find("^/v1/") then
          api[#api + 1] = req
          if req.status == 429 then told = req end
        end
      end
      assert.truthy(told, "no 429 answered")
      local inside = 0
      for _, req in ipairs(api) do
        if req.at > told.at + IN_FLIGHT and req.at < told.at + HOLD then inside = inside + 1 end
      end
      assert.equals(0, inside, "requests in the seconds the 429 asked for")
      assert.is_true(api[#api].at >= told.at + HOLD, "requests went on after the hold")
      assert.equals(3, emu:creates())
      for i = 1, 3 do assert.equals(C.SAMPLE, helper.read_video(string.format("%s/v/%04d.mp4", dir, i))) end
    end)

    it("longer than max_retry_wait (60 s) ends create at once with rate_limited and the seconds, sent once, nothing "
      .. "created; generate's create past its --timeout too; wait's next poll held past its --timeout, not sent",
      function()
      local made = #emu:tasks()
      emu:fault { method = "POST", path = "/v1/", status = 429, retry_after = 120, count = 2 }
      local r = run(with(CREATE, "--json"), env())
      assert.equals(1, r.code)
      local doc = assert(cjson.decode(r.out), r.out)
      assert.same({ "rate_limited", 120 }, { doc.error.kind, doc.error.retry_after })
      r = run({ "generate", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--out", dir .. "/dog.mp4",
        "--timeout", "30", "--interval", "0.1" }, env())
      assert.equals(1, r.code)
      assert.equals("starvideos generate: rate_limited: create: HTTP 429: emulated fault: HTTP 429 (Retry-After: "
        .. "120 s)", lines(r.err)[1])
      assert.equals(2, #posts(), "each create sent once, not again")
      assert.equals(made, #emu:tasks(), "nothing created")
      -- a poll answered so: wait's next poll is held past its --timeout, not sent, the seconds said
      local task = create()
      emu:clear()
      emu:fault { method = "GET", path = "/v1/result/", status = 429, retry_after = 120 }
      r = run({ "wait", task.id, "--interval", "0.1", "--timeout", "30" }, env())
      assert.equals(1, r.code)
      assert.equals("starvideos wait: rate_limited: query not sent: the service said no request of the key for 120 s "
        .. "more (its rate limit), past the call's timeout (30 s left)", lines(r.err)[1])
      assert.equals(1, #emu:requests(), "the poll answered 429 alone")
    end)
  end)

  describe("--spend-limit", function()
    local LIMIT = '{"amount": 2, "scope": "model", "model": "videos"}' -- (five creates of 0.4)

    -- The warnings of text, each cut to its percent: { "50%", "80%", ... }.
    local function percents(text)
      local list = {}
      for _, l in ipairs(said(text, "warning: --spend-limit: ")) do list[#list + 1] = l:match(": (%d+%%) of ") end
      return list
    end

    it("generate, a process a create on one journal, says 50%, 80% and 100% once each on stderr; the sixth, "
      .. "refused, says none again", function()
      local all = {}
      for i = 1, 6 do
        local r = run({ "generate", "--model", "videos", "--prompt", "a cat " .. i, "--duration", "5", "--out",
          dir .. "/" .. i .. ".mp4", "--interval", "0.1", "--journal", journal, "--prices", PRICE, "--spend-limit",
          LIMIT }, env())
        assert.equals(i <= 5 and 0 or 1, r.code, r.err)
        for _, p in ipairs(percents(r.err)) do all[#all + 1] = i .. ": " .. p end
      end
      assert.same({ "3: 50%", "4: 80%", "5: 100%" }, all)
      assert.equals(5, emu:creates())
    end)

    it("batch says 50%, 80% and 100% once each on stderr", function()
      helper.write_file(dir .. "/p.txt", "a cat\na dog\na fox\nan owl\na hen\na cow\n")
      local r = run({ "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
        "--duration", "5", "--interval", "0.1", "--prices", PRICE, "--spend-limit", LIMIT }, env())
      assert.equals(1, r.code, r.err) -- (the sixth entry refused)
      assert.same({ "50%", "80%", "100%" }, percents(r.err))
      assert.equals(5, emu:creates())
    end)

    it("a cap reached by one command refuses the next command, a new process, on the same --journal (0 creates "
      .. "past it); a create killed before its answer counts; a limit without --journal or --store is refused",
      function()
      local limit = '{"amount": 0.8, "scope": "model", "model": "videos"}'
      local function capped(words)
        return with(words, "--journal", journal, "--prices", PRICE, "--spend-limit", limit)
      end
      helper.write_file(dir .. "/p.txt", "a cat\na dog\n")
      local batch = capped { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
        "--duration", "5", "--interval", "0.1" }
      assert.equals(0, run(batch, env()).code)
      for _, words in ipairs { CREATE, { "generate", "--model", "videos", "--prompt", "a fox", "--duration", "5",
        "--out", dir .. "/fox.mp4", "--interval", "0.1" } } do
        local r = run(capped(words), env())
        assert.equals(1, r.code, r.err)
        assert.matches("spend_limited: %-%-spend%-limit: 0%.8 spent of model videos in the ledger's life", r.err)
      end
      helper.write_file(dir .. "/p.txt", "a cat\na dog\nan owl\n")
      local r = run(batch, env())
      assert.equals(1, r.code, r.err)
      assert.equals("3 videos: 2 saved in " .. dir .. "/v, 1 not (1 refused by --spend-limit: nothing sent)",
        lines(r.out)[#lines(r.out)])
      assert.equals(2, emu:creates())
      -- a create killed (kill -9) after it was sent, before its answer: the next process counts it
      journal = dir .. "/killed.jsonl"
      local half = with(CREATE, "--journal", journal, "--prices", PRICE, "--spend-limit",
        '{"amount": 0.4, "scope": "model", "model": "videos"}')
      local made = #emu:tasks()
      emu:fault { method = "POST", path = "/v1/", after = true, delay = 60 } -- (the task made, its answer not sent)
      local proc = C.background(half, env())
      C.until_true(function() return #emu:tasks() == made + 1 end)
      proc:stop("KILL")
      emu:clear_faults()
      r = run(half, env())
      assert.equals(1, r.code, r.err)
      assert.matches("spend_limited", r.err, 1, true)
      assert.equals(3, emu:creates())
      r = run(with(CREATE, "--prices", PRICE, "--spend-limit", half[#half]), env())
      assert.equals(2, r.code)
      assert.equals("starvideos create: --spend-limit needs --journal PATH or --store URL: the spend is counted "
        .. "there, across runs", lines(r.err)[1])
      assert.equals(3, emu:creates())
    end)
  end)

  describe("continue with a bucket", function()
    local why = S3run.missing() or (not C.has_command("ffmpeg") and "no ffmpeg") or nil
    local st
    lazy_setup(function() if not why then st = S3run.start {} end end)
    lazy_teardown(function() if st then st.stop() end end)

    -- The variables of a run with the bucket (as a user gives them: AWS_* and STARVIDEOS_REFS), and a parent made
    -- at out with them, its task's JSON document; the emulator fetches each reference as the service does.
    local function bucket_env()
      return env { AWS_ACCESS_KEY_ID = "S3RVER", AWS_SECRET_ACCESS_KEY = "S3RVER", AWS_ENDPOINT_URL = st.url,
        STARVIDEOS_REFS = "s3://vids/clirefs/", TMPDIR = dir }
    end
    local function made_parent(out)
      emu:config { fetch_refs = true }
      local r = run({ "generate", "--model", "videos", "--prompt", "a red fox", "--duration", "5", "--ratio", "16:9",
        "--out", out, "--journal", journal, "--interval", "0.1", "--json" }, bucket_env())
      assert.equals(0, r.code, r.err)
      return assert(cjson.decode(r.out), r.out)
    end

    it("continue ID --last-image URL --out PATH: one create whose first_image is the parent's last frame, put into "
      .. "the bucket and fetched whole by the service", function()
      if why then pending(why) return end
      local parent, bucket = made_parent(dir .. "/parent.mp4"), bucket_env()
      local last = emu.url .. "/media/end.png?w=320&h=240"
      local r = run({ "continue", parent.id, "--prompt", "she walks on", "--last-image", last, "--out",
        dir .. "/child.mp4", "--journal", journal, "--interval", "0.1", "--json" }, bucket)
      assert.equals(0, r.code, r.err)
      local child = assert(cjson.decode(r.out), r.out)
      assert.same({ parent.id, "continue" }, { child.parent, child.relation })
      assert.equals(2, emu:creates())
      local tasks = emu:tasks()
      local made = tasks[#tasks]
      assert.same({ "videos", 5, "16:9", last }, { made.params.model, made.params.duration, made.params.ratio,
        made.params.last_image })
      assert.equals(st.url .. "/vids/clirefs/", made.params.first_image:sub(1, #st.url + 14))
      local fetched
      for _, f in ipairs(made.fetched or {}) do if f.field == "first_image" then fetched = f end end
      local frame = helper.read_file(dir .. "/child.mp4.first.png")
      assert.same({ 200, core.hash(frame) }, { fetched.status, fetched.hash })
      local want = media_read.last_pixels(dir .. "/parent.mp4")
      assert.truthy(#want > 0)
      assert.equals(core.hash(want), core.hash(media_read.pixels(dir .. "/child.mp4.first.png")),
        "the parent's last frame")
      assert.equals(C.SAMPLE, helper.read_video(dir .. "/child.mp4"))
    end)

    it("continue ID --last-image URL --out s3://bucket/key: one create, the child streamed into the object; the same "
      .. "command again pays nothing", function()
      if why then pending(why) return end
      local parent, bucket = made_parent("s3://vids/places/parent.mp4"), bucket_env()
      local args = { "continue", parent.id, "--prompt", "she walks on", "--last-image", emu.url .. "/media/end.png",
        "--out", "s3://vids/places/child.mp4", "--journal", journal, "--interval", "0.1" }
      local r = run(args, bucket)
      assert.equals(0, r.code, r.err)
      assert.equals("parent: " .. parent.id .. " (continue)", said(r.out, "parent: ")[1])
      assert.matches("^saved s3://vids/places/child%.mp4 %(", lines(r.out)[#lines(r.out)])
      assert.equals(2, emu:creates())
      local tasks = emu:tasks()
      local fetched
      for _, f in ipairs(tasks[#tasks].fetched or {}) do if f.field == "first_image" then fetched = f end end
      assert.equals(200, fetched.status)
      assert.equals(C.SAMPLE, helper.read_video(st.dir .. "/vids/places/child.mp4._S3rver_object"))
      r = run(args, bucket)
      assert.equals(0, r.code, r.err)
      assert.equals(2, emu:creates(), "the same command again creates nothing")
    end)
  end)

  describe("traces", function()
    local why = Otlp.missing()
    local col
    lazy_setup(function() if not why then col = Otlp.start(helper.tmpdir()) end end)
    lazy_teardown(function() if col then col:stop() end end)

    it("OTEL_EXPORTER_OTLP_ENDPOINT: generate exports its task's span and a CLIENT span per exchange, in one trace",
      function()
      if why then pending(why) return end
      local r = run({ "generate", "--model", "videos", "--prompt", "a fox", "--duration", "5", "--out",
        dir .. "/fox.mp4", "--interval", "0.1", "--json" }, env { OTEL_EXPORTER_OTLP_ENDPOINT = (col.url:gsub(
          "/v1/traces$", "")), OTEL_SERVICE_NAME = "cli-app" })
      assert.equals(0, r.code, r.err)
      local task = assert(cjson.decode(r.out), r.out)
      assert.same({}, col:errors())
      local root, clients = col:task(task.id)
      assert.truthy(root, "no task span")
      assert.equals("starvideos generate", root.name)
      assert.equals("cli-app", root.resource[col.names.service].stringValue)
      local exchanges = 0
      for _, req in ipairs(emu:requests()) do
        if req.path:find("^/v1/") or req.path:find("^/videos/") then exchanges = exchanges + 1 end
      end
      assert.equals(exchanges, #clients)
      for _, sp in ipairs(clients) do assert.same({ root.trace, root.id }, { sp.trace, sp.parent }) end
    end)
  end)
end)
