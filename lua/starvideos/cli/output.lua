-- starvideos.cli.output: everything the command line writes goes through here.
--   * every write is redacted: the API key in use can never reach the output
--     (defence in depth: the library's messages never contain it either);
--   * --json documents are printed with starvideos.cli.json;
--   * an error, whatever its source (usage, validation, the API, a failed task,
--     an interrupt), is reported one way: one line on stderr and, under --json,
--     the one error document on stdout (M.error_document);
--   * a command killed with its task unfinished has its next step printed by
--     a watcher it started (M.watch).

local json = require "starvideos.cli.json"
local args = require "starvideos.cli.args"
local hide = require("starvideos.extras.log").hide
local shell_word, secret_flag = require("starvideos.shell").word, require("starvideos.shell").secret_flag
local protect = require("starvideos.interrupt").pcall -- (a pcall that lets Ctrl-C through)

local type, ipairs, tostring, select, setmetatable, pcall = type, ipairs, tostring, select, setmetatable, pcall
local io_stdout, io_stderr, io_popen, os_getenv = io.stdout, io.stderr, io.popen, os.getenv
local string_format, table_concat = string.format, table.concat

local M = {}

-- ------------------------------------------------------------ streams

local secrets = {}

-- One more secret (the API key, a webhook secret) to keep out of every output
-- from now on; nil forgets them all (a new command).
function M.set_secret(value)
  if value == nil then secrets = {} else secrets[#secrets + 1] = value end
end

-- every secret as "[redacted]" where the log hides it (Log.hide: a short one where it stands whole), and
-- each command a message names (`starvideos pending ...`, the library's words too) as it
-- was invoked (args.INVOKED), so that pasted it works
local function redact(s)
  s = tostring(s)
  if args.INVOKED ~= "starvideos" then
    s = s:gsub("`starvideos ", function() return "`" .. args.INVOKED .. " " end)
  end
  for i = 1, #secrets do s = hide(s, secrets[i]) end -- (a short one where it stands whole)
  return s
end

function M.write(stream, ...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = redact((select(i, ...))) end
  stream:write(table_concat(parts))
  stream:flush()
end
local write = M.write

function M.out(...) write(io_stdout, ...) end
function M.err(...) write(io_stderr, ...) end

function M.print_json(v)
  write(io_stdout, json.encode(v, "  "), "\n")
end

-- ------------------------------------------------------------ how to go on

-- After a command stopped half way (Ctrl-C, a timeout, a kill): the command
-- that picks its task up again, with every flag of the stopped command it needs
-- to work as printed.  ctx (cli/init.lua): name (the command), opts (its
-- flags), task_id, out (the file it was to write), completed (the task was
-- seen completed).

-- The flags of the stopped command that the next one takes over, when it has
-- them: its polling interval, its ledger (the download is recorded there), how
-- it reached the service, and its webhook.
local CARRIED = { "interval", "journal", "store", "base-url", "api-key-file", "proxy", "notify", "notify-secret-file" }

-- A store URL as a printed command carries it: "--store URL" when it holds no password; else --store
-- "$STARVIDEOS_STORE" and a note saying where the password comes from (shell.secret_flag).
function M.store_words(url)
  if url == nil then return nil end
  return secret_flag("store", "STARVIDEOS_STORE", "the store", url)
end

-- The store of a command's flags as a printed command names it (M.store_words), or `--store
-- "$STARVIDEOS_STORE"` when it came from there (no --store, no --journal); nil without one.
function M.store_of(opts)
  if opts.store ~= nil then return M.store_words(opts.store) end
  if opts.journal == nil and os_getenv("STARVIDEOS_STORE") then return '--store "$STARVIDEOS_STORE"' end
end

-- The ledger as a printed command names it: `--journal PATH`, else the store's words and their note
-- (M.store_of).
function M.ledger_words(journal, opts)
  if journal then return "--journal " .. shell_word(journal) end
  return M.store_of(opts)
end

-- text with the library's `--store WHERE` (a store named by its host alone: pasted, it would connect as
-- no user and without the password) as the command's own store words (M.store_of), the note once after.
function M.store_named(text, opts)
  local url = opts.store or (opts.journal == nil and os_getenv("STARVIDEOS_STORE")) or nil
  if url == nil or not text:find("--store ", 1, true) then return text end -- (a usage error: no library loaded)
  local ok, where = pcall(function() return require("starvideos.store_option").where(url) end)
  if not ok then return text end
  local words, note = M.store_of(opts)
  local n
  text, n = text:gsub("%-%-store " .. where:gsub("%W", "%%%0"), function() return words end)
  return n > 0 and note and text .. note or text
end

-- A flag and its value as the command line reads them back, for a shell: `--flag VALUE`, or `--flag=VALUE` when
-- the value starts with - (alone, it would read as a flag); a store or a proxy with a password as the variable
-- that holds it, and the note that says so (shell.secret_flag: quoted as it is, the shell expands it).
local function flag_words(flag, v)
  if flag == "store" then return M.store_words(v) end
  if flag == "proxy" then return secret_flag("proxy", "STARVIDEOS_PROXY", "the proxy", v) end
  v = tostring(v)
  if v:sub(1, 1) == "-" then return "--" .. flag .. "=" .. shell_word(v) end
  return "--" .. flag .. " " .. shell_word(v)
end

-- The command, as one line for a shell: `download ID PATH` after a download of
-- its own, else `wait ID [--out PATH]`, which waits and then downloads (going
-- on from what a cut download left in PATH.part).
function M.again(ctx, id)
  local opts = ctx.opts or {}
  local name = ctx.name == "download" and "download" or "wait"
  local words, last = { name, shell_word(id) }, nil
  if name == "download" and ctx.out and ctx.out:sub(1, 1) == "-" then
    last = "-- " .. shell_word(ctx.out) -- (a PATH that starts with -: last, after --, which ends the flags)
  elseif name == "download" then
    words[#words + 1] = ctx.out and shell_word(ctx.out)
  elseif ctx.out then
    words[#words + 1] = flag_words("out", ctx.out)
  end
  local takes, notes = {}, {}
  for _, f in ipairs(args.COMMANDS[name].flags) do takes[f] = true end
  for _, f in ipairs(CARRIED) do
    if takes[f] and opts[f] ~= nil then words[#words + 1], notes[#notes + 1] = flag_words(f, opts[f]) end
  end
  words[#words + 1] = last
  return args.INVOKED .. " " .. table_concat(words, " "), notes[1] and table_concat(notes) or nil
end

-- The command name with its arguments pos and every flag of opts it takes but --fresh (which would pay for
-- every entry again), one line for a shell, and the store's and the proxy's notes ("" without one): the command
-- that goes on from where a stopped batch or film was, paying for nothing it paid for before.
function M.same_command(name, opts, pos)
  local words, note, dashed = { args.INVOKED, name }, nil, false
  for _, p in ipairs(pos or {}) do dashed = dashed or p:sub(1, 1) == "-" end
  for _, p in ipairs(dashed and {} or pos or {}) do words[#words + 1] = shell_word(p) end
  for _, flag in ipairs(args.COMMANDS[name].flags) do
    local v = flag ~= "fresh" and opts[flag] or nil
    if (flag == "store" or flag == "proxy") and v ~= nil then
      local w, n = flag_words(flag, v)
      words[#words + 1], note = w, n and (note or "") .. n or note
    elseif type(v) == "table" then
      for _, item in ipairs(v) do words[#words + 1] = flag_words(flag, item) end
    elseif v ~= nil and v ~= true then
      words[#words + 1] = flag_words(flag, v)
    elseif v == true and flag ~= "help" then
      words[#words + 1] = "--" .. flag
    end
  end
  if dashed then -- (an argument that starts with -: last, after --, which ends the flags)
    words[#words + 1] = "--"
    for _, p in ipairs(pos) do words[#words + 1] = shell_word(p) end
  end
  return table_concat(words, " "), note or ""
end

-- "task ID is still running on the server: `COMMAND` picks it up again", or,
-- once completed with a file to write, "... `COMMAND` fetches its video".
function M.next_step(ctx, id)
  local command, note = M.again(ctx, id)
  if ctx.completed and ctx.out then
    return string_format("task %s is completed: `%s` fetches its video%s", id, command, note or "")
  end
  return string_format("task %s is still running on the server: `%s` picks it up again%s", id, command, note or "")
end

-- ------------------------------------------------------------ the watcher

-- A process killed (SIGTERM, SIGKILL) runs no code of its own, so a shell it
-- started says how to go on for it: it keeps the last line it was sent ("h"
-- and the text, its backslashes and newlines escaped) and prints it on stderr
-- when its input ends without "x", which the command sends when it returns.
-- It ignores the signals aimed at the command's group (Ctrl-C, which the
-- command reports itself; a group's SIGTERM) and writes nothing on stdout.
local WATCHER = [[exec >/dev/null; trap '' INT TERM HUP; h=
while IFS= read -r l; do case $l in x) exit 0 ;; h*) h=${l#h} ;; esac; done
if [ -n "$h" ]; then [ -t 2 ] && printf '\r\033[K' >&2; printf '%b\n' "$h" >&2; fi]]

local watcher

-- What a kill of this command is to print from now on: its task's next step
-- (M.next_step), as ctx stands, or ctx.hint (a batch's); the watcher starts
-- with the first.  Neither may stop the command: a failure here leaves it
-- without a watcher.
function M.watch(ctx)
  local id = ctx.task_id
  if not (id or ctx.hint) then return end
  if not watcher then
    local ok, w = protect(io_popen, WATCHER, "w")
    watcher = ok and w or nil
    if not watcher then return end
  end
  local text = redact(string_format("%s%s%s: stopped by a signal; %s", ctx.before and ctx.before .. "\n" or "",
    args.PROG, ctx.name and (" " .. ctx.name) or "", ctx.hint or M.next_step(ctx, id)))
  local line = "h" .. text:gsub("\\", "\\\\"):gsub("\n", "\\n") .. "\n"
  protect(function() watcher:write(line); watcher:flush() end)
end

-- The command returns: the watcher goes, printing nothing.
function M.unwatch()
  if not watcher then return end
  local w = watcher
  watcher = nil
  pcall(function() w:write("x\n"); w:close() end) -- (Ctrl-C here: the command has returned, and exits so)
end

-- ------------------------------------------------------------- errors

-- An error of the command line itself (kind "interrupted", "internal", ...):
-- shaped like the library's, so that it is reported the same way.
local Plain = { __tostring = function(e) return e.message end }

function M.new_error(kind, message, fields)
  local e = fields or {}
  e.kind, e.message = kind, message
  return setmetatable(e, Plain)
end

-- The error object of every --json output (the document's "error", and each
-- failed entry of `resume`): the library error's fields, without its task.
function M.error_object(err)
  return { kind = err.kind, message = err.message, field = err.field, status = err.status,
    retry_after = err.retry_after, id = err.id, maybe_created = err.maybe_created, created = err.created,
    request_id = err.request_id, server_request_id = err.server_request_id, reason = err.reason, input = err.input,
    limit = err.limit, spent = err.spent, amount = err.amount, tenant = err.tenant, model = err.model, -- (spend's)
    attempts = err.attempts } -- (--fallback's: the models tried)
end

-- The one JSON document of a command that failed, whatever the command:
-- { "ok": false, "error": {...}, "task": {...} } (task: when the error has one,
-- e.g. a failed task or the last state seen before a timeout).
function M.error_document(err)
  local task = err.task
  if type(task) ~= "table" then task = nil end
  return { ok = false, error = M.error_object(err), task = task }
end

-- The flags of the paths a command writes, by the library's field for them: a path refused before anything was
-- sent (its folder missing, say) is bad usage, as wait's own check of --out says it.
local PATH_FLAG = { out = "--out", dir = "--dir", out_dir = "--out-dir", journal = "--journal" }

-- true for an error found on this machine before anything was sent: nothing of the service's (no status, task or
-- id) and no create taken or maybe taken.
local function before_sending(err)
  return not (err.status or err.task or err.id or err.created or err.maybe_created)
end

-- The rule (docs/cli.md "Exit status"): 2 for what the command was given, refused before anything was sent (bad
-- usage, a request refused locally, a path it cannot write), 130 for an interrupt, else 1 (the service's answer,
-- a failed task, what went wrong once something was sent).
function M.exit_code(err)
  if err.kind == "usage" then return 2 end
  if err.kind == "interrupted" then return 130 end
  if err.kind == "invalid_request" and not err.status and not err.task then return 2 end
  if err.kind == "io" and PATH_FLAG[err.field] and before_sending(err) then return 2 end
  return 1
end

-- The core's words for params.extra, as the command line's for --extra:
-- "extra.duration: duration is a checked field; set it at the top level, not
-- in extra" -> "--extra: duration is a checked field; give it with --duration,
-- not in --extra"; an unknown field's "(it takes model, prompt, ...; pass API
-- additions in `extra`)" -> "(it takes --model, --prompt, ...; pass API
-- additions in `--extra JSON`)".
local function extra_words(field, message)
  local inner = field:match("^extra%.([%w_]+)$")
  if inner and message:sub(1, #field + 2) == field .. ": " then
    local flag = args.FIELD_FLAG[inner]
    return "--extra: " .. message:sub(#field + 3):gsub("set it at the top level, not in extra$",
      flag and ("give it with " .. flag .. ", not in --extra") or "not in --extra")
  end
  return (message:gsub("%(it takes ([^;]+); pass API additions in `extra`%)", function(list)
    return "(it takes " .. list:gsub("[%w_]+", args.FIELD_FLAG) .. "; pass API additions in `--extra JSON`)"
  end))
end

-- The flag of each option of the library the command line sets (starvideos.new's, a call's opts): the one table
-- that turns the library's words for them into the command line's (M.option_words, cli/client.lua's refused).
M.OPTION_FLAG = { proxy = "--proxy", log = "--log", create_limit = "--create-limit", tenant_limit = "--tenant-limit",
  prices = "--prices", failed_prices = "--failed-prices", spend_limit = "--spend-limit", fresh = "--fresh",
  resend = "--resend", provenance = "--sign-key" }

-- A Lua caller's words for an option as the command line's: "send it anyway with resend = true" -> "... with
-- --resend", "(or fresh = true)" -> "(or --fresh)".
function M.option_words(message)
  return (message:gsub("%f[%w_]([%a_]+) = true", M.OPTION_FLAG))
end

-- The library's words of a spend limit as the command line's, wherever in the message: its field named by
-- --spend-limit (a limit of the list by its place in the JSON list, [2]), a price to give by --prices:
-- "spend_limit[2].amount: ..." -> "--spend-limit [2].amount: ...", "spend_limit.per: ..." -> "--spend-limit: per:
-- ...", a film's "... after the shots before it, spend_limit: 0.8 spent" -> "..., --spend-limit: 0.8 spent",
-- "...; give prices.videos" -> "...; give --prices a price for videos".
function M.spend_words(message)
  local flag = M.OPTION_FLAG.spend_limit
  message = message:gsub("prices has no price", "--prices has no price"):gsub("give prices%.([%w_]+)",
    "give --prices a price for %1")
  return (message:gsub("%f[%w_]spend_limit(%[%d+%])", flag .. " %1"):gsub("%f[%w_]spend_limit%.", flag .. ": ")
    :gsub("%f[%w_]spend_limit%f[^%w_]", flag))
end

-- One line for a person. A local validation error names the flag that carries
-- the field: "duration: expected ..." -> "--duration: expected ..."; a create
-- over --create-limit names it; a key refused, the flag to change.
function M.describe(err)
  local field, message = err.field, err.message
  if err.kind == "rate_limited" and err.status and type(err.retry_after) == "number" then
    -- a 429's Retry-After longer than the command waits: when to try again, said
    return string.format("%s (Retry-After: %.0f s)", tostring(err), err.retry_after)
  end
  if err.kind == "refused_before" and type(message) == "string" then -- (resend = true: --resend; an input its flag)
    return err.kind .. ": " .. M.option_words(message):gsub("change ([%w_]+), or", function(input)
      return args.FIELD_FLAG[input] and "change " .. args.FIELD_FLAG[input] .. ", or" end)
  end
  if type(field) ~= "string" or type(message) ~= "string" then return tostring(err) end
  if M.exit_code(err) == 2 and err.kind == "io" then -- a path refused: named by its flag, as wait's own check does
    local flag = PATH_FLAG[field]
    return flag .. ": " .. (message:sub(1, #field + 2) == field .. ": " and message:sub(#field + 3) or message)
  end
  if err.kind == "rate_limited" and (field == "create_limit" or field == "tenant_limit") then
    return err.kind .. ": " .. message:gsub("^(%a+)_limit:", "--%1-limit:")
  end
  if err.kind == "spend_limited" and field == "spend_limit" then -- (refused before sending, as create_limit's: 1)
    return err.kind .. ": " .. M.spend_words(message)
  end
  if err.kind ~= "invalid_request" or err.status then return tostring(err) end
  if field == "out" or field == "key" then -- a key refused: fresh = true is the command line's --fresh
    return err.kind .. ": " .. M.option_words(message):gsub("give another (%a+), or", "give another --%1, or")
  end
  message = extra_words(field, message)
  if message:sub(1, 8) == "--extra:" then return message end
  local base, index = field:match("^([%w_]+)%[(%d+)%]$")
  local flag = args.FIELD_FLAG[base or field]
  local prefix = field .. ": "
  if flag and message:sub(1, #prefix) == prefix then
    return (index and (flag .. " #" .. index) or flag) .. ": " .. message:sub(#prefix + 1)
  end
  if field == "id" and message:sub(1, 4) == "id: " then
    return "ID: " .. message:sub(5)
  end
  return err.kind .. ": " .. message
end

-- After a create whose answer never came (err.maybe_created): what to do, with the commands that settle it
-- when the ledger holds its pending create (err.pending).
function M.maybe_made(ctx, err)
  local opts = ctx.opts or {}
  local at, note = M.ledger_words(opts.journal, opts)
  if not (err.pending and at) then
    return "the create may have made (and billed) a task: check your account before you create it again (with"
      .. " --journal PATH or --store URL, a rerun knows of it and pays for nothing twice)"
  end
  local cmd = args.INVOKED .. " pending " .. at
  local keyed = opts.key ~= nil or (ctx.name == "generate" and opts.out ~= nil) -- (its rerun is refused, not paid)
  return string_format("the create may have made (and billed) a task: it is pending create %s (`%s` lists it)%s:"
    .. " `%s --adopt %s TASK_ID` records the task it made, once found in your account; `%s --forget %s` one that"
    .. " made none%s", err.pending, cmd, keyed and ", which the same command refuses to create again until it is"
    .. " settled" or "; the same command again is a new paid create", cmd, err.pending, cmd, err.pending, note or "")
end

-- Report err for ctx (ctx.name: the command, ctx.json: --json) and return the
-- exit status. stderr: "starvideos <command>: <what went wrong>", then a hint
-- for bad usage (or a request refused before the client was made: its flags) or how to pick a
-- timed-out task up again.
function M.report(ctx, err)
  if ctx.json then M.print_json(M.error_document(err)) end
  local who = args.PROG .. (ctx.name and (" " .. ctx.name) or "")
  write(io_stderr, who, ": ", M.store_named(M.describe(err), ctx.opts or {}), "\n")
  local code = M.exit_code(err)
  if code == 2 and (err.kind == "usage" or not ctx.client) then
    write(io_stderr, args.hint(ctx.name), "\n")
  elseif err.kind == "timeout" and err.id then
    write(io_stderr, M.next_step(ctx, err.id), "\n")
  elseif err.maybe_created and not err.created then
    write(io_stderr, M.maybe_made(ctx, err), "\n")
  elseif err.reason then -- (a failed task, a refused create: what to do, its input named by its flag)
    local named = err.input and (args.FIELD_FLAG[err.input] or err.input)
    local tried = type(err.attempts) == "number" and err.attempts > 1 and err.attempts or nil -- (--fallback's)
    write(io_stderr, "why: ", err.reason, ": ", require("starvideos.failure").advice(err.reason, named, tried), "\n")
  end
  return code
end

return M
