-- The ledger on a journal read back (records/ledger.lua's methods, given to it at its first read: a client that
-- reads nothing back never loads them): the journal read whole, its unreadable lines told, the unfinished tasks,
-- every task (client:tasks), the pending creates and client:spend()'s list.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local function journal() return require "starvideos.records.journal" end
local function Spend() return require "starvideos.spend" end

return function(L)
  -- The journal read whole (what this process queued written first; missing_ok: none yet reads as empty): st, or
  -- nil, err (its leases' orphaned and leased read it too).  Unreadable lines are told once each: a warning (path,
  -- message: st.unreadable).
  function L.read_all(self, missing_ok)
    if not self.path then return nil, "no journal" end
    self.writer:flush()
    local st, err = journal().follow(self.path, nil, nil, not missing_ok)
    if st then self:saw(st) end
    return st, err
  end

  function L.saw(self, st)
    local on_event = self.cfg.on_event
    if st.bad <= (self.told_bad or 0) then return end
    self.told_bad = st.bad
    if on_event then on_event { type = "warning", path = self.path, message = st.unreadable } end
  end

  function L.unfinished(self)
    local st, err = self:read_all()
    return st and journal().unfinished(st.list), err
  end

  function L.tasks(self)
    local st, err = self:read_all(true)
    return st and require("starvideos.lists").tasks(st), err
  end

  -- client:spend()'s list (spend.lua's report): the journal's reservations, those of a process gone past its lease
  -- (its pending create unanswered: maybe paid) counted spent; without a journal, the key's bucket's.
  function L.spend(self, tenant)
    local t = Spend().clock()
    if not self.path then return Spend().report(self.cfg, self.key.bucket:spend_get(t), t, tenant) end
    self:flush()
    local st, err = self:follow() -- (read on from the last look: a scrape of the metrics reads what was added)
    if not st then return nil, err end
    local me = self.lease and self.lease.id
    return Spend().report(self.cfg, journal().spent(st).get, t, tenant, Spend().moved(st.open, function(p)
      return p.owner ~= me and not self.leases:alive(p.owner, p.lease)
    end))
  end

  function L.pending(self)
    local st, err = self:read_all()
    return st and st.open, err
  end
end
