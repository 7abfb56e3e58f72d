-- The bucket's store object (storage/s3.lua's S3.store_of) and what it knows of its server: one store per
-- endpoint, region and keys in the process; a storage table's store kept once made (the environment not read
-- again, the secret not hashed again) but never given to other credentials; the server's count of the reference
-- objects the live jobs hold (refs.lua's).  Nothing here is sent: no store listens on these endpoints.
local S3 = require "starvideos.storage.s3"
local sign = require "starvideos.sign"

local ENDPOINT = "http://127.0.0.1:9" -- (a port where nothing listens: nothing is asked of it)

-- f() run with os.getenv and sign.sha256 counted: f's values, then how many calls each had.
local function counted(f)
  local getenv, sha256, reads, hashes = os.getenv, sign.sha256, 0, 0
  os.getenv = function(...) reads = reads + 1; return getenv(...) end -- luacheck: ignore 122
  sign.sha256 = function(...) hashes = hashes + 1; return sha256(...) end
  local ok, a, b = pcall(f)
  os.getenv, sign.sha256 = getenv, sha256 -- luacheck: ignore 122
  assert(ok, a)
  return a, b, reads, hashes
end

describe("S3.store_of", function()
  it("keeps a storage table's store: asked again, the same object, the environment not read, the secret not "
    .. "hashed", function()
    local t = { endpoint = ENDPOINT, access_key = "AK1", secret_key = "SK1" }
    local st, _, reads, hashes = counted(function() return assert(S3.store_of(t)) end)
    assert.is_true(reads > 0) -- (the first time: region, session token, ... from AWS_*)
    assert.are.equal(1, hashes)
    local again, _, reads2, hashes2 = counted(function() return assert(S3.store_of(t)) end)
    assert.are.equal(st, again)
    assert.are.same({ 0, 0 }, { reads2, hashes2 })
  end)

  it("gives another table of the same endpoint, region and keys the same store, other keys another", function()
    local a = assert(S3.store_of { endpoint = ENDPOINT, access_key = "AK2", secret_key = "SK2" })
    local b = assert(S3.store_of { endpoint = ENDPOINT, access_key = "AK2", secret_key = "SK2" })
    local c = assert(S3.store_of { endpoint = ENDPOINT, access_key = "AK2", secret_key = "SK2b" })
    assert.are.equal(a, b)
    assert.are_not.equal(a, c)
    assert.are.equal("SK2b", c.secret_key)
    assert.are.equal(a.server, c.server) -- (one server per endpoint, whoever's keys asked it)
  end)

  it("never gives a table's kept store to the credentials it holds once changed", function()
    local t = { endpoint = ENDPOINT, access_key = "AK3", secret_key = "SK3" }
    local first = assert(S3.store_of(t))
    t.secret_key = "SK3-new"
    local second = assert(S3.store_of(t))
    assert.are_not.equal(first, second)
    assert.are.same({ "AK3", "SK3-new" }, { second.access_key, second.secret_key })
    t.path_style, t.session_token = true, "TOKEN"
    local third = assert(S3.store_of(t))
    assert.are.same({ true, "TOKEN" }, { third.path_style, third.session_token })
    t.secret_key, t.path_style, t.session_token = "SK3", nil, nil
    assert.are.equal(first, assert(S3.store_of(t)))
  end)

  it("keeps no refusal: a table refused, then given what it lacked, has its store", function()
    local t = { endpoint = ENDPOINT, region = "Not A Region", access_key = "AK4", secret_key = "SK4" }
    local st, err = S3.store_of(t)
    assert.is_nil(st)
    assert.are.equal("storage.region", err.field)
    t.region = "eu-west-3"
    st = assert(S3.store_of(t))
    assert.are.equal("eu-west-3", st.region)
  end)
end)

describe("a store's server: the reference objects the live jobs hold", function()
  it("counts each job's hold; an object is let go (no longer known there) with its last holder", function()
    local server = assert(S3.store_of { endpoint = "http://127.0.0.1:10", access_key = "A", secret_key = "S" }).server
    local url, other = "s3://refs/p/1.png", "s3://refs/p/2.png"
    local job1, job2 = {}, {}
    server:hold(job1, url)
    server:hold(job2, url)
    server:hold(job2, other)
    local o = {}
    server:asks(url, o)
    assert.are.equal(o, server:asker(url))
    server:answered(url, {}, true) -- (another's answer: o's request still in flight)
    assert.are.equal(o, server:asker(url))
    server:answered(url, o, true)
    assert.is_nil(server:asker(url))
    assert.is_true(server:known(url))
    server:let_go(job1)
    assert.is_true(server:held(url))
    assert.is_true(server:known(url))
    server:let_go(job2)
    assert.is_false(server:held(url))
    assert.is_false(server:held(other))
    assert.is_false(server:known(url)) -- (no live job holds it: another process may delete it)
    server:answered(other, {}, true)
    server:answered(other, {}, nil) -- (a failure: nothing learned)
    assert.is_true(server:known(other))
    server:answered(other, {}, false) -- (deleted)
    assert.is_false(server:known(other))
  end)
end)

describe("the storage option: the bucket's rock checks its fields (the references point's check)", function()
  local starvideos = require "starvideos"
  local without = require "spec.support.without"
  local function made(storage)
    local ok, err = pcall(starvideos.new, { api_key = "k", base_url = ENDPOINT, storage = storage })
    if ok then err:close() end
    return ok, tostring(err)
  end

  it("refuses a field it does not have and a value of another type, naming the field, never the value", function()
    local ok, err = made { endpiont = ENDPOINT }
    assert.is_false(ok)
    assert.matches("storage.endpiont: unknown field (endpoint, region,", err, 1, true)
    ok, err = made { endpoint = ENDPOINT, secret_key = 12345 }
    assert.is_false(ok)
    assert.matches("storage.secret_key: a string expected, got a number", err, 1, true)
    assert.is_nil(err:find("12345", 1, true))
    assert.is_true((made { endpoint = ENDPOINT, access_key = "a", secret_key = "s", keep_refs = true }))
  end)

  it("is the rock's alone: without it, the core takes any table (an s3:// out is refused where it is given)",
    function()
    without({ "starvideos.references" }, function()
      assert.is_true((made { endpiont = ENDPOINT }))
      local ok, err = made "s3://vids"
      assert.is_false(ok)
      assert.matches("storage: a table of the bucket's settings expected, got string", err, 1, true)
    end)
  end)
end)
