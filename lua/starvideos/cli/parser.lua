-- starvideos.cli.parser: the command line read, refused and helped from cli/args.lua's commands and flags, in its
-- own words (one line, the house's "did you mean"), so that a mistake reads as every other does; it needs no module
-- but the library's (docs/install.md: the library rock carries the command line, with no dependency of its own).
--
--   parse(argv)               -> opts (flag name -> value), positionals; a usage error (args.Usage) when refused
--   scan(argv)                -> help, json: what the line asks for before it is parsed
--   help(name) / top_help(rocks)  a command's help, the commands' list
-- (the shells' completion scripts: cli/complete.lua)

local args = require "starvideos.cli.args"

local pairs, ipairs, tonumber, setmetatable = pairs, ipairs, tonumber, setmetatable
local string_format, string_rep, table_concat, table_sort = string.format, string.rep, table.concat, table.sort
local math_huge, math_tointeger = math.huge, rawget(math, "tointeger") -- tointeger: nil before 5.3
local usage_error, quote, COMMANDS = args.usage_error, args.quote, args.COMMANDS

local M = {}

-- ------------------------------------------------------------- values

-- A whole number, or nil: an integer on 5.3+, a float without a fraction before.
local function integral(num)
  if num % 1 ~= 0 then return nil end
  if math_tointeger then return math_tointeger(num) end
  return num
end

-- A number, or nil and what is wrong.
local function number(fname, value)
  local num = tonumber(value)
  if not num or num ~= num or num == math_huge or num == -math_huge then
    return nil, string_format("--%s expects a number, got %s", fname, quote(value))
  end
  return num
end

-- What a flag of kind k takes: (flag, value, row) -> the value, or nil and what is wrong.
local CONVERT = {}
function CONVERT.int(fname, value)
  local num, err = number(fname, value)
  if num then num = integral(num) end
  if num == nil and not err then err = string_format("--%s expects a whole number, got %s", fname, quote(value)) end
  return num, err
end
-- Seconds that pass fits (words: how it reads, ">= 0"), as a convert.
local function seconds(fits, words)
  return function(fname, value)
    local num, err = number(fname, value)
    if num and not fits(num) then
      return nil, string_format("--%s expects a number of seconds %s, got %s", fname, words, quote(value))
    end
    return num, err
  end
end
CONVERT.num = seconds(function(n) return n >= 0 end, ">= 0")
CONVERT.pos = seconds(function(n) return n > 0 end, "> 0")
-- One of the flag's choices, in any case: "DEBUG" -> "debug".
function CONVERT.choice(fname, value, f)
  for _, c in ipairs(f.choices) do
    if value:lower() == c then return c end
  end
  local n = #f.choices
  return nil, string_format("--%s expects %s or %s, got %s", fname, table_concat(f.choices, ", ", 1, n - 1),
    f.choices[n], quote(value))
end
function CONVERT.name(fname, value)
  if value == "" or #value > 200 or value:find("[%c\127]") then
    return nil, string_format("--%s expects a name of 1 to 200 bytes without control characters", fname)
  end
  return value
end

-- ------------------------------------------------------------- help

local EXIT = "exit status: 0 success, 1 a failed task or an API error, 2 bad usage or invalid parameters\n"
  .. "  (refused before anything was sent), 130 interrupted (Ctrl-C), 143 killed by SIGTERM, 137 by SIGKILL"

-- A help's list (title: "Options", ...) of rows {label, text}: each label from column 3, its text from column
-- (on the next line when the label reaches it), a text's further lines there too.  nil when there are no rows.
local function listed(title, rows, column)
  if #rows == 0 then return nil end
  local lines, margin = { title .. ":" }, string_rep(" ", column)
  for _, r in ipairs(rows) do
    local label, text = "  " .. r[1], r[2] or ""
    if #r[1] >= column - 2 then
      lines[#lines + 1] = label
      if text ~= "" then lines[#lines + 1] = margin .. text:gsub("\n", "\n" .. margin) end
    elseif text == "" then
      lines[#lines + 1] = label
    else
      lines[#lines + 1] = label .. string_rep(" ", column - #label) .. text:gsub("\n", "\n" .. margin)
    end
  end
  return table_concat(lines, "\n")
end

-- The parts of a help, each one paragraph, blank lines between them: usage, description, lists, epilog.
local function help_of(parts)
  local kept = {}
  for i = 1, parts.n do if parts[i] then kept[#kept + 1] = parts[i] end end
  return table_concat(kept, "\n\n") .. "\n"
end

-- The help of command name, described by c (a row of args.COMMANDS or a rock's usage made one).
local function command_help(name, c)
  local head = "usage: " .. args.INVOKED .. " " .. name
  for _, a in ipairs(c.args) do head = head .. " " .. a end
  local notes = { "Options also take the form --flag=value; a value that starts with - only so (--prompt=-x)." }
  if c.needs_key then
    notes[2] = "The API key comes from $STARVIDEOS_API_KEY or --api-key-file, never from an argument."
  end
  local arguments, options = {}, {}
  for _, a in ipairs(c.args) do
    local choices = c.choices and c.choices[a]
    arguments[#arguments + 1] = { choices and "{" .. table_concat(choices, ",") .. "}" or a,
      c.arg_text and c.arg_text[a] or args.ARG_TEXT[a] }
  end
  for _, fname in ipairs(c.flags) do
    local f = args.flag_of(c, fname)
    local label = fname == "help" and "-h, --help" or "--" .. fname
    if f.kind ~= "bool" then
      label = label .. " " .. f.meta
      for _, m in ipairs(c.flag_args and c.flag_args[fname] or {}) do label = label .. " " .. m end
    end
    options[#options + 1] = { label, c.flag_text and c.flag_text[fname] or f.text }
  end
  local example = c.example or args.EXAMPLES[name]
  return help_of { n = 5, head .. " [options]", c.summary:sub(1, 1):upper() .. c.summary:sub(2) .. ".",
    listed("Arguments", arguments, 28), listed("Options", options, 28),
    -- (as invoked: pasted from a checkout, `bin/starvideos ...` works)
    table_concat(notes, "\n") .. "\n\n" .. EXIT .. "\n\nexample:\n  " .. args.INVOKED .. example:sub(#args.PROG + 1) }
end

-- The commands' list: the core's in their order, then the rocks' ({name, summary, usage, options} each: its
-- summary, else its usage's), then any other a rock made one (args.add).
local function top_help(rocks)
  local rows, added = {}, {}
  local function add(name, summary)
    rows[#rows + 1], added[name] = { name, summary }, true
  end
  for _, name in ipairs(args.ORDER) do add(name, COMMANDS[name].summary) end
  for _, r in ipairs(rocks or {}) do
    local c = COMMANDS[r[1]] or r[3] and args.command_of(r[1], r[3])
    add(r[1], r[2] or c.summary)
  end
  local rest = {}
  for name in pairs(COMMANDS) do if not added[name] then rest[#rest + 1] = name end end
  table_sort(rest)
  for _, name in ipairs(rest) do add(name, COMMANDS[name].summary) end
  return help_of { n = 5, "usage: " .. args.INVOKED .. " <command> [options]",
    "A client for the StarVideos asynchronous video-generation API.",
    listed("Options", { { "-h, --help", "show this help and exit" }, { "--version", "print the version and exit" } },
      14), listed("Commands", rows, 14),
    string_format("Run '%s <command> --help' for a command's options; '%s --version' for the version.\n\n",
      args.INVOKED, args.INVOKED) .. table_concat({
        "environment:",
        "  STARVIDEOS_API_KEY   the API key (or --api-key-file PATH); never pass it as an argument",
        "  STARVIDEOS_BASE_URL  the API base URL (or --base-url URL)",
        "  STARVIDEOS_STORE     the fleet's ledger and budget, a store's URL (or --store URL)",
        "",
        "exit status: 0 success, 1 a failed task or an API error, 2 bad usage or invalid parameters (refused before",
        "  anything was sent), 130 interrupted (Ctrl-C), 143 killed by SIGTERM, 137 by SIGKILL: each stop prints the",
        "  command that goes on" }, "\n") }
end

-- ------------------------------------------------------------- parsing

-- A word of the line as a message names it: whole, or its first 40 bytes when it is long.
local function named(word)
  return #word > 60 and word:sub(1, 40) .. "..." or word
end

-- The command's name refused, in the command line's words (the one meant when a slip of one: errors.nearest).
local function unknown_command(name)
  local known = {}
  for k in pairs(COMMANDS) do known[k] = true end
  for k in pairs(require("starvideos.extension").HINTS.command) do known[k] = true end -- (a rock's: emulator)
  local meant = #name <= 60 and require("starvideos.errors").nearest(name, known)
  usage_error("unknown command %s%s", args.command_word(name, named(name)), meant and " (did you mean " .. meant
    .. "?)" or "")
end

-- An option of command c (called name) refused: o, as the line has it up to its =.
local function unknown_option(name, c, o)
  if o == "--api-key" then
    usage_error("--api-key is not accepted: a key on the command line leaks into shell history and process lists; "
      .. "set STARVIDEOS_API_KEY or use --api-key-file PATH")
  elseif o == "--key" then -- (generate and create take a job's --key; the API key is never an argument)
    usage_error("--key is not an option of %s %s: it names a job of generate or create (with --journal or --store); "
      .. "the API key never comes from an argument (it leaks into shell history and process lists): set "
      .. "STARVIDEOS_API_KEY or use --api-key-file PATH", args.PROG, name)
  elseif not o:find("^%-%-") then -- (-model, -5: a short option there is none of, or a value)
    usage_error("unknown option %s (flags start with --; a value that starts with - is given as --flag=VALUE)",
      named(o))
  end
  local meant = #o <= 62 and require("starvideos.errors").nearest(o:sub(3), c.flags)
  usage_error("unknown option %s%s", named(o), meant and " (did you mean --" .. meant .. "?)" or "")
end

-- The state of one line's parse: the command c, its flags by name (known), what each flag was given (opts), the
-- positionals (pos), the flag that waits for values (open: its name, its row, the values it still takes).
local Line = {}
Line.__index = Line

-- The flag that waits for values closed: refused when it has not had them all.
function Line:close()
  local open = self.open
  if not open then return end
  self.open = nil
  if open.left > 0 then
    local more = self.c.flag_args and self.c.flag_args[open.name]
    if more and open.left <= #more and open.given then
      usage_error("--%s expects %s %s", open.name, open.f.meta, table_concat(more, " "))
    end
    usage_error("--%s expects a value (%s)", open.name, open.f.meta or "VALUE")
  end
end

-- Flag fname given (value: its =VALUE, or nil).
function Line:flag(fname, value)
  local f, c = self.known[fname] and args.flag_of(self.c, fname), self.c
  if not f then unknown_option(self.name, c, "--" .. fname) end
  self:close()
  if fname == "journal" or fname == "store" then
    local other = fname == "journal" and "store" or "journal"
    if c.ledger and self.opts[other] ~= nil and self.known[other] then
      usage_error("--journal and --store: give one ledger, not both")
    end
  end
  if f.kind == "bool" then
    if value then usage_error("--%s takes no value", fname) end
    self.opts[fname] = true
    return
  end
  if f.kind ~= "list" and self.opts[fname] ~= nil then usage_error("--%s given more than once", fname) end
  local more = c.flag_args and c.flag_args[fname]
  self.open = { name = fname, f = f, left = 1 + (more and #more or 0), values = {} }
  if value then self:value(value) end
end

-- A value for the flag that waits for one.
function Line:value(v)
  local open = self.open
  local convert = #open.values == 0 and CONVERT[open.f.kind]
  if convert then
    local got, err = convert(open.name, v, open.f)
    if got == nil then usage_error("%s", err) end
    v = got
  end
  open.values[#open.values + 1], open.left, open.given = v, open.left - 1, true
  if open.f.kind == "list" then
    local list = self.opts[open.name] or {}
    list[#list + 1] = v
    self.opts[open.name] = list
  elseif open.left == 0 then
    local more = self.c.flag_args and self.c.flag_args[open.name]
    self.opts[open.name] = more and open.values or open.values[1]
  end
  if open.left == 0 then self.open = nil end
end

-- A positional word.
function Line:positional(w)
  if self.open then return self:value(w) end
  local c = self.c
  local a = c.args[#self.pos + 1]
  if not a then
    if #c.args == 0 then usage_error("takes no arguments (options start with --)") end
    usage_error("too many arguments: it takes %s", table_concat(c.args, " "))
  end
  local choices = c.choices and c.choices[a]
  if choices then
    local fits = false
    for _, ch in ipairs(choices) do fits = fits or ch == w end
    if not fits then usage_error("%s expects one of %s", a, table_concat(choices, ", ")) end
  end
  self.pos[#self.pos + 1] = w
end

-- One word of the line (after the command's name).
function Line:word(w)
  if self.plain or w == "-" or w:sub(1, 1) ~= "-" then return self:positional(w) end
  if w == "--" then
    self:close()
    self.plain = true
  elseif w == "-h" then
    self:flag("help")
  elseif w:sub(2, 2) ~= "-" then
    unknown_option(self.name, self.c, (w:match("^[^=]*")))
  else
    local fname, value = w:match("^%-%-([^=]*)=(.*)$")
    self:flag(fname or w:sub(3), value)
  end
end

-- The command's line read to its end: what it still lacks refused (an argument, then a required flag).
function Line:finish()
  self:close()
  local c = self.c
  if #self.pos < #c.args then usage_error("missing %s", c.args[#self.pos + 1]) end
  for _, r in ipairs(c.required or {}) do
    if self.opts[r] == nil and not (c.unless and self.opts[c.unless] ~= nil) then -- (unless: a flag that needs none)
      usage_error("--%s %s is required", r, args.flag_of(c, r).meta)
    end
  end
end

-- What the line asks for before it is parsed (so that --help wins over any other mistake, and a usage error under
-- --json is still JSON): two booleans, help and json, from the arguments before a "--".
function M.scan(argv)
  local help, json = false, false
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if a == "-h" or a == "--help" then help = true end
    if a == "--json" then json = true end
  end
  return help, json
end

-- argv: the whole line, the command first. Returns opts (flag name -> value) and the positionals in order; a usage
-- error in the command line's own words (args.usage_error) when it is refused.
function M.parse(argv)
  local name = argv[1]
  local c = COMMANDS[name]
  if not c then unknown_command(name) end
  local known = {}
  for _, fname in ipairs(c.flags) do known[fname] = true end
  local line = setmetatable({ name = name, c = c, known = known, opts = {}, pos = {} }, Line)
  for i = 2, #argv do line:word(argv[i]) end
  line:finish()
  local more = c.flag_args
  for fname in pairs(more or {}) do -- (the flag's own values: pending --adopt ID TASK_ID)
    local v = line.opts[fname]
    if v then line.opts[fname] = v[1]; for i = 2, #v do line.pos[#line.pos + 1] = v[i] end end
  end
  line.opts.help = nil
  return line.opts, line.pos
end

function M.help(name)
  return command_help(name, COMMANDS[name])
end

M.top_help = top_help

return M
