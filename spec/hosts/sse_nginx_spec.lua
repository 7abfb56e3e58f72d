-- client:sse's handler inside nginx (content_by_lua: the request answered on cosockets, ngx.sleep between looks)
-- passes the one case list of the event stream (spec/support/sse_cases.lua; the Lua writer: spec/sse_spec.lua),
-- read by `curl -N` (its Last-Event-ID a header, as an EventSource sends it), on 2 workers sharing the window in
-- `lua_shared_dict starvideos_events`; and a stream whose worker was killed mid-run, come back with its last id,
-- gets the rest of the run, every event once, in order.
local helper = require "spec.helper"
local nginx_run = require "spec.support.nginx_run"
local case_list = require "spec.support.case_list"
local studio_run = require "spec.hosts.support.studio_run"
local cases = require "spec.support.sse_cases"

local KEY = "k-sse-nginx"
local q = helper.shell_quote

if nginx_run.pending_unless_ready("client:sse inside nginx", { "nginx", "curl" }) then return end

-- The stream: the worker's pid said first in an event `worker` without an id (the spec's own: which worker to
-- kill; it leaves an EventSource's last id as it was), then the library's stream of ?tenant=, ?task=,
-- ?heartbeat= until the reader goes.
local EVENTS = [[
  ngx.header.content_type = "text/event-stream"
  ngx.print("event: worker\ndata: ", ngx.worker.pid(), "\n\n")
  local a = ngx.req.get_uri_args()
  local c = require("starvideos").new { api_key = %q, base_url = %q }
  c:sse { tenant = a.tenant, task = a.task, heartbeat = tonumber(a.heartbeat) }
  c:close()
]]

-- The browser's page (spec/hosts/support/sse_browser.js): an EventSource on /events of its ?tenant=, every event
-- it is told kept in sessionStorage, opened after a reload with the last id it saw (?last_event_id=: an
-- EventSource sets no header); window.worker, the worker serving it.
local PAGE = [==[
  ngx.header.content_type = "text/html; charset=utf-8"
  ngx.print([[<!doctype html><meta charset="utf-8"><title>sse</title><script>
const tenant = new URLSearchParams(location.search).get('tenant');
const last = sessionStorage.last;
const es = new EventSource('/events?tenant=' + tenant + (last ? '&last_event_id=' + last : ''));
es.addEventListener('worker', (e) => { window.worker = Number(e.data); });
for (const t of ['created', 'status', 'progress', 'warning', 'late', 'taken', 'saved', 'failed']) {
  es.addEventListener(t, (e) => {
    const seen = JSON.parse(sessionStorage.seen || '[]');
    seen.push({ id: Number(e.lastEventId), type: t });
    sessionStorage.seen = JSON.stringify(seen);
    sessionStorage.last = e.lastEventId;
  });
}
</script>]])
]==]

-- A generate of ?prompt= for ?tenant= to dir/<n>.mp4 in a timer of this worker (409 when it is ?avoid=, a pid).
local GENERATE = [[
  local a = ngx.req.get_uri_args()
  if a.avoid and tonumber(a.avoid) == ngx.worker.pid() then return ngx.exit(409) end
  local n = ngx.shared.starvideos_events:incr("spec:n", 1, 0)
  assert(ngx.timer.at(0, function()
    local c = require("starvideos").new { api_key = %q, base_url = %q }
    c:generate({ model = "videos", prompt = a.prompt, duration = 5 },
      { out = %q .. "/" .. n .. ".mp4", tenant = a.tenant, interval = 0.2 })
    c:close()
  end))
  ngx.say(ngx.worker.pid())
]]

describe("client:sse inside nginx", function()
  local emu, dir, server, streams

  setup(function()
    emu = helper.emulator { key = KEY, queued = 0.3, processing = 0.3 }
    dir = helper.tmpdir()
    streams = {}
    server = nginx_run.serve_lua(dir, { { "/events", EVENTS:format(KEY, emu.url) },
      { "/generate", GENERATE:format(KEY, emu.url, dir) }, { "/page", PAGE } }, 2,
      { "lua_shared_dict starvideos_events 4m;", "lua_shared_dict starvideos 1m;", "lua_check_client_abort on;" },
      nil, " reuseport") -- (the kernel spreads the connections between the workers: a stream on one, a run on the
      -- other, whatever the cases before left open; one socket shared gave them all to one worker once a case had
      -- left three streams on the other)
  end)

  teardown(function()
    for _, s in ipairs(streams or {}) do s.close() end
    if server then server.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  local function url(path, args)
    local parts = {}
    for k, v in pairs(args) do parts[#parts + 1] = k .. "=" .. tostring(v) end
    table.sort(parts)
    return string.format("http://127.0.0.1:%d%s?%s", server.port, path, table.concat(parts, "&"))
  end

  -- A stream read by curl -N into a file of its own (Last-Event-ID as a header).
  local function open(o)
    local args, n = {}, #streams + 1
    for _, k in ipairs { "tenant", "task", "heartbeat" } do args[k] = o[k] end
    local file = dir .. "/stream." .. n
    local header = o.last_event_id and "-H " .. q("Last-Event-ID: " .. o.last_event_id) .. " " or ""
    local proc = helper.spawn(string.format("curl -sN %s%s > %s 2>/dev/null", header, q(url("/events", args)),
      q(file)))
    local s = {}
    function s.text() return helper.read_file(file) or "" end
    function s.events() return cases.parse(s.text()) end
    function s.worker() return tonumber(s.text():match("event: worker\ndata: (%d+)")) end
    function s.close()
      if not proc then return end
      helper.execute("kill " .. proc.pid .. " 2>/dev/null")
      proc:close()
      proc = nil
    end
    streams[n] = s
    assert(helper.wait_until(function() return s.worker() ~= nil end, 10), "the stream did not begin")
    return s
  end

  local p = { start = function(o)
    local out = helper.capture("curl -s " .. q(url("/generate", { tenant = o.tenant, prompt = o.prompt:gsub(" ", "+"),
      avoid = o.avoid })))
    return tonumber(out)
  end, open = open, until_ = helper.wait_until }

  setup(function() p.emu = emu end)

  case_list.each({ describe = describe, it = it }, "the event stream's cases", cases.cases,
    function(case) case.run(p, assert) end, nil, { "dict", "file", "nginx" })

  it("tells a stream come back with its last id after its worker was killed every event of the run once", function()
    local tenant, made = "killed-" .. os.time(), emu:creates()
    local s
    for _ = 1, 40 do -- (a stream on a worker to kill, the run on the other)
      s = open { tenant = tenant }
      if p.start { tenant = tenant, prompt = "a run outliving a worker", avoid = s.worker() } then break end
      s.close()
      s = nil
    end
    assert(s, "no run on a worker other than the stream's in 40 tries")
    assert.is_true(helper.wait_until(function() return #s.events() >= 2 end, 20), s.text())
    local before = s.events()
    assert(helper.execute("kill -KILL " .. s.worker()))
    s.close()
    local again = open { tenant = tenant, last_event_id = before[#before].id }
    assert.is_true(helper.wait_until(function()
      local evs = again.events()
      return evs[1] and evs[#evs].event == "saved"
    end, 30), again.text())
    local all = {}
    for _, e in ipairs(before) do all[#all + 1] = e end
    for _, e in ipairs(again.events()) do all[#all + 1] = e end
    local last = 0
    for _, e in ipairs(all) do
      assert.is_true(e.id > last, "each event once, in order")
      last = e.id
    end
    assert.are.equal("created", all[1].event)
    assert.are.equal("saved", all[#all].event)
    assert.are.equal(1, emu:creates() - made)
    again.close()
  end)

  -- In chromium: the page reloaded mid-run, then the worker serving its stream killed; every event of the run
  -- seen once, in order: the run's events as a stream from the window's start tells them.
  it("tells an EventSource every event of a run once, in order, across a reload and a killed worker", function()
    local why = studio_run.missing()
    if why then return pending(why) end
    local tenant, made = "browser-" .. os.time(), emu:creates()
    emu:config { queued = 1, processing = 4 } -- (a run long enough for a reload and a kill)
    local ok, r = pcall(studio_run.browser, { url = url("/page", { tenant = tenant }),
      generate = url("/generate", { tenant = tenant, prompt = "seen+in+a+browser" }) }, "sse_browser.js")
    emu:config { queued = 0.3, processing = 0.3 }
    if not ok then error(r, 0) end
    assert.are.same({}, r.page_errors)
    assert.is_true(#r.workers >= 3, "a reload and a kill: " .. table.concat(r.workers, " "))
    local all = open { tenant = tenant }
    assert.is_true(helper.wait_until(function()
      local evs = all.events()
      return evs[1] and evs[#evs].event == "saved"
    end, 10), all.text())
    local want = {}
    for _, e in ipairs(all.events()) do want[#want + 1] = { id = e.id, type = e.event } end
    assert.are.same(want, r.seen)
    assert.is_true(r.before_reload < r.before_kill and r.before_kill < #r.seen,
      string.format("events before the reload %d, before the kill %d, in all %d", r.before_reload, r.before_kill,
        #r.seen))
    io.stderr:write(string.format("chromium: %d events, %d before the reload, %d before worker %d was killed; "
      .. "streams on workers %s, the run on %d\n", #r.seen, r.before_reload, r.before_kill, r.killed,
      table.concat(r.workers, " "), r.run_worker))
    assert.are.equal(1, emu:creates() - made)
    all.close()
  end)
end)

-- What 1000 idle streams cost one worker: its resident memory before and after (/proc, VmRSS), and a generate in
-- another request answered meanwhile, its own stream told its run.
describe("1000 idle streams on one worker", function()
  local socket = require "socket"
  local emu, dir, server, socks

  setup(function()
    emu = helper.emulator { key = KEY, queued = 0.3, processing = 0.3 }
    dir = helper.tmpdir()
    server = nginx_run.serve_lua(dir, { { "/events", EVENTS:format(KEY, emu.url) },
      { "/pid", "ngx.say(ngx.worker.pid())" },
      { "/generate", ([[
        local c = require("starvideos").new { api_key = %q, base_url = %q }
        local t, err = c:generate({ model = "videos", prompt = "beside 1000 streams", duration = 5 },
          { out = %q, tenant = "busy", interval = 0.2 })
        c:close()
        ngx.say(t and "saved " .. t.path or tostring(err))]]):format(KEY, emu.url, dir .. "/busy.mp4") } }, 1,
      { "lua_shared_dict starvideos_events 4m;", "lua_shared_dict starvideos 1m;", "lua_check_client_abort on;" },
      4096)
  end)

  teardown(function()
    for _, c in ipairs(socks or {}) do c:close() end
    if server then server.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  local function rss_kb(pid)
    return tonumber((helper.read_file("/proc/" .. pid .. "/status") or ""):match("VmRSS:%s*(%d+) kB"))
  end

  it("cost it under 50 MB and leave a generate answering", function()
    local pid = assert(tonumber(server.get("/pid")))
    local before = assert(rss_kb(pid))
    socks = {}
    for i = 1, 1000 do
      local c = assert(socket.tcp())
      c:settimeout(10)
      assert(c:connect("127.0.0.1", server.port))
      assert(c:send("GET /events?tenant=idle HTTP/1.1\r\nHost: t\r\n\r\n"))
      socks[i] = c
    end
    for i, c in ipairs(socks) do -- (each stream begun: its first line, retry)
      repeat local line = assert(c:receive("*l"), "stream " .. i .. " ended") until line == "retry: 1000"
    end
    local after = assert(rss_kb(pid))
    io.stderr:write(string.format("1000 idle streams: the worker's RSS %d kB -> %d kB, %.1f kB a stream\n",
      before, after, (after - before) / 1000))
    assert.is_true(after - before < 50 * 1024, (after - before) .. " kB")
    local s = helper.spawn(string.format("curl -sN 'http://127.0.0.1:%d/events?tenant=busy' > %s", server.port,
      q(dir .. "/busy.sse")))
    assert.are.equal("saved " .. dir .. "/busy.mp4", server.get("/generate"))
    assert.is_true(helper.wait_until(function()
      local evs = cases.parse(helper.read_file(dir .. "/busy.sse") or "")
      return evs[1] and evs[#evs].event == "saved"
    end, 10))
    helper.execute("kill " .. s.pid)
    s:close()
  end)
end)
