-- Where an exchange's answer goes inside nginx, as csrc/curl/body.c's units: memory, memory and a tap, or a file,
-- chosen once when the exchange is made (B.of) and called from then on, never asked again.  Each unit:
--   cap(r)          the most bytes it keeps in memory (a file's: its error page)
--   open(x, left)   at the send: true | nil, err (a file's .part, gone on through the handle an attempt left)
--   asks(x)         its Range's bytes ("A-B", "A-"), or nil
--   start(x, h)     an answer's head read (not a redirect followed): true | nil, wire, message
--   write(x, data)  the answer's bytes (those before a ranged 200's first dropped): true | nil, wire, message
--   chunks(x)       a chunked body's chunks read ahead, taken whole where it can (a file's, in C): true | nil, ...
--   ended(x, total) the answer is whole: x.have and x.total said
--   flush(x)        its thread ended: what was read is where it goes (true | nil, err)
--   take(x)         the .part's handle given up (result, cancel), or nil
--   in_memory       its body in memory (a long one's reads let the worker breathe more often: nginx/wire.lua)

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local A = require "starvideos.nginx.answer"

local B = {}

local function yes() return true end
local function none() end

local span = A.span

local MEMORY = { in_memory = true, start = yes, chunks = yes, flush = yes, take = none }
B.MEMORY = MEMORY

function MEMORY.cap(r) return r.max_body end
function MEMORY.open(x) x.offset, x.have = 0, 0; return true end
function MEMORY.asks(x) return x.from and string.format("%.0f-%.0f", x.from, x.from + x.cap - 1) end
function MEMORY.ended(x, total) x.have, x.total = x.kept, total end

-- Into memory up to x.cap: past it garbled, or a ranged exchange's read ended there ("capped"), or a held one's
-- 200 held there (x.hold, transport.lua's: its read goes on, into the next range's x.parts, through its unit, once
-- it is asked for).
function MEMORY.write(x, data)
  local over, rest = #data > x.cap - x.kept, nil
  if over then data, rest = data:sub(1, x.cap - x.kept), data:sub(x.cap - x.kept + 1) end
  x.parts[#x.parts + 1], x.kept = data, x.kept + #data
  if not over then return true end
  if x.hold and x.status == 200 then
    local ok, wire, msg = x.hold(x)
    if not ok then return nil, wire, msg end
    return x.unit.write(x, rest)
  end
  if x.from then return nil, "capped" end
  return nil, "garbled", core.too_long(x.cap)
end

-- Memory's, its kept bytes fed to the tap first (a starvideos.sign stream: its refusal stops the feeding, not the
-- exchange): a 2xx's from the byte asked for (not a redirect's, an error page, a 206 from elsewhere).
local TAP = setmetatable({}, { __index = MEMORY })
B.TAP = TAP

function TAP.start(x, h)
  local s = x.status
  x.tap = s >= 200 and s < 300 and (s ~= 206 or span(206, h) == (x.from or 0)) and x.r.tap or nil
  return true
end

function TAP.write(x, data)
  local keep = math.min(#data, x.cap - x.kept)
  if x.tap and keep > 0 and not x.tap:feed(keep < #data and data:sub(1, keep) or data) then x.tap = nil end
  return MEMORY.write(x, data)
end

-- A download's .part (core.part_open's handle, x.fh): its 2xx body written there from the byte its answer starts
-- at, anything else (an error page) kept in memory up to x.cap.
local FILE = { in_memory = false }
B.FILE = FILE

function FILE.cap() return core.error_page_max end

function FILE.open(x, left)
  local fh, offset = core.part_open(x.r.file, x.r.offset or 0, left)
  if not fh then return nil, offset end
  x.fh, x.offset, x.have = fh, offset, offset
  return true
end

function FILE.asks(x) return x.offset > 0 and string.format("%.0f-", x.offset) or nil end

-- A download's body past x.most: garbled, said by the core for both transports.
local function too_long(x) return nil, "garbled", core.too_long(x.most, x.total ~= nil, x.at) end

-- A 200 is written from byte 0 (never appended), a 206 from its Content-Range's: the one asked.
function FILE.start(x, h)
  if x.status ~= 200 and x.status ~= 206 then return true end -- (an error page: memory)
  local a, t = span(x.status, h)
  if x.status == 206 and a ~= x.offset then x.first = a or -1; return nil, "broken", "" end -- (the verdict's rule)
  if x.spent then return nil, "broken", "the exchange was cancelled" end
  x.have, x.total, x.to_file, x.most = a, t, true, t or x.r.max_body
  local ok, err = true, nil
  if a > 0 then -- what lies past a in the .part is not this answer's
    ok, err = x.fh:truncate(a)
  elseif x.fh:at() > 0 then -- from byte 0 after all: a new file, as any download from 0
    x.fh:close()
    ok, err = core.part_open(x.r.file, 0)
    x.fh = ok
  end
  return ok, "io", err
end

function FILE.write(x, data)
  if not x.to_file then -- an error page: its start kept for the message
    local room = math.min(x.cap - x.kept, #data)
    if room > 0 then x.parts[#x.parts + 1], x.kept = room < #data and data:sub(1, room) or data, x.kept + room end
    return true
  end
  if x.have + #data > x.most then return too_long(x) end
  local ok, err = x.fh:write(data)
  x.have = x.have + (ok and #data or 0)
  return ok, "io", err
end

-- Chunks wholly read go to the file in C, up to one not plain or whole (read by nginx/answer.lua).
function FILE.chunks(x)
  if not x.to_file or x.spent then return true end
  local pos, n = x.fh:chunks(x.buf, x.pos)
  if pos then x.pos, x.have = pos, x.have + n end
  if x.have > x.most then return too_long(x) end
  return true
end

function FILE.ended(x) if x.to_file and not x.total then x.total = x.have end end

function FILE.flush(x)
  if x.fh and not x.spent then return x.fh:flush() end
  return true
end

function FILE.take(x)
  local fh = x.fh
  x.fh = nil
  return fh
end

-- The unit of the request r, chosen once: a file's, else a tap's, else memory's.
function B.of(r) return r.file ~= nil and FILE or r.tap ~= nil and r.body == nil and TAP or MEMORY end

return B
