-- starvideos.cli.lineage: videos that build on videos on the command line (docs/cli.md; the library's
-- lineage.lua and film.lua): `again ID`, `remix ID`, `continue ID --last-image URL`, each with --out PATH and the
-- request flags, run as generate runs; `film FILE --out PATH [--dry-run]`, a storyboard's shots made and joined;
-- and `list --tree`'s lines, each task's children indented under it with their relation.

local args = require "starvideos.cli.args"
local output = require "starvideos.cli.output"
local json = require "starvideos.cli.json"
local display = require "starvideos.cli.display"
local client_for = require "starvideos.cli.client"
local visible = require("starvideos.shell").visible

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local io_open, string_format, string_rep, table_concat = io.open, string.format, string.rep, table.concat
local out, usage_error, quote = output.out, args.usage_error, args.quote

local M = {}

-- The ledger's client of a command of this file (--journal or --store: the parent is looked up there).
local function ledger_client(ctx, opts)
  local journal, store = client_for.ledger(opts)
  return client_for.new(ctx, opts, { journal = journal, store = store })
end

-- again, remix and continue: the library's call of that name, ID the parent, the request flags its params (again's:
-- the recorded params they change, only those given), run to the new video's --out as generate runs.
local function child(how)
  return function(ctx, opts, pos)
    if how == "continue" and opts["last-image"] == nil then
      usage_error("--last-image URL|PATH is required: the API takes the first image (task %s's last frame) only "
        .. "beside a last image (nothing was sent)", visible(tostring(pos[1]), true))
    end
    local commands = require "starvideos.cli.commands"
    -- (the new file as the ledger records it, an absolute path: the parent's own, named relatively, is refused)
    opts.out = require("starvideos.sink").recorded(opts.out)
    local params = args.request_params(opts)
    if opts.extra then params.extra = commands.extra_of(opts.extra) end
    local client, core = ledger_client(ctx, opts)
    return commands.generated(ctx, opts, core, function(o) return client[how](client, pos[1], params, o) end)
  end
end
M.again, M.remix, M.continue = child("again"), child("remix"), child("continue")

-- ------------------------------------------------------------------ film

local REFS = { first_image = true, last_image = true, referenceImages = true, referenceVideos = true,
  referenceAudios = true }

-- A reference of a shot as the library takes it: a URL (scheme://...), else a local file's path, {file = path}, as
-- the reference flags' values are (args.request_params).
local function reference(v)
  if type(v) == "string" and not v:find("^%a[%w+.-]*://") then return { file = v } end
  return v
end

-- Shot i of the storyboard as the library takes it: its fields (nulls dropped, whole numbers integers), each
-- reference a URL or a file.
local function shot_of(file, i, s)
  if type(s) ~= "table" or s[1] ~= nil then
    usage_error("%s: shot %d: a JSON object of params expected ({\"prompt\": ..., \"model\": ...})", file, i)
  end
  local shot = client_for.without_nulls(s, 1)
  for k in pairs(REFS) do
    if type(shot[k]) == "table" then
      for j, r in ipairs(shot[k]) do shot[k][j] = reference(r) end
    elseif shot[k] ~= nil then
      shot[k] = reference(shot[k])
    end
  end
  return shot
end

-- The storyboard FILE read and checked, every shot's request valid, before anything is sent: its shots, or a usage
-- error naming FILE and the shot.
local function storyboard(file)
  local input = require "starvideos.cli.input"
  local f, ferr = io_open(file, "rb")
  local text, big, code
  if f then text, big, code = input.read(f, input.LIMITS.storyboard); f:close() end
  if big and not code then usage_error("%s: the storyboard is %s (its limit)", quote(file), big) end
  ferr = ferr or big
  if type(text) ~= "string" then usage_error("%s: cannot read the storyboard (%s)", quote(file), tostring(ferr)) end
  local doc, why = require("cjson.safe").decode(text)
  if doc == nil then usage_error("%s: not JSON (%s)", file, tostring(why)) end
  if type(doc) ~= "table" or type(doc.shots) ~= "table" or doc.shots[1] == nil then
    usage_error("%s: a JSON object {\"shots\": [{\"prompt\": ..., \"model\": ...}, ...]} with at least one shot "
      .. "expected", file)
  end
  local shots = {}
  for i, s in ipairs(doc.shots) do
    local shot = shot_of(file, i, s)
    if shot.continue ~= nil and type(shot.continue) ~= "boolean" then
      usage_error("%s: shot %d: \"continue\" expects true or false, got %s", file, i, type(shot.continue))
    elseif shot.continue and i == 1 then
      usage_error("%s: shot 1: \"continue\": the first shot has no shot before it to continue", file)
    elseif shot.remix ~= nil and (type(shot.remix) ~= "number" or shot.remix % 1 ~= 0 or shot.remix < 1
      or shot.remix >= i) then
      usage_error("%s: shot %d: \"remix\" expects the number of a shot before it (1 to %d)", file, i, i - 1)
    elseif shot.remix and shot.continue then
      usage_error("%s: shot %d: a shot either continues the one before or remixes one, not both", file, i)
    elseif shot.continue and shot.last_image == nil then
      usage_error("%s: shot %d: \"continue\" needs the shot's \"last_image\" (the API takes the shot before's last "
        .. "frame as its first image only beside one)", file, i)
    end
    shots[i] = shot
  end
  client_for.load()
  local ok, err = require("starvideos.film").requests(shots) -- (each as it will be sent, by its model's rules)
  if not ok then usage_error("%s: %s%s", file, err.shot and "shot " .. err.shot .. ": " or "", err.message) end
  return shots
end

-- The film's error err told (its shot named in FILE's words), and the exit status: 1 once a shot is made (paid
-- for), whatever the shot after it, or the join, met.
local function film_failed(ctx, file, err)
  if err.shot then
    err.message = string_format("%s: shot %d: %s", file, err.shot, (err.message:gsub("^film: shot %d+: ", "")))
  end
  local code = output.report(ctx, err)
  return err.made and code == 2 and 1 or code
end

-- The film's plan (client:film's dry_run) printed: a line a shot, then the creates and their cost.
local function print_plan(plan, prices, as_json)
  for _, s in ipairs(plan.shots) do s.price = s.action == "create" and prices[s.model] or nil end
  if as_json then
    output.print_json { shots = json.array(plan.shots), creates = plan.creates, cost = plan.cost, worst = plan.worst,
      dry_run = true }
    return 0
  end
  local rows, width = { { "SHOT", "ACTION", "MODEL", "PRICE", "FILE" } }, { 4, 6, 5, 5 }
  for _, s in ipairs(plan.shots) do
    local price = s.action ~= "create" and "-" or s.price and string_format("%.14g", s.price) or "unknown"
    local said = s.action == "none" and " (made already)" or s.action == "download" and " (created before: followed)"
    rows[#rows + 1] = { tostring(s.index), s.action, tostring(s.model or "-"), price,
      s.path .. (s.continues and " (continues shot " .. (s.index - 1) .. ")" or "")
        .. (s.remixes and " (remixes shot " .. s.remixes .. ")" or "") .. (said or "") }
    for k = 1, 4 do width[k] = math.max(width[k], #rows[#rows][k]) end
  end
  for _, r in ipairs(rows) do
    local cells = {}
    for k = 1, 4 do cells[k] = r[k] .. string_rep(" ", width[k] - #r[k]) end
    cells[5] = r[5]
    out(table_concat(cells, "  "), "\n")
  end
  local made, followed = 0, 0
  for _, s in ipairs(plan.shots) do
    if s.action == "none" then made = made + 1 elseif s.action == "download" then followed = followed + 1 end
  end
  out(string_format("%d shot%s: %d create%s, cost %s; %d made already%s; nothing was sent\n", #plan.shots,
    #plan.shots == 1 and "" or "s", plan.creates, plan.creates == 1 and "" or "s",
    plan.cost and string_format("%.14g", plan.cost) or "unknown (a model without a price: --prices)", made,
    followed > 0 and string_format(", %d created before (followed, nothing paid)", followed) or ""))
  local w = plan.worst -- (--fallback: every model tried)
  if w then out(string_format("worst case with --fallback (every model tried): %d create%s, cost %s\n", w.creates,
    w.creates == 1 and "" or "s", w.cost and string_format("%.14g", w.cost) or "unknown (a model without a price: "
    .. "--prices)")) end
  return 0
end

-- The film made: each shot's task and file, then the film's (--json: {path, copied, shots}).
local function print_film(made, as_json)
  for _, t in ipairs(made.shots) do t.warnings = json.array(t.warnings) end
  if as_json then
    output.print_json { path = made.path, copied = made.copied, shots = json.array(made.shots) }
    return 0
  end
  for i, t in ipairs(made.shots) do
    out(string_format("shot %d: task %s%s, %s\n", i, tostring(t.id), t.parent and string_format(" (%s %s)",
      t.relation == "remix" and "remixes" or "continues", t.parent) or "", display.saved_line(t.path or "?")))
  end
  out(display.saved_line(made.path, made.bytes), string_format(": %d shots joined, %s\n", #made.shots, made.copied
    and "by a stream copy" or "re-encoded (the shots differ in codec, size or frame rate)"))
  return 0
end

function M.film(ctx, opts, pos)
  local file = pos[1]
  local shots = storyboard(file)
  local client, core = ledger_client(ctx, opts)
  if opts["dry-run"] then
    local plan, err = client:film(shots, { out = opts.out, tenant = opts.tenant, dry_run = true,
      fallback = args.models(opts.fallback) })
    if not plan then return film_failed(ctx, file, err) end
    return print_plan(plan, client.cfg.prices or {}, ctx.json)
  end
  local command, note = output.same_command("film", opts, pos)
  ctx.hint = string_format("`%s` goes on: it pays for no shot made before%s", command, note)
  output.watch(ctx)
  local d = display.for_command(ctx.json, core.isatty)
  ctx.display = d
  d.started = core.now()
  d:live("making the film's shots...")
  local made, err = client:film(shots, { out = opts.out, tenant = opts.tenant, interval = opts.interval,
    timeout = opts.timeout, resend = opts.resend, fallback = args.models(opts.fallback),
    on_progress = function(ev) d:event(ev, core.now()) end })
  if not made then
    d:finish(false)
    return film_failed(ctx, file, err)
  end
  d:finish(true)
  return print_film(made, ctx.json)
end

-- ------------------------------------------------------------ list --tree

-- tasks in the tree's order, each with its depth: a task whose parent is listed goes under it (its children in
-- the ledger's order), every other one is a root.  A walk with a stack of its own, each task once: a chain of any
-- length is walked in its length's time, with no Lua call a generation.
local function tree_order(tasks)
  local by_id, kids, order, seen = {}, {}, {}, {}
  for _, t in ipairs(tasks) do if t.id then by_id[t.id] = t end end
  for _, t in ipairs(tasks) do
    local p = t.parent and by_id[t.parent]
    if p and p ~= t then kids[p] = kids[p] or {}; kids[p][#kids[p] + 1] = t end
  end
  local function walk(root)
    if seen[root] then return end
    local stack = { root }
    root.depth = 0
    while stack[1] do
      local t = table.remove(stack)
      if not seen[t] then
        seen[t] = true
        order[#order + 1] = t
        local ks = kids[t] or {}
        for i = #ks, 1, -1 do
          if not seen[ks[i]] then ks[i].depth = t.depth + 1; stack[#stack + 1] = ks[i] end
        end
      end
    end
  end
  for _, t in ipairs(tasks) do
    if not (t.parent and by_id[t.parent]) then walk(t) end
  end
  for _, t in ipairs(tasks) do walk(t) end -- (a loop of parents, which no root reaches)
  return order
end

-- A line's indent: two spaces a generation up to INDENT generations; a deeper one's is INDENT's, then its depth in
-- brackets ("[21] "), so that a line's length stays its own, whatever the chain's length.
local INDENT = 20
local function indent(depth)
  if depth <= INDENT then return string_rep("  ", depth) end
  return string_rep("  ", INDENT) .. "[" .. depth .. "] "
end

-- s without its trailing spaces, in its length's time (a pattern's "%s+$" tries again from each space).
local function trimmed(s)
  local i = #s
  while i > 0 and s:find("^%s", i) do i = i - 1 end
  return s:sub(1, i)
end

-- `list --tree`: each task's line (its relation first, under its parent), then the count by state; --json: an
-- object a line in the same order, with its depth.
function M.print_tree(tasks, as_json, tty)
  local order = tree_order(tasks)
  if as_json then
    for _, t in ipairs(order) do out(json.encode(t), "\n") end
    return
  end
  local room = tty and display.terminal_width() - 1 or math.huge
  local function shown(v) return visible(tostring(v), true) end -- (a ledger's text: no ESC reaches the terminal)
  for _, t in ipairs(order) do
    local how = t.relation and (t.depth > 0 and shown(t.relation) .. ": " or shown(t.relation) .. " of "
      .. shown(t.parent) .. ": ") or ""
    local line = indent(t.depth) .. trimmed(string_format("%s%s  %s  %s  %s  %s", how, shown(t.id or t["local"]),
      shown(t.state), shown(t.model or "-"), shown(t.path or t.out or "-"), (t.prompt or ""):gsub("%c", " ")))
      -- (a compacted task has no prompt)
    out(#line > room and line:sub(1, room) or line, "\n")
    if t.error then out(indent(t.depth + 1), "error: ", tostring(t.error), "\n") end
  end
  out(display.count_line(tasks), "\n")
end

return M
