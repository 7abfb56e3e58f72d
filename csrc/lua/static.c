/* The static library's face (make static): luaopen_starvideos opens the whole
   module, its Lua parts compiled in (csrc/lua/static.h, written at build time by
   tools/embed-lua.lua), and returns the table `require "starvideos"` gives.

   The embedded chunks call `require` for their siblings and for lua-cjson.  A
   host may have no package library (no global `require`), so each chunk runs
   with an environment of its own: a table whose __index is the globals table
   and whose `require` field is the private require below.  Nothing is added to
   the globals.  The private require looks, in order, in
     1. the loaded table (registry._LOADED: package.loaded when there is a
        package library; luaL_requiref fills it, so a host that preloads
        cjson and cjson.safe that way is enough),
     2. the embedded modules, and starvideos.core and starvideos.sign (the C
        parts, this archive: the signatures too are opened on first use only),
     3. package.searchers (5.1: package.loaders; package.preload's first), when
        the state has a package library,
   and records what a module returns in the loaded table, like require. */
#include "lsv.h"

#include "compat.h"
#include "static.h"

#include <string.h>

#ifndef LUA_LOADED_TABLE
#define LUA_LOADED_TABLE "_LOADED"
#endif

LUAOPEN_API int luaopen_starvideos_core(lua_State *L); /* core.c */
LUAOPEN_API int luaopen_starvideos_sign(lua_State *L); /* sign.c */
LUAOPEN_API int luaopen_starvideos(lua_State *L);

/* Pushes the loader of an embedded Lua module: its chunk, run in env. */
static void load_embedded(lua_State *L, const sv_lua_module *m, int env) {
  if (luaL_loadbuffer(L, m->src, m->len, m->chunkname) != 0) lua_error(L);
  lua_pushvalue(L, env);
#if LUA_VERSION_NUM >= 502
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1); /* a main chunk's first upvalue is _ENV */
#else
  lua_setfenv(L, -2);
#endif
}

/* Appends the string on top of the stack to the one at acc, and pops it. */
static void add_message(lua_State *L, int acc) {
  lua_pushvalue(L, acc);
  lua_insert(L, -2);
  lua_concat(L, 2);
  lua_replace(L, acc);
}

/* Through the host's package library, when there is one: pushes a loader and
   its extra argument and returns 1, or returns 0 with the searchers' messages
   added to acc.  The first searcher is package.preload's, in every VM. */
static int package_loader(lua_State *L, const char *name, int loaded, int acc) {
  int base = lua_gettop(L), pkg, list, i;
  if (lua_getfield(L, loaded, "package") != LUA_TTABLE) {
    lua_settop(L, base);
    lua_pushliteral(L, "\n\tno package library in this state");
    add_message(L, acc);
    return 0;
  }
  pkg = lua_gettop(L);
  if (lua_getfield(L, pkg, "searchers") != LUA_TTABLE) {
    lua_pop(L, 1);
    if (lua_getfield(L, pkg, "loaders") != LUA_TTABLE) { lua_settop(L, base); return 0; }
  }
  list = lua_gettop(L);
  for (i = 1; lua_rawgeti(L, list, i) != LUA_TNIL; i++) {
    lua_pushstring(L, name);
    lua_call(L, 1, 2); /* loader, extra | message */
    if (lua_isfunction(L, -2)) {
      lua_replace(L, base + 2);
      lua_replace(L, base + 1);
      lua_settop(L, base + 2);
      return 1;
    }
    lua_pop(L, 1);
    if (lua_isstring(L, -1)) add_message(L, acc);
    else lua_pop(L, 1);
  }
  lua_settop(L, base);
  return 0;
}

/* require(name): upvalue 1 the chunks' environment, upvalue 2 the modules
   being loaded (a loop is an error, as with require). */
static int private_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const sv_lua_module *m;
  int loaded = 2, status; /* registry._LOADED, made when missing */
  lua_settop(L, 1);
#if LUA_VERSION_NUM >= 502
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
#else
  luaL_findtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE, 8);
#endif
  lua_getfield(L, loaded, name);
  if (lua_toboolean(L, -1)) return 1;
  lua_pop(L, 1);
  if (lua_getfield(L, lua_upvalueindex(2), name) != LUA_TNIL)
    return luaL_error(L, "loop or previous error loading module '%s'", name);
  lua_pop(L, 1);
  for (m = sv_lua_modules; m->name && strcmp(m->name, name) != 0; m++) {}
  if (m->name) {
    load_embedded(L, m, lua_upvalueindex(1));
    lua_pushstring(L, name);
    lua_pushstring(L, m->chunkname + 1);
  } else if (strcmp(name, "starvideos.core") == 0 || strcmp(name, "starvideos.sign") == 0) {
    lua_pushcfunction(L, strcmp(name, "starvideos.core") == 0 ? luaopen_starvideos_core : luaopen_starvideos_sign);
    lua_pushstring(L, name);
    lua_pushliteral(L, ":static:");
  } else {
    int acc;
    lua_pushfstring(L, "module '%s' not found:\n\tnot in the loaded table nor in the static library", name);
    acc = lua_gettop(L);
    if (!package_loader(L, name, loaded, acc)) {
      if (strncmp(name, "cjson", 5) == 0) {
        lua_pushliteral(L, "\n\t(the host must load lua-cjson first, e.g. luaL_requiref(L, \"cjson\", "
                           "luaopen_cjson, 0) and luaL_requiref(L, \"cjson.safe\", luaopen_cjson_safe, 0))");
        add_message(L, acc);
      }
      return lua_error(L); /* the message at acc, on top */
    }
    lua_remove(L, acc);
    lua_pushstring(L, name);
    lua_insert(L, -2); /* loader, name, extra */
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, lua_upvalueindex(2), name);
  status = lua_pcall(L, 2, 1, 0);
  lua_pushnil(L);
  lua_setfield(L, lua_upvalueindex(2), name);
  if (status != 0) return lua_error(L);
  if (!lua_isnil(L, -1)) lua_setfield(L, loaded, name);
  else lua_pop(L, 1);
  if (lua_getfield(L, loaded, name) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, loaded, name);
  }
  return 1;
}

LUAOPEN_API int luaopen_starvideos(lua_State *L) {
  int env;
  lua_newtable(L);
  env = lua_gettop(L);
  lua_createtable(L, 0, 1);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, env);
  lua_pushvalue(L, env);
  lua_newtable(L);
  lua_pushcclosure(L, private_require, 2);
  lua_pushvalue(L, -1);
  lua_setfield(L, env, "require");
  lua_pushliteral(L, "starvideos");
  lua_call(L, 1, 1);
  return 1;
}
