-- Spend limits on the command line (docs/cli.md, "Spend limits"), run as child processes against the emulator:
-- --spend-limit on create, generate, batch and keep, the spend command and list --spend-limit, a create refused
-- past a limit, a batch's count of them, and --dry-run's creates a limit would refuse; what reached the server.
-- The limits have no `per` (the ledger's life) or one no create reaches, so that no window turns under a spec.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local run, lines, with = C.run, C.lines, C.with

local PRICE = '{"videos": 0.4}'
local ALL = '{"videos": 0.4, "videos_fast": 0.1, "videos_stable": 1, "videos_stable_fast": 0.5, "starvideos_o3": 2}'
local MODEL = '{"amount": 1, "scope": "model", "model": "videos"}' -- (two creates of 0.4, not three)

local CREATE = { "create", "--model", "videos", "--prompt", "a cat", "--duration", "5" }

describe("spend limits on the command line", function()
  local emu
  local env, posts = C.session(function(e) emu = e end)
  local dir
  before_each(function() dir = helper.tmpdir() end)

  it("create --spend-limit: a create past the limit is refused, nothing sent (exit 1, as --create-limit's), "
    .. "saying when it opens again; generate --json carries the error's limit, spent and amount", function()
    local journal = dir .. "/tasks.jsonl"
    local capped = with(CREATE, "--journal", journal, "--prices", PRICE, "--spend-limit", MODEL)
    assert.equals(0, run(capped, env()).code)
    local r = run(capped, env())
    assert.equals(0, r.code, r.err)
    assert.same({ "starvideos create: warning: --spend-limit: 50% of 1 reached for model videos",
      "starvideos create: warning: --spend-limit: 80% of 1 reached for model videos" }, lines(r.err))
    r = run(capped, env())
    assert.equals(1, r.code)
    assert.equals("starvideos create: spend_limited: --spend-limit: 0.8 spent of model videos in the ledger's life "
      .. "(at most 1, counted in the journal " .. journal .. "): the next create is refused for good (a limit without "
      .. "per)", lines(r.err)[#lines(r.err)])
    r = run(with(capped, "--json"), env())
    assert.equals(1, r.code)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.same({ "spend_limited", "spend_limit", 0.8, 1, "videos" }, { doc.error.kind, doc.error.field,
      doc.error.spent, doc.error.amount, doc.error.limit.model })
    r = run(with({ "generate", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--interval", "0.1",
      "--journal", journal, "--key", "dog", "--prices", PRICE, "--spend-limit", MODEL, "--json" }), env())
    assert.equals(1, r.code)
    doc = assert(cjson.decode(r.out), r.out)
    assert.same({ "spend_limited", 0.8, 1 }, { doc.error.kind, doc.error.spent, doc.error.amount })
    assert.equals(2, #posts())
    -- a limit with a window: when it opens again, as a date and in seconds
    local windowed = with(CREATE, "--journal", dir .. "/other.jsonl", "--prices", ALL, "--spend-limit",
      '{"amount": 0.5, "per": 31622400}')
    assert.equals(0, run(windowed, env()).code)
    r = run(windowed, env())
    assert.equals(1, r.code)
    assert.matches("^starvideos create: spend_limited: %-%-spend%-limit: 0%.4 spent of the key in this window %(at "
      .. "most 0%.5, counted in the journal [^)]+%): the next create is refused until %d%d%d%d%-%d%d%-%d%d "
      .. "%d%d:%d%d:%d%d UTC, in %d+ s$", lines(r.err)[2])
    assert.matches("^starvideos create: warning: %-%-spend%-limit: 100%% of 0%.5 reached for the key in the window "
      .. "ending .* %(a create was refused%)$", lines(r.err)[1])
    -- a price above the amount: no window lets it through, said so
    r = run(with(CREATE, "--journal", dir .. "/third.jsonl", "--prices", ALL, "--spend-limit",
      '{"amount": 0.3, "per": 31622400}'), env())
    assert.equals(1, r.code)
    assert.matches("a create of videos costs 0%.4, more than the limit's amount %(0%.3%): no window lets it through",
      lines(r.err)[#lines(r.err)])
    assert.equals(3, #posts())
  end)

  it("--spend-limit that is not a limit, or that the library refuses: exit 2 naming --spend-limit and the library's "
    .. "words, nothing sent (create, generate, batch, keep)", function()
    local journal = dir .. "/tasks.jsonl"
    helper.write_file(journal, "")
    local function capped(limit, prices, ledger)
      local l = with(CREATE, "--prices", prices or ALL, "--spend-limit", limit)
      if ledger ~= false then l = with(l, "--journal", journal) end
      return l
    end
    for _, case in ipairs {
      { capped("{amount: 1"), "--spend-limit expects a JSON limit or list of limits, e.g. '{\"amount\": 5, \"per\": "
        .. "\"day\"}', got text that is not JSON (" },
      { capped('"five"'), "--spend-limit expects a JSON limit or list of limits, e.g. '{\"amount\": 5, \"per\": "
        .. "\"day\"}', got a JSON string" },
      { capped('{"amount": -1}'), "--spend-limit: amount: a finite amount >= 0 expected, got -1" },
      { capped('[{"amount": 1}, {"amount": 2, "scope": "team"}]'),
        '--spend-limit [2].scope: "key", "tenant" or "model" expected, got "team"' },
      { capped('{"amount": 1, "scope": "model", "model": "videos_fast"}', PRICE),
        "--spend-limit: a create of videos_fast cannot be counted: --prices has no price for videos_fast; give "
        .. "--prices a price for videos_fast" },
      { capped('{"amount": 1}', PRICE), "--spend-limit: a create of starvideos_o3 cannot be counted: --prices has no "
        .. "price for starvideos_o3; give --prices a price for starvideos_o3, or a limit of scope \"model\"" },
      { capped('{"amount": 1, "size": 2}'), "--spend-limit: size: unknown field (amount, per, scope, model, tenant)" },
      { capped(MODEL, '{"videos": 0.1000004}'), "--spend-limit: a create of videos cannot be counted exactly: its "
        .. "price, 0.1000004, is finer than the ledger's unit, a millionth (0.000001); give --prices a price for "
        .. "videos, rounded up to a millionth: 0.100001" },
      { capped('{"amount": 1}', ALL, false), "--spend-limit needs --journal PATH or --store URL: the spend is counted "
        .. "there, across runs" },
    } do
      for _, command in ipairs { "create", "generate" } do
        local args = with(case[1])
        args[1] = command
        local r = run(args, env())
        assert.equals(2, r.code, case[2])
        assert.equals(1, lines(r.err)[1]:find("starvideos " .. command .. ": " .. case[2], 1, true), r.err)
      end
    end
    helper.write_file(dir .. "/p.txt", "a cat\n")
    local r = run({ "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--prices", ALL, "--spend-limit", '{"amount": "NaN"}' }, env())
    assert.equals(2, r.code)
    assert.equals('starvideos batch: --spend-limit: amount: a finite amount >= 0 expected, got "NaN"', lines(r.err)[1])
    r = run({ "keep", "--journal", journal, "--dir", dir, "--once", "--spend-limit", '{"amount": 1}' }, env())
    assert.equals(2, r.code)
    assert.matches("^starvideos keep: %-%-spend%-limit: a create of starvideos_o3 cannot be counted", lines(r.err)[1])
    assert.same({}, posts())
  end)

  it("spend prints each limit's spent, reserved and amount and when it resets (--json: client:spend()'s list); "
    .. "list --spend-limit the same lines after the list", function()
    local journal = dir .. "/tasks.jsonl"
    local limits = '[{"amount": 2, "scope": "model", "model": "videos"}, {"amount": 2, "scope": "tenant"}, '
      .. '{"amount": 10, "per": "day"}]'
    for _, tenant in ipairs { "alice", "bob", "alice" } do
      assert.equals(0, run(with(CREATE, "--journal", journal, "--prices", ALL, "--tenant", tenant, "--spend-limit",
        limits), env()).code)
    end
    local requests = #emu:requests()
    local r = run({ "spend", "--journal", journal, "--prices", ALL, "--spend-limit", limits }, {}) -- (no key: read)
    assert.equals(0, r.code, r.err)
    local l = lines(r.out)
    assert.equals(4, #l, r.out)
    assert.equals("model videos, in the ledger's life: 1.2 spent, 0 reserved, of 2; never resets", l[1])
    assert.equals('tenant "alice", in the ledger\'s life: 0.8 spent, 0 reserved, of 2; never resets', l[2])
    assert.equals('tenant "bob", in the ledger\'s life: 0.4 spent, 0 reserved, of 2; never resets', l[3])
    assert.matches("^the key, per day: [%d.]+ spent, 0 reserved, of 10; resets %d%d%d%d%-%d%d%-%d%d 00:00:00 UTC "
      .. "%(in %d+ s%)$", l[4])
    r = run({ "spend", "--journal", journal, "--prices", ALL, "--spend-limit", limits, "--tenant", "bob", "--json" },
      {})
    assert.equals(0, r.code, r.err)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.equals(3, #doc)
    assert.same({ "tenant", "bob", 0.4, 0, 2, "tenant" }, { doc[2].scope, doc[2].tenant, doc[2].spent,
      doc[2].reserved, doc[2].amount, doc[2].limit.scope })
    assert.is_nil(doc[1].resets_at)
    assert.is_number(doc[3].resets_at)
    r = run({ "list", "--journal", journal, "--prices", ALL, "--spend-limit", MODEL }, {})
    assert.equals(0, r.code, r.err)
    l = lines(r.out)
    assert.equals("3 tasks: 3 created; cost 1.2", l[#l - 1])
    assert.equals("model videos, in the ledger's life: 1.2 spent, 0 reserved, of 1; never resets", l[#l])
    r = run({ "list", "--journal", journal, "--prices", ALL, "--spend-limit", MODEL, "--json" }, {})
    l = lines(r.out)
    assert.equals(4, #l, r.out)
    assert.same({ "model", 1.2, 1 }, { cjson.decode(l[4]).scope, cjson.decode(l[4]).spent, cjson.decode(l[4]).amount })
    assert.equals(requests, #emu:requests(), "a journal's spend is read with no network")
    -- a tenant's plan counts that tenant's spend: alice's next create passes her limit, bob's does not
    local tighter = limits:gsub('"amount": 2, "scope": "tenant"', '"amount": 1, "scope": "tenant"')
    for tenant, want in pairs { alice = { 0, 1 }, bob = { 1, 0 } } do
      r = run({ "generate", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--journal", journal, "--key",
        "dog", "--tenant", tenant, "--prices", ALL, "--spend-limit", tighter, "--dry-run", "--json" }, env())
      assert.equals(0, r.code, r.err)
      doc = assert(cjson.decode(r.out), r.out)
      assert.same(want, { doc.creates, doc.refused }, tenant)
      if tenant == "alice" then
        assert.matches('^spend_limit%[2%]: 0%.8 spent of tenant "alice" in the ledger\'s life %(at most 1%)',
          doc.entries[1].error.message)
      end
    end
    helper.write_file(dir .. "/none.jsonl", "")
    r = run({ "spend", "--journal", dir .. "/none.jsonl", "--prices", ALL, "--spend-limit",
      '{"amount": 2, "per": "day", "scope": "tenant"}' }, {})
    assert.equals(0, r.code, r.err)
    assert.matches("^every tenant %(none spent yet%), per day: 0 spent, 0 reserved, of 2; resets %d%d%d%d%-%d%d%-%d%d "
      .. "00:00:00 UTC %(in %d+ s%)$", lines(r.out)[1])
    r = run({ "spend", "--journal", journal, "--prices", ALL }, {})
    assert.equals(2, r.code)
    assert.equals("starvideos spend: --spend-limit JSON is required", lines(r.err)[1])
    r = run({ "spend", "--prices", ALL, "--spend-limit", MODEL }, {})
    assert.equals(2, r.code)
    assert.equals("starvideos spend: --journal PATH or --store URL is required (or set STARVIDEOS_STORE)",
      lines(r.err)[1])
  end)

  it("a limit the creates were not made with reads what they spent in its window: spend says it (compacted too), "
    .. "and the next create past it is refused, not sent", function()
    local journal = dir .. "/tasks.jsonl"
    for i = 1, 5 do
      local r = run({ "create", "--model", "videos", "--prompt", "a cat " .. i, "--duration", "5", "--journal", journal,
        "--prices", PRICE }, env())
      assert.equals(0, r.code, r.err)
    end
    local limit = '{"amount": 2, "per": "day", "scope": "model", "model": "videos"}'
    local r = run({ "list", "--journal", journal }, {})
    assert.equals("5 tasks: 5 created; cost 2", lines(r.out)[#lines(r.out)])
    r = run({ "spend", "--journal", journal, "--prices", PRICE, "--spend-limit", limit }, {})
    assert.equals(0, r.code, r.err)
    assert.matches("^model videos, per day: 2 spent, 0 reserved, of 2; resets ", lines(r.out)[1])
    assert.equals(0, run({ "compact", "--journal", journal }, {}).code)
    r = run({ "spend", "--journal", journal, "--prices", PRICE, "--spend-limit", limit }, {})
    assert.matches("^model videos, per day: 2 spent, 0 reserved, of 2; resets ", lines(r.out)[1], "compacted")
    r = run(with(CREATE, "--journal", journal, "--prices", PRICE, "--spend-limit", limit), env())
    assert.equals(1, r.code, r.err)
    assert.matches("spend_limited: %-%-spend%-limit: 2 spent of model videos in this window", r.err)
    assert.equals(5, emu:creates())
  end)

  it("a create sent and never answered is counted (maybe paid) by spend and by --dry-run: the plan's create past "
    .. "the limit with it is refused", function()
    local journal = dir .. "/tasks.jsonl"
    local limit = '{"amount": 0.5, "scope": "model", "model": "videos"}'
    emu:fault { method = "POST", path = "/v1/", after = true, drop = true }
    local r = run(with(CREATE, "--journal", journal, "--key", "lost", "--prices", PRICE, "--spend-limit", limit), env())
    emu:clear_faults()
    assert.equals(1, r.code, r.err)
    assert.equals(1, emu:creates())
    r = run({ "spend", "--journal", journal, "--prices", PRICE, "--spend-limit", limit, "--json" }, {})
    assert.equals(0, r.code, r.err)
    local doc = assert(cjson.decode(r.out), r.out)
    assert.equals(0.4, doc[1].spent + doc[1].reserved)
    r = run({ "generate", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--journal", journal, "--key",
      "dog", "--prices", PRICE, "--spend-limit", limit, "--dry-run", "--json" }, env())
    assert.equals(0, r.code, r.err)
    doc = assert(cjson.decode(r.out), r.out)
    assert.same({ 0, 1, "spend_limited", 0.4 }, { doc.creates, doc.refused, doc.entries[1].reason,
      doc.entries[1].error.spent })
    r = run({ "generate", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--journal", journal, "--key",
      "dog", "--prices", PRICE, "--spend-limit", '{"amount": 0.8, "scope": "model", "model": "videos"}', "--dry-run",
      "--json" }, env())
    doc = assert(cjson.decode(r.out), r.out)
    assert.same({ 1, 0 }, { doc.creates, doc.refused }, "0.4 + 0.4 is within 0.8")
    assert.equals(1, emu:creates())
  end)

  it("a create asked and not answered yet is reserved: spend shows it, and --dry-run counts it", function()
    local journal = dir .. "/tasks.jsonl"
    local limit = '{"amount": 0.5, "scope": "model", "model": "videos"}'
    emu:fault { method = "POST", path = "/v1/", delay = 60 } -- (its answer never comes while the spec looks)
    local proc = C.background(with(CREATE, "--journal", journal, "--prices", PRICE, "--spend-limit", limit), env())
    C.until_true(function() return (helper.read_file(journal) or ""):find('"event":"pending"', 1, true) end)
    C.until_true(function() return #posts() == 1 end) -- (asked: its pending record is written before it is sent, and
    -- a loaded machine's child was killed before sending it once)
    local r = run({ "spend", "--journal", journal, "--prices", PRICE, "--spend-limit", limit }, {})
    local r2 = run({ "generate", "--model", "videos", "--prompt", "a dog", "--duration", "5", "--journal", journal,
      "--key", "dog", "--prices", PRICE, "--spend-limit", limit, "--dry-run", "--json" }, env())
    proc:stop("KILL")
    emu:clear_faults()
    assert.equals(0, r.code, r.err)
    assert.equals("model videos, in the ledger's life: 0 spent, 0.4 reserved, of 0.5; never resets", lines(r.out)[1])
    assert.equals(0, r2.code, r2.err)
    local doc = assert(cjson.decode(r2.out), r2.out)
    assert.same({ 0, 1, "spend_limited" }, { doc.creates, doc.refused, doc.entries[1].reason })
    assert.equals(1, #posts())
  end)

  it("batch --spend-limit: the creates past the limit are refused, nothing sent, and the summary counts them; "
    .. "--dry-run said which before, and the run sent exactly the creates it listed", function()
    helper.write_file(dir .. "/p.txt", "a cat\na dog\na fox\nan owl\n")
    local args = { "batch", "--prompts-file", dir .. "/p.txt", "--out-dir", dir .. "/v", "--model", "videos",
      "--duration", "5", "--interval", "0.1", "--prices", PRICE, "--spend-limit", MODEL }
    local r = run(with(args, "--dry-run"), env())
    assert.equals(0, r.code, r.err)
    local l = lines(r.out)
    assert.matches("^create +0002%.mp4 %(line 2%) +videos +0%.4 +new: ", l[3])
    assert.equals(1, l[4]:find("none    0003.mp4 (line 3)  videos  0.4    spend_limited: --spend-limit: 0.8 spent of "
      .. "model videos in the ledger's life (at most 1): the next create is refused for good", 1, true), l[4])
    assert.matches("^none +0004%.mp4 %(line 4%) +videos +0%.4 +spend_limited: ", l[5])
    assert.equals("2 creates of videos, cost 0.8; 0 downloads; 2 left as they are (2 creates refused by "
      .. "--spend-limit); nothing was sent", l[6])
    r = run(with(args, "--dry-run", "--json"), env())
    local doc = assert(cjson.decode(r.out), r.out)
    assert.same({ 2, 2, 0.8 }, { doc.creates, doc.refused, doc.cost })
    assert.same({ "spend_limited", "spend_limited", 0.8 }, { doc.entries[3].reason, doc.entries[4].error.kind,
      doc.entries[4].error.spent })
    assert.same({}, emu:requests())
    r = run(args, env())
    assert.equals(1, r.code)
    l = lines(r.out)
    assert.matches("^0003%.mp4 %(line 3%)  spend_limited: %-%-spend%-limit: 0%.8 spent of model videos", l[#l - 2])
    assert.equals("4 videos: 2 saved in " .. dir .. "/v, 2 not (2 refused by --spend-limit: nothing sent)", l[#l])
    local progress -- (off a terminal, the progress lines: the last one says what the end says)
    for _, line in ipairs(l) do if line:find(" created, ", 1, true) then progress = line end end
    assert.equals("4 videos: 2 created, 2 done, 2 failed (2 refused by --spend-limit)", progress)
    assert.equals(2, #posts())
    -- what is spent now counts: a generate's plan on the same journal is refused, nothing sent
    r = run({ "generate", "--model", "videos", "--prompt", "a hen", "--duration", "5", "--journal",
      dir .. "/v/starvideos.jsonl", "--key", "hen", "--prices", PRICE, "--spend-limit", MODEL, "--dry-run" }, env())
    assert.equals(0, r.code, r.err)
    assert.matches("\nnone +hen +videos +0%.4 +spend_limited: %-%-spend%-limit: 0%.8 spent", r.out)
    assert.matches("\n0 creates, cost 0; 0 downloads; 1 left as it is %(1 create refused by %-%-spend%-limit%)", r.out)
    r = run({ "keep", "--journal", dir .. "/v/starvideos.jsonl", "--dir", dir, "--prices", PRICE, "--spend-limit",
      MODEL, "--dry-run", "--json" }, env())
    assert.equals(0, r.code, r.err)
    assert.same({ 0, 0 }, { cjson.decode(r.out).creates, cjson.decode(r.out).refused })
    assert.equals(2, #posts())
  end)
  it("--failed-prices: a task that fails at the service counts its failed price in --spend-limit and its cost; "
    .. "a text that is not a JSON object of prices refused (exit 2), naming the flag", function()
    local journal = dir .. "/tasks.jsonl"
    local failed = '{"videos": 0}'
    emu:config { failures = { { kind = "service", prompt = "boom" } } }
    local r = run({ "generate", "--model", "videos", "--prompt", "boom", "--duration", "5", "--journal", journal,
      "--prices", PRICE, "--failed-prices", failed, "--spend-limit", MODEL, "--interval", "0.05" }, env())
    emu:config { failures = {} }
    assert.equals(1, r.code, r.err)
    r = run({ "spend", "--journal", journal, "--prices", PRICE, "--spend-limit", MODEL }, {})
    assert.equals("model videos, in the ledger's life: 0 spent, 0 reserved, of 1; never resets", lines(r.out)[1])
    local before = #posts()
    for i, code in ipairs { 0, 0, 1 } do
      r = run(with(CREATE, "--journal", journal, "--key", "k" .. i, "--prices", PRICE, "--spend-limit", MODEL), env())
      assert.equals(code, r.code, r.err)
    end
    assert.equals(before + 2, #posts(), "0.4 released: two creates of 0.4 more, not one")
    r = run({ "list", "--journal", journal, "--prices", PRICE }, {})
    assert.equals("3 tasks: 2 created, 1 failed; cost 0.8", lines(r.out)[#lines(r.out)], "its cost 0")
    for _, c in ipairs {
      { "{videos", "--failed-prices expects a JSON object of prices by model, e.g. '{\"videos\": 0.4}', got text "
        .. "that is not JSON" },
      { "[0]", "--failed-prices expects a JSON object of prices by model" },
      { '{"videos": -1}', "--failed-prices: failed_prices.videos: a price >= 0 expected, got -1" },
      { '{"nope": 0}', '--failed-prices: failed_prices["nope"]: not a model' },
    } do
      r = run(with(CREATE, "--journal", journal, "--failed-prices", c[1]), env())
      assert.equals(2, r.code, r.err)
      assert.truthy(lines(r.err)[1]:find("starvideos create: " .. c[2], 1, true), r.err)
    end
    assert.equals(before + 2, #posts(), "nothing sent")
  end)
end)
