/* starvideos.fleet.native: the Redis rock's grammar (url.c) for Lua, in C
   without hiredis, so that a store's URL is read where starvideos.redis is not
   built (fleet/url.lua, fleet/cluster.lua).  It never calls a Lua function.

     native.store_url(url) -> {kind =, tls =, db =, where =, hosts = {{host =, port =}...}, host =, port =
         [, path =][, service =][, user =][, password =]} | nil, why
         kind "one", "unix", "sentinel" or "cluster"; host and port the first host's; path a socket's; user
         and password as written; where the URL without them, each port and db written
         ("rediss://host:6379/0", "unix:///path?db=0", "redis+sentinel://h1:26379,h2:26379/mymaster/0",
         "redis+cluster://h1:6379").
     native.slot(key) -> Redis Cluster's hash slot of key (0 to 16383, its {hash tag}'s) */
#include "url.h"

#include "../../../csrc/lua/compat.h" /* and lua.h, lauxlib.h */

#include <stdio.h>
#include <string.h>

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

static void set_text(lua_State *L, const char *k, const char *s, size_t len) {
  lua_pushlstring(L, s, len);
  lua_setfield(L, -2, k);
}

static void set_number(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* where: the URL without its credentials, as written but each port and db (a URL has at most 8192 bytes, each
   of at most 16 hosts a port of 6 more, a tail of 32). */
typedef struct where { char text[8192 + 16 * 6 + 64]; size_t len; } where;

static void add(where *w, const char *s, size_t len) {
  if (len > sizeof w->text - w->len) len = sizeof w->text - w->len;
  memcpy(w->text + w->len, s, len);
  w->len += len;
}

/* The hosts {{host =, port =}...} (a host without an IPv6 literal's brackets) pushed, and added to w as
   written: "h1:p1,h2:p2". */
static void push_hosts(lua_State *L, const char *s, const sv_store_url *u, where *w) {
  size_t k;
  lua_createtable(L, (int)u->nhosts, 0);
  for (k = 0; k < u->nhosts; k++) {
    const sv_store_host *h = &u->hosts[k];
    size_t br = s[h->at] == '[';
    char port[16];
    int n = snprintf(port, sizeof port, ":%u", h->port);
    lua_createtable(L, 0, 2);
    set_text(L, "host", s + h->at + br, h->len - 2 * br);
    set_number(L, "port", (lua_Integer)h->port);
    lua_rawseti(L, -2, (int)k + 1);
    if (k) add(w, ",", 1);
    add(w, s + h->at, h->len);
    add(w, port, (size_t)n);
  }
}

/* The table's hosts (not a socket's), host, port, service and where, set into the table on top. */
static void set_where(lua_State *L, const char *s, const sv_store_url *u, const char *tail) {
  where w; /* (8.6 KB of the C stack: no allocation to fail) */
  w.len = 0;
  add(&w, u->scheme, strlen(u->scheme));
  if (u->kind == 'u') add(&w, s + u->hosts[0].at, u->hosts[0].len);
  else {
    push_hosts(L, s, u, &w);
    lua_rawgeti(L, -1, 1);
    lua_getfield(L, -1, "host");
    lua_setfield(L, -4, "host");
    lua_getfield(L, -1, "port");
    lua_setfield(L, -4, "port");
    lua_pop(L, 1);
    lua_setfield(L, -2, "hosts");
  }
  if (u->service_len) {
    set_text(L, "service", s + u->service_at, u->service_len);
    add(&w, "/", 1);
    add(&w, s + u->service_at, u->service_len);
  }
  add(&w, tail, strlen(tail));
  set_text(L, "where", w.text, w.len);
}

static int l_store_url(lua_State *L) {
  static const char *const kinds[] = { "one", "unix", "sentinel", "cluster" };
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len), *why;
  char tail[32] = "";
  sv_store_url u;
  if (sv_store_url_parse(s, len, &u, &why) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_createtable(L, 0, 12);
  lua_pushstring(L, kinds[strchr("rusc", u.kind) - "rusc"]);
  lua_setfield(L, -2, "kind");
  lua_pushboolean(L, u.tls);
  lua_setfield(L, -2, "tls");
  set_number(L, "db", (lua_Integer)u.db);
  if (u.user_len) set_text(L, "user", s + u.user_at, u.user_len);
  if (u.pass_at) set_text(L, "password", s + u.pass_at, u.pass_len);
  if (u.kind == 'u') {
    set_text(L, "path", s + u.hosts[0].at, u.hosts[0].len);
    snprintf(tail, sizeof tail, "?db=%d", u.db);
  } else if (u.kind != 'c') {
    snprintf(tail, sizeof tail, "/%d", u.db);
  }
  set_where(L, s, &u, tail);
  return 1;
}

static int l_slot(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_pushinteger(L, (lua_Integer)sv_redis_slot(s, len));
  return 1;
}

static const luaL_Reg funcs[] = { { "store_url", l_store_url }, { "slot", l_slot }, { NULL, NULL } };

LUAOPEN_API int luaopen_starvideos_fleet_native(lua_State *L) {
  luaL_newlib(L, funcs);
  lua_pushstring(L, "starvideos.fleet.native 0.4.0");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
