-- `make bench`: every bench/*.lua (but common.lua, this file and bench/lib/) and each rock's rocks/<rock>/bench/*.lua
-- run in turn, each against a baseline measured in the same run, then one
-- table, printed and written with the machine's description to
-- bench/RESULTS.md ($BENCH_RESULTS: another path).
--
--   make bench                      (or: lua5.4 bench/run.lua, after make bench-tools)
--   BENCH_QUICK=1 make bench        short measurements, to see that it all works
--   BENCH_ONLY=query_http,download make bench    only these scripts
--   lua5.4 bench/run.lua --serve    only the nginx (prints the variables to export;
--                                   stops when its input ends), to run a script by hand
--
-- The runner starts one nginx of its own (Debian's, with its lua module) on
-- ports the system picks, in a temporary prefix, and stops it at the end, also
-- when something fails (and a watchdog stops it if the runner itself is
-- killed).  It serves, over http and https alike (the certificate is made for
-- this run, signed by a CA made for this run):
--   GET /v1/result/<id>        a completed task (JSON, about 250 bytes), at once
--   GET /slow/v1/result/<id>   the same after 20 ms (ngx.sleep)
--   GET /video.bin             a file of BENCH_VIDEO_BYTES (200 MB; 20 MB when quick)
--   GET|HEAD /media/<file>     the files a script wrote into BENCH_TMP (Range honoured), each
--                              request logged to BENCH_MEDIA_LOG as "METHOD STATUS BYTES_SENT"
--   POST /v1/traces            200 {} once the body is read, as an OTLP/HTTP collector answers
-- Each script gets: BENCH_NGINX (http base URL), BENCH_TLS (https base URL),
-- BENCH_CA (the CA's PEM), BENCH_TMP (scratch folder), BENCH_MEDIA_LOG, BENCH_VIDEO,
-- BENCH_VIDEO_BYTES, BENCH_QUICK, BENCH_LUA; LUA_PATH and LUA_CPATH as the
-- Makefile exports them.  A script prints its rows as
--   BENCH {"scenario":..,"baseline":..,"ours":..,"theirs":..,"unit":..,"ratio":..,"target":..,"ok":..,"note":..}
-- A script that exits non-zero, or prints no row, is a failed row; the runner
-- then exits 1 (a target missed is shown, and does not change the exit status).
local socket = require "socket"
local cjson = require "cjson"

local B = require "bench.common"
local nginx_run = require "spec.support.nginx_run"

local q, sh = B.q, B.sh
local exists, read_file, write_file, free_ports = B.exists, B.read_file, B.write_file, B.free_ports
local str_format = string.format
local quick = B.quick
local T0 = B.now()

local LUA = B.lua
do -- the interpreter running this file, for the scripts
  local a, i = rawget(_G, "arg"), 0
  if type(a) == "table" then
    while a[i - 1] ~= nil do i = i - 1 end
    if i < 0 then LUA = a[i] end
  end
end
local LUA_PATH = os.getenv("LUA_PATH") or dofile("tools/lua_dirs.lua")() .. "./?.lua;;"
local LUA_CPATH = os.getenv("LUA_CPATH") or "build/?.so;;"
local RESULTS = os.getenv("BENCH_RESULTS") or "bench/RESULTS.md"
local VIDEO_BYTES = quick and 20 * 1000 * 1000 or 200 * 1000 * 1000
local SCRIPT_LIMIT = quick and 120 or 400 -- seconds one script may take

local function say(fmt, ...)
  io.stdout:write(str_format(fmt, ...), "\n")
  io.stdout:flush()
end

local function first_line(cmd)
  return ((sh(cmd .. " 2>&1")):match("^%s*([^\n]*)") or "")
end

-- ------------------------------------------------------------ the machine

-- The machine's load averages (1, 5, 15 minutes): the cores are shared.
local function loadavg()
  return (read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)") or "?"
end

local TICK -- clock ticks per second (/proc's unit)

-- CPU seconds so far: the whole machine's busy time and stolen time
-- (/proc/stat), and ours (this runner with every child it waited for, and
-- the nginx at `pid`).  Between two readings, busy - ours is what the rest
-- of the machine took while a script ran: other processes (the cores are
-- shared), and interrupt work (softirq, where loopback traffic is counted).
local function cpu_reading(pid)
  TICK = TICK or tonumber(first_line("getconf CLK_TCK")) or 100
  local v = {}
  for n in ((read_file("/proc/stat") or ""):match("^cpu +([%d ]+)") or ""):gmatch("%d+") do v[#v + 1] = tonumber(n) end
  local function stat_cpu(path, last)
    local f = {}
    for w in ((read_file(path) or ""):match("%) (.*)$") or ""):gmatch("%S+") do f[#f + 1] = tonumber(w) or 0 end
    local sum = 0
    for i = 12, last do sum = sum + (f[i] or 0) end -- fields 14.. of the whole line
    return sum
  end
  local ours = stat_cpu("/proc/self/stat", 15) + (pid and stat_cpu("/proc/" .. pid .. "/stat", 13) or 0)
  return { busy = ((v[1] or 0) + (v[2] or 0) + (v[3] or 0) + (v[6] or 0) + (v[7] or 0)) / TICK,
    steal = (v[8] or 0) / TICK, ours = ours / TICK }
end

-- What other processes took while a script ran, for its rows' notes.
local function others(a, b, secs)
  local other = math.max(0, (b.busy - a.busy) - (b.ours - a.ours))
  return str_format("while it ran (%.1f s), the rest of the machine (other processes; interrupt work, ours "
    .. "too) used %.1f CPU s (%.0f%% of one core), and the hypervisor stole %.1f s", secs, other,
    other / secs * 100, b.steal - a.steal)
end

local function machine()
  local m = {}
  local cpuinfo = read_file("/proc/cpuinfo") or ""
  m[#m + 1] = { "CPU", cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown" }
  m[#m + 1] = { "cores", first_line("nproc") .. " online" }
  local mem = (read_file("/proc/meminfo") or ""):match("MemTotal:%s*(%d+)")
  m[#m + 1] = { "memory", mem and str_format("%.1f GB", tonumber(mem) / 1024 / 1024) or "unknown" }
  m[#m + 1] = { "kernel", first_line("uname -srm") }
  local os_release = read_file("/etc/os-release") or ""
  m[#m + 1] = { "system", str_format("%s (debian_version %s)",
    os_release:match('PRETTY_NAME="([^"]*)"') or "unknown", first_line("cat /etc/debian_version")) }
  m[#m + 1] = { "Lua", first_line(LUA .. " -v"):match("^(Lua %S+)") or first_line(LUA .. " -v") }
  m[#m + 1] = { "libcurl", first_line("curl --version"):match("(libcurl/%S+.*)$") or "unknown" }
  m[#m + 1] = { "nginx", first_line("nginx -v"):gsub("^nginx version: ", "") .. " (+ libnginx-mod-http-lua "
    .. first_line("dpkg-query -W -f='${Version}' libnginx-mod-http-lua") .. ")" }
  m[#m + 1] = { "Lua modules", str_format("lua-cjson %s, %s, LuaSec %s", cjson._VERSION or "?",
    socket._VERSION or "LuaSocket ?", first_line("dpkg-query -W -f='${Version}' lua-sec")) }
  m[#m + 1] = { "compiler", first_line("cc --version") }
  m[#m + 1] = { "commit", first_line("git rev-parse --short HEAD") .. (sh("git status --porcelain 2>/dev/null") ~= ""
    and " (with uncommitted changes)" or "") }
  m[#m + 1] = { "load average at start", loadavg() }
  m[#m + 1] = { "date", os.date("!%Y-%m-%d %H:%M UTC") }
  return m
end

-- ------------------------------------------------------------ nginx

-- The completed task every result location answers (about 250 bytes, shaped as
-- the API's: id, object, created, model, status, video_url, actualDuration, error).
local function task_json(base)
  return '{"id":"task_01JD6Z8ZQ3W4Y5X6V7B8N9M0KP","object":"video","created":1732252800,' ..
    '"model":"videos","status":"completed","video_url":"' .. base .. '/video.bin?expires=1732339200' ..
    '&signature=9f2c4e1a7b3d5f60","actualDuration":5,"error":null}'
end

local function alive(pid)
  return pid and exists("/proc/" .. pid .. "/stat")
end

local nginx = {} -- dir, pid, stop, http, tls, ca

local function run_ok(cmd, what)
  local out, ok = sh("(" .. cmd .. ") 2>&1")
  if not ok then error(what .. " failed: " .. out, 0) end
end

local function nginx_conf(dir, port, tls_port, json)
  local lines = {}
  for _, m in ipairs { "ndk_http_module.so", "ngx_http_lua_module.so" } do
    lines[#lines + 1] = "load_module " .. nginx_run.MODULES .. m .. ";"
  end
  local uid = first_line("id -u")
  if uid == "0" then lines[#lines + 1] = "user root;" end -- so that it may read the runner's files
  local tmp = function(name) return str_format("    %s_temp_path %s/tmp/%s;", name, dir, name) end
  for _, l in ipairs {
    "daemon off;",
    "master_process off;",
    "worker_processes 1;",
    str_format("pid %s/nginx.pid;", dir),
    str_format("error_log %s/error.log warn;", dir),
    "events { worker_connections 4096; }",
    "http {",
    "    access_log off;",
    "    log_format media '$request_method $status $body_bytes_sent';",
    tmp("client_body"), tmp("proxy"), tmp("fastcgi"), tmp("uwsgi"), tmp("scgi"),
    "    keepalive_requests 100000000;",
    "    keepalive_timeout 300s;",
    "    sendfile on;",
    "    server {",
    str_format("        listen 127.0.0.1:%d;", port),
    str_format("        listen 127.0.0.1:%d ssl;", tls_port),
    str_format("        ssl_certificate %s/server.pem;", dir),
    str_format("        ssl_certificate_key %s/server.key;", dir),
    str_format("        root %s/www;", dir),
    "        location /v1/result/ { default_type application/json; return 200 '" .. json .. "'; }",
    "        location /slow/v1/result/ { content_by_lua_block {",
    "            ngx.sleep(0.02)",
    "            local body = [=[" .. json .. "]=]",
    "            ngx.header['Content-Type'] = 'application/json'",
    "            ngx.header['Content-Length'] = #body",
    "            ngx.print(body)",
    "        } }",
    "        location = /video.bin { default_type application/octet-stream; }",
    "        location = /v1/traces { client_max_body_size 64m; default_type application/json; return 200 '{}'; }",
    str_format("        location /media/ { alias %s/scratch/; access_log %s/media.log media; }", dir, dir),
    "    }",
    "}",
  } do lines[#lines + 1] = l end
  return table.concat(lines, "\n") .. "\n"
end

local function stop_nginx()
  local pid = nginx.pid
  if pid then
    nginx.stop()
    say("nginx stopped (pid %d%s)", pid, alive(pid) and ", STILL THERE" or "")
    nginx.pid, nginx.stop = nil, nil
  end
  if nginx.dir then os.execute("rm -rf " .. q(nginx.dir)); nginx.dir = nil end
end

local function start_nginx()
  local why = nginx_run.missing_nginx()
  if why then error(why, 0) end
  local dir = first_line("mktemp -d /tmp/starvideos-bench.XXXXXX")
  assert(dir:match("^/tmp/starvideos%-bench%.%w+$"), "mktemp: " .. dir)
  nginx.dir = dir
  run_ok(str_format("mkdir -p %s/tmp %s/www %s/scratch", q(dir), q(dir), q(dir)), "mkdir")
  -- a CA, and a certificate for 127.0.0.1 signed by it
  run_ok(str_format("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=starvideos bench CA' "
    .. "-keyout ca.key -out ca.pem && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
    .. "-keyout server.key -out server.csr && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n"
    .. "extendedKeyUsage=serverAuth\\n' >server.ext && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
    .. "-CAcreateserial -days 2 -extfile server.ext -out server.pem", q(dir)), "openssl")
  -- the video: a 5 s MP4 (the task's actualDuration), its boxes written and its mdat's zeros
  -- allocated, not written (no dirty pages to flush during the download rows)
  local video = dir .. "/www/video.bin"
  local parts = require("starvideos.emulator.media").parts("mp4", { seconds = 5, bytes = VIDEO_BYTES })
  assert(#parts == 2 and type(parts[2]) == "number", "the MP4's zeros are not last")
  write_file(video, parts[1])
  local _, ok = sh(str_format("fallocate -o %d -l %d %s 2>&1", #parts[1], parts[2], q(video)))
  if not ok then run_ok(str_format("truncate -s %d %s", VIDEO_BYTES, q(video)), "truncate") end
  local ports = free_ports(2)
  nginx.http = "http://127.0.0.1:" .. ports[1]
  nginx.tls = "https://127.0.0.1:" .. ports[2]
  nginx.ca = dir .. "/ca.pem"
  write_file(dir .. "/nginx.conf", nginx_conf(dir, ports[1], ports[2], task_json(nginx.http)))
  -- started, waited for and stopped as the specs' (a watchdog stops it and
  -- removes dir if this runner is killed)
  local n = nginx_run.launch { dir = dir, prefix = dir .. "/", ports = ports, remove_dir = true }
  nginx.pid, nginx.stop = n.pid, n.stop
  say("nginx %s: pid %d, %s and %s, prefix %s", first_line("nginx -v"):match("[%d.]+$") or "", nginx.pid,
    nginx.http, nginx.tls, dir)
  -- the spec (spec/hosts/bench_spec.lua) checks that this process is gone afterwards
  say("BENCH-NGINX pid=%d prefix=%s", nginx.pid, dir)
end

-- ------------------------------------------------------------ scripts

local ORDER = { "query_http", "query_https", "poll_many", "download", "step", "notice_lag", "soak", "require_time",
  "wait_all", "fleet", "journal_read" }

-- Scripts run only when BENCH_ONLY names them: a LÖVE game on Xvfb (bench/lineage_jobs.lua; a minute a run); how
-- promptly calls keep their timeouts (bench/deadlines.lua: the bounds the specs left, measured where they are asked).
local ALONE = { lineage_jobs = true, deadlines = true }

-- Each script's path by its name: bench/<name>.lua, or a rock's rocks/<rock>/bench/<name>.lua (its product's rows).
local PATH = setmetatable({}, { __index = function(_, name) return "bench/" .. name .. ".lua" end })

local function scripts()
  local list, only = {}, os.getenv("BENCH_ONLY")
  for path, name in sh("ls bench/*.lua rocks/*/bench/*.lua 2>/dev/null"):gmatch("(%S-([%w_%-%.]+)%.lua)\n") do
    if name ~= "common" and name ~= "run" and (not only or (("," .. only .. ","):find("," .. name .. ",", 1, true)))
      and (only or not ALONE[name])
    then list[#list + 1], PATH[name] = name, path end
  end
  -- the rows of issue 8 first, in its order; any other script after them, by name
  local rank = {}
  for i, name in ipairs(ORDER) do rank[name] = i end
  table.sort(list, function(a, b)
    local ra, rb = rank[a] or #ORDER + 1, rank[b] or #ORDER + 1
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  return list
end

local function env_prefix()
  local vars = {
    BENCH_NGINX = nginx.http, BENCH_TLS = nginx.tls, BENCH_CA = nginx.ca, BENCH_TMP = nginx.dir .. "/scratch",
    BENCH_MEDIA_LOG = nginx.dir .. "/media.log",
    BENCH_VIDEO = "/video.bin", BENCH_VIDEO_BYTES = tostring(VIDEO_BYTES), BENCH_QUICK = quick and "1" or "0",
    BENCH_LUA = LUA, LUA_PATH = LUA_PATH, LUA_CPATH = LUA_CPATH,
  }
  local names, parts = {}, {}
  for k in pairs(vars) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. q(vars[k]) end
  return "env " .. table.concat(parts, " ")
end

local function decode_row(text)
  local ok, r = pcall(cjson.decode, text)
  if not ok or type(r) ~= "table" then return nil, "not JSON: " .. tostring(r) end
  for k, v in pairs(r) do if v == cjson.null then r[k] = nil end end
  if type(r.scenario) ~= "string" or type(r.ours) ~= "number" then
    return nil, "a row needs a scenario and a number for ours"
  end
  return r
end

-- Run one script; its rows (a failure is a row too).
local function run_script(name)
  local rows = {}
  say("\n== %s", PATH[name])
  local t, cpu0 = B.now(), cpu_reading(nginx.pid)
  local cmd = str_format("%s timeout -k 5 %d %s %s 2>&1; echo \"BENCH-EXIT $?\"", env_prefix(),
    SCRIPT_LIMIT, LUA, PATH[name])
  local p = assert(io.popen(cmd, "r"))
  local status, tail = nil, {}
  for line in p:lines() do
    local code = line:match("^BENCH%-EXIT (%d+)$")
    if code then
      status = tonumber(code)
    else
      io.stdout:write("  ", line, "\n")
      io.stdout:flush()
      tail[#tail + 1] = line
      if #tail > 12 then table.remove(tail, 1) end
      local text = line:match("^BENCH (.*)$")
      if text then
        local r, why = decode_row(text)
        if r then
          r.script = name
          rows[#rows + 1] = r
        else
          rows[#rows + 1] = { script = name, scenario = name .. ": a row that cannot be read", failed = true,
            note = why .. ": " .. text }
        end
      end
    end
  end
  p:close()
  local secs = B.now() - t
  local busy = others(cpu0, cpu_reading(nginx.pid), secs)
  for _, r in ipairs(rows) do r.note = (r.note and r.note ~= "" and r.note .. "; " or "") .. busy end
  if status ~= 0 or #rows == 0 then
    local why = status == 124 and str_format("killed after %d s", SCRIPT_LIMIT)
      or status ~= 0 and ("exit status " .. tostring(status)) or "no BENCH row printed"
    rows[#rows + 1] = { script = name, scenario = PATH[name] .. " FAILED", failed = true,
      note = why .. "; last lines: " .. table.concat(tail, " / ") }
  end
  say("   (%s: %.1f s; %s)", name, secs, busy)
  return rows, secs
end

-- ------------------------------------------------------------ the table

local function num(v)
  if type(v) ~= "number" then return "-" end
  local a = math.abs(v)
  if a >= 100 then return str_format("%.0f", v) end
  if a >= 10 then return str_format("%.1f", v) end
  if a >= 1 then return str_format("%.2f", v) end
  if a == 0 then return "0" end
  return str_format("%.3g", v)
end

local function met(r)
  if r.failed then return "FAILED" end
  if r.target == nil or r.target == "none" then return "(no target)" end
  return r.ok and "yes" or "NO"
end

local HEAD = { "#", "scenario", "baseline", "ours", "baseline's", "ratio", "target", "met" }

local function cells(i, r)
  local unit = r.unit and (" " .. r.unit) or ""
  return { tostring(i), r.scenario, r.baseline or "none", r.ours and (num(r.ours) .. unit) or "-",
    r.theirs and (num(r.theirs) .. unit) or "-", r.ratio and (num(r.ratio) .. "x") or "-", r.target or "none",
    met(r) }
end

local function text_table(rows)
  local all, width = { HEAD }, {}
  for i, r in ipairs(rows) do all[#all + 1] = cells(i, r) end
  for _, c in ipairs(all) do
    for j, v in ipairs(c) do width[j] = math.max(width[j] or 0, #v) end
  end
  local out = {}
  for n, c in ipairs(all) do
    local line = {}
    for j, v in ipairs(c) do line[j] = v .. string.rep(" ", width[j] - #v) end
    out[#out + 1] = "| " .. table.concat(line, " | ") .. " |"
    if n == 1 then
      local rule = {}
      for j = 1, #c do rule[j] = string.rep("-", width[j]) end
      out[#out + 1] = "|-" .. table.concat(rule, "-|-") .. "-|"
    end
  end
  return table.concat(out, "\n")
end

local function md_cell(s) return (tostring(s):gsub("|", "\\|")) end

local function markdown(rows, desc, secs, script_secs)
  local out = {
    "# `make bench` results", "",
    str_format("Written by `bench/run.lua` on %s%s; the whole run took %.0f s.", desc[#desc][2],
      quick and " in a QUICK run (BENCH_QUICK=1: short measurements, not for comparison)" or "", secs), "",
    "Each row is measured against its baseline in the same run, on the same nginx (one worker, on this",
    "machine). **ratio** is always ours / baseline's in the row's unit: for a throughput (queries/s) higher",
    "is better, for a time or a memory size lower is better; the target says which way. Ours and the",
    "baseline take turns in rounds: the table shows the median of each, and the ratio is the median of",
    "the rounds' own ratios (the machine's 2 cores are shared and its speed drifts; the runs of one round",
    "see the same machine). How each row is measured is at the top of its script (`bench/<script>.lua`, or a rock's",
    "`rocks/<rock>/bench/<script>.lua`) and in its note below.", "",
    "## Machine", "",
  }
  for _, kv in ipairs(desc) do out[#out + 1] = str_format("- %s: %s", kv[1], kv[2]) end
  out[#out + 1] = ""
  out[#out + 1] = "## Results"
  out[#out + 1] = ""
  out[#out + 1] = "| " .. table.concat(HEAD, " | ") .. " |"
  out[#out + 1] = "|" .. string.rep("---|", #HEAD)
  for i, r in ipairs(rows) do
    local c = cells(i, r)
    for j, v in ipairs(c) do c[j] = md_cell(v) end
    out[#out + 1] = "| " .. table.concat(c, " | ") .. " |"
  end
  out[#out + 1] = ""
  out[#out + 1] = "## Notes"
  out[#out + 1] = ""
  for i, r in ipairs(rows) do
    out[#out + 1] = str_format("%d. (%s) %s", i, PATH[r.script], r.note ~= "" and r.note or "-")
  end
  out[#out + 1] = ""
  out[#out + 1] = "Seconds per script: " .. script_secs .. "."
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

-- ------------------------------------------------------------ main

local function main()
  local desc = machine()
  say("make bench%s: %s, %s, %s", quick and " (QUICK)" or "", desc[1][2], desc[2][2], desc[3][2])
  start_nginx()
  local rows, times = {}, {}
  for _, name in ipairs(scripts()) do
    local got, secs = run_script(name)
    for _, r in ipairs(got) do rows[#rows + 1] = r end
    times[#times + 1] = str_format("%s %.1f (load average after it: %s)", name, secs, loadavg())
    if not alive(nginx.pid) then error("nginx died during " .. PATH[name] .. ": " ..
      (read_file(nginx.dir .. "/error.log") or ""), 0) end
  end
  stop_nginx()
  local secs = B.now() - T0
  table.insert(desc, #desc, { "load average at the end", loadavg() })
  local failed, missed = 0, 0
  for _, r in ipairs(rows) do
    if r.failed then failed = failed + 1 elseif met(r) == "NO" then missed = missed + 1 end
  end
  say("\n%s", text_table(rows))
  for i, r in ipairs(rows) do say("%2d. %s", i, r.note or "") end
  say("\nratio = ours / baseline's; %d rows, %d targets missed, %d failed; %.0f s in all", #rows, missed, failed, secs)
  write_file(RESULTS, markdown(rows, desc, secs, table.concat(times, ", ")))
  say("written: %s", RESULTS)
  return failed == 0
end

-- `lua5.4 bench/run.lua --serve`: only the nginx, for running one script by
-- hand; prints the variables to export, stops it at the end of its input.
local function serve()
  start_nginx()
  for k, v in env_prefix():gmatch("(BENCH_[%w_]+)=('[^']*')") do say("export %s=%s", k, v) end
  io.stdout:flush()
  io.stdin:read("*a")
  stop_nginx()
  return true
end

local ok, res = xpcall(arg and arg[1] == "--serve" and serve or main, debug.traceback)
if not ok then
  io.stderr:write("bench/run.lua: ", tostring(res), "\n")
  stop_nginx()
  os.exit(1)
end
os.exit(res and 0 or 1)
