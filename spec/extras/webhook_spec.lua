-- Webhook signatures (Standard Webhooks) and the default User-Agent.
--   * sign.sign against the openssl command line (our code is not trusted
--     for the expected values) and the Standard Webhooks specification's example;
--   * starvideos.verify_webhook: what passes and each refusal, naming the header;
--   * docs/webhooks.md's two receivers, run as written: the OpenResty
--     one in a real nginx started here, the Python one with python3;
--   * the User-Agent the emulator sees from this VM (libcurl) and from nginx.
-- The nginx and python parts are pending where those are missing.

local helper = require "spec.helper"
local U = helper.UNINSTRUMENTED -- before a program not built with the sanitizers (make check)
local core = require "starvideos.core"
local sign = require "starvideos.sign"
local starvideos = require "starvideos"

local q, str_format = helper.shell_quote, string.format

local PARAMS = { model = "videos", prompt = "a webhook's cat", duration = 5 }
local readme_block = require("spec.support.readme").webhooks_block

-- The key openssl is given for a secret: -hmac with the secret's bytes, or the hex
-- of the base64-decoded part after whsec_ (decoded by base64(1), not by us).
local function openssl_key(secret)
  local b64 = secret:match("^whsec_(.*)$")
  if not b64 then return "-hmac " .. q(secret) end
  local pipeline = "printf %s " .. q(b64) .. " | base64 -d | od -An -v -tx1 | tr -d ' \\n'"
  local hex = helper.capture(U .. "sh -c " .. q(pipeline))
  assert(hex:match("^%x+$"), "base64 -d gave nothing for " .. secret)
  return "-mac HMAC -macopt hexkey:" .. hex
end

-- "v1,<base64>" of HMAC-SHA256(key, id.ts.body) by the openssl command line.
local function openssl_sign(secret, id, ts, body)
  local dir = helper.tmpdir()
  helper.write_file(dir .. "/msg", id .. "." .. ts .. "." .. body)
  local out, ok = helper.capture(U .. "sh -c " .. q(str_format("openssl dgst -sha256 -binary %s < %s | base64 -w0",
    openssl_key(secret), q(dir .. "/msg"))))
  assert(ok and out:match("^[%w+/]+=*$"), "openssl: " .. out)
  return "v1," .. out
end

-- A random whsec_ secret of n key bytes (openssl rand, base64 by base64(1)).
local function random_secret(n)
  local out = helper.capture(U .. "sh -c " .. q(str_format("openssl rand %d | base64 -w0", n)))
  return "whsec_" .. out
end

local BODY = '{"type":"task.completed","task":{"id":"t-1","prompt":"caf\195\169\n"},"bytes":1234}'

describe("starvideos.sign (sign.so)", function()
  teardown(helper.cleanup)

  it("gives the Standard Webhooks specification's example signature", function()
    assert.equal("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      sign.sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
        '{"test": 2432232314}'))
  end)

  it("signs as openssl does with a whsec_ key (one and two '=' of padding, none) and with a plain secret", function()
    for _, secret in ipairs { random_secret(32), random_secret(31), random_secret(33), "a plain secret, no prefix",
      "whsec" } do
      local id, ts = "evt_" .. core.random_id(), tostring(os.time())
      assert.equal(openssl_sign(secret, id, ts, BODY), sign.sign(secret, id, ts, BODY), secret)
      assert.equal(openssl_sign(secret, id, ts, ""), sign.sign(secret, id, ts, ""), secret .. " (empty body)")
    end
  end)

  it("signs a body with NUL bytes whole, and takes the timestamp as a number too", function()
    local secret, body = random_secret(24), "a\0b\0" .. string.rep("x", 70000)
    local ts = os.time()
    local sig = sign.sign(secret, "evt_1", ts, body)
    assert.equal(openssl_sign(secret, "evt_1", tostring(ts), body), sig)
    assert.equal(sig, sign.sign(secret, "evt_1", tostring(ts), body))
    assert.not_equal(sig, sign.sign(secret, "evt_1", ts, "a\0b\0"))
  end)

  it("refuses a secret that is empty or whose whsec_ part is not base64, naming secret", function()
    for _, bad in ipairs { "", "whsec_", "whsec_abc", "whsec_ab!d", "whsec_====", "whsec_a=bc" } do
      local sig, err = sign.sign(bad, "evt_1", "1700000000", "{}")
      assert.is_nil(sig, bad)
      assert.equal("invalid_request", err.kind, bad)
      assert.equal("secret", err.field, bad)
      assert.truthy(err.message:find("secret", 1, true), err.message)
    end
  end)

  it("raises on arguments of the wrong type", function()
    assert.has_error(function() sign.sign(nil, "a", "1", "b") end)
    assert.has_error(function() sign.sign("k", "a", {}, "b") end)
    assert.has_error(function() sign.sign("k", "a", 1.5, "b") end)
  end)
end)

describe("starvideos.verify_webhook", function()
  local secret = random_secret(32)
  local id = "evt_0123"

  -- headers of an event signed by openssl at time ts (default now)
  local function signed(body, ts, key)
    ts = tostring(ts or os.time())
    return { ["webhook-id"] = id, ["webhook-timestamp"] = ts,
      ["webhook-signature"] = openssl_sign(key or secret, id, ts, body) }
  end

  local function refused(field, ok, err)
    assert.is_nil(ok)
    assert.equal("invalid_request", err.kind)
    assert.equal(field, err.field, err.message)
    assert.truthy(err.message:find(field, 1, true), err.message)
    return err
  end

  teardown(helper.cleanup)

  it("passes an event signed by openssl, with header names in any case", function()
    local h = signed(BODY)
    assert.is_true(starvideos.verify_webhook(secret, h, BODY))
    assert.is_true(starvideos.verify_webhook(secret, { ["Webhook-Id"] = h["webhook-id"],
      ["WEBHOOK-TIMESTAMP"] = h["webhook-timestamp"], ["Webhook-Signature"] = h["webhook-signature"] }, BODY))
  end)

  it("passes when any of several space-separated signatures matches (a rotated key), also given as a list", function()
    local h = signed(BODY)
    local other = openssl_sign(random_secret(32), id, h["webhook-timestamp"], BODY)
    local good = h["webhook-signature"]
    h["webhook-signature"] = "v2,abc " .. other .. " " .. good
    assert.is_true(starvideos.verify_webhook(secret, h, BODY))
    h["webhook-signature"] = { other, good } -- ngx.req.get_headers() for a header sent twice
    assert.is_true(starvideos.verify_webhook(secret, h, BODY))
    h["webhook-signature"] = other
    refused("webhook-signature", starvideos.verify_webhook(secret, h, BODY))
  end)

  it("refuses a changed body, a changed signature and another secret", function()
    local h = signed(BODY)
    refused("webhook-signature", starvideos.verify_webhook(secret, h, (BODY:gsub("1234", "1235"))))
    refused("webhook-signature", starvideos.verify_webhook(secret, h, BODY .. " "))
    local sig = h["webhook-signature"]
    local i = #sig - 5
    h["webhook-signature"] = sig:sub(1, i - 1) .. (sig:sub(i, i) == "A" and "B" or "A") .. sig:sub(i + 1)
    refused("webhook-signature", starvideos.verify_webhook(secret, h, BODY))
    h["webhook-signature"] = sig:sub(4) -- the bare base64, without v1,
    refused("webhook-signature", starvideos.verify_webhook(secret, h, BODY))
    h["webhook-signature"] = sig
    refused("webhook-signature", starvideos.verify_webhook(random_secret(32), h, BODY))
    -- the same key bytes without whsec_ are another secret
    refused("webhook-signature", starvideos.verify_webhook(secret:sub(7), h, BODY))
    -- another id with the same signature
    h["webhook-id"] = "evt_0124"
    refused("webhook-signature", starvideos.verify_webhook(secret, h, BODY))
  end)

  it("refuses a timestamp outside the tolerance, either way, and honours the tolerance given", function()
    local now = os.time()
    local err = refused("webhook-timestamp", starvideos.verify_webhook(secret, signed(BODY, now - 400), BODY))
    assert.truthy(err.message:find("tolerance of 300", 1, true), err.message)
    refused("webhook-timestamp", starvideos.verify_webhook(secret, signed(BODY, now + 400), BODY))
    assert.is_true(starvideos.verify_webhook(secret, signed(BODY, now - 250), BODY))
    refused("webhook-timestamp", starvideos.verify_webhook(secret, signed(BODY, now - 250), BODY, { tolerance = 60 }))
    assert.is_true(starvideos.verify_webhook(secret, signed(BODY, now - 400), BODY, { tolerance = 3600 }))
    for _, bad in ipairs { "17e8", "-5", " 1700000000", "1700000000.5", "soon" } do
      local h = signed(BODY)
      h["webhook-timestamp"] = bad
      refused("webhook-timestamp", starvideos.verify_webhook(secret, h, BODY))
    end
  end)

  it("refuses a missing, empty or repeated header, naming it", function()
    for _, name in ipairs { "webhook-id", "webhook-timestamp", "webhook-signature" } do
      local h = signed(BODY)
      h[name] = nil
      local err = refused(name, starvideos.verify_webhook(secret, h, BODY))
      assert.truthy(err.message:find("missing", 1, true), err.message)
      h[name] = ""
      refused(name, starvideos.verify_webhook(secret, h, BODY))
    end
    local h = signed(BODY)
    h["webhook-id"] = { id, "evt_other" }
    refused("webhook-id", starvideos.verify_webhook(secret, h, BODY))
    h = signed(BODY)
    h["Webhook-Id"] = "evt_other" -- the same header under two spellings
    refused("webhook-id", starvideos.verify_webhook(secret, h, BODY))
  end)

  it("refuses a secret that is not one, naming secret", function()
    refused("secret", starvideos.verify_webhook("whsec_not base64", signed(BODY), BODY))
    refused("secret", starvideos.verify_webhook("", signed(BODY), BODY))
  end)

  it("raises on arguments of the wrong type", function()
    local h = signed(BODY)
    assert.has_error(function() starvideos.verify_webhook(nil, h, BODY) end)
    assert.has_error(function() starvideos.verify_webhook(secret, "headers", BODY) end)
    assert.has_error(function() starvideos.verify_webhook(secret, h, nil) end)
    assert.has_error(function() starvideos.verify_webhook(secret, h, BODY, { tolerance = "5" }) end)
    assert.has_error(function() starvideos.verify_webhook(secret, h, BODY, { tolerance = -1 }) end)
  end)
end)

describe("docs/webhooks.md's Python receiver", function()
  teardown(helper.cleanup)

  it("accepts what starvideos.sign signs, and refuses a changed body, a stale one and another secret", function()
    if not helper.execute("command -v python3 >/dev/null 2>&1") then return pending("python3 is not installed") end
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/receiver.py", readme_block("python") .. [[

import json, sys
case = json.load(open(sys.argv[1]))
print(verify_webhook(case["secret"], case["headers"], open(sys.argv[2], "rb").read()))
]])
    local secret = random_secret(32)
    local cjson = require "cjson"
    local function run(key, ts, body, sent)
      ts = tostring(ts)
      local headers = { ["Webhook-Id"] = "evt_py", ["Webhook-Timestamp"] = ts,
        ["Webhook-Signature"] = "v1,bm90IHRoaXMgb25l " .. assert(sign.sign(key, "evt_py", ts, body)) }
      helper.write_file(dir .. "/case.json", cjson.encode { secret = secret, headers = headers })
      helper.write_file(dir .. "/body", sent or body)
      local out, ok = helper.capture(str_format(U .. "python3 %s %s %s 2>&1", q(dir .. "/receiver.py"),
        q(dir .. "/case.json"), q(dir .. "/body")))
      assert(ok, out)
      return (out:gsub("%s+$", ""))
    end
    assert.equal("True", run(secret, os.time(), BODY))
    assert.equal("True", run(secret, os.time(), "a\0binary\255body"))
    assert.equal("False", run(secret, os.time(), BODY, BODY:gsub("1234", "1235")))
    assert.equal("False", run(secret, os.time() - 400, BODY))
    assert.equal("False", run(random_secret(32), os.time(), BODY))
  end)
end)

-- The User-Agent the emulator logs for a create.
local function agent_seen(emu)
  local log = emu:requests()
  assert.is_true(#log >= 1, "no request reached the emulator")
  return log[#log].headers["user-agent"]
end

describe("the default User-Agent", function()
  local emu
  setup(function() emu = helper.emulator { key = "k-ua" } end)
  teardown(function()
    if emu then emu:stop() end
    helper.cleanup()
  end)

  it("names starvideos, this VM and libcurl's version (pkg-config's), and user_agent replaces it", function()
    local curl_version = helper.capture("pkg-config --modversion libcurl 2>/dev/null"):gsub("%s+$", "")
    if curl_version == "" then return pending("pkg-config knows no libcurl") end
    local jit = rawget(_G, "jit")
    local vm = type(jit) == "table" and jit.version or _VERSION
    local client = starvideos.new { api_key = "k-ua", base_url = emu.url }
    assert(client:create(PARAMS))
    client:close()
    assert.equal(str_format("starvideos/%s (%s; libcurl/%s)", starvideos._VERSION:match("%S+$"), vm, curl_version),
      agent_seen(emu))
    client = starvideos.new { api_key = "k-ua", base_url = emu.url, user_agent = "my-app/3.1" }
    assert(client:create(PARAMS))
    client:close()
    assert.equal("my-app/3.1", agent_seen(emu))
  end)
end)

-- nginx: docs/webhooks.md's OpenResty receiver at /hook, and /ua, a client creating a
-- task on the emulator (its User-Agent as nginx sends it).
local nginx_run = require "spec.support.nginx_run"
local why_no_nginx = nginx_run.missing { "nginx", "curl" }

describe("inside nginx", function()
  local emu, run, dir, secret

  setup(function()
    if why_no_nginx then return end
    secret = random_secret(32)
    emu = helper.emulator { key = "k-ua" }
    dir = helper.tmpdir()
    run = require("spec.support.readme").hook_receiver(dir, secret, {
      "        location = /ua { content_by_lua_block {",
      str_format("            local c = require(\"starvideos\").new { api_key = \"k-ua\", base_url = %q }", emu.url),
      "            local task, err = c:create { model = \"videos\", prompt = \"ua\", duration = 5 }",
      "            c:close()",
      "            ngx.say(task and \"ok\" or tostring(err))",
      "        } }" })
  end)

  teardown(function()
    if run then run.stop() end
    if emu then emu:stop() end
    helper.cleanup()
  end)

  -- POST body to /hook with the headers given (names as written): status, answer
  local function post(headers, body)
    local args = {}
    for k, v in pairs(headers) do args[#args + 1] = "-H " .. q(k .. ": " .. v) end
    helper.write_file(dir .. "/post.body", body)
    local out, ok = helper.capture(str_format(U .. "curl -s -m 20 -w '\\n%%{http_code}' %s --data-binary @%s "
      .. "http://127.0.0.1:%d/hook", table.concat(args, " "), q(dir .. "/post.body"), run.port))
    assert(ok, "curl failed: " .. out)
    local text, status = out:match("^(.*)\n(%d+)$")
    return tonumber(status), text
  end

  local function headers(id, ts, sig)
    return { ["Webhook-Id"] = id, ["webhook-timestamp"] = ts, ["WEBHOOK-SIGNATURE"] = sig }
  end

  it("docs/webhooks.md's OpenResty receiver accepts an event signed by openssl and one by starvideos.sign", function()
    if why_no_nginx then return pending(why_no_nginx) end
    local ts = tostring(os.time())
    local status, text = post(headers("evt_ngx1", ts, openssl_sign(secret, "evt_ngx1", ts, BODY)), BODY)
    assert.equal(200, status, text .. (helper.read_file(dir .. "/error.log") or ""))
    assert.equal("ok evt_ngx1\n", text)
    local big = BODY .. string.rep(" ", 200000)
    status, text = post(headers("evt_ngx2", ts, sign.sign(secret, "evt_ngx2", ts, big)), big)
    assert.equal(200, status, text)
    assert.equal("ok evt_ngx2\n", text)
  end)

  it("docs/webhooks.md's OpenResty receiver refuses a changed body, a changed signature, a stale one, "
    .. "another secret and a missing header (400, naming the header)", function()
    if why_no_nginx then return pending(why_no_nginx) end
    local ts = tostring(os.time())
    local sig = openssl_sign(secret, "evt_ngx3", ts, BODY)
    local status, text = post(headers("evt_ngx3", ts, sig), BODY:gsub("1234", "4321"))
    assert.equal(400, status)
    assert.truthy(text:find("^webhook%-signature: "), text)
    status, text = post(headers("evt_ngx3", ts, sig:sub(1, 10) .. (sig:sub(11, 11) == "Q" and "R" or "Q")
      .. sig:sub(12)), BODY)
    assert.equal(400, status)
    assert.truthy(text:find("^webhook%-signature: "), text)
    local old = tostring(os.time() - 3600)
    status, text = post(headers("evt_ngx3", old, openssl_sign(secret, "evt_ngx3", old, BODY)), BODY)
    assert.equal(400, status)
    assert.truthy(text:find("^webhook%-timestamp: "), text)
    status, text = post(headers("evt_ngx3", ts, openssl_sign(random_secret(32), "evt_ngx3", ts, BODY)), BODY)
    assert.equal(400, status)
    assert.truthy(text:find("^webhook%-signature: "), text)
    status, text = post({ ["webhook-timestamp"] = ts, ["webhook-signature"] = sig }, BODY)
    assert.equal(400, status)
    assert.truthy(text:find("^webhook%-id: missing"), text)
  end)

  it("sends starvideos/<version> (LuaJIT ...; nginx/<nginx -v's version>) as the User-Agent", function()
    if why_no_nginx then return pending(why_no_nginx) end
    local v = helper.capture(U .. "nginx -v 2>&1"):match("nginx/(%d+%.%d+%.%d+)")
    assert.truthy(v, "nginx -v says no version")
    emu:reset()
    local out = helper.capture(str_format(U .. "curl -s -m 60 http://127.0.0.1:%d/ua", run.port))
    assert.equal("ok\n", out, helper.read_file(dir .. "/error.log"))
    local ua = agent_seen(emu)
    assert.truthy(ua:find("^starvideos/" .. starvideos._VERSION:match("%S+$"):gsub("%.", "%%.")
      .. " %(LuaJIT 2%.%d[^;]*; nginx/" .. v:gsub("%.", "%%.") .. "%)$"), ua)
  end)
end)
