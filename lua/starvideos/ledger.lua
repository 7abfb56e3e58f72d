-- The ledger's interface (docs/architecture.md, "The ledger interface"): what a ledger's rock reads of the core,
-- the one part of the rocks' window that is not an error, a default or an exchange.  The core's own ledgers
-- (records/ledger.lua on a journal, or the process's memory) and a store's (the redis rock's fleet/ledger.lua)
-- implement one set of methods alike; what they share is here, by name, and nothing else of the modules behind it
-- is a rock's:
--   implement(class, own)  the methods every ledger has the same way, made of its own writes (own)
--   record                 what a record holds: pending, created, taken, head, kept
--   answer(e, want, at)    a key's answer, given what the ledger holds of it
--   limited(...)           create_limit's and tenant_limit's refusal
--   lease                  the lease's rule: FIRST, RENEW, part, holder, due, answered, fences, keeper, onlooker,
--                          and the process's leases by name, one per ledger's name, shared: hold, release
--   spend                  spend_limit's rule: RULES (its text), clock, window, units_of, covering, refusal,
--                          tell, report, moved
--   budget                 the key's budget's rule: RULES (its text, run where the store runs it), MAX_HOLD
--   schedule               the learned schedule a ledger teaches: learner(key, cfg, name), kind_of
--   lists                  the ledger's lists as keep and client:tasks read them: carried, tasks
--   key_hash(cfg, key)     the store's name of the key
--   queue                  the queue's rule (queue.lua): RULES (its text: which entry a keeper takes next), score
-- A name here is a promise to the rocks (extension.lua's X.WINDOW lists these); the modules behind may change.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local Rules = require "starvideos.rules"
local Lease = require "starvideos.lease"
local Spend = require "starvideos.spend"
local Bucket = require "starvideos.bucket"
local Schedule = require "starvideos.schedule"

local I = {}

-- A table of the interface: its names alone, any other raising, naming the page (a rock reads no more).
local function given(what, t)
  return setmetatable({}, { __index = function(_, k)
    local v = t[k]
    if v == nil then
      error(string.format("the ledger's %s gives a rock no %s: docs/architecture.md, \"The ledger interface\"", what,
        tostring(k)), 2)
    end
    return v
  end, __newindex = function() error("the ledger's " .. what .. " is read only", 2) end, __metatable = false })
end

I.implement = Rules.implement
I.record = given("record", { pending = Rules.pending, created = Rules.created, taken = Rules.taken,
  head = Rules.head, kept = Rules.kept })
I.answer = Rules.key_answer
I.limited = Rules.limited

I.lease = given("lease", { FIRST = Lease.FIRST, RENEW = Lease.RENEW, part = Lease.part, holder = Lease.holder,
  due = Lease.due, answered = Lease.answered, fences = Lease.fences, keeper = Lease.keeper,
  onlooker = Lease.onlooker, hold = Lease.hold, release = Lease.release })

-- (spend.clock is read at each call: a spec sets its own)
I.spend = given("spend", { RULES = Spend.RULES, clock = function() return Spend.clock() end,
  window = Spend.window, units_of = Spend.units_of, covering = Spend.covering, refusal = Spend.refusal,
  tell = Spend.tell, report = Spend.report, moved = Spend.moved })

I.budget = given("budget", { RULES = Bucket.RULES, MAX_HOLD = Bucket.MAX_HOLD })

-- The schedule a ledger named `name` teaches the samples it keeps: key's (cfg's), when this is the first ledger of
-- that name to read them for the key; else nil (another read them).
I.schedule = given("schedule", {
  learner = function(key, cfg, name)
    if key and Schedule.first_read(key, name) then return Schedule.of(key, cfg) end
  end,
  kind_of = Schedule.kind_of,
})

local Lists = require "starvideos.lists"
I.lists = given("lists", { carried = Lists.carried, tasks = Lists.tasks })

local Queue = require "starvideos.queue"
I.queue = given("queue", { RULES = Queue.RULES, score = Queue.score })

function I.key_hash(cfg, key)
  return key and key.hash or require("starvideos.key").hash_of(cfg.base_url, cfg.api_key)
end

return I
