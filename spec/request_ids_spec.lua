-- Request ids (issue 48, docs/reference.md "Request ids"), end to end against the emulator: the X-Request-Id the
-- server saw is the one on the events, the error, the debug log, the journal's record of the create and the
-- command line's --json; new for each attempt; the server's own id kept beside it.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local shared_emulator = require "spec.support.shared_emulator"
local event_client = require "spec.support.event_client"
local cli_run = require "spec.support.cli_run"
local starvideos = require "starvideos"

local UUID4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

local function cat() return { model = "videos", prompt = "a cat on a skateboard", duration = 5 } end

local new_client, of_type = event_client.new, event_client.of -- (a client on emu, its events)

-- The X-Request-Id the emulator saw on the logged request r: a random UUID (v4), else the spec fails here.
local function id_of(r)
  local id = r.headers["x-request-id"]
  assert(type(id) == "string" and id:find(UUID4), "the request came without an X-Request-Id (a UUID): " .. tostring(id))
  return id
end

describe("request ids", function()
  local emu
  shared_emulator({ key = "test-key", queued = 0.2, processing = 0.2 }, function(e) emu = e end)

  it("a create and its polls: each a new UUID the emulator saw and echoed, on the request and response events",
    function()
    local client = new_client(emu)
    local task = assert(client:create(cat()))
    assert(client:wait(task, { interval = 0.1, timeout = 10 }))
    client:close()
    local logged = emu:api_requests()
    assert.is_true(#logged >= 2, "a create and at least one poll")
    local requests, responses = of_type(client, "request"), of_type(client, "response")
    assert.equal(#logged, #requests)
    assert.equal(#logged, #responses)
    local seen = {}
    for i, r in ipairs(logged) do
      local id = r.headers["x-request-id"]
      assert.truthy(id and id:find(UUID4), "request " .. i .. ": X-Request-Id " .. tostring(id))
      assert.is_nil(seen[id], "an id sent twice: " .. id)
      seen[id] = true
      assert.equal(id, requests[i].request_id)
      assert.equal(id, responses[i].request_id)
      assert.equal(id, responses[i].server_request_id) -- the emulator echoed it: the server took the client's
    end
  end)

  it("each attempt a new id: a create answered 429 then taken; the retry event the failed attempt's ids", function()
    emu:config { server_request_id = "request-id" }
    emu:fault { method = "POST", status = 429, retry_after = 0, count = 1 }
    local client = new_client(emu, { max_retries = 2 })
    assert(client:create(cat()))
    client:close()
    local logged = emu:api_requests()
    assert.equal(2, #logged)
    local first, second = logged[1], logged[2]
    assert.are_not.equal(id_of(first), id_of(second))
    assert.truthy(first.server_request_id:find("^emu%-%d+$"))
    local retry = of_type(client, "retry")
    assert.equal(1, #retry)
    assert.equal(id_of(first), retry[1].request_id)
    assert.equal(first.server_request_id, retry[1].server_request_id) -- Request-Id over the echo
    local responses = of_type(client, "response")
    assert.equal(id_of(second), responses[2].request_id)
    assert.equal(second.server_request_id, responses[2].server_request_id)
  end)

  it("an error carries the last attempt's id and the server's own, after every retry", function()
    emu:config { server_request_id = "cf-ray" }
    local client = new_client(emu, { max_retries = 1 })
    local task = assert(client:create(cat()))
    emu:clear()
    emu:fault { method = "GET", status = 503, count = 2 }
    local _, err = client:query(task.id)
    client:close()
    assert.equal("server", err.kind)
    local logged = emu:api_requests()
    assert.equal(2, #logged)
    assert.equal(id_of(logged[2]), err.request_id)
    assert.equal(logged[2].server_request_id, err.server_request_id)
    assert.are_not.equal(id_of(logged[1]), err.request_id)
  end)

  it("a create refused (400) and one maybe taken (500): the error names the request the server saw", function()
    local client = new_client(emu, { max_retries = 2 })
    emu:fault { method = "POST", status = 400, count = 1 }
    local _, refused = client:create(cat())
    emu:fault { method = "POST", status = 500, count = 1, after = true }
    local _, maybe = client:create(cat())
    client:close()
    local logged = emu:api_requests()
    assert.equal(2, #logged) -- neither sent again
    assert.equal("invalid_request", refused.kind)
    assert.equal(id_of(logged[1]), refused.request_id)
    assert.equal(refused.request_id, refused.server_request_id)
    assert.is_true(maybe.maybe_created)
    assert.equal(id_of(logged[2]), maybe.request_id)
  end)

  it("a server's own X-Request-Id is kept over the echo", function()
    emu:config { server_request_id = "x-request-id" }
    local client = new_client(emu)
    local task = assert(client:create(cat()))
    client:close()
    local logged = emu:api_requests()
    local response = of_type(client, "response")[1]
    assert.equal(id_of(logged[1]), response.request_id)
    assert.equal(logged[1].server_request_id, response.server_request_id)
    assert.truthy(task.id)
  end)

  it("the debug log names both ids on the request, response and retry lines", function()
    emu:config { server_request_id = "request-id" }
    emu:fault { method = "POST", status = 429, retry_after = 0, count = 1 }
    local lines = {}
    local client = starvideos.new { api_key = emu.key, base_url = emu.url, retry_backoff = 0.01, max_retries = 1,
      log = function(line) lines[#lines + 1] = line end }
    assert(client:create(cat()))
    client:close()
    local logged = emu:api_requests()
    local text = table.concat(lines, "\n")
    local a, b = logged[1], logged[2]
    local function has(pattern) assert.truthy(text:find(pattern, 1, true), pattern .. " not in:\n" .. text) end
    has("request #")
    has(" attempt 1 (request id " .. id_of(a) .. ")")
    has("(request id " .. id_of(a) .. ", server id " .. a.server_request_id .. ")")
    has(" status 429 in ")
    has(" attempt 2 (request id " .. id_of(b) .. ")")
    has("(request id " .. id_of(b) .. ", server id " .. b.server_request_id .. ")")
  end)

  it("the journal's record of a create holds the ids of the attempt that made it", function()
    emu:config { server_request_id = "request-id" }
    emu:fault { method = "POST", status = 429, retry_after = 0, count = 1 }
    local journal = helper.tmpdir() .. "/ids.jsonl"
    local client = new_client(emu, { journal = journal, max_retries = 1 })
    local task = assert(client:create(cat()))
    client:close()
    local logged = emu:api_requests()
    local created
    for line in assert(helper.read_file(journal)):gmatch("[^\n]+") do
      local rec = assert(cjson.decode(line))
      if rec.event == "created" then created = rec end
    end
    assert.is_table(created, "no created record")
    assert.equal(task.id, created.id)
    assert.equal(id_of(logged[2]), created.request_id)
    assert.equal(logged[2].server_request_id, created.server_request_id)
  end)

  it("the command line's --json: the error's ids, and create's and status's task document", function()
    emu:config { server_request_id = "request-id" }
    -- (the command line under the specs' VM, as cli_run runs it)
    local env = { STARVIDEOS_API_KEY = emu.key, STARVIDEOS_BASE_URL = emu.url }
    local out = cli_run.run({ "create", "--json", "--model", "videos", "--prompt", "cat", "--duration", "5" }, env).out
    local doc = assert(cjson.decode(out), out)
    local logged = emu:api_requests()
    assert.equal(id_of(logged[1]), doc.request_id)
    assert.equal(logged[1].server_request_id, doc.server_request_id)
    emu:fault { method = "GET", status = 404, count = 1 }
    out = cli_run.run({ "status", "--json", doc.id }, env).out
    local failed = assert(cjson.decode(out), out)
    logged = emu:api_requests()
    assert.is_false(failed.ok)
    assert.equal(id_of(logged[2]), failed.error.request_id)
    assert.equal(logged[2].server_request_id, failed.error.server_request_id)
  end)
end)
