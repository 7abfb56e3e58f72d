-- docs/matrix.md, the promises (spec/support/promises.lua) against the places (spec/support/matrix.lua), written
-- from the records a run of the tiers left (tools/test-all.sh: build/matrix/):
--
--   lua5.4 tools/matrix.lua write [DIR]   the page from DIR's records (default build/matrix), into docs/matrix.md
--   lua5.4 tools/matrix.lua check [DIR]   the same page compared with docs/matrix.md; each cell that no case
--                                         proved (and no reason or open note accounts for), each open cell a case
--                                         now proves and each difference is named; exit 1 on any
--   lua5.4 tools/matrix.lua empty [DIR]   the cells no case proved nor any declaration accounts for
--
-- A cell is proved by the case docs/matrix.md names for it, while that case still proves it in this run; else by
-- the first of its passing cases (by file, then name).  So a run writes the same page as the last one while the
-- cases the page names pass, whichever other cases a machine's run adds (a VM part skips what only 5.4 runs, a
-- partial run records less).  A VM's cell: the promise's cases that ran under that VM.
package.path = "./?.lua;" .. package.path
local cjson = require "cjson.safe"
local matrix = require "spec.support.matrix"
local promises = require "spec.support.promises"

local PAGE = os.getenv("STARVIDEOS_MATRIX_PAGE") or "docs/matrix.md" -- (another page: the spec's)

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- promise -> place -> the sorted list of "file: case" that proved it
local function load(dir)
  local proved = {}
  local ls = io.popen("ls " .. "'" .. dir:gsub("'", "'\\''") .. "'" .. "/*.jsonl 2>/dev/null")
  for path in ls:lines() do
    for line in io.lines(path) do
      local r = cjson.decode(line)
      if r and r.promise and r.place then
        proved[r.promise] = proved[r.promise] or {}
        for _, place in ipairs { r.place, r.vm } do
          local cell = proved[r.promise][place] or {}
          proved[r.promise][place] = cell
          cell["`" .. r.file .. "`: " .. r.case] = true
        end
      end
    end
  end
  ls:close()
  for _, by_place in pairs(proved) do
    for place, set in pairs(by_place) do
      local list = {}
      for k in pairs(set) do list[#list + 1] = k end
      table.sort(list)
      by_place[place] = list
    end
  end
  return proved
end

local function places() return matrix.ORDER end

-- The case the page names for each proved cell: named[promise][place]
local function named(text)
  local out, id = {}, nil
  for line in (text or ""):gmatch("[^\n]+") do
    local head = line:match("^### (%S+)$")
    if head then
      id = head
      out[id] = {}
    elseif id then
      local place, words = line:match("^%- ([^:]+): (.+)$")
      if place then out[id][place] = words end
    end
  end
  return out
end

local function pick(cases, want)
  for _, c in ipairs(cases) do
    if c == want then return c end
  end
  return cases[1]
end

-- Each cell's state: "proved" (with its case), "na" (with its reason), "open" (with what is missing), or "empty";
-- and the problems a check names.
local function cells(proved, was)
  was = was or {}
  local out, problems = {}, {}
  for _, p in ipairs(promises.list) do
    out[p.id] = {}
    for _, place in ipairs(places()) do
      local cases = proved[p.id] and proved[p.id][place]
      local na, open = p.na[place], p.open[place]
      local cell
      if na then
        cell = { state = "na", text = na }
        if na == "" then problems[#problems + 1] = p.id .. " × " .. place .. ": a \"—\" without a reason" end
        if cases then
          problems[#problems + 1] = p.id .. " × " .. place .. ": said not to apply, yet proved by " .. cases[1]
        end
      elseif cases then
        cell = { state = "proved", text = pick(cases, was[p.id] and was[p.id][place]) }
        if open then problems[#problems + 1] = p.id .. " × " .. place .. ": open, yet proved by " .. cases[1] end
      elseif open then
        cell = { state = "open", text = open }
      else
        cell = { state = "empty" }
        problems[#problems + 1] = p.id .. " × " .. place .. ": no case proved it"
      end
      out[p.id][place] = cell
    end
  end
  return out, problems
end

local MARK = { proved = "✓", na = "—", open = "open", empty = " " }

local function page(proved, was)
  local all, problems = cells(proved, was)
  local t, count = {}, { proved = 0, na = 0, open = 0, empty = 0 }
  local function add(s) t[#t + 1] = s end
  add("# Every promise in every place")
  add("")
  add("Written by `tools/matrix.lua` from the last full run of the tiers (`make test-all`, which keeps its records "
    .. "in `build/matrix/`; `make matrix` writes this page from them), and compared with it by that run: do not "
    .. "edit it by hand. The promises and the reasons a promise cannot apply in a place are "
    .. "`spec/support/promises.lua`'s; the places `spec/support/matrix.lua`'s.")
  add("")
  add("A cell is ✓ where a case of the tiers proved the promise there (named below), — where the promise "
    .. "cannot apply there (the reason below), open where no case proves it yet (what is missing below).")
  add("")
  add("## The places")
  add("")
  add("| axis | place | what |")
  add("|---|---|---|")
  for _, axis in ipairs(matrix.AXES) do
    for _, place in ipairs(axis.places) do
      add("| " .. axis.id .. " | " .. place .. " | " .. matrix.PLACES[place] .. " |")
    end
  end
  add("")
  add("## The matrix")
  add("")
  local head, rule = { "| promise" }, { "|---" }
  for _, place in ipairs(places()) do head[#head + 1] = place; rule[#rule + 1] = ":-:" end
  add(table.concat(head, " | ") .. " |")
  add(table.concat(rule, "|") .. "|")
  local reasons, number = {}, {} -- (each reason a "—" gives, numbered in its first cell's order: "— 3")
  for _, p in ipairs(promises.list) do
    local row = { "| [" .. p.id .. "](#" .. p.id .. ")" }
    for _, place in ipairs(places()) do
      local cell = all[p.id][place]
      count[cell.state] = count[cell.state] + 1
      if cell.state == "na" and not number[cell.text] then
        reasons[#reasons + 1] = cell.text
        number[cell.text] = #reasons
      end
      row[#row + 1] = MARK[cell.state] .. (cell.state == "na" and " " .. number[cell.text] or "")
    end
    add(table.concat(row, " | ") .. " |")
  end
  add("")
  add("Why a cell is — (its number):")
  add("")
  for i, why in ipairs(reasons) do add(i .. ". " .. why) end
  add("")
  add(string.format("%d promises × %d places: %d cells, %d proved, %d that cannot apply, %d open, %d empty.",
    #promises.list, #places(), #promises.list * #places(), count.proved, count.na, count.open, count.empty))
  for _, p in ipairs(promises.list) do
    add("")
    add("### " .. p.id)
    add("")
    add(p.title .. " ([" .. p.doc .. "](" .. p.doc:gsub("^docs/", "") .. ")).")
    add("")
    for _, place in ipairs(places()) do
      local cell = all[p.id][place]
      local words = cell.state == "proved" and cell.text
        or cell.state == "na" and "— " .. cell.text or cell.state == "open" and "open: " .. cell.text or "empty"
      add("- " .. place .. ": " .. words)
    end
  end
  return table.concat(t, "\n") .. "\n", problems
end

local verb, dir = arg[1], arg[2] or "build/matrix"
if verb ~= "write" and verb ~= "check" and verb ~= "empty" then
  io.stderr:write("usage: tools/matrix.lua write|check|empty [DIR]\n")
  os.exit(2)
end
if verb == "empty" then -- the cells no case proved, by promise, as promises.lua's open tables would list them
  local all = cells(load(dir))
  for _, p in ipairs(promises.list) do
    local t = {}
    for _, place in ipairs(places()) do
      if all[p.id][place].state == "empty" then t[#t + 1] = string.format("[%q] = OPEN", place) end
    end
    if #t > 0 then print(p.id .. ": " .. table.concat(t, ", ")) end
  end
  os.exit(0)
end
local old = read(PAGE)
local text, problems = page(load(dir), named(old))
if verb == "write" then
  local f = assert(io.open(PAGE, "wb"))
  f:write(text)
  f:close()
  print("matrix: " .. PAGE .. " written from " .. dir .. (#problems > 0 and (", " .. #problems .. " problems:") or ""))
  for _, p in ipairs(problems) do print("  " .. p) end
  os.exit(0)
end
if old ~= text then
  local path = dir .. "/matrix.md"
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  problems[#problems + 1] = PAGE .. " is not the page this run writes (" .. path .. "; `make matrix` writes it)"
end
for _, p in ipairs(problems) do print("matrix: " .. p) end
print(#problems == 0 and "1 passed, 0 failed" or "0 passed, 1 failed")
os.exit(#problems == 0 and 0 or 1)
