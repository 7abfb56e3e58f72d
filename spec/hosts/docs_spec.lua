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

-- Why the reference cannot be checked here (nil: it can), and ldoc's path.
local function unavailable()
  if helper.vm ~= "lua5.4" then return "the reference does not depend on the VM: checked under lua5.4 only" end
  local ldoc = helper.capture("command -v ldoc"):match("^(%S+)")
  local markdown = helper.execute("lua5.1 -e 'require \"markdown\"' 2>/dev/null")
  if not (ldoc and markdown) then return "needs Debian's lua-ldoc and lua-markdown (make deps)" end
  return nil, ldoc
end

describe("make docs", function()
  local why, ldoc = unavailable()
  if why then
    pending(why)
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

describe("make docs's index", function()
  local why = unavailable()
  if why then
    pending(why)
    return
  end

  local out, ok, index

  lazy_setup(function()
    out, ok = helper.capture("make -s -C " .. q(root) .. " docs 2>&1")
    index = helper.read_file(root .. "/build/docs/index.html") or ""
  end)

  it("is written by make docs", function()
    assert.is_true(ok, out)
    assert.matches("docs: build/docs/index.html", out, 1, true)
  end)

  it("sums up every public function, each linked to its entry", function()
    local summary = index:match("<h2>Functions</h2>%s*(<table.-</table>)")
    assert.is_string(summary, "no function summary in the index")
    local names = defined("lua/starvideos/init.lua", "^function M%.([%w_]+)")
    names[#names + 1] = "new"    -- M.new = Client.new
    names[#names + 1] = "models" -- a table
    assert.is_true(#names >= 8)
    for _, name in ipairs(names) do
      assert.matches('<a href="modules/starvideos.html#' .. name .. '"><code>starvideos.' .. name .. "[(<]",
        summary, nil, nil, "starvideos." .. name)
    end
    local methods = defined("lua/starvideos/client.lua", "^function Client:([%w_]+)")
    assert.is_true(#methods >= 12)
    for _, name in ipairs(methods) do
      assert.matches('<a href="classes/starvideos.client.html#Client:' .. name .. '"><code>Client:' .. name .. "%(",
        summary, nil, nil, "client:" .. name)
    end
    -- each with its comment's first sentence
    assert.matches("<code>Client:create(params)</code></a></td><td>Create a task.</td>", summary, 1, true)
  end)

  it("has a table of every error kind of the README's list", function()
    local readme = helper.read_file(root .. "/README.md")
    local list = readme:match("Errors are tables: `err%.kind` is one of (.-);")
    assert.is_string(list, "the README's list of kinds moved")
    local kinds = {}
    for kind in list:gmatch("`([%w_]+)`") do kinds[#kinds + 1] = kind end
    assert.are.equal(10, #kinds)
    local table_html = index:match('<table class="summary" id="error%-kinds">(.-)</table>')
    assert.is_string(table_html, "no table of error kinds in the index")
    local rows = 0
    for _ in table_html:gmatch("<tr>") do rows = rows + 1 end
    assert.are.equal(#kinds, rows)
    for _, kind in ipairs(kinds) do
      assert.matches("<tr><td><code>" .. kind .. "</code></td><td>[^<]", table_html, nil, nil, kind)
    end
  end)

  it("keeps code from overflowing sideways, on every page", function()
    for _, page in ipairs { "index.html", "modules/starvideos.html", "classes/starvideos.client.html" } do
      local html = helper.read_file(root .. "/build/docs/" .. page) or ""
      local style = html:match("<style>(.-)</style>")
      assert.is_string(style, page)
      local pre = style:match("\npre {([^}]*)}")
      assert.is_string(pre, page)
      assert.matches("overflow%-x: auto;", pre)
      assert.matches("white%-space: pre%-wrap;", pre)
      -- after LDoc's own stylesheet, so that it wins
      assert.is_true(html:find("ldoc.css", 1, true) < html:find("<style>", 1, true), page)
    end
  end)
end)
