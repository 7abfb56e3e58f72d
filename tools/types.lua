-- Writes types/starvideos.lua, the LuaCATS (---@meta) annotations of the public
-- API, from the tables the library runs on and docs/reference.md is checked
-- against (spec/docs_spec.lua): the options of starvideos.new and of each call
-- (config.lua's CLIENT and CALLS, their defaults from DEFAULTS), the option
-- tables' fields (config.LIMIT, the s3 rock's storage OPTION, store_url.FIELDS), the module's
-- keys and a client's methods (the loaded tables), a request's fields, the
-- models and their ratios and resolutions, the error kinds (the core's), the
-- states of a ledger's tasks (config.STATES); with the hand-kept part
-- (tools/types/*.lua) for what no table holds: each option's type and line, the
-- signatures, the shapes of what the calls return.  A name of those tables
-- without its hand-kept entry, or an entry naming nothing, is an error (so an
-- option cannot be added without its type); spec/types_spec.lua fails when the
-- committed file is not what this makes.
--
--   make types                                  (writes types/starvideos.lua)
--   lua5.4 tools/types.lua [--write FILE]       (paths: lua/, build/ and ./; without --write: stdout)
--   dofile("tools/types.lua").render()          (the text; spec/types_spec.lua)

local config = require "starvideos.config"
local core = require "starvideos.core"
local starvideos = require "starvideos"
local store_url = require "starvideos.fleet.url" -- (the redis rock's: its table form's fields)
local storage = require "starvideos.storage.s3" -- (the s3 rock's: the storage option's fields, OPTION)

local M = {}

local function sorted(t)
  local list = {}
  for k in pairs(t) do list[#list + 1] = k end
  table.sort(list)
  return list
end

local function camel(s) return (s:gsub("^%l", string.upper):gsub("_(%l)", string.upper)) end

-- The options class of config.CALLS[call] ("@call" in a signature); of starvideos.new.
local function opts_class(call) return "starvideos." .. camel(call) .. "Opts" end
M.OPTIONS = "starvideos.Options"

local KEYWORDS = {}
for k in ("and break do else elseif end false for function goto if in local nil not or repeat return then true "
  .. "until while"):gmatch("%a+") do KEYWORDS[k] = true end

-- A writer of lines, and the problems found (each a sentence).
local function writer()
  local w = { lines = {}, problems = {} }
  function w.line(s) w.lines[#w.lines + 1] = s end
  function w.problem(fmt, ...) w.problems[#w.problems + 1] = string.format(fmt, ...) end
  function w.class(name, line, parent)
    w.line("")
    w.line("---" .. line)
    w.line("---@class " .. name .. (parent and (": " .. parent) or ""))
  end
  function w.field(name, typ, line)
    local bare, optional = name:match("^([%w_]+)(%??)$")
    if KEYWORDS[bare] then name, typ = string.format("[%q]", bare), typ .. optional end -- ["local"] string?
    w.line(string.format("---@field %s %s %s", name, typ, line))
  end
  -- an alias of string literals, a line each
  function w.alias(name, values)
    w.line("---@alias " .. name)
    for _, v in ipairs(values) do w.line(string.format("---| %q", v)) end
  end
  return w
end

-- The default config.DEFAULTS[key] names, as " (default X)"; "" for none.
local function default_of(w, key, option)
  if key == nil then return "" end
  local d = config.DEFAULTS[key]
  if type(d) ~= "number" and type(d) ~= "boolean" then
    w.problem("the option %s's default is config.DEFAULTS.%s, which is no number nor boolean", option, key)
  end
  return string.format(" (default %s)", tostring(d))
end

-- The options of one table of config.lua (`names`, its keys), each typed by
-- `typed(name)` -> {type, line[, DEFAULTS key]} or nil; `where` names the table in a problem.
local function options(w, class, line, names, typed, where)
  w.class(class, line)
  for _, name in ipairs(sorted(names)) do
    local t = typed(name)
    if not t then
      w.problem("the option %s of %s has no type in tools/types/api.lua", name, where)
    else
      w.field(name .. "?", t[1], t[2] .. default_of(w, t[3], where .. "." .. name))
    end
  end
end

-- Entries of a hand-kept table that name nothing of `names`.
local function stale(w, hand, names, what)
  for _, k in ipairs(sorted(hand)) do
    if names[k] == nil then w.problem("tools/types/%s names %s, which %s has not", what[1], k, what[2]) end
  end
end

-- starvideos.new's: an option of DEFAULTS' name (a number or boolean) shows that default.
local function client_options(w, A)
  options(w, M.OPTIONS, "The options of starvideos.new (config.lua's CLIENT)", config.CLIENT, function(name)
    local t, d = A.CLIENT[name], config.DEFAULTS[name]
    if t and (type(d) == "number" or type(d) == "boolean") then return { t[1], t[2], name } end
    return t
  end, "config.CLIENT")
  stale(w, A.CLIENT, config.CLIENT, { "api.lua's CLIENT", "config.CLIENT" })
end

-- `takers[call]`: the functions whose options are config.CALLS[call]'s ("client:start and client:watch").
local function call_options(w, A, takers)
  local used = {}
  for _, call in ipairs(sorted(config.CALLS)) do
    local own = A.CALLS_BY[call] or {}
    options(w, opts_class(call), "The options of " .. (takers[call] or "nothing") .. " (config.lua's CALLS." .. call
      .. ")",
      config.CALLS[call], function(name)
        used[name] = true
        return own[name] or A.CALLS[name]
      end, "config.CALLS." .. call)
    stale(w, own, config.CALLS[call], { "api.lua's CALLS_BY." .. call, "config.CALLS." .. call })
  end
  stale(w, A.CALLS, used, { "api.lua's CALLS", "no table of config.CALLS" })
  stale(w, A.CALLS_BY, config.CALLS, { "api.lua's CALLS_BY", "config.CALLS" })
end

-- A class whose fields are the keys of `names`, typed by `typed(name, value)` -> {type, line[, optional]}.
local function keyed(w, class, line, names, typed, where)
  w.class(class, line)
  for _, name in ipairs(sorted(names)) do
    local t = typed(name, names[name])
    if not t then w.problem("%s's field %s has no line in tools/types/", where, name)
    else w.field(name .. (t[3] and "?" or ""), t[1], t[2]) end
  end
end

local function option_tables(w, A)
  keyed(w, "starvideos.Limit", "create_limit and tenant_limit (config.LIMIT)", config.LIMIT, function(name)
    return A.LIMIT[name] and { name == "count" and "integer" or "number", A.LIMIT[name] }
  end, "config.LIMIT")
  stale(w, A.LIMIT, config.LIMIT, { "api.lua's LIMIT", "config.LIMIT" })
  keyed(w, "starvideos.Storage", "the storage option (storage/s3.lua's OPTION): every field optional", storage.OPTION,
    function(name, typ) return A.STORAGE[name] and { typ, A.STORAGE[name], true } end, "storage/s3.lua's OPTION")
  stale(w, A.STORAGE, storage.OPTION, { "api.lua's STORAGE", "storage/s3.lua's OPTION" })
  local fields = { url = true }
  for k in pairs(store_url.FIELDS) do fields[k] = true end
  keyed(w, "starvideos.Store", "the store option's table form (store_url.lua's FIELDS, and url)", fields,
    function(name)
      local t = A.STORE[name]
      return t and { t[1], t[2], name ~= "url" }
    end, "store_url.FIELDS")
  stale(w, A.STORE, fields, { "api.lua's STORE", "store_url.FIELDS" })
end

-- The error kinds: the core's (csrc/core/error.c), spend_limited's made above it among them.
local function error_kinds()
  local list = {}
  for _, k in ipairs(core.kinds) do list[#list + 1] = k end
  return list
end

-- The aliases, from the core's and config.lua's lists.
local function aliases(w)
  local ratios, resolutions, seen = {}, {}, {}
  for _, name in ipairs(sorted(core.models)) do
    local m = core.models[name]
    for _, pair in ipairs { { m.ratios, ratios }, { m.resolutions, resolutions } } do
      for _, v in ipairs(pair[1]) do
        if not seen[v] then seen[v] = true; pair[2][#pair[2] + 1] = v end
      end
    end
  end
  table.sort(ratios)
  table.sort(resolutions)
  w.line("")
  w.alias("starvideos.Model", sorted(core.models))
  w.alias("starvideos.Ratio", ratios)
  w.alias("starvideos.Resolution", resolutions)
  w.alias("starvideos.ErrorKind", error_kinds())
  w.alias("starvideos.RecordState", sorted(config.STATES))
  w.alias("starvideos.TaskStatus", { "queued", "processing", "completed", "failed" })
  w.alias("starvideos.FailureReason", sorted(require("starvideos.failure").REASONS)) -- (failure.lua's)
  w.alias("starvideos.JobState", { "creating", "polling", "downloading", "confirming", "done", "cancelled", "taken",
    "preparing", "joining" })
end

M.default_of, M.writer, M.sorted, M.camel, M.opts_class = default_of, writer, sorted, camel, opts_class
M.client_options, M.call_options, M.option_tables, M.aliases, M.keyed, M.stale =
  client_options, call_options, option_tables, aliases, keyed, stale

-- The rest (signatures, shapes, the module and the client) is tools/types/render.lua's.
function M.render()
  return require("tools.types.render")(M, starvideos)
end

if select("#", ...) > 0 and ... == "--write" then
  local file = select(2, ...)
  local text = M.render()
  local f = assert(io.open(assert(file, "--write FILE"), "wb"))
  f:write(text)
  f:close()
elseif select("#", ...) > 0 then
  io.stderr:write("usage: lua tools/types.lua [--write FILE]\n")
  os.exit(2)
elseif arg and arg[0] and arg[0]:match("tools/types%.lua$") then
  io.write(M.render())
end

return M
