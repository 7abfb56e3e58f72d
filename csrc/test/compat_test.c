/* compat_test: a Lua module that drives csrc/lua/compat.h, for spec/binding/compat_spec.lua.
   Built for every VM (build/<vm>/compat_test.so), so that each VM checks what
   compat.h gives it.  Each function tests one compat name and returns what it
   saw, for the spec to compare with what Lua 5.4 does. */
#include <lauxlib.h>
#include <lua.h>

#include "../lua/compat.h"

#include <string.h>

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

#define BOX_MT "compat_test.box"

/* uv_new(nuv [, value]) -> userdata with nuv user values, the first set to value */
static int t_uv_new(lua_State *L) {
  int nuv = (int)luaL_checkinteger(L, 1);
  int set = !lua_isnone(L, 2);
  int *p = lua_newuserdatauv(L, sizeof *p, nuv);
  *p = 42;
  if (nuv > 0 && set) {
    lua_pushvalue(L, 2);
    if (lua_setiuservalue(L, -2, 1) != 1) return luaL_error(L, "lua_setiuservalue failed");
  }
  return 1;
}

/* uv_get(ud, n) -> type name returned, value pushed, stack growth */
static int t_uv_get(lua_State *L) {
  int top = lua_gettop(L), t;
  luaL_checktype(L, 1, LUA_TUSERDATA);
  t = lua_getiuservalue(L, 1, (int)luaL_checkinteger(L, 2));
  lua_pushstring(L, t == LUA_TNONE ? "none" : lua_typename(L, t));
  lua_pushvalue(L, -2);
  lua_pushinteger(L, lua_gettop(L) - 2 - top);
  return 3;
}

/* uv_set(ud, n, value) -> what lua_setiuservalue returned, stack growth */
static int t_uv_set(lua_State *L) {
  int top, r;
  luaL_checktype(L, 1, LUA_TUSERDATA);
  lua_settop(L, 3);
  top = lua_gettop(L);
  lua_pushvalue(L, 3);
  r = lua_setiuservalue(L, 1, (int)luaL_checkinteger(L, 2));
  lua_pushinteger(L, r);
  lua_pushinteger(L, lua_gettop(L) - 1 - top);
  return 2;
}

static int t_isinteger(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, lua_isinteger(L, 1));
  return 1;
}

/* absindex(...) -> the absolute index of -1, of 1 and of the registry */
static int t_absindex(lua_State *L) {
  int last = lua_absindex(L, -1), first = lua_absindex(L, 1);
  int reg = lua_absindex(L, LUA_REGISTRYINDEX) == LUA_REGISTRYINDEX;
  lua_pushinteger(L, last);
  lua_pushinteger(L, first);
  lua_pushboolean(L, reg);
  return 3;
}

static int t_rawlen(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
  return 1;
}

static int up_get(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  return 2;
}

/* setfuncs(t, a, b) -> t with get (upvalues a, b); stack growth.  (No NULL
   placeholder: only 5.4 has them, and 5.1 through compat.h.) */
static int t_setfuncs(lua_State *L) {
  static const luaL_Reg fns[] = { { "get", up_get }, { NULL, NULL } };
  int top;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 3);
  top = lua_gettop(L);
  luaL_setfuncs(L, fns, 2);
  lua_pushinteger(L, lua_gettop(L) - (top - 2));
  return 2;
}

static int box_value(lua_State *L) {
  int *p = luaL_checkudata(L, 1, BOX_MT);
  lua_pushinteger(L, *p);
  return 1;
}

static const luaL_Reg box_funcs[] = { { "value", box_value }, { NULL, NULL } };

/* box(n) -> a userdata with the test metatable set by luaL_setmetatable */
static int t_box(lua_State *L) {
  int *p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = (int)luaL_checkinteger(L, 1);
  luaL_setmetatable(L, BOX_MT);
  return 1;
}

static int t_newlib(lua_State *L) {
  luaL_newlib(L, box_funcs);
  return 1;
}

/* gettypes(t) -> the types that lua_getfield, lua_rawget, lua_rawgeti and
   luaL_getmetatable returned */
static int t_gettypes(lua_State *L) {
  int types[4], i;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  types[0] = lua_getfield(L, 1, "field");
  lua_pushliteral(L, "raw");
  types[1] = lua_rawget(L, 1);
  types[2] = lua_rawgeti(L, 1, 1);
  types[3] = luaL_getmetatable(L, BOX_MT);
  lua_settop(L, 1);
  lua_createtable(L, 4, 0);
  for (i = 0; i < 4; i++) {
    lua_pushstring(L, lua_typename(L, types[i]));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int t_globaltable(lua_State *L) {
  lua_pushglobaltable(L);
  return 1;
}

static int t_pushfail(lua_State *L) {
  luaL_pushfail(L);
  lua_pushliteral(L, "reason");
  return 2;
}

/* tonumberx(v) -> number, isnum */
static int t_tonumberx(lua_State *L) {
  int isnum = -1;
  lua_Number n;
  luaL_checkany(L, 1);
  n = lua_tonumberx(L, 1, &isnum);
  lua_pushnumber(L, n);
  lua_pushboolean(L, isnum);
  return 2;
}

static const luaL_Reg funcs[] = {
  { "uv_new", t_uv_new }, { "uv_get", t_uv_get }, { "uv_set", t_uv_set },
  { "isinteger", t_isinteger }, { "absindex", t_absindex }, { "rawlen", t_rawlen },
  { "setfuncs", t_setfuncs }, { "box", t_box },
  { "newlib", t_newlib },
  { "gettypes", t_gettypes }, { "pushfail", t_pushfail }, { "tonumberx", t_tonumberx },
  { "globaltable", t_globaltable }, { NULL, NULL }
};

LUAOPEN_API int luaopen_compat_test(lua_State *L);

LUAOPEN_API int luaopen_compat_test(lua_State *L) {
  luaL_newmetatable(L, BOX_MT);
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, (lua_Integer)(sizeof(lua_Integer) * 8));
  lua_setfield(L, -2, "integer_bits");
  return 1;
}
