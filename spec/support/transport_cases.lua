-- One list of cases that both transports pass (spec/curl/transport_cases_spec.lua):
-- libcurl's (starvideos.curl, in a plain Lua process: spec/support/case_run.lua)
-- and nginx's (transport/ngx.lua, in an nginx worker: spec/support/ngx_probe.lua),
-- against the same local servers (spec/support/hostile.lua).
--
-- A case is data and three functions:
--   name
--   prepare(env) -> args   in the spec's process: URLs, paths, files planted
--   run(x, args) -> out    in the transport's process (x: sleep, now, new =
--                          starvideos.new, transport = transport.new, which =
--                          "curl" | "ngx"); out must be JSON
--   check(out, args, env)  in the spec's process, with env.assert
--   trace                  run it under strace (the syscalls named there)
-- Both transports pass every case alike: none needs a difference today.  One
-- that a transport may legitimately do otherwise would test out.transport
-- ("curl" | "ngx") in its check, saying why beside it.
-- Only starvideos and the standard library are used by run: this file is
-- required in the worker as "transport_cases", in the spec as
-- "spec.support.transport_cases".

local KEY = "k-cases-secret"
local VIDEO_SIZE = 200003 -- what hostile.lua serves
local UA = "starvideos/" -- every User-Agent starts so (config.DEFAULTS.user_agent)

local M = { KEY = KEY, VIDEO_SIZE = VIDEO_SIZE }

local media = require "starvideos.emulator.media"

local str_format, concat, floor = string.format, table.concat, math.floor

-- The MP4 boxes before the video's mdat payload (5 s, n bytes in all): zeros there are theirs.
local function mp4_head(n) return media.parts("mp4", { seconds = 5, bytes = n })[1] end
M.mp4_head = mp4_head

-- The video hostile.lua serves: a 5 s MP4 whose mdat holds 16-byte blocks naming their
-- own position in the file.
function M.video(n)
  local head = mp4_head(n)
  local blocks = {}
  for i = 0, floor(n / 16) do blocks[#blocks + 1] = str_format("%08d|video|\n", i) end
  return head .. concat(blocks):sub(#head + 1, n)
end

---------------------------------------------------------------------------
-- the transport's side

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function size_of(path)
  local s = read_all(path)
  return s and #s
end

-- this process's memory (kB) and open descriptors, read in the process itself
local function status_kb(field)
  local v = (read_all("/proc/self/status") or ""):match("\n" .. field .. ":%s*(%d+)")
  return v and tonumber(v)
end

local function reset_peak() -- VmHWM from now on: the peak of the call
  local f = io.open("/proc/self/clear_refs", "w")
  if not f then return false end
  local ok = f:write("5")
  f:close()
  return ok ~= nil
end

local function fd_count()
  local pid = (read_all("/proc/self/stat") or ""):match("^(%d+)")
  local list = os.tmpname()
  os.execute("ls /proc/" .. pid .. "/fd > " .. list)
  local n = 0
  for _ in (read_all(list) or ""):gmatch("[^\n]+") do n = n + 1 end
  os.remove(list)
  return n
end

local function plain_err(e)
  if type(e) ~= "table" then return e ~= nil and { message = tostring(e) } or nil end
  return { kind = e.kind, message = e.message, id = e.id, created = e.created, maybe_created = e.maybe_created,
    status = e.status, field = e.field }
end

-- What .part meddlings between two attempts do (the retry event comes before
-- the second attempt).
local MEDDLE = {
  deleted = function(part) os.remove(part) end,
  cut = function(part) -- the same file, shorter than the offset
    local head = (read_all(part) or ""):sub(1, 1000)
    local f = io.open(part, "r+b")
    f:write(head)
    f:close()
    os.execute("truncate -s 1000 '" .. part .. "'")
  end,
  replaced = function(part) -- another file, as long as the video
    os.remove(part)
    local f = io.open(part, "wb")
    f:write(string.rep("X", VIDEO_SIZE))
    f:close()
  end,
}

-- One client call: a.op on a.client (over the common options), timed, with
-- the memory it took and the descriptors it left.
local function call(x, a)
  local opts = { api_key = KEY, timeout = 2, connect_timeout = 1, max_retries = 0, retry_backoff = 0.01 }
  for k, v in pairs(a.client or {}) do opts[k] = v end
  local retries = 0
  if a.meddle then
    opts.on_event = function(ev)
      if ev.type == "retry" and ev.method == "GET" then
        retries = retries + 1
        MEDDLE[a.meddle](a.path .. ".part")
      end
    end
  end
  collectgarbage()
  collectgarbage()
  local fds = fd_count()
  local rss, peak = status_kb("VmRSS"), reset_peak()
  local client = x.new(opts)
  local loop = rawget(client, "loop") -- the transport is the key's loop's (loop.lua)
  local used = loop and loop.transport -- nginx's is a Lua table, libcurl's a userdata
  used = used ~= nil and (type(used) == "table" and "ngx" or "curl") or nil
  local t0 = x.now()
  local res, err, sha256
  if a.op == "create" then
    res, err = client:create { model = "videos", prompt = "a cat", duration = 5 }
  elseif a.op == "query" then
    res, err = client:query(a.id or "task_q")
  elseif a.op == "download" then
    res, err, sha256 = client:download(a.url, a.path)
  elseif a.op == "generate" then
    res, err = client:generate({ model = "videos", prompt = "a cat", duration = 5 }, { out = a.path, interval = 0.05 })
    sha256 = type(res) == "table" and res.sha256 or nil
  end
  local elapsed = x.now() - t0
  local mem = (peak and status_kb("VmHWM") or status_kb("VmRSS")) - rss
  client:close()
  client = nil -- luacheck: ignore 311 (dropped, then collected)
  collectgarbage()
  collectgarbage()
  if type(res) == "table" then
    res = { id = res.id, status = res.status, video_url = res.video_url, path = res.path }
  end
  return { res = res, err = plain_err(err), sha256 = sha256, elapsed = elapsed, mem_kb = mem, fds_before = fds,
    fds_after = fd_count(), retries = retries, transport = used }
end

---------------------------------------------------------------------------
-- the spec's side

local function show(o)
  local e = o.err
  return str_format("res=%s err=%s elapsed=%.2fs memory=%+.1fMB fds=%s->%s", type(o.res) == "table"
    and ("task " .. tostring(o.res.id) .. " " .. tostring(o.res.status)) or tostring(o.res),
    e and str_format("{kind=%s, id=%s, created=%s, maybe_created=%s, message=%q}", tostring(e.kind),
      tostring(e.id), tostring(e.created), tostring(e.maybe_created), tostring(e.message)) or "nil",
    o.elapsed or -1, (o.mem_kb or 0) / 1024, tostring(o.fds_before), tostring(o.fds_after))
end
M.show = show

-- The common bounds of a call: back within `limit` s, no descriptor left open.
local function bounded(A, o, limit)
  A.is_true(o.elapsed < limit, str_format("took more than %.1f s: %s", limit, show(o)))
  A.is_true(o.fds_after <= o.fds_before, "descriptors left open: " .. show(o))
end

local function failed(A, o, kinds)
  A.is_nil(o.res, "expected a failure: " .. show(o))
  A.is_table(o.err, "expected an error: " .. show(o))
  for _, k in ipairs(kinds) do
    if o.err.kind == k then return end
  end
  A.is_true(false, "expected kind " .. concat(kinds, " or ") .. ": " .. show(o))
end

function M.count(list, method) -- the requests of list with this method
  local n = 0
  for _, r in ipairs(list) do
    if r.method == method then n = n + 1 end
  end
  return n
end

local function journal_has(env, path, id)
  for line in (env.helper.read_file(path) or ""):gmatch("[^\n]+") do
    local rec = env.json(line)
    if type(rec) == "table" and rec.id == id then return true end
  end
  return false
end

-- The file at path is the video, no .part is left, and the call gave its SHA-256 (as sha256sum says).
local function whole(A, env, o, path)
  A.equal(path, o.res, show(o))
  local got = env.helper.read_video(path) or ""
  A.equal(VIDEO_SIZE, #got, "size: " .. show(o))
  A.is_nil(got:find("\0", #mp4_head(VIDEO_SIZE) + 1, true), "the file's mdat holds zero bytes")
  A.is_true(got == M.video(VIDEO_SIZE), "the file is not byte-identical to the video")
  A.is_false(env.helper.exists(path .. ".part"), "the .part is left")
  A.equal(env.helper.capture("sha256sum " .. env.q(path)):match("^(%x+)"), o.sha256, show(o))
end

---------------------------------------------------------------------------
-- the cases

local cases = {}
M.cases = cases

local function add(case)
  case.run = case.run or call
  cases[#cases + 1] = case
end

-- Faults of the hostile server in create and query: the scenario, the call,
-- the kinds accepted, the task id kept (then created and journalled), maybe
-- created, the POSTs or GETs that reached the server, the time bound, the
-- memory bound (MB).
local ANSWER_FAULTS = {
  { "truncated", "create", { "network", "protocol" }, id = "task_1" },
  { "truncated_429", "create", { "network", "protocol" }, id = "task_t429", retries = 2, sent = 1 },
  { "cl_long", "create", { "network", "protocol" }, id = "task_4" },
  { "chunked_bad", "create", { "network", "protocol" }, id = "task_c" },
  { "huge", "create", { "network", "protocol" }, id = "task_2" },
  { "dupkey", "create", { "protocol" }, id = "task_3", created = false },
  { "empty", "create", { "protocol" }, maybe = true },
  { "cl_short", "create", { "protocol" }, maybe = true },
  { "big_header", "create", { "protocol" }, maybe = true, memory = 20 },
  { "gzip", "create", { "protocol" }, maybe = true, memory = 20, warm = true },
  { "reset_header", "create", { "network", "protocol" }, maybe = true, retries = 2, sent = 1 },
  { "reset_body", "create", { "network", "protocol" }, maybe = true, retries = 2, sent = 1 },
  { "reset_header", "query", { "network" }, retries = 2, sent = 3 },
  { "reset_body", "query", { "network" }, retries = 2, sent = 3 },
  { "cl_long", "query", { "network" }, retries = 1, sent = 2 },
  { "dribble", "create", { "timeout" }, maybe = true, retries = 2, sent = 1, timeout = 1, within = 3 },
  { "dribble", "query", { "timeout" }, timeout = 1, within = 3 },
}

for _, f in ipairs(ANSWER_FAULTS) do
  local scenario, op, kinds = f[1], f[2], f[3]
  local words = {}
  if f.id then
    words[#words + 1] = "keeps task id " .. f.id .. (f.created ~= false and ", created, journalled" or "")
  end
  if f.maybe or f.id then words[#words + 1] = "maybe created" end
  if f.sent then words[#words + 1] = str_format("%d %s sent", f.sent, op == "create" and "POST" or "GET") end
  if f.memory then words[#words + 1] = "memory grows < " .. f.memory .. " MB" end
  add {
    name = str_format("%s %s: %s%s", scenario, op, concat(kinds, " or "), #words > 0 and (", " .. concat(words, ", "))
      or ""),
    prepare = function(env)
      local base = env.hs:url(scenario)
      if f.warm then env.get(base .. "/warm") end -- the server makes its bomb, untimed
      return { op = op, base = base, client = { base_url = base, max_retries = f.retries or 0,
        timeout = f.timeout or 2, journal = f.id and env.name("journal") .. ".jsonl" or nil } }
    end,
    check = function(o, a, env)
      local A = env.assert
      failed(A, o, kinds)
      if f.id then
        A.equal(f.id, o.err.id, show(o))
        if f.created ~= false then
          A.is_true(o.err.created, show(o))
          A.is_true(journal_has(env, a.client.journal, f.id), "the journal has no line for " .. f.id)
        end
      end
      if f.maybe or f.id then A.is_true(o.err.maybe_created, show(o)) end
      if f.sent then
        A.equal(f.sent, M.count(env.hs:requests(a.base), op == "create" and "POST" or "GET"), show(o))
      end
      if f.memory then A.is_true(o.mem_kb < f.memory * 1024, "memory grew: " .. show(o)) end
      if scenario == "gzip" then
        local reqs = env.hs:requests(a.base .. "/v1/")
        A.equal(1, #reqs)
        A.is_nil(reqs[1].headers["accept-encoding"], "the client asked for compression")
      end
      bounded(A, o, f.within or 4)
    end,
  }
end

for _, op in ipairs { "create", "query" } do
  add {
    name = "a refused connection: " .. op .. " fails with kind network, nothing created",
    prepare = function(env)
      return { op = op, client = { base_url = "http://127.0.0.1:" .. env.dead_port(), max_retries = 1 } }
    end,
    check = function(o, _, env)
      failed(env.assert, o, { "network" })
      env.assert.falsy(o.err.maybe_created, show(o))
      bounded(env.assert, o, 4)
    end,
  }
end

add {
  name = "the headers: the key, a User-Agent and a JSON Content-Type to the API; no key to the video's host",
  prepare = function(env)
    local base, path = env.hs:url("ok"), env.name("headers") .. ".mp4"
    -- the video on the second server: another host:port
    return { op = "generate", base = base, path = path, client = { base_url = base, max_retries = 0 },
      video_host = env.hs2.port }
  end,
  run = function(x, a)
    local out = call(x, a)
    local c = x.new { api_key = KEY, base_url = a.client.base_url, timeout = 2, max_retries = 0 }
    out.video_path = a.path .. ".2"
    local res, err = c:download(str_format("http://127.0.0.1:%d/s/video/%s/v.mp4", a.video_host,
      a.client.base_url:match("/(t%d+)$")), out.video_path)
    out.video_res, out.video_err = res, plain_err(err)
    c:close()
    return out
  end,
  check = function(o, a, env)
    local A = env.assert
    A.is_table(o.res, show(o))
    A.equal("completed", o.res.status, show(o))
    local post, query = nil, nil
    for _, r in ipairs(env.hs:requests(a.base)) do
      if r.method == "POST" then post = r else query = query or r end
    end
    local video = env.hs:requests("/s/video/" .. a.base:match("/(t%d+)$") .. "/")[1]
    A.is_table(post, "no create reached the server")
    A.is_table(query, "no query reached the server")
    A.is_table(video, "no download reached the server")
    for what, r in pairs { create = post, query = query, download = video } do
      local ua = r.headers["user-agent"]
      A.truthy((ua or ""):find("^" .. UA), what .. ": User-Agent " .. tostring(ua))
    end
    A.equal("Bearer " .. KEY, post.headers.authorization)
    A.equal("Bearer " .. KEY, query.headers.authorization)
    A.truthy((post.headers["content-type"] or ""):find("^application/json"), tostring(post.headers["content-type"]))
    A.is_nil(query.headers["content-type"], "a GET with a Content-Type")
    -- the video is served by the API's own host here (the 'ok' scenario): the
    -- key goes to the API's calls only
    A.is_nil(video.headers.authorization, "the key went with the download")
    -- and to another host, never
    A.equal(o.video_path, o.video_res, show { res = o.video_res, err = o.video_err })
    for _, r in ipairs(env.hs2:requests()) do A.is_nil(r.headers.authorization, "the key reached the video host") end
    A.is_nil(env.hs2:raw_log():find(KEY, 1, true), "the key reached the video host")
  end,
}

add {
  name = "a server's request id that is not printable UTF-8 is dropped, said once: the journal, events and errors "
    .. "stay JSON",
  promise = "request_ids",
  prepare = function(env)
    return { base = env.hs:url("bad_ids"), journal = env.name("bad-ids") .. ".jsonl" }
  end,
  run = function(x, a)
    local ids, warned = {}, {}
    local c = x.new { api_key = KEY, base_url = a.base, journal = a.journal, on_event = function(ev)
      if ev.type == "response" then ids[#ids + 1] = ev.server_request_id or "none" end
      if ev.type == "warning" then warned[#warned + 1] = ev.message end
    end }
    local task, err = c:create { model = "videos", prompt = "a cat", duration = 5 }
    local polled = c:query("task_bad_id")
    c:close()
    return { created = task and task.id, err = err and tostring(err), polled = polled and polled.id, ids = ids,
      warned = warned }
  end,
  check = function(o, a, env)
    local A = env.assert
    A.equal("task_bad_id", o.created, tostring(o.err))
    A.equal("task_bad_id", o.polled)
    A.same({ "none", "none" }, o.ids)
    A.equal(1, #o.warned, "warnings: " .. concat(o.warned, " | "))
    A.truthy(o.warned[1]:find("not printable UTF-8", 1, true), o.warned[1])
    local lines = 0
    for line in (env.helper.read_file(a.journal) or ""):gmatch("[^\n]+") do
      lines = lines + 1
      A.is_table(env.json(line), "a journal line no JSON reader reads: " .. line)
      A.is_nil(line:find("\255", 1, true), "the raw bytes reached the journal")
    end
    A.is_true(lines >= 2, "the journal's lines: " .. lines)
  end,
}

local UUID4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

add {
  name = "request ids: a new X-Request-Id per attempt (a UUID), the server's own id read, both on events and errors",
  promise = "request_ids",
  prepare = function(env) return { base = env.hs:url("ids") } end,
  run = function(x, a)
    local events = {}
    local c = x.new { api_key = KEY, base_url = a.base, timeout = 2, max_retries = 2, retry_backoff = 0.01,
      on_event = function(ev)
        if ev.type == "request" or ev.type == "response" or ev.type == "retry" then
          events[#events + 1] = { type = ev.type, method = ev.method, status = ev.status, request_id = ev.request_id,
            server_request_id = ev.server_request_id }
        end
      end }
    local task, cerr = c:create { model = "videos", prompt = "a cat", duration = 5 }
    local polled, qerr = c:query("task_ids")
    local _, err = c:query("gone")
    c:close()
    return { events = events, created = task and task.id, cerr = cerr and tostring(cerr),
      polled = polled and polled.id, qerr = qerr and tostring(qerr),
      err = err and { kind = err.kind, status = err.status, request_id = err.request_id,
        server_request_id = err.server_request_id } }
  end,
  check = function(o, a, env)
    local A = env.assert
    A.equal("task_ids", o.created, tostring(o.cerr))
    A.equal("task_ids", o.polled, tostring(o.qerr))
    local sent = {}
    for _, r in ipairs(env.hs:requests(a.base)) do sent[#sent + 1] = r.headers["x-request-id"] or "none" end
    A.equal(4, #sent, "the create, a query tried twice, the query of gone")
    local seen = {}
    for _, id in ipairs(sent) do
      A.truthy(id:find(UUID4), "not a UUID (v4): " .. id)
      A.is_nil(seen[id], "an id sent twice: " .. id)
      seen[id] = true
    end
    local ev = o.events
    local function at(i, kind, rid, sid)
      A.equal(kind, ev[i].type, "event " .. i)
      A.equal(rid, ev[i].request_id, "event " .. i .. " (" .. kind .. ")'s request_id")
      A.equal(sid, ev[i].server_request_id, "event " .. i .. " (" .. kind .. ")'s server_request_id")
    end
    at(1, "request", sent[1], nil)
    at(2, "response", sent[1], "srv-create") -- Request-Id over the echo
    at(3, "request", sent[2], nil)
    at(4, "response", sent[2], "ray-503") -- CF-Ray over the echo
    at(5, "retry", sent[2], "ray-503") -- the failed attempt's ids
    at(6, "request", sent[3], nil)
    at(7, "response", sent[3], "srv-query") -- an X-Request-Id of the server's own over the others
    at(8, "request", sent[4], nil)
    at(9, "response", sent[4], "ray-404")
    A.equal(9, #ev)
    A.same({ kind = "not_found", status = 404, request_id = sent[4], server_request_id = "ray-404" }, o.err)
  end,
}

add {
  name = "a request_id with a control character, empty or over 128 bytes is refused naming it, nothing sent",
  prepare = function(env) return { url = env.hs:url("ok") .. "/v1/result/task_rid" } end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 1 }
    local out = { refused = {} }
    for i, rid in ipairs { "a\r\nX-Evil: 1", "", string.rep("r", 129) } do
      local h, err = t:send { op = "query", url = a.url, service = true, timeout = 5, max_body = 65536,
        request_id = rid }
      out.refused[i] = { sent = h ~= nil, kind = err and err.kind, field = err and err.field }
    end
    local h = assert(t:send { op = "query", url = a.url, service = true, timeout = 5, max_body = 65536,
      request_id = string.rep("r", 128) })
    repeat t:poll(0.05) until t:finished() == h
    local task = t:result(h)
    t:close()
    out.ok = task and task.id
    return out
  end,
  check = function(o, a, env)
    env.assert.equal(3, #o.refused)
    for i = 1, 3 do env.assert.same({ sent = false, kind = "invalid_request", field = "request_id" }, o.refused[i]) end
    env.assert.equal("task_rid", o.ok)
    local sent = env.hs:requests(a.url:match("^https?://[^/]+(.*)/v1/"))
    env.assert.equal(1, #sent)
    env.assert.equal(string.rep("r", 128), sent[1].headers["x-request-id"])
  end,
}

add {
  name = "an exchange's own user agent: on one transport, each exchange carries the one it was sent with",
  prepare = function(env)
    local base = env.hs:url("ok")
    return { base = base, query = base .. "/v1/result/task_ua" }
  end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    -- a client's own (loop.lua: the clients of a key share the transport), the
    -- transport's (none given), another client's: one after the other
    for _, ua in ipairs { "starvideos/own-1", false, "starvideos/own-2" } do
      local h = assert(t:send { op = "query", url = a.query, service = true, timeout = 10, max_body = 1048576,
        user_agent = ua or nil, connect_timeout = ua and 3 or nil })
      repeat t:poll(0.05) until t:finished() == h
      t:result(h)
    end
    t:close()
    return {}
  end,
  check = function(_, a, env)
    local seen = {}
    for _, r in ipairs(env.hs:requests(a.base)) do seen[#seen + 1] = r.headers["user-agent"] or "none" end
    env.assert.same({ "starvideos/own-1", "starvideos/cases", "starvideos/own-2" }, seen)
  end,
}

add {
  name = "set_max_connections: clamped to [1, 1024], NaN refused naming it, the transport working after",
  prepare = function(env) return { query = env.hs:url("ok") .. "/v1/result/task_mc" } end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local out = { clamped = {} }
    for i, n in ipairs { 0, 1e9, -math.huge, 2 } do out.clamped[i] = pcall(t.set_max_connections, t, n) end
    local ok, err = pcall(t.set_max_connections, t, 0 / 0)
    out.nan_ok, out.nan_err = ok, tostring(err)
    local h = assert(t:send { op = "query", url = a.query, service = true, timeout = 10, max_body = 1048576 })
    repeat t:poll(0.05) until t:finished() == h
    local task, qerr = t:result(h)
    out.id, out.err = task and task.id, qerr and tostring(qerr)
    t:close()
    return out
  end,
  check = function(o, _, env)
    env.assert.same({ true, true, true, true }, o.clamped)
    env.assert.is_false(o.nan_ok)
    env.assert.matches("max_connections is not a number (NaN)", o.nan_err, 1, true)
    env.assert.equal("task_mc", o.id, o.err)
  end,
}

add {
  name = "an exchange cancelled while its answer comes: its connection is not the next exchange's",
  prepare = function(env)
    return { slow = env.hs:url("dribble") .. "/v1/result/task_d", ok = env.hs:url("ok") .. "/v1/result/task_next" }
  end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 1 }
    local h = assert(t:send { op = "query", url = a.slow, service = true, timeout = 30, max_body = 1048576 })
    local t0 = x.now()
    repeat t:poll(0.1) until x.now() - t0 > 1.5 -- (dribble: a byte a second) its first bytes came
    t:cancel(h)
    h = assert(t:send { op = "query", url = a.ok, service = true, timeout = 10, max_body = 1048576 })
    repeat t:poll(0.05) until t:finished() == h
    local task, err = t:result(h)
    t:close()
    return { id = task and task.id, err = err and tostring(err) }
  end,
  check = function(o, _, env)
    env.assert.is_nil(o.err)
    env.assert.equal("task_next", o.id)
  end,
}

-- One exchange of t, to its end: {task, status, kind, wire, message, bytes, total} (the body's bytes as a string: a
-- list of pieces or starvideos.bytes joined; task.body left out).
local function exchange(t, r)
  local h, bad = t:send(r)
  if not h then return { refused = bad.field, kind = bad.kind } end
  repeat t:poll(0.05) until t:finished() == h
  local task, err, wire, bytes, total = t:result(h)
  local body = task and task.body
  if type(body) == "table" then body = concat(body) elseif type(body) == "userdata" then body = body:sub(1) end
  if task then task.body = nil end
  return { task = task, body = body, status = err and err.status, kind = err and err.kind, wire = wire,
    message = err and err.message, bytes = bytes, total = total }
end

add {
  name = "a webhook (an exchange, its word notify): its header lines and JSON body, never the key; any 2xx taken; "
    .. "a 302 not followed",
  prepare = function(env)
    local ok, redir = env.hs:url("empty"), env.hs:url("redir_n")
    return { ok = ok, redir = redir, redir_url = redir .. "/1/v.mp4" }
  end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local out = {}
    for i, url in ipairs { a.ok .. "/hook", a.redir_url } do
      -- auth asked for: an exchange never sends the key all the same
      out[i] = exchange(t, { op = "exchange", what = "notify", method = "POST", url = url, auth = true,
        timeout = 10, max_body = 1048576, body = '{"type":"task.completed"}',
        headers = "Content-Type: application/json\nwebhook-id: msg_case\nwebhook-timestamp: 1\n" })
    end
    t:close()
    return out
  end,
  check = function(o, a, env)
    local A, text = env.assert, env.encode(o)
    A.same({ { status = 200 }, "" }, { o[1].task, o[1].body }, text) -- a 2xx with an empty body: delivered
    A.equal(302, o[2].status, text)
    A.equal("none", o[2].wire, text)
    local got = env.hs:requests(a.ok)
    A.equal(1, #got, text)
    A.equal("POST", got[1].method)
    A.equal("msg_case", got[1].headers["webhook-id"])
    A.equal("1", got[1].headers["webhook-timestamp"])
    A.truthy((got[1].headers["content-type"] or ""):find("^application/json"))
    A.equal('{"type":"task.completed"}', got[1].body)
    A.is_nil(got[1].headers.authorization, "the key went with a webhook")
    A.is_nil(got[1].raw:find(KEY, 1, true), "the key went with a webhook")
    A.equal(1, #env.hs:requests(a.redir), "a webhook's 302 was followed")
  end,
}

-- Downloads of a scenario's video into a new path: the name, the scenario,
-- the retries allowed, the URL's tail after the scenario's base (default
-- "/v.mp4"), what is done before (plant), what the retry event does (meddle),
-- and the check: `whole` (the video, byte for byte, no .part left), or
-- `nothing` (a failure: neither the file nor its .part), then `more`.
local function nothing(A, env, o, a)
  A.is_table(o.err, "expected a failure: " .. show(o))
  A.is_false(env.helper.exists(a.path) or env.helper.exists(a.path .. ".part"), "a file is left: " .. show(o))
end

local PLANTED = M.video(VIDEO_SIZE):sub(1, 150000):gsub("video", "VIDEO") -- long enough to resume from

local DOWNLOADS = {
  -- redirects: http(s) only, at most 5, never with the key
  { "a redirect loop fails within the timeout and leaves nothing behind", "redir_loop", ends = "nothing" },
  { "5 redirects in a row are followed", "redir_n", tail = "/5/v.mp4", retries = 0, ends = "whole",
    more = function(A, env, o, a) A.equal(6, #env.hs:requests(a.base), show(o)) end },
  { "6 redirects in a row are one too many: a failure", "redir_n", tail = "/6/v.mp4", retries = 0, ends = "nothing",
    more = function(A, env, _, a) A.equal(6, #env.hs:requests(a.base), "requests past the fifth redirect") end },
  { "a redirect to another port is followed, and the key never reaches that port", "redir_port", ends = "whole",
    tail = function(env) return "/" .. env.hs2.port .. "/v.mp4" end,
    more = function(A, env, _, a)
      local reqs = env.hs2:requests("/s/video/" .. a.tag .. "/")
      A.is_true(#reqs >= 1, "nothing reached the second server")
      for _, r in ipairs(reqs) do A.is_nil(r.headers.authorization, "the key reached the second server") end
      A.is_nil(env.hs2:raw_log():find(KEY, 1, true), "the key reached the second server")
    end },
  -- the .part and Range
  { "a server that ignores Range after a dropped connection: the whole file, restarted at 0", "norange",
    ends = "whole",
    more = function(A, env, _, a) A.is_true(#env.hs:requests(a.base) >= 2, "the drop was not followed by a GET") end },
  { "a 206 with the whole range to a request without Range is the complete file", "partial206", ends = "whole" },
  { "a 206 that does not start at the byte the resume asked for is a broken answer, never written: a failure",
    "range_early", ends = "nothing", retries = 0, kinds = { "network" },
    more = function(A, env, o, a)
      local gets = env.hs:requests(a.base)
      A.equal(6, #gets, show(o)) -- the cut answer, then resume_limit (5) answers from the wrong byte
      A.equal("bytes=", (gets[2].headers.range or ""):sub(1, 6), show(o))
      A.truthy(o.err.message:find("the server's 206 does not start at byte " .. gets[3].headers.range:match("%d+")
        .. ", where the download asked to go on", 1, true), show(o))
    end },
  { "a download goes on from the .part an earlier call left, 64 KiB back to compare", "video", ends = "whole",
    plant = function(env, a) env.helper.write_file(a.path .. ".part", M.video(VIDEO_SIZE):sub(1, 150000)) end,
    more = function(A, env, o, a)
      local reqs = env.hs:requests(a.base)
      A.equal(1, #reqs, show(o))
      A.equal("bytes=" .. (150000 - 65536) .. "-", reqs[1].headers.range)
    end },
}
-- a redirect is followed only where the one URL check (core.check_url) takes its
-- target: the same failure, word for word, on both transports, and the target
-- never asked for
for _, bad in ipairs {
  { "file", "a file:// URL", 'redirect: expected http(s)://host[:port][/path][?query], found the scheme "file"' },
  { "space", "a URL with a space", "redirect: expected http(s)://host[:port][/path][?query], found a space at byte " },
  { "ctl", "a URL with a control character",
    "redirect: expected http(s)://host[:port][/path][?query], found a control character (\\x01) at byte " },
  { "userinfo", "an http://user:pass@ URL", "redirect: expected http(s)://host[:port][/path][?query], found '@' at "
    .. "byte 17 (user credentials do not belong in a URL)" } } do
  DOWNLOADS[#DOWNLOADS + 1] = { "a redirect to " .. bad[2] .. " is refused by the URL check: nothing followed, nothing "
    .. "left", bad[1] == "file" and "redir_file" or "redir_bad", tail = bad[1] ~= "file" and "/" .. bad[1] .. "/v.mp4"
    or nil, ends = "nothing", retries = 0,
    more = function(A, env, o, a)
      A.equal("network", o.err.kind, show(o))
      A.truthy(o.err.message:find(bad[3], 1, true), "expected the URL check's message " .. bad[3] .. ": " .. show(o))
      A.equal(1, #env.hs:requests(a.base), "the redirect was followed: " .. show(o))
      A.equal(0, #env.hs:requests("/s/video/" .. a.tag .. "/"), "the refused target was asked for: " .. show(o))
    end }
end
for _, meddle in ipairs { "deleted", "cut", "replaced" } do
  DOWNLOADS[#DOWNLOADS + 1] = { "a .part " .. meddle .. " between attempts: the retry starts at byte 0, the file is "
    .. "the video", "cut_once", meddle = meddle, ends = "whole",
    more = function(A, env, o, a)
      A.equal(1, o.retries, show(o))
      local gets = env.hs:requests(a.base)
      A.equal(2, #gets)
      A.is_nil(gets[2].headers.range, "the retry asked for a range of a file it no longer has")
    end }
end
-- a link planted at the .part: never written through; a new .part takes its place
for _, link in ipairs { { "a symlink", "ln -s", "precious\n" }, { "a hard link", "ln", "precious\n" },
  { "a hard link long enough to resume from", "ln", PLANTED } } do
  DOWNLOADS[#DOWNLOADS + 1] = { link[1] .. " at the .part is never written through: the video lands in a new file",
    "video", ends = "whole",
    plant = function(env, a)
      a.victim = a.path .. ".victim"
      env.helper.write_file(a.victim, link[3])
      assert(env.helper.execute(link[2] .. " " .. env.q(a.victim) .. " " .. env.q(a.path .. ".part")))
    end,
    more = function(A, env, o, a)
      A.is_true(env.helper.read_file(a.victim) == link[3], "the planted file was written: " .. show(o))
      A.equal("file", env.core.file_kind(a.path), "the video is not a regular file")
    end }
end

for _, d in ipairs(DOWNLOADS) do
  add {
    name = d[1],
    prepare = function(env)
      local base = env.hs:url(d[2])
      local tail = type(d.tail) == "function" and d.tail(env) or d.tail or "/v.mp4"
      local a = { op = "download", url = base .. tail, path = env.name(d[2]) .. ".mp4", base = base,
        tag = base:match("/(t%d+)$"), meddle = d.meddle, client = { base_url = base, max_retries = d.retries or 1 } }
      if d.plant then d.plant(env, a) end
      return a
    end,
    check = function(o, a, env)
      local A = env.assert
      if d.ends == "whole" then whole(A, env, o, a.path) else nothing(A, env, o, a) end
      if d.kinds then failed(A, o, d.kinds) end
      if d.more then d.more(A, env, o, a) end
      bounded(A, o, 4)
    end,
  }
end

-- A body longer than the video can be (hostile.lua's endless*, over_range): refused past its length, else
-- past max_video_bytes (small here), as protocol naming the bound and the path; tried once more from byte 0,
-- then failed; nothing kept; written at most the bound and one read.
local ENDLESS = {
  { "endless", "200 without a length, never ending", "past 1000000 bytes (max_video_bytes)" },
  { "endless_chunked", "200 chunked, never ending", "past 1000000 bytes (max_video_bytes)" },
  { "over_range", "a 206 of the whole video whose Content-Length is 1 TB",
    "past " .. VIDEO_SIZE .. " bytes (its length)" },
}
for _, e in ipairs(ENDLESS) do
  add {
    name = e[2] .. ": refused at its bound, protocol, tried once more, nothing kept",
    prepare = function(env)
      local base = env.hs:url(e[1])
      return { url = base .. "/v.mp4?token=s3cr3t", base = base, path = env.name(e[1]) .. ".mp4", most = 1000000 }
    end,
    run = function(x, a)
      local D = require("starvideos.config").DEFAULTS
      local was, most = D.max_video_bytes, 0
      D.max_video_bytes = a.most
      local c = x.new { api_key = KEY, timeout = 2, connect_timeout = 1 }
      D.max_video_bytes = was
      local t0 = x.now()
      local res, err = c:download(a.url, a.path, { on_progress = function(ev)
        if (ev.bytes or 0) > most then most = ev.bytes end
      end })
      local out = { res = res, err = plain_err(err), elapsed = x.now() - t0, most = most,
        part = size_of(a.path .. ".part"), file = size_of(a.path) }
      c:close()
      return out
    end,
    check = function(o, a, env)
      local A = env.assert
      failed(A, o, { "protocol" })
      A.equal("download: unusable answer: the body is longer than the video can be: " .. e[3] .. " at "
        .. a.base:match("^http://[^/]+(.*)$") .. "/v.mp4", o.err.message, show(o))
      A.is_true(o.most > 0 and o.most <= (e[1] == "over_range" and VIDEO_SIZE or a.most) + 131072,
        "written past the bound and a read: " .. tostring(o.most))
      A.is_nil(o.part, ".part left: " .. tostring(o.part))
      A.is_nil(o.file, "a video saved")
      A.equal(2, M.count(env.hs:requests(a.base), "GET"), "once more from byte 0, then failed: " .. show(o))
      A.is_true(o.elapsed < 10, show(o))
    end,
  }
end

-- Only whole videos are kept (hostile.lua's dl_* services: a task of 5 s whose video is
-- bad, always or only the first time): generate with out, each download followed in the
-- server's log (the task's result queries, the video GETs and their Range).
local DL_GOOD = media.mp4 { seconds = 5, bytes = 100000 } -- hostile.lua's good MP4

local function dl_log(env, base)
  local queries, gets = 0, {}
  for _, r in ipairs(env.hs:requests(base)) do
    if r.path:find("/v1/result/", 1, true) then queries = queries + 1
    elseif r.method == "GET" and r.path:find("/v%.mp4$") then gets[#gets + 1] = r.headers.range or "none" end
  end
  return queries, gets
end

local WHOLE = {
  { "dl_html", "an HTML page with 200", "not an MP4: it does not begin with an ftyp box" },
  { "dl_short", "half an MP4 with a matching short Content-Length", "box 'mdat' at byte " },
  -- (the mdat, from its offset to the file's end, says 64 bytes more)
  { "dl_overrun", "an MP4 whose mdat runs past the end", str_format("runs past the end (%d bytes of a file of 100000)",
    100000 - (DL_GOOD:find("mdat", 1, true) - 5) + 64) },
  { "dl_duration", "a 9 s MP4 for a 5 s task", "duration 9.0 s, the task says 5 s" },
}
for _, w in ipairs(WHOLE) do
  add {
    name = w[2] .. ", twice: nothing kept, the task asked again, protocol naming the check",
    prepare = function(env)
      local base = env.hs:url(w[1])
      return { op = "generate", base = base, path = env.name(w[1]) .. ".mp4", client = { base_url = base } }
    end,
    check = function(o, a, env)
      local A = env.assert
      failed(A, o, { "protocol" })
      A.truthy(o.err.message:find("is not a whole video: ", 1, true), show(o))
      A.truthy(o.err.message:find(w[3], 1, true), "the check is not named (" .. w[3] .. "): " .. show(o))
      nothing(A, env, o, a)
      local queries, gets = dl_log(env, a.base)
      A.equal(2, queries, "result queries: " .. show(o))
      A.same({ "none", "none" }, gets, "video GETs (their Range): " .. show(o))
      bounded(A, o, 4)
    end,
  }
  add {
    name = w[2] .. " the first time: nothing kept, a fresh URL, the good file from byte 0, its SHA-256 journalled",
    prepare = function(env)
      local base = env.hs:url(w[1] .. "_once")
      return { op = "generate", base = base, path = env.name(w[1]) .. "-once.mp4",
        client = { base_url = base, journal = env.name("journal") .. ".jsonl" } }
    end,
    check = function(o, a, env)
      local A = env.assert
      A.is_nil(o.err, show(o))
      A.is_true(env.helper.read_video(a.path) == DL_GOOD, "the file is not the good MP4: " .. show(o))
      A.is_false(env.helper.exists(a.path .. ".part"), "the .part is left")
      local sum = env.helper.capture("sha256sum " .. env.q(a.path)):match("^(%x+)")
      A.equal(sum, o.sha256, show(o))
      local rec
      for line in (env.helper.read_file(a.client.journal) or ""):gmatch("[^\n]+") do
        local r = env.json(line)
        if type(r) == "table" and r.event == "downloaded" then rec = r end
      end
      A.same({ a.path, env.helper.file_size(a.path), sum }, { rec and rec.path, rec and rec.bytes, rec and rec.sha256 })
      local queries, gets = dl_log(env, a.base)
      A.equal(2, queries, "result queries: " .. show(o))
      A.same({ "none", "none" }, gets, "video GETs (their Range): " .. show(o))
      bounded(A, o, 4)
    end,
  }
end

add {
  name = "a 200 to a Range request starts the file again from byte 0, never appended: the good file",
  promise = "resumable", places = { "file" },
  prepare = function(env)
    local base = env.hs:url("dl_range200")
    return { op = "generate", base = base, path = env.name("range200") .. ".mp4", client = { base_url = base } }
  end,
  check = function(o, a, env)
    local A = env.assert
    A.is_nil(o.err, show(o))
    A.is_true(env.helper.read_video(a.path) == DL_GOOD, "the file is not the good MP4 (appended?): " .. show(o))
    local queries, gets = dl_log(env, a.base)
    A.equal(1, queries, show(o))
    A.equal(2, #gets, show(o))
    A.equal("none", gets[1])
    A.truthy(gets[2]:find("^bytes=%d+%-$"), "the retry asked for no Range: " .. gets[2])
    bounded(A, o, 4)
  end,
}

-- A create answered 429, 503 (with Retry-After: 0) or 500 whose body is the task the server made (issue 55, item
-- 4: the client created again, paid twice, the first task in no record): that task, created once, followed to its
-- video and journalled (hostile.lua's err_task_* services; a second create would make "task_paid_twice").
for _, code in ipairs { "429", "503", "500" } do
  add {
    name = "a create answered " .. code .. " with the task it made in the body is that task: created once, "
      .. "followed to its video, journalled",
    prepare = function(env)
      local base = env.hs:url("err_task_" .. code)
      return { op = "generate", base = base, path = env.name("err-task-" .. code) .. ".mp4",
        client = { base_url = base, max_retries = 2, journal = env.name("journal") .. ".jsonl" } }
    end,
    check = function(o, a, env)
      local A = env.assert
      local creates = M.count(env.hs:requests(a.base), "POST")
      A.equal(1, creates, "creates sent: " .. show(o))
      A.is_nil(o.err, show(o))
      A.is_true(env.helper.read_video(a.path) == DL_GOOD, "the file is not the good MP4: " .. show(o))
      local events = {}
      for line in (env.helper.read_file(a.client.journal) or ""):gmatch("[^\n]+") do
        local r = env.json(line)
        if type(r) == "table" and r.id == "task_err_" .. code then events[#events + 1] = r.event end
      end
      A.equal("created", events[1], "the task's records: " .. concat(events, ", "))
      A.equal("downloaded", events[#events], "the task's records: " .. concat(events, ", "))
      A.is_false(journal_has(env, a.client.journal, "task_paid_twice"), "a second task was created")
      if code == "429" then -- its Retry-After holds the key all the same: the first poll 2 s after the create
        local log = env.hs:requests(a.base)
        A.is_true(log[2] and log[2].time - log[1].time >= 1.9, "the poll after the 429's Retry-After: 2 came "
          .. (log[2] and string.format("%.2f s", log[2].time - log[1].time) or "never") .. " after it")
      end
      bounded(A, o, 5)
    end,
  }
end

add {
  name = "the commit opens the .part once, fresh (O_EXCL), syncs it, renames it, then syncs the folder",
  trace = "openat,open,close,fsync,fdatasync,rename,renameat,renameat2",
  prepare = function(env)
    local base = env.hs:url("video")
    return { op = "download", url = base .. "/v.mp4", path = env.name("sync") .. ".mp4",
      client = { base_url = base } }
  end,
  check = function(o, a, env)
    local A = env.assert
    whole(A, env, o, a.path)
    -- in the spec's process only (the worker requires this file as "transport_cases")
    require("spec.support.commit_trace").check(A, o.trace or "", a.path .. ".part", a.path)
  end,
}

-- The transport itself: cancel and close mid-transfer.
local function drain(x, t, h, want)
  local t0 = x.now()
  while (t:progress(h) or 0) < want and x.now() - t0 < 10 do
    t:poll(0.02)
    x.sleep(0.01)
  end
  return t:progress(h) or 0
end

-- The sizes of the files at parts 0.3 s after now, and 0.5 s later.
local function settle(x, parts)
  local before, after = {}, {}
  x.sleep(0.3)
  for i, p in ipairs(parts) do before[i] = size_of(p) or -1 end
  x.sleep(0.5)
  for i, p in ipairs(parts) do after[i] = size_of(p) or -1 end
  return before, after
end

add {
  name = "cancel mid-download: nothing more is written, the exchange is never reported finished",
  prepare = function(env)
    local base = env.hs:url("slow_video")
    return { url = base .. "/v.mp4", part = env.name("cancel") .. ".mp4.part" }
  end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local t0 = x.now()
    local h = assert(t:send { op = "download", url = a.url, file = a.part, offset = 0, follow = true, timeout = 30,
      stall = 10, max_body = 1e9 })
    local got = drain(x, t, h, 1)
    t:cancel(h)
    local cancelled = x.now() - t0
    local sizes1, sizes2 = settle(x, { a.part })
    t:poll(0)
    local reported = t:finished() ~= nil
    t:close()
    return { got = got, cancelled = cancelled, size1 = sizes1[1], size2 = sizes2[1], reported = reported }
  end,
  check = function(o, _, env)
    local A, text = env.assert, env.encode(o)
    A.is_true(o.got > 0 and o.got < VIDEO_SIZE, text)
    A.is_true(o.cancelled < 1.5, "the cancel came after the whole video: " .. text)
    A.equal(o.size1, o.size2, "the .part grew after the cancel: " .. text)
    A.is_true(o.size2 < VIDEO_SIZE, text)
    A.is_false(o.reported, "a cancelled exchange was reported finished: " .. text)
  end,
}

add {
  name = "close mid-transfer ends every exchange at once, writes nothing more, and refuses new ones",
  prepare = function(env)
    local base = env.hs:url("slow_video")
    return { url = base .. "/v.mp4", query = env.hs:url("dribble") .. "/v1/result/task_q",
      parts = { env.name("close") .. ".mp4.part", env.name("close") .. ".mp4.part" } }
  end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local hs = {}
    for i, part in ipairs(a.parts) do
      hs[i] = assert(t:send { op = "download", url = a.url, file = part, offset = 0, follow = true, timeout = 30,
        max_body = 1e9 })
    end
    assert(t:send { op = "query", url = a.query, service = true, timeout = 30, max_body = 1048576 })
    drain(x, t, hs[1], 1)
    drain(x, t, hs[2], 1)
    local t0 = x.now()
    t:close()
    local closing = x.now() - t0
    local sizes1, sizes2 = settle(x, a.parts)
    local ok, err = pcall(t.send, t, { op = "query", url = a.query, service = true, max_body = 1048576 })
    local again = pcall(t.close, t)
    return { closing = closing, sizes1 = sizes1, sizes2 = sizes2, send_ok = ok, send_err = tostring(err),
      again = again }
  end,
  check = function(o, _, env)
    local A, text = env.assert, env.encode(o)
    A.is_true(o.closing < 1, "close waited for the transfers: " .. text)
    A.same(o.sizes1, o.sizes2, "a .part grew after close: " .. text)
    for i = 1, 2 do A.is_true(o.sizes2[i] < VIDEO_SIZE, text) end
    A.is_false(o.send_ok, "a closed transport took an exchange: " .. text)
    A.truthy(o.send_err:find("closed", 1, true), text)
    A.is_true(o.again, "a second close raised: " .. text)
  end,
}

add {
  name = "max_connections by default: the server sees options' default at once, no more",
  prepare = function(env)
    local base = env.hs:url("busy")
    local ids = {}
    for i = 1, env.default_connections + 8 do ids[i] = "task_" .. i end
    return { base = base, ids = ids }
  end,
  run = function(x, a)
    local c = x.new { api_key = KEY, base_url = a.base, requests_per_second = 1000, timeout = 10, max_retries = 0 }
    local t0 = x.now()
    local res, err = c:wait_all(a.ids, { interval = 0.05, timeout = 20 })
    local out = { elapsed = x.now() - t0, n = res and #res, err = plain_err(err) }
    c:close()
    return out
  end,
  check = function(o, a, env)
    local A, text = env.assert, env.encode(o)
    A.equal(#a.ids, o.n, text)
    local peak = tonumber((env.get(a.base .. "/peak")))
    A.equal(env.default_connections, peak, "the most exchanges the server saw at once: " .. text)
  end,
}

add {
  name = "a media request (an exchange, its word media): HEAD, a Range GET read to its cap even when the server "
    .. "sends all, a tail (from a 200 too: a host that ignores Range), a 404, a redirect followed, a tail's 206 "
    .. "without a whole Content-Range refused, and one from another byte, and a 200 that ends before the tail (the "
    .. "verdict's one range rule); never the key",
  prepare = function(env)
    return { video = env.hs:url("video"), norange = env.hs:url("norange"), redir = env.hs:url("redir_n"),
      missing = env.hs:url("nope"), no_total = env.hs:url("no_total"), early = env.hs:url("range_early") }
  end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local out = {}
    local asks = { -- auth asked for: a media request never sends the key all the same
      { url = a.video .. "/v.mp4", head = true }, { url = a.video .. "/v.mp4" },
      { url = a.video .. "/v.mp4", offset = 190000 }, { url = a.norange .. "/v.mp4" },
      { url = a.norange .. "/v.mp4" }, { url = a.missing .. "/v.mp4" }, { url = a.redir .. "/2/v.mp4" },
      { url = a.norange .. "/v.mp4", offset = 190000 }, { url = a.no_total .. "/v.mp4", offset = 190000 },
      { url = a.norange .. "/v.mp4", offset = 300000 }, { url = a.early .. "/v.mp4", offset = 190000 },
      { url = a.early .. "/v.mp4", offset = 190000 } }
    for i, ask in ipairs(asks) do
      local from = ask.offset or 0
      local h = assert(t:send { op = "exchange", what = "media", url = ask.url,
        method = ask.head and "HEAD" or "GET", range = not ask.head and { from, from + 65535 } or nil,
        headers = "Accept: */*\n", auth = true,
        follow = true, timeout = 10, max_body = 1048576 })
      repeat t:poll(0.05) until t:finished() == h
      local task, err, wire, bytes, total = t:result(h)
      local body = task and task.body
      local read = type(body) == "string" and body
      out[i] = { body = read and body:sub(1, 40) or nil, n = read and #body or nil, wire = wire, bytes = bytes,
        same = read and body == M.video(VIDEO_SIZE):sub(from + 1, from + 65536), total = total,
        status = err and err.status, kind = err and err.kind, message = err and err.message }
    end
    t:close()
    return out
  end,
  check = function(o, a, env)
    local A, text = env.assert, env.encode(o)
    A.same({ n = 0, wire = "none", bytes = 0, total = VIDEO_SIZE, same = false, body = "" }, o[1], text)
    for _, i in ipairs { 2, 4, 5, 7 } do -- the first 64 KiB, and the file's size
      A.equal(65536, o[i].n, text)
      A.is_true(o[i].same, text)
      A.equal(VIDEO_SIZE, o[i].total, text)
    end
    for _, i in ipairs { 3, 8 } do -- the tail, to the end of the file (8: a 200's, the bytes before it dropped)
      A.equal(VIDEO_SIZE - 190000, o[i].n, text)
      A.is_true(o[i].same, text)
      A.equal(VIDEO_SIZE, o[i].total, text)
    end
    A.equal(404, o[6].status, text)
    A.equal("not_found", o[6].kind, text)
    A.same({ status = 206, kind = "protocol", wire = "garbled" }, { status = o[9].status, kind = o[9].kind,
      wire = o[9].wire }, text) -- "bytes 190000-255535/*": not a whole range, as libcurl's transport reads it
    -- the verdict's range rule: the whole file (200003 bytes) short of byte 300000; range_early's half of the file
    -- cut (its wire's: asked again), then its 206 from 189000
    for i, want in pairs { [10] = { 200, "protocol", "garbled", 300000 }, [11] = { 200, "network", "broken" },
      [12] = { 206, "protocol", "garbled", 190000 } } do
      A.same({ status = want[1], kind = want[2], wire = want[3] }, { status = o[i].status, kind = o[i].kind,
        wire = o[i].wire }, text)
      A.truthy(not want[4] or (o[i].message or ""):find("media: unusable answer: the server did not send the bytes "
        .. "from " .. want[4] .. " that were asked for", 1, true), text)
    end
    local heads, ranges = 0, {}
    for _, host in ipairs { a.video, a.norange, a.redir, a.missing } do
      for _, r in ipairs(env.hs:requests(host)) do
        if r.method == "HEAD" then heads = heads + 1 else ranges[#ranges + 1] = r.headers.range end
        A.is_nil(r.headers.authorization, "the key went with a media request")
        A.is_nil(r.raw:find(KEY, 1, true), "the key went with a media request")
      end
    end
    A.equal(1, heads, text)
    A.same({ "bytes=0-65535", "bytes=190000-255535", "bytes=0-65535", "bytes=0-65535", "bytes=190000-255535",
      "bytes=300000-365535", "bytes=0-65535", "bytes=0-65535", "bytes=0-65535", "bytes=0-65535" }, ranges)
  end,
}

-- One held GET (hold, rest) of a host that ignores Range: each range's bytes, whether it was held, its GETs.
local function held_reads(x, a)
  local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
  local function get(url, first, last, rest, timeout)
    local h = assert(t:send { op = "exchange", what = "media", url = url, method = "GET", headers = "Accept: */*\n",
      range = first and { first, last } or nil, hold = true, rest = rest, timeout = timeout or 10,
      max_body = 1048576 })
    repeat t:poll(0.05) until t:finished() == h
    local task, err, wire = t:result(h)
    local body = task and task.body or ""
    return { body = body, held = task and task.held ~= nil, wire = wire, kind = err and err.kind }, task and task.held
  end
  local out = { whole = get(a.norange).body, parts = {} } -- (no Range: the file, never held)
  local held
  for i, first in ipairs { 0, 65536, 131072, 196608 } do -- (held between parts, a poll of 0.2 s meanwhile)
    out.parts[i], held = get(a.norange, first, math.min(first + 65535, #out.whole - 1), held)
    t:poll(0.2)
  end
  local _, h = get(a.norange, 0, 65535)
  out.elsewhere, h = get(a.norange, 0, 65535, h) -- (not where it stopped: sent anew, held in turn)
  t:cancel(h) -- (let go of while held)
  _, h = get(a.norange, 0, 65535, nil, 0.5)
  t:poll(1) -- (its time up while held: its next range sent anew)
  out.late = get(a.norange, 65536, 131071, h)
  local from_mid -- (a read from past byte 0, as a resumed upload's: the bytes before it dropped, then held)
  out.mid, from_mid = get(a.norange, 65536, 131071)
  out.after_mid = get(a.norange, 131072, 196607, from_mid)
  out.partial = get(a.video .. "/v.mp4", 0, 65535) -- (a 206: not held)
  t:close()
  return out
end

add {
  name = "a held exchange (hold) of a host that ignores Range: its 200 ends at each range's end, held; the next "
    .. "ranges go on with it (rest): one GET for the whole file, each range's bytes right (from past byte 0 too); one "
    .. "that starts elsewhere, or whose time is up, is sent anew; a cancel lets a held one go; a 206 is not held",
  prepare = function(env)
    return { norange = env.hs:url("media") .. "/mp4/bytes=" .. VIDEO_SIZE .. ",norange=true,seconds=5/v.mp4",
      video = env.hs:url("video") }
  end,
  run = held_reads,
  check = function(o, a, env)
    local A, file, got, held = env.assert, o.whole, {}, {}
    A.equal(VIDEO_SIZE, #file)
    for i, p in ipairs(o.parts) do got[i], held[i] = p.body, p.held end
    A.is_true(file == table.concat(got), "the parts' bytes")
    A.same({ true, true, true, false }, held) -- (the last ends with the file)
    A.same({ true, true }, { o.elsewhere.body == file:sub(1, 65536), o.elsewhere.held })
    A.same({ true, "none" }, { o.late.body == file:sub(65537, 131072), o.late.wire })
    A.same({ true, true, true }, { o.mid.body == file:sub(65537, 131072), o.mid.held,
      o.after_mid.body == file:sub(131073, 196608) })
    A.same({ true, false }, { o.partial.body == M.video(VIDEO_SIZE):sub(1, 65536), o.partial.held })
    local ranges = {}
    for _, r in ipairs(env.hs:requests(a.norange:match("^(.-/s/media/[^/]+)"))) do
      ranges[#ranges + 1] = r.headers.range or "none"
    end
    A.same({ "none", "bytes=0-65535", "bytes=0-65535", "bytes=0-65535", "bytes=0-65535", "bytes=65536-131071",
      "bytes=65536-131071" }, ranges, "the GETs of the host that ignores Range")
  end,
}

add {
  name = "a media request that may reach only public addresses (public = true) is refused, not sent, where a "
    .. "redirect leads to 169.254.169.254",
  prepare = function(env) return { url = env.hs:url("redir_bad") .. "/meta/v.png" } end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local h = assert(t:send { op = "exchange", what = "media", method = "HEAD", url = a.url, follow = true,
      public = true, timeout = 10, max_body = 65536 })
    repeat t:poll(0.05) until t:finished() == h
    local body, err, wire = t:result(h)
    t:close()
    return { body = body, wire = wire, message = err and err.message, transport = x.which }
  end,
  check = function(o, a, env)
    local A, text = env.assert, env.encode(o)
    A.same({ "fatal", true }, { o.wire, (o.message or ""):find(env.core.CANNOT_FETCH, 1, true) ~= nil }, text)
    -- libcurl checks every address it connects to, the hostile server's 127.0.0.1 first; nginx (which
    -- resolves names itself) each redirect's host, the first URL's being the preflight's to check
    A.equal(o.transport == "curl" and 0 or 1, #env.hs:requests(a.url), text)
    A.truthy(o.message:find(o.transport == "curl" and "127.0.0.1 is a loopback" or "169.254.169.254 is a link-local",
      1, true), text)
  end,
}

add {
  name = "an exchange says what differs by its data: its method (PUT, DELETE, POST, HEAD; another refused), its own "
    .. "header lines only, a body of pieces, the answer's header lines when asked, its word in messages, an S3 "
    .. "<Error>'s words; never the key",
  prepare = function(env)
    return { ok = env.hs:url("empty"), s3 = env.hs:url("s3_error"), missing = env.hs:url("nope") }
  end,
  run = function(x, a)
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local asks = { -- auth asked for each time: an exchange never sends the key all the same
      { method = "PUT", url = a.ok .. "/put", body = { "ab", "", "cdef" }, heads = true,
        headers = "x-amz-meta-sha256: 00ff\nContent-Type: text/plain\n" },
      { method = "DELETE", url = a.ok .. "/delete" },
      { method = "POST", url = a.ok .. "/post", body = "{}", headers = "Content-Type: application/json\n" },
      { method = "HEAD", url = a.ok .. "/head", heads = true },
      { method = "GET", url = a.s3 .. "/object", what = "storage" },
      { method = "GET", url = a.missing .. "/x" },
      { method = "PATCH", url = a.ok .. "/patch" } }
    local out = {}
    for i, r in ipairs(asks) do
      out[i] = exchange(t, { op = "exchange", url = r.url, method = r.method, body = r.body, headers = r.headers,
        heads = r.heads, what = r.what, auth = true, timeout = 10, max_body = 1048576 })
    end
    t:close()
    return out
  end,
  check = function(o, a, env)
    local A, text = env.assert, env.encode(o)
    for i = 1, 4 do A.same({ 200, "none", "" }, { o[i].task and o[i].task.status, o[i].wire, o[i].body }, text) end
    A.truthy(o[1].task.headers:lower():find("content-type: application/json", 1, true), text) -- kept
    A.truthy(o[4].task.headers:lower():find("content-length: 0", 1, true), text)
    A.is_nil(o[2].task.headers, text) -- not asked for
    A.same({ 403, "auth", "storage: HTTP 403: AccessDenied: Access Denied" }, { o[5].status, o[5].kind,
      o[5].message }, text)
    A.same({ 404, "not_found" }, { o[6].status, o[6].kind }, text)
    A.truthy(o[6].message:find("^exchange: HTTP 404"), text) -- no word: the op's
    A.same({ refused = "method", kind = "invalid_request" }, o[7], text)
    local got = env.hs:requests(a.ok)
    A.same({ "PUT", "DELETE", "POST", "HEAD" }, { got[1].method, got[2].method, got[3].method, got[4].method }, text)
    A.same({ "abcdef", "6", "00ff", "text/plain" }, { got[1].body, got[1].headers["content-length"],
      got[1].headers["x-amz-meta-sha256"], got[1].headers["content-type"] })
    A.same({ "{}", "application/json" }, { got[3].body, got[3].headers["content-type"] })
    for _, r in ipairs(got) do
      A.is_nil(r.headers.authorization, "the key went with an exchange")
      A.is_nil(r.raw:find(KEY, 1, true), "the key went with an exchange")
      A.is_nil(r.headers.range, "a range asked for none") -- (only a range asks one)
      A.are_not.equal("application/json", r.headers.accept, "a line the exchange did not give: " .. r.raw)
    end
    A.equal(4, #got, text) -- the PATCH was refused before it was sent
  end,
}

add {
  name = "an exchange's range and tap: the bytes asked for as pieces (a list of strings, or bytes), a stream fed as "
    .. "they come (libcurl's); without a range, a body past max_body is garbled",
  prepare = function(env) return { video = env.hs:url("video") } end,
  run = function(x, a)
    local sign = require "starvideos.sign"
    local t = x.transport { api_key = KEY, user_agent = "starvideos/cases", connect_timeout = 2, max_connections = 4 }
    local s = assert(sign.stream(-1))
    local out = { exchange(t, { op = "exchange", method = "GET", url = a.video .. "/v.mp4", range = { 0, 99999 },
      pieces = true, tap = s, timeout = 10, max_body = 1048576 }) }
    out[1].fed, out[1].transport = s:tapped(), x.which
    out[2] = exchange(t, { op = "exchange", method = "GET", url = a.video .. "/v.mp4", range = { 150000, 150999 },
      timeout = 10, max_body = 1048576 })
    out[3] = exchange(t, { op = "exchange", method = "GET", url = a.video .. "/v.mp4", timeout = 10, max_body = 1000 })
    t:close()
    local video = M.video(VIDEO_SIZE) -- (the bytes compared here: the worker's JSON carries no binary)
    out[1].same, out[2].same, out[1].body, out[2].body = out[1].body == video:sub(1, 100000),
      out[2].body == video:sub(150001, 151000), nil, nil
    return out
  end,
  check = function(o, a, env)
    local A, text = env.assert, env.encode(o)
    A.same({ 206, "none", 100000, VIDEO_SIZE }, { o[1].task.status, o[1].wire, o[1].bytes, o[1].total }, text)
    A.is_true(o[1].same, text)
    -- libcurl feeds the tap as it reads; nginx's hands the pieces over, hashed later (storage/part.lua's check)
    A.equal(o[1].transport == "curl" and 100000 or 0, o[1].fed, text)
    A.same({ 206, 1000, true }, { o[2].task.status, o[2].bytes, o[2].same }, text)
    A.same({ "garbled", "protocol" }, { o[3].wire, o[3].kind }, text)
    A.truthy(o[3].message:find("larger than 1000 bytes", 1, true), text)
    local ranges = {}
    for _, r in ipairs(env.hs:requests(a.video)) do ranges[#ranges + 1] = r.headers.range or "none" end
    A.same({ "bytes=0-99999", "bytes=150000-150999", "none" }, ranges, text)
  end,
}

M.by_name = {}
for _, c in ipairs(cases) do
  assert(not M.by_name[c.name], "two cases named " .. c.name)
  M.by_name[c.name] = c
end

-- Run a case's transport side: out (JSON-able).
function M.run(name, args, x)
  local case = assert(M.by_name[name], "no case named " .. tostring(name))
  return case.run(x, args)
end

return M
