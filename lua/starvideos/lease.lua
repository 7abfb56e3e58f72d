-- The lease's rule (docs/keep-and-fleet.md, "An owner that lost its lease") for both ledgers, keep and the
-- download: a task's number (its fence), the parts of a lease that time a holder, a holder's lapses, and the
-- numbers a process holds (M.fences).  Times are core.now()'s: given (t), or the fences' clock.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local M = {}

-- The keeper object both ledgers' keeper(look) give (docs/architecture.md, the ledger interface): its methods ask
-- its ledger's leases (k.leases).  A keeper holds a lease of its own: orphans claims the unfinished tasks whose
-- owner let go, owed the webhooks they owed.  A look (keeper(true)) holds none and claims nothing: orphaned, what
-- orphans would claim now (keep's dry run); leased, what stays under another live process's lease.
function M.keeper(class)
  function class.orphans(k) return k.leases:orphans(k) end
  function class.owed(k) return k.leases:owed_orphans(k) end
  -- the queue (client:submit's): the next entry claimed for it (queue.lua's rule), false (none), or nil, err; an
  -- entry's state told: "d" its create answered, "s" saved, "f" failed, "q" back to the queue (nothing sent)
  function class.queued(k, weights) return k.leases:queued(k, weights) end
  function class.queue_state(k, e, state) return k.leases:queue_state(k, e, state) end
  return class
end

local Look = {}
Look.__index = Look
function Look:orphaned() return self.leases:orphaned() end
function Look:leased() return self.leases:leased() end
function Look.close() end

function M.onlooker(leases) return setmetatable({ leases = leases }, Look) end

M.FIRST = 1    -- a task's number at its create (a record without one has it); a claim makes it one more
M.RENEW = 1 / 3 -- a holder renews its lease every third of it (a taken job looks as often)
M.ASK = 1 / 2  -- a commit asks the store first when the lease was not renewed for half of it
M.LAPSE = 0.9  -- a renewal this part of a lease or more after the one before: a lapse (a tenth for two clocks)
M.LOOK = 1 / 6 -- keep looks at the ledger every sixth of a lease (0.1 s to 5 s)

-- A record's number (its fence field: a string, a number, or none), and the one a claim of it takes.
function M.number(fence) return tonumber(fence) or M.FIRST end
function M.claimed(fence) return M.number(fence) + 1 end

-- Seconds in `part` of a lease of ms milliseconds; keep's look interval for a lease of s seconds.
function M.part(ms, part) return ms * part / 1000 end
function M.look(s) return math.max(0.1, math.min(5, s * M.LOOK)) end

-- h (a process's lease, a keeper) made a holder, renewed at t (nil: never yet); whether due at t (lease ms).
function M.holder(h, t)
  h.renewed, h.lapses = t or -1e9, 0
  return h
end
function M.due(h, t, ms) return t - h.renewed >= M.part(ms, M.RENEW) end

-- A renewal of h's lease (ms) sent at `sent` answered at t: a lapse when its lease may have run out between.
function M.answered(h, sent, t, ms)
  if h.renewed > -1e9 and t - h.renewed >= M.part(ms, M.LAPSE) then h.lapses = h.lapses + 1 end
  h.renewed = sent
end

-- The process's leases by name (a journal's path, a store's "where prefix"), each shared by the ledgers of that
-- name: name's (new(name) at the first hold: a lease table, or nil, err), one user more; or nil, err.
local held = {}
function M.hold(name, new)
  local lease = held[name]
  if not lease then
    local err
    lease, err = new(name)
    if not lease then return nil, err end
    lease.name, lease.users, held[name] = name, 0, lease
  end
  lease.users = lease.users + 1
  return lease
end

-- One user fewer: whether it was the last (the lease let go then: its let_go(lease), when it has one).
function M.release(lease)
  lease.users = lease.users - 1
  if lease.users > 0 then return false end
  if held[lease.name] == lease then held[lease.name] = nil end
  if lease.let_go then lease.let_go(lease) end
  return true
end

-- The numbers a process holds by task id (its creates, its keeper's claims), each with its holder and the
-- holder's lapses then.  ms: a store's lease, lapsed by the clock; nil: a journal's, an flock held while its
-- process lives, lapsed only when its file is gone (removed by hand, or by a cleaner of /tmp).
local F = {}
F.__index = F

function M.fences(ms, clock) return setmetatable({ held = {}, ms = ms, clock = clock or core.now }, F) end

function F:take(id, n, by) self.held[id] = { n = n, by = by, lapses = by and by.lapses } end

-- The number task id is held at and its holder (nil: not held); let_go: the same, then forgotten.
function F:holder(id)
  local e = self.held[id]
  if e then return e.n, e.by end
end
function F:let_go(id)
  local n, by = self:holder(id)
  self.held[id] = nil
  return n, by
end

-- Whether task id may have been claimed since it was taken: its holder lapsed since, or its lease not renewed
-- for `part` of it now (default LAPSE: it may have run out).
function F:lapsed(id, part)
  local e = self.held[id]
  if not e or not e.by then return false end
  if not self.ms then return core.file_kind(e.by.file) ~= "file" end
  return e.by.lapses ~= e.lapses or self.clock() - e.by.renewed >= M.part(self.ms, part or M.LAPSE)
end

-- The store said yes to a hold of task id asked at `sent` (its script renewed the holder's lease): taken when
-- answered within half a lease (then held as if taken now), else false (to be asked again).
function F:renewed(id, sent)
  local t, n, by = self.clock(), self:holder(id)
  if t - sent >= M.part(self.ms, M.ASK) then return false end
  if n then M.answered(by, sent, t, self.ms); self:take(id, n, by) end
  return true
end

return M
