-- The command line: `starvideos <command> ...`.  bin/starvideos is a launcher;
-- M.main(argv) does the work and returns the exit status:
--   0 success, 1 a failed task or an API error, 2 bad usage or invalid parameters,
--   130 interrupted (and, by the shell, 143 and 137 for SIGTERM and SIGKILL).
-- Under --json every outcome is one JSON document on stdout, a failure included
-- (starvideos.cli.output.error_document), whatever the command.
--
--   starvideos.cli.args      the commands, their flags, help texts and examples
--   starvideos.cli.parser    the line read and refused in the command line's words, and the help
--   starvideos.cli.complete  the shells' completion scripts of them
--   starvideos.cli.commands  one function per command (batch: cli/batch.lua); a command the core does not
--                            have is a rock's, starvideos.command.<name> (extension.lua's command point)
--   starvideos.cli.client    the library client, from the flags and the environment
--   starvideos.cli.display   live status line, progress bar, results for a person
--   starvideos.cli.output    redacted writes, --json documents, error reports, the command
--                            that picks a stopped command's task up again, and the
--                            watcher that prints it for a killed command
--   starvideos.cli.json      the JSON encoder of --json

local args = require "starvideos.cli.args"
local parser = require "starvideos.cli.parser"
local output = require "starvideos.cli.output"
local shell_word = require("starvideos.shell").word

local type, tostring, xpcall, pairs = type, tostring, xpcall, pairs
local os_getenv, debug_traceback = os.getenv, debug.traceback
local out, usage_error, quote = output.out, args.usage_error, args.quote

local M = {}

-- argv[from..] as a new list
local function tail(argv, from)
  local t = {}
  for i = from, #argv do t[#t + 1] = argv[i] end
  return t
end

-- A command the core does not have (argv: the command line, name first): the command point's module of its name, a
-- rock's (docs/architecture.md, "Extension points"), made a command of args when it gives its usage; not
-- installed, a usage error naming its rock when extension.lua knows one, else nil (an unknown command).
local function rock_command(name, argv)
  local X = require "starvideos.extension"
  local mod = name:find("^%l[%w-]*$") and X.optional("command", name)
  if mod then
    if not mod.main then args.add(name, mod.usage) end
    return mod
  end
  local sub = argv[2] and argv[2]:match("^%l[%w-]*$") -- (the subcommand asked for: `starvideos store check`)
  local message, rock = X.why("command", name, args.PROG .. " " .. name .. (sub and " " .. sub or ""))
  if rock then usage_error("%s", message) end
end

-- The commands of the rocks the project ships, for the top help and completion: {name, summary, usage, options}
-- each, the installed one's summary and usage (or, one that parses its own line, options(cmd): its flags added to a
-- parser of argparse's shape, which cli/complete.lua reads), else its rock's name.
local function rock_commands()
  local X, list = require "starvideos.extension", {}
  for name, rock in pairs(X.HINTS.command) do
    local mod = X.optional("command", name)
    local summary = mod and (mod.summary or mod.usage and mod.usage.summary)
    list[#list + 1] = { name, summary or "(needs the " .. rock .. " rock)", mod and not mod.main and mod.usage,
      mod and mod.options }
  end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list
end

-- What a rock's command is handed with its flags (docs/architecture.md, "Extension points"): the command line's
-- words and outputs, the store option's check and the key's name in a store; it requires none of the command line.
local function handed(ctx, opts)
  return { json = ctx.json, prog = args.PROG, invoked = args.INVOKED, nearest = require("starvideos.errors").nearest,
    usage_error = usage_error, quote = quote, out = out, err = output.err,
    print_json = output.print_json, array = require("starvideos.cli.json").array,
    protect = require("starvideos.interrupt").pcall, check_store = require("starvideos.store_option").check,
    key_hash = function()
      local c = require("starvideos.cli.client").new(ctx, opts, nil)
      local hash = c.ctx.key.hash -- (the key's name in a store: key.lua's hash_of its base URL and key)
      c:close()
      return hash
    end }
end

local function dispatch(ctx, argv)
  local name = argv[1]
  if name == nil then
    output.err(parser.top_help(rock_commands()))
    return 2
  end
  if name == "-h" or name == "--help" or name == "help" then
    local sub = argv[2]
    local mod = name == "help" and sub and not args.COMMANDS[sub] and rock_command(sub, { sub })
    if mod and mod.main then return mod.main({ "--help" }, args.INVOKED) end
    if name == "help" and sub and args.COMMANDS[sub] then
      out(parser.help(sub))
    elseif name == "help" and sub then
      usage_error("unknown command %s", args.command_word(sub))
    else
      out(parser.top_help(rock_commands()))
    end
    return 0
  end
  -- from here, a mistake under --json is reported as JSON too
  local help, json = parser.scan(argv)
  ctx.json = json
  if name == "--version" then
    out(require("starvideos")._VERSION, "\n")
    return 0
  end
  local rock = not args.COMMANDS[name] and rock_command(name, argv)
  if rock and rock.main then return rock.main(tail(argv, 2), args.INVOKED) end
  if help and args.COMMANDS[name] then
    out(parser.help(name))
    return 0
  end
  ctx.name = args.COMMANDS[name] and name
  if name:sub(1, 1) == "-" then -- (its value, which may be a secret, cut off: --api-key=...)
    usage_error("unknown option %s (options go after the command)", name:match("^[^=]*"):sub(1, 60))
  end
  local opts, pos = parser.parse(argv)
  ctx.opts = opts -- the flags a command that picks its task up again needs (output.again)
  if rock then return rock.run(handed(ctx, opts), opts, pos) end
  if name == "batch" then return require("starvideos.cli.batch").run(ctx, opts) end
  if name == "completion" then
    out(require("starvideos.cli.complete").script(pos[1], rock_commands()))
    return 0
  end
  return require("starvideos.cli.commands")[name](ctx, opts, pos)
end


-- What was raised: a usage error as is, anything else as an error of the
-- command line ("interrupted" for Ctrl-C, with the task's next step; else "internal").
local function raised(ctx, e)
  if args.is_usage(e) then return e end
  -- out of memory, xpcall's handler not run: what the command held is freed first (Lua 5.1 has no emergency
  -- collection to report it with)
  if type(e) ~= "table" then
    collectgarbage()
    e = { internal = tostring(e) }
  end
  local text = e.internal
  if e.interrupted or text:find("interrupted!", 1, true) then -- (a library call's, or Lua's own)
    local id = ctx.task_id
    local next_step = id and output.next_step(ctx, id) or ctx.hint -- (a batch's hint: its command again)
    return output.new_error("interrupted", "interrupted" .. (next_step and "; " .. next_step or ""),
      { id = id })
  end
  local trace = os_getenv("STARVIDEOS_DEBUG") and e.trace
  return output.new_error("internal", "internal error: " .. (trace or text))
end

-- argv: the arguments; invoked: how the command was invoked (bin/starvideos's arg[0]),
-- which the commands it prints for a person start with (args.invoked_as).
function M.main(argv, invoked)
  output.set_secret(nil)
  local key = os_getenv("STARVIDEOS_API_KEY") -- (hidden from the first word on: a usage error may echo one typed)
  if key and key ~= "" then output.set_secret(key) end
  args.INVOKED = shell_word(args.invoked_as(invoked, os_getenv("PATH")))
  local ctx = {}
  local ok, code = xpcall(function() return dispatch(ctx, argv or {}) end, function(e)
    if args.is_usage(e) then return e end
    return { internal = tostring(e), trace = debug_traceback(tostring(e), 2),
      interrupted = type(e) == "table" and e.interrupted or nil }
  end)
  -- the command's client closed: its webhooks in flight get their few seconds (notify.lua)
  if ok and ctx.client then ctx.client:close() end
  if not ok then
    if ctx.display then ctx.display:finish(false) end
    local e = raised(ctx, code)
    -- Ctrl-C: a journalled download's .part recorded for the run that goes on (interrupt.lua's M.keep)
    if e.kind == "interrupted" and ctx.client then pcall(require("starvideos.interrupt").keep, ctx.client.loop) end
    code = output.report(ctx, e)
  end
  output.unwatch() -- the command returns: no kill to speak for
  if ctx.journal_error and (code or 0) == 0 then code = 1 end -- a record was lost: said, and not a success
  return code or 0
end

return M
