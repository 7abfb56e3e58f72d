-- Issue 82 in the studio (examples/studio/, docs/studio.md): two browsers, each a tenant (its signed cookie), on the
-- studio's key, whose budget (the library's default requests_per_second, 10) is in nginx's `lua_shared_dict
-- starvideos`.  Browser A's page sends 200 creates as the page sends one (its fetch, its own token; STUDIO_TENANT_LIMIT
-- 1000/60 lets them all through), and once 8 of A's reached the emulator browser B's page sends 5
-- (spec/hosts/support/studio_fair.js, Debian's chromium through playwright-core).  The verdict is
-- spec/support/fair_runs.lua's, on the order the emulator logged the creates in: B's in turn with A's, never behind
-- A's backlog; the seconds from B's asking (the page's wall clock) are said.  The emulator's tasks are long (60 s
-- queued, 60 processing) and the studio polls on the library's schedule, so the polls stay few.  A fresh studio,
-- emulator and browser a run (about 5 s), three runs (FAIR_RUNS=10 for more), each run's verdict said: with the share
-- broken (each tenant given the whole rate) 8 runs of 10 failed it, B's creates out of turn.
local nginx_run = require "spec.support.nginx_run"
if nginx_run.pending_unless_ready("two browsers' creates on the studio's key", { "/usr/sbin/nginx", "curl" }) then
  return
end
local helper = require "spec.helper"
local cjson = require "cjson.safe"
local Runs = require "spec.support.fair_runs"
local studio_run = require "spec.hosts.support.studio_run"

local q, str_format = helper.shell_quote, string.format
local KEY = "sk-studio-fair-FAKE-0b7c41e2d9a8"
local RUNS = tonumber(os.getenv("FAIR_RUNS") or "") or 3
local A, B = 200, 5

if studio_run.missing() then
  describe("two browsers' creates on the studio's key", function() pending(studio_run.missing()) end)
  return
end

-- A line of the browsers' script: its JSON (after prefix), or an error naming what it said instead.
local function said(proc, line, prefix)
  local r = cjson.decode((line or ""):sub(#prefix + 1))
  if line and line:sub(1, #prefix) == prefix and type(r) == "table" and not r.failure then return r end
  error("the browsers said: " .. tostring(line) .. "\n" .. (proc.pipe:read("*a") or ""), 0)
end

-- Each of a page's answers was the studio's 202 (the create taken, its card made): how many.
local function taken(who, answers)
  local n = 0
  for _, status in ipairs(answers) do
    assert(status == 202, str_format("%s's page was answered %s", who, tostring(status)))
    n = n + 1
  end
  return n
end

-- One run on a fresh studio, emulator and browser: Runs.tally's, B's asking the page's wall clock.
local function run()
  local emu = helper.emulator { key = KEY, queued = 60, processing = 60 }
  local dir = helper.tmpdir()
  -- started as root, the studio's workers are nobody: they must reach its folder
  assert(helper.execute("chmod 755 " .. q(dir)))
  local port = helper.free_ports(1)[1]
  local studio, pages
  local ok, res = pcall(function()
    local url
    studio, url = studio_run.start(dir, port, emu, { STUDIO_TENANT_LIMIT = "1000/60", STUDIO_INTERVAL = "" })
    local go = dir .. "/go"
    pages = studio_run.spawn({ url = url, model = "videos", a = A, b = B, go = go }, "studio_fair.js")
    assert.equal(A, taken("A", said(pages, pages.pipe:read("*l"), "a ").answers))
    assert(helper.wait_until(function() return emu:creates() >= 8 end, 60, Runs.EVERY), "A's first creates never came")
    helper.write_file(go, "")
    local b = said(pages, pages.pipe:read("*l"), "").b
    assert.equal(B, taken("B", b.answers))
    local out
    assert(helper.wait_until(function()
      out = Runs.tally(emu, b.at / 1000)
      return #out.b == B
    end, 60, Runs.EVERY), "B's creates did not all reach the emulator in 60 s")
    return out
  end)
  if pages then
    helper.execute("kill " .. pages.pid .. " 2>/dev/null") -- (done: it ended already; else playwright's TERM)
    pages.pipe:close()
  end
  if studio then studio_run.stop(studio, port) end
  emu:stop()
  if not ok then error(res, 0) end
  return res
end

describe("two browsers' creates on the studio's key", function()
  teardown(function() helper.cleanup() end)

  it(str_format("B's 5 creates in turn with A's 200, two browsers (a tenant each) in the studio (%d runs)", RUNS),
    function()
    local failed = {}
    for i = 1, RUNS do
      local res = run()
      io.stderr:write(str_format("studio run %d: A's at the emulator before B asked %d\n", i, res.a_before))
      local ok, err = pcall(Runs.check, assert, res, "studio run " .. i)
      if not ok then failed[#failed + 1] = tostring(err) end
    end
    assert(#failed == 0, table.concat(failed, "\n"))
  end)
end)
