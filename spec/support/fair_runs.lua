-- Tenant B's first creates beside tenant A's backlog, in real processes on one key's budget (issue 82): A asks 200
-- creates, and once 8 of A's creates are answered (its burst and a second's worth: the key's last second full of
-- A's) B asks 5; B's creates are counted at the emulator.  The forms: `two` (A's as jobs in one process, B's in
-- another), `one` (B's beside 100 of A's jobs in one process), `calls` (a Lua script's calls: A's generate_all of
-- 200 in one process, B's client:create five times in another) and `cli` (the command line: A's batch of 200 with
-- --tenant A, B's batch of 5 with --tenant B, each a process).  The fair share (docs/tenants-and-costs.md)
-- lets B's creates go in turn with A's, each at its share: never behind A's backlog.  What the verdict reads is the
-- order the emulator logged the creates in, never how long they took (seconds are said, for the note).
local helper = require "spec.helper"
local core = require "starvideos.core"

local q = helper.shell_quote

local M = {}

-- The child: `a N` (A's N creates as jobs, driven until killed), `b` (B's 5, its client made: "asking", then until
-- each has its task: "done"), `ab N` (A's N, then B's 5 once 8 of A's have their tasks), `calls_a N` (A's N in one
-- generate_all, until killed) or `calls_b` (B's 5 by client:create in turn: "asking", then "done").  arg: the mode,
-- N, the emulator's URL, its key, the ledger's option (store or journal; none: the process alone) and place.
local CHILD = [=[
local starvideos = require "starvideos"
local core = require "starvideos.core"
local mode, n, url, key, ledger, place = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5], arg[6]
local o = { base_url = url, api_key = key, requests_per_second = 5 }
if ledger ~= "none" then o[ledger] = place end
local c = assert(starvideos.new(o))
local function params(tenant, i) return { model = "videos", prompt = tenant .. " " .. i, duration = 5 } end
local function start(tenant, count)
  local jobs = {}
  for i = 1, count do
    jobs[i] = assert(c:start(params(tenant, i), { tenant = tenant }))
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
if mode == "calls_a" then
  local list = {}
  for i = 1, n do list[i] = params("A", i) end
  io.stdout:write("started\n"); io.stdout:flush()
  c:generate_all(list, { tenant = "A", out = arg[0]:match("^(.*)/") .. "/a%04d.mp4" })
  os.exit(0)
elseif mode == "calls_b" then
  io.stdout:write(string.format("asking %.6f\n", core.wall())); io.stdout:flush()
  for i = 1, 5 do assert(c:create(params("B", i), { tenant = "B" })) end
  io.stdout:write("done\n"); io.stdout:flush()
  os.exit(0)
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

-- The command line's batch of count prompts of tenant ("A 1" ...) on a store, in dir: its process (killed at the
-- run's end).
local function cli_batch(dir, emu, store, tenant, count)
  local file, lines = dir .. "/" .. tenant .. ".txt", {}
  for i = 1, count do lines[i] = tenant .. " " .. i end
  helper.write_file(file, table.concat(lines, "\n") .. "\n")
  return helper.spawn(table.concat({ helper.CHILD_ENV, "STARVIDEOS_API_KEY=" .. q(emu.key),
    "STARVIDEOS_BASE_URL=" .. q(emu.url), q(helper.lua), q(helper.root .. "/bin/starvideos"), "batch",
    "--prompts-file", q(file), "--out-dir", q(dir .. "/" .. tenant), "--model videos --duration 5 --tenant", tenant,
    "--store", q(store), "2>&1" }, " "))
end

-- The emulator's log is read four times a second while a run waits on it: a read is the whole log (read each 10 ms,
-- it slowed the emulator the creates go to).
M.EVERY = 0.25

-- One run on a fresh emulator and ledger (ledger(dir) -> option, place; "none": no ledger; the `cli` form takes
-- a store): M.tally's.
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
    local function a_started(a)
      assert(a.pipe:read("*l") == "started", "A's process did not start")
      assert(helper.wait_until(function() return emu:creates() >= 8 end, 60, M.EVERY), "A's first creates never came")
    end
    if form == "cli" then
      assert(option == "store", "the command line's tenants share a key's budget on a store")
      procs[1] = cli_batch(dir, emu, place, "A", 200)
      assert(helper.wait_until(function() return emu:creates() >= 8 end, 60, M.EVERY), "A's first creates never came")
      local at = core.wall()
      procs[2] = cli_batch(dir, emu, place, "B", 5)
      assert(helper.wait_until(function() return #M.tally(emu, at).b >= 5 end, 120, M.EVERY),
        "B's 5 creates never came")
      return M.tally(emu, at)
    end
    local b
    if form == "two" or form == "calls" then
      local prefix = form == "calls" and "calls_" or ""
      a_started(child(prefix .. "a", 200))
      b = child(prefix .. "b", 0)
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
