-- A fleet's batch killed with kill -9 (issue 49), real processes: a redis-server with a password, the emulator
-- (tasks that take a minute), `bin/starvideos batch --store redis://:PASSWORD@...` killed once its creates are
-- in.  The line its watcher prints names the store without the password and says where it comes from
-- (STARVIDEOS_STORE: before, `--store redis://:PASSWORD@...`); `keep --once` right after says how many tasks
-- sit under the dead process's lease and when it lapses (before: "no orphaned task in the store").

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local q = helper.shell_quote
local BIN = helper.root .. "/bin/starvideos"
local KEY = "sk-store-hints-0d15ea5e"
local PW = "hunter2-secret"

local why = redis_run.missing(true)
if why then
  describe("a fleet's batch killed", function() pending(why) end)
  return
end

describe("a fleet's batch killed with kill -9", function()
  it("its hint hides the store's password and names STARVIDEOS_STORE; keep --once right after counts the leased "
    .. "tasks and when their lease lapses", function()
      local dir = helper.tmpdir()
      local srv = redis_run.start { password = PW }
      local emu = helper.emulator { queued = 60, processing = 1, key = KEY }
      finally(function() emu:stop(); srv.stop(); helper.cleanup() end)
      local url = srv.url -- (redis://:PASSWORD@127.0.0.1:PORT)
      assert.matches(PW, url, 1, true)
      helper.write_file(dir .. "/prompts.txt", "one\ntwo\nthree\n")
      local env = table.concat({ "env -u STARVIDEOS_STORE", "STARVIDEOS_API_KEY=" .. q(KEY),
        "STARVIDEOS_BASE_URL=" .. q(emu.url), q(helper.lua), q(BIN) }, " ")
      local proc = helper.spawn(table.concat({ env, "batch", "--prompts-file", q(dir .. "/prompts.txt"),
        "--out-dir", q(dir .. "/out"), "--model", "videos", "--duration", "5", "--interval", "0.3", "--store", q(url),
        ">", q(dir .. "/out.log"), "2>", q(dir .. "/err.log"), "</dev/null" }, " "))
      assert(helper.wait_until(function() return emu:creates() == 3 end, 20), helper.read_file(dir .. "/err.log"))
      helper.sleep(0.5) -- (the created records written, the hint updated)
      helper.execute("kill -KILL " .. proc.pid)
      proc:close()
      local err
      assert(helper.wait_until(function()
        err = helper.read_file(dir .. "/err.log") or ""
        return err:find("stopped by a signal", 1, true)
      end, 10), err)
      assert.is_nil(err:find(PW, 1, true), err)
      assert.matches("`%S*starvideos batch [^`]* %-%-store \"%$STARVIDEOS_STORE\"[^`]*` goes on: it creates no "
        .. "video it created before %(with STARVIDEOS_STORE set to the store's URL "
        .. "redis://:%*%*%*@127%.0%.0%.1:%d+ and its password", err)
      -- as printed, STARVIDEOS_STORE set: its plan (--dry-run) knows the 3 tasks, it would create none
      -- (the command as invoked: the spec's checkout's bin/starvideos)
      local command = err:match("`(%S*starvideos batch [^`]*)`"):gsub("^%S*starvideos ", "")
      local plan, ok = helper.capture(table.concat({ "export STARVIDEOS_STORE=" .. q(url) .. ";",
        (env:gsub("^env %-u STARVIDEOS_STORE", "env")), command, "--dry-run", "2>&1" }, " "))
      assert.truthy(ok, plan)
      assert.is_nil(plan:find(PW, 1, true), plan)
      assert.matches("\n0 creates, cost 0; 3 downloads;", plan, 1, true)
      local t0 = os.time()
      local out = helper.capture(table.concat({ env, "keep", "--once", "--store", q(url), "--dir", q(dir),
        "2>&1" }, " "))
      assert.is_nil(out:find(PW, 1, true), out)
      local n, owners, secs = out:match("no orphaned task in the store redis://127%.0%.0%.1:%d+/0 now; (%d+) tasks "
        .. "are held under the live lease of (%d+) process, which lapses in (%d+) s")
      assert.truthy(n, out)
      assert.is_nil(out:find("keep once:", 1, true), out) -- (the library's warning of it: said once, not twice)
      assert.same({ "3", "1" }, { n, owners })
      assert.truthy(tonumber(secs) >= 20 and tonumber(secs) <= 30, out) -- (the default lease, 30 s)
      assert.truthy(os.time() - t0 < 20)
    end)
end)
