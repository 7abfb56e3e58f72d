-- starvideos.emulator.args: the command line of `starvideos emulator`, its flags parsed and helped by argparse (as
-- the core's command line is: cli/parser.lua).  options(p) adds them to an argparse command: the emulator's own
-- parser, and the core's `starvideos completion`, which so completes them too.

local argparse = require "argparse"
local files = require "starvideos.emulator.files"

local tonumber, ipairs, string_format = tonumber, ipairs, string.format
local math_floor, math_tointeger = math.floor, rawget(math, "tointeger") -- tointeger: nil before 5.3

local A = {}

-- s as a whole number, or nil (an integer on 5.3+).
local function whole(s)
  local n = tonumber(s)
  if not n or n ~= math_floor(n) or n < -2 ^ 53 or n > 2 ^ 53 then return nil end
  return math_tointeger and math_tointeger(n) or n
end
local function at_least(least, words)
  return function(v) local n = tonumber(v) return n and n >= least and n, words end
end

-- Each flag: its name, its value's name, what it does (the help's words) and its check, value -> the value, or
-- false and what was expected.
local FLAGS = {
  { "port", "N", "port to listen on (default 0: chosen by the system)", function(v)
    local n = whole(v)
    return n and n >= 0 and n <= 65535 and n, "a port number (0-65535)"
  end },
  { "host", "H", "address to bind (default 127.0.0.1)", function(v) return v ~= "" and v, "an address" end },
  { "key", "KEY", "API key to accept (default: $STARVIDEOS_API_KEY, else emulator-key)",
    function(v) return v ~= "" and v, "a non-empty key" end },
  { "queued", "S", "seconds a new task stays queued (default 1)", at_least(0, "seconds >= 0") },
  { "processing", "S", "seconds it then stays processing (default 2)", at_least(0, "seconds >= 0") },
  { "outcome", "X", "how every task ends: completed (the default) or failed",
    function(v) return (v == "completed" or v == "failed") and v, "completed or failed" end },
  { "fail-rate", "P", "the share (0 to 1) of the other tasks that end failed too, with\nthe config's error; drawn "
    .. "from --seed: the same seed, the same tasks", function(v)
    local n = tonumber(v)
    return n and n >= 0 and n <= 1 and n, "a number from 0 to 1"
  end },
  { "seed", "N", "the generator of --fail-rate and of the config's spread (default 1)", function(v)
    local n = whole(v)
    return n and n >= 1 and n < 2 ^ 31 and n, "a whole number from 1 to 2147483647"
  end },
  { "video-size", "N", "bytes of each video: an MP4 of the task's duration, zeros after\nits pictures in mdat "
    .. "(default 19239; at most 1 TiB; below its own\nsize, 8657 bytes for 5 s at 1280x720, the MP4 unpadded)",
    function(v)
      local n = whole(v)
      return n and n >= 0 and n <= files.MAX_BYTES and n,
        string_format("a whole number of bytes from 0 to %d (1 TiB)", files.MAX_BYTES)
    end },
  { "video-colours", "X", "prompt (the default): each video in the colours its prompt picks;\nfixed: every video in "
    .. "the same ones (a spec's byte-for-byte check)",
    function(v) return (v == "prompt" or v == "fixed") and v, "prompt or fixed" end },
  { "failures", "JSON", "the config's failures: rules of creates that fail as the service's\ndo (policy, input, "
    .. 'service), e.g. \'[{"kind":"policy","prompt":"forbidden"}]\'', function(v)
    local rules = require("cjson.safe").decode(v)
    local ok, expected = require("starvideos.emulator.fail").check(rules, require("cjson.safe").null)
    if rules == nil then ok, expected = false, "JSON: " .. expected end
    return ok and rules, expected
  end },
  { "max-lifetime", "S", "exit on its own after S seconds", function(v)
    local n = tonumber(v)
    return n and n > 0 and n, "seconds > 0"
  end },
}

-- The emulator's flags added to p (an argparse parser or command): opts.<name, - as _>.
function A.options(p)
  for _, f in ipairs(FLAGS) do
    p:option("--" .. f[1], f[3]):argname(f[2]):target((f[1]:gsub("%-", "_"))):convert(function(v)
      local ok, expected = f[4](v)
      if ok then return ok end
      return nil, string_format("option --%s: expected %s, got %q", f[1], expected, v)
    end)
  end
  p:flag("-h --help", "show this help")
  return p
end

-- The head of the help (usage: the command as invoked), and its tail (the config's and the faults' fields: the
-- emulator's own rows).
local DESCRIPTION = [[
A local stand-in for the video API: both create endpoints, GET /v1/result/{id},
the queued -> processing -> completed/failed lifecycle, an MP4 that players play
(H.264) of the task's duration and ratio at video_url, reference media at /media/NAME?type=... (see docs/emulator.md),
and injectable faults. When ready it prints "starvideos emulator listening on URL",
then the key it accepts and the two lines that point a shell at it:
  export STARVIDEOS_BASE_URL=URL
  export STARVIDEOS_API_KEY=KEY     (not printed when the key is $STARVIDEOS_API_KEY's)]]

local CONTROL = [[
The options set the config's first values (below), which POST /_emulator/reset restores.

control API (no auth, JSON): GET|DELETE /_emulator/requests, GET|POST /_emulator/config,
GET|POST|DELETE /_emulator/faults, POST /_emulator/expire, GET /_emulator/tasks,
POST /_emulator/end ({"id": ID}: that task ends now, as its outcome),
POST /_emulator/reset. Each logged request carries `connection`, the number of its TCP
connection (keep-alive reuse shows as repeated numbers), `at`, the emulator's clock
(seconds) when it arrived, `status` and `bytes` (its answer's status and body bytes);
each listed task carries `ends_at` (the emulator's clock).
]]

local function parser(invoked, fields)
  local p = argparse(invoked):usage("usage: " .. invoked .. " [options]"):description(DESCRIPTION)
    :epilog(CONTROL .. "\n" .. fields):add_help(false):help_usage_margin(2):help_description_margin(22)
  return A.options(p)
end

-- The help of the command as invoked ("bin/starvideos emulator"); fields: the config's and the faults' rows.
function A.help(invoked, fields)
  return parser(invoked, fields):get_help() .. "\n"
end

-- argv -> opts, or nil and what is wrong (one line, with the hint).
function A.parse(argv)
  for _, w in ipairs(argv) do -- (no flag's name is that long, and argparse's "did you mean" takes its square)
    if w == "--" then break end
    local flag = w:match("^(%-[^=]*)")
    if flag and #flag > 60 then return nil, "unknown option '" .. flag:sub(1, 40) .. "...' (see --help)" end
  end
  local ok, result = parser("starvideos emulator", ""):pparse(argv)
  if ok then return result end
  local dash = result:match("^unknown option '(%-[^%-']+)'") -- (-1: a value, or a short flag there is none of)
  if dash then result = "unknown option '" .. dash .. "': a value that starts with - goes as --flag=value" end
  return nil, result:gsub("\nDid you mean (.-)%?$", " (did you mean %1?)") .. " (see --help)"
end

return A
