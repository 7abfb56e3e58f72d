-- Rate limits read from the answers on the other hosts (spec/rate_limit_spec.lua: libcurl's): inside nginx
-- (its sockets, the worker's dict `starvideos` holding the key's budget), a client that would send 50 queries a
-- second honours each family the emulator sends (3 requests in each 2 s window): none while none is left, no
-- 429; and in a fleet on Redis, what one process learned ("0 left") holds a second process's first request
-- until the window's end.  Pending where nginx or redis-server is missing.
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local redis_run = require("spec.support.places").fixture("redis")
local tally = require "spec.support.rate_limits"
local NULL = require("cjson").null

local KEY, COUNT, PER, SECONDS = "k-rate-limit", 3, 2, 5

describe("rate limits read from the answers inside nginx", function()
  if nginx_run.pending_unless_ready("rate limits inside nginx", { "nginx", "curl" }) then return end
  local emu, run, id, dir

  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 600 }
    dir = helper.tmpdir()
    local new = string.format("starvideos.new { api_key = %q, base_url = %q, requests_per_second = 50, "
      .. "max_retries = 0 }", KEY, emu.url)
    run = nginx_run.serve_lua(dir, {
      { "/q", table.concat({ 'local starvideos = require "starvideos"', "local c = " .. new,
        "ngx.update_time()", "local t0, n = ngx.now(), 0",
        string.format("while ngx.now() - t0 < %d do", SECONDS),
        "  c:query(ngx.var.arg_id); n = n + 1; ngx.update_time()", "end",
        "local s = c:rate_limit() or {}", "c:close()",
        'ngx.say(n, " ", tostring(s.family), " ", tostring(s.limit), " ", tostring(s.remaining))' }, "\n") },
    }, 1)
    local c = require("starvideos").new { api_key = KEY, base_url = emu.url }
    id = assert(c:create { model = "videos", prompt = "a limited key inside nginx", duration = 5 }).id
    c:close()
  end)

  teardown(function()
    if run then run.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  for _, family in ipairs { "ietf", "ietf07", "x", "x-requests" } do
    it("honours " .. family .. ": 0 requests in the announced window, 0 answers 429", function()
      emu:clear()
      emu:config { rate_limit = { count = COUNT, per = PER }, rate_limit_headers = family }
      local said = run.get("/q?id=" .. id)
      local sent, inside, refused = tally(emu, COUNT, PER)
      emu:config { rate_limit = NULL }
      print(string.format("\nnginx %s: %s; %d sent in %d s, %d inside announced windows, %d answered 429", family,
        said, sent, SECONDS, inside, refused))
      local n, fam, limit, remaining = said:match("^(%d+) (%S+) (%S+) (%S+)")
      assert.truthy(n, said .. (helper.read_file(dir .. "/error.log") or ""))
      assert.equal(0, refused, "answers 429")
      assert.equal(0, inside, "requests while none was left")
      assert.is_true(sent >= COUNT * 2 and sent <= COUNT * 4, "3 a window: " .. sent)
      assert.equal(family:match("^ietf") and "ratelimit" or "x-ratelimit", fam)
      assert.equal(COUNT, tonumber(limit))
      assert.is_true(tonumber(remaining) < COUNT)
    end)
  end
end)

describe("rate limits read from the answers, shared by a fleet on Redis", function()
  local why = redis_run.missing()
  if why then pending("rate limits in a fleet: " .. why) return end
  local srv, emu, dir

  setup(function()
    srv, emu = redis_run.start_pair { key = KEY, queued = 0, processing = 600 }
    dir = helper.tmpdir()
  end)

  teardown(function() redis_run.stop_pair(srv, emu) end)

  for _, family in ipairs { "ietf", "ietf07", "x", "x-requests" } do
    it("a second process sends nothing in the window the first was told of (" .. family .. ")", function()
      local starvideos = require "starvideos"
      local a = starvideos.new { api_key = KEY, base_url = emu.url, store = srv.url, requests_per_second = 50 }
      local id = assert(a:create { model = "videos", prompt = "a fleet's limit " .. family, duration = 5 }).id
      emu:clear()
      emu:config { rate_limit = { count = COUNT, per = PER }, rate_limit_headers = family }
      for _ = 1, COUNT do assert(a:query(id)) end
      assert.equal(0, a:rate_limit().remaining, "the first process was told none is left")
      local b = helper.run_lua(dir, "second", [[
local starvideos = require "starvideos"
local c = starvideos.new { api_key = arg[1], base_url = arg[2], store = arg[3], requests_per_second = 50,
  max_retries = 0 }
local task, err = c:query(arg[4])
print(task and "ok" or "err " .. tostring(err))
c:close()
]], { KEY, emu.url, srv.url, id })
      local out = b.pipe:read("*a")
      b:close()
      a:close()
      local log = emu:requests()
      local sent, inside, refused = tally(emu, COUNT, PER)
      emu:config { rate_limit = NULL }
      local first, last = log[1].at, log[#log].at
      print(string.format("\nfleet %s: the second process's query %.2f s after the window began (%d s), %d sent, "
        .. "%d inside the window, %d answered 429", family, last - first, PER, sent, inside, refused))
      assert.matches("^ok", out)
      assert.equal(COUNT + 1, sent)
      assert.equal(0, refused, "answers 429")
      assert.equal(0, inside, "requests while none was left")
      assert.is_true(last - first >= PER - 0.05, "the second process waited for the window's end")
    end)
  end

  it("a hold longer than max_retry_wait, learned by one process, ends a second process's create at once "
    .. "(rate_limited, the store's hold), nothing sent", function()
    local starvideos = require "starvideos"
    local a = starvideos.new { api_key = KEY, base_url = emu.url, store = srv.url }
    local id = assert(a:create { model = "videos", prompt = "a fleet's long hold", duration = 5 }).id
    emu:clear()
    emu:config { rate_limit = { count = 1, per = 3600 }, rate_limit_headers = "ietf" }
    assert(a:query(id))
    local b = helper.run_lua(dir, "held", [[
local starvideos = require "starvideos"
local socket = require "socket"
local c = starvideos.new { api_key = arg[1], base_url = arg[2], store = arg[3], max_retry_wait = 30 }
local t0 = socket.gettime()
local task, err = c:create { model = "videos", prompt = "held by the fleet", duration = 5 }
print(task and "ok" or string.format("%s %.0f %.1f %s", err.kind, err.retry_after or -1, socket.gettime() - t0,
  err.message))
c:close()
]], { KEY, emu.url, srv.url })
    local out = b.pipe:read("*a")
    b:close()
    a:close()
    emu:config { rate_limit = NULL }
    local kind, left, took = out:match("^(%S+) (%d+) (%S+)")
    assert.equal("rate_limited", kind, out)
    assert.is_true(tonumber(left) > 3500, out)
    assert.is_true(tonumber(took) < 3, out)
    assert.matches("longer than max_retry_wait (30 s)", out, 1, true)
    assert.equal(0, emu:creates(), "creates sent")
  end)
end)
