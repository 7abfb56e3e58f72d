-- A video streamed into a bucket inside nginx (docs/storage.md; issue 39 item 4): one worker generates a 200 MB
-- video to s3:// on nginx's own sockets (spec/support/ngx_probe.lua) while the spec asks /ping of that worker,
-- nginx running under strace (seccomp-filtered: only the calls that make or change files stop it), against
-- s3rver behind the specs' SigV4-checking proxy (rocks/s3/spec/support/s3_run.lua), the object read back by the AWS
-- SDK.
local helper = require "spec.helper"
local cjson = require "cjson"
local socket = require "socket"
local http = require "socket.http"
local nginx_run = require "spec.support.nginx_run"
local s3_run = require "rocks.s3.spec.support.s3_run"

local gettime, str_format, q = socket.gettime, string.format, helper.shell_quote
local MB = 1000 * 1000
local KEY = "k-s3-ngx"

-- The calls strace follows: each that makes, opens or changes a file.
local FILE_CALLS = "open,openat,openat2,creat,truncate,rename,renameat,renameat2,link,linkat,symlink,symlinkat,"
  .. "mkdir,mkdirat,unlink,unlinkat"

local function conf(dir, port)
  local lines = nginx_run.conf_head(dir, 1)
  for _, l in ipairs {
    "    lua_shared_dict sv_lag 64k;",
    -- the library loaded once, before the workers fork (as OpenResty's users preload their modules): not measured
    "    init_by_lua_block { require \"starvideos\"; require \"starvideos.storage.object\" }",
    str_format("    server { listen 127.0.0.1:%d;", port),
    "        location = /ping { return 200 \"pong\\n\"; }",
    "        location = /pid { content_by_lua_block { ngx.say(ngx.worker.pid()) } }",
    "        location = /lag { content_by_lua_file spec/support/ngx_lag.lua; }",
    "        location = /probe { content_by_lua_file spec/support/ngx_probe.lua; }",
    "    }", "}", "" } do lines[#lines + 1] = l end
  return table.concat(lines, "\n")
end

-- The lines of an strace log (strace -f: nginx's processes and threads) that made or changed a file: a write-open,
-- or any other call it follows.
local function writes(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do
    local call = l:match("^%d+%s+([%w_]+)%(")
    if call and (not call:find("^open") or l:find("O_WRONLY", 1, true) or l:find("O_RDWR", 1, true)
        or l:find("O_CREAT", 1, true) or l:find("O_TRUNC", 1, true)) then
      out[#out + 1] = l
    end
  end
  return out
end

local why = s3_run.missing() or nginx_run.missing { "nginx", "curl", "strace" }

describe("a video streamed into a bucket inside nginx", function()
  local emu, st, dir, ngx, trace
  setup(function()
    if why then return end
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.3 }
    st = s3_run.start {}
    -- the video's host and the store stand for other machines: the two cores go to nginx first
    assert(helper.execute(str_format("renice -n 10 -p %d %d >/dev/null", emu.pid, st.proc.pid)))
    dir = helper.tmpdir()
    trace = dir .. "/strace.log"
    ngx = nginx_run.serve(dir, function(p) return conf(dir, p) end, nil, nil,
      str_format("strace -f --seccomp-bpf -qq -e trace=%s -o %s", FILE_CALLS, q(trace)))
  end)
  teardown(function()
    if ngx then ngx.stop() end
    if st then st.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  -- /ping asked every 50 ms until done() (the worker's own lateness measured beside, spec/support/ngx_lag.lua):
  -- {n, worst, p95, late} (seconds), and pid's peak RSS meanwhile (kB).
  local function pings(port, done, pid)
    assert.equal("started\n", (http.request(str_format("http://127.0.0.1:%d/lag?start=1", port))))
    local ping, close = nginx_run.pinger(port)
    local times, rss = {}, 0
    collectgarbage()
    collectgarbage("stop") -- (no pause of the measuring side's own)
    while not done() do
      times[#times + 1] = ping()
      local status = pid and helper.read_file("/proc/" .. pid .. "/status") or ""
      rss = math.max(rss, tonumber(status:match("VmRSS:%s*(%d+)")) or 0)
      helper.sleep(0.05)
    end
    collectgarbage("restart")
    close()
    table.sort(times)
    local late = tonumber((http.request(str_format("http://127.0.0.1:%d/lag", port))))
    local held, held_n = (http.request(str_format("http://127.0.0.1:%d/lag?held=1", port)) or ""):match("(%S+) (%S+)")
    return { n = #times, worst = times[#times] or 0, p95 = times[math.ceil(#times * 0.95)] or 0, late = late or -1,
      held = tonumber(held) or -1, held_n = tonumber(held_n) or -1 }, rss
  end

  -- The seconds of CPU the worker's main thread (nginx's event loop: not its thread pool) has used.
  local function loop_cpu(pid)
    local f = {}
    for w in ((helper.read_file("/proc/" .. pid .. "/task/" .. pid .. "/stat") or ""):match("%) (.*)$") or "")
        :gmatch("%S+") do f[#f + 1] = w end
    return ((tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)) / 100
  end

  it("200 MB to s3:// on nginx's sockets: the object whole with its SHA-256, /ping on that worker within 10 ms "
    .. "throughout, no file written by the worker", function()
    if why then pending(why) return end
    emu:config { video_size = 200 * MB }
    local port = ngx.port
    local worker = tonumber((http.request(str_format("http://127.0.0.1:%d/pid", port))))
    assert.is_number(worker)
    local t0 = gettime()
    local idle = pings(port, function() return gettime() - t0 > 3 end) -- (the loaded machine's own, for the report)
    local traced, cpu0 = #(helper.read_file(trace) or ""), loop_cpu(worker) -- (what nginx did before: not the upload's)
    helper.write_file(dir .. "/probe.json", cjson.encode { op = "generate", path = "s3://vids/ngx/cat.mp4",
      client = { api_key = KEY, base_url = emu.url, storage = { endpoint = st.url, access_key = "S3RVER",
        secret_key = "S3RVER" } } })
    local answer, done = dir .. "/answer.json", dir .. "/done"
    t0 = gettime()
    assert(helper.execute(str_format("( %scurl -s -m 400 -o %s -H 'Content-Type: application/json' --data-binary @%s "
      .. "http://127.0.0.1:%d/probe; touch %s ) >/dev/null 2>&1 &", helper.UNINSTRUMENTED, q(answer),
      q(dir .. "/probe.json"), port, q(done))))
    local busy, rss = pings(port, function() return helper.exists(done) or gettime() - t0 > 400 end, worker)
    io.stderr:write(str_format("\n  s3 in nginx: 200 MB in %.1f s, the worker's loop %.2f s of CPU, its RSS at most "
      .. "%.1f MB; /ping: %d asked, worst %.2f ms, 95%% within %.2f ms; the loop at most %.0f ms late, at most %.1f ms "
      .. "of its CPU between two turns of a 5 ms timer, 8 ms or more %d times (idle before: %d pings, worst %.2f ms, "
      .. "95%% within %.2f ms; at most %.0f ms late, %.1f ms of CPU)\n", gettime() - t0, loop_cpu(worker) - cpu0,
      rss / 1024, busy.n, busy.worst * 1000, busy.p95 * 1000, busy.late * 1000, busy.held * 1000, busy.held_n, idle.n,
      idle.worst * 1000, idle.p95 * 1000, idle.late * 1000, idle.held * 1000))
    local text = helper.read_file(answer) or ""
    local o = assert(cjson.decode(text), "the probe's answer: " .. text)
    assert.equal("table", o.transport, "the worker did not use nginx's sockets")
    assert.is_table(o.res, text)
    assert.equal("s3://vids/ngx/cat.mp4", o.res.path, text)
    local back = st.video("ngx/cat.mp4") -- (the served video in it, up to the mark's box: back.served)
    assert.equal(200 * MB, back.served)
    assert.equal(o.res.sha256, back.sha256)
    assert.equal(back.sha256, back.meta, "x-amz-meta-sha256")
    assert.equal("video/mp4", back.type)
    local rec = assert(helper.read_file(st.dir .. "/vids/ngx/cat.mp4.json._S3rver_object"), "no provenance record")
    assert.same({ back.sha256, back.bytes }, { cjson.decode(rec).video.sha256, cjson.decode(rec).video.bytes })
    for _, secret in ipairs { KEY, "S3RVER" } do assert.is_nil(rec:find(secret, 1, true), "the record holds it") end
    for _, e in ipairs(st.log()) do assert.equal("ok", e.signature, cjson.encode(e)) end
    assert.equal(math.ceil(200 * MB / (5 * 1024 * 1024)), s3_run.parts(st.log()))
    assert.equal(0, st.uploads_left())
    assert.same({}, writes((helper.read_file(trace) or ""):sub(traced + 1)), "nginx made or changed files")
    assert.is_true(busy.n >= 20, "only " .. busy.n .. " pings")
    -- The worker's own work: a part hashed in the worker, or its megabytes made one string there, holds it 10 to
    -- 60 ms of CPU a part (25 to 40 times in 200 MB); here only the start (the first client's pool thread) may,
    -- and a part's PUT (about 5 ms a turn, not capped) when the 2-core machine's load stretches its CPU time
    -- (CI saw 5 times, at most 13.7 ms; a full run with another hosts spec beside it, 11 times, at most 12.3 ms:
    -- the machine's, not the library's, since this spec alone saw 4, 2 and 0 on the code before that run and 2, 1
    -- and 1 after): at most 16, below the 25 a part hashed in the worker makes.
    assert.is_true(busy.held_n <= 16, str_format("the worker's loop went 8 ms or more of its own CPU without a turn "
      .. "%d times (at most %.1f ms)", busy.held_n, busy.held * 1000))
    -- /ping within 10 ms, 95% of them (the rest: the loaded machine's hiccups, the other engineers' builds), with
    -- the 2-core machine's load for margin: 20 ms
    assert.is_true(busy.p95 < 0.020, str_format("95%% of the pings took up to %.1f ms, the worst %.1f ms",
      busy.p95 * 1000, busy.worst * 1000))
    assert.is_true(busy.worst < 0.25, str_format("a /ping took %.1f ms: the worker was held", busy.worst * 1000))
  end)
end)
