-- Every key a store's script (fleet/store.lua's define) reads or writes is one of its KEYS: no name is built in
-- a script (Redis documents it, Dragonfly refuses it by default, Upstash takes a global lock for it), the client
-- computes them all (docs/keep-and-fleet.md#scripts-declare-their-keys).  A script is sent as
--   EVAL body numkeys [identity] KEYS... MORE... [its identity] #KEYS ARGV...
-- KEYS the caller's, by position; MORE more keys declared (keys.more: the caller's; then those a run asked for),
-- not by position; #KEYS how many the caller's are, which PRELUDE takes off ARGV, leaving KEYS as the caller's.
--
-- A script whose keys follow from what it reads (a key's task, the ids of a set, an owner's lease, a kind's
-- samples, a reservation's limits) asks for them by label (`key(label)`: the name under the key's prefix
-- "starvideos:{HASH}:", e.g. "task:<id>"; nil when not declared, noted) and, before it writes anything, answers
-- `needed()`: the error STARVIDEOS_KEYS and the labels it lacks, and nothing written.  The store sends it again
-- with their keys in MORE (the client computes them: the prefix and the label), at most ROUNDS times.  So a read
-- of a set takes one round trip more per level it follows (the ids, then their owners' leases) while the client
-- does not know them, and the callers that know a script's keys (a task's kind, its key's hash, a reservation's
-- limits: fleet/ledger.lua) pass them in keys.more, so that a queued record is never sent twice (sent again, it
-- would run after the records sent behind it).  `declared(label)`: the key, or an error (a label a script always
-- has, or checked with key() first).  And unpack, on Lua 5.1 (Redis, Valkey, KeyDB) and 5.4 (Dragonfly).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local type, ipairs, tostring, table_concat = type, ipairs, tostring, table.concat

local M = {}

M.ROUNDS = 8 -- a script's runs at most, each with the keys the one before asked for

M.PRELUDE = [=[
local unpack = table.unpack or unpack -- (Lua 5.1's global, table.unpack on 5.4: Dragonfly's)
local KEY, NEED, ASKED = {}, {}, {}
do
  local n = tonumber(table.remove(ARGV, 1))
  for i = 1, #KEYS do KEY[string.match(KEYS[i], '^starvideos:{[^}]*}:(.*)$') or KEYS[i]] = KEYS[i] end
  for i = #KEYS, n + 1, -1 do KEYS[i] = nil end
end
local function key(label)
  local k = KEY[label]
  if not k and not ASKED[label] then ASKED[label] = true; NEED[#NEED + 1] = label end
  return k
end
local function declared(label)
  return KEY[label] or error('starvideos: key ' .. label .. ' not declared')
end
local function needed()
  if not NEED[1] then return end
  local list = {}
  for i, label in ipairs(NEED) do
    list[i] = string.gsub(label, '[%%%s%c]', function(c) return string.format('%%%02X', string.byte(c)) end)
  end
  return redis.error_reply('STARVIDEOS_KEYS ' .. table.concat(list, ' '))
end
]=]

-- The EVAL's list of a script (body; keys: the caller's and keys.more; more: those runs asked for; id: its
-- identity's key and argument, or nil) -> list, the index of the identity's argument (nil without).
local function add(list, keys)
  for i, k in ipairs(keys) do
    if type(k) ~= "string" then error(string.format("store: a script's key #%d is a %s, not a name", i, type(k)), 4) end
    list[#list + 1] = k
  end
end

function M.list(body, keys, more, args, id, wire)
  local list = { "EVAL", body, "" }
  if id then list[4] = id[1] end
  add(list, keys)
  add(list, keys.more or {})
  add(list, more or {})
  list[3] = tostring(#list - 3)
  local at = id and #list + 1
  if id then list[at] = id[2] end
  list[#list + 1] = tostring(#keys)
  for _, a in ipairs(args) do list[#list + 1] = tostring(wire(a)) end
  list.n = #list
  return list, at
end

-- A script's answer asking for keys (value: Redis' error; each label's %, spaces and control bytes as %XX): the
-- labels, or nil.
function M.asked(value)
  local rest = type(value) == "string" and value:match("^STARVIDEOS_KEYS (.*)")
  if not rest then return nil end
  local labels = {}
  for label in rest:gmatch("%S+") do
    labels[#labels + 1] = label:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return labels
end

-- job (fleet/store.lua's: name, body, keys, args, pre, more, rounds) given the keys of labels: its list made
-- again (its identity's argument kept).  nil, or why it cannot be sent again.
function M.extend(job, labels, wire)
  job.rounds = (job.rounds or 0) + 1
  if not job.pre then return "a script outside a key's prefix asked for keys " .. table_concat(labels, " ") end
  if job.rounds >= M.ROUNDS then
    return string.format("script %s asked for keys %d times (the records it reads kept changing); last %s",
      job.name, job.rounds, table_concat(labels, " "))
  end
  job.more = job.more or {}
  for _, label in ipairs(labels) do job.more[#job.more + 1] = job.pre .. label end
  local id = job.at and { job.args[4], job.args[job.at] }
  job.args, job.at = M.list(job.body, job.keys, job.more, job.args_in, id, wire)
end

return M
