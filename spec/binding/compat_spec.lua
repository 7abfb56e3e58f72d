-- csrc/lua/compat.h on the VM running the specs: build/compat_test.so (or
-- build/<vm>/compat_test.so under `make test-all`) calls each 5.4 API name the
-- header gives older VMs and returns what it saw.  The expected answers are
-- Lua 5.4's; where an older VM must differ, the spec says which and why.
local helper = require "spec.helper"
local t = require "compat_test"

local VM = helper.vm
local INTEGERS = helper.integers -- 5.3+: numbers have an integer subtype

describe("compat.h on " .. VM, function()
  describe("user values", function()
    it("keeps one value of any type, returning its type", function()
      local values = { "text", 42, true, {}, print, io.stdout, t.box(1) }
      for _, v in ipairs(values) do
        local ud = t.uv_new(1, v)
        local kind, got, grew = t.uv_get(ud, 1)
        assert.equal(type(v), kind)
        assert.equal(v, got)
        assert.equal(1, grew)
      end
    end)

    it("holds nil in a slot never set", function()
      local kind, got, grew = t.uv_get(t.uv_new(1), 1)
      assert.equal("nil", kind)
      assert.is_nil(got)
      assert.equal(1, grew)
    end)

    it("sets the value, popping it", function()
      local ud = t.uv_new(1, "old")
      local r, grew = t.uv_set(ud, 1, "new")
      assert.equal(1, r)
      assert.equal(0, grew)
      assert.equal("new", select(2, t.uv_get(ud, 1)))
      assert.equal(1, (t.uv_set(ud, 1, nil)))
      assert.equal("nil", (t.uv_get(ud, 1)))
    end)

    it("answers none (pushing nil) and refuses to set a slot the userdata does not have", function()
      local ud = t.uv_new(1, "v")
      for _, n in ipairs { 0, 2, -1 } do
        local kind, got, grew = t.uv_get(ud, n)
        assert.equal("none", kind)
        assert.is_nil(got)
        assert.equal(1, grew)
        local r, sgrew = t.uv_set(ud, n, "x")
        assert.equal(0, r)
        assert.equal(0, sgrew)
      end
      assert.equal("v", select(2, t.uv_get(ud, 1)))
    end)

    it("gives no slot to a userdata made without one", function()
      local ud = t.uv_new(0)
      assert.equal(0, (t.uv_set(ud, 1, "leak")))
      assert.equal("none", (t.uv_get(ud, 1)))
      -- 5.1: the environment of such a userdata is the globals table; it must
      -- not be written to
      assert.is_nil(rawget(_G, 1))
    end)

    it("keeps its value alive", function()
      local weak = setmetatable({}, { __mode = "v" })
      weak[1] = {}
      local ud = t.uv_new(1, weak[1])
      collectgarbage()
      collectgarbage()
      assert.is_table(weak[1])
      assert.equal(weak[1], select(2, t.uv_get(ud, 1)))
    end)

    if VM == "lua5.4" or VM == "lua5.5" then
      it("has as many slots as asked (5.4, 5.5)", function()
        local ud = t.uv_new(2, "a")
        assert.equal(1, (t.uv_set(ud, 2, "b")))
        assert.equal("a", select(2, t.uv_get(ud, 1)))
        assert.equal("b", select(2, t.uv_get(ud, 2)))
        assert.equal("none", (t.uv_get(ud, 3)))
      end)
    else
      it("refuses more than one slot before 5.4, loudly", function()
        assert.has_error(function() t.uv_new(2) end, "compat.h: at most one user value before Lua 5.4")
      end)
    end
  end)

  describe("lua_isinteger", function()
    -- value, answer with an integer subtype (5.3+), answer without (5.1, 5.2, LuaJIT)
    local cases = {
      { "3", 3, true, true }, { "-7", -7, true, true }, { "0", 0, true, true },
      { "3.5", 3.5, false, false }, { "-0.25", -0.25, false, false },
      { "3.0 (a float)", 3.0, false, true }, { "2^53 (a float)", 2 ^ 53, false, true },
      { "-2^63 (a float)", -2 ^ 63, false, true }, { "2^63", 2 ^ 63, false, false },
      { "1e300", 1e300, false, false }, { "inf", 1 / 0, false, false }, { "-inf", -1 / 0, false, false },
      { "nan", 0 / 0, false, false }, { "the string 3", "3", false, false },
      { "a table", {}, false, false }, { "false", false, false, false },
    }
    for _, c in ipairs(cases) do
      it("on " .. c[1], function()
        local expected = c[4]
        if INTEGERS then expected = c[3] end
        assert.equal(expected, t.isinteger(c[2]))
      end)
    end
    if INTEGERS then
      it("on math.maxinteger and math.mininteger (5.3+)", function()
        assert.is_true(t.isinteger(math.maxinteger)) -- luacheck: ignore 143
        assert.is_true(t.isinteger(math.mininteger)) -- luacheck: ignore 143
      end)
    end
  end)

  it("lua_absindex turns relative indices into absolute ones, leaving pseudo-indices", function()
    local last, first, registry = t.absindex("a", "b", "c")
    assert.equal(3, last)
    assert.equal(1, first)
    assert.is_true(registry)
  end)

  it("lua_rawlen gives the raw length of strings, tables and userdata", function()
    assert.equal(3, t.rawlen("abc"))
    assert.equal(0, t.rawlen(""))
    assert.equal(4, t.rawlen(setmetatable({ 1, 2, 3, 4 }, { __len = function() return 99 end })))
    assert.equal(4, t.rawlen(t.box(5))) -- sizeof(int)
  end)

  it("luaL_setfuncs registers closures sharing the upvalues", function()
    local lib, grew = t.setfuncs({}, "up1", "up2")
    assert.equal(0, grew) -- the upvalues are popped, the table stays
    local a, b = lib.get()
    assert.equal("up1", a)
    assert.equal("up2", b)
  end)

  it("luaL_newlib makes a table of the functions", function()
    local lib = t.newlib()
    assert.is_function(lib.value)
    assert.equal(3, lib.value(t.box(3)))
  end)

  it("lua_getfield and the other getters return the type they pushed", function()
    assert.same({ "number", "string", "table", "table" }, t.gettypes { field = 1, raw = "x", {} })
  end)

  it("lua_pushglobaltable pushes the globals table", function()
    assert.equal(_G, t.globaltable())
  end)

  it("luaL_pushfail pushes nil", function()
    local r, why = t.pushfail()
    assert.is_nil(r)
    assert.equal("reason", why)
    assert.equal(2, select("#", t.pushfail()))
  end)

  it("lua_tonumberx says whether the value was a number", function()
    local cases = { { 5, 5, true }, { "12", 12, true }, { "0", 0, true }, { "0x10", 16, true },
      { "x", 0, false }, { {}, 0, false }, { false, 0, false } }
    for _, c in ipairs(cases) do
      local n, isnum = t.tonumberx(c[1])
      assert.equal(c[2], n)
      assert.equal(c[3], isnum)
    end
  end)
end)

-- One 5.1 ABI.  LuaJIT says it is 5.1, and a LuaRocks tree for 5.1 serves
-- lua5.1 and luajit alike: a module built with either VM's headers must load
-- in both.  (LuaJIT's headers declare luaL_setfuncs and more that PUC 5.1 does
-- not export: a core calling them failed in lua5.1 with "undefined symbol".)
-- The modules of build/lua5.1/ and build/luajit/, crossed: each VM loads the
-- core and the transport, makes a client, and passes this spec with the other
-- headers' compat_test.so.  Once, under lua5.4, in the hosts tier (the builds of
-- `make test-all`; `make test` would build them all).
describe("one 5.1 ABI for lua5.1 and LuaJIT #hosts", function()
  if VM ~= "lua5.4" then
    pending("runs once, under lua5.4")
    return
  end
  local q = helper.shell_quote
  local root = helper.root
  local VMS = { "lua5.1", "luajit" }
  for _, vm in ipairs(VMS) do
    if not helper.execute("command -v " .. vm .. " >/dev/null 2>&1") then
      pending(vm .. " is not installed (Debian: make deps)")
      return
    end
  end

  local built, build_out
  lazy_setup(function()
    local targets = {}
    for _, headers in ipairs(VMS) do
      for _, m in ipairs { "starvideos/core.so", "starvideos/curl.so", "compat_test.so" } do
        targets[#targets + 1] = "build/" .. headers .. "/" .. m
      end
    end
    build_out, built = helper.capture(helper.UNINSTRUMENTED .. "env -u MAKEFLAGS -u MAKELEVEL make "
      .. "--no-print-directory -C " .. q(root) .. " " .. table.concat(targets, " ") .. " 2>&1")
  end)

  -- a child seeing the checkout's lua/ and the C modules of build/<headers>/ only
  local function run(vm, headers, cmd)
    return helper.capture("cd " .. q(root) .. " && " .. helper.UNINSTRUMENTED .. "env -u LUA_INIT "
      .. "LUA_PATH='" .. helper.lua_path(".") .. ";./?.lua;;' LUA_CPATH=" .. q("build/" .. headers .. "/?.so;;")
      .. " STARVIDEOS_LUA=" .. vm .. " STARVIDEOS_CPATH=" .. q("build/" .. headers .. "/?.so")
      .. " " .. cmd .. " 2>&1")
  end

  -- each VM's headers as `make test-all` takes them (INC_lua5.1, INC_luajit)
  local function includes(headers)
    return (helper.capture("env -u MAKEFLAGS -u MAKELEVEL make -s --no-print-directory -C " .. q(root)
      .. " --eval " .. q("sv-print-inc: ; @echo $(INC_" .. headers .. ")") .. " sv-print-inc"):gsub("%s+$", ""))
  end

  for _, headers in ipairs(VMS) do
    it("with " .. headers .. "'s headers, a function only LuaJIT exports stops the build", function()
      local dir = helper.tmpdir()
      local function compile(call)
        helper.write_file(dir .. "/use.c", "#include <lua.h>\n#include <lauxlib.h>\n#include \"compat.h\"\n"
          .. "int use(lua_State *L);\nint use(lua_State *L) { " .. call .. "; return 0; }\n")
        return helper.capture(helper.UNINSTRUMENTED .. "cc -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only "
          .. includes(headers) .. " -I" .. q(root .. "/csrc/lua") .. " " .. q(dir .. "/use.c") .. " 2>&1")
      end
      local out, ok = compile("luaL_setfuncs(L, NULL, 0); lua_settop(L, 0)") -- both have these (compat.h's)
      assert.is_true(ok, out)
      for _, call in ipairs { "luaL_traceback(L, L, \"x\", 1)", "(void)lua_tointegerx(L, 1, NULL)",
          "lua_copy(L, 1, 2)", "(void)luaL_loadbufferx(L, \"\", 0, \"x\", \"t\")" } do
        out, ok = compile(call)
        assert.is_nil(ok, call)
        assert.matches('attempt to use poisoned "' .. call:match("[%w_]+", call:find("lua")) .. '"', out, 1, true)
      end
      helper.cleanup()
    end)

    for _, vm in ipairs(VMS) do
      it("built with " .. headers .. "'s headers, the core and the transport load in " .. vm, function()
        assert.is_true(built, build_out)
        local out, ok = run(vm, headers, vm .. " -e " .. q([[
local s = require "starvideos"
print("valid", (assert(s.validate { model = "videos", prompt = "a kitten", duration = 5 })))
local c = assert(s.new { api_key = "k", base_url = "http://127.0.0.1:9" })
print("client", type(c), package.loaded["starvideos.curl"] ~= nil)
c:close()
print("vm", type(rawget(_G, "jit")) == "table" and "luajit" or _VERSION)
]]))
        assert.is_true(ok, out)
        assert.matches("valid\ttrue\nclient\ttable\ttrue\n", out, 1, true)
        assert.matches("vm\t" .. (vm == "luajit" and "luajit" or "Lua 5.1") .. "\n", out, 1, true)
      end)

      it("built with " .. headers .. "'s headers, compat.h passes this spec in " .. vm, function()
        assert.is_true(built, build_out)
        local out, ok = run(vm, headers, "busted --lua=" .. vm .. " -o TAP spec/binding/compat_spec.lua")
        assert.is_true(ok, out)
        local passed = 0
        for _ in out:gmatch("\nok %d+") do passed = passed + 1 end
        assert.is_true(passed >= 30, out)
        assert.is_nil(out:find("not ok", 1, true), out)
      end)
    end
  end
end)
