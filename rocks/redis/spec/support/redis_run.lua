-- A real redis-server for the specs (rocks/redis/spec/hosts/redis_spec.lua,
-- rocks/redis/spec/hosts/redis_nginx_spec.lua, rocks/redis/spec/hosts/cli_store_spec.lua): on 127.0.0.1, a port found
-- free by binding first (redis-server takes no port 0), no persistence, in a temporary directory.  The
-- caller stops it (finally), or start_pair and stop_pair start and stop it with
-- an emulator.  start_sentinel: a primary, its replicas and sentinels (redis-server
-- --sentinel: no system service); start_cluster: a Cluster made by redis-cli --cluster create.

local helper = require "spec.helper"

local M = {}

-- Why the specs cannot run here, or nil (with `module`: starvideos.redis built too).
function M.missing(module)
  if not helper.execute("command -v redis-server >/dev/null 2>&1") then
    return "redis-server is not installed (apt-get install redis-server, or make deps)"
  end
  if module and not pcall(require, "starvideos.redis") then return "starvideos.redis is not built (hiredis?)" end
end

local listening = require("spec.support.nginx_run").listening
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

-- The arguments of start's opts beyond the basics: TLS (the plain port then 0: every client speaks TLS), ACL
-- users, a unix socket.
local function extra_args(opts, port, q)
  local args = {}
  if opts.password then args[#args + 1] = "--requirepass " .. q(opts.password) end
  for _, u in ipairs(opts.users or {}) do -- {name, password[, rules]}: on, every key and command but its rules
    args[#args + 1] = "--user " .. q(u[1]) .. " on " .. q(">" .. u[2]) .. " " .. (u[3] or "'~*' '&*' '+@all'")
  end
  if opts.unix then args[#args + 1] = "--unixsocket " .. q(opts.unix) .. " --unixsocketperm 700" end
  if opts.replicaof then args[#args + 1] = "--replicaof 127.0.0.1 " .. opts.replicaof end
  if opts.cluster then
    args[#args + 1] = "--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000"
  end
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local tls = opts.tls
  if tls then
    args[#args + 1] = string.format("--port 0 --tls-port %d --tls-cert-file %s --tls-key-file %s "
      .. "--tls-ca-cert-file %s --tls-auth-clients %s", port, q(tls.cert), q(tls.key), q(tls.ca),
      tls.clients and "yes" or "no")
  end
  return table.concat(args, " ")
end

-- { port =, pid =, url =, stop = fn, signal = fn(name) }.  opts.password: requirepass;
-- opts.port: that port (a restart), else a free one; opts.dir: that folder (a
-- restart: a dump.rdb a SAVE left there is loaded), else a new one; opts.aof:
-- appendonly with appendfsync always, as docs/keep-and-fleet.md asks (a restart
-- in that folder loads the AOF); opts.users {{name, password[, rules]}...}: ACL users; opts.replicaof: the
-- port of its primary; opts.cluster: a Cluster node (its nodes.conf in dir);
-- opts.unix: a unix socket's path too; opts.tls {cert =, key =, ca =, clients = true (a client
-- certificate asked)}: TLS only, on the port (url then rediss://localhost:port); opts.args: more of
-- redis-server's arguments.
function M.start(opts, tries)
  opts = opts or {}
  local q = helper.shell_quote
  local dir = opts.dir or helper.tmpdir()
  local port = opts.port or helper.free_ports(1)[1]
  -- ready: its own log says so (a server it restarts: once more than before) and the port listens; a port another
  -- process took between free_ports and the bind (two specs at once) is not taken for ours
  local function readies()
    local log = helper.read_file(dir .. "/redis.log") or ""
    return select(2, log:gsub("Ready to accept", "")), select(2, log:gsub("Address already in use", ""))
  end
  local before, refused = readies()
  local args = { "redis-server", "--port", tostring(port), "--bind", "127.0.0.1", "--save", "''",
    "--appendonly", opts.aof and "yes --appendfsync always" or "no", "--dir", q(dir),
    "--logfile", q(dir .. "/redis.log"), "--daemonize", "no", extra_args(opts, port, q) }
  local proc = helper.spawn(helper.UNINSTRUMENTED .. table.concat(args, " ") .. " >/dev/null 2>&1")
  local self = { port = port, pid = proc.pid, dir = dir }
  self.url = (opts.tls and "rediss://" or "redis://") .. (opts.password and ":" .. opts.password .. "@" or "")
    .. (opts.tls and "localhost:" or "127.0.0.1:") .. port
  function self.signal(name)
    helper.execute(string.format("kill -%s %d 2>/dev/null", name, proc.pid))
  end
  function self.stop()
    if not proc then return end
    self.signal("CONT")
    self.signal("TERM") -- (KILL would have 5.1's shell print "Killed"); close waits for the exit
    proc:close()
    proc = nil
  end
  local ready, taken
  helper.wait_until(function()
    local n, r = readies()
    ready, taken = n > before and listening(port), r > refused
    return ready or taken
  end, 10)
  if not ready then
    self.stop()
    if taken and not opts.port and (tries or 1) < 3 then return M.start(opts, (tries or 1) + 1) end -- (another port)
    error("redis-server did not start: " .. tostring(helper.read_file(dir .. "/redis.log")))
  end
  return self
end

-- A redis-server and an emulator (helper.emulator(emu_opts)), for a describe's
-- setup: srv, emu (the server stopped again if the emulator cannot start).
function M.start_pair(emu_opts)
  local srv = M.start()
  local ok, emu = pcall(helper.emulator, emu_opts)
  if not ok then
    srv.stop()
    error(emu, 0)
  end
  return srv, emu
end

-- Its teardown: both stopped (either may be nil: a setup that did not run),
-- and the specs' temporary files removed.
function M.stop_pair(srv, emu)
  if emu then emu:stop() end
  if srv then srv.stop() end
  helper.cleanup()
end

-- The key's budget scripts (fleet/budget.lua) run on an open store s, waited
-- for: token(s, key_hash, rate) -> nil (a token taken) | the seconds to wait
-- | nil, err; create_allowed(s, key_hash, count, per) -> true | false, seconds.
local function seconds(s, name, what, key_hash, args)
  local F = require "starvideos.fleet.budget"
  -- create_limit's count alone (the library runs it only inside the ledger's keyed script)
  require("starvideos.fleet.store").define("budget_create", F.CREATE
    .. "return string.format('%.6f', count_create(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])))")
  local v, err = s:script(name, what == "tat" and F.keys(key_hash, "") or { F.key(key_hash, what) }, args)
  if v == nil then return nil, err end
  return (assert(tonumber(v), v))
end

function M.token(s, key_hash, rate)
  local wait, err = seconds(s, "budget_token", "tat", key_hash, { string.format("%.17g", rate) })
  if err then return nil, err end
  if wait > 0 then return wait end
end

function M.create_allowed(s, key_hash, count, per)
  local wait, err = seconds(s, "budget_create", "creates", key_hash, { tostring(count), tostring(per) })
  if err then return nil, err end
  if wait > 0 then return false, wait end
  return true
end

-- The store's name of a key (key.lua's k.hash): no API key in it.
function M.key_hash(base_url, api_key)
  return require("starvideos.key").hash_of(base_url, api_key)
end

-- A keeper's program (helper.run_lua; args: the emulator's URL, the store's, the folder, the timeout[, a
-- webhook's URL and secret: keep's own notify]): keep with a 2 s lease, "keeping", its warnings and claims
-- each a line ("warning  MESSAGE", "claim ID FROM PATH"), at its end a line per result "result ID ERRKIND
-- PATH" ("-" for no error), then "ended: N results, M saved" (or "ended: " and the error).  opts.once: keep's
-- once (the timeout then a bound); opts.rate: the client's requests_per_second (10).
function M.keeper(key, opts)
  opts = opts or {}
  return [=[
local starvideos = require "starvideos"
local url, store, dir, timeout, hook, secret = arg[1], arg[2], arg[3], tonumber(arg[4]), arg[5], arg[6]
local function say(...) io.write(table.concat({ ... }, " "), "\n"); io.stdout:flush() end
local client = starvideos.new { api_key = "]=] .. key .. [=[", base_url = url, store = store, lease = 2,
  requests_per_second = ]=] .. (opts.rate or 10) .. [=[,
  on_event = function(ev) if ev.type == "warning" then say("warning", "", tostring(ev.message)) end end }
say("keeping")
local results, err = client:keep { dir = dir, lease = 2, interval = 0.2, timeout = timeout,
  once = ]=] .. tostring(opts.once == true) .. [=[,
  notify = hook and { url = hook, secret = secret } or nil,
  on_progress = function(ev)
    if ev.type == "claim" then say("claim", tostring(ev.id), tostring(ev.from), tostring(ev.path)) end
  end }
if not results then say("ended:", tostring(err)) return end
local saved = 0
for _, r in ipairs(results) do
  if r.path and not r.err then saved = saved + 1 end
  say("result", tostring(r.task and r.task.id), r.err and tostring(r.err.kind) or "-", tostring(r.path))
end
say("ended:", #results, "results,", saved, "saved")
client:close()
]=]
end

-- redis-cli on port with args (words, each quoted): its output's lines (a failure raises).
function M.cli(port, ...)
  local q, words = helper.shell_quote, {}
  for i, w in ipairs { ... } do words[i] = q(tostring(w)) end
  local out, ok = helper.capture(string.format("redis-cli -h 127.0.0.1 -p %d %s 2>&1", port, table.concat(words, " ")))
  assert(ok, out)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  return lines
end

-- Replication (issue 38: rocks/redis/spec/hosts/store_replicas_spec.lua,
-- rocks/redis/spec/hosts/store_failover_spec.lua): a primary whose full sync is sent at once (no diskless delay), its
-- replicas' links checked every second; a replica of port (a primary's, or a proxy's in front of it).
local REPL = { "--repl-diskless-sync-delay 0", "--repl-ping-replica-period 1" }

function M.primary(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.args = { REPL[1], REPL[2] }
  for _, a in ipairs(opts and opts.args or {}) do o.args[#o.args + 1] = a end
  return M.start(o)
end

function M.replica(port, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.replicaof = port
  return M.primary(o)
end

-- INFO's fields (section, e.g. "replication") of the server at port: name -> value.
function M.info(port, section)
  local t = {}
  for _, l in ipairs(M.cli(port, "INFO", section)) do
    local k, v = l:match("^([%w_]+):(.-)%s*$")
    if k then t[k] = v end
  end
  return t
end

-- How many replicas the server at port has online (their sync done).
function M.online(port)
  local n = 0
  for k, v in pairs(M.info(port, "replication")) do
    if k:match("^slave%d+$") and v:find("state=online", 1, true) then n = n + 1 end
  end
  return n
end

-- Waits (at most within seconds, 20) until the server at port has n replicas online; whether it did.
function M.wait_online(port, n, within)
  return helper.wait_until(function() return M.online(port) == n end, within or 20)
end

-- Waits (at most within seconds, 20) until the replica at replica_port has every write the primary at port has
-- sent so far (its offset); whether it did.  (redis-cli's WAIT counts only the writes of its own connection: none.)
function M.caught_up(port, replica_port, within)
  local want = tonumber(M.info(port, "replication").master_repl_offset)
  return helper.wait_until(function()
    return (tonumber(M.info(replica_port, "replication").slave_repl_offset) or -1) >= want
  end, within or 20)
end

-- One nginx worker (spec/support/nginx_run.lua) serving `locations` (lines of its server block), Lua modules
-- found in dir too: nginx_run.serve's { port =, pid =, stop = fn }.
function M.nginx(dir, locations)
  local nginx_run = require "spec.support.nginx_run"
  return nginx_run.serve(dir, function(port)
    local lines = nginx_run.conf_head(dir, 1)
    for i, l in ipairs(lines) do
      if l:find("lua_package_path", 1, true) then lines[i] = l:gsub(";;\";$", ";" .. dir .. "/?.lua;;\";") end
    end
    lines[#lines + 1] = string.format("    server { listen 127.0.0.1:%d;", port)
    for _, l in ipairs(locations) do lines[#lines + 1] = "        " .. l end
    for _, l in ipairs { "    }", "}", "" } do lines[#lines + 1] = l end
    return table.concat(lines, "\n")
  end)
end

-- The fields of a sentinel's SENTINEL MASTER answer (name -> value).
local function fields(lines)
  local t = {}
  for i = 1, #lines - 1, 2 do t[lines[i]] = lines[i + 1] end
  return t
end

-- A Sentinel set on loopback: a primary, `replicas` replicas (2) and `sentinels` sentinels (3, quorum 2)
-- watching service "mymaster" with down-after-milliseconds `down_after` (1000).  Returns {primary =,
-- replicas = {...}, sentinels = {{port =, pid =, stop =}...}, service =, url = "redis+sentinel://...",
-- master() -> the port the sentinels name, stop()}, once every sentinel sees every replica and the others.
function M.start_sentinel(opts)
  opts = opts or {}
  local down = opts.down_after or 1000
  local set = { service = "mymaster", replicas = {}, sentinels = {} }
  local ok, err = pcall(function()
    set.primary = M.start()
    for i = 1, opts.replicas or 2 do set.replicas[i] = M.start { replicaof = set.primary.port } end
    local hosts = {}
    for i = 1, opts.sentinels or 3 do
      local dir, port = helper.tmpdir(), helper.free_ports(1)[1]
      helper.write_file(dir .. "/sentinel.conf", table.concat({ "port " .. port, "bind 127.0.0.1", "dir " .. dir,
        "logfile " .. dir .. "/sentinel.log", "sentinel monitor mymaster 127.0.0.1 " .. set.primary.port .. " 2",
        "sentinel down-after-milliseconds mymaster " .. down, "sentinel failover-timeout mymaster 10000",
        "sentinel parallel-syncs mymaster 2", "" }, "\n"))
      local proc = helper.spawn(helper.UNINSTRUMENTED .. "redis-server " .. helper.shell_quote(dir .. "/sentinel.conf")
        .. " --sentinel >/dev/null 2>&1")
      local sentinel = { port = port, pid = proc.pid, dir = dir }
      function sentinel.stop()
        if not proc then return end
        helper.execute("kill -TERM " .. proc.pid .. " 2>/dev/null")
        proc:close()
        proc = nil
      end
      set.sentinels[i] = sentinel
      assert(helper.wait_until(function() return listening(port) end, 10), "a sentinel did not start")
      -- a sentinel whose timer ran 2 s late (a loaded box) sits out 30 s in TILT mode, the failover specs' whole
      -- window: 3 s here, time for a ping round of every node before it acts again
      local said = table.concat(M.cli(port, "SENTINEL", "DEBUG", "tilt-period", "3000"), " ")
      assert(said == "OK", "SENTINEL DEBUG tilt-period: " .. said)
      hosts[i] = "127.0.0.1:" .. port
    end
    set.url = "redis+sentinel://" .. table.concat(hosts, ",") .. "/mymaster"
    assert(helper.wait_until(function()
      for _, sn in ipairs(set.sentinels) do
        local f = fields(M.cli(sn.port, "SENTINEL", "MASTER", "mymaster"))
        if tonumber(f["num-slaves"]) ~= #set.replicas or tonumber(f["num-other-sentinels"]) ~= #set.sentinels - 1 then
          return false
        end
      end
      return true
    end, 30), "the sentinels did not see every replica and each other within 30 s")
  end)
  function set.master()
    for _, sn in ipairs(set.sentinels) do
      local ok2, lines = pcall(M.cli, sn.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
      if ok2 and lines[2] then return tonumber(lines[2]) end
    end
  end
  function set.stop()
    for _, sn in ipairs(set.sentinels) do sn.stop() end
    for _, r in ipairs(set.replicas) do r.stop() end
    if set.primary then set.primary.stop() end
  end
  if not ok then set.stop(); error(err, 0) end
  return set
end

-- A Cluster on loopback: `primaries` (3) nodes made one by redis-cli --cluster create (no replicas), each
-- serving a third of the slots.  Returns {nodes = {...}, url = "redis+cluster://...", stop()}, once every
-- node says cluster_state:ok.
function M.start_cluster(opts)
  opts = opts or {}
  local set = { nodes = {} }
  local ok, err = pcall(function()
    local addrs = {}
    for i = 1, opts.primaries or 3 do
      set.nodes[i] = M.start { cluster = true }
      addrs[i] = "127.0.0.1:" .. set.nodes[i].port
    end
    local out, created = helper.capture("redis-cli --cluster create " .. table.concat(addrs, " ")
      .. " --cluster-replicas 0 --cluster-yes 2>&1")
    assert(created, out)
    set.url = "redis+cluster://" .. table.concat(addrs, ",")
    assert(helper.wait_until(function()
      for _, n in ipairs(set.nodes) do
        local info = table.concat(M.cli(n.port, "CLUSTER", "INFO"), "\n")
        if not info:find("cluster_state:ok", 1, true) then return false end
      end
      return true
    end, 30), "the cluster did not come up within 30 s")
  end)
  function set.stop()
    for _, n in ipairs(set.nodes) do n.stop() end
  end
  if not ok then set.stop(); error(err, 0) end
  return set
end

-- The node of set (start_cluster's) serving slot, as node 1's CLUSTER NODES says: its index.
function M.slot_node(set, slot)
  for _, line in ipairs(M.cli(set.nodes[1].port, "CLUSTER", "NODES")) do
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    local port = tonumber(f[2]:match(":(%d+)"))
    for k = 9, #f do
      local first, last = f[k]:match("^(%d+)%-?(%d*)$")
      if first and slot >= tonumber(first) and slot <= tonumber(last ~= "" and last or first) then
        for i, n in ipairs(set.nodes) do if n.port == port then return i end end
      end
    end
  end
end

-- Slot moved from its node to node `to` of set as an operator does it (CLUSTER SETSLOT IMPORTING and
-- MIGRATING, MIGRATE `batch` keys at a time (10, redis-cli's pipeline) with `pause` s between (or pause()
-- called between), then SETSLOT NODE on the new node, the old, the others): the keys moved.  Commands
-- meanwhile get ASK (their keys moved), TRYAGAIN (some moved, some not) and, after, MOVED.
function M.migrate_slot(set, slot, to, pause, batch)
  local from = M.slot_node(set, slot)
  local src, dst = set.nodes[from], set.nodes[to]
  local src_id, dst_id = M.cli(src.port, "CLUSTER", "MYID")[1], M.cli(dst.port, "CLUSTER", "MYID")[1]
  M.cli(dst.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
  M.cli(src.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
  local moved = 0
  while true do
    local keys = M.cli(src.port, "CLUSTER", "GETKEYSINSLOT", slot, batch or 10)
    if not keys[1] then break end
    M.cli(src.port, "MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", unpack(keys))
    moved = moved + #keys
    if type(pause) == "function" then pause() elseif pause then helper.sleep(pause) end
  end
  M.cli(dst.port, "CLUSTER", "SETSLOT", slot, "NODE", dst_id) -- (the new node first, then the old: as redis-cli)
  M.cli(src.port, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
  for _, n in ipairs(set.nodes) do
    if n ~= src and n ~= dst then M.cli(n.port, "CLUSTER", "SETSLOT", slot, "NODE", dst_id) end
  end
  return moved
end

return M
