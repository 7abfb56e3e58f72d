-- The rocks reach the core only through its window (docs/architecture.md, "What a rock may require of the core";
-- issue "The house in substance", 1): in a copy of the tree whose every core module outside the window is renamed
-- (the core's own requires rewritten, the rocks' left as they are), a client on a Redis store with a spend limit,
-- a create limit and the learned schedule makes and saves its videos; and a rock of that copy that names a core
-- module outside the window fails there (what the copy would catch).
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local why = redis_run.missing()
if why then
  pending("the window, in a copy with the core's modules renamed: " .. why)
  return
end

local q = helper.shell_quote
local KEY = "window-key"
-- What a rock may read by name: the window's parts, the extension points' module, the face.
local KEEP = { starvideos = true, ["starvideos.extension"] = true, ["starvideos.cli"] = true }
for part in pairs(require("starvideos.extension").WINDOW) do KEEP["starvideos." .. part] = true end

-- A copy of the checkout's Lua folders at dir, each core module outside KEEP renamed (NAME_moved), the core's
-- strings naming it rewritten: how many were renamed.
local function renamed_copy(dir)
  assert(helper.execute("cp -R " .. q(helper.root .. "/lua") .. " " .. q(dir .. "/lua")))
  for _, d in ipairs(dofile(helper.root .. "/rocks/folders.lua")) do
    assert(helper.execute("mkdir -p " .. q(dir .. "/" .. d) .. " && cp -R " .. q(helper.root .. "/" .. d) .. "/. "
      .. q(dir .. "/" .. d)))
  end
  assert(helper.execute("cp " .. q(helper.root .. "/rocks/needs.lua") .. " " .. q(dir .. "/rocks/needs.lua")))
  local files, moved = {}, {}
  for f in helper.capture("cd " .. q(dir) .. " && find lua/starvideos -name '*.lua'"):gmatch("[^\n]+") do
    files[#files + 1] = f
    local name = f:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    if not KEEP[name] and not f:find("/init%.lua$") then moved[#moved + 1] = { file = f, name = name } end
  end
  table.sort(moved, function(a, b) return #a.name > #b.name end) -- (the longest first: no name a prefix of one done)
  for i, f in ipairs(files) do
    local text = assert(helper.read_file(dir .. "/" .. f))
    for _, m in ipairs(moved) do
      local pat = m.name:gsub("%.", "%%.")
      text = text:gsub("([\"'])" .. pat .. "([\"'])", "%1" .. m.name .. "_moved%2")
    end
    helper.write_file(dir .. "/" .. f, text)
    files[i] = nil
  end
  for _, m in ipairs(moved) do
    assert(os.rename(dir .. "/" .. m.file, dir .. "/" .. m.file:gsub("%.lua$", "_moved.lua")))
  end
  return #moved
end

-- The child's script: two videos made and saved on the store, under spend_limit and create_limit, the schedule
-- learned; one line per result (its path and SHA-256), then what the limit counted.
local SCRIPT = [[
local sv = require "starvideos"
assert(package.searchpath("starvideos.rules", package.path) == nil, "the copy still has starvideos.rules")
local c = sv.new { api_key = os.getenv("KEY"), base_url = os.getenv("BASE"), store = os.getenv("STORE"),
  prices = { videos = 0.4, videos_fast = 0.1, videos_stable = 1, videos_stable_fast = 1, starvideos_o3 = 2 },
  spend_limit = { amount = 2, per = "day" }, create_limit = { count = 5, per = 60 } }
local list = { { model = "videos", prompt = "window 1", duration = 5 },
  { model = "videos", prompt = "window 2", duration = 5 } }
for _, r in ipairs(c:generate_all(list, { out = os.getenv("DIR") .. "/v%d.mp4" })) do
  io.write(r.path and ("saved " .. r.path .. " " .. r.sha256) or ("failed " .. tostring(r.err)), "\n")
end
local spend = assert(c:spend())
io.write("spent ", string.format("%.2f", spend[1].spent), "\n")
c:close()
]]

describe("the rocks' window, in a copy of the tree with every core module outside it renamed", function()
  local redis, emu, dir, env
  setup(function()
    redis = redis_run.start()
    emu = helper.emulator { key = KEY, queued = 0.1, processing = 0.1 }
    dir = helper.tmpdir()
    assert.is_true(renamed_copy(dir) > 30)
    helper.write_file(dir .. "/child.lua", SCRIPT)
    local path = {}
    for _, d in ipairs(helper.LUA_DIRS) do path[#path + 1] = dir .. "/" .. d .. "/?.lua;" .. dir .. "/" .. d
      .. "/?/init.lua" end
    env = "env LUA_PATH=" .. q(table.concat(path, ";") .. ";;") .. " LUA_CPATH=" .. q(helper.cpath .. ";;")
      .. " KEY=" .. q(KEY) .. " BASE=" .. q(emu.url) .. " DIR=" .. q(dir)
  end)
  teardown(function()
    emu:stop()
    redis.stop()
    helper.cleanup()
  end)

  it("a client on a Redis store with spend_limit, create_limit and the learned schedule makes and saves its "
    .. "videos: the rocks read nothing past the window", function()
    local out, ok = helper.capture(env .. " STORE=" .. q(redis.url .. "/5") .. " " .. q(helper.lua) .. " "
      .. q(dir .. "/child.lua") .. " 2>&1")
    assert.is_truthy(ok, out)
    for i = 1, 2 do -- (each whole: its SHA-256 the file's)
      local sum = out:match("saved " .. dir:gsub("%p", "%%%0") .. "/v" .. i .. "%.mp4 (%x+)")
      assert.equal(require("starvideos.sign").sha256_file(dir .. "/v" .. i .. ".mp4"), sum, out)
    end
    assert.matches("spent 0.80", out, 1, true)
    assert.equal(2, emu:creates())
  end)

  it("fails where a rock of the copy names a core module outside the window (what it would catch)", function()
    local file = dir .. "/rocks/redis/lua/starvideos/fleet/ledger.lua"
    local text = assert(helper.read_file(file))
    helper.write_file(file, 'local _ = require "starvideos.rules"\n' .. text)
    local out, ok = helper.capture(env .. " STORE=" .. q(redis.url .. "/6") .. " " .. q(helper.lua) .. " "
      .. q(dir .. "/child.lua") .. " 2>&1")
    helper.write_file(file, text)
    assert.is_falsy(ok, out)
    assert.matches("module 'starvideos.rules' not found", out, 1, true)
    assert.equal(2, emu:creates()) -- (nothing more sent)
  end)
end)
