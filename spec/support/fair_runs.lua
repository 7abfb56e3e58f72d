-- Tenant B's first creates beside tenant A's backlog, in real processes on one key's budget (issue 82): A asks 200
-- creates (`a` jobs), and once 8 of A's creates are answered (its burst and a second's worth: the key's last second
-- full of A's) B asks 5, in another process (`two`) or in A's own
-- (`one`, beside 100 of A's); B's creates are counted at the emulator.  The fair share (docs/tenants-and-costs.md)
-- lets B's creates go in turn with A's, each at its share: never behind A's backlog.  What the verdict reads is the
-- order the emulator logged the creates in, never how long they took (seconds are said, for the note).
local helper = require "spec.helper"

local M = {}

-- The child: `a N` (A's N creates as jobs, driven until killed), `b` (B's 5, its client made: "asking", then until
-- each has its task: "done"), or `ab N` (A's N, then B's 5 once 8 of A's have their tasks).  arg: the mode, N, the
-- emulator's URL, its key, the ledger's option (store or journal; none: the process alone) and place.
local CHILD = [=[
local starvideos = require "starvideos"
local core = require "starvideos.core"
local mode, n, url, key, ledger, place = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5], arg[6]
local o = { base_url = url, api_key = key, requests_per_second = 5 }
if ledger ~= "none" then o[ledger] = place end
local c = assert(starvideos.new(o))
local function start(tenant, count)
  local jobs = {}
  for i = 1, count do
    jobs[i] = assert(c:start({ model = "videos", prompt = tenant .. " " .. i, duration = 5 }, { tenant = tenant }))
  end
  return jobs
end
local function made(jobs)
  local k = 0
  for _, j in ipairs(jobs) do
    assert(not (j.done and j.err), j.err and j.err.message)
    if j.id then k = k + 1 end
  end
  return k
end
local a = mode ~= "b" and start("A", n) or {}
if mode == "ab" then repeat c:step(0.01) until made(a) >= 8 end
if mode == "a" then
  io.stdout:write("started\n"); io.stdout:flush()
  while true do c:step(1) end
end
io.stdout:write(string.format("asking %.6f\n", core.wall())); io.stdout:flush()
local b = start("B", 5)
repeat c:step(0.01) until made(b) == 5
io.stdout:write("done\n"); io.stdout:flush()
os.exit(0)
]=]

-- What the emulator logged of B's creates beside A's, B having asked at `at` (a wall clock's seconds, as the
-- emulator's): {b = B's creates' order at the server, a_before = A's creates logged before B asked, a_between = A's
-- creates between B's first and last, seconds = from B's asking to each of its creates}.  The prompts are "A 1",
-- "B 3" ...
function M.tally(emu, at)
  local out = { b = {}, a_before = 0, a_between = 0, seconds = {} }
  local a_since = 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then
      local body = type(r.body) == "table" and r.body.prompt or r.body or ""
      local tenant = body:match('"prompt"%s*:%s*"(%u) ') or body:match("^(%u) ")
      if tenant == "B" then
        out.b[#out.b + 1], out.a_between = #out.b + 1, out.a_between + (out.b[1] and a_since or 0)
        out.seconds[#out.seconds + 1], a_since = r.at - at, 0
      elseif r.at < at then
        out.a_before = out.a_before + 1
      else
        a_since = a_since + 1
      end
    end
  end
  return out
end

-- One run on a fresh emulator and ledger (ledger(dir) -> option, place; "none": no ledger): M.tally's.
function M.run(form, ledger)
  local emu = helper.emulator { key = "k-fair-runs", queued = 60, processing = 60 }
  local dir = helper.tmpdir()
  local option, place = ledger(dir)
  local procs = {}
  local ok, res = pcall(function()
    local function child(mode, n)
      local p = helper.run_lua(dir, "fair_child", CHILD, { mode, tostring(n), emu.url, emu.key, option, place })
      procs[#procs + 1] = p
      return p
    end
    local b
    if form == "two" then
      local a = child("a", 200)
      assert(a.pipe:read("*l") == "started", "A's process did not start")
      assert(helper.wait_until(function() return emu:creates() >= 8 end, 60), "A's first creates never came")
      b = child("b", 0)
    else
      b = child("ab", 100)
    end
    local asking = b.pipe:read("*l")
    local at = tonumber((asking or ""):match("^asking (%S+)$"))
    if not at then error("B's process said " .. tostring(asking) .. ": " .. tostring(b.pipe:read("*a")), 0) end
    local last = b.pipe:read("*l")
    if last ~= "done" then error("B's process ended: " .. tostring(last) .. " " .. tostring(b.pipe:read("*a")), 0) end
    return M.tally(emu, at)
  end)
  for _, p in ipairs(procs) do
    helper.execute("kill -9 " .. p.pid .. " 2>/dev/null")
    p.pipe:close()
  end
  emu:stop()
  if not ok then error(res, 0) end
  return res
end

-- The verdict of one run: B's 5 at the server, each in turn with A's (B's share of the budget: A's creates between
-- B's first and last, 2 at least (B's alone before issue 82's fix on Redis: 0), 8 at most (about one a B's create,
-- twice over: behind A's backlog it was 100 and more, or B after A's last)).
function M.check(assert, res, what)
  local said = {}
  for i, s in ipairs(res.seconds) do said[i] = string.format("%.2f", s) end
  io.stderr:write(string.format("%s: B's creates %s s after asking, A's between them %d\n", what,
    table.concat(said, " "), res.a_between))
  assert.equal(5, #res.b, what .. ": B's creates at the server")
  assert.is_true(res.a_between >= 2 and res.a_between <= 8, string.format("%s: A's creates between B's first and "
    .. "last: %d (B's %s s after asking)", what, res.a_between, table.concat(said, " ")))
end

return M
