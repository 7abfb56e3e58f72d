-- A key's object: what the clients of one (base URL, API key) in a process share, made by its first
-- client, let go with its last (inside nginx, the worker's: docs/openresty.md): its limits, bucket
-- (bucket.lua), members (the live clients), births, the service's clock, the work any of its loops
-- may do, and the parts other modules keep per key (k:part: the loop, the schedule, stores, slots).

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local config = require "starvideos.config"
local Bucket = require "starvideos.bucket"

local K = {}
K.__index = K

local BORN_KEEP = 4096 -- births remembered per key

-- name -> the key's object while a client of it lives (weak: a VM that collects no client lets go too);
-- worker: inside nginx, the worker's keys, kept.
local keys, worker = setmetatable({}, { __mode = "v" }), {}

-- Host names that are this machine's loopback (RFC 6761: localhost and its subdomains), named as one service.
local LOOPBACK = "127.0.0.1"

-- A path without its dot segments (RFC 3986, 5.2.4), its percent escapes in capitals, no trailing slash.
local function plain_path(path)
  local out = {}
  for seg in (path .. "/"):gmatch("([^/]*)/") do
    if seg == ".." then
      if #out > 0 then out[#out] = nil end
    elseif seg ~= "." then
      out[#out + 1] = seg:gsub("%%(%x%x)", function(h) return "%" .. h:upper() end)
    end
  end
  return (table.concat(out, "/"):gsub("/+$", ""))
end

-- The key's service as one spelling (docs/keep-and-fleet.md, "A key's identity"): scheme and host in lowercase,
-- localhost as 127.0.0.1, the port only when not the scheme's own, no dot segment nor trailing slash.  What
-- does not pass core.check_url (a custom transport's name) stays as written.
function K.identity(base_url)
  local u = core.check_url(tostring(base_url), "base_url", true)
  if not u then return tostring(base_url) end
  local host = u.host:lower():gsub("%.$", "")
  if host == "localhost" or host:match("%.localhost$") then host = LOOPBACK end
  local port = u.port == (u.scheme == "https" and 443 or 80) and "" or ":" .. u.port
  return u.scheme .. "://" .. host .. port .. plain_path(u.path)
end

-- The store's name of a key: a hash of the base URL's identity and the API key's hash, the same in every process
-- and for every spelling of one service.
function K.hash_of(base_url, api_key)
  return core.hash(K.identity(base_url) .. "\0" .. core.hash(api_key or ""))
end

-- The object of a client's key (cfg with its api_key still in it), shared while a member lives;
-- k.hash is the store's name of the key, k.name the process's (a custom transport's apart).
function K.for_client(cfg)
  local hash = K.hash_of(cfg.base_url, cfg.api_key)
  local name = cfg.transport and hash .. "\0" .. tostring(cfg.transport) or hash
  return keys[name] or setmetatable({ name = name, hash = hash, conns = cfg.max_connections,
    bucket = Bucket.new(cfg.requests_per_second), members = setmetatable({}, { __mode = "k" }),
    born_at = {}, born_ring = {}, born_next = 1, shared = {}, parts = {}, clock_at = 0, skew = false }, K)
end

-- A member (a client: its cfg and loop) joins until it leaves: the key's limits worked out again,
-- each loop told; the last to leave lets the key go (the next client makes a new one).
function K:join(member)
  keys[self.name] = self
  if config.nginx() then worker[self.name] = self end
  self.members[member] = true
  self:rejoin(true)
end

function K:leave(member)
  if not self.members[member] then return end
  self.members[member] = nil
  if next(self.members) ~= nil then return self:rejoin(false) end
  if keys[self.name] == self and worker[self.name] ~= self then keys[self.name] = nil end
end

function K:rejoin(joining)
  local rate, conns, told = nil, nil, {}
  for m in pairs(self.members) do
    rate = math.min(rate or m.cfg.requests_per_second, m.cfg.requests_per_second)
    conns = math.min(conns or m.cfg.max_connections, m.cfg.max_connections)
  end
  self.conns = conns
  self.bucket:set_rate(rate)
  for m in pairs(self.members) do
    local loop = m.loop
    if loop and not told[loop] then told[loop] = true; loop:limit(conns, joining) end
  end
end

-- A module's state of this key (name: its own), made by make() at its first use and anew once closed (a loop).
function K:part(name, make)
  local v = self.parts[name]
  if v == nil or v.closed then v = make(); self.parts[name] = v end
  return v
end

-- A warning to each live client (its on_event).
function K:warn(message)
  for m in pairs(self.members) do
    local on_event = m.cfg.on_event
    if on_event then on_event { type = "warning", message = message } end
  end
end

-- The service's clock against ours from its answers' Date (tr:clock()): `skew`, its
-- time minus ours, dates webhooks (notify.lua); over DEFAULTS.clock_skew a warning, once.
function K:clock(tr, t)
  local most = config.DEFAULTS.clock_skew
  self.clock_at = t + most
  local skew = tr.clock and tr:clock()
  if not skew then return end
  self.skew = skew
  if (skew > most or -skew > most) and not self.skew_told then
    self.skew_told = true
    self:warn(string.format("this clock is %.0f s %s the service's (the Date of its answers): webhook timestamps "
      .. "use the service's time", skew < 0 and -skew or skew, skew < 0 and "ahead of" or "behind"))
  end
end

-- What an API answer said of the key's rate limit (limits: the core's table, or nil) and a 429's Retry-After
-- (err): kept for client:rate_limit() ({limit, remaining, reset, window, family, retry_after, at = the wall time}),
-- and a hold on the budget while it says none is left: no request of the key before it resets (Bucket.MAX_HOLD s at
-- most, said in a warning).
function K:limits(t, limits, err)
  local retry_after = err and err.status == 429 and err.retry_after
    or limits and limits.status == 429 and limits.retry_after -- (a create's 429 that named its task: that task)
  if not limits and not retry_after then return end
  local seen = { at = core.wall(), retry_after = retry_after or nil }
  for k, v in pairs(limits or {}) do if k ~= "status" then seen[k] = v end end
  self.rate_limit = seen
  local wait = retry_after or 0
  if seen.remaining == 0 and seen.reset and seen.reset > wait then wait = seen.reset end
  if wait > Bucket.MAX_HOLD then -- (a malformed header's: one said to hold a fleet for a year held it a year)
    self:warn(string.format("the service said no request of the key for %.0f s; held %d s at most (a longer wait "
      .. "is taken for a malformed header)", wait, Bucket.MAX_HOLD))
  end
  if wait > 0 then self.bucket:hold(t, wait) end
  for m in pairs(self.members) do
    local o = m.cfg.observe
    if o and o.rate_limit then o:rate_limit(seen) end
  end
end

-- born(id) -> when this process's create of task id was answered, or nil; born(id, t) records it.
function K:born(id, t)
  if t == nil then return self.born_at[id] end
  local old = self.born_ring[self.born_next]
  if old then self.born_at[old] = nil end
  self.born_ring[self.born_next], self.born_at[id] = id, t
  self.born_next = self.born_next % BORN_KEEP + 1
end

-- Work any loop of the key may do a slice of each turn (obj:turn() -> done),
-- so that it goes on when the client that began it closes.
function K:share(obj) self.shared[obj] = true end

function K:sharing() return next(self.shared) ~= nil end

function K:turn() -- one turn of the shared work
  for obj in pairs(self.shared) do
    if obj:turn() then self.shared[obj] = nil end
  end
end

return K
