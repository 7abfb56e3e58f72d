-- create_limit = {count = N, per = seconds}: a create over it is refused before
-- any request (rate_limited, field create_limit, saying when the next is
-- allowed), counted across every process on one journal, and across the
-- clients of the key in a process without one.  Bad shapes raise naming the field.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local starvideos = require "starvideos"

local q = helper.shell_quote
local KEY = "k-limit"
local ENV = helper.CHILD_ENV

local function creates(emu) return emu:creates() end

describe("create_limit", function()
  local emu
  setup(function() emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.5 } end)
  teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)
  before_each(function() emu:reset() end)

  it("lets exactly N creates through from two processes on one journal", function()
    local dir = helper.tmpdir()
    local journal = dir .. "/tasks.jsonl"
    local procs = {}
    for i = 1, 2 do
      procs[i] = helper.spawn(ENV .. q(helper.lua) .. " " .. q(helper.root .. "/spec/fixtures/keep_child.lua")
        .. " creates " .. q(emu.url) .. " " .. KEY .. " " .. q(journal) .. " 5 " .. q("limited " .. i))
    end
    local ok, refused = 0, 0
    for i = 1, 2 do
      local text = procs[i].pipe:read("*a")
      assert.truthy(procs[i]:close(), text)
      for line in text:gmatch("[^\n]+") do
        if line:find("^ok ") then
          ok = ok + 1
        else
          refused = refused + 1
          assert.matches("^refused rate_limited create_limit create_limit: 3 creates in the last 60 s", line)
          assert.matches("the next create is allowed in %d+ s", line)
        end
      end
    end
    assert.equal(3, ok)
    assert.equal(7, refused)
    assert.equal(3, creates(emu))
    local pendings = 0
    for line in helper.read_file(journal):gmatch("[^\n]+") do
      if cjson.decode(line).event == "pending" then pendings = pendings + 1 end
    end
    assert.equal(3, pendings) -- a refused create leaves no record
  end)

  it("counts the clients of one key in a process when there is no journal", function()
    local a = starvideos.new { api_key = KEY, base_url = emu.url, create_limit = { count = 2, per = 60 } }
    local b = starvideos.new { api_key = KEY, base_url = emu.url, create_limit = { count = 2, per = 60 } }
    local params = { model = "videos", prompt = "no journal", duration = 5 }
    assert(a:create(params))
    assert(b:create(params))
    local task, err = a:create(params)
    assert.is_nil(task)
    assert.equal("rate_limited", err.kind)
    assert.equal("create_limit", err.field)
    assert.is_true(err.retry_after > 55 and err.retry_after <= 60)
    assert.matches("next create is allowed in", tostring(err), 1, true)
    local j, jerr = b:start(params)
    assert.truthy(j)
    assert.is_nil(jerr)
    while not j.done do b:step(0.05) end
    assert.equal("rate_limited", j.err.kind)
    assert.equal(2, creates(emu))
    a:close()
    b:close()
  end)

  it("raises on a bad shape, naming the field", function()
    for _, case in ipairs {
      { 3, "create_limit: a table {count = N, per = seconds} expected, got 3" },
      { { count = 0, per = 60 }, "create_limit.count: a whole number of creates from 1 to 1e9 expected, got 0" },
      { { count = 1.5, per = 60 }, "create_limit.count" },
      { { count = 3 }, "create_limit.per: a number of seconds from 1 to 31622400 expected, got nil" },
      { { count = 3, per = "60" }, "create_limit.per" },
      { { count = 3, per = 60, burst = 2 }, "create_limit.burst: unknown field (count, per)" },
    } do
      assert.error_matches(function() starvideos.new { api_key = KEY, base_url = emu.url, create_limit = case[1] } end,
        "bad option 'create_limit' to 'new' (" .. case[2], 1, true)
      local tenant = case[2]:gsub("create_limit", "tenant_limit")
      assert.error_matches(function() starvideos.new { api_key = KEY, base_url = emu.url, tenant_limit = case[1] } end,
        "bad option 'tenant_limit' to 'new' (" .. tenant, 1, true)
    end
  end)

  it("raises on prices that are not {model = price >= 0}, and on a tenant that is no name", function()
    for _, case in ipairs {
      { 0.4, "prices: a table {model = price, ...} expected, got 0.4" },
      { { video = 0.4 }, 'prices["video"]: not a model (starvideos_o3, videos, videos_fast, videos_stable, ' },
      { { videos = -1 }, "prices.videos: a price >= 0 expected, got -1" },
      { { videos = 0 / 0 }, "prices.videos: a price >= 0 expected" },
      { { videos = "0.4" }, 'prices.videos: a price >= 0 expected, got "0.4"' },
    } do
      assert.error_matches(function() starvideos.new { api_key = KEY, base_url = emu.url, prices = case[1] } end,
        "bad option 'prices' to 'new' (" .. case[2], 1, true)
    end
    local c = starvideos.new { api_key = KEY, base_url = emu.url }
    for _, bad in ipairs { "", string.rep("x", 201), "a\nb", 7 } do
      assert.error_matches(function() c:create({ model = "videos", prompt = "p", duration = 5 }, { tenant = bad }) end,
        "bad option 'tenant' to 'create' (a tenant name: a string of 1 to 200 bytes without control characters", 1,
        true)
    end
    assert.equal(0, creates(emu))
    c:close()
  end)
end)
