-- The API reference (make docs: LDoc over config.ld): it builds without a
-- warning, and every public function of lua/starvideos/init.lua and client.lua
-- (read from the source) has its entry.  Not a VM check: under lua5.4 only.

local helper = require "spec.helper"

local q = helper.shell_quote
local root = helper.root

-- "function M.name" / "function Client:name" / "function Client.name" in a file
local function defined(path, pattern)
  local names = {}
  for line in assert(io.open(root .. "/" .. path, "rb")):lines() do
    local name = line:match(pattern)
    if name and name:sub(1, 1) ~= "_" then names[#names + 1] = name end
  end
  return names
end

-- the anchors LDoc wrote for documented items
local function anchors(html)
  local set = {}
  for name in (html or ""):gmatch('<a name = "([^"]+)"') do set[name] = true end
  return set
end

describe("make docs", function()
  if helper.vm ~= "lua5.4" then
    pending("the reference does not depend on the VM: checked under lua5.4 only")
    return
  end
  local ldoc = helper.capture("command -v ldoc"):match("^(%S+)")
  local markdown = helper.execute("lua5.1 -e 'require \"markdown\"' 2>/dev/null")
  if not (ldoc and markdown) then
    pending("needs Debian's lua-ldoc and lua-markdown (make deps)")
    return
  end

  local dir, out, ok

  lazy_setup(function()
    dir = helper.tmpdir()
    out, ok = helper.capture("cd " .. q(root) .. " && lua5.1 " .. q(ldoc) .. " --fatalwarnings -d " .. q(dir)
      .. " . 2>&1")
  end)
  lazy_teardown(helper.cleanup)

  it("builds the reference without a warning", function()
    assert.is_true(ok, out)
    assert.matches("output written to", out, 1, true)
    assert.is_string(helper.read_file(dir .. "/index.html"))
  end)

  it("has an entry for every public function of the starvideos module", function()
    local have = anchors(helper.read_file(dir .. "/modules/starvideos.html"))
    local want = defined("lua/starvideos/init.lua", "^function M%.([%w_]+)")
    want[#want + 1] = "new"    -- M.new = Client.new
    want[#want + 1] = "models" -- a table
    assert.is_true(#want >= 8)
    for _, name in ipairs(want) do assert.is_true(have[name], "no entry for starvideos." .. name) end
  end)

  it("has an entry for every public method of the client", function()
    local have = anchors(helper.read_file(dir .. "/classes/starvideos.client.html"))
    local methods = defined("lua/starvideos/client.lua", "^function Client:([%w_]+)")
    assert.is_true(#methods >= 12)
    for _, name in ipairs(methods) do assert.is_true(have["Client:" .. name], "no entry for client:" .. name) end
    assert.is_true(have["Client.new"])
  end)

  it("renders the comments' markdown (code, lists) and escapes what looks like tags", function()
    local html = helper.read_file(dir .. "/classes/starvideos.client.html") or ""
    assert.matches("<code>&lt;id&gt;.mp4</code>", html, 1, true)
    assert.matches("<li><code>api_key</code>", helper.read_file(dir .. "/modules/starvideos.html") or "", 1, true)
  end)
end)
