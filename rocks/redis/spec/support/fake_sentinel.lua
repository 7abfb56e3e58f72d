-- A host that is no sentinel of the service yet answers SENTINEL MASTER with a table of other fields (as a
-- proxy or a hostile host may), for rocks/redis/spec/hosts/store_check_spec.lua; every other command: an error.
--
--   lua5.4 rocks/redis/spec/support/fake_sentinel.lua PORT_FILE
--
-- Listens on a port of the system's choice (written to PORT_FILE), serves any number of connections at once
-- (LuaSocket's select), and exits after 60 s.
local socket = require "socket"

local server = assert(socket.bind("127.0.0.1", 0))
server:settimeout(0)
local f = assert(io.open(assert(arg[1], "usage: fake_sentinel.lua PORT_FILE"), "w"))
f:write(select(2, server:getsockname()), "\n")
f:close()

local ANSWER = "*4\r\n$5\r\nflags\r\n$6\r\nmaster\r\n$4\r\nname\r\n$8\r\nmymaster\r\n"
local clients, bufs = { server }, {}

-- The commands whole in buf (RESP arrays of bulk strings): each one's name, and what is left.
local function commands(buf)
  local names = {}
  while true do
    local n, at = buf:match("^%*(%d+)\r\n()")
    if not n then break end
    local name, pos, whole = nil, at, true
    for _ = 1, tonumber(n) do
      local len, from = buf:match("^%$(%d+)\r\n()", pos)
      if not len or #buf < from + tonumber(len) + 1 then whole = false; break end
      name = name or buf:sub(from, from + tonumber(len) - 1):upper()
      pos = from + tonumber(len) + 2
    end
    if not whole then break end
    names[#names + 1], buf = name, buf:sub(pos)
  end
  return names, buf
end

local stop = socket.gettime() + 60
while socket.gettime() < stop do
  local ready = socket.select(clients, nil, 0.5)
  for _, s in ipairs(ready) do
    if s == server then
      local c = server:accept()
      if c then c:settimeout(0); clients[#clients + 1], bufs[c] = c, "" end
    else
      local data, err, partial = s:receive(4096)
      data = data or partial
      if data and data ~= "" then
        local names
        names, bufs[s] = commands(bufs[s] .. data)
        for _, name in ipairs(names) do
          s:send(name == "SENTINEL" and ANSWER or "-ERR unknown command '" .. tostring(name) .. "'\r\n")
        end
      end
      if err == "closed" then
        s:close()
        bufs[s] = nil
        for i, c in ipairs(clients) do if c == s then table.remove(clients, i) break end end
      end
    end
  end
end
