-- starvideos.cli.spend: `starvideos spend (--journal PATH | --store URL) --spend-limit JSON [--prices JSON]
-- [--tenant T] [--json]` (docs/cli.md, "spend"): each limit's spend in its window now, as client:spend() counts it in
-- the ledger; and the same lines after `starvideos list --spend-limit JSON`.

local output = require "starvideos.cli.output"
local json = require "starvideos.cli.json"

local type, ipairs, tostring = type, ipairs, tostring
local os_date, string_format, math_floor = os.date, string.format, math.floor
local out = output.out

local M = {}

local function amount(n) return string_format("%.14g", n) end

-- Whose spend an entry counts: "the key", "model videos", "tenant \"alice\"", "every tenant (none spent yet)" (a
-- limit of every tenant before any spent in its window: client:spend()'s one entry of 0).
local function whose(e)
  if e.scope == "model" then return "model " .. tostring(e.model) end
  if e.scope == "tenant" and e.tenant == nil then return "every tenant (none spent yet)" end
  if e.scope == "tenant" then return string_format("tenant %q", tostring(e.tenant)) end
  return "the key"
end

-- A limit's window: "per day", "per month", "per 3600 s", "in the ledger's life".
local function window(per)
  if per == nil then return "in the ledger's life" end
  if type(per) == "number" then return string_format("per %s s", amount(per)) end
  return "per " .. tostring(per)
end

-- One line an entry of client:spend(): "the key, per day: 0.8 spent, 0.4 reserved, of 2; resets 2026-11-28 00:00:00
-- UTC (in 3600 s)".
function M.line(e, now)
  local at = e.resets_at and math_floor(e.resets_at) -- (a per of 1.5 s ends windows between seconds)
  local resets = at and string_format("resets %s (in %d s)", os_date("!%Y-%m-%d %H:%M:%S UTC", at), at - now)
    or "never resets"
  return string_format("%s, %s: %s spent, %s reserved, of %s; %s", whose(e), window(e.limit and e.limit.per),
    amount(e.spent), amount(e.reserved), amount(e.amount), resets)
end

-- client:spend()'s list printed: a line each (`--json`: an object a line, jsonl: list's own form, or one array).
function M.print(list, as_json, lines)
  if as_json and lines then
    for _, e in ipairs(list) do out(json.encode(e), "\n") end
    return
  end
  if as_json then return output.print_json(json.array(list)) end
  if not list[1] then
    out("nothing spent in any limit's window now (a limit of every tenant lists each tenant that spent)\n")
  end
  local now = os.time()
  for _, e in ipairs(list) do out(M.line(e, now), "\n") end
end

-- The spend command: the ledger's client with the limits (cli/commands.lua's ledger_reader), its spend printed.
function M.run(ctx, opts, reader)
  local client = reader(ctx, opts)
  local list, err = client:spend { tenant = opts.tenant }
  if not list then return output.report(ctx, err) end
  M.print(list, ctx.json)
  return 0
end

return M
