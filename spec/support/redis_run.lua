-- A real redis-server for the specs (spec/hosts/redis_spec.lua, spec/hosts/redis_nginx_spec.lua,
-- spec/hosts/cli_store_spec.lua): on 127.0.0.1, a port found free by binding first
-- (redis-server takes no port 0), no persistence, in a temporary directory.  The
-- caller stops it (finally), or start_pair and stop_pair start and stop it with
-- an emulator.

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

-- The arguments of start's opts beyond the basics: TLS (the plain port then 0: every client speaks TLS), ACL
-- users, a unix socket.
local function extra_args(opts, port, q)
  local args = {}
  if opts.password then args[#args + 1] = "--requirepass " .. q(opts.password) end
  for _, u in ipairs(opts.users or {}) do -- {name, password[, rules]}: on, every key and command but its rules
    args[#args + 1] = "--user " .. q(u[1]) .. " on " .. q(">" .. u[2]) .. " " .. (u[3] or "'~*' '&*' '+@all'")
  end
  if opts.unix then args[#args + 1] = "--unixsocket " .. q(opts.unix) .. " --unixsocketperm 700" end
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
-- in that folder loads the AOF); opts.users {{name, password[, rules]}...}: ACL users;
-- opts.unix: a unix socket's path too; opts.tls {cert =, key =, ca =, clients = true (a client
-- certificate asked)}: TLS only, on the port (url then rediss://localhost:port).
function M.start(opts)
  opts = opts or {}
  local q = helper.shell_quote
  local dir = opts.dir or helper.tmpdir()
  local port = opts.port or helper.free_ports(1)[1]
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
  if not helper.wait_until(function() return listening(port) end, 10) then
    self.stop()
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
  local v, err = s:script(name, { F.key(key_hash, what) }, args)
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
-- PATH" ("-" for no error), then "ended: N results, M saved" (or "ended: " and the error).
function M.keeper(key)
  return [=[
local starvideos = require "starvideos"
local url, store, dir, timeout, hook, secret = arg[1], arg[2], arg[3], tonumber(arg[4]), arg[5], arg[6]
local function say(...) io.write(table.concat({ ... }, " "), "\n"); io.stdout:flush() end
local client = starvideos.new { api_key = "]=] .. key .. [=[", base_url = url, store = store, lease = 2,
  on_event = function(ev) if ev.type == "warning" then say("warning", "", tostring(ev.message)) end end }
say("keeping")
local results, err = client:keep { dir = dir, lease = 2, interval = 0.2, timeout = timeout,
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

return M
