-- The samples a journal holds for the learned schedule (each completed task's kind and how long
-- it took), read from its end backwards a bounded slice per call: never all of it inside a step.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local cjson = require("cjson.safe").new()

local io_open, type, tostring, setmetatable, math_min, next =
  io.open, type, tostring, setmetatable, math.min, next

local S = {}

-- The caps: config's `samples` per kind (the schedule keeps no more), and these.
S.MAX = 2000              -- samples in all
S.BYTES = 8 * 1024 * 1024 -- bytes read in all

local Reader = {}
Reader.__index = Reader

-- reader:next(max_bytes) -> list, done.  No file, or not a regular one: none.
function S.reader(path)
  local r = setmetatable({ pos = 0, read = 0, count = 0, done = true, per_kind = {}, waiting = {} }, Reader)
  local kind = core.file_kind(path) -- (a FIFO is not opened: that may wait)
  local f = (kind == "file" or kind == "link") and io_open(path, "rb")
  if f then r.f, r.pos, r.done = f, f:seek("end") or 0, false end -- (at 0, next closes it)
  return r
end

-- Whether one more sample of its kind is kept (newest first; per_kind: the counts so far): compaction's too.
function S.kept(per_kind, model, duration, resolution)
  local key = model .. "|" .. tostring(duration) .. "|" .. tostring(resolution)
  per_kind[key] = (per_kind[key] or 0) + 1
  return per_kind[key] <= config.DEFAULTS.samples
end

local function add_sample(r, out, model, duration, resolution, took, within)
  if type(took) == "number" and type(model) == "string" and S.kept(r.per_kind, model, duration, resolution) then
    r.count = r.count + 1
    out[#out + 1] = { model = model, duration = duration, resolution = resolution, took = took,
      within = type(within) == "number" and within or nil }
  end
end

-- One line, newest first: a completion (status with took) waits for its task's created record (its kind).
local function sample_line(r, line, out)
  local waiting = r.waiting
  if not (line:find('"took"', 1, true) or (next(waiting) and line:find('"created"', 1, true))) then return end
  local rec = cjson.decode(line)
  if type(rec) ~= "table" or type(rec.id) ~= "string" then return end
  local ev = rec.event
  if ev == "sample" then
    add_sample(r, out, rec.model, rec.duration, rec.resolution, rec.took, rec.within)
  elseif ev == "status" and type(rec.took) == "number" and not waiting[rec.id] then
    waiting[rec.id] = rec
  elseif ev == "created" and waiting[rec.id] then
    add_sample(r, out, rec.model, rec.duration, rec.resolution, waiting[rec.id].took, waiting[rec.id].within)
    waiting[rec.id] = nil
  end
end

-- The lines of the n bytes before pos and carry (the start of the slice read before), newest
-- first; what precedes their first newline (unless at the file's start) is the next carry.
function Reader:next(max_bytes)
  if self.done then return {}, true end
  local pos, n, out, lines = self.pos, math_min(max_bytes, self.pos, S.BYTES - self.read), {}, {}
  local text = (n > 0 and self.f:seek("set", pos - n) and self.f:read(n) or "") .. (self.carry or "")
  local nl = pos > n and (text:find("\n", 1, true) or #text + 1) or 0
  for line in text:sub(nl + 1):gmatch("[^\n]+") do lines[#lines + 1] = line end
  self.pos, self.read, self.carry = pos - n, self.read + n, pos > n and text:sub(1, nl - 1) or nil
  for i = #lines, 1, -1 do
    if self.count >= S.MAX then break end
    sample_line(self, lines[i], out)
  end
  if self.pos == 0 or self.read >= S.BYTES or self.count >= S.MAX then
    self.done = true
    self.f:close()
    self.f, self.carry, self.waiting = nil, nil, {}
  end
  return out, self.done
end

return S
