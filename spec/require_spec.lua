-- What `require "starvideos"` loads (bench row 17: a fresh process's require).
-- A plain client needs neither libcrypto nor the log, the store, keep or the
-- signatures: they are required where first used, libcrypto with
-- starvideos.sign (sign.so) by the first webhook signed (notify) or checked
-- (verify_webhook).  Each case runs a child process on this checkout's modules
-- and reads its own /proc/self/maps and package.loaded; busted's process has
-- loaded too much already to say anything.

local helper = require "spec.helper"

local q = helper.shell_quote

local child = require("spec.support.child_state").child
local foreign = require("spec.support.child_state").foreign

-- Loaded by no plain `require "starvideos"` (the ledger: by the first client); nor is any module of another rock
-- (child_state.foreign).
local LAZY = { "starvideos.extras.log", "starvideos.extras.keep", "starvideos.extras.notify", "starvideos.schedule",
  "starvideos.nginx.transport", "starvideos.nginx.budget", "starvideos.sign", "starvideos.curl", "starvideos.cli",
  "starvideos.records.ledger", "starvideos.records.compact", "starvideos.spend" }

describe("require \"starvideos\"", function()
  teardown(helper.cleanup)

  it("maps no libcrypto and loads none of the lazy modules; a plain client loads no log, keep or signatures",
    function()
    local out, st = child([[
state("required_core")
package.loaded["starvideos.core"] = nil
local starvideos = require "starvideos"
state("required")
local c = starvideos.new { base_url = BASE, api_key = "k" }
state("client")
c:close()
]], "env -u STARVIDEOS_LOG -u STARVIDEOS_STORE -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
      .. helper.CHILD_ENV)
    local s = assert(st.required, out)
    assert.is_false(s.crypto, "libcrypto is mapped after require \"starvideos\"")
    assert.is_true(s.loaded["starvideos"] and s.loaded["starvideos.core"] and s.loaded["starvideos.client"] or false,
      out)
    for _, m in ipairs(LAZY) do assert.is_nil(s.loaded[m], m .. " loaded by require \"starvideos\"") end
    assert.same({}, foreign(s.loaded), "another rock's modules loaded by require \"starvideos\"")
    s = assert(st.client, out)
    for _, m in ipairs { "starvideos.extras.log", "starvideos.extras.keep", "starvideos.sign",
      "starvideos.extras.notify", "starvideos.schedule" } do
      assert.is_nil(s.loaded[m], m .. " loaded by a plain client")
    end
    assert.same({}, foreign(s.loaded), "another rock's modules loaded by a plain client")
  end)

  -- Issue 77, 5: a library in the core rock (5,684 lines in 27 modules before; 3,931 in 18 after): the verbs built
  -- on the client and what a plain client never uses load at their first use.
  local VERBS = { "starvideos.film", "starvideos.lineage", "starvideos.verb_job", "starvideos.sse",
    "starvideos.provenance", "starvideos.fallback", "starvideos.failure", "starvideos.client_ledger",
    "starvideos.records.journal", "starvideos.records.leases", "starvideos.lease", "starvideos.video",
    "starvideos.download", "starvideos.interrupt", "starvideos.shell", "starvideos.observed" }
  it("loads at most 4,000 lines of lua/ with require and new{}; the verbs and the journal at their first use",
    function()
    local out, st = child([[
local starvideos = require "starvideos"
local c = starvideos.new { base_url = BASE, api_key = "k" }
state("client")
c:close()
]], "env -u STARVIDEOS_LOG -u STARVIDEOS_STORE -u STARVIDEOS_JOURNAL " .. helper.CHILD_ENV)
    local s = assert(st.client, out)
    local total, names = 0, {}
    for name in pairs(s.loaded) do
      local text = name:find("^starvideos") and (helper.read_file(helper.root .. "/lua/" .. name:gsub("%.", "/")
        .. ".lua") or helper.read_file(helper.root .. "/lua/" .. name:gsub("%.", "/") .. "/init.lua"))
      if text then
        local _, n = text:gsub("\n", "")
        total, names[#names + 1] = total + n, name
      end
    end
    assert.is_true(total <= 4000, total .. " lines of lua/ loaded, in " .. #names .. " modules")
    assert.is_true(#names >= 10, "the modules were not found: " .. table.concat(names, " "))
    for _, m in ipairs(VERBS) do assert.is_nil(s.loaded[m], m .. " loaded by require and new{}") end
  end)

  it("loads the log with the log option or $STARVIDEOS_LOG, and not before", function()
    local body = [[
local starvideos = require "starvideos"
state("required")
local c = starvideos.new { base_url = BASE, api_key = "k", log = os.getenv("OPT_LOG") }
state("client")
c:close()
]]
    for _, env in ipairs { "env -u STARVIDEOS_LOG OPT_LOG=debug ", "env -u OPT_LOG STARVIDEOS_LOG=info " } do
      local out, st = child(body, env .. helper.CHILD_ENV)
      assert.is_nil(assert(st.required, out).loaded["starvideos.extras.log"], env)
      assert.is_true(assert(st.client, out).loaded["starvideos.extras.log"], env)
    end
  end)

  it("loads starvideos.sign (and libcrypto) at the first verify_webhook, which then checks as before", function()
    local out, st = child([[
local starvideos = require "starvideos"
state("required")
local h = { ["webhook-id"] = "evt_1", ["webhook-timestamp"] = tostring(os.time()), ["webhook-signature"] = "v1,AAAA" }
local ok, err = starvideos.verify_webhook(SECRET, h, "{}")
print("BAD", tostring(ok), err and err.field)
state("verified")
h["webhook-signature"] = require("starvideos.sign").sign(SECRET, "evt_1", h["webhook-timestamp"], "{}")
print("GOOD", tostring(starvideos.verify_webhook(SECRET, h, "{}")))
]])
    assert.is_false(assert(st.required, out).crypto)
    assert.matches("BAD\tnil\twebhook%-signature\n", out)
    assert.matches("GOOD\ttrue\n", out)
    local s = assert(st.verified, out)
    assert.is_true(s.loaded["starvideos.sign"])
    assert.is_true(s.crypto, "libcrypto is not mapped after verify_webhook")
  end)

  it("loads starvideos.sign with a client's notify option (its secret is checked there)", function()
    local out, st = child([[
local starvideos = require "starvideos"
state("required")
local c = starvideos.new { base_url = BASE, api_key = "k", notify = { url = BASE .. "/hook", secret = SECRET } }
state("client")
print("BAD", pcall(starvideos.new, { base_url = BASE, api_key = "k",
  notify = { url = BASE .. "/hook", secret = "whsec_not*base64" } }))
c:close()
]])
    assert.is_nil(assert(st.required, out).loaded["starvideos.sign"])
    assert.is_true(assert(st.client, out).loaded["starvideos.sign"])
    assert.matches("BAD\tfalse\t[^\n]*notify%.secret: a whsec_ secret whose part after whsec_ is not base64", out)
  end)

  it("loads spend.lua with a spend limit, not with a client without one nor at its creates (either ledger)",
    function()
    local emu = helper.emulator()
    finally(function() emu:stop() end)
    local out, st = child([[
local starvideos = require "starvideos"
local url, journal = os.getenv("EMU_URL"), arg[0]:gsub("child%.lua$", "journal.jsonl")
for _, ledger in ipairs { "process", "journal" } do
  local c = starvideos.new { base_url = url, api_key = "test-key", journal = ledger == "journal" and journal or nil }
  state("new_" .. ledger)
  local task, err = c:create { model = "videos", prompt = "a lighthouse at dusk", duration = 5 }
  print("CREATED", ledger, task and task.id ~= nil, err)
  state("created_" .. ledger)
  c:close()
end
local c = starvideos.new { base_url = url, api_key = "test-key", prices = { videos = 0.4 }, -- (its one model's)
  spend_limit = { amount = 1, per = "day", scope = "model", model = "videos" } }
state("limited")
c:close()
]], "env EMU_URL=" .. q(emu.url) .. " " .. helper.CHILD_ENV)
    for _, ledger in ipairs { "process", "journal" } do
      assert.matches("CREATED\t" .. ledger .. "\ttrue\tnil\n", out)
      for _, label in ipairs { "new_", "created_" } do
        assert.is_nil(assert(st[label .. ledger], out).loaded["starvideos.spend"], label .. ledger .. ": " .. out)
      end
    end
    assert.is_true(assert(st.limited, out).loaded["starvideos.spend"], out)
  end)

  it("loads no spend.lua for a job stepped to its end, nor for the command line's generate, without a limit",
    function()
    local emu = helper.emulator()
    finally(function() emu:stop() end)
    local dir = helper.tmpdir()
    local out, st = child([[
local starvideos = require "starvideos"
local c = starvideos.new { base_url = os.getenv("EMU_URL"), api_key = "test-key" }
local job = assert(c:start({ model = "videos", prompt = "a fox", duration = 5 }, { interval = 0.05 }))
while not job.done do c:step(0.05) end
print("JOB", job.state, job.err == nil)
state("job")
c:close()
-- the command line, as bin/starvideos runs it, its exit caught to say what it loaded
local exit = os.exit
os.exit = function(code) state("cli") print("CLI", code) exit(code) end
arg = { [0] = os.getenv("BIN"), "generate", "--model", "videos", "--prompt", "a hen", "--duration", "5",
  "--interval", "0.05", "--out", os.getenv("OUT") }
dofile(os.getenv("BIN"))
]], "env STARVIDEOS_API_KEY=test-key STARVIDEOS_BASE_URL=" .. q(emu.url) .. " EMU_URL=" .. q(emu.url) .. " BIN="
      .. q(helper.root .. "/bin/starvideos") .. " OUT=" .. q(dir .. "/hen.mp4") .. " " .. helper.CHILD_ENV)
    assert.matches("JOB\tdone\ttrue\n", out)
    assert.matches("CLI\t0\n", out)
    assert.is_true(helper.whole_mp4(dir .. "/hen.mp4"), out)
    for _, label in ipairs { "job", "cli" } do
      assert.is_nil(assert(st[label], out).loaded["starvideos.spend"], label .. ": " .. out)
    end
    assert.equal(2, emu:creates())
  end)

  it("works without sign.so, and notify and verify_webhook then raise naming starvideos.sign", function()
    local dir = helper.tmpdir()
    local built = helper.cpath:gsub("%?%.so$", "")
    assert(helper.execute("mkdir -p " .. q(dir .. "/c/starvideos") .. " && cp " .. q(built .. "starvideos/core.so")
      .. " " .. q(built .. "starvideos/curl.so") .. " " .. q(dir .. "/c/starvideos/")))
    local env = "env LUA_PATH=" .. q(helper.lua_path(helper.root) .. ";;")
      .. " LUA_CPATH=" .. q(dir .. "/c/?.so;;") .. " "
    local out = child([[
local starvideos = require "starvideos"
print("REQUIRED", type(starvideos.new))
local h = { ["webhook-id"] = "evt_1", ["webhook-timestamp"] = tostring(os.time()), ["webhook-signature"] = "v1,AAAA" }
print("VERIFY", pcall(starvideos.verify_webhook, SECRET, h, "{}"))
print("NOTIFY", pcall(starvideos.new, { base_url = BASE, api_key = "k",
  notify = { url = BASE .. "/hook", secret = SECRET } }))
local c = starvideos.new { base_url = BASE, api_key = "k" }
print("PLAIN", c ~= nil)
c:close()
]], env)
    assert.matches("REQUIRED\tfunction\n", out)
    for _, what in ipairs { "VERIFY", "NOTIFY" } do
      local line = assert(out:match(what .. "\t([^\n]*)"), out)
      assert.matches("^false\t", line)
      assert.truthy(line:find("need the C module starvideos.sign (sign.so", 1, true), line)
      assert.truthy(line:find("module 'starvideos.sign' not found", 1, true), line)
    end
    assert.matches("PLAIN\ttrue\n", out)
  end)

  it("raises a lazily loaded module's own error where it is first used", function()
    local dir = helper.tmpdir()
    assert(helper.execute("mkdir -p " .. q(dir .. "/l/starvideos/extras")))
    helper.write_file(dir .. "/l/starvideos/extras/keep.lua", 'error("keep.lua broke while loading")\n')
    local env = "env LUA_PATH=" .. q(dir .. "/l/?.lua;" .. helper.lua_path(helper.root) .. ";;")
      .. " LUA_CPATH=" .. q(helper.cpath .. ";;") .. " "
    local out = child([[
local starvideos = require "starvideos"
print("REQUIRED", type(starvideos.new))
local c = starvideos.new { base_url = BASE, api_key = "k", journal = arg[0]:gsub("child%.lua$", "j") }
print("RESUME", pcall(c.resume, c, { dir = "." }))
print("AGAIN", pcall(c.resume, c, { dir = "." }))
c:close()
]], env)
    assert.matches("REQUIRED\tfunction\n", out)
    assert.matches("RESUME\tfalse\t[^\n]*keep%.lua broke while loading", out)
    assert.matches("AGAIN\tfalse\t[^\n]*keep", out) -- (5.1: "loop or previous error loading module")
  end)
end)
