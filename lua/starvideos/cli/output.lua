-- starvideos.cli.output: everything the command line writes goes through here.
--   * every write is redacted: the API key in use can never reach the output
--     (defence in depth: the library's messages never contain it either);
--   * --json documents are printed with starvideos.cli.json;
--   * an error, whatever its source (usage, validation, the API, a failed task,
--     an interrupt), is reported one way: one line on stderr and, under --json,
--     the one error document on stdout (M.error_document).

local json = require "starvideos.cli.json"
local args = require "starvideos.cli.args"
local hide = require("starvideos.extras.log").hide

local type, tostring, select, setmetatable = type, tostring, select, setmetatable
local io_stdout, io_stderr = io.stdout, io.stderr
local string_format, table_concat = string.format, table.concat

local M = {}

-- ------------------------------------------------------------ streams

local secrets = {}

-- One more secret (the API key, a webhook secret) to keep out of every output
-- from now on; nil forgets them all (a new command).
function M.set_secret(value)
  if value == nil then secrets = {} else secrets[#secrets + 1] = value end
end

-- every secret's every occurrence as "[redacted]" (the log's one plain-text hiding)
local function redact(s)
  s = tostring(s)
  for i = 1, #secrets do
    local secret = secrets[i]
    if #secret >= 4 then s = hide(s, secret) end
  end
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
    retry_after = err.retry_after, id = err.id, maybe_created = err.maybe_created, created = err.created }
end

-- The one JSON document of a command that failed, whatever the command:
-- { "ok": false, "error": {...}, "task": {...} } (task: when the error has one,
-- e.g. a failed task or the last state seen before a timeout).
function M.error_document(err)
  local task = err.task
  if type(task) ~= "table" then task = nil end
  return { ok = false, error = M.error_object(err), task = task }
end

-- 2 for bad usage and a request refused locally (it never left this machine),
-- 130 for an interrupt, else 1.
function M.exit_code(err)
  if err.kind == "usage" then return 2 end
  if err.kind == "interrupted" then return 130 end
  if err.kind == "invalid_request" and not err.status and not err.task then return 2 end
  return 1
end

-- One line for a person. A local validation error names the flag that carries
-- the field: "duration: expected ..." -> "--duration: expected ...".
function M.describe(err)
  if err.kind == "invalid_request" and not err.status and type(err.field) == "string"
    and type(err.message) == "string" then
    local base, index = err.field:match("^([%w_]+)%[(%d+)%]$")
    local flag = args.FIELD_FLAG[base or err.field]
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

-- Report err for ctx (ctx.name: the command, ctx.json: --json) and return the
-- exit status. stderr: "starvideos <command>: <what went wrong>", then a hint
-- for bad usage or how to pick a timed-out task up again.
function M.report(ctx, err)
  if ctx.json then M.print_json(M.error_document(err)) end
  local who = args.PROG .. (ctx.name and (" " .. ctx.name) or "")
  write(io_stderr, who, ": ", M.describe(err), "\n")
  local code = M.exit_code(err)
  if code == 2 then
    write(io_stderr, args.hint(ctx.name), "\n")
  elseif err.kind == "timeout" and err.id then
    write(io_stderr, string_format(
      "the task is still running on the server: 'starvideos wait %s' picks it up again\n", err.id))
  end
  return code
end

return M
