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
-- the flags' fields; blank lines and lines starting with # skipped; a byte-order
-- mark before the first line dropped.  Every entry is checked before anything is
-- sent: a usage error names its line (a NUL byte too: it would go into a paid prompt).
local function read_entries(path, defaults)
  local f, err = io_open(path, "r")
  if not f then usage_error("--prompts-file: cannot read %s", tostring(err)) end
  local _, rerr = f:read(0) -- (a folder opens, and reads "Is a directory")
  if rerr then f:close(); usage_error("--prompts-file %s: cannot read it: %s", quote(path), tostring(rerr)) end
  local starvideos, cjson = client_for.load(), require "cjson.safe"
  local entries, n, jsonl = {}, 0, path:find("%.jsonl$") ~= nil
  local input = require "starvideos.cli.input"
  -- (whole: Lua 5.1's line reader ends a line at a NUL byte, and drops it; at most its limit: /dev/zero says no size)
  local all, big = input.read(f, input.LIMITS.prompts)
  f:close()
  if not all then
    usage_error("--prompts-file %s is %s (its limit: split it into several batches)", quote(path), tostring(big))
  end
  for line in (all .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local raw = n == 1 and line:gsub("^\239\187\191", "") or line
    if raw:find("\0", 1, true) then usage_error("%s:%d: a NUL byte in the line", path, n) end
    local text = raw:match("^%s*(.-)%s*$")
    if text ~= "" and text:sub(1, 1) ~= "#" then
      local params = {}
      for k, v in pairs(defaults) do params[k] = v end
      if jsonl then
        local obj = cjson.decode(text)
        if type(obj) ~= "table" or text:sub(1, 1) ~= "{" then
          usage_error("%s:%d: expected one JSON object of request params, got %s", path, n, quote(text:sub(1, 40)))
        end
        for k, v in pairs(obj) do if v ~= cjson.null then params[k] = v end end
      else
        params.prompt = text
      end
      local ok, verr = starvideos.validate(params)
      if not ok then usage_error("%s:%d: %s", path, n, verr.message) end
      entries[#entries + 1] = { params = params, line = n }
    end
  end
  if #entries == 0 then
    usage_error("--prompts-file %s holds no prompt (blank and # lines are skipped)", quote(path))
  end
  return entries
end

-- --out-dir: an existing folder (or a link to one), or made when its parent is one; or a bucket's prefix
-- (s3://bucket[/prefix]: docs/storage.md), checked as an object URL.
local function out_dir(dir, core, dry_run)
  if require("starvideos.sink").object(dir) then
    local X = require "starvideos.extension"
    local scheme = X.scheme(dir)
    local ext, xerr = X.find("sink", scheme, scheme .. ":// outs", "--out-dir")
    if not ext then usage_error("--out-dir: %s", xerr.message) end
    local bucket, err = true, nil -- (a sink without parse: its check_dir reads the folder)
    if ext.parse then bucket, err = ext.parse(dir, "--out-dir", true) end
    if not bucket then usage_error("%s", err.message) end
    return (dir:gsub("/+$", ""))
  end
  dir = dir:gsub("(.)/+$", "%1")
  local kind = core.file_kind(dir)
  if kind == "folder" or core.file_kind(dir .. "/.") == "folder" then return dir end
  if kind then usage_error("--out-dir %s is not a directory", quote(dir)) end
  local parent = dir:match("^(.*)/[^/]*$") or "."
  if parent == "" then parent = "/" end
  if core.file_kind(parent) ~= "folder" then
    usage_error("--out-dir %s: its parent %s is not a directory (batch makes the last folder only)", quote(dir),
      quote(parent))
  end
  if dry_run then return dir end -- (a plan makes nothing: the run makes the folder)
  os_execute("mkdir " .. shell_word(dir) .. " 2>/dev/null")
  if core.file_kind(dir) ~= "folder" then usage_error("--out-dir %s: cannot make this folder", quote(dir)) end
  return dir
end

-- The command as given (its flags in the command's order), to run again; without --fresh,
-- which would pay again for every video it made.
local function again(opts) return output.same_command("batch", opts) end

-- An entry's file name and line, as the messages name it: "0003.mp4 (line 4)", "0004.mp4 (line 5, repeats
-- line 2)" for an entry whose request an earlier line made already (repeats).
local function entry_name(entries, i)
  local e = entries[i]
  return string_format("%04d.mp4 (line %d%s)", i, e.line, e.repeats and ", repeats line " .. e.repeats or "")
end

-- The entries whose request (their params, the flags' included) an earlier entry's is, each marked with the line
-- it repeats: each is a paid create of its own, said on stderr first (the run's and the plan's); with
-- --skip-duplicates left out.  The set of the indexes left out.
local function duplicates(opts, entries)
  local first, said, skip = {}, {}, {}
  for i, e in ipairs(entries) do
    local request = json.encode(e.params) -- (keys sorted: one text a request)
    local j = first[request]
    if j then
      e.repeats, skip[i] = entries[j].line, true
      said[#said + 1] = string_format("line %d repeats line %d", e.line, entries[j].line)
    else
      first[request] = i
    end
  end
  if #said == 0 then return {} end
  local leave = opts["skip-duplicates"]
  output.err(string_format("%s batch: %d entr%s repeat%s an earlier line's request, %s: %s\n", args.PROG, #said,
    #said == 1 and "y" or "ies", #said == 1 and "s" or "", leave and "left out (--skip-duplicates)"
    or "each a paid create of its own (--skip-duplicates leaves them)", table_concat(said, ", ")))
  return leave and skip or {}
end

-- An entry's error for a person: a key refused names the batch's way to create anew; a failure's reason (and the
-- input its words named) after it.
local function describe(err)
  local why = err.reason and " [" .. err.reason .. (err.input and ": " .. err.input or "") .. "]" or ""
  return (output.describe(err):gsub("give another %-%-out, or %-%-fresh$",
    "give the line its params back, another --out-dir, or --fresh")) .. why
end

-- The results for a person: each entry not saved (a pending create with the
-- command that settles it), then the counts; or one JSON array.
local function report(ctx, entries, results, dir, at, at_note)
  local failed = 0
  if ctx.json then
    local list = json.array()
    for i, r in ipairs(results) do
      list[i] = { index = i, line = entries[i].line, path = r.path, id = r.task and r.task.id or (r.err and r.err.id),
        status = r.task and r.task.status, error = r.err and output.error_object(r.err),
        pending = r.err and r.err.pending, skipped = r.skipped, repeats = entries[i].repeats }
    end
    output.print_json(list)
  end
  local pending, repeats, capped = {}, 0, 0
  for i, r in ipairs(results) do
    if r.err and r.err.kind == "spend_limited" then capped = capped + 1 end
    if r.repeat_of then
      repeats = repeats + 1
      if not ctx.json then out(string_format("%s  skipped: its request is line %d's (--skip-duplicates)\n",
        entry_name(entries, i), r.repeat_of)) end
    elseif not r.path then
      failed = failed + 1
      if r.err and r.err.pending then
        pending[#pending + 1] = string_format("  %s: `%s pending %s --adopt %s TASK_ID` or `%s pending %s --forget %s`",
          entry_name(entries, i), args.INVOKED, at, r.err.pending, args.INVOKED, at, r.err.pending)
      elseif not ctx.json then
        out(string_format("%s  %s\n", entry_name(entries, i), r.skipped and "skipped: its task failed before"
          .. " (--skip-failed)" or r.err and describe(r.err) or "no file"))
      end
    end
  end
  if ctx.json then return failed > 0 and 1 or 0 end
  if #pending > 0 then
    out(string_format("%d create%s sent and never answered (the task may exist and be paid for): check your account,"
      .. " then settle each: --adopt with the task it made (the batch again fetches its video, paying nothing), or"
      .. " --forget when it made none (the batch again creates it):\n%s%s\n", #pending,
      #pending == 1 and " was" or "s were", table_concat(pending, "\n"), at_note or ""))
  end
  out(string_format("%d video%s: %d saved in %s, %d not%s%s\n", #results, #results == 1 and "" or "s",
    #results - failed - repeats, dir, failed, capped > 0 and string_format(" (%d refused by --spend-limit: nothing "
    .. "sent)", capped) or "", repeats > 0 and string_format(", %d repeat%s left out", repeats,
    repeats == 1 and "" or "s") or ""))
  return failed > 0 and 1 or 0
end

-- The entries whose file's task failed before (the plan's): a run creates each again (a new paid create);
-- announced on stderr, or with --skip-failed left out.  The set of their indexes.
local function failed_before(opts, plan, entries)
  local names, skip = {}, {}
  for i, e in ipairs(plan.entries) do
    if e.reason == "failed before" or e.was == "failed before" then -- (was: a create a spend limit refuses)
      names[#names + 1], skip[i] = entry_name(entries, i), true
    end
  end
  if #names == 0 then return {} end
  output.err(string_format("%s batch: %d entr%s whose task failed %s: %s%s\n", args.PROG, #names,
    #names == 1 and "y" or "ies", opts["skip-failed"] and "left out (--skip-failed)"
    or "created again, each a new paid create", table_concat(names, ", "),
    opts["skip-failed"] and "" or "; --skip-failed leaves them"))
  return opts["skip-failed"] and skip or {}
end

-- A plan's options (--dry-run) for an --out-dir that does not exist yet (the run makes it, a plan makes nothing):
-- each entry keyed by its file's absolute path, as a run keys it, in place of the file (whose folder a plan
-- would refuse); else how as it is.
local function planned(dir, core, how)
  if require("starvideos.sink").object(dir) or core.file_kind(dir) then return how end
  local file, cwd = how.out, (dir:sub(1, 1) ~= "/" and (os.getenv("PWD") or ".") .. "/" or "")
  local keyed = {}
  for k, v in pairs(how) do keyed[k] = v end
  keyed.out, keyed.key = nil, function(i) return cwd .. file(i) end
  return keyed
end

-- The batch's counts, which an interrupt or a kill prints with the command that goes on (before: the progress
-- line with those counts, when it was not printed yet: a kill prints it first).
local function counts_hint(ctx, opts, ev, before)
  local command, note = again(opts)
  local created = string_format("%d created (each a paid task)", ev.created)
  if (ev.unanswered or 0) > 0 then
    created = created .. string_format(", %d more sent without an answer yet (%s paid for)", ev.unanswered,
      ev.unanswered == 1 and "it may be" or "each may be")
  end
  if (ev.earlier or 0) > 0 then created = created .. string_format(", %d from an earlier run", ev.earlier) end
  if (ev.others or 0) > 0 then created = created .. string_format(", %d from another live process", ev.others) end
  ctx.hint = string_format("%s, %d done, %d failed of %d videos; `%s` goes on: it creates no video it created"
    .. " before%s", created, ev.done, ev.failed, ev.total, command, note)
  ctx.before = before
  output.watch(ctx)
end

-- --status ID: a submitted batch's counts, a line (or JSON).
local function status(ctx, opts)
  if not opts.store then usage_error("--status needs --store URL: the ledger the batch was submitted to") end
  local client = client_for.new(ctx, opts, { store = client_for.store(opts) })
  local c, err = client:batch(opts.status)
  if not c then return output.report(ctx, err) end
  if ctx.json then output.print_json(c); return 0 end
  out(string_format("batch %s: %d queued, %d created, %d saved, %d failed of %d\n", opts.status, c.queued,
    c.created, c.saved, c.failed, c.total))
  return 0
end

-- --submit: the entries queued in the store for the fleet's keepers; the batch id printed.
local function submit(ctx, opts, dir, entries)
  if not opts.store then usage_error("--submit needs --store URL: the ledger every keeper shares") end
  local client = client_for.new(ctx, opts, { store = client_for.store(opts) })
  local list = {}
  for i = 1, #entries do list[i] = entries[i].params end
  local b, err = client:submit(list, { out = dir .. "/%04d.mp4", tenant = opts.tenant, priority = opts.priority })
  if not b then return output.report(ctx, err) end
  if ctx.json then output.print_json(b); return 0 end
  out(b.batch, "\n")
  output.err(string_format("%d queued, %d known to the ledger already: `starvideos batch --status %s --store "
    .. "URL` counts them; `starvideos keep --store URL --dir D` on any host creates them\n", b.queued, b.known,
    b.batch))
  return 0
end

function M.run(ctx, opts)
  if opts.status then return status(ctx, opts) end
  if opts.priority and (opts.priority < 1 or opts.priority > 5) then
    usage_error("--priority %s: a whole number from 1 (first) to 5 (last)", tostring(opts.priority))
  end
  local defaults = args.request_params(opts)
  if opts.extra then defaults.extra = require("starvideos.cli.commands").extra_of(opts.extra) end
  local entries = read_entries(opts["prompts-file"], defaults)
  local _, core = client_for.load()
  local dir = out_dir(opts["out-dir"], core, opts["dry-run"])
  if opts.store and opts.journal then usage_error("--journal and --store: give one ledger, not both") end
  local store = opts.store and client_for.store(opts)
  if not (store or opts.journal) and require("starvideos.sink").object(dir) then
    usage_error("--out-dir %s is a bucket: give --journal PATH or --store URL (the batch's record of its paid tasks,"
      .. " which a rerun reads)", quote(opts["out-dir"]))
  end
  if opts.submit then return submit(ctx, opts, dir, entries) end
  local journal = not store and (opts.journal or dir .. "/starvideos.jsonl") or nil
  local at, at_note = output.ledger_words(journal, opts)
  local client = client_for.new(ctx, opts, { journal = journal, store = store })
  local paths, all, list, index = {}, {}, {}, {}
  for i = 1, #entries do paths[i], all[i] = string_format("%s/%04d.mp4", dir, i), entries[i].params end
  local fallback = args.models(opts.fallback)
  local how = { interval = opts.interval, timeout = opts.timeout, tenant = opts.tenant, fresh = opts.fresh,
    resend = opts.resend, fallback = fallback, out = function(i) return paths[index[i]] end }
  local plan = client:plan(all, planned(dir, core, { tenant = opts.tenant, fresh = opts.fresh, resend = opts.resend,
    fallback = fallback, out = function(i) return paths[i] end }))
  local skip, repeated = failed_before(opts, plan, entries), duplicates(opts, entries)
  for i in pairs(repeated) do skip[i] = true end
  for i, e in ipairs(entries) do
    if not skip[i] then index[#index + 1] = i; list[#index] = e.params end
  end
  if opts["dry-run"] then -- the run's own list and options: what it would send
    if #list < #all then plan = client:plan(list, planned(dir, core, how)) end
    return require("starvideos.cli.plan").print(plan, function(e) return entry_name(entries, index[e.index]) end,
      ctx.json)
  end
  ctx.entry_of = function(ev) return entry_name(entries, index[ev.index]) end -- (an event's entry: cli/client.lua)
  counts_hint(ctx, opts, { created = 0, done = 0, failed = 0, total = #list })
  local d = display.for_command(ctx.json, core.isatty)
  local p = require("starvideos.cli.progress").new(d, core.now(), #list, function(counts, before)
    counts_hint(ctx, opts, counts, before)
  end)
  ctx.display = p -- (the command's sleep moves it: cli/client.lua)
  p:status_line(core.now())
  how.on_progress = function(ev) p:event(ev, core.now()) end
  local ran = client:generate_all(list, how)
  p:finish(true)
  local results = {}
  for i = 1, #entries do results[i] = { skipped = true, repeat_of = repeated[i] and entries[i].repeats } end
  for j, r in ipairs(ran) do results[index[j]] = r end
  return report(ctx, entries, results, dir, at, at_note)
end

return M
