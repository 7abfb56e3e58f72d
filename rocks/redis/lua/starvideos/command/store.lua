-- `starvideos store check URL [--replicas N]` and `starvideos store hold URL [--clear]` in the starvideos-redis
-- rock: a command of the core's command point (docs/architecture.md, "Extension points"; docs/cli.md#store-check).
-- usage: its arguments, flags, help and example, which the core's parser and help read; run(cli, opts, pos): the
-- command, handed cli (the command line's words, outputs and the key's hash, so that it requires none of the
-- core's modules) -> the exit status: check 0 when the store is usable, 1 when it is not, 2 for a bad URL.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
require "starvideos.needs.redis" -- (a core outside this rock's range refused: rocks/needs.lua)

local ipairs, tostring, tonumber, string_format = ipairs, tostring, tonumber, string.format

local M = {}

M.usage = {
  args = { "check|hold", "URL" },
  flags = { -- (the core's parser reads them as its own: kind, meta, text)
    { name = "replicas", kind = "int", meta = "N",
      text = "the replicas the fleet's records wait for (store = {replicas = N}): fewer online is not usable" },
    { name = "clear", kind = "bool", text = "store hold: delete the key's hold (a rate limit's; an hour at most)" },
  },
  client = true, -- (and the client's flags: --base-url, --api-key-file, --proxy, --log)
  summary = "check a fleet's Redis: what it reaches, its role, replicas and persistence; warns of settings that "
    .. "can lose records; exit 1 when it is not usable. hold: the rate limit's hold on the key "
    .. "($STARVIDEOS_API_KEY) there, --clear deletes it",
  example = "starvideos store check redis://127.0.0.1:6379 --replicas 1",
}

-- The report's persistence and what follows it (TLS, user, role, replicas, sentinels, cluster), onto l.
local function reached(r, l)
  local t = r.tls
  if t then
    l[#l + 1] = string_format("tls: %s %s, certificate of %s issued by %s", tostring(t.version), tostring(t.cipher),
      tostring(t.subject), tostring(t.issuer))
  end
  l[#l + 1] = "user: " .. tostring(r.user)
  l[#l + 1] = r.online and string_format("role: %s, %d of %d replicas online (records wait for %d)",
    tostring(r.role), r.online, #r.replicas, r.asked) or "role: " .. tostring(r.role) .. ", replicas unknown"
  for _, x in ipairs(r.replicas or {}) do
    l[#l + 1] = string_format("  replica %s: %s, %s, %s bytes behind%s", x.address, tostring(x.state),
      x.lag and "acknowledged " .. x.lag .. " s ago" or "lag unknown", tostring(x.behind),
      x.user and ", the user " .. x.user or "")
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

-- The report of `store check` for a person, a line each.
function M.lines(r)
  local l = { "store " .. r.where }
  local s = r.server
  if s then
    l[#l + 1] = string_format("server: Redis %s (%s), run id %s", tostring(s.version), tostring(s.mode),
      tostring(s.run_id))
  end
  if r.persistence then reached(r, l) end
  for _, w in ipairs(r.warnings) do l[#l + 1] = string_format("warning (%s): %s", w.setting, w.message) end
  l[#l + 1] = r.usable and "usable" or "not usable: " .. tostring(r.error)
  return l
end

-- The report as the --json document (docs/cli.md#store-check), array: the command line's JSON array mark: its
-- lists as JSON arrays, and each persistence setting it could not read "unknown", as the text says.
function M.document(report, array)
  report.replicas, report.warnings = array(report.replicas or {}), array(report.warnings or {})
  report.refused = array(report.refused or {})
  if report.sentinels then report.sentinels = array(report.sentinels) end
  if report.cluster then report.cluster.primaries = array(report.cluster.primaries) end
  local p = report.persistence
  if p then
    for _, k in ipairs { "appendonly", "appendfsync", "maxmemory_policy" } do p[k] = p[k] or "unknown" end
  end
  return report
end

-- The hold the service's rate limit left on the key of key_hash (key.lua's hash_of) in the store at url: the
-- seconds left on Redis' clock (0: none), or nil, err; with clear, it is deleted (the seconds it had left).
function M.hold(url, key_hash, clear)
  local st = require("starvideos.fleet.store").new(url, { timeout = 5 })
  local name = require("starvideos.fleet.budget").key(key_hash, "hold")
  local t, err = st:call("TIME")
  local untl = t and st:call("GET", name)
  if t and clear and untl then st:call("DEL", name) end
  st:close()
  if not t then return nil, err end
  local left = tonumber(untl) and tonumber(untl) - (tonumber(t[1]) + tonumber(t[2]) / 1e6)
  return left and left > 0 and left or 0
end

-- `store hold URL [--clear]`: the hold a rate limit left on the key (STARVIDEOS_API_KEY's, of the base URL), shown
-- and with --clear deleted (a hold is an hour at most: docs/reference.md, "Rate limits").
local function hold(cli, opts, url)
  local left, err = M.hold(url, cli.key_hash(), opts.clear)
  if not left then
    cli.err(cli.prog, " store: ", tostring(err and err.message or err), "\n")
    return 1
  end
  local said = left > 0 and string_format("%.0f s left", left) or "none"
  if cli.json then cli.print_json { hold = left, cleared = opts.clear and left > 0 or false }
  else cli.out("the key's hold: ", said, opts.clear and left > 0 and " (cleared)" or "", "\n") end
  return 0
end

function M.run(cli, opts, pos)
  local usage_error = cli.usage_error
  if pos[1] ~= "check" and pos[1] ~= "hold" then -- (the command as it was typed: cli.invoked, bin/starvideos)
    local meant, typed = cli.nearest and cli.nearest(pos[1], { "check", "hold" }), cli.invoked or cli.prog
    usage_error("store's subcommands are check and hold (%s store check URL, %s store hold URL [--clear]), got %s%s",
      typed, typed, cli.quote(pos[1]), meant and " (did you mean " .. meant .. "?)" or "")
  end
  if (opts.replicas or 0) < 0 then usage_error("--replicas expects a whole number >= 0, got %d", opts.replicas) end
  local ok, why = cli.protect(cli.check_store, pos[2])
  if not ok or why then usage_error("URL %s", (tostring(why):gsub("^store ", ""))) end
  if pos[1] == "hold" then return hold(cli, opts, pos[2]) end
  local report = require("starvideos.fleet.check").run(pos[2], { replicas = opts.replicas })
  if cli.json then
    cli.print_json(M.document(report, cli.array))
  else
    cli.out(table.concat(M.lines(report), "\n"), "\n")
  end
  return report.usable and 0 or 1
end

return M
