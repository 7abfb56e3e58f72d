-- What a store reaches, for an operator (the command line's `starvideos store check URL`, docs/cli.md): the
-- server, its TLS and certificate, the user, its role, its replicas and their lag, Sentinel's and Cluster's view,
-- its persistence settings, whether a script may write there, and a warning for each setting that can lose records.
--   check.run(url, {replicas = N, timeout = s}) -> report: {where, usable, error (why it is not), server =
--     {version, mode, run_id, os}, tls = {version, cipher, subject, issuer}, user, role, replicas = {{address,
--     state, offset, lag, behind}...}, online, asked, sentinels = {{address, master, flags, replicas, sentinels,
--     quorum, down_after} | {address, error}...}, cluster = {state, slots_ok, size, nodes, primaries =
--     {{address, slots = "0-5460,...", replicas}...}},
--     persistence = {appendonly, appendfsync, maxmemory_policy}, write, warnings = {{setting =, message =}...}}

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local Store = require "starvideos.fleet.store"
local Route = require "starvideos.fleet.route"

local type, tostring, tonumber, ipairs, string_format = type, tostring, tonumber, ipairs, string.format

local C = {}

-- A probe: one key of its own (never a fleet's), written by a script and gone a second later.
Store.define("check_write", "redis.call('SET', KEYS[1], ARGV[1], 'PX', 1000) return 1")

-- Every command the fleet's scripts run (fleet/scripts.lua, budget.lua, identity.lua), tried in one script on
-- probe keys of its own, in one hash slot and no fleet's (KEYS: starvideos:check:{probe}:s, :n, :h, :l, :t, :z;
-- each gone a second later):
-- the ones the user may not run (or the server does not know) answered, "NAME: why" each.  (redis.pcall: a
-- refusal is an answer there, not an error of the script.)
C.PROBES = {}
for i, what in ipairs { "s", "n", "h", "l", "t", "z", "x" } do C.PROBES[i] = "starvideos:check:{probe}:" .. what end
Store.define("check_commands", [=[
local refused = {}
local s, n, h, l, t, z, x = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local tries = {
  {'TIME'}, {'SET', s, '1', 'PX', 1000}, {'GET', s}, {'EXISTS', s}, {'TYPE', s}, {'EXPIRE', s, 1},
  {'PEXPIRE', s, 1000}, {'PTTL', s}, {'INCR', n}, {'PEXPIRE', n, 1000},
  {'HSET', h, 'f', '1'}, {'PEXPIRE', h, 1000}, {'HSETNX', h, 'g', '1'}, {'HGET', h, 'f'}, {'HMGET', h, 'f'},
  {'HGETALL', h}, {'HEXISTS', h, 'f'}, {'HKEYS', h}, {'HINCRBY', h, 'c', 1}, {'HDEL', h, 'g'},
  {'LPUSH', l, 'x'}, {'PEXPIRE', l, 1000}, {'LRANGE', l, 0, 0}, {'LTRIM', l, 0, 0},
  {'SADD', t, 'x'}, {'PEXPIRE', t, 1000}, {'SMEMBERS', t}, {'SREM', t, 'x'},
  {'ZADD', z, 1, 'x'}, {'PEXPIRE', z, 1000}, {'ZCARD', z}, {'ZRANGE', z, 0, 0}, {'ZRANGEBYSCORE', z, 0, 1},
  {'ZSCORE', z, 'x'},
  {'ZREVRANGEBYSCORE', z, '+inf', '-inf'}, {'ZREMRANGEBYSCORE', z, '-inf', '-inf'}, {'ZREM', z, 'x'},
  {'XADD', x, 'MAXLEN', '~', 10, '*', 'e', '1'}, {'PEXPIRE', x, 1000}, {'XRANGE', x, '-', '+', 'COUNT', 1},
  {'XREVRANGE', x, '+', '-', 'COUNT', 1},
  {'DEL', s, n, h, l, t, z, x},
}
local seen = {}
for _, c in ipairs(tries) do
  local r = redis.pcall(unpack(c))
  if type(r) == 'table' and r.err and not seen[c[1]] and (r.err:find("can't run", 1, true)
    or r.err:find('NOPERM', 1, true) or r.err:lower():find('unknown', 1, true)) then
    seen[c[1]] = true
    refused[#refused + 1] = c[1] .. ': ' .. r.err
  end
end
return refused
]=])

-- INFO's lines (a section; or cmd's: CLUSTER INFO) as name -> value.
local function info(st, section, cmd)
  local v, err = st:call(cmd or "INFO", section)
  if type(v) ~= "string" then return nil, err end
  local t = {}
  for k, val in v:gmatch("([%w_]+):([^\r\n]*)") do t[k] = val end
  return t
end

-- The replicas INFO replication lists: {address, state, offset, lag (seconds since its last acknowledgement)}.
local function replicas_of(repl)
  local list = {}
  for i = 0, (tonumber(repl.connected_slaves) or 0) - 1 do
    local r = {}
    for k, val in (repl["slave" .. i] or ""):gmatch("(%w+)=([^,]*)") do r[k] = val end
    list[#list + 1] = { address = string_format("%s:%s", tostring(r.ip), tostring(r.port)), state = r.state,
      offset = tonumber(r.offset), lag = tonumber(r.lag),
      behind = tonumber(repl.master_repl_offset) and tonumber(r.offset)
        and tonumber(repl.master_repl_offset) - tonumber(r.offset) or nil }
  end
  return list
end

-- A CONFIG GET's value, or nil and why not (managed services often refuse CONFIG).
local function config_get(st, name)
  local v, err = st:call("CONFIG", "GET", name)
  if type(v) == "table" and v[2] ~= nil then return tostring(v[2]) end
  return nil, err and err.message or "no such setting"
end

local function warn(report, setting, message)
  report.warnings[#report.warnings + 1] = { setting = setting, message = message }
end

-- The persistence settings, and what each can lose.
local function persistence(st, report)
  local p, mem = info(st, "persistence") or {}, info(st, "memory") or {}
  local aof, why = config_get(st, "appendonly")
  aof = aof or (p.aof_enabled == "1" and "yes" or p.aof_enabled == "0" and "no" or nil)
  local fsync, fwhy = config_get(st, "appendfsync")
  local policy = mem.maxmemory_policy or config_get(st, "maxmemory-policy")
  report.persistence = { appendonly = aof, appendfsync = fsync, maxmemory_policy = policy }
  if aof ~= "yes" then
    warn(report, "appendonly", aof and "appendonly is " .. aof .. ": a restart of Redis loses every record written "
      .. "since its last snapshot (appendonly yes keeps them)"
      or "appendonly unknown (" .. tostring(why) .. "): check that the AOF is on")
  elseif fsync ~= "always" then
    warn(report, "appendfsync", fsync and "appendfsync is " .. fsync .. ": a crash of Redis (or of its host) can "
      .. "lose the last records written (appendfsync always keeps them)"
      or "appendfsync unknown (" .. tostring(fwhy) .. "): with everysec a crash can lose the last second of records")
  end
  if policy ~= "noeviction" then
    warn(report, "maxmemory-policy", "maxmemory-policy is " .. (policy or "unknown") .. ": Redis may evict "
      .. "records when its memory is full (noeviction refuses the write instead, "
      .. "and the record is written again later)")
  end
end

-- The role, the replicas and their lag, against the replicas asked (asked: records wait for that many).
local function replication(st, report, asked)
  local repl = info(st, "replication")
  if not repl then -- (INFO refused, as an ACL user's may be: ROLE's answer, or unknown)
    local role = st:call("ROLE")
    repl = { role = type(role) == "table" and ({ master = "master", slave = "slave" })[role[1]] or nil }
    if not repl.role then
      report.role = "unknown"
      warn(report, "role", "neither INFO nor ROLE may be asked: the role and replicas are unknown")
      return
    end
    local list = repl.role == "master" and type(role[3]) == "table" and role[3] or {}
    repl.connected_slaves, repl.master_repl_offset = #list, role[2]
    for i, r in ipairs(list) do -- ({ip, port, offset}: connected, their state and lag unknown)
      repl["slave" .. i - 1] = string_format("ip=%s,port=%s,state=connected,offset=%s", tostring(r[1]),
        tostring(r[2]), tostring(r[3]))
    end
  end
  report.role = repl.role
  report.replicas, report.online, report.asked = replicas_of(repl), 0, asked
  for _, r in ipairs(report.replicas) do
    if r.state == "online" or r.state == "connected" then report.online = report.online + 1 end
  end
  if repl.role ~= "master" then
    report.usable, report.error = false, string_format("its role is %s, not master: writes are refused there "
      .. "(READONLY)", tostring(repl.role))
  elseif report.online < asked then
    report.usable, report.error = false, string_format("%d replicas online, fewer than the %d records wait for "
      .. "(replicas = %d): no create would be sent", report.online, asked, asked)
  elseif report.online == 0 then
    warn(report, "replicas", "no replica: a failover has nothing to fail over to, and replicas = N (WAIT) nothing "
      .. "to wait for; a lost host loses the store")
  elseif asked < report.online then
    warn(report, "replicas", string_format("replicas = %d while %d are online: a failover to a replica that did "
      .. "not acknowledge a record loses it (replicas = %d waits for every one)", asked, report.online,
      report.online))
  end
end

-- What the fleet runs that this user may not (report.refused: {"COMMAND: why"...}): the scripts' commands (one
-- probe script), EVAL itself, WAIT (refused: not usable with replicas = N; else warned of), ROLE (Sentinel's
-- check of its master).  Each refusal makes the store not usable, naming them all.
local function commands(st, report, asked)
  local refused = {}
  local v, err = st:script("check_commands", C.PROBES, {})
  if type(v) == "table" then
    for _, r in ipairs(v) do refused[#refused + 1] = tostring(r) end
  elseif err and err.reply and Route.final(err.reply) then
    refused[#refused + 1] = "EVAL: " .. tostring(err.reply)
  end
  local _, werr = st:call("WAIT", "0", "0")
  local wait = werr and werr.reply and Route.final(werr.reply) and "WAIT: " .. tostring(werr.reply)
  if wait and asked > 0 then refused[#refused + 1] = wait
  elseif wait then warn(report, "wait", wait .. ": replicas = N would refuse every create") end
  local _, rerr = st:call("ROLE")
  if rerr and rerr.reply and Route.final(rerr.reply) and st.cfg.kind == "sentinel" then
    refused[#refused + 1] = "ROLE: " .. tostring(rerr.reply)
  end
  report.refused = refused
  if refused[1] and report.usable then
    report.usable, report.error = false, string_format("the user %s may not run what the fleet runs (%s): allow "
      .. "it (docs/keep-and-fleet.md#the-acl-of-a-fleets-user)", tostring(report.user), table.concat(refused, "; "))
  end
end

-- A URL's userinfo part, escaped: "user:password@" (none: "").
local function userinfo(user, password)
  local function esc(v) return (v:gsub("[^%w%-._~]", function(ch) return string_format("%%%02X", ch:byte()) end)) end
  if not password then return "" end
  return (user and esc(user) or "") .. ":" .. esc(password) .. "@"
end

-- A node of the store (host, port) reached as the store's user, with its TLS settings and db: a store of its own.
local function node(cfg, host, port, timeout)
  local url = { url = string_format("%s://%s%s:%d/%d", cfg.tls and "rediss" or "redis",
    userinfo(cfg.user, cfg.password), host:find(":", 1, true) and "[" .. host .. "]" or host, port, cfg.db or 0) }
  if cfg.tls then
    for _, k in ipairs { "ca_file", "cert_file", "key_file", "verify", "server_name" } do url[k] = cfg[k] end
  end
  return Store.new(url, { timeout = timeout })
end

-- Each replica the primary lists, reached as the fleet's user: a failover promotes one, and Redis does not
-- replicate ACL SETUSER, so a replica without the user (its AUTH refused: WRONGPASS) or where it may not run what
-- the fleet runs makes the store not usable (r.user: "ok" or why); one that cannot be reached from here is warned of.
local function replica_users(st, report, timeout)
  local bad = {}
  for _, r in ipairs(report.replicas or {}) do
    local host, port = r.address:match("^(.*):(%d+)$")
    local rn = host and node(st.cfg, host, tonumber(port), timeout)
    local v, err
    if rn then v, err = rn:script("check_commands", C.PROBES, {}) end
    if rn then rn:close() end
    local msg = err and tostring(err.message) or ""
    if type(v) == "table" and v[1] then r.user = "refused: " .. table.concat(v, "; ")
    elseif type(v) == "table" then r.user = "ok"
    elseif msg:find("AUTH failed", 1, true) or (err and err.reply and Route.final(err.reply)) then
      r.user = "refused: " .. (msg:match("AUTH failed: (.*)$") or tostring(err.reply or msg))
    else
      warn(report, "replicas", string_format("replica %s cannot be reached from here (%s): whether the user %s is "
        .. "there is unknown", r.address, msg ~= "" and msg or "no address", tostring(report.user)))
    end
    if r.user and r.user ~= "ok" then bad[#bad + 1] = r.address .. " (" .. r.user:gsub("^refused: ", "") .. ")" end
  end
  if bad[1] and report.usable then
    report.usable, report.error = false, string_format("the user %s is refused on replica %s: a failover to it "
      .. "would refuse the fleet; make the user on every node (docs/keep-and-fleet.md#the-acl-of-a-fleets-user)",
      tostring(report.user), table.concat(bad, ", "))
  end
end

-- Sentinel's view (a redis+sentinel:// store): each sentinel's SENTINEL MASTER of the service ({address, master,
-- flags, replicas, sentinels, quorum, down_after} or {address, error}), warned of when one cannot be asked or
-- they name more than one master.
local function sentinels(cfg, report, timeout)
  local view, masters, n = {}, {}, 0
  for i, h in ipairs(cfg.hosts) do
    local url = { url = string_format("%s://%s%s:%d", cfg.tls and "rediss" or "redis",
      userinfo(cfg.sentinel_user, cfg.sentinel_password), h.host, h.port) }
    if cfg.tls then
      for _, k in ipairs { "ca_file", "cert_file", "key_file", "verify", "server_name" } do url[k] = cfg[k] end
    end
    local sn = Store.new(url, { timeout = timeout })
    local v, err = sn:call("SENTINEL", "MASTER", cfg.service)
    sn:close()
    local e, f = { address = h.host .. ":" .. h.port }, {}
    for j = 1, type(v) == "table" and #v - 1 or 0, 2 do f[v[j]] = v[j + 1] end
    if type(v) == "table" and not (f.ip and f.port) then -- (no sentinel of the service: a proxy, a hostile host)
      v, err = nil, { message = "it answered SENTINEL MASTER without the master's address" }
    end
    if type(v) == "table" then
      e.master, e.flags = string_format("%s:%s", tostring(f.ip), tostring(f.port)), f.flags
      e.quorum = tonumber(f.quorum)
      e.replicas, e.sentinels = tonumber(f["num-slaves"]), (tonumber(f["num-other-sentinels"]) or 0) + 1
      e.down_after = tonumber(f["down-after-milliseconds"])
      if not masters[e.master] then masters[e.master], n = true, n + 1 end
    else
      e.error = err and err.message or tostring(v)
      warn(report, "sentinel", string_format("sentinel %s cannot be asked: %s", e.address, e.error))
    end
    view[i] = e
  end
  if n > 1 then warn(report, "sentinel", "the sentinels name more than one master: a failover is under way, or "
    .. "they do not agree") end
  report.sentinels = view
end

-- A Cluster's view (a redis+cluster:// store): CLUSTER INFO of a node, warned of when the cluster is not ok.
local function cluster(st, report)
  local t = info(st, "INFO", "CLUSTER")
  if not t then return end
  report.cluster = { state = t.cluster_state, slots_ok = tonumber(t.cluster_slots_ok), size = tonumber(t.cluster_size),
    nodes = tonumber(t.cluster_known_nodes), primaries = {} }
  local by, slots = {}, st:call("CLUSTER", "SLOTS") -- (each range: {from, to, {ip, port, id}, replicas...})
  for _, r in ipairs(type(slots) == "table" and slots or {}) do
    local at = type(r[3]) == "table" and string_format("%s:%s", tostring(r[3][1]), tostring(r[3][2])) or "?"
    if not by[at] then
      by[at] = { address = at, slots = {}, replicas = #r - 3 }
      report.cluster.primaries[#report.cluster.primaries + 1] = by[at]
    end
    by[at].slots[#by[at].slots + 1] = string_format("%s-%s", tostring(r[1]), tostring(r[2]))
  end
  for _, p in ipairs(report.cluster.primaries) do p.slots = table.concat(p.slots, ",") end
  table.sort(report.cluster.primaries, function(a, b) return a.slots < b.slots end)
  if t.cluster_state ~= "ok" or tonumber(t.cluster_slots_ok) ~= 16384 then
    warn(report, "cluster", string_format("the cluster's state is %s, %s of 16384 slots ok", tostring(t.cluster_state),
      tostring(t.cluster_slots_ok)))
  end
end

function C.run(url, opts)
  opts = opts or {}
  local st = Store.new(url, { timeout = opts.timeout or 5 })
  local report = { where = st.where, usable = true, warnings = {} }
  local srv, err = info(st, "server")
  if not srv and not (err and err.reply) then -- (not reached; a refused INFO is a user's right: go on)
    st:close()
    report.usable, report.error = false, err and err.message or "INFO server answered no text"
    return report
  elseif not srv then
    warn(report, "info", "INFO is refused to this user: a failover (a promoted replica, Sentinel's new master) is "
      .. "not noticed by its run id, only a reset is; allow +info")
  end
  report.server = srv and { version = srv.redis_version, mode = srv.redis_mode, run_id = srv.run_id, os = srv.os }
  report.tls = st:tls()
  if st.cfg.tls and not st.cfg.verify then
    warn(report, "verify", "verify = false: the server's certificate is not checked (whoever is on the path can "
      .. "read and change the records)")
  end
  if st.cfg.kind == "sentinel" then sentinels(st.cfg, report, opts.timeout or 5) end
  if st.cfg.kind == "cluster" then cluster(st, report) end
  report.user = st:call("ACL", "WHOAMI")
  if type(report.user) ~= "string" then report.user = st.cfg.user or "default" end
  replication(st, report, opts.replicas or 0)
  persistence(st, report)
  commands(st, report, opts.replicas or 0)
  if st.cfg.kind ~= "cluster" then replica_users(st, report, opts.timeout or 5) end
  local ok, werr = st:script("check_write", { "starvideos:check:probe" }, { "1" })
  report.write = ok and "ok" or tostring(werr and werr.message)
  if not ok and report.usable then report.usable, report.error = false, "a script could not write: " .. report.write end
  st:close()
  return report
end

return C
