-- starvideos.cli.progress: what a person sees of a batch while it runs (docs/cli.md#batch).
--   * on a terminal, the live line: a bar of the entries ended, the counts, the time left (the
--     tasks' learned estimates, as wait and generate show it) and the time spent;
--   * off a terminal, a line "N videos: C created, D done, F failed[; about T left]" when an entry
--     ends (the changes of one turn of the loop in one line: a rerun's files already whole make
--     one line, not one each), when tasks were created and no line came for CHANGED s, and every
--     EVERY s while nothing changes ($STARVIDEOS_PROGRESS_EVERY, default 30);
--   * what a kill prints (output.watch) carries the counts of the last line, the line first
--     when it was not printed yet: the two never disagree on what was created;
--   * "created" is what this run created (each a paid task): a task of an earlier run that the
--     ledger found is counted apart ("from an earlier run"), one that another live process holds
--     (its lease: a run sharing the ledger now) apart too ("from another live process"), and a create
--     sent whose answer has not come yet too (it may be paid), so that a stop at any moment says what
--     was spent.

local display = require "starvideos.cli.display"

local setmetatable, type, pairs, tonumber, require = setmetatable, type, pairs, tonumber, require
local string_format, string_rep, math_floor, math_max = string.format, string.rep, math.floor, math.max

local M = {}

M.CHANGED = 5

local P = {}
P.__index = P

-- d: the command's display; hint(counts, line): what a kill says from now on (line: the progress
-- line not printed yet, or nil).
function M.new(d, now, total, hint)
  local every = tonumber(os.getenv("STARVIDEOS_PROGRESS_EVERY") or "")
  return setmetatable({ d = d, started = now, total = total, hint = hint, etas = {}, last_line = now,
    every = every and every > 0 and every or 30, ends = 0, counts = { created = 0, done = 0, failed = 0,
    cancelled = 0, earlier = 0, others = 0, unanswered = 0, refused = 0, total = total }, dirty = false,
    printed = false, earlier = {}, sent = {} }, P)
end

-- The time left: the longest estimate of the tasks not ended (their medians; "longer than usual" only once the
-- longest's 90th percentile passed too, as a single task's line says), or nil.
function P:left(now)
  local most, most90
  for _, e in pairs(self.etas) do
    local since = now - e.at
    most, most90 = math_max(most or -math.huge, e.p50 - since), math_max(most90 or -math.huge, e.p90 - since)
  end
  return most and display.eta_text({ p50 = most, p90 = most90 }, 0)
end

-- "C created[, E from an earlier run][, O from another live process][, U sent without an answer yet]" (long) or
-- "C created[, E earlier][, O another's]" (the bar).
function M.created(c, long)
  local t = string_format("%d created", c.created)
  if (c.earlier or 0) > 0 then
    t = t .. string_format(long and ", %d from an earlier run" or ", %d earlier", c.earlier)
  end
  if (c.others or 0) > 0 then
    t = t .. string_format(long and ", %d from another live process" or ", %d another's", c.others)
  end
  if long and (c.unanswered or 0) > 0 then
    t = t .. string_format(", %d sent without an answer yet", c.unanswered)
  end
  return t
end

-- "3 failed", "3 failed (2 refused by --spend-limit)"
local function failed(c)
  return string_format("%d failed%s", c.failed, c.refused > 0 and string_format(" (%d refused by --spend-limit)",
    c.refused) or "")
end

function P:text(now)
  local c = self.counts
  local left = self:left(now)
  return string_format("%d videos: %s, %d done, %s%s%s", c.total, M.created(c, true), c.done, failed(c),
    c.cancelled > 0 and string_format(", %d cancelled", c.cancelled) or "", left and "; " .. left or "")
end

-- One event of the batch (its jobs' and its counts').
function P:event(ev, now)
  if type(ev) ~= "table" then return end
  self.now = now
  if ev.type == "status" and ev.index then
    local s = ev.status
    if s == "completed" or s == "failed" then
      self.etas[ev.index] = nil
    elseif type(ev.eta) == "table" and type(ev.eta.p50) == "number" then
      self.etas[ev.index] = { p50 = ev.eta.p50, p90 = tonumber(ev.eta.p90) or ev.eta.p50, at = now }
    end
  elseif ev.type == "attached" and ev.index and not self.earlier[ev.index] then -- (told before the batch's count)
    self.earlier[ev.index] = true
    local whose = ev.alive and "others" or "earlier" -- (alive: its lease's process lives, a run beside this one)
    self.counts[whose] = self.counts[whose] + 1
  elseif ev.type == "batch" then
    local c = self.counts
    local ends = ev.done + ev.failed + (ev.cancelled or 0)
    self.ended = self.ended or ends ~= self.ends
    self.ends = ends
    c.created, c.done, c.failed, c.cancelled, c.refused = math_max(0, ev.created - c.earlier - c.others), ev.done,
      ev.failed, ev.cancelled or 0, ev.refused or 0
    self.dirty = true
  end
end

-- The paths the service's creates are sent to (each model's endpoint), read once.
local creates_at
local function is_create(ev)
  if ev.method ~= "POST" or type(ev.path) ~= "string" or ev.request == nil then return false end
  if not creates_at then
    creates_at = {}
    for _, m in pairs(require("starvideos").models) do creates_at[m.endpoint] = true end
  end
  return creates_at[ev.path] == true
end

-- A request or a response of the batch's client (cli/client.lua's on_event): a create sent, or its answer come.
-- A create sent is counted until its answer comes (a kill then: it may be paid for), what a stop says at once.
function P:exchange(ev)
  if type(ev) ~= "table" or not is_create(ev) then return end
  local sent, c = self.sent, self.counts
  if ev.type == "request" and sent[ev.request] == nil then
    sent[ev.request], c.unanswered = false, c.unanswered + 1
  elseif ev.type == "response" and sent[ev.request] == false then
    sent[ev.request], c.unanswered = true, c.unanswered - 1
  else
    return
  end
  self.dirty = true
  self.hint(c, not self.d.tty and self:text(self.now or self.started) or nil)
end

-- A progress line off a terminal, now.
function P:line(now)
  self.d:plain(self:text(now))
  self.last_line, self.ended, self.printed = now, false, true
  self.hint(self.counts, nil)
end

-- The bar on a terminal.
function P:draw(now)
  local d, c = self.d, self.counts
  local room = d:room()
  local frac = self.total > 0 and self.ends / self.total or 1
  local marks = room >= 60 and 20 or 8
  local fill = math_floor(frac * marks + 0.5)
  local head = string_format("[%s%s] %d/%d  %s, %d done, %s", string_rep("#", fill),
    string_rep(".", marks - fill), self.ends, self.total, M.created(c), c.done, failed(c))
  local left = self:left(now)
  d:live(display.fit(head, string_format("%s  %s", left and "  " .. left or "", display.clock(now - self.started)),
    room))
end

-- A turn of the loop ended (the command's sleep, at most every 0.2 s): what changed shown.
function P:status_line(now)
  self.now = now
  if self.d.tty then
    if self.dirty then self.hint(self.counts, nil) end
    if self.dirty or now - (self.drawn or -1) >= 0.5 then self.drawn, self.dirty = now, false; self:draw(now) end
    return
  end
  local since = now - self.last_line
  if not self.printed or self.ended or (self.dirty and since >= M.CHANGED) or since >= self.every then
    self.dirty = false
    return self:line(now)
  end
  if self.dirty then self.hint(self.counts, self:text(now)) end -- (a kill prints the line first)
end

-- The command ends (or stops: Ctrl-C): the last counts shown (off a terminal, the line when it was not
-- printed), then the live line erased (keep: kept).
function P:finish(keep)
  local now = self.now or self.started
  if not self.d.tty and (self.dirty or self.ended or not self.printed) then self:line(now) end
  if self.d.tty and keep then self:draw(now) end -- (the bar as it ended, kept)
  self.dirty = false
  self.d:finish(keep)
end

return M
