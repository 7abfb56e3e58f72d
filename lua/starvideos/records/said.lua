-- A journal ledger's spend_limit warnings (docs/spend.md, "Warnings"): said in the order their creates were
-- decided, and a refusal's 100% once a window however many processes share the journal.
--
-- A create's steps (spend.lua's rule, read from its pending record) are said once that record is written, which a
-- threaded writer does on a later turn; a refusal is decided at once.  Each waits here behind those decided
-- before it, so 50% and 80% never come after the 100% of the create refused next.  A refusal's 100% is marked in
-- the journal itself, a `told` record appended under the journal's lock by the first process that finds none
-- (every process reads it into its rule's `told:` marks, journal.lua's take): the once of the dict's `add` and of
-- Redis' script, where a process's own memory would say it once per process.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
-- spend.lua, loaded at its first use (a spend limit set, or reservations read back), as the optional layers are
local function Spend() return require "starvideos.spend" end
local journal = require "starvideos.records.journal"

local setmetatable, table_remove = setmetatable, table.remove

local S = {}
S.__index = S

local REFUSED = " (a create was refused)"

-- The warnings of a journal at path for cfg's on_event; follow(): the journal read on (its ledger's).
function S.new(path, cfg, follow)
  return setmetatable({ path = path, cfg = cfg, follow = follow, list = {} }, S)
end

-- What is ready at the head said, in order; a create whose record is not written yet holds the rest back.
function S:drain()
  local list = self.list
  while list[1] and list[1].ready ~= nil do
    local e = table_remove(list, 1)
    if e.ready then Spend().tell(self.cfg, e.crossed, e.which, e.reason) end
  end
end

-- The steps a create's pending record crossed (the rule's "i:pct ..."; which: its limits), said once its record
-- (ticket) is written.
function S:after(ticket, crossed, which)
  if crossed and crossed ~= "" then
    self.list[#self.list + 1] = { ticket = ticket, crossed = crossed, which = which }
  end
end

-- Ticket's record written (ok) or not (nothing to say: asked again, or let go).
function S:settled(ticket, ok)
  for _, e in ipairs(self.list) do
    if e.ticket == ticket and e.ready == nil then e.ready = ok and true or false end
  end
  self:drain()
end

-- Whether no process said limit w's 100% in its window yet: its `told` record appended if so, under the journal's
-- lock.  A journal that cannot be locked says it (a warning twice rather than none).
local function first(self, w)
  local ok = journal.locked(self.path, function(lock)
    local st = assert(self.follow())
    if st.told[w.key .. ":100"] then return false end
    local line = assert(journal.line { event = "told", told = w.key, percent = 100, ends = w.ends })
    assert(lock:append(self.path, line, false))
    journal.take(st, line:sub(1, -2)) -- (and read again from the file: taken once)
    return true
  end)
  return ok ~= false
end

-- A create refused by limit w (spend.lua's covering entry) whose 100% this process has not said: said after what
-- was decided before it, if no other process said it.
function S:refused(w)
  if first(self, w) then
    self.list[#self.list + 1] = { ready = true, crossed = "1:100", which = { w }, reason = REFUSED }
  end
  self:drain()
end

return S
