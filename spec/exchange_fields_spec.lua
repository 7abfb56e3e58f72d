-- An exchange's fields are listed once (csrc/curl/exchange_fields.h, a row each: libcurl's sv_send, its binding's
-- reader, starvideos.curl's `fields`); nginx's transport reads each of them (nginx/transport.lua's FIELDS) and the
-- manual's table names each (docs/architecture.md, "The transport interface"): a field added in one place and not
-- the others fails here, naming the place.

local helper = require "spec.helper"

local function set_of(list)
  local s = {}
  for _, name in ipairs(list) do s[name] = true end
  return s
end

-- The names in a but not in b, sorted (b nil: all of a's).
local function missing(a, b)
  local list = {}
  for k in pairs(a) do if not (b and b[k]) then list[#list + 1] = k end end
  table.sort(list)
  return list
end

-- A list of names (where: the place that holds it) is the C list, each once.
local function same_as_c(fields, list, where)
  local got = set_of(list)
  assert.equal(#list, #missing(got), "a field named twice by " .. where)
  assert.same({}, missing(fields, got), "in csrc/curl/exchange_fields.h, not in " .. where)
  assert.same({}, missing(got, fields), "in " .. where .. ", not in csrc/curl/exchange_fields.h")
end

-- nginx/transport.lua's reader, loaded outside nginx: its semaphores are made only by N.new.
local function nginx_fields()
  local was = package.loaded["ngx.semaphore"]
  package.loaded["ngx.semaphore"] = {}
  package.loaded["starvideos.nginx.transport"] = nil
  local ok, N = pcall(require, "starvideos.nginx.transport")
  package.loaded["ngx.semaphore"], package.loaded["starvideos.nginx.transport"] = was, nil
  assert(ok, N)
  return N.FIELDS
end

-- The fields the manual's table names: the backquoted names of its first column.
local function doc_fields()
  local text = assert(helper.read_file("docs/architecture.md"))
  local section = assert(text:match("\n## The transport interface\n(.-)\n## "), "no section The transport interface")
  local tbl = assert(section:match("\n| field | what it says |\n|%-%-%-|%-%-%-|\n(.-)\n\n"), "no table of fields")
  local names = {}
  for row in (tbl .. "\n"):gmatch("(.-)\n") do
    local first = assert(row:match("^| ([^|]+) |"), "a row without a first column: " .. row)
    for name in first:gmatch("`([%w_]+)`") do names[#names + 1] = name end
  end
  return names
end

describe("an exchange's fields", function()
  local fields = require("starvideos.curl").fields

  it("are listed once in C, each with its kind", function()
    local kinds = set_of { "OP", "URL", "STR", "FLAG", "NUM", "SIZE", "CLIENT", "BODY", "RANGE", "TAP", "LUA" }
    assert.is_true(#missing(fields) >= 20, "too few: " .. table.concat(missing(fields), " "))
    for name, kind in pairs(fields) do assert.is_true(kinds[kind], name .. ": kind " .. tostring(kind)) end
  end)

  it("are each read by nginx's transport, which reads no other", function()
    same_as_c(fields, nginx_fields(), "nginx/transport.lua's FIELDS")
  end)

  it("are each named by the manual's table, which names no other", function()
    same_as_c(fields, doc_fields(), "docs/architecture.md's table of fields")
  end)

  it("are read by libcurl's binding: a field of each plain kind reaches the wire as given", function()
    -- (the binding reads them by the list: a row it did not read would send nothing)
    local t = require("starvideos.curl").new { user_agent = "starvideos/fields", connect_timeout = 2,
      max_connections = 1 }
    local h, err = t:send { op = "exchange", url = "http://127.0.0.1:1/", max_body = 10, method = "PATCH" }
    assert.is_nil(h)
    assert.same({ "invalid_request", "method" }, { err.kind, err.field }) -- (method: STR, read by its row)
    h, err = t:send { op = "exchange", url = "http://127.0.0.1:1/", max_body = 10, request_id = "a\nb" }
    assert.same({ "invalid_request", "request_id" }, { h == nil and err.kind, err and err.field })
    assert.has_error(function() t:send { op = "exchange", url = "http://127.0.0.1:1/" } end) -- max_body: SIZE, needed
    t:close()
  end)
end)
