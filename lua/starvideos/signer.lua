-- The option provenance = {sign_key = PATH} (docs/lineage.md, "A signed record"): its check, and its signer, the
-- Ed25519 private key read once as the client is made (config.lua), held in C (csrc/core/sign.c's sv_ed25519): no
-- byte of it in a Lua string, a log, an event, an error or a record.  provenance.lua signs each record with it.
-- starvideos.sign_key(PATH) reads one before any client (nginx's init_by_lua: the master reads it, the workers it
-- forks sign with it), for {sign_key = KEY}.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md

local type, pairs, tostring, string_format = type, pairs, tostring, string.format

local S = {}

-- The keys read by S.read (starvideos.sign_key): the only tables sign_key may be.
local KEYS = setmetatable({}, { __mode = "k" })
local KEY_MT = { __metatable = false, __tostring = function(k) return "starvideos signing key " .. k.key_id end }

-- The signer of the Ed25519 private key in PEM at path, read now: its key and key_id; nil, why (naming path, never
-- the key) when it is none.
local function read(path)
  local key, why = require("starvideos.sign").ed25519_key(path)
  if not key then return nil, why end
  return { key = key, key_id = require("starvideos.sign").sha256(key:public()) }
end

-- starvideos.sign_key(path): the key at path read now, for provenance = {sign_key = KEY}; raises on a path that is
-- no Ed25519 private key in PEM.  tostring names its key_id alone.
function S.read(path)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'sign_key' (the path of an Ed25519 private key in PEM expected, got " .. (path == ""
      and "an empty string" or type(path)) .. ")", 2)
  end
  local signer, why = read(path)
  if not signer then error("bad argument #1 to 'sign_key' (" .. tostring(why) .. ")", 2) end
  KEYS[signer] = true
  return setmetatable(signer, KEY_MT)
end

-- The option provenance (new's): true, false or {sign_key = PATH or a key of starvideos.sign_key}; why not
-- (config.lua's check's words).
function S.check(v)
  if type(v) == "boolean" then return nil end
  if type(v) ~= "table" then return "true, false or {sign_key = PATH} (an Ed25519 private key in PEM)" end
  for k in pairs(v) do
    if k ~= "sign_key" then return "provenance: unknown field '" .. tostring(k) .. "' (expected sign_key)", true end
  end
  if KEYS[v.sign_key] then return nil end
  if type(v.sign_key) ~= "string" or v.sign_key == "" then
    return "provenance.sign_key: the path of an Ed25519 private key in PEM (or a key of starvideos.sign_key) "
      .. "expected, got " .. (v.sign_key == "" and "an empty string" or type(v.sign_key)), true
  end
end

-- The signer of provenance = {sign_key = PATH} (named: the option or variable that gave it): its key read now,
-- once (held in C: sign.c's sv_ed25519; no byte of it in a Lua string, a message or a record), and its key_id (the
-- SHA-256 of its raw public key); raises at level when the file is no Ed25519 private key in PEM.  A key
-- starvideos.sign_key read is that signer, read already.
function S.signer(prov, named, level)
  if KEYS[prov.sign_key] then return prov.sign_key end
  local signer, why = read(prov.sign_key)
  if not signer then
    error(named == "provenance" and string_format("bad option 'provenance' to 'new' (provenance.sign_key: %s)",
      tostring(why)) or string_format("bad %s (%s)", named, tostring(why)), level + 1)
  end
  return signer
end

-- The client's signer (cfg.signer) of cfg.provenance, or of env_key ($STARVIDEOS_SIGN_KEY, read where provenance is
-- not given: then cfg.provenance = {sign_key = env_key}); raises at level (config.lua's M.client) on a bad key.
function S.of(cfg, env_key, level)
  if env_key then cfg.provenance = { sign_key = env_key } end
  cfg.signer = S.signer(cfg.provenance, env_key and "STARVIDEOS_SIGN_KEY" or "provenance", level + 1)
end

return S
