-- tools/types.lua's second half: the request and model classes (the core's
-- lists), the hand-kept shapes and events, the module's fields and functions
-- and a client's methods (the loaded tables), then the whole text, or an error
-- listing every problem found.

local core = require "starvideos.core"
local A = require "tools.types.api"
local S = require "tools.types.shapes"
local C = require "tools.types.classes"

local HEADER = [[
---@meta starvideos
-- LuaCATS annotations of starvideos' public API (docs/reference.md), for
-- lua-language-server and the editors on it (docs/reference.md#editors).
-- Made by tools/types.lua (`make types`) from lua/starvideos/config.lua's option
-- tables, the loaded module and the core's lists, with tools/types/*.lua for
-- what no table holds: do not edit; spec/types_spec.lua checks it.]]

-- A type of a signature: "@call" is config.CALLS.call's options class.
local function resolve(T, w, typ)
  local call = typ:match("^@([%w_]+)$")
  if not call then return typ end
  if not require("starvideos.config").CALLS[call] then w.problem("a signature names @%s, not a call", call) end
  T.used[call] = true
  return T.opts_class(call)
end

-- Which functions take each call's options: "client:start and client:watch".
local function takers()
  local by = {}
  for _, part in ipairs { { S.MODULE, "starvideos." }, { S.METHODS, "client:" } } do
    for name, sig in pairs(part[1]) do
      for _, p in ipairs(sig.params or {}) do
        local call = p[2]:match("^@([%w_]+)$")
        if call then
          by[call] = by[call] or {}
          table.insert(by[call], part[2] .. name)
        end
      end
    end
  end
  local text = {}
  for call, list in pairs(by) do
    table.sort(list)
    text[call] = #list == 1 and list[1] or table.concat(list, ", ", 1, #list - 1) .. " and " .. list[#list]
  end
  return text
end

-- A function's annotation and its empty body: `head` is "starvideos.new" or "Client:create".
local function signature(T, w, head, sig)
  w.line("")
  w.line("---" .. sig[1])
  local names = {}
  for _, p in ipairs(sig.params or {}) do
    w.line(string.format("---@param %s %s", p[1], resolve(T, w, p[2])))
    names[#names + 1] = (p[1]:gsub("%?$", ""))
  end
  for _, r in ipairs(sig.returns or {}) do w.line(string.format("---@return %s %s", r[1], r[2])) end
  w.line(string.format("function %s(%s) end", head, table.concat(names, ", ")))
end

-- The request's fields (core.fields) and a model's (every key any model has).
local function core_classes(T, w)
  local fields = {}
  for _, name in ipairs(core.fields) do fields[name] = true end
  T.keyed(w, "starvideos.Params", "a request (params of create, generate, start, validate; core.fields)",
    fields, function(name) local t = S.PARAMS[name] return t and { t[1], t[2], name ~= "model" } end, "core.fields")
  T.stale(w, S.PARAMS, fields, { "shapes.lua's PARAMS", "core.fields" })
  local keys = {}
  for _, m in pairs(core.models) do for k in pairs(m) do keys[k] = true end end
  T.keyed(w, "starvideos.ModelInfo", "a model's capabilities (starvideos.models; the core's models)", keys,
    function(name)
      local t = S.MODEL[name]
      return t and { t[1], t[2], t[3] }
    end, "core.models")
  T.stale(w, S.MODEL, keys, { "shapes.lua's MODEL", "the core's models" })
end

local function classes(T, w)
  for _, c in ipairs(C.CLASSES) do
    w.class("starvideos." .. c[1], c[2])
    for _, f in ipairs(c.fields) do w.field(f[1], f[2], f[3] .. T.default_of(w, f[4], c[1] .. "." .. f[1])) end
    if c.methods then
      w.line("local " .. c[1] .. " = {}")
      for _, m in ipairs(c.methods) do
        w.line("")
        w.line("---" .. m[2])
        w.line(string.format("function %s:%s() end", c[1], m[1]))
      end
    end
  end
  local union = {}
  for _, e in ipairs(C.EVENTS) do
    local name = "starvideos." .. e[1]:gsub("^%l", string.upper):gsub("_(%l)", string.upper) .. "Event"
    union[#union + 1] = name
    w.class(name, "event " .. e[1] .. ": " .. e[2])
    w.field("type", string.format("%q", e[1]), "the event's type")
    for _, f in ipairs(e.fields) do w.field(f[1], f[2], f[3]) end
  end
  w.line("")
  w.line("---@alias starvideos.Event " .. table.concat(union, "|"))
end

-- The module's keys (functions: signatures, else fields) and a client's methods.
local function module(T, w, starvideos)
  local keys, funcs = {}, {}
  for k, v in pairs(starvideos) do
    keys[k] = true
    if type(v) == "function" then funcs[#funcs + 1] = k end
  end
  T.stale(w, S.MODULE, keys, { "shapes.lua's MODULE", "the module" })
  w.class("starvideos", "The module: require \"starvideos\"")
  for _, k in ipairs(T.sorted(keys)) do
    local s = S.MODULE[k]
    if not s then w.problem("the module's %s has no entry in tools/types/shapes.lua's MODULE", k)
    elseif type(starvideos[k]) ~= "function" then w.field(k, s[1], s[2]) end
  end
  w.line("local starvideos = {}")
  table.sort(funcs)
  for _, k in ipairs(funcs) do
    if S.MODULE[k] then signature(T, w, "starvideos." .. k, S.MODULE[k]) end
  end
end

local function client(T, w, starvideos)
  local c = starvideos.new { api_key = "k-types", base_url = "http://127.0.0.1:9" }
  local methods = {}
  for k, v in pairs(getmetatable(c)) do
    if type(v) == "function" and not k:find("^__") and not rawequal(v, starvideos.new) then methods[k] = true end
  end
  c:close()
  T.stale(w, S.METHODS, methods, { "shapes.lua's METHODS", "a client's metatable" })
  w.class("starvideos.Client", "A client (starvideos.new); tostring(client) names its base URL")
  w.field("on_event?", "fun(event: starvideos.Event)", "the client's event listener; nil removes it")
  w.line("local Client = {}")
  for _, k in ipairs(T.sorted(methods)) do
    if not S.METHODS[k] then w.problem("the method client:%s has no entry in tools/types/shapes.lua's METHODS", k)
    else signature(T, w, "Client:" .. k, S.METHODS[k]) end
  end
end

return function(T, starvideos)
  local w = T.writer()
  T.used = {}
  w.line(HEADER)
  T.aliases(w)
  T.client_options(w, A)
  T.call_options(w, A, takers())
  T.option_tables(w, A)
  core_classes(T, w)
  classes(T, w)
  module(T, w, starvideos)
  client(T, w, starvideos)
  for _, call in ipairs(T.sorted(require("starvideos.config").CALLS)) do
    if not T.used[call] then w.problem("no signature takes config.CALLS.%s's options", call) end
  end
  if #w.problems > 0 then
    error("tools/types.lua: " .. #w.problems .. " problem(s):\n  " .. table.concat(w.problems, "\n  "), 0)
  end
  w.line("")
  w.line("return starvideos")
  return table.concat(w.lines, "\n") .. "\n"
end
