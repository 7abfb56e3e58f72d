-- A TCP proxy of the specs' own (rocks/redis/spec/hosts/fence_spec.lua): on 127.0.0.1, a
-- port the system picks, forwarding every connection to 127.0.0.1:TARGET, and
-- told by a mode file how to misbehave.  One file, two uses:
--
--   local tcp_proxy = require "spec.support.tcp_proxy"
--   local p = tcp_proxy.start { target = srv.port }   -- a process of its own
--   ... p.port, p.url("redis") (redis://127.0.0.1:PORT), p.mode("blackhole"), p.mode("pass") ...
--   p.stop()
--
--   lua5.4 spec/support/tcp_proxy.lua TARGET MODE_FILE   (what start runs)
--
-- The program prints "listening PORT", then reads MODE_FILE every 50 ms
-- (a new one is renamed into place whole) and prints "mode NAME" once the mode
-- is in force (mode() waits for that line).  The modes:
--   pass       new connections are forwarded; so are the bytes of connections that were never
--              blackholed
--   blackhole  nothing forwarded or answered: bytes read from either side are dropped; no
--              connection is closed; new ones are accepted and held the same way.  A
--              connection that lost bytes stays a blackhole after pass (its stream is broken);
--              it ends when one of its sides closes
--   cut        every connection reset (SO_LINGER 0, then close) on the client's side and closed
--              on the target's; new ones are accepted and reset at once
--   to PORT    every connection cut, new ones forwarded to 127.0.0.1:PORT from now on (a failover behind
--              one address)
-- LuaSocket only; runs on Lua 5.1 to 5.4 and LuaJIT.

local socket = require "socket"

local CHUNK = 65536
local TICK = 0.05

local function read_mode(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local m = f:read("*l")
  f:close()
  if m == "pass" or m == "blackhole" or m == "cut" or (m and m:match("^to %d+$")) then return m end
end

-- Reset: the peer reads ECONNRESET, not an orderly end.
local function reset(sock)
  sock:setoption("linger", { on = true, timeout = 0 })
  sock:close()
end

-- The proxy's loop: listener accepts; links[client] / links[upstream] = the pair
-- { a = client, b = upstream (nil when held), out = { [sock] = bytes owed }, dead = blackholed once }.
local function serve(target, mode_file)
  local listener = assert(socket.bind("127.0.0.1", 0))
  listener:settimeout(0)
  local _, port = listener:getsockname()
  io.write("listening ", port, "\n")
  io.flush()
  local mode, applied, links, pairs_ = "pass", "pass", {}, {}

  local function drop(pair)
    for _, s in ipairs { pair.a, pair.b } do
      if s then links[s] = nil; s:close() end
    end
    pairs_[pair] = nil
  end

  local function accept()
    local c = listener:accept()
    if not c then return end
    if mode == "cut" then reset(c) return end
    c:settimeout(0)
    local pair = { a = c, out = {}, dead = mode == "blackhole" }
    if not pair.dead then
      local u = socket.tcp()
      u:settimeout(2)
      if not u:connect("127.0.0.1", target) then u:close(); c:close() return end
      u:settimeout(0)
      pair.b = u
      links[u] = pair
    end
    links[c] = pair
    pairs_[pair] = true
  end

  local function set_mode(m)
    mode = m
    local to = tonumber(m:match("^to (%d+)$"))
    if to then target, mode = to, "cut" end
    if mode == "blackhole" then
      for pair in pairs(pairs_) do pair.dead, pair.out = true, {} end
    elseif mode == "cut" then
      for pair in pairs(pairs_) do
        links[pair.a] = nil
        reset(pair.a)
        if pair.b then links[pair.b] = nil; pair.b:close() end
        pairs_[pair] = nil
      end
    end
    if to then mode = "pass" end
    io.write("mode ", m, "\n")
    io.flush()
  end

  local function readable(s)
    local pair = links[s]
    if not pair then return end
    local data, err, partial = s:receive(CHUNK)
    data = data or partial
    if data and #data > 0 and not pair.dead then
      local other = s == pair.a and pair.b or pair.a
      pair.out[other] = (pair.out[other] or "") .. data
    end
    if err == "closed" then drop(pair) end
  end

  local function writable(s)
    local pair = links[s]
    local owed = pair and pair.out[s]
    if not owed or owed == "" then return end
    local n, err, last = s:send(owed)
    n = n or last or 0
    pair.out[s] = owed:sub(n + 1)
    if err == "closed" then drop(pair) end
  end

  while true do
    local m = read_mode(mode_file)
    if m and m ~= applied then applied = m; set_mode(m) end
    local recvt, sendt = { listener }, {}
    for s, pair in pairs(links) do
      recvt[#recvt + 1] = s
      if pair.out[s] and pair.out[s] ~= "" then sendt[#sendt + 1] = s end
    end
    local r, w = socket.select(recvt, sendt, TICK)
    for _, s in ipairs(r) do
      if s == listener then accept() else readable(s) end
    end
    for _, s in ipairs(w) do writable(s) end
  end
end

local name = ...
if name ~= "spec.support.tcp_proxy" then
  local target, mode_file = tonumber(arg[1]), arg[2]
  if not (target and mode_file) then
    io.stderr:write("usage: tcp_proxy.lua TARGET_PORT MODE_FILE\n")
    os.exit(2)
  end
  serve(target, mode_file)
  return
end

local helper = require "spec.helper"

local M = {}

-- Starts the proxy to 127.0.0.1:opts.target, in pass: { port =, pid =, url(scheme) -> "scheme://127.0.0.1:PORT",
-- mode(name) (returns once the proxy says it is in force; "to PORT": another target), stop() }.
function M.start(opts)
  local q = helper.shell_quote
  local dir = helper.tmpdir()
  local mode_file = dir .. "/mode"
  helper.write_file(mode_file, "pass\n")
  local proc = helper.spawn(q(helper.lua) .. " " .. q(helper.root .. "/spec/support/tcp_proxy.lua") .. " "
    .. tostring(assert(tonumber(opts.target), "tcp_proxy.start: target must be a port")) .. " " .. q(mode_file))
  local line = proc.pipe:read("*l")
  local port = tonumber(line and line:match("^listening (%d+)$"))
  if not port then
    helper.execute("kill " .. proc.pid .. " 2>/dev/null")
    proc:close()
    error("the TCP proxy did not start: " .. tostring(line), 2)
  end
  local self, now = { port = port, pid = proc.pid }, "pass"
  function self.url(scheme) return (scheme or "tcp") .. "://127.0.0.1:" .. port end
  function self.mode(m)
    assert(m == "pass" or m == "blackhole" or m == "cut" or tostring(m):match("^to %d+$"),
      "tcp_proxy: no mode " .. tostring(m))
    if m == now then return end
    helper.write_file(mode_file .. ".new", m .. "\n")
    assert(os.rename(mode_file .. ".new", mode_file))
    local said = proc.pipe:read("*l")
    assert(said == "mode " .. m, "the TCP proxy answered " .. tostring(said) .. " to mode " .. m)
    now = m
  end
  function self.stop()
    if not proc then return end
    helper.execute("kill " .. proc.pid .. " 2>/dev/null")
    proc:close()
    proc = nil
  end
  return self
end

return M
