-- client:sse's window on a store (sse.lua, docs/reference.md#clientsse): a Redis stream of the key,
-- "starvideos:{<key's hash>}:events" (the key's hash tag: its slot's node on a Cluster), every host of the store
-- adding its events (XADD MAXLEN ~ size: Redis trims it, keeping size at least) and its streams reading past their
-- last id (XRANGE).  Redis numbers the entries ("<ms>-<seq>", ordered across the hosts); a stream's id is that
-- number as ms * 1000 + seq (a double's 53 bits hold it; more than 1000 entries in one millisecond of the store's
-- clock would run into the next one's ids).  Nothing waits: an add's answer is taken at a later call, a read's at
-- the stream's next turn once there (inside nginx a cosocket's answer is there at once).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local Store = require "starvideos.fleet.store"

local type, tonumber, pairs, ipairs, setmetatable, math_floor, string_format =
  type, tonumber, pairs, ipairs, setmetatable, math.floor, string.format

Store.define("events_add", "return redis.call('XADD', declared('events'), 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2])")
-- {the entries past ARGV[1], ARGV[2] at most; none: the stream's newest id ("0-0": no entry; "": a user whose ACL
-- lacks XREVRANGE, made by the line before it was run here)}
Store.define("events_since", [[
local r = redis.call('XRANGE', declared('events'), ARGV[1], '+', 'COUNT', ARGV[2])
if r[1] then return {r, ''} end
local last = redis.pcall('XREVRANGE', declared('events'), '+', '-', 'COUNT', 1)
if last.err then return {r, ''} end
return {r, last[1] and last[1][1] or '0-0'}
]])

local M = {}
M.__index = M
M.READ = 500 -- entries a read takes at most (the rest at the stream's next turn)
M.FAR = 2 ^ 53 -- a stream's id past every Redis id it numbers (a double's 53 bits): a reader's past it asks from here

-- A Redis stream id as a stream's id, and the first Redis id past a stream's id.
function M.number(rid)
  local ms, seq = (type(rid) == "string" and rid or ""):match("^(%d+)%-(%d+)$")
  return ms and tonumber(ms) * 1000 + tonumber(seq) or nil
end

function M.after(id)
  if id <= 0 then return "-" end
  if id > M.FAR then id = M.FAR end -- (2^63 - 1, 1e300: a Redis id far past any, never a raise)
  return string_format("%d-%d", math_floor(id / 1000), id % 1000 + 1)
end

-- The window of the key whose hash is hash (its store's prefix "starvideos:{<hash>}:", fleet/ledger.lua's).
function M.new(store, hash, size)
  return setmetatable({ store = store, key = "starvideos:{" .. hash .. "}:events", size = size, adds = {} }, M)
end

-- The adds Redis answered, their answers taken (an error: the last one kept as self.err).
function M:reap()
  local st = self.store
  st:step(0)
  for n in pairs(self.adds) do
    if st:ready(n) then
      self.adds[n] = nil
      local v, err = st:result(n)
      if v == nil then self.err = err end
    end
  end
end

-- An entry sent to the store: true, or nil and why.
function M:put(text)
  self:reap()
  local n, err = self.store:send_script("events_add", { self.key }, { self.size, text })
  if not n then return nil, err end
  self.adds[n] = true
  return true
end

-- The adds sent, answered (a client's close: its hosts' streams see every event it told).
function M:flush()
  for n in pairs(self.adds) do
    self.adds[n] = nil
    local v, err = self.store:wait(n)
    if v == nil then self.err = err end
  end
end

-- A stream gone (who): its read under way taken when it comes, as an add's answer is.
function M:drop(who)
  if who.rn then self.adds[who.rn], who.rn = true, nil end
end

-- The entries past seen (sse.lua's since), read for who (the stream): {id, text} pairs and the last id read past
-- (none past seen, seen past the stream's newest id: that id, from which the reader is told what comes); none while
-- the read is on its way.
function M:since(seen, _, who)
  local st = self.store
  self:reap()
  if not who.rn then
    local n, err = st:send_script("events_since", { self.key }, { M.after(seen), M.READ })
    if not n then self.err = err; return {}, seen end
    who.rn = n
    st:step(0)
  end
  if not st:ready(who.rn) then return {}, seen end
  local answer = st:result(who.rn)
  who.rn = nil
  local list = type(answer) == "table" and type(answer[1]) == "table" and answer[1] or {}
  local newest = type(answer) == "table" and M.number(answer[2])
  if newest and newest < seen then return {}, newest end
  local out, upto = {}, seen
  for _, e in ipairs(list) do
    local id, fields = M.number(e[1]), e[2]
    if id and id > upto then
      upto = id
      if type(fields) == "table" and type(fields[2]) == "string" then out[#out + 1] = { id, fields[2] } end
    end
  end
  return out, upto
end

return M
