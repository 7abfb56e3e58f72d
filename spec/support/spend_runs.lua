-- spend_limit with real processes, on one ledger (a journal shared by a host's processes, a store shared by a
-- fleet's): the races and kills of issue 56, run by spec/hosts/spend_journal_spec.lua and
-- rocks/redis/spec/hosts/spend_fleet_spec.lua.  Each child (CHILD) is a process of its own with a client of the
-- ledger making keyed creates one after another (prompt and key "TAG-i"), a line each on stdout: "ok", or the
-- error's kind and field; and a line "warning PCT" each time a limit's step is said.
local helper = require "spec.helper"
local cjson = require "cjson.safe"

local M = {}
local q = helper.shell_quote

M.PRICES = { videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 }
M.KEY = "k-spend-runs"

-- arg: the ledger's option name and value, the emulator's URL, the count of creates, the tag, the limit's amount.
local CHILD = [[
local name, where, url, n, tag, amount = arg[1], arg[2], arg[3], tonumber(arg[4]), arg[5], tonumber(arg[6])
local opts = { api_key = "k-spend-runs", base_url = url, requests_per_second = 1000, lease = 1,
  prices = { videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 },
  spend_limit = { amount = amount, per = "day" },
  on_event = function(e) if e.field == "spend_limit" then io.stdout:write("warning ", e.percent, "\n") end end }
opts[name] = where
local client = require("starvideos").new(opts)
for i = 1, n do
  local key = tag .. "-" .. i
  local task, err = client:create({ model = "videos", prompt = key, duration = 5 }, { key = key })
  io.stdout:write(task and "ok" or (tostring(err.kind) .. " " .. tostring(err.field)), "\n")
  io.stdout:flush()
end
client:close()
]]

-- A run's children: M.start(...) each, then M.tally.
function M.new(dir, ledger_name, ledger_where, emu)
  local self = { dir = dir, name = ledger_name, where = ledger_where, emu = emu }
  helper.write_file(dir .. "/spend_child.lua", CHILD)
  function self.start(n, tag, amount, wrap) -- (wrap: a command the child runs under, e.g. faketime's)
    return helper.spawn(table.concat({ wrap or "", helper.CHILD_ENV, q(helper.lua), q(dir .. "/spend_child.lua"),
      q(ledger_name), q(ledger_where), q(emu.url), tostring(n), q(tag), tostring(amount), "2>&1" }, " "))
  end
  -- A client of the ledger in the spec's process (its spend, its pending creates).
  function self.client(amount)
    local opts = { api_key = M.KEY, base_url = emu.url, lease = 1, prices = M.PRICES,
      spend_limit = { amount = amount, per = "day" } }
    opts[ledger_name] = ledger_where
    return require("starvideos").new(opts)
  end
  return self
end

-- The lines of the processes once they ended, counted: {line = count}, and their text.
function M.tally(procs)
  local tally, all = {}, {}
  for _, p in ipairs(procs) do
    local text = p.pipe:read("*a") or ""
    p:close()
    all[#all + 1] = text
    for line in text:gmatch("[^\n]+") do tally[line] = (tally[line] or 0) + 1 end
  end
  return tally, table.concat(all)
end

-- The creates the emulator received, by prompt: {prompt -> count}, and how many.
function M.made(emu)
  local by, n = {}, 0
  for _, r in ipairs(emu:requests()) do
    if r.method == "POST" and r.path:find("^/v1/") then
      local p = (cjson.decode(r.body or "") or {}).prompt or "?"
      by[p], n = (by[p] or 0) + 1, n + 1
    end
  end
  return by, n
end

-- `procs` processes at once, each asking `each` creates of 0.40 against a key limit of `amount`: the outcomes
-- counted (and the warnings said), and the creates the emulator received.
function M.race(run, procs, each, amount, tag)
  local list = {}
  for i = 1, procs do list[i] = run.start(each, tag .. i, amount) end
  local tally, text = M.tally(list)
  local _, n = M.made(run.emu)
  return tally, n, text
end

-- kill -9 at random moments of `procs` processes asking `each` keyed creates (their answers held back `delay` s at
-- the emulator, so that kills fall between a create's pending record, its sending and its answer), then reruns:
-- what a user does after (the pending creates the kills left: adopted when the service made their task, found by
-- its prompt, else forgotten), checked at each step with `assert`.  Returns the figures.
function M.kills(run, procs, each, assert, seed)
  math.randomseed(seed)
  local emu, amount = run.emu, procs * each * 0.4 + 4
  emu:fault { method = "POST", path = "/v1/", delay = 0.15, after = true, count = 100000 }
  local list, killed = {}, 0
  for i = 1, procs do list[i] = run.start(each, "k" .. i, amount) end
  for _, p in ipairs(list) do
    helper.sleep(math.random() * 0.05)
    if helper.execute("kill -KILL " .. p.pid .. " 2>/dev/null") then killed = killed + 1 end
  end
  M.tally(list)
  emu:clear_faults()
  helper.sleep(1.2) -- (a store's lease of 1 s lapses; a journal's went with its process)
  local c = run.client(amount)
  local made_before, n_before = M.made(emu)
  local e = assert(c:spend())[1]
  assert.equal(0, e.reserved, "a reservation held past its lease")
  assert.truthy(e.spent + 1e-9 >= n_before * 0.4, e.spent .. " spent, " .. n_before .. " made")
  local adopted, forgot = 0, 0
  for _, p in ipairs(assert(c:pending())) do
    local found
    for _, t in ipairs(emu:tasks()) do if t.params.prompt == p.prompt then found = t.id end end
    assert(c.ledger:settle_pending(p["local"], found))
    if found then adopted = adopted + 1 else forgot = forgot + 1 end
  end
  local again = {}
  for i = 1, procs do again[i] = run.start(each, "k" .. i, amount) end
  local tally = M.tally(again)
  local by, n = M.made(emu)
  for prompt, count in pairs(by) do assert.equal(1, count, prompt .. " created " .. count .. " times") end
  assert.equal(procs * each, n, "every prompt made once")
  e = assert(c:spend())[1]
  assert.same({ string.format("%.2f", n * 0.4), 0 }, { string.format("%.2f", e.spent), e.reserved })
  c:close()
  return { killed = killed, before = n_before, adopted = adopted, forgot = forgot, made = n, tally = tally,
    first = made_before }
end

-- The cases on a ledger (`on`: what the lines printed say; make(dir, emu): the run of spend_runs.new; procs: how
-- many race), with busted's it and assert (b).  Each race: 10 creates of 0.40 a process against `amount`, `made`
-- of them reach the service, and each step is said once, whichever process says it (against 7.90, which creates
-- of 0.40 never fill, 100% is said by the first refusal of any process).
function M.cases(on, make, procs, b)
  local emu
  b.setup(function() emu = helper.emulator { key = M.KEY, queued = 30, processing = 30 } end)
  b.teardown(function() emu:stop() end)
  for _, r in ipairs { { 8, 20, "r", "exactly 20 reach the service" },
    { 7.9, 19, "h", "19 reach the service, and its 100% is said once, by the first refusal of any process" } } do
    local amount, made = r[1], r[2]
    b.it(string.format("%d processes, 10 creates each of 0.40 against %.2f: %s", procs, amount, r[4]), function()
      emu:reset()
      emu:clear()
      local tally, n, text = M.race(make(helper.tmpdir(), emu), procs, 10, amount, r[3])
      io.stderr:write(string.format("%s: %d processes against %.2f: %s, %d created\n", on, procs, amount,
        cjson.encode(tally), n))
      b.assert.same({ ok = made, ["spend_limited spend_limit"] = procs * 10 - made, ["warning 50"] = 1,
        ["warning 80"] = 1, ["warning 100"] = 1 }, tally, text)
      b.assert.equal(made, n)
    end)
  end
  b.it("30 reserving processes killed at random, then rerun: spent is the price of what the service made", function()
    emu:reset()
    emu:clear()
    local seed = os.time()
    local f = M.kills(make(helper.tmpdir(), emu), 30, 3, b.assert, seed)
    io.stderr:write(string.format("%s: seed %d: %d killed; %d made before the rerun; %d pending adopted, %d "
      .. "forgotten; %d made in all\n", on, seed, f.killed, f.before, f.adopted, f.forgot, f.made))
  end)
end

return M
