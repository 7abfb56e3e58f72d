-- starvideos.cli.store: `starvideos store check URL [--replicas N]`, what a store reaches
-- (rocks/redis/lua/starvideos/fleet/check.lua) for a person or as one --json document; exit 0 when the store is usable,
-- 1 when it is not, 2 for a bad URL.

local args = require "starvideos.cli.args"
local output = require "starvideos.cli.output"
local protect = require("starvideos.interrupt").pcall -- (a pcall that lets Ctrl-C through)
local json = require "starvideos.cli.json"

local ipairs, tostring, string_format = ipairs, tostring, string.format
local out = output.out

local M = {}

local function lines(r)
  local l = { "store " .. r.where }
  local s = r.server
  if s then
    l[#l + 1] = string_format("server: Redis %s (%s), run id %s", tostring(s.version), tostring(s.mode),
      tostring(s.run_id))
  end
  if r.persistence then
    local t = r.tls
    if t then
      l[#l + 1] = string_format("tls: %s %s, certificate of %s issued by %s", tostring(t.version), tostring(t.cipher),
        tostring(t.subject), tostring(t.issuer))
    end
    l[#l + 1] = "user: " .. tostring(r.user)
    l[#l + 1] = r.online and string_format("role: %s, %d of %d replicas online (records wait for %d)",
      tostring(r.role), r.online, #r.replicas, r.asked) or "role: " .. tostring(r.role) .. ", replicas unknown"
    for _, x in ipairs(r.replicas or {}) do
      l[#l + 1] = string_format("  replica %s: %s, %s, %s bytes behind", x.address, tostring(x.state),
        x.lag and "acknowledged " .. x.lag .. " s ago" or "lag unknown", tostring(x.behind))
    end
    for _, x in ipairs(r.sentinels or {}) do
      l[#l + 1] = x.error and string_format("sentinel %s: %s", x.address, x.error) or string_format("sentinel %s: "
        .. "master %s (%s), %s replicas, %s sentinels, quorum %s, down after %s ms", x.address, x.master,
        tostring(x.flags), tostring(x.replicas), tostring(x.sentinels), tostring(x.quorum), tostring(x.down_after))
    end
    local c = r.cluster
    if c then
      l[#l + 1] = string_format("cluster: %s, %s of 16384 slots ok, %s primaries, %s nodes", tostring(c.state),
        tostring(c.slots_ok), tostring(c.size), tostring(c.nodes))
      for _, p in ipairs(c.primaries) do
        l[#l + 1] = string_format("  primary %s: slots %s, %d replicas", p.address, p.slots, p.replicas)
      end
    end
    local p = r.persistence
    l[#l + 1] = string_format("persistence: appendonly %s, appendfsync %s, maxmemory-policy %s",
      p.appendonly or "unknown", p.appendfsync or "unknown", p.maxmemory_policy or "unknown")
    l[#l + 1] = "write: " .. tostring(r.write)
  end
  for _, w in ipairs(r.warnings) do l[#l + 1] = string_format("warning (%s): %s", w.setting, w.message) end
  l[#l + 1] = r.usable and "usable" or "not usable: " .. tostring(r.error)
  return l
end

-- The report as the --json document (docs/cli.md#store-check): its lists as JSON arrays, and each persistence
-- setting it could not read "unknown", as the text says.
function M.document(report)
  report.replicas, report.warnings = json.array(report.replicas or {}), json.array(report.warnings or {})
  report.refused = json.array(report.refused or {})
  if report.sentinels then report.sentinels = json.array(report.sentinels) end
  if report.cluster then report.cluster.primaries = json.array(report.cluster.primaries) end
  local p = report.persistence
  if p then
    for _, k in ipairs { "appendonly", "appendfsync", "maxmemory_policy" } do p[k] = p[k] or "unknown" end
  end
  return report
end

-- `store hold URL [--clear]`: the hold a rate limit left on the key (STARVIDEOS_API_KEY's, of the base URL), shown
-- and with --clear deleted (a hold is an hour at most: docs/reference.md, "Rate limits").
local function hold(ctx, opts, url, ext)
  local c = require("starvideos.cli.client").new(ctx, opts, nil)
  local hash = c.ctx.key.hash -- (the key's name in the store: key.lua's hash_of its base URL and key)
  c:close()
  local left, err = ext.hold(url, hash, opts.clear)
  if not left then
    output.err(args.PROG, " store: ", tostring(err and err.message or err), "\n")
    return 1
  end
  local said = left > 0 and string_format("%.0f s left", left) or "none"
  if ctx.json then output.print_json { hold = left, cleared = opts.clear and left > 0 or false }
  else out("the key's hold: ", said, opts.clear and left > 0 and " (cleared)" or "", "\n") end
  return 0
end

function M.run(ctx, opts, pos)
  if pos[1] ~= "check" and pos[1] ~= "hold" then
    args.usage_error("store's subcommands are check and hold (starvideos store check URL, starvideos store hold "
      .. "URL [--clear]), got %s", args.quote(pos[1]))
  end
  if (opts.replicas or 0) < 0 then args.usage_error("--replicas expects a whole number >= 0, got %d", opts.replicas) end
  local ok, why = protect(require("starvideos.store_option").check, pos[2])
  if not ok or why then args.usage_error("URL %s", (tostring(why):gsub("^store ", ""))) end
  local check, xerr = require("starvideos.extension").find("command", "store", "starvideos store " .. pos[1])
  if not check then args.usage_error("%s", xerr.message) end
  if pos[1] == "hold" then return hold(ctx, opts, pos[2], check) end
  local report = check.run(pos[2], { replicas = opts.replicas })
  if ctx.json then
    output.print_json(M.document(report))
  else
    out(table.concat(lines(report), "\n"), "\n")
  end
  return report.usable and 0 or 1
end

return M
