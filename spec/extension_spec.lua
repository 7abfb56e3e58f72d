-- The core's extension points (lua/starvideos/extension.lua, docs/architecture.md "Extension points"): each
-- feature another rock adds is found by its point's naming convention; with that rock not installed (its module
-- not found) the feature is refused before anything is sent, an invalid_request naming the rock and the command
-- that installs it.  "Not installed" is played by a require that does not find the hidden modules, as Lua's own
-- says; the real trees (luarocks make) are the hosts tier's.

local helper = require "spec.helper"
local starvideos = require "starvideos"
local X = require "starvideos.extension"
local Fake = require "spec.support.fake_transport"

local without = require "spec.support.without"

local function refusal(err, rock)
  assert.are.equal("invalid_request", err.kind, tostring(err.message))
  -- (the checkout's own rockspec, so that the hint pasted runs: a rock of that name is published nowhere)
  local spec = "rocks/" .. rock:gsub("^starvideos%-", "") .. "/" .. rock .. "-scm-1.rockspec"
  assert.truthy(err.message:find("needs the " .. rock .. " rock (from this checkout: cd ", 1, true), err.message)
  assert.truthy(err.message:find(" && luarocks make --deps-mode=none " .. spec .. ")", 1, true), err.message)
  assert.truthy(io.open(spec), spec)
end

-- A LuaRocks tree's manifest (lib/luarocks/rocks-5.4/manifest) as LuaRocks writes it with starvideos at version.
local function manifest(version)
  return string.format('commands = {}\ndependencies = {\n   starvideos = {\n      ["%s"] = {}\n   }\n}\n'
    .. 'modules = {}\nrepository = {\n   starvideos = {\n      ["%s"] = {\n         {\n            arch = '
    .. '"installed",\n            commands = {},\n            dependencies = {},\n            modules = {}\n'
    .. '         }\n      }\n   }\n}\n', version, version)
end

describe("extension points", function()
  it("name a module by the point and key, never by a module of another rock", function()
    assert.are.equal("starvideos.sink.s3", X.name("sink", "s3"))
    assert.are.equal("starvideos.ledger.redis", X.name("ledger", "redis"))
    assert.are.equal("starvideos.observe", X.name("observe"))
    assert.are.equal("starvideos.command.emulator", X.name("command", "emulator"))
    -- a store URL's ledger is its scheme's, its +suffix the ledger's to read; the Redis rock serves each of its
    for url, scheme in pairs { ["redis://h"] = "redis", ["rediss://u:p@h:1/2"] = "rediss",
      ["unix:///tmp/r.sock"] = "unix", ["redis+sentinel://h/m"] = "redis", ["rediss+cluster://h1,h2"] = "rediss",
      ["REDIS://h"] = "redis" } do
      assert.are.equal(scheme, X.store_scheme(url), url)
      assert.is_function(X.find("ledger", scheme, url).open, url)
    end
    assert.are.equal("redis", X.store_scheme { url = "redis+cluster://a,b" })
  end)

  it("a store URL tries its scheme's ledger: one no rock serves is refused as such, nothing sent; the Redis rock "
    .. "checks its own URLs", function()
    local fake = Fake.new {}
    local ok, err = pcall(starvideos.new, { api_key = "k", base_url = "http://fake", transport = fake,
      store = "memcache://u:s3cret@127.0.0.1:11211" })
    assert.is_false(ok)
    assert.are.equal("invalid_request", err.kind, tostring(err))
    assert.truthy(err.message:find("store = memcache://***@127.0.0.1:11211: no ledger for memcache:// is installed",
      1, true), err.message)
    assert.falsy(err.message:find("s3cret", 1, true))
    assert.are.equal(0, #fake.sent)
    -- the core reads the scheme only: the rest is the ledger's (fleet/url.lua's port check, its form named)
    ok, err = pcall(starvideos.new, { api_key = "k", base_url = "http://fake", store = "redis://h:99999" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("expected redis://", 1, true), tostring(err))
  end)

  it("installed, each is found: the ledger, the sink, the observer, the commands", function()
    assert.is_function(X.find("ledger", "redis", "store").open)
    assert.is_function(X.find("sink", "s3", "s3:// outs").sink.check_out)
    assert.is_function(X.find("observe", nil, "metrics = true").new)
    assert.is_function(X.find("command", "emulator", "starvideos emulator").main)
    assert.is_function(X.find("command", "store", "starvideos store check").run)
  end)

  it("an installed extension that raises while loading raises as it is, not as missing", function()
    package.preload["starvideos.sink.broken"] = function() error("broken on purpose") end
    finally(function()
      package.preload["starvideos.sink.broken"], package.loaded["starvideos.sink.broken"] = nil, nil
    end)
    local ok, err = pcall(X.optional, "sink", "broken")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("broken on purpose", 1, true))
  end)

  it("store = redis://... without starvideos-redis: new raises an invalid_request naming the rock, "
    .. "never the password; nothing sent", function()
    local fake = Fake.new {}
    without({ "starvideos.ledger.redis" }, function()
      local ok, err = pcall(starvideos.new, { api_key = "k", base_url = "http://fake", transport = fake,
        store = "redis://u:s3cret@127.0.0.1:6379/0" })
      assert.is_false(ok)
      refusal(err, "starvideos-redis")
      assert.are.equal("store", err.field)
      assert.falsy(err.message:find("s3cret", 1, true), err.message)
    end)
    assert.are.equal(0, #fake.sent)
  end)

  it("metrics = true and trace = {...} without starvideos-observe: refused naming the rock; "
    .. "client:metrics() too", function()
    without({ "starvideos.observe" }, function()
      for _, opts in ipairs { { metrics = true }, { trace = { endpoint = "http://127.0.0.1:9/v1/traces" } } } do
        opts.api_key, opts.base_url, opts.transport = "k", "http://fake", Fake.new {}
        local ok, err = pcall(starvideos.new, opts)
        assert.is_false(ok)
        refusal(err, "starvideos-observe")
        assert.are.equal(opts.metrics and "metrics" or "trace", err.field)
      end
      local c = starvideos.new { api_key = "k", base_url = "http://fake", transport = Fake.new {} }
      local ok, err = pcall(c.metrics, c)
      assert.is_false(ok)
      refusal(err, "starvideos-observe")
      c:close()
    end)
  end)

  it("out = s3://... and local files as references without starvideos-s3: the create refused, 0 sent", function()
    without({ "starvideos.sink.s3", "starvideos.references" }, function()
      local fake = Fake.new {}
      local c = starvideos.new { api_key = "k", base_url = "http://fake", transport = fake }
      local task, err = c:generate({ model = "videos", prompt = "x", duration = 5 }, { out = "s3://b/v.mp4" })
      assert.is_nil(task)
      refusal(err, "starvideos-s3")
      assert.truthy(err.message:find("s3:// outs", 1, true))
      local img = helper.tmpdir() .. "/a.png"
      helper.write_file(img, require("starvideos.emulator.media").png { width = 4, height = 4 })
      task, err = c:create { model = "videos", prompt = "x", duration = 5, first_image = { file = img },
        last_image = { file = img } }
      assert.is_nil(task)
      refusal(err, "starvideos-s3")
      assert.are.equal("first_image", err.field)
      assert.are.equal(0, #fake.sent)
      c:close()
    end)
  end)

  it("starvideos emulator and store check without their rocks: a usage error naming the rock (exit 2)", function()
    local dir = helper.tmpdir()
    -- bin/starvideos in a process whose require does not find the commands' modules (as a tree without the rocks)
    local hide = "local r = require; require = function(n) if n == 'starvideos.command.emulator' or "
      .. "n == 'starvideos.command.store' then error(\"module '\" .. n .. \"' not found\", 2) end return r(n) end"
    for _, case in ipairs { { "emulator --port 0", "starvideos emulator needs the starvideos-emulator rock (from "
      .. "this checkout: cd " }, { "store check redis://127.0.0.1:1",
      "starvideos store check needs the starvideos-redis rock (from this checkout: cd " },
      { "store --help", "starvideos store needs the starvideos-redis rock (from this checkout: cd " },
      { "help store", "starvideos store needs the starvideos-redis rock (from this checkout: cd " } } do
      local ok, _, code = os.execute(string.format("%s -e %q bin/starvideos %s > %s/out 2> %s/err", helper.lua, hide,
        case[1], dir, dir))
      if type(ok) == "number" then code = ok / 256 end -- (Lua 5.1: the status as wait() gives it)
      local err = helper.read_file(dir .. "/err")
      assert.are.equal(2, code)
      assert.truthy(err:find(case[2], 1, true), err)
    end
    -- the top help names each missing command's rock
    assert(os.execute(string.format("%s -e %q bin/starvideos --help > %s/out", helper.lua, hide, dir)))
    local top = helper.read_file(dir .. "/out")
    assert.truthy(top:find("\n  store +%(needs the starvideos%-redis rock%)\n"), top)
    assert.truthy(top:find("\n  emulator +%(needs the starvideos%-emulator rock%)\n"), top)
  end)

  it("installed from a release into a LuaRocks tree: the hint is the release's own install line, --only-server, no "
    .. "checkout and no server named", function()
    -- a tree as `luarocks install --only-server=<release>/5.4 starvideos` leaves it: the module in share/lua/5.4, the
    -- rock's record under lib/luarocks/rocks-5.4/starvideos/<VERSION>-1 and in the tree's manifest; then the same tree
    -- with an scm core
    local v = require("starvideos.config").VERSION
    for _, case in ipairs { { v .. "-1", true }, { "scm-1", false } } do
      local tree = helper.tmpdir()
      assert(os.execute("mkdir -p " .. helper.shell_quote(tree .. "/share/lua/5.4/starvideos") .. " "
        .. helper.shell_quote(tree .. "/lib/luarocks/rocks-5.4/starvideos/" .. case[1])))
      local file = tree .. "/share/lua/5.4/starvideos/extension.lua"
      helper.write_file(file, helper.read_file("lua/starvideos/extension.lua"))
      helper.write_file(tree .. "/share/lua/5.4/starvideos/install_hint.lua", -- (beside it, as the rock installs it)
        helper.read_file("lua/starvideos/install_hint.lua"))
      helper.write_file(tree .. "/lib/luarocks/rocks-5.4/starvideos/" .. case[1] .. "/rock_manifest", "")
      helper.write_file(tree .. "/lib/luarocks/rocks-5.4/manifest", manifest(case[1]))
      local copy = dofile(file)
      local message, rock = copy.why("sink", "s3", "s3:// outs")
      assert.are.equal("starvideos-s3", rock)
      local line = "luarocks --lua-version=5.4 --tree=" .. tree .. " install --only-server=<that folder>/5.4 "
        .. "--deps-mode=none starvideos-s3"
      if case[2] then
        assert.are.equal("s3:// outs needs the starvideos-s3 rock (from the starvideos-" .. v .. " release folder it "
          .. "came from, with no server asked: " .. line .. ")", message)
      else
        assert.is_nil(message:find("only-server", 1, true), message)
        assert.truthy(message:find("luarocks make --deps-mode=none rocks/s3/starvideos-s3-scm-1.rockspec at the top",
          1, true), message)
      end
    end
  end)

  it("installed from a release: starvideos emulator and store check name the release's install line too", function()
    -- a tree as the release's `luarocks install --only-server=<release>/5.4 starvideos` leaves it (the core's Lua in
    -- share/lua/5.4, its C modules in lib/lua/5.4, its record under lib/luarocks/rocks-5.4), its command run with
    -- that tree's paths alone: the emulator's and the Redis rock's modules nowhere
    local q = helper.shell_quote
    local v = require("starvideos.config").VERSION
    local tree = helper.tmpdir()
    local record = tree .. "/lib/luarocks/rocks-5.4/starvideos/" .. v .. "-1"
    assert(os.execute(string.format("mkdir -p %s %s %s %s && cp -r lua/starvideos %s && cp -r build/starvideos %s "
      .. "&& cp bin/starvideos %s && : > %s", q(tree .. "/share/lua/5.4"), q(tree .. "/lib/lua/5.4"),
      q(tree .. "/bin"), q(record), q(tree .. "/share/lua/5.4/"), q(tree .. "/lib/lua/5.4/"), q(tree .. "/bin/"),
      q(record .. "/rock_manifest"))))
    helper.write_file(tree .. "/lib/luarocks/rocks-5.4/manifest", manifest(v .. "-1"))
    local env = string.format("env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 LUA_PATH=%s LUA_CPATH=%s", q(tree
      .. "/share/lua/5.4/?.lua;" .. tree .. "/share/lua/5.4/?/init.lua;;"), q(tree .. "/lib/lua/5.4/?.so;;"))
    for _, case in ipairs { { "emulator --port 0", "starvideos emulator", "starvideos-emulator" },
      { "store check redis://127.0.0.1:1", "starvideos store check", "starvideos-redis" } } do
      local out = helper.capture(string.format("%s lua5.4 %s %s 2>&1; echo \"exit $?\"", env,
        q(tree .. "/bin/starvideos"), case[1]))
      assert.are.same({ "starvideos: " .. case[2] .. " needs the " .. case[3] .. " rock (from the starvideos-" .. v
        .. " release folder it came from, with no server asked: luarocks --lua-version=5.4 --tree=" .. tree
        .. " install --only-server=<that folder>/5.4 --deps-mode=none " .. case[3] .. ")", "exit 2" },
        { out:match("^[^\n]*"), out:match("(exit %d+)\n$") }, out)
    end
  end)

  -- Where a rock's object works (host.lua): a job's seat and a client's ctx answer the same methods, through the
  -- job's host; the loop learns which job a request or timer of a host's works for.
  it("a job's seat gives every method of host.lua, each asked of its job's host; a client's ctx the same", function()
    local Seat, Host = require "starvideos.seat", require "starvideos.host"
    local asked = {}
    local host = setmetatable({}, { __index = function(_, k)
      return function(_, ...) asked[#asked + 1] = { k, ... }; return k end
    end })
    local job = { hosted = function() return host end }
    local seat = Seat.new(job)
    local names = {}
    for k, v in pairs(Host) do
      if type(v) == "function" and k ~= "new" and k ~= "of_job" then names[#names + 1] = k end
    end
    table.sort(names)
    assert.truthy(#names >= 15, "host.lua's methods")
    for i, k in ipairs(names) do
      assert.equal(k, seat[k](seat, i), "seat:" .. k)
      assert.same({ k, i }, asked[#asked])
    end
    local told = {}
    local c = starvideos.new { api_key = "k", base_url = "http://127.0.0.1:9", on_event = function(ev)
      told[#told + 1] = ev end }
    c.ctx:tell { type = "warning", message = "m" }
    assert.same({ { type = "warning", message = "m" } }, told)
    assert.is_false(c.ctx:public_only()) -- (a service on a private address: media from private ones too)
    local req = c.ctx:request { owner = {}, op = "exchange", url = "http://127.0.0.1:9/x" }
    assert.is_nil(req.job) -- (a client's: no job)
    c:close()
  end)

  -- A commit's timer told its job's seat (download.lua): the loop's jobs_of (a client's close, from __gc too) finds
  -- the job through the seat's host, never asking the seat for an owner.
  it("a loop's jobs_of finds the job of a file commit told its seat, and asks no seat for a field", function()
    local Seat, L = require "starvideos.seat", require "starvideos.loop"
    local cfg = {}
    local job = { cfg = cfg, done = false }
    job.loop = setmetatable({ timers = {}, due = {}, inflight = {}, queue = {}, qhead = 1, qtail = 0,
      stands = setmetatable({}, { __mode = "k" }) }, L)
    function job.hosted(j) j.host = j.host or require("starvideos.host").of_job(j); return j.host end
    local seat = Seat.new(job)
    local c = { told = seat }
    seat:at(1, c)
    job.loop:at(2, { owner = seat }) -- (an object that names a seat its owner: the climb stops there)
    local found = job.loop:jobs_of(cfg)
    assert.same({ job }, found)
  end)

  -- A sink and the references point see a job through its seat (lua/starvideos/seat.lua): its listed values, read
  -- when asked, and its methods, bound; any other name and any write raise, naming the page; one small table.
  it("a job's seat gives the listed values and methods of its job alone, and costs one table", function()
    local Seat = require "starvideos.seat"
    local calls = {}
    local job = { id = "task_1", state = "creating", req = "r", checking = "c", secret = "s" }
    function job.advance(j, t) calls[#calls + 1] = { j, t } end
    local seat = Seat.new(job)
    assert.equal("task_1", seat.id)
    job.state = "done"
    assert.equal("done", seat.state) -- (the job's now)
    seat:advance(7)
    assert.same({ { job, 7 } }, calls)
    assert.is_true(seat:awaits("r"))
    assert.is_true(seat:awaits("c"))
    assert.is_false(seat:awaits("x"))
    local PAGE = "docs/architecture.md, \"What a rock may require of the core\""
    for _, k in ipairs { "cfg", "loop", "key", "ledger" } do -- (where it works: asked through host.lua's methods)
      job[k] = {}
      assert.has_error(function() return seat[k] end, "a job's seat gives no " .. k .. ": " .. PAGE)
    end
    assert.has_error(function() return seat.secret end, "a job's seat gives no secret: " .. PAGE)
    assert.has_error(function() return seat.req end, "a job's seat gives no req: " .. PAGE)
    assert.has_error(function() seat.id = "other" end, "a job's seat takes no id: " .. PAGE)
    assert.is_false(getmetatable(seat))
    collectgarbage()
    collectgarbage()
    local before, seats = collectgarbage("count"), {}
    for i = 1, 1000 do seats[i] = Seat.new(job) end
    local per = (collectgarbage("count") - before) * 1024 / #seats
    assert.is_true(per < 200, string.format("a seat costs %.0f bytes", per))
  end)
end)
