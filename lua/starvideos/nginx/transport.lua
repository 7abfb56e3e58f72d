-- The transport on nginx's own sockets: a light thread per exchange (nginx/wire.lua);
-- poll waits on a semaphore they post, so a waiting client yields the worker.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"
local errors = require "starvideos.errors"
local semaphore = require "ngx.semaphore"
local W = require "starvideos.nginx.wire"
local A = require "starvideos.nginx.answer"
local B = require "starvideos.nginx.body"

local ngx = rawget(_G, "ngx")
local now, new_error = core.now, errors.new_error

local KEPT = core.parts_kept -- (both transports': the unfinished downloads' .parts kept open)
local METHODS = { GET = true, HEAD = true, PUT = true, POST = true, DELETE = true } -- an exchange's
local NO_CA = "ca_file has no effect inside nginx: name the CA file with lua_ssl_trusted_certificate"

-- A pool thread's Lua VM costs the worker ~10 ms: made in a timer at its first client; commits
-- (and hashes) one at a time.
local disk_slot, no_pool
local function in_pool(module, fn, ...) -- require(module)[fn](...), in the pool when there is one
  if no_pool or not ngx.run_worker_thread then return require(module)[fn](...) end
  disk_slot:wait(86400)
  local ok, a, b, c = ngx.run_worker_thread("starvideos", module, fn, ...)
  disk_slot:post(1)
  if ok then return a, b, c end
  if tostring(a):find("not found", 1, true) then
    no_pool = true
    ngx.log(ngx.WARN, "starvideos: downloads are synced to disk in the worker: add ",
      "`thread_pool starvideos threads=4;` to the main context of nginx.conf")
  end
  return require(module)[fn](...)
end

local function clamp(conns) -- as libcurl's
  return math.min(math.max(math.floor(conns), 1), 1024)
end

-- A value config.lua always passes: none is defaulted here.
local function need(cfg, k, kind)
  if type(cfg[k]) == kind then return cfg[k] end
  error(string.format("starvideos transport: %s is %s, a %s expected (every value comes from config.lua: "
    .. "DEFAULTS)", k, cfg[k] == nil and "missing" or type(cfg[k]), kind), 3)
end

local N = {}
N.__index = N

local PHASES = { rewrite = true, server_rewrite = true, access = true, content = true, timer = true } -- (sockets)

-- N.new(cfg, key): cfg as config.lua gives it; key.conns, the key's max_connections.  Raises
-- (for starvideos.new's caller) in a phase without sockets, light threads and semaphores.
-- `whole` and `left` hold the .part handles of downloads that ended whole (for t:commit) or short.
function N.new(cfg, key)
  local phase = ngx.get_phase()
  if not PHASES[phase] then
    error(string.format("starvideos.new: nginx allows no network calls in its %s phase (%s_by_lua*): "
      .. "create and use the client in a content, access or rewrite handler, or in a timer (ngx.timer.at)",
      phase, phase), 3)
  end
  if not disk_slot then
    disk_slot = semaphore.new(1)
    ngx.timer.at(0, function(premature) if not premature then in_pool("starvideos.core", "now") end end)
  end
  local conns = clamp(key.conns)
  local ks = key:part("slots", function() return { sem = semaphore.new(conns), n = conns, debt = 0 } end)
  -- keepalive_timeout and keepalive_pool (lua-resty-http's names): setkeepalive's milliseconds (1 at least: its 0
  -- keeps a connection for ever) and pool size
  local c = { ua = need(cfg, "user_agent", "string"), connect_timeout = need(cfg, "connect_timeout", "number"),
    idle_ms = math.max(1, math.floor(need(cfg, "keepalive_timeout", "number") * 1000)),
    pool_size = cfg.keepalive_pool or conns, slots = ks.sem }
  return setmetatable({ c = c, ks = ks, key = cfg.api_key or "", -- none: downloads only
    wake = semaphore.new(0), running = {}, done = {}, holding = {}, whole = {}, left = {}, n_left = 0 }, N)
end

local function live(self)
  if self.closed then error("the starvideos transport is closed", 3) end
end

local function release(self, x)
  if x.sock then x.sock:close(); x.sock = nil end
  if x.slot then x.slot = false; self.ks.sem:post(1) end
end

-- x finished for its owner (its thread may hold on: a held one's): on the done list, poll woken.
local function finished(self, x)
  self.running[x], self.done[#self.done + 1] = nil, x
  if self.wake:count() < 0 then self.wake:post(1) end
end

local function run(self, x)
  local ok, wire, msg = pcall(W.exchange, x.c or self.c, x, self.key)
  if x.gone then return release(self, x) end -- (held, then let go of: its part was taken, or is being)
  if not ok then wire, msg = "broken", tostring(wire) end
  local flushed, err = x.unit.flush(x) -- what was read is in the file before anyone looks
  if not flushed and not wire then wire, msg = "io", err end
  x.wire, x.message, x.ended = wire or "none", msg, true
  release(self, x)
  if x.spent then return end
  finished(self, x)
end

-- In x's thread (answer.lua's sink, x.hold): a held exchange's part is full, and its 200 goes on past it.  x ends
-- for its owner, its read held (its socket not read) until N:send goes on with it (true), or N:cancel lets it go,
-- or its time is up (nil, wire, message: let go of).
local function hold(self, x)
  local _, total = A.span(200, x.head)
  x.have, x.total, x.wire, x.message, x.ended, x.held = x.kept, total, "none", nil, true, true
  x.go, x.next_from = x.go or semaphore.new(0), x.from + x.kept
  self.holding[x] = true
  finished(self, x)
  local left = x.deadline and x.deadline - now() or 86400
  local ok = left > 0 and x.go:wait(left)
  if ok and not x.gone then return true end
  x.held, x.gone, self.holding[x] = false, true, nil
  return nil, "timeout", string.format("held past its time (%g s)", x.r.timeout or 0)
end

-- The held exchange x goes on as r's (its range from where x stopped): x | nil (not held there: let go of, r
-- sent anew).
local function go_on(self, x, r, cap)
  if not (x.held and not x.gone and r.range and r.range[1] == x.next_from and not r.ca_file) then
    self:cancel(x)
    return nil
  end
  self.holding[x] = nil
  x.r, x.parts, x.kept, x.cap, x.from, x.op, x.unit = r, {}, 0, cap, r.range[1], r.op, B.of(r)
  x.unit.start(x, x.head) -- (its 200, held: a tap's fed from here)
  x.deadline = r.timeout and r.timeout > 0 and now() + r.timeout or nil
  x.stall = r.stall and r.stall > 0 and r.stall
  x.spent, x.ended, x.held, x.wire, x.message = false, false, false, nil, nil
  self.running[x] = true
  x.go:post(1)
  return x
end

local function refused(field, message) return new_error("invalid_request", message, { field = field }) end
local function any() end

-- An exchange's fields (csrc/curl/exchange_fields.h's rows: spec/exchange_fields_spec.lua holds this list to them),
-- each read here by N:send, in this order, as (r's value, r, the transport) -> why it is refused, or nil and what
-- the exchange keeps of it.  `any`: taken as it is, read where it is used (nginx/wire.lua, body.lua: x.r's).
local FIELDS = {
  { "url", function(v) local u, bad = core.check_url(v, "url"); return bad, u end },
  { "max_body", function(v) return type(v) ~= "number" and refused("max_body", "max_body: no cap on the answer's "
    .. "size was given") or nil end },
  { "ca_file", function(v) return v and refused("ca_file", NO_CA) or nil end },
  { "user_agent", function(v, r, self) -- (the client's own, with its connect_timeout: a config of its own)
    local c = self.c
    if not v or (v == c.ua and r.connect_timeout == c.connect_timeout) then return nil, nil end
    if v:find("[%c]") or type(r.connect_timeout) ~= "number" or r.connect_timeout <= 0 then
      return refused("user_agent", "user_agent: control characters, or connect_timeout: not above 0")
    end
    return nil, setmetatable({ ua = v, connect_timeout = r.connect_timeout }, { __index = c })
  end },
  { "connect_timeout", any },
  { "request_id", function(v)
    if v and (type(v) ~= "string" or v == "" or #v > 128 or v:find("%c")) then
      return refused("request_id", "request_id: expected 1 to 128 characters without control characters")
    end
  end },
  { "proxy", function(v) local p, bad = W.proxy(v); return bad, p end },
  { "file", function(v)
    if v ~= nil and (type(v) ~= "string" or v == "") then return refused("path", "path: expected a file path") end
  end },
  { "method", function(v)
    if v and not METHODS[v] then return refused("method", "method: expected GET, HEAD, PUT, POST or DELETE") end
  end },
  { "range", function(v)
    if v and not (type(v) == "table" and tonumber(v[1]) and tonumber(v[2]) and v[1] >= 0 and v[2] >= v[1]) then
      return refused("range", "range: expected {first, last}, 0 <= first <= last")
    end
  end },
  { "op", any }, { "service", any }, { "headers", any }, { "what", any }, { "heads", any }, { "hold", any },
  { "fresh", any }, { "timeout", any }, { "stall", any }, { "offset", any }, { "follow", any }, { "public", any },
  { "body", any }, { "tap", any }, { "rest", any }, { "pieces", any },
}
N.FIELDS = {} -- (their names, for the spec)
for i, row in ipairs(FIELDS) do N.FIELDS[i] = row[1] end

-- The handle an unfinished attempt at file left here, taken (its unit's open goes on through it while it is still
-- the file: core.part_open, the rule of both transports); a whole one not committed let go of.
local function left_at(self, file)
  if file == nil then return nil end
  self:discard(file)
  local was = self.left[file]
  if was then self.left[file], self.n_left = nil, self.n_left - 1 end
  return was
end

function N:send(r)
  live(self)
  local got = {}
  for _, row in ipairs(FIELDS) do
    local bad, value = row[2](r[row[1]], r, self)
    if bad then return nil, bad end
    got[row[1]] = value
  end
  local range, unit = r.range, B.of(r) -- (where its body goes, chosen once)
  local cap = unit.cap(r)
  if range then cap = math.min(cap, range[2] - range[1] + 1) end
  local held = type(r.rest) == "table" and go_on(self, r.rest, r, cap)
  if held then return held end
  -- as data (request.lua's): the service's request (service: the key, its answer's id, Date and lines read),
  -- else another host's
  local x = { r = r, u = got.url, c = got.user_agent, proxy = got.proxy or false, op = r.op, service = r.service,
    auth = r.service, from = range and r.method ~= "HEAD" and range[1] or nil, unit = unit, parts = {}, kept = 0,
    cap = cap, deadline = r.timeout and r.timeout > 0 and now() + r.timeout or nil,
    stall = r.stall and r.stall > 0 and r.stall }
  local opened, err = unit.open(x, left_at(self, r.file))
  if not opened then return nil, new_error("io", err, { field = "path" }) end
  if r.hold and range then -- (request.lua asks it of a ranged GET: the pause at the range's end)
    x.hold = function(y) return hold(self, y) end
  end
  self.running[x] = true
  x.thread = ngx.thread.spawn(run, self, x)
  return x
end

function N:poll(max_wait)
  live(self)
  if not self.done[1] and max_wait and max_wait > 0 then self.wake:wait(math.max(0.001, max_wait)) end
  return #self.done
end

function N:finished()
  live(self)
  while self.done[1] do
    local x = table.remove(self.done, 1)
    if not x.held then pcall(ngx.thread.wait, x.thread) end -- an ended thread stays until its parent reaps it
    if not x.spent then return x end
  end
end

-- The service's clock minus ours (s, from the last API answer's Date), or nil (curl.c's t:clock).
function N:clock() return self.skew end

function N:result(x)
  live(self)
  if type(x) ~= "table" or x.spent or not x.ended then
    error("bad argument #1 to 'result' (an exchange that finished and was not taken)", 2)
  end
  x.spent = true
  local h = x.head
  local lines = h and x.r.heads and A.lines(h) -- (kept when asked, as libcurl's)
  local limits -- the service's answer: its rate-limit lines, its Date the service's clock
  if x.service and h then
    limits = lines or A.lines(h)
    local date = h.date and core.http_date(h.date)
    if h.date then self.skew = date and date - core.wall() end
  end
  -- (an exchange's bytes asked for as read, its `pieces`: never made one string of megabytes in the worker)
  local pieces = x.r.pieces and x.status and x.status >= 200 and x.status < 300
  local task, err, wire, bytes, total = core.verdict(x.op, x.status, pieces and "" or table.concat(x.parts),
    x.retry_after, x.wire, x.message, x.have, x.total, self.key, lines, x.r.what, limits, x.from or x.offset,
    x.first) -- (a range's first byte, a download's offset, and where the answer's bytes start)
  if task and pieces then task.body = x.parts end
  if task and x.held then task.held = x end -- (its read held: rest = on the next range's send goes on with it)
  local part = x.unit.take(x) -- (a download's .part handle)
  if part then
    if task then
      self.whole[x.r.file] = part
    elseif self.n_left < KEPT and not self.left[x.r.file] then -- the first KEPT kept; others resume unchecked
      self.left[x.r.file], self.n_left = part, self.n_left + 1
    else
      part:close()
    end
  end
  return task, err, wire, bytes, total
end

function N.progress(_, x) return x.have, x.total end

-- Whether any byte of the exchange's request was sent on its socket (curl.c's t:written).
function N.written(_, x) return type(x) ~= "table" or x.written == true end

local ID_HEADERS = { "x-request-id", "request-id", "cf-ray" }

-- The server's own id of the answer to a request that sent an X-Request-Id (the service's), or nil (curl.c's
-- t:server_request_id): x-request-id over request-id over cf-ray, any of them over a value that only echoes ours.
function N.server_request_id(_, x)
  local h, sent, echo = x.head, x.r.request_id, nil
  if not (h and sent) then return nil end
  for _, name in ipairs(ID_HEADERS) do
    local v = h[name]
    if type(v) == "string" and v ~= "" and #v <= 128 then
      if v ~= sent then return v end
      echo = echo or v
    end
  end
  return echo
end

function N:cancel(x)
  live(self)
  if type(x) == "table" and x.held then -- held (its part taken or not): its thread ends, its socket closed
    x.held, x.gone, x.spent, self.holding[x] = false, true, true, nil
    local ok, killed = pcall(ngx.thread.kill, x.thread)
    if ok and killed then release(self, x) else x.go:post(1) end
    return
  end
  if type(x) ~= "table" or x.spent then return end
  x.spent, self.running[x] = true, nil
  if x.ended then return end
  local ok, killed = pcall(ngx.thread.kill, x.thread)
  if ok and killed then release(self, x) end -- else the thread ends by itself, writing nothing more
  local part = x.unit.take(x)
  if part then part:close() end
end

-- On the descriptor the download wrote, checked to be a whole MP4 (mp4: true, or its seconds), marked (mark: its
-- box appended) and hashed in one read beside its fsync, in the pool: renamed only while its name is still that
-- file.  true, its SHA-256, marked (true, or why not; nil without a mark) | nil, why [, true: not a whole MP4].
function N:commit(part, path, mp4, mark)
  local fh = self.whole[part]
  if not fh then return nil, "cannot commit " .. tostring(part) .. ": no whole download was written there" end
  self.whole[part] = nil
  local fd, size, name = fh:prepare()
  local ok, err, notwhole = fd, size, nil
  if fd then ok, err, notwhole = in_pool("starvideos.sign", "part_commit", fd, size, name, path, mp4, mark) end
  fh:close()
  return ok, err, notwhole
end

-- require(module)[fn](...) in the thread pool, one at a time with the commits (a part's hashing:
-- storage/part.lua): its first three values.
function N.offload(_, module, fn, ...) return in_pool(module, fn, ...) end

-- A whole download let go of uncommitted (download.lua: the store refused it): its handle closed.
function N:discard(part)
  if self.whole[part] then self.whole[part]:close(); self.whole[part] = nil end
end

-- The key's max_connections changed (its clients came or went): the worker's slots of the key (its part,
-- key.lua), shared by its clients' transports.  Fewer are taken back as they come free, at this and the next
-- clients' joins (in a request: a semaphore may wait).
function N:set_max_connections(n, joining)
  if n ~= n then error("bad argument #1 to 'set_max_connections' (max_connections is not a number (NaN))", 2) end
  local ks, conns = self.ks, clamp(n)
  ks.debt, ks.n = ks.debt + ks.n - conns, conns
  if ks.debt < 0 then -- more slots than were owed: posted at once
    ks.sem:post(-ks.debt)
    ks.debt = 0
  end
  while joining and ks.debt > 0 and ks.sem:count() > 0 and ks.sem:wait(0) do ks.debt = ks.debt - 1 end
end

function N:close()
  if self.closed then return end
  for x in pairs(self.running) do self:cancel(x) end
  for x in pairs(self.holding) do self:cancel(x) end
  while self.done[1] do self:finished() end
  for part, fh in pairs(self.whole) do fh:close(); self.whole[part] = nil end
  for part, fh in pairs(self.left) do fh:close(); self.left[part] = nil end
  self.closed = true
end

return N
