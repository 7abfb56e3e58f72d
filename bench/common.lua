-- Shared by the bench scripts (require "bench.common"): the environment the
-- runner (bench/run.lua) gives them, clocks, loops, rounds of contenders taking
-- turns, memory and descriptor readings, the C baselines, and the one way a
-- table row is printed (docs: /work/notes/bench-protocol.md, and the top
-- of bench/run.lua).
--
-- The scripts run on lua5.4 (the runner's interpreter); this file stays valid
-- Lua 5.1 syntax like the rest of the tree.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local B = {}

-- The file and port helpers the specs use (spec/helper.lua: plain Lua, no busted).
do
  local helper = require "spec.helper"
  B.exists, B.read_file, B.write_file = helper.exists, helper.read_file, helper.write_file
  B.file_size, B.free_ports, B.hanging_port = helper.file_size, helper.free_ports, helper.hanging_port
  -- (a saved video's size up to the mark's box its commit appended: the served bytes')
  B.video_size = helper.video_size
end
io.stdout:setvbuf("line") -- the runner shows each line as it comes

local getenv = os.getenv
B.quick = getenv("BENCH_QUICK") == "1"
B.nginx = getenv("BENCH_NGINX")        -- http://127.0.0.1:PORT
B.tls = getenv("BENCH_TLS")            -- https://127.0.0.1:PORT, the same nginx
B.ca = getenv("BENCH_CA")              -- the PEM of the CA that signed its certificate
B.tmp = getenv("BENCH_TMP")            -- a scratch folder the runner removes
B.video = getenv("BENCH_VIDEO") or "/video.bin"
B.video_bytes = tonumber(getenv("BENCH_VIDEO_BYTES") or "")
B.key = "sk-bench-0123456789abcdef0123456789abcdef" -- nginx checks no key; it is sent all the same
B.lua = getenv("BENCH_LUA") or "lua5.4"

-- The monotonic clock of the core when it loads (it is what the client uses),
-- else LuaSocket's.
do
  local ok, core = pcall(require, "starvideos.core")
  B.now = ok and core.now or socket.gettime
end
B.sleep = socket.sleep

-- Scripts that need the runner's nginx call this first.
function B.need_nginx()
  if not (B.nginx and B.tls and B.ca and B.tmp) then
    error("BENCH_NGINX, BENCH_TLS, BENCH_CA and BENCH_TMP are not set: run this through `make bench` "
      .. "(bench/run.lua starts the nginx)", 2)
  end
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
B.q = shell_quote

-- A shell command's whole output (stdout; add 2>&1 for stderr) and whether it
-- exited 0.
function B.sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  local ok = p:close()
  return out, ok == true
end

-- A C baseline (build/bench/NAME, built by mk/bench.mk): its REQUESTS and
-- SECONDS line, or an error with what it said.
function B.run_c(name, args)
  local bin = "build/bench/" .. name
  local f = io.open(bin, "rb")
  if not f then error(bin .. " is missing: run `make bench` (or `make bench-tools`)", 2) end
  f:close()
  local parts = { bin }
  for i, a in ipairs(args) do parts[i + 1] = shell_quote(a) end
  local out, ok = B.sh(table.concat(parts, " ") .. " 2>&1")
  local n, s = out:match("REQUESTS (%d+) SECONDS ([%d.]+)")
  if not ok or not n then error(name .. " failed: " .. out, 2) end
  return tonumber(n), tonumber(s), tonumber(out:match(" CPU ([%d.]+)"))
end

-- Call fn() until `seconds` have passed: the number of calls, the seconds, and
-- the CPU seconds this process spent meanwhile (os.clock: user + system).
function B.loop(seconds, fn)
  local now, clock = B.now, os.clock
  local n, c0, t0 = 0, clock(), now()
  local t
  repeat
    fn()
    n = n + 1
    t = now()
  until t - t0 >= seconds
  return n, t - t0, clock() - c0
end

-- Contenders measured in rounds, taking turns (the order rotates from one
-- round to the next, so that none always goes first).  A contender is
-- { name = , run = function() return value end }.  Returns
-- { [name] = { value of round 1, value of round 2, ... } }.
function B.rounds(n, contenders)
  local res, k = {}, #contenders
  for _, c in ipairs(contenders) do res[c.name] = {} end
  for r = 1, n do
    for j = 0, k - 1 do
      local c = contenders[(r - 1 + j) % k + 1]
      local list = res[c.name]
      list[#list + 1] = c.run()
    end
  end
  return res
end

-- The ratio of a row measured in rounds: ours / theirs within each round, and
-- the median of those.  The machine's speed drifts (its 2 cores are shared),
-- and the runs of one round see the same machine.  Returns the median and
-- the list.
function B.paired(ours, theirs)
  local r = {}
  for i = 1, #ours do r[i] = ours[i] / theirs[i] end
  return B.median(r), r
end

function B.median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

-- Numbers as the notes show them.
function B.list(values, fmt)
  local out = {}
  for i, v in ipairs(values) do out[i] = string.format(fmt or "%.0f", v) end
  return table.concat(out, ", ")
end

-- ------------------------------------------------------------ processes

-- This process's id.
function B.pid()
  local f = assert(io.open("/proc/self/stat", "rb"))
  local pid = tonumber(f:read("*a"):match("^(%d+)"))
  f:close()
  return pid
end

local PAGE_KB
-- Resident memory of this process now (kB), from /proc/self/statm.
function B.rss_kb()
  if not PAGE_KB then
    PAGE_KB = (tonumber((B.sh("getconf PAGESIZE"))) or 4096) / 1024
  end
  local f = assert(io.open("/proc/self/statm", "rb"))
  local resident = tonumber(f:read("*a"):match("^%d+%s+(%d+)"))
  f:close()
  return resident * PAGE_KB
end

-- Descriptors this process holds now (the pipe that lists them included, the
-- same one every time).
function B.fd_count()
  local out = B.sh("ls /proc/" .. B.pid() .. "/fd")
  local n = 0
  for _ in out:gmatch("%S+") do n = n + 1 end
  return n
end

-- Peak resident memory (kB) of a command, through GNU time, and its output.
function B.peak_kb(cmd)
  local p = assert(io.popen("/usr/bin/time -f 'PEAK %M' " .. cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  return tonumber(out:match("PEAK (%d+)")), out, ok == true
end

-- ------------------------------------------------------------ rows

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_number(v)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then return "null" end
  return string.format("%.10g", v)
end

-- Print one table row in the protocol's form:
--   BENCH {"scenario":..,"baseline":..,"ours":..,"theirs":..,"unit":..,"ratio":..,"target":..,"ok":..,"note":..}
-- r.ratio defaults to ours / theirs (always that way round; the target says
-- which direction is good).
function B.row(r)
  local ratio = r.ratio
  if ratio == nil and type(r.theirs) == "number" and r.theirs ~= 0 then ratio = r.ours / r.theirs end
  print("BENCH {" .. table.concat({
    '"scenario":' .. json_string(r.scenario),
    '"baseline":' .. json_string(r.baseline or "none"),
    '"ours":' .. json_number(r.ours),
    '"theirs":' .. json_number(r.theirs),
    '"unit":' .. json_string(r.unit),
    '"ratio":' .. json_number(ratio),
    '"target":' .. json_string(r.target or "none"),
    '"ok":' .. tostring(r.ok == true),
    '"note":' .. json_string(r.note or ""),
  }, ",") .. "}")
  io.stdout:flush()
end

-- ------------------------------------------------------------ the emulator

-- The project's emulator on a free port (bench/wait_all.lua), with its control API.
function B.emulator(key, extra)
  local cmd = string.format("exec sh -c 'echo $$; exec %s bin/starvideos emulator --port 0 --key %s " ..
    "--max-lifetime 1800 %s 2>/dev/null'", B.lua, key, extra or "")
  local pipe = assert(io.popen(cmd, "r"))
  local pid = assert(tonumber(pipe:read("*l")), "no emulator pid")
  local url = assert((pipe:read("*l") or ""):match("listening on (http://127%.0%.0%.1:%d+)"), "emulator did not start")
  local emu = { url = url, key = key, pid = pid, pipe = pipe }
  function emu.config(t)
    local body = cjson.encode(t)
    assert(http.request { url = url .. "/_emulator/config", method = "POST", source = ltn12.source.string(body),
      headers = { ["content-type"] = "application/json", ["content-length"] = #body } })
  end
  function emu.requests()
    local out = {}
    http.request { url = url .. "/_emulator/requests", sink = ltn12.sink.table(out) }
    return cjson.decode(table.concat(out))
  end
  function emu.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
  end
  return emu
end

return B
