-- The transport on nginx's own sockets, which the loop picks inside nginx.
-- One light thread (ngx.thread.spawn) per exchange moves its bytes on an
-- ngx.socket.tcp (nginx/wire.lua), and poll waits on a semaphore those
-- threads post: a client that waits yields the worker instead of blocking it.
-- It implements the transport interface (docs/architecture.md) and only moves bytes: answers
-- are read by core.verdict; retries, deadlines and download rules stay in
-- request.lua and job.lua, as with libcurl.

local core = require "starvideos.core"
local errors = require "starvideos.errors"
local semaphore = require "ngx.semaphore"
local W = require "starvideos.nginx.wire"

local ngx = rawget(_G, "ngx")
local spawn, kill, wait, run_thread = ngx.thread.spawn, ngx.thread.kill, ngx.thread.wait, ngx.run_worker_thread
local type, tostring, pcall, pairs, error, setmetatable, math_max, math_min, floor, concat, string_format =
  type, tostring, pcall, pairs, error, setmetatable, math.max, math.min, math.floor, table.concat, string.format
local part_open, verdict, new_error, now, check_url =
  core.part_open, core.verdict, errors.new_error, core.now, core.check_url

local PAGE_MAX = 64 * 1024 -- a download's error page, kept for the message

-- A download writes its .part through one descriptor (core.part_open's handle),
-- from the open to the commit.  The handle of a download that ended whole waits
-- in `whole`, by the .part's name, for transport:commit.
--
-- A finished download's fsync and rename go to nginx's thread pool "starvideos"
-- (`thread_pool starvideos threads=4;`), one at a time, so the worker never
-- waits for the disk.  Making a pool thread's Lua VM costs the worker ~10 ms:
-- one is made, in a timer, when the worker's first client is.
local disk_slot, no_pool
local function in_pool(fn, ...) -- true, core[fn](...) | false
  if no_pool or not run_thread then return false end
  disk_slot:wait(86400)
  local ok, a, b = run_thread("starvideos", "starvideos.core", fn, ...)
  disk_slot:post(1)
  if ok then return true, a, b end
  if tostring(a):find("not found", 1, true) then
    no_pool = true
    ngx.log(ngx.WARN, "starvideos: downloads are synced to disk in the worker: add ",
      "`thread_pool starvideos threads=4;` to the main context of nginx.conf")
  end
  return false
end

local N = {}

-- The worker's connection slots of each key (its budget), shared by the
-- transports of every request's client of that key: a semaphore of the key's
-- max_connections.  More are posted at once; fewer are taken back as they come
-- free (a slot in use cannot be taken): what is owed is taken at this and the
-- next clients' joins (in a request, where a semaphore may be waited on).
local key_slots = setmetatable({}, { __mode = "k" })

local function slots_of(budget, conns)
  local ks = key_slots[budget]
  if not ks then ks = { sem = semaphore.new(conns), n = conns, debt = 0 }; key_slots[budget] = ks end
  return ks
end

local function resize(ks, conns, joining)
  local want = conns - ks.n
  ks.n = conns
  if want > 0 then
    local paid = math_min(want, ks.debt)
    ks.debt = ks.debt - paid
    if want > paid then ks.sem:post(want - paid) end
  else
    ks.debt = ks.debt - want
  end
  while joining and ks.debt > 0 and ks.sem:count() > 0 and ks.sem:wait(0) do ks.debt = ks.debt - 1 end
end

-- A value config.lua always passes: none is defaulted here.
local function need(cfg, k, kind)
  local v = cfg[k]
  if type(v) ~= kind then
    error(string_format("starvideos transport: %s is %s, a %s expected (every value comes from config.lua: "
      .. "DEFAULTS)", k, v == nil and "missing" or type(v), kind), 3)
  end
  return v
end

-- N.new(cfg, budget) -> a transport.  cfg: api_key, user_agent,
-- connect_timeout, as config.lua gives them; the key's budget: its
-- max_connections (clamped to 1..1024, as libcurl's), and the slots its
-- transports share.  The key lives in its closures.
function N.new(cfg, budget)
  if cfg.ca_file then
    error("starvideos: ca_file has no effect inside nginx: name the CA file with lua_ssl_trusted_certificate", 4)
  end
  if not disk_slot then
    disk_slot = semaphore.new(1)
    ngx.timer.at(0, function(premature) if not premature then in_pool("now") end end)
  end
  local conns = math_min(math_max(floor(budget.conns), 1), 1024)
  local ks = slots_of(budget, conns)
  local key = cfg.api_key or "" -- none: downloads only (no request asks for it)
  local c = { ua = need(cfg, "user_agent", "string"), connect_timeout = need(cfg, "connect_timeout", "number"),
    pool_size = conns, slots = ks.sem }
  local wake, running, done, first, last, closed = semaphore.new(0), {}, {}, 1, 0, false
  local whole = {} -- .part name -> the handle of the download that ended whole there
  -- .part name -> the handle of a download that ended short there: the next
  -- attempt goes on through it only while the name is still that file, as it
  -- was left (h:same()); else from byte 0 in a new file (as libcurl's sv_left)
  local left, n_left = {}, 0
  local function take_left(file)
    local h = left[file]
    if h then left[file], n_left = nil, n_left - 1 end
    return h
  end
  local t = { slots = ks.sem } -- the key's connection slots in this worker

  local function live()
    if closed then error("the starvideos transport is closed", 3) end
  end

  local function run(x)
    local ok, wire, msg = pcall(W.exchange, x.c or c, x, key)
    if not ok then wire, msg = "broken", tostring(wire) end
    if x.fh and not x.spent then -- what was read is in the file before anyone looks (flushed)
      local flushed, err = x.fh:flush()
      if not flushed and not wire then wire, msg = "io", err end
    end
    x.wire, x.message, x.ended = wire or "none", msg, true
    if x.sock then x.sock:close(); x.sock = nil end
    if x.slot then x.slot = false; c.slots:post(1) end
    if x.spent then return end
    running[x], last = nil, last + 1
    done[last] = x
    if wake:count() < 0 then wake:post(1) end
  end

  function t.send(_, r)
    live()
    local good, bad = check_url(r.url, "url")
    if not good then return nil, bad end
    if r.op ~= "download" and type(r.max_body) ~= "number" then
      return nil, new_error("invalid_request", "max_body: no cap on the answer's size was given",
        { field = "max_body" })
    end
    -- the client's own options go with each exchange (loop.lua): here the
    -- user agent and the connect timeout; nginx names the CAs itself
    if r.ca_file then
      return nil, new_error("invalid_request", "ca_file has no effect inside nginx: name the CA file with "
        .. "lua_ssl_trusted_certificate", { field = "ca_file" })
    end
    local own
    if r.user_agent and (r.user_agent ~= c.ua or r.connect_timeout ~= c.connect_timeout) then
      if r.user_agent:find("[%c]") or type(r.connect_timeout) ~= "number" or r.connect_timeout <= 0 then
        return nil, new_error("invalid_request", "user_agent: control characters, or connect_timeout: not above 0",
          { field = "user_agent" })
      end
      own = setmetatable({ ua = r.user_agent, connect_timeout = r.connect_timeout }, { __index = c })
    end
    -- a proxy (config.lua checked it: http://host:port): http URLs are sent
    -- to it whole, https ones through a CONNECT tunnel (nginx/wire.lua)
    local proxy = r.proxy and check_url(r.proxy, "proxy", true)
    if r.proxy and not (proxy and proxy.scheme == "http") then
      return nil, new_error("invalid_request", "proxy: expected http://host:port", { field = "proxy" })
    end
    local offset, fh = r.op == "download" and r.offset or 0, nil
    if r.op == "download" then
      if type(r.file) ~= "string" or r.file == "" then
        return nil, new_error("invalid_request", "path: expected a file path", { field = "path" })
      end
      if whole[r.file] then whole[r.file]:close(); whole[r.file] = nil end
      local err, short
      local was = take_left(r.file)
      if was and offset > 0 and offset <= was:at() and was:same() then
        fh = was
        if offset < was:at() and not was:truncate(offset) then fh, short = nil, true end
      elseif was then -- replaced, cut or linked since the attempt that left it
        was:close()
        short = true
      elseif offset > 0 then
        fh, err, short = part_open(r.file, offset) -- left by an earlier call: request.lua compares its end
      end
      if short or offset <= 0 then -- the .part we had is gone or cut: from byte 0, in a new file
        offset = 0
        fh, err = part_open(r.file, 0)
      end
      if not fh then return nil, new_error("io", err, { field = "path" }) end
    end
    local x = { r = r, c = own, proxy = proxy or false, op = r.op, auth = r.auth, offset = offset, have = offset,
      fh = fh, parts = {}, kept = 0,
      buf = "", pos = 1, got = 0, cap = r.op == "download" and PAGE_MAX or r.max_body,
      deadline = r.timeout and r.timeout > 0 and now() + r.timeout or nil, stall = r.stall and r.stall > 0 and r.stall }
    running[x] = true
    x.thread = spawn(run, x)
    return x
  end

  function t.poll(_, max_wait)
    live()
    if last < first and max_wait and max_wait > 0 then wake:wait(math_max(0.001, max_wait)) end
    return last - first + 1
  end

  function t.finished()
    live()
    while first <= last do
      local x = done[first]
      done[first], first = nil, first + 1
      pcall(wait, x.thread) -- an ended thread stays until its parent reaps it
      if not x.spent then return x end
    end
  end

  function t.result(_, x)
    live()
    if type(x) ~= "table" or x.spent or not x.ended then
      error("bad argument #1 to 'result' (an exchange that finished and was not taken)", 2)
    end
    x.spent = true
    local task, err, wire, bytes, total = verdict(x.op, x.status, concat(x.parts), x.retry_after, x.wire, x.message,
      x.have, x.total, key)
    if x.fh then
      if task then
        whole[x.r.file] = x.fh
      elseif n_left < 64 and not left[x.r.file] then -- the newest 64 kept; older ones resume unchecked
        left[x.r.file], n_left = x.fh, n_left + 1
      else
        x.fh:close()
      end
      x.fh = nil
    end
    return task, err, wire, bytes, total
  end

  function t.progress(_, x) return x.have, x.total end

  function t.cancel(_, x)
    live()
    if type(x) ~= "table" or x.spent then return end
    x.spent, running[x] = true, nil
    if x.ended then return end
    local ok, killed = pcall(kill, x.thread)
    if ok and killed then -- else the thread ends by itself, writing nothing more
      if x.sock then x.sock:close(); x.sock = nil end
      if x.slot then x.slot = false; c.slots:post(1) end
    end
    if x.fh then x.fh:close(); x.fh = nil end
  end

  -- The commit acts on the descriptor the download wrote (core.part_commit):
  -- its bytes synced and counted, renamed only while the name is still that
  -- file, the folder synced; in the pool, the handle open meanwhile.
  function t.commit(_, part, path)
    local fh = whole[part]
    if not fh then return nil, "cannot commit " .. tostring(part) .. ": no whole download was written there" end
    whole[part] = nil
    local fd, size, name = fh:prepare()
    local pooled, ok, err = false, fd, size
    if fd then pooled, ok, err = in_pool("part_commit", fd, size, name, path) end
    if fd and not pooled then ok, err = core.part_commit(fd, size, name, path) end
    fh:close()
    return ok, err
  end

  -- The key's max_connections changed (its clients came or went).
  function t.set_max_connections(_, n, joining)
    resize(ks, math_min(math_max(floor(n), 1), 1024), joining)
  end

  function t.close()
    if closed then return end
    for x in pairs(running) do t:cancel(x) end
    while first <= last do t:finished() end
    for part, fh in pairs(whole) do fh:close(); whole[part] = nil end
    for part in pairs(left) do take_left(part):close() end
    closed = true
  end

  return t
end

return N
