-- A raw-TCP video server for spec/hosts/ngx_wire_spec.lua, for what the emulator
-- cannot do: one connection at a time (LuaSocket), every answer closes it.
--
--   lua5.4 spec/support/wire_server.lua LOG_FILE
--
-- Prints "wire listening on PORT" once it listens.  Each request's Range header
-- ("none" without one) is appended to LOG_FILE as "<path> <range>\n".  Paths:
--   /chunks/<n>              n bytes of video in chunks of 1 byte (chunked)
--   /cut/<n>?part=<file>&do=delete|shorten
--                            the first GET: 200, Content-Length n, half the bytes,
--                            close, then <file> is deleted or cut to 10 bytes;
--                            later ones: the video, honouring Range (206)
--   /video/<n>               the video, honouring Range
--   /mixed/<n>               the video chunked in sizes from 1 byte to 70000,
--                            some sizes in capitals or with an extension, a trailer
--   /badchunk/<n>            the video in 1-byte chunks, but one ends "XX", not CRLF
--   /quit                    exits
-- The video: transport_cases.lua's (a 5 s MP4 whose mdat holds 16-byte blocks, each
-- naming its own position).  Exits after 120 s.

local socket = require "socket"
local video = require("spec.support.transport_cases").video

local log_file = assert(arg[1], "usage: wire_server.lua LOG_FILE")
local str_format, concat, floor = string.format, table.concat, math.floor

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
io.stdout:write("wire listening on ", port, "\n")
io.stdout:flush()
server:settimeout(1)
local deadline, hits, chunked = socket.gettime() + 120, {}, {}

local function answer(c, status, headers, body)
  headers[#headers + 1] = "Content-Length: " .. #body
  c:send("HTTP/1.1 " .. status .. "\r\n" .. concat(headers, "\r\n") .. "\r\nConnection: close\r\n\r\n" .. body)
end

local function serve_video(c, bytes, range)
  local a = range and tonumber(range:match("^bytes=(%d+)%-$"))
  if a and a < #bytes then
    return answer(c, "206 Partial Content", { str_format("Content-Range: bytes %d-%d/%d", a, #bytes - 1, #bytes) },
      bytes:sub(a + 1))
  end
  answer(c, "200 OK", {}, bytes)
end

while socket.gettime() < deadline do
  local c = server:accept()
  if c then
    c:settimeout(10)
    local first = c:receive("*l") or ""
    local path = first:match("^GET (%S+) HTTP/1%.%d$") or ""
    local range
    while true do
      local l = c:receive("*l")
      if not l or l == "" then break end
      range = l:lower():match("^range:%s*(.-)%s*$") or range
    end
    local log = assert(io.open(log_file, "ab"))
    log:write(path, " ", range or "none", "\n")
    log:close()
    if path == "/quit" then
      answer(c, "200 OK", {}, "bye\n")
      c:close()
      break
    end
    local kind, n, query = path:match("^/(%a+)/(%d+)%??(.*)$")
    n = tonumber(n)
    if kind == "chunks" then -- made once per size: a timed client waits for the wire only
      chunked[n] = chunked[n] or "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .. video(n):gsub(".", "1\r\n%0\r\n") .. "0\r\n\r\n"
      c:send(chunked[n])
    elseif kind == "mixed" or kind == "badchunk" then
      local bytes, out, i, k = video(n), {}, 1, 0
      local sizes = { 1, 7, 300, 70000, 2, 4096, 65536, 13 }
      while i <= n do
        k = k + 1
        local len = kind == "mixed" and math.min(sizes[k % #sizes + 1], n - i + 1) or 1
        local head = str_format(k % 3 == 0 and "%X" or "%x", len) .. (k % 5 == 0 and ";ext=1" or "")
        local tail = (kind == "badchunk" and k == floor(n / 2)) and "XX" or "\r\n"
        out[#out + 1] = head .. "\r\n" .. bytes:sub(i, i + len - 1) .. tail
        i = i + len
      end
      c:send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" .. concat(out)
        .. "0\r\nX-Trailer: yes\r\n\r\n")
    elseif kind == "cut" then
      local part, act = unescape(query:match("part=([^&]*)") or ""), query:match("do=(%a+)")
      hits[path] = (hits[path] or 0) + 1
      if hits[path] == 1 then
        local bytes = video(n)
        c:send(str_format("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", n)
          .. bytes:sub(1, floor(n / 2)))
        socket.sleep(0.1)
        c:close()
        socket.sleep(0.1) -- the client has written what it got
        if act == "delete" then
          os.remove(part)
        else
          local f = io.open(part, "r+b")
          if f then f:close(); os.execute("truncate -s 10 '" .. part:gsub("'", "'\\''") .. "'") end
        end
      else
        serve_video(c, video(n), range)
      end
    elseif kind == "video" then
      serve_video(c, video(n), range)
    else
      answer(c, "404 Not Found", {}, "no such path\n")
    end
    c:close()
  end
end
server:close()
