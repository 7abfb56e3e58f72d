-- The command line's --store URL (and $STARVIDEOS_STORE) for create, generate, list,
-- pending, resume and keep, run as a child process: a bad URL is a usage error
-- naming where it came from and never showing the password; pending, resume and
-- keep need one ledger (--journal or --store); and against a real redis-server
-- and the emulator, the store's tasks are what pending lists and resume downloads.

local cjson = require "cjson.safe"
local helper = require "spec.helper"
local redis_run = require "rocks.redis.spec.support.redis_run"

local q = helper.shell_quote
local BIN = helper.root .. "/bin/starvideos"
local KEY = "sk-cli-store-5d1e"
local SAMPLE = require("starvideos.emulator.files").video(5)

-- The command line with env (STARVIDEOS_* cleared first): { out, err, code }.
local function cli(argv, env)
  local parts = { "env", "-u", "STARVIDEOS_API_KEY", "-u", "STARVIDEOS_BASE_URL", "-u", "STARVIDEOS_STORE" }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = q(helper.lua) .. " " .. q(BIN)
  for _, a in ipairs(argv) do parts[#parts + 1] = q(a) end
  local errfile = os.tmpname()
  local out, _, code = helper.capture(table.concat(parts, " ") .. " </dev/null 2>" .. q(errfile))
  local err = helper.read_file(errfile) or ""
  os.remove(errfile)
  assert(not (out .. err):find(KEY, 1, true), "the API key was printed")
  return { out = out, err = err, code = code }
end

describe("the command line's --store", function()
  for _, cmd in ipairs { "pending", "resume", "keep", "create", "generate" } do
    it(cmd .. " refuses a bad --store or STARVIDEOS_STORE naming it, never showing the password", function()
      local extra = (cmd == "create" or cmd == "generate") and { "--model", "videos", "--prompt", "a cat",
        "--duration", "5" } or {}
      local function with(...)
        local argv = { cmd, ... }
        for _, a in ipairs(extra) do argv[#argv + 1] = a end
        return argv
      end
      local env = { STARVIDEOS_API_KEY = KEY }
      local r = cli(with("--store", "redis://:hunter2@127.0.0.1:70000"), env)
      assert.equal(2, r.code)
      assert.matches('--store "redis://***@127.0.0.1:70000": the port is not 1 to 65535', r.err, 1, true)
      assert.is_nil(r.err:find("hunter2", 1, true))
      r = cli(with("--store", "http://127.0.0.1:6379", "--json"), env)
      assert.equal(2, r.code)
      local doc = cjson.decode(r.out)
      assert.equal("usage", doc.error.kind)
      assert.matches("--store \"http://127.0.0.1:6379\": no ledger for http:// is installed", doc.error.message, 1,
        true)
      env.STARVIDEOS_STORE = "redis://:hunter2@"
      r = cli(with(), env)
      assert.equal(2, r.code)
      assert.matches('STARVIDEOS_STORE "redis://***@": no host', r.err, 1, true)
      assert.is_nil(r.err:find("hunter2", 1, true))
    end)
  end

  for _, cmd in ipairs { "pending", "resume", "keep" } do
    it(cmd .. " needs one ledger: --journal or --store (or STARVIDEOS_STORE), not both", function()
      local r = cli({ cmd }, { STARVIDEOS_API_KEY = KEY })
      assert.equal(2, r.code)
      assert.matches("--journal PATH or --store URL is required (or set STARVIDEOS_STORE)", r.err, 1, true)
      r = cli({ cmd, "--journal", "tasks.jsonl", "--store", "redis://127.0.0.1:6379" }, { STARVIDEOS_API_KEY = KEY })
      assert.equal(2, r.code)
      assert.matches("--journal and --store: give one ledger, not both", r.err, 1, true)
      r = cli({ cmd, "--help" })
      assert.equal(0, r.code)
      assert.matches("\n  --store URL ", r.out, 1, true)
    end)
  end

  it("names STARVIDEOS_STORE in the usage, and the store needs the key for pending and list", function()
    assert.matches("STARVIDEOS_STORE", cli({ "--help" }).out, 1, true)
    for _, cmd in ipairs { "pending", "list" } do
      local r = cli({ cmd, "--store", "redis://127.0.0.1:6379" })
      assert.equal(2, r.code)
      assert.matches("no API key", r.err, 1, true)
    end
  end)
end)

local why = redis_run.missing()
if not why and not pcall(require, "starvideos.redis") then
  why = "starvideos.redis is not built for this Lua (make; it needs hiredis, Debian libhiredis-dev)"
end

describe("the command line on a store", function()
  local srv, emu, env, dir
  setup(function()
    if why then return end
    srv, emu = redis_run.start_pair { key = KEY, queued = 0, processing = 0.3 }
    dir = helper.tmpdir()
    env = { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url }
  end)
  teardown(function() redis_run.stop_pair(srv, emu) end)

  it("creates into the store; pending lists the create whose answer never came; resume downloads the rest",
  function()
    if why then return pending(why) end
    local ids = {}
    for i = 1, 2 do
      local r = cli({ "create", "--store", srv.url, "--model", "videos", "--prompt", "kitten " .. i,
        "--duration", "5", "--json" }, env)
      assert.equal(0, r.code, r.err)
      ids[i] = cjson.decode(r.out).id
    end
    -- the server takes the third create, its answer is lost: the ledger keeps a pending record
    emu:fault { method = "POST", drop = true, after = true, count = 1 }
    local r = cli({ "create", "--model", "videos", "--prompt", "kitten 3", "--duration", "5" },
      { STARVIDEOS_API_KEY = KEY, STARVIDEOS_BASE_URL = emu.url, STARVIDEOS_STORE = srv.url })
    assert.equal(1, r.code, r.err)
    r = cli({ "pending", "--store", srv.url, "--json" }, env)
    assert.equal(0, r.code, r.err)
    local list = cjson.decode(r.out)
    assert.equal(1, #list, r.out)
    assert.equal("videos", list[1].model)
    r = cli({ "pending", "--store", srv.url }, env)
    assert.matches("1 create sent without an answer", r.out, 1, true)
    -- a journal of another key's, no: the store is read, by another process
    r = cli({ "resume", "--store", srv.url, "--dir", dir, "--interval", "0.2", "--json" }, env)
    assert.equal(0, r.code, r.err)
    for _, id in ipairs(ids) do
      assert.equal(SAMPLE, helper.read_video(dir .. "/" .. id .. ".mp4"), id)
    end
    r = cli({ "list", "--store", srv.url, "--json" }, env) -- every task of the store, one JSON object a line
    assert.equal(0, r.code, r.err)
    local listed = {}
    for line in r.out:gmatch("[^\n]+") do
      local t = cjson.decode(line)
      listed[#listed + 1] = (t.id or "local") .. " " .. t.state .. " " .. t.prompt
    end
    assert.same({ ids[1] .. " downloaded kitten 1", ids[2] .. " downloaded kitten 2", "local pending kitten 3" },
      listed)
    r = cli({ "resume", "--store", srv.url, "--dir", dir }, env)
    assert.equal(0, r.code, r.err)
    assert.matches("nothing to resume: every task in the store redis://127.0.0.1:" .. srv.port .. "/0 is downloaded",
      r.out, 1, true)
    local creates = 0
    for _, req in ipairs(emu:requests()) do if req.method == "POST" then creates = creates + 1 end end
    assert.equal(3, creates)
  end)

  it("keep --store --timeout carries a task whose process is gone, and stops", function()
    if why then return pending(why) end
    emu:reset()
    -- a store of this case alone: the creates other cases left pending are keep's
    -- to report too (an entry with maybe_created, exit 1)
    assert(helper.execute(helper.UNINSTRUMENTED .. "redis-cli -p " .. srv.port .. " FLUSHALL >/dev/null"))
    -- a create by a process that then leaves without waiting (its client closed: its lease let go)
    local script = dir .. "/leave.lua"
    helper.write_file(script, table.concat({
      "local c = require('starvideos').new { store = " .. string.format("%q", srv.url) .. " }",
      "local t = assert(c:create { model = 'videos', prompt = 'orphan', duration = 5 })",
      "c:close()",
      "io.write(t.id)" }, "\n"))
    local id = helper.capture("cd " .. q(helper.root) .. " && env STARVIDEOS_API_KEY=" .. q(KEY)
      .. " STARVIDEOS_BASE_URL=" .. q(emu.url) .. " " .. q(helper.lua) .. " " .. q(script))
    assert.truthy(id:match("^%S+$"), id)
    local out = helper.tmpdir()
    local r = cli({ "keep", "--store", srv.url, "--dir", out, "--lease", "1", "--interval", "0.2", "--timeout", "4",
      "--json" }, env)
    assert.equal(0, r.code, r.err)
    assert.equal(SAMPLE, helper.read_video(out .. "/" .. id .. ".mp4"))
  end)

  it("batch --store pays once per entry: a rerun sends no create; no journal is written beside the videos", function()
    if why then return pending(why) end
    emu:reset()
    local file, out = dir .. "/prompts.txt", helper.tmpdir()
    helper.write_file(file, "a stored cat\na stored dog\n")
    local argv = { "batch", "--store", srv.url, "--prompts-file", file, "--out-dir", out, "--model", "videos",
      "--duration", "5", "--interval", "0.1" }
    local r = cli(argv, env)
    assert.equal(0, r.code, r.err)
    assert.matches("2 videos: 2 saved in " .. out .. ", 0 not", r.out, 1, true)
    assert.equal(SAMPLE, helper.read_video(out .. "/0002.mp4"))
    assert.is_falsy(helper.exists(out .. "/starvideos.jsonl"))
    r = cli(argv, env)
    assert.equal(0, r.code, r.err)
    assert.equal(2, emu:creates())
    argv[#argv + 1], argv[#argv + 2] = "--journal", dir .. "/j.jsonl"
    r = cli(argv, env)
    assert.equal(2, r.code)
    assert.matches("--journal and --store: give one ledger, not both", r.err, 1, true)
  end)

  it("generate --key with --store pays once: a rerun follows the key's task; list names the key", function()
    if why then return pending(why) end
    emu:reset()
    local argv = { "generate", "--store", srv.url, "--model", "videos", "--prompt", "a key's cat", "--duration", "5",
      "--key", "cat-on-store", "--interval", "0.1", "--json" }
    local first = cli(argv, env)
    assert.equal(0, first.code, first.err)
    local again = cli(argv, env)
    assert.equal(0, again.code, again.err)
    assert.equal(cjson.decode(first.out).id, cjson.decode(again.out).id)
    assert.equal(1, emu:creates())
    local r = cli({ "list", "--store", srv.url, "--json" }, env)
    assert.equal(0, r.code, r.err)
    local keyed
    for line in r.out:gmatch("[^\n]+") do
      local t = cjson.decode(line)
      if t.id == cjson.decode(first.out).id then keyed = t end
    end
    assert.equal("cat-on-store", keyed and keyed.key)
  end)
end)
