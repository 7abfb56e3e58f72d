-- starvideos.cli.parser: the command line parsed, helped and completed by argparse (Debian's lua-argparse, a
-- dependency of the core rock), built from cli/args.lua's commands and flags.  It says what argparse refuses in the
-- command line's own words (one line, the house's "did you mean"), so that a mistake reads as every other does.
--
--   parse(argv)               -> opts (flag name -> value), positionals; a usage error (args.Usage) when refused
--   help(name) / top_help(rocks)  a command's help, the commands' list
-- (the shells' completion scripts: cli/complete.lua)

local args = require "starvideos.cli.args"

local pairs, ipairs, tonumber, tostring, pcall, select = pairs, ipairs, tonumber, tostring, pcall, select
local string_format, table_concat = string.format, table.concat
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

-- What a flag of kind k takes, as argparse's convert: (flag, value, row) -> the value, or nil and what is wrong.
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

-- ------------------------------------------------------------- building

-- argparse's parser named name; argparse loaded at the first, and a clear word when it is not installed.
local argparse
local function new_parser(name)
  if not argparse then
    local found, mod = pcall(require, "argparse")
    if not found then
      args.raise("internal", "the command line needs the argparse module (Debian: apt-get install lua-argparse; "
        .. "LuaRocks: luarocks install argparse): %s", tostring(mod):match("^[^\n]*"))
    end
    argparse = mod
  end
  return argparse(name)
end

local EXIT = "exit status: 0 success, 1 a failed task or an API error, 2 bad usage or invalid parameters\n"
  .. "  (refused before anything was sent), 130 interrupted (Ctrl-C), 143 killed by SIGTERM, 137 by SIGKILL"

-- The layout: options and arguments from column 2, their texts from 28 (the longest flag's fits); the top help's
-- commands from 14.
local function laid(p, column)
  return p:help_usage_margin(2):help_description_margin(column):add_help(false)
end

-- Command name, described by c (a row of args.COMMANDS), made a command of parser p.
local function command(p, name, c)
  local head = "usage: " .. args.INVOKED .. " " .. name
  for _, a in ipairs(c.args) do head = head .. " " .. a end
  local notes = { "Options also take the form --flag=value; a value that starts with - only so (--prompt=-x)." }
  if c.needs_key then
    notes[2] = "The API key comes from $STARVIDEOS_API_KEY or --api-key-file, never from an argument."
  end
  local example = c.example or args.EXAMPLES[name]
  local cmd = laid(p:command(name), 28):summary(c.summary)
    :description(c.summary:sub(1, 1):upper() .. c.summary:sub(2) .. ".")
    :usage(head .. " [options]")
    -- (as invoked: pasted from a checkout, `bin/starvideos ...` works)
    :epilog(table_concat(notes, "\n") .. "\n\n" .. EXIT .. "\n\nexample:\n  " .. args.INVOKED
      .. example:sub(#args.PROG + 1))
  for _, a in ipairs(c.args) do
    local arg = cmd:argument(a, c.arg_text and c.arg_text[a] or args.ARG_TEXT[a])
    if c.choices and c.choices[a] then arg:choices(c.choices[a]) end
  end
  local made = {}
  for _, fname in ipairs(c.flags) do
    local f = args.flag_of(c, fname)
    local text = c.flag_text and c.flag_text[fname] or f.text
    local o
    if fname == "help" then
      o = cmd:flag("-h --help", text)
    elseif f.kind == "bool" then
      o = cmd:flag("--" .. fname, text):target(fname)
    else
      local more = c.flag_args and c.flag_args[fname] -- (pending --adopt ID TASK_ID: two values)
      o = cmd:option("--" .. fname, text):target(fname):overwrite(false)
      local names = { f.meta }
      for _, m in ipairs(more or {}) do names[#names + 1] = m end
      o:args(#names):argname(more and names or f.meta)
      if f.kind == "list" then o:count("*"):init(nil) end
      local convert = CONVERT[f.kind]
      if convert then o:convert(function(v) return convert(fname, v, f) end) end
    end
    made[fname] = o
  end
  for _, r in ipairs(c.required or {}) do made[r]:count(1) end
  if c.ledger and made.journal and made.store then cmd:mutex(made.journal, made.store) end
  return cmd
end

-- The command line: the core's commands in their order, then the rocks' ({name, summary, usage} each, usage when
-- the installed rock's command gives one), then any other a rock made one (args.add). whole: the command built with
-- its flags and arguments (the one parsed or helped), or true for every one (completion); the others are listed by
-- their summary (the top help), which is all an unknown command's refusal needs. rocks nil: without the top's own
-- flags (dispatch answers a first --help and --version itself). Returns the parser and the command built whole.
local function parser(rocks, whole, prog)
  local p = laid(new_parser(prog or args.INVOKED), 14)
    :usage("usage: " .. args.INVOKED .. " <command> [options]")
    :description("A client for the StarVideos asynchronous video-generation API.")
    :epilog(string_format("Run '%s <command> --help' for a command's options; '%s --version' for the version.\n\n",
      args.INVOKED, args.INVOKED) .. table_concat({
        "environment:",
        "  STARVIDEOS_API_KEY   the API key (or --api-key-file PATH); never pass it as an argument",
        "  STARVIDEOS_BASE_URL  the API base URL (or --base-url URL)",
        "  STARVIDEOS_STORE     the fleet's ledger and budget, a store's URL (or --store URL)",
        "",
        "exit status: 0 success, 1 a failed task or an API error, 2 bad usage or invalid parameters (refused before",
        "  anything was sent), 130 interrupted (Ctrl-C), 143 killed by SIGTERM, 137 by SIGKILL: each stop prints the",
        "  command that goes on" }, "\n"))
  if rocks then
    p:flag("-h --help", "show this help and exit")
    p:flag("--version", "print the version and exit")
  end
  local added, built = {}, nil
  local function add(name, c, summary, options)
    if c and (whole == true or whole == name) then
      built = command(p, name, c)
    elseif options and whole == true then -- (a rock's command that parses its own line: its flags, completed)
      options(laid(p:command(name), 28):summary(summary))
    else -- (listed; a rock's command whose own main parses its line passes it on whole)
      laid(p:command(name), 28):summary(summary or c.summary):handle_options(false):argument("ARGS"):args("*")
    end
    added[name] = true
  end
  for _, name in ipairs(args.ORDER) do add(name, COMMANDS[name]) end
  for _, r in ipairs(rocks or {}) do
    add(r[1], COMMANDS[r[1]] or r[3] and args.command_of(r[1], r[3]), r[2], r[4])
  end
  for name, c in pairs(COMMANDS) do
    if not added[name] then add(name, c) end
  end
  return p, built
end

-- ------------------------------------------------------------- refusals

-- A word of the line as a message names it: whole, or its first 40 bytes when it is long.
local function named(word)
  return #word > 60 and word:sub(1, 40) .. "..." or word
end

-- The unknown option argparse names, as the line has it: argparse reads -model as -m, -o, ... and names the letter
-- it does not know; the word of argv (before --) it came from is named instead.
local function typed(o, argv)
  if o:find("^%-%-") then return o end
  for i = 2, #argv do
    local w = argv[i]
    if w == "--" then break end
    if w:find("^%-[^-]") and w:find(o:sub(2), 2, true) then return (w:match("^[^=]*")) end
  end
  return o
end

-- argparse's refusal of the line, in the command line's words: the option or command named as typed, the one
-- meant when a slip of one (errors.nearest, the library's one "did you mean"), a value's own message as it is.
local function refused(name, message, argv)
  local c = COMMANDS[name]
  local meta = function(o) return c and args.flag_of(c, o:sub(3)) and args.flag_of(c, o:sub(3)).meta or "VALUE" end
  local nearest = require("starvideos.errors").nearest
  -- (the name between the quotes as argparse wrote it, a ' inside included: up to the last one before the tip)
  local o = message:match("^unknown option '(.*)'\n") or message:match("^unknown option '(.*)'$")
  if o == "--api-key" then
    usage_error("--api-key is not accepted: a key on the command line leaks into shell history and process lists; "
      .. "set STARVIDEOS_API_KEY or use --api-key-file PATH")
  elseif o == "--key" then -- (generate and create take a job's --key; the API key is never an argument)
    usage_error("--key is not an option of %s %s: it names a job of generate or create (with --journal or --store); "
      .. "the API key never comes from an argument (it leaks into shell history and process lists): set "
      .. "STARVIDEOS_API_KEY or use --api-key-file PATH", args.PROG, name)
  elseif o and not o:find("^%-%-") then -- (-model, -5: a short option there is none of, or a value)
    usage_error("unknown option %s (flags start with --; a value that starts with - is given as --flag=VALUE)",
      named(typed(o, argv)))
  elseif o then
    local meant = nearest(o:sub(3), c.flags)
    usage_error("unknown option %s%s", named(o), meant and " (did you mean --" .. meant .. "?)" or "")
  end
  local cmd = message:match("^unknown command '(.*)'\n") or message:match("^unknown command '(.*)'$")
  if cmd then
    local known = {}
    for k in pairs(COMMANDS) do known[k] = true end
    for k in pairs(require("starvideos.extension").HINTS.command) do known[k] = true end -- (a rock's: emulator)
    local meant = nearest(cmd, known)
    usage_error("unknown command %s%s", args.command_word(cmd, named(cmd)), meant and " (did you mean " .. meant .. "?)"
      or "")
  end
  local patterns = {
    { "^option '(.-)' does not take arguments$", function(f) return f .. " takes no value" end },
    { "^option '(.-)' requires an argument$", function(f) return f .. " expects a value (" .. meta(f) .. ")" end },
    { "^option '(.-)' requires .*$", function(f) return f .. " expects " .. meta(f) .. " " ..
      table_concat(c.flag_args[f:sub(3)], " ") end },
    { "^option '(.-)' must be used .*$", function(f) return f .. " given more than once" end }, -- (count 1 or 0-1)
    { "^missing option '(.-)'$", function(f) return f .. " " .. meta(f) .. " is required" end },
    { "^missing argument '(.-)'$", function(a) return "missing " .. a end },
    { "can not be used together with", function() return "--journal and --store: give one ledger, not both" end },
    { "^argument '(.-)' must be one of (.*)$", function(a, list)
      return a .. " expects one of " .. list:gsub("'", "") end },
    { "^too many arguments$", function()
      if #c.args == 0 then return "takes no arguments (options start with --)" end
      return string_format("too many arguments: it takes %s", table_concat(c.args, " ")) end },
  }
  for _, p in ipairs(patterns) do
    local a, b = message:match(p[1])
    if a then usage_error("%s", p[2](a, b)) end
  end
  usage_error("%s", (message:gsub("\n", " "))) -- (a value's own message: CONVERT's)
end

-- ------------------------------------------------------------- the entry points

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

-- argv: the whole line, the command first. Returns opts (flag name -> value) and the positionals in order.
function M.parse(argv)
  local name = argv[1]
  -- (no name of a command or a flag is that long, and argparse's "did you mean" takes the square of its length)
  if not COMMANDS[name] and #name > 60 then usage_error("unknown command %s", quote(named(name))) end
  for i = 2, #argv do
    if argv[i] == "--" then break end
    local flag = argv[i]:match("^(%-[^=]*)")
    if flag and #flag > 60 then usage_error("unknown option %s", named(flag)) end
  end
  local ok, result = parser(nil, name):pparse(argv)
  if not ok then refused(COMMANDS[name] and name, result, argv) end
  local pos = {}
  for i, a in ipairs(COMMANDS[name].args) do pos[i] = result[a] end
  local opts = {}
  for _, fname in ipairs(COMMANDS[name].flags) do opts[fname] = result[fname] end
  local more = COMMANDS[name].flag_args
  for fname in pairs(more or {}) do -- (the flag's own values: pending --adopt ID TASK_ID)
    local v = opts[fname]
    if v then opts[fname] = v[1]; for i = 2, #v do pos[#pos + 1] = v[i] end end
  end
  return opts, pos
end

function M.help(name)
  return select(2, parser(nil, name)):get_help() .. "\n"
end

function M.top_help(rocks)
  return parser(rocks):get_help() .. "\n"
end

return M
