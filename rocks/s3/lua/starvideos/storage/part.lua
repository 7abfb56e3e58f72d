-- One part of an upload checked and hashed (storage/object.lua): the bytes read for it fed to starvideos.sigv4's
-- stream (the core's check of the video, with this rock's part sums), gone on from the state the last part saved.
-- A function of its arguments alone, so that nginx's transport runs it in its thread pool (t:offload): a worker
-- never hashes a part's megabytes itself.  On libcurl's
-- transport the bytes are fed to the stream as they come (request.lua's tap, a write's few KiB at a time), and only
-- sums runs here: no step hashes a part at once.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local P = {}

-- The count of bytes: a string, the libcurl transport's starvideos.bytes, or a list of strings (a part's pieces as
-- nginx's transport read them).
function P.size(bytes)
  if type(bytes) ~= "table" then return #bytes end
  local n = 0
  for _, s in ipairs(bytes) do n = n + #s end
  return n
end

-- bytes (as P.size's) without their first n.
function P.past(bytes, n)
  if n <= 0 then return bytes end
  if type(bytes) ~= "table" then return bytes:sub(n + 1) end
  local out = {}
  for _, s in ipairs(bytes) do
    if n < #s then out[#out + 1] = n > 0 and s:sub(n + 1) or s end
    n = n > #s and n - #s or 0
  end
  return out
end

-- sums(s, total, mark): the part's sums of stream s, fed up to its end (its bytes fed here, or by the transport on the
-- way: request.lua's tap), and, at the end (total reached), mark (the seat's box; nil: none) fed after the video's
-- last box and the whole video checked; s is closed.  -> {at = bytes hashed (the mark's among them), sha_hex,
-- sha_b64, md5 = the part's sums, state = to go on from (not at the end), sha256 = the video's (at the end),
-- marked = true or why not (at the end, with a mark)} | nil, why, notwhole (true: not a whole video).
function P.sums(s, total, mark)
  local r, ended = {}, total and s:at() >= total
  if ended and mark then
    local ok, why = s:mark(mark)
    r.marked = ok or tostring(why)
  end
  r.at = s:at()
  r.sha_hex, r.sha_b64, r.md5 = require("starvideos.sigv4").part(s)
  if ended then
    local sum, cwhy, notwhole = s:finish()
    s:close()
    if not sum then return nil, cwhy, notwhole end
    r.sha256 = sum
  else
    r.state = s:save()
    s:close()
  end
  return r
end

-- check(seconds, md5, state, bytes, total, mark): bytes (from the stream's `from`; a string, a list, or the libcurl
-- transport's starvideos.bytes) fed to the stream of state (nil: from byte 0) for a video of `seconds` (< 0: any)
-- whose parts need an MD5 when md5; then sums(s, total, mark).
function P.check(seconds, md5, state, bytes, total, mark)
  local s, err = require("starvideos.sigv4").stream(seconds, md5, state)
  if not s then return nil, err end
  if type(bytes) == "userdata" then bytes = bytes:sub(1) end -- (a transport's bytes no tap was fed: not ours)
  local ok, why = true, nil
  for _, piece in ipairs(type(bytes) == "table" and bytes or { bytes }) do
    ok, why = s:feed(piece)
    if not ok then break end
  end
  if not ok then
    s:close()
    return nil, why, true
  end
  return P.sums(s, total, mark)
end

-- bytes (as P.size's) followed by mark (the last part's, once its stream took it: P.sums).
function P.marked(bytes, mark)
  if type(bytes) == "table" then
    local out = {}
    for i, s in ipairs(bytes) do out[i] = s end
    out[#out + 1] = mark
    return out
  end
  return (type(bytes) == "userdata" and bytes:sub(1) or bytes) .. mark
end

return P
