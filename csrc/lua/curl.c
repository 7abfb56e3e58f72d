/* starvideos.curl: the Lua binding of the libcurl transport (csrc/curl/), a
   module of its own so that `require "starvideos"` does not load libcurl and
   the libraries it brings (about 30, 7-11 ms): loop.lua loads it with the
   first client that needs it.  One class, the transport (starvideos.curl); an
   exchange's handle is a number, the transport's for it (counted from 1, never
   given twice), so that an exchange costs no userdata, no metatable and no
   finalizer.  The transport's table (its user value) maps each handle to its
   exchange until result or cancel takes it, and close frees those left.  The
   static library links it into the core, as core.curl (core.c). */
#include "lsv.h"
#include "../curl/transport.h"

#include "compat.h"

#include <string.h>

#define CURL_MT "starvideos.curl"

typedef struct lhttp { sv_http *h; lua_Integer last; } lhttp; /* last: the latest handle given */

/* starvideos.bytes (lsv.h): a part's bytes as the transport read them (an exchange's with a tap), never copied
   into a Lua string: #b, b:sub(i) (a string of bytes i to the end), b:free(); an exchange's PUT sends it as its
   body. */

static int b_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)((lbytes *)luaL_checkudata(L, 1, BYTES_MT))->b.len);
  return 1;
}

static int b_sub(lua_State *L) {
  lbytes *lb = luaL_checkudata(L, 1, BYTES_MT);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1) i = 1;
  if ((size_t)i > lb->b.len) lua_pushliteral(L, "");
  else lua_pushlstring(L, lb->b.data + i - 1, lb->b.len - (size_t)(i - 1));
  return 1;
}

static int b_free(lua_State *L) {
  sv_buf_free(&((lbytes *)luaL_checkudata(L, 1, BYTES_MT))->b);
  return 0;
}

/* The transport at 1, open. */
static lhttp *check_http(lua_State *L) {
  lhttp *lh = luaL_checkudata(L, 1, CURL_MT);
  if (!lh->h) luaL_error(L, "the starvideos transport is closed");
  return lh;
}

static double opt_number(lua_State *L, int t, const char *k, double def) {
  double v;
  int isnum;
  lua_getfield(L, t, k);
  v = (double)lua_tonumberx(L, -1, &isnum);
  lua_pop(L, 1);
  return isnum ? v : def;
}

/* t[k] when a string (the table keeps it alive), its length in *len (may be NULL); else NULL */
static const char *opt_string(lua_State *L, int t, const char *k, size_t *len) {
  const char *v;
  lua_getfield(L, t, k);
  v = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, len) : NULL;
  lua_pop(L, 1);
  return v;
}

/* curl{api_key=, ca_file=, user_agent=, connect_timeout=, max_connections=[, keepalive_timeout=]}: the
   values come from the options table (config.lua), checked there; here they are
   clamped, and one missing is an error, never a default.  api_key and ca_file
   may be absent (no key: downloads only; no CA file: the system's). */
static int l_curl(lua_State *L) {
  sv_http_config cfg;
  char errbuf[128];
  lhttp *lh;
  luaL_checktype(L, 1, LUA_TTABLE);
  cfg.api_key = opt_string(L, 1, "api_key", NULL);
  cfg.ca_file = opt_string(L, 1, "ca_file", NULL);
  cfg.user_agent = lsv_need_string(L, 1, "user_agent", "starvideos.curl");
  cfg.connect_timeout = lsv_need_number(L, 1, "connect_timeout", 0.001, 86400, "starvideos.curl");
  cfg.max_connections = (int)lsv_need_number(L, 1, "max_connections", 1, 1024, "starvideos.curl");
  lua_getfield(L, 1, "keepalive_timeout"); /* (optional: a host's own table may leave it: libcurl's) */
  cfg.keepalive_timeout = lua_isnil(L, -1) ? 0 : lsv_need_number(L, 1, "keepalive_timeout", 0.001, 86400,
                                                                  "starvideos.curl");
  lua_pop(L, 1);
  lh = lsv_new_object(L, sizeof *lh, 1, CURL_MT);
  /* the exchanges not taken: handle -> lightuserdata(xfer); and -handle -> the body it sends as it is (a
     part's megabytes, not copied: body_kept), until the handle is spent */
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lh->h = sv_http_new(&cfg, errbuf, sizeof errbuf);
  if (!lh->h) return luaL_error(L, "starvideos: %s", errbuf);
  return 1;
}

static int getbool(lua_State *L, int t, const char *k) {
  int v;
  lua_getfield(L, t, k);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The list of strings at the top made one string, pushed (left on the stack for t_send): the body it sends. */
static void body_list(lua_State *L, sv_send *s) {
  int t = lua_gettop(L), i, n = (int)lua_rawlen(L, t);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, t, i);
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "body: expected a string, bytes or a list of strings");
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  s->body = lua_tolstring(L, -1, &s->body_len);
}

/* The request's body (at 2): a string, or a part's bytes as an exchange read them (starvideos.bytes), sent as
   they are; kept (not copied) when long or bytes: t_send holds it until the handle is spent; or a list of strings
   (as nginx's transport reads a part), made one string, left on the stack for t_send, and copied.  An exchange's
   tap: starvideos.sign's stream, held too. */
static void send_body(lua_State *L, sv_send *s) {
  lbytes *lb;
  int listed;
  s->body = opt_string(L, 2, "body", &s->body_len);
  lua_getfield(L, 2, "body");
  if ((lb = luaL_testudata(L, -1, BYTES_MT)) != NULL && lb->b.data) s->body = lb->b.data, s->body_len = lb->b.len;
  listed = lua_type(L, -1) == LUA_TTABLE;
  if (listed) body_list(L, s); /* (copied by sv_http_send: never kept) */
  else lua_pop(L, 1);
  s->body_kept = !listed && s->body && (s->body_len >= 65536 || lb);
  lua_getfield(L, 2, "tap"); /* its body fed to a stream as it comes (sign's) */
  /* (a GET's: the handle keeps one value alive, the tap or a kept body) */
  s->tap = !s->body ? luaL_testudata(L, -1, STREAM_MT) : NULL;
  lua_pop(L, 1);
}

/* The request's range = {first, last} (at 2): the bytes asked for, its body then cut at their length (and at
   max_body, read before). */
static void send_range(lua_State *L, sv_send *s) {
  double first, last;
  lua_getfield(L, 2, "range");
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    first = (double)luaL_checknumber(L, -2), last = (double)luaL_checknumber(L, -1);
    luaL_argcheck(L, first >= 0 && last >= first && last < 1e15, 2,
                  "range: expected {first, last}, 0 <= first <= last");
    s->range = 1, s->offset = first;
    if (last - first + 1 < (double)s->max_body) s->max_body = (size_t)(last - first + 1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

/* A request's table (at 2) read into s, a field at a time by its row in exchange_fields.h: those of a plain kind
   here, by their kind; the others (op, url, body, range, tap, connect_timeout) by hand after; rest by
   go_on_or_send. */
#define SV_READ_STR(n) s->n = opt_string(L, 2, #n, NULL);
#define SV_READ_FLAG(n) s->n = getbool(L, 2, #n);
#define SV_READ_NUM(n) s->n = opt_number(L, 2, #n, 0);
#define SV_READ_SIZE(n) s->n = (size_t)lsv_need_number(L, 2, #n, 1, 1e15, "send");
#define SV_READ_OP(n)
#define SV_READ_URL(n)
#define SV_READ_CLIENT(n)
#define SV_READ_BODY(n)
#define SV_READ_RANGE(n)
#define SV_READ_TAP(n)
#define SV_READ_LUA(n)
static int send_fields(lua_State *L, sv_send *s, sv_error *err) {
  size_t len = 0;
#define SV_FIELD(name, kind) SV_READ_##kind(name)
#include "../curl/exchange_fields.h"
#undef SV_FIELD
  lua_getfield(L, 2, "op");
  s->op = (sv_op)luaL_checkoption(L, -1, NULL, sv_op_names); /* (the verdict's) */
  lua_pop(L, 1);
  s->url = opt_string(L, 2, "url", &len); /* a NUL inside would cut the URL short for C: the check sees all of it */
  if (s->url && strlen(s->url) != len && sv_url_check(s->url, len, "url", SV_URL_ANY, err) != 0) return -1;
  /* (the client's own options, with every exchange of it: request.lua) */
  if (s->user_agent) s->connect_timeout = lsv_need_number(L, 2, "connect_timeout", 0.001, 86400, "send");
  send_body(L, s);
  send_range(L, s);
  return 0;
}

/* The exchange s asks for (the transport's table at `table`): the held one named by rest= (a handle a result
   gave as its task's `held`) going on, else a new one (that handle let go of). */
static sv_xfer *go_on_or_send(lua_State *L, lhttp *lh, int table, const sv_send *s, sv_error *err) {
  sv_xfer *x = NULL, *held;
  lua_getfield(L, 2, "rest");
  if (lua_isinteger(L, -1)) { /* (only an exchange's is ever held: sv_xfer_go_on says whether it goes on) */
    lua_pushvalue(L, -1);
    lua_rawget(L, table);
    held = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (held && (x = sv_xfer_go_on(held, s)) == NULL) sv_xfer_free(held); /* (it ended while held: sent anew) */
    lua_pushnil(L);
    lua_rawset(L, table); /* (rest's handle is spent: its exchange goes on under the new one) */
  } else {
    lua_pop(L, 1);
  }
  return x ? x : sv_http_send(lh->h, s, err);
}

/* t:send(r) -> handle | nil, err: r's fields, exchange_fields.h's rows (no user_agent: the transport's user agent,
   CA file and connect timeout; no proxy: the environment's, as libcurl reads it) */
static int t_send(lua_State *L) {
  lhttp *lh = check_http(L);
  sv_send s = {0};
  sv_error err;
  sv_xfer *x;
  sv_error_clear(&err);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (send_fields(L, &s, &err) != 0) return lsv_fail(L, &err);
  /* The handle's key is made in the table before the exchange exists: making
     it may raise (memory), and nothing may raise between the exchange and its
     place in the table.  Setting a key that is there never allocates. */
  lua_getiuservalue(L, 1, 1);
  lua_pushinteger(L, lh->last + 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  if (s.body_kept || s.tap) { /* the string (or the tap) stays the exchange's until its handle is spent (forget) */
    lua_pushinteger(L, -(lh->last + 1));
    lua_getfield(L, 2, s.tap ? "tap" : "body");
    lua_rawset(L, -3);
  }
  x = go_on_or_send(L, lh, lua_gettop(L), &s, &err);
  lua_pushinteger(L, lh->last + 1);
  if (x) lua_pushlightuserdata(L, x); else lua_pushnil(L);
  lua_rawset(L, -3);
  if (!x && (s.body_kept || s.tap)) {
    lua_pushinteger(L, -(lh->last + 1));
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  if (!x) return lsv_fail(L, &err);
  sv_xfer_set_user(x, (long long)++lh->last);
  lua_pushinteger(L, lh->last);
  return 1;
}

/* t:poll(max_wait) -> number of finished exchanges not yet taken */
static int t_poll(lua_State *L) {
  lhttp *lh = check_http(L);
  lua_pushinteger(L, sv_http_poll(lh->h, (double)luaL_optnumber(L, 2, 0))); /* (0 and below: no wait) */
  return 1;
}

/* t:finished() -> the next finished handle, or nil */
static int t_finished(lua_State *L) {
  lhttp *lh = check_http(L);
  sv_xfer *x = sv_http_finished(lh->h);
  if (!x) return 0;
  lua_pushinteger(L, (lua_Integer)sv_xfer_user(x));
  return 1;
}

/* The exchange of the handle at idx (NULL: none, taken or cancelled), the
   transport's table left on the stack. */
static sv_xfer *xfer_of(lua_State *L, int idx) {
  sv_xfer *x;
  luaL_checkinteger(L, idx);
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  x = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return x;
}

static sv_xfer *check_xfer(lua_State *L, int idx) {
  sv_xfer *x = xfer_of(L, idx);
  if (!x) luaL_argerror(L, idx, "the exchange was already taken or cancelled");
  return x;
}

/* The handle at 2 spent: its exchange freed (the transport's table below the top). */
static void forget(lua_State *L, int table, sv_xfer *x) {
  lua_pushvalue(L, 2);
  lua_pushnil(L);
  lua_rawset(L, table);
  sv_xfer_free(x);
  lua_pushinteger(L, -lua_tointeger(L, 2)); /* (its body, when kept: the exchange is over) */
  lua_pushnil(L);
  lua_rawset(L, table);
}

/* t:result(h) -> task, err, wire[, bytes, total, part] (an API answer: task, err, wire[, rate limits]); the handle is spent
   (but a held exchange's, named by its task's `held`: t:send's rest= goes on with it, t:cancel lets it go).
   A whole download's .part stays open: part, the handle core.commit_start
   takes (lsv_push_part), so that the commit acts on what was written; an
   unfinished one's stays with the transport for the next attempt. */
static int t_result(lua_State *L) {
  lhttp *lh = check_http(L);
  sv_xfer *xf = check_xfer(L, 2);
  int table = lua_gettop(L), tapped;
  lbytes *lb = NULL;
  sv_exchange x;
  int n;
  sv_xfer_exchange(xf, &x);
  lua_pushinteger(L, -lua_tointeger(L, 2)); /* an exchange with a tap: its bytes as starvideos.bytes */
  lua_rawget(L, table);
  tapped = luaL_testudata(L, -1, STREAM_MT) != NULL;
  lua_pop(L, 1);
  if (tapped && x.wire == SV_WIRE_NONE && x.status >= 200 && x.status <= 299) {
    lb = lsv_new_object(L, sizeof *lb, 0, BYTES_MT); /* (made first: nothing may raise once the body is taken) */
    x.body = NULL, x.body_len = 0; /* (a 2xx exchange's body: the verdict reads none of it) */
  }
  n = lsv_push_verdict(L, &x, sv_http_secret(lh->h));
  if (lb && !lua_isnil(L, -n)) { /* the task's body: the bytes, as read */
    sv_xfer_take_body(xf, &lb->b);
    lua_pushvalue(L, table + 1);
    lua_setfield(L, -n - 1, "body");
  }
  if (lb) lua_remove(L, table + 1);
  if (sv_xfer_has_part(xf) && lua_isnil(L, -n)) {
    sv_xfer_part(xf, 0);
  } else if (sv_xfer_has_part(xf)) {
    sv_part **slot = lsv_push_part(L); /* (may raise: before the .part is taken from the exchange) */
    if ((*slot = sv_xfer_part(xf, 1)) != NULL) n++;
    else lua_pop(L, 1);
  }
  if (sv_xfer_held(xf) && !lua_isnil(L, -n)) {
    lua_pushvalue(L, 2);
    lua_setfield(L, -n - 1, "held");
    lua_pushinteger(L, -lua_tointeger(L, 2)); /* (its tap: this part's, spent) */
    lua_pushnil(L);
    lua_rawset(L, table);
  } else {
    forget(L, table, xf);
  }
  return n;
}

/* t:progress(h) -> bytes, total (nil when unknown) */
static int t_progress(lua_State *L) {
  double bytes, total;
  check_http(L);
  sv_xfer_progress(check_xfer(L, 2), &bytes, &total);
  lua_pushinteger(L, (lua_Integer)bytes);
  if (total >= 0) lua_pushinteger(L, (lua_Integer)total);
  else lua_pushnil(L);
  return 2;
}

/* t:server_request_id(h) -> the server's own id of a finished exchange's answer (x-request-id, request-id,
   cf-ray), or nil; before t:result, which spends the handle */
static int t_server_request_id(lua_State *L) {
  const char *id;
  check_http(L);
  id = sv_xfer_server_id(check_xfer(L, 2));
  if (!id) return 0;
  lua_pushstring(L, id);
  return 1;
}

/* t:written(h) -> whether any byte of the exchange's request was written to its socket (a create's that was not
   is surely not made: docs/architecture.md, "The transport interface") */
static int t_written(lua_State *L) {
  check_http(L);
  lua_pushboolean(L, sv_xfer_written(check_xfer(L, 2)));
  return 1;
}

/* t:clock() -> the service's clock minus ours (s, from the last API answer's
   Date: whole seconds), or nil before one came */
static int t_clock(lua_State *L) {
  double skew = sv_http_clock(check_http(L)->h);
  if (skew != skew) return 0;
  lua_pushnumber(L, skew);
  return 1;
}

/* t:cancel(h): the exchange ends now; its handle is spent */
static int t_cancel(lua_State *L) {
  sv_xfer *x;
  check_http(L);
  x = xfer_of(L, 2);
  if (x) forget(L, lua_gettop(L), x);
  return 0;
}

/* t:set_max_connections(n): the key's max_connections from now on (clamped; NaN refused) */
static int t_set_max_connections(lua_State *L) {
  lhttp *lh = check_http(L);
  lua_Number n = luaL_checknumber(L, 2);
  luaL_argcheck(L, n == n, 2, "max_connections is not a number (NaN)");
  sv_http_set_max_connections(lh->h, n < 1 ? 1 : n > 1024 ? 1024 : (int)n);
  return 0;
}

/* t:close(), and the collector's: every exchange ends (sv_http_free), and
   those no result or cancel took are freed with their handles. */
static int t_close(lua_State *L) {
  lhttp *lh = luaL_checkudata(L, 1, CURL_MT);
  if (!lh->h) return 0;
  sv_http_free(lh->h);
  lh->h = NULL;
  if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) return 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* (an exchange's: a light userdata; a kept body or tap: a string, or a full one) */
    if (lua_type(L, -1) == LUA_TLIGHTUSERDATA) sv_xfer_free(lua_touserdata(L, -1));
    lua_pop(L, 1);
  }
  lua_newtable(L); /* (a handle given before is none now) */
  lua_setiuservalue(L, 1, 1);
  return 0;
}

static const luaL_Reg curl_methods[] = {
  { "send", t_send }, { "poll", t_poll }, { "finished", t_finished }, { "result", t_result },
  { "progress", t_progress }, { "cancel", t_cancel }, { "close", t_close }, { "clock", t_clock },
  { "set_max_connections", t_set_max_connections }, { "server_request_id", t_server_request_id },
  { "written", t_written },
  { NULL, NULL }
};

/* The transport's classes registered, and its constructor pushed: 1.  The
   static library's core calls it too (core.curl, core.c). */
SV_API int lsv_curl_register(lua_State *L);
int lsv_curl_register(lua_State *L) {
  static const luaL_Reg bytes_methods[] = { { "sub", b_sub }, { "free", b_free }, { NULL, NULL } };
  lsv_new_class(L, BYTES_MT, bytes_methods, b_free);
  luaL_getmetatable(L, BYTES_MT);
  lua_pushcfunction(L, b_len);
  lua_setfield(L, -2, "__len");
  lua_pop(L, 1);
  lsv_new_class(L, CURL_MT, curl_methods, t_close);
  lsv_part_class(L);
  lsv_error_metatable(L);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_curl);
  return 1;
}

LUAOPEN_API int luaopen_starvideos_curl(lua_State *L) {
  /* libcurl's own threads (its resolver's) and a download's commit may outlive the state that loaded this module:
     it stays loaded for good, and libcurl with it (a lua_close that unloaded them crashed LuaJIT at exit) */
  sv_helper_pin_module();
  lua_createtable(L, 0, 2);
  lsv_curl_register(L);
  lua_setfield(L, -2, "new");
  lua_newtable(L); /* fields: name -> its kind, exchange_fields.h's rows (spec/exchange_fields_spec.lua's list) */
#define SV_FIELD(name, kind) lua_pushliteral(L, #kind), lua_setfield(L, -2, #name);
#include "../curl/exchange_fields.h"
#undef SV_FIELD
  lua_setfield(L, -2, "fields");
  return 1;
}
