-- starvideos.cli.commands: one function per command, (ctx, opts, pos) -> exit status.
-- ctx.name: the command; ctx.json: --json; ctx.display: the live display, once
-- there is one. The library is used through its public API only.

local args = require "starvideos.cli.args"
local output = require "starvideos.cli.output"
local protect = require("starvideos.interrupt").pcall -- (a pcall that lets Ctrl-C through)
local display = require "starvideos.cli.display"
local json = require "starvideos.cli.json"
local client_for = require "starvideos.cli.client"
local shell_word = require("starvideos.shell").word

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local io_open, os_date = io.open, os.date
local string_format, table_concat, table_sort = string.format, table.concat, table.sort
local out, print_json = output.out, output.print_json
local usage_error, quote = args.usage_error, args.quote

local M = {}

-- A failed command: the live line goes, the error is reported (stderr, and the
-- error document on stdout under --json).
local function fail(ctx, err)
  if ctx.display then ctx.display:finish(false) end
  return output.report(ctx, err)
end

-- true when path names a directory (io.open succeeds on one, reading fails)
local function is_dir(path)
  local f = io_open(path, "rb")
  if not f then return false end
  local ok, _, code = f:read(0)
  f:close()
  return ok == nil and code == 21 -- EISDIR
end

-- The elements 1, 2, ... of a list, read by index (a read-only proxy has no
-- length before Lua 5.2: no __len).
local function list(t)
  local l, i = {}, 1
  while t and t[i] ~= nil do
    l[i] = t[i]
    i = i + 1
  end
  return l
end

local function new_display(ctx, core)
  local d = display.for_command(ctx.json, core.isatty)
  ctx.display = d
  return d
end

-- --extra JSON: the object it holds (params.extra), or a usage error.
local function extra_of(text)
  local v, why = require("cjson.safe").decode(text)
  local found
  if v == nil then
    found = "text that is not JSON (" .. tostring(why) .. ")"
  elseif type(v) ~= "table" then
    found = type(v) == "userdata" and "null" or "a JSON " .. type(v)
  elseif not text:match("^%s*{") then
    found = "a JSON array"
  end
  if found then usage_error("--extra expects a JSON object, e.g. '{\"seed\": 7}', got %s", found) end
  return v
end

M.extra_of = extra_of -- (batch's --extra too)

-- What the service will ignore of a valid request (validate's warnings, docs/reference.md "Warnings"): a line
-- each on stderr, whatever the output; --json adds them to its document.  (A create's are its `warning` events,
-- which cli/client.lua prints.)
local function warn(ctx, warnings)
  for _, w in ipairs(warnings) do output.err(args.PROG, " ", tostring(ctx.name), ": warning: ", w.message, "\n") end
  return json.array(warnings)
end

-- Local validation first: an invalid request needs no key to be refused.  params, true, its warnings; or
-- params, nil, err.
local function validated(opts)
  local starvideos = client_for.load()
  local params = args.request_params(opts)
  if opts.extra then params.extra = extra_of(opts.extra) end
  local ok, err = starvideos.validate(params)
  return params, ok, err
end

function M.models(ctx)
  local starvideos = client_for.load()
  local names = {}
  for name in pairs(starvideos.models) do names[#names + 1] = name end
  table_sort(names)
  if ctx.json then
    local t = {}
    for _, name in ipairs(names) do
      local copy = {}
      for k, v in pairs(starvideos.models[name]) do
        if type(v) == "table" then
          local sub = {}
          for k2, v2 in pairs(v) do sub[k2] = v2 end
          if k == "ratios" or k == "resolutions" then sub = json.array(sub) end
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
    local ratios = list(m.ratios)
    for j, r in ipairs(ratios) do
      ratios[j] = r .. (r == m.default_ratio and " (default)" or "")
    end
    local res = list(m.resolutions)
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
    for _, ig in ipairs(list(m.ignored)) do -- what the service ignores (a warning when given)
      out(string_format("  %-11s %s beside %s (%s)\n", "ignores", ig.field, ig.when, ig.why))
    end
  end
  return 0
end

function M.validate(ctx, opts)
  local params, ok, err = validated(opts)
  if not ok then return fail(ctx, err) end
  local warnings = warn(ctx, err)
  if ctx.json then
    print_json { ok = true, warnings = warnings }
  else
    out("ok: the request is valid for ", tostring(params.model), "\n")
  end
  return 0
end

-- The request and its reference media checked, nothing created: what could not be checked
-- is noted (stderr; notes under --json); a refusal exits 2 as an invalid request does.
function M.check(ctx, opts)
  local params, ok, verr = validated(opts)
  if not ok then return fail(ctx, verr) end
  if opts.preflight == "off" then usage_error("check --preflight off: nothing is left to check; use validate") end
  local client = client_for.new(ctx, opts, nil, true)
  local notes, err = client:check(params)
  if not notes then return fail(ctx, err) end
  local warnings = warn(ctx, verr)
  if ctx.json then
    print_json { ok = true, notes = json.array(notes), warnings = warnings }
  else
    out("ok: the request and its reference media are valid for ", tostring(params.model),
      #notes > 0 and string_format(" (%d not checked: see the notes)", #notes) or "", "\n")
  end
  return 0
end

-- task, with the last API answer's request ids (--json: docs/reference.md "Request ids").
local function with_ids(ctx, task)
  local ids = ctx.request_ids
  if ids then task.request_id, task.server_request_id = ids.request_id, ids.server_request_id end
  return task
end

function M.create(ctx, opts)
  local params, ok, verr = validated(opts)
  if not ok then return fail(ctx, verr) end
  local client = client_for.new(ctx, opts, { journal = opts.journal, store = client_for.store(opts) })
  local task, err = client:create(params, { key = opts.key, fresh = opts.fresh, tenant = opts.tenant,
    resend = opts.resend })
  if not task then return fail(ctx, err) end
  task.warnings = json.array(task.warnings)
  if ctx.json then print_json(with_ids(ctx, task)) else display.print_task(task) end
  return 0
end

function M.status(ctx, opts, pos)
  local client = client_for.new(ctx, opts)
  local task, err = client:query(pos[1])
  if not task then return fail(ctx, err) end
  if ctx.json then print_json(with_ids(ctx, task)) else display.print_task(task) end
  return task.status == "failed" and 1 or 0
end

-- The file for task id's video at path: a directory gets <name>.mp4 (a bucket's prefix ending in /: its key).
local function video_path(path, id)
  if require("starvideos.sink").object(path) then
    return path:find("/$") and path .. client_for.load().file_name(id) .. ".mp4" or path
  end
  if is_dir(path) then return path:gsub("/+$", "") .. "/" .. client_for.load().file_name(id) .. ".mp4" end
  return path
end

-- wait --out PATH: where the video goes (as for download), its folder checked
-- before anything is asked of the service.
local function wait_out(opts, id)
  local path = opts.out
  if path == nil then return nil end
  if is_dir(path) or require("starvideos.sink").object(path) then return video_path(path, id) end
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir ~= "" and not is_dir(dir) then
    usage_error("--out %s: the folder %s does not exist (nothing was waited for)", quote(path), quote(dir))
  end
  return path
end

-- wait ID [--out PATH]: polls until completed, then with --out downloads (as generate does).
function M.wait(ctx, opts, pos)
  local id = pos[1]
  local path = wait_out(opts, id)
  local client, core = client_for.new(ctx, opts, { journal = opts.journal, store = client_for.store(opts) })
  ctx.task_id, ctx.out = id, path -- what an interrupt or a kill says how to go on with
  output.watch(ctx)
  local d = new_display(ctx, core)
  d.started, d.id = core.now(), id
  d:status_line(core.now())
  local progress = function(ev) d:event(ev, core.now()) end
  local task, err = client:wait(id, { interval = opts.interval, timeout = opts.timeout, on_progress = progress })
  if not task then return fail(ctx, err) end
  if path then
    ctx.completed = true
    output.watch(ctx)
    local _, derr = client:download(task, path, { on_progress = progress })
    if derr then return fail(ctx, derr) end
    task.path = path
  end
  d:finish(path ~= nil and d:downloaded())
  if ctx.json then print_json(task) else display.print_task(task) end
  if path and not ctx.json then out(display.saved_line(path), "\n") end
  return 0
end

-- The library takes the task id itself (it queries the task for its URL).
function M.download(ctx, opts, pos)
  local client, core = client_for.new(ctx, opts)
  local id = pos[1]
  local path = video_path(pos[2], id)
  ctx.task_id, ctx.completed, ctx.out = id, true, path -- a Ctrl-C says how to go on
  output.watch(ctx)
  local d = new_display(ctx, core)
  local res, err = client:download(id, path, {
    on_progress = function(ev) d:event(ev, core.now()) end })
  if not res then return fail(ctx, err) end
  d:finish(true)
  if ctx.json then
    print_json { id = id, path = path, bytes = display.saved_size(path) }
  else
    out(display.saved_line(path), "\n")
  end
  return 0
end

-- What the library's plan says a run would do (--dry-run), printed: name(e) names each entry.
local function print_plan(ctx, plan, err, name)
  if not plan then return fail(ctx, err) end
  return require("starvideos.cli.plan").print(plan, name, ctx.json)
end

-- A create run to its end as generate runs it, its live display and the task printed: call(o) is the library's
-- generate, again, remix or continue with the options o (the command's --out, --interval, ... and on_progress).
function M.generated(ctx, opts, core, call)
  ctx.out = opts.out
  local d = new_display(ctx, core)
  d.started = core.now()
  d:live("creating the task...")
  local task, err = call { out = opts.out, key = opts.key, fresh = opts.fresh, tenant = opts.tenant,
    interval = opts.interval, timeout = opts.timeout, resend = opts.resend, fallback = args.models(opts.fallback),
    on_progress = function(ev)
      if type(ev) == "table" and ev.type == "status" and ev.id then
        local completed = ev.status == "completed"
        if ev.id ~= ctx.task_id or completed ~= ctx.completed then
          ctx.task_id, ctx.completed = ev.id, completed
          output.watch(ctx)
        end
      end
      d:event(ev, core.now())
    end }
  if not task then return fail(ctx, err) end
  d:finish(opts.out ~= nil and d:downloaded())
  task.warnings = json.array(task.warnings)
  if ctx.json then
    print_json(task)
  else
    if d.tty or d.quiet then
      display.print_task(task)
    elseif task.video_url then
      out("video_url: ", task.video_url, "\n")
    end
    if task.parent and not (d.tty or d.quiet) then
      out("parent: ", task.parent, " (", tostring(task.relation), ")\n")
    end
    if task.path then out(display.saved_line(task.path), "\n") end
  end
  return 0
end

function M.generate(ctx, opts)
  local params, ok, verr = validated(opts)
  if not ok then return fail(ctx, verr) end
  local client, core = client_for.new(ctx, opts, { journal = opts.journal, store = client_for.store(opts) })
  if opts["dry-run"] then
    local function given(v) return v and function() return v end end
    return print_plan(ctx, client:plan({ params }, { out = given(opts.out), key = given(opts.key),
      fresh = opts.fresh, tenant = opts.tenant, resend = opts.resend, fallback = args.models(opts.fallback) }), nil,
      function(e) return e.out or e.key or "the task" end)
  end
  return M.generated(ctx, opts, core, function(o) return client:generate(params, o) end)
end

-- again, remix, continue and film: cli/lineage.lua.
for _, name in ipairs { "again", "remix", "continue", "film" } do
  M[name] = function(ctx, opts, pos) return require("starvideos.cli.lineage")[name](ctx, opts, pos) end
end

function M.verify(ctx, opts, pos) return require("starvideos.cli.verify").run(ctx, opts, pos) end

-- The list resume and keep return, printed (`--json`: one array); the exit
-- code: 1 when an entry failed.
local function report(ctx, results, none)
  local failed = 0
  for _, r in ipairs(results) do
    if r.err then failed = failed + 1 end
  end
  if ctx.json then
    local l = json.array()
    for i, r in ipairs(results) do
      l[i] = { id = r.task and r.task.id or (r.err and r.err.id), task = r.task, path = r.path,
        saved_to = r.saved_to, error = r.err and output.error_object(r.err) }
    end
    print_json(l)
  else
    if #results == 0 then out(none, "\n") end
    for _, r in ipairs(results) do
      local id = r.task and r.task.id or (r.err and (r.err.id or r.err.pending)) or "?"
      if r.err then
        out(string_format("%s  %s: %s\n", id, r.err.kind, r.err.message))
      else
        out(string_format("%s  %s  %s%s\n", id, tostring(r.task and r.task.status), display.saved_line(r.path),
          r.saved_to == "dir" and " (into --dir: no writable out recorded)" or ""))
      end
    end
    if #results > 0 then
      out(string_format("%d task%s: %d downloaded, %d not\n", #results, #results == 1 and "" or "s",
        #results - failed, failed))
    end
  end
  return failed > 0 and 1 or 0
end

-- The ledger (--journal or --store) and --dir of resume and keep, checked; the
-- client and its core.
local function ledger_client(ctx, opts)
  local journal, store = client_for.ledger(opts)
  if journal then
    local f, ferr = io_open(journal, "r")
    if not f then usage_error("--journal: cannot read %s", tostring(ferr)) end
    f:close()
  end
  local dir = opts.dir or "."
  if not (is_dir(dir) or require("starvideos.sink").object(dir)) then -- (a bucket's prefix: the library checks it)
    usage_error("--dir %s is not a directory", quote(dir))
  end
  local client, core = client_for.new(ctx, opts, { journal = journal, store = store })
  return client, core, dir
end

-- What the messages call the ledger: the journal's path, or the store (its host, no password).
local function ledger_name(opts)
  local journal, store = client_for.ledger(opts)
  return journal or "the store " .. require("starvideos.store_option").where(store)
end

-- resume and keep: client[method]{dir=, interval=, timeout=, on_progress=, ...extra}
-- with the live display, then the list printed.
local function carry(ctx, opts, method, title, none, extra)
  local client, core, dir = ledger_client(ctx, opts)
  if opts["dry-run"] then
    local plan, err = client[method](client, { dir = dir, dry_run = true })
    return print_plan(ctx, plan, err, function(e) return e.id or e["local"] end)
  end
  local d = new_display(ctx, core)
  d:many_tasks()
  d.started, d.title = core.now(), title
  d:status_line(core.now())
  local call = { dir = dir, interval = opts.interval, timeout = opts.timeout,
    on_progress = function(ev) d:event(ev, core.now()) end }
  for k, v in pairs(extra) do call[k] = v end
  -- (keep once's warning of the tasks it left under a live lease: said by `none` when it carried nothing)
  local said, leased = client.cfg.on_event, nil
  if type(none) == "function" and said then
    client.cfg.on_event = function(ev) if ev.leased then leased = ev else return said(ev) end end
  end
  local results, err = client[method](client, call)
  client.cfg.on_event = said
  if not results then return fail(ctx, err) end
  d:finish(false)
  if leased and (#results > 0 or ctx.json) then said(leased) end
  if type(none) == "function" and #results == 0 and not ctx.json then none = none(client, opts) end
  return report(ctx, results, none)
end

function M.resume(ctx, opts)
  return carry(ctx, opts, "resume", "resuming the ledger's tasks",
    "nothing to resume: every task in " .. ledger_name(opts) .. " is downloaded or failed", {})
end

-- What keep found nothing to carry says: none orphaned, and on a store the tasks still under a live lease (a
-- process killed a moment ago: its lease lapses within one) and when those leases lapse.
local function none_kept(client, opts)
  local none = "no orphaned task in " .. ledger_name(opts)
  local leased = client.ledger:keeper(true):leased()
  if not (leased and leased.tasks > 0) then return none end
  local held = string_format("%s now; %d task%s held under the live lease of %d process%s", none, leased.tasks,
    leased.tasks == 1 and " is" or "s are", leased.owners, leased.owners == 1 and "" or "es")
  if not leased.last then return held .. ", which keep takes once that process ends" end
  return string_format("%s, which lapse%s in %s: a process killed lately lets go of its tasks then (keep --once "
    .. "again after that, or keep without --once takes them as they lapse)", held, leased.owners == 1 and "s" or "",
    leased.first == leased.last and string_format("%.0f s", leased.last)
    or string_format("%.0f to %.0f s", leased.first, leased.last))
end

-- The tasks whose process died, carried to their files until --timeout.
function M.keep(ctx, opts)
  return carry(ctx, opts, "keep", "keeping the ledger's orphaned tasks", none_kept, { lease = opts.lease,
    once = opts.once })
end

-- The ledger's tasks: a table, or under --json one object a line.  A journal
-- is read with no key and no network; a store's records are the key's.
-- The lines of the journal that cannot be read, counted and named (stderr), as a ledger's warning says it.
local function unreadable(ctx, journal)
  local st = journal and require("starvideos.records.journal").follow(journal)
  if st and st.unreadable then output.err(args.PROG, " ", tostring(ctx.name), ": warning: ", st.unreadable, "\n") end
end

-- The client that reads the ledger of list and spend: a journal's alone (no key, no network), else the store's
-- (the key's records); with --spend-limit and --prices, their limits.
local function ledger_reader(ctx, opts)
  local journal, store = client_for.ledger(opts)
  if not journal then return client_for.new(ctx, opts, { store = store }) end
  local f, ferr = io_open(journal, "r")
  if not f then usage_error("--journal: cannot read %s", tostring(ferr)) end
  f:close()
  local o = { journal = journal }
  client_for.money(opts, o)
  local ok, c = protect(client_for.load().new, o)
  if not ok then usage_error("%s", client_for.refused(tostring(c))) end
  ctx.client = c
  return c
end

-- Each limit's spend in its window now (cli/spend.lua).
function M.spend(ctx, opts)
  return require("starvideos.cli.spend").run(ctx, opts, ledger_reader)
end

-- list --spend-limit: the spend lines after the list (--json: an object a line); nil, or the exit status of a
-- ledger that could not be read.
local function list_spend(ctx, opts, client)
  if not opts["spend-limit"] then return nil end
  local spent, err = client:spend { tenant = opts.tenant }
  if not spent then return fail(ctx, err) end
  require("starvideos.cli.spend").print(spent, ctx.json, true)
end

function M.list(ctx, opts)
  local journal = client_for.ledger(opts)
  local client = ledger_reader(ctx, opts)
  local all, err = client:tasks { check = opts.check, tenant = opts.tenant }
  if not all then return fail(ctx, err) end
  unreadable(ctx, journal)
  local saved, tasks = {}, {}
  for _, t in ipairs(all) do if t.key and t.state == "downloaded" then saved[t.key] = t.id end end
  for _, t in ipairs(all) do -- a failed task whose file a later task of its key saved: superseded, not missing
    if t.state == "failed" and t.key then t.superseded_by = saved[t.key] end
    if not opts.state or t.state == opts.state then tasks[#tasks + 1] = t end
  end
  if opts.check then return display.print_checks(tasks, ctx.json) end
  if opts.tree and tasks[1] then
    local _, core = client_for.load()
    require("starvideos.cli.lineage").print_tree(tasks, ctx.json, core.isatty(1))
  elseif ctx.json then
    for _, t in ipairs(tasks) do output.out(json.encode(t), "\n") end
  elseif not tasks[1] then
    out("no ", opts.state and opts.state .. " " or "", "tasks",
      opts.tenant and " of tenant " .. quote(opts.tenant) or "", " in ", ledger_name(opts), "\n")
  else
    local _, core = client_for.load()
    display.print_tasks(tasks, core.isatty(1))
  end
  return list_spend(ctx, opts, client) or 0
end

-- `pending --adopt LID TASK_ID`: the task checked at the service (it exists, of the pending create's model) and in
-- the ledger (not another entry's already), then recorded for the pending create, whose key follows it from now on.
local function adopt(ctx, opts, journal, store, id)
  local lid = opts.adopt
  local client = client_for.new(ctx, opts, { journal = journal, store = store })
  local pending, lerr = client:pending()
  if not pending then return fail(ctx, lerr) end
  local p
  for _, e in ipairs(pending) do if e["local"] == lid then p = e end end
  if not p then
    return fail(ctx, output.new_error("invalid_request", string_format("--adopt %s: no pending create of that id in "
      .. "%s (`%s pending` with it lists them)", lid, ledger_name(opts), args.INVOKED), { field = "adopt" }))
  end
  local probe = client_for.new(ctx, opts, {}) -- (no ledger: a query of another task writes nothing in it)
  local task, err = probe:query(id)
  probe:close()
  ctx.client = client
  if not task then return fail(ctx, err) end
  if p.model and task.model and p.model ~= task.model then
    return fail(ctx, output.new_error("invalid_request", string_format("--adopt %s %s: that task is of model %s, the "
      .. "pending create asked %s: not its task", lid, id, tostring(task.model), tostring(p.model)),
      { field = "adopt" }))
  end
  for _, t in ipairs(client:tasks {} or {}) do -- (its video would be saved a second time, under this entry's name)
    if t.id == task.id then
      return fail(ctx, output.new_error("invalid_request", string_format("--adopt %s %s: that task is recorded "
        .. "already, made for %s: not this create's", lid, id, t.out or t.path or (t.prompt and string_format("%q",
        t.prompt)) or "another entry"), { field = "adopt" }))
    end
  end
  local ok, aerr = client.ctx.ledger:settle_pending(lid, task.id)
  client:close()
  if not ok then return fail(ctx, output.new_error("io", tostring(aerr), { field = "adopt" })) end
  out(string_format("pending create %s adopted: task %s (%s) recorded for it%s; the same run again follows it, "
    .. "creating nothing\n", lid, task.id, tostring(task.status), p.out and " and its file " .. p.out or ""))
  return 0
end

-- Creates whose answer never came: each was sent, and the task may exist.
function M.pending(ctx, opts, pos)
  local journal, store = client_for.ledger(opts)
  local pending, err
  if opts.adopt then return adopt(ctx, opts, journal, store, pos[1]) end
  if opts.forget then -- the record settled: the user decided the create made nothing worth keeping
    local ok, ferr
    if journal then
      ok, ferr = require("starvideos.records.ledger").new(journal, {}):settle_pending(opts.forget)
    else -- the store's records are the key's: its client's ledger settles it
      local client = client_for.new(ctx, opts, { store = store })
      ok, ferr = client.ctx.ledger:settle_pending(opts.forget)
      client:close()
    end
    if not ok then return fail(ctx, output.new_error("invalid_request", ferr, { field = "forget" })) end
    out("pending create ", opts.forget, " forgotten: its key creates again\n")
    return 0
  end
  if journal then -- the journal alone: no key, no network
    pending, err = client_for.load().pending(journal)
  else -- the store's records are the key's: its client reads them
    local client = client_for.new(ctx, opts, { store = store })
    pending, err = client:pending()
    client:close()
  end
  if not pending then return fail(ctx, err) end
  unreadable(ctx, journal)
  if ctx.json then
    local l = json.array()
    for i, p in ipairs(pending) do
      l[i] = { ["local"] = p["local"], model = p.model, prompt = p.prompt, prompt_hash = p.prompt_hash, time = p.time,
        out = p.out }
    end
    print_json(l)
    return 0
  end
  if #pending == 0 then out("no pending creates in ", ledger_name(opts), "\n") end
  for _, p in ipairs(pending) do
    out(string_format("%s  %s  %s  %s\n", p["local"], os_date("!%Y-%m-%dT%H:%M:%SZ", p.time or 0),
      tostring(p.model), p.prompt and ((p.prompt:gsub("%c", " "))) or "prompt " .. tostring(p.prompt_hash)))
  end
  if #pending > 0 then
    local at, note = opts.journal and "--journal " .. shell_word(opts.journal), nil
    if not at then at, note = output.store_of(opts) end
    out(string_format("%d create%s sent without an answer: check your account for these tasks, then settle each:"
      .. " `%s pending %s --adopt ID TASK_ID` records the task it made (its job then fetches the video, paying"
      .. " nothing), `%s pending %s --forget ID` one that made none (its job then creates again)%s\n", #pending,
      #pending == 1 and "" or "s", args.INVOKED, at, args.INVOKED, at, note or ""))
  end
  return 0
end

-- The journal without its settled tasks (starvideos.records.compact says what
-- stays): sizes and record counts before and after.
function M.compact(ctx, opts)
  local path = opts.journal
  local f, ferr = io_open(path, "r")
  if not f then usage_error("--journal: cannot read %s", tostring(ferr)) end
  f:close()
  if is_dir(path) then usage_error("--journal %s is a directory, not a journal", quote(path)) end
  local stats, err = require("starvideos.records.compact").compact(path)
  if not stats then return fail(ctx, output.new_error("io", err, { field = "journal" })) end
  if ctx.json then
    print_json { journal = path, before = { bytes = stats.before_bytes, records = stats.before_records },
      after = { bytes = stats.after_bytes, records = stats.after_records }, samples = stats.samples,
      counted = stats.counted, unsettled = stats.unsettled, unreadable = stats.bad }
    return 0
  end
  local function records(n) return string_format("%d record%s", n, n == 1 and "" or "s") end
  out(string_format("%s: %d bytes, %s before; %d bytes, %s after\n", path, stats.before_bytes,
    records(stats.before_records), stats.after_bytes, records(stats.after_records)))
  out(string_format("kept: %d unsettled task%s whole, %d settled task%s as schedule samples, the time of %d "
    .. "settled create%s (create_limit, tenant_limit); %d unreadable line%s dropped\n", stats.unsettled,
    stats.unsettled == 1 and "" or "s", stats.samples, stats.samples == 1 and "" or "s", stats.counted,
    stats.counted == 1 and "" or "s", stats.bad, stats.bad == 1 and "" or "s"))
  return 0
end

return M
