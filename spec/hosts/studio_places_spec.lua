-- The library's promises held in the studio (examples/studio/, docs/studio.md), run as `make studio` runs it
-- (tools/studio.sh: Debian's nginx on 127.0.0.1) against the emulator, driven over HTTP as its page is (the page's
-- token and cookie, its cards from /tasks, its event stream from /events; a card as the page draws it in Debian's
-- chromium, spec/hosts/support/studio_browser.js), the creates counted at the emulator:
--   * a reference URL answering 404 fails its card with the library's message before paying (0 creates);
--   * a field the service ignores (image beside the same first_image) is on the card as the library's warning;
--   * a create the service refused fails its card naming the request ids of the create the emulator saw;
--   * a task the service failed says on its card why (its reason, the input named) and what to do;
--   * the same content made again after a policy refusal is refused before paying, naming the earlier task (0 creates);
--   * a saved video has its provenance record beside it, which `starvideos verify` takes; the card names no key;
--   * a download cut mid-way leaves a .part in the studio's folder, goes on from it (Range) and ends whole;
--   * a 429 with Retry-After holds the studio's requests of the key (a running card's polls, the next card's create):
--     each card goes on once the hold ends, one task each;
--   * once the journal has five tasks of a kind, a running card shows its ETA;
--   * under a day's key cap, two browsers creating at once send exactly the cap's worth; each step (50%, 80%,
--     100%) is said once on each browser's event stream; nginx restarted, a create is refused: 0 past the cap;
--   * a browser's own limit's steps are said to that browser only, "for you (this browser)".
-- Waits for conditions, never for a time.

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("the studio's places", { "/usr/sbin/nginx", "curl" }) then return end
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local starvideos = require "starvideos"
local files = require "starvideos.emulator.files"
local studio_run = require "spec.hosts.support.studio_run"

local q, str_format = helper.shell_quote, string.format

if studio_run.missing() then
  describe("the studio's places", function() pending(studio_run.missing()) end)
  return
end

-- The cards of the browser of cookie, as /tasks gives them to its page (newest first).
local function cards_of(url, cookie)
  local text = helper.capture(str_format("curl -s -H %s %s", q("Cookie: studio_tenant=" .. cookie), q(url .. "tasks")))
  return (assert(cjson.decode(text), text)).cards
end

-- The card of key as its browser's page (Debian's chromium) draws it: its rows ({class = text}, a class met twice
-- a list of texts) and its error.
local function drawn(url, cookie, key)
  local seen = studio_run.browser { phase = "card", url = url, cookie = cookie, key = key }
  local rows = {}
  for _, r in ipairs(seen.rows) do
    local k, v = r[1], r[2]
    if rows[k] == nil then rows[k] = v elseif type(rows[k]) == "table" then table.insert(rows[k], v)
    else rows[k] = { rows[k], v } end
  end
  return rows, seen.error
end

local function card_of(url, cookie, key)
  for _, c in ipairs(cards_of(url, cookie)) do
    if c.key == key then return c end
  end
end

-- A create POSTed for cookie's browser (params: a table): its card's key.
local function ask(url, cookie, params)
  local status, answer = studio_run.post(url, cookie, cjson.encode(params))
  assert(status == 202, answer)
  return (assert(cjson.decode(answer), answer)).key
end

-- Waits for the card of key to reach one of states (a set), within 60 s: the card.
local function settled(url, cookie, key, states)
  local card
  assert(helper.wait_until(function()
    card = card_of(url, cookie, key)
    return card and states[card.state]
  end, 60), "the card did not settle: " .. cjson.encode(card or {}))
  return card
end
local ENDED = { saved = true, failed = true }

describe("the studio's places", function()
  local emu, dir, port, proc, url, cookie

  local function start(more)
    local env = { STUDIO_TENANT_LIMIT = "" }
    for k, v in pairs(more or {}) do env[k] = v end
    proc, url = studio_run.start(dir, port, emu, env)
  end

  lazy_setup(function()
    emu = helper.emulator { key = "sk-studio-places-FAKE", queued = 0.2, processing = 0.5 }
    dir = helper.tmpdir()
    assert(helper.execute("chmod 755 " .. q(dir))) -- (started as root, the studio's workers are nobody)
    port = helper.free_ports(1)[1]
    start()
    cookie = studio_run.tenant(url)
  end)

  local streams = {} -- (the event streams' curls)

  lazy_teardown(function()
    for _, p in ipairs(streams) do
      helper.execute(str_format("kill %d 2>/dev/null", p.pid))
      p:close()
    end
    if proc then studio_run.stop(proc, port) end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  -- An image of the emulator's /media/ (query: its fields, e.g. status=404).
  local function image(query)
    return str_format("%s/media/f.png?type=png%s", emu.url, query and "&" .. query or "")
  end

  it("refuses a reference the service could not fetch (404) before paying: its card failed with the library's "
    .. "message, 0 creates", function()
    local before = emu:creates()
    local key = ask(url, cookie, { model = "videos", prompt = "a heron", duration = 5,
      referenceImages = { image("status=404") } })
    local card = settled(url, cookie, key, ENDED)
    assert.equal("failed", card.state)
    assert.equal("invalid_request", card.kind)
    assert.matches("^referenceImages%[1%]: .*HTTP 404", card.error)
    assert.is_nil(card.cost, "a create not sent shows no cost")
    assert.equal(before, emu:creates())
    local _, shown = drawn(url, cookie, key)
    assert.equal(card.error, shown)
  end)

  it("shows on the card the library's warning of a field the service ignores, the create sent",
    function()
    local before = emu:creates()
    local params = { model = "videos", prompt = "a heron", duration = 5, first_image = image("w=320&h=180"),
      image = image("w=320&h=180"), last_image = image("w=320&h=181") }
    local _, warnings = starvideos.validate(params)
    local want = {}
    for _, w in ipairs(warnings or {}) do want[#want + 1] = w.message end
    assert.matches("^image: ignored by videos beside first_image", want[1])
    local key = ask(url, cookie, params)
    local card = settled(url, cookie, key, ENDED)
    assert.equal("saved", card.state, card.error)
    assert.same(want, card.warnings)
    assert.equal(want[1], (drawn(url, cookie, key)).warning)
    assert.equal(before + 1, emu:creates())
    local sent
    for _, r in ipairs(emu:api_requests()) do
      if r.method == "POST" then sent = cjson.decode(r.body) end
    end
    assert.same({ params.first_image, params.last_image }, { sent.first_image, sent.last_image })
    assert.is_nil(sent.image) -- (a legacy alias is not sent: spec/warnings_spec.lua)
  end)

  it("names on a failed card the request ids of the create the service refused", function()
    emu:config { server_request_id = "request-id" }
    emu:fault { method = "POST", path = "/v1/", status = 400 }
    local key = ask(url, cookie, { model = "videos", prompt = "a heron refused", duration = 5 })
    local card = settled(url, cookie, key, ENDED)
    emu:config { server_request_id = cjson.null }
    assert.equal("failed", card.state)
    local create
    for _, r in ipairs(emu:api_requests()) do
      if r.method == "POST" and r.fault then create = r end
    end
    assert.truthy(create, "the refused create at the emulator")
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", card.request_id)
    assert.equal(create.request_id, card.request_id)
    assert.equal(create.server_request_id, card.server_request_id)
    assert.matches("^emu%-%d+$", card.server_request_id)
    local rows = drawn(url, cookie, key)
    assert.same({ card.request_id, card.server_request_id }, { rows["request-id"], rows["server-request-id"] })
  end)

  it("says on a card the service failed why it failed and what to do (its reason, the input named), as drawn",
    function()
    local before = emu:creates()
    emu:config { failures = { { kind = "policy", prompt = "flagged heron" } } }
    local key = ask(url, cookie, { model = "videos", prompt = "a flagged heron", duration = 5 })
    local card = settled(url, cookie, key, ENDED)
    emu:config { failures = cjson.null }
    assert.equal("failed", card.state)
    assert.same({ "task_failed", "policy", "prompt" }, { card.kind, card.reason, card.input })
    assert.equal(require("starvideos.failure").advice("policy", "prompt"), card.advice)
    assert.equal(before + 1, emu:creates())
    assert.equal("policy: " .. card.advice, (drawn(url, cookie, key)).why)
  end)

  it("refuses before paying a create whose content failed for policy before: its card names the earlier task and "
    .. "the reason, no cost; the card's Again is refused too, 0 creates", function()
    emu:config { failures = { { kind = "policy", prompt = "twice refused heron" } } }
    local params = { model = "videos", prompt = "a twice refused heron", duration = 5 }
    local first = settled(url, cookie, ask(url, cookie, params), ENDED)
    emu:config { failures = cjson.null } -- (the same content is not sent again: the library's ledger refuses it)
    assert.same({ "failed", "policy" }, { first.state, first.reason })
    local before = emu:creates()
    local key = ask(url, cookie, params)
    local card = settled(url, cookie, key, ENDED)
    assert.same({ "failed", "refused_before", "policy", "prompt" }, { card.state, card.kind, card.reason, card.input })
    assert.matches("failed before as task " .. first.id .. ", for policy (prompt)", card.error, 1, true)
    assert.matches("nothing was sent, nothing paid", card.error, 1, true)
    assert.is_nil(card.cost, "a create not sent shows no cost")
    assert.is_nil(card.id, "no task of its own")
    local rows, shown = drawn(url, cookie, key)
    assert.equal(card.error, shown)
    assert.equal("policy: " .. card.advice, rows.why)
    -- (the studio offers no way to send it anyway: its Again is the same create, refused the same way)
    local status, answer = studio_run.post(url, cookie, cjson.encode { from = first.key, relation = "again" })
    assert.equal(202, status, answer)
    local again = settled(url, cookie, (assert(cjson.decode(answer))).key, ENDED)
    assert.same({ "failed", "refused_before", first.id }, { again.state, again.kind, again.parent_id })
    assert.is_nil(again.cost)
    assert.equal(before, emu:creates())
  end)

  it("keeps beside a video it saved its provenance record, which starvideos verify takes (exit 0); its card and "
    .. "the record name no key, the card no path of the server's", function()
    local key = ask(url, cookie, { model = "videos", prompt = "a heron with a record", duration = 5 })
    local card = settled(url, cookie, key, ENDED)
    assert.equal("saved", card.state, card.error)
    local video = dir .. "/studio/videos/" .. key .. ".mp4"
    local text = assert(helper.read_file(video .. ".json"), "no record beside " .. video)
    local rec = assert(require("starvideos.provenance").decode(text))
    assert.same({ card.id, "videos", "a heron with a record", require("starvideos.sign").sha256_file(video) },
      { rec.task_id, rec.model, rec.params.prompt, rec.video.sha256 })
    local verified = require("spec.support.cli_run").run({ "verify", video }, {})
    assert.equal(0, verified.code, verified.err)
    assert.matches("matches: " .. video, verified.out, 1, true)
    local answer = helper.capture(str_format("curl -s -H %s %s", q("Cookie: studio_tenant=" .. cookie),
      q(url .. "tasks")))
    for what, said in pairs { ["the cards"] = answer, ["the record"] = text } do
      assert.is_nil(said:find(emu.key, 1, true), what .. " name the API key")
    end
    assert.is_nil(answer:find(dir, 1, true), "the cards name no path of the server's")
    local served = helper.capture(str_format("curl -s -o /dev/null -w '%%{http_code}' -H %s %s",
      q("Cookie: studio_tenant=" .. cookie), q(url .. "videos/" .. key .. ".mp4.json")))
    assert.equal("404", served, "the record is not served to the page")
  end)

  it("resumes a video download cut mid-way from its .part in the studio's folder, and ends whole", function()
    local videos = dir .. "/studio/videos"
    emu:fault { { path = "/videos/", drop_after_bytes = 8000 }, { path = "/videos/", delay = 5 } }
    local key = ask(url, cookie, { model = "videos", prompt = "a heron cut short", duration = 5 })
    local part = videos .. "/" .. key .. ".mp4.part"
    assert.truthy(helper.wait_until(function() return helper.file_size(part) == 8000 end, 30),
      "no .part of 8000 bytes in " .. videos .. ": " .. table.concat(helper.listing(videos) or {}, " "))
    local card = settled(url, cookie, key, ENDED)
    assert.equal("saved", card.state, card.error)
    -- (up to the mark's box its commit appended: helper.read_video; compared as a truth, not shown: bytes)
    assert.is_true(files.video(5) == helper.read_video(videos .. "/" .. key .. ".mp4"),
      "the video is not the service's")
    assert.is_false(helper.exists(part))
    local ranges = emu:video_ranges()
    assert.same({ "none", "bytes=8000-" }, { ranges[#ranges - 1], ranges[#ranges] })
  end)

  it("holds its requests of the key through a 429's Retry-After, a running card's polls and the next card's create "
    .. "too: each card goes on, one task each", function()
    local tasks = #emu:tasks()
    -- a card polled every second meanwhile (its task runs 8 s)
    emu:config { processing = 8 }
    local running = ask(url, cookie, { model = "videos", prompt = "a heron running", duration = 5 })
    assert.truthy(helper.wait_until(function() return #emu:tasks() == tasks + 1 end, 30), "the running card's task")
    emu:config { processing = 0.5 }
    emu:fault { method = "POST", path = "/v1/", status = 429, retry_after = 3 }
    local first = ask(url, cookie, { model = "videos", prompt = "a heron held", duration = 5 })
    local refused
    assert.truthy(helper.wait_until(function()
      for _, r in ipairs(emu:api_requests()) do
        if r.fault and r.status == 429 then refused = r end
      end
      return refused
    end, 30), "no 429 at the emulator")
    local second = ask(url, cookie, { model = "videos", prompt = "a fox held", duration = 5 })
    assert.equal("saved", settled(url, cookie, first, ENDED).state)
    assert.equal("saved", settled(url, cookie, second, ENDED).state)
    assert.equal("saved", settled(url, cookie, running, ENDED).state)
    assert.equal(tasks + 3, #emu:tasks())
    local after = 0
    for _, r in ipairs(emu:api_requests()) do
      if r.at > refused.at then
        after = after + 1
        assert.is_true(r.at >= refused.at + 2.9, str_format("%s %s at %.2f s after the 429", r.method, r.path,
          r.at - refused.at))
      end
    end
    assert.is_true(after >= 5, "the two creates, their polls and the running card's after the hold")
  end)

  it("shows a running card's ETA once the journal has five tasks of its kind", function()
    local keys = {}
    for i = 1, 5 do
      keys[i] = ask(url, cookie, { model = "videos_fast", prompt = "a heron, take " .. i, duration = 5 })
    end
    for _, key in ipairs(keys) do assert.equal("saved", settled(url, cookie, key, ENDED).state) end
    emu:config { processing = 8 }
    local key = ask(url, cookie, { model = "videos_fast", prompt = "a heron, learned", duration = 5 })
    local card
    assert.truthy(helper.wait_until(function()
      card = card_of(url, cookie, key)
      return card and card.eta ~= nil
    end, 30), "no ETA on the card: " .. cjson.encode(card or {}))
    emu:config { processing = 0.5 }
    assert.truthy(card.state == "queued" or card.state == "processing", card.state)
    assert.is_true(card.eta >= 0 and card.eta == math.floor(card.eta), tostring(card.eta))
    assert.equal("saved", settled(url, cookie, key, ENDED).state)
    assert.is_nil(card_of(url, cookie, key).eta)
  end)

  describe("under spend limits: a day's key cap of 2.00 (five creates of 0.40), then a browser's own", function()
    -- An event stream of cookie's browser (the library's, client:sse), kept in a file: its process and the file.
    local function listen(c)
      local file = str_format("%s/events-%d.txt", dir, #streams + 1)
      local p = helper.spawn(str_format("curl -s -N -m 120 -H %s %s >%s", q("Cookie: studio_tenant=" .. c),
        q(url .. "events"), q(file)))
      streams[#streams + 1] = p
      assert(helper.wait_until(function() return (helper.read_file(file) or ""):find("retry: ", 1, true) end, 10))
      return file
    end

    -- The steps said on a stream (its file): each spend limit's warning's message (a browser's own limit's as its
    -- page shows it: "for you (this browser)").
    local function said(file)
      local list = {}
      for data in (helper.read_file(file) or ""):gmatch("event: warning\ndata: ([^\n]+)") do
        local ev = cjson.decode(data)
        if ev.field == "spend_limit" and ev.percent then
          list[#list + 1] = (ev.message:gsub('for tenant "[^"]*"', "for you (this browser)"))
        end
      end
      return list
    end

    -- (a folder of its own: the day's creates of the cases before are not this cap's)
    local REFUSED = "^spend_limit: 2 spent of the key in this window %(at most 2%): the next create is refused until "
    local CAPPED = { STUDIO_SPEND_LIMIT = '{"amount": 2, "per": "day"}',
      STUDIO_PRICES = "videos=0.40,videos_fast=0.25,videos_stable=1,videos_stable_fast=0.5,starvideos_o3=2" }

    lazy_setup(function()
      studio_run.stop(proc, port)
      CAPPED.STUDIO_DIR = dir .. "/capped"
      start(CAPPED)
    end)

    local a, b, a_events, b_events
    local made = {}

    it("two browsers creating at once send exactly the cap's worth; the others fail with the library's message",
      function()
      a, b = studio_run.tenant(url), studio_run.tenant(url)
      a_events, b_events = listen(a), listen(b)
      local before, tasks = emu:creates(), #emu:tasks()
      local page = {}
      for _, who in ipairs { a, b } do page[who] = studio_run.page_token(url, who) end
      -- eight creates at once, four of each browser, each its own curl, all started before any is answered
      local cmds = {}
      for i = 1, 8 do
        local who = i % 2 == 0 and a or b
        cmds[#cmds + 1] = str_format("curl -s -H %s -H %s -H 'Content-Type: application/json' -d %s %s >%s &",
          q("Cookie: studio_tenant=" .. who), q("X-Studio-Token: " .. page[who]),
          q(cjson.encode { model = "videos", prompt = "a race, take " .. i, duration = 5 }), q(url .. "tasks"),
          q(str_format("%s/race-%d.json", dir, i)))
      end
      assert(helper.execute(table.concat(cmds, " ") .. " wait"))
      for i = 1, 8 do
        local who = i % 2 == 0 and a or b
        local answer = assert(cjson.decode(helper.read_file(str_format("%s/race-%d.json", dir, i)) or ""))
        made[#made + 1] = settled(url, who, assert(answer.key, answer.error), { saved = true, failed = true,
          queued = true, processing = true, downloading = true })
      end
      local states = {}
      for _, c in ipairs(made) do
        local how = c.state == "failed" and "failed" or "sent"
        states[how] = (states[how] or 0) + 1
        if c.state == "failed" then
          assert.equal("spend_limited", c.kind, c.error)
          assert.matches(REFUSED, c.error)
        end
      end
      assert.same({ sent = 5, failed = 3 }, states)
      assert.equal(before + 5, emu:creates())
      assert.equal(tasks + 5, #emu:tasks())
    end)

    it("says each step of the cap (50%, 80%, 100%) once on each browser's event stream", function()
      assert.truthy(a_events, "the case before ran")
      for _, file in ipairs { a_events, b_events } do
        local list
        assert.truthy(helper.wait_until(function()
          list = said(file)
          return #list >= 3
        end, 30), "the steps said: " .. cjson.encode(list))
        local pct = {}
        for _, m in ipairs(list) do
          pct[#pct + 1] = tonumber(m:match("^spend_limit: (%d+)%% of 2 reached for the key in the window ending "
            .. "%d%d%d%d%-%d%d%-%d%d 00:00:00 UTC$"))
        end
        table.sort(pct)
        assert.same({ 50, 80, 100 }, pct, cjson.encode(list))
      end
    end)

    it("refuses a create after nginx restarts with the day's cap reached: 0 creates past the cap, no step said "
      .. "again", function()
      assert.truthy(a, "the cases before ran")
      local before = emu:creates()
      assert.is_true(studio_run.stop(proc, port))
      start(CAPPED)
      local events = listen(a)
      local key = ask(url, a, { model = "videos", prompt = "a heron after the restart", duration = 5 })
      local card = settled(url, a, key, ENDED)
      assert.equal("failed", card.state)
      assert.equal("spend_limited", card.kind)
      assert.matches(REFUSED, card.error)
      assert.equal(before, emu:creates())
      assert.same({}, said(events))
    end)

    it("says the steps of a browser's own limit to that browser only, naming it as its panel does", function()
      assert.truthy(a, "the cases before ran")
      assert.is_true(studio_run.stop(proc, port))
      start { STUDIO_DIR = dir .. "/tenants", STUDIO_SPEND_LIMIT = '{"amount": 0.8, "scope": "tenant"}',
        STUDIO_PRICES = CAPPED.STUDIO_PRICES }
      local c, d = studio_run.tenant(url), studio_run.tenant(url)
      local c_events, d_events = listen(c), listen(d)
      for i = 1, 2 do
        assert.is_not.equal("failed", settled(url, c, ask(url, c, { model = "videos", prompt = "a heron, take " .. i,
          duration = 5 }), { processing = true, downloading = true, saved = true, failed = true }).state)
      end
      local list
      assert.truthy(helper.wait_until(function()
        list = said(c_events)
        return #list >= 3
      end, 30), "the steps said: " .. cjson.encode(list))
      assert.same({ "spend_limit: 50% of 0.8 reached for you (this browser)",
        "spend_limit: 80% of 0.8 reached for you (this browser)",
        "spend_limit: 100% of 0.8 reached for you (this browser)" }, list)
      -- d's own: said to d, and c's never
      settled(url, d, ask(url, d, { model = "videos", prompt = "a fox", duration = 5 }), ENDED)
      assert.truthy(helper.wait_until(function() return #said(d_events) >= 1 end, 30))
      assert.same({ "spend_limit: 50% of 0.8 reached for you (this browser)" }, said(d_events))
      assert.equal(3, #said(c_events))
    end)
  end)
end)
