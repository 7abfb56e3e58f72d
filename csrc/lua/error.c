/* What every Lua module of the binding uses (lsv.h): the error table and its
   metatable, classes, the options table's values (the verdict's Lua face is
   verdict.c's). */
#include "lsv.h"

#include "compat.h"

#include <math.h>
#include <string.h>

void lsv_push_error(lua_State *L, const sv_error *e) {
  lua_createtable(L, 0, 6);
  lsv_set_cstr(L, "kind", sv_kind_name(e->kind));
  lsv_set_cstr(L, "message", e->message);
  if (e->field[0]) { lua_pushstring(L, e->field); lua_setfield(L, -2, "field"); }
  if (e->status > 0) { lua_pushinteger(L, (lua_Integer)e->status); lua_setfield(L, -2, "status"); }
  if (e->retry_after >= 0) { lua_pushnumber(L, e->retry_after); lua_setfield(L, -2, "retry_after"); }
  if (e->maybe_created) { lua_pushboolean(L, 1); lua_setfield(L, -2, "maybe_created"); }
  if (e->transient) { lua_pushboolean(L, 1); lua_setfield(L, -2, "transient"); }
  if (e->id[0]) {
    lsv_set_cstr(L, "id", e->id);
    if (e->maybe_created) { lua_pushboolean(L, 1); lua_setfield(L, -2, "created"); }
  }
  luaL_setmetatable(L, ERROR_MT);
}

int lsv_fail(lua_State *L, const sv_error *e) {
  lua_pushnil(L);
  lsv_push_error(L, e);
  return 2;
}

/* One readable line: "kind: message". */
static int error_tostring(lua_State *L) {
  const char *kind, *msg;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  kind = lua_tostring(L, -2);
  msg = lua_tostring(L, -1);
  lua_pushfstring(L, "%s: %s", kind ? kind : "error", msg ? msg : "(no message)");
  return 1;
}

/* "text" .. err and err .. "text": an operand with __tostring as that, a
   string or a number as it is; anything else cannot be joined, as in Lua. */
static int error_concat(lua_State *L) {
  int i;
  for (i = 1; i <= 2; i++) {
    if (luaL_callmeta(L, i, "__tostring")) continue;
    if (!lua_isstring(L, i)) return luaL_error(L, "attempt to concatenate a %s value", luaL_typename(L, i));
    lua_pushvalue(L, i);
  }
  lua_concat(L, 2);
  return 1;
}

void lsv_error_metatable(lua_State *L) {
  luaL_newmetatable(L, ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, error_concat);
  lua_setfield(L, -2, "__concat");
}

void lsv_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lsv_set_cstr(L, "__metatable", "starvideos");
  lua_pop(L, 1);
}

double lsv_need_number(lua_State *L, int t, const char *key, double lo, double hi, const char *where) {
  double v;
  int isnum;
  lua_getfield(L, t, key);
  v = (double)lua_tonumberx(L, -1, &isnum);
  if (!isnum)
    luaL_error(L, "%s: %s is %s, a number expected (every value comes from the options table: options.lua)", where,
               key, lua_isnil(L, -1) ? "missing" : luaL_typename(L, -1));
  lua_pop(L, 1);
  if (v != v) luaL_error(L, "%s: %s is not a number (NaN)", where, key);
  return v < lo ? lo : v > hi ? hi : v;
}

const char *lsv_need_string(lua_State *L, int t, const char *key, const char *where) {
  const char *v;
  lua_getfield(L, t, key);
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "%s: %s is %s, a string expected (every value comes from the options table: options.lua)", where,
               key, lua_isnil(L, -1) ? "missing" : luaL_typename(L, -1));
  v = lua_tostring(L, -1); /* the table keeps it alive */
  lua_pop(L, 1);
  return v;
}

void *lsv_new_object(lua_State *L, size_t size, int nuv, const char *name) {
  void *p = lua_newuserdatauv(L, size, nuv);
  memset(p, 0, size);
  luaL_setmetatable(L, name);
  return p;
}

void lsv_set_str(lua_State *L, const char *k, const char *s, size_t len) {
  lua_pushlstring(L, s ? s : "", s ? len : 0);
  lua_setfield(L, -2, k);
}

void lsv_set_cstr(lua_State *L, const char *k, const char *s) { lsv_set_str(L, k, s, s ? strlen(s) : 0); }

void lsv_set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

int lsv_answer(lua_State *L, int rc, sv_buf *why) {
  if (rc == 0) lua_pushboolean(L, 1);
  else { lua_pushnil(L); lua_pushstring(L, sv_buf_cstr(why)); }
  sv_buf_free(why);
  return rc == 0 ? 1 : 2;
}
