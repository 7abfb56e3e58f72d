-- docs/matrix.md against what it is written from: every promise (spec/support/promises.lua) a row, every place
-- (spec/support/matrix.lua) a column, every cell a case, or a "—" with its reason, or open with what is missing.
-- The full run of the tiers (tools/test-all.sh) checks the cells its cases proved against the page
-- (tools/matrix.lua check); this checks, in the fast tier, what needs no run: the page's rows, columns and marks
-- for the cells the declarations decide.
local helper = require "spec.helper"
local matrix = require "spec.support.matrix"
local promises = require "spec.support.promises"

local function places() return matrix.ORDER end

-- the page's table: { header = {places}, rows = { {id =, marks = {place -> mark}} } }
local function table_of(text)
  local body = assert(text:match("\n## The matrix\n\n(.-)\n\n"), "no table under ## The matrix")
  local lines = {}
  for line in body:gmatch("[^\n]+") do lines[#lines + 1] = line end
  local function cells(line)
    local out = {}
    for cell in line:gmatch("|([^|]*)") do out[#out + 1] = cell:match("^%s*(.-)%s*$") end
    out[#out] = nil -- (after the last |)
    return out
  end
  local header = cells(lines[1])
  table.remove(header, 1)
  local rows = {}
  for i = 3, #lines do
    local c = cells(lines[i])
    local row = { id = c[1]:match("^%[([%w_]+)%]"), marks = {} }
    for j, place in ipairs(header) do row.marks[place] = c[j + 1] end
    rows[#rows + 1] = row
  end
  return { header = header, rows = rows }
end

describe("docs/matrix.md", function()
  local text = assert(helper.read_file(helper.root .. "/docs/matrix.md"), "docs/matrix.md is missing: make matrix")

  it("declares each promise once, each of its reasons and open notes of a known place, none both", function()
    local seen = {}
    for _, p in ipairs(promises.list) do
      assert.is_nil(seen[p.id], p.id .. " twice")
      seen[p.id] = true
      assert.truthy(p.title ~= "" and p.doc:match("^docs/"), p.id .. ": a title and a docs page")
      for _, kind in ipairs { "na", "open" } do
        for place, why in pairs(p[kind]) do
          assert.truthy(matrix.PLACES[place], p.id .. "." .. kind .. ": no place " .. tostring(place))
          assert.truthy(type(why) == "string" and #why >= 10, p.id .. " × " .. place .. ": a reason of some words")
        end
      end
      for place in pairs(p.na) do assert.is_nil(p.open[place], p.id .. " × " .. place .. ": both — and open") end
    end
  end)

  it("has a row for every promise and a column for every place, in their order", function()
    local t = table_of(text)
    assert.same(places(), t.header)
    local ids = {}
    for i, row in ipairs(t.rows) do ids[i] = row.id end
    local want = {}
    for i, p in ipairs(promises.list) do want[i] = p.id end
    assert.same(want, ids)
  end)

  it("marks each cell as its declarations say: — and the number of its reason where one is given, open where a "
    .. "note is, else ✓; no cell empty", function()
    local t = table_of(text)
    local why = {}
    for n, reason in text:match("\nWhy a cell is — %(its number%):\n\n(.-)\n\n"):gmatch("(%d+)%. ([^\n]+)") do
      why[tonumber(n)] = reason
    end
    for i, p in ipairs(promises.list) do
      for _, place in ipairs(places()) do
        local mark, where = t.rows[i].marks[place], p.id .. " × " .. place .. " (make test-all, then make matrix)"
        if p.na[place] then
          assert.equal(p.na[place], why[tonumber(mark:match("^— (%d+)$"))], where)
        else
          assert.equal(p.open[place] and "open" or "✓", mark, where)
        end
      end
    end
  end)

  it("gives each — its reason and each ✓ its case, in the promise's section", function()
    for _, p in ipairs(promises.list) do
      local section = assert(text:match("\n### " .. p.id .. "\n(.-)\n###") or text:match("\n### " .. p.id .. "\n(.*)$"),
        "no section for " .. p.id)
      for _, place in ipairs(places()) do
        local line = assert(section:match("\n%- " .. place:gsub("%p", "%%%0") .. ": ([^\n]*)"),
          p.id .. ": no line for " .. place)
        if p.na[place] then
          assert.equal("— " .. p.na[place], line)
        elseif p.open[place] then
          assert.equal("open: " .. p.open[place], line)
        else
          assert.matches("^`[^`]+_spec%.lua`: .", line)
        end
      end
    end
  end)

  -- (a run whose records hold more cases than the page names, or cases in another order, writes the same page)
  it("is checked against a run by the cases it names: other passing cases change no cell, a named case gone does",
    function()
    local dir, q = helper.tmpdir(), helper.shell_quote
    local lines = {}
    local id
    for line in text:gmatch("[^\n]+") do
      id = line:match("^### ([%w_]+)$") or id
      local place, file, case = line:match("^%- ([^:]+): `([^`]+)`: (.+)$")
      if id and place then
        for _, f in ipairs { file, "spec/aaa_first_spec.lua" } do -- (the other case sorts before the page's)
          lines[#lines + 1] = string.format('{"promise":%q,"place":%q,"file":%q,"case":%q}', id, place, f, case)
        end
      end
    end
    assert.truthy(#lines > 100, "the page's cases read")
    local page = dir .. "/matrix.md"
    helper.write_file(page, text)
    local function check(records)
      helper.write_file(dir .. "/records/all.jsonl", table.concat(records, "\n") .. "\n")
      return helper.capture("cd " .. q(helper.root) .. " && STARVIDEOS_MATRIX_PAGE=" .. q(page)
        .. " lua5.4 tools/matrix.lua check " .. q(dir .. "/records") .. " 2>&1")
    end
    assert(helper.execute("mkdir -p " .. q(dir .. "/records")))
    local out, ok = check(lines)
    assert.truthy(ok, out)
    assert.matches("1 passed, 0 failed", out, 1, true)
    table.remove(lines, 1) -- (the page's first named case: now only the other proves its cell)
    out, ok = check(lines)
    assert.is_nil(ok, out)
    assert.matches("is not the page this run writes", out, 1, true)
  end)

  -- (tools/test-all.sh runs these files in Lua 5.4's part alone)
  it("runs once only files that prove no promise: none claimed by a promise, none a VM's case on the page", function()
    local vms = {}
    for _, axis in ipairs(matrix.AXES) do
      if axis.id == "vm" then for _, place in ipairs(axis.places) do vms[place] = true end end
    end
    local on_page = {}
    for place, file in text:gmatch("\n%- ([%w.]+): `([^`]+)`") do
      if vms[place] then on_page[file] = true end
    end
    for file in pairs(require "spec.support.vm_once") do
      assert(helper.exists(helper.root .. "/" .. file), "spec/support/vm_once.lua: no file " .. file)
      assert.is_nil(file:find("/hosts/", 1, true), file .. " is the hosts tier's, run once already")
      assert.is_nil(promises.claims[file], file .. " is claimed by a promise: it runs under every VM")
      assert.is_nil(on_page[file], file .. " proves a VM's cell on docs/matrix.md: it runs under every VM")
    end
  end)
end)
