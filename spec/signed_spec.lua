-- Signed provenance records (issue 81; lua/starvideos/signer.lua, provenance.lua, jcs.lua, docs/lineage.md "A signed
-- record"): provenance = {sign_key = PATH} (STARVIDEOS_SIGN_KEY, --sign-key) signs each record with an Ed25519 key:
-- signature = {alg, key_id, value} over the record without its signature in RFC 8785 form, which openssl verifies
-- over bytes made without this library (python3's json); `starvideos verify PATH --pubkey PEM` exits 0 with the right
-- key, 1 with another, with a field changed or no signature, 2 with a key file that is none.  A bad key is refused
-- when the client is made, naming the option; the key's bytes are in no output, log, event or record.  A key read
-- before any client (starvideos.sign_key: nginx's init_by_lua, spec/hosts/places_nginx_spec.lua) signs as well.
local helper = require "spec.helper"
local U = helper.UNINSTRUMENTED -- (the tools run here are not built with make check's sanitizers)
local cli = require "spec.support.cli_run"
local starvideos = require "starvideos"
local P = require "starvideos.provenance"
local J = require "starvideos.jcs"
local sign = require "starvideos.sign"

local KEY = cli.KEY
local q = helper.shell_quote

describe("signed provenance records", function()
  local emu, dir, env, priv, pub, other_pub
  setup(function()
    emu = helper.emulator { key = KEY, queued = 0, processing = 0.1 }
    dir = helper.tmpdir()
    env = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
    priv, pub, other_pub = dir .. "/key.pem", dir .. "/pub.pem", dir .. "/other.pub.pem"
    assert(helper.execute(U .. "openssl genpkey -algorithm ed25519 -out " .. q(priv) .. " 2>/dev/null"))
    assert(helper.execute(U .. "openssl pkey -in " .. q(priv) .. " -pubout -out " .. q(pub)))
    assert(helper.execute(U .. "openssl genpkey -algorithm ed25519 2>/dev/null | openssl pkey -pubout -out "
      .. q(other_pub)))
  end)
  teardown(function()
    emu:stop()
    helper.cleanup()
  end)

  -- the private key's secret: its PEM's base64 body (and its raw 32 bytes, as openssl prints them in hex)
  local function secrets()
    local pem = assert(helper.read_file(priv))
    local body = pem:gsub("%-%-%-%-%-[^\n]*\n?", ""):gsub("%s", "")
    local hex = helper.capture(U .. "openssl pkey -in " .. q(priv) .. " -text -noout"):match("priv:(.-)pub:")
    return { body, (hex:gsub("[%s:]", "")) }
  end
  local function none_in(text, where)
    for _, s in ipairs(secrets()) do
      assert.is_nil(tostring(text):find(s, 1, true), "the private key is in " .. where)
    end
  end

  it("generate --sign-key: the record's signature verifies with openssl over the RFC 8785 bytes; verify --pubkey: "
    .. "0 with the key, 1 with another, 1 with one field changed, 1 unsigned; the key in no output, log or record",
    function()
      local out = dir .. "/signed.mp4"
      local r = cli.run({ "generate", "--model", "videos", "--prompt", "signed \"quoted\" é", "--duration", "5",
        "--out", out, "--interval", "0.05", "--sign-key", priv, "--log", "debug" }, env)
      assert.equal(0, r.code, r.err)
      none_in(r.out .. r.err, "the command's output and log")
      local text = assert(helper.read_file(out .. ".json"))
      none_in(text, "the record")
      local rec = assert(P.decode(text))
      local raw = helper.capture(U .. "openssl pkey -pubin -in " .. q(pub) .. " -outform DER | tail -c 32 | sha256sum")
      assert.same({ "ed25519", raw:match("^%x+") }, { rec.signature.alg, rec.signature.key_id })
      -- the documented bytes, made by another hand: python3's json, keys sorted, no spaces, UTF-8 as it is
      local bytes, sig = dir .. "/signed.bytes", dir .. "/signed.sig"
      assert(helper.execute(U .. "python3 -c " .. q("import json,sys; r=json.load(open(sys.argv[1])); "
        .. "del r['signature']; sys.stdout.buffer.write(json.dumps(r, sort_keys=True, separators=(',', ':'), "
        .. "ensure_ascii=False).encode())") .. " " .. q(out .. ".json") .. " > " .. q(bytes)))
      assert.equal(P.signed_bytes(rec), helper.read_file(bytes), "the library's bytes are RFC 8785's")
      assert(helper.execute("printf %s " .. q(rec.signature.value) .. " | base64 -d > " .. q(sig)))
      assert.truthy(helper.execute(U .. "openssl pkeyutl -verify -pubin -inkey " .. q(pub) .. " -rawin -in " .. q(bytes)
        .. " -sigfile " .. q(sig) .. " >/dev/null"), "openssl verifies the signature")
      local good = cli.run({ "verify", out, "--pubkey", pub }, env)
      assert.equal(0, good.code, good.err)
      assert.matches("signed: " .. out .. ".json by key " .. rec.signature.key_id, good.out, 1, true)
      local other = cli.run({ "verify", out, "--pubkey", other_pub }, env)
      assert.equal(1, other.code, other.out)
      assert.matches("it was signed by key " .. rec.signature.key_id, other.err, 1, true)
      -- one field changed, its record_sha256 made again so that only the signature can tell
      local changed = dir .. "/changed.mp4"
      assert(helper.execute("cp " .. q(out) .. " " .. q(changed)))
      rec.model = "videos_pro"
      helper.write_file(changed .. ".json", P.encode((function() rec.record_sha256 = P.seal(rec) return rec end)(),
        ""))
      local bad = cli.run({ "verify", changed, "--pubkey", pub }, env)
      assert.equal(1, bad.code, bad.out)
      assert.matches("a field was changed after it was signed", bad.err, 1, true)
      -- unsigned
      rec.signature = nil
      helper.write_file(changed .. ".json", P.text(rec))
      local unsigned = cli.run({ "verify", changed, "--pubkey", pub }, env)
      assert.equal(1, unsigned.code)
      assert.matches("it is not signed", unsigned.err, 1, true)
      -- a key file that is none: exit 2
      local usage = cli.run({ "verify", out, "--pubkey", dir .. "/nope.pem" }, env)
      assert.equal(2, usage.code)
    end)

  it("a job (step(0)) and a blocking call sign with the key of STARVIDEOS_SIGN_KEY or the option; the events and "
    .. "the error of a bad key hold no byte of the key", function()
      local events = {}
      local c = starvideos.new { api_key = KEY, base_url = emu.url, interval = 0.05, min_interval = 0.01,
        provenance = { sign_key = priv }, on_event = function(ev) events[#events + 1] = ev end }
      local out = dir .. "/job.mp4"
      local job = assert(c:start({ model = "videos", prompt = "a job", duration = 5 }, { out = out }))
      assert.truthy(helper.wait_until(function() c:step(0); return job.done end, 30), "the job ended")
      c:close()
      assert.is_nil(job.err)
      assert.equal(0, cli.run({ "verify", out, "--pubkey", pub }, env).code)
      none_in(require("cjson").encode(events), "the events")
      none_in(tostring(c.cfg.signer.key), "the key's tostring")
      local e2 = {}
      for k, v in pairs(env) do e2[k] = v end
      e2.STARVIDEOS_SIGN_KEY = priv
      local out2 = dir .. "/env.mp4"
      local r = cli.run({ "generate", "--model", "videos", "--prompt", "env", "--duration", "5", "--out", out2,
        "--interval", "0.05" }, e2)
      assert.equal(0, r.code, r.err)
      assert.equal(0, cli.run({ "verify", out2, "--pubkey", pub }, env).code)
    end)

  it("a bad key is refused when the client is made, naming the option: unreadable, not PEM, RSA, encrypted",
    function()
      local rsa, enc, words = dir .. "/rsa.pem", dir .. "/enc.pem", dir .. "/words.pem"
      assert(helper.execute(U .. "openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 -out " .. q(rsa)
        .. " 2>/dev/null"))
      assert(helper.execute(U .. "openssl pkey -in " .. q(priv) .. " -aes256 -passout pass:secret -out " .. q(enc)))
      helper.write_file(words, "not a key\n")
      local cases = { { dir .. "/missing.pem", "cannot be read" }, { words, "is not an Ed25519 private key in PEM" },
        { rsa, "is a RSA key, not Ed25519" }, { enc, "is encrypted" } }
      for _, case in ipairs(cases) do
        local ok, err = pcall(starvideos.new, { api_key = KEY, provenance = { sign_key = case[1] } })
        assert.is_false(ok)
        assert.matches("bad option 'provenance' to 'new' (provenance.sign_key: " .. case[1], tostring(err), 1, true)
        assert.matches(case[2], tostring(err), 1, true)
        none_in(tostring(err), "the error")
      end
      local r = cli.run({ "generate", "--model", "videos", "--prompt", "x", "--duration", "5", "--out",
        dir .. "/x.mp4", "--sign-key", rsa }, env)
      assert.equal(2, r.code)
      assert.matches("--sign-key: " .. rsa .. " is a RSA key, not Ed25519", r.err, 1, true)
    end)

  it("starvideos.sign_key: a key read before any client (its file gone since) signs the records of the clients "
    .. "given it; its tostring its key_id alone; a path that is no key raises, naming it", function()
      local early = dir .. "/early.pem"
      assert(helper.execute("cp " .. q(priv) .. " " .. q(early)))
      local key = starvideos.sign_key(early)
      os.remove(early) -- (read once, now: a client made later reads no file)
      local c = starvideos.new { api_key = KEY, base_url = emu.url, interval = 0.05, min_interval = 0.01,
        provenance = { sign_key = key } }
      local out = dir .. "/early.mp4"
      assert(c:generate({ model = "videos", prompt = "read early", duration = 5 }, { out = out }))
      c:close()
      local good = cli.run({ "verify", out, "--pubkey", pub }, env)
      assert.equal(0, good.code, good.err)
      assert.matches("signed: " .. out .. ".json by key " .. key.key_id, good.out, 1, true)
      assert.equal("starvideos signing key " .. key.key_id, tostring(key))
      none_in(tostring(key), "the key's tostring")
      for _, case in ipairs { { early, "cannot be read" }, { "", "got an empty string" }, { 7, "got number" } } do
        local ok, err = pcall(starvideos.sign_key, case[1])
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'sign_key' (", tostring(err), 1, true)
        assert.matches(case[2], tostring(err), 1, true)
      end
      -- a table that merely looks like one is no key
      local ok, err = pcall(starvideos.new, { api_key = KEY, provenance = { sign_key = { key = key.key,
        key_id = key.key_id } } })
      assert.is_false(ok)
      assert.matches("provenance.sign_key: the path of an Ed25519 private key in PEM (or a key of starvideos.sign_key) "
        .. "expected, got table", tostring(err), 1, true)
    end)

  it("jcs: RFC 8785's forms of numbers, strings and member order", function()
    assert.equal('{"a":[1,1.5,-0.000001,1e-7,1e+21,123456789012345680000,0.1],"b":"\\u000f\\n\\"\\\\é\127"}',
      J.canonical('{ "b" : "\\u000f\\n\\"\\\\\\u00e9\\u007f", "a": [1.0, 15e-1, -1e-6, 1E-7, 1e21, '
        .. '123456789012345678901, 0.1] }'))
    -- sorted by UTF-16 code units: U+E000 after U+1F600 (a surrogate pair, D83D DE00)
    local grin, private = "\240\159\152\128", "\238\128\128" -- (U+1F600, U+E000: UTF-8 as Lua 5.1 writes it)
    assert.equal('{"' .. grin .. '":1,"' .. private .. '":2}',
      J.canonical('{"' .. private .. '":2,"' .. grin .. '":1}'))
    assert.equal(sign.sha256(J.canonical('{"x":1}')), sign.sha256('{"x":1}'))
  end)
end)
