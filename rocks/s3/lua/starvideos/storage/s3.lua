-- S3 and the stores that speak its API (docs/storage.md): where an object is (s3://bucket/key), the store a
-- client's `storage` option and the AWS_* environment name, the requests the library sends (OPS: a row per
-- request shape), each signed with SigV4 by starvideos.sign, and the few fields read from their answers.
-- It sends nothing itself: a request's parts go to request.lua (an exchange, its word "storage") over the loop's
-- transport.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local X = require "starvideos.extension" -- (its window: what a rock may use of the core)
local core = require "starvideos.core"
local errors = X.errors
local env = X.config.env -- ($name, nil when unset or empty)

local type, tostring, pairs, ipairs, setmetatable, string_format, table_concat, os_time, math_floor =
  type, tostring, pairs, ipairs, setmetatable, string.format, table.concat, os.time, math.floor
local new_error = errors.new_error

local S = {}

S.EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" -- the SHA-256 of no bytes
S.UNSIGNED = "UNSIGNED-PAYLOAD"

S.WEEK = 7 * 86400 -- seconds: the longest a SigV4 presigned URL lives
S.HOUR = 3600      -- seconds: the shortest lifetime a presigned URL is given (a queue may hold the task that long)
S.MARGIN = 600     -- seconds a presigned URL outlives the task's deadline

local function sign() return require "starvideos.sign" end -- (C: loaded at first use)
-- SigV4 and S3's percent-encoding: this rock's own C module (rocks/s3/csrc), loaded with the first request
local function sigv4() return require "starvideos.sigv4" end

-- Whether s is UTF-8 without control characters (a key's bytes go into the path and the XML of a request).
local function key_text_ok(s)
  if s:find("[%z\1-\31\127]") then return false end
  local rest = s:gsub("[\194-\244][\128-\191]*", function(c) -- a lead byte and as many continuations as it says
    local lead = c:byte()
    return #c == (lead < 224 and 2 or lead < 240 and 3 or 4) and "" or nil
  end)
  return not rest:find("[\128-\255]") -- (no byte left of a character that is not ASCII)
end

local function bad(field, url, why)
  return nil, new_error("invalid_request", string_format("%s: %s is not an object URL: %s (expected "
    .. "s3://bucket/key)", field, url, why), { field = field })
end

-- "s3://bucket/key" (prefix: a folder's, "s3://bucket[/prefix/]", its key "" or ending in /) -> bucket, key
-- | nil, err (invalid_request, field).  A bucket as S3 names them; a key of 1 to 1024 bytes of UTF-8 without
-- control characters, neither starting with / nor holding a . or .. part.
function S.parse(url, field, prefix)
  if type(url) ~= "string" then return bad(field, tostring(url), "not a string") end
  local bucket, key = url:match("^[sS]3://([^/]*)/?(.*)$")
  if not bucket then return bad(field, url, "it does not start with s3://") end
  if #bucket < 3 or #bucket > 63 or not bucket:find("^[a-z0-9][a-z0-9.-]*[a-z0-9]$") or bucket:find("..", 1, true)
      or bucket:find("^%d+%.%d+%.%d+%.%d+$") then
    return bad(field, url, "the bucket must be 3 to 63 characters of a-z 0-9 . -, starting and ending with a "
      .. "letter or digit")
  end
  if not prefix and key == "" then return bad(field, url, "no key after the bucket") end
  if not prefix and key:sub(-1) == "/" then return bad(field, url, "a key ending in / names a folder") end
  if #key > 1024 or not key_text_ok(key) then
    return bad(field, url, "the key must be at most 1024 bytes of UTF-8 without control characters")
  end
  if key:find("^/") or ("/" .. key .. "/"):find("/%.%.?/") then
    return bad(field, url, "the key may not start with / nor hold a . or .. part")
  end
  if prefix and key ~= "" and key:sub(-1) ~= "/" then key = key .. "/" end
  return bucket, key
end

-- The stores of this process, one object per endpoint, region and keys, and what it learned of each server
-- (one per endpoint, whoever's keys asked it).
local stores, servers = {}, {}

-- What the process learned of a server: checksum "md5" once it refused x-amz-checksum-* (said once: object.lua);
-- of the reference objects (refs.lua), by URL: how many live jobs hold it (users), whether it is known to be in
-- the bucket (there), the object whose request is in flight (asking); by job, the URLs it holds (holds).
local Server = {}
Server.__index = Server

local function new_server(where)
  return setmetatable({ where = where, checksum = nil, users = {}, there = {}, asking = {},
    holds = setmetatable({}, { __mode = "k" }) }, Server)
end

-- A job (its seat) holds the object at url: one user more.
function Server:hold(seat, url)
  self.users[url] = (self.users[url] or 0) + 1
  local held = self.holds[seat] or {}
  self.holds[seat], held[#held + 1] = held, url
end

-- A job (its seat) lets go of what it holds: an object no live job holds is no longer known to be there (another
-- process may delete it).
function Server:let_go(seat)
  local users = self.users
  for _, url in ipairs(self.holds[seat] or {}) do
    users[url] = users[url] - 1
    if users[url] == 0 then users[url], self.there[url] = nil, nil end
  end
  self.holds[seat] = nil
end

-- Whether a live job of this process holds the object at url.
function Server:held(url) return self.users[url] ~= nil end

-- Whether the object at url is known to be in the bucket.
function Server:known(url) return self.there[url] == true end

-- The object whose request for url is in flight, or nil.
function Server:asker(url) return self.asking[url] end

-- o's request for url sent: the others asking for it wait on o.
function Server:asks(url, o) self.asking[url] = o end

-- o's request for url ended: there (true: in the bucket now, false: not, nil: not known better than before).
function Server:answered(url, o, there)
  if self.asking[url] == o then self.asking[url] = nil end
  if there ~= nil then self.there[url] = there or nil end
end

-- The storage option's fields (docs/storage.md) and their types: this rock's own, checked when a client is made
-- (the core hands the option to the references point: refs.lua's check).
S.OPTION = { endpoint = "string", region = "string", access_key = "string", secret_key = "string",
  session_token = "string", path_style = "boolean", refs = "string", keep_refs = "boolean" }

-- nil, or what is wrong with the storage option v (a table: config.lua's): a field of another name, or of another
-- type.  Never a value.
function S.check(v)
  for k, x in pairs(v) do
    local want = S.OPTION[k]
    if not want then
      return "storage." .. tostring(k) .. ": unknown field (endpoint, region, access_key, secret_key, session_token, "
        .. "path_style, refs, keep_refs)"
    end
    if type(x) ~= want then return string_format("storage.%s: a %s expected, got a %s", k, want, type(x)) end
  end
end

local ENV = { endpoint = "AWS_ENDPOINT_URL", region = "AWS_REGION", access_key = "AWS_ACCESS_KEY_ID",
  secret_key = "AWS_SECRET_ACCESS_KEY", session_token = "AWS_SESSION_TOKEN" }

-- The store each storage table was last found to name (a client's own copy of its option, config.lua's; NONE: no
-- option, the environment alone), kept with the fields it was made from: a table whose fields are not those any
-- longer is read again, so that other credentials never get its store.  The environment is read once per table:
-- a process's does not change under it.
local made, NONE = setmetatable({}, { __mode = "k" }), {}
local FIELDS = { "endpoint", "region", "access_key", "secret_key", "session_token", "path_style" }

local function kept(t)
  local m = made[t]
  if not m then return nil end
  for _, k in ipairs(FIELDS) do if m.from[k] ~= t[k] then return nil end end
  return m.store
end

local function keep(t, st)
  local from = {}
  for _, k in ipairs(FIELDS) do from[k] = t[k] end
  made[t] = { store = st, from = from }
  return st
end

local function refuse(field, why)
  return nil, new_error("invalid_request", "storage." .. field .. ": " .. why, { field = "storage." .. field })
end

-- What a store needs, from the storage option (t), else the environment: the store (the same object for the same
-- endpoint, region and keys), or nil, err (field storage.*) when a value is wrong or the credentials are missing.
-- Never a secret in a message.
function S.store_of(t)
  t = t or NONE
  local known = kept(t)
  if known then return known end
  local v = {}
  for k, name in pairs(ENV) do v[k] = t[k] or env(name) end
  v.region = v.region or env("AWS_DEFAULT_REGION") or "us-east-1"
  if not v.region:find("^[a-z0-9-]+$") then return refuse("region", "expected a region such as us-east-1") end
  local endpoint = v.endpoint or string_format("https://s3.%s.amazonaws.com", v.region)
  local u, uerr = core.check_url(endpoint, "storage.endpoint", true)
  if not u then return refuse("endpoint", uerr.message) end
  if u.path ~= "/" then return refuse("endpoint", "expected http(s)://host[:port], without a path") end
  if not (v.access_key and v.secret_key) then
    return refuse("access_key", "no credentials: give storage = {access_key =, secret_key =} or set "
      .. "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
  end
  local where = u.scheme .. "://" .. u.authority
  local id = table_concat({ where, v.region, v.access_key, sign().sha256(v.secret_key), v.session_token or "",
    tostring(t.path_style) }, "\n")
  if stores[id] then return keep(t, stores[id]) end
  local aws = u.host:find("%.amazonaws%.com$") ~= nil
  servers[where] = servers[where] or new_server(where)
  stores[id] = { scheme = u.scheme, host = u.host, port = u.port, authority = u.authority, region = v.region,
    access_key = v.access_key, secret_key = v.secret_key, session_token = v.session_token,
    path_style = t.path_style, aws = aws, where = where, server = servers[where],
    reached = {} } -- (the buckets that answered a signed request with these keys: asked once, object.lua)
  return keep(t, stores[id])
end

-- Where bucket's key is on the store: host (as Host sends it), the path (the key's bytes encoded once, / kept),
-- and the URL's start.  Virtual-host style for AWS's own endpoints (a bucket without dots), else path style,
-- unless path_style says.
function S.target(st, bucket, key)
  local virtual = st.path_style == false or (st.path_style == nil and st.aws and not bucket:find(".", 1, true))
  local host = virtual and bucket .. "." .. st.authority or st.authority
  local path = (virtual and "/" or "/" .. bucket .. "/") .. sigv4().uri_encode(key or "", true)
  return host, path, st.scheme .. "://" .. host
end

-- The request shapes the library sends (a: the call's values): method, query, headers, body (payload: its
-- SHA-256, hex; a part's comes with it).  rocks/s3/spec/sigv4_spec.lua signs each against the AWS SDK's signer.
S.OPS = {
  create = function(a) -- CreateMultipartUpload (checksum: "sha256" asks for per-part SHA-256 checksums)
    return "POST", { uploads = "" }, { ["Content-Type"] = "video/mp4",
      ["x-amz-checksum-algorithm"] = a.checksum == "sha256" and "SHA256" or nil }
  end,
  part = function(a) -- UploadPart, its checksum as the store takes it
    local h = a.checksum == "sha256" and { ["x-amz-checksum-sha256"] = a.sum } or { ["Content-MD5"] = a.sum }
    return "PUT", { partNumber = tostring(a.n), uploadId = a.upload }, h, a.body, a.payload
  end,
  complete = function(a) -- CompleteMultipartUpload
    return "POST", { uploadId = a.upload }, { ["Content-Type"] = "application/xml" }, a.body
  end,
  abort = function(a) return "DELETE", { uploadId = a.upload }, {} end,
  copy = function(a) -- the object copied onto itself with its metadata (S3 takes metadata only at an upload's start)
    return "PUT", nil, { ["x-amz-copy-source"] = a.source, ["x-amz-metadata-directive"] = "REPLACE",
      ["Content-Type"] = a.type or "video/mp4", ["x-amz-meta-sha256"] = a.sha256 }
  end,
  head = function() return "HEAD", nil, {} end,
  uploads = function(a) -- ListMultipartUploads (the markers: where a truncated listing goes on)
    return "GET", { uploads = "", prefix = a.prefix, ["key-marker"] = a.key_marker,
      ["upload-id-marker"] = a.id_marker }, {}
  end,
  put = function(a) -- PutObject (a reference file, storage/refs.lua; payload: its SHA-256 when the caller has it)
    return "PUT", nil, { ["Content-Type"] = a.type, ["x-amz-meta-sha256"] = a.sha256 }, a.body, a.payload
  end,
  delete = function() return "DELETE", nil, {} end,
  get = function() return "GET", nil, {} end, -- GetObject (a small one: a video's provenance record)
}

-- Request op of S.OPS on bucket's key (a: its values), signed now (time: seconds, else os.time()): {method =,
-- url =, headers = "Name: value\n" lines, body =, payload =}, or nil, err.
function S.request(st, op, bucket, key, a, time)
  a = a or {}
  local method, query, headers, body, payload = S.OPS[op](a)
  payload = payload or (body and sign().sha256(body)) or S.EMPTY
  local host, path, base = S.target(st, bucket, key)
  local r, err = sigv4().sigv4 { method = method, host = host, path = path, query = query, headers = headers,
    payload = payload, region = st.region, service = "s3", access_key = st.access_key, secret_key = st.secret_key,
    session_token = st.session_token, time = time or os_time() }
  if not r then return nil, err end
  local lines = {}
  for name, value in pairs(headers) do lines[#lines + 1] = name .. ": " .. value .. "\n" end
  lines[#lines + 1] = "x-amz-date: " .. r.date .. "\nx-amz-content-sha256: " .. payload .. "\n"
  if st.session_token then lines[#lines + 1] = "x-amz-security-token: " .. st.session_token .. "\n" end
  lines[#lines + 1] = "Authorization: " .. r.authorization .. "\n"
  return { method = method, url = base .. path .. (r.query ~= "" and "?" .. r.query or ""), body = body,
    headers = table_concat(lines), payload = payload, signed = r }
end

-- A presigned GET of bucket's key for `seconds` (1 s to a week): its URL, or nil, err.
function S.presign(st, bucket, key, seconds, time)
  local host, path, base = S.target(st, bucket, key)
  local r, err = sigv4().sigv4 { method = "GET", host = host, path = path, payload = S.UNSIGNED, region = st.region,
    service = "s3", access_key = st.access_key, secret_key = st.secret_key, session_token = st.session_token,
    time = time or os_time(), expires = seconds }
  if not r then return nil, err end
  return base .. path .. "?" .. r.query, r
end

-- The seconds a presigned URL lives that a task reads, its deadline `left` seconds away: past it by S.MARGIN, an
-- hour at least, a week at most.
function S.lifetime(left)
  return math.min(S.WEEK, math.max(S.HOUR, math.ceil(left) + S.MARGIN))
end

-- The text of the first <name> element of an XML answer, its entities read; nil when there is none.
local ENTITY = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'" }
function S.xml(body, name)
  local v = type(body) == "string" and body:match("<" .. name .. ">([^<]*)</" .. name .. ">")
  return v and (v:gsub("&(#?%w+);", function(e)
    local n = e:match("^#(%d+)$")
    return ENTITY[e] or n and tonumber(n) < 128 and string.char(tonumber(n)) or nil
  end))
end

-- The error an answer holds though its status is 200 (S3's way with CompleteMultipartUpload and CopyObject: the
-- status is sent before the work is done, an <Error> in the body when it failed), or nil.
function S.error_in(body)
  local code = type(body) == "string" and body:find("^%s*<%?xml[^>]*%?>%s*<Error>") or
    type(body) == "string" and body:find("^%s*<Error>")
  if not code then return nil end
  code = S.xml(body, "Code") or "Error"
  return new_error("server", string_format("%s: %s (in the body of a 200 answer)", code,
    tostring(S.xml(body, "Message"))), { transient = true, code = code })
end

-- The hex of base64 text b's bytes.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function hex_of(b)
  local n, bits, out = 0, 0, {}
  for c in (b:gsub("=+$", "")):gmatch(".") do
    n, bits = n * 64 + (B64:find(c, 1, true) or 1) - 1, bits + 6
    if bits >= 8 then
      bits = bits - 8
      local byte = math_floor(n / 2 ^ bits)
      out[#out + 1], n = string_format("%02x", byte), n - byte * 2 ^ bits
    end
  end
  return table_concat(out)
end

-- Why an UploadPart's answer (headers: its lines; etag: its ETag, quotes kept) does not name the bytes sent (md5,
-- sha256: their sums in base64; sha256 nil when not sent), or nil.  The SHA-256 checksum the store names back is
-- compared with the one sent; the ETag with the part's MD5 when it is one (32 hex digits, S3's rule for an entity tag
-- that is an MD5) and the part is not encrypted with KMS or a customer's key (whose ETags are not).
function S.part_wrong(headers, etag, md5, sha256)
  local h = headers:lower()
  local said = headers:match("[Xx]%-[Aa]mz%-[Cc]hecksum%-[Ss][Hh][Aa]256:%s*([%w+/=]+)")
  if sha256 and said and said ~= sha256 then
    return string_format("the store names its checksum %s; the part sent has %s", said, sha256)
  end
  local tag = md5 and etag:match('^"?(%x+)"?$')
  if not tag or #tag ~= 32 or h:find("x%-amz%-server%-side%-encryption:%s*aws:kms")
      or h:find("x%-amz%-server%-side%-encryption%-customer%-algorithm:") then
    return nil
  end
  local want = hex_of(md5)
  if tag:lower() ~= want then
    return string_format("the store's ETag %s is not the MD5 of the bytes sent (%s)", etag, want)
  end
end

-- The elements <name> of an XML answer, each a table of the fields named in `fields`.
function S.xml_list(body, name, fields)
  local out = {}
  for inner in (body or ""):gmatch("<" .. name .. ">(.-)</" .. name .. ">") do
    local e = {}
    for _, f in ipairs(fields) do e[f] = S.xml(inner, f) end
    out[#out + 1] = e
  end
  return out
end

return S
