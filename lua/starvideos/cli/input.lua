-- starvideos.cli.input: the files the command line reads whole (docs/cli.md, "Input limits"), each with its limit:
-- a file's size is judged before it is read (its end sought), and it is read with a bound, limit + 1 bytes at most,
-- so that what no size says (a FIFO, a pipe, /dev/zero, which says 0) cannot grow memory past the limit either.

local tostring, string_format, table_concat = tostring, string.format, table.concat

local M = {}

-- The limits, in bytes: a key's or a secret's file (its first line is the secret), a batch's prompts file, a film's
-- storyboard.
M.LIMITS = { secret = 4096, prompts = 16777216, storyboard = 4194304 } -- (4 KiB, 16 MiB, 4 MiB)

-- n bytes as the messages say it ("4096 bytes", "16 MiB").
local function bytes(n)
  local mib = 1048576
  if n >= mib and n % mib == 0 then return string_format("%d MiB", math.floor(n / mib)) end
  return string_format("%d bytes", n)
end

-- The size of the open file f (from its position on), when it says one: nil for a pipe or a FIFO.
local function size_of(f)
  local at = f:seek("cur")
  local size = at and f:seek("end")
  if not size then return nil end
  f:seek("set", at)
  return size - at
end

-- Whether the open file f may be read with limit: nil, or why not and the errno of the read that failed (a folder
-- opens, and reads "Is a directory": 21), none when its size is over limit.
local function judged(f, limit)
  local probe, err, code = f:read(0)
  if probe == nil and err then return tostring(err), code end
  local size = size_of(f)
  if size and size > limit then return "larger than " .. bytes(limit) end
end

-- The rest of the open file f, limit bytes at most: the text, or nil, why and the read's errno (none for "larger
-- than LIMIT": said by its size before anything is read, or found by reading limit + 1 bytes).
function M.read(f, limit)
  local why, code = judged(f, limit)
  if why then return nil, why, code end
  local text = f:read(limit + 1) or ""
  if #text > limit then return nil, "larger than " .. bytes(limit) end
  return text
end

-- The first line of the open file f (its "\n" dropped), read a byte at a time up to limit bytes (so that a person
-- typing it at a terminal ends it with Enter): the line, or nil, why and the read's errno, as M.read.
function M.first_line(f, limit)
  local why, code = judged(f, limit)
  if why then return nil, why, code end
  local parts, n = {}, 0
  while n <= limit do
    local c, err, errno = f:read(1)
    if c == nil then
      if err then return nil, tostring(err), errno end
      break
    end
    if c == "\n" then return table_concat(parts) end
    n = n + 1
    parts[n] = c
  end
  if n > limit then return nil, "larger than " .. bytes(limit) .. " with no line end" end
  return table_concat(parts)
end

return M
