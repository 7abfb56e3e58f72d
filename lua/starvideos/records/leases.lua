-- Leases and claims on a journal (docs/keep-and-fleet.md): a lease per process and journal,
-- let go when the last of its ledgers closes (what a closed client left is nobody's), and one per keep.
-- A journal's ledger's own (ledger.leases = M.new(ledger)): its keepers, their claims, the holds it asks.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local journal = require "starvideos.records.journal"
local carried = require("starvideos.lists").carried -- (a task carried: both ledgers')
local rule = require "starvideos.lease"

local ipairs, pairs, tostring, setmetatable, assert, os_remove, os_getenv, string_format =
  ipairs, pairs, tostring, setmetatable, assert, os.remove, os.getenv, string.format
local table_concat = table.concat

local M = {}

M.FOLLOW = 1024 * 1024 -- bytes of the journal a keeper reads per look

local function let_go_of(lease)
  os_remove(lease.file) -- first: a name is never locked again once let go
  lease.lock:unlock()
end

-- <journal>.owners/<id>, else (a folder the process may not write in, a journal given to
-- nginx's `nobody`) under /tmp, a path the records then carry.
local function new_lease(path)
  local id = core.random_id()
  local file = path .. ".owners/" .. id
  local lock, err = core.try_lock(file, true)
  local elsewhere
  if not lock then
    elsewhere = string_format("%s/starvideos-leases-%d/%s", os_getenv("TMPDIR") or "/tmp", core.uid(), id)
    local lock2, err2 = core.try_lock(elsewhere, true)
    if not lock2 then return nil, tostring(err) .. "; " .. tostring(err2) end
    lock, file = lock2, elsewhere
  end
  return { id = id, lock = lock, path = path, file = file, elsewhere = elsewhere, let_go = let_go_of }
end

-- The process's lease of journal path, one more user (lease.lua's hold); or nil, err.  release: one user fewer.
function M.hold(path) return rule.hold(path, new_lease) end
M.release = rule.release

local Keeper = rule.keeper({})
Keeper.__index = Keeper

function Keeper:close() -- (what its ledger queued, deliveries and claims, written before its lease goes)
  self.writer:flush()
  if self.lock then let_go_of(self); self.lock = nil end
end

-- A ledger's leases (records/ledger.lua's): what its keepers claim, what keep may take, what it still holds.
local Leases = {}
Leases.__index = Leases

function M.new(ledger)
  return setmetatable({ ledger = ledger }, Leases)
end

-- carrying[id]: being carried; again[id] = t: one it failed to carry, offered again from t on.
-- (look: one that claims nothing, lease.lua's onlooker)
function Leases:keeper(look)
  if look then return rule.onlooker(self) end
  local ledger = self.ledger
  local k, err = new_lease(ledger.path)
  if not k then return nil, err end
  k.told, k.carrying, k.again, k.swept, k.writer, k.leases = {}, {}, {}, {}, ledger.writer, self
  return setmetatable(k, Keeper)
end

-- A journal keeps no queue (client:submit refuses it): none to claim.
function Leases.queued() return false end
function Leases.queue_state() end

-- Is the owner's lease let go?  Taken for a moment to see; one let go is removed (its holder is gone).
local function let_go(k, owner, elsewhere, cache)
  if not owner then return true end
  if cache[owner] ~= nil then return cache[owner] end
  local file = elsewhere or k.path .. ".owners/" .. owner
  local lock, _, missing = core.try_lock(file)
  if lock then os_remove(file); lock:unlock() end
  cache[owner] = lock and true or missing == "missing"
  return cache[owner]
end

-- Whether another process lives that holds the lease `owner` of the ledger's journal (then it may be writing
-- its task's .part right now).
function Leases:alive(owner, lease)
  return not let_go({ path = self.ledger.path }, owner, lease, {})
end

local function follow(ledger, k)
  if not k.lock then return nil, "the keeper is closed" end
  k.writer:flush() -- (what this process queued read too, as the ledger's reads do)
  local st, err = journal.follow(k.path, k.state, not k.whole and M.FOLLOW or nil)
  k.state = st or k.state
  if st then ledger:saw(st) end
  return st, err
end

-- Claims for k, in one write under the journal's lock, each candidate c for which record(st, c)
-- (st: the journal now) gives a claim record: those claimed, or nil, err.
local function claim(k, candidates, record)
  local path, won = k.path, {}
  if not candidates[1] then return won end
  local ok, err = journal.locked(path, function(lock)
    local st = assert(journal.follow(path, k.state))
    k.state = st
    local lines = {}
    for _, c in ipairs(candidates) do
      local rec = record(st, c)
      if rec then
        lines[#lines + 1] = assert(journal.line(rec))
        won[#won + 1] = c
      end
    end
    if not lines[1] then return true end
    return lock:append(path, table_concat(lines), true) -- one write, one fsync
  end)
  if not ok then return nil, err or "cannot append to the journal" end
  return won
end

-- Claims for k every unfinished task whose owner let go, and k's own due again: tasks, the orphaned
-- pending creates (each once), and whether k is still behind (then nothing is claimed).
function Leases:orphans(k)
  local ledger = self.ledger
  local st, err = follow(ledger, k)
  if not st then return nil, err end
  if st.behind then return {}, {}, true end
  local cache, candidates, pendings, out = {}, {}, {}, {}
  for _, t in ipairs(st.list) do
    if (t.path or t.status == "failed") and t.owner and not k.swept[t.owner] then
      k.swept[t.owner] = true -- settled: its owner's lease is looked at once, removed if let go
      let_go(k, t.owner, t.lease, cache)
    elseif not t.path and t.status ~= "failed" then
      if t.owner ~= k.id then
        if let_go(k, t.owner, t.lease, cache) then candidates[#candidates + 1] = { id = t.id, owner = t.owner } end
      elseif not k.carrying[t.id] and k.again[t.id] and k.again[t.id] <= core.now() then -- its own, again
        k.again[t.id] = nil
        out[#out + 1] = carried(t, t.part, k.id)
      end
    end
  end
  for _, p in ipairs(st.open) do
    if not k.told[p["local"]] and let_go(k, p.owner, p.lease, cache) then
      k.told[p["local"]] = true
      pendings[#pendings + 1] = p
    end
  end
  local claimed, cerr = claim(k, candidates, function(now_st, c)
    c.t = now_st.by_id[c.id] -- still unfinished, and its owner's
    if c.t and not c.t.path and c.t.status ~= "failed" and c.t.owner == c.owner then
      c.fence = rule.claimed(c.t.fence)
      return { event = "claim", id = c.id, owner = k.id, lease = k.elsewhere, fence = c.fence }
    end
  end)
  if not claimed then return nil, cerr end
  for _, c in ipairs(claimed) do
    c.t.owner, c.t.lease = k.id, k.elsewhere
    ledger.fences:take(c.id, c.fence, k)
    out[#out + 1] = carried(c.t, c.t.part, c.owner)
  end
  return out, pendings
end

-- The unfinished tasks and pending creates whose owner let go, as orphans would claim them now, claimed by none
-- (keep's dry run; a lease let go is removed, as a look does): tasks, pendings; or nil, err.
function Leases:orphaned()
  local ledger = self.ledger
  local st, err = ledger:read_all(true)
  if not st then return nil, err end
  local k, cache, tasks, pendings = { path = ledger.path }, {}, {}, {}
  for _, t in ipairs(st.list) do
    if not t.path and t.status ~= "failed" and let_go(k, t.owner, t.lease, cache) then
      tasks[#tasks + 1] = carried(t, t.part, t.owner)
    end
  end
  for _, p in ipairs(st.open) do
    if let_go(k, p.owner, p.lease, cache) then pendings[#pendings + 1] = p end
  end
  return tasks, pendings
end

-- What keep cannot take yet (the ledger interface's leased): the unfinished tasks and pending creates whose owner
-- lives (another process than this one), and how many such owners; their leases end with their processes (no
-- time to say: first, last nil).  Or nil, err.
function Leases:leased()
  local ledger = self.ledger
  local st, err = ledger:read_all(true)
  if not st then return nil, err end
  local k, cache, me, owners, out = { path = ledger.path }, {}, ledger.lease and ledger.lease.id, {}, { owners = 0 }
  local function live(owner, lease)
    if owner and owner ~= me and not let_go(k, owner, lease, cache) then
      if not owners[owner] then owners[owner], out.owners = true, out.owners + 1 end
      return true
    end
  end
  local n = 0
  for _, t in ipairs(st.list) do
    if not t.path and t.status ~= "failed" and live(t.owner, t.lease) then n = n + 1 end
  end
  for _, p in ipairs(st.open) do if live(p.owner, p.lease) then n = n + 1 end end
  out.tasks = n
  return out
end

-- Under the journal's lock: whether the process still holds task id at number n (then `also(lock)` done, and its
-- lease `by`, its file removed, locked again: keepers see it live from now on): true, false and {by, path,
-- sha256}, or nil (the journal cannot be locked or read).
function Leases:holds(id, n, by, also)
  local ledger = self.ledger
  local ok, why = journal.locked(ledger.path, function(lock)
    local t = assert(ledger:follow()).by_id[id]
    if t and rule.number(t.fence) ~= n then return false, { by = t.owner, path = t.path, sha256 = t.sha256 } end
    if by and by.lock and core.file_kind(by.file) ~= "file" then
      local again = core.try_lock(by.file, true)
      if again then by.lock:unlock(); by.lock = again end
    end
    return not also or also(lock)
  end)
  if ok == false then return false, why end
  return ok and true or nil
end

-- Whether the process still holds task id at its number (ledger.fences), asked under the journal's lock: an
-- object whose poll() answers at once, true or false and {by = its holder now, path = its file once saved}
-- (fleet/leases.lua's, on a store, answers later).  nil: nothing held to ask about.
function Leases:confirm(id)
  local ledger = self.ledger
  local n, by = ledger.fences:holder(id)
  if not (ledger.path and n) then return nil end
  return { drop = function() end, poll = function()
    local yes, why = self:holds(id, n, by)
    return yes ~= false, why -- (a journal it cannot read: its lease, a lock, held all the same)
  end }
end

-- The webhooks owed whose owner let go, claimed for k: {wid, task, body}s.
function Leases:owed_orphans(k)
  local st, err = follow(self.ledger, k)
  if not st then return nil, err end
  if st.behind then return {} end
  local cache, candidates, from = {}, {}, {}
  for wid, rec in pairs(st.owed) do
    if rec and rec.owner ~= k.id and let_go(k, rec.owner, rec.lease, cache) then
      candidates[#candidates + 1], from[wid] = { wid = wid, task = rec.task, body = rec.body }, rec.owner
    end
  end
  return claim(k, candidates, function(now_st, c)
    local cur = now_st.owed[c.wid] -- still owed, and by the owner seen
    if cur and cur.owner == from[c.wid] then
      return { event = "owed", wid = c.wid, task = c.task, body = c.body, owner = k.id, lease = k.elsewhere }
    end
  end)
end

return M
