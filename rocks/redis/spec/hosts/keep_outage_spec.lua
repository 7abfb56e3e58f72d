-- keep runs until it is told to stop (issue 28, item 1): a look at the ledger
-- that fails (Redis killed, then started again from its AOF) is a warning and
-- another look later, never the end of keep.  Real processes: redis-server
-- (appendonly, appendfsync always), the emulator, an owner that creates tasks
-- and is killed -9, and a keep in a process of its own; counted at the emulator.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local q = helper.shell_quote
local missing = redis_run.missing()
local describe_redis = missing and pending or describe

local KEY = "k-keep-outage"
local N = 3


-- The owner: creates N tasks with a 2 s lease, says so, then waits to be killed.
local OWNER = [[
local starvideos = require "starvideos"
local url, store, n = arg[1], arg[2], tonumber(arg[3])
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, store = store, lease = 2 }
for i = 1, n do
  assert(client:create { model = "videos", prompt = "outage " .. i, duration = 5 })
end
io.write("created\n"); io.stdout:flush()
os.execute("sleep 60")
]]


describe_redis("keep under a store outage", function()
  local srv, emu

  after_each(function()
    if srv then srv.stop() end
    if emu then emu:stop() end
    srv, emu = nil, nil
    helper.cleanup()
  end)

  it("warns at each failed look, looks again, and carries a killed owner's tasks once Redis is back from its AOF",
    function()
      local dir = helper.tmpdir()
      local rdir = dir .. "/redis"
      assert(helper.execute("mkdir " .. q(rdir)))
      srv = redis_run.start { dir = rdir, aof = true }
      local port = srv.port
      emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.4 }

      local owner = helper.run_lua(dir, "owner", OWNER, { emu.url, srv.url, tostring(N) })
      assert.are.equal("created", owner.pipe:read("*l"))
      assert(helper.execute("kill -9 " .. owner.pid))
      owner:close()

      local videos = dir .. "/videos"
      assert(helper.execute("mkdir " .. q(videos)))
      local keeper = helper.run_lua(dir, "keeper", redis_run.keeper(KEY), { emu.url, srv.url, videos, "16" })
      assert.are.equal("keeping", keeper.pipe:read("*l"))
      -- Redis goes away before the owner's 2 s lease is over: no look can claim before it is back
      helper.sleep(0.5)
      srv.signal("KILL")
      srv.stop()
      helper.sleep(4)
      srv = redis_run.start { dir = rdir, port = port, aof = true }

      local out = keeper.pipe:read("*a")
      keeper:close()
      local warnings, claims = 0, 0
      for line in out:gmatch("[^\n]+") do
        if line:find("^warning ") then warnings = warnings + 1 end
        if line:find("^claim ") then claims = claims + 1 end
      end
      assert.is_true(warnings >= 1, "keep warned of the failed looks:\n" .. out)
      assert.truthy(out:find("keep: the look at the ledger failed", 1, true), out)
      assert.truthy(out:find("ended: " .. N .. " results, " .. N .. " saved", 1, true), out)
      assert.are.equal(N, claims, out)

      -- at the server: N creates (the owner's), N whole video downloads (the keeper's)
      local gets = 0
      for _, r in ipairs(emu:requests()) do
        if r.method == "GET" and r.path:find("^/videos/") then gets = gets + 1 end
      end
      assert.are.equal(N, emu:creates())
      assert.are.equal(N, gets)
      local files = helper.listing(videos)
      local mp4 = 0
      for _, f in ipairs(files) do
        if f:find("%.mp4$") and helper.file_size(videos .. "/" .. f) > 0 then mp4 = mp4 + 1 end
      end
      assert.are.equal(N, mp4, table.concat(files, ", "))
    end)
end)
