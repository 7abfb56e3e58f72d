/* The static library built for any Lua (5.1, 5.2, 5.3, 5.4, LuaJIT: `make
   build/<vm>/static_vm_test`), opened in a state without the package library
   whose host preloads lua-cjson: luaopen_starvideos adds no global, the Lua
   parts run (validate, a client, a journal read through the private require
   at run time), and the loaded table holds the module.  spec/hosts/embed_spec.lua
   runs it for the VM running the suite.
     usage: static_vm_test SCRATCH_DIR */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <string.h>

int luaopen_starvideos(lua_State *L);
int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

#ifndef LUA_OK
#define LUA_OK 0
#endif

static void push_globals(lua_State *L) {
#if LUA_VERSION_NUM >= 502
  lua_pushglobaltable(L);
#else
  lua_pushvalue(L, LUA_GLOBALSINDEX);
#endif
}

/* What luaL_requiref does (5.2+), for 5.1 and LuaJIT too. */
static void require_lib(lua_State *L, const char *name, lua_CFunction f, int global) {
#if LUA_VERSION_NUM >= 502
  luaL_requiref(L, name, f, global);
  lua_pop(L, 1);
#else
  lua_pushcfunction(L, f);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  luaL_findtable(L, LUA_REGISTRYINDEX, "_LOADED", 8);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  if (global) lua_setglobal(L, name);
  else lua_pop(L, 1);
#endif
}

static int count_globals(lua_State *L) {
  int n = 0;
  push_globals(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) { lua_pop(L, 1); n++; }
  lua_pop(L, 1);
  return n;
}

static const char check_lua[] =
  "local sv, dir = ...\n"
  "local loaded = debug.getregistry()._LOADED\n"
  "if loaded.starvideos ~= sv then return false, 'loaded.starvideos is another table' end\n"
  "if rawget(_G, 'require') ~= nil or rawget(_G, 'package') ~= nil then return false, 'a package library' end\n"
  "local ok, err = sv.validate { model = 'videos', prompt = 'a cat', duration = 5 }\n"
  "if not ok then return false, 'validate: ' .. tostring(err) end\n"
  "local path = dir .. '/static_vm_test.jsonl'\n"
  "local f = assert(io.open(path, 'wb'))\n"
  "f:write('{\"event\":\"pending\",\"local\":\"abc\",\"model\":\"videos\"}\\n')\n"
  "f:close()\n"
  "local c = sv.new { api_key = 'k', base_url = 'http://127.0.0.1:9' }\n"
  "local list, perr = c:pending { journal = path }\n"
  "c:close()\n"
  "os.remove(path)\n"
  "if not list or #list ~= 1 then return false, 'pending: ' .. tostring(perr) end\n"
  "local jit = rawget(_G, 'jit')\n"
  "return true, jit and tostring(jit.version) or _VERSION\n";

int main(int argc, char **argv) {
  lua_State *L;
  int before, after, ok;
  const char *why;
  if (argc != 2) {
    fprintf(stderr, "usage: static_vm_test SCRATCH_DIR\n");
    return 2;
  }
  L = luaL_newstate();
  require_lib(L, "_G", luaopen_base, 1);
  require_lib(L, LUA_TABLIBNAME, luaopen_table, 1);
  require_lib(L, LUA_STRLIBNAME, luaopen_string, 1);
  require_lib(L, LUA_MATHLIBNAME, luaopen_math, 1);
  require_lib(L, LUA_OSLIBNAME, luaopen_os, 1);
  require_lib(L, LUA_IOLIBNAME, luaopen_io, 1);
  require_lib(L, LUA_DBLIBNAME, luaopen_debug, 1);
#ifdef LUA_JITLIBNAME
  require_lib(L, LUA_JITLIBNAME, luaopen_jit, 0); /* it sets the global itself */
#endif
  require_lib(L, "cjson", luaopen_cjson, 0);
  require_lib(L, "cjson.safe", luaopen_cjson_safe, 0);
  lua_settop(L, 0);
  before = count_globals(L);
  lua_pushcfunction(L, luaopen_starvideos);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    printf("not ok - luaopen_starvideos: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  after = count_globals(L);
  if (luaL_loadbuffer(L, check_lua, sizeof check_lua - 1, "=check") != LUA_OK) {
    printf("not ok - %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_pushvalue(L, 1);
  lua_pushstring(L, argv[1]);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
    ok = 0;
    why = lua_tostring(L, -1);
  } else {
    ok = lua_toboolean(L, -2);
    why = lua_tostring(L, -1);
  }
  if (ok && after != before) {
    ok = 0;
    why = "luaopen_starvideos added a global";
  }
  printf("%s - the static library opens without a package library (%s)\n", ok ? "ok" : "not ok",
         why ? why : "?");
  lua_close(L);
  return ok ? 0 : 1;
}
