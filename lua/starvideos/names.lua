-- A task's file name (docs/batch.md): its id as one file name, the same in every process and on every run: what
-- batch, keep and the command line's out folder save a task's video as (ID.mp4).  "~" is escaped in every name within
-- NAME_MAX, so a long name's hashed form never meets a short one.

local jit = rawget(_G, "jit") if jit then jit.off(true, true) end -- interpreted under LuaJIT: docs/architecture.md
local core = require "starvideos.core"

local string_format = string.format

local M = {}

local NAME_MAX = 255 - #".mp4.part"
local NAME_CUT = NAME_MAX - 17

local function escape(c) return string_format("%%%02X", c:byte()) end

function M.file_name(id)
  if type(id) ~= "string" or id == "" then
    error("file_name: expected a task id (a non-empty string), got " .. (id == "" and '""' or type(id)), 2)
  end
  local name = id:gsub("[^A-Za-z0-9_.%-]", escape):gsub("^%.", escape)
  if #name <= NAME_MAX then return name end
  local cut = name:sub(1, NAME_CUT)
  local pct = cut:find("%%[^%%]?$") -- a %XX the cut would split
  if pct then cut = cut:sub(1, pct - 1) end
  return cut .. "~" .. core.hash(id)
end

return M
