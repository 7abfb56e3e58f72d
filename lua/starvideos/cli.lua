-- The command line: `starvideos <command> ...`.  bin/starvideos is a launcher;
-- M.main(argv) does the work and returns the exit status:
--   0 success, 1 a failed task or an API error, 2 bad usage or invalid parameters.
-- The library is used through its public API only; the API key comes from the
-- environment or a file, never from an argument, and never reaches the output.

local type, pairs, ipairs, tostring, tonumber, select, pcall, xpcall, error, setmetatable, getmetatable =
  type, pairs, ipairs, tostring, tonumber, select, pcall, xpcall, error, setmetatable, getmetatable
local io_stdout, io_stderr, io_open, io_stdin, os_getenv =
  io.stdout, io.stderr, io.open, io.stdin, os.getenv
local string_format, string_rep, table_concat, table_sort, table_move, math_floor, math_min, math_type =
  string.format, string.rep, table.concat, table.sort, table.move, math.floor, math.min, math.type

local M = {}

local PROG = "starvideos"

-- ------------------------------------------------------------ output

-- The key in use, so that no output can ever carry it (defence in depth: the
-- library's messages never contain it either).
local secret

local function redact(s)
  s = tostring(s)
  if secret and #secret >= 4 then
    local out, i = {}, 1
    while true do
      local a, b = s:find(secret, i, true)
      if not a then break end
      out[#out + 1] = s:sub(i, a - 1)
      out[#out + 1] = "[redacted]"
      i = b + 1
    end
    if i > 1 then
      out[#out + 1] = s:sub(i)
      s = table_concat(out)
    end
  end
  return s
end

local function write(stream, ...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = redact(select(i, ...)) end
  stream:write(table_concat(parts))
  stream:flush()
end

local function out(...) write(io_stdout, ...) end

-- A usage error: raised by the parser and the command setup, caught by main.
local Usage = {}
Usage.__index = Usage
local function usage_error(fmt, ...)
  error(setmetatable({ message = string_format(fmt, ...) }, Usage), 0)
end

local function quote(s) return string_format("%q", s) end

-- ------------------------------------------------------------------ JSON

local cjson = require "cjson"
local ARRAY = {} -- metatable marking a table to encode as a JSON array, even when empty

local function array(t) return setmetatable(t or {}, ARRAY) end

local function is_sequence(t)
  local n = #t
  if n == 0 then return getmetatable(t) == ARRAY end
  local count = 0
  for k in pairs(t) do
    if math_type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

-- A number as JSON and people write it: 5 rather than 5.0 (cjson decodes every
-- number as a float).
local function number_text(v)
  local int = math.tointeger(v)
  if int and (math_type(v) == "integer" or (v > -2^53 and v < 2^53)) then return string_format("%d", int) end
  return string_format("%.14g", v)
end

-- Encode with sorted keys (stable output), JSON null for cjson.null, and
-- read-only proxies (starvideos.models) followed through __pairs.
local function encode(v, indent, depth)
  local tv = type(v)
  if v == nil or v == cjson.null then return "null" end
  if tv == "boolean" then return tostring(v) end
  if tv == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return number_text(v)
  end
  if tv == "string" then return cjson.encode(v) end
  if tv ~= "table" then return cjson.encode(tostring(v)) end
  depth = depth or 0
  local pad = indent and ("\n" .. string_rep(indent, depth + 1)) or ""
  local close = indent and ("\n" .. string_rep(indent, depth)) or ""
  local sep = indent and ": " or ":"
  local items = {}
  if is_sequence(v) then
    for i = 1, #v do items[i] = pad .. encode(v[i], indent, depth + 1) end
    if #items == 0 then return "[]" end
    return "[" .. table_concat(items, ",") .. close .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table_sort(keys)
  for i, k in ipairs(keys) do
    local val = v[k]
    if val == nil then val = v[tonumber(k)] end
    items[i] = pad .. cjson.encode(k) .. sep .. encode(val, indent, depth + 1)
  end
  if #items == 0 then return "{}" end
  return "{" .. table_concat(items, ",") .. close .. "}"
end

local function print_json(v)
  out(encode(v, "  "), "\n")
end

local function error_object(err)
  return { kind = err.kind, message = err.message, field = err.field, status = err.status,
    retry_after = err.retry_after, id = err.id, maybe_created = err.maybe_created }
end

-- ------------------------------------------------------- numbers, sizes

local function human_size(n)
  n = n or 0
  if n < 1024 then return string_format("%d B", n) end
  local units = { "KB", "MB", "GB", "TB" }
  local i = 0
  repeat n = n / 1024; i = i + 1 until n < 1024 or i == #units
  return string_format("%.1f %s", n, units[i])
end

local function clock(seconds)
  seconds = math_floor(seconds)
  if seconds >= 3600 then
    return string_format("%d:%02d:%02d", seconds // 3600, seconds % 3600 // 60, seconds % 60)
  end
  return string_format("%d:%02d", seconds // 60, seconds % 60)
end

local function file_size(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- true when path names a directory (io.open succeeds on one, reading fails)
local function is_dir(path)
  local f = io_open(path, "rb")
  if not f then return false end
  local ok, _, code = f:read(0)
  f:close()
  return ok == nil and code == 21 -- EISDIR
end

-- ------------------------------------------------------------------ flags

-- kind: "bool", "str", "list" (repeatable), "int", "num" (>= 0), "pos" (> 0)
local FLAG = {
  help = { kind = "bool", text = "show this help and exit" },
  json = { kind = "bool", text = "print one JSON document on stdout (machine output)" },
  model = { kind = "str", meta = "NAME", field = "model",
    text = "model: starvideos_o3, videos, videos_fast, videos_stable, videos_stable_fast" },
  prompt = { kind = "str", meta = "TEXT", field = "prompt", text = "what the video shows" },
  duration = { kind = "int", meta = "S", field = "duration",
    text = "length in whole seconds (see `starvideos models`)" },
  ratio = { kind = "str", meta = "W:H", field = "ratio", text = "aspect ratio, e.g. 16:9 or 9:16" },
  resolution = { kind = "str", meta = "RES", field = "resolution",
    text = "resolution, e.g. 720p (not on starvideos_o3)" },
  ["first-image"] = { kind = "str", meta = "URL", field = "first_image", text = "first frame (with --last-image)" },
  ["last-image"] = { kind = "str", meta = "URL", field = "last_image", text = "last frame (with --first-image)" },
  ["ref-image"] = { kind = "list", meta = "URL", field = "referenceImages", text = "reference image (repeatable)" },
  ["ref-video"] = { kind = "list", meta = "URL", field = "referenceVideos", text = "reference video (repeatable)" },
  ["ref-audio"] = { kind = "list", meta = "URL", field = "referenceAudios", text = "reference audio (repeatable)" },
  ["base-url"] = { kind = "str", meta = "URL",
    text = "API base URL (default: $STARVIDEOS_BASE_URL, else the provider's)" },
  ["api-key-file"] = { kind = "str", meta = "PATH",
    text = "read the API key from the first line of PATH (- for stdin); default: $STARVIDEOS_API_KEY" },
  interval = { kind = "num", meta = "S", text = "seconds between status checks (default 30)" },
  timeout = { kind = "pos", meta = "S", text = "give up waiting after S seconds (default 1800)" },
  journal = { kind = "str", meta = "PATH", text = "append every created task to this JSON-lines journal" },
  out = { kind = "str", meta = "PATH", text = "download the finished video to PATH" },
  dir = { kind = "str", meta = "PATH", text = "directory for the videos, saved as <id>.mp4 (default .)" },
}

local REQUEST = { "model", "prompt", "duration", "ratio", "resolution", "first-image", "last-image",
  "ref-image", "ref-video", "ref-audio" }
local CLIENT = { "base-url", "api-key-file" }

local function flags(...)
  local list = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "table" then
      for _, name in ipairs(v) do list[#list + 1] = name end
    else
      list[#list + 1] = v
    end
  end
  list[#list + 1] = "json"
  list[#list + 1] = "help"
  return list
end

-- flag name -> the field it fills, and the reverse (for error messages)
local FIELD_FLAG = {}
for name, f in pairs(FLAG) do
  if f.field then FIELD_FLAG[f.field] = "--" .. name end
end

-- ------------------------------------------------------------ commands

local COMMANDS = {
  create = {
    args = {}, needs_key = true,
    flags = flags(REQUEST, "journal", CLIENT),
    summary = "create a task and print its id (the video is made asynchronously)",
  },
  status = {
    args = { "ID" }, needs_key = true, flags = flags(CLIENT),
    summary = "show a task's status (and video_url once completed); exit 1 when it failed",
  },
  wait = {
    args = { "ID" }, needs_key = true, flags = flags("interval", "timeout", CLIENT),
    summary = "wait until a task is completed; exit 1 when it fails or the wait times out",
  },
  download = {
    args = { "ID", "PATH" }, needs_key = true, flags = flags(CLIENT),
    summary = "download a completed task's video to PATH (a directory gets <id>.mp4)",
  },
  generate = {
    args = {}, needs_key = true,
    flags = flags(REQUEST, "out", "interval", "timeout", "journal", CLIENT),
    summary = "create a task, wait for it and, with --out, download the video",
  },
  models = {
    args = {}, flags = flags(),
    summary = "list the models and what each accepts (no key, no network)",
  },
  validate = {
    args = {}, flags = flags(REQUEST),
    summary = "check a request locally, as create would (no key, no network)",
  },
  resume = {
    args = {}, needs_key = true, flags = flags("journal", "dir", "interval", "timeout", CLIENT),
    summary = "wait for and download every journalled task not downloaded yet",
    required = { "journal" },
  },
  emulator = {
    summary = "run a local stand-in for the service (see `starvideos emulator --help`)",
  },
}
local ORDER = { "create", "status", "wait", "download", "generate", "models", "validate", "resume", "emulator" }

local function hint(cmd)
  return string_format("Run '%s%s --help' for usage.", PROG, cmd and (" " .. cmd) or "")
end

local function top_usage()
  local lines = {
    "usage: starvideos <command> [options]",
    "",
    "A client for the StarVideos asynchronous video-generation API.",
    "",
    "commands:",
  }
  for _, name in ipairs(ORDER) do
    lines[#lines + 1] = string_format("  %-10s %s", name, COMMANDS[name].summary)
  end
  for _, l in ipairs {
    "",
    "Run 'starvideos <command> --help' for a command's options; 'starvideos --version' for the version.",
    "",
    "environment:",
    "  STARVIDEOS_API_KEY   the API key (or --api-key-file PATH); never pass it as an argument",
    "  STARVIDEOS_BASE_URL  the API base URL (or --base-url URL)",
    "",
    "exit status: 0 success, 1 a failed task or an API error, 2 bad usage or invalid parameters",
    "",
  } do lines[#lines + 1] = l end
  return table_concat(lines, "\n")
end

local EXAMPLES = {
  create = "starvideos create --model videos --prompt 'a cat surfing' --duration 5",
  status = "starvideos status video_123",
  wait = "starvideos wait video_123 --interval 10",
  download = "starvideos download video_123 cat.mp4",
  generate = "starvideos generate --model videos_fast --prompt 'a cat' --duration 5 --out cat.mp4",
  models = "starvideos models --json",
  validate = "starvideos validate --model videos --prompt 'a cat' --duration 5 --ref-image https://x/1.png",
  resume = "starvideos resume --journal tasks.jsonl --dir videos/",
}

local function command_usage(name)
  local c = COMMANDS[name]
  local head = "usage: starvideos " .. name
  for _, a in ipairs(c.args) do head = head .. " " .. a end
  head = head .. " [options]"
  local lines = { head, "", c.summary:sub(1, 1):upper() .. c.summary:sub(2) .. ".", "", "options:" }
  for _, fname in ipairs(c.flags) do
    local f = FLAG[fname]
    local left = "--" .. fname .. (f.meta and (" " .. f.meta) or "")
    if fname == "help" then left = "-h, --help" end
    lines[#lines + 1] = string_format("  %-22s %s", left, f.text)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options also take the form --flag=value."
  if c.needs_key then
    lines[#lines + 1] = "The API key comes from $STARVIDEOS_API_KEY or --api-key-file, never from an argument."
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "example:"
  lines[#lines + 1] = "  " .. EXAMPLES[name]
  lines[#lines + 1] = ""
  return table_concat(lines, "\n")
end

-- Parse argv (after the command name) against the command's flags.
-- Returns opts (flag name -> value), positionals; or opts.help.
local function parse(name, argv)
  local c = COMMANDS[name]
  local allowed = {}
  for _, f in ipairs(c.flags) do allowed[f] = true end
  -- --help wins over any other mistake on the line
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if a == "-h" or a == "--help" then return { help = true }, {} end
  end
  local opts, pos = {}, {}
  local i, n, only_pos = 1, #argv, false
  while i <= n do
    local a = argv[i]
    if only_pos or a == "-" or a:sub(1, 1) ~= "-" then
      pos[#pos + 1] = a
    elseif a == "--" then
      only_pos = true
    else
      local fname, value = a:match("^%-%-([^=]+)=(.*)$")
      fname = fname or a:match("^%-%-(.+)$")
      -- only the flag's name is ever echoed back: its value may be a secret
      if not fname or not FLAG[fname] or not allowed[fname] then
        local shown = fname and ("--" .. fname) or a:match("^%-[^=]*") or a
        if fname == "api-key" or fname == "key" then
          usage_error("--%s is not accepted: a key on the command line leaks into shell history and "
            .. "process lists; set STARVIDEOS_API_KEY or use --api-key-file PATH", fname)
        end
        usage_error("unknown option %s", shown)
      end
      local f = FLAG[fname]
      if f.kind == "bool" then
        if value then usage_error("--%s takes no value", fname) end
        opts[fname] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage_error("--%s expects a value (%s)", fname, f.meta) end
        end
        if f.kind == "list" then
          opts[fname] = opts[fname] or {}
          local list = opts[fname]
          list[#list + 1] = value
        else
          if opts[fname] ~= nil then usage_error("--%s given more than once", fname) end
          if f.kind == "int" or f.kind == "num" or f.kind == "pos" then
            local num = tonumber(value)
            if not num or num ~= num or num == math.huge or num == -math.huge then
              usage_error("--%s expects a number, got %s", fname, quote(value))
            end
            if f.kind == "int" then
              local int = math.tointeger(num)
              if not int then usage_error("--%s expects a whole number, got %s", fname, quote(value)) end
              num = int
            elseif f.kind == "num" and num < 0 then
              usage_error("--%s expects a number of seconds >= 0, got %s", fname, quote(value))
            elseif f.kind == "pos" and num <= 0 then
              usage_error("--%s expects a number of seconds > 0, got %s", fname, quote(value))
            end
            value = num
          end
          opts[fname] = value
        end
      end
    end
    i = i + 1
  end
  if #pos ~= #c.args then
    if #c.args == 0 then
      usage_error("takes no arguments, got %d (options start with --)", #pos)
    elseif #pos < #c.args then
      usage_error("missing %s", table_concat(c.args, " ", #pos + 1))
    else
      usage_error("expects %d argument%s (%s), got %d", #c.args, #c.args == 1 and "" or "s",
        table_concat(c.args, " "), #pos)
    end
  end
  for _, r in ipairs(c.required or {}) do
    if opts[r] == nil then usage_error("--%s %s is required", r, FLAG[r].meta) end
  end
  return opts, pos
end

local function request_params(opts)
  local p = {}
  for _, fname in ipairs(REQUEST) do
    local v = opts[fname]
    if v ~= nil then p[FLAG[fname].field] = v end
  end
  return p
end

-- --------------------------------------------------------------- errors

-- A local validation error, reworded with the flag that carries the field:
-- "duration: expected ..." -> "--duration: expected ...".
local function describe(err)
  if err.kind == "invalid_request" and not err.status and type(err.field) == "string"
    and type(err.message) == "string" then
    local base, index = err.field:match("^([%w_]+)%[(%d+)%]$")
    local flag = FIELD_FLAG[base or err.field]
    local prefix = err.field .. ": "
    if flag and err.message:sub(1, #prefix) == prefix then
      return (index and (flag .. " #" .. index) or flag) .. ": " .. err.message:sub(#prefix + 1)
    end
    if err.field == "id" and err.message:sub(1, 4) == "id: " then
      return "ID: " .. err.message:sub(5)
    end
  end
  return tostring(err)
end

-- 2 for a request refused locally (it never left this machine), else 1.
local function exit_code(err)
  if err.kind == "invalid_request" and not err.status and not err.task then return 2 end
  return 1
end

-- ------------------------------------------------------------ display

-- A live line on a terminal (redrawn with \r), plain lines otherwise.
local Display = {}
Display.__index = Display

local function new_display(stream, tty, quiet)
  return setmetatable({ stream = stream, tty = tty, quiet = quiet, active = false, last_draw = -1,
    spin = 0 }, Display)
end

function Display:live(text)
  if not self.tty then return end
  write(self.stream, "\r", text, "\27[K")
  self.active = true
end

-- Finish the live line: erase it, or keep it (a finished progress bar).
function Display:finish(keep)
  if not self.active then return end
  write(self.stream, keep and "\n" or "\r\27[K")
  self.active = false
end

function Display:line(text)
  if self.quiet then return end
  self:finish(false)
  write(self.stream, text, "\n")
end

function Display:plain(text)
  if not self.tty then self:line(text) end
end

local SPIN = { "|", "/", "-", "\\" }

-- A status line: "video_123  processing  0:12 |"
function Display:status_line(now, force)
  if not self.tty or not self.id then return end
  if not force and now - self.last_draw < 0.1 then return end
  self.last_draw = now
  self.spin = self.spin % #SPIN + 1
  local elapsed = self.started and clock(now - self.started) or ""
  self:live(string_format("%s  %s  %s %s", self.id, self.status or "...", elapsed, SPIN[self.spin]))
end

-- A new task state: live on a terminal, one plain line per change otherwise.
function Display:task(task, now)
  if not task then return end
  if task.id and task.id ~= self.id then
    self.id = task.id
    self:plain("id: " .. task.id)
  end
  if task.status ~= self.status then
    self.status = task.status
    self:plain("status: " .. tostring(task.status))
  end
  self:status_line(now, true)
end

-- A download progress event {bytes=, total=}.
function Display:progress(ev, now)
  if not self.tty then return end
  local bytes, total = ev.bytes or 0, ev.total
  if not self.dl_start then self.dl_start, self.dl_bytes0, self.last_draw = now, bytes, -1 end
  local complete = total and total > 0 and bytes >= total
  if not complete and now - self.last_draw < 0.1 then return end
  self.last_draw = now
  local dt = now - self.dl_start
  local speed = dt > 0.05 and (bytes - self.dl_bytes0) / dt or nil
  local rate = speed and (human_size(speed) .. "/s") or ""
  local text
  if total and total > 0 then
    local frac = math_min(1, bytes / total)
    local width = 24
    local fill = math_floor(frac * width + 0.5)
    text = string_format("[%s%s] %3d%%  %s / %s  %s", string_rep("#", fill), string_rep(".", width - fill),
      math_floor(frac * 100), human_size(bytes), human_size(total), rate)
  elseif bytes == 0 then
    text = "downloading..."
  else
    text = string_format("%s  %s", human_size(bytes), rate)
  end
  self:live(text)
end

-- --------------------------------------------------------------- setup

local function load_lib()
  return require "starvideos", require "starvideos.core"
end

local function read_key_file(path)
  local f, err
  if path == "-" then f = io_stdin else f, err = io_open(path, "r") end
  if not f then usage_error("cannot read the API key file: %s", err) end
  local line = f:read("l")
  if f ~= io_stdin then f:close() end
  line = line and line:match("^%s*(.-)%s*$") or ""
  if line == "" then
    usage_error("the API key file %s is empty (the key goes on its first line)", path == "-" and "(stdin)" or path)
  end
  return line
end

local function check_base_url(url, where)
  if not url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#%s]") then
    usage_error("%s expects an http(s) URL, got %s", where, quote(url))
  end
end

-- The client for a command; ctx.sleep ticks the display while waiting.
local function make_client(ctx, opts, extra)
  local starvideos, core = load_lib()
  local key
  if opts["api-key-file"] then
    key = read_key_file(opts["api-key-file"])
  else
    key = os_getenv("STARVIDEOS_API_KEY")
    if key == "" then key = nil end
  end
  if not key then
    usage_error("no API key: set STARVIDEOS_API_KEY or use --api-key-file PATH")
  end
  secret = key
  local base = opts["base-url"]
  if base then
    check_base_url(base, "--base-url")
  else
    base = os_getenv("STARVIDEOS_BASE_URL")
    if base == "" then base = nil end
    if base then check_base_url(base, "STARVIDEOS_BASE_URL") end
  end
  -- Waiting in short naps keeps Ctrl-C prompt and lets the live line tick.
  local sleep = function(seconds)
    local stop = core.now() + seconds
    while true do
      local t = core.now()
      if t >= stop then return end
      if ctx.display then ctx.display:status_line(t) end
      core.sleep(math_min(0.2, stop - t))
    end
  end
  local o = { api_key = key, base_url = base, sleep = sleep }
  for k, v in pairs(extra or {}) do o[k] = v end
  local ok, client = pcall(starvideos.new, o)
  if not ok then usage_error("%s", tostring(client):gsub("^[^:]*:%d+: ", "")) end
  return client, core
end

-- Reports an API error; the task (when the error carries one) still goes to
-- stdout as JSON for task_failed and timeout.
local function fail(ctx, err)
  if ctx.display then ctx.display:finish(false) end
  if ctx.json and err.task and (err.kind == "task_failed" or err.kind == "timeout") then
    print_json(err.task)
  end
  write(io_stderr, PROG, " ", ctx.name, ": ", describe(err), "\n")
  local code = exit_code(err)
  if code == 2 then
    write(io_stderr, hint(ctx.name), "\n")
  elseif err.kind == "timeout" and err.id then
    write(io_stderr, string_format(
      "the task is still running on the server: 'starvideos wait %s' picks it up again\n", err.id))
  end
  return code
end

local function print_task(task)
  local function show(v)
    if type(v) == "table" then return encode(v) end
    if type(v) == "number" then return number_text(v) end
    return tostring(v)
  end
  local duration = task.actualDuration
  if type(duration) == "number" then duration = number_text(duration) .. " s" end
  local rows = {
    { "id", task.id }, { "model", task.model }, { "status", task.status }, { "video_url", task.video_url },
    { "duration", duration }, { "error", task.error }, { "path", task.path },
  }
  for _, r in ipairs(rows) do
    if r[2] ~= nil and r[2] ~= false then out(string_format("%-10s %s\n", r[1] .. ":", show(r[2]))) end
  end
end

local function saved_line(path)
  local size = file_size(path)
  return string_format("saved %s (%s)", path, size and (size < 1024 and string_format("%d bytes", size)
    or string_format("%s, %d bytes", human_size(size), size)) or "size unknown")
end

-- A display on stdout (human mode), or on stderr when stdout carries JSON.
local function display_for(ctx, core)
  if ctx.json then
    return new_display(io_stderr, core.isatty(2), true)
  end
  return new_display(io_stdout, core.isatty(1), false)
end

-- ------------------------------------------------------------ commands

local run = {}

function run.models(ctx)
  local starvideos = load_lib()
  local names = {}
  for name in pairs(starvideos.models) do names[#names + 1] = name end
  table_sort(names)
  if ctx.json then
    local t = {}
    for _, name in ipairs(names) do
      local m, copy = starvideos.models[name], {}
      for k, v in pairs(m) do
        if type(v) == "table" then
          local sub = {}
          for k2, v2 in pairs(v) do sub[k2] = v2 end
          if k == "ratios" or k == "resolutions" then sub = array(sub) end
          v = sub
        end
        copy[k] = v
      end
      t[name] = copy
    end
    print_json(t)
    return 0
  end
  for i, name in ipairs(names) do
    local m = starvideos.models[name]
    local d = m.duration or {}
    local ratios = {}
    for j = 1, #m.ratios do
      ratios[j] = m.ratios[j] .. (m.ratios[j] == m.default_ratio and " (default)" or "")
    end
    local res = {}
    for j = 1, #m.resolutions do res[j] = m.resolutions[j] end
    local imgs = string_format("%d image%s", m.max_images, m.max_images == 1 and "" or "s")
    if m.max_images_with_video < m.max_images then
      imgs = imgs .. string_format(" (%d with a video)", m.max_images_with_video)
    end
    if i > 1 then out("\n") end
    out(name, "  (POST ", tostring(m.endpoint), ")\n")
    local optional = "optional" .. (d.default and string_format(" (server default %d)", d.default) or "")
    out(string_format("  %-11s %d-%d s, %s\n", "duration", d.min or 0, d.max or 0,
      d.required and "required" or optional))
    out(string_format("  %-11s %s\n", "ratio", table_concat(ratios, ", ")))
    out(string_format("  %-11s %s\n", "resolution", #res > 0 and table_concat(res, ", ") or "not a field"))
    out(string_format("  %-11s %s\n", "prompt", m.prompt_max and string_format("at most %d characters", m.prompt_max)
      or "no stated limit"))
    local audios = m.max_audios > 0
      and string_format("%d audio clip%s", m.max_audios, m.max_audios == 1 and "" or "s") or "no audio"
    out(string_format("  %-11s up to %s, %d video%s, %s\n", "references", imgs, m.max_videos,
      m.max_videos == 1 and "" or "s", audios))
  end
  return 0
end

function run.validate(ctx, opts)
  local starvideos = load_lib()
  local params = request_params(opts)
  local ok, err = starvideos.validate(params)
  if ctx.json then
    print_json(ok and { ok = true } or { ok = false, error = error_object(err) })
  end
  if not ok then
    write(io_stderr, PROG, " validate: ", describe(err), "\n")
    return 2
  end
  if not ctx.json then out("ok: the request is valid for ", tostring(params.model), "\n") end
  return 0
end

-- Local validation first: an invalid request needs no key to be refused.
local function validated(opts)
  local starvideos = load_lib()
  local params = request_params(opts)
  local ok, err = starvideos.validate(params)
  return params, ok, err
end

function run.create(ctx, opts)
  local params, ok, verr = validated(opts)
  if not ok then return fail(ctx, verr) end
  local client = make_client(ctx, opts, { journal = opts.journal })
  local task, err = client:create(params)
  if not task then return fail(ctx, err) end
  if ctx.json then print_json(task) else print_task(task) end
  return 0
end

function run.status(ctx, opts, pos)
  local client = make_client(ctx, opts)
  local task, err = client:query(pos[1])
  if not task then return fail(ctx, err) end
  if ctx.json then print_json(task) else print_task(task) end
  return task.status == "failed" and 1 or 0
end

function run.wait(ctx, opts, pos)
  local client, core = make_client(ctx, opts)
  local d = display_for(ctx, core)
  ctx.display = d
  d.started, d.id = core.now(), pos[1]
  d:status_line(core.now())
  local task, err = client:wait(pos[1], { interval = opts.interval, timeout = opts.timeout,
    on_progress = function(t) d:task(t, core.now()) end })
  if not task then return fail(ctx, err) end
  d:finish(false)
  if ctx.json then print_json(task) else print_task(task) end
  return 0
end

function run.download(ctx, opts, pos)
  local client, core = make_client(ctx, opts)
  local id, path = pos[1], pos[2]
  if is_dir(path) then path = path:gsub("/+$", "") .. "/" .. id:gsub("[^%w%-_.]", "_") .. ".mp4" end
  local d = display_for(ctx, core)
  ctx.display = d
  local res, err = client:download({ id = id }, path, {
    on_progress = function(ev) d:progress(ev, core.now()) end })
  if not res then return fail(ctx, err) end
  d:finish(true)
  if ctx.json then
    print_json { id = id, path = path, bytes = file_size(path) }
  else
    out(saved_line(path), "\n")
  end
  return 0
end

function run.generate(ctx, opts)
  local params, ok, verr = validated(opts)
  if not ok then return fail(ctx, verr) end
  local client, core = make_client(ctx, opts, { journal = opts.journal })
  local d = display_for(ctx, core)
  ctx.display = d
  d.started = core.now()
  d:live("creating the task...")
  local task, err = client:generate(params, { out = opts.out, interval = opts.interval, timeout = opts.timeout,
    on_progress = function(ev)
      local t = core.now()
      if ev.stage == "created" or ev.stage == "polled" then
        if ev.task then ctx.task_id = ev.task.id end
        d:task(ev.task, t)
      elseif ev.stage == "downloading" then
        d:progress(ev, t)
      end
    end })
  if not task then return fail(ctx, err) end
  d:finish(opts.out ~= nil and d.dl_start ~= nil)
  if ctx.json then
    print_json(task)
  else
    if d.tty or d.quiet then
      print_task(task)
    elseif task.video_url then
      out("video_url: ", task.video_url, "\n")
    end
    if task.path then out(saved_line(task.path), "\n") end
  end
  return 0
end

function run.resume(ctx, opts)
  local journal = opts.journal
  local f, ferr = io_open(journal, "r")
  if not f then usage_error("--journal: cannot read %s", tostring(ferr)) end
  f:close()
  local dir = opts.dir or "."
  if not is_dir(dir) then usage_error("--dir %s is not a directory", quote(dir)) end
  local client, core = make_client(ctx, opts, { journal = journal })
  local d = display_for(ctx, core)
  ctx.display = d
  d.started, d.id, d.status = core.now(), "resuming", "journalled tasks"
  d:status_line(core.now())
  local results, err = client:resume { dir = dir, interval = opts.interval, timeout = opts.timeout }
  if not results then return fail(ctx, err) end
  d:finish(false)
  local failed = 0
  for _, r in ipairs(results) do
    if r.err then failed = failed + 1 end
  end
  if ctx.json then
    local list = array()
    for i, r in ipairs(results) do
      list[i] = { id = r.task and r.task.id or (r.err and r.err.id), task = r.task, path = r.path,
        error = r.err and error_object(r.err) }
    end
    print_json(list)
  else
    if #results == 0 then out("nothing to resume: every task in ", journal, " is downloaded or failed\n") end
    for _, r in ipairs(results) do
      local id = r.task and r.task.id or (r.err and r.err.id) or "?"
      if r.err then
        out(string_format("%s  %s: %s\n", id, r.err.kind, r.err.message))
      else
        out(string_format("%s  %s  %s\n", id, tostring(r.task and r.task.status), saved_line(r.path)))
      end
    end
    if #results > 0 then
      out(string_format("%d task%s: %d downloaded, %d not\n", #results, #results == 1 and "" or "s",
        #results - failed, failed))
    end
  end
  return failed > 0 and 1 or 0
end

-- ------------------------------------------------------------------ main

local function dispatch(ctx, argv)
  local name = argv[1]
  if name == nil then
    write(io_stderr, top_usage())
    return 2
  end
  if name == "-h" or name == "--help" or name == "help" then
    local sub = argv[2]
    if name == "help" and sub and COMMANDS[sub] and sub ~= "emulator" then
      out(command_usage(sub))
    elseif name == "help" and sub == "emulator" then
      return require("starvideos.emulator").main({ "--help" })
    elseif name == "help" and sub then
      usage_error("unknown command %s", quote(sub))
    else
      out(top_usage())
    end
    return 0
  end
  if name == "--version" then
    out(load_lib()._VERSION, "\n")
    return 0
  end
  if name == "emulator" then
    return require("starvideos.emulator").main(table_move(argv, 2, #argv, 1, {}))
  end
  if not COMMANDS[name] then
    if name:sub(1, 1) == "-" then
      usage_error("unknown option %s (options go after the command)", name:match("^[^=]*"))
    end
    usage_error("unknown command %s", quote(name))
  end
  ctx.name = name
  local opts, pos = parse(name, table_move(argv, 2, #argv, 1, {}))
  if opts.help then
    out(command_usage(name))
    return 0
  end
  ctx.json = opts.json
  return run[name](ctx, opts, pos)
end

function M.main(argv)
  secret = nil
  local ctx = {}
  local ok, code = xpcall(dispatch, function(e)
    if getmetatable(e) == Usage then return e end
    return { internal = tostring(e), trace = debug.traceback(tostring(e), 2) }
  end, ctx, argv or {})
  if ok then return code or 0 end
  local e = code
  if ctx.display then ctx.display:finish(false) end
  local who = PROG .. (ctx.name and (" " .. ctx.name) or "")
  if getmetatable(e) == Usage then
    write(io_stderr, who, ": ", e.message, "\n", hint(ctx.name), "\n")
    return 2
  end
  if tostring(e.internal):find("interrupted!", 1, true) then
    local id = ctx.task_id or (ctx.display and ctx.display.id ~= "resuming" and ctx.display.id)
    write(io_stderr, who, ": interrupted", id and string_format(
      "; task %s is still running on the server: 'starvideos wait %s' picks it up again", id, id) or "", "\n")
    return 130
  end
  write(io_stderr, who, ": internal error: ", os_getenv("STARVIDEOS_DEBUG") and e.trace or e.internal, "\n")
  return 1
end

return M
