-- SigV4 (rocks/s3/csrc/sigv4.c through starvideos.sigv4, the requests storage/s3.lua builds) against the AWS SDK
-- for JavaScript's own signer (@smithy/signature-v4 and @aws-crypto/sha256-js, spec/npm/sigv4_ref.js) on the
-- same inputs: every request shape of S3.OPS and a presigned GET, in path and virtual-host style, with and
-- without a session token, for keys with spaces, unicode and reserved characters: the canonical request,
-- the string to sign, the signature, the Authorization header or the presigned query.
local helper = require "spec.helper"
local cjson = require "cjson"
local S3 = require "starvideos.storage.s3"
local sign = require "starvideos.sigv4"

local NPM = helper.root .. "/spec/npm"
local TIME = 1700000000 -- 2023-11-14T22:13:20Z

-- What is missing for the SDK's signer to run, or nil.
local function missing()
  if not helper.execute("command -v node >/dev/null 2>&1") then return "node (Debian: nodejs) is not installed" end
  for _, m in ipairs { "@smithy/signature-v4", "@aws-crypto/sha256-js" } do
    if not helper.exists(NPM .. "/node_modules/" .. m .. "/package.json") then
      return m .. " is not installed in spec/npm (make installs it with npm ci; npm is needed)"
    end
  end
end

-- A sample of each request shape's values (every op of S3.OPS needs one: checked below).
local ARGS = {
  create = { { checksum = "sha256" }, { checksum = "md5" } },
  part = { { checksum = "sha256", n = 3, upload = "up/load+id=", sum = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
      payload = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" },
    { checksum = "md5", n = 10000, upload = "2~x", sum = "CY9rzUYh03PK3k6DJie09g==", payload = S3.UNSIGNED } },
  complete = { { upload = "u 1", body = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
    .. "<ETag>\"abc\"</ETag></Part></CompleteMultipartUpload>" } },
  abort = { { upload = "abc" } },
  copy = { { source = "/bucket/some%20key.mp4", sha256 = string.rep("ab", 32) } },
  head = { {} },
  uploads = { { prefix = "videos/ü ñ/" } },
  put = { { type = "image/png", sha256 = string.rep("01", 32), body = "\137PNG\r\n\26\n" } },
  delete = { {} },
  get = { {} },
}

local KEYS = { "video.mp4", "folder/sub dir/my video (1).mp4", "ünïcødé/视频 🎬.mp4",
  "a+b=c&d?e#f%g~h!'()*;:@$,.mp4", "tilde~under_score-dash.MP4" }

local STORES = {
  { endpoint = "http://127.0.0.1:9000", region = "us-east-1", access_key = "AKIDEXAMPLE",
    secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
  { endpoint = "https://s3.eu-west-3.amazonaws.com", region = "eu-west-3", access_key = "ASIAEXAMPLE",
    secret_key = "secret/with+signs=", session_token = "FwoGZXIvYXdzEBAaDH/token+with=signs//" },
}

-- Our request for the SDK's script, and what we signed (r: S3.request's or S3.presign's).
local function case(st, conf, bucket, key, method, query, headers, payload, expires)
  local host = S3.target(st, bucket, key)
  return { authority = st.authority, bucket = bucket, key = key, virtual = host ~= st.authority, method = method,
    query = query or {}, headers = headers, payload = payload, region = st.region, -- ({}: an object to cjson)
    access_key = conf.access_key, secret_key = conf.secret_key, session_token = conf.session_token,
    time = TIME, expires = expires }
end

local function decode(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

local function query_of(q)
  local t = {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[decode(k)] = decode(v)
  end
  return t
end

describe("SigV4 (starvideos.sigv4.sigv4, the requests of storage/s3.lua)", function()
  local ours, cases = {}, {}
  setup(function()
    for _, conf in ipairs(STORES) do
      local st = assert(S3.store_of(conf))
      for _, key in ipairs(KEYS) do
        for _, bucket in ipairs { "my-bucket", "dotted.bucket.name" } do
          for op, list in pairs(ARGS) do
            for _, a in ipairs(list) do
              local r = assert(S3.request(st, op, bucket, key, a, TIME))
              local method, query, headers = S3.OPS[op](a)
              ours[#ours + 1] = { r = r, op = op, st = st }
              cases[#cases + 1] = case(st, conf, bucket, key, method, query, headers, r.payload)
            end
          end
          local url, r = assert(S3.presign(st, bucket, key, 7200, TIME))
          ours[#ours + 1] = { r = { signed = r, url = url }, op = "presigned GET", st = st }
          cases[#cases + 1] = case(st, conf, bucket, key, "GET", nil, {}, S3.UNSIGNED, 7200)
        end
      end
    end
  end)

  it("every request shape of S3.OPS has sample values here", function()
    for op in pairs(S3.OPS) do assert.is_table(ARGS[op], "no sample values for S3.OPS." .. op) end
  end)

  it("signs every shape as the AWS SDK's signer does: canonical request, string to sign, signature, headers, "
    .. "presigned query", function()
    local why = missing()
    if why then pending(why) return end
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/in.json", cjson.encode(cases))
    local out, ok = helper.capture("cd " .. helper.shell_quote(NPM) .. " && node sigv4_ref.js < "
      .. helper.shell_quote(dir .. "/in.json") .. " 2>&1")
    assert.is_true(ok, out)
    local theirs = cjson.decode(out)
    assert.are.equal(#cases, #theirs)
    assert.is_true(#cases >= 2 * 5 * 2 * 12)
    for i, sdk in ipairs(theirs) do
      local mine, c = ours[i].r, cases[i]
      local what = string.format("%s of %s/%s (%s)", ours[i].op, c.bucket, c.key, ours[i].st.where)
      assert.are.equal(sdk.canonical, mine.signed.canonical, what)
      assert.are.equal(sdk.string_to_sign, mine.signed.string_to_sign, what)
      assert.are.equal(sdk.signature, mine.signed.signature, what)
      local path = mine.url:match("^https?://[^/]+(/[^?]*)")
      assert.are.equal(sdk.path, path, what)
      if c.expires then
        assert.are.same(sdk.query, query_of(mine.url:match("%?(.*)$")), what)
      else
        assert.are.equal(sdk.authorization, mine.headers:match("\nAuthorization: ([^\n]*)\n"), what)
        assert.are.equal(sdk.token, mine.headers:match("x%-amz%-security%-token: ([^\n]*)\n"), what)
      end
    end
  end)

  it("gives AWS's documented signature for its GET Object example", function()
    -- docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "Example: GET Object"
    local r = assert(sign.sigv4 { method = "GET", host = "examplebucket.s3.amazonaws.com", path = "/test.txt",
      headers = { Range = "bytes=0-9" }, payload = S3.EMPTY, region = "us-east-1", service = "s3",
      access_key = "AKIAIOSFODNN7EXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", time = 1369353600 })
    assert.are.equal("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", r.signature)
  end)

  it("refuses what cannot be signed with an error naming the field, never the secret", function()
    local base = { method = "GET", host = "h:1", path = "/b/k", payload = S3.EMPTY, region = "us-east-1",
      service = "s3", access_key = "AK", secret_key = "TOPSECRET", time = TIME }
    local function with(k, v)
      local t = {}
      for a, b in pairs(base) do t[a] = b end
      t[k] = v
      return t
    end
    for _, c in ipairs { { "region", "US East" }, { "headers", { ["X-Bad"] = "a\r\nb" } }, { "expires", 604801 },
      { "path", "no-slash" }, { "host", "a b" }, { "method", "get" }, { "secret_key", "" },
      { "headers", { ["Bad Name"] = "v" } }, { "session_token", "t\n" } } do
      local r, err = sign.sigv4(with(c[1], c[2]))
      assert.is_nil(r, c[1])
      assert.are.equal("invalid_request", err.kind)
      assert.are.equal(c[1] == "headers" and "headers" or c[1], err.field)
      assert.is_nil(tostring(err):find("TOPSECRET", 1, true))
    end
    local r, err = sign.sigv4(with("headers", { ["x-a"] = "1", ["X-A"] = "2" }))
    assert.is_nil(r)
    assert.matches("x%-a is given twice", err.message)
  end)

  it("encodes keys as S3 does: unreserved bytes kept, / kept in a path, every other byte %XX", function()
    assert.are.equal("a%20b/%C3%BC%2B~_-.%25", sign.uri_encode("a b/ü+~_-.%", true))
    assert.are.equal("a%2Fb", sign.uri_encode("a/b"))
  end)
end)
