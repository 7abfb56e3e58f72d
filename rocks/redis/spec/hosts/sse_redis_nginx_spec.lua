-- client:sse's handler inside nginx on a store (fleet/events.lua over nginx's sockets): a run by another host of the
-- store (a plain-Lua process, spec/support/sse_two.lua) told to a stream nginx serves (curl -N), every event once,
-- in order, with the ids the other host's own stream gave; one that comes back with the middle id (Last-Event-ID,
-- as an EventSource sends it) gets the rest.
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"
local nginx_run = require "spec.support.nginx_run"
local cases = require "spec.support.sse_cases"
local two = require "spec.support.sse_two"

local q = helper.shell_quote
local why = redis_run.missing()
if why then
  pending("client:sse inside nginx on a store: " .. why)
  return
end
if nginx_run.pending_unless_ready("client:sse inside nginx on a store", { "nginx", "curl" }) then return end

local EVENTS = [[
  local a = ngx.req.get_uri_args()
  local c = require("starvideos").new { api_key = %q, base_url = %q, store = %q }
  c:sse { tenant = a.tenant }
  c:close()
]]

describe("client:sse inside nginx on a Redis store", function()
  local srv, emu, dir, p, server, procs = nil, nil, nil, nil, nil, {}
  setup(function()
    srv, emu = redis_run.start_pair { queued = 0.3, processing = 0.3 }
    dir = helper.tmpdir()
    p = two.place(emu, dir, { store = srv.url })
    server = nginx_run.serve_lua(dir, { { "/events", EVENTS:format(emu.key, emu.url, srv.url) } }, 2,
      { "lua_shared_dict starvideos_events 4m;", "lua_check_client_abort on;" })
  end)
  teardown(function()
    for _, proc in ipairs(procs) do helper.execute("kill " .. proc.pid .. " 2>/dev/null"); proc:close() end
    if server then server.stop() end
    if p then p.stop() end
    redis_run.stop_pair(srv, emu)
    helper.cleanup()
  end)

  -- A stream of tenant t read by curl -N into a file (last: its Last-Event-ID header): its events so far.
  local function stream(t, last)
    local file = dir .. "/stream." .. (#procs + 1)
    local header = last and "-H " .. q("Last-Event-ID: " .. last) .. " " or ""
    procs[#procs + 1] = helper.spawn(string.format("curl -sN %s%s > %s 2>/dev/null", header,
      q(string.format("http://127.0.0.1:%d/events?tenant=%s", server.port, t)), q(file)))
    return function() return cases.parse(helper.read_file(file) or "") end
  end

  it("tells a run of another host of the store, with that host's ids, and the rest after a Last-Event-ID", function()
    local t = "nginx-store-" .. os.time()
    local events = stream(t)
    local a_stream = dir .. "/a-stream.txt"
    p.start({ tenant = t, prompt = "a run on another host" }, a_stream)
    assert.is_true(p.until_(function() return helper.exists(a_stream) end, 60), "A wrote no stream")
    local all = cases.parse(helper.read_file(a_stream))
    assert.is_true(helper.wait_until(function() return #events() >= #all end, 20), #all .. " events at A")
    local got = events()
    assert.are.equal(#all, #got)
    for i, e in ipairs(got) do assert.are.same({ all[i].id, all[i].event }, { e.id, e.event }) end
    assert.are.equal("saved", got[#got].event)
    local k = math.floor(#all / 2)
    local rest = stream(t, all[k].id)
    assert.is_true(helper.wait_until(function() return #rest() >= #all - k end, 20))
    helper.wait_until(function() return false end, 0.5) -- (anything more it would tell, given the time to)
    local r = rest()
    assert.are.equal(#all - k, #r)
    for i, e in ipairs(r) do assert.are.same({ all[k + i].id, all[k + i].event }, { e.id, e.event }) end
  end)
end)
