-- A store that lost its data is noticed (issue 28, item 3).  Real processes:
-- redis-server (appendonly, appendfsync always), the emulator, an owner that
-- creates tasks under create_limit {count = 7}, and after the store lost
-- everything (FLUSHALL, or Redis started again empty) lives on for a while, then
-- is killed -9; a keep in a process of its own then carries what the owner held.
-- Counted at the emulator: creates, and whole video downloads.

local helper = require "spec.helper"
local redis_run = require "spec.support.redis_run"

local q = helper.shell_quote
local missing = redis_run.missing()
local describe_redis = missing and pending or describe

local KEY = "k-store-reset"
local N, MORE, LIMIT = 5, 5, 7


-- The owner: N creates, each task then watched (its loop turning: the lease renewed); "created"; then steps
-- until the store's reset is noticed (at most 8 s), MORE creates (each "created" or "refused KIND"), 2 s more
-- of steps (its records written), "done", and waits to be killed.
local OWNER = [[
local starvideos = require "starvideos"
local socket = require "socket"
local url, store, n, more = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4])
local reset
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, store = store, lease = 2,
  create_limit = { count = ]] .. LIMIT .. [[, per = 600 },
  on_event = function(ev) if ev.type == "store_reset" then reset = ev end end }
local function steps(seconds, until_reset)
  local t = socket.gettime() + seconds
  while socket.gettime() < t and not (until_reset and reset) do
    client:step(0)
    socket.sleep(0.05)
  end
end
for i = 1, n do
  local task = assert(client:create { model = "videos", prompt = "reset " .. i, duration = 5 })
  client:watch(task.id)
end
io.write("created\n"); io.stdout:flush()
steps(8, true)
io.write(reset and string.format("store_reset %d %d\n", reset.tasks, reset.creates) or "no reset\n")
for i = 1, more do
  local task, err = client:create { model = "videos", prompt = "after " .. i, duration = 5 }
  if task then client:watch(task.id) end
  io.write(task and "created\n" or "refused " .. tostring(err.kind) .. "\n")
end
steps(2)
io.write("done\n"); io.stdout:flush()
os.execute("sleep 60")
]]


describe_redis("a store that lost its data", function()
  local srv, emu

  after_each(function()
    if srv then srv.stop() end
    if emu then emu:stop() end
    srv, emu = nil, nil
    helper.cleanup()
  end)

  -- lose(srv, rdir): the store's data gone while the owner lives; returns the store now running
  local function case(lose)
    local dir = helper.tmpdir()
    local rdir = dir .. "/redis"
    assert(helper.execute("mkdir " .. q(rdir)))
    srv = redis_run.start { dir = rdir, aof = true }
    emu = helper.emulator { key = KEY, queued = 1, processing = 6 }

    local owner = helper.run_lua(dir, "owner", OWNER, { emu.url, srv.url, tostring(N), tostring(MORE) })
    assert.are.equal("created", owner.pipe:read("*l"))
    srv = lose(srv, dir)
    local lines = {}
    repeat
      local line = owner.pipe:read("*l")
      lines[#lines + 1] = line
    until line == nil or line == "done"
    assert(helper.execute("kill -9 " .. owner.pid))
    owner:close()
    local said = table.concat(lines, "\n")
    assert.are.equal(string.format("store_reset %d %d", N, N), lines[1], said)
    local created, refused = 0, 0
    for _, l in ipairs(lines) do
      if l == "created" then created = created + 1 end
      if l == "refused rate_limited" then refused = refused + 1 end
    end
    assert.are.equal(LIMIT - N, created, said)
    assert.are.equal(MORE - (LIMIT - N), refused, said)

    local videos = dir .. "/videos"
    assert(helper.execute("mkdir " .. q(videos)))
    local keeper = helper.run_lua(dir, "keeper", redis_run.keeper(KEY), { emu.url, srv.url, videos, "14" })
    local out = keeper.pipe:read("*a")
    keeper:close()
    assert.truthy(out:find("ended: " .. LIMIT .. " results, " .. LIMIT .. " saved", 1, true), out)

    assert.are.equal(LIMIT, emu:creates())
    assert.are.equal(LIMIT, #emu:video_ranges()) -- the video GETs
  end

  it("FLUSHALL under a live owner: it says so, records its tasks again (a keep saves every one after it is "
    .. "killed) and counts its creates again (create_limit holds)", function()
      case(function(s)
        assert(helper.execute(helper.UNINSTRUMENTED .. "redis-cli -p " .. s.port .. " FLUSHALL >/dev/null"))
        return s
      end)
    end)

  it("Redis started again empty under a live owner: the same", function()
    case(function(s, dir)
      local port = s.port
      s.signal("KILL")
      s.stop()
      local empty = dir .. "/redis-empty"
      assert(helper.execute("mkdir " .. q(empty)))
      return redis_run.start { dir = empty, port = port, aof = true }
    end)
  end)
end)
