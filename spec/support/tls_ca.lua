-- A test CA made with openssl for the TLS specs (rocks/redis/spec/hosts/store_tls_spec.lua): in dir, a CA (ca.pem), a
-- server certificate it signed for the name `localhost` only (server.pem, server.key: no IP address, so that
-- 127.0.0.1 is the wrong name), a client certificate it signed (client.pem, client.key), and another CA that
-- signed nothing here (other_ca.pem: the wrong CA).

local helper = require "spec.helper"

local M = {}

-- Why the specs cannot make one here, or nil.
function M.missing()
  if not helper.execute("command -v openssl >/dev/null 2>&1") then
    return "openssl is not installed (apt-get install openssl)"
  end
end

-- The paths in dir: {ca =, cert =, key =, client_cert =, client_key =, other_ca =}.
function M.make(dir)
  local q = helper.shell_quote
  local function run(cmd)
    local out, ok = helper.capture("cd " .. q(dir) .. " && " .. cmd .. " 2>&1")
    assert(ok, cmd .. ": " .. tostring(out))
  end
  local function ca(name, cn)
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj " .. q("/CN=" .. cn) .. " -keyout " .. name
      .. ".key -out " .. name .. ".pem")
  end
  local function signed(name, cn, ext)
    helper.write_file(dir .. "/" .. name .. ".ext", ext)
    run("openssl req -newkey rsa:2048 -nodes -subj " .. q("/CN=" .. cn) .. " -keyout " .. name .. ".key -out "
      .. name .. ".csr")
    run("openssl x509 -req -in " .. name .. ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out " .. name
      .. ".pem -extfile " .. name .. ".ext")
  end
  ca("ca", "starvideos test CA")
  ca("other_ca", "another CA")
  signed("server", "localhost", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
  signed("client", "starvideos client", "extendedKeyUsage=clientAuth\n")
  return { ca = dir .. "/ca.pem", cert = dir .. "/server.pem", key = dir .. "/server.key",
    client_cert = dir .. "/client.pem", client_key = dir .. "/client.key", other_ca = dir .. "/other_ca.pem" }
end

return M
