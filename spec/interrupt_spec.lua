-- Ctrl-C in a Lua script (issue 49): a blocking call raises one error, kind timeout with
-- interrupted = true, saying how to go on (resume --journal when journalled, the task ids and
-- `starvideos wait` without a ledger), not lua's raw "interrupted!" traceback from loop.lua;
-- the batch's jobs end cancelled (on_progress counts them so, not failed); nothing is paid again.

local helper = require "spec.helper"
local C = require "spec.support.cli_run"

local q = helper.shell_quote


local BATCH = [[
local starvideos = require "starvideos"
local client = starvideos.new { journal = %q }
local list = {}
for i = 1, 4 do list[i] = { model = "videos", prompt = "an interrupted cat " .. i, duration = 5 } end
local results = client:generate_all(list, { out = %q, interval = 0.1, on_progress = function(ev)
  if ev.type == "batch" then
    io.stdout:write(string.format("batch %%d %%d %%d %%d %%d\n", ev.created, ev.done, ev.failed, ev.cancelled or -1,
      ev.total))
    io.stdout:flush()
  end
end })
for i, r in ipairs(results) do io.stdout:write("saved ", i, " ", tostring(r.path), "\n") end
]]

describe("Ctrl-C in a Lua script", function()
  local emu
  local env = C.session(function(e) emu = e end)

  it("generate_all with a journal: one error naming `starvideos resume --journal`, jobs cancelled, not failed; "
    .. "the resume it names pays for nothing again", function()
    emu:config { queued = 2 }
    local dir = helper.tmpdir()
    local journal = dir .. "/j.jsonl"
    local before = emu:creates()
    local proc = C.script(dir, BATCH:format(journal, dir .. "/%04d.mp4"), emu)
    C.until_true(function() return (helper.read_file(dir .. "/out") or ""):find("batch 4 0 0 0 4", 1, true) end)
    local r = proc:stop()
    emu:config { queued = 0.2 }
    assert.equals(1, r.code, r.err)
    assert.equals(before + 4, emu:creates())
    local errs = C.lines(r.err)
    assert.matches("interrupted (Ctrl-C): 4 jobs cancelled, 4 with a task created", errs[1], 1, true)
    assert.is_nil(errs[1]:find("timeout", 1, true), errs[1]) -- (its kind is timeout; its line a person's words)
    assert.is_nil(r.err:find("interrupted!", 1, true), r.err)
    assert.is_nil(r.err:find("loop.lua", 1, true), r.err)
    -- (the command as the library names it: `starvideos` on the PATH, else this checkout's bin/starvideos)
    local cmd = assert(r.err:match("`([^`]*starvideos resume %-%-journal [^`]+)`"), r.err)
    assert.equals(C.has_command("starvideos") and "starvideos" or "./bin/starvideos", cmd:match("^%S+"))
    -- on_progress: the last count says 4 cancelled, none failed
    local outs = C.lines(r.out)
    assert.equals("batch 4 0 0 4 4", outs[#outs])
    local after = 0 -- (after the Ctrl-C: one count, not one per job cancelled)
    for _, l in ipairs(outs) do if l:match("^batch %d+ %d+ %d+ [1-9]") then after = after + 1 end end
    assert.equals(1, after, r.out)
    assert.is_nil(r.out:find("saved", 1, true))
    assert.matches(" --interval 0.1 --base-url " .. emu.url, cmd, 1, true) -- (the call's pace, the client's service)
    local pasted = C.run_printed(cmd .. " --dir " .. q(dir), env())
    assert.equals(0, pasted.code, pasted.err)
    assert.equals(before + 4, emu:creates())
    for i = 1, 4 do assert.equals(C.SAMPLE, helper.read_video(string.format("%s/%04d.mp4", dir, i))) end
  end)

  it("generate without a ledger, caught by pcall: the error (kind timeout, interrupted) names its task and the "
    .. "`starvideos wait ID --out PATH` that fetches it, which works as pasted; the call does not go on", function()
    emu:config { queued = 2 }
    local dir = helper.tmpdir()
    local proc = C.script(dir, string.format([[
local starvideos = require "starvideos"
local client = starvideos.new {}
local ok, err = pcall(client.generate, client, { model = "videos", prompt = "a caught cat", duration = 5 },
  { out = %q, interval = 0.1, on_progress = function(ev)
    if ev.type == "status" and ev.id then io.stdout:write("created ", ev.id, "\n"); io.stdout:flush() end
  end })
io.stdout:write(tostring(ok), " ", tostring(err.kind), " ", tostring(err.interrupted), " ", tostring(err.id), "\n")
io.stdout:write(tostring(err), "\n")
]], dir .. "/the cat.mp4"), emu)
    C.until_true(function() return (helper.read_file(dir .. "/out") or ""):find("created ", 1, true) end)
    local r = proc:stop()
    emu:config { queued = 0.2 }
    assert.equals(0, r.code, r.err)
    local id = assert(r.out:match("created (%S+)"))
    assert.matches("false timeout true " .. id, r.out, 1, true)
    local said = C.lines(r.out)
    said = said[#said]
    local cmd = (C.has_command("starvideos") and "" or "./bin/") .. "starvideos wait " .. id .. " --out '" .. dir
      .. "/the cat.mp4' --interval 0.1 --base-url " .. emu.url
    assert.equals("interrupted (Ctrl-C): 1 job cancelled, 1 with a task created (paid for: it goes on at the "
      .. "service); no ledger recorded the task, which goes on at the service: `" .. cmd .. "` fetches it", said)
    local pasted = C.run_printed(cmd, env())
    assert.equals(0, pasted.code, pasted.err)
    assert.equals(C.SAMPLE, helper.read_video(dir .. "/the cat.mp4"))
  end)
end)

-- The line's flags, through the seam (a loop of jobs as client.lua makes them): the pasted command polls as the call
-- did and reaches the service the same way, naming where a password is kept rather than printing it.
describe("a script's Ctrl-C line carries what the call did", function()
  local interrupt = require "starvideos.interrupt"
  local config = require "starvideos.config"

  local function said(jobs)
    local loop = { jobs_of = function() return jobs end }
    return interrupt.stop(loop).message
  end

  local function job(id, cfg, fixed, ledger)
    return { id = id, cfg = cfg, fixed = fixed, ledger = ledger, cancel = function() end }
  end

  it("the call's interval, else the client's when it is not the default; the base URL when not the default",
  function()
    local cfg = { interval = config.DEFAULTS.interval, base_url = config.DEFAULT_BASE_URL }
    assert.matches("starvideos wait v1 --interval 1`", said { job("v1", cfg, 1) }, 1, true)
    assert.matches("starvideos wait v1` fetches it", said { job("v1", cfg) }, 1, true)
    local own = { interval = 2.5, base_url = "http://127.0.0.1:8080/api" }
    local two = said { job("v1", own), job("v2", own) }
    assert.matches("starvideos wait v1 --interval 2.5 --base-url http://127.0.0.1:8080/api`, ", two, 1, true)
    assert.matches("starvideos wait v2 --interval 2.5 --base-url http://127.0.0.1:8080/api` fetch them", two, 1, true)
    assert.matches("starvideos resume --journal /tmp/j.jsonl --interval 1` fetches every task created",
      said { job("v1", cfg, 1, { path = "/tmp/j.jsonl" }) }, 1, true)
  end)

  it("counts the call's jobs only: a timer of the loop's own (a store's lease renewer) is none", function()
    local c = require("starvideos").new { api_key = "k", base_url = "http://127.0.0.1:9/jobs-of" }
    local now, cancelled = require("starvideos.core").now(), 0
    c.loop:at(now + 3600, { advance = function() end }) -- (as fleet/leases.lua's renewer)
    c.loop:at(now + 3600, { cfg = c.cfg, id = "v1", cancel = function(j)
      cancelled, j.done = cancelled + 1, true
    end })
    local text = interrupt.stop(c.loop).message
    c:close()
    assert.matches("interrupted (Ctrl-C): 1 job cancelled, 1 with a task created", text, 1, true)
    assert.equal(1, cancelled)
  end)

  it("a proxy with a password, and a store's: named by the variable that holds it, never printed", function()
    local cfg = { interval = 30, base_url = config.DEFAULT_BASE_URL, proxy = "http://alice:s3cret@127.0.0.1:3128" }
    local text = said { job("v1", cfg, 1) }
    assert.matches('starvideos wait v1 --interval 1 --proxy "$STARVIDEOS_PROXY"` fetches it (with STARVIDEOS_PROXY '
      .. "set to the proxy's URL http://alice:***@127.0.0.1:3128 and its password", text, 1, true)
    assert.is_nil(text:find("s3cret", 1, true), text)
    cfg.proxy = "http://127.0.0.1:3128"
    assert.matches("starvideos wait v1 --interval 1 --proxy http://127.0.0.1:3128`", said { job("v1", cfg, 1) }, 1,
      true)
    cfg.proxy, cfg.store = nil, "redis://:hunter22@127.0.0.1:6379/0"
    text = said { job("v1", cfg, 1, {}) }
    assert.matches('starvideos resume --store "$STARVIDEOS_STORE" --interval 1` fetches every task created, or run '
      .. "the same call again: it follows them and pays for nothing created before (with STARVIDEOS_STORE set to the "
      .. "store's URL redis://:***@127.0.0.1:6379/0", text, 1, true)
    assert.is_nil(text:find("hunter22", 1, true), text)
  end)
end)

-- lua.c raises its "interrupted!" once: a catch that went on after it would swallow Ctrl-C for good (a batch
-- of the command line, SIGINT'd while it wrote its watcher's line, ran on: CI, Lua 5.1).
describe("a catch that goes on after a failure", function()
  local interrupt = require "starvideos.interrupt"

  it("interrupt.pcall answers as pcall does, and lets Ctrl-C through", function()
    assert.same({ true, 1, nil, 3 }, { interrupt.pcall(function() return 1, nil, 3 end) })
    local ok, e = interrupt.pcall(error, { kind = "io" })
    assert.is_false(ok)
    assert.same({ kind = "io" }, e)
    assert.same({ false, "no: disk full" }, { interrupt.pcall(error, "no: disk full", 0) })
    assert.has_error(function() interrupt.pcall(error, "loop.lua:219: interrupted!", 0) end,
      "interrupted!") -- (busted leaves out the place)
  end)

  it("the journal's lock: a failure under it is answered (nil, why); Ctrl-C goes on up, the lock let go",
  function()
    local journal = require "starvideos.records.journal"
    local path = helper.tmpdir() .. "/j.jsonl"
    assert.same({ nil, "cannot read: no" }, { journal.locked(path, function() error("cannot read: no", 0) end) })
    assert.has_error(function() journal.locked(path, function() error("interrupted!", 0) end) end, "interrupted!")
    assert.same({ "again", 2 }, { journal.locked(path, function() return "again", 2 end) })
  end)

  it("the command line's watcher: Ctrl-C while it writes the line a kill prints stops the command", function()
    local real = io.popen
    local lines = {}
    -- (a watcher whose pipe takes the first line and is interrupted at the second)
    io.popen = function() return { write = function(_, l) -- luacheck: ignore 122 (the watcher's pipe, stubbed)
      lines[#lines + 1] = l
      if #lines > 1 then error("output.lua:150: interrupted!", 0) end
    end, flush = function() end, close = function() end } end
    package.loaded["starvideos.cli.output"] = nil
    local ok, output = pcall(require, "starvideos.cli.output")
    io.popen = real -- luacheck: ignore 122
    assert(ok, output)
    finally(function() output.unwatch(); package.loaded["starvideos.cli.output"] = nil end)
    output.watch { hint = "starvideos batch` again", name = "batch" }
    assert.has_error(function() output.watch { hint = "starvideos batch` once more", name = "batch" } end,
      "interrupted!")
    assert.equal(2, #lines)
  end)
end)
