-- One create's asking of the store before it is sent (fleet/ledger.lua's
-- before_create): the lease and create_limit's count in one round trip (and,
-- once per store in a process, whether Redis syncs every write), then the
-- pending record.  Never waited for: ask:step() answers false until Redis
-- has, and the job asks again on a later turn.

local core = require "starvideos.core"
local errors = require "starvideos.errors"
local FleetBudget = require "starvideos.fleet.budget"
local leases = require "starvideos.fleet.leases"
local journal = require "starvideos.records.journal" -- (head)

local type, ipairs, pairs, tostring, setmetatable, string_format, os_time, math_floor =
  type, ipairs, pairs, tostring, setmetatable, string.format, os.time, math.floor
local new_error = errors.new_error

local A = {}
A.__index = A

local fsync_asked = {} -- where -> true: asked once per store in a process

-- The scripts' ARGV: ..., then rec's fields as field, value, ...
function A.pairs_of(rec, ...)
  local list = { ... }
  for k, v in pairs(rec) do
    list[#list + 1] = k
    list[#list + 1] = type(v) == "number" and string_format("%.17g", v) or tostring(v)
  end
  return list
end

-- want: a keyed create's (job.lua): key, fp, body, out, fresh.
function A.new(ledger, params, lid, out, want)
  return setmetatable({ ledger = ledger, params = params, lid = lid, out = out, want = want, st = false }, A)
end

-- The answers nobody will read dropped (refused, or its job cancelled).
function A:drop()
  for _, k in ipairs { "lease", "limit", "fsync", "pend" } do
    if self[k] then self.st:forget(self[k]); self[k] = nil end
  end
end

-- Whether the store keeps every write (appendfsync always): said once
-- through on_event {type = "warning"} when it does not, or cannot say.
local function fsync_answer(self)
  local l = self.ledger
  local v, err = self.st:result(self.fsync)
  self.fsync = nil
  local mode = type(v) == "table" and v[2]
  local on_event = l.cfg.on_event
  if mode == "always" or not on_event then return end
  on_event({ type = "warning", message = string_format("store %s: appendfsync is %s, not always: the last records "
    .. "written before a crash of Redis (or of its host) can be lost", l.where,
    mode and tostring(mode) or "unknown (CONFIG GET refused: " .. tostring(err and err.message or v) .. ")") })
end

-- The first round trip sent: nil, or what refused it.
local function send_first(self, st, lease)
  local l, lim = self.ledger, self.ledger.cfg.create_limit
  local err
  self.st, self.lease_obj = st, lease
  self.lease, err = leases.send(st, l, lease.id)
  if not self.lease then return err end
  if lim then
    self.limit, err = FleetBudget.send_create(st, l.hash, lim)
    if not self.limit then return err end
  end
  if not fsync_asked[l.where] then
    fsync_asked[l.where] = true
    self.fsync = st:send("CONFIG", "GET", "appendfsync")
  end
end

-- The first answers taken, the pending record sent: false (not yet), true,
-- or nil, err (err.kind: the refusal is whole, no suffix to add).
local function send_pending(self)
  local l, st, lim = self.ledger, self.st, self.ledger.cfg.create_limit
  for _, k in ipairs { "lease", "limit", "fsync" } do
    if self[k] and not st:ready(self[k]) then return false end
  end
  if self.fsync then fsync_answer(self) end
  local leased, err = st:result(self.lease)
  self.lease = nil
  if leased == nil then return nil, err end
  self.lease_obj.renewed = core.now() -- Redis set it: this round trip took it along
  if self.limit then
    local wait, werr = FleetBudget.seconds(st, self.limit)
    self.limit = nil
    if wait == nil then return nil, werr end
    if wait > 0 then
      return nil, new_error("rate_limited", string_format("create_limit: %d creates in the last %.14g s "
        .. "(at most %d, counted in the store %s): the next create is allowed in %d s", lim.count, lim.per,
        lim.count, l.where, math_floor(wait + 0.999)), { field = "create_limit", retry_after = wait })
    end
  end
  local p, want = self.params, self.want or {}
  local args = A.pairs_of({ ["local"] = self.lid, model = p.model, owner = self.lease_obj.id, out = self.out,
    time = os_time(), prompt_hash = type(p.prompt) == "string" and core.hash(p.prompt) or nil,
    prompt = journal.head(p.prompt), key = want.key, fp = want.fp, body = want.body },
    self.lid, want.fresh and "1" or "", l.prefix)
  -- a keyed create's key asked in the same script that writes the record
  local pre, lid = l.prefix, self.lid
  self.pend, err = st:send_script(self.want and "ledger_keyed" or "ledger_pending", { pre .. "pend:" .. lid,
    pre .. "pending", pre .. "gone:" .. lid, want.key and pre .. "key:" .. core.hash(want.key) }, args)
  if not self.pend then return nil, err end
  self.pend_sent = true -- Redis may run it, late, whatever happens next
  st:step(0)
  return true
end

-- One step: true (the pending record is written, or for a keyed create the
-- store's word on its key in self.verdict), false (ask again on a later
-- turn), or nil, err; start(st, lease) when not started yet.
function A:step(st, lease)
  if not self.st then
    local err = send_first(self, st, lease)
    if err then return nil, err end
  end
  self.st:step(0)
  if not self.pend then
    local ok, err = send_pending(self)
    if not ok then return ok, err end
  end
  if not self.st:ready(self.pend) then return false end
  local done, err = self.st:result(self.pend)
  self.pend = nil
  if done == nil then return nil, err end
  if type(done) == "table" then self.verdict = done end
  return true
end

return A
