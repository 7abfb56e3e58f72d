-- The command line's --store URL (and $STARVIDEOS_STORE) for create, generate,
-- pending, resume and keep, run as a child process: a bad URL is a usage error
-- naming where it came from and never showing the password; pending, resume and
-- keep need one ledger (--journal or --store); and against a real redis-server
-- and the emulator, the store's tasks are what pending lists and resume downloads.

local cjson = require "cjson.safe"
local helper = require "spec.helper"

local q = helper.shell_quote
local BIN = helper.root .. "/bin/starvideos"
local KEY = "sk-cli-store-5d1e"

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
      assert.matches("--store \"http://127.0.0.1:6379\": the scheme is not redis://", doc.error.message, 1, true)
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

  it("names STARVIDEOS_STORE in the usage, and the store needs the key for pending", function()
    assert.matches("STARVIDEOS_STORE", cli({ "--help" }).out, 1, true)
    local r = cli({ "pending", "--store", "redis://127.0.0.1:6379" })
    assert.equal(2, r.code)
    assert.matches("no API key", r.err, 1, true)
  end)
end)
