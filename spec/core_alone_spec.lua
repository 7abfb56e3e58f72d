-- The core alone on a journal written with every rock (issue "What new and hostile users found", item 9), and a
-- scheme no rock serves: each path that would need a missing rock (resume, keep, wait --out, download, a rerun,
-- an out of gs://) refuses naming the rock, sends nothing, writes nothing elsewhere and records nothing.
-- "Not installed" is played by a require that does not find the s3 rock's modules (spec/extension_spec.lua's way);
-- the journal's records of an s3:// out, an upload and reference objects are written as that rock writes them.

local helper = require "spec.helper"
local starvideos = require "starvideos"
local cjson = require "cjson"

local HIDDEN = { "starvideos.sink.s3", "starvideos.references" }

local without = require "spec.support.without"

local function refused_by_s3(err)
  assert.is_table(err)
  assert.are.equal("invalid_request", err.kind, tostring(err.message))
  assert.are.equal("starvideos-s3", err.rock, err.message)
  assert.truthy(err.message:find("needs the starvideos-s3 rock", 1, true), err.message)
end

describe("the core alone on a journal written with every rock", function()
  local emu, dir, journal, ids
  setup(function()
    emu = helper.emulator { queued = 0, processing = 0 }
    dir = helper.tmpdir()
    journal = dir .. "/j.jsonl"
    -- two tasks made at the emulator, then recorded as the s3 rock's runs record them: A to an object (its upload
    -- begun), B to a file with a local file put as a reference object
    local c = starvideos.new { api_key = "test-key", base_url = emu.url }
    ids = {}
    for i = 1, 2 do ids[i] = assert(c:create { model = "videos", prompt = "p" .. i, duration = 5 }).id end
    c:close()
    local t = os.time()
    local lines = {
      { event = "created", id = ids[1], model = "videos", out = "s3://bkt/a.mp4", time = t, owner = "gone0001" },
      { event = "upload", id = ids[1], upload = '{"upload_id":"u1","parts":[]}', time = t },
      { event = "created", id = ids[2], model = "videos", out = dir .. "/b.mp4", time = t, owner = "gone0001" },
      { event = "refs", id = ids[2], refs = '["s3://bkt/refs/0123.png"]', time = t },
    }
    local text = {}
    for i, rec in ipairs(lines) do text[i] = cjson.encode(rec) end
    helper.write_file(journal, table.concat(text, "\n") .. "\n")
  end)
  teardown(function() emu:stop() end)

  local function client()
    return starvideos.new { api_key = "test-key", base_url = emu.url, journal = journal }
  end

  -- After a refusal: no request at the emulator, no file in dir but the journal's, the journal as it was (but a
  -- keeper's claims: they lapse with it).
  local function nothing_done(before)
    assert.same({}, emu:requests())
    local now = helper.read_file(journal)
    assert.are.equal(before, now:sub(1, #before))
    for line in now:sub(#before + 1):gmatch("[^\n]+") do assert.are.equal("claim", cjson.decode(line).event, line) end
    for _, name in ipairs(helper.listing(dir)) do
      assert.truthy(name == "j.jsonl" or name:match("^j%.jsonl%."), "written: " .. name)
    end
  end

  it("resume and keep --once refuse both tasks naming the rock; nothing fetched, saved into dir, or recorded",
    function()
    without(HIDDEN, function()
      for _, how in ipairs { "resume", "keep" } do
        emu:clear()
        local before, c = helper.read_file(journal), client()
        local list = how == "resume" and assert(c:resume { dir = dir, interval = 0.1, timeout = 5 })
          or assert(c:keep { once = true, dir = dir, interval = 0.1, timeout = 5 })
        assert.are.equal(2, #list, how)
        for _, r in ipairs(list) do refused_by_s3(r.err) end
        c:close()
        nothing_done(before)
      end
    end)
    -- with every rock back, keep would carry both still (a dry run: what it would claim now)
    local c = client()
    local plan = assert(c:keep { once = true, dir = dir, dry_run = true })
    local actions = {}
    for _, e in ipairs(plan.entries) do actions[#actions + 1] = e.id .. " " .. e.action end
    table.sort(actions)
    assert.same({ ids[1] .. " download", ids[2] .. " download" }, actions)
    c:close()
  end)

  it("download and a rerun to the object refuse naming the rock; nothing sent, nothing recorded", function()
    without(HIDDEN, function()
      emu:clear()
      local before, c = helper.read_file(journal), client()
      local path, err = c:download(ids[1], "s3://bkt/a.mp4")
      assert.is_nil(path)
      refused_by_s3(err)
      local task
      task, err = c:generate({ model = "videos", prompt = "p1", duration = 5 }, { out = "s3://bkt/a.mp4" })
      assert.is_nil(task)
      refused_by_s3(err)
      c:close()
      nothing_done(before)
    end)
  end)

  it("the command line's wait --out and download to s3:// say the rock and exit 2, never an internal error",
    function()
    local hide = "local r = require; require = function(n) if n == 'starvideos.sink.s3' or n == "
      .. "'starvideos.references' then error(\"module '\" .. n .. \"' not found\", 2) end return r(n) end"
    emu:clear()
    for _, args in ipairs { "wait " .. ids[1] .. " --out s3://bkt/a.mp4", "download " .. ids[1] .. " s3://bkt/a.mp4" }
      do
      local ok, _, code = os.execute(string.format("STARVIDEOS_BASE_URL=%s STARVIDEOS_API_KEY=test-key %s -e %q "
        .. "bin/starvideos %s > %s/out 2> %s/err", emu.url, helper.lua, hide, args, dir, dir))
      if type(ok) == "number" then code = ok / 256 end -- (Lua 5.1: the status as wait() gives it)
      local err = helper.read_file(dir .. "/err")
      assert.are.equal(2, code, args .. ": " .. err)
      assert.truthy(err:find("needs the starvideos-s3 rock", 1, true), err)
      assert.falsy(err:find("internal error", 1, true), err)
    end
    os.remove(dir .. "/out"); os.remove(dir .. "/err")
    local sent = {}
    for _, r in ipairs(emu:requests()) do if not r.path:find("^/v1/.*/" .. ids[1]) then sent[#sent + 1] = r.path end end
    assert.same({}, sent) -- (a status query of the task may be asked; no video fetched, nothing created)
  end)
end)

describe("a scheme no rock serves", function()
  it("gs://bucket/key.mp4 is refused before the create: no sink for gs:// is installed, 0 requests", function()
    local emu = helper.emulator {}
    finally(function() emu:stop() end)
    local c = starvideos.new { api_key = "test-key", base_url = emu.url }
    local task, err = c:generate({ model = "videos", prompt = "x", duration = 5 }, { out = "gs://bucket/key.mp4" })
    assert.is_nil(task)
    assert.are.equal("invalid_request", err.kind)
    assert.are.equal("out", err.field)
    assert.truthy(err.message:find("no sink for gs:// is installed", 1, true), err.message)
    assert.falsy(err.message:find("folder", 1, true), err.message) -- (never read as a file's path)
    c:close()
    assert.same({}, emu:requests())
  end)
end)
