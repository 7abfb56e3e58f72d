-- The option notify (new's, keep's: docs/webhooks.md) checked, and the webhook signatures' C module it needs.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local M = {}

-- The webhook signatures' C module (sign.so, on libcrypto), loaded on first use.
function M.sign()
  local ok, m = pcall(require, "starvideos.sign")
  if not ok then
    error("webhook signatures (notify, verify_webhook) need the C module starvideos.sign (sign.so, built by "
      .. "make beside core.so, linked with libcrypto): " .. tostring(m), 3)
  end
  return m
end

-- notify = {url =, secret =[, retry_for =]}: its messages never hold the secret.
function M.check(v)
  if type(v) ~= "table" then return "notify: expected a table {url =, secret =}, got " .. type(v), true end
  for k in pairs(v) do
    if k ~= "url" and k ~= "secret" and k ~= "retry_for" then
      return "notify: unknown field '" .. tostring(k) .. "' (expected url, secret, retry_for)", true
    end
  end
  local ok, err = core.check_url(v.url, "notify.url")
  if not ok then return err.message, true end
  if type(v.secret) ~= "string" or v.secret == "" then
    return "notify.secret: expected a non-empty string, got " .. (v.secret == "" and "an empty one" or type(v.secret)),
      true
  end
  if not M.sign().sign(v.secret, "msg_check", 0, "") then
    return "notify.secret: a whsec_ secret whose part after whsec_ is not base64", true
  end
  local f = v.retry_for
  if f ~= nil and (type(f) ~= "number" or f ~= f or f < 0 or f > 86400 * 7) then
    return "notify.retry_for: expected seconds from 0 to 604800, got " .. tostring(f), true
  end
end

return M
