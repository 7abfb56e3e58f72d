-- The studio's spend limits (docs/studio.md, docs/spend.md) in the real host: tools/studio.sh's nginx with
-- STUDIO_SPEND_LIMIT (the key 1.20 for good, each browser 0.80 for good, the key 100 a month) and every model
-- priced, against the emulator, in Debian's chromium (spec/hosts/support/studio_browser.js, phase "spend").
-- Browser A makes two creates of videos (0.40 each) and its panel shows them spent; its third is refused by its
-- tenant's limit, with the library's message on its card and above the form (its tenant named "you (this
-- browser)", as the panel names it, and no path of the server's), and not sent.  Browser B (another
-- tenant) makes one, which fills the key's limit, and its second is refused by the key's; A's page shows the key's
-- spend B made, pushed by its event stream.  The emulator counts 3 creates.  Waits for conditions, never for a
-- time; the limits that refuse have no window, so no day's turn can change a case.

local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("the studio's spend limits", { "/usr/sbin/nginx", "curl" }) then return end
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local studio_run = require "spec.hosts.support.studio_run"

local q = helper.shell_quote

if studio_run.missing() then
  describe("the studio's spend limits", function() pending(studio_run.missing()) end)
  return
end

local LIMITS = '[{"amount": 1.2}, {"amount": 0.8, "scope": "tenant"}, {"amount": 100, "per": "month"}]'
local PRICES = "videos=0.40,videos_fast=0.25,videos_stable=1,videos_stable_fast=0.5,starvideos_o3=2"

-- The panel's row of limit i.
local function row(panel, i)
  for _, r in ipairs(panel) do if r.limit == i then return r end end
  error("no row of limit " .. i .. " in " .. cjson.encode(panel))
end

describe("the studio's spend limits", function()
  local emu, dir, port, proc, url, seen

  lazy_setup(function()
    emu = helper.emulator { key = "sk-studio-spend-FAKE", queued = 1, processing = 30 }
    dir = helper.tmpdir()
    assert(helper.execute("chmod 755 " .. q(dir))) -- (started as root, the studio's workers are nobody)
    port = helper.free_ports(1)[1]
    proc, url = studio_run.start(dir, port, emu, { STUDIO_SPEND_LIMIT = LIMITS, STUDIO_PRICES = PRICES,
      STUDIO_TENANT_LIMIT = "" })
  end)

  lazy_teardown(function()
    if proc then studio_run.stop(proc, port) end
    if emu then emu:stop() end
    if seen and helper.exists(dir .. "/spend.png") then
      helper.execute("cp " .. q(dir .. "/spend.png") .. " /tmp/starvideos-studio-spend.png")
      print("studio spend screenshot: /tmp/starvideos-studio-spend.png")
    end
    helper.cleanup()
  end)

  it("shows the key's and the browser's spend, and refuses a create past a limit with the library's message",
    function()
    seen = studio_run.browser { phase = "spend", url = url, screenshot = dir .. "/spend.png" }
    -- at first: nothing spent, each limit's amount, the month's end
    assert.equal(3, #seen.a_before)
    assert.same({ "key", "tenant", "key" }, { seen.a_before[1].scope, seen.a_before[2].scope, seen.a_before[3].scope })
    assert.same({ 0, 0, 1.2 }, { row(seen.a_before, 1).spent, row(seen.a_before, 1).reserved,
      row(seen.a_before, 1).amount })
    assert.equal(0.8, row(seen.a_before, 2).amount)
    assert.matches("never", row(seen.a_before, 1).text)
    assert.matches("%d%d%d%d%-%d%d%-01 00:00 UTC", row(seen.a_before, 3).text)
    -- A's two creates, spent on its panel
    for _, c in ipairs(seen.a_asks) do assert.is_not.equal("failed", c.state, c.error) end
    assert.same({ 0.8, 0.8, 0.8 }, { row(seen.a_after_two, 1).spent, row(seen.a_after_two, 2).spent,
      row(seen.a_after_two, 3).spent })
    -- A's third: its tenant's limit, the library's message on the card and above the form
    assert.equal("failed", seen.a_refused.state)
    assert.equal("spend_limit[2]: 0.8 spent by you (this browser) in the ledger's life (at most 0.8): the next create "
      .. "is refused for good (a limit without per)", seen.a_refused.error) -- (neither its tenant's id nor a path)
    assert.equal(seen.a_refused.error, seen.a_error)
    assert.is_nil(seen.a_refused.cost, "a create not sent shows no cost")
    -- B: its own tenant at nothing, the key's spend A made; its one create fills the key's limit
    assert.same({ 0.8, 0 }, { row(seen.b_before, 1).spent, row(seen.b_before, 2).spent })
    assert.is_not.equal("failed", seen.b_asks[1].state, seen.b_asks[1].error)
    assert.same({ 1.2, 0.4 }, { row(seen.b_after_one, 1).spent, row(seen.b_after_one, 2).spent })
    assert.equal("failed", seen.b_refused.state)
    assert.equal("spend_limit[1]: 1.2 spent of the key in the ledger's life (at most 1.2): the next create is refused "
      .. "for good (a limit without per)", seen.b_refused.error)
    assert.equal(seen.b_refused.error, seen.b_error)
    -- A's page: the key's spend pushed as B's task was made; its own tenant's unchanged
    assert.same({ 1.2, 0.8 }, { row(seen.a_end, 1).spent, row(seen.a_end, 2).spent })
    -- nothing sent for the two refused
    assert.equal(3, emu:creates())
  end)

  it("does not start on a spend limit the library refuses, saying why: nothing sent", function()
    local before = emu:creates()
    local other = helper.free_ports(1)[1]
    for more, says in pairs {
      [{ STUDIO_SPEND_LIMIT = '{"amount": -1}', STUDIO_PRICES = PRICES }] =
        "spend_limit.amount: a finite amount >= 0 expected, got -1",
      [{ STUDIO_SPEND_LIMIT = '[{"amount": 1}, {"amount": 2, "scope": "team"}]', STUDIO_PRICES = PRICES }] =
        'spend_limit[2].scope: "key", "tenant" or "model" expected, got "team"',
      [{ STUDIO_SPEND_LIMIT = '{"amount": 5, "per": "day"}', STUDIO_PRICES = "videos=0.40" }] =
        "a create of starvideos_o3 cannot be counted: prices has no price for starvideos_o3",
      [{ STUDIO_SPEND_LIMIT = "amount=5", STUDIO_PRICES = PRICES }] = "STUDIO_SPEND_LIMIT: expected a limit as JSON",
    } do
      local status, out = studio_run.refused(dir .. "/refused", other, emu, more)
      assert.equal(1, status, out)
      assert.truthy(out:find(says, 1, true), out)
      assert.truthy(out:find("nginx did not start", 1, true), out)
    end
    assert.equal(before, emu:creates())
  end)
end)
