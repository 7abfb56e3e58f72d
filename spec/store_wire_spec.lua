-- A client with `store = "redis://..."`: its ledger is the store's (records,
-- leases, samples in Redis), its key's budget is taken from Redis, and nothing
-- it does with the store blocks a frame (step(0) returns while Redis is stopped).

local helper = require "spec.helper"
local redis_run = require "spec.support.redis_run"
local starvideos = require "starvideos"
local Store = require "starvideos.store"
local R = require "starvideos.ledger_redis"
local core = require "starvideos.core"

local q = helper.shell_quote
local KEY = "k-store-wire"
local CHILD = q(helper.root .. "/spec/fixtures/store_child.lua")

-- A child (store_child.lua) under an outer timeout, so that a hang fails.
local function child(args, seconds)
  return helper.spawn("timeout -s KILL " .. (seconds or 60) .. " " .. helper.CHILD_ENV .. q(helper.lua) .. " "
    .. CHILD .. " " .. args)
end

local missing = redis_run.missing()
local describe_redis = missing and pending or describe

describe_redis("a client with a store", function()
  local emu, redis
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0.2, processing = 0.6 }
    redis = redis_run.start()
  end)
  teardown(function()
    if redis then redis.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)
  before_each(function() emu:reset() end)

  local function ledger_view()
    return R.new(redis.url, { base_url = emu.url, api_key = KEY, connect_timeout = 2 })
  end

  it("refuses journal and store together, naming both", function()
    local ok, err = pcall(starvideos.new, { api_key = KEY, base_url = emu.url, store = redis.url,
      journal = helper.tmpdir() .. "/j.jsonl" })
    assert.is_false(ok)
    assert.matches("journal", err)
    assert.matches("store", err)
  end)

  it("records a generate in Redis and takes its polls' tokens from the store's bucket", function()
    local out = helper.tmpdir() .. "/one.mp4"
    local client = starvideos.new { api_key = KEY, base_url = emu.url, store = redis.url }
    local task = assert(client:generate({ model = "videos", prompt = "recorded", duration = 5 },
      { out = out, interval = 0.2 }))
    assert.equal(out, task.path)
    local st = assert(Store.open(redis.url))
    local prefix = "starvideos:{" .. Store.key_hash(emu.url, KEY) .. "}:"
    assert.equal(out, st:call("HGET", prefix .. "task:" .. task.id, "path"))
    assert.equal(1, st:call("EXISTS", prefix .. "bucket")) -- the token script ran for the polls
    local view = ledger_view()
    assert.same({}, assert(view:unfinished()))
    assert.same({}, assert(view:pending()))
    assert.same({}, assert(client:pending()))
    st:close()
    client:close()
  end)

  it("never blocks step(0) while Redis is stopped, and finishes the job once it is back", function()
    local out = helper.tmpdir() .. "/stepped.mp4"
    local proc = child("step " .. q(emu.url) .. " " .. KEY .. " " .. q(redis.url) .. " " .. q(out))
    local lines, stopped_at = {}, nil
    local ok, perr = pcall(function()
      for line in proc.pipe:lines() do
        lines[#lines + 1] = line
        if line == "state polling" and not stopped_at then
          redis.signal("STOP")
          stopped_at = core.now()
        elseif stopped_at and line:find("^beat") and core.now() - stopped_at > 2.5 then
          redis.signal("CONT")
          stopped_at = math.huge
        end
        if line:find("^done") or line:find("^err") then break end
      end
    end)
    redis.signal("CONT")
    local rest = proc.pipe:read("*a")
    proc:close()
    assert(ok, perr)
    local text = table.concat(lines, "\n") .. rest
    local last = lines[#lines]
    assert.matches("^done ", last, text)
    local beats = 0
    for _ in (text:match("state polling(.*)$") or ""):gmatch("beat") do beats = beats + 1 end
    assert.is_true(beats >= 5, text) -- it went on stepping (a beat every 0.1 s) while Redis was stopped
    assert.matches("warning store redis://127%.0%.0%.1:%d+/0: no answer within 1 s: the key's budget is this "
      .. "process's own until it answers", text) -- said once
    assert.is_nil(text:find("no answer within 1 s: the key's budget.*no answer within 1 s: the key's budget"))
    local most = tonumber(last:match("^done %S+ (%S+)$"))
    assert.is_true(most < 250, text) -- the longest step(0), in ms (a loaded machine's margin)
    assert.equal(1, emu:creates())
    assert.equal(helper.file_size(out) > 0, true)
    local view = ledger_view()
    assert.same({}, assert(view:unfinished()))
    assert.same({}, assert(view:pending()))
  end)
end)
