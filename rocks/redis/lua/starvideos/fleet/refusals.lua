-- The refusals a store keeps (refusal.lua; records/ledger.lua's refusal and refused, on Redis): a hash of the key,
-- "refused", a create's content address -> the JSON of the task that failed for policy or input ({id, reason,
-- input, error}), and "<address> tenant" -> its create's tenant ("": nobody named; the status script writes it
-- from the task's record), read in a round trip of its own before a create (with a loop: false until Redis answered).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local Store = require "starvideos.fleet.store"
local cjson = require("cjson.safe").new()

local type, setmetatable = type, setmetatable

Store.define("refusal_get", "return redis.call('HMGET', declared('refused'), ARGV[1], ARGV[1] .. ' tenant')")
Store.define("ledger_refused", "redis.call('HSET', declared('refused'), ARGV[1], ARGV[2], ARGV[1] .. ' tenant', "
  .. "ARGV[3] or '') return 1")

local M = {}
M.__index = M

function M.new(l) return setmetatable({ ledger = l, sent = {} }, M) end

-- The refusal kept of addr: {id, reason, input, error, tenant}, nil, or false (not yet: asked again on a later turn).
function M:get(addr)
  local l = self.ledger
  local st = l.store
  local n = self.sent[addr]
  if not n then
    local err
    n, err = st:send_script("refusal_get", { l.prefix .. "refused" }, { addr })
    if not n then return nil, err end
    self.sent[addr] = n
  end
  st:step(0)
  if l.loop and not st:ready(n) then return false end
  self.sent[addr] = nil
  local v, werr = st:wait(n)
  local e = type(v) == "table" and type(v[1]) == "string" and cjson.decode(v[1]) -- (none: false, or nil)
  if type(e) ~= "table" then return nil, werr end
  e.tenant = type(v[2]) == "string" and v[2] ~= "" and v[2] or nil -- ("": nobody named)
  return e
end

-- What the hash keeps of task id's failure (its reason and input, failure.lua's; words: the service's): JSON.
function M.entry(id, reason, input, words)
  return cjson.encode { id = id, reason = reason, input = input, error = words }
end

-- A task's policy or input failure kept by its create's content address (tenant: its create's, nil: nobody named),
-- queued as the ledger's records are.
function M:put(id, addr, reason, input, words, tenant)
  local l = self.ledger
  return l:_record("refused", { l.prefix .. "refused" }, { addr, M.entry(id, reason, input, words), tenant or "" })
end

return M
