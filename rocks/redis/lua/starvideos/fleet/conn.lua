-- One connection to one Redis server, on either transport, under one face (fleet/route.lua drives them):
-- outside nginx starvideos.redis (rocks/redis/csrc: hiredis' reader over its own socket, TLS on OpenSSL, never
-- waiting but in its poll), loaded only here, so that a library without it loads and works; inside nginx a
-- cosocket from nginx's pool a command, speaking RESP itself (TLS by sslhandshake, a unix socket, ASKING
-- and its command on one socket: what nginx.redis 0.27 cannot, docs/architecture.md).
--
--   C.open(ep, o, timeout[, ngx]) -> b | nil, msg
--       ep {host =, port =} or {path =} (a unix socket); o: tls, verify, ca_file, cert_file, key_file,
--       server_name, id (what the connection may be shared by: nginx's pool is named by its hash and ep's), hello
--       {{"AUTH", ...}, {"SELECT", n}, {"ROLE", check = fn(v) -> nil | why}...}: sent first on each new
--       connection, each answer checked (an error, or check's why, breaks the connection: "AUTH failed: ..."),
--       but INFO server's (heard): the server's run id, b.run (false when refused), b.at its address
--   b:send(args[, pre[, post]]) -> cn | nil, msg     args {n =, ...}; pre: commands sent just before it on the
--       same connection (ASKING), an error of theirs its answer; post: one sent just after it (WAIT), its answer
--       (or its error's words) reply's third value
--   b:poll(wait) -> true | answers read | nil, msg
--   b:reply(cn) -> "wait" | "ok", value[, post's] | "error", msg | "broken", msg     (each once)
--   b:ready() -> true (the hello answered) | false (not yet) | nil, msg
--   b:pending() -> commands sent not answered (0 on cosockets: their answers are there at once)
--   b:close();  b.name, b.null (the nil reply)
--   C.options(cfg, user, password[, db[, extra]]) -> o (below);  C.ask_next(w), C.asked(w): a way's hosts asked in turn

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local tostring, tonumber, pcall, setmetatable, ipairs, require, string_format, math_floor =
  tostring, tonumber, pcall, setmetatable, ipairs, require, string.format, math.floor
local table_concat, table_insert, table_remove = table.concat, table.insert, table.remove
local now = core.now
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")

local C = {}

-- The hello's command cmd answered v (false, msg: refused) on b: INFO server's (heard) its run id, b.run (false:
-- refused, or none there); another's failure, "AUTH failed: why", or nil.
local function hello_answer(b, cmd, v, msg)
  if cmd.heard then b.run = type(v) == "string" and v:match("run_id:(%x+)") or false; return nil end
  local why = v == false and tostring(msg) or cmd.check and cmd.check(v)
  return why and cmd[1] .. " failed: " .. why
end

-- The commands of one send, in order (pre's, args, post), and the place of args among them.
local function batch(args, pre, post)
  local cmds = {}
  for i, c in ipairs(pre or {}) do cmds[i] = c end
  cmds[#cmds + 1] = args
  local last = #cmds
  cmds[#cmds + 1] = post
  return cmds, last
end

-- A send's answer from its commands' ({v} | {false, msg} each, in order; last: args'): "error", the first error of
-- pre's or its own | "ok", its value, post's (or its error's words).
local function outcome(answers, last, post)
  for i = 1, last do
    if answers[i][1] == false then return "error", answers[i][2] end
  end
  local p = post and answers[last + 1]
  return "ok", answers[last][1], p and (p[1] == false and p[2] or p[1]) or nil
end

local Hiredis = {}
Hiredis.__index = Hiredis

local function hiredis_open(ep, o, timeout)
  local ok, redis = pcall(require, "starvideos.redis")
  if not ok then
    if not tostring(redis):find("module 'starvideos.redis' not found", 1, true) then return nil, tostring(redis) end
    return nil, "starvideos.redis is not installed (it needs hiredis and OpenSSL: Debian libhiredis-dev libssl-dev, "
      .. "then make; LuaRocks: luarocks make rocks/redis/starvideos-redis-scm-1.rockspec)"
  end
  local conn, err = redis.connect(ep.path or ep.host, ep.port, { timeout = timeout, tls = o.tls, verify = o.verify,
    ca_file = o.ca_file, cert_file = o.cert_file, key_file = o.key_file, server_name = o.server_name })
  if not conn then return nil, err end
  local b = setmetatable({ name = "starvideos.redis", conn = conn, null = redis.null, hello = {}, sent = {} },
    Hiredis)
  for i, cmd in ipairs(o.hello or {}) do b.hello[i] = { cmd, assert(conn:send(unpack(cmd))) } end
  return b
end

-- (self.sent[cn]: the numbers of the send's commands, g.last args', their answers read so far in g.got)
function Hiredis:send(args, pre, post)
  local cmds, last = batch(args, pre, post)
  local g = { last = last, post = post, got = {} }
  for i, cmd in ipairs(cmds) do
    local n, err = self.conn:send(unpack(cmd, 1, cmd.n or #cmd))
    if not n then return nil, err end
    g[i] = n
  end
  self.sent[g[last]] = g
  return g[last]
end

function Hiredis:poll(wait) return self.conn:poll(wait) end

function Hiredis:pending() return self.conn:pending() end

-- The hello's answers taken, in order: true once all are, false while one is missing, nil, why once one
-- failed (the connection then closed).
function Hiredis:ready()
  while self.hello[1] and not self.failed do
    local cmd, v, msg = self.hello[1][1], self.conn:reply(self.hello[1][2])
    if v == nil and msg then return nil, msg end
    if v == nil then return false end
    self.failed = hello_answer(self, cmd, v, msg)
    if self.failed then self.conn:close() end
    table_remove(self.hello, 1)
  end
  if self.failed then return nil, self.failed end
  return true
end

function Hiredis:reply(cn)
  local ok, why = self:ready()
  if ok == nil then return "broken", why end
  if not ok then return "wait" end
  local g = self.sent[cn]
  while g.got[#g] == nil do
    local v, msg = self.conn:reply(g[#g.got + 1])
    if v == nil then return msg and "broken" or "wait", msg end
    g.got[#g.got + 1] = v == false and { false, msg } or { v }
  end
  self.sent[cn] = nil
  return outcome(g.got, g.last, g.post)
end

function Hiredis:close() self.conn:close() end

-- The TLS of the connection once its handshake is done ({version, cipher, subject, issuer}), else nil.
function Hiredis:tls() return self.conn:tls() end

-- Inside nginx: a cosocket from the pool a command (named by a hash of what the connection may be shared by:
-- never another endpoint's, user's, password's, db's or TLS settings'), the hello on a new one.
local Cosocket = {}
Cosocket.__index = Cosocket

local function encode(args, n)
  local list = { "*" .. n .. "\r\n" }
  for i = 1, n do
    local s = tostring(args[i])
    list[#list + 1] = "$" .. #s .. "\r\n" .. s .. "\r\n"
  end
  return table_concat(list)
end

-- One reply read: value | false, msg (an error reply) | nil, err (the socket's, or a reply not RESP's).
local function read_reply(sock, null, depth)
  local line, err = sock:receive()
  if not line then return nil, err end
  local t, rest = line:sub(1, 1), line:sub(2)
  if t == "+" then return rest end
  if t == "-" then return false, rest end
  local n = tonumber(rest)
  if t == ":" and n then return n end
  if t == "$" and n then
    if n < 0 then return null end
    local data, derr = sock:receive(n + 2)
    if not data then return nil, derr end
    return data:sub(1, n)
  end
  if t == "*" and n and depth < 16 then
    if n < 0 then return null end
    local list = {}
    for i = 1, n do
      local v, verr = read_reply(sock, null, depth + 1)
      if v == nil then return nil, verr end
      list[i] = v == false and { err = verr } or v
    end
    return list
  end
  return nil, "bad reply: " .. string_format("%q", line:sub(1, 40))
end

local function cosocket_open(ep, o, timeout, ngx)
  return setmetatable({ name = "cosocket", ngx = ngx, ep = ep, o = o, timeout = timeout, null = ngx.null,
    pool = "starvideos:" .. ngx.md5((o.id or "") .. "\0" .. (ep.path or ep.host .. ":" .. ep.port)),
    ms = math_floor(timeout * 1000 + 0.5) }, Cosocket)
end

-- The cosocket's words, in starvideos.redis' where they differ.
function Cosocket:said(err)
  if err == "timeout" then return string_format("no answer within %g s", self.timeout) end
  return tostring(err)
end

-- Commands written at once and their answers read, in order: {value | false, msg ...} | nil, err.
local function exchange(sock, null, cmds)
  local list = {}
  for i, c in ipairs(cmds) do list[i] = encode(c, c.n or #c) end
  local ok, err = sock:send(table_concat(list))
  if not ok then return nil, err end
  local out = {}
  for i = 1, #cmds do
    local v, rerr = read_reply(sock, null, 0)
    if v == nil then return nil, rerr end
    out[i] = v == false and { false, rerr } or { v }
  end
  return out
end

local certs = {} -- cert_file .. "\0" .. key_file -> {cert, key} as ngx.ssl parsed them (read once in a worker)

-- The file at path read and parsed (parse: ngx.ssl's): its value, or nil, why.
local function pem(path, parse)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("*a")
  f:close()
  return parse(text)
end

-- o's client certificate set on sock (none: true): true | nil, why.
local function client_cert(sock, o)
  if not o.cert_file then return true end
  local k = o.cert_file .. "\0" .. o.key_file
  if not certs[k] then
    local ok, ssl = pcall(require, "ngx.ssl")
    if not ok then return nil, "a client certificate inside nginx needs lua-resty-core's ngx.ssl" end
    local cert, cerr = pem(o.cert_file, ssl.parse_pem_cert)
    local key, kerr = pem(o.key_file, ssl.parse_pem_priv_key)
    if not cert then return nil, "cert_file cannot be read: " .. tostring(cerr) end
    if not key then return nil, "key_file cannot be read: " .. tostring(kerr) end
    certs[k] = { cert, key }
  end
  return sock:setclientcert(certs[k][1], certs[k][2])
end

-- sock's TLS handshake: true | nil, err.  (lua-resty-core asserts, rather than answer nil, err, when a
-- handshake done at once failed its checks: nginx's error log names the check.)
local function handshake(sock, name, verify)
  local done, ok, err = pcall(sock.sslhandshake, sock, nil, name, verify)
  if done then return ok and true, err end
  return nil, "the server's certificate is refused (nginx's error log says why)"
end

-- A socket of the pool, connected, its TLS and hello done when it is new: sock | nil, msg.
function Cosocket:socket()
  local ep, o = self.ep, self.o
  local sock = self.ngx.socket.tcp()
  sock:settimeout(self.ms)
  local ok, err
  if ep.path then ok, err = sock:connect("unix:" .. ep.path, { pool = self.pool })
  else ok, err = sock:connect(ep.host, ep.port, { pool = self.pool }) end
  if not ok then return nil, "connect: " .. self:said(err) end
  if sock:getreusedtimes() > 0 then return sock end
  if o.tls then
    ok, err = client_cert(sock, o)
    if ok then ok, err = handshake(sock, o.server_name or ep.host, o.verify) end
    if not ok then
      sock:close()
      err = self:said(err)
      if err:find("^%d+: ") then -- (X509's code: words as starvideos.redis says them)
        err = "the server's certificate is refused (" .. err
          .. "; inside nginx the CAs are lua_ssl_trusted_certificate's)"
      elseif err == "certificate host mismatch" then
        err = "the server's certificate is refused (" .. err .. ")"
      end
      return nil, "TLS: " .. err
    end
  end
  local answers, herr = exchange(sock, self.null, o.hello or {})
  if not answers then sock:close(); return nil, self:said(herr) end
  for i, a in ipairs(answers) do
    local why = hello_answer(self, o.hello[i], a[1], a[2])
    if why then sock:close(); return nil, why end
  end
  return sock
end

-- The command's handle is its answer: {status, value}, there before send returns.
function Cosocket:send(args, pre, post)
  local sock, err = self:socket()
  if not sock then return { "broken", err } end
  local cmds, last = batch(args, pre, post)
  local answers, xerr = exchange(sock, self.null, cmds)
  if not answers then
    sock:close()
    return { "broken", self:said(xerr) }
  end
  sock:setkeepalive(60000, 64)
  return { outcome(answers, last, post) }
end

function Cosocket:ready()
  local sock, err = self:socket()
  if not sock then return nil, err end
  sock:setkeepalive(60000, 64)
  return true
end

function Cosocket.poll() return true end

function Cosocket.pending() return 0 end

function Cosocket.reply(_, answer) return answer[1], answer[2], answer[3] end

function Cosocket.close() end

function C.open(ep, o, timeout, ngx)
  local b, err = (ngx and cosocket_open or hiredis_open)(ep, o, timeout, ngx)
  if b then b.at = ep.path or ep.host .. ":" .. tostring(ep.port) end
  return b, err
end

-- The options of C.open for a store's cfg (fleet/url.lua's), with the hello of a server: AUTH [user] password,
-- SELECT db (when not 0), the extra command, then INFO server (heard: its run id, fleet/identity.lua's; a refusal
-- breaks nothing).
function C.options(cfg, user, password, db, extra)
  local hello = { extra }
  if db and db ~= 0 then table_insert(hello, 1, { "SELECT", tostring(db) }) end
  if password then table_insert(hello, 1, user and { "AUTH", user, password } or { "AUTH", password }) end
  hello[#hello + 1] = { "INFO", "server", n = 2, heard = true }
  return { tls = cfg.tls, verify = cfg.verify, ca_file = cfg.ca_file, cert_file = cfg.cert_file,
    key_file = cfg.key_file, server_name = cfg.server_name, id = cfg.id, hello = hello }
end

-- A way that asks its hosts in turn (fleet/sentinel.lua's, fleet/cluster.lua's; w.ask: {command, user, password,
-- what a host is, what failing says}): the next host of w.cfg.hosts (w.i) sent the command (w.sc, w.sn), after
-- the last a pause (w.due) then the first again; past w.deadline: failed (w.failed, naming w.why).  Each host
-- waited for w.per s at most when set (a sentinel's share of the timeout), else w.timeout.
function C.ask_next(w)
  local a, hosts = w.ask, w.cfg.hosts
  if now() >= w.deadline then
    w.failed = string_format("%s within %g s: %s", a.failed, w.timeout, tostring(w.why))
    return
  end
  w.i = w.i + 1
  if w.i > #hosts then
    w.i, w.due = 0, now() + w.PAUSE
    return
  end
  local h = hosts[w.i]
  local c, err = C.open(h, C.options(w.cfg, a.user, a.password), w.per or w.timeout, w.ngx)
  if not c then
    w.why = string_format("%s %s:%d: %s", a.host, h.host, h.port, tostring(err))
    return C.ask_next(w)
  end
  w.sc, w.sn = c, c:send(a.command)
end

-- The host's answer to C.ask_next's command: false (not yet, or pausing), nil (the pause ended: the next host
-- asked), or status, value, the host (its connection closed).
function C.asked(w)
  if w.due then
    if now() < w.due then return false end
    w.due = nil
    return C.ask_next(w)
  end
  local status, v = w.sc:reply(w.sn)
  if status == "wait" then return false end
  w.sc:close()
  w.sc = nil
  return status, v, w.cfg.hosts[w.i]
end

return C
