-- A bucket sink inside nginx fed by a video host that ignores Range (issue 49; docs/storage.md): nginx serves a
-- 40 MB video with `max_ranges 0` (200 and the whole file to each part's Range) and, in the same worker, runs the
-- download to s3:// on its own sockets (spec/support/ngx_probe.lua); s3rver behind the specs' SigV4-checking proxy
-- (rocks/s3/spec/support/s3_run.lua) takes it.  The object ends whole with its SHA-256, one upload created, and the
-- worker's RSS stays far below the video's size: one GET (its read held between parts, on the cosocket) feeds every
-- part, and nginx's access log says it served the video once (a GET a part: 8, about 190 MB).
local helper = require "spec.helper"
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local nginx_run = require "spec.support.nginx_run"
local s3_run = require "rocks.s3.spec.support.s3_run"

local MB = 1000 * 1000
local why = s3_run.missing() or nginx_run.missing { "nginx" }

describe("a host that ignores Range, into a bucket inside nginx", function()
  it("40 MB answered 200 whole to every part's Range: one GET feeds the 8 parts, 40 MB served; the object whole "
    .. "with its SHA-256, 1 create, 0 aborts, the worker's RSS under 30 MB", function()
    if why then pending(why) return end
    local st = s3_run.start {}
    local dir = helper.tmpdir()
    assert(helper.execute("mkdir -p " .. helper.shell_quote(dir .. "/www")))
    local video = require("starvideos.emulator.media").mp4 { seconds = 5, bytes = 40 * MB }
    helper.write_file(dir .. "/www/v.mp4", video)
    local sha = require("starvideos.sign").sha256(video)
    video = nil -- luacheck: ignore 311 (the spec's own copy let go of)
    local ngx = nginx_run.serve(dir, function(port)
      local lines = nginx_run.conf_head(dir, 1)
      for _, l in ipairs { "    log_format served '$request_method $uri $status $body_bytes_sent';",
        string.format("    server { listen 127.0.0.1:%d; access_log %s/served.log served;", port, dir),
        "        location /www/ { root " .. dir .. "; max_ranges 0; }",
        "        location = /probe { content_by_lua_file spec/support/ngx_probe.lua; }", "    }", "}", "" } do
        lines[#lines + 1] = l
      end
      return table.concat(lines, "\n")
    end)
    local body = cjson.encode { op = "download", path = "s3://vids/norange.mp4",
      url = { video_url = string.format("http://127.0.0.1:%d/www/v.mp4", ngx.port), actualDuration = 5 },
      client = { api_key = "k", base_url = "http://127.0.0.1:1", storage = { endpoint = st.url,
        access_key = "S3RVER", secret_key = "S3RVER" } } }
    local out = {}
    local _, code = http.request { url = string.format("http://127.0.0.1:%d/probe", ngx.port), method = "POST",
      source = ltn12.source.string(body), sink = ltn12.sink.table(out),
      headers = { ["content-type"] = "application/json", ["content-length"] = #body } }
    local hwm = 0 -- (the worker's peak RSS, kB: nginx's one worker is the master's child)
    for pid in helper.capture("pgrep -P " .. ngx.pid):gmatch("%d+") do
      local status = helper.read_file("/proc/" .. pid .. "/status") or ""
      hwm = math.max(hwm, tonumber(status:match("VmHWM:%s*(%d+)")) or 0)
    end
    ngx.stop()
    local gets, served = 0, 0 -- (the video's GETs, and the bytes nginx sent for them)
    for l in (helper.read_file(dir .. "/served.log") or ""):gmatch("[^\n]+") do
      local n = l:match("^GET /www/v%.mp4 %d+ (%d+)$")
      if n then gets, served = gets + 1, served + tonumber(n) end
    end
    local text = table.concat(out)
    local o = cjson.decode(text) or {}
    local back = st.video("norange.mp4") -- (the served video in it, up to the mark's box: served, served_sha256)
    local n = { created = 0, aborted = 0, parts = s3_run.parts(st.log()) }
    for _, e in ipairs(st.log()) do
      if e.method == "POST" and e.query.uploads then n.created = n.created + 1 end
      if e.method == "DELETE" and e.query.uploadId then n.aborted = n.aborted + 1 end
    end
    local left = st.uploads_left()
    st.stop()
    io.stderr:write(string.format("\n  norange in nginx: the worker's peak RSS %.1f MB for a %d MB video; %d GET, "
      .. "%.1f MB served\n", hwm / 1024, 40, gets, served / MB))
    assert.equal(200, code, text)
    assert.equal("table", o.transport, "the worker did not use nginx's sockets")
    assert.equal("s3://vids/norange.mp4", o.res, text)
    assert.equal(40 * MB, back.served)
    assert.equal(sha, back.served_sha256)
    assert.equal(back.sha256, back.meta, "x-amz-meta-sha256")
    assert.same({ created = 1, aborted = 0, parts = 8 }, n)
    assert.equal(0, left)
    assert.is_true(hwm > 0 and hwm < 30 * 1024, "the worker's peak RSS: " .. hwm .. " kB")
    assert.same({ 1, 40 * MB }, { gets, served })
  end)
end)
