/* The pieces of the binding both Lua modules use (lsv.h): the error table, the
   verdict's Lua face, classes, and the hand-over of a download's open file. */
#include "lsv.h"

#include "compat.h"

#include <string.h>
#include <unistd.h>

#define KEPT_MT "starvideos.kept_part"
#define PARTS_KEY "starvideos.parts" /* registry: .part path -> its open file */

typedef struct kept { int fd; } kept;

const char *const lsv_op_names[] = { "create", "query", "download", NULL };
const char *const lsv_tr_names[] = { "none", "not_sent", "timeout", "broken", "garbled", "fatal", "io", NULL };

void lsv_push_error(lua_State *L, const sv_error *e) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, sv_kind_name(e->kind));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, e->message);
  lua_setfield(L, -2, "message");
  if (e->field[0]) { lua_pushstring(L, e->field); lua_setfield(L, -2, "field"); }
  if (e->status > 0) { lua_pushinteger(L, (lua_Integer)e->status); lua_setfield(L, -2, "status"); }
  if (e->retry_after >= 0) { lua_pushnumber(L, e->retry_after); lua_setfield(L, -2, "retry_after"); }
  if (e->maybe_created) { lua_pushboolean(L, 1); lua_setfield(L, -2, "maybe_created"); }
  if (e->id[0]) {
    lua_pushstring(L, e->id);
    lua_setfield(L, -2, "id");
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

static int error_concat(lua_State *L) {
  luaL_tolstring(L, 1, NULL); /* __tostring for the error, as-is for strings */
  luaL_tolstring(L, 2, NULL);
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
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lua_pushliteral(L, "starvideos");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

double lsv_need_number(lua_State *L, int t, const char *key, double lo, double hi, const char *where) {
  double v;
  lua_getfield(L, t, key);
  if (!lua_isnumber(L, -1))
    luaL_error(L, "%s: %s is %s, a number expected (every value comes from the options table: options.lua)", where,
               key, lua_isnil(L, -1) ? "missing" : luaL_typename(L, -1));
  v = (double)lua_tonumber(L, -1);
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

/* body, err, tr, bytes, total, where body is the answer (a download's: "") on
   success and err the error table otherwise. */
int lsv_push_verdict(lua_State *L, const sv_exchange *x, const char *secret) {
  sv_error err;
  sv_transport tr;
  int rc = sv_verdict(x, sv_wallclock(), secret, &err, &tr);
  if (rc == 0) lua_pushlstring(L, x->op == SV_OP_DOWNLOAD ? "" : x->body, x->op == SV_OP_DOWNLOAD ? 0 : x->body_len);
  else lua_pushnil(L);
  if (rc == 0) lua_pushnil(L);
  else lsv_push_error(L, &err);
  lua_pushstring(L, sv_transport_name(tr));
  if (x->op != SV_OP_DOWNLOAD) return 3;
  lua_pushinteger(L, (lua_Integer)x->bytes);
  if (x->total >= 0) lua_pushinteger(L, (lua_Integer)x->total);
  else lua_pushnil(L);
  return 5;
}

/* A file left and never taken is closed when collected. */
static int part_gc(lua_State *L) {
  kept *p = luaL_checkudata(L, 1, KEPT_MT);
  if (p->fd >= 0) { close(p->fd); p->fd = -1; }
  return 0;
}

/* Pushes registry[PARTS_KEY], made when missing. */
static void push_parts(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, PARTS_KEY);
  if (lua_istable(L, -1)) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, PARTS_KEY);
}

/* The kept left under path (on the stack, or nothing pushed), taken out of
   the table. */
static kept *pop_part(lua_State *L, const char *path) {
  kept *p;
  push_parts(L);
  lua_getfield(L, -1, path);
  p = luaL_testudata(L, -1, KEPT_MT);
  lua_pushnil(L);
  lua_setfield(L, -3, path);
  lua_remove(L, -2); /* the table */
  if (!p) lua_pop(L, 1);
  return p;
}

void lsv_part_put(lua_State *L, const char *path, int fd) {
  kept *p = pop_part(L, path);
  if (p) { /* a file left before and never committed */
    if (p->fd >= 0) { close(p->fd); p->fd = -1; }
    lua_pop(L, 1);
  }
  if (luaL_newmetatable(L, KEPT_MT)) {
    lua_pushcfunction(L, part_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  push_parts(L);
  p = lua_newuserdatauv(L, sizeof *p, 0);
  p->fd = fd;
  luaL_setmetatable(L, KEPT_MT);
  lua_setfield(L, -2, path);
  lua_pop(L, 1);
}

int lsv_part_take(lua_State *L, const char *path) {
  kept *p = pop_part(L, path);
  int fd;
  if (!p) return -1;
  fd = p->fd;
  p->fd = -1;
  lua_pop(L, 1);
  return fd;
}
