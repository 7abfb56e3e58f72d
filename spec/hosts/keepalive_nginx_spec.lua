-- keepalive_timeout and keepalive_pool inside nginx (lua-resty-http's names; nginx/wire.lua's
-- setkeepalive): the emulator numbers each TCP connection (`connection` in its log), so a request
-- on a kept connection shows as a number seen before.  One worker; a location runs rounds of
-- concurrent queries, each in a light thread with a client of its own, sleeping between rounds
-- inside the worker (ngx.sleep: its timer is due after the kept connections' idle timers, so the
-- order is nginx's, not the machine's speed).  Pending, with the reason, where nginx or its lua
-- module is missing.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"

local KEY = "k-keepalive"

if nginx_run.pending_unless_ready("keep-alive inside nginx", { "nginx", "curl" }) then return end

-- The location's code: ?pool=&timeout= (the options, when given), n= queries at once per round,
-- rounds=, gap= seconds slept between rounds, id= the task queried.  Answers "ok", or what failed.
local ROUNDS = [[
  local starvideos = require "starvideos"
  local a = ngx.req.get_uri_args()
  local opts = { api_key = %q, base_url = %q, max_retries = 0, requests_per_second = 1000,
    keepalive_pool = tonumber(a.pool), keepalive_timeout = tonumber(a.timeout) }
  local function one()
    local c = starvideos.new(opts)
    local t, err = c:query(a.id)
    c:close()
    return t and "ok" or tostring(err)
  end
  for r = 1, tonumber(a.rounds) do
    if r > 1 then ngx.sleep(tonumber(a.gap)) end
    local threads = {}
    for i = 1, tonumber(a.n) do threads[i] = ngx.thread.spawn(one) end
    for _, th in ipairs(threads) do
      local _, said = ngx.thread.wait(th)
      if said ~= "ok" then ngx.say(said); return end
    end
  end
  ngx.say("ok")
]]

-- A client made with the option ?name= set to the JSON value ?value=: the error it raised, or "made".
local MADE = [[
  local a = ngx.req.get_uri_args()
  local ok, err = pcall(require("starvideos").new, { api_key = "k", base_url = "http://127.0.0.1:9",
    [a.name] = require("cjson").decode(a.value) })
  ngx.say(ok and "made" or tostring(err))
]]

describe("keep-alive inside nginx", function()
  local emu, dir, ngx, id

  setup(function()
    emu = helper.emulator { key = KEY }
    dir = helper.tmpdir()
    ngx = nginx_run.serve_lua(dir, { { "/rounds", ROUNDS:format(KEY, emu.url) }, { "/made", MADE } })
    local client = require("starvideos").new { api_key = KEY, base_url = emu.url }
    id = assert(client:create { model = "videos", prompt = "a cat", duration = 5 }).id
    client:close()
  end)

  teardown(function()
    if ngx then ngx.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  -- The rounds run (query: the location's arguments but id): the connections of each round's queries, in order.
  local function rounds(query, n, count)
    emu:clear()
    assert.equal("ok", ngx.get("/rounds?id=" .. id .. "&n=" .. n .. "&rounds=" .. count .. "&" .. query))
    local list = {}
    for _, r in ipairs(emu:requests()) do
      if r.method == "GET" and r.path:find("^/v1/") then list[#list + 1] = r.connection end
    end
    assert.equal(n * count, #list, cjson.encode(list))
    local out = {}
    for i, c in ipairs(list) do
      local round = math.floor((i - 1) / n) + 1
      out[round] = out[round] or {}
      table.insert(out[round], c)
    end
    return out
  end

  -- How many of the connections `later` are in `earlier`.
  local function kept(earlier, later)
    local seen, n = {}, 0
    for _, c in ipairs(earlier) do seen[c] = true end
    for _, c in ipairs(later) do if seen[c] then n = n + 1 end end
    return n
  end

  it("by default keeps every connection of three at once, and one idle 2 s is used again", function()
    local r = rounds("gap=2", 3, 2)
    assert.equal(3, kept(r[1], r[2]), cjson.encode(r))
  end)

  it("keepalive_pool = 1 keeps one connection: of three at once, one is used again", function()
    emu:fault { path = "/v1/result/", delay = 0.5, count = 3 } -- (the first three answers: all three are open at once)
    local r = rounds("pool=1&gap=0", 3, 2)
    assert.equal(0, kept({ r[1][1] }, { r[1][2], r[1][3] }) + kept({ r[1][2] }, { r[1][3] }),
      "the first three queries did not go on three connections: " .. cjson.encode(r))
    assert.equal(1, kept(r[1], r[2]), cjson.encode(r))
  end)

  it("keepalive_timeout = 1 lets an idle connection go: a query 2 s later comes on a new one", function()
    local r = rounds("timeout=1&gap=2", 1, 2)
    assert.equal(0, kept(r[1], r[2]), cjson.encode(r))
    r = rounds("timeout=1&gap=0", 1, 2) -- (at once: kept)
    assert.equal(1, kept(r[1], r[2]), cjson.encode(r))
  end)

  it("a keepalive_timeout under a millisecond is one, not nginx's 0 (kept for ever)", function()
    local r = rounds("timeout=0.0004&gap=0.1", 1, 2)
    assert.equal(0, kept(r[1], r[2]), cjson.encode(r))
  end)

  it("refuses a bad value when the client is made, naming the option", function()
    for name, bad in pairs { keepalive_timeout = { 0, -1, 86401, '"60"' }, keepalive_pool = { 0, 1.5, 1025, '"8"' } } do
      for _, v in ipairs(bad) do
        local said = ngx.get("/made?name=" .. name .. "&value=" .. v)
        assert.truthy(said:find("bad option '" .. name .. "' to 'new'", 1, true), name .. " = " .. v .. ": " .. said)
      end
    end
    assert.equal("made", ngx.get("/made?name=keepalive_pool&value=1"))
    assert.equal("made", ngx.get("/made?name=keepalive_timeout&value=0.5"))
  end)
end)
