-- starvideos.cli.batch: `starvideos batch --prompts-file F --out-dir D [...]`
-- (docs/batch.md, "The batch command"): one video per entry of F, to
-- D/0001.mp4 and on, through client:generate_all on the journal
-- D/starvideos.jsonl (or --journal), so that a rerun after any stop pays for
-- no video twice.  Exit 0 when every file is there, 1 when any is not.

local args = require "starvideos.cli.args"
local output = require "starvideos.cli.output"
local display = require "starvideos.cli.display"
local json = require "starvideos.cli.json"
local client_for = require "starvideos.cli.client"
local shell_word = require("starvideos.shell").word

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local io_open, os_execute = io.open, os.execute
local string_format, table_concat = string.format, table.concat
local out, usage_error, quote = output.out, args.usage_error, args.quote

local M = {}

-- The entries of the prompts file, each {params =, line =}: a prompt a line
-- (spaces around it dropped), or in a .jsonl file a JSON object a line, over
-- the flags' fields; blank lines and lines starting with # skipped.  Every
-- entry is checked before anything is sent: a usage error names its line.
local function read_entries(path, defaults)
  local f, err = io_open(path, "r")
  if not f then usage_error("--prompts-file: cannot read %s", tostring(err)) end
  local starvideos, cjson = client_for.load(), require "cjson.safe"
  local entries, n, jsonl = {}, 0, path:find("%.jsonl$") ~= nil
  for raw in f:lines() do
    n = n + 1
    local text = raw:match("^%s*(.-)%s*$")
    if text ~= "" and text:sub(1, 1) ~= "#" then
      local params = {}
      for k, v in pairs(defaults) do params[k] = v end
      if jsonl then
        local obj = cjson.decode(text)
        if type(obj) ~= "table" or text:sub(1, 1) ~= "{" then
          f:close()
          usage_error("%s:%d: expected one JSON object of request params, got %s", path, n, quote(text:sub(1, 40)))
        end
        for k, v in pairs(obj) do if v ~= cjson.null then params[k] = v end end
      else
        params.prompt = text
      end
      local ok, verr = starvideos.validate(params)
      if not ok then f:close(); usage_error("%s:%d: %s", path, n, verr.message) end
      entries[#entries + 1] = { params = params, line = n }
    end
  end
  f:close()
  if #entries == 0 then
    usage_error("--prompts-file %s holds no prompt (blank and # lines are skipped)", quote(path))
  end
  return entries
end

-- --out-dir: an existing folder, or made when its parent is one.
local function out_dir(dir, core)
  dir = dir:gsub("(.)/+$", "%1")
  local kind = core.file_kind(dir)
  if kind == "folder" then return dir end
  if kind then usage_error("--out-dir %s is not a directory", quote(dir)) end
  local parent = dir:match("^(.*)/[^/]*$") or "."
  if parent == "" then parent = "/" end
  if core.file_kind(parent) ~= "folder" then
    usage_error("--out-dir %s: its parent %s is not a directory (batch makes the last folder only)", quote(dir),
      quote(parent))
  end
  os_execute("mkdir " .. shell_word(dir) .. " 2>/dev/null")
  if core.file_kind(dir) ~= "folder" then usage_error("--out-dir %s: cannot make this folder", quote(dir)) end
  return dir
end

-- The command as given (its flags in the command's order), to run again.
local function again(opts)
  local words = { args.PROG, "batch" }
  for _, name in ipairs(args.COMMANDS.batch.flags) do
    local v = opts[name]
    if type(v) == "table" then
      for _, item in ipairs(v) do words[#words + 1] = "--" .. name .. " " .. shell_word(item) end
    elseif v ~= nil and v ~= true then
      words[#words + 1] = "--" .. name .. " " .. shell_word(tostring(v))
    elseif v == true and name == "json" then
      words[#words + 1] = "--json"
    end
  end
  return table_concat(words, " ")
end

-- The results for a person: each entry not saved (a pending create with the
-- command that settles it), then the counts; or one JSON array.
local function report(ctx, entries, results, dir, journal)
  local failed = 0
  if ctx.json then
    local list = json.array()
    for i, r in ipairs(results) do
      list[i] = { index = i, line = entries[i].line, path = r.path, id = r.task and r.task.id or (r.err and r.err.id),
        status = r.task and r.task.status, error = r.err and output.error_object(r.err),
        pending = r.err and r.err.pending }
    end
    output.print_json(list)
  end
  local pending = {}
  for i, r in ipairs(results) do
    if not r.path then
      failed = failed + 1
      local name = string_format("%04d.mp4 (line %d)", i, entries[i].line)
      if r.err and r.err.pending then
        pending[#pending + 1] = string_format("  %s: `%s pending --journal %s --forget %s`", name, args.PROG,
          shell_word(journal), r.err.pending)
      elseif not ctx.json then
        out(string_format("%s  %s\n", name, r.err and output.describe(r.err) or "no file"))
      end
    end
  end
  if ctx.json then return failed > 0 and 1 or 0 end
  if #pending > 0 then
    out(string_format("%d create%s sent and never answered (the task may exist and be paid for): check your account,"
      .. " then settle each, and run the batch again to create it:\n%s\n", #pending,
      #pending == 1 and " was" or "s were", table_concat(pending, "\n")))
  end
  out(string_format("%d video%s: %d saved in %s, %d not\n", #results, #results == 1 and "" or "s", #results - failed,
    dir, failed))
  return failed > 0 and 1 or 0
end

function M.run(ctx, opts)
  local defaults = args.request_params(opts)
  if opts.extra then defaults.extra = require("starvideos.cli.commands").extra_of(opts.extra) end
  local entries = read_entries(opts["prompts-file"], defaults)
  local _, core = client_for.load()
  local dir = out_dir(opts["out-dir"], core)
  local journal = opts.journal or dir .. "/starvideos.jsonl"
  local client = client_for.new(ctx, opts, { journal = journal })
  ctx.hint = string_format("`%s` goes on: it creates no video it created before", again(opts))
  output.watch(ctx)
  local d = display.for_command(ctx.json, core.isatty)
  ctx.display = d
  d:many_tasks()
  d.started, d.title = core.now(), string_format("%d videos", #entries)
  d:status_line(core.now(), true)
  local shown
  local list = {}
  for i, e in ipairs(entries) do list[i] = e.params end
  local results = client:generate_all(list, { interval = opts.interval, timeout = opts.timeout,
    out = function(i) return string_format("%s/%04d.mp4", dir, i) end,
    on_progress = function(ev)
      if ev.type ~= "batch" then return end
      d.title = string_format("%d videos: %d created, %d done, %d failed", ev.total, ev.created, ev.done, ev.failed)
      d:status_line(core.now(), true)
      local ends = ev.done + ev.failed
      if ends ~= shown then shown = ends; d:plain(d.title) end -- off a terminal, a line per file done or failed
    end })
  d:finish(false)
  return report(ctx, entries, results, dir, journal)
end

return M
