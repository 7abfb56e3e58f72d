-- The parts of a markdown page the docs' specs read (spec/docs_spec.lua,
-- spec/types_spec.lua): its prose without fenced blocks, the part under a
-- heading, its tables' first cells and rows.

local M = {}

local function plain(s) return (s:gsub("%p", "%%%0")) end
M.plain = plain

-- The markdown text without its fenced code blocks (their lines kept blank,
-- so that nothing in a block counts as a heading or a link).
function M.prose(text)
  local out, fenced = {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match("^%s*```") then
      fenced = not fenced
      out[#out + 1] = ""
    else
      out[#out + 1] = fenced and "" or line
    end
  end
  return table.concat(out, "\n")
end

-- The part of a markdown text under the heading line `heading`, up to the next
-- heading of its level or above; nil when there is no such heading.
function M.section(text, heading)
  local level = #heading:match("^#+")
  local start = ("\n" .. text .. "\n"):find("\n" .. heading .. "\n", 1, true)
  if not start then return nil end
  local body = text:sub(start + #heading + 1)
  for pos, hashes in M.prose(body):gmatch("()\n(#+) ") do
    if #hashes <= level then return body:sub(1, pos) end
  end
  return body
end

-- The first cell of each row of the markdown tables of a text.
function M.first_cells(text)
  local cells = {}
  for line in text:gmatch("[^\n]+") do
    local cell = line:match("^|%s*(.-)%s*|")
    if cell and not cell:match("^%-+$") then cells[#cells + 1] = cell end
  end
  return cells
end

-- The row of a table whose first cell is `name` (backticked), as a list of cells.
function M.row(text, name)
  for line in text:gmatch("[^\n]+") do
    if line:find("^|%s*`" .. plain(name) .. "`%s*|") then
      local cells = {}
      for cell in line:sub(2):gmatch("%s*(.-)%s*|") do cells[#cells + 1] = cell end
      return cells
    end
  end
end

return M
