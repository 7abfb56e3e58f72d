-- starvideos.cli.plan: what `--dry-run` prints (batch, generate, resume, keep): a plan of the library
-- (client:plan, or resume's and keep's dry_run), a line per entry (its action, its name, model, price, why),
-- then the totals; or under --json one document.  Nothing here decides: the library's plan is printed as it is.

local output = require "starvideos.cli.output"
local json = require "starvideos.cli.json"

local ipairs, pairs, tostring = ipairs, pairs, tostring
local string_format, string_rep, table_concat, table_sort = string.format, string.rep, table.concat, table.sort
local out = output.out

local M = {}

local function amount(n) return string_format("%.14g", n) end

-- Why an entry does what it does, for a person.
local function why(e)
  local r = e.reason
  if e.err then -- (its kind once: "spend_limited: --spend-limit: ...")
    local said = output.describe(e.err)
    return said:sub(1, #r + 2) == r .. ": " and said or r .. ": " .. said
  end
  if r == "failed before" then return "its task " .. tostring(e.id) .. " failed before: a new paid create" end
  if r == "abandoned before" then return "its create was abandoned before (it made nothing)" end
  if r == "new" then return "new: the ledger knows no task of its key" end
  if r == "fresh" then return "--fresh: a new paid create, whatever the ledger holds of its key" end
  if r == "no key" then return "no key: every run creates it" end
  if r == "no ledger" then return "no ledger: every run creates it" end
  if r == "created before" then return "task " .. tostring(e.id) .. ", created before: followed, then downloaded" end
  if r == "saved" then return "task " .. tostring(e.id) .. ", saved: its file is whole" end
  if r == "unfinished" or r == "orphaned" then
    return string_format("task %s, %s: to %s%s", tostring(e.id), r == "orphaned"
      and "its owner " .. tostring(e.from or "?") .. " let go" or "unfinished", tostring(e.out),
      e.saved_to == "dir" and " (no writable out recorded)" or "")
  end
  return r
end

-- "2 creates of videos, cost 0.8; ..." (one model), "3 creates (2 of videos, cost 0.8; 1 of videos_fast, price
-- unknown), cost unknown (a model without a price: --prices); 1 download; 2 left as they are (1 create refused by
-- --spend-limit); nothing was sent".
local function totals(plan)
  local models, parts = {}, {}
  for m in pairs(plan.by_model) do models[#models + 1] = m end
  table_sort(models)
  for _, m in ipairs(models) do
    local b = plan.by_model[m]
    parts[#parts + 1] = string_format("%d of %s, %s", b.creates, m, b.cost and "cost " .. amount(b.cost)
      or "price unknown")
  end
  local none, refused = #plan.entries - plan.creates - plan.downloads, plan.refused or 0
  local made = #models == 1 and " of " .. models[1] or parts[1] and " (" .. table_concat(parts, "; ") .. ")" or ""
  return string_format("%d create%s%s, cost %s; %d download%s; %d %s%s; nothing was sent", plan.creates,
    plan.creates == 1 and "" or "s", made,
    plan.cost and amount(plan.cost) or "unknown (a model without a price: --prices)", plan.downloads,
    plan.downloads == 1 and "" or "s", none, none == 1 and "left as it is" or "left as they are",
    refused > 0 and string_format(" (%d create%s refused by --spend-limit)", refused, refused == 1 and "" or "s")
    or "")
end

-- plan printed: name(e) names each entry (a file and its line, a task id); as_json: one document.
function M.print(plan, name, as_json)
  if as_json then
    local list = json.array()
    for i, e in ipairs(plan.entries) do
      list[i] = { index = e.index, name = name(e), action = e.action, reason = e.reason, model = e.model,
        price = e.price, id = e.id, out = e.out, key = e.key, ["local"] = e["local"], saved_to = e.saved_to,
        error = e.err and output.error_object(e.err), warnings = e.warnings and json.array(e.warnings) }
    end
    output.print_json { entries = list, creates = plan.creates, downloads = plan.downloads, refused = plan.refused,
      by_model = plan.by_model, cost = plan.cost, worst = plan.worst, dry_run = true }
    return 0
  end
  if plan.spend_error then -- (each create then counted from nothing spent)
    output.err("starvideos: warning: the spend now could not be read (", plan.spend_error, "): the plan counts the "
      .. "spend limits from nothing spent\n")
  end
  local header = {}
  for word in ("ACTION ENTRY MODEL PRICE WHY"):gmatch("%S+") do header[#header + 1] = word end
  local rows, width = { header }, { 6, 5, 5, 5 } -- (the header first)
  for _, e in ipairs(plan.entries) do
    local priced = e.action == "create" or e.reason == "spend_limited" -- (a refused create: the price it would cost)
    local price = not priced and "-" or e.price and amount(e.price) or "unknown"
    rows[#rows + 1] = { e.action, name(e), e.model or "-", price, why(e), warnings = e.warnings }
    for k = 1, 4 do width[k] = math.max(width[k], #rows[#rows][k]) end
  end
  if not plan.entries[1] then rows = {} end -- (nothing to list: the totals alone)
  for _, r in ipairs(rows) do
    local cells = {}
    for k = 1, 4 do cells[k] = r[k] .. string_rep(" ", width[k] - #r[k]) end
    cells[5] = r[5]
    out(table_concat(cells, "  "), "\n")
    for _, w in ipairs(r.warnings or {}) do out("  warning: ", w.message, "\n") end -- (what the service will ignore)
  end
  out(totals(plan), "\n")
  local w = plan.worst -- (--fallback: every model tried)
  if w then out(string_format("worst case with --fallback (every model tried): %d create%s, cost %s\n", w.creates,
    w.creates == 1 and "" or "s", w.cost and amount(w.cost) or "unknown (a model without a price: --prices)")) end
  return 0
end

return M
