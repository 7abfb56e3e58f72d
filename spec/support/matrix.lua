-- The matrix of promises and places (docs/matrix.md): the places a promise can be held in, named once, and the
-- record a passing case leaves of the cells it proves.  The promises, and why one cannot apply in a place, are
-- spec/support/promises.lua's; tools/matrix.lua writes the page from the records of a run of the tiers
-- (tools/test-all.sh gives them a folder, $STARVIDEOS_MATRIX) and checks it against docs/matrix.md.
--
-- A case proves a cell in one of two ways:
--   a case list's case names its promise (case.promise: an id or a list), and case_list.each is told the place
--   it runs on;
--   a case of a spec file of its own is claimed by a promise (spec/support/promises.lua: its cases, each a file,
--   the start of the case's name and the places it runs in), recorded by the busted helper of .busted
--   (spec/support/matrix_hook.lua) when it passed.
-- A case's places are where it ran on each axis (a journal, a file, a Lua script): it proves its promises in each.
-- The record is written once the case's body returned: a failed or pending case records nothing.  A case that
-- runs under every VM (the fast tier) proves its promise on each VM it ran on as well.
local cjson = require "cjson.safe"

local M = {}
local RECORDS -- this process' file of records (its name made once)

-- The places, by axis: what varies where a promise is held.
M.AXES = {
  { id = "ledger", title = "where a count, a limit and the ledger live",
    places = { "process", "journal", "dict", "redis" } },
  { id = "sink", title = "where a video goes", places = { "file", "bucket" } },
  { id = "caller", title = "how a user calls", places = { "lua", "cli", "nginx", "job", "studio" } },
  { id = "vm", title = "the Lua VM", places = { "lua5.1", "lua5.2", "lua5.3", "lua5.4", "lua5.5", "luajit" } },
}

M.PLACES = {
  process = "the process alone: no journal, no store",
  journal = "a journal file (`journal = PATH`), shared by the processes that name it",
  dict = "nginx's `lua_shared_dict`, shared by its workers",
  redis = "a Redis store (`store = URL`): a server, Sentinel or Cluster",
  file = "a file on a local disk",
  bucket = "an S3 bucket (`s3://`, the s3 rock)",
  lua = "a Lua script calling the library",
  cli = "the command line, `bin/starvideos`",
  nginx = "a handler inside nginx (OpenResty), on nginx's sockets",
  job = "a job stepped in a frame loop (`client:start`, `job:step`)",
  studio = "the studio: a page in a browser over the command line's server",
  ["lua5.1"] = "Lua 5.1", ["lua5.2"] = "Lua 5.2", ["lua5.3"] = "Lua 5.3", ["lua5.4"] = "Lua 5.4",
  ["lua5.5"] = "Lua 5.5 (built from the vendored sources, build/vm5.5)",
  luajit = "LuaJIT (OpenResty's)",
}

-- every place, axis by axis (the page's columns)
M.ORDER = {}
for _, axis in ipairs(M.AXES) do
  for _, place in ipairs(axis.places) do M.ORDER[#M.ORDER + 1] = place end
end

-- The spec file running now: run-specs.sh's (the tiers), else the first *_spec.lua on the stack or on busted's
-- command line, else "?".
local function spec_file()
  local f = os.getenv("STARVIDEOS_SPEC_FILE")
  if f and f ~= "" then return f end
  for level = 2, 40 do
    local info = debug.getinfo(level, "S")
    if not info then break end
    local path = info.source:match("^@(.*_spec%.lua)$")
    if path then return (path:gsub("^%./", "")) end
  end
  for _, a in ipairs(rawget(_G, "arg") or {}) do -- (busted's command line: the file it was given)
    if type(a) == "string" and a:match("_spec%.lua$") then return (a:gsub("^%./", "")) end
  end
  return "?"
end

-- The cells a case named name proved: each of promises (an id or a list) at each of places (a place or a list: the
-- case's place on each axis it ran on, e.g. { "journal", "file", "lua" }; the VM's is added), written to
-- $STARVIDEOS_MATRIX's folder (a file a process: appends of whole lines), as a case of file (else the spec file
-- running).  An unknown promise or place: an error.
function M.record(promises, places, name, file)
  local known = require "spec.support.promises"
  if type(promises) ~= "table" then promises = { promises } end
  if type(places) ~= "table" then places = { places } end
  for _, p in ipairs(promises) do assert(known.by_id[p], "matrix: no promise " .. tostring(p)) end
  for _, place in ipairs(places) do assert(M.PLACES[place], "matrix: no place " .. tostring(place)) end
  local dir = os.getenv("STARVIDEOS_MATRIX")
  if not dir or dir == "" then return end
  local vm = require("spec.helper").vm
  RECORDS = RECORDS or vm .. "-" .. require("starvideos.core").random_id() .. ".jsonl"
  local f = assert(io.open(dir .. "/" .. RECORDS, "a"))
  for _, p in ipairs(promises) do
    for _, place in ipairs(places) do
      f:write(cjson.encode { promise = p, place = place, vm = vm, file = file or spec_file(), case = name }, "\n")
    end
  end
  f:close()
end

-- What a passing case named name of a spec file (file, else the one running) proves by promises.lua's claims (each
-- promise's cases: a file, the start of a case's name, its places): record for each claim it meets.
-- spec/support/matrix_hook.lua, the busted helper of .busted, calls it at the end of every passing case.
function M.claimed(name, file)
  local known = require "spec.support.promises"
  file = file or spec_file()
  for _, claim in ipairs(known.claims[file] or {}) do
    if name:sub(1, #claim.name) == claim.name then M.record(claim.promise, claim.places, name, file) end
  end
end

return M
