-- The documentation kept true by the code (fast tier, no network): every
-- option of starvideos.new and every default (config.lua's CLIENT and
-- DEFAULTS) in docs/reference.md, the options in README.md's table; every
-- function of the module and every method of a client, read from the loaded
-- tables, in README.md's API table and with a section of its own in
-- docs/reference.md; README.md at most 250 lines; every relative link of
-- README.md, CHANGELOG.md and docs/*.md to a file of the repository, and every
-- #anchor to a heading of that file (GitHub's slugs); one version in
-- config.lua, the release rockspec and the CHANGELOG.  The lines the docs
-- tell a user to run are run, or checked, in the hosts tier: every fenced block
-- in a fresh clone (spec/hosts/docs_run_spec.lua).

local helper = require "spec.helper"
local starvideos = require "starvideos"
local config = require "starvideos.config"

local root = helper.root

local function read(path)
  return assert(helper.read_file(root .. "/" .. path), "cannot read " .. path)
end

local markdown = require "spec.support.markdown"
local plain, prose, section, first_cells, row = markdown.plain, markdown.prose, markdown.section,
  markdown.first_cells, markdown.row

local function sorted_keys(t)
  local list = {}
  for k in pairs(t) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- The names of the module's fields and of a client's methods, from the loaded
-- tables: every key of require "starvideos", and every function of a
-- client's metatable but metamethods and the constructor (starvideos.new).
local MODULE = sorted_keys(starvideos)
local METHODS = {}
do
  local client = starvideos.new { api_key = "k-docs", base_url = "http://127.0.0.1:9" }
  local mt = getmetatable(client)
  for k, v in pairs(mt) do
    if type(v) == "function" and not k:find("^__") and not rawequal(v, starvideos.new) then
      METHODS[#METHODS + 1] = k
    end
  end
  table.sort(METHODS)
  client:close()
end

local README = read("README.md")
local REFERENCE = read("docs/reference.md")

describe("the loaded tables the docs are checked against", function()
  it("are not empty", function()
    assert.is_true(#MODULE >= 10)
    assert.is_true(#METHODS >= 13)
    assert.is_true(#sorted_keys(config.CLIENT) >= 20)
  end)
end)

describe("every option of starvideos.new", function()
  -- every option has a row in the table under `heading` of the page, its
  -- default in the second cell where config.lua's is a number
  local function rows(page, text, heading)
    local sec = assert(section(text, heading), page .. " has no " .. heading)
    for _, name in ipairs(sorted_keys(config.CLIENT)) do
      local cells = row(sec, name)
      assert.is_table(cells, page .. "'s table under " .. heading .. " has no row for the option " .. name)
      local default = config.DEFAULTS[name]
      if type(default) == "number" then
        assert.truthy(cells[2]:find("`" .. default .. "`", 1, true),
          page .. " gives " .. name .. " the default " .. cells[2] .. ", config.lua " .. default)
      end
    end
  end

  it("has a row in docs/reference.md's table, with its default where it is a number", function()
    rows("docs/reference.md", REFERENCE, "## starvideos.new")
  end)

  it("has a row in README.md's options table, with its default where it is a number", function()
    rows("README.md", README, "## Options of `starvideos.new`")
  end)
end)

describe("every default of config.lua", function()
  it("is named in docs/reference.md: an option's row, or a row of ## Defaults with its value", function()
    local defaults = assert(section(REFERENCE, "## Defaults"), "docs/reference.md has no ## Defaults")
    for _, key in ipairs(sorted_keys(config.DEFAULTS)) do
      assert.truthy(REFERENCE:find("`" .. key .. "`", 1, true), "docs/reference.md never names the default " .. key)
      if not config.CLIENT[key] then
        local cells = row(defaults, key)
        assert.is_table(cells, "docs/reference.md's ## Defaults has no row for " .. key)
        assert.equal("`" .. tostring(config.DEFAULTS[key]) .. "`", cells[2], key)
      end
    end
  end)
end)

describe("every function of the module and every method of a client", function()
  -- the names the README's API table gives, by kind: starvideos.X (and the
  -- `.Y` after it in a row), client:X
  local function readme_names()
    local sec = assert(section(README, "## The API"), "README.md has no ## The API")
    local module, methods = {}, {}
    for _, cell in ipairs(first_cells(sec)) do
      if cell:find("^`starvideos%.") then
        for name in cell:gsub("`starvideos%.", "`."):gmatch("`%.([%w_]+)") do module[name] = true end
      end
      for name in cell:gmatch("client:([%w_]+)") do methods[name] = true end
    end
    return module, methods
  end

  it("is in README.md's API table", function()
    local module, methods = readme_names()
    for _, name in ipairs(MODULE) do
      assert.is_true(module[name] or false, "README.md's API table has no starvideos." .. name)
    end
    for _, name in ipairs(METHODS) do
      assert.is_true(methods[name] or false, "README.md's API table has no client:" .. name)
    end
  end)

  it("has a section of its own in docs/reference.md", function()
    for _, name in ipairs(MODULE) do
      assert.truthy(section(REFERENCE, "## starvideos." .. name), "docs/reference.md has no ## starvideos." .. name)
    end
    for _, name in ipairs(METHODS) do
      assert.truthy(section(REFERENCE, "## client:" .. name), "docs/reference.md has no ## client:" .. name)
    end
  end)

  it("and the job's cancel, in both", function()
    assert.truthy(README:find("job:cancel()", 1, true), "README.md does not name job:cancel()")
    assert.truthy(section(REFERENCE, "## Jobs"):find("`job:cancel()`", 1, true), "docs/reference.md's ## Jobs")
  end)
end)

describe("docs/reference.md's Warnings table", function()
  it("has a row for each field a model ignores (starvideos.models[m].ignored), and no other", function()
    local sec = assert(section(REFERENCE, "## Warnings"))
    local want, got = {}, {}
    for name, m in pairs(starvideos.models) do
      for i = 1, math.huge do
        local ig = m.ignored[i]
        if not ig then break end
        want[#want + 1] = name .. " " .. ig.field .. " " .. ig.when
      end
    end
    for line in sec:gmatch("[^\n]+") do
      local models, field, when = line:match("^| ([^|]-) | `([%w_]+)` | `([%w_]+)` |")
      for name in (models or ""):gmatch("`([%w_]+)`") do got[#got + 1] = name .. " " .. field .. " " .. when end
    end
    table.sort(want)
    table.sort(got)
    assert.is_true(#want >= 10)
    assert.same(want, got)
  end)
end)

describe("README.md", function()
  it("has at most 250 lines", function()
    local n = select(2, README:gsub("\n", "\n"))
    assert.is_true(n <= 250, "README.md has " .. n .. " lines")
  end)

  it("lists every error kind in its table, as docs/reference.md does", function()
    local kinds = require("starvideos.core").kinds -- (every kind the library makes, in the core's order)
    assert.truthy(#kinds >= 12, #kinds .. " kinds")
    for _, text in ipairs { README, REFERENCE } do
      local sec = assert(section(text, "## Errors"))
      for _, kind in ipairs(kinds) do
        assert.truthy(row(sec, kind), "no row for the error kind " .. kind)
      end
      for _, field in ipairs { "message", "field", "status", "retry_after", "maybe_created", "created", "transient" } do
        assert.truthy(row(sec, field), "no row for the error field " .. field)
      end
    end
  end)
end)

-- ------------------------------------------------------------ links

-- GitHub's anchor of a heading's text: lower case, punctuation and symbols
-- dropped (but - and _), each space a -.  Letters beyond ASCII stay (Latin-1's
-- capitals lowered); other non-ASCII characters (dashes, arrows) are dropped.
local function slug(text)
  text = text:gsub("%[(.-)%]%b()", "%1")
  local out = {}
  for ch in text:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    local b1, b2 = ch:byte(1, 2)
    if #ch == 1 then
      if ch:match("[%w_%-]") then out[#out + 1] = ch:lower()
      elseif ch == " " then out[#out + 1] = "-" end
    elseif b1 == 0xC3 then -- U+00C0..U+00FF: letters but × and ÷
      if b2 ~= 0x97 and b2 ~= 0xB7 then
        out[#out + 1] = (b2 >= 0x80 and b2 <= 0x9E) and string.char(0xC3, b2 + 0x20) or ch
      end
    elseif b1 >= 0xC4 and b1 <= 0xDF then
      out[#out + 1] = ch -- other letters of the two-byte range
    end
  end
  return table.concat(out)
end

-- The anchors of a markdown file: its headings' slugs, a repeated one with -1, -2, ...
local function anchors(text)
  local set, seen = {}, {}
  for line in prose(text):gmatch("[^\n]+") do
    local heading = line:match("^#+%s+(.-)%s*#*%s*$")
    if heading then
      local s = slug(heading)
      local n = seen[s]
      seen[s] = (n or -1) + 1
      set[n and (s .. "-" .. (n + 1)) or s] = true
    end
  end
  return set
end

-- The markdown files whose links are checked.
local function documents()
  local files = { "README.md", "CHANGELOG.md" }
  local p = io.popen("cd " .. helper.shell_quote(root) .. " && ls docs/*.md")
  for f in p:lines() do files[#files + 1] = f end
  p:close()
  return files
end

-- path, resolved from the folder `dir` of the repository; nil when it climbs out.
local function resolve(dir, path)
  local parts = {}
  for seg in ((dir ~= "" and dir .. "/" or "") .. path):gmatch("[^/]+") do
    if seg == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif seg ~= "." then
      parts[#parts + 1] = seg
    end
  end
  return table.concat(parts, "/")
end

describe("the links of README.md, CHANGELOG.md and docs/*.md", function()
  local files = documents()

  it("are checked in every page", function()
    assert.is_true(#files >= 14, "docs/ has " .. (#files - 2) .. " pages")
    for _, page in ipairs { "install", "openresty", "game-engines", "batch", "keep-and-fleet", "webhooks",
      "logs-and-proxies", "polling", "cli", "emulator", "architecture", "reference", "api" } do
      assert.truthy(helper.read_file(root .. "/docs/" .. page .. ".md"), "no docs/" .. page .. ".md")
    end
  end)

  it("resolve to files of the repository, and their #anchors to headings of those files", function()
    local checked, cache = 0, {}
    local function anchors_of(path)
      if not cache[path] then cache[path] = anchors(read(path)) end
      return cache[path]
    end
    for _, file in ipairs(files) do
      local dir = file:match("^(.*)/[^/]*$") or ""
      -- inline code spans hold no links
      local text = prose(read(file)):gsub("``.-``", ""):gsub("`[^`\n]*`", "")
      for target in text:gmatch("%]%(([^)%s]+)%)") do
        if not target:match("^%a[%w+.-]*:") then -- not https:, mailto:, ...
          local path, frag = target:match("^([^#]*)#?(.*)$")
          local resolved = path == "" and file or resolve(dir, path)
          assert.truthy(resolved, file .. " links outside the repository: " .. target)
          assert.is_true(helper.exists(root .. "/" .. resolved), file .. " links to a missing file: " .. target)
          if frag ~= "" then
            assert.truthy(resolved:match("%.md$"), file .. ": an anchor into a file that is not markdown: " .. target)
            assert.is_true(anchors_of(resolved)[frag] or false, file .. " links to a missing heading: " .. target)
          end
          checked = checked + 1
        end
      end
    end
    assert.is_true(checked >= 50, "only " .. checked .. " links")
  end)

  it("are found by GitHub's slug rules as this spec has them", function()
    assert.equal("starvideosnew", slug("starvideos.new"))
    assert.equal("clientwait_all", slug("client:wait_all"))
    assert.equal("options-of-starvideosnew", slug("Options of `starvideos.new`"))
    assert.equal("löve", slug("LÖVE"))
    assert.equal("keep-from-init_worker_by_lua", slug("Keep from init_worker_by_lua"))
    local set = anchors("# A\n\n## A\n\n```\n## B\n```\n")
    assert.is_true(set["a"] and set["a-1"])
    assert.is_nil(set["b"])
  end)
end)

-- ------------------------------------------------------------ the version

describe("the version", function()
  local v = config.VERSION

  it("is one: config.lua, starvideos._VERSION, the release rockspec and the CHANGELOG's newest entry", function()
    assert.matches("^%d+%.%d+%.%d+$", v)
    assert.equal("starvideos " .. v, starvideos._VERSION)
    local releases = {}
    local p = io.popen("cd " .. helper.shell_quote(root) .. " && ls rockspec/starvideos-*.rockspec")
    for f in p:lines() do
      if not f:find("-scm-", 1, true) then releases[#releases + 1] = f end
    end
    p:close()
    assert.same({ "rockspec/starvideos-" .. v .. "-1.rockspec" }, releases)
    assert.matches('\nversion = "' .. plain(v) .. '%-1"\n', read(releases[1]))
    local newest = prose(read("CHANGELOG.md")):match("\n## (%d+%.%d+%.%d+)")
    assert.equal(v, newest, "CHANGELOG.md's newest entry")
    assert.truthy(README:find("starvideos " .. v, 1, true), "README.md names another version")
  end)
end)
