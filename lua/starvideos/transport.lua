-- The transport: the small interface between the client and the wire.  A
-- transport only moves bytes; building requests, the retry policy, reading
-- answers and the download rules live in the core and the shared Lua above it
-- (request.lua, job.lua), so every transport behaves alike.
--
--   t = <transport>.new(cfg)        cfg: api_key, ca_file, user_agent,
--                                   connect_timeout, max_connections (the
--                                   last three required: options.lua's table
--                                   gives them; a transport clamps, never
--                                   defaults)
--   h = t:send(r)                   start one exchange; h, or nil, err
--       r.op        "create" | "query" | "download" | "notify" (how the answer
--                   is read; a notify, a webhook to the user's own host
--                   (notify.lua): never the key, whatever r.auth says, any 2xx
--                   is success, no redirect followed)
--       r.url       the whole URL (http or https only; both transports check it
--                   with core.check_url: a bad one is nil, err (field "url"))
--       r.auth      add "Authorization: Bearer <api_key>"
--       r.body      a POST with this JSON body, else a GET
--       r.headers   a notify's header lines ("Name: value\n" each: its webhook-*)
--       r.fresh     never on a reused connection (a create: a dead kept-alive
--                   connection must not make it go out twice)
--       r.timeout   seconds for the whole exchange (nil: none)
--       r.max_body  an API answer longer than this ends as "garbled"
--                   (required but for downloads: the table's max_answer)
--       downloads:  r.file (write a 200/206 body there, never through a
--                   symlink), r.offset (bytes already in r.file: ask for the
--                   rest with Range; a 200 is written from byte 0, a 206 from
--                   the byte its Content-Range names), r.stall (seconds without
--                   a byte), r.follow (redirects whose target core.check_url
--                   takes, read with core.resolve_url; at most 5)
--       r.user_agent, r.connect_timeout, r.ca_file  the exchange's client's own
--                   (the clients of a key share a transport: engine.lua); no
--                   user_agent: the transport's own three
--       r.proxy     "http://host:port" (the client's proxy option) or
--                   nil/false: none (libcurl then reads the environment)
--   n = t:poll(max_wait)            do the network work that is ready; wait at
--                                   most max_wait seconds for an exchange to
--                                   finish (0: never wait)
--   h = t:finished()                the next finished exchange, or nil
--   task, err, wire[, bytes, total, file] = t:result(h)
--                                   the core's verdict on the exchange
--                                   (core.verdict): the task table (read once,
--                                   in C; a download's: "") on success, else
--                                   err; wire says how the wire ended ("none",
--                                   "not_sent", "timeout", "broken", "garbled",
--                                   "fatal", "io") for the retry policy;
--                                   downloads add bytes in the file and the
--                                   total size, and a whole one may add file:
--                                   its open .part (a handle with close), for
--                                   core.commit(_start)(part, path, file), so
--                                   that the commit acts on what was written.
--                                   h is spent.
--   bytes, total = t:progress(h)    a download in flight
--   t:cancel(h)                     end an exchange now; h is spent
--   t:set_max_connections(n)       optional: the key's max_connections from
--                                   now on (its smallest live client's)
--   t:close()
--   ok, err = t:commit(part, path)  optional: what core.commit does (fsync,
--                                   then rename), where the transport's host
--                                   would rather not wait for the disk
--
-- Two implementations: libcurl in C (starvideos.curl: API requests on its multi
-- interface, each download on a thread of its own, which a poll only looks at),
-- and inside nginx one on nginx's own sockets (transport/ngx.lua), so that a
-- client waiting there yields the worker.  A transport written in Lua reads its
-- answers with core.verdict(op, status, body, retry_after, wire, message, bytes,
-- total, key).
--
-- The words for an answer's stages, the same in every file: the answer (what
-- the server sent: status, headers, body), the wire (how the exchange ended on
-- the wire), the verdict (the core's reading of both: the task, or an error,
-- and the wire for the retry policy).

local core = require "starvideos.core"

local type, rawget, error, string_format = type, rawget, error, string.format

local T = {}

-- The nginx phases whose handlers may use cosockets, light threads and semaphores.
local NGX_PHASES = { rewrite = true, server_rewrite = true, access = true, content = true, timer = true }

-- The ngx table when running inside nginx with the lua module, else nil.
local function nginx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" and type(ngx.socket) == "table"
      and type(ngx.socket.tcp) == "function" then
    return ngx
  end
end

function T.new(cfg)
  local ngx = nginx()
  if ngx then
    local phase = ngx.get_phase()
    if not NGX_PHASES[phase] then
      error(string_format("starvideos.new: nginx allows no network calls in its %s phase (%s_by_lua*): "
        .. "create and use the client in a content, access or rewrite handler, or in a timer (ngx.timer.at)",
        phase, phase), 3)
    end
    return require("starvideos.transport.ngx").new(cfg)
  end
  -- libcurl's transport: its own C module, loaded with the first client (core.curl
  -- in the static library, which has it compiled in)
  local curl = core.curl or require("starvideos.curl").new
  return curl { api_key = cfg.api_key, ca_file = cfg.ca_file, user_agent = cfg.user_agent,
    connect_timeout = cfg.connect_timeout, max_connections = cfg.max_connections }
end

return T
