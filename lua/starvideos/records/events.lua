-- client:sse's window in a journal (sse.lua, docs/reference.md#clientsse): the sibling file <journal>.events that
-- every process of the journal appends its keys' events to and reads its streams from.  Its first line is its base
-- ("base " and 19 digits); an event is a line "<key's hash>\31<entry>\n" written whole by the journal's writer (its
-- thread, under the file's lock: the caller's thread never waits for the disk); its id is the base plus the offset
-- of the line's end, so that ids are ordered across the processes.  Once the file is past its bound, a process
-- keeps its last `size` lines under the lock (the journal's compaction's replace) with the base moved so that
-- every kept line keeps its id.  A process looks at the bound at its first put (the file as the processes before
-- left it), every CHECK_EVERY puts and at its flush (its client's close), so that the file stays within it however
-- few events each of many processes tells (every CLI command is one); a reader gets the key's last `size` at most.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local journal = require "starvideos.records.journal"

local io_open, os_remove, tonumber, string_format, setmetatable = io.open, os.remove, tonumber, string.format,
  setmetatable

local M = {}
M.__index = M

local HEAD = 25 -- the base's line: "base " .. 19 digits .. "\n"
M.LINE_BYTES = 512 -- a line's bytes as the bound counts them: the file is cut back past size * this (1000: 512 kB)
M.CHECK_EVERY = 64 -- a process looks at the file's size every this many of its puts (and at its first, its flush)

local function head(base) return string_format("base %019d\n", base) end

-- The file's base and size (nil: not made yet, or not ours).
local function opened(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local base = tonumber((f:read(HEAD) or ""):match("^base (%d+)\n$"))
  return f, base, f:seek("end")
end

-- The file made under its lock with its first line once (another process may make it too: the first one's kept).
local function made(path)
  local f, base = opened(path)
  if f then f:close() end
  if base then return true end
  local tmp = path .. ".new-" .. core.random_id()
  local ok, err = journal.locked(path, function(lock)
    local g, b = opened(path)
    if g then g:close() end
    if b then return true end
    local w = assert(io_open(tmp, "wb"))
    w:write(head(os.time() * 1000000))
    w:close()
    return lock:replace(tmp, path)
  end)
  os_remove(tmp)
  return ok, err
end

-- The window of the key named hash in the journal at path (ledger: the client's, records/ledger.lua: its writer's
-- kind and loop), size lines kept at least.
function M.new(path, hash, ledger, size)
  local self = setmetatable({ path = path .. ".events", hash = hash, size = size, puts = 0,
    inline = ledger.writer and ledger.writer.inline }, M)
  self.by = { loop = ledger.loop, lost = function(_, why) self.lost = why end } -- (the writer's: a line not written)
  return self
end

-- The window of key k (key.lua: its part) in the journal of ledger.
function M.of(k, ledger, size)
  return k:part("sse " .. ledger.path, function() return M.new(ledger.path, k.hash, ledger, size) end)
end

-- An entry queued for the file (written by the writer's thread): true, or nil and why.
function M:put(text)
  if not self.writer then -- (the file made at the first event: a journal whose client tells none has none)
    local ok, err = made(self.path)
    if not ok then return nil, err end
    self:bound() -- (what the processes before left: each may have told fewer than CHECK_EVERY)
    self.writer = journal.writer(self.path, self.inline)
  end
  self.writer:put(self.hash .. "\31" .. text .. "\n", false, nil, self.by)
  self.puts = self.puts + 1
  if self.puts % M.CHECK_EVERY == 0 then self:bound() end
  return true
end

-- What was queued, written (seconds at most), and the file then cut back if past its bound.
function M:flush(seconds)
  if not self.writer then return end
  self.writer:flush(seconds)
  self:bound()
end

-- The file's last size lines kept, once it is past its bound (under its lock: what the writer queued meanwhile is
-- appended to the new file).
function M:bound()
  local f, _, bytes = opened(self.path)
  if f then f:close() end
  if not f or bytes < HEAD + self.size * M.LINE_BYTES then return false end
  local tmp = self.path .. ".cut-" .. core.random_id()
  local ok = journal.locked(self.path, function(lock)
    local g, base = opened(self.path)
    if not (g and base) then if g then g:close() end; return false end
    g:seek("set", HEAD)
    local text = g:read("*a")
    g:close()
    local starts = {} -- (each whole line's start)
    for b in text:gmatch("()[^\n]*\n") do starts[#starts + 1] = b end
    local at = #starts > self.size and starts[#starts - self.size + 1] - 1 or 0 -- (the bytes cut)
    local kept = text:sub(at + 1):match("^(.*\n)") or ""
    local w = assert(io_open(tmp, "wb"))
    w:write(head(base + at), kept)
    w:close()
    return lock:replace(tmp, self.path)
  end, true)
  os_remove(tmp)
  return ok
end

-- The key's entries past seen (sse.lua's since): {id, text} pairs in order, its last `size` at most (the file,
-- between two looks at its bound, may hold more), and the last id read past (seen past the newest id, 1e300 as
-- well: none, and the newest, from which the reader is told what comes; no file yet: 0).
function M:since(seen)
  local f, base, bytes = opened(self.path)
  if not (f and base) then if f then f:close() end; return {}, 0 end
  local from = seen - base
  if from > bytes then f:close(); return {}, base + bytes end -- (an id not given yet: from now on)
  if from < HEAD then from = HEAD end
  f:seek("set", from - 1)
  local text = f:read("*a") or ""
  f:close()
  local skip = text:find("\n", 1, true) or #text -- (an id that is no line's end: from the next line on)
  text, from = text:sub(skip + 1), from - 1 + skip
  local out, prefix, upto = {}, self.hash .. "\31", seen
  for line, e in text:gmatch("([^\n]*)\n()") do
    upto = base + from + e - 1
    if line:sub(1, #prefix) == prefix then out[#out + 1] = { upto, line:sub(#prefix + 1) } end
  end
  if #out > self.size then
    local last = {}
    for i = #out - self.size + 1, #out do last[#last + 1] = out[i] end
    out = last
  end
  return out, upto
end

return M
