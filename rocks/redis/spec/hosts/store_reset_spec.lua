-- A store that lost its data is noticed (issue 28, item 3).  Real processes:
-- redis-server (appendonly, appendfsync always), the emulator, an owner that
-- creates tasks under create_limit {count = 7}, and after the store lost
-- everything (FLUSHALL, or Redis started again empty) lives on for a while, then
-- is killed -9; a keep in a process of its own then carries what the owner held.
-- Counted at the emulator: creates, and whole video downloads.

local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local socket = require "socket"

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


-- An owner that creates BEFORE tasks, then, once `go` exists (the store flushed meanwhile: between two creates),
-- AFTER more, each "created after I" (its record written), then waits to be killed; its lease 15 s, renewed by its
-- creates' asks: its lease script is not due for 5 s after its first create (a third of the lease), so only the
-- scripts its creates run can see the reset.
local CREATOR = [[
local starvideos = require "starvideos"
local socket = require "socket"
local url, store, before, after, go, lease = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), arg[5], arg[6]
local function say(line) io.write(line, "\n"); io.stdout:flush() end
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, store = store,
  lease = tonumber(lease) or 15,
  on_event = function(ev) if ev.type == "store_reset" then say("store_reset " .. ev.tasks) end end }
local function create(name)
  local task = assert(client:create { model = "videos", prompt = name, duration = 5 })
  client:watch(task.id)
  say("created " .. name)
end
for i = 1, before do create("before " .. i) end
while not io.open(go) do client:step(0); socket.sleep(0.01) end
for i = 1, after do create("after " .. i) end
os.execute("sleep 60")
]]

-- A keep that says when it claims a task ("claim ID") and when it finds the store reset ("store_reset TASKS
-- written K": K the task records Redis holds as the event is told), into the file arg[4].
local KEEPER = [[
local starvideos = require "starvideos"
local url, store, dir, log = arg[1], arg[2], arg[3], arg[4]
local function say(line) local f = assert(io.open(log, "a")); f:write(line, "\n"); f:close() end
local function written()
  local p = assert(io.popen("redis-cli -p " .. store:match(":(%d+)") .. " KEYS '*:task:*'"))
  local k = select(2, p:read("*a"):gsub("[^\n]+", ""))
  p:close()
  return k
end
local client = starvideos.new { api_key = "]] .. KEY .. [[", base_url = url, store = store, lease = 2,
  on_event = function(ev)
    if ev.type == "store_reset" then say("store_reset " .. ev.tasks .. " written " .. written()) end
  end }
client:keep { dir = dir, lease = 2, interval = 0.2, timeout = 60,
  on_progress = function(ev) if ev.type == "claim" then say("claim " .. ev.id) end end }
]]

-- A keep in a process of its own, once the dead holder's lease (2 s, or `lease`) has run out (it was renewed up to
-- the kill: half a second more after it), that carries what is orphaned at its look and ends when that is done
-- (`once`; `seconds` at most): what it said.
local function keep_once(dir, emu, srv, videos, seconds, lease)
  helper.sleep((lease or 2) + 0.5)
  local keeper = helper.run_lua(dir, "keeper", redis_run.keeper(KEY, { once = true }),
    { emu.url, srv.url, videos, tostring(seconds) })
  local out = keeper.pipe:read("*a")
  keeper:close()
  return out
end

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
    local out = keep_once(dir, emu, srv, videos, 14)
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

  it("FLUSHALL between two creates, the owner killed -9 within a second (before any lease renewal): the next "
    .. "create's script finds the reset, the owner records its tasks again before that create is sent, and a "
    .. "keep saves every task paid for", function()
      local BEFORE, AFTER = 3, 3
      local dir = helper.tmpdir()
      srv = redis_run.start { dir = dir, aof = true }
      emu = helper.emulator { key = KEY, queued = 1, processing = 2 }
      local go = dir .. "/go"
      local owner = helper.run_lua(dir, "owner", CREATOR, { emu.url, srv.url, tostring(BEFORE), tostring(AFTER), go })
      local lines = {}
      local function line()
        lines[#lines + 1] = owner.pipe:read("*l")
        return lines[#lines]
      end
      local t0
      for i = 1, BEFORE do
        assert.are.equal("created before " .. i, line(), table.concat(lines, "\n"))
        t0 = t0 or socket.gettime()
      end
      assert(helper.execute(helper.UNINSTRUMENTED .. "redis-cli -p " .. srv.port .. " FLUSHALL >/dev/null"))
      local flushed = socket.gettime()
      helper.write_file(go, "")
      repeat until line() == "created after " .. AFTER or lines[#lines] == nil
      assert(helper.execute("kill -9 " .. owner.pid))
      local killed = socket.gettime()
      owner:close()
      local said = table.concat(lines, "\n")
      assert.is_true(killed - flushed < 1, said)
      assert.is_true(killed - t0 < 4.5, said) -- (within a third of its lease: its lease script never ran)
      local out = keep_once(dir, emu, srv, dir, 24, 15) -- (the owner's lease: 15 s)
      local paid, saved = emu:creates(), tonumber(out:match("ended: %d+ results, (%d+) saved"))
      said = string.format("%s\npaid %d, saved %s, downloads %d\n%s", said, paid, saved, #emu:video_ranges(), out)
      assert.are.equal(BEFORE + AFTER, paid, said)
      assert.are.equal(paid, saved, said) -- 0 lost: every task paid for saved, its video downloaded whole
      assert.are.equal(paid, #emu:video_ranges(), said)
      assert.are.equal("store_reset " .. BEFORE, lines[BEFORE + 1], said)
    end)

  it("FLUSHALL under a keep that carries a dead owner's tasks, the keep then killed -9: it recorded them again at "
    .. "its next look (at their claim's numbers), and another keep saves every one", function()

      local dir = helper.tmpdir()
      srv = redis_run.start { dir = dir, aof = true }
      emu = helper.emulator { key = KEY, queued = 1, processing = 8 }
      local owner = helper.run_lua(dir, "owner", CREATOR, { emu.url, srv.url, tostring(N), "0", dir .. "/never",
        "2" })
      for i = 1, N do assert.are.equal("created before " .. i, owner.pipe:read("*l")) end
      assert(helper.execute("kill -9 " .. owner.pid))
      owner:close()
      local log = dir .. "/keep1.log"
      local keep1 = helper.run_lua(dir, "keep1", KEEPER, { emu.url, srv.url, dir, log })
      local function said() return helper.read_file(log) or "" end
      assert.is_true(helper.wait_until(function() return select(2, said():gsub("claim ", "")) == N end, 10), said())
      assert(helper.execute(helper.UNINSTRUMENTED .. "redis-cli -p " .. srv.port .. " FLUSHALL >/dev/null"))
      helper.wait_until(function() return said():find("store_reset", 1, true) end, 3)
      -- killed as soon as it told the reset: told once the store wrote its records again (all N there as it was
      -- told); told as they were sent, a kill -9 between lost what only its memory held (4 of 5 saved, beside a full
      -- run's load)
      assert(helper.execute("kill -9 " .. keep1.pid))
      keep1:close()
      local out = keep_once(dir, emu, srv, dir, 16)
      local saved = tonumber(out:match("ended: %d+ results, (%d+) saved"))
      local all = string.format("%s\npaid %d, saved %s, downloads %d\n%s", said(), emu:creates(), saved,
        #emu:video_ranges(), out)
      assert.are.equal(N, emu:creates(), all)
      assert.are.equal(N, saved, all) -- 0 lost
      assert.are.equal(N, #emu:video_ranges(), all)
      assert.truthy(said():find("store_reset " .. N .. " written " .. N, 1, true), all)
    end)
end)
