-- Shared by the benchmarks: start the emulator on a free port, talk to its
-- control API, read a process's peak memory.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local B = {}

function B.emulator(key, extra)
  local cmd = string.format("exec sh -c 'echo $$; exec lua5.4 bin/starvideos emulator --port 0 --key %s " ..
    "--max-lifetime 1800 %s 2>/dev/null'", key, extra or "")
  local pipe = assert(io.popen(cmd, "r"))
  local pid = assert(tonumber(pipe:read("l")), "no emulator pid")
  local url = assert((pipe:read("l") or ""):match("listening on (http://127%.0%.0%.1:%d+)"), "emulator did not start")
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

-- Peak resident memory (kB) of a command, through GNU time.
function B.peak_kb(cmd)
  local p = assert(io.popen("/usr/bin/time -f 'PEAK %M' " .. cmd .. " 2>&1 >/dev/null"))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("PEAK (%d+)")), out
end

B.now = socket.gettime
return B
