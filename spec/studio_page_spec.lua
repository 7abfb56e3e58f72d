-- The studio's page script (examples/studio/static/studio.js) read by node, as a browser would run it
-- but with no page: the text of a card's bytes.  A download not done never reads as its total (19,239 bytes
-- had read "18.8 kB of 18.8 kB"), and a size is in kB of 1000.  Pending without node.
local helper = require "spec.helper"
local cjson = require "cjson.safe"

local q = helper.shell_quote
local SCRIPT = helper.root .. "/examples/studio/static/studio.js"

-- studio.js run in a context of its own (a document giving the token's meta tag, a fetch that never answers:
-- the page waits for its models); then the bytes row of a downloading card (rows) of each [bytes, total] pair
-- of cases (a total < 0: none).
local RUN = [[
const vm = require('vm'), fs = require('fs');
const ctx = { document: { querySelector: () => ({ content: '' }) }, fetch: () => new Promise(() => {}) };
vm.createContext(ctx);
vm.runInContext(fs.readFileSync(process.argv[1], 'utf8'), ctx);
const cases = JSON.parse(process.argv[2]);
const bytes = (b, t) => ctx.rows({ state: 'downloading', bytes: b, total: t < 0 ? undefined : t })
  .find(([k]) => k === 'bytes')[1];
process.stdout.write(JSON.stringify(cases.map(([b, t]) => bytes(b, t))));
]]

local function texts(cases)
  local out = helper.capture("node -e " .. q(RUN) .. " " .. q(SCRIPT) .. " " .. q(cjson.encode(cases)) .. " 2>&1")
  return assert(cjson.decode(out), out)
end

describe("the studio's page: a card's bytes and its failure", function()
  if not helper.execute("command -v node >/dev/null 2>&1") then
    pending("node (Debian: nodejs) is not installed")
    return
  end

  it("reads a download's bytes truthfully: its total once done, never the total's text before", function()
    assert.same({ "19.2 kB", "9.6 kB of 19.2 kB", "19,200 of 19,239 bytes", "512 B", "19.2 kB",
      "2.5 MB of 10.0 MB", "999,999 of 1,000,000 bytes", "0 B of 19.2 kB" },
      texts { { 19239, 19239 }, { 9620, 19239 }, { 19200, 19239 }, { 512, -1 }, { 19239, -1 },
        { 2500000, 10000000 }, { 999999, 1000000 }, { 0, 19239 } })
  end)

  it("shows a failed card's reason and what to do (the runner's M.why of failure.lua's advice)", function()
    local run = RUN:gsub("const bytes = .*$", [[
const c = cases;
process.stdout.write(JSON.stringify(ctx.rows(c).filter(([k]) => k === 'why')));
]])
    local advice = require("starvideos.failure").advice("policy", "prompt")
    local card = { state = "failed", reason = "policy", input = "prompt", advice = advice }
    local out = helper.capture("node -e " .. q(run) .. " " .. q(SCRIPT) .. " " .. q(cjson.encode(card)) .. " 2>&1")
    assert.same({ { "why", "policy: " .. advice } }, assert(cjson.decode(out), out))
    assert.matches("change the prompt", advice, 1, true)
  end)

  it("never shows a download not done as 'X of X'", function()
    local cases = {}
    for _, total in ipairs { 1000, 19239, 1048576, 52428800 } do
      for b = 0, total - 1, math.max(1, math.floor(total / 997)) do cases[#cases + 1] = { b, total } end
      cases[#cases + 1] = { total - 1, total }
    end
    for i, text in ipairs(texts(cases)) do
      local got, all = text:match("^(.-) of (.-)$")
      assert(got, text)
      assert.are_not.equal(all:gsub(" bytes$", ""), got, cjson.encode(cases[i]) .. ": " .. text)
    end
  end)
end)
